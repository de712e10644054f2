package stack

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// TestCutMessageContinuesAcrossSameMembers: node 1 floods messages of three packets each
// while node 3 pauses past the token timeout and comes back before consensus runs out, so
// the ring re-forms with the same three members (no joiners) in the middle of a message.
// As corosync's totempg does, the sender continues the cut message in the new ring and every
// receiver goes on reassembling it: nothing is sent again whole. corosync receives no other
// way (a message sent again whole is "fragmented continuation 0 is not equal to assembly
// last_frag_num" there and thrown away with what follows; a gototem node that restarted its
// assemblies threw a corosync sender's continuation away: TestIPCCPGFloodPause). Every node
// must deliver every message, in the same order.
func TestCutMessageContinuesAcrossSameMembers(t *testing.T) {
	// The pause must fall while a message is cut: try a few phases, each a fresh ring.
	for try := 0; try < 8; try++ {
		nw := newNet(t, 3, false)
		nw.run(3 * time.Second)
		for id, s := range nw.nodes {
			if err := s.Join(nw.now, "g", 100+uint32(id)); err != nil {
				t.Fatal(err)
			}
			nw.collect(id)
		}
		nw.run(time.Second)
		sent := 0
		send := func(n int) {
			for i := 0; i < n; i++ {
				payload := append([]byte(fmt.Sprintf("m%05d-", sent)), bytes.Repeat([]byte{byte(sent)}, 3000)...)
				if err := nw.nodes[1].Send(nw.now, "g", 101, payload, srp.Agreed); err != nil {
					return // the ring is busy: later
				}
				sent++
				nw.collect(1)
			}
		}
		for i := 0; i < 40; i++ {
			send(2)
			nw.run(2 * time.Millisecond)
		}
		nw.run(time.Duration(try) * 3 * time.Millisecond)
		rings := nw.regulars(1)
		nw.down[3] = true // paused: datagrams to it are lost, its timers stand still
		for i := 0; i < 300; i++ {
			send(2)
			nw.run(5 * time.Millisecond)
		}
		nw.down[3] = false
		for i := 0; i < 200; i++ {
			send(2)
			nw.run(5 * time.Millisecond)
		}
		nw.run(5 * time.Second)
		if nw.regulars(1) == rings {
			t.Fatalf("try %d: the pause did not re-form the ring", try)
		}
		for id, s := range nw.nodes {
			if got := s.SRP().Members(); !slices.Equal(got, []srp.NodeID{1, 2, 3}) {
				t.Fatalf("try %d: node %d members %v, want the same three", try, id, got)
			}
		}
		want := nw.messages(1, "g")
		if len(want) != sent {
			t.Fatalf("try %d: node 1 delivered %d of its %d messages", try, len(want), sent)
		}
		for id := srp.NodeID(2); id <= 3; id++ {
			if got := nw.messages(id, "g"); !slices.Equal(got, want) {
				t.Fatalf("try %d: node %d delivered %d messages, node 1 %d, or in another order", try, id, len(got), len(want))
			}
			if d := nw.nodes[id].pg.drops; d != (FramingDrops{}) {
				t.Fatalf("try %d: node %d framing drops %+v", try, id, d)
			}
		}
		c := nw.nodes[1].pg.cuts
		if c.requeued != 0 {
			t.Fatalf("try %d: node 1 sent %d cut messages again whole in a ring without joiners", try, c.requeued)
		}
		if c.continued > 0 {
			t.Logf("try %d: %d messages, a cut one continued across the re-form", try, sent)
			return
		}
	}
	t.Fatal("no pause fell inside a cut message: the test proved nothing")
}

// TestMergeKeepsOldRingSendersStreams: at a regular configuration with joined members a
// receiver restarts only the streams of the senders that joined it. A corosync sender of its
// own old ring continues a message cut by the change (corosync never sends it again whole),
// and the receiver, like the corosync members of that ring, completes it; a joined sender's
// stale head is forgotten, so its continuation is thrown away rather than glued to it.
func TestMergeKeepsOldRingSendersStreams(t *testing.T) {
	f, _ := newFraming(1500)
	var got []string
	fn := func(s srp.NodeID, g string, body []byte, _ bool) { got = append(got, fmt.Sprintf("%d:%s", s, body)) }
	pkt := func(frag, cont uint8, pieces ...[]byte) *srp.Message {
		b := []byte{0, 0, 0, 0, frag, cont, byte(len(pieces)), 0}
		for _, p := range pieces {
			b = append(b, byte(len(p)), byte(len(p)>>8))
		}
		for _, p := range pieces {
			b = append(b, p...)
		}
		return &srp.Message{Payload: b}
	}
	from := func(id srp.NodeID, m *srp.Message) *srp.Message { m.Sender = id; return m }
	cut := frame("a", []byte("cut by the merge"))
	// Senders 2 (of this node's old ring) and 7 (from another ring, seen long ago) each have
	// a head pending with tag 4.
	f.deliver(from(2, pkt(4, 0, cut[:8])), fn)
	f.deliver(from(7, pkt(4, 0, cut[:8])), fn)
	f.restartAssemblies([]srp.NodeID{7})
	f.deliver(from(2, pkt(0, 4, cut[8:])), fn)
	f.deliver(from(7, pkt(0, 4, cut[8:])), fn)
	if !slices.Equal(got, []string{"2:cut by the merge"}) {
		t.Fatalf("delivered %q, want sender 2's cut message completed and nothing of sender 7's", got)
	}
	if f.drops.Continuation != 1 {
		t.Errorf("continuation drops %d, want sender 7's one", f.drops.Continuation)
	}
}
