package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gototem/gototem/srp"
)

// Fault methods act at the current virtual time. Called between RunFor calls (or from an
// At action) each counts as one step and one trace line, so a replay shows where it fell.

func (s *Sim) fault(desc string) {
	s.step++
	s.stats.Faults++
	s.traceEvent(desc)
}

// Partition replaces the network's cuts with the given groups: nodes in different groups
// cannot reach each other in either direction; a node in no group is isolated.
func (s *Sim) Partition(groups ...[]srp.NodeID) {
	clear(s.net.cut)
	group := make(map[srp.NodeID]int)
	for gi, g := range groups {
		for _, id := range g {
			group[id] = gi + 1
		}
	}
	for _, a := range s.nodes {
		for _, b := range s.nodes {
			if a == b {
				continue
			}
			ga, gb := group[a.ID], group[b.ID]
			if ga == 0 || gb == 0 || ga != gb {
				s.net.cut[link{a.ID, b.ID}] = true
			}
		}
	}
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		parts = append(parts, fmtIDs(g))
	}
	s.fault("partition " + strings.Join(parts, " | "))
}

// CutOneWay stops datagrams from → to, leaving to → from working.
func (s *Sim) CutOneWay(from, to srp.NodeID) {
	s.net.cut[link{from, to}] = true
	s.fault(fmt.Sprintf("cut n%d -> n%d", from, to))
}

// Deafen makes id send but not receive (every other node → id cut): the asymmetric
// failure of a node whose receive path broke.
func (s *Sim) Deafen(id srp.NodeID) {
	for _, a := range s.nodes {
		if a.ID != id {
			s.net.cut[link{a.ID, id}] = true
		}
	}
	s.fault(fmt.Sprintf("deafen n%d (sends, receives nothing)", id))
}

// CutRing cuts one redundant ring (rrp link number ring) between every pair of nodes, as
// a dead switch on that network would; the other rings still carry traffic. Partitions and
// other cuts apply to every ring and are independent of it.
func (s *Sim) CutRing(ring int) {
	for _, a := range s.nodes {
		for _, b := range s.nodes {
			if a != b {
				s.net.ringCut[ringLink{a.ID, b.ID, ring}] = true
			}
		}
	}
	s.fault(fmt.Sprintf("cut ring %d", ring))
}

// CutRingLink stops datagrams from → to on one ring only (one NIC's cable on one network).
func (s *Sim) CutRingLink(from, to srp.NodeID, ring int) {
	s.net.ringCut[ringLink{from, to, ring}] = true
	s.fault(fmt.Sprintf("cut n%d -> n%d on ring %d", from, to, ring))
}

// HealRing removes every cut of one ring made by CutRing or CutRingLink; cuts of the
// whole network (Partition, CutOneWay, Deafen) stay until Heal.
func (s *Sim) HealRing(ring int) {
	for k := range s.net.ringCut {
		if k.ring == ring {
			delete(s.net.ringCut, k)
		}
	}
	s.fault(fmt.Sprintf("heal ring %d", ring))
}

// Heal removes every cut (of every ring) and loss burst (per-link overrides stay).
func (s *Sim) Heal() {
	clear(s.net.cut)
	clear(s.net.ringCut)
	s.net.burstLoss = 0
	s.net.healed++
	s.fault("heal")
}

// SetLink overrides one direction of one link.
func (s *Sim) SetLink(from, to srp.NodeID, p LinkParams) error {
	if err := p.validate(); err != nil {
		return err
	}
	s.net.override[link{from, to}] = p
	s.fault(fmt.Sprintf("link n%d -> n%d: latency %v+%v loss %.3f dup %.3f reorder %.3f",
		from, to, p.Latency, p.Jitter, p.Loss, p.Duplicate, p.Reorder))
	return nil
}

// LossBurst makes every link lose datagrams with probability p for d.
func (s *Sim) LossBurst(p float64, d time.Duration) error {
	if p <= 0 || p > 1 {
		return fmt.Errorf("sim: loss burst: probability %v outside (0, 1]", p)
	}
	s.net.burstLoss = p
	s.fault(fmt.Sprintf("loss burst %.2f for %v", p, d))
	s.At(s.now+d, "", func() error {
		if s.net.burstLoss == p {
			s.net.burstLoss = 0
			s.fault("loss burst over")
		}
		return nil
	})
	return nil
}

// Flap cuts and restores the link between a and b (both directions) count times: down
// for down, then up for up — a flaky NIC or switch port.
func (s *Sim) Flap(a, b srp.NodeID, down, up time.Duration, count int) {
	s.fault(fmt.Sprintf("flap n%d <-> n%d: %d x (down %v, up %v)", a, b, count, down, up))
	t := s.now
	gen := s.net.healed
	for i := 0; i < count; i++ {
		s.At(t, "", func() error {
			if s.net.healed != gen {
				return nil // healed since: the flapping is over
			}
			s.net.cut[link{a, b}], s.net.cut[link{b, a}] = true, true
			s.fault(fmt.Sprintf("link n%d <-> n%d down", a, b))
			return nil
		})
		t += down
		s.At(t, "", func() error {
			if s.net.healed != gen {
				return nil
			}
			delete(s.net.cut, link{a, b})
			delete(s.net.cut, link{b, a})
			s.fault(fmt.Sprintf("link n%d <-> n%d up", a, b))
			return nil
		})
		t += up
	}
}

// Crash stops id without a LEAVE: its protocol state, timers, queue and application are
// lost; its ring-id store survives.
func (s *Sim) Crash(id srp.NodeID) {
	n := s.Node(id)
	if n == nil || !n.up {
		return
	}
	s.crash(n)
	s.fault(fmt.Sprintf("crash n%d", id))
}

// Restart starts a new incarnation of a crashed node with its persisted ring id.
func (s *Sim) Restart(id srp.NodeID) error {
	n := s.Node(id)
	if n == nil || n.up {
		return nil
	}
	s.fault(fmt.Sprintf("restart n%d", id))
	return s.start(n)
}

// Pause stops id as a stopped VM or a SIGSTOPped process stops: nothing runs, timers
// come due unseen, datagrams queue in its socket (up to Options.PauseBuffer).
func (s *Sim) Pause(id srp.NodeID) {
	n := s.Node(id)
	if n == nil || !n.up || n.paused {
		return
	}
	n.paused = true
	s.fault(fmt.Sprintf("pause n%d", id))
}

// Resume continues a paused node: its overdue timers fire at once, then it reads what
// its socket buffered.
func (s *Sim) Resume(id srp.NodeID) error {
	n := s.Node(id)
	if n == nil || !n.paused {
		return nil
	}
	s.fault(fmt.Sprintf("resume n%d", id))
	return s.resume(n)
}

// PauseFor pauses id now and resumes it after d.
func (s *Sim) PauseFor(id srp.NodeID, d time.Duration) {
	s.Pause(id)
	s.At(s.now+d, "", func() error { return s.Resume(id) })
}

// Live returns the nodes that are up and not paused.
func (s *Sim) Live() []srp.NodeID {
	var out []srp.NodeID
	for _, n := range s.nodes {
		if n.up && !n.paused {
			out = append(out, n.ID)
		}
	}
	return out
}

func fmtIDs(ids []srp.NodeID) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	var b strings.Builder
	b.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", id)
	}
	b.WriteByte('}')
	return b.String()
}
