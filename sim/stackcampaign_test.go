package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
	"pgregory.net/rapid"
)

// TestStackCampaign is the full-stack campaign's CI run: seeds 1..2000 of the default
// full-stack schedules (3–5 nodes running stack.Stack, CPG groups joined and left, SAFE and
// AGREED traffic, one message in ten fragmented, every fault kind, votequorum), every
// process-group checker and quorum exclusivity, with 0 violations. About 80 s without the
// race detector; under it (about tenfold slower) it runs 100 schedules, and -short 50.
// A failure names the seed: gototem sim --stack --seed S --schedules 1 --trace replays it.
func TestStackCampaign(t *testing.T) {
	n := 2000
	switch {
	case testing.Short():
		n = 50
	case raceEnabled:
		n = 100
	}
	start := time.Now()
	sum, err := StackCampaign(1, n, DefaultStackScheduleOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sum.Violations {
		t.Errorf("%v\nreplay: gototem sim --stack --seed %d --schedules 1 --trace", v, v.Seed)
	}
	// A campaign that delivers nothing or never changes membership proves nothing.
	if sum.Delivered < sum.Sends || sum.Rings < uint64(2*n) || sum.Faults < uint64(5*n) {
		t.Errorf("campaign too quiet: %+v", sum)
	}
	t.Logf("%d full-stack schedules in %v: %d faults, %d membership changes, %d sent, %d delivered",
		n, time.Since(start).Round(time.Millisecond), sum.Faults, sum.Rings, sum.Sends, sum.Delivered)
}

// TestRapidStackFaults is the full-stack state-machine property test: rapid draws a cluster
// of 3–5 nodes running stack.Stack and a sequence of faults (partition, heal, one-way cut,
// crash, restart, pause, resume, loss burst) interleaved with process-group traffic (SAFE and
// AGREED messages to any group the node is in, small or fragmented) and group joins and
// leaves; the process-group checkers and quorum exclusivity run after the actions, liveness
// once everything is repaired. rapid shrinks a failure to a minimal action list.
func TestRapidStackFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		o := DefaultStackScheduleOptions()
		nodes := rapid.IntRange(o.MinNodes, o.MaxNodes).Draw(rt, "nodes")
		seed := rapid.Uint64().Draw(rt, "seed")
		link := FaultyLink
		o.Link = link
		r, err := newStackRun(seed, nodes, o, nil)
		if err != nil {
			rt.Fatal(err)
		}
		s := r.s
		fail := func(err error) {
			rt.Fatalf("%v\nsimulator seed %d, %d nodes; the action list above replays it", err, seed, nodes)
		}
		node := func(rt *rapid.T, label string) *Node {
			return s.Node(srp.NodeID(rapid.IntRange(1, nodes).Draw(rt, label)))
		}
		rt.Repeat(map[string]func(*rapid.T){
			"run": func(rt *rapid.T) {
				if err := s.run(s.now + time.Duration(rapid.IntRange(50, 3000).Draw(rt, "ms"))*time.Millisecond); err != nil {
					fail(err)
				}
			},
			"partition": func(rt *rapid.T) {
				groups := make([][]srp.NodeID, 2)
				for id := 1; id <= nodes; id++ {
					g := rapid.IntRange(0, 1).Draw(rt, fmt.Sprintf("group of n%d", id))
					groups[g] = append(groups[g], srp.NodeID(id))
				}
				s.Partition(groups...)
			},
			"heal": func(rt *rapid.T) { s.Heal() },
			"oneway": func(rt *rapid.T) {
				a, b := node(rt, "from"), node(rt, "to")
				if a != b {
					s.CutOneWay(a.ID, b.ID)
				}
			},
			"crash": func(rt *rapid.T) { s.Crash(node(rt, "node").ID) },
			"restart": func(rt *rapid.T) {
				if err := s.Restart(node(rt, "node").ID); err != nil {
					fail(err)
				}
			},
			"pause": func(rt *rapid.T) { s.Pause(node(rt, "node").ID) },
			"resume": func(rt *rapid.T) {
				if err := s.Resume(node(rt, "node").ID); err != nil {
					fail(err)
				}
			},
			"loss": func(rt *rapid.T) {
				p := float64(rapid.IntRange(20, 90).Draw(rt, "loss%")) / 100
				if err := s.LossBurst(p, time.Duration(rapid.IntRange(100, 3000).Draw(rt, "ms"))*time.Millisecond); err != nil {
					rt.Fatal(err)
				}
			},
			"send": func(rt *rapid.T) {
				n := node(rt, "node")
				p := r.proto(n)
				gs := r.groupsOf(n.ID)
				if p == nil || len(gs) == 0 {
					return
				}
				g := gs[rapid.IntRange(0, len(gs)-1).Draw(rt, "group")]
				size := rapid.SampledFrom([]int{1, 100, 1300, 1500, 4000}).Draw(rt, "size")
				guar := srp.Guarantee(rapid.IntRange(0, 1).Draw(rt, "safe"))
				if err := r.send(n, p, g, guar, size); err != nil {
					fail(err)
				}
			},
			"join or leave": func(rt *rapid.T) {
				n := node(rt, "node")
				p := r.proto(n)
				if p == nil {
					return
				}
				g := o.Groups[rapid.IntRange(0, len(o.Groups)-1).Draw(rt, "group")]
				if r.joined[n.ID][g] {
					if p.LeaveGroup(s.now, g, simPID) == nil {
						r.joined[n.ID][g] = false
					}
				} else if p.JoinGroup(s.now, g, simPID) == nil {
					r.joined[n.ID][g] = true
				}
				if err := s.drain(n); err != nil {
					fail(err)
				}
			},
			"": func(rt *rapid.T) {
				if err := s.Check(); err != nil {
					fail(err)
				}
			},
		})
		r.stopped = true
		if err := r.check(false); err != nil {
			fail(err)
		}
		s.Heal()
		for _, n := range s.nodes {
			if n.paused {
				if err := s.Resume(n.ID); err != nil {
					fail(err)
				}
			}
			if !n.up {
				if err := s.Restart(n.ID); err != nil {
					fail(err)
				}
			}
		}
		if err := r.liveness(); err != nil {
			fail(err)
		}
		if err := r.check(true); err != nil {
			fail(err)
		}
	})
}
