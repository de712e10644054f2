package totem

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type counter struct {
	n     atomic.Int64
	bytes atomic.Int64
	want  int64
	done  chan struct{}
	once  sync.Once
}

func (c *counter) Deliver(m Message) {
	c.bytes.Add(int64(len(m.Payload)))
	if c.n.Add(1) == c.want {
		c.once.Do(func() { close(c.done) })
	}
}
func (c *counter) ConfigChange(GroupChange) {}

// cpuTime is the process's user+system CPU time so far (every node of the benchmark runs in
// this process, so it is the whole cluster's cost).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// floodSnapshot is what the benchmark reads from the nodes before and after a flood.
type floodSnapshot struct {
	tokens      uint64 // ORF tokens node 1 accepted: one per rotation
	mcasts      uint64 // srp messages node 1 originated
	accel       uint64 // tokens node 1 passed ahead of some of its MCASTs (accelerated ring)
	sentPackets uint64 // datagrams handed to the kernel, all nodes
	cpu         time.Duration
}

func snapshot(ms []*member) floodSnapshot {
	s := floodSnapshot{cpu: cpuTime()}
	for i, m := range ms {
		st := m.node.Status()
		if i == 0 {
			s.tokens, s.mcasts, s.accel = st.SRP.TokensReceived, st.SRP.McastSent, st.SRP.TokensAccelerated
		}
		for _, c := range st.Net {
			s.sentPackets += c.SentPackets
		}
	}
	return s
}

// BenchmarkRingFlood measures ordered delivery through three in-process nodes over real udpu
// sockets on loopback: node 1 floods b.N messages, every node must deliver all of them.
// Reports messages/s and MB/s at the slowest node, and what explains them: the token's
// rotation time (µs/rotation), srp messages per rotation, datagrams sent per application
// message (all nodes) and CPU per message (all nodes; it is one process). All three nodes
// share this machine's cores, so this is a floor for a real cluster.
func BenchmarkRingFlood(b *testing.B) {
	for _, size := range []int{64, 1024, 8192} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchFlood(b, 3, size) })
	}
}

// BenchmarkRingFlood5 is BenchmarkRingFlood's 1 KiB flood on a 5-node ring: a rotation has
// five hops, so per-hop latency weighs more than on three.
func BenchmarkRingFlood5(b *testing.B) {
	b.Run("1024B", func(b *testing.B) { benchFlood(b, 5, 1024) })
}

// BenchmarkRingFloodWindow is the 8 KiB flood with a larger token window (window_size 150,
// max_messages 50, against corosync's 50 and 17): how much of the rotation time per datagram
// is the token's own cost. Both are corosync.conf options, so this measures what an operator
// can tune, not a different protocol.
func BenchmarkRingFloodWindow(b *testing.B) {
	b.Run("8192B", func(b *testing.B) { benchFlood(b, 3, 8192, "window_size: 150", "max_messages: 50") })
}

// BenchmarkRingFloodGototemRing is BenchmarkRingFlood on a ring whose every node is declared
// gototem_node: yes, which runs gototem's wider default token window (config/gototem.go).
func BenchmarkRingFloodGototemRing(b *testing.B) {
	for _, size := range []int{64, 1024, 8192} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchFlood(b, 3, size, gototemRing) })
	}
}

// joinCounters joins every member to group "bench" with a counter expecting b.N messages and
// waits (bounded) until the first member sees them all in it.
func joinCounters(b *testing.B, ms []*member) []*counter {
	var cs []*counter
	for _, m := range ms {
		c := &counter{want: int64(b.N), done: make(chan struct{})}
		g, err := m.node.Join("bench", c)
		if err != nil {
			b.Fatal(err)
		}
		m.group = g
		cs = append(cs, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ms[0].group.Members()) != len(ms) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return cs
}

func benchFlood(b *testing.B, nodes, size int, totemExtra ...string) {
	ms := startClusterB(b, nodes, totemExtra...)
	cs := joinCounters(b, ms)
	payload := make([]byte, size)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := snapshot(ms)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := ms[0].group.Send(ctx, payload, Agreed); err != nil {
			b.Fatal(err)
		}
	}
	finishFlood(b, ctx, ms, cs, before, start, size)
}

// finishFlood waits until every node delivered the b.N messages, then reports the flood's
// rates, rotation figures and CPU per message against the snapshot taken at start.
func finishFlood(b *testing.B, ctx context.Context, ms []*member, cs []*counter, before floodSnapshot, start time.Time, size int) {
	b.Helper()
	for _, c := range cs {
		select {
		case <-c.done:
		case <-ctx.Done():
			b.Fatalf("delivered %d of %d", c.n.Load(), b.N)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	after := snapshot(ms)
	secs := el.Seconds()
	b.ReportMetric(float64(b.N)/secs, "msgs/s")
	b.ReportMetric(float64(b.N*size)/secs/1e6, "MB/s")
	if rot := after.tokens - before.tokens; rot > 0 {
		b.ReportMetric(float64(el.Microseconds())/float64(rot), "µs/rotation")
		b.ReportMetric(float64(after.mcasts-before.mcasts)/float64(rot), "mcasts/rotation")
		if a := after.accel - before.accel; a > 0 {
			b.ReportMetric(float64(a)/float64(rot), "accel/rotation")
		}
	}
	b.ReportMetric(float64(after.sentPackets-before.sentPackets)/float64(b.N), "pkts/msg")
	b.ReportMetric(float64((after.cpu-before.cpu).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/msg")
}

func startClusterB(b testing.TB, n int, totemExtra ...string) []*member {
	b.Helper()
	ms := startCluster(b, "udpu", n, func(int) []string { return totemExtra })
	var ids []NodeID
	for i := 1; i <= n; i++ {
		ids = append(ids, NodeID(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ringOf(ms, ids)() {
			return ms
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("no ring")
	return nil
}

// gototemRing declares every node a gototem node: the ring then runs gototem's token window
// (config.GototemWindowSize, GototemMaxMessages) unless the file sets one.
const gototemRing = "node.gototem_node: yes"

// accelLines turn on the accelerated ring (srp/accel.go) with the given window.
func accelLines(window int) []string {
	return []string{"gototem_accelerated: yes", fmt.Sprintf("gototem_accelerated_window: %d", window), gototemRing}
}

// BenchmarkRingFloodAccelerated is BenchmarkRingFlood's 1 KiB and 8 KiB floods on the
// standard ring and on the accelerated ring (token passed before the visit's last
// messages), side by side in one run so the ratio is measured under the same machine load:
//
//	go test ./totem -run '^$' -bench BenchmarkRingFloodAccelerated -benchtime 20000x -count 3
func BenchmarkRingFloodAccelerated(b *testing.B) {
	for _, size := range []int{1024, 8192} {
		// the standard ring declared too: both run the same (gototem-only) token window
		b.Run(fmt.Sprintf("%dB/standard", size), func(b *testing.B) { benchFlood(b, 3, size, gototemRing) })
		b.Run(fmt.Sprintf("%dB/accelerated", size), func(b *testing.B) {
			benchFlood(b, 3, size, accelLines(17)...)
		})
	}
}

// BenchmarkRingFloodAllAccelerated floods from every node at once (b.N messages in all, a
// third each), standard ring and accelerated ring side by side in one run. This is the
// accelerated ring's case (Spread measured it with every participant sending): in the
// standard ring a holder starts multicasting only once its predecessor has sent its last
// message; here it starts while the predecessor is still sending, so two senders work on two
// cores. With one sender (BenchmarkRingFloodAccelerated) the rotation is the sender's own
// work on loopback and passing the token early gains nothing.
//
//	go test ./totem -run '^$' -bench BenchmarkRingFloodAllAccelerated -benchtime 30000x -count 3
func BenchmarkRingFloodAllAccelerated(b *testing.B) {
	for _, size := range []int{1024, 8192} {
		b.Run(fmt.Sprintf("%dB/standard", size), func(b *testing.B) { benchFloodAll(b, 3, size, gototemRing) })
		b.Run(fmt.Sprintf("%dB/accelerated", size), func(b *testing.B) {
			benchFloodAll(b, 3, size, accelLines(17)...)
		})
	}
}

func benchFloodAll(b *testing.B, nodes, size int, totemExtra ...string) {
	ms := startClusterB(b, nodes, totemExtra...)
	cs := joinCounters(b, ms)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := snapshot(ms)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for i, m := range ms {
		share := b.N / nodes
		if i == 0 {
			share += b.N % nodes
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, size)
			for range share {
				if err := m.group.Send(ctx, payload, Agreed); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	finishFlood(b, ctx, ms, cs, before, start, size)
}

// Three nodes on the accelerated ring (gototem_accelerated: yes, every node declared) over
// real udpu sockets: every node floods at once, all deliver every message in one order, and
// the tokens really went ahead of MCASTs (TokensAccelerated counts them).
func TestAcceleratedRingOverUDPU(t *testing.T) {
	ms := startCluster(t, "udpu", 3, func(int) []string { return accelLines(17) })
	joinAll(t, ms)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	floodInOneOrder(t, ctx, ms, 2000, 30*time.Second)
	var accel uint64
	for _, m := range ms {
		accel += m.node.Status().SRP.TokensAccelerated
	}
	if accel == 0 {
		t.Fatal("no token was passed ahead of its visit's MCASTs: the accelerated ring is off")
	}
	t.Logf("%d tokens passed ahead of MCASTs", accel)
}
