package srp

import (
	"testing"
	"time"
)

// benchRing is a minimal allocation-free driver for throughput measurement: datagrams go
// through a FIFO of pooled copies (ToAll copies to every node, the sender included) and
// virtual time advances 5µs per datagram; timers are ticked when due.
type benchRing struct {
	ps    []*Processor
	fifo  []benchPkt
	head  int
	pool  [][]byte
	now   time.Duration
	deliv []int
	next  []time.Duration
}

type benchPkt struct {
	to   int
	data []byte
}

func newBenchRing(tb testing.TB, n int) *benchRing {
	r := &benchRing{deliv: make([]int, n), next: make([]time.Duration, n)}
	for i := 1; i <= n; i++ {
		p, err := NewProcessor(DefaultConfig(NodeID(i), n))
		if err != nil {
			tb.Fatal(err)
		}
		r.ps = append(r.ps, p)
	}
	for i, p := range r.ps {
		p.Start(0)
		r.collect(i)
	}
	for !r.formed() {
		if !r.step() {
			tb.Fatal("bench ring did not form")
		}
	}
	return r
}

func (r *benchRing) formed() bool {
	for _, p := range r.ps {
		if p.State() != Operational || len(p.membList) != len(r.ps) {
			return false
		}
	}
	return true
}

func (r *benchRing) copyOf(b []byte) []byte {
	var c []byte
	if k := len(r.pool); k > 0 {
		c = r.pool[k-1][:0]
		r.pool = r.pool[:k-1]
	}
	return append(c, b...)
}

func (r *benchRing) collect(i int) {
	p := r.ps[i]
	rd := p.Ready()
	for _, o := range rd.Messages {
		if o.Dest == ToAll {
			for j := range r.ps {
				r.fifo = append(r.fifo, benchPkt{j, r.copyOf(o.Data)})
			}
		} else {
			r.fifo = append(r.fifo, benchPkt{int(o.To) - 1, r.copyOf(o.Data)})
		}
	}
	for _, d := range rd.Deliveries {
		if d.Message != nil {
			r.deliv[i]++
		}
	}
	r.next[i] = rd.NextTick
	p.Advance()
}

func (r *benchRing) step() bool {
	for i, nt := range r.next {
		if nt > 0 && nt <= r.now {
			r.ps[i].Tick(r.now)
			r.collect(i)
		}
	}
	if r.head == len(r.fifo) {
		r.fifo, r.head = r.fifo[:0], 0
		// Jump to the next timer.
		var nt time.Duration
		for _, t := range r.next {
			if t > 0 && (nt == 0 || t < nt) {
				nt = t
			}
		}
		if nt == 0 {
			return false
		}
		r.now = nt
		return true
	}
	pk := r.fifo[r.head]
	r.fifo[r.head] = benchPkt{}
	r.head++
	if r.head > 4096 && r.head*2 > len(r.fifo) {
		n := copy(r.fifo, r.fifo[r.head:])
		r.fifo, r.head = r.fifo[:n], 0
	}
	r.now += 5 * time.Microsecond
	_ = r.ps[pk.to].Step(r.now, pk.data)
	r.pool = append(r.pool, pk.data)
	r.collect(pk.to)
	return true
}

// BenchmarkRingThroughput5x1KB: steady-state ordered delivery on a 5-node ring driven in
// memory, 1 KB AGREED messages, every node sending. One op = one message delivered at every
// member; allocs/op is allocations (driver included) per delivered message.
func BenchmarkRingThroughput5x1KB(b *testing.B) {
	r := newBenchRing(b, 5)
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte(i)
	}
	// Warm up the pools.
	for range 2000 {
		for i, p := range r.ps {
			if p.QueueRoom() > 0 && p.newQueue.len() < 64 {
				_ = p.Send(r.now, payload, Agreed)
				r.collect(i)
			}
		}
		r.step()
	}
	base := r.deliv[4]
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for r.deliv[4]-base < b.N {
		for i, p := range r.ps {
			if p.newQueue.len() < 64 {
				_ = p.Send(r.now, payload, Agreed)
				r.collect(i)
			}
		}
		if !r.step() {
			b.Fatal("ring stalled")
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
	for _, p := range r.ps {
		if p.State() != Operational {
			b.Fatalf("ring broke during the benchmark: %v", p.State())
		}
	}
}
