package knet

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestLinksRandom drives two nodes over 1..8 links of random priorities in every mode, with
// links cut and healed at random and random one-way delays, and checks after every step
// that the routing agrees with the link states: passive routes on the one connected link of
// highest priority (lowest number among equals), active on every connected link, rr on one
// of them; a host is reachable exactly when a link is up; each link's events alternate up
// and down. The seed is printed for replay.
func TestLinksRandom(t *testing.T) {
	seed := uint64(1203)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	ups, downs := 0, 0
	for round := 0; round < 40; round++ {
		mode := LinkMode(rng.IntN(3))
		n := 1 + rng.IntN(MaxLink)
		cfg := CorosyncLinkConfig(time.Duration(1000+rng.IntN(5000)) * ms)
		p := newPair(t, mode, n, cfg)
		prio := make([]uint8, n)
		for i := range prio {
			prio[i] = uint8(rng.IntN(3))
			c := cfg
			c.Priority = prio[i]
			p.nodes[1].AddLink(2, uint8(i), c)
			p.nodes[2].AddLink(1, uint8(i), c)
		}
		p.delay = time.Duration(10+rng.IntN(2000)) * time.Microsecond
		state := map[[2]int]bool{} // (node, link) -> up, from the events
		for step := 0; step < 30; step++ {
			if rng.IntN(3) == 0 {
				l := rng.IntN(n)
				p.cut[l] = !p.cut[l]
			}
			p.run(p.now + time.Duration(rng.IntN(4000))*ms)
			for _, ev := range p.events() {
				node := 1
				if ev.Host == 1 {
					node = 2
				}
				k := [2]int{node, int(ev.Link)}
				if state[k] == ev.Up {
					t.Fatalf("round %d step %d: link %d of node %d: %v twice", round, step, ev.Link, node, ev.Up)
				}
				state[k] = ev.Up
				if ev.Up {
					ups++
				} else {
					downs++
				}
			}
			for node, peer := range map[HostID]HostID{1: 2, 2: 1} {
				l := p.nodes[node]
				var up []uint8
				for _, st := range l.Status() {
					if st.Connected != state[[2]int{int(node), int(st.Link)}] {
						t.Fatalf("round %d: status and events disagree on link %d", round, st.Link)
					}
					if st.Connected {
						up = append(up, st.Link)
					}
				}
				got := l.Route(nil, peer)
				if l.Reachable(peer) != (len(up) > 0) {
					t.Fatalf("round %d: reachable %v with links %v up", round, l.Reachable(peer), up)
				}
				switch {
				case len(up) == 0:
					if len(got) != 0 {
						t.Fatalf("round %d: routed on %v with no link up", round, got)
					}
				case mode == Active:
					if !slices.Equal(got, up) {
						t.Fatalf("round %d: active routes on %v, up %v", round, got, up)
					}
				case mode == RR:
					if len(got) != 1 || !slices.Contains(up, got[0]) {
						t.Fatalf("round %d: rr routes on %v, up %v", round, got, up)
					}
				default:
					best := up[0]
					for _, u := range up {
						if prio[u] > prio[best] {
							best = u
						}
					}
					if !slices.Equal(got, []uint8{best}) {
						t.Fatalf("round %d: passive routes on %v, best of %v by %v is %d", round, got, up, prio, best)
					}
				}
			}
		}
	}
	t.Logf("%d links came up, %d went down", ups, downs)
	if ups < 100 || downs < 50 {
		t.Errorf("only %d ups and %d downs: the test no longer exercises link changes", ups, downs)
	}
}
