package srp

import (
	"testing"
	"time"
)

// FuzzProcessorStep feeds arbitrary datagrams, interleaved with ticks and sends, to a
// processor that sits in a formed 3-node ring's state: nothing may panic, and the processor
// must keep producing well-formed output (every datagram it emits decodes).
func FuzzProcessorStep(f *testing.F) {
	c := newCluster(f, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	var seeds [][]byte
	c.dropFn = func(from, to NodeID, data []byte) bool {
		if len(seeds) < 64 {
			seeds = append(seeds, append([]byte(nil), data...))
		}
		return false
	}
	tr := newTraffic(c, 5*time.Millisecond)
	tr.run(300 * time.Millisecond)
	for _, s := range seeds {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, op uint8) {
		cfg := DefaultConfig(2, 3)
		p, err := NewProcessor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.Start(0)
		now := time.Duration(0)
		for i := 0; i < 3; i++ {
			now += time.Duration(op) * time.Millisecond
			_ = p.Step(now, data)
			if op&1 == 1 {
				_ = p.Send(now, data[:min(len(data), 100)], Guarantee(op>>7))
			}
			p.Tick(now + time.Duration(op)*10*time.Millisecond)
			for _, o := range p.Ready().Messages {
				if _, _, err := PeekHeader(o.Data); err != nil {
					t.Fatalf("emitted an undecodable datagram: %v", err)
				}
			}
			p.Advance()
		}
	})
}
