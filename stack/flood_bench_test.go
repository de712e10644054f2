package stack

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// BenchmarkStackFlood is the interop bench's flood (3 nodes, one sender, CPG messages) with
// the network taken away: three Stacks in one goroutine, configured as totem runs them
// (ReuseDatagramBuffers, ReuseEventBuffers), every datagram copied once into the receiver's
// buffer as the kernel would. ns/op is the user-space protocol CPU of all three nodes per
// delivered message (srp, totempg, CPG, plus this driver's copy): the share of the lab's
// CPU budget per message that no socket option can remove.
//
//	go test ./stack -run '^$' -bench BenchmarkStackFlood -benchmem
func BenchmarkStackFlood(b *testing.B) {
	for _, size := range []int{1024, 8192} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchStackFlood(b, size) })
	}
}

// floodNet is a zero-delay network of Stacks: datagrams are delivered in FIFO order, each
// into a buffer of its own (a ring of reused buffers), own ToAll datagrams looped back.
type floodNet struct {
	nodes []*Stack
	now   time.Duration
	queue []floodFlight
	head  int
	spare [][]byte
	// delivered counts each node's bench messages; bytes their payload bytes.
	delivered []int
	bytes     []int
}

type floodFlight struct {
	to   int
	data []byte
}

func (fn *floodNet) collect(i int) {
	s := fn.nodes[i]
	rd := s.Ready()
	for _, d := range rd.Datagrams {
		for to := range fn.nodes {
			if d.Dest != srp.ToAll && int(d.To) != to+1 {
				continue
			}
			var buf []byte
			if n := len(fn.spare); n > 0 {
				buf, fn.spare = fn.spare[n-1], fn.spare[:n-1]
			}
			fn.queue = append(fn.queue, floodFlight{to: to, data: append(buf[:0], d.Data...)})
		}
	}
	for _, ev := range rd.Events {
		if m := ev.Message; m != nil && m.Group == "bench" {
			fn.delivered[i]++
			fn.bytes[i] += len(m.Payload)
		}
	}
	if t := rd.NextTick; t != 0 && t <= fn.now {
		s.Tick(fn.now)
	}
	s.Advance()
}

// step delivers one queued datagram, or, with none queued, moves time to the next timer.
func (fn *floodNet) step() {
	fn.now += time.Microsecond
	if fn.head == len(fn.queue) {
		fn.queue, fn.head = fn.queue[:0], 0
		next := time.Duration(0)
		for _, s := range fn.nodes {
			next = minTick(next, s.Ready().NextTick)
		}
		fn.now = max(fn.now, next)
		for i, s := range fn.nodes {
			s.Tick(fn.now)
			fn.collect(i)
		}
		return
	}
	f := fn.queue[fn.head]
	fn.queue[fn.head] = floodFlight{}
	fn.head++
	_ = fn.nodes[f.to].Receive(fn.now, 0, f.data)
	fn.spare = append(fn.spare, f.data)
	fn.collect(f.to)
	if fn.head > 4096 && fn.head*2 > len(fn.queue) {
		fn.queue = fn.queue[:copy(fn.queue, fn.queue[fn.head:])]
		fn.head = 0
	}
}

func benchStackFlood(b *testing.B, size int) {
	const n = 3
	fn := &floodNet{delivered: make([]int, n), bytes: make([]int, n)}
	for i := 1; i <= n; i++ {
		sc := srp.DefaultConfig(srp.NodeID(i), n)
		s, err := New(Config{SRP: sc, Links: 1, ReuseDatagramBuffers: true, ReuseEventBuffers: true})
		if err != nil {
			b.Fatal(err)
		}
		fn.nodes = append(fn.nodes, s)
	}
	for i, s := range fn.nodes {
		s.Start(0)
		fn.collect(i)
	}
	until := func(what string, cond func() bool) {
		for range 20_000_000 {
			if cond() {
				return
			}
			fn.step()
		}
		b.Fatalf("no %s", what)
	}
	until("ring", func() bool {
		for _, s := range fn.nodes {
			if len(s.SRP().Members()) != n || s.Synchronizing() {
				return false
			}
		}
		return true
	})
	for i, s := range fn.nodes {
		if err := s.Join(fn.now, "bench", 1); err != nil {
			b.Fatal(err)
		}
		fn.collect(i)
	}
	until("group", func() bool {
		for _, s := range fn.nodes {
			if len(s.CPG().Members("bench")) != n {
				return false
			}
		}
		return true
	})
	payload := make([]byte, size)
	sender := fn.nodes[0]
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	sent := 0
	for {
		for sent < b.N {
			err := sender.Send(fn.now, "bench", 1, payload, srp.Agreed)
			if errors.Is(err, ErrBusy) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			sent++
			fn.collect(0)
		}
		done := true
		for i := range fn.delivered {
			done = done && fn.delivered[i] >= b.N
		}
		if done {
			break
		}
		fn.step()
	}
	b.StopTimer()
	for i := range fn.nodes {
		if fn.bytes[i] != b.N*size {
			b.Fatalf("node %d delivered %d bytes, want %d", i+1, fn.bytes[i], b.N*size)
		}
	}
}
