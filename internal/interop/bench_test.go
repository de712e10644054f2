package interop

import (
	"context"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchCPGFlood is the side-by-side flood benchmark: three real corosync
// nodes, node 1 multicasts AGREED messages of 64 B, 1 KiB and 8 KiB as fast as flow control
// allows for GOTOTEM_BENCH_SECS seconds (default 5) while nodes 2 and 3 receive, using the
// lab's cpgbench.c (interop/testdata/cpgbench.c, or GOTOTEM_CPGBENCH_SRC).
// It reports msgs/s and MB/s at the sender and the slowest receiver, and fails on any order or
// content error a receiver detects. GOTOTEM_BENCH_TRANSPORT picks udpu (default) or udp.
// The same runs then go through three (and five) all-gototem rings, one `gototem bench`
// process per namespace, and a MEASURED table puts both engines side by side with the ratio,
// plus 5 nodes at 1 KiB and the sender's latency at 100 msgs/s (AGREED, and SAFE for gototem).
// Each engine is also run at 80% of its own 3-node 1 KiB maximum, measured just before, for
// latency under load (AGREED; SAFE for gototem). In the gototem lab, `gototem bench --raw`
// measures the namespaces' raw UDP capacity (full-size datagrams through the same sockets,
// GSO and batching, no flow control) and the table reports each size's goodput as a fraction
// of it.
//
// Without GOTOTEM_BENCH=1 it runs in CI at a smaller size: three nodes of each engine, 64 B,
// 1 KiB and 8 KiB, the 80% load rows and the raw run, 2 seconds each. That run proves the comparison works end to end (both
// engines deliver every message in one order with intact content) and prints the table; it
// asserts no ratio, because CI machines are shared and a throughput threshold would be noise.
// benchKnet: with GOTOTEM_BENCH_TRANSPORT=knet, GOTOTEM_BENCH_KNET_CRYPTO=1 runs both engines
// with aes256/sha256.
func benchKnet() KnetOptions {
	if os.Getenv("GOTOTEM_BENCH_KNET_CRYPTO") == "1" {
		return aes256
	}
	return KnetOptions{}
}

func TestBenchCPGFlood(t *testing.T) {
	full := os.Getenv("GOTOTEM_BENCH") == "1"
	if testing.Short() && !full {
		t.Skip("-short: the side-by-side flood loads both cores")
	}
	needCorosync(t)
	src := os.Getenv("GOTOTEM_CPGBENCH_SRC")
	if src == "" {
		src = filepath.Join("testdata", "cpgbench.c")
	}
	_, err := os.Stat(src)
	testenv.Need(t, "cpgbench.c (GOTOTEM_CPGBENCH_SRC)", err)
	secs := 5
	if !full {
		secs = 2
	}
	if v := os.Getenv("GOTOTEM_BENCH_SECS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 60 {
			t.Fatalf("GOTOTEM_BENCH_SECS=%q: want 1..60", v)
		}
		secs = n
	}
	// GOTOTEM_BENCH_TOTEM adds totem lines to both engines' corosync.conf, separated by ";"
	// (e.g. "window_size: 150;max_messages: 50"): the token window is the operator's to tune,
	// and both engines get the same.
	var totemExtra []string
	for _, l := range strings.Split(os.Getenv("GOTOTEM_BENCH_TOTEM"), ";") {
		if l = strings.TrimSpace(l); l != "" {
			totemExtra = append(totemExtra, l)
		}
	}
	// The gototem lab is a gototem-only ring and says so (gototem_node: yes on every node),
	// as an operator of one would: it then runs gototem's default token window
	// (config/gototem.go) instead of corosync's 50/17, unless GOTOTEM_BENCH_TOTEM sets one.
	// GOTOTEM_BENCH_UNDECLARED=1 runs it undeclared, on corosync's defaults.
	declared := os.Getenv("GOTOTEM_BENCH_UNDECLARED") != "1"
	transport := os.Getenv("GOTOTEM_BENCH_TRANSPORT")
	if transport == "" {
		transport = "udpu"
	}
	bin, err := BuildC(src, filepath.Join(t.TempDir(), "cpgbench"), "libcpg")
	if err != nil {
		t.Fatal(err)
	}
	gototem := buildGototem(t)
	type row struct {
		name        string
		nodes, size int
		rate        float64
		// load: the rate is this fraction of the engine's own 3-node 1 KiB flood, measured
		// just before in the same run (issue 14: latency at 80% of the maximum).
		load float64
		// safe: SAFE delivery, gototem only (libcpg offers no SAFE mode to compare with).
		safe              bool
		corosync, gototem benchRow
	}
	var raw benchRow // the lab's raw UDP capacity, 3 nodes, measured with the gototem rows
	rows := []*row{
		{name: "flood", nodes: 3, size: 64}, {name: "flood", nodes: 3, size: 1024}, {name: "flood", nodes: 3, size: 8192},
		{name: "flood", nodes: 5, size: 1024}, {name: "latency", nodes: 3, size: 1024, rate: 100},
		{name: "latency", nodes: 3, size: 1024, rate: 100, safe: true},
		{name: "load80", nodes: 3, size: 1024, load: 0.8}, {name: "load80", nodes: 3, size: 1024, load: 0.8, safe: true},
	}
	if !full {
		rows = slices.DeleteFunc(rows, func(r *row) bool { return r.nodes != 3 || r.name == "latency" })
	}
	// GOTOTEM_BENCH_ROWS=regexp keeps the rows whose "name/nodes/size" matches (e.g.
	// "flood/3/(1024|8192)"), for shorter tuning runs; a load row needs its flood/3/1024.
	if v := os.Getenv("GOTOTEM_BENCH_ROWS"); v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			t.Fatalf("GOTOTEM_BENCH_ROWS=%q: %v", v, err)
		}
		rows = slices.DeleteFunc(rows, func(r *row) bool { return !re.MatchString(fmt.Sprintf("%s/%d/%d", r.name, r.nodes, r.size)) })
	}
	maxRate := func(eng Engine) float64 {
		for _, r := range rows {
			if r.name == "flood" && r.nodes == 3 && r.size == 1024 {
				if eng == Corosync {
					return r.corosync.msgs
				}
				return r.gototem.msgs
			}
		}
		return 0
	}
	engines := []Engine{Corosync, Gototem}
	// GOTOTEM_BENCH_ENGINES=gototem runs gototem's rows only: for profiling
	// (GOTOTEM_BENCH_CPUPROFILE), not for the side-by-side table, whose ratios need both.
	if os.Getenv("GOTOTEM_BENCH_ENGINES") == "gototem" {
		engines = []Engine{Gototem}
	}
	for _, eng := range engines {
		for _, nodes := range []int{3, 5} {
			if (!full && nodes == 5) || !slices.ContainsFunc(rows, func(r *row) bool { return r.nodes == nodes }) {
				continue
			}
			es := make([]Engine, nodes)
			for i := range es {
				es[i] = eng
			}
			// debug logging off: at these rates it would measure the log file
			c := newCluster(t, Options{Engines: es, Transport: transport, Quiet: true, Gototem: gototem, TotemExtra: totemExtra, Knet: benchKnet()})
			if eng == Gototem && declared {
				declareCluster(t, c)
			}
			if eng == Corosync {
				ctx := context.Background()
				if err := c.StartAll(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := c.WaitRing(ctx, ids(1, nodes), ids(1, nodes), 30*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range rows {
				if r.nodes != nodes || (r.safe && eng == Corosync) {
					continue
				}
				rate := r.rate
				if r.load > 0 {
					rate = r.load * maxRate(eng)
					if rate <= 0 {
						t.Fatalf("%s: the 1 KiB flood measured no maximum to take %.0f%% of", eng, 100*r.load)
					}
				}
				// bench --raw measures cleartext UDP only: no yardstick with knet crypto
				if eng == Gototem && nodes == 3 && raw.msgs == 0 && !benchKnet().crypto() {
					raw = rawFlood(t, c, gototem, secs)
				}
				if eng == Corosync {
					r.corosync = corosyncFlood(t, c, bin, transport, r.size, secs, rate)
					r.corosync.rate = rate
				} else {
					r.gototem = gototemFlood(t, c, gototem, r.size, secs, rate, r.safe)
					r.gototem.rate = rate
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	}
	for _, r := range rows {
		if (!r.safe && r.corosync.msgs <= 0 && len(engines) == 2) || r.gototem.msgs <= 0 {
			t.Errorf("%s %d nodes %d B: a receiver delivered nothing measurable (corosync %.0f/s, gototem %.0f/s)",
				r.name, r.nodes, r.size, r.corosync.msgs, r.gototem.msgs)
		}
	}
	t.Logf("MEASURED: %-8s %5s %6s %12s %10s %12s %10s %7s", "run", "nodes", "size", "corosync/s", "MB/s", "gototem/s", "MB/s", "ratio")
	for _, r := range rows {
		ratio := 0.0
		if r.corosync.msgs > 0 {
			ratio = r.gototem.msgs / r.corosync.msgs
		}
		name, gu := r.name, "agreed"
		if r.safe {
			name, gu = r.name+"-safe", "safe"
		}
		rates := ""
		if r.rate > 0 || r.load > 0 {
			rates = fmt.Sprintf(", offered msgs/s corosync %.0f gototem %.0f", r.corosync.rate, r.gototem.rate)
		}
		t.Logf("MEASURED: %-11s %5d %6d %12.0f %10.2f %12.0f %10.2f %7.2f   p50/p99 ms corosync %.3f/%.3f gototem %s %.3f/%.3f (transport %s, %d s, one sender%s, totem extra %q, gototem ring declared %v)",
			name, r.nodes, r.size, r.corosync.msgs, r.corosync.mb, r.gototem.msgs, r.gototem.mb, ratio,
			r.corosync.p50ms, r.corosync.p99ms, gu, r.gototem.p50ms, r.gototem.p99ms, transport, secs, rates, totemExtra, declared)
	}
	// Goodput (application bytes at the slowest receiver) as a fraction of what the same
	// namespaces carry as bare full-size datagrams: issue 14 asks for at least 70%.
	t.Logf("MEASURED: raw UDP  3 nodes: %.0f datagrams/s of %d bytes, %.2f MB/s at the slowest receiver (gototem bench --raw, %d s, no flow control)",
		raw.msgs, raw.size, raw.mb, secs)
	for _, r := range rows {
		if r.name != "flood" || r.nodes != 3 || raw.mb <= 0 {
			continue
		}
		t.Logf("MEASURED: goodput  3 nodes %6d B: gototem %.2f MB/s = %.0f%% of raw, corosync %.2f MB/s = %.0f%% of raw",
			r.size, r.gototem.mb, 100*r.gototem.mb/raw.mb, r.corosync.mb, 100*r.corosync.mb/raw.mb)
	}
	if raw.mb <= 0 && !benchKnet().crypto() {
		t.Errorf("the raw UDP run measured nothing")
	}
}

// rawFlood runs `gototem bench --raw` in every namespace of a cluster whose daemons are not
// started: node 1 blasts full-size MCAST datagrams through the transport's Link (GSO,
// max_messages per batch, no flow control), the others count. It returns the slowest
// receiver's datagrams/s (msgs) and MB/s; size is the datagram size.
func rawFlood(t *testing.T, c *Cluster, gototem string, secs int) benchRow {
	t.Helper()
	var procs []*Proc
	for _, n := range c.Nodes() {
		p, err := n.StartProc(gototem, "bench", "--raw", "-c", n.Conf, "--seconds", fmt.Sprint(secs), "--senders", "one")
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	row := benchRow{msgs: -1}
	for i, p := range procs {
		r := waitResult(t, p, "raw: ", secs+60)
		t.Logf("BENCH engine=raw node=%d %s", i+1, strings.Join(p.Lines(), " | "))
		if i == 0 {
			continue
		}
		rx, _ := strconv.ParseFloat(r["datagrams/s"], 64)
		mb, _ := strconv.ParseFloat(r["MB/s"], 64)
		row.size, _ = strconv.Atoi(r["datagram"])
		if row.msgs < 0 || rx < row.msgs {
			row.msgs, row.mb = rx, mb
		}
	}
	for _, p := range procs {
		_ = p.Stop(15 * time.Second)
	}
	return row
}

// benchRow is one engine's figures for one run: the slowest receiver's rate and the sender's
// send-to-self-delivery latency.
type benchRow struct {
	msgs, mb     float64
	p50ms, p99ms float64
	size         int     // raw rows: the datagram size
	rate         float64 // the offered rate (0: flood)
}

// corosyncFlood runs cpgbench on a started corosync cluster: node 1 sends, every other node
// receives and checks order and content.
func corosyncFlood(t *testing.T, c *Cluster, bin, transport string, size, secs int, rate float64) benchRow {
	t.Helper()
	nodes := len(c.Nodes())
	limit := fmt.Sprint(secs + 60)
	group := fmt.Sprintf("bench-%d-%d", size, int(rate))
	var procs []*Proc
	for id := 2; id <= nodes; id++ {
		p, err := c.Node(id).StartProc(bin, "-m", "recv", "-S", "1", "-g", group, "-T", limit, "-q")
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	time.Sleep(500 * time.Millisecond) // receivers join before the sender counts members
	args := []string{"-m", "send", "-s", fmt.Sprint(size), "-t", fmt.Sprint(secs), "-w", fmt.Sprint(nodes), "-g", group, "-T", limit, "-q"}
	if rate > 0 {
		args = append(args, "-r", fmt.Sprint(rate))
	}
	snd, err := c.Node(1).StartProc(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	procs = append([]*Proc{snd}, procs...)
	results := map[int]map[string]string{}
	for i, p := range procs {
		results[i] = waitResult(t, p, "RESULT ", secs)
	}
	minRx, minMB := -1.0, 0.0
	for i, r := range results {
		if r["order_errors"] != "0" || r["content_errors"] != "0" {
			t.Errorf("corosync size %d: node %d reports order_errors=%s content_errors=%s", size, i+1, r["order_errors"], r["content_errors"])
		}
		if i == 0 {
			continue
		}
		rx, _ := strconv.ParseFloat(r["rx_msgs_per_s"], 64)
		mb, _ := strconv.ParseFloat(r["rx_MB_per_s"], 64)
		if minRx < 0 || rx < minRx {
			minRx, minMB = rx, mb
		}
	}
	s := results[0]
	t.Logf("BENCH engine=corosync transport=%s nodes=%d size=%d rate=%g secs=%d sender_msgs_per_s=%s sender_MB_per_s=%s min_rx_msgs_per_s=%.0f min_rx_MB_per_s=%.2f lat_p50_us=%s lat_p99_us=%s",
		transport, nodes, size, rate, secs, s["send_msgs_per_s"], s["send_MB_per_s"], minRx, minMB, s["lat_p50_us"], s["lat_p99_us"])
	for _, p := range procs {
		_ = p.Stop(5 * time.Second)
	}
	p50, _ := strconv.ParseFloat(s["lat_p50_us"], 64)
	p99, _ := strconv.ParseFloat(s["lat_p99_us"], 64)
	return benchRow{msgs: minRx, mb: minMB, p50ms: p50 / 1000, p99ms: p99 / 1000}
}

// gototemFlood runs `gototem bench` in every namespace of a cluster whose daemons are not
// started: each bench process is that node's Totem node. Node 1 sends; all nodes check order
// and content and must print the same delivery-order digest.
func gototemFlood(t *testing.T, c *Cluster, gototem string, size, secs int, rate float64, safe bool) benchRow {
	t.Helper()
	var procs []*Proc
	for _, n := range c.Nodes() {
		args := []string{"bench", "-c", n.Conf, "--state-dir", filepath.Join(n.Dir, "lib"), "--group", "bench",
			"--size", fmt.Sprint(size), "--seconds", fmt.Sprint(secs), "--senders", "one",
			"--nodes-expected", fmt.Sprint(len(c.Nodes()))}
		if rate > 0 {
			args = append(args, "--rate", fmt.Sprint(rate))
		}
		if safe {
			args = append(args, "--safe")
		}
		// GOTOTEM_BENCH_CPUPROFILE=dir: every node writes a CPU profile of its flood there.
		if dir := os.Getenv("GOTOTEM_BENCH_CPUPROFILE"); dir != "" {
			args = append(args, "--cpuprofile", filepath.Join(dir, fmt.Sprintf("%s-of%d-%dB-r%.0f.prof", filepath.Base(n.Dir), len(c.Nodes()), size, rate)))
		}
		p, err := n.StartProc(gototem, args...)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	row := benchRow{msgs: -1}
	digest := ""
	for i, p := range procs {
		r := waitResult(t, p, "bench: ", secs+60)
		if r["order_errors"] != "0" {
			t.Errorf("gototem size %d: node %d reports order_errors=%s %s", size, i+1, r["order_errors"], r["error"])
		}
		if digest == "" {
			digest = r["digest"]
		} else if r["digest"] != digest {
			t.Errorf("gototem size %d: node %d delivered in another order (digest %s, node 1 %s)", size, i+1, r["digest"], digest)
		}
		if i == 0 {
			row.p50ms, _ = strconv.ParseFloat(r["own_p50_ms"], 64)
			row.p99ms, _ = strconv.ParseFloat(r["own_p99_ms"], 64)
			t.Logf("BENCH engine=gototem node=1 sender cpu_s=%s sent=%s", r["cpu_s"], r["sent"])
			continue
		}
		rx, _ := strconv.ParseFloat(r["msgs/s"], 64)
		mb, _ := strconv.ParseFloat(r["MB/s"], 64)
		if row.msgs < 0 || rx < row.msgs {
			row.msgs, row.mb = rx, mb
		}
		t.Logf("BENCH engine=gototem node=%d %s", i+1, strings.Join(p.Lines(), " | "))
	}
	if os.Getenv("GOTOTEM_BENCH_CPUPROFILE") != "" {
		// bench writes its profile when it returns, a second after its result line; a
		// SIGTERM before that leaves an empty file.
		time.Sleep(3 * time.Second)
	}
	for _, p := range procs {
		_ = p.Stop(15 * time.Second)
	}
	return row
}

// declareCluster declares every node of a gototem-only cluster not yet started
// (declareGototemNodes in each node's corosync.conf).
func declareCluster(t *testing.T, c *Cluster) {
	t.Helper()
	for _, n := range c.Nodes() {
		b, err := os.ReadFile(n.Conf)
		if err == nil {
			err = os.WriteFile(n.Conf, []byte(declareGototemNodes(string(b))), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// declareGototemNodes adds gototem_node: yes to every nodelist node of a corosync.conf.
func declareGototemNodes(conf string) string {
	return nodeidLine.ReplaceAllString(conf, "${1}nodeid:${2}\n${1}gototem_node: yes")
}

var nodeidLine = regexp.MustCompile(`(?m)^(\s*)nodeid:(.*)$`)

// waitResult waits for p's result line starting with prefix and returns its fields.
func waitResult(t *testing.T, p *Proc, prefix string, secs int) map[string]string {
	t.Helper()
	err := p.WaitFor(time.Duration(secs+90)*time.Second, prefix, func(ls []string) bool {
		for _, l := range ls {
			if strings.HasPrefix(l, prefix) {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(p.Lines(), "\n"))
	}
	for _, l := range p.Lines() {
		if strings.HasPrefix(l, prefix) {
			return benchFields(strings.TrimPrefix(l, prefix))
		}
	}
	return nil
}

func benchFields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}
