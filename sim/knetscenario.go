package sim

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
)

// InvKnetLink names the knet link-layer expectations a link-cut scenario checks.
const InvKnetLink = "knet link"

// knetPongBackoff is libknet's KNET_LINK_PONG_TIMEOUT_BACKOFF (10): a link configured or
// gone down waits up to ten ping timeouts for a pong, one less every second of heartbeats.
const knetPongBackoff = 10

// knetLatencySlack covers the round trips inside the bounds: a pong in flight at the cut
// still lands, and libknet adds twice the mean latency to the pong timeout. On the
// simulator's LAN (DefaultLink, at most 0.3 ms each way) both stay far below it.
const knetLatencySlack = 10 * time.Millisecond

// KnetLinkCutBounds are the limits a knet link cut is judged by, derived from the link
// timers corosync gives libknet (KnetOptions.LinkConfig of the node's token) and srp's.
type KnetLinkCutBounds struct {
	// Token is the nodes' effective token timeout, the figure a failover must beat.
	Token time.Duration
	// PingInterval, PingTimeout and PongCount are the links' timers.
	PingInterval, PingTimeout time.Duration
	PongCount                 int
	// Settle: a link's pong timeout starts at ten ping timeouts and drops by one every
	// second (libknet's backoff); after this long up it is the ping timeout itself.
	Settle time.Duration
	// Down: a settled link without pongs is declared down at the first heartbeat (every
	// 200 ms) after its last pong plus the pong timeout (ping timeout + 2 × latency); the
	// last pong came at or before the cut.
	Down time.Duration
	// Up: a healed link is pinged at the first heartbeat its interval has passed (pings go
	// out every interval rounded up to the heartbeat) and comes up at its pong_count+1-th
	// pong.
	Up time.Duration
	// TokenLoss: every link cut is srp's token loss; every node installs a new
	// configuration within token + consensus + join, plus one merge timeout.
	TokenLoss time.Duration
}

// knetLinkCutBounds derives the bounds from a node's srp configuration and the knet options
// (link 0's timers: every link of the simulator's clusters has the same).
func knetLinkCutBounds(cfg srp.Config, ko KnetOptions) KnetLinkCutBounds {
	lc := ko.LinkConfig(cfg.Token, 0)
	period := (lc.PingInterval + knet.Heartbeat - 1) / knet.Heartbeat * knet.Heartbeat
	return KnetLinkCutBounds{
		Token:        cfg.Token,
		PingInterval: lc.PingInterval, PingTimeout: lc.PingTimeout, PongCount: lc.PongCount,
		Settle:    knetPongBackoff * time.Second,
		Down:      lc.PingTimeout + knet.Heartbeat + knetLatencySlack,
		Up:        time.Duration(lc.PongCount+1)*period + knetLatencySlack,
		TokenLoss: cfg.Token + cfg.Consensus + cfg.Join + cfg.Merge,
	}
}

// KnetLinkCutReport is what a knet link-cut run measured (virtual time).
type KnetLinkCutReport struct {
	Bounds KnetLinkCutBounds
	Mode   knet.LinkMode
	Cut    int // the link cut alone
	// DownFirst and DownAfter are the fastest and slowest (node, peer) delay from the cut to
	// knet declaring the link down.
	DownFirst, DownAfter time.Duration
	// SwitchedAfter is the slowest node's delay from the cut to its first totem packet
	// received on another link (passive mode: the failover; active and rr already use every
	// link, so it is the next packet's).
	SwitchedAfter time.Duration
	// UpAfter is the slowest (node, peer) delay from the heal to the link up again.
	UpAfter time.Duration
	// BackAfter is, in passive mode when the cut link is the preferred one, the slowest
	// node's delay from the heal to its first totem packet received on it again.
	BackAfter time.Duration
	// DeliveredDuringCut is the fewest messages a node delivered while the link was cut.
	DeliveredDuringCut int
	// TokenLossAfter is the slowest node's delay from cutting every link to a new
	// configuration.
	TokenLossAfter time.Duration
}

func (r KnetLinkCutReport) String() string {
	s := fmt.Sprintf("link_mode %s, link %d cut: down after %v..%v (bound %v), traffic on another link after %v, token %v; up after %v (bound %v)",
		r.Mode, r.Cut, r.DownFirst, r.DownAfter, r.Bounds.Down, r.SwitchedAfter, r.Bounds.Token, r.UpAfter, r.Bounds.Up)
	if r.BackAfter > 0 {
		s += fmt.Sprintf(", traffic back on it after %v", r.BackAfter)
	}
	return s + fmt.Sprintf("; every link cut: token loss after %v (bound %v); %d messages delivered per node during the cut",
		r.TokenLossAfter, r.Bounds.TokenLoss, r.DeliveredDuringCut)
}

// knetProto is node id's KnetProtocol (nil when it runs something else or is down).
func (s *Sim) knetProto(id srp.NodeID) *KnetProtocol {
	n := s.Node(id)
	if n == nil || !n.up {
		return nil
	}
	p, _ := n.proc.(*KnetProtocol)
	return p
}

// knetEvent returns node's first knet event for (peer, link) going up or down at or after t.
func knetEvent(p *KnetProtocol, peer srp.NodeID, link int, up bool, after time.Duration) (knet.LinkEvent, bool) {
	for _, e := range p.events {
		if e.Host == knet.HostID(peer) && int(e.Link) == link && e.Up == up && e.At >= after {
			return e.LinkEvent, true
		}
	}
	return knet.LinkEvent{}, false
}

// preferredLink is the link passive mode sends on while every link is up: the highest
// knet_link_priority, the lowest number among equals.
func preferredLink(ko KnetOptions) int {
	ko = ko.withDefaults()
	best, bestPrio := 0, -1
	for l := range ko.Links {
		if prio := int(ko.LinkConfig(0, l).Priority); prio > bestPrio {
			best, bestPrio = l, prio
		}
	}
	return best
}

// KnetLinkCut plays the knet link-cut scenario on a running knet cluster (NewKnetProtocol
// with at least two links, a workload running, every link up for bounds.Settle) and checks,
// as corosync 3 with libknet behaves and as a gototem-only ring must:
//   - cutting link cut alone (every pair, both ways) leaves the membership alone: no node
//     installs a new configuration, no token is lost;
//   - every node declares link cut down for every peer within bounds.Down, and no other link;
//   - messages keep being delivered (the EVS checkers run as usual) and totem packets arrive
//     on another link: in passive mode that is the failover;
//   - after HealRing(cut) every node has the link up again for every peer within bounds.Up,
//     still without a membership change, and in passive mode traffic returns to it when it
//     is the preferred link;
//   - cutting every link is a token loss: every node installs itself alone within
//     bounds.TokenLoss.
//
// It ends with every link cut; the caller heals. A broken expectation is a *Violation.
func (s *Sim) KnetLinkCut(ko KnetOptions, cut int) (KnetLinkCutReport, error) {
	ko = ko.withDefaults()
	rep := KnetLinkCutReport{Mode: ko.Mode, Cut: cut}
	b := knetLinkCutBounds(s.nodes[0].cfg, ko)
	rep.Bounds = b
	live := s.Live()
	for _, id := range live {
		p := s.knetProto(id)
		if p == nil {
			return rep, s.violation(InvKnetLink, "n%d does not run knet", id)
		}
		for _, st := range p.LinkStatus() {
			if !st.Connected {
				return rep, s.violation(InvKnetLink, "n%d: link %d to host %d is not up before the cut: %+v", id, st.Link, st.Host, st)
			}
		}
	}
	before := s.regulars()
	cutAt := s.now
	for _, id := range live {
		s.knetProto(id).MarkTraffic(cutAt)
	}
	s.CutRing(cut)
	// Past the token timeout too: a failover slower than the token shows as a new ring.
	if err := s.RunFor(max(b.Down, b.TokenLoss) + time.Second); err != nil {
		return rep, err
	}
	rep.DownFirst, rep.DeliveredDuringCut = -1, -1
	passiveCut := ko.Mode == knet.Passive && cut == preferredLink(ko)
	for _, id := range live {
		p := s.knetProto(id)
		if got := s.regulars()[id]; got != before[id] {
			return rep, s.violation(InvKnetLink, "n%d installed %d new configurations while only link %d was cut (link_mode %s; knet down after %v, token %v): %s",
				id, got-before[id], cut, ko.Mode, b.Down, b.Token, s.ringSummary())
		}
		for _, peer := range live {
			if peer == id {
				continue
			}
			ev, ok := knetEvent(p, peer, cut, false, cutAt)
			if !ok || ev.At-cutAt > b.Down {
				return rep, s.violation(InvKnetLink, "n%d: link %d to host %d not down within %v of the cut (event %+v, status %+v)", id, cut, peer, b.Down, ev, p.LinkStatus())
			}
			rep.DownAfter = max(rep.DownAfter, ev.At-cutAt)
			if rep.DownFirst < 0 || ev.At-cutAt < rep.DownFirst {
				rep.DownFirst = ev.At - cutAt
			}
		}
		for _, e := range p.events {
			if e.At >= cutAt && !e.Up && int(e.Link) != cut {
				return rep, s.violation(InvKnetLink, "n%d: link %d to host %d went down at t=%s while only link %d was cut", id, e.Link, e.Host, fmtTime(e.At), cut)
			}
		}
		for _, st := range p.LinkStatus() {
			if st.Connected == (int(st.Link) == cut) {
				return rep, s.violation(InvKnetLink, "n%d: link status during the cut of link %d: %+v", id, cut, p.LinkStatus())
			}
		}
		d := s.deliveredSince(id, cutAt)
		if d == 0 {
			return rep, s.violation(InvKnetLink, "n%d delivered nothing while link %d was cut: traffic did not continue on the other links", id, cut)
		}
		if rep.DeliveredDuringCut < 0 || d < rep.DeliveredDuringCut {
			rep.DeliveredDuringCut = d
		}
		first := time.Duration(-1)
		for l := range ko.Links {
			if t, ok := p.FirstData(l); ok && l != cut && (first < 0 || t < first) {
				first = t
			}
		}
		if first < 0 {
			return rep, s.violation(InvKnetLink, "n%d received no totem packet on any link but the cut link %d", id, cut)
		}
		rep.SwitchedAfter = max(rep.SwitchedAfter, first-cutAt)
	}
	healAt := s.now
	for _, id := range live {
		s.knetProto(id).MarkTraffic(healAt)
	}
	s.HealRing(cut)
	if err := s.RunFor(b.Up + time.Second); err != nil {
		return rep, err
	}
	for _, id := range live {
		p := s.knetProto(id)
		for _, peer := range live {
			if peer == id {
				continue
			}
			ev, ok := knetEvent(p, peer, cut, true, healAt)
			if !ok || ev.At-healAt > b.Up {
				return rep, s.violation(InvKnetLink, "n%d: link %d to host %d not up within %v of the heal (event %+v, status %+v)", id, cut, peer, b.Up, ev, p.LinkStatus())
			}
			rep.UpAfter = max(rep.UpAfter, ev.At-healAt)
		}
		for _, st := range p.LinkStatus() {
			if !st.Connected {
				return rep, s.violation(InvKnetLink, "n%d: link status after the heal: %+v", id, p.LinkStatus())
			}
		}
		if got := s.regulars()[id]; got != before[id] {
			return rep, s.violation(InvKnetLink, "n%d installed a new configuration around the heal of link %d", id, cut)
		}
		if passiveCut {
			t, ok := p.FirstData(cut)
			if !ok {
				return rep, s.violation(InvKnetLink, "n%d: traffic did not return to the preferred link %d after the heal", id, cut)
			}
			rep.BackAfter = max(rep.BackAfter, t-healAt)
		}
	}
	var err error
	rep.TokenLossAfter, err = s.cutEveryLink(live, ko.Links, b.TokenLoss, InvKnetLink, "every link")
	return rep, err
}

// knetLinkCutScenario is the named scenario around KnetLinkCut: two links, mode, the given
// priorities; the link cut is the one passive mode prefers (link 0 at equal priorities).
func knetLinkCutScenario(name string, ko KnetOptions, what string) Scenario {
	return Scenario{
		Name: name,
		Description: "knet, two links, link_mode " + ko.Mode.String() + what + ": link " + fmt.Sprint(preferredLink(ko)) +
			" is cut (membership stays, link down at every node, traffic on the other), healed (link up), then both links are cut (token loss)",
		Nodes: 3,
		stack: &StackOptions{},
		knet:  &ko,
		run: func(s *Sim, tok time.Duration) error {
			if err := s.RunFor(knetLinkCutBounds(s.nodes[0].cfg, ko).Settle); err != nil {
				return err
			}
			_, err := s.KnetLinkCut(ko, preferredLink(ko))
			return err
		},
	}
}

func init() {
	Scenarios = append(Scenarios,
		knetLinkCutScenario("knet-link-cut-passive", KnetOptions{Mode: knet.Passive}, ""),
		knetLinkCutScenario("knet-link-cut-priority", KnetOptions{Mode: knet.Passive, Priority: []uint8{1, 2}}, " (link 1 knet_link_priority 2)"),
		knetLinkCutScenario("knet-link-cut-active", KnetOptions{Mode: knet.Active}, ""),
		knetLinkCutScenario("knet-link-cut-rr", KnetOptions{Mode: knet.RR}, ""),
	)
}

// KnetLinkScheduleOptions describe a random link-fault schedule (RunKnetLinkSchedule).
type KnetLinkScheduleOptions struct {
	Nodes int
	Knet  KnetOptions
	// Episodes is the number of link faults, one after the other.
	Episodes int
	// Token scales the timers (see ScaledConfig; zero: corosync's defaults).
	Token time.Duration
}

// RunKnetLinkSchedule plays random link faults on a knet cluster under a workload: each
// episode cuts one link (drawn among the links) either between every pair or between a random
// set of pairs, both ways, for a random while (up to three token timeouts), then heals it and
// waits until the link is up and its pong timeout has settled again. No two links are ever
// cut together, so knet always has a way through: the EVS checkers run throughout, and at
// the end no node may have installed a new configuration since the ring formed (issue 15:
// in a gototem-only ring a link cut keeps the membership), then liveness is checked.
//
// The wait for the pong timeout to settle is libknet's: a link that went down waits up to
// ten ping timeouts for a pong, one less per second, so a link cut again within seconds of
// its recovery is noticed only after several token timeouts (TestKnetRecutBeforeSettle).
func RunKnetLinkSchedule(seed uint64, o KnetLinkScheduleOptions, trace io.Writer) (Result, error) {
	ko := o.Knet.withDefaults()
	ko.Nodes = o.Nodes
	if err := ko.validate(); err != nil {
		return Result{}, err
	}
	if ko.Links < 2 || o.Episodes < 1 {
		return Result{}, fmt.Errorf("sim: knet link schedule: %d links, %d episodes (want 2+ and 1+)", ko.Links, o.Episodes)
	}
	s, err := New(Options{Seed: seed, Nodes: o.Nodes, Token: o.Token, Trace: trace, StartSpread: 200 * time.Millisecond,
		NewProtocol: NewKnetProtocol(StackOptions{}, ko)})
	if err != nil {
		return Result{}, err
	}
	res := Result{Seed: seed, Nodes: o.Nodes}
	b := knetLinkCutBounds(s.nodes[0].cfg, ko)
	err = func() error {
		if err := s.RunFor(b.Up + b.Settle); err != nil {
			return err
		}
		// Up to netmtu: totem packets larger than knet's data MTU go in two fragments.
		if err := s.StartWorkload(Workload{Rate: 10, MinSize: 8, MaxSize: MaxPayload(s.nodes[0].cfg.NetMTU)}); err != nil {
			return err
		}
		if err := s.RunFor(2 * time.Second); err != nil {
			return err
		}
		live := s.Live()
		ring := s.Node(live[0]).proc.RingID()
		for _, id := range live {
			if p := s.Node(id).proc; p.State() != srp.Operational || p.RingID() != ring || !slices.Equal(p.Members(), live) {
				return s.violation(InvKnetLink, "the cluster did not form one ring before the link faults: %s", s.ringSummary())
			}
		}
		before := s.regulars()
		r := s.rng
		ids := s.NodeIDs()
		for range o.Episodes {
			l := r.IntN(ko.Links)
			if r.IntN(2) == 0 {
				s.CutRing(l)
			} else {
				cut := false
				for _, a := range ids {
					for _, c := range ids {
						if a < c && r.IntN(2) == 0 {
							s.CutRingLink(a, c, l)
							s.CutRingLink(c, a, l)
							cut = true
						}
					}
				}
				if !cut { // at least the first pair
					s.CutRingLink(ids[0], ids[1], l)
					s.CutRingLink(ids[1], ids[0], l)
				}
			}
			if err := s.RunFor(b.Token/5 + time.Duration(r.Int64N(int64(3*b.Token)))); err != nil {
				return err
			}
			s.HealRing(l)
			if err := s.RunFor(b.Up + b.Settle + time.Duration(r.Int64N(int64(2*time.Second)))); err != nil {
				return err
			}
		}
		for _, id := range live {
			if got := s.regulars()[id]; got != before[id] {
				return s.violation(InvKnetLink, "n%d installed %d new configurations under faults of one link at a time (link_mode %s): %s",
					id, got-before[id], ko.Mode, s.ringSummary())
			}
		}
		s.StopWorkload()
		s.Heal()
		return s.CheckLiveness()
	}()
	return finishResult(s, res, err)
}
