package quorum

import (
	"testing"
	"time"
)

// These histories end with two disjoint partitions quorate at once. They are corosync 3.1's
// behaviour, reproduced on purpose (a gototem node must reach the same verdict as a corosync
// node fed the same messages), and they bound the safety property tested in property_test.go.
// Each was first found by those properties.

// last_man_standing lowers expected votes on one side; nodes that lived through that and then
// merge with nodes that never saw it count only the smaller expected value.
func TestSplitBrainLastManStandingHeal(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 8, Config{LastManStanding: true, WaitForAll: ptr(true)})
	c.split(span(1, 8))
	c.split(span(1, 5), span(6, 8))
	c.advance(10 * time.Second)
	c.expect("{1..5} after the window", state{true, 5, 3, 5}, span(1, 5)...)
	c.split(span(1, 3), span(4, 5))
	c.expect("{1,2,3}", state{true, 5, 3, 3}, 1, 2, 3)
	c.expect("{4,5}", state{false, 5, 3, 2}, 4, 5)
	c.ring(span(4, 8))
	c.expect("4 and 5 count E=5 and see 5 votes", state{true, 5, 3, 5}, 4, 5)
	c.expect("6..8 still wait for 8", state{false, 8, 5, 5}, 6, 7, 8)
	if q := quorateGroups(c); len(q) != 2 {
		t.Fatalf("quorate rings %v: corosync's LMS gives two here", q)
	}
}

// auto_tie_breaker counts members lost since the previous ring; a change that adds a node to
// one side while taking one away from the other defeats that count.
func TestSplitBrainATBJoinAndLeaveAtOnce(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 3, Config{AutoTieBreaker: true, WaitForAll: ptr(true)})
	c.split(span(1, 3))
	c.split([]NodeID{1}, span(2, 3))
	c.expect("{2,3}", state{true, 3, 2, 2}, 2, 3)
	c.expect("{1}", state{false, 3, 2, 1}, 1)
	c.split([]NodeID{1, 3}, []NodeID{2})
	c.expect("{1,3} by votes", state{true, 3, 2, 2}, 1, 3)
	c.expect("{2} by tie: lost 1 < 2, lowest of the last quorate ring is 2", state{true, 3, 2, 1}, 2)
}

// The tie test compares votes with ⌊E/2⌋ but counts nodes lost: with weighted votes a minority
// of nodes can hold a majority of votes.
func TestSplitBrainATBWeighted(t *testing.T) {
	c := newCluster(t)
	nl := []NodeEntry{{1, 1}, {2, 1}, {3, 3}}
	for i := NodeID(1); i <= 3; i++ {
		c.boot(i, Config{Nodelist: nl, AutoTieBreaker: true, WaitForAll: ptr(true)})
	}
	c.split(span(1, 3))
	c.split(span(1, 2), []NodeID{3})
	c.expect("{3} by votes", state{true, 5, 3, 3}, 3)
	c.expect("{1,2} by tie", state{true, 5, 3, 2}, 1, 2)
}

// In list mode a freshly started node has no previous membership, so nothing listed before it
// can be "on the other side": without wait_for_all it is quorate alone.
func TestSplitBrainATBListAtBoot(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 2, Config{AutoTieBreaker: true, AutoTieBreakerNode: "2 1"})
	c.split(span(1, 2))
	c.kill(1)
	c.split([]NodeID{2})
	c.expect("{2}: first in the list", state{true, 2, 2, 1}, 2)
	c.boot(1, Config{Nodelist: nodelist(2), AutoTieBreaker: true, AutoTieBreakerNode: "2 1"})
	c.expect("restarted {1}", state{true, 2, 2, 1}, 1)
}
