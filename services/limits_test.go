package services

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gototem/gototem/srp"
)

// Issue 12: thousands of groups made the post-change JOINLIST pass totempg's 1 MiB
// reassembly limit and sync never finished. Memberships are capped per node and per
// process, with clear errors, and the JOINLIST is split so a node at the cap syncs.

// joinMany joins groups g0..g(n-1) for pid on node id and delivers the PROCJOINs.
func joinMany(t *testing.T, cl *cluster, id srp.NodeID, pid uint32, n int, live []srp.NodeID) {
	t.Helper()
	for i := range n {
		b, err := cl.nodes[id].cpg.Join(fmt.Sprintf("p%d-g%d", pid, i), pid)
		if err != nil {
			t.Fatalf("join %d of pid %d: %v", i, pid, err)
		}
		cl.send(id, "a", b)
	}
	cl.run(t, live)
}

func TestGroupCapsAtLimitAndPastIt(t *testing.T) {
	cl := newCluster(t, 1)
	one := []srp.NodeID{1}
	cl.configure(srp.RingID{Rep: 1, Seq: 4}, one)
	cl.run(t, one)
	c := cl.nodes[1].cpg
	// Per process: MaxJoinsPerProcess joins work, one more is refused.
	joinMany(t, cl, 1, 1, MaxJoinsPerProcess, one)
	if _, err := c.Join("one-too-many", 1); !errors.Is(err, ErrTooManyJoins) {
		t.Fatalf("join %d of one process: %v, want ErrTooManyJoins", MaxJoinsPerProcess+1, err)
	}
	// Leaving one group makes room again.
	b, err := c.Leave("p1-g0", 1)
	if err != nil {
		t.Fatal(err)
	}
	cl.send(1, "a", b)
	cl.run(t, one)
	if b, err = c.Join("p1-again", 1); err != nil {
		t.Fatalf("join after a leave: %v", err)
	}
	cl.send(1, "a", b)
	cl.run(t, one)
	// Per node: MaxGroupsPerNode memberships over several processes, one more is refused.
	for pid := uint32(2); pid <= MaxGroupsPerNode/MaxJoinsPerProcess; pid++ {
		joinMany(t, cl, 1, pid, MaxJoinsPerProcess, one)
	}
	if n := len(c.records); n != MaxGroupsPerNode {
		t.Fatalf("%d memberships recorded, want %d", n, MaxGroupsPerNode)
	}
	if _, err := c.Join("node-full", 99); !errors.Is(err, ErrTooManyGroups) {
		t.Fatalf("membership %d of the node: %v, want ErrTooManyGroups", MaxGroupsPerNode+1, err)
	}
	t.Logf("asserts: %d joins per process and %d per node accepted; one more: %v / %v",
		MaxJoinsPerProcess, MaxGroupsPerNode, ErrTooManyJoins, ErrTooManyGroups)
}

// A node at the cap syncs its memberships to a node that joins: the JOINLIST goes out in
// chunks, each far below the 1 MiB reassembly limit, and the newcomer sees every group.
func TestJoinListSyncAtCap(t *testing.T) {
	cl := newCluster(t, 1, 2)
	cl.configure(srp.RingID{Rep: 1, Seq: 4}, []srp.NodeID{1})
	cl.configure(srp.RingID{Rep: 2, Seq: 4}, []srp.NodeID{2})
	cl.run(t, []srp.NodeID{1})
	cl.run(t, []srp.NodeID{2})
	for pid := uint32(1); pid <= MaxGroupsPerNode/MaxJoinsPerProcess; pid++ {
		joinMany(t, cl, 1, pid, MaxJoinsPerProcess, []srp.NodeID{1})
	}
	msgs, _ := cl.nodes[1].cpg.SyncProcess()
	total := 0
	for _, m := range msgs {
		// The body travels with a group header and totempg framing: stay far below 1 MiB.
		if len(m) > 1<<20/4 {
			t.Fatalf("a JOINLIST of %d bytes", len(m))
		}
		total += (len(m) - cpgJoinListHeader) / cpgJoinListEntry
	}
	if total != MaxGroupsPerNode || len(msgs) != MaxGroupsPerNode/joinListChunk {
		t.Fatalf("%d JOINLISTs with %d entries, want %d with %d", len(msgs), total, MaxGroupsPerNode/joinListChunk, MaxGroupsPerNode)
	}
	both := []srp.NodeID{1, 2}
	cl.configure(srp.RingID{Rep: 1, Seq: 8}, both)
	cl.run(t, both)
	for _, id := range both {
		if se := cl.nodes[id].sync; se.Synchronizing() {
			t.Fatalf("node %d still synchronizing", id)
		}
	}
	if a, b := cl.nodes[1].cpg.records, cl.nodes[2].cpg.records; len(b) != MaxGroupsPerNode || !slices.Equal(a, b) {
		t.Fatalf("node 2 sees %d memberships, node 1 %d", len(b), len(a))
	}
	t.Logf("asserts: %d memberships synced in %d JOINLISTs of at most %d entries", total, len(msgs), joinListChunk)
}

// A peer that does not apply the cap (corosync, or a hostile node) cannot make us record
// more than MaxGroupsPerNode memberships for it, by PROCJOIN or by JOINLIST; every node
// refuses the same messages, so views stay equal.
func TestRemoteMembershipsCapped(t *testing.T) {
	cl := newCluster(t, 1, 2)
	both := []srp.NodeID{1, 2}
	cl.configure(srp.RingID{Rep: 1, Seq: 4}, both)
	cl.run(t, both)
	for i := range MaxGroupsPerNode + 1 {
		cl.send(1, "a", encodeProcMsg(cpgProcJoin, fmt.Sprintf("g%d", i), uint32(1+i/1000), ReasonJoin))
	}
	cl.run(t, both)
	for _, id := range both {
		c := cl.nodes[id].cpg
		if n := c.nodeRecords(1); n != MaxGroupsPerNode || c.Dropped() != 1 {
			t.Fatalf("node %d records %d memberships of node 1 (dropped %d), want %d and 1 drop", id, n, c.Dropped(), MaxGroupsPerNode)
		}
	}
	// JOINLISTs past the cap within one sync are cut at the cap.
	c := cl.nodes[2].cpg
	c.SyncInit(srp.RingID{Rep: 1, Seq: 8}, both, both)
	var ps []Process
	for i := range joinListChunk {
		ps = append(ps, Process{NodeID: 1, PID: 7, Group: fmt.Sprintf("x%d", i)})
	}
	before := c.Dropped()
	for range MaxGroupsPerNode/joinListChunk + 1 {
		c.Deliver(1, encodeJoinList(ps), false)
	}
	if len(c.joinlists) != MaxGroupsPerNode || c.Dropped() != before+1 {
		t.Fatalf("%d joinlist entries kept (dropped %d), want %d", len(c.joinlists), c.Dropped()-before, MaxGroupsPerNode)
	}
	t.Logf("asserts: PROCJOIN %d and JOINLIST entries past %d from one node are dropped and counted", MaxGroupsPerNode+1, MaxGroupsPerNode)
}

// A node may have MaxPartialsPerNode large messages in reassembly at once; one more first
// fragment is dropped and counted, so a hostile sender cannot hold 64 MiB per invented pid.
func TestPartialReassembliesCapped(t *testing.T) {
	c := NewCPG(2)
	first := func(pid uint32) []byte {
		return encodePartial("g", pid, 1, 3*MaxMcastPayload, partialFirst, make([]byte, 16))
	}
	for pid := range uint32(MaxPartialsPerNode) {
		c.Deliver(1, first(pid), false)
	}
	if c.Dropped() != 0 || c.partialsOf(1) != MaxPartialsPerNode {
		t.Fatalf("at the limit: %d in reassembly, %d dropped", c.partialsOf(1), c.Dropped())
	}
	c.Deliver(1, first(MaxPartialsPerNode), false)
	if c.Dropped() != 1 || c.partialsOf(1) != MaxPartialsPerNode {
		t.Fatalf("one past the limit: %d in reassembly, %d dropped", c.partialsOf(1), c.Dropped())
	}
	// Another node is not affected.
	c.Deliver(3, first(1), false)
	if c.Dropped() != 1 || c.partialsOf(3) != 1 {
		t.Fatalf("node 3: %d in reassembly, %d dropped", c.partialsOf(3), c.Dropped())
	}
	t.Logf("asserts: %d partial messages per node accepted, the next dropped and counted", MaxPartialsPerNode)
}
