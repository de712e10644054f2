package capture

import (
	"bytes"
	"testing"

	"github.com/gototem/gototem/srp"
)

// Totem is recognised by its content on any port (a cluster on mcastport 7777 decodes without
// options); other UDP traffic is not; SetPorts (gototem pcap --port) forces exactly the given
// ports, so a broken datagram there is reported undecodable and Totem elsewhere is ignored.
func TestTotemByContentOnAnyPort(t *testing.T) {
	tok := (&srp.ORFToken{Header: srp.Header{NodeID: 2}, RingID: srp.RingID{Rep: 1, Seq: 9}, TokenSeq: 0xa2}).AppendEncode(nil)
	dns := []byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}
	file := pcapOf(t,
		udp4(t, "10.77.0.2", "10.77.0.3", 7777, 7777, tok),
		udp4(t, "10.77.0.2", "10.77.0.9", 40000, 53, dns),
		udp4(t, "10.77.0.2", "10.77.0.3", 7777, 7777, []byte{0xde, 0xad}),
		udp4(t, "10.77.0.2", "10.77.0.3", 5405, 5405, tok),
	)
	pkts, st, err := readAll(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 2 || pkts[0].Dst.Port() != 7777 || pkts[0].Err != nil || pkts[1].Dst.Port() != 5405 || st.OtherUDP != 2 {
		t.Fatalf("by content: %d packets (%+v), stats %+v; want the tokens on 7777 and 5405, DNS and junk left out", len(pkts), pkts, st)
	}
	if tk, ok := pkts[0].Message().(*srp.ORFToken); !ok || tk.TokenSeq != 0xa2 {
		t.Fatalf("the token on port 7777 decoded as %T", pkts[0].Message())
	}

	r, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	r.SetPorts([]uint16{7777})
	var got []Packet
	for p, err := range r.All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if len(got) != 2 || got[0].Err != nil || got[1].Err == nil || r.Stats().OtherUDP != 2 {
		t.Fatalf("--port 7777: %d packets, stats %+v; want the token and the junk (undecodable), nothing else", len(got), r.Stats())
	}
}
