package services

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/gototem/gototem/srp"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if i := strings.Index(line, ":"); i >= 0 {
			line = line[i+1:]
		}
		clean.WriteString(strings.ReplaceAll(line, " ", ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The byte layouts of services-sync.md §1.2 and §2.3, as real corosync 3.1.7 nodes send them.
func TestWireExamples(t *testing.T) {
	ring := srp.RingID{Rep: 1, Seq: 0x12}
	barrier := unhex(t, `
0000: 00 00 00 00 00 00 00 00 20 00 00 00 00 00 00 00
0010: 01 00 00 00 12 00 00 00 00 00 00 00 00 00 00 00`)
	if got := EncodeBarrier(ring); !bytes.Equal(got, barrier) {
		t.Errorf("BARRIER\n got %x\nwant %x", got, barrier)
	}
	build := make([]byte, 552)
	copy(build, unhex(t, `
0000: 01 00 00 00 00 00 00 00 28 02 00 00 00 00 00 00
0010: 01 00 00 00 12 00 00 00 00 00 00 00 00 00 00 00
0020: 04 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00
0030: 03 00 00 00 05 00 00 00 00 00 00 00`))
	if got := EncodeServiceBuild(ring, []int{0, 2, 3, 5}); !bytes.Equal(got, build) {
		t.Errorf("SERVICE_BUILD\n got %x\nwant %x", got, build)
	}

	join := make([]byte, 168)
	copy(join, unhex(t, `
0000: 00 00 02 00 00 00 00 00 a8 00 00 00 00 00 00 00
0010: 04 00 00 00 00 00 00 00 74 65 73 74 00 00 00 00`))
	copy(join[0x90:], unhex(t, `0090: 00 00 00 00 00 00 00 00 d2 04 00 00 00 00 00 00
00a0: 01 00 00 00 00 00 00 00`))
	c := NewCPG(3)
	got, err := c.Join("test", 1234)
	if err != nil || !bytes.Equal(got, join) {
		t.Errorf("PROCJOIN err %v\n got %x\nwant %x", err, got, join)
	}

	mcast := make([]byte, 189)
	copy(mcast, unhex(t, `
0000: 03 00 02 00 00 00 00 00 bd 00 00 00 00 00 00 00
0010: 04 00 00 00 00 00 00 00 74 65 73 74 00 00 00 00`))
	copy(mcast[0x90:], unhex(t, `
0090: 00 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00
00a0: d2 04 00 00 00 00 00 00 03 00 00 00 00 00 00 00
00b0: 00 00 00 00 00 00 00 00 68 65 6c 6c 6f`))
	msgs, err := c.Mcast("test", 1234, []byte("hello"))
	if err != nil || len(msgs) != 1 || !bytes.Equal(msgs[0], mcast) {
		t.Errorf("MCAST err %v\n got %x\nwant %x", err, msgs, mcast)
	}

	joinlist := make([]byte, 168)
	copy(joinlist, unhex(t, `
0000: 02 00 02 00 00 00 00 00 a8 00 00 00 00 00 00 00
0010: 00 00 00 00 00 00 00 00 d2 04 00 00 00 00 00 00
0020: 04 00 00 00 00 00 00 00 74 65 73 74`))
	// The JOINLIST lists records: none until the node's own PROCJOIN is delivered.
	if got, _ := c.SyncProcess(); len(got) != 0 {
		t.Errorf("JOINLIST before the PROCJOIN was delivered: %x", got)
	}
	c.Deliver(3, join, false)
	if got, _ := c.SyncProcess(); len(got) != 1 || !bytes.Equal(got[0], joinlist) {
		t.Errorf("JOINLIST\n got %x\nwant %x", got, joinlist)
	}
}

// cluster replays what a ring does for the service layer: every node delivers the same
// messages in one total order (a FIFO here), configurations included.
type cluster struct {
	nodes map[srp.NodeID]*member
	order []srp.NodeID
	queue []queued
}

type member struct {
	id   srp.NodeID
	sync *SyncEngine
	cpg  *CPG
	log  []CPGEvent
	prev []srp.NodeID // members of the node's previous regular configuration
}

type queued struct {
	from srp.NodeID
	out  Outbound
}

func newCluster(t *testing.T, ids ...srp.NodeID) *cluster {
	cl := &cluster{nodes: map[srp.NodeID]*member{}}
	for _, id := range ids {
		cpg := NewCPG(id)
		se, err := NewSyncEngine([]int{ServiceCMAP, ServiceCPG, ServiceQuorum}, map[int]Participant{ServiceCPG: cpg})
		if err != nil {
			t.Fatal(err)
		}
		cl.nodes[id] = &member{id: id, sync: se, cpg: cpg}
		cl.order = append(cl.order, id)
	}
	return cl
}

// configure delivers a transitional then a regular configuration to the given members; each
// node's transitional configuration is its previous membership that moves along, as in EVS.
func (cl *cluster) configure(ring srp.RingID, members []srp.NodeID) {
	for _, id := range members {
		m := cl.nodes[id]
		m.sync.Transitional(intersect(m.prev, members))
		m.prev = slices.Clone(members)
		for _, o := range m.sync.Regular(ring, members) {
			cl.queue = append(cl.queue, queued{id, o})
		}
	}
}

// run delivers queued messages in FIFO order to every live member until quiet.
func (cl *cluster) run(t *testing.T, live []srp.NodeID) {
	for steps := 0; len(cl.queue) > 0; steps++ {
		if steps > 10000 {
			t.Fatal("service layer did not go quiet")
		}
		q := cl.queue[0]
		cl.queue = cl.queue[1:]
		if !slices.Contains(live, q.from) {
			continue
		}
		for _, id := range live {
			m := cl.nodes[id]
			switch q.out.Group {
			case "sync":
				m.sync.Deliver(q.from, q.out.Body)
			case "a":
				m.cpg.Deliver(q.from, q.out.Body, false)
			}
			m.log = append(m.log, m.cpg.Events()...)
		}
		for _, id := range live {
			for _, o := range cl.nodes[id].sync.Work() {
				cl.queue = append(cl.queue, queued{id, o})
			}
		}
	}
}

func (cl *cluster) send(id srp.NodeID, group string, bodies ...[]byte) {
	for _, b := range bodies {
		cl.queue = append(cl.queue, queued{id, Outbound{Group: group, Body: b}})
	}
}

// A sync completes on every member with one BARRIER per service phase from each (§1.4), and
// CPG's views agree everywhere after each change (§2.4–2.5).
func TestSyncAndGroupViews(t *testing.T) {
	cl := newCluster(t, 1, 2, 3)
	all := []srp.NodeID{1, 2, 3}
	ring1 := srp.RingID{Rep: 1, Seq: 8}
	cl.configure(ring1, all)
	cl.run(t, all)
	for _, id := range all {
		if se := cl.nodes[id].sync; se.Synchronizing() || se.Completed() != 1 {
			t.Fatalf("node %d: synchronizing=%v completed=%d", id, se.Synchronizing(), se.Completed())
		}
	}

	// Nodes 1 and 3 join group "g"; node 3 sends a message.
	j1, _ := cl.nodes[1].cpg.Join("g", 100)
	j3, _ := cl.nodes[3].cpg.Join("g", 300)
	cl.send(1, "a", j1)
	cl.send(3, "a", j3)
	cl.run(t, all)
	m3, err := cl.nodes[3].cpg.Mcast("g", 300, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	cl.send(3, "a", m3...)
	cl.run(t, all)
	for _, id := range all {
		got := cl.nodes[id].cpg.Members("g")
		want := []Process{{1, 100, "g"}, {3, 300, "g"}}
		if !slices.Equal(got, want) {
			t.Fatalf("node %d members %v, want %v", id, got, want)
		}
	}
	if n := countMessages(cl.nodes[1].log); n != 1 {
		t.Fatalf("node 1 delivered %d group messages, want 1", n)
	}
	if n := countMessages(cl.nodes[2].log); n != 0 {
		t.Fatalf("node 2 has no member in g but delivered %d", n)
	}

	// Node 3 fails: ring {1,2}; node 1's view loses 300 with reason nodedown.
	cl.nodes[1].log = nil
	ring2 := srp.RingID{Rep: 1, Seq: 12}
	cl.configure(ring2, []srp.NodeID{1, 2})
	cl.run(t, []srp.NodeID{1, 2})
	if got := cl.nodes[1].cpg.Members("g"); !slices.Equal(got, []Process{{1, 100, "g"}}) {
		t.Fatalf("after node 3 failed: %v", got)
	}
	var sawDown bool
	for _, ev := range cl.nodes[1].log {
		if ev.Confchg != nil && len(ev.Confchg.Left) == 1 && ev.Confchg.Left[0].Reason == ReasonNodeDown {
			sawDown = true
		}
	}
	if !sawDown {
		t.Fatalf("no nodedown confchg: %+v", cl.nodes[1].log)
	}
}

// A node whose process is not listed in its JOINLIST loses it at activation (zombie rule), and a
// JOINLIST from a node that joins adds its processes with reason nodeup.
func TestJoinListRules(t *testing.T) {
	cl := newCluster(t, 1, 2)
	ring := srp.RingID{Rep: 1, Seq: 4}
	cl.configure(ring, []srp.NodeID{1})
	cl.configure(srp.RingID{Rep: 2, Seq: 4}, []srp.NodeID{2})
	cl.run(t, []srp.NodeID{1})
	cl.run(t, []srp.NodeID{2})
	j1, _ := cl.nodes[1].cpg.Join("g", 1)
	cl.send(1, "a", j1)
	cl.run(t, []srp.NodeID{1})
	j2, _ := cl.nodes[2].cpg.Join("g", 2)
	cl.send(2, "a", j2)
	cl.run(t, []srp.NodeID{2})
	// Merge: each learns the other's process from the JOINLIST.
	cl.configure(srp.RingID{Rep: 1, Seq: 8}, []srp.NodeID{1, 2})
	for _, id := range []srp.NodeID{1, 2} {
		cl.nodes[id].log = nil
	}
	cl.run(t, []srp.NodeID{1, 2})
	want := []Process{{1, 1, "g"}, {2, 2, "g"}}
	for _, id := range []srp.NodeID{1, 2} {
		if got := cl.nodes[id].cpg.Members("g"); !slices.Equal(got, want) {
			t.Fatalf("node %d after merge: %v", id, got)
		}
	}
	found := false
	for _, ev := range cl.nodes[1].log {
		if ev.Confchg != nil && len(ev.Confchg.Joined) == 1 && ev.Confchg.Joined[0].Reason == ReasonNodeUp {
			found = true
		}
	}
	if !found {
		t.Fatalf("node 1 saw no nodeup confchg: %+v", cl.nodes[1].log)
	}
}

// The §1.4 quirk: a BARRIER delivered while waiting for SERVICE_BUILDs counts as one. We mirror
// it rather than "fixing" it, because real nodes do the same.
func TestSyncQuirkBarrierCountsAsServiceBuild(t *testing.T) {
	se, err := NewSyncEngine([]int{0, 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ring := srp.RingID{Rep: 1, Seq: 4}
	se.Regular(ring, []srp.NodeID{1, 2})
	se.Deliver(1, EncodeServiceBuild(ring, []int{0, 2}))
	se.Deliver(2, EncodeBarrier(ring)) // node 2 "skipped" its SERVICE_BUILD
	if se.Phase() != 0 {
		t.Fatalf("phase %d, want 0: the BARRIER should have completed the build round", se.Phase())
	}
	// Old-ring and malformed messages are discarded and counted apart: a stale message is
	// normal around ring changes, a malformed one is a bad peer (status counts it as a drop).
	se.Deliver(1, EncodeBarrier(srp.RingID{Rep: 1, Seq: 3}))
	se.Deliver(1, []byte{1, 2, 3})
	if se.Discarded() != 1 || se.Stale() != 1 {
		t.Fatalf("discarded %d, stale %d; want 1 malformed and 1 stale", se.Discarded(), se.Stale())
	}
}

// A configuration change during a sync aborts it; the next regular configuration starts afresh.
func TestSyncAbort(t *testing.T) {
	cl := newCluster(t, 1, 2)
	all := []srp.NodeID{1, 2}
	cl.configure(srp.RingID{Rep: 1, Seq: 4}, all)
	// Deliver only the SERVICE_BUILDs, then change configuration before any BARRIER.
	for _, q := range cl.queue {
		for _, id := range all {
			cl.nodes[id].sync.Deliver(q.from, q.out.Body)
		}
	}
	cl.queue = nil
	for _, id := range all {
		cl.nodes[id].sync.Work() // the phase's messages are lost with the old ring
	}
	cl.configure(srp.RingID{Rep: 1, Seq: 8}, all)
	cl.run(t, all)
	for _, id := range all {
		if se := cl.nodes[id].sync; se.Completed() != 1 || se.Synchronizing() {
			t.Fatalf("node %d completed=%d synchronizing=%v", id, se.Completed(), se.Synchronizing())
		}
	}
}

func TestPartialMcastRoundTrip(t *testing.T) {
	cl := newCluster(t, 1, 2)
	all := []srp.NodeID{1, 2}
	cl.configure(srp.RingID{Rep: 1, Seq: 4}, all)
	cl.run(t, all)
	for _, id := range all {
		j, _ := cl.nodes[id].cpg.Join("big", uint32(id))
		cl.send(id, "a", j)
	}
	cl.run(t, all)
	payload := bytes.Repeat([]byte("0123456789abcdef"), (MaxMcastPayload*2+100)/16)
	bodies, err := cl.nodes[1].cpg.Mcast("big", 1, payload)
	if err != nil || len(bodies) != 3 {
		t.Fatalf("bodies %d err %v", len(bodies), err)
	}
	cl.send(1, "a", bodies...)
	cl.run(t, all)
	var got []byte
	for _, ev := range cl.nodes[2].log {
		if ev.Message != nil {
			got = ev.Message.Payload
		}
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("reassembled %d bytes, want %d", len(got), len(payload))
	}
}

// Hostile input is dropped and counted, never trusted.
func TestCPGRejectsMalformed(t *testing.T) {
	c := NewCPG(1)
	j, _ := c.Join("g", 1)
	c.Deliver(1, j, false)
	bad := [][]byte{
		nil,
		{0, 0, 2, 0},
		func() []byte { b, _ := c.Mcast("g", 1, []byte("abc")); b[0][152] = 200; return b[0] }(),  // msglen beyond body
		func() []byte { b := slices.Clone(j); b[16] = 0; return b }(),                             // name length 0
		func() []byte { b := encodeJoinList([]Process{{1, 1, "g"}}); b[8] = 200; return b }(),     // size not exact
		func() []byte { b := encodePartial("g", 1, 1, 10, partialLast, []byte("x")); return b }(), // no first fragment
		func() []byte { b := slices.Clone(j); b[0] = 9; return b }(),                              // unknown function
	}
	before := c.Dropped()
	for _, b := range bad {
		c.Deliver(1, b, false)
	}
	if got := c.Dropped() - before; got != uint64(len(bad)) {
		t.Fatalf("dropped %d of %d malformed messages", got, len(bad))
	}
}

func countMessages(evs []CPGEvent) int {
	n := 0
	for _, ev := range evs {
		if ev.Message != nil {
			n++
		}
	}
	return n
}

func FuzzCPGDeliver(f *testing.F) {
	c := NewCPG(1)
	j, _ := c.Join("g", 1)
	m, _ := c.Mcast("g", 1, []byte("hello"))
	f.Add(j)
	f.Add(m[0])
	f.Add(encodeJoinList([]Process{{1, 1, "g"}, {1, 2, "h"}}))
	f.Add(encodePartial("g", 1, 1, 10, partialFirst, []byte("01234")))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := NewCPG(2)
		c.Join("g", 5)
		c.Deliver(1, b, false)
		c.Deliver(1, b, true)
		c.SyncInit(srp.RingID{Rep: 1, Seq: 4}, []srp.NodeID{1, 2}, nil)
		c.SyncActivate()
		se, _ := NewSyncEngine([]int{0, 2}, map[int]Participant{ServiceCPG: c})
		se.Regular(srp.RingID{Rep: 1, Seq: 4}, []srp.NodeID{1, 2})
		se.Deliver(1, b)
		se.Work()
	})
}

// TestJoinListListsRecords: the JOINLIST lists this node's process records, as corosync's
// cpg_exec_send_joinlist does: a process whose leave was requested but not yet delivered is
// still listed (else the others remove it at activation while this node keeps it, and drop
// its messages queued before the leave as from an unknown node: full-stack campaign seed 2),
// and a process whose join is not yet delivered is not.
func TestJoinListListsRecords(t *testing.T) {
	c := NewCPG(1)
	join, err := c.Join("g", 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join("h", 8); err != nil { // never delivered
		t.Fatal(err)
	}
	c.Deliver(1, join, false)
	if _, err := c.Leave("g", 7); err != nil { // requested, not delivered
		t.Fatal(err)
	}
	msgs, _ := c.SyncProcess()
	if len(msgs) != 1 {
		t.Fatalf("%d JOINLISTs, want 1", len(msgs))
	}
	other := NewCPG(2)
	other.deliverJoinList(1, msgs[0], byteOrder(false))
	if len(other.joinlists) != 1 || other.joinlists[0] != (Process{NodeID: 1, PID: 7, Group: "g"}) {
		t.Fatalf("JOINLIST lists %v, want exactly pid 7 in g (leave pending) and not the undelivered join of h", other.joinlists)
	}
}
