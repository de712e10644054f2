package capture

import (
	"errors"
	"strings"
	"testing"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
)

// TestReaderKnetScenario: synthetic knet traffic the real captures do not hold: link 1's
// port, a copy of a DATA packet (active mode sends one per link), the same message to a
// second receiver (its own reassembly state, while the copy on link 1 meets the same
// de-duplication window as the one on link 0, the receiver being known by its host id), a fragment with impossible fields, a knet
// packet whose user data is not Totem, and an unknown knet type.
func TestReaderKnetScenario(t *testing.T) {
	join := (&srp.Join{Header: srp.Header{NodeID: 1}, SystemFrom: 1, RingSeq: 9, ProcList: []srp.NodeID{1, 2}}).AppendEncode(nil)
	ping := knet.NewPing(1, 1, 5, 6, 0, true)
	data := knet.NewData(1, 7, true, 0, join)
	f1 := knet.NewData(1, 8, true, 0, join[:16])
	f1.FragNum, f1.FragSeq = 2, 1
	f2 := knet.NewData(1, 8, true, 0, join[16:])
	f2.FragNum, f2.FragSeq = 2, 2
	bad := f2
	bad.FragSeq, bad.Seq = 3, 9
	notTotem := knet.NewData(1, 10, true, 0, []byte("hello, this is not a totem packet"))
	pong := ping.Pong(2)
	frames := [][]byte{
		udp4(t, "10.78.0.1", "10.78.0.2", 5406, 5406, ping.AppendEncode(nil)), // link 1
		udp4(t, "10.78.0.2", "10.78.0.1", 5406, 5406, pong.AppendEncode(nil)), // shows 10.78.0.2 is host 2
		udp4(t, "10.77.0.2", "10.77.0.1", 5405, 5405, pong.AppendEncode(nil)), // and so is 10.77.0.2
		udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, data.AppendEncode(nil)),
		udp4(t, "10.78.0.1", "10.78.0.2", 5406, 5406, data.AppendEncode(nil)), // copy on link 1
		udp4(t, "10.77.0.1", "10.77.0.3", 5405, 5405, data.AppendEncode(nil)), // to host 3
		udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, f2.AppendEncode(nil)),
		udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, f1.AppendEncode(nil)),
		udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, bad.AppendEncode(nil)),
		udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, notTotem.AppendEncode(nil)),
		udp4(t, "10.77.0.1", "10.77.0.2", 5407, 5407, []byte{1, 0x85, 0, 1, 0, 0, 0, 0, 0}),
	}
	pkts, st, err := readAll(t, pcapOf(t, frames...))
	if err != nil {
		t.Fatal(err)
	}
	pkts = append(pkts[:1], pkts[3:]...) // the pongs
	if len(pkts) != 9 || st.Knet != 10 || st.KnetMessages != 4 || st.Undecodable != 2 {
		t.Fatalf("%d packets, stats %+v", len(pkts), st)
	}
	check := func(i int, typ knet.PacketType, rx knet.RxResult, totem bool) {
		t.Helper()
		p := pkts[i]
		if p.Knet == nil || p.Knet.Packet.Type != typ || (typ == knet.TypeData && p.Knet.Rx != rx) || (p.Totem != nil) != totem {
			t.Errorf("packet %d: knet %+v totem %v err %v", i, p.Knet, p.Totem, p.Err)
		}
	}
	check(0, knet.TypePing, 0, false)
	check(1, knet.TypeData, knet.RxDeliver, true)
	check(2, knet.TypeData, knet.RxDuplicate, false)
	check(3, knet.TypeData, knet.RxDeliver, true)
	check(4, knet.TypeData, knet.RxHeld, false)
	check(5, knet.TypeData, knet.RxDeliver, true)
	check(6, knet.TypeData, knet.RxMalformed, false)
	if p := pkts[5]; p.Err != nil || string(p.Knet.Message) != string(join) {
		t.Errorf("reassembled join: %v", p.Err)
	}
	if p := pkts[7]; p.Knet == nil || p.Knet.Rx != knet.RxDeliver || !errors.Is(p.Err, srp.ErrBadMagic) {
		t.Errorf("non-Totem message: rx %v err %v", p.Knet.Rx, p.Err)
	}
	// Type 0x85 is not knet: the Totem decoder reports it (not counted as knet).
	if p := pkts[8]; p.Knet != nil || p.Err == nil {
		t.Errorf("unknown type: knet %v err %v", p.Knet, p.Err)
	}
}

// TestReaderKnetFlowCap: a file naming more sender/receiver pairs than maxKnetFlows (a
// hostile or corrupt capture: a cluster has a few dozen) stops growing the reader's state
// and says so per packet, instead of allocating without bound.
func TestReaderKnetFlowCap(t *testing.T) {
	var frames [][]byte
	for h := 1; h <= maxKnetFlows+5; h++ {
		d := knet.NewData(knet.HostID(h), 1, true, 0, []byte("x"))
		frames = append(frames, udp4(t, "10.77.0.1", "10.77.0.2", 5405, 5405, d.AppendEncode(nil)))
	}
	pkts, st, err := readAll(t, pcapOf(t, frames...))
	if err != nil {
		t.Fatal(err)
	}
	// Every message ("x") is not Totem, so every packet has an error; the last five
	// because of the cap.
	if st.Undecodable != len(pkts) || len(pkts) != maxKnetFlows+5 {
		t.Errorf("%d packets, stats %+v", len(pkts), st)
	}
	capped := 0
	for _, p := range pkts {
		if p.Err != nil && strings.Contains(p.Err.Error(), "sender/receiver pairs") {
			capped++
		}
	}
	if capped != 5 {
		t.Errorf("%d packets refused at the cap, want 5", capped)
	}
}
