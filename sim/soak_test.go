package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// TestSubSecondSoak is corosync#232's question in the simulator: 8 nodes with corosync.conf's
// token 300 ms and token_coefficient 0 (consensus 360 ms, token_retransmit 71 ms), on a LAN
// with 0-5 ms jitter, 0.2% loss, some duplication and reordering, under steady traffic (30
// msgs/s a node, a third SAFE), while a random node is paused for 20-150 ms every ~1.5 s (a
// GC pause, a stalled VM: below the token). No membership change may happen: the ring must
// hold. Then a node is crashed and every survivor must install the ring without it within
// token + consensus + six rotations: the token timeout detects the failure (295 ms after the
// crash here), the consensus timeout gives the dead node up (365 ms later), and the commit
// token's two rotations and recovery form the ring (about 100 ms more with hops of up to
// 5 ms: 759 ms with the 10-minute soak, 776 ms with the 2-minute one). "token + consensus"
// alone, 660 ms, is not reachable by Totem. CI soaks 2 virtual minutes; GOTOTEM_SOAK_FULL=1
// soaks 10.
// The seed is fixed (232); GOTOTEM_SOAK_TRACE=FILE writes the timeline.
//
// With 2% loss instead the ring does not hold (seed 232: three re-formations in 2 minutes):
// every lost token costs a token_retransmit (71 ms) at that hop, and three such losses in one
// rotation of 8 hops pass the 300 ms token timeout of the nodes behind them.
func TestSubSecondSoak(t *testing.T) {
	const seed = 232
	soak := 2 * time.Minute
	if os.Getenv("GOTOTEM_SOAK_FULL") != "" {
		soak = 10 * time.Minute
	}
	if raceEnabled {
		soak = 30 * time.Second
	}
	token := 300 * time.Millisecond
	link := LinkParams{Latency: 100 * time.Microsecond, Jitter: 5 * time.Millisecond,
		Loss: 0.002, Duplicate: 0.005, Reorder: 0.02, ReorderDelay: 3 * time.Millisecond}
	cfg := corosyncTimers(1, token)
	var tr io.Writer
	if path := os.Getenv("GOTOTEM_SOAK_TRACE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tr = f
	}
	s, err := New(Options{Seed: seed, Nodes: 8, Link: &link, StartSpread: 100 * time.Millisecond, Trace: tr,
		Config: func(id srp.NodeID, _ int) srp.Config { return corosyncTimers(id, token) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: token %v, consensus %v, join %v, token_retransmit %v, soak %v", seed, cfg.Token, cfg.Consensus, cfg.Join, cfg.TokenRetransmit, soak)
	if err := s.StartWorkload(Workload{Rate: 30, SafeFraction: 0.3, MinSize: 8, MaxSize: 1024}); err != nil {
		t.Fatal(err)
	}
	if err := s.RunUntil(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	all := s.NodeIDs()
	base := regularRings(s)
	if !s.oneRing(all) {
		t.Fatalf("no single 8-node ring after 5 s: rings %v", base)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	start := s.Now()
	pauses := 0
	var longest time.Duration
	for at := start; ; {
		at += time.Duration(rng.ExpFloat64() * float64(1500*time.Millisecond))
		if at >= start+soak {
			break // no pause may overlap the failover measured below
		}
		id := all[rng.IntN(len(all))]
		d := time.Duration(20+rng.IntN(131)) * time.Millisecond
		longest = max(longest, d)
		pauses++
		s.At(at, "", func() error { s.PauseFor(id, d); return nil })
	}
	if err := s.RunUntil(start + soak + 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, r := range regularRings(s) {
		if !slices.Contains(base, r) {
			changes = append(changes, r)
		}
	}
	if len(changes) > 0 {
		t.Fatalf("%d false membership changes during the soak (%d pauses up to %v): rings %v",
			len(changes), pauses, longest, changes)
	}
	st := s.Stats()
	t.Logf("soak %v: %d pauses (longest %v), %d delivered, no membership change", soak, pauses, longest, st.Delivered)

	// kill -9: node 8 crashes; every survivor must deliver a regular configuration without it.
	crashAt := s.Now()
	s.Crash(8)
	survivors := all[:7]
	var formed time.Duration
	for s.Now() < crashAt+10*time.Second {
		if err := s.RunUntil(s.Now() + time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if at, ok := installedWithout(s, survivors, 8, crashAt); ok {
			formed = at - crashAt
			break
		}
	}
	// After the consensus timeout: the commit token's two rotations and recovery's (about
	// three) of 7-8 hops, each hop at most latency + jitter.
	hop := link.Latency + link.Jitter
	bound := cfg.Token + cfg.Consensus + 6*8*hop
	if formed == 0 || formed > bound {
		t.Fatalf("after the crash of node 8 the survivors formed a ring in %v (0: not within 10 s); bound token + consensus + 6 rotations of %v hops = %v", formed, hop, bound)
	}
	s.StopWorkload()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	t.Logf("crash of node 8 -> new 7-node ring on every survivor in %v (token %v + consensus %v = %v)",
		formed, cfg.Token, cfg.Consensus, cfg.Token+cfg.Consensus)
}

// corosyncTimers is what corosync.conf's "token: T, token_coefficient: 0" gives
// (totemconfig.c's derivations, as srp.DefaultConfig makes them): token_retransmit
// T/4.2, hold 0.8 of it less 10 ms, consensus 1.2 T; join, merge and downcheck keep their
// defaults (50 ms, 200 ms, 1 s).
func corosyncTimers(id srp.NodeID, token time.Duration) srp.Config {
	c := srp.DefaultConfig(id, 2)
	c.Token = token
	c.TokenRetransmit = time.Duration(float64(token) / 4.2)
	c.Hold = max(time.Duration(float64(c.TokenRetransmit)*0.8)-10*time.Millisecond, time.Millisecond)
	c.Consensus = token * 12 / 10
	return c
}

// regularRings lists the regular rings installed so far, in the order first seen.
func regularRings(s *Sim) []string {
	seen := map[srp.RingID]bool{}
	var out []string
	for _, id := range s.NodeIDs() {
		for _, e := range s.History().Logs[id] {
			if e.Kind == EntryConfig && e.Config.Kind == srp.Regular && !seen[e.Config.RingID] {
				seen[e.Config.RingID] = true
				out = append(out, fmt.Sprintf("%v%v", e.Config.RingID, e.Config.Members))
			}
		}
	}
	return out
}

// oneRing: every id's last regular configuration is the same ring with exactly ids.
func (s *Sim) oneRing(ids []srp.NodeID) bool {
	var ring srp.RingID
	for i, id := range ids {
		var last *srp.Configuration
		for _, e := range s.History().Logs[id] {
			if e.Kind == EntryConfig && e.Config.Kind == srp.Regular {
				last = e.Config
			}
		}
		if last == nil || len(last.Members) != len(ids) || (i > 0 && last.RingID != ring) {
			return false
		}
		ring = last.RingID
	}
	return true
}

// installedWithout reports when the last of survivors delivered a regular configuration
// without victim after since.
func installedWithout(s *Sim, survivors []srp.NodeID, victim srp.NodeID, since time.Duration) (time.Duration, bool) {
	var latest time.Duration
	for _, id := range survivors {
		found := false
		for _, e := range s.History().Logs[id] {
			if e.Kind != EntryConfig || e.Config.Kind != srp.Regular || e.At < since {
				continue
			}
			has := false
			for _, m := range e.Config.Members {
				has = has || m == victim
			}
			if !has && len(e.Config.Members) == len(survivors) {
				found = true
				latest = max(latest, e.At)
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	return latest, true
}
