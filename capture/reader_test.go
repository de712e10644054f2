package capture

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/gototem/gototem/srp"
)

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	t0   = time.Unix(1795292978, 0).UTC()
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// udp4 is an Ethernet/IPv4/UDP frame carrying payload.
func udp4(t testing.TB, src, dst string, sport, dport uint16, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 1, Protocol: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4},
		ip, u, gopacket.Payload(payload))
}

// udp4Fragments is the same datagram split into IPv4 fragments of at most 1480 bytes, as
// the kernel sends a commit token larger than the MTU.
func udp4Fragments(t testing.TB, src, dst string, sport, dport uint16, payload []byte) [][]byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 1, Protocol: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	dgram := serialize(t, u, gopacket.Payload(payload))
	var out [][]byte
	for off := 0; off < len(dgram); off += 1480 {
		end := min(off+1480, len(dgram))
		fip := *ip
		fip.Id = 0x4242
		fip.FragOffset = uint16(off / 8)
		if end < len(dgram) {
			fip.Flags = layers.IPv4MoreFragments
		}
		out = append(out, serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4},
			&fip, gopacket.Payload(dgram[off:end])))
	}
	return out
}

func udp6(t testing.TB, src, dst string, sport, dport uint16, payload []byte) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6},
		ip, u, gopacket.Payload(payload))
}

func arp(t testing.TB) []byte {
	return serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
			ProtAddressSize: 4, Operation: layers.ARPRequest, SourceHwAddress: macA, SourceProtAddress: []byte{10, 77, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 77, 0, 2}})
}

// pcapOf writes frames 1 ms apart into a classic pcap file.
func pcapOf(t testing.TB, frames ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func readAll(t *testing.T, file []byte) ([]Packet, Stats, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var out []Packet
	for p, err := range r.All() {
		if err != nil {
			return out, r.Stats(), err
		}
		out = append(out, p)
	}
	return out, r.Stats(), nil
}

// TestReaderScenario runs one synthetic capture holding every kind of frame the reader
// must tell apart, and checks each Totem datagram's addressing, decoding and the counts of
// what was skipped.
func TestReaderScenario(t *testing.T) {
	join := (&srp.Join{Header: srp.Header{NodeID: 1}, SystemFrom: 1, RingSeq: 9, ProcList: []srp.NodeID{1, 2}}).AppendEncode(nil)
	addr := make([]srp.NodeID, srp.ProcessorCountMax)
	for i := range addr {
		addr[i] = srp.NodeID(i + 1)
	}
	bigCommit := (&srp.CommitToken{Header: srp.Header{NodeID: 1}, RingID: srp.RingID{Rep: 1, Seq: 0x30}, Addr: addr}).AppendEncode(nil)
	inner := (&srp.Mcast{Header: srp.Header{Encapsulated: srp.NotEncapsulated, NodeID: 2}, SystemFrom: 2, Seq: 7,
		RingID: srp.RingID{Rep: 1, Seq: 9}, Payload: []byte("old ring data")}).AppendEncode(nil)
	encap := (&srp.Mcast{Header: srp.Header{Encapsulated: srp.Encapsulated, NodeID: 1}, SystemFrom: 1, Seq: 1,
		RingID: srp.RingID{Rep: 1, Seq: 0xd}, Payload: inner}).AppendEncode(nil)
	badInner := (&srp.Mcast{Header: srp.Header{Encapsulated: srp.Encapsulated, NodeID: 1}, SystemFrom: 1,
		Payload: []byte("not a totem message")}).AppendEncode(nil)

	frags := udp4Fragments(t, "10.77.0.1", "10.77.0.2", 5405, 5405, bigCommit)
	if len(frags) < 8 {
		t.Fatalf("expected a fragmented commit token, got %d frames", len(frags))
	}
	frames := [][]byte{
		arp(t), // 1
		udp4(t, "10.77.0.1", "10.77.0.2", 40000, 53, []byte("dns")),            // 2
		udp4(t, "10.77.0.1", "10.77.0.2", 44583, 5405, join),                   // 3: udpu join from an ephemeral port
		udp4(t, "10.77.0.3", "239.192.90.134", 5404, 5405, []byte{0xfe, 0xfe}), // 4: garbage on the Totem port
		udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, encap),                   // 5: recovery re-send
		udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, badInner),                // 6
		udp6(t, "fd00::1", "fd00::2", 5405, 5405, join),                        // 7
	}
	frames = append(frames, frags...) // 8.. : one datagram when the last arrives

	pkts, st, err := readAll(t, pcapOf(t, frames...))
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Frames: 7 + len(frags), Totem: 6, Undecodable: 1, Fragments: len(frags) - 1, NonUDP: 1, OtherUDP: 1}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if len(pkts) != 6 {
		t.Fatalf("%d packets, want 6", len(pkts))
	}

	if p := pkts[0]; p.Frame != 3 || p.Src != netip.MustParseAddrPort("10.77.0.1:44583") ||
		p.Dst != netip.MustParseAddrPort("10.77.0.2:5405") || !p.Time.Equal(t0.Add(2*time.Millisecond)) ||
		p.Err != nil || !bytes.Equal(p.Data, join) {
		t.Errorf("join packet %+v", p)
	} else if j := p.Message().(*srp.Join); j.RingSeq != 9 || len(j.ProcList) != 2 {
		t.Errorf("join decoded as %+v", j)
	}

	if p := pkts[1]; p.Err == nil || !errors.Is(p.Err, srp.ErrTooShort) || p.Totem != nil || p.Message() != nil {
		t.Errorf("garbage packet: err %v totem %v", p.Err, p.Totem)
	}

	if p := pkts[2]; p.Err != nil || p.Inner == nil || p.InnerErr != nil {
		t.Errorf("encapsulated mcast: err %v inner %v innerErr %v", p.Err, p.Inner, p.InnerErr)
	} else if m := p.Inner.Message.(*srp.Mcast); m.Seq != 7 || m.RingID != (srp.RingID{Rep: 1, Seq: 9}) || string(m.Payload) != "old ring data" {
		t.Errorf("inner mcast %+v", m)
	}

	if p := pkts[3]; p.Err != nil || p.Inner != nil || !errors.Is(p.InnerErr, srp.ErrBadMagic) {
		t.Errorf("bad encapsulation: err %v inner %v innerErr %v", p.Err, p.Inner, p.InnerErr)
	}

	if p := pkts[4]; p.Src != netip.MustParseAddrPort("[fd00::1]:5405") || p.Err != nil {
		t.Errorf("ipv6 packet: src %v err %v", p.Src, p.Err)
	}

	if p := pkts[5]; p.Frame != 7+len(frags) || p.Err != nil || !bytes.Equal(p.Data, bigCommit) {
		t.Errorf("reassembled commit token: frame %d err %v len %d", p.Frame, p.Err, len(p.Data))
	} else if c := p.Message().(*srp.CommitToken); len(c.Addr) != srp.ProcessorCountMax {
		t.Errorf("reassembled commit token has %d members", len(c.Addr))
	}
}

// TestReaderBrokenFiles: a file that is not a pcap, and one cut in the middle of a record,
// give errors (the packets before the cut are still returned), never a panic.
func TestReaderBrokenFiles(t *testing.T) {
	if _, err := NewReader(bytes.NewReader([]byte("not a pcap file at all"))); err == nil {
		t.Error("NewReader accepted garbage")
	}
	join := (&srp.Join{Header: srp.Header{NodeID: 1}, SystemFrom: 1}).AppendEncode(nil)
	file := pcapOf(t, udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, join), udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, join))
	pkts, _, err := readAll(t, file[:len(file)-10])
	if err == nil || errors.Is(err, io.EOF) {
		t.Errorf("truncated file: err %v", err)
	}
	if len(pkts) != 1 {
		t.Errorf("truncated file: %d packets before the cut, want 1", len(pkts))
	}
	if _, _, err := ReadFile("/nonexistent/x.pcap"); err == nil {
		t.Error("ReadFile of a missing file succeeded")
	}
}

// TestTotemLayerInGopacket: plain gopacket decoding (no Reader) finds the Totem layer on
// the default ports and on a port added with RegisterPort, but not elsewhere.
func TestTotemLayerInGopacket(t *testing.T) {
	tok := (&srp.ORFToken{Header: srp.Header{NodeID: 2}, RingID: srp.RingID{Rep: 1, Seq: 9}, TokenSeq: 0xa2}).AppendEncode(nil)
	decode := func(port uint16) *Totem {
		p := gopacket.NewPacket(udp4(t, "10.77.0.2", "10.77.0.3", 40000, port, tok), layers.LayerTypeEthernet, gopacket.Default)
		if l := p.Layer(LayerTypeTotem); l != nil {
			return l.(*Totem)
		}
		return nil
	}
	if tl := decode(5405); tl == nil || tl.Message.(*srp.ORFToken).TokenSeq != 0xa2 || tl.LayerType().String() != "Totem" {
		t.Fatalf("port 5405: layer %v", tl)
	}
	if tl := decode(6123); tl != nil {
		t.Fatalf("port 6123 decoded as Totem before RegisterPort")
	}
	RegisterPort(6123)
	if tl := decode(6123); tl == nil {
		t.Fatalf("port 6123 not decoded after RegisterPort")
	}
}

// TestTotemDecodingLayerReuse: as a gopacket.DecodingLayer the Totem layer decodes
// successive datagrams into the same value, switching message type as needed.
func TestTotemDecodingLayerReuse(t *testing.T) {
	var tl Totem
	var _ gopacket.DecodingLayer = &tl
	for _, b := range [][]byte{
		(&srp.Join{Header: srp.Header{NodeID: 1}, ProcList: []srp.NodeID{1}}).AppendEncode(nil),
		(&srp.MergeDetect{Header: srp.Header{NodeID: 1}}).AppendEncode(nil),
		(&srp.Join{Header: srp.Header{NodeID: 2}, ProcList: []srp.NodeID{1, 2}}).AppendEncode(nil),
	} {
		if err := tl.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			t.Fatal(err)
		}
		if tl.Header.Type != srp.MessageType(b[3]) || messageType(tl.Message) != tl.Header.Type {
			t.Errorf("type %s, message %T", tl.Header.Type, tl.Message)
		}
	}
	if err := tl.DecodeFromBytes([]byte{1, 2, 3}, gopacket.NilDecodeFeedback); !errors.Is(err, srp.ErrTooShort) {
		t.Errorf("short datagram: %v", err)
	}
}
