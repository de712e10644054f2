package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/gototem/gototem/rrp"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
)

// InvRedundantRing names the redundant-ring expectations a ring-cut scenario checks.
const InvRedundantRing = "redundant ring"

// RingCutBounds are the limits a ring cut is judged by, derived from the redundant ring's
// configuration (rrp/ and corosync 2.x's totemrrp) and the node's srp timers.
type RingCutBounds struct {
	// Faulty: a cut ring must be marked FAULTY at every node within this of the cut. In
	// active mode every token the cut ring fails to deliver within rrp_token_expired_timeout
	// of its first copy earns a problem count, and rrp_problem_count_threshold counts mark the
	// ring faulty; in passive mode a ring lagging the best by more than the threshold in
	// tokens is marked faulty, and every rotation adds at least one token of lag. Each
	// rotation takes less than the token timeout on a ring that stays formed (srp would
	// declare the token lost otherwise), so threshold + 1 token timeouts bound both modes
	// (the +1 covers the token in flight at the cut and the expiry timer of the last one).
	Faulty time.Duration
	// Recovered: a healed ring is re-enabled when it carried tokens through one whole
	// rrp_autorecovery_check_timeout window without missing any: within two windows of the
	// first token after the heal, plus that token's rotation.
	Recovered time.Duration
	// TokenLoss: both rings cut is srp's token loss; every node installs a new configuration
	// within token + consensus + join, plus one merge timeout for the gather to settle.
	TokenLoss time.Duration
}

// ringCutBounds derives the bounds for a node configuration. rrp.New fills corosync's
// defaults, so the numbers are the ones the nodes run with.
func ringCutBounds(cfg srp.Config, rc stack.RRPConfig) (RingCutBounds, error) {
	rc.Links, rc.LinkAddrs = 2, nil
	if rc.Token == 0 {
		rc.Token = cfg.Token
	}
	r, err := rrp.New(rc)
	if err != nil {
		return RingCutBounds{}, err
	}
	c := r.Config()
	return RingCutBounds{
		Faulty:    time.Duration(c.ProblemCountThreshold+1) * cfg.Token,
		Recovered: 2*c.AutoRecoveryCheckTimeout + cfg.Token,
		TokenLoss: cfg.Token + cfg.Consensus + cfg.Join + cfg.Merge,
	}, nil
}

// regulars counts the regular configurations each node installed so far.
func (s *Sim) regulars() map[srp.NodeID]int {
	out := map[srp.NodeID]int{}
	for _, id := range s.hist.Nodes {
		for _, e := range s.hist.Logs[id] {
			if e.Kind == EntryConfig && e.Config.Kind == srp.Regular {
				out[id]++
			}
		}
	}
	return out
}

// deliveredSince counts the messages node delivered after t.
func (s *Sim) deliveredSince(id srp.NodeID, t time.Duration) int {
	n := 0
	for _, e := range s.hist.Logs[id] {
		if e.Kind == EntryMessage && e.At > t {
			n++
		}
	}
	return n
}

// linkEvent returns node's first fault event on link with the given faultiness after t.
func (s *Sim) linkEvent(id srp.NodeID, link int, faulty bool, after time.Duration) (LinkEvent, bool) {
	for _, e := range s.linkEvents {
		if e.Node == id && e.Link == link && e.Faulty == faulty && e.At >= after {
			return e, true
		}
	}
	return LinkEvent{}, false
}

func linkStatus(n *Node) []rrp.LinkStatus {
	if p, ok := n.proc.(*StackProtocol); ok {
		return p.LinkStatus()
	}
	return nil
}

// RingCutReport is what a ring-cut run measured.
type RingCutReport struct {
	Bounds RingCutBounds
	// FaultyAfter and RecoveredAfter are the slowest node's delay from cut and heal to its
	// FAULTY and recovery events.
	FaultyAfter, RecoveredAfter time.Duration
	// DeliveredDuringCut is the fewest messages a node delivered while ring 1 was cut.
	DeliveredDuringCut int
	// TokenLossAfter is the slowest node's delay from cutting both rings to a new
	// configuration.
	TokenLossAfter time.Duration
}

// RingCut plays the redundant-ring scenario on a running two-ring cluster (StackProtocol,
// Links 2, a workload running) and checks, as corosync 2.x behaves with rrp:
//   - cutting ring 1 leaves the membership alone (no node installs a new configuration);
//   - ring 1 is marked FAULTY at every node within bounds.Faulty, ring 0 never;
//   - messages keep being delivered over ring 0 (the EVS checkers run as usual);
//   - after HealRing(1) every node reports ring 1 recovered within bounds.Recovered, status
//     "ring 1 active with no faults", still without a membership change;
//   - cutting both rings is a token loss: every node installs a new configuration within
//     bounds.TokenLoss.
//
// It ends with both rings cut; the caller heals. A broken expectation is a *Violation.
func (s *Sim) RingCut(rc stack.RRPConfig) (RingCutReport, error) {
	var rep RingCutReport
	b, err := ringCutBounds(s.nodes[0].cfg, rc)
	if err != nil {
		return rep, err
	}
	rep.Bounds = b
	live := s.Live()
	before := s.regulars()
	cutAt := s.now
	s.CutRing(1)
	if err := s.RunFor(b.Faulty + time.Second); err != nil {
		return rep, err
	}
	rep.DeliveredDuringCut = -1
	for _, id := range live {
		n := s.Node(id)
		if got := s.regulars()[id]; got != before[id] {
			return rep, s.violation(InvRedundantRing, "n%d installed %d new configurations while only ring 1 was cut: %s", id, got-before[id], s.ringSummary())
		}
		ev, ok := s.linkEvent(id, 1, true, cutAt)
		if !ok || ev.At-cutAt > b.Faulty {
			return rep, s.violation(InvRedundantRing, "n%d: ring 1 not marked FAULTY within %v of the cut (event %+v, status %+v)", id, b.Faulty, ev, linkStatus(n))
		}
		rep.FaultyAfter = max(rep.FaultyAfter, ev.At-cutAt)
		if ev, ok := s.linkEvent(id, 0, true, cutAt); ok {
			return rep, s.violation(InvRedundantRing, "n%d marked the working ring 0 faulty at t=%s: %s", id, fmtTime(ev.At), ev.Text)
		}
		st := linkStatus(n)
		if len(st) != 2 || !st[1].Faulty || st[0].Faulty {
			return rep, s.violation(InvRedundantRing, "n%d link status during the cut: %+v", id, st)
		}
		d := s.deliveredSince(id, cutAt)
		if d == 0 {
			return rep, s.violation(InvRedundantRing, "n%d delivered nothing while ring 1 was cut: traffic did not continue on ring 0", id)
		}
		if rep.DeliveredDuringCut < 0 || d < rep.DeliveredDuringCut {
			rep.DeliveredDuringCut = d
		}
	}
	healAt := s.now
	s.HealRing(1)
	if err := s.RunFor(b.Recovered + time.Second); err != nil {
		return rep, err
	}
	for _, id := range live {
		n := s.Node(id)
		ev, ok := s.linkEvent(id, 1, false, healAt)
		if !ok || ev.At-healAt > b.Recovered {
			return rep, s.violation(InvRedundantRing, "n%d: ring 1 not recovered within %v of the heal (event %+v, status %+v)", id, b.Recovered, ev, linkStatus(n))
		}
		rep.RecoveredAfter = max(rep.RecoveredAfter, ev.At-healAt)
		st := linkStatus(n)
		if st[1].Faulty || st[1].Text != "ring 1 active with no faults" || st[0].Faulty {
			return rep, s.violation(InvRedundantRing, "n%d link status after the heal: %+v", id, st)
		}
		if got := s.regulars()[id]; got != before[id] {
			return rep, s.violation(InvRedundantRing, "n%d installed a new configuration around the heal of ring 1", id)
		}
	}
	rep.TokenLossAfter, err = s.cutEveryLink(live, 2, b.TokenLoss, InvRedundantRing, "both rings")
	return rep, err
}

// cutEveryLink cuts links 0..links-1 and checks a token loss follows: within tokenLoss every
// live node installs a ring of itself alone. It returns the slowest node's time to it; what
// names the cut in violations ("both rings", "every link").
func (s *Sim) cutEveryLink(live []srp.NodeID, links int, tokenLoss time.Duration, inv, what string) (time.Duration, error) {
	lossAt := s.now
	for l := range links {
		s.CutRing(l)
	}
	if err := s.RunFor(tokenLoss + time.Second); err != nil {
		return 0, err
	}
	var slowest time.Duration
	for _, id := range live {
		var first time.Duration = -1
		for _, e := range s.hist.Logs[id] {
			if e.Kind == EntryConfig && e.Config.Kind == srp.Regular && e.At > lossAt {
				first = e.At
				if !slices.Equal(e.Config.Members, []srp.NodeID{id}) {
					return slowest, s.violation(inv, "n%d installed %s with %s cut, want itself alone", id, fmtIDs(e.Config.Members), what)
				}
				break
			}
		}
		if first < 0 || first-lossAt > tokenLoss {
			return slowest, s.violation(inv, "n%d: no new configuration within %v of cutting %s (a token loss)", id, tokenLoss, what)
		}
		slowest = max(slowest, first-lossAt)
	}
	return slowest, nil
}

// ringCutScenario is the named scenario around RingCut for one rrp mode.
func ringCutScenario(mode rrp.Mode) Scenario {
	rc := stack.RRPConfig{Mode: mode}
	return Scenario{
		Name: "ring-cut-" + mode.String(),
		Description: "two rings, rrp_mode " + mode.String() + ": ring 1 is cut (membership stays, ring 1 FAULTY, traffic on ring 0), " +
			"healed (ring 1 active with no faults), then both rings are cut (token loss)",
		Nodes: 3,
		stack: &StackOptions{Links: 2, RRP: &rc},
		run: func(s *Sim, tok time.Duration) error {
			_, err := s.RingCut(rc)
			return err
		},
	}
}

func (r RingCutReport) String() string {
	return fmt.Sprintf("FAULTY after %v (bound %v), recovered after %v (bound %v), token loss after %v (bound %v), %d messages delivered per node during the cut",
		r.FaultyAfter, r.Bounds.Faulty, r.RecoveredAfter, r.Bounds.Recovered, r.TokenLossAfter, r.Bounds.TokenLoss, r.DeliveredDuringCut)
}
