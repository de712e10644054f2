package capture

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/ip6defrag"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/gototem/gototem/knet"
)

// Packet is one datagram of a capture to or from a Totem port: a Totem datagram (udp,
// udpu) or a knet packet (Knet set). For a Totem datagram exactly one of Totem and Err is
// set. A knet packet has Totem set when it completes a DATA message (the Totem packet
// inside), Err when it is not a valid knet packet or its message is not valid Totem, and
// neither for a ping, pong, PMTUd packet, held fragment or duplicate.
type Packet struct {
	// Frame is the 1-based frame number in the file (for an IP-fragmented datagram, the
	// frame that completed it), as Wireshark numbers frames.
	Frame    int
	Time     time.Time
	Src, Dst netip.AddrPort
	// Data is the UDP payload (the whole Totem datagram, or the knet packet as sent); it
	// belongs to the Packet.
	Data []byte
	// Knet is the knet view of a knet packet, nil for a bare Totem datagram.
	Knet  *Knet
	Totem *Totem
	// Err says why Data is not a valid Totem message; it wraps a *srp.DecodeError.
	Err error
	// Inner is the old-ring MCAST carried by an encapsulated MCAST (nil otherwise), and
	// InnerErr why it did not decode.
	Inner    *Totem
	InnerErr error
}

// Message is the decoded message, nil when Err is set.
func (p *Packet) Message() Message {
	if p.Totem == nil {
		return nil
	}
	return p.Totem.Message
}

// Stats counts what a Reader saw besides the Totem datagrams it returned.
type Stats struct {
	Frames      int // every frame in the file
	Totem       int // Totem datagrams returned (decoded or not)
	Undecodable int // of those, how many failed to decode
	Fragments   int // IP fragments held for reassembly (not counted as frames of their own)
	NonUDP      int // frames without a UDP layer (ARP, ICMP, link-layer garbage)
	OtherUDP    int // UDP datagrams that are not Totem or knet (by content, or by port with SetPorts)
	// Knet counts the datagrams taken for knet packets (in Totem), KnetMessages the
	// messages their DATA packets completed.
	Knet         int
	KnetMessages int
}

// Reader returns the Totem datagrams of a pcap file in file order.
type Reader struct {
	pr    *pcapgo.Reader
	ports map[uint16]bool
	frame int
	stats Stats
	defr4 *ip4defrag.IPv4Defragmenter
	defr6 *ip6defrag.IPv6Defragmenter

	knetCrypto *knet.Crypto
	scratch    []byte // wanted's trial opening of a datagram on an unknown port
	knetRx     map[knetFlow]*knet.HostRx
	knetHosts  map[netip.Addr]knet.HostID // address -> the host id packets from it carry
}

// NewReader reads a classic pcap stream (the format tcpdump -w writes). A UDP datagram is
// taken for Totem by its content, on any port: the Totem magic (0xc070 in either byte order),
// a well-formed clear knet packet, or, with knet crypto set, one that opens with the key.
// Datagrams to or from DefaultPorts, the knet link ports and ports given to RegisterPort are
// taken whatever they hold, so a broken one is reported undecodable rather than ignored.
// SetPorts restricts the reader to given ports instead.
func NewReader(r io.Reader) (*Reader, error) {
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	return &Reader{
		pr:    pr,
		defr4: ip4defrag.NewIPv4Defragmenter(),
		defr6: ip6defrag.NewIPv6Defragmenter(),
	}, nil
}

// Stats reports the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// SetPorts makes the reader take exactly the UDP datagrams to or from ports, whatever they
// hold (`gototem pcap --port`), instead of recognising Totem and knet by content. An empty
// list restores recognition by content.
func (r *Reader) SetPorts(ports []uint16) {
	r.ports = nil
	if len(ports) > 0 {
		r.ports = map[uint16]bool{}
		for _, p := range ports {
			r.ports[p] = true
		}
	}
}

// wanted decides whether a UDP datagram is read as Totem (bare or in knet).
func (r *Reader) wanted(src, dst uint16, payload []byte) bool {
	if r.ports != nil {
		return r.ports[src] || r.ports[dst]
	}
	if layers.UDPPort(src).LayerType() == LayerTypeTotem || layers.UDPPort(dst).LayerType() == LayerTypeTotem ||
		isKnetLinkPort(src) || isKnetLinkPort(dst) {
		return true
	}
	if isTotemMagic(payload) || looksKnetClear(payload) {
		return true
	}
	if r.knetCrypto != nil && r.knetCrypto.Enabled() {
		out, err := r.knetCrypto.Open(r.scratch[:0], payload)
		if err != nil {
			return false
		}
		r.scratch = out[:0]
		return true
	}
	return false
}

// Next returns the next Totem datagram, or io.EOF after the last one. Any other error is a
// broken file (truncated record, bad header) and ends the reading.
func (r *Reader) Next() (Packet, error) {
	for {
		data, ci, err := r.pr.ReadPacketData()
		if err == io.EOF {
			return Packet{}, io.EOF
		}
		if err != nil {
			return Packet{}, fmt.Errorf("capture: frame %d: %w", r.frame+1, err)
		}
		r.frame++
		r.stats.Frames++
		pkt, ok := r.datagram(gopacket.NewPacket(data, r.pr.LinkType(), gopacket.NoCopy), ci.Timestamp)
		if !ok {
			continue
		}
		r.stats.Totem++
		if pkt.Err != nil {
			r.stats.Undecodable++
		}
		return pkt, nil
	}
}

// All iterates over the remaining Totem datagrams; a read error is yielded once, last.
func (r *Reader) All() iter.Seq2[Packet, error] {
	return func(yield func(Packet, error) bool) {
		for {
			p, err := r.Next()
			if err == io.EOF {
				return
			}
			if !yield(p, err) || err != nil {
				return
			}
		}
	}
}

// ReadFile returns every Totem datagram of the pcap file at path, and the reader's counts.
func ReadFile(path string) ([]Packet, Stats, error) { return ReadFileOptions(path, Options{}) }

// Options are the Reader settings ReadFileOptions applies.
type Options struct {
	// KnetCrypto opens encrypted knet packets (see Reader.SetKnetCrypto).
	KnetCrypto *knet.Crypto
	// Ports, when set, are the only UDP ports read (see Reader.SetPorts).
	Ports []uint16
}

// ReadFileOptions is ReadFile with settings.
func ReadFileOptions(path string, o Options) ([]Packet, Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Stats{}, fmt.Errorf("capture: %w", err)
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		return nil, Stats{}, fmt.Errorf("capture: %s: %w", path, errors.Unwrap(err))
	}
	r.SetKnetCrypto(o.KnetCrypto)
	r.SetPorts(o.Ports)
	var out []Packet
	for p, err := range r.All() {
		if err != nil {
			return out, r.Stats(), fmt.Errorf("capture: %s: %w", path, errors.Unwrap(err))
		}
		out = append(out, p)
	}
	return out, r.Stats(), nil
}

// datagram extracts the Totem datagram from one frame, reassembling IP fragments first
// (large joins and commit tokens are not bounded by the MTU). ok is false for frames that
// carry no Totem datagram, or only part of one.
func (r *Reader) datagram(p gopacket.Packet, ts time.Time) (Packet, bool) {
	var src, dst netip.Addr
	switch {
	case p.Layer(layers.LayerTypeIPv4) != nil:
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			r.stats.Fragments++
			whole, err := r.defr4.DefragIPv4WithTimestamp(ip, ts)
			if err != nil || whole == nil {
				return Packet{}, false
			}
			r.stats.Fragments-- // the completing fragment stands for the datagram
			p = gopacket.NewPacket(whole.Payload, layers.LayerTypeUDP, gopacket.NoCopy)
			ip = whole
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
	case p.Layer(layers.LayerTypeIPv6) != nil:
		ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if fl := p.Layer(layers.LayerTypeIPv6Fragment); fl != nil {
			r.stats.Fragments++
			whole := r.defr6.DefragIPv6(ip, fl.(*layers.IPv6Fragment))
			if whole == nil {
				return Packet{}, false
			}
			r.stats.Fragments--
			p = gopacket.NewPacket(whole.Payload, layers.LayerTypeUDP, gopacket.NoCopy)
			ip = whole
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
	}
	ul := p.Layer(layers.LayerTypeUDP)
	if ul == nil {
		r.stats.NonUDP++
		return Packet{}, false
	}
	udp := ul.(*layers.UDP)
	if !r.wanted(uint16(udp.SrcPort), uint16(udp.DstPort), udp.Payload) {
		r.stats.OtherUDP++
		return Packet{}, false
	}
	out := Packet{
		Frame: r.frame,
		Time:  ts,
		Src:   netip.AddrPortFrom(src, uint16(udp.SrcPort)),
		Dst:   netip.AddrPortFrom(dst, uint16(udp.DstPort)),
		Data:  udp.Payload,
	}
	if r.knetDatagram(&out, udp.Payload) {
		return out, true
	}
	// Decode through gopacket's layer chain when it got there; otherwise (empty payload,
	// a port precedence that picked another decoder) decode directly, which also yields
	// the precise error.
	var totems []*Totem
	for _, l := range p.Layers() {
		if t, ok := l.(*Totem); ok {
			totems = append(totems, t)
		}
	}
	if len(totems) == 0 || !sameStart(totems[0].Contents, udp.Payload) {
		d, err := decodeTotems(udp.Payload)
		if err != nil {
			out.Err = fmt.Errorf("frame %d: %w", r.frame, err)
			return out, true
		}
		out.Totem, out.Inner, out.InnerErr = d.outer, d.inner, d.innerErr
		return out, true
	} else if len(totems) == 1 && totems[0].NextLayerType() == LayerTypeTotem {
		if el := p.ErrorLayer(); el != nil {
			out.InnerErr = el.Error()
		}
	}
	out.Totem = totems[0]
	if len(totems) > 1 {
		out.Inner = totems[1]
	}
	return out, true
}

// decodedTotems is a Totem datagram decoded without gopacket: the message and, for an
// encapsulated MCAST, the old-ring message inside it.
type decodedTotems struct {
	outer, inner *Totem
	innerErr     error
}

func decodeTotems(b []byte) (decodedTotems, error) {
	t := &Totem{}
	if err := t.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		return decodedTotems{}, err
	}
	d := decodedTotems{outer: t}
	if t.NextLayerType() == LayerTypeTotem {
		inner := &Totem{}
		if err := inner.DecodeFromBytes(t.Payload(), gopacket.NilDecodeFeedback); err != nil {
			d.innerErr = err
		} else {
			d.inner = inner
		}
	}
	return d, nil
}

// sameStart reports whether a and b begin at the same byte of memory, i.e. the layer
// gopacket decoded is this UDP datagram's payload and not something nested deeper.
func sameStart(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}
