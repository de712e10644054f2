package stack

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/rrp"
	"github.com/gototem/gototem/srp"
)

// net is a tiny deterministic driver: a FIFO of datagrams with a fixed delay, virtual time,
// ToAll looped back to every live node including the sender.
type net struct {
	t      *testing.T
	now    time.Duration
	nodes  map[srp.NodeID]*Stack
	down   map[srp.NodeID]bool
	queue  []flight
	events map[srp.NodeID][]Event
	ticks  map[srp.NodeID]time.Duration
	cut    map[int]bool // links cut for everybody
	// island puts nodes on separate sides of a partition: datagrams cross only between
	// nodes with the same island number (0 for nodes not listed).
	island map[srp.NodeID]int
}

type flight struct {
	at   time.Duration
	from srp.NodeID
	to   srp.NodeID
	link int
	data []byte
}

const hop = 200 * time.Microsecond

func newNet(t *testing.T, n int, withQuorum bool) *net {
	return newNetLinks(t, n, withQuorum, 1, rrp.None)
}

func newNetLinks(t *testing.T, n int, withQuorum bool, links int, mode rrp.Mode) *net {
	nw := &net{t: t, nodes: map[srp.NodeID]*Stack{}, down: map[srp.NodeID]bool{}, events: map[srp.NodeID][]Event{}, ticks: map[srp.NodeID]time.Duration{}, cut: map[int]bool{}}
	for i := 1; i <= n; i++ {
		id := srp.NodeID(i)
		sc := srp.DefaultConfig(id, n)
		sc.Token = time.Second
		sc.Consensus = 1200 * time.Millisecond
		sc.TokenRetransmit = 238 * time.Millisecond
		sc.Hold = 180 * time.Millisecond
		cfg := Config{SRP: sc, Links: links}
		if links > 1 {
			cfg.RRP = &RRPConfig{Mode: mode, Token: sc.Token}
		}
		if withQuorum {
			qc := quorum.Config{NodeID: quorum.NodeID(id)}
			for j := 1; j <= n; j++ {
				qc.Nodelist = append(qc.Nodelist, quorum.NodeEntry{NodeID: quorum.NodeID(j), Votes: 1})
			}
			cfg.Quorum = &qc
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nw.nodes[id] = s
	}
	for id := srp.NodeID(1); id <= srp.NodeID(n); id++ { // in order: one seedless run
		nw.nodes[id].Start(0)
		nw.collect(id)
	}
	return nw
}

func (nw *net) collect(id srp.NodeID) {
	s := nw.nodes[id]
	rd := s.Ready()
	for _, d := range rd.Datagrams {
		if d.Dest == srp.ToAll {
			for to := range nw.nodes {
				nw.queue = append(nw.queue, flight{at: nw.now + hop, from: id, to: to, link: d.Link, data: d.Data})
			}
		} else {
			nw.queue = append(nw.queue, flight{at: nw.now + hop, from: id, to: d.To, link: d.Link, data: d.Data})
		}
	}
	nw.events[id] = append(nw.events[id], rd.Events...)
	nw.ticks[id] = rd.NextTick
	s.Advance()
}

// run advances virtual time by d, delivering datagrams and firing timers in time order.
func (nw *net) run(d time.Duration) {
	end := nw.now + d
	for steps := 0; steps < 5_000_000; steps++ {
		next := end
		for _, f := range nw.queue {
			next = min(next, f.at)
		}
		for id, t := range nw.ticks {
			if t != 0 && !nw.down[id] {
				next = min(next, t)
			}
		}
		if next >= end && (len(nw.queue) == 0 || nw.queue[0].at > end) {
			nw.now = end
			return
		}
		nw.now = next
		// deliver all datagrams due now, in FIFO order
		var due []flight
		rest := nw.queue[:0]
		for _, f := range nw.queue {
			if f.at <= nw.now {
				due = append(due, f)
			} else {
				rest = append(rest, f)
			}
		}
		nw.queue = rest
		for _, f := range due {
			// A node's own copies never cross the network, so a cut does not stop them.
			if nw.down[f.to] || (nw.cut[f.link] && f.from != f.to) || nw.island[f.from] != nw.island[f.to] {
				continue
			}
			_ = nw.nodes[f.to].Receive(nw.now, f.link, f.data)
			nw.collect(f.to)
		}
		ids := make([]srp.NodeID, 0, len(nw.nodes))
		for id := range nw.nodes {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if t := nw.ticks[id]; t != 0 && t <= nw.now && !nw.down[id] {
				nw.nodes[id].Tick(nw.now)
				nw.collect(id)
			}
		}
	}
	nw.t.Fatal("simulation did not finish")
}

func (nw *net) messages(id srp.NodeID, group string) []string {
	var out []string
	for _, ev := range nw.events[id] {
		if ev.Message != nil && ev.Message.Group == group {
			out = append(out, fmt.Sprintf("%d:%s", ev.Message.Sender, ev.Message.Payload))
		}
	}
	return out
}

func (nw *net) lastQuorum(id srp.NodeID) *quorum.Change {
	var q *quorum.Change
	for _, ev := range nw.events[id] {
		if ev.Quorum != nil {
			q = ev.Quorum
		}
	}
	return q
}

// Three nodes form a ring, finish service synchronization, join a process group and exchange
// messages: every node delivers the same sequence, and votequorum reports 3 votes.
func TestGroupsOverRing(t *testing.T) {
	nw := newNet(t, 3, true)
	nw.run(3 * time.Second)
	for id, s := range nw.nodes {
		if got := s.SRP().Members(); !slices.Equal(got, []srp.NodeID{1, 2, 3}) {
			t.Fatalf("node %d members %v", id, got)
		}
		if s.Synchronizing() {
			t.Fatalf("node %d still synchronizing", id)
		}
		q := nw.lastQuorum(id)
		if q == nil || !q.Quorate || q.TotalVotes != 3 {
			t.Fatalf("node %d quorum %+v", id, q)
		}
	}
	for id, s := range nw.nodes {
		if err := s.Join(nw.now, "g", 100+uint32(id)); err != nil {
			t.Fatal(err)
		}
		nw.collect(id)
	}
	nw.run(time.Second)
	for i := 0; i < 30; i++ {
		for id := srp.NodeID(1); id <= 3; id++ {
			payload := []byte(fmt.Sprintf("m%d-%d", id, i))
			if i == 7 {
				payload = bytes.Repeat([]byte{byte('a' + id)}, 5000) // fragmented across packets
			}
			if err := nw.nodes[id].Send(nw.now, "g", 100+uint32(id), payload, srp.Agreed); err != nil {
				t.Fatal(err)
			}
			nw.collect(id)
		}
		nw.run(5 * time.Millisecond)
	}
	nw.run(2 * time.Second)
	want := nw.messages(1, "g")
	if len(want) != 90 {
		t.Fatalf("node 1 delivered %d messages, want 90", len(want))
	}
	for id := srp.NodeID(2); id <= 3; id++ {
		if got := nw.messages(id, "g"); !slices.Equal(got, want) {
			t.Fatalf("node %d delivered a different sequence", id)
		}
	}
	for id, s := range nw.nodes {
		if m := s.CPG().Members("g"); len(m) != 3 {
			t.Fatalf("node %d sees group members %v", id, m)
		}
	}

	// Node 3 crashes: the survivors form a ring, CPG drops its process, quorum holds at 2/3.
	nw.down[3] = true
	nw.run(5 * time.Second)
	for id := srp.NodeID(1); id <= 2; id++ {
		s := nw.nodes[id]
		if got := s.SRP().Members(); !slices.Equal(got, []srp.NodeID{1, 2}) {
			t.Fatalf("node %d members after crash %v", id, got)
		}
		if m := s.CPG().Members("g"); len(m) != 2 {
			t.Fatalf("node %d group after crash %v", id, m)
		}
		q := nw.lastQuorum(id)
		if q == nil || !q.Quorate || q.TotalVotes != 2 {
			t.Fatalf("node %d quorum after crash %+v", id, q)
		}
	}
}

// The framing layer follows totempg's receive rules: a packet whose continuation does not
// match puts the sender in throw-away mode, and a malformed packet is dropped and counted;
// a packet that starts the sender's stream afresh is read (gototem's one departure).
func TestFramingReceiveRules(t *testing.T) {
	f, _ := newFraming(1500)
	var got []string
	fn := func(_ srp.NodeID, g string, body []byte, _ bool) { got = append(got, g+":"+string(body)) }
	pkt := func(frag, cont uint8, pieces ...[]byte) []byte {
		b := []byte{0, 0, 0, 0, frag, cont, byte(len(pieces)), 0}
		for _, p := range pieces {
			b = append(b, byte(len(p)), byte(len(p)>>8))
		}
		for _, p := range pieces {
			b = append(b, p...)
		}
		return b
	}
	msg := func(p []byte) *srp.Message { return &srp.Message{Sender: 9, Payload: p} }
	whole := frame("a", []byte("hello"))
	f.deliver(msg(pkt(0, 0, whole, frame("sync", []byte("x")))), fn)
	if !slices.Equal(got, []string{"a:hello", "sync:x"}) {
		t.Fatalf("packed packet: %v", got)
	}
	got = nil
	big := frame("a", []byte("0123456789"))
	f.deliver(msg(pkt(3, 0, big[:6])), fn)
	f.deliver(msg(pkt(0, 3, big[6:])), fn)
	if !slices.Equal(got, []string{"a:0123456789"}) {
		t.Fatalf("fragments: %v", got)
	}
	// A continuation of a fragment we never saw is thrown away; its packet ends with a whole
	// message (fragmented 0), after which corosync takes a fresh assembly: the next packet
	// is read.
	got = nil
	f.deliver(msg(pkt(0, 5, whole)), fn)
	if len(got) != 0 || f.dropped() != 1 {
		t.Fatalf("mismatched continuation delivered %v, drops %d", got, f.dropped())
	}
	f.deliver(msg(pkt(0, 0, whole)), fn)
	if !slices.Equal(got, []string{"a:hello"}) {
		t.Fatalf("after a mismatch ending with a whole message: %v", got)
	}
	// Throw-away that goes on: a mismatch whose last piece continues (fragmented 7), its
	// continuation, then a packet with fragmented 1 that leaves throw-away and delivers
	// nothing either, and keeps the tag it had before (corosync's quirks: the packet that
	// continues it mismatches again); the packet after one ending whole is read.
	got = nil
	f.deliver(msg(pkt(7, 5, big[:3], big[:6])), fn)
	f.deliver(msg(pkt(8, 7, big[6:])), fn)
	f.deliver(msg(pkt(1, 8, whole, big[:6])), fn)
	if len(got) != 0 || f.dropped() != 2 {
		t.Fatalf("throw-away delivered %v, drops %d", got, f.dropped())
	}
	f.deliver(msg(pkt(0, 1, big[6:], whole)), fn)
	f.deliver(msg(pkt(0, 0, whole)), fn)
	if !slices.Equal(got, []string{"a:hello"}) || f.dropped() != 3 {
		t.Fatalf("after leaving throw-away: %v, drops %d", got, f.dropped())
	}
	// A sender that restarts its stream (continuation 0) while a head is pending, or while
	// it is being thrown away, sent the pending message again whole (gototem's straddle):
	// the head is forgotten and the packet read, not thrown away as corosync would.
	got = nil
	f.deliver(msg(pkt(3, 0, big[:6])), fn)
	f.deliver(msg(pkt(0, 0, big)), fn)
	f.deliver(msg(pkt(4, 9, big[6:], big[:6])), fn) // mismatch: throw-away
	f.deliver(msg(pkt(0, 0, whole)), fn)
	if !slices.Equal(got, []string{"a:0123456789", "a:hello"}) || f.dropped() != 4 {
		t.Fatalf("restarted stream: %v, drops %d", got, f.dropped())
	}
	for _, bad := range [][]byte{{1, 2}, pkt(0, 0, whole)[:10], append(pkt(0, 0, whole), 1)} {
		before := f.dropped()
		f.deliver(msg(bad), fn)
		if f.dropped() != before+1 {
			t.Fatalf("malformed packet %x not counted", bad)
		}
	}
}

// On an idle ring the representative holds the token (§6.3). A message sent then must cancel
// the hold at once rather than wait in the packer for a token that is not coming: delivered
// within a few milliseconds of virtual time, not after the hold timer.
func TestIdleRingDeliversPromptly(t *testing.T) {
	nw := newNet(t, 3, false)
	nw.run(3 * time.Second)
	for id, s := range nw.nodes {
		if err := s.Join(nw.now, "g", uint32(id)); err != nil {
			t.Fatal(err)
		}
		nw.collect(id)
	}
	nw.run(5 * time.Second) // long enough for the token to be held
	if held := nw.nodes[1].SRP().Counters().TokensHeld; held == 0 {
		t.Fatal("the idle ring never held its token; the test proves nothing")
	}
	if err := nw.nodes[2].Send(nw.now, "g", 2, []byte("ping"), srp.Agreed); err != nil {
		t.Fatal(err)
	}
	nw.collect(2)
	nw.run(20 * time.Millisecond)
	for id := srp.NodeID(1); id <= 3; id++ {
		if got := nw.messages(id, "g"); !slices.Equal(got, []string{"2:ping"}) {
			t.Fatalf("node %d after 20 ms: %v", id, got)
		}
	}
}

func (nw *net) faults(id srp.NodeID) []LinkEvent {
	var out []LinkEvent
	for _, ev := range nw.events[id] {
		if ev.Fault != nil {
			out = append(out, *ev.Fault)
		}
	}
	return out
}

func (nw *net) regulars(id srp.NodeID) int {
	n := 0
	for _, ev := range nw.events[id] {
		if ev.Membership != nil && ev.Membership.Kind == srp.Regular {
			n++
		}
	}
	return n
}

// Two rings, active and passive: cutting ring 1 leaves membership unchanged and marks ring 1
// FAULTY on every node within the configured bound while messages keep flowing over ring 0;
// after healing, ring 1 is "active with no faults" again; cutting both rings is an ordinary
// token loss.
func TestRedundantRingCut(t *testing.T) {
	for _, mode := range []rrp.Mode{rrp.Active, rrp.Passive} {
		t.Run(mode.String(), func(t *testing.T) {
			nw := newNetLinks(t, 3, false, 2, mode)
			nw.run(3 * time.Second)
			for id, s := range nw.nodes {
				if err := s.Join(nw.now, "g", uint32(id)); err != nil {
					t.Fatal(err)
				}
				nw.collect(id)
			}
			nw.run(time.Second)
			formed := map[srp.NodeID]int{}
			for id := range nw.nodes {
				formed[id] = nw.regulars(id)
			}
			nw.cut[1] = true
			cutAt := nw.now
			for i := 0; i < 200; i++ { // keep traffic flowing: 10 s of messages
				id := srp.NodeID(1 + i%3)
				if err := nw.nodes[id].Send(nw.now, "g", uint32(id), []byte(fmt.Sprintf("m%d", i)), srp.Agreed); err != nil {
					t.Fatal(err)
				}
				nw.collect(id)
				nw.run(50 * time.Millisecond)
			}
			for id, s := range nw.nodes {
				if nw.regulars(id) != formed[id] {
					t.Fatalf("node %d: membership changed while one ring was cut", id)
				}
				st := s.LinkStatus()
				if !st[1].Faulty || st[0].Faulty {
					t.Fatalf("node %d link status %+v", id, st)
				}
				f := nw.faults(id)
				if len(f) == 0 || f[0].At-cutAt > 5*time.Second {
					t.Fatalf("node %d: ring 1 not marked faulty in time: %+v", id, f)
				}
				if got := len(nw.messages(id, "g")); got != 200 {
					t.Fatalf("node %d delivered %d of 200 messages over ring 0", id, got)
				}
			}
			nw.cut[1] = false
			nw.run(5 * time.Second)
			for id, s := range nw.nodes {
				if st := s.LinkStatus(); st[1].Faulty || st[1].Text != "ring 1 active with no faults" {
					t.Fatalf("node %d after heal: %+v", id, st)
				}
			}
			nw.cut[0], nw.cut[1] = true, true
			nw.run(5 * time.Second)
			for id := range nw.nodes {
				if nw.regulars(id) == formed[id] {
					t.Fatalf("node %d: both rings cut but no new configuration", id)
				}
			}
		})
	}
}
