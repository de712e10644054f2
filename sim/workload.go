package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gototem/gototem/srp"
)

// Workload makes every live node originate messages: a Poisson process of Rate messages
// per second per node, each SAFE with probability SafeFraction, with a payload size uniform
// in [MinSize, MaxSize]. Payload bytes are derived from the message id, so a corrupted
// delivery is caught by the no-creation checker.
type Workload struct {
	Rate             float64
	SafeFraction     float64
	MinSize, MaxSize int
}

func (w Workload) validate(netMTU int) error {
	if w.Rate <= 0 {
		return fmt.Errorf("sim: workload: rate %v must be positive", w.Rate)
	}
	if w.SafeFraction < 0 || w.SafeFraction > 1 {
		return fmt.Errorf("sim: workload: safe fraction %v outside 0..1", w.SafeFraction)
	}
	if w.MinSize < 0 || w.MaxSize < w.MinSize || w.MaxSize > MaxPayload(netMTU) {
		return fmt.Errorf("sim: workload: sizes %d..%d outside 0..%d", w.MinSize, w.MaxSize, MaxPayload(netMTU))
	}
	return nil
}

// StartWorkload starts (or replaces) the workload from now on.
func (s *Sim) StartWorkload(w Workload) error {
	if err := w.validate(s.nodes[0].cfg.NetMTU); err != nil {
		return err
	}
	s.work = &w
	cur := s.work
	for _, n := range s.nodes {
		s.scheduleWork(n, cur)
	}
	return nil
}

// StopWorkload stops originating messages (what is queued still goes out).
func (s *Sim) StopWorkload() { s.work = nil }

func (s *Sim) scheduleWork(n *Node, w *Workload) {
	gap := time.Duration(s.rng.ExpFloat64() / w.Rate * float64(time.Second))
	s.schedule(&event{at: s.now + gap + 1, kind: evAction, action: func() error {
		if s.work != w {
			return nil // stopped or replaced
		}
		s.scheduleWork(n, w)
		if !n.up || n.paused {
			return nil
		}
		size := w.MinSize
		if w.MaxSize > w.MinSize {
			size += s.rng.IntN(w.MaxSize - w.MinSize + 1)
		}
		g := srp.Agreed
		if s.rng.Float64() < w.SafeFraction {
			g = srp.Safe
		}
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(n.counter) + byte(i)*31
		}
		_ = s.send(n, payload, g) // refusals are counted and traced by sendNow
		return nil
	}})
}

// LivenessBound is how long a healed, quiet network may take to form one ring and deliver
// what is pending: four rounds of token loss detection, consensus and join (a merge may
// first need a failed attempt or two when several representatives start gathering at
// once), plus a merge-detect interval to notice the other side at all.
func (s *Sim) LivenessBound() time.Duration {
	var b time.Duration
	for _, n := range s.nodes {
		c := n.cfg
		b = max(b, 4*(c.Token+c.Consensus+c.Join)+c.Merge)
	}
	return b
}

// CheckLiveness checks that the network, once healed and quiet, converges: the caller has
// healed every cut, resumed paused nodes and stopped the workload. After LivenessBound
// every live node must be OPERATIONAL on one ring whose members are exactly the live
// nodes, every message a live node's current incarnation sent must be delivered back to
// it, and a probe sent by every live node must reach every live node within another bound.
func (s *Sim) CheckLiveness() error {
	bound := s.LivenessBound()
	if err := s.RunFor(bound); err != nil {
		return err
	}
	live := s.Live()
	if len(live) == 0 {
		return nil
	}
	ring := s.Node(live[0]).proc.RingID()
	for _, id := range live {
		p := s.Node(id).proc
		if p.State() != srp.Operational || p.RingID() != ring || !slices.Equal(p.Members(), live) {
			return s.violation(InvLiveness, "%v after the network healed, live nodes %s are not one ring: %s",
				bound, fmtIDs(live), s.ringSummary())
		}
	}
	// Every message a live incarnation sent comes back to it.
	for _, id := range live {
		n := s.Node(id)
		delivered := make(map[int]bool)
		for _, e := range s.hist.Logs[id] {
			if e.Kind == EntryMessage && e.Incarnation == n.incarnation && e.Msg >= 0 {
				delivered[e.Msg] = true
			}
		}
		for i, m := range s.hist.Sent {
			if m.ID.Sender == id && m.Incarnation == n.incarnation && !delivered[i] {
				return s.violation(InvLiveness, "%v after the network healed, n%d has not delivered its own %s (sent at %s)",
					bound, id, s.hist.msgName(i), fmtTime(m.At))
			}
		}
	}
	// Probes: the ring orders new traffic to everyone.
	first := len(s.hist.Sent)
	for _, id := range live {
		if err := s.Send(id, []byte("liveness probe"), srp.Agreed); err != nil {
			return s.violation(InvLiveness, "n%d could not send a probe: %v", id, err)
		}
	}
	probes := len(s.hist.Sent) - first
	if err := s.RunFor(bound); err != nil {
		return err
	}
	for _, id := range live {
		got := 0
		for _, e := range s.hist.Logs[id] {
			if e.Kind == EntryMessage && e.Msg >= first {
				got++
			}
		}
		if got != probes {
			return s.violation(InvLiveness, "%v after the probes were sent, n%d delivered %d of %d; %s",
				bound, id, got, probes, s.ringSummary())
		}
	}
	return nil
}

// ringSummary is each node's state and ring, for liveness reports.
func (s *Sim) ringSummary() string {
	var b strings.Builder
	for i, n := range s.nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case !n.up:
			fmt.Fprintf(&b, "n%d down", n.ID)
		case n.paused:
			fmt.Fprintf(&b, "n%d paused", n.ID)
		default:
			fmt.Fprintf(&b, "n%d %s ring %s members %s", n.ID, n.proc.State(), ringStr(n.proc.RingID()), fmtIDs(n.proc.Members()))
		}
	}
	return b.String()
}
