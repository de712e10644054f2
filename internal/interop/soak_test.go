package interop

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/gototem/gototem/internal/testenv"
)

// TestSoakSubSecond is corosync#232's question on real sockets: 8 gototem nodes in the netns
// lab with token 300 ms and token_coefficient 0 (so the effective token stays 300 ms;
// consensus 360 ms), a steady libcpg load of half the ring's capacity (measured first, in
// the same run: a 5 s cpgbench flood from node 1, 1 KiB), held for the soak; no membership
// change may happen, every receiver must get the load in order, and the load must be held
// (every receiver at 90% of the offered rate or better). Then node 8 is killed with SIGKILL
// and node 1 must log the new membership within token + consensus + 500 ms (the commit and
// recovery rotations, and process scheduling on a shared machine).
//
// It runs only with GOTOTEM_SOAK set to the soak's length: GOTOTEM_SOAK=10m for the issue's
// ten minutes, GOTOTEM_SOAK=60s for a short one. Eight daemons and a flood load both cores:
// run it under the heavy lock.
func TestSoakSubSecond(t *testing.T) {
	v := os.Getenv("GOTOTEM_SOAK")
	if v == "" {
		t.Skip("GOTOTEM_SOAK=DURATION (10m, 60s) runs the 8-node token-300 soak")
	}
	soak, err := time.ParseDuration(v)
	if err != nil || soak < 10*time.Second || soak > time.Hour {
		t.Fatalf("GOTOTEM_SOAK=%q: want a duration 10s..1h", v)
	}
	needCorosync(t) // root, network namespaces and libcpg come with the interop setup
	src := os.Getenv("GOTOTEM_CPGBENCH_SRC")
	if src == "" {
		src = filepath.Join("testdata", "cpgbench.c")
	}
	_, err = os.Stat(src)
	testenv.Need(t, "cpgbench.c (GOTOTEM_CPGBENCH_SRC)", err)
	bin, err := BuildC(src, filepath.Join(t.TempDir(), "cpgbench"), "libcpg")
	if err != nil {
		t.Fatal(err)
	}
	gototem := buildGototem(t)
	const nodes, token, consensus = 8, 300 * time.Millisecond, 360 * time.Millisecond
	engines := make([]Engine, nodes)
	for i := range engines {
		engines[i] = Gototem
	}
	c := newCluster(t, Options{Engines: engines, Transport: "udpu", Gototem: gototem, Quiet: true,
		TokenMS: int(token / time.Millisecond), TotemExtra: subSecondTotem})
	formRing(t, c)

	capacity := corosyncFlood(t, c, bin, "udpu", 1024, 5, 0).msgs
	if capacity <= 0 {
		t.Fatalf("capacity flood delivered nothing")
	}
	rate := capacity / 2
	before := membershipLines(t, c)
	start := time.Now()
	// cpgbench runs at most 120 s, so a longer soak is consecutive runs (a second or so
	// without load between them); the slowest run's figures are reported.
	load := benchRow{msgs: -1}
	for left := int(soak / time.Second); left > 0; left -= 120 {
		r := corosyncFlood(t, c, bin, "udpu", 1024, min(left, 120), rate)
		if load.msgs < 0 || r.msgs < load.msgs {
			load.msgs = r.msgs
		}
		load.p50ms, load.p99ms = max(load.p50ms, r.p50ms), max(load.p99ms, r.p99ms)
	}
	after := membershipLines(t, c)
	changes := 0
	for id := range after {
		if d := after[id] - before[id]; d > 0 {
			changes += d
			t.Errorf("node %d logged %d membership change(s) during the soak:\n%s", id, d, c.Node(id).LogTail(40))
		}
	}
	if load.msgs < 0.9*rate {
		t.Errorf("load not held: slowest receiver %.0f msgs/s of %.0f offered", load.msgs, rate)
	}
	t.Logf("MEASURED soak: 8 gototem nodes, udpu, token 300 ms, coefficient 0; capacity %.0f msgs/s (1 KiB, one sender); "+
		"offered %.0f msgs/s for %v: slowest receiver %.0f msgs/s, agreed latency (worst run) p50 %.2f ms p99 %.2f ms, %d membership changes",
		capacity, rate, time.Since(start).Round(time.Second), load.msgs, load.p50ms, load.p99ms, changes)

	d, _ := killAndTime(t, c, nodes, false)
	bound := token + consensus + 500*time.Millisecond
	t.Logf("MEASURED: kill -9 node %d -> new membership on node 1 in %v (token + consensus = %v)", nodes, d.Round(time.Millisecond), token+consensus)
	if d > bound {
		t.Errorf("failover took %v, more than token + consensus + 500 ms = %v", d, bound)
	}
}

// subSecondTotem are the totem lines of a sub-second token besides token itself: no
// token_coefficient (8 nodes would otherwise add 3.9 s), and rrp_problem_count_threshold 8.
// The latter works around gototem's config check that derives corosync 2.x's
// rrp_token_expired_timeout ((token - 50) / threshold = 25 ms at threshold 10) and refuses it
// below 30 ms even for a single ring, which corosync 3.1.7 (no rrp) accepts; corosync 3
// stores and ignores the key.
var subSecondTotem = []string{"token_coefficient: 0", "rrp_problem_count_threshold: 8"}

var newMembership = regexp.MustCompile(`A new membership \([0-9a-f]+\.[0-9a-f]+\) was formed`)

// membershipLines counts each node's "A new membership" log lines so far.
func membershipLines(t *testing.T, c *Cluster) map[int]int {
	t.Helper()
	out := map[int]int{}
	for _, n := range c.Nodes() {
		data, err := os.ReadFile(n.Log)
		if err != nil {
			t.Fatal(err)
		}
		out[n.ID] = len(newMembership.FindAllString(string(data), -1))
	}
	return out
}
