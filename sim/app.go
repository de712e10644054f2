package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
	"github.com/gototem/gototem/totem"
)

// App sets up one incarnation of a node's application, the way an embedder sets up a
// totem.Node: it registers the node-level callbacks (OnMembership, OnQuorum) and joins its
// process groups with a totem.GroupHandler each. The same handlers run unchanged on a real
// node: sim's Group has the send and leave calls of totem's Group.
//
// App is called at every start of the node, restarts included: a crashed process loses its
// memory, so a restart builds a new application. The node runs the full stack
// (StackProtocol) whenever an App is given.
type App func(n *AppNode) error

// appPID is the pid of a simulated node's application process, beside the simulator's own
// process (simPID) whose groups carry the workload and the campaign's traffic.
const appPID = 2

// AppNode is an application's handle on one incarnation of a simulated node: what a
// totem.Node is to it on a real ring. Callbacks run inside the simulator's loop, one at a
// time, in the total order the ring delivered the events in, after the stack's input that
// produced them was fully handled (as totem's dispatch goroutine runs them after the ring's
// step): a callback may call TrySend, Join or Leave.
type AppNode struct {
	n           *Node
	incarnation int
	onMember    func(totem.Membership)
	onQuorum    func(totem.QuorumState)
	groups      map[string]*Group
	// lastRegular is the last regular configuration's members, for Membership's Joined and
	// Left, counted as totem's dispatcher counts them.
	lastRegular []totem.NodeID
	timers      []func() // After callbacks that came due while the node was paused
}

// Group is an application's membership in a process group on a simulated node: the calls of
// totem's Group that do not block (virtual time cannot pass inside a call).
type Group struct {
	a    *AppNode
	name string
	h    totem.GroupHandler
}

// ID is the node's id.
func (a *AppNode) ID() totem.NodeID { return totem.NodeID(a.n.ID) }

// OnMembership sets the callback for every ring configuration, transitional and regular, in
// total order with the groups' events: totem.Options.OnMembership.
func (a *AppNode) OnMembership(f func(totem.Membership)) { a.onMember = f }

// OnQuorum sets the callback for votequorum's verdicts: totem.Options.OnQuorum.
func (a *AppNode) OnQuorum(f func(totem.QuorumState)) { a.onQuorum = f }

// After calls f after d of virtual time on this incarnation (never after a crash; a pause
// delays it until the node resumes), as a timer of the application's process would. A test
// uses it to drive an application, as a goroutine would on a real node. The quiet phase of a
// scenario or a random schedule stops these timers, as it stops the workload.
func (a *AppNode) After(d time.Duration, f func()) {
	s := a.n.sim
	s.schedule(&event{at: s.now + max(d, 0), kind: evAction, label: "", action: func() error {
		if !a.live() || s.quiet {
			return nil
		}
		if a.n.paused {
			a.timers = append(a.timers, f)
			return nil
		}
		return s.appCall(a.n, f)
	}})
}

func (a *AppNode) live() bool { return a.n.up && a.n.incarnation == a.incarnation && a.n.appNode == a }

func (a *AppNode) proto() (*StackProtocol, error) {
	if !a.live() || a.n.paused {
		return nil, totem.ErrStopped
	}
	p, ok := stackOf(a.n.proc) // the stack itself, or the one a knet node runs
	if !ok {
		return nil, errors.New("sim: applications need the full stack (StackProtocol)")
	}
	return p, nil
}

// Join joins a process group as totem.Node.Join does: h receives the group's events from this
// process's own join confchg on, up to and including its own leave confchg.
func (a *AppNode) Join(group string, h totem.GroupHandler) (*Group, error) {
	if h == nil {
		return nil, errors.New("sim: Join needs a handler")
	}
	p, err := a.proto()
	if err != nil {
		return nil, err
	}
	if p.reserved(group) {
		return nil, fmt.Errorf("sim: group %q is the simulator's own", group)
	}
	if _, ok := a.groups[group]; ok {
		return nil, totem.ErrGroupJoined
	}
	s := a.n.sim
	if err := p.JoinGroup(s.now, group, appPID); err != nil {
		return nil, err
	}
	g := &Group{a: a, name: group, h: h}
	a.groups[group] = g
	return g, s.drain(a.n)
}

// Name is the group's name.
func (g *Group) Name() string { return g.name }

// TrySend multicasts payload to the group, or returns totem.ErrBusy when the ring cannot take
// it now (its send queue is full, or a synchronization holds application traffic), or
// totem.ErrStopped when the node crashed or is paused. Delivery follows in total order
// through the handler, as on a real node.
func (g *Group) TrySend(payload []byte, gu totem.Guarantee) error {
	p, err := g.a.proto()
	if err != nil {
		return err
	}
	if g.a.groups[g.name] != g {
		return services.ErrNotJoined
	}
	sg := srp.Agreed
	if gu == totem.Safe {
		sg = srp.Safe
	}
	n := g.a.n
	s := n.sim
	// The simulator's message id goes in front, so the process-group checkers of a campaign
	// check the application's group too; the handler gets the payload without it.
	id := MsgID{Sender: n.ID, Counter: n.counter + 1}
	buf := encodePayloadHeader(make([]byte, 0, payloadHeaderSize+len(payload)), id)
	buf = append(buf, payload...)
	if err := p.st.Send(s.now, g.name, appPID, buf, sg); err != nil {
		p.collect()
		if errors.Is(err, stack.ErrBusy) {
			s.stats.Backpressure++
			err = totem.ErrBusy
		}
		if derr := s.drain(n); derr != nil && s.stopped == nil {
			s.stopped = derr
		}
		return err
	}
	p.collect()
	n.counter++
	s.stats.Sends++
	if s.ghist != nil {
		s.ghist.AddSent(id, g.name, sg, buf, s.step, s.now)
	}
	if s.opts.Trace != nil {
		s.traceNode(n, "app", fmt.Sprintf("n%d#%d to %s %s %dB", id.Sender, id.Counter, g.name, gname(sg), len(payload)))
	}
	if err := s.drain(n); err != nil && s.stopped == nil {
		s.stopped = err
	}
	return nil
}

// Leave starts leaving the group; the handler still receives the leave confchg.
func (g *Group) Leave() error {
	p, err := g.a.proto()
	if err != nil {
		return err
	}
	if g.a.groups[g.name] != g {
		return services.ErrNotJoined
	}
	s := g.a.n.sim
	if err := p.LeaveGroup(s.now, g.name, appPID); err != nil {
		return err
	}
	return s.drain(g.a.n)
}

// Members returns the group's members as this node sees them now.
func (g *Group) Members() []totem.Process {
	p, err := g.a.proto()
	if err != nil {
		return nil
	}
	return appProcesses(p.st.CPG().Members(g.name))
}

// appCall runs application code f on node n: queued events are dispatched after it, and the
// invariants run after the step (see Options.Invariants).
func (s *Sim) appCall(n *Node, f func()) error {
	s.appRan = true
	was := n.dispatching
	n.dispatching = true
	f()
	n.dispatching = was
	s.dispatch(n)
	return s.stopped
}

// dispatch hands n's queued stack events to its application, in order, one at a time. A
// callback's own calls (TrySend, Join, Leave) queue further events behind the rest, as
// totem's dispatcher does, so the total order holds.
func (s *Sim) dispatch(n *Node) {
	if n.dispatching {
		return
	}
	n.dispatching = true
	defer func() { n.dispatching = false }()
	for len(n.appq) > 0 && n.appNode != nil && n.appNode.live() {
		ev := n.appq[0]
		n.appq = n.appq[1:]
		s.appRan = true
		n.appNode.deliver(ev)
	}
	if len(n.appq) == 0 {
		n.appq = nil
	}
}

// deliver converts one stack event to totem's types and calls the application.
func (a *AppNode) deliver(ev stack.Event) {
	switch {
	case ev.Membership != nil:
		m := a.membership(ev.Membership)
		if a.onMember != nil {
			a.onMember(m)
		}
	case ev.Quorum != nil:
		if a.onQuorum != nil {
			q := ev.Quorum
			ids := make([]totem.NodeID, len(q.Members))
			for i, m := range q.Members {
				ids[i] = totem.NodeID(m)
			}
			a.onQuorum(totem.QuorumState{RingID: totem.RingID{Rep: totem.NodeID(q.RingID.Rep), Seq: q.RingID.Seq},
				Members: ids, Quorate: q.Quorate, ExpectedVotes: q.ExpectedVotes, TotalVotes: q.TotalVotes, Quorum: q.Quorum})
		}
	case ev.Group != nil:
		c := ev.Group
		g := a.groups[c.Group]
		if g == nil {
			return
		}
		gc := totem.GroupChange{Group: c.Group, Members: appProcesses(c.Members),
			Joined: appMemberChanges(c.Joined), Left: appMemberChanges(c.Left)}
		if slices.ContainsFunc(c.Left, func(m services.MemberChange) bool { return m.NodeID == a.n.ID && m.PID == appPID }) {
			delete(a.groups, c.Group) // its own leave: the last event it gets
		}
		g.h.ConfigChange(gc)
	case ev.Message != nil:
		m := ev.Message
		g := a.groups[m.Group]
		if g == nil {
			return
		}
		payload := m.Payload
		if _, ok := decodePayloadHeader(payload); ok {
			payload = payload[payloadHeaderSize:]
		}
		g.h.Deliver(totem.Message{Group: m.Group, Sender: totem.Process{NodeID: totem.NodeID(m.Sender), PID: m.PID}, Payload: payload})
	}
}

// membership is totem's Membership of a configuration: Joined and Left against the previous
// regular configuration, Left alone in a transitional one.
func (a *AppNode) membership(c *srp.Configuration) totem.Membership {
	ids := make([]totem.NodeID, len(c.Members))
	for i, id := range c.Members {
		ids[i] = totem.NodeID(id)
	}
	m := totem.Membership{Kind: totem.Regular, RingID: totem.RingID{Rep: totem.NodeID(c.RingID.Rep), Seq: c.RingID.Seq}, Members: ids}
	if c.Kind == srp.Transitional {
		m.Kind = totem.Transitional
		m.Left = idsMinus(a.lastRegular, m.Members)
		return m
	}
	m.Joined, m.Left = idsMinus(m.Members, a.lastRegular), idsMinus(a.lastRegular, m.Members)
	a.lastRegular = append(a.lastRegular[:0], m.Members...)
	return m
}

func idsMinus(a, b []totem.NodeID) []totem.NodeID {
	var out []totem.NodeID
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func appProcesses(ps []services.Process) []totem.Process {
	out := make([]totem.Process, len(ps))
	for i, p := range ps {
		out[i] = totem.Process{NodeID: totem.NodeID(p.NodeID), PID: p.PID}
	}
	return out
}

func appMemberChanges(cs []services.MemberChange) []totem.MemberChange {
	if len(cs) == 0 {
		return nil
	}
	out := make([]totem.MemberChange, len(cs))
	for i, c := range cs {
		out[i] = totem.MemberChange{Process: totem.Process{NodeID: totem.NodeID(c.NodeID), PID: c.PID}, Reason: totem.ChangeReason(c.Reason)}
	}
	return out
}

// srpApp is a bare-srp application (srp-level deliveries, no groups), kept for the tests that
// measure how srp alone behaves under an application's traffic (TestQuorumReformTimes).
type srpApp interface {
	OnDeliver(sender srp.NodeID, payload []byte)
	OnConfiguration(c srp.Configuration)
}

// srpSender is a bare-srp application's handle on its node.
type srpSender struct {
	n           *Node
	incarnation int
}

func (s srpSender) ID() srp.NodeID { return s.n.ID }

// Send originates payload; a send from inside a callback is handed to srp after the current
// Ready has been processed, as the driver contract requires.
func (s srpSender) Send(payload []byte, g srp.Guarantee) error {
	n := s.n
	if !n.up || n.incarnation != s.incarnation || n.paused {
		return ErrNodeDown
	}
	if len(payload) > MaxPayload(n.cfg.NetMTU) {
		return srp.ErrMessageTooLarge
	}
	if n.inDrain {
		// Room is checked against srp's queue so backpressure still reaches the application.
		if pr, ok := n.proc.(interface{ QueueRoom() int }); ok && pr.QueueRoom() <= len(n.deferred) {
			return srp.ErrQueueFull
		}
		n.deferred = append(n.deferred, deferredSend{payload: append([]byte(nil), payload...), g: g})
		return nil
	}
	return n.sim.send(n, payload, g)
}

// ErrNodeDown is returned by Sim.Send for a crashed (or paused) node.
var ErrNodeDown = errors.New("sim: node is down")

// MaxPayload is the largest payload Sim.Send takes: srp's limit (netmtu - 90) less the
// simulator's 12-byte message header.
func MaxPayload(netMTU int) int { return netMTU - 2*srp.McastHeaderSize - payloadHeaderSize }

type deferredSend struct {
	payload []byte
	g       srp.Guarantee
}
