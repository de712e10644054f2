package totem

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
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

// BenchmarkRingFlood measures ordered delivery through three in-process nodes over real udpu
// sockets on loopback: node 1 floods b.N messages, every node must deliver all of them.
// Reports messages/s and MB/s at the slowest node. All three nodes share this machine's cores,
// so this is a floor for a real cluster.
func BenchmarkRingFlood(b *testing.B) {
	for _, size := range []int{64, 1024, 8192} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			ms := startClusterB(b, 3)
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
			for len(ms[0].group.Members()) != 3 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			payload := make([]byte, size)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
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
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/el, "msgs/s")
			b.ReportMetric(float64(b.N*size)/el/1e6, "MB/s")
		})
	}
}

func startClusterB(b *testing.B, n int) []*member {
	b.Helper()
	ms := startCluster(b, "udpu", n)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ringOf(ms, []srp.NodeID{1, 2, 3})() {
			return ms
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("no ring")
	return nil
}
