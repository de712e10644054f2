package capture

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/gototem/gototem/knet"
)

// Knet is the knet view of a datagram on a Totem port (corosync 3's default transport
// puts every totem packet in a knet DATA packet on port 5405+link). The Reader tells knet
// from bare Totem by content: a Totem datagram starts with its magic (70 c0), a clear knet
// packet with version 1; an encrypted knet packet only opens with the key (SetKnetCrypto).
type Knet struct {
	// Packet is the decoded knet packet; its Data aliases Plain.
	Packet knet.Packet
	// Plain is the knet packet's bytes: the UDP payload, or what it decrypted to.
	Plain     []byte
	Encrypted bool
	// Rx is what the receiving node (the datagram's destination address) made of a DATA
	// packet: its own de-duplication and reassembly state for the sender, kept per
	// (sender host, destination) because every copy of a knet "broadcast" goes to each
	// host separately with the same seq.
	Rx knet.RxResult
	// Message is the user data a DATA packet completes (the whole message, reassembled
	// when fragmented), nil otherwise. Corosync's user data is one Totem packet: it is
	// decoded into the Packet's Totem/Inner fields.
	Message []byte
}

// KnetLinkPorts are the ports of knet links 1..7 with corosync's default port: link L is
// bound to 5405+L and sends to the same port (link 0 is 5405, a Totem port already).
// Datagrams on them are decoded as knet (or Totem, by content) like those on the Totem
// ports.
var KnetLinkPorts = [2]uint16{5406, 5412}

func isKnetLinkPort(p uint16) bool { return p >= KnetLinkPorts[0] && p <= KnetLinkPorts[1] }

// knetFlow identifies one receiver's view of one sender. The receiver is known by its
// host id once a packet from its address showed it (every node pings from every link
// address), so that copies of one message on several links meet one de-duplication
// window, as in the receiving libknet; before that, by the address.
type knetFlow struct {
	host    knet.HostID
	dstHost knet.HostID
	dst     netip.Addr
}

func (r *Reader) knetFlowOf(host knet.HostID, dst netip.Addr) knetFlow {
	if h, ok := r.knetHosts[dst]; ok {
		return knetFlow{host: host, dstHost: h}
	}
	return knetFlow{host: host, dst: dst}
}

// SetKnetCrypto makes the Reader open encrypted knet packets with c (built from the
// cluster's authkey and crypto_cipher/crypto_hash). Without it an encrypted packet is
// reported undecodable.
func (r *Reader) SetKnetCrypto(c *knet.Crypto) { r.knetCrypto = c }

// errKnetEncrypted is the error of a packet that is neither Totem nor clear knet and did not
// open with the configured key (or no key was given).
type errKnetEncrypted struct {
	keyed bool
	err   error
}

func (e *errKnetEncrypted) Error() string {
	if e.keyed {
		return fmt.Sprintf("neither Totem nor knet: does not open with the knet key (%v)", e.err)
	}
	return "neither Totem nor clear knet: encrypted knet? (give the authkey)"
}

func (e *errKnetEncrypted) Unwrap() error { return e.err }

// looksKnetClear is a strict test for a clear knet packet, so that random (encrypted)
// bytes are not taken for one: version 1, a known type, the pad byte libknet keeps zero, and
// the exact size of a ping, pong or PMTUd reply.
func looksKnetClear(b []byte) bool {
	var p knet.Packet
	if p.Decode(b) != nil || p.Pad != 0 {
		return false
	}
	switch p.Type {
	case knet.TypePing, knet.TypePong:
		return len(b) == knet.PingSize
	case knet.TypePMTUDReply:
		return len(b) == knet.PMTUDHeaderSize
	}
	return true
}

// Bounds on the Reader's knet state, whatever the file holds (a cluster has at most a few
// dozen nodes with up to 8 links each).
const (
	maxKnetAddrs = 4096
	maxKnetFlows = 1024
)

// minEncryptedKnet is the smallest encrypted knet packet: salt, one AES block, an MD5 MAC.
const minEncryptedKnet = knet.SaltSize + 16 + 16

// isTotemMagic reports whether b starts with Totem's magic in either byte order.
func isTotemMagic(b []byte) bool {
	return len(b) >= 2 && (b[0] == 0x70 && b[1] == 0xc0 || b[0] == 0xc0 && b[1] == 0x70)
}

// knetDatagram decodes payload as knet when it is knet (ok false: not knet, decode as
// Totem). It fills out.Knet, and out.Totem/Inner/Err from the message a DATA packet
// completes.
func (r *Reader) knetDatagram(out *Packet, payload []byte) (ok bool) {
	if isTotemMagic(payload) {
		return false
	}
	k := &Knet{}
	switch {
	case r.knetCrypto != nil && r.knetCrypto.Enabled():
		plain, err := r.knetCrypto.Open(nil, payload)
		if err != nil {
			if looksKnetClear(payload) {
				// corosync refuses clear traffic when crypto is on; show it anyway.
				k.Plain = payload
				break
			}
			out.Err = fmt.Errorf("frame %d: %w", r.frame, &errKnetEncrypted{keyed: true, err: err})
			r.stats.Knet++
			return true
		}
		k.Plain, k.Encrypted = plain, true
	case looksKnetClear(payload):
		k.Plain = payload
	case len(payload) >= minEncryptedKnet && payload[0] != knet.Version1:
		// Neither Totem nor clear knet, and long enough to be salt + a cipher block + a
		// MAC: corosync 3 encrypts only knet, so this is most likely encrypted knet.
		out.Err = fmt.Errorf("frame %d: %w", r.frame, &errKnetEncrypted{})
		r.stats.Knet++
		return true
	default:
		return false // let the Totem decoder say what is wrong
	}
	r.stats.Knet++
	if err := k.Packet.Decode(k.Plain); err != nil {
		out.Knet = k
		out.Err = fmt.Errorf("frame %d: %w", r.frame, err)
		return true
	}
	out.Knet = k
	if _, ok := r.knetHosts[out.Src.Addr()]; !ok && len(r.knetHosts) < maxKnetAddrs {
		if r.knetHosts == nil {
			r.knetHosts = map[netip.Addr]knet.HostID{}
		}
		r.knetHosts[out.Src.Addr()] = k.Packet.Host
	}
	switch k.Packet.Type {
	case knet.TypeData:
		flow := r.knetFlowOf(k.Packet.Host, out.Dst.Addr())
		rx := r.knetRx[flow]
		if rx == nil && len(r.knetRx) >= maxKnetFlows {
			// A hostile file could name 65536 hosts times any number of addresses: past
			// this many flows the reader stops reassembling (and says so per packet).
			out.Err = fmt.Errorf("frame %d: more than %d knet sender/receiver pairs", r.frame, maxKnetFlows)
			return true
		}
		if rx == nil {
			if r.knetRx == nil {
				r.knetRx = map[knetFlow]*knet.HostRx{}
			}
			rx = knet.NewHostRx(0)
			r.knetRx[flow] = rx
		}
		msg, res := rx.Data(&k.Packet)
		k.Rx = res
		if res != knet.RxDeliver {
			return true
		}
		if k.Packet.Fragmented() {
			msg = bytes.Clone(msg) // HostRx reuses its buffer; the Packet owns its bytes
		}
		k.Message = msg
		r.stats.KnetMessages++
		totems, err := decodeTotems(msg)
		if err != nil {
			out.Err = fmt.Errorf("frame %d: knet message: %w", r.frame, err)
			return true
		}
		out.Totem = totems.outer
		out.Inner, out.InnerErr = totems.inner, totems.innerErr
	case knet.TypePing:
		if rx := r.knetRx[r.knetFlowOf(k.Packet.Host, out.Dst.Addr())]; rx != nil {
			rx.Ping(&k.Packet)
		}
	}
	return true
}
