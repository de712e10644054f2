package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/rrp"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
)

// StackOptions configure the full stack (stack.Stack: srp, totempg framing, services,
// votequorum, redundant ring) that StackProtocol runs on every simulated node.
type StackOptions struct {
	// Quorum returns a node's votequorum configuration (nil: no votequorum on that node).
	// NodeID is filled in by the simulator.
	Quorum func(id srp.NodeID) *quorum.Config
	// Links is the number of redundant rings (0 or 1: a single ring, no rrp).
	Links int
	// RRP configures the redundant ring when Links > 1; a zero Token takes the node's
	// effective srp token, as corosync derives rrp_token_expired_timeout from it.
	RRP *stack.RRPConfig
	// Groups, when not empty, switches the node to process-group mode, the full-stack
	// campaign's (RunStackSchedule): its process (pid 1) joins these CPG groups at every
	// start, and every group event (confchgs and messages of any group, ring configurations,
	// sync completions) is recorded in Sim.GroupHistory instead of the simulator's srp-level
	// deliveries; the srp-level history keeps the ring configurations only.
	Groups []string
	// reserved are the groups the campaign's process may join (all of them, not only the
	// initial ones): an application may not use them.
	reserved []string
}

// simGroup and simPID are the CPG group and process every simulated node joins at start: the
// simulator's messages travel as that process's group messages, so they go through totempg
// packing and fragmentation and the service layer's sync exactly as an application's would.
const (
	simGroup = "sim"
	simPID   = 1
)

// ErrStackSafe refuses a SAFE send on a StackProtocol node. The SAFE checker reads what each
// node's srp holds from the MCASTs on the wire; under the stack those carry totempg frames
// (several packed or fragmented messages), which the simulator's tap cannot attribute to a
// message, so SAFE delivery would be reported violated without cause. Send AGREED.
var ErrStackSafe = errors.New("sim: stack protocol: SAFE messages are not checkable through totempg framing; send AGREED")

// NewStackProtocol returns an Options.NewProtocol that runs a stack.Stack per node.
func NewStackProtocol(o StackOptions) func(cfg srp.Config) (Protocol, error) {
	return func(cfg srp.Config) (Protocol, error) {
		// The simulator's rings are gototem's alone: a message cut by a merge is sent again
		// whole, which its checkers hold to virtual synchrony.
		sc := stack.Config{SRP: cfg, Links: max(o.Links, 1), GototemRing: true}
		if o.Quorum != nil {
			if qc := o.Quorum(cfg.NodeID); qc != nil {
				q := *qc
				q.NodeID = quorum.NodeID(cfg.NodeID)
				q.Nodelist = slices.Clone(qc.Nodelist)
				sc.Quorum = &q
			}
		}
		if sc.Links > 1 {
			if o.RRP == nil {
				return nil, fmt.Errorf("sim: stack protocol: %d links need StackOptions.RRP", sc.Links)
			}
			r := *o.RRP
			if r.Token == 0 {
				r.Token = cfg.Token
			}
			if len(r.LinkAddrs) == 0 {
				// Each ring its own subnet, the host part the node id, so status texts read
				// like a real node's ("Marking ringid 1 interface 10.0.1.2 FAULTY").
				for l := range sc.Links {
					r.LinkAddrs = append(r.LinkAddrs, fmt.Sprintf("10.0.%d.%d", l, cfg.NodeID))
				}
			}
			sc.RRP = &r
		}
		st, err := stack.New(sc)
		if err != nil {
			return nil, fmt.Errorf("sim: stack protocol: node %d: %w", cfg.NodeID, err)
		}
		return &StackProtocol{st: st, links: sc.Links, groups: slices.Clone(o.Groups), reservedGroups: slices.Clone(o.reserved)}, nil
	}
}

// StackProtocol adapts a stack.Stack to the simulator's Protocol (and LinkProtocol): ring
// configurations become srp configuration deliveries, the simulator's group messages become
// srp message deliveries (AGREED), and votequorum verdicts and redundant-ring fault events are
// recorded beside them (Sim.QuorumLog, Sim.LinkEvents).
//
// Limit: deliveries are CPG group messages, so a restarted node sees the group's messages only
// once its re-join is delivered, while the others deliver the messages ordered before it in
// the same configuration; the srp-level virtual synchrony checker would flag that difference.
// Runs with restarts therefore carry no workload (votequorum runs need none).
type StackProtocol struct {
	st    *stack.Stack
	links int

	rd       srp.Ready
	msgLinks []int
	changes  []quorum.Change
	faults   []rrp.Event
	expected uint32 // votequorum's expected votes as last reported, to log every change

	groups []string      // process-group mode: the groups joined at start (see StackOptions)
	gev    []stack.Event // process-group mode: the events of this Ready, in order
	// aev are this Ready's events for an application (Options.App): ring configurations,
	// quorum verdicts, and the confchgs and messages of groups that are not the simulator's.
	aev            []stack.Event
	reservedGroups []string
}

// reserved says whether group belongs to the simulator's own process.
func (p *StackProtocol) reserved(group string) bool {
	return group == simGroup || slices.Contains(p.groups, group) || slices.Contains(p.reservedGroups, group)
}

// Stack is the node's stack, for inspection (quorum state, link status, counters).
func (p *StackProtocol) Stack() *stack.Stack { return p.st }

// Links is the number of links (rings).
func (p *StackProtocol) Links() int { return p.links }

// Start joins the simulator's group and starts membership.
func (p *StackProtocol) Start(now time.Duration) {
	p.st.Start(now)
	// A join cannot fail on a fresh stack (valid name, not yet joined); if it ever did, no
	// message would be delivered at this node and the checkers would say so.
	if len(p.groups) == 0 {
		_ = p.st.Join(now, simGroup, simPID)
	}
	for _, g := range p.groups {
		_ = p.st.Join(now, g, simPID)
	}
	p.collect()
}

// Step feeds a datagram received on link 0.
func (p *StackProtocol) Step(now time.Duration, datagram []byte) error {
	return p.StepLink(now, 0, datagram)
}

// StepLink feeds a datagram received on link.
func (p *StackProtocol) StepLink(now time.Duration, link int, datagram []byte) error {
	err := p.st.Receive(now, link, datagram)
	p.collect()
	return err
}

// Tick fires the stack's timers.
func (p *StackProtocol) Tick(now time.Duration) {
	p.st.Tick(now)
	p.collect()
}

// Send multicasts payload to the simulator's group (AGREED only, see ErrStackSafe). The
// stack's ErrBusy is reported as srp.ErrQueueFull, the backpressure the simulator counts.
func (p *StackProtocol) Send(now time.Duration, payload []byte, g srp.Guarantee) error {
	if g == srp.Safe {
		return ErrStackSafe
	}
	err := p.st.Send(now, simGroup, simPID, payload, g)
	p.collect()
	if errors.Is(err, stack.ErrBusy) {
		return fmt.Errorf("%w (%w)", srp.ErrQueueFull, err)
	}
	return err
}

// Leave shuts the stack down cleanly.
func (p *StackProtocol) Leave(now time.Duration) {
	p.st.Shutdown(now)
	p.collect()
}

// Ready is the stack's output in srp's shape; MessageLinks names each datagram's link.
func (p *StackProtocol) Ready() srp.Ready { return p.rd }

// MessageLinks names the link of each of Ready().Messages.
func (p *StackProtocol) MessageLinks() []int { return p.msgLinks }

// Advance acknowledges Ready and the side events taken with it.
func (p *StackProtocol) Advance() {
	p.rd = srp.Ready{NextTick: p.rd.NextTick}
	p.msgLinks = p.msgLinks[:0]
	p.changes, p.faults = nil, nil
	p.gev = p.gev[:0]
	clear(p.aev)
	p.aev = p.aev[:0]
}

// SendGroup multicasts payload to group from the process pid (process-group mode). The
// stack's ErrBusy is reported as srp.ErrQueueFull, the backpressure the simulator counts.
func (p *StackProtocol) SendGroup(now time.Duration, group string, pid uint32, payload []byte, g srp.Guarantee) error {
	err := p.st.Send(now, group, pid, payload, g)
	p.collect()
	if errors.Is(err, stack.ErrBusy) {
		return fmt.Errorf("%w (%w)", srp.ErrQueueFull, err)
	}
	return err
}

// JoinGroup joins the process pid to group (process-group mode).
func (p *StackProtocol) JoinGroup(now time.Duration, group string, pid uint32) error {
	err := p.st.Join(now, group, pid)
	p.collect()
	return err
}

// LeaveGroup removes the process pid from group (process-group mode).
func (p *StackProtocol) LeaveGroup(now time.Duration, group string, pid uint32) error {
	err := p.st.Leave(now, group, pid)
	p.collect()
	return err
}

func (p *StackProtocol) State() srp.State             { return p.st.SRP().State() }
func (p *StackProtocol) RingID() srp.RingID           { return p.st.SRP().RingID() }
func (p *StackProtocol) Members() []srp.NodeID        { return p.st.SRP().Members() }
func (p *StackProtocol) Status() srp.Status           { return p.st.SRP().Status() }
func (p *StackProtocol) LinkStatus() []rrp.LinkStatus { return p.st.LinkStatus() }

// collect moves the stack's Ready into the srp-shaped Ready the simulator drains, in order.
func (p *StackProtocol) collect() {
	rd := p.st.Ready()
	for _, d := range rd.Datagrams {
		p.rd.Messages = append(p.rd.Messages, d.Outgoing)
		p.msgLinks = append(p.msgLinks, d.Link)
	}
	for _, ev := range rd.Events {
		switch {
		case ev.Membership != nil, ev.Quorum != nil:
			p.aev = append(p.aev, ev)
		case ev.Group != nil && !p.reserved(ev.Group.Group), ev.Message != nil && !p.reserved(ev.Message.Group):
			p.aev = append(p.aev, ev)
		}
		if len(p.groups) > 0 {
			switch {
			case ev.Membership != nil:
				c := *ev.Membership
				p.rd.Deliveries = append(p.rd.Deliveries, srp.Delivery{Config: &c})
				p.gev = append(p.gev, ev)
			case ev.Message != nil, ev.Group != nil, ev.Synced != nil:
				p.gev = append(p.gev, ev)
			case ev.Quorum != nil:
				p.changes = append(p.changes, *ev.Quorum)
			case ev.Fault != nil:
				p.faults = append(p.faults, *ev.Fault)
			}
			continue
		}
		switch {
		case ev.Membership != nil:
			c := *ev.Membership
			p.rd.Deliveries = append(p.rd.Deliveries, srp.Delivery{Config: &c})
		case ev.Message != nil && ev.Message.Group == simGroup:
			m := ev.Message
			p.rd.Deliveries = append(p.rd.Deliveries, srp.Delivery{Message: &srp.Message{
				Sender: m.Sender, RingID: p.st.SRP().RingID(), Guarantee: srp.Agreed, Payload: m.Payload,
			}})
		case ev.Quorum != nil:
			p.changes = append(p.changes, *ev.Quorum)
		case ev.Fault != nil:
			p.faults = append(p.faults, *ev.Fault)
		}
	}
	p.rd.NextTick = rd.NextTick
	p.st.Advance()
}

// LinkEvent is a redundant-ring fault or recovery a node reported, with the node.
type LinkEvent struct {
	Node srp.NodeID
	rrp.Event
}

// LinkEvents returns every redundant-ring fault and recovery reported so far, in order.
func (s *Sim) LinkEvents() []LinkEvent { return slices.Clone(s.linkEvents) }

// QuorumLog is the record of every votequorum verdict (nil fields when no node runs one).
func (s *Sim) QuorumLog() *QuorumLog { return s.qlog }

// stackEvents records what a StackProtocol node reported beside srp's deliveries: quorum
// verdicts (and expected-votes changes, which last_man_standing makes without a verdict) and
// link faults. It runs in the drain loop right after the deliveries of the same Ready.
func (s *Sim) stackEvents(n *Node, p *StackProtocol) {
	for _, c := range p.changes {
		v := QuorumVerdict{
			Node: n.ID, At: s.now, Step: s.step, Quorate: c.Quorate,
			RingID:        srp.RingID{Rep: srp.NodeID(c.RingID.Rep), Seq: c.RingID.Seq},
			Members:       make([]srp.NodeID, len(c.Members)),
			ExpectedVotes: c.ExpectedVotes, TotalVotes: c.TotalVotes, Quorum: c.Quorum,
		}
		for i, m := range c.Members {
			v.Members[i] = srp.NodeID(m)
		}
		s.qlog.AddVerdict(v)
		if s.opts.Trace != nil {
			s.traceNode(n, "quorum", v.String())
		}
	}
	if n.appNode != nil {
		n.appq = append(n.appq, p.aev...)
	}
	if vq := p.st.Quorum(); vq != nil && vq.ExpectedVotes() != p.expected {
		from := p.expected
		p.expected = vq.ExpectedVotes()
		s.qlog.AddExpected(ExpectedChange{Node: n.ID, At: s.now, Step: s.step, From: from, To: p.expected, Quorate: vq.Quorate()})
	}
	if s.ghist != nil {
		for _, ev := range p.gev {
			s.ghist.addStackEvent(n.ID, ev, s.step, s.now)
			if ev.Message != nil {
				s.stats.Delivered++
			}
			if s.opts.Trace != nil {
				s.traceNode(n, "cpg", describeGroupEvent(ev))
			}
		}
	}
	for _, f := range p.faults {
		s.linkEvents = append(s.linkEvents, LinkEvent{Node: n.ID, Event: f})
		if s.opts.Trace != nil {
			s.traceNode(n, "rrp", f.Text)
		}
	}
}

// describeGroupEvent is a trace line's text for a process-group mode event.
func describeGroupEvent(ev stack.Event) string {
	switch {
	case ev.Membership != nil:
		return fmt.Sprintf("%s ring %s %s", ev.Membership.Kind, ringStr(ev.Membership.RingID), fmtIDs(ev.Membership.Members))
	case ev.Synced != nil:
		return "synced " + ringStr(*ev.Synced)
	case ev.Group != nil:
		return confchgKey(ev.Group)[1:] + " in " + ev.Group.Group
	case ev.Message != nil:
		name := "untagged"
		if id, ok := decodePayloadHeader(ev.Message.Payload); ok {
			name = fmt.Sprintf("n%d#%d", id.Sender, id.Counter)
		}
		return fmt.Sprintf("deliver %s in %s (%dB)", name, ev.Message.Group, len(ev.Message.Payload))
	}
	return ""
}
