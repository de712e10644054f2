package sim

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gototem/gototem/srp"
)

// Fault kinds a random schedule draws from.
const (
	FaultPartition = "partition" // random groups, both directions cut between them
	FaultOneWay    = "oneway"    // one direction of one link cut
	FaultDeafen    = "deafen"    // a node sends but receives nothing
	FaultCrash     = "crash"     // crash, restarted later with its ring id
	FaultPause     = "pause"     // a stopped process resumes with stale timers
	FaultLoss      = "loss"      // a burst of heavy loss on every link
	FaultFlap      = "flap"      // a link going down and up repeatedly
	FaultHeal      = "heal"      // all cuts and loss bursts removed
)

// AllFaults is every fault kind, the default mix.
var AllFaults = []string{FaultPartition, FaultOneWay, FaultDeafen, FaultCrash, FaultPause, FaultLoss, FaultFlap, FaultHeal}

// ScheduleOptions describe random schedules.
type ScheduleOptions struct {
	// MinNodes..MaxNodes: each schedule's cluster size is picked from its seed.
	MinNodes, MaxNodes int
	// Duration is the faulty phase; a quiet phase for liveness follows it.
	Duration time.Duration
	// FaultEvery is the mean gap between faults (exponentially distributed).
	FaultEvery time.Duration
	Faults     []string      // kinds to draw from (default AllFaults); heal is always added
	Token      time.Duration // timer scale, see ScaledConfig (zero: corosync defaults)
	Link       LinkParams    // baseline link behaviour
	Workload   Workload
	// Accelerated > 0 runs every node on the accelerated ring with that window, datagrams
	// leaving one after another (accel.go).
	Accelerated int
}

// DefaultScheduleOptions: 3–7 nodes, 60 s of faults every ~3 s on a slightly faulty LAN,
// token 1 s, each node sending 10 messages/s, a third of them SAFE.
func DefaultScheduleOptions() ScheduleOptions {
	return ScheduleOptions{
		MinNodes: 3, MaxNodes: 7,
		Duration:   60 * time.Second,
		FaultEvery: 3 * time.Second,
		Faults:     AllFaults,
		Token:      time.Second,
		Link:       FaultyLink,
		Workload:   Workload{Rate: 10, SafeFraction: 0.3, MinSize: 8, MaxSize: 256},
	}
}

func (o *ScheduleOptions) validate() error {
	if o.MinNodes < 1 || o.MaxNodes < o.MinNodes || o.MaxNodes > srp.ProcessorCountMax {
		return fmt.Errorf("sim: schedule: nodes %d..%d invalid", o.MinNodes, o.MaxNodes)
	}
	if o.Duration <= 0 || o.FaultEvery <= 0 {
		return fmt.Errorf("sim: schedule: duration (%v) and fault interval (%v) must be positive", o.Duration, o.FaultEvery)
	}
	for _, f := range o.Faults {
		if !slices.Contains(AllFaults, f) && !slices.Contains(LinkFaults, f) {
			return fmt.Errorf("sim: schedule: unknown fault %q (known: %s)", f, strings.Join(AllFaults, ", "))
		}
	}
	return o.Link.validate()
}

// Result is the outcome of one schedule.
type Result struct {
	Seed      uint64
	Nodes     int
	Stats     Stats
	Violation *Violation // nil: every invariant held
	// Degraded counts regular configurations installed, after the whole cluster first
	// formed one ring, with fewer members than the cluster: proof a fault bit.
	Degraded int
}

// finishResult completes a run's Result: its stats, and err as a Violation when it is one
// (a violation is the run's finding, not a failure to run it).
func finishResult(s *Sim, res Result, err error) (Result, error) {
	res.Stats = s.Stats()
	res.Degraded = degraded(s)
	var v *Violation
	if errors.As(err, &v) {
		res.Violation = v
		return res, nil
	}
	return res, err
}

func degraded(s *Sim) int {
	n, full := 0, false
	for _, r := range s.hist.order {
		e := s.hist.Logs[r.node][r.idx]
		if e.Kind != EntryConfig || e.Config.Kind != srp.Regular {
			continue
		}
		if len(e.Config.Members) == len(s.nodes) {
			full = true
		} else if full {
			n++
		}
	}
	return n
}

// NodesFor is the cluster size schedule seed runs with: derived from the seed alone so a
// replay needs nothing but the seed and the options.
func (o ScheduleOptions) NodesFor(seed uint64) int {
	span := uint64(o.MaxNodes - o.MinNodes + 1)
	return o.MinNodes + int(splitmix(seed)%span)
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// RunSchedule runs one random schedule: nodes start, the workload runs, faults are drawn
// every FaultEvery on average for Duration (all invariants checked after each), then the
// network heals, every node is resumed and restarted, and liveness is checked. trace,
// when not nil, gets the readable timeline.
func RunSchedule(seed uint64, o ScheduleOptions, trace io.Writer) (Result, error) {
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	if len(o.Faults) == 0 {
		o.Faults = AllFaults
	}
	nodes := o.NodesFor(seed)
	link := o.Link
	s, err := New(Options{Seed: seed, Nodes: nodes, Token: o.Token, Link: &link, Trace: trace,
		StartSpread: 200 * time.Millisecond, Config: o.accelConfig(), SendSpacing: o.sendSpacing()})
	if err != nil {
		return Result{}, err
	}
	res := Result{Seed: seed, Nodes: nodes}
	finish := func(err error) (Result, error) { return finishResult(s, res, err) }
	if err := s.StartWorkload(o.Workload); err != nil {
		return Result{}, err
	}
	if err := s.faultPhase(o.FaultEvery, o.Duration, o.Faults); err != nil {
		return finish(err)
	}
	if err := s.RunUntil(o.Duration); err != nil {
		return finish(err)
	}
	// Quiet phase: everything repaired, nothing new sent.
	s.StopWorkload()
	s.Heal()
	for _, n := range s.nodes {
		if n.paused {
			if err := s.Resume(n.ID); err != nil {
				return finish(err)
			}
		}
		if !n.up {
			if err := s.Restart(n.ID); err != nil {
				return finish(err)
			}
		}
	}
	return finish(s.CheckLiveness())
}

// randomFault applies one fault drawn from kinds. Timed faults (pause, loss burst, flap,
// restart after a crash) schedule their own end; cuts last until a heal is drawn.
func (s *Sim) randomFault(kinds []string, tok time.Duration) error {
	r := s.rng
	kind := kinds[r.IntN(len(kinds))]
	ids := s.NodeIDs()
	pick := func() srp.NodeID { return ids[r.IntN(len(ids))] }
	span := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	switch kind {
	case FaultPartition:
		groups := 2 + r.IntN(2)
		parts := make([][]srp.NodeID, groups)
		for _, id := range ids {
			g := r.IntN(groups)
			parts[g] = append(parts[g], id)
		}
		s.Partition(parts...)
	case FaultOneWay:
		a, b := pick(), pick()
		if a != b {
			s.CutOneWay(a, b)
		}
	case FaultDeafen:
		s.Deafen(pick())
	case FaultCrash:
		id := pick()
		s.Crash(id)
		s.At(s.now+span(tok/4, 8*tok), "", func() error { return s.Restart(id) })
	case FaultPause:
		s.PauseFor(pick(), span(tok/2, 4*tok))
	case FaultLoss:
		return s.LossBurst(0.2+0.7*r.Float64(), span(tok/4, 3*tok))
	case FaultFlap:
		a, b := pick(), pick()
		if a != b {
			s.Flap(a, b, span(tok/10, 2*tok), span(tok/10, 2*tok), 2+r.IntN(6))
		}
	case FaultHeal:
		s.Heal()
	default:
		return s.randomLinkFault(kind, tok) // sim/knetfaults.go
	}
	return nil
}

// CampaignSummary adds up many schedules.
type CampaignSummary struct {
	Schedules   int
	VirtualTime time.Duration
	Faults      uint64
	Rings       uint64 // membership changes: distinct regular rings installed
	Sends       uint64
	Delivered   uint64
	Violations  []*Violation
}

// Write prints the summary, one figure a line, ending with "violations: N".
func (c *CampaignSummary) Write(w io.Writer) {
	fmt.Fprintf(w, "schedules: %d\n", c.Schedules)
	fmt.Fprintf(w, "virtual time: %s\n", c.VirtualTime.Round(time.Millisecond))
	fmt.Fprintf(w, "faults: %d\n", c.Faults)
	fmt.Fprintf(w, "membership changes: %d\n", c.Rings)
	fmt.Fprintf(w, "messages sent: %d\n", c.Sends)
	fmt.Fprintf(w, "messages delivered: %d\n", c.Delivered)
	for _, v := range c.Violations {
		fmt.Fprintf(w, "violation: seed %d: %v\n", v.Seed, v)
	}
	fmt.Fprintf(w, "violations: %d\n", len(c.Violations))
}

// Campaign runs schedules seed, seed+1, …, seed+n-1; progress (optional) is called after
// each. Schedule i replays alone with RunSchedule(seed+i, o, …).
func Campaign(seed uint64, n int, o ScheduleOptions, progress func(done int, sum *CampaignSummary)) (*CampaignSummary, error) {
	return campaign(seed, n, progress, func(seed uint64) (Result, error) { return RunSchedule(seed, o, nil) })
}

// campaign runs schedules seed..seed+n-1 with run and adds them up.
func campaign(seed uint64, n int, progress func(done int, sum *CampaignSummary), run func(seed uint64) (Result, error)) (*CampaignSummary, error) {
	sum := &CampaignSummary{}
	for i := 0; i < n; i++ {
		res, err := run(seed + uint64(i))
		if err != nil {
			return sum, err
		}
		sum.Schedules++
		sum.VirtualTime += res.Stats.VirtualTime
		sum.Faults += res.Stats.Faults
		sum.Rings += res.Stats.Rings
		sum.Sends += res.Stats.Sends
		sum.Delivered += res.Stats.Delivered
		if res.Violation != nil {
			sum.Violations = append(sum.Violations, res.Violation)
		}
		if progress != nil {
			progress(i+1, sum)
		}
	}
	return sum, nil
}

// TraceTail replays schedule seed with the trace on and returns the last lines lines up
// to the step of its first violation (all of it when there is none): the readable lead-up.
func TraceTail(seed uint64, o ScheduleOptions, lines int) (string, error) {
	res, err := RunSchedule(seed, o, nil)
	if err != nil {
		return "", err
	}
	tw := &tailWriter{keep: lines}
	if res.Violation != nil {
		tw.until = res.Violation.Step
	}
	if _, err := RunSchedule(seed, o, tw); err != nil {
		return "", err
	}
	return strings.Join(tw.lines, ""), nil
}

// tailWriter keeps the last keep trace lines whose step is at most until (0: no limit).
// The simulator writes one whole line per Write.
type tailWriter struct {
	keep  int
	until uint64
	lines []string
}

func (t *tailWriter) Write(p []byte) (int, error) {
	line := string(p)
	if t.until > 0 {
		if i := strings.Index(line, " #"); i >= 0 {
			f := strings.Fields(line[i+2:])
			if len(f) > 0 {
				if step, err := strconv.ParseUint(f[0], 10, 64); err == nil && step > t.until {
					return len(p), nil
				}
			}
		}
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > 2*t.keep {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.keep:]...)
	}
	if len(t.lines) > t.keep {
		defer func() { t.lines = t.lines[len(t.lines)-t.keep:] }()
	}
	return len(p), nil
}

// faultPhase injects random faults from kinds at exponentially distributed gaps of mean every
// until the next one would fall after until: the fault phase of both random campaigns.
func (s *Sim) faultPhase(every, until time.Duration, kinds []string) error {
	tok := s.nodes[0].cfg.Token
	for {
		gap := time.Duration(s.rng.ExpFloat64() * float64(every))
		if s.now+gap > until {
			return nil
		}
		if err := s.RunFor(gap); err != nil {
			return err
		}
		if err := s.randomFault(kinds, tok); err != nil {
			return err
		}
	}
}
