package stack

import (
	"bytes"
	"testing"

	"github.com/gototem/gototem/srp"
)

// TestStraddleRequeuesCutMessage drives straddle by hand: a sender's message is cut across
// packets, its first packet is delivered (the old ring) and the rest is still queued when the
// configuration changes. straddle must take the rest out, queue the whole message in front in
// self-contained packets, and strip the rest from the packet that also carries the next
// message; a receiver that restarted its assemblies then reads the queue as complete messages.
func TestStraddleRequeuesCutMessage(t *testing.T) {
	p, err := srp.NewProcessor(srp.DefaultConfig(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	p.Start(0)
	f, _ := newFraming(1500)
	f.self = 1
	cut := bytes.Repeat([]byte("C"), 3000)
	next := []byte("next message")
	for _, b := range [][]byte{cut, next} {
		if err := f.send(p, 0, "a", b, srp.Agreed); err != nil {
			t.Fatal(err)
		}
	}
	f.flush(p, 0)
	q := p.TakeQueued()
	if len(q) < 3 {
		t.Fatalf("%d packets queued, want the cut message over at least 3", len(q))
	}
	// The old ring delivered the first packet at the sender itself (its own assembly now
	// holds the message's head); the rest goes back to the queue as if never sent.
	deliver := func(rx *framing, pkt []byte) (got [][]byte) {
		rx.deliver(&srp.Message{Sender: 1, Payload: pkt}, func(_ srp.NodeID, _ string, body []byte, _ bool) {
			got = append(got, bytes.Clone(body))
		})
		return got
	}
	if got := deliver(f, q[0].Payload); len(got) != 0 {
		t.Fatalf("first packet delivered %d messages", len(got))
	}
	p.Requeue(q[1:])
	f.straddle(p)
	f.restartAssemblies(nil) // the sender's own stream restarts with continuation 0
	// The whole message is cut across packets again, so it is the first split on record
	// (a second change may fall between its new packets).
	if len(f.splits) != 1 || !bytes.HasSuffix(f.splits[0].framed, cut) {
		t.Errorf("%d split records after the straddle, want the requeued message first", len(f.splits))
	}
	if f.drops.Straddle != 0 {
		t.Fatalf("straddle dropped: %+v", f.drops)
	}
	rx, _ := newFraming(1500) // a member new to the sender
	var got [][]byte
	for _, m := range p.TakeQueued() {
		got = append(got, deliver(rx, m.Payload)...)
	}
	if len(got) != 2 || !bytes.Equal(got[0], cut) || !bytes.Equal(got[1], next) {
		t.Fatalf("a new member read %d messages (%v), want the cut one whole then the next", len(got), lens(got))
	}
	if rx.dropped() != 0 {
		t.Errorf("receiver dropped %+v", rx.drops)
	}
}

func lens(bs [][]byte) []int {
	var n []int
	for _, b := range bs {
		n = append(n, len(b))
	}
	return n
}
