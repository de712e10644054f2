package srp

import (
	"slices"
	"testing"
	"time"
)

// §8 token timer, §4.4 consensus: a crashed member stops the token; the survivors notice the
// loss after `token`, exclude the silent node at the consensus timeout and install a ring
// without it. The bound is token + consensus + a few join rounds.
func TestTokenLossFormsRingWithoutDeadNode(t *testing.T) {
	for _, victim := range []NodeID{1, 3, 5} { // the rep, a middle node, the highest
		c := newCluster(t, 5)
		c.startAll()
		c.mustConverge(30*time.Second, c.ids...)
		c.run(2 * time.Second)
		losses := func() (n uint64) {
			for _, id := range c.ids {
				n += c.nodes[id].p.Counters().TokenLosses
			}
			return n
		}
		before := losses()
		c.crash(victim)
		survivors := slices.DeleteFunc(slices.Clone(c.ids), func(id NodeID) bool { return id == victim })
		cfg := c.cfg(1)
		bound := cfg.Token + cfg.Consensus + 10*cfg.Join
		took := c.mustConverge(bound, survivors...)
		t.Logf("victim %d: survivors %v on ring %v after %v (bound %v)", victim, survivors,
			c.nodes[survivors[0]].p.RingID(), took, bound)
		if took < cfg.Token {
			t.Fatalf("reformed after %v, before the token timeout %v could expire", took, cfg.Token)
		}
		if losses() == before {
			t.Fatalf("no token loss counted")
		}
		// EVS: the transitional configuration lists the survivors and names the victim as left.
		for _, id := range survivors {
			cfgs := c.nodes[id].configs()
			tr, reg := cfgs[len(cfgs)-2], cfgs[len(cfgs)-1]
			if tr.Kind != Transitional || !slices.Equal(tr.Members, survivors) || !slices.Equal(tr.Left, []NodeID{victim}) {
				t.Fatalf("node %d: transitional %+v", id, tr)
			}
			if reg.Kind != Regular || !slices.Equal(reg.Members, survivors) || len(reg.Joined) != 0 {
				t.Fatalf("node %d: regular %+v", id, reg)
			}
		}
	}
}

// §4.3, §6.7: a node started next to a running ring is noticed (its JOIN drives the ring
// into GATHER) and the ring grows to include it; the old members see it as joined.
func TestNodeJoinsRunningRing(t *testing.T) {
	c := newCluster(t, 5)
	c.start(1, 2, 3, 4)
	c.mustConverge(30*time.Second, 1, 2, 3, 4)
	c.run(3 * time.Second)
	old := c.nodes[1].p.RingID()
	c.start(5)
	took := c.mustConverge(30*time.Second, c.ids...)
	t.Logf("node 5 joined ring %v (was %v) after %v", c.nodes[1].p.RingID(), old, took)
	for _, id := range []NodeID{1, 2, 3, 4} {
		cfgs := c.nodes[id].configs()
		tr, reg := cfgs[len(cfgs)-2], cfgs[len(cfgs)-1]
		if !slices.Equal(tr.Members, []NodeID{1, 2, 3, 4}) || len(tr.Left) != 0 {
			t.Fatalf("node %d: transitional %+v", id, tr)
		}
		if !slices.Equal(reg.Joined, []NodeID{5}) {
			t.Fatalf("node %d: regular %+v", id, reg)
		}
	}
	cfgs := c.nodes[5].configs()
	if reg := cfgs[len(cfgs)-1]; !slices.Equal(reg.Joined, []NodeID{1, 2, 3, 4}) {
		t.Fatalf("node 5: regular %+v", reg)
	}
	if c.nodes[1].p.RingID().Seq <= old.Seq {
		t.Fatalf("new ring seq %d not above %d", c.nodes[1].p.RingID().Seq, old.Seq)
	}
}

// §7.4: a LEAVE lets the survivors reform at once instead of waiting for the token timeout.
func TestLeaveReformsWithoutTokenTimeout(t *testing.T) {
	for _, leaver := range []NodeID{1, 3} {
		c := newCluster(t, 5)
		c.startAll()
		c.mustConverge(30*time.Second, c.ids...)
		c.run(2 * time.Second)
		c.leave(leaver)
		survivors := slices.DeleteFunc(slices.Clone(c.ids), func(id NodeID) bool { return id == leaver })
		took := c.mustConverge(c.cfg(1).Token, survivors...)
		t.Logf("leaver %d: survivors reformed after %v (token timeout %v)", leaver, took, c.cfg(1).Token)
		if took > time.Second {
			t.Fatalf("reform took %v; a LEAVE should not need the token timeout", took)
		}
		for _, id := range survivors {
			if c.nodes[id].p.Counters().LeavesRecv == 0 {
				t.Fatalf("node %d never saw the LEAVE", id)
			}
		}
		if err := c.nodes[leaver].p.Send(c.now, []byte("x"), Agreed); err != ErrNotRunning {
			t.Fatalf("Send after Leave: %v, want ErrNotRunning", err)
		}
	}
}

// §6.7, §4.5: two halves of a partition each install their own ring; when the network
// heals, the idle reps' MERGE_DETECTs pull both rings into GATHER and one ring of all forms.
func TestPartitionHealsIntoOneRing(t *testing.T) {
	c := newCluster(t, 5)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	a, b := []NodeID{1, 2}, []NodeID{3, 4, 5}
	c.partition(a, b)
	c.mustConverge(30*time.Second, a...)
	c.mustConverge(30*time.Second, b...)
	if c.nodes[1].p.RingID() == c.nodes[3].p.RingID() {
		t.Fatalf("both halves on ring %v", c.nodes[1].p.RingID())
	}
	c.run(5 * time.Second)
	c.heal()
	took := c.mustConverge(30*time.Second, c.ids...)
	t.Logf("merged into ring %v after %v", c.nodes[1].p.RingID(), took)
	var md uint64
	for _, id := range c.ids {
		md += c.nodes[id].p.Counters().MergeDetectsSent
	}
	if md == 0 {
		t.Fatalf("merged without any MERGE_DETECT")
	}
	// The side {3,4,5} sees {3,4,5} → transitional, then joined {1,2}.
	cfgs := c.nodes[4].configs()
	tr, reg := cfgs[len(cfgs)-2], cfgs[len(cfgs)-1]
	if !slices.Equal(tr.Members, b) || !slices.Equal(reg.Joined, a) {
		t.Fatalf("node 4: %+v then %+v", tr, reg)
	}
}

// §3: a restarted node loads its stored ring seq and adds one, so it never reuses a ring id.
func TestRestartNeverReusesRingID(t *testing.T) {
	c := newCluster(t, 1)
	c.startAll()
	c.mustConverge(5*time.Second, 1)
	first := c.nodes[1].p.RingID()
	c.crash(1)
	c.restart(1)
	c.mustConverge(5*time.Second, 1)
	second := c.nodes[1].p.RingID()
	if second.Seq <= first.Seq {
		t.Fatalf("ring seq after restart %d, before %d", second.Seq, first.Seq)
	}
	if second.Seq != first.Seq+1+4 {
		t.Fatalf("ring seq after restart %d, want stored %d + 1 + 4", second.Seq, first.Seq)
	}
}

// §4.3 step 4 with gototem's deviation: a JOIN whose failed list I do not adopt (its sender
// is outside my membership and does not exclude me) and that adds nothing to my proc set
// changes nothing, so it must neither make me answer with a JOIN nor restart my consensus
// timer. corosync does both, and nodes disagreeing that way multiply JOINs among themselves
// and never reach the consensus timeout that settles the disagreement (found by
// TestRandomFaultSchedules, seed 19: 2 million JOINs in 30 ms of virtual time).
func TestUnadoptedFailedListDoesNotRestartGather(t *testing.T) {
	p, _ := NewProcessor(DefaultConfig(1, 3))
	p.Start(0)
	p.Advance()
	p.procList = []NodeID{1, 2, 3}
	deadline := p.timers[timerConsensus].at
	j := Join{Header: Header{NodeID: 3}, SystemFrom: 3, RingSeq: 1, ProcList: []NodeID{1, 2, 3}, FailedList: []NodeID{2}}
	if err := p.Step(10*time.Millisecond, j.AppendEncode(nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(p.Ready().Messages); n != 0 {
		t.Fatalf("answered an uninformative JOIN with %d datagrams", n)
	}
	if p.timers[timerConsensus].at != deadline || p.State() != Gather || len(p.failedList) != 0 {
		t.Fatalf("consensus deadline %v → %v, failed %v", deadline, p.timers[timerConsensus].at, p.failedList)
	}
	// A JOIN that does add a processor still re-enters GATHER.
	j.ProcList, j.FailedList = []NodeID{1, 2, 3, 4}, nil
	if err := p.Step(20*time.Millisecond, j.AppendEncode(nil)); err != nil {
		t.Fatal(err)
	}
	if out := p.Ready().Messages; len(out) != 1 || out[0].Type != TypeJoin || p.timers[timerConsensus].at == deadline {
		t.Fatalf("a widening JOIN did not restart GATHER: %d datagrams", len(out))
	}
}

// §4.3 with gototem's deviation: the JOIN that makes me adopt a failed list carries exactly my
// new sets, so its sender counts towards consensus at once. When a member other than the rep
// times out consensus first (its timer ran a little ahead of the rep's), the rep must not wait
// a join timeout for that member's repeated JOIN before creating the commit token (the lab's
// token-300 failover: 420–426 ms from token loss to the new ring instead of 360–368 ms).
func TestAdoptingJoinCountsTowardsConsensus(t *testing.T) {
	p, _ := NewProcessor(DefaultConfig(1, 4))
	p.Start(0)
	p.Advance()
	// The rep of ring {1,2,3,4} in GATHER after the token loss, nobody failed yet.
	p.procList, p.membList = []NodeID{1, 2, 3, 4}, []NodeID{1, 2, 3, 4}
	all := []NodeID{1, 2, 3, 4}
	join := func(from NodeID, failed ...NodeID) []byte {
		j := Join{Header: Header{NodeID: from}, SystemFrom: from, RingSeq: 1, ProcList: all, FailedList: failed}
		return j.AppendEncode(nil)
	}
	// Node 2's consensus timeout expired first: it names node 4 as failed.
	if err := p.Step(400*time.Millisecond, join(2, 4)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.failedList, []NodeID{4}) || p.State() != Gather {
		t.Fatalf("after node 2's JOIN: state %v, failed %v", p.State(), p.failedList)
	}
	if !slices.Equal(p.consensusList, []NodeID{1, 2}) {
		t.Fatalf("consensus %v after adopting node 2's sets, want [1 2]", p.consensusList)
	}
	p.Ready()
	p.Advance()
	// Node 3 adopted node 2's sets too and answers with them: that completes consensus.
	if err := p.Step(401*time.Millisecond, join(3, 4)); err != nil {
		t.Fatal(err)
	}
	if p.State() != Commit {
		t.Fatalf("state %v after every survivor's JOIN, want COMMIT (consensus %v)", p.State(), p.consensusList)
	}
	out := p.Ready().Messages
	if len(out) != 1 || out[0].Type != TypeCommitToken || out[0].To != 2 {
		t.Fatalf("want the commit token to node 2, got %+v", out)
	}
}
