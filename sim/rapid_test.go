package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
	"pgregory.net/rapid"
)

// TestRapidFaults is a state-machine property test: rapid draws a cluster of 3–7 nodes and
// a sequence of faults and workload (partition, heal, one-way cut, crash, restart, pause,
// resume, loss burst, sends, time passing); every invariant is checked after every action,
// and liveness once everything is repaired. rapid shrinks a failure to a minimal action
// list and keeps it under testdata/rapid/; the simulator seed is printed beside it.
//
// The schedule draws and the simulator's own generator are independent: rapid decides
// what happens when, the seed decides every datagram's fate. More coverage:
// go test ./sim/ -run Rapid -rapid.checks=300 -rapid.steps=100 (about 7 s).
func TestRapidFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		nodes := rapid.IntRange(3, 7).Draw(rt, "nodes")
		seed := rapid.Uint64().Draw(rt, "seed")
		link := FaultyLink
		s, err := New(Options{Seed: seed, Nodes: nodes, Token: time.Second, Link: &link, StartSpread: 100 * time.Millisecond})
		if err != nil {
			rt.Fatal(err)
		}
		fail := func(err error) {
			rt.Fatalf("%v\nsimulator seed %d, %d nodes; the action list above replays it", err, seed, nodes)
		}
		if err := s.StartWorkload(Workload{Rate: 10, SafeFraction: 0.3, MinSize: 1, MaxSize: 128}); err != nil {
			rt.Fatal(err)
		}
		node := func(rt *rapid.T, label string) srp.NodeID {
			return srp.NodeID(rapid.IntRange(1, nodes).Draw(rt, label))
		}
		rt.Repeat(map[string]func(*rapid.T){
			"run": func(rt *rapid.T) {
				d := time.Duration(rapid.IntRange(50, 4000).Draw(rt, "ms")) * time.Millisecond
				if err := s.run(s.now + d); err != nil {
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
					s.CutOneWay(a, b)
				}
			},
			"crash": func(rt *rapid.T) { s.Crash(node(rt, "node")) },
			"restart": func(rt *rapid.T) {
				if err := s.Restart(node(rt, "node")); err != nil {
					fail(err)
				}
			},
			"pause": func(rt *rapid.T) { s.Pause(node(rt, "node")) },
			"resume": func(rt *rapid.T) {
				if err := s.Resume(node(rt, "node")); err != nil {
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
				id := node(rt, "node")
				g := srp.Guarantee(rapid.IntRange(0, 1).Draw(rt, "safe"))
				_ = s.Send(id, []byte("rapid"), g) // a down or paused node refuses: fine
			},
			"": func(rt *rapid.T) {
				if err := s.Check(); err != nil {
					fail(err)
				}
			},
		})
		s.StopWorkload()
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
		if err := s.CheckLiveness(); err != nil {
			fail(err)
		}
	})
}
