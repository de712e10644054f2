package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// TestLinkFate measures the network model's datagram fates over many draws: loss,
// duplication and delay bounds match the link's parameters, and a cut link delivers nothing.
func TestLinkFate(t *testing.T) {
	p := LinkParams{Latency: time.Millisecond, Jitter: time.Millisecond, Loss: 0.2, Duplicate: 0.1,
		Reorder: 0.3, ReorderDelay: 5 * time.Millisecond}
	n := network{base: p, override: map[link]LinkParams{}, cut: map[link]bool{}}
	r := rand.New(rand.NewPCG(1, 2))
	const draws = 100000
	lost, dup := 0, 0
	var buf []time.Duration
	for i := 0; i < draws; i++ {
		buf = n.fate(r, 1, 2, buf)
		switch len(buf) {
		case 0:
			lost++
		case 2:
			dup++
		}
		for _, d := range buf {
			if d < p.Latency || d >= p.Latency+p.Jitter+p.ReorderDelay {
				t.Fatalf("delay %v outside [%v, %v)", d, p.Latency, p.Latency+p.Jitter+p.ReorderDelay)
			}
		}
	}
	near := func(name string, got int, want float64) {
		if f := float64(got) / draws; math.Abs(f-want) > 0.01 {
			t.Errorf("%s rate %.4f, want %.2f", name, f, want)
		}
	}
	near("loss", lost, p.Loss)
	near("duplicate", dup, (1-p.Loss)*p.Duplicate)
	n.cut[link{1, 2}] = true
	if buf = n.fate(r, 1, 2, buf); len(buf) != 0 {
		t.Fatal("a cut link delivered a datagram")
	}
	if err := (LinkParams{Loss: 1.5}).validate(); err == nil {
		t.Fatal("loss 1.5 accepted")
	}
}

// pinger is a fake protocol: at Start it multicasts one datagram and unicasts one to node
// 1; it counts what it receives by sender. It proves the fan-out rules without srp.
type pinger struct {
	id   srp.NodeID
	out  []srp.Outgoing
	from map[srp.NodeID]int
}

func (p *pinger) Start(now time.Duration) {
	d := []byte{byte(p.id)}
	p.out = append(p.out, srp.Outgoing{Dest: srp.ToAll, Data: d}, srp.Outgoing{Dest: srp.ToNode, To: 1, Data: d})
}
func (p *pinger) Step(now time.Duration, b []byte) error {
	p.from[srp.NodeID(b[0])]++
	return nil
}
func (p *pinger) Tick(time.Duration)                              {}
func (p *pinger) Send(time.Duration, []byte, srp.Guarantee) error { return nil }
func (p *pinger) Leave(time.Duration)                             {}
func (p *pinger) Ready() srp.Ready                                { return srp.Ready{Messages: p.out} }
func (p *pinger) Advance()                                        { p.out = nil }
func (p *pinger) State() srp.State                                { return srp.Operational }
func (p *pinger) RingID() srp.RingID                              { return srp.RingID{} }
func (p *pinger) Members() []srp.NodeID                           { return nil }
func (p *pinger) Status() srp.Status                              { return srp.Status{} }

func TestMulticastFanOutAndCuts(t *testing.T) {
	pingers := map[srp.NodeID]*pinger{}
	s, err := New(Options{Seed: 1, Nodes: 4, NewProtocol: func(cfg srp.Config) (Protocol, error) {
		p := &pinger{id: cfg.NodeID, from: map[srp.NodeID]int{}}
		pingers[cfg.NodeID] = p
		return p, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	// 4 → 3 cut one way, 2 isolated from everyone: before anything starts.
	s.CutOneWay(4, 3)
	s.Partition([]srp.NodeID{1, 3, 4}, []srp.NodeID{2})
	s.CutOneWay(4, 3)
	if err := s.run(time.Second); err != nil {
		t.Fatal(err)
	}
	want := map[srp.NodeID]map[srp.NodeID]int{
		1: {1: 2, 3: 2, 4: 2}, // multicasts from 1, 3, 4 plus their unicasts to 1
		2: {2: 1},             // isolated: only its own copy (loopback is never cut)
		3: {1: 1, 3: 1},       // 4 → 3 cut
		4: {1: 1, 3: 1, 4: 1},
	}
	for id, w := range want {
		got := pingers[id].from
		for from, n := range w {
			if got[from] != n {
				t.Errorf("n%d received %d datagrams from n%d, want %d (all: %v)", id, got[from], from, n, got)
			}
		}
		if len(got) != len(w) {
			t.Errorf("n%d received from %v, want exactly %v", id, got, w)
		}
	}
}

// echo answers every datagram with a multicast: each datagram begets one per node, so
// traffic grows without bound, and the run loop must stop with a progress violation
// instead of hanging.
type echo struct{ pinger }

func (e *echo) Step(now time.Duration, b []byte) error {
	e.out = append(e.out, srp.Outgoing{Dest: srp.ToAll, Data: b})
	return nil
}

func TestStormIsAViolationNotAHang(t *testing.T) {
	s, err := New(Options{Seed: 1, Nodes: 3, NewProtocol: func(cfg srp.Config) (Protocol, error) {
		return &echo{pinger{id: cfg.NodeID, from: map[srp.NodeID]int{}}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.RunFor(time.Second)
	v, ok := err.(*Violation)
	if !ok || v.Invariant != InvProgress {
		t.Fatalf("want a progress violation, got %v", err)
	}
}

// spinner asks to be woken at the instant it is already at, forever.
type spinner struct {
	pinger
	now time.Duration
}

func (p *spinner) Tick(now time.Duration) { p.now = now }
func (p *spinner) Ready() srp.Ready       { return srp.Ready{NextTick: max(p.now, 1)} }

func TestSpinningTimerIsAViolationNotAHang(t *testing.T) {
	s, err := New(Options{Seed: 1, Nodes: 2, NewProtocol: func(cfg srp.Config) (Protocol, error) {
		return &spinner{pinger: pinger{id: cfg.NodeID, from: map[srp.NodeID]int{}}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.RunFor(time.Second)
	v, ok := err.(*Violation)
	if !ok || v.Invariant != InvProgress {
		t.Fatalf("want a progress violation, got %v", err)
	}
}
