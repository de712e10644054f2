package knet

import (
	"errors"
	"fmt"
)

// Path MTU constants of libknet (onwire.h, transport_udp.h, transport_sctp.h).
const (
	PMTUDMinMTUv4   = 576 // KNET_PMTUD_MIN_MTU_V4
	PMTUDOverheadV4 = 20  // IPv4 header
	PMTUDOverheadV6 = 40  // IPv6 header
	UDPOverhead     = 8
	// sctpOverhead is KNET_PMTUD_SCTP_OVERHEAD: libknet sizes its failsafe MTU for the
	// worst transport (SCTP over IPv6) whatever the link uses.
	sctpOverhead = 12 + 16
)

// sizes of c's overhead parts (nil: no crypto).
func cryptoSizes(c *Crypto) (block, salt, hash int) {
	if c == nil {
		return 0, 0, 0
	}
	if c.block != nil {
		block, salt = 16, SaltSize
	}
	return block, salt, c.cfg.Hash.Size()
}

// DataMTU is libknet's calc_max_data_outlen: the user bytes one DATA packet can carry when
// the knet packet, encrypted, may take onwire bytes (the link MTU less the IP and UDP
// headers). It keeps room for the whole header union (HeaderAllSize) and, with a cipher,
// stays one byte short of a block boundary so that padding never adds a block.
func DataMTU(c *Crypto, onwire int) int {
	block, salt, hash := cryptoSizes(c)
	out := onwire
	if block != 0 {
		out -= salt + hash
		out -= out%block + 1
		out += salt + hash
	}
	return out - (HeaderAllSize + salt + hash)
}

// MinDataMTU is calc_min_mtu, the data MTU knet uses until PMTUd has measured a link:
// 576 bytes less IPv6 and SCTP headers, so 482 without crypto and 421 with aes256/sha256
// (the fragment size of the captures' service-sync messages at formation).
func MinDataMTU(c *Crypto) int {
	return DataMTU(c, PMTUDMinMTUv4-(PMTUDOverheadV6+sctpOverhead))
}

// sealedLen is calc_data_outlen: the encrypted size of a plain-byte knet packet.
func sealedLen(c *Crypto, plain int) int {
	block, salt, hash := cryptoSizes(c)
	if block != 0 {
		plain += block - plain%block
	}
	return plain + salt + hash
}

// UDPDataMTU is the data MTU of a UDP link whose IP MTU is ipMTU (1500 on Ethernet: 1446
// without crypto, 1397 with aes256/sha256, as the captures show after PMTUd).
func UDPDataMTU(c *Crypto, ipMTU int, ipv6 bool) int {
	return DataMTU(c, ipMTU-ipOverhead(ipv6)-UDPOverhead)
}

func ipOverhead(ipv6 bool) int {
	if ipv6 {
		return PMTUDOverheadV6
	}
	return PMTUDOverheadV4
}

// NewPMTUDProbe is the PMTUd packet libknet sends to learn whether IP packets of ipSize
// bytes pass on a UDP link: its size field says ipSize (recomputed from the data MTU that
// size allows, which can round it down with a cipher), and it is zero-filled so that,
// encrypted with c, the IP packet is that size. With aes256/sha256 and 1500 bytes the
// plaintext is 1423 bytes and the UDP payload 1472.
func NewPMTUDProbe(self HostID, link uint8, c *Crypto, ipSize int, ipv6 bool) (Packet, error) {
	over := ipOverhead(ipv6) + UDPOverhead
	app := DataMTU(c, ipSize-over)
	if app <= 0 || ipSize > 65535 {
		return Packet{}, fmt.Errorf("knet: no PMTUd probe of %d bytes", ipSize)
	}
	size := sealedLen(c, app+HeaderAllSize) + over
	p := Packet{Version: Version1, Type: TypePMTUD, Host: self, Link: link, Size: uint16(size)}
	p.Data = make([]byte, app+HeaderAllSize-PMTUDHeaderSize)
	return p, nil
}

// Tx is a node's DATA send side: one seq counter for every destination and channel (+1
// per user message, 0 skipped on wrap) and fragmentation at the data MTU.
type Tx struct {
	Self HostID
	seq  uint16
}

// Seq is the last seq number used (0 before the first message): what pings carry.
func (t *Tx) Seq() uint16 { return t.seq }

// SetSeq sets the counter (a node restoring state, or a test replaying a capture).
func (t *Tx) SetSeq(s uint16) { t.seq = s }

// Errors of Send.
var (
	ErrMessageSize = errors.New("knet: message empty or larger than MaxPacketSize")
	ErrMTU         = errors.New("knet: data MTU too small for this message (more than 255 fragments)")
)

// Send appends to dst the DATA packets that carry msg: one packet with frag_num 1 and
// frag_seq 0 when it fits mtu user bytes, else ceil(len/mtu) fragments of mtu bytes (the
// last one shorter) with frag_seq 1..n, all with the message's seq. The packets' Data
// alias msg. forcePing reports libknet's rule that every SEQ_MAX/8-th message is followed
// by an untimed ping to every host (Links.ForcePings).
func (t *Tx) Send(dst []Packet, msg []byte, mtu int, bcast bool, channel int8) (pkts []Packet, forcePing bool, err error) {
	if len(msg) == 0 || len(msg) > MaxPacketSize {
		return dst, false, ErrMessageSize
	}
	if mtu <= 0 || (len(msg)+mtu-1)/mtu > 255 {
		return dst, false, ErrMTU
	}
	t.seq++
	if t.seq == 0 {
		t.seq++
	}
	n := (len(msg) + mtu - 1) / mtu
	if n == 1 {
		dst = append(dst, NewData(t.Self, t.seq, bcast, channel, msg))
	} else {
		for k := 1; k <= n; k++ {
			p := NewData(t.Self, t.seq, bcast, channel, msg[(k-1)*mtu:min(k*mtu, len(msg))])
			p.FragNum, p.FragSeq = uint8(n), uint8(k)
			dst = append(dst, p)
		}
	}
	return dst, t.seq%(seqMax/8) == 0, nil
}
