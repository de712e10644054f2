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
	sentPackets uint64 // datagrams handed to the kernel, all nodes
	cpu         time.Duration
}

func snapshot(ms []*member) floodSnapshot {
	s := floodSnapshot{cpu: cpuTime()}
	for i, m := range ms {
		st := m.node.Status()
		if i == 0 {
			s.tokens, s.mcasts = st.SRP.TokensReceived, st.SRP.McastSent
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

func benchFlood(b *testing.B, nodes, size int, totemExtra ...string) {
	ms := startClusterB(b, nodes, totemExtra...)
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
	for len(ms[0].group.Members()) != nodes && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
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
