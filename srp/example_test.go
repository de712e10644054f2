package srp_test

import (
	"fmt"
	"time"

	"github.com/gototem/gototem/srp"
)

// ExampleJoin shows the wire codec on the message a node multicasts in GATHER: node 2 of
// ring sequence 4 proposes {1,2,3} with node 3 failed. The datagram is corosync's
// little-endian join (memb_join), and PeekHeader is the check every receive path runs
// before looking at a type.
func ExampleJoin() {
	j := srp.Join{
		Header:     srp.Header{Type: srp.TypeJoin, NodeID: 2},
		SystemFrom: 2,
		RingSeq:    4,
		ProcList:   []srp.NodeID{1, 2, 3},
		FailedList: []srp.NodeID{3},
	}
	b := j.AppendEncode(nil)
	fmt.Println("bytes:", len(b), "=", j.EncodedLen())

	h, swapped, err := srp.PeekHeader(b)
	fmt.Println("header:", h.Type, "from", h.NodeID, "swapped", swapped, err)

	var got srp.Join
	if err := got.Decode(b); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("proc", got.ProcList, "failed", got.FailedList, "ring_seq", got.RingSeq, "leave", got.IsLeave())
	// Output:
	// bytes: 49 = 49
	// header: join from 2 swapped false <nil>
	// proc [1 2 3] failed [3] ring_seq 4 leave false
}

// ExampleORFToken round-trips the ORF token: the ring it circulates on, its seq and aru
// (with the node that set aru), and one retransmission request.
func ExampleORFToken() {
	t := srp.ORFToken{
		Header:   srp.Header{Type: srp.TypeORFToken, NodeID: 1},
		Seq:      42,
		TokenSeq: 7,
		ARU:      40,
		ARUAddr:  3,
		RingID:   srp.RingID{Rep: 1, Seq: 0x1c},
		RTRList:  []srp.RTRItem{{RingID: srp.RingID{Rep: 1, Seq: 0x1c}, Seq: 41}},
	}
	b := t.AppendEncode(nil)

	var got srp.ORFToken
	if err := got.Decode(b); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d bytes: ring %v seq %d token_seq %d aru %d (set by %d) rtr %d\n",
		len(b), got.RingID, got.Seq, got.TokenSeq, got.ARU, got.ARUAddr, len(got.RTRList))

	// A truncated token is refused with an error, never a panic.
	fmt.Println(got.Decode(b[:20]) != nil)
	// Output:
	// 73 bytes: ring 1.1c seq 42 token_seq 7 aru 40 (set by 3) rtr 1
	// true
}

// ExampleProcessor drives a one-node ring through the driver contract of api.go, in
// virtual time: every datagram is looped back to the node (ToAll always; ToNode here
// because the token of a one-node ring is addressed to its sender), and Tick is called at
// NextTick when nothing is in flight. The node forms its ring from GATHER, reaches
// OPERATIONAL, and delivers its own AGREED message after the Regular configuration.
func ExampleProcessor() {
	p, err := srp.NewProcessor(srp.DefaultConfig(1, 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	var (
		now      time.Duration
		inflight [][]byte
		state    srp.State
		sent     bool
	)
	p.Start(now)
	for i := 0; i < 10000; i++ {
		if s := p.State(); s != state {
			fmt.Println("state", s)
			state = s
		}
		rd := p.Ready()
		for _, m := range rd.Messages {
			inflight = append(inflight, append([]byte(nil), m.Data...))
		}
		for _, d := range rd.Deliveries {
			switch {
			case d.Config != nil:
				fmt.Println("configuration", d.Config.Kind, d.Config.Members, "ring", d.Config.RingID)
			case d.Message != nil:
				fmt.Printf("message from %d: %s\n", d.Message.Sender, d.Message.Payload)
				return
			}
		}
		next := rd.NextTick
		p.Advance()

		if state == srp.Operational && !sent {
			if err := p.Send(now, []byte("hello"), srp.Agreed); err != nil {
				fmt.Println(err)
				return
			}
			sent = true
			continue
		}
		if len(inflight) > 0 {
			d := inflight[0]
			inflight = inflight[1:]
			if err := p.Step(now, d); err != nil {
				fmt.Println(err)
				return
			}
			continue
		}
		if next == 0 {
			fmt.Println("no timer armed")
			return
		}
		now = max(now, next)
		p.Tick(now)
	}
	fmt.Println("no delivery")
	// Output:
	// state GATHER
	// state COMMIT
	// state RECOVERY
	// state OPERATIONAL
	// configuration transitional [] ring 1.5
	// configuration regular [1] ring 1.5
	// message from 1: hello
}
