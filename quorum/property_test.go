package quorum

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The properties run the pure Machines through random histories on the test bus. rapid prints
// the failing seed (-rapid.seed=N replays it) and a shrunk history.

// options draws a random votequorum configuration for n nodes, never two_node. LMS is drawn
// only when lms is true (see TestPropertyLMSCanSplitBrain for why it is kept apart).
func options(t *rapid.T, n int, lms bool) Config {
	cfg := Config{Nodelist: nodelist(n)}
	if rapid.Bool().Draw(t, "weighted") {
		for i := range cfg.Nodelist {
			cfg.Nodelist[i].Votes = rapid.Uint32Range(0, 3).Draw(t, fmt.Sprintf("votes%d", i+1))
		}
	}
	if rapid.Bool().Draw(t, "wait_for_all") {
		cfg.WaitForAll = ptr(true)
	}
	if rapid.Bool().Draw(t, "auto_tie_breaker") {
		cfg.AutoTieBreaker = true
		cfg.AutoTieBreakerNode = rapid.SampledFrom([]string{"", "lowest", "highest", "2 1", fmt.Sprint(n)}).Draw(t, "atb_node")
	}
	cfg.ExpectedVotesTracking = rapid.Bool().Draw(t, "expected_votes_tracking")
	cfg.AllowDownscale = rapid.Bool().Draw(t, "allow_downscale")
	if lms {
		cfg.LastManStanding = rapid.Bool().Draw(t, "last_man_standing")
	}
	return cfg
}

// randomPartition splits ids into 1..3 non-empty groups.
func randomPartition(t *rapid.T, ids []NodeID) [][]NodeID {
	k := rapid.IntRange(1, min(3, len(ids))).Draw(t, "groups")
	groups := make([][]NodeID, k)
	for i, id := range ids {
		g := i
		if i >= k {
			g = rapid.IntRange(0, k-1).Draw(t, fmt.Sprintf("group of %d", id))
		}
		groups[g] = append(groups[g], id)
	}
	return groups
}

// shuffleSenders lets rapid choose how the members' sync messages interleave in each ring.
func shuffleSenders(rt *rapid.T, c *cluster) {
	c.senderOrder = func(members []NodeID) []int {
		idx := make([]int, len(members))
		for i := range idx {
			idx[i] = i
		}
		return rapid.Permutation(idx).Draw(rt, "sender order")
	}
}

// quorateGroups lists the current rings that hold at least one quorate node.
func quorateGroups(c *cluster) [][]NodeID {
	seen := map[string]bool{}
	var out [][]NodeID
	for _, id := range c.ids() {
		g := c.group[id]
		key := fmt.Sprint(g)
		if seen[key] {
			continue
		}
		seen[key] = true
		for _, m := range g {
			if c.nodes[m].Quorate() {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// Safety: whatever the partitions, restarts and timer firings, at most one partition is
// quorate, given that every node started from the same configuration and went through the same
// history. This holds for any mix of weighted votes, wait_for_all, expected_votes_tracking and
// allow_downscale. auto_tie_breaker is checked separately below (it needs calmer histories);
// last_man_standing, two_node and administrative overrides give the guarantee up by design
// (see the split-brain tests in safety_test.go).
func TestPropertyNoTwoQuoratePartitions(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(2, 7).Draw(rt, "nodes")
		cfg := options(rt, n, false)
		cfg.AutoTieBreaker, cfg.AutoTieBreakerNode = false, ""
		c := newCluster(t)
		c.t = rt
		shuffleSenders(rt, c)
		for i := 1; i <= n; i++ {
			c.boot(NodeID(i), cfg)
		}
		c.split(span(1, NodeID(n)))
		down := map[NodeID]bool{}
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for s := 0; s < steps; s++ {
			switch rapid.IntRange(0, 3).Draw(rt, "action") {
			case 0: // a node dies
				if len(c.nodes) > 1 {
					id := rapid.SampledFrom(c.ids()).Draw(rt, "kill")
					c.kill(id)
					down[id] = true
				}
			case 1: // a dead node restarts
				var dead []NodeID
				for id := range down {
					dead = append(dead, id)
				}
				slices.Sort(dead)
				if len(dead) > 0 {
					id := rapid.SampledFrom(dead).Draw(rt, "restart")
					delete(down, id)
					c.boot(id, cfg)
				}
			case 2:
				c.advance(time.Duration(rapid.IntRange(0, 20).Draw(rt, "seconds")) * time.Second)
			}
			c.split(randomPartition(rt, c.ids())...)
			if q := quorateGroups(c); len(q) > 1 {
				rt.Fatalf("step %d: disjoint partitions quorate at once: %v", s, q)
			}
		}
	})
}

// rings returns the current rings, each once, in order of their lowest member.
func rings(c *cluster) [][]NodeID {
	seen := map[NodeID]bool{}
	var out [][]NodeID
	for _, id := range c.ids() {
		if !seen[id] {
			g := c.group[id]
			for _, m := range g {
				seen[m] = true
			}
			out = append(out, g)
		}
	}
	return out
}

// auto_tie_breaker's "fewer than quorum members lost" test assumes the other side is made of the
// nodes that just left. It holds when each membership change only splits a ring or only merges
// rings (a node dying is a split, a restart a new ring), every node has one vote and
// wait_for_all is on (corosync demands it only for odd sizes); the
// split-brain tests in safety_test.go show the mixed change and the weighted votes that defeat it.
func TestPropertyATBSafeUnderSplitsAndMerges(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(2, 7).Draw(rt, "nodes")
		cfg := options(rt, n, false)
		cfg.AutoTieBreaker = true
		// The tie test counts lost members, not votes: it assumes one vote per node.
		cfg.Nodelist = nodelist(n)
		// Without wait_for_all a freshly started node alone is tie-broken quorate in list mode
		// (its previous membership is empty): see safety_test.go.
		cfg.WaitForAll = ptr(true)
		c := newCluster(t)
		c.t = rt
		shuffleSenders(rt, c)
		for i := 1; i <= n; i++ {
			c.boot(NodeID(i), cfg)
		}
		c.split(span(1, NodeID(n)))
		down := map[NodeID]bool{}
		for s := rapid.IntRange(1, 15).Draw(rt, "steps"); s > 0; s-- {
			rs := rings(c)
			switch rapid.IntRange(0, 3).Draw(rt, "action") {
			case 0: // split one ring in two
				r := rapid.SampledFrom(rs).Draw(rt, "ring")
				if len(r) > 1 {
					perm := rapid.Permutation(r).Draw(rt, "perm")
					k := rapid.IntRange(1, len(r)-1).Draw(rt, "cut")
					c.split(perm[:k], perm[k:])
				}
			case 1: // merge two rings
				if len(rs) > 1 {
					i := rapid.IntRange(0, len(rs)-1).Draw(rt, "a")
					j := rapid.IntRange(0, len(rs)-1).Draw(rt, "b")
					if i != j {
						c.ring(append(slices.Clone(rs[i]), rs[j]...))
					}
				}
			case 2: // a node dies; its ring re-forms without it
				if len(c.nodes) > 1 {
					id := rapid.SampledFrom(c.ids()).Draw(rt, "kill")
					rest := slices.DeleteFunc(slices.Clone(c.group[id]), func(x NodeID) bool { return x == id })
					c.kill(id)
					down[id] = true
					if len(rest) > 0 {
						c.ring(rest)
					}
				}
			case 3: // a dead node restarts alone
				var dead []NodeID
				for id := range down {
					dead = append(dead, id)
				}
				slices.Sort(dead)
				if len(dead) > 0 {
					id := rapid.SampledFrom(dead).Draw(rt, "restart")
					delete(down, id)
					c.boot(id, cfg)
				}
			}
			if q := quorateGroups(c); len(q) > 1 {
				rt.Fatalf("disjoint partitions quorate at once: %v (rings %v)", q, rings(c))
			}
		}
	})
}

// two_node deliberately gives up that safety: after both nodes have been together, either
// survives alone, so both halves of a split are quorate and fencing must decide (§7.1).
func TestPropertyTwoNodeBothHalvesQuorate(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := newCluster(t)
		c.t = rt
		shuffleSenders(rt, c)
		cfg := Config{TwoNode: true, Nodelist: nodelist(2)}
		if rapid.Bool().Draw(rt, "explicit wait_for_all") {
			cfg.WaitForAll = ptr(rapid.Bool().Draw(rt, "wait_for_all"))
		}
		c.boot(1, cfg)
		c.boot(2, cfg)
		together := false
		for s := rapid.IntRange(1, 8).Draw(rt, "steps"); s > 0; s-- {
			if rapid.Bool().Draw(rt, "join") {
				c.split(span(1, 2))
				together = true
				c.expect("together", state{true, 2, 1, 2}, 1, 2)
				continue
			}
			c.split([]NodeID{1}, []NodeID{2})
			if together {
				c.expect("split after being together: both quorate", state{true, 2, 1, 1}, 1, 2)
			}
		}
	})
}

// wait_for_all: however nodes boot and partitions form, nobody is quorate before one ring has
// held every node; once it has, everyone is.
func TestPropertyWaitForAll(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(2, 7).Draw(rt, "nodes")
		cfg := options(rt, n, true)
		cfg.WaitForAll = ptr(true)
		for i := range cfg.Nodelist {
			cfg.Nodelist[i].Votes = max(cfg.Nodelist[i].Votes, 1)
		}
		c := newCluster(t)
		c.t = rt
		shuffleSenders(rt, c)
		booted := []NodeID{}
		for s := rapid.IntRange(1, 10).Draw(rt, "steps"); s > 0; s-- {
			if len(booted) < n && rapid.Bool().Draw(rt, "boot") {
				id := NodeID(len(booted) + 1)
				booted = append(booted, id)
				c.boot(id, cfg)
			}
			if len(booted) == 0 {
				continue
			}
			groups := randomPartition(rt, booted)
			if len(groups) == 1 && len(booted) == n {
				continue // that would be the first ring with everyone
			}
			c.split(groups...)
			c.advance(time.Duration(rapid.IntRange(0, 15).Draw(rt, "seconds")) * time.Second)
			for _, id := range booted {
				if c.nodes[id].Quorate() {
					rt.Fatalf("node %d quorate before all nodes were seen (booted %v, rings %v)", id, booted, groups)
				}
			}
		}
		for len(booted) < n {
			id := NodeID(len(booted) + 1)
			booted = append(booted, id)
			c.boot(id, cfg)
		}
		c.split(booted)
		for _, id := range booted {
			if !c.nodes[id].Quorate() {
				rt.Fatalf("node %d inquorate with every node present: %v", id, c.state(id))
			}
		}
	})
}

// last_man_standing: in a failure cascade, expected votes step down only when a window has
// passed since the node's last membership change, and never to 1 unless auto_tie_breaker is on
// (without it, two nodes need both votes).
func TestPropertyLastManStanding(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(2, 8).Draw(rt, "nodes")
		window := time.Duration(rapid.IntRange(1, 20).Draw(rt, "window s")) * time.Second
		atb := rapid.Bool().Draw(rt, "auto_tie_breaker")
		cfg := Config{Nodelist: nodelist(n), LastManStanding: true, LastManStandingWindow: window,
			WaitForAll: ptr(true), AutoTieBreaker: atb}
		c := newCluster(t)
		c.t = rt
		shuffleSenders(rt, c)
		c.onTick = func(id NodeID, before, after state) {
			if after.Expected < before.Expected && c.now-c.lastSync[id] < window {
				rt.Fatalf("node %d: expected %d→%d only %v after its last membership change (window %v)",
					id, before.Expected, after.Expected, c.now-c.lastSync[id], window)
			}
		}
		for i := 1; i <= n; i++ {
			c.boot(NodeID(i), cfg)
		}
		c.split(span(1, NodeID(n)))
		prev := map[NodeID]uint32{}
		for s := rapid.IntRange(1, 10).Draw(rt, "steps"); s > 0 && len(c.nodes) > 0; s-- {
			for _, id := range c.ids() {
				prev[id] = c.state(id).Expected
			}
			switch rapid.IntRange(0, 2).Draw(rt, "action") {
			case 0:
				if len(c.nodes) > 1 {
					k := rapid.IntRange(1, len(c.nodes)-1).Draw(rt, "deaths")
					for _, id := range rapid.Permutation(c.ids()).Draw(rt, "order")[:k] {
						c.kill(id)
					}
					c.split(c.ids())
				}
			default:
				c.advance(time.Duration(rapid.IntRange(0, 2*int(window/time.Second)).Draw(rt, "seconds")) * time.Second)
			}
			for _, id := range c.ids() {
				st := c.state(id)
				if st.Expected < prev[id] && c.now-c.lastSync[id] < window {
					rt.Fatalf("node %d: expected fell %d→%d within the window", id, prev[id], st.Expected)
				}
				if !atb && st.Expected < 2 {
					rt.Fatalf("node %d: expected %d without auto_tie_breaker", id, st.Expected)
				}
			}
		}
	})
}
