package quorum

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// These tests replay every worked example of votequorum.md §13 with the same numbers, through
// the same message exchange real nodes run (NODEINFO in each sync, RECONFIGURE for admin ops).

func bootAll(c *cluster, n int, cfg Config) {
	cfg.Nodelist = nodelist(n)
	for i := 1; i <= n; i++ {
		c.boot(NodeID(i), cfg)
	}
}

// §13.A: 5 nodes, no options.
func TestExampleA_FiveNodes(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 5, Config{})
	c.expect("node alone at boot", state{false, 5, 3, 1}, 1)
	c.split(span(1, 3))
	c.expect("three nodes up", state{true, 5, 3, 3}, 1, 2, 3)
	c.split(span(1, 5))
	c.expect("all five", state{true, 5, 3, 5}, span(1, 5)...)
	c.split(span(1, 3), span(4, 5))
	c.expect("split, left side", state{true, 5, 3, 3}, 1, 2, 3)
	c.expect("split, right side: Activity blocked, Q stays 3", state{false, 5, 3, 2}, 4, 5)
}

// §13.B: 4 nodes split 2|2 without a tie breaker: both halves blocked.
func TestExampleB_EvenSplit(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 4, Config{})
	c.split(span(1, 4))
	c.expect("all up", state{true, 4, 3, 4}, span(1, 4)...)
	c.split(span(1, 2), span(3, 4))
	c.expect("2|2", state{false, 4, 3, 2}, span(1, 4)...)
}

// §13.C: 4 nodes with auto_tie_breaker (lowest, then a list).
func TestExampleC_AutoTieBreaker(t *testing.T) {
	t.Run("lowest", func(t *testing.T) {
		c := newCluster(t)
		bootAll(c, 4, Config{AutoTieBreaker: true})
		c.split(span(1, 4))
		if got := c.nodes[3].LowestNodeID(); got != 1 {
			t.Fatalf("lowest_node_id = %d, want 1", got)
		}
		c.split(span(1, 2), span(3, 4))
		c.expect("{1,2} has node 1: quorate with 2 of 4", state{true, 4, 3, 2}, 1, 2)
		c.expect("{3,4}", state{false, 4, 3, 2}, 3, 4)
	})
	t.Run("node 1 dies first", func(t *testing.T) {
		c := newCluster(t)
		bootAll(c, 4, Config{AutoTieBreaker: true})
		c.split(span(1, 4))
		c.kill(1)
		c.split(span(2, 4))
		c.expect("4→3", state{true, 4, 3, 3}, 2, 3, 4)
		if got := c.nodes[4].LowestNodeID(); got != 2 {
			t.Fatalf("lowest_node_id = %d, want 2", got)
		}
		c.split(span(2, 3), []NodeID{4})
		c.expect("{2,3}: lost 1 < 3, node 2 present", state{true, 4, 3, 2}, 2, 3)
		c.expect("{4}: T=1 ≠ 2", state{false, 4, 3, 1}, 4)
	})
	t.Run("list 3 1", func(t *testing.T) {
		c := newCluster(t)
		bootAll(c, 4, Config{AutoTieBreaker: true, AutoTieBreakerNode: "3 1"})
		if c.nodes[1].ATB() != ATBList {
			t.Fatalf("atb mode %v, want list", c.nodes[1].ATB())
		}
		c.split(span(1, 4))
		c.split(span(1, 2), span(3, 4))
		c.expect("{3,4}: 3 is first in the list", state{true, 4, 3, 2}, 3, 4)
		c.expect("{1,2}: 3 was in the previous ring", state{false, 4, 3, 2}, 1, 2)
	})
}

// §13.D: 5 nodes, ATB + WFA (ATB needs WFA with an odd vote count).
func TestExampleD_OddATBWithWFA(t *testing.T) {
	cfg := Config{AutoTieBreaker: true, WaitForAll: ptr(true)}
	t.Run("direct split", func(t *testing.T) {
		c := newCluster(t)
		bootAll(c, 5, cfg)
		if c.nodes[1].ATB() != ATBLowest {
			t.Fatalf("ATB disabled despite wait_for_all")
		}
		c.split(span(1, 5))
		c.split(span(1, 2), span(3, 5))
		c.expect("{1,2}: lost 3, not < 3", state{false, 5, 3, 2}, 1, 2)
		c.expect("{3,4,5}", state{true, 5, 3, 3}, 3, 4, 5)
	})
	t.Run("after node 5 died", func(t *testing.T) {
		c := newCluster(t)
		bootAll(c, 5, cfg)
		c.split(span(1, 5))
		c.kill(5)
		c.split(span(1, 4))
		c.split(span(1, 2), span(3, 4))
		c.expect("{1,2}: 2 of 5 votes by ATB", state{true, 5, 3, 2}, 1, 2)
		c.expect("{3,4}", state{false, 5, 3, 2}, 3, 4)
	})
	t.Run("without WFA ATB is disabled", func(t *testing.T) {
		m, err := New(Config{NodeID: 1, Nodelist: nodelist(5), AutoTieBreaker: true}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.ATB() != ATBNone || len(m.Warnings()) == 0 {
			t.Fatalf("ATB %v warnings %q: want disabled with a warning", m.ATB(), m.Warnings())
		}
	})
}

// §13.E: two_node.
func TestExampleE_TwoNode(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 2, Config{TwoNode: true})
	c.expect("node 1 alone at boot: WFA holds it", state{false, 2, 1, 1}, 1)
	if !c.nodes[1].WaitingForAll() {
		t.Fatalf("wait_for_all_status not set")
	}
	c.split(span(1, 2))
	c.expect("both up", state{true, 2, 1, 2}, 1, 2)
	c.split([]NodeID{1}, []NodeID{2})
	c.expect("split 1|1: both stay quorate (fencing decides)", state{true, 2, 1, 1}, 1, 2)
	c.kill(1)
	c.boot(1, Config{TwoNode: true, Nodelist: nodelist(2)})
	c.expect("node 1 reboots alone: WFA again", state{false, 2, 1, 1}, 1)
	c.split(span(1, 2))
	c.expect("sees node 2", state{true, 2, 1, 2}, 1, 2)

	c2 := newCluster(t)
	bootAll(c2, 2, Config{TwoNode: true, WaitForAll: ptr(false)})
	c2.expect("wait_for_all: 0: alone at boot is quorate", state{true, 2, 1, 1}, 1)
}

// §13.F: 8 nodes, LMS (10 s) + WFA, nodes fail in a cascade; then the ATB variant.
func TestExampleF_LastManStandingCascade(t *testing.T) {
	for _, atb := range []bool{false, true} {
		t.Run(map[bool]string{false: "LMS+WFA", true: "LMS+WFA+ATB"}[atb], func(t *testing.T) {
			c := newCluster(t)
			bootAll(c, 8, Config{LastManStanding: true, WaitForAll: ptr(true), AutoTieBreaker: atb})
			c.split(span(1, 8))
			c.expect("all up", state{true, 8, 5, 8}, span(1, 8)...)

			for _, id := range []NodeID{8, 7, 6} {
				c.kill(id)
			}
			c.split(span(1, 5))
			c.expect("3 die, before window", state{true, 8, 5, 5}, span(1, 5)...)
			c.advance(9 * time.Second)
			c.expect("3 die, 9 s later", state{true, 8, 5, 5}, span(1, 5)...)
			c.advance(time.Second)
			c.expect("3 die, after window", state{true, 5, 3, 5}, span(1, 5)...)

			c.kill(5)
			c.kill(4)
			c.split(span(1, 3))
			c.expect("2 die, before window", state{true, 5, 3, 3}, span(1, 3)...)
			c.advance(10 * time.Second)
			c.expect("2 die, after window", state{true, 3, 2, 3}, span(1, 3)...)

			c.kill(3)
			c.split(span(1, 2))
			c.expect("1 dies, before window", state{true, 3, 2, 2}, 1, 2)
			c.advance(10 * time.Second)
			c.expect("1 dies, after window", state{true, 2, 2, 2}, 1, 2)

			c.kill(2)
			c.split([]NodeID{1})
			if !atb {
				c.expect("last dies: 1 < Q=2, inquorate", state{false, 2, 2, 1}, 1)
				if !c.nodes[1].WaitingForAll() {
					t.Errorf("WFA not re-armed after losing quorum")
				}
				c.advance(time.Minute)
				c.expect("stays inquorate", state{false, 2, 2, 1}, 1)
				return
			}
			c.expect("last dies: quorate by ATB, window running", state{true, 2, 2, 1}, 1)
			c.advance(10 * time.Second)
			c.expect("after window", state{true, 1, 1, 1}, 1)
		})
	}
}

// §13.G: "8 → 4 → 2 → 1": LMS alone cannot survive losing half at once; LMS+ATB can.
func TestExampleG_HalvingWithLMS(t *testing.T) {
	t.Run("LMS alone", func(t *testing.T) {
		c := newCluster(t)
		bootAll(c, 8, Config{LastManStanding: true})
		c.split(span(1, 8))
		c.split(span(1, 4), span(5, 8))
		c.advance(time.Minute)
		c.expect("both halves blocked", state{false, 8, 5, 4}, span(1, 8)...)
	})
	t.Run("LMS+ATB", func(t *testing.T) {
		c := newCluster(t)
		bootAll(c, 8, Config{LastManStanding: true, AutoTieBreaker: true})
		c.split(span(1, 8))
		c.split(span(1, 4), span(5, 8))
		c.expect("{1..4} quorate by ATB", state{true, 8, 5, 4}, span(1, 4)...)
		c.expect("{5..8}", state{false, 8, 5, 4}, span(5, 8)...)
		c.advance(10 * time.Second)
		c.expect("after window", state{true, 4, 3, 4}, span(1, 4)...)
		c.expect("other half unchanged", state{false, 8, 5, 4}, span(5, 8)...)

		c.split(span(1, 2), span(3, 4))
		c.expect("{1,2} by ATB", state{true, 4, 3, 2}, 1, 2)
		c.expect("{3,4}", state{false, 4, 3, 2}, 3, 4)
		c.advance(10 * time.Second)
		c.expect("after window", state{true, 2, 2, 2}, 1, 2)

		c.split([]NodeID{1}, []NodeID{2})
		c.expect("{1} by ATB", state{true, 2, 2, 1}, 1)
		c.expect("{2}", state{false, 2, 2, 1}, 2)
		c.advance(10 * time.Second)
		c.expect("after window", state{true, 1, 1, 1}, 1)
		c.expect("{2} stays blocked", state{false, 2, 2, 1}, 2)
	})
}

// §13.H: after F's first window (E=5, Q=3) node 6 comes back.
func TestExampleH_NodeReturnsAfterLMS(t *testing.T) {
	c := newCluster(t)
	cfg := Config{LastManStanding: true, WaitForAll: ptr(true), Nodelist: nodelist(8)}
	bootAll(c, 8, cfg)
	c.split(span(1, 8))
	for _, id := range []NodeID{8, 7, 6} {
		c.kill(id)
	}
	c.split(span(1, 5))
	c.advance(10 * time.Second)
	c.expect("after window", state{true, 5, 3, 5}, span(1, 5)...)

	c.boot(6, cfg)
	c.expect("node 6 alone: configured E, WFA", state{false, 8, 5, 1}, 6)
	c.split(span(1, 6))
	c.expect("joined", state{true, 6, 4, 6}, span(1, 6)...)
	if c.nodes[6].WaitingForAll() {
		t.Errorf("node 6 still waiting for all")
	}
}

// §13.I: weighted votes.
func TestExampleI_WeightedVotes(t *testing.T) {
	c := newCluster(t)
	nl := nodelist(4)
	nl[0].Votes = 3
	for i := 1; i <= 4; i++ {
		c.boot(NodeID(i), Config{Nodelist: nl})
	}
	c.split(span(1, 4))
	c.expect("all up", state{true, 6, 4, 6}, span(1, 4)...)
	c.split(span(1, 2), span(3, 4))
	c.expect("{1,2}", state{true, 6, 4, 4}, 1, 2)
	c.expect("{3,4}", state{false, 6, 4, 2}, 3, 4)
}

// §13.J: a quorum device with 2 nodes.
func TestExampleJ_Qdevice(t *testing.T) {
	c := newCluster(t)
	cfg := Config{Device: DeviceConfig{Model: "net"}}
	bootAll(c, 2, cfg)
	c.expect("alone, no device yet", state{false, 3, 2, 1}, 1)
	c.split(span(1, 2))
	c.expect("both up", state{true, 3, 2, 2}, 1, 2)
	for _, id := range []NodeID{1, 2} {
		if err := c.nodes[id].QdeviceRegister(c.now, "Qdevice"); err != nil {
			t.Fatal(err)
		}
		c.drain()
		c.device[id] = true
		if err := c.nodes[id].QdevicePoll(c.now, "Qdevice", true, c.nodes[id].CurrentRing()); err != nil {
			t.Fatal(err)
		}
		c.drain()
	}
	c.expect("device votes for both", state{true, 3, 2, 3}, 1, 2)
	// The arbiter gives the vote to one side only.
	c.device[1], c.device[2] = true, false
	c.split([]NodeID{1}, []NodeID{2})
	c.expect("side with the vote", state{true, 3, 2, 2}, 1)
	c.expect("side without", state{false, 3, 2, 1}, 2)

	// The device stops polling: after the timeout its vote is withdrawn.
	delete(c.device, 1)
	c.advance(DefaultQdeviceTimeout)
	c.expect("device lost", state{false, 3, 2, 1}, 1)
}

// §13.K: two_node with 3 nodes is accepted and splits brain.
func TestExampleK_TwoNodeMisconfigured(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 3, Config{TwoNode: true})
	c.split(span(1, 3))
	c.expect("all up", state{true, 3, 2, 3}, 1, 2, 3)
	c.split(span(1, 2), []NodeID{3})
	c.expect("{1,2}", state{true, 3, 1, 2}, 1, 2)
	c.expect("{3}", state{true, 3, 1, 1}, 3)
}

// §13.L: administrative override with -e, undone by a reload.
func TestExampleL_AdminOverride(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 5, Config{})
	c.kill(3)
	c.kill(4)
	c.kill(5)
	c.split(span(1, 2))
	c.expect("{1,2} up", state{false, 5, 3, 2}, 1, 2)
	if err := c.nodes[1].SetExpected(c.now, 1); !errors.Is(err, ErrInvalidParam) {
		t.Fatalf("-e 1: got %v, want CS_ERR_INVALID_PARAM", err)
	}
	if err := c.nodes[1].SetExpected(c.now, 2); err != nil {
		t.Fatalf("-e 2: %v", err)
	}
	c.drain()
	c.expect("after -e 2", state{true, 2, 2, 2}, 1, 2)
	if err := c.nodes[2].Reload(c.now, c.cfgs[2]); err != nil {
		t.Fatal(err)
	}
	c.drain()
	c.expect("after reload (corosync-cfgtool -R)", state{false, 5, 3, 2}, 1, 2)
}

// Expected-votes notifications (what corosync sends votequorum trackers): every node sends one
// when an EXPECTED_VOTES reconfigure is delivered, even with the value unchanged, and one when a
// recalculation raises expected votes to the votes present (here: a node comes back after -e
// lowered them).
func TestExpectedVotesNotifications(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 3, Config{})
	c.split(span(1, 3))
	c.expect("all up", state{true, 3, 2, 3}, 1, 2, 3)
	want := func(step string, w []uint32, ids ...NodeID) {
		t.Helper()
		for _, id := range ids {
			if got := c.expects[id]; !slices.Equal(got, w) {
				t.Fatalf("%s: node %d notified %v, want %v", step, id, got, w)
			}
		}
		clear(c.expects)
	}
	clear(c.expects)
	if err := c.nodes[1].SetExpected(c.now, 3); err != nil {
		t.Fatal(err)
	}
	c.drain()
	want("-e 3 on a cluster expecting 3", []uint32{3}, 1, 2, 3)
	c.split(span(1, 2), []NodeID{3})
	clear(c.expects)
	if err := c.nodes[1].SetExpected(c.now, 2); err != nil {
		t.Fatal(err)
	}
	c.drain()
	want("-e 2 in {1,2}", []uint32{2}, 1, 2)
	c.split(span(1, 3))
	c.expect("healed", state{true, 3, 2, 3}, 1, 2, 3)
	want("node 3 back: 3 votes present", []uint32{3}, 1, 2)
}
