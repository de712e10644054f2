package totem

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/transport"
)

// A state directory the ring id cannot be written to is refused at Start with a clear error,
// instead of a daemon that starts and can never join.
func TestStateDirMustBeWritable(t *testing.T) {
	if err := checkWritable(t.TempDir()); err != nil {
		t.Fatalf("writable temp dir refused: %v", err)
	}
	// /proc takes no new files, not even from root.
	text := clusterConf("udpu", 1, netip.AddrFrom4([4]byte{127, 0, 0, 0}), 20000+rand.IntN(20000))
	cfg, _, err := config.Parse("corosync.conf", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(netip.MustParseAddr("127.0.0.1"))})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Config: FromRuntime(rt), StateDir: "/proc"})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Start(context.Background())
	if err == nil {
		n.Stop(context.Background())
		t.Fatal("Start succeeded with an unwritable state directory")
	}
	if !strings.Contains(err.Error(), "state directory /proc is not writable") {
		t.Fatalf("unclear error: %v", err)
	}
	t.Logf("asserts: Start refuses: %v", err)
}

// The throttle passes one warning per message per logEvery and reports how many it held back.
func TestLogThrottle(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newThrottle(slog.NewTextHandler(&buf, nil)))
	t0 := time.Now()
	for i := range 60 {
		r := slog.NewRecord(t0.Add(time.Duration(i)*16*time.Millisecond), slog.LevelError, "srp: cannot store ring id", 0)
		log.Handler().Handle(context.Background(), r)
	}
	log.Info("info is never throttled")
	log.Info("info is never throttled")
	if got := strings.Count(buf.String(), "cannot store ring id"); got != 1 {
		t.Fatalf("%d lines in the first second, want 1:\n%s", got, buf.String())
	}
	r := slog.NewRecord(t0.Add(logEvery+time.Second), slog.LevelError, "srp: cannot store ring id", 0)
	log.Handler().Handle(context.Background(), r)
	out := buf.String()
	if strings.Count(out, "cannot store ring id") != 2 || !strings.Contains(out, "suppressed=59") ||
		strings.Count(out, "info is never throttled") != 2 {
		t.Fatalf("after logEvery:\n%s", out)
	}
}

// One line per cause per logEvery, naming the last source and the count since the last line.
func TestHealthLoggerOncePerCause(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var h healthLogger
	from := netip.MustParseAddrPort("10.0.0.9:5405")
	t0 := time.Now()
	for i := range 20 {
		s := Status{Drops: Drops{AuthFailure: uint64(100 * (i + 1))}}
		h.check(log, t0.Add(time.Duration(i)*time.Second), &s, transport.DropSources{Auth: from})
	}
	out := buf.String()
	if n := strings.Count(out, "fail authentication"); n != 2 {
		t.Fatalf("%d auth lines over 20 s, want 2 (t=0 and t=10s):\n%s", n, out)
	}
	if !strings.Contains(out, "last_from=10.0.0.9:5405") || !strings.Contains(out, "dropped=1000") {
		t.Fatalf("lines do not name the source or the count:\n%s", out)
	}
	buf.Reset()
	s := Status{Stuck: true, Health: "STUCK: no ring formed, in GATHER for 30s"}
	h.check(log, t0.Add(time.Minute), &s, transport.DropSources{})
	h.check(log, t0.Add(time.Minute+time.Second), &s, transport.DropSources{})
	h.check(log, t0.Add(time.Minute+logEvery), &s, transport.DropSources{})
	if n := strings.Count(buf.String(), "STUCK"); n != 2 {
		t.Fatalf("stuck logged %d times, want 2:\n%s", n, buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A node with another authkey is named in the logs of both sides, once, and counted in
// Status.Drops; the healthy nodes say healthy, and the Status of a formed ring is healthy.
func TestWrongKeyIsLoggedAndCounted(t *testing.T) {
	good, bad := keyFile(t, 1), keyFile(t, 2)
	logs := make([]*syncBuffer, 3)
	ms := startClusterWith(t, "udpu", 3, func(id int) []string {
		key := good
		if id == 3 {
			key = bad
		}
		return []string{"crypto_cipher: aes256", "crypto_hash: sha256", "keyfile: " + key}
	}, func(id int) *slog.Logger {
		logs[id-1] = &syncBuffer{}
		return slog.New(slog.NewTextHandler(logs[id-1], nil))
	})
	waitFor(t, 10*time.Second, "a ring of the two nodes sharing the key", ringOf(ms[:2], []NodeID{1, 2}))
	waitFor(t, 5*time.Second, "the auth-failure line on both sides", func() bool {
		return strings.Contains(logs[0].String(), "fail authentication") && strings.Contains(logs[2].String(), "fail authentication")
	})
	time.Sleep(2 * healthTick)
	for i, l := range []*syncBuffer{logs[0], logs[2]} {
		if n := strings.Count(l.String(), "fail authentication"); n != 1 {
			t.Errorf("node %d logged the wrong key %d times within seconds, want once:\n%s", []int{1, 3}[i], n, l.String())
		}
	}
	if !strings.Contains(logs[0].String(), "last_from=127.") {
		t.Errorf("node 1 does not name the wrong-key peer:\n%s", logs[0].String())
	}
	st := ms[0].node.Status()
	if st.Drops.AuthFailure == 0 || !st.Healthy || st.Health != "healthy" {
		t.Fatalf("status: drops %+v healthy %v %q", st.Drops, st.Healthy, st.Health)
	}
	t.Logf("asserts: both sides name the wrong key once; node 1 %q, drops %+v", st.Health, st.Drops)
}

// A node whose state directory disappears cannot store a ring id, so it can never enter
// COMMIT: it must not be reported healthy once that has lasted token + 2 × consensus, and the
// error behind it is logged about once per logEvery, not once per attempt (issue 12: ~60
// ERROR lines a second, and status said healthy).
func TestStuckNodeIsNotHealthy(t *testing.T) {
	logs := make([]*syncBuffer, 2)
	ms := startClusterWith(t, "udpu", 2, func(int) []string { return nil }, func(id int) *slog.Logger {
		logs[id-1] = &syncBuffer{}
		return slog.New(slog.NewTextHandler(logs[id-1], nil))
	})
	waitFor(t, 10*time.Second, "a ring of both nodes", ringOf(ms, []NodeID{1, 2}))
	n1 := ms[0].node
	// Healthy once services synchronized after the ring formed.
	waitFor(t, 5*time.Second, "node 1 healthy", func() bool { st := n1.Status(); return st.Healthy && !st.Stuck })
	if err := os.RemoveAll(n1.stateDir()); err != nil {
		t.Fatal(err)
	}
	// Node 2 leaves: node 1 must form a new ring, which needs its ring id stored.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	ms[1].node.Stop(ctx)
	cancel()
	t0 := time.Now()
	waitFor(t, 10*time.Second, "node 1 reported stuck", func() bool { return n1.Status().Stuck })
	st := n1.Status()
	if st.Healthy || !strings.Contains(st.Health, "STUCK") || st.State == "OPERATIONAL" {
		t.Fatalf("stuck node: healthy %v state %v %q", st.Healthy, st.State, st.Health)
	}
	t.Logf("asserts: after %v node 1 says %q (stuck after %v)", time.Since(t0).Round(time.Millisecond), st.Health, n1.stuckAfter())
	time.Sleep(2 * time.Second)
	out := logs[0].String()
	errs := strings.Count(out, "cannot store ring id")
	// Each consensus timeout (1.2 s) retries; unthrottled that is one line per attempt
	// and node; the throttle allows one per logEvery (+1 for the window boundary).
	if errs < 1 || errs > 2 {
		t.Fatalf("%d 'cannot store ring id' lines in %v, want 1 or 2:\n%s", errs, time.Since(t0).Round(time.Millisecond), out)
	}
	if !strings.Contains(out, "no ring formed") {
		t.Fatalf("no stuck line in the log:\n%s", out)
	}
	t.Logf("asserts: %d store-error line(s) and a stuck line logged", errs)
}
