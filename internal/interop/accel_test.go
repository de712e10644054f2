package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAcceleratedRingBench measures gototem's accelerated ring against its standard ring in
// one run, on one 3-node lab: `gototem bench` floods 1 KiB and 8 KiB messages (one sender,
// then every node sending), alternating standard and accelerated runs (both with
// gototem_node: yes on every node, hence the same token window; the accelerated one adds
// gototem_accelerated: yes and gototem_accelerated_window: 17) so machine noise hits both alike. Every run must deliver in one order; the
// ratios are printed (MEASURED lines), not asserted: on a shared two-core machine the flood
// is CPU-bound. GOTOTEM_BENCH=1 runs it (5 s a run, two rounds); GOTOTEM_BENCH_TOTEM adds totem
// lines to both rings (";"-separated, as for TestBenchCPGFlood) and GOTOTEM_ACCEL_WINDOW sets
// gototem_accelerated_window (default 17). GOTOTEM_ACCEL_ROUNDS sets the rounds (default 2):
// one ring's rate moves by up to ±25% between 5 s runs at the same CPU on the two-core lab,
// so a ratio needs more rounds than two to mean much. Each line also gives msgs/s per core
// (the rate over the nodes' CPU): on a CPU-bound machine that, not the rate, says
// whether a ring does more with the same CPU.
func TestAcceleratedRingBench(t *testing.T) {
	if os.Getenv("GOTOTEM_BENCH") != "1" {
		t.Skip("GOTOTEM_BENCH=1 runs the standard-vs-accelerated lab bench")
	}
	needCorosync(t)
	window := positiveEnv(t, "GOTOTEM_ACCEL_WINDOW", 17)
	rounds := positiveEnv(t, "GOTOTEM_ACCEL_ROUNDS", 2)
	var totemExtra []string
	for _, l := range strings.Split(os.Getenv("GOTOTEM_BENCH_TOTEM"), ";") {
		if l = strings.TrimSpace(l); l != "" {
			totemExtra = append(totemExtra, l)
		}
	}
	gototem := buildGototem(t)
	c := newCluster(t, Options{Engines: []Engine{Gototem, Gototem, Gototem}, Transport: "udpu", Quiet: true,
		Gototem: gototem, TotemExtra: totemExtra})
	std := map[string]string{}
	for _, n := range c.Nodes() {
		b, err := os.ReadFile(n.Conf)
		if err != nil {
			t.Fatal(err)
		}
		// Both rings declare every node a gototem node, so both run the same token window
		// (a declared ring's default is wider than corosync's: config/gototem.go).
		std[n.Conf] = declareGototemNodes(string(b))
	}
	accel := func(conf string) string {
		conf = strings.Replace(conf, "totem {", fmt.Sprintf("totem {\n    gototem_accelerated: yes\n    gototem_accelerated_window: %d", window), 1)
		return conf
	}
	write := func(on bool) {
		for path, conf := range std {
			if on {
				conf = accel(conf)
			}
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	const secs = 5
	// GOTOTEM_ACCEL_CASES="one:1024,all:8192" runs only those cases (senders:size), for
	// iterating on one of them.
	cases := os.Getenv("GOTOTEM_ACCEL_CASES")
	var b strings.Builder
	for _, senders := range []string{"one", "all"} {
		for _, size := range []int{1024, 8192} {
			if cases != "" && !slices.Contains(strings.Split(cases, ","), fmt.Sprintf("%s:%d", senders, size)) {
				continue
			}
			var s, a, sc, ac []float64
			for round := 0; round < rounds; round++ {
				write(false)
				r, cores := benchRing(t, c, gototem, size, secs, senders)
				s, sc = append(s, r), append(sc, cores)
				write(true)
				r, cores = benchRing(t, c, gototem, size, secs, senders)
				a, ac = append(a, r), append(ac, cores)
			}
			write(false)
			ms, ma := mean(s), mean(a)
			// cores: the bench processes' CPU time over the run's length, summed over the
			// nodes. Near the machine's core count the flood is CPU-bound, and the
			// accelerated ring (which only overlaps sending with the token's travel) has no
			// idle time left to fill.
			line := fmt.Sprintf("MEASURED accelerated (window %d) vs standard ring, 3 gototem nodes, udpu %v, %d B, senders %s: standard %.0f msgs/s %v (%.2f cores, %.0f per core), accelerated %.0f msgs/s %v (%.2f cores, %.0f per core): %.2fx (per core %.2fx)",
				window, totemExtra, size, senders, ms, s, mean(sc), ms/mean(sc), ma, a, mean(ac), ma/mean(ac), ma/ms, (ma/mean(ac))/(ms/mean(sc)))
			t.Log(line)
			b.WriteString(line + "\n")
		}
	}
	t.Log("\n" + b.String())
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// benchRing runs `gototem bench` on every node of c (daemons not started) and returns the
// slowest node's delivered msgs/s and the CPU the nodes used, in cores (the sum of their
// cpu_s over the run's seconds); every node must report no order error and the same digest.
func benchRing(t *testing.T, c *Cluster, gototem string, size, secs int, senders string) (float64, float64) {
	t.Helper()
	var procs []*Proc
	for _, n := range c.Nodes() {
		p := []string{"bench", "-c", n.Conf, "--state-dir", filepath.Join(n.Dir, "lib"),
			"--group", "accel", "--size", fmt.Sprint(size), "--seconds", fmt.Sprint(secs), "--senders", senders,
			"--nodes-expected", fmt.Sprint(len(c.Nodes()))}
		if dir := os.Getenv("GOTOTEM_BENCH_CPUPROFILE"); dir != "" {
			p = append(p, "--cpuprofile", filepath.Join(dir, fmt.Sprintf("accel-%s-%dB-%s-%s.prof",
				filepath.Base(n.Dir), size, senders, time.Now().Format("150405.000"))))
		}
		proc, err := n.StartProc(gototem, p...)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, proc)
	}
	slowest, digest, cores := -1.0, "", 0.0
	for i, p := range procs {
		r := waitResult(t, p, "bench: ", secs+60)
		if r["order_errors"] != "0" {
			t.Errorf("node %d: order_errors=%s %s", i+1, r["order_errors"], r["error"])
		}
		if digest == "" {
			digest = r["digest"]
		} else if r["digest"] != digest {
			t.Errorf("node %d delivered in another order", i+1)
		}
		cpu, _ := strconv.ParseFloat(r["cpu_s"], 64)
		cores += cpu / float64(secs)
		rx, _ := strconv.ParseFloat(r["msgs/s"], 64)
		t.Logf("node %d (%d B, senders %s): %.0f msgs/s, %.2f cores", i+1, size, senders, rx, cpu/float64(secs))
		if i == 0 && senders == "one" {
			continue // the sender's own figure is its send rate
		}
		if slowest < 0 || rx < slowest {
			slowest = rx
		}
	}
	if os.Getenv("GOTOTEM_BENCH_COUNTERS") == "1" {
		// bench prints its ring's counters (stderr) just before its result line.
		for i, p := range procs {
			_ = p.WaitFor(5*time.Second, "srp counters", func(ls []string) bool {
				return slices.ContainsFunc(ls, func(l string) bool { return strings.Contains(l, "srp counters") })
			})
			for _, l := range p.Lines() {
				if strings.Contains(l, "srp counters") {
					t.Logf("node %d: %s", i+1, l)
				}
			}
		}
	}
	if os.Getenv("GOTOTEM_BENCH_CPUPROFILE") != "" {
		time.Sleep(3 * time.Second) // the profile is written a second after the result line
	}
	for _, p := range procs {
		_ = p.Stop(15 * time.Second)
	}
	return slowest, cores
}

// positiveEnv is the positive number the environment variable name gives, def when unset; any
// other value fails the test.
func positiveEnv(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
