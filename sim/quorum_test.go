package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/srp"
)

// votequorum over the full stack (srp + totempg + sync + votequorum) on the simulator: random
// partitions, crashes, restarts and pauses, with every verdict logged at its virtual instant.
//
// Each property runs a loop of seeds. A seed draws the votequorum options and the fault
// schedule from its own generator and seeds the simulator (every datagram's fate), so one
// seed replays a whole run:
//
//	GOTOTEM_SIM_SEED=17 go test ./sim -run TestQuorumNoSplitBrain -v
//
// GOTOTEM_SIM_SEEDS=N runs N seeds instead of the CI budget; GOTOTEM_SIM_TRACE=FILE writes the
// trace of the run (one event a line, format in trace.go) to FILE.

func quorumSeeds(t *testing.T, ci int) []uint64 {
	t.Helper()
	if v := os.Getenv("GOTOTEM_SIM_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("GOTOTEM_SIM_SEED=%q: %v", v, err)
		}
		return []uint64{s}
	}
	n := ci
	if raceEnabled {
		n = max(ci/4, 2)
	}
	if v := os.Getenv("GOTOTEM_SIM_SEEDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("GOTOTEM_SIM_SEEDS=%q: want a positive count", v)
		}
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// quorumCase is one drawn cluster: its size, every node's votequorum configuration and the
// kind of history its safety holds for.
type quorumCase struct {
	nodes int
	// history: "any" (arbitrary partitions, one-way cuts, crashes, restarts, pauses, lossy
	// links), "split-merge" (auto_tie_breaker: each change only splits a ring or merges rings,
	// quiet links), "split" (last_man_standing: rings only split or lose nodes).
	history string
	cfg     quorum.Config
	// forged, when set, replaces the configuration of some nodes (tests that break safety).
	forged map[srp.NodeID]quorum.Config
}

func (c quorumCase) config(id srp.NodeID) *quorum.Config {
	if f, ok := c.forged[id]; ok {
		return &f
	}
	cfg := c.cfg
	return &cfg
}

func (c quorumCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes, %s history:", c.nodes, c.history)
	if c.cfg.Nodelist == nil {
		fmt.Fprintf(&b, " no nodelist, votes %d", *c.cfg.Votes)
	} else {
		b.WriteString(" nodelist votes")
		for _, e := range c.cfg.Nodelist {
			fmt.Fprintf(&b, " %d", e.Votes)
		}
	}
	if c.cfg.ExpectedVotes != 0 {
		fmt.Fprintf(&b, ", expected_votes %d", c.cfg.ExpectedVotes)
	}
	if c.cfg.WaitForAll != nil && *c.cfg.WaitForAll {
		b.WriteString(", wait_for_all")
	}
	if c.cfg.LastManStanding {
		fmt.Fprintf(&b, ", last_man_standing (window %v)", c.cfg.LastManStandingWindow)
	}
	if c.cfg.AutoTieBreaker {
		fmt.Fprintf(&b, ", auto_tie_breaker %q", c.cfg.AutoTieBreakerNode)
	}
	if c.cfg.ExpectedVotesTracking {
		b.WriteString(", expected_votes_tracking")
	}
	if c.cfg.AllowDownscale {
		b.WriteString(", allow_downscale")
	}
	for id, f := range c.forged {
		fmt.Fprintf(&b, "; n%d forged expected_votes %d", id, f.ExpectedVotes)
	}
	return b.String()
}

func unitNodelist(n int) []quorum.NodeEntry {
	nl := make([]quorum.NodeEntry, n)
	for i := range nl {
		nl[i] = quorum.NodeEntry{NodeID: quorum.NodeID(i + 1), Votes: 1}
	}
	return nl
}

func totalVotes(nl []quorum.NodeEntry) uint32 {
	var t uint32
	for _, e := range nl {
		t += e.Votes
	}
	return t
}

// drawQuorumCase draws every option combination votequorum's no-split-brain guarantee is
// claimed for, each with the histories it holds under. The bounds are corosync 3.1's own, shown
// by quorum/safety_test.go and, on the simulator, by the split-brain tests below:
//   - two_node gives the guarantee up by design (TestQuorumTwoNodeBothHalvesQuorate);
//   - expected_votes below the nodelist's votes lets a fresh minority count itself a majority,
//     so expected_votes is drawn at or above the votes present;
//   - auto_tie_breaker counts members lost, not votes: unit votes, wait_for_all (a fresh node
//     in list mode has no previous ring), and changes that only split or only merge;
//   - last_man_standing lowered expected votes on one side only: a merge with nodes that never
//     lowered theirs can be quorate twice (TestQuorumLastManStandingMergeSplitBrain), so its
//     histories only split rings and lose nodes.
func drawQuorumCase(r *rand.Rand) quorumCase {
	c := quorumCase{nodes: 2 + r.IntN(5)}
	c.cfg.Nodelist = unitNodelist(c.nodes)
	if r.IntN(2) == 0 {
		c.cfg.WaitForAll = ptrTo(true)
	}
	switch r.IntN(4) {
	case 0, 1:
		c.history = "any"
		if r.IntN(2) == 0 {
			for i := range c.cfg.Nodelist {
				c.cfg.Nodelist[i].Votes = uint32(r.IntN(4)) // 0..3, as quorum_votes allows
			}
			if totalVotes(c.cfg.Nodelist) == 0 {
				c.cfg.Nodelist[0].Votes = 1
			}
		}
		c.cfg.ExpectedVotesTracking = r.IntN(3) == 0
		c.cfg.AllowDownscale = r.IntN(4) == 0
	case 2:
		c.history = "split-merge"
		c.cfg.AutoTieBreaker = true
		c.cfg.WaitForAll = ptrTo(true)
		c.cfg.AutoTieBreakerNode = []string{"", "lowest", "highest", "2 1", strconv.Itoa(c.nodes)}[r.IntN(5)]
	case 3:
		c.history = "split"
		c.cfg.LastManStanding = true
		c.cfg.WaitForAll = ptrTo(true) // the man page: essential with last_man_standing
		c.cfg.LastManStandingWindow = time.Duration(1+r.IntN(5)) * time.Second
		if r.IntN(2) == 0 {
			c.cfg.AutoTieBreaker = true
			c.cfg.AutoTieBreakerNode = []string{"lowest", "highest", "2 1"}[r.IntN(3)]
		}
	}
	sum := totalVotes(c.cfg.Nodelist)
	switch r.IntN(4) {
	case 1:
		c.cfg.ExpectedVotes = sum
	case 2:
		c.cfg.ExpectedVotes = sum + 1
	case 3:
		if c.history == "any" && !c.cfg.AllowDownscale {
			// No nodelist: every node's votes from quorum.votes, expected_votes required.
			v := uint32(1 + r.IntN(2))
			c.cfg.Nodelist, c.cfg.Votes = nil, &v
			c.cfg.ExpectedVotes = v * uint32(c.nodes)
		}
	}
	return c
}

// runUntilOneRing runs until every live node is OPERATIONAL on one ring of all of them, and
// reports how long that took (an error after limit).
func runUntilOneRing(s *Sim, limit time.Duration) (time.Duration, error) {
	start := s.Now()
	for {
		live := s.Live()
		ring := s.Node(live[0]).Protocol().RingID()
		ok := true
		for _, id := range live {
			p := s.Node(id).Protocol()
			if p.State() != srp.Operational || p.RingID() != ring || !slices.Equal(p.Members(), live) {
				ok = false
			}
		}
		if ok {
			return s.Now() - start, nil
		}
		if s.Now()-start >= limit {
			return 0, fmt.Errorf("live nodes %s not one ring %v after the heal: %s", fmtIDs(live), limit, s.ringSummary())
		}
		if err := s.RunFor(100 * time.Millisecond); err != nil {
			return 0, err
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

func newQuorumSim(seed uint64, c quorumCase, link LinkParams, spread time.Duration) (*Sim, error) {
	opts, err := quorumOptions(seed, c, link, spread)
	if err != nil {
		return nil, err
	}
	return New(opts)
}

// quorumOptions are the simulation options of a quorum property run, for callers that adjust
// them before New (a test that wraps every node's protocol).
func quorumOptions(seed uint64, c quorumCase, link LinkParams, spread time.Duration) (Options, error) {
	return Options{
		Seed: seed, Nodes: c.nodes, Token: time.Second, Link: &link, StartSpread: spread,
		NewProtocol: NewStackProtocol(StackOptions{Quorum: c.config}),
		Invariants:  []Invariant{QuorumInvariant()},
		Trace:       quorumTrace,
	}, quorumTraceErr
}

// quorumTrace is where GOTOTEM_SIM_TRACE=FILE sends the trace of every simulation these tests
// build (meant with GOTOTEM_SIM_SEED: one seed's run, one event a line); nil without it.
var quorumTrace, quorumTraceErr = openQuorumTrace()

func openQuorumTrace() (io.Writer, error) {
	path := os.Getenv("GOTOTEM_SIM_TRACE")
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("GOTOTEM_SIM_TRACE=%q: %w", path, err)
	}
	return f, nil
}

// netModel is the test's view of the network it imposed: the partition groups and the
// crashed nodes, so a history can be kept to splits and merges.
type netModel struct {
	s      *Sim
	groups [][]srp.NodeID
	down   []srp.NodeID
}

func (m *netModel) apply() {
	m.s.Partition(m.groups...)
}

// split cuts one group of two or more nodes in two.
func (m *netModel) split(r *rand.Rand) {
	var big []int
	for i, g := range m.groups {
		if len(g) > 1 {
			big = append(big, i)
		}
	}
	if len(big) == 0 {
		return
	}
	gi := big[r.IntN(len(big))]
	g := slices.Clone(m.groups[gi])
	r.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
	k := 1 + r.IntN(len(g)-1)
	a, b := sortedIDs(g[:k]), sortedIDs(g[k:])
	m.groups[gi] = a
	m.groups = append(m.groups, b)
	m.apply()
}

// merge joins two groups.
func (m *netModel) merge(r *rand.Rand) {
	if len(m.groups) < 2 {
		return
	}
	i := r.IntN(len(m.groups))
	j := r.IntN(len(m.groups) - 1)
	if j >= i {
		j++
	}
	merged := sortedIDs(append(slices.Clone(m.groups[i]), m.groups[j]...))
	m.groups[min(i, j)] = merged
	m.groups = slices.Delete(m.groups, max(i, j), max(i, j)+1)
	m.apply()
}

func (m *netModel) up() []srp.NodeID {
	var out []srp.NodeID
	for _, id := range m.s.NodeIDs() {
		if !slices.Contains(m.down, id) {
			out = append(out, id)
		}
	}
	return out
}

func (m *netModel) crash(r *rand.Rand) {
	up := m.up()
	if len(up) < 2 {
		return
	}
	id := up[r.IntN(len(up))]
	m.s.Crash(id)
	m.down = append(m.down, id)
}

func (m *netModel) restart(r *rand.Rand) error {
	if len(m.down) == 0 {
		return nil
	}
	i := r.IntN(len(m.down))
	id := m.down[i]
	m.down = slices.Delete(m.down, i, i+1)
	return m.s.Restart(id)
}

// runQuorumHistory plays c's kind of history for steps faults on s, drawing from r.
func runQuorumHistory(s *Sim, r *rand.Rand, c quorumCase, steps int) error {
	m := &netModel{s: s, groups: [][]srp.NodeID{s.NodeIDs()}}
	if err := s.RunFor(4 * time.Second); err != nil {
		return err
	}
	for step := 0; step < steps; step++ {
		quiet := 8 * time.Second // long enough for every ring to settle after one change
		switch c.history {
		case "any":
			switch r.IntN(7) {
			case 0, 1:
				k := 1 + r.IntN(3)
				m.groups = make([][]srp.NodeID, k)
				for _, id := range s.NodeIDs() {
					g := r.IntN(k)
					m.groups[g] = append(m.groups[g], id)
				}
				m.groups = slices.DeleteFunc(m.groups, func(g []srp.NodeID) bool { return len(g) == 0 })
				m.apply()
			case 2:
				m.crash(r)
			case 3:
				if err := m.restart(r); err != nil {
					return err
				}
			case 4:
				s.Heal()
				m.groups = [][]srp.NodeID{s.NodeIDs()}
			case 5:
				a, b := srp.NodeID(1+r.IntN(c.nodes)), srp.NodeID(1+r.IntN(c.nodes))
				if a != b {
					s.CutOneWay(a, b)
				}
			case 6:
				s.PauseFor(srp.NodeID(1+r.IntN(c.nodes)), time.Duration(500+r.IntN(5000))*time.Millisecond)
			}
			quiet = time.Duration(300+r.IntN(8000)) * time.Millisecond
		case "split-merge":
			switch r.IntN(4) {
			case 0:
				m.split(r)
			case 1:
				m.merge(r)
			case 2:
				m.crash(r)
			case 3:
				if err := m.restart(r); err != nil {
					return err
				}
			}
		case "split":
			switch r.IntN(3) {
			case 0:
				m.split(r)
			case 1:
				m.crash(r)
			case 2: // only time passes: last_man_standing's window runs out
			}
			quiet += time.Duration(r.IntN(2*int(c.cfg.LastManStandingWindow/time.Millisecond))) * time.Millisecond
		}
		if err := s.RunFor(quiet); err != nil {
			return err
		}
	}
	return nil
}

// Property 1: never two disjoint partitions quorate at the same virtual instant, over every
// option combination but two_node (drawQuorumCase lists the histories each holds under).
func TestQuorumNoSplitBrain(t *testing.T) {
	quorate, changes := 0, 0
	for _, seed := range quorumSeeds(t, 64) {
		r := rand.New(rand.NewPCG(seed, 0x51))
		c := drawQuorumCase(r)
		link := DefaultLink
		if c.history == "any" {
			link = FaultyLink
		}
		s, err := newQuorumSim(seed, c, link, time.Duration(r.IntN(2000))*time.Millisecond)
		if err != nil {
			t.Fatalf("seed %d (%s): %v", seed, c, err)
		}
		if err := runQuorumHistory(s, r, c, 6+r.IntN(8)); err != nil {
			t.Fatalf("seed %d (%s): %v\nreplay: GOTOTEM_SIM_SEED=%d go test ./sim -run 'TestQuorumNoSplitBrain$' -v", seed, c, err, seed)
		}
		for _, v := range s.QuorumLog().Verdicts {
			changes++
			if v.Quorate {
				quorate++
			}
		}
	}
	// The property is vacuous unless nodes were quorate and changed their minds.
	if quorate == 0 || changes == quorate {
		t.Fatalf("%d verdicts, %d quorate: the runs never exercised quorum", changes, quorate)
	}
	t.Logf("%d verdicts, %d of them quorate", changes, quorate)
}

// The checker fails on a forged configuration: n4 alone is told expected_votes 1, so it is
// quorate in its own partition while {1,2,3} holds 3 of 4 votes.
func TestQuorumSplitBrainCheckerCatchesForgedExpectedVotes(t *testing.T) {
	c := quorumCase{nodes: 4, history: "any", cfg: quorum.Config{Nodelist: unitNodelist(4)}}
	forged := c.cfg
	forged.ExpectedVotes = 1
	c.forged = map[srp.NodeID]quorum.Config{4: forged}
	s, err := newQuorumSim(1, c, DefaultLink, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Partition([]srp.NodeID{1, 2, 3}, []srp.NodeID{4})
	err = s.RunFor(10 * time.Second)
	v, ok := err.(*Violation)
	if !ok || v.Invariant != InvQuorumSplitBrain {
		t.Fatalf("forged expected_votes on n4: got %v, want a %q violation", err, InvQuorumSplitBrain)
	}
	t.Log(v)
	// The same partition with honest configurations is fine.
	c.forged = nil
	if s, err = newQuorumSim(1, c, DefaultLink, 0); err != nil {
		t.Fatal(err)
	}
	s.Partition([]srp.NodeID{1, 2, 3}, []srp.NodeID{4})
	if err := s.RunFor(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// The interval logic of the split-brain checker on hand-built logs.
func TestQuorumSplitBrainCheckerIntervals(t *testing.T) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	verdict := func(node srp.NodeID, at int, quorate bool, members ...srp.NodeID) QuorumVerdict {
		return QuorumVerdict{Node: node, At: ms(at), Quorate: quorate, Members: members}
	}
	cases := []struct {
		name  string
		build func(l *QuorumLog)
		fail  bool
	}{
		{"overlap", func(l *QuorumLog) {
			l.AddVerdict(verdict(1, 0, true, 1, 2))
			l.AddVerdict(verdict(3, 5, true, 3))
		}, true},
		{"same members", func(l *QuorumLog) {
			l.AddVerdict(verdict(1, 0, true, 1, 2))
			l.AddVerdict(verdict(2, 5, true, 1, 2))
		}, false},
		{"sharing a node", func(l *QuorumLog) {
			l.AddVerdict(verdict(1, 0, true, 1, 2))
			l.AddVerdict(verdict(3, 5, true, 2, 3))
		}, false},
		{"one inquorate", func(l *QuorumLog) {
			l.AddVerdict(verdict(1, 0, true, 1, 2))
			l.AddVerdict(verdict(3, 5, false, 3))
		}, false},
		{"ended by a later verdict first", func(l *QuorumLog) {
			l.AddVerdict(verdict(1, 0, true, 1, 2))
			l.AddVerdict(verdict(1, 4, false, 1, 2))
			l.AddVerdict(verdict(3, 5, true, 3))
		}, false},
		{"ended at the same instant", func(l *QuorumLog) {
			l.AddVerdict(verdict(3, 5, true, 3))
			l.AddVerdict(verdict(1, 0, true, 1, 2))
			l.AddVerdict(verdict(1, 5, false, 1, 2))
		}, false},
		{"ended by a crash", func(l *QuorumLog) {
			l.AddVerdict(verdict(1, 0, true, 1, 2))
			l.AddDown(1, ms(4))
			l.AddVerdict(verdict(3, 5, true, 3))
		}, false},
		{"the other one's verdict outlives a crash of a third", func(l *QuorumLog) {
			l.AddVerdict(verdict(1, 0, true, 1, 2))
			l.AddDown(2, ms(4))
			l.AddVerdict(verdict(3, 5, true, 3, 4))
		}, true},
	}
	for _, tc := range cases {
		l := NewQuorumLog()
		tc.build(l)
		err := l.CheckSplitBrain()
		if (err != nil) != tc.fail {
			t.Errorf("%s: got %v, want failure %v", tc.name, err, tc.fail)
		}
	}
}

// Property 2: two_node gives the guarantee up, as corosync documents (votequorum.md §7.1):
// once both nodes have been together, quorum is 1, so after a split each node is quorate
// alone. Both then believe they may run the cluster's resources; only fencing (the classic
// fence race: the first to power off the other wins) keeps them from both writing to shared
// storage, which is why two_node clusters must have fencing configured.
func TestQuorumTwoNodeBothHalvesQuorate(t *testing.T) {
	for _, seed := range quorumSeeds(t, 4) {
		c := quorumCase{nodes: 2, history: "any", cfg: quorum.Config{Nodelist: unitNodelist(2), TwoNode: true}}
		s, err := newQuorumSim(seed, c, DefaultLink, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RunFor(5 * time.Second); err != nil {
			t.Fatalf("seed %d: together: %v", seed, err)
		}
		for id, v := range s.QuorumLog().Standing() {
			if !v.Quorate || len(v.Members) != 2 {
				t.Fatalf("seed %d: n%d together: %s", seed, id, v)
			}
		}
		s.Partition([]srp.NodeID{1}, []srp.NodeID{2})
		err = s.RunFor(10 * time.Second)
		v, ok := err.(*Violation)
		if !ok || v.Invariant != InvQuorumSplitBrain {
			t.Fatalf("seed %d: two_node split: got %v, want both halves quorate (%q)", seed, err, InvQuorumSplitBrain)
		}
		if seed == 1 {
			t.Log(v)
		}
	}
}

// two_node implies wait_for_all: a fresh pair that never met is not quorate on either side.
func TestQuorumTwoNodeFreshSplitWaits(t *testing.T) {
	c := quorumCase{nodes: 2, history: "any", cfg: quorum.Config{Nodelist: unitNodelist(2), TwoNode: true}}
	s, err := newQuorumSim(1, c, DefaultLink, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Partition([]srp.NodeID{1}, []srp.NodeID{2})
	if err := s.RunFor(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := CheckWaitForAll(s.History(), s.QuorumLog()); err != nil {
		t.Fatal(err)
	}
}

// waitForAllCase draws the cluster TestQuorumWaitForAll runs for seed and its nodes' start
// spread; the generator returned goes on to draw that run's history.
func waitForAllCase(seed uint64) (quorumCase, *rand.Rand, time.Duration) {
	r := rand.New(rand.NewPCG(seed, 0x3f))
	n := 3 + r.IntN(4)
	c := quorumCase{nodes: n, history: "any", cfg: quorum.Config{Nodelist: unitNodelist(n), WaitForAll: ptrTo(true)}}
	if r.IntN(2) == 0 {
		for i := range c.cfg.Nodelist {
			c.cfg.Nodelist[i].Votes = uint32(1 + r.IntN(3))
		}
	}
	c.cfg.ExpectedVotesTracking = r.IntN(3) == 0
	if r.IntN(3) == 0 {
		c.cfg.ExpectedVotes = totalVotes(c.cfg.Nodelist)
	}
	return c, r, time.Duration(r.IntN(3000)) * time.Millisecond
}

// waitForAllHistory plays TestQuorumWaitForAll's history up to the final heal: before everyone
// met, the network is always split in two groups while nodes crash and restart; then every cut
// heals and every crashed node restarts. check runs after each step (nil: none); checkers only
// read, so the history is the same with or without them.
func waitForAllHistory(s *Sim, r *rand.Rand, check func() error) error {
	m := &netModel{s: s}
	for step := 4 + r.IntN(6); step > 0; step-- {
		ids := s.NodeIDs()
		r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		k := 1 + r.IntN(len(ids)-1)
		m.groups = [][]srp.NodeID{sortedIDs(ids[:k]), sortedIDs(ids[k:])}
		m.apply()
		switch r.IntN(3) {
		case 0:
			m.crash(r)
		case 1:
			if err := m.restart(r); err != nil {
				return err
			}
		}
		if err := s.RunFor(time.Duration(500+r.IntN(6000)) * time.Millisecond); err != nil {
			return err
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
	}
	s.Heal()
	for len(m.down) > 0 {
		if err := m.restart(r); err != nil {
			return err
		}
	}
	return nil
}

// Property 3: wait_for_all withholds quorum from a freshly started cluster until one ring has
// held every node, however nodes start, partition, crash and restart before that; afterwards
// a majority is quorate and a minority is not, as without it.
func TestQuorumWaitForAll(t *testing.T) {
	for _, seed := range quorumSeeds(t, 32) {
		c, r, spread := waitForAllCase(seed)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d (%s): %s\nreplay: GOTOTEM_SIM_SEED=%d go test ./sim -run 'TestQuorumWaitForAll$' -v", seed, c, fmt.Sprintf(format, args...), seed)
		}
		s, err := newQuorumSim(seed, c, FaultyLink, spread)
		if err != nil {
			fail("%v", err)
		}
		if err := waitForAllHistory(s, r, func() error { return CheckWaitForAll(s.History(), s.QuorumLog()) }); err != nil {
			fail("%v", err)
		}
		took, err := runUntilOneRing(s, 60*time.Second)
		if err != nil {
			fail("%v", err)
		}
		if took > s.LivenessBound() {
			t.Logf("seed %d: the healed ring took %v to form, more than the liveness bound %v: slow convergence, a liveness matter the quorum properties do not judge", seed, took, s.LivenessBound())
		}
		// Let votequorum's sync finish on the new ring.
		if err := s.RunFor(5 * time.Second); err != nil {
			fail("%v", err)
		}
		if err := CheckWaitForAll(s.History(), s.QuorumLog()); err != nil {
			fail("%v", err)
		}
		for _, id := range s.NodeIDs() {
			if v, ok := s.QuorumLog().Standing()[id]; !ok || !v.Quorate || len(v.Members) != c.nodes {
				fail("n%d with every node present: %s", id, v)
			}
		}
		// Normal behaviour afterwards: a split into a majority of votes and a minority.
		ids := s.NodeIDs()
		r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		total, votes := totalVotes(c.cfg.Nodelist), uint32(0)
		k := 0
		for k < len(ids) && 2*votes <= total {
			votes += c.cfg.Nodelist[ids[k]-1].Votes
			k++
		}
		if k == len(ids) {
			continue // no proper majority in this order (one node holds most votes)
		}
		major, minor := sortedIDs(ids[:k]), sortedIDs(ids[k:])
		s.Partition(major, minor)
		if err := s.RunFor(10 * time.Second); err != nil {
			fail("%v", err)
		}
		st := s.QuorumLog().Standing()
		for _, id := range major {
			if !st[id].Quorate {
				fail("majority %s holds %d of %d votes, but n%d: %s", fmtIDs(major), votes, total, id, st[id])
			}
		}
		for _, id := range minor {
			if st[id].Quorate {
				fail("minority %s, but n%d: %s", fmtIDs(minor), id, st[id])
			}
		}
	}
}

// The wait_for_all checker fails without wait_for_all: a fresh majority is quorate at once.
func TestQuorumWaitForAllCheckerFails(t *testing.T) {
	for _, wfa := range []bool{false, true} {
		c := quorumCase{nodes: 3, history: "any", cfg: quorum.Config{Nodelist: unitNodelist(3), WaitForAll: ptrTo(wfa)}}
		s, err := newQuorumSim(1, c, DefaultLink, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.Partition([]srp.NodeID{1, 2}, []srp.NodeID{3})
		if err := s.RunFor(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		err = CheckWaitForAll(s.History(), s.QuorumLog())
		if (err != nil) == wfa {
			t.Fatalf("wait_for_all %v: checker said %v", wfa, err)
		}
		if err != nil {
			t.Logf("without wait_for_all: %v", err)
		}
	}
}

// Property 4: last_man_standing over failure cascades (nodes die, none return): expected votes
// step down only after a window of stable membership, never below 2 without auto_tie_breaker,
// and to 1 only on the node auto_tie_breaker picks. The cascades must also show it acting
// (expected votes fall); TestQuorumLastManStandingDownToOne shows the last step to 1.
func TestQuorumLastManStanding(t *testing.T) {
	lowered, toOne := 0, 0
	for _, seed := range quorumSeeds(t, 32) {
		r := rand.New(rand.NewPCG(seed, 0x1a))
		n := 2 + r.IntN(5)
		rule := LastManStanding{Window: time.Duration(1+r.IntN(6)) * time.Second}
		if r.IntN(2) == 0 {
			rule.AutoTieBreaker = true
			rule.AutoTieBreakerNode = []string{"lowest", "highest", "2 1", "1"}[r.IntN(4)]
		}
		c := quorumCase{nodes: n, history: "split", cfg: quorum.Config{
			Nodelist: unitNodelist(n), WaitForAll: ptrTo(true), LastManStanding: true, LastManStandingWindow: rule.Window,
			AutoTieBreaker: rule.AutoTieBreaker, AutoTieBreakerNode: rule.AutoTieBreakerNode,
		}}
		fail := func(err error) {
			t.Helper()
			t.Fatalf("seed %d (%s): %v\nreplay: GOTOTEM_SIM_SEED=%d go test ./sim -run 'TestQuorumLastManStanding$' -v", seed, c, err, seed)
		}
		s, err := newQuorumSim(seed, c, DefaultLink, 100*time.Millisecond)
		if err != nil {
			fail(err)
		}
		if err := s.RunFor(4 * time.Second); err != nil {
			fail(err)
		}
		m := &netModel{s: s}
		for step := 3 + r.IntN(6); step > 0 && len(m.up()) > 1; step-- {
			if r.IntN(3) != 0 {
				up := m.up()
				for k := 1 + r.IntN(min(2, len(up)-1)); k > 0; k-- {
					m.crash(r)
				}
			}
			wait := time.Duration(r.IntN(int(2*rule.Window/time.Millisecond)+4000)) * time.Millisecond
			if err := s.RunFor(wait); err != nil {
				fail(err)
			}
			if err := CheckLastManStanding(s.History(), s.QuorumLog(), rule); err != nil {
				fail(err)
			}
		}
		for _, e := range s.QuorumLog().Expected {
			if e.From != 0 && e.To < e.From {
				lowered++
				if e.To == 1 {
					toOne++
				}
			}
		}
	}
	if lowered == 0 {
		t.Fatal("last_man_standing never lowered expected votes: the cascades did not exercise it")
	}
	t.Logf("expected votes lowered %d times, %d of them to 1", lowered, toOne)
}

// The last_man_standing checker on hand-built logs: each rule fails when broken.
func TestQuorumLastManStandingCheckerFails(t *testing.T) {
	s := time.Second
	h := NewHistory([]srp.NodeID{1, 2, 3})
	for _, id := range []srp.NodeID{1, 2, 3} {
		h.AddStart(id, uint64(id), 0)
	}
	ring := func(step uint64, at time.Duration, members ...srp.NodeID) {
		for _, id := range members {
			h.AddConfig(id, srp.Configuration{Kind: srp.Regular, RingID: srp.RingID{Rep: members[0], Seq: step}, Members: members}, step, at)
		}
	}
	ring(10, 1*s, 1, 2, 3)
	ring(20, 10*s, 1, 2) // n3 died at t=10
	ring(30, 30*s, 2)    // n1 died at t=30
	ok := func(node srp.NodeID, step uint64, at time.Duration, from, to uint32) ExpectedChange {
		return ExpectedChange{Node: node, Step: step, At: at, From: from, To: to, Quorate: true}
	}
	cases := []struct {
		name   string
		change ExpectedChange
		rule   LastManStanding
		fail   bool
	}{
		{"after the window", ok(1, 25, 20*s, 3, 2), LastManStanding{Window: 10 * s}, false},
		{"within the window", ok(1, 25, 15*s, 3, 2), LastManStanding{Window: 10 * s}, true},
		{"to 1 without auto_tie_breaker", ok(2, 35, 45*s, 2, 1), LastManStanding{Window: 10 * s}, true},
		{"to 1 on the highest", ok(2, 35, 45*s, 2, 1), LastManStanding{Window: 10 * s, AutoTieBreaker: true, AutoTieBreakerNode: "highest"}, false},
		{"to 1 on the wrong node (lowest)", ok(2, 35, 45*s, 2, 1), LastManStanding{Window: 10 * s, AutoTieBreaker: true}, true},
		{"to 1 by list, first listed", ok(2, 35, 45*s, 2, 1), LastManStanding{Window: 10 * s, AutoTieBreaker: true, AutoTieBreakerNode: "2 1"}, false},
		{"to 1 by list, an earlier listed node was in the ring", ok(2, 35, 45*s, 2, 1), LastManStanding{Window: 10 * s, AutoTieBreaker: true, AutoTieBreakerNode: "1 2"}, true},
	}
	for _, tc := range cases {
		l := NewQuorumLog()
		l.AddExpected(tc.change)
		err := CheckLastManStanding(h, l, tc.rule)
		if (err != nil) != tc.fail {
			t.Errorf("%s: got %v, want failure %v", tc.name, err, tc.fail)
		}
	}
}

// last_man_standing gives the guarantee up when a partition that lowered its expected votes
// meets nodes that never did (quorum/safety_test.go TestSplitBrainLastManStandingHeal, here
// on the full stack): {1..5} lower expected to 5 of 8, lose 4 and 5 to a split, and 4 and 5
// then meet 6..8 and count themselves 5 of 5 while {1,2,3} are 3 of 5.
func TestQuorumLastManStandingMergeSplitBrain(t *testing.T) {
	c := quorumCase{nodes: 8, history: "any", cfg: quorum.Config{Nodelist: unitNodelist(8), WaitForAll: ptrTo(true),
		LastManStanding: true, LastManStandingWindow: 3 * time.Second}}
	s, err := newQuorumSim(1, c, DefaultLink, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(4 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Partition([]srp.NodeID{1, 2, 3, 4, 5}, []srp.NodeID{6, 7, 8})
	if err := s.RunFor(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Partition([]srp.NodeID{1, 2, 3}, []srp.NodeID{4, 5}, []srp.NodeID{6, 7, 8})
	if err := s.RunFor(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Partition([]srp.NodeID{1, 2, 3}, []srp.NodeID{4, 5, 6, 7, 8})
	err = s.RunFor(10 * time.Second)
	v, ok := err.(*Violation)
	if !ok || v.Invariant != InvQuorumSplitBrain {
		t.Fatalf("got %v, want corosync's last_man_standing split brain", err)
	}
	t.Log(v)
}

// The end of a cascade, 3 → 2 → 1, with and without auto_tie_breaker (lowest): with it the
// lowest node survives alone and its expected votes reach 1 a window after the last loss;
// without it, or when the survivor is not the tie-breaker's pick, the survivor stays at 2
// and inquorate.
func TestQuorumLastManStandingDownToOne(t *testing.T) {
	window := 2 * time.Second
	for _, tc := range []struct {
		name     string
		atb      bool
		survivor srp.NodeID
		want     uint32
	}{
		{"auto_tie_breaker, lowest survives", true, 1, 1},
		{"auto_tie_breaker, highest survives", true, 3, 2},
		{"no auto_tie_breaker", false, 1, 2},
	} {
		rule := LastManStanding{Window: window, AutoTieBreaker: tc.atb}
		c := quorumCase{nodes: 3, history: "split", cfg: quorum.Config{Nodelist: unitNodelist(3), WaitForAll: ptrTo(true),
			LastManStanding: true, LastManStandingWindow: window, AutoTieBreaker: tc.atb}}
		s, err := newQuorumSim(1, c, DefaultLink, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RunFor(4 * time.Second); err != nil {
			t.Fatal(err)
		}
		// Crash the other two one at a time, each a window plus a membership change apart.
		for _, id := range []srp.NodeID{1, 2, 3} {
			if id == tc.survivor {
				continue
			}
			s.Crash(id)
			if err := s.RunFor(window + 8*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		vq := s.Node(tc.survivor).Protocol().(*StackProtocol).Stack().Quorum()
		if got := vq.ExpectedVotes(); got != tc.want || vq.Quorate() != (tc.want == 1) {
			t.Errorf("%s: n%d alone: expected votes %d quorate %v, want %d", tc.name, tc.survivor, got, vq.Quorate(), tc.want)
		}
		if err := CheckLastManStanding(s.History(), s.QuorumLog(), rule); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// The timer rule of the last_man_standing checker on a hand-built log: n4 sees {1..5}, then
// {1,3,4,5} (a node left, 4 ≥ quorum 3: the timer starts at t=7), then {4,5} (2 < quorum 3
// and the remembered lowest node 1 is gone: the timer runs on). Expected votes falling at
// t=10 are a window of 3 s after the start, whatever the later change; with the lowest node
// still present the later change restarts the timer and t=10 is too early.
func TestQuorumLastManStandingCheckerTimerRule(t *testing.T) {
	s := time.Second
	build := func(last []srp.NodeID) (*History, *QuorumLog) {
		h := NewHistory([]srp.NodeID{1, 2, 3, 4, 5})
		h.AddStart(4, 1, 0)
		l := NewQuorumLog()
		l.AddExpected(ExpectedChange{Node: 4, Step: 2, From: 0, To: 5})
		cfg := func(step uint64, at time.Duration, members ...srp.NodeID) {
			h.AddConfig(4, srp.Configuration{Kind: srp.Regular, RingID: srp.RingID{Rep: members[0], Seq: step}, Members: members}, step, at)
		}
		cfg(10, 0, 1, 2, 3, 4, 5)
		l.AddVerdict(QuorumVerdict{Node: 4, Step: 11, Quorate: true, Members: []srp.NodeID{1, 2, 3, 4, 5}, ExpectedVotes: 5, TotalVotes: 5, Quorum: 3})
		cfg(20, 7*s, 1, 3, 4, 5)
		l.AddVerdict(QuorumVerdict{Node: 4, Step: 21, At: 7 * s, Quorate: true, Members: []srp.NodeID{1, 3, 4, 5}, ExpectedVotes: 5, TotalVotes: 4, Quorum: 3})
		cfg(30, 9900*time.Millisecond, last...)
		l.AddExpected(ExpectedChange{Node: 4, Step: 40, At: 10 * s, From: 5, To: 2, Quorate: true})
		return h, l
	}
	for _, tc := range []struct {
		name   string
		last   []srp.NodeID
		window time.Duration
		fail   bool
	}{
		{"lowest gone, timer runs on, 3 s window", []srp.NodeID{4, 5}, 3 * s, false},
		{"lowest gone, timer runs on, 4 s window", []srp.NodeID{4, 5}, 4 * s, true},
		{"lowest present, timer restarted", []srp.NodeID{1, 4}, 3 * s, true},
	} {
		h, l := build(tc.last)
		err := CheckLastManStanding(h, l, LastManStanding{Window: tc.window, AutoTieBreaker: true, AutoTieBreakerNode: "highest"})
		if (err != nil) != tc.fail {
			t.Errorf("%s: got %v, want failure %v", tc.name, err, tc.fail)
		}
	}
}

// Found by TestQuorumLastManStanding seed 424, kept as corosync's behaviour: with
// auto_tie_breaker highest, {1,3,4,5} losing 1 and 3 leaves {4,5} quorate by the tie-breaker
// (5 is the highest of the last quorate ring), but sync_init restarts the last_man_standing
// timer only when the lowest node remembered (1) is still there (votequorum.md §7.3, whatever
// the mode). The timer started by the previous change runs on and expected votes fall to 2
// less than a window after {4,5} formed.
func TestQuorumLastManStandingTimerNotRestarted(t *testing.T) {
	window := 3 * time.Second
	rule := LastManStanding{Window: window, AutoTieBreaker: true, AutoTieBreakerNode: "highest"}
	c := quorumCase{nodes: 5, history: "split", cfg: quorum.Config{Nodelist: unitNodelist(5), WaitForAll: ptrTo(true),
		LastManStanding: true, LastManStandingWindow: window, AutoTieBreaker: true, AutoTieBreakerNode: "highest"}}
	s, err := newQuorumSim(424, c, DefaultLink, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(4 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Crash(2)
	if err := s.RunFor(2500 * time.Millisecond); err != nil { // {1,3,4,5} forms, the timer starts
		t.Fatal(err)
	}
	s.Crash(1)
	s.Crash(3)
	if err := s.RunFor(window + 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var ringAt, fellAt time.Duration = -1, -1
	for _, e := range s.History().Logs[4] {
		if e.Kind == EntryConfig && e.Config.Kind == srp.Regular && slices.Equal(e.Config.Members, []srp.NodeID{4, 5}) {
			ringAt = e.At
		}
	}
	for _, e := range s.QuorumLog().Expected {
		if e.Node == 4 && e.From == 5 && e.To == 2 {
			fellAt = e.At
		}
	}
	if ringAt < 0 || fellAt < 0 || !s.Node(4).Protocol().(*StackProtocol).Stack().Quorum().Quorate() {
		t.Fatalf("ring {4,5} at %v, expected votes 5→2 at %v: not the history this test keeps", ringAt, fellAt)
	}
	if fellAt-ringAt >= window {
		t.Fatalf("expected votes fell %v after {4,5} formed: the timer was restarted after all; update CheckLastManStanding's timer rule", fellAt-ringAt)
	}
	if err := CheckLastManStanding(s.History(), s.QuorumLog(), rule); err != nil {
		t.Fatal(err)
	}
	t.Logf("{4,5} formed at t=%s, expected votes 5→2 at t=%s (%v later, window %v)", fmtTime(ringAt), fmtTime(fellAt), fellAt-ringAt, window)
}
