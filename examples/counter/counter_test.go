package counter

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/sim"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/totem"
	"pgregory.net/rapid"
)

// simApps puts a Counter on every incarnation of every simulated node of a cluster of size
// nodes, each adding its node id every period, and returns the App with the invariant (the
// Checker over every incarnation's counter, run after every step that ran the counters).
type simApps struct {
	cluster int
	period  time.Duration
	oldRule bool
	all     []*Counter
	chk     *Checker
}

func newSimApps(cluster int, period time.Duration, oldRule bool) *simApps {
	return &simApps{cluster: cluster, period: period, oldRule: oldRule, chk: NewChecker()}
}

func (a *simApps) app(n *sim.AppNode) error {
	c := New(a.cluster)
	c.lastRegularRule = a.oldRule
	n.OnMembership(c.OnMembership)
	g, err := n.Join("counter", c)
	if err != nil {
		return err
	}
	c.Attach(g.TrySend)
	a.all = append(a.all, c)
	id := n.ID()
	var tick func()
	tick = func() {
		_ = c.Add(int64(id)) // ErrBusy during a sync: this tick's operation is skipped
		n.After(a.period, tick)
	}
	// Nodes tick out of phase, so operations of several senders are in flight together.
	n.After(a.period*time.Duration(id)/time.Duration(a.cluster+1), tick)
	return nil
}

func (a *simApps) invariants() []sim.Invariant {
	return []sim.Invariant{{Name: "counter: one history", Check: func(*sim.Sim) error { return a.chk.Check(a.all...) }}}
}

// applied and withheld count, over every incarnation, the operations applied and those
// delivered in a configuration that the rule refused (checked so a run proves something).
func (a *simApps) applied() int {
	t := 0
	for _, c := range a.all {
		_, n := c.Value()
		t += n
	}
	return t
}

// The counter on the simulator under the full-stack campaign's random schedules (StackCampaign,
// a fresh set of counters per schedule): 3–5 nodes,
// every fault kind, votequorum, the campaign's own groups beside the counter's; the counter's
// invariant after every step that ran it, the process-group checkers over its group too.
// GOTOTEM_FULL=1 runs 2000 schedules instead of 100 (20 under -race). Shown failing: with the
// old rule (newSimApps(..., true)) 22 of the 100 schedules break the invariant (seed 2 first).
func TestCounterRandomSchedules(t *testing.T) {
	n := 100
	if raceEnabled {
		n = 20
	}
	if os.Getenv("GOTOTEM_FULL") == "1" {
		n = 2000
	}
	var runs []*simApps
	o := sim.DefaultStackScheduleOptions()
	o.App = func(seed uint64) (sim.App, []sim.Invariant) {
		apps := newSimApps(o.NodesFor(seed), 100*time.Millisecond, false)
		runs = append(runs, apps)
		return apps.app, apps.invariants()
	}
	sum, err := sim.StackCampaign(1, n, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sum.Violations {
		t.Errorf("seed %d: %v\nreplay with a trace: sim.RunStackSchedule(%d, o, os.Stderr)", v.Seed, v, v.Seed)
	}
	applied := 0
	for _, r := range runs {
		applied += r.applied()
	}
	if len(runs) != n || applied < 100*n {
		t.Errorf("%d schedules (%d with a counter) applied only %d operations: the counters were not exercised", n, len(runs), applied)
	}
	t.Logf("%d schedules, %d operations applied over all replicas", n, applied)
}

// The counter under every named scenario (pause, flapping link, 50/50 split, deafness,
// loss with full-size messages, fast restart, redundant-ring cuts).
func TestCounterScenarios(t *testing.T) {
	for _, sc := range sim.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			apps := newSimApps(sc.Nodes, 100*time.Millisecond, false)
			res, err := sc.RunApp(1, apps.app, apps.invariants(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Violation != nil {
				t.Fatal(res.Violation)
			}
			if apps.applied() == 0 {
				t.Fatal("no operation applied")
			}
		})
	}
}

// counterProperty is the rapid property: five simulated nodes, each adding every 20 ms,
// through random partitions, heals, crashes, restarts and loss; the invariant after every
// step. It returns the violation instead of failing, so a test can expect one.
func counterProperty(rt *rapid.T, oldRule bool) error {
	const nodes = 5
	seed := rapid.Uint64().Draw(rt, "seed")
	apps := newSimApps(nodes, 20*time.Millisecond, oldRule)
	link := sim.DefaultLink
	s, err := sim.New(sim.Options{Seed: seed, Nodes: nodes, Token: time.Second, Link: &link,
		StartSpread: 100 * time.Millisecond, App: apps.app, Invariants: apps.invariants()})
	if err != nil {
		rt.Fatal(err)
	}
	if err := s.RunFor(3 * time.Second); err != nil {
		return err
	}
	steps := rapid.IntRange(1, 12).Draw(rt, "steps")
	for i := 0; i < steps; i++ {
		switch rapid.IntRange(0, 4).Draw(rt, "action") {
		case 0:
			var a, b []srp.NodeID
			for id := srp.NodeID(1); id <= nodes; id++ {
				if rapid.Bool().Draw(rt, fmt.Sprintf("side of n%d", id)) {
					a = append(a, id)
				} else {
					b = append(b, id)
				}
			}
			s.Partition(a, b)
		case 1:
			s.Heal()
		case 2:
			s.Crash(srp.NodeID(rapid.IntRange(1, nodes).Draw(rt, "crash")))
		case 3:
			if err := s.Restart(srp.NodeID(rapid.IntRange(1, nodes).Draw(rt, "restart"))); err != nil {
				return err
			}
		case 4:
			if err := s.LossBurst(0.5, time.Second); err != nil {
				rt.Fatal(err)
			}
		}
		if err := s.RunFor(time.Duration(rapid.IntRange(100, 5000).Draw(rt, "ms")) * time.Millisecond); err != nil {
			return err
		}
	}
	s.Heal()
	return s.RunFor(10 * time.Second)
}

// TestCounterRapid: the rule holds on every case rapid draws.
func TestCounterRapid(t *testing.T) {
	if raceEnabled && flag.Lookup("rapid.checks").Value.String() == "100" {
		// About 1.4 s a case under the race detector: 15 cases there, the default 100 in the
		// non-race pass.
		defer setFlags(t, map[string]string{"rapid.checks": "15"})()
	}
	rapid.Check(t, func(rt *rapid.T) {
		if err := counterProperty(rt, false); err != nil {
			rt.Fatal(err)
		}
	})
}

// TestCounterOldRuleBreaks runs the same property with the old example's rule (majority judged
// on the last regular configuration, so operations delivered in a transitional configuration
// are applied, by the minority too) and expects the checker to catch two histories within 70
// cases, from a fixed rapid seed. This is the test the example failed.
func TestCounterOldRuleBreaks(t *testing.T) {
	checks := 70
	if testing.Short() {
		checks *= 5 // rapid runs a fifth of -rapid.checks under -short
	}
	// Rapid seed 3 breaks it at case 7 (seeds 1..8: at cases 24, -, 7, -, -, -, -, 53: the
	// issue's "under 70 cases" about half the time). The seeds' histories move with srp's
	// schedules: seed 4 broke at case 10 before a JOIN that makes a member adopt new sets
	// counted as its sender's agreement, seed 5 at case 8 before the representative sent its
	// own messages with the token it holds (srp/holdsend.go).
	restore := setFlags(t, map[string]string{"rapid.seed": "3", "rapid.checks": fmt.Sprint(checks),
		"rapid.shrinktime": "1ms", "rapid.nofailfile": "true"})
	defer restore()
	cases, first := 0, 0
	var found error
	rec := &failRecorder{}
	rapid.Check(rec, func(rt *rapid.T) {
		cases++
		if err := counterProperty(rt, true); err != nil {
			if found == nil {
				found, first = err, cases
			}
			rt.Fatal(err)
		}
	})
	if found == nil || !rec.failed {
		t.Fatalf("the old rule survived %d cases: the property cannot tell a sound counter from an unsound one", cases)
	}
	t.Logf("the old rule broke at case %d: %v", first, found)
}

func setFlags(t *testing.T, set map[string]string) func() {
	old := map[string]string{}
	for k, v := range set {
		f := flag.Lookup(k)
		if f == nil {
			t.Fatalf("no flag %s", k)
		}
		old[k] = f.Value.String()
		if err := flag.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		for k, v := range old {
			_ = flag.Set(k, v)
		}
	}
}

// failRecorder is a rapid.TB that records a failure instead of failing the test.
type failRecorder struct {
	mu     sync.Mutex
	failed bool
}

func (r *failRecorder) Helper()               {}
func (r *failRecorder) Name() string          { return "old-rule" }
func (r *failRecorder) Logf(string, ...any)   {}
func (r *failRecorder) Log(...any)            {}
func (r *failRecorder) Skipf(string, ...any)  {}
func (r *failRecorder) Skip(...any)           {}
func (r *failRecorder) SkipNow()              {}
func (r *failRecorder) Errorf(string, ...any) { r.Fail() }
func (r *failRecorder) Error(...any)          { r.Fail() }
func (r *failRecorder) Fatalf(string, ...any) { r.Fail() }
func (r *failRecorder) Fatal(...any)          { r.Fail() }
func (r *failRecorder) FailNow()              { r.Fail() }
func (r *failRecorder) Fail()                 { r.mu.Lock(); r.failed = true; r.mu.Unlock() }
func (r *failRecorder) Failed() bool          { r.mu.Lock(); defer r.mu.Unlock(); return r.failed }

// The same Counter on three real nodes of one ring (loopback, configured in code): all three
// add, then node 3 stops and the two left (a majority) go on; the invariant is checked all
// along, and the replicas that applied everything agree on the value.
func TestCounterThreeRealNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var nodes []totem.NodeConfig
	for id := 1; id <= 3; id++ {
		nodes = append(nodes, totem.NodeConfig{ID: totem.NodeID(id), Addrs: []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, byte(id)})}})
	}
	counters := make([]*Counter, 3)
	var ringMu sync.Mutex
	var rings []string // node 1's regular configurations
	running := make([]*totem.Node, 3)
	groups := make([]*totem.Group, 3)
	for i := range counters {
		c := New(3)
		cfg := totem.LANConfig()
		cfg.ClusterName = "counter"
		cfg.Port = 45141
		cfg.NodeID = totem.NodeID(i + 1)
		cfg.Nodes = nodes
		onMembership := c.OnMembership
		if i == 0 {
			onMembership = func(m totem.Membership) {
				c.OnMembership(m)
				if m.Kind == totem.Regular {
					ringMu.Lock()
					rings = append(rings, fmt.Sprintf("%v %v", m.RingID, m.Members))
					ringMu.Unlock()
				}
			}
		}
		node, err := totem.New(totem.Options{Config: cfg, StateDir: t.TempDir(), OnMembership: onMembership})
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = node.Stop(context.Background()) })
		g, err := node.Join("counter", c)
		if err != nil {
			t.Fatal(err)
		}
		c.Attach(g.TrySend)
		counters[i], running[i], groups[i] = c, node, g
	}
	chk := NewChecker()
	// waitApplied polls until every counter in cs applied want operations, checking the
	// invariant at every poll.
	waitApplied := func(cs []*Counter, want int) {
		t.Helper()
		for {
			if err := chk.Check(counters...); err != nil {
				t.Fatal(err)
			}
			done := true
			for _, c := range cs {
				if _, n := c.Value(); n < want {
					done = false
				}
			}
			if done {
				return
			}
			select {
			case <-ctx.Done():
				for i, c := range cs {
					v, n := c.Value()
					t.Logf("n%d: value %d after %d operations", i+1, v, n)
				}
				t.Fatalf("not every replica applied %d operations", want)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	for _, g := range groups {
		if _, err := g.WaitMembers(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}
	add := func(c *Counter, n int64) {
		t.Helper()
		for {
			err := c.Add(n)
			if err == nil {
				return
			}
			if err != totem.ErrBusy {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	const rounds = 50
	for r := 0; r < rounds; r++ {
		for i, c := range counters {
			add(c, int64(i+1))
		}
	}
	waitApplied(counters, 3*rounds)
	if err := running[2].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := groups[0].WaitMembers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Wait for the two-node ring: its operations are applied (2 of 3 is a majority).
	for len(groups[0].Members()) != 2 || len(groups[1].Members()) != 2 {
		select {
		case <-ctx.Done():
			t.Fatal("no two-node group after node 3 stopped")
		case <-time.After(10 * time.Millisecond):
		}
	}
	for r := 0; r < rounds; r++ {
		add(counters[0], 10)
		add(counters[1], 20)
	}
	waitApplied(counters[:2], 5*rounds)
	v1, n1 := counters[0].Value()
	v2, n2 := counters[1].Value()
	if v1 != v2 || n1 != n2 || v1 != int64(rounds*(1+2+3+10+20)) {
		t.Fatalf("n1 %d after %d operations, n2 %d after %d; want %d after %d", v1, n1, v2, n2, rounds*(1+2+3+10+20), 5*rounds)
	}
	if err := chk.Check(counters...); err != nil {
		t.Fatal(err)
	}
	ringMu.Lock()
	t.Logf("node 1's regular configurations: %v", rings)
	ringMu.Unlock()
}
