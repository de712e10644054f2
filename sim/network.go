package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gototem/gototem/srp"
)

// LinkParams describe one direction of one link: how long a datagram takes and what can
// happen to it. Every choice is drawn from the simulation's single generator.
type LinkParams struct {
	// Latency is the base one-way delay; Jitter adds a uniform [0, Jitter) on top.
	Latency, Jitter time.Duration
	// Loss is the probability a datagram is dropped.
	Loss float64
	// Duplicate is the probability a datagram arrives twice (independent delays).
	Duplicate float64
	// Reorder is the probability a datagram is held back by an extra uniform
	// [0, ReorderDelay), so later datagrams overtake it.
	Reorder      float64
	ReorderDelay time.Duration
}

// DefaultLink is a quiet LAN: 100–300 µs, nothing lost.
var DefaultLink = LinkParams{Latency: 100 * time.Microsecond, Jitter: 200 * time.Microsecond}

// FaultyLink is DefaultLink with a little of every datagram fault, the baseline of random
// schedules: Totem must retransmit, discard duplicates and re-sort.
var FaultyLink = LinkParams{
	Latency: 100 * time.Microsecond, Jitter: 400 * time.Microsecond,
	Loss: 0.01, Duplicate: 0.005, Reorder: 0.02, ReorderDelay: 2 * time.Millisecond,
}

func (l LinkParams) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", l.Loss}, {"duplicate", l.Duplicate}, {"reorder", l.Reorder}} {
		if p.v < 0 || p.v > 1 || p.v != p.v {
			return fmt.Errorf("sim: link: %s: probability %v outside 0..1", p.name, p.v)
		}
	}
	if l.Latency < 0 || l.Jitter < 0 || l.ReorderDelay < 0 {
		return fmt.Errorf("sim: link: negative delay (latency %v, jitter %v, reorder delay %v)",
			l.Latency, l.Jitter, l.ReorderDelay)
	}
	return nil
}

// link is one direction between two nodes.
type link struct{ from, to srp.NodeID }

// ringLink is one direction between two nodes on one ring (rrp link number): a redundant
// ring's networks fail independently, so each can be cut alone.
type ringLink struct {
	from, to srp.NodeID
	ring     int
}

// network holds the current fault state. A cut is checked when a datagram is sent, as a
// switch would: what is already on the wire still arrives.
type network struct {
	base     LinkParams
	override map[link]LinkParams
	cut      map[link]bool // directed: from cannot reach to, on every ring
	// ringCut is a cut of one ring only (CutRing); cut applies to every ring.
	ringCut map[ringLink]bool
	// burstLoss, when > 0, replaces every link's loss (a loss burst on the whole LAN).
	burstLoss float64
	// healed counts heals: a flap scheduled before a heal stops at it, so a healed network
	// stays healed (otherwise liveness would be judged on a link still going up and down).
	healed uint64
}

func (n *network) params(from, to srp.NodeID) LinkParams {
	p, ok := n.override[link{from, to}]
	if !ok {
		p = n.base
	}
	if n.burstLoss > 0 {
		p.Loss = n.burstLoss
	}
	return p
}

// fate decides what happens to one copy of a datagram on one link: the delays at which it
// arrives (none: lost, two: duplicated). The draws happen in a fixed order whatever the
// outcome, so a changed probability does not shift every later random choice.
func (n *network) fate(r *rand.Rand, from, to srp.NodeID, out []time.Duration) []time.Duration {
	out = out[:0]
	if n.cut[link{from, to}] {
		return out
	}
	p := n.params(from, to)
	lost := r.Float64() < p.Loss
	dup := r.Float64() < p.Duplicate
	copies := 1
	if dup {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		d := p.Latency
		if p.Jitter > 0 {
			d += time.Duration(r.Int64N(int64(p.Jitter)))
		}
		if r.Float64() < p.Reorder && p.ReorderDelay > 0 {
			d += time.Duration(r.Int64N(int64(p.ReorderDelay)))
		}
		if !lost {
			out = append(out, d)
		}
	}
	return out
}
