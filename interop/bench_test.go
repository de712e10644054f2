package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchCPGFlood is the side-by-side flood benchmark (GOTOTEM_BENCH=1): three real corosync
// nodes, node 1 multicasts AGREED messages of 64 B, 1 KiB and 8 KiB as fast as flow control
// allows for GOTOTEM_BENCH_SECS seconds (default 5) while nodes 2 and 3 receive, using the
// lab's cpgbench.c (../shared/lab/cpgbench.c beside the repository, or GOTOTEM_CPGBENCH_SRC).
// It reports msgs/s and MB/s at the sender and the slowest receiver, and fails on any order or
// content error a receiver detects. GOTOTEM_BENCH_TRANSPORT picks udpu (default) or udp.
// The gototem column is added once the daemon runs (same load through `gototem send`).
func TestBenchCPGFlood(t *testing.T) {
	needGate(t, "GOTOTEM_BENCH", "the CPG flood benchmark loads both cores for tens of seconds")
	needCorosync(t)
	src := os.Getenv("GOTOTEM_CPGBENCH_SRC")
	if src == "" {
		src = filepath.Join("..", "..", "shared", "lab", "cpgbench.c")
	}
	if _, err := os.Stat(src); err != nil {
		t.Skipf("cpgbench.c not found (%v): set GOTOTEM_CPGBENCH_SRC", err)
	}
	secs := 5
	if v := os.Getenv("GOTOTEM_BENCH_SECS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 60 {
			t.Fatalf("GOTOTEM_BENCH_SECS=%q: want 1..60", v)
		}
		secs = n
	}
	transport := os.Getenv("GOTOTEM_BENCH_TRANSPORT")
	if transport == "" {
		transport = "udpu"
	}
	bin, err := BuildC(src, filepath.Join(t.TempDir(), "cpgbench"), "libcpg")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// debug logging off: at these rates it would measure the log file
	c := newCluster(t, Options{Engines: engines(Corosync, Corosync, Corosync), Transport: transport, Quiet: true})
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitRing(ctx, ids(1, 3), ids(1, 3), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	limit := fmt.Sprint(secs + 60)
	for _, size := range []int{64, 1024, 8192} {
		group := fmt.Sprintf("bench-%d", size)
		var procs []*Proc
		for _, id := range []int{2, 3} {
			p, err := c.Node(id).StartProc(bin, "-m", "recv", "-S", "1", "-g", group, "-T", limit, "-q")
			if err != nil {
				t.Fatal(err)
			}
			procs = append(procs, p)
		}
		time.Sleep(500 * time.Millisecond) // receivers join before the sender counts members
		snd, err := c.Node(1).StartProc(bin, "-m", "send", "-s", fmt.Sprint(size), "-t", fmt.Sprint(secs), "-w", "3", "-g", group, "-T", limit, "-q")
		if err != nil {
			t.Fatal(err)
		}
		procs = append([]*Proc{snd}, procs...)
		results := map[int]map[string]string{}
		for i, p := range procs {
			err := p.WaitFor(time.Duration(secs+90)*time.Second, "RESULT", func(ls []string) bool {
				for _, l := range ls {
					if strings.HasPrefix(l, "RESULT ") {
						return true
					}
				}
				return false
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range p.Lines() {
				if strings.HasPrefix(l, "RESULT ") {
					results[i] = benchFields(l)
				}
			}
		}
		minRx, minMB := -1.0, 0.0
		for i, r := range results {
			if r["order_errors"] != "0" || r["content_errors"] != "0" {
				t.Errorf("size %d: node %d reports order_errors=%s content_errors=%s", size, i+1, r["order_errors"], r["content_errors"])
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
		t.Logf("BENCH engine=corosync transport=%s nodes=3 size=%d secs=%d sender_msgs_per_s=%s sender_MB_per_s=%s min_rx_msgs_per_s=%.0f min_rx_MB_per_s=%.2f lat_p50_us=%s lat_p99_us=%s",
			transport, size, secs, s["send_msgs_per_s"], s["send_MB_per_s"], minRx, minMB, s["lat_p50_us"], s["lat_p99_us"])
		for _, p := range procs {
			_ = p.Stop(5 * time.Second)
		}
	}
}

func benchFields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(line, "RESULT ")) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}
