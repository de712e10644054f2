package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gototem/gototem/sim"
)

func init() {
	register("sim", command{
		summary: "run random fault schedules or a named scenario in the deterministic simulator",
		run:     runSim,
	})
}

const simUsage = `usage: gototem sim [--stack [--knet]] [--seed S] [--schedules N] [--nodes N|MIN-MAX] [--duration D]
                  [--fault-every D] [--faults LIST] [--token D] [--accelerated W] [--trace]
       gototem sim --scenario NAME [--seed S] [--trace]
       gototem sim --list

Runs N random schedules with seeds S, S+1, … S+N-1 on virtual time: nodes running the
production srp under network faults and a workload, every EVS invariant checked, then
the network healed and liveness checked. Prints a summary ending in "violations: N" and
exits 1 on any violation. The same flags give the same output, byte for byte; a failing
seed replays alone with --seed SEED --schedules 1 --trace.

--stack runs the full-stack campaign instead: every node runs what the daemon runs (totempg
framing, service sync, CPG, votequorum), processes join and leave CPG groups and send SAFE
and AGREED messages, some fragmented, under the same faults; the checkers are per group
(order, no loss or creation, self delivery, virtual synchrony, sender alone, SAFE) plus
quorum exclusivity. Its defaults: 3-5 nodes, 20s of faults every ~2s; flags given override.

--knet (implies --stack) runs every node's stack over knet, corosync 3's transport: two
links, link_mode passive, active or rr drawn from each seed, the knet link timers corosync
derives from the token; the link faults (linkcut, linkpair, linkflap) join the fault mix.

--accelerated W runs either campaign on gototem's accelerated ring (token passed before the
last W messages of a visit), each node's datagrams leaving one after another.
`

func runSim(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, simUsage); fs.PrintDefaults() }
	def := sim.DefaultScheduleOptions()
	seed := fs.Uint64("seed", 1, "first schedule's seed")
	schedules := fs.Int("schedules", 1, "number of schedules")
	nodes := fs.String("nodes", fmt.Sprintf("%d-%d", def.MinNodes, def.MaxNodes), "cluster size, N or MIN-MAX (picked per seed)")
	duration := fs.Duration("duration", def.Duration, "virtual duration of each schedule's faulty phase")
	every := fs.Duration("fault-every", def.FaultEvery, "mean virtual time between faults")
	faults := fs.String("faults", strings.Join(sim.AllFaults, ","), "fault mix, comma-separated")
	token := fs.Duration("token", def.Token, "token timeout the default timers are scaled to (0: corosync's)")
	trace := fs.Bool("trace", false, "print the timeline of each schedule (use with one schedule)")
	scenario := fs.String("scenario", "", "run a named scenario instead of random schedules")
	list := fs.Bool("list", false, "list the named scenarios")
	stack := fs.Bool("stack", false, "run the full-stack campaign (CPG groups over stack.Stack) instead of bare srp")
	knet := fs.Bool("knet", false, "run the full-stack campaign over knet (two links, link faults added)")
	accel := fs.Int("accelerated", 0, "accelerated ring window (0: the standard ring)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gototem sim: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *list {
		width := 0
		for _, sc := range sim.Scenarios {
			width = max(width, len(sc.Name))
		}
		for _, sc := range sim.Scenarios {
			fmt.Fprintf(stdout, "%-*s %d nodes: %s\n", width, sc.Name, sc.Nodes, sc.Description)
		}
		return 0
	}
	if *scenario != "" {
		return runScenario(*scenario, *seed, *trace, stdout, stderr)
	}
	o := def
	var err error
	if o.MinNodes, o.MaxNodes, err = parseNodes(*nodes); err != nil {
		fmt.Fprintf(stderr, "gototem sim: --nodes: %v\n", err)
		return 2
	}
	o.Duration, o.FaultEvery, o.Token = *duration, *every, *token
	if *accel < 0 {
		fmt.Fprintf(stderr, "gototem sim: --accelerated: must not be negative, got %d\n", *accel)
		return 2
	}
	o.Accelerated = *accel
	o.Faults = nil
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			o.Faults = append(o.Faults, f)
		}
	}
	if *schedules < 1 {
		fmt.Fprintf(stderr, "gototem sim: --schedules: must be at least 1, got %d\n", *schedules)
		return 2
	}
	if *stack || *knet {
		so := sim.DefaultStackScheduleOptions()
		if *knet {
			so = sim.DefaultKnetStackScheduleOptions()
		}
		so.Accelerated = o.Accelerated
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "nodes":
				so.MinNodes, so.MaxNodes = o.MinNodes, o.MaxNodes
			case "duration":
				so.Duration = o.Duration
			case "fault-every":
				so.FaultEvery = o.FaultEvery
			case "faults":
				so.Faults = o.Faults
			case "token":
				so.Token = o.Token
			}
		})
		return runStackSim(*seed, *schedules, *trace, so, stdout, stderr)
	}
	if *trace {
		return traceSchedules(*seed, *schedules, o.NodesFor, func(s uint64, w io.Writer) (sim.Result, error) {
			return sim.RunSchedule(s, o, w)
		}, stdout, stderr)
	}
	tty := isTerminal(stdout)
	tk := newTicker(stderr)
	progress := func(done int, sum *sim.CampaignSummary) {
		if tty {
			fmt.Fprintf(stdout, "\r%d/%d schedules, %s virtual, %d violations ", done, *schedules,
				sum.VirtualTime.Round(time.Second), len(sum.Violations))
			return
		}
		// Off a terminal the summary on stdout stays byte-identical run to run; the
		// wall-clock progress goes to stderr.
		tk.maybe("gototem sim: %d/%d schedules, %s virtual, %d violations so far", done, *schedules,
			sum.VirtualTime.Round(time.Second), len(sum.Violations))
	}
	sum, err := sim.Campaign(*seed, *schedules, o, progress)
	if tty {
		fmt.Fprint(stdout, "\r\033[K")
	}
	if err != nil {
		fmt.Fprintf(stderr, "gototem sim: %v\n", err)
		return 2
	}
	sum.Write(stdout)
	if len(sum.Violations) == 0 {
		return 0
	}
	v := sum.Violations[0]
	tail, err := sim.TraceTail(v.Seed, o, 40)
	if err == nil {
		fmt.Fprintf(stdout, "\nlast events of seed %d (replay: gototem sim --seed %d --schedules 1 --nodes %s --duration %v --fault-every %v --faults %s --token %v --accelerated %d --trace):\n%s",
			v.Seed, v.Seed, *nodes, o.Duration, o.FaultEvery, strings.Join(o.Faults, ","), o.Token, o.Accelerated, tail)
	}
	return 1
}

// runStackSim runs the full-stack campaign. Progress goes to stdout: rewritten in place on a
// terminal, otherwise one line per tenth of the schedules (none starts with "violations:",
// which only the summary's last line does).
func runStackSim(seed uint64, n int, trace bool, o sim.StackScheduleOptions, stdout, stderr io.Writer) int {
	if trace {
		return traceSchedules(seed, n, o.NodesFor, func(s uint64, w io.Writer) (sim.Result, error) {
			return sim.RunStackSchedule(s, o, w)
		}, stdout, stderr)
	}
	tty := isTerminal(stdout)
	step := max(n/10, 1)
	tk := newTicker(stderr)
	progress := func(done int, sum *sim.CampaignSummary) {
		switch {
		case tty:
			fmt.Fprintf(stdout, "\r%d/%d full-stack schedules, %s virtual, %d violations ", done, n,
				sum.VirtualTime.Round(time.Second), len(sum.Violations))
		case done%step == 0 || done == n:
			fmt.Fprintf(stdout, "progress: %d/%d full-stack schedules, %s virtual, %d violations so far\n", done, n,
				sum.VirtualTime.Round(time.Second), len(sum.Violations))
		default:
			// A tenth of a long campaign can take minutes: stderr hears from it every
			// few seconds (stdout stays the same run to run).
			tk.maybe("gototem sim: %d/%d full-stack schedules, %s virtual, %d violations so far", done, n,
				sum.VirtualTime.Round(time.Second), len(sum.Violations))
		}
	}
	sum, err := sim.StackCampaign(seed, n, o, progress)
	if tty {
		fmt.Fprint(stdout, "\r\033[K")
	}
	if err != nil {
		fmt.Fprintf(stderr, "gototem sim: %v\n", err)
		return 2
	}
	sum.Write(stdout)
	if len(sum.Violations) == 0 {
		return 0
	}
	fmt.Fprintf(stderr, "replay the first: gototem sim --stack --seed %d --schedules 1 --accelerated %d --trace\n", sum.Violations[0].Seed, o.Accelerated)
	return 1
}

// traceSchedules runs n schedules from seed one by one with their traces (bare srp or the full
// stack, as run does), and ends with the summary's "violations: N" line.
func traceSchedules(seed uint64, n int, nodesFor func(uint64) int, run func(uint64, io.Writer) (sim.Result, error), stdout, stderr io.Writer) int {
	violations := 0
	for i := 0; i < n; i++ {
		s := seed + uint64(i)
		fmt.Fprintf(stdout, "schedule seed %d, %d nodes\n", s, nodesFor(s))
		res, err := run(s, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "gototem sim: %v\n", err)
			return 2
		}
		if res.Violation != nil {
			violations++
			fmt.Fprintf(stdout, "VIOLATION: %v\n", res.Violation)
		}
	}
	fmt.Fprintf(stdout, "violations: %d\n", violations)
	if violations > 0 {
		return 1
	}
	return 0
}

func runScenario(name string, seed uint64, trace bool, stdout, stderr io.Writer) int {
	sc, ok := sim.FindScenario(name)
	if !ok {
		fmt.Fprintf(stderr, "gototem sim: unknown scenario %q (gototem sim --list)\n", name)
		return 2
	}
	var tw io.Writer
	if trace {
		tw = stdout
	}
	res, err := sc.Run(seed, tw)
	if err != nil {
		fmt.Fprintf(stderr, "gototem sim: %v\n", err)
		return 2
	}
	st := res.Stats
	fmt.Fprintf(stdout, "scenario: %s (seed %d, %d nodes)\n", sc.Name, seed, sc.Nodes)
	fmt.Fprintf(stdout, "virtual time: %s\nfaults: %d\nmembership changes: %d\nmessages sent: %d\nmessages delivered: %d\n",
		st.VirtualTime.Round(time.Millisecond), st.Faults, st.Rings, st.Sends, st.Delivered)
	if res.Violation != nil {
		fmt.Fprintf(stdout, "violation: %v\nviolations: 1\n", res.Violation)
		return 1
	}
	fmt.Fprintln(stdout, "violations: 0")
	return 0
}

func parseNodes(v string) (lo, hi int, err error) {
	a, b, rng := strings.Cut(v, "-")
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("%q is not a number or MIN-MAX", v)
	}
	hi = lo
	if rng {
		if hi, err = strconv.Atoi(strings.TrimSpace(b)); err != nil {
			return 0, 0, fmt.Errorf("%q is not a number or MIN-MAX", v)
		}
	}
	if lo < 1 || hi < lo {
		return 0, 0, fmt.Errorf("%q: need 1 ≤ MIN ≤ MAX", v)
	}
	return lo, hi, nil
}

// isTerminal reports whether w is a character device (a terminal), without x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
