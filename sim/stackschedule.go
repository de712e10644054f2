package sim

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/srp"
)

// StackScheduleOptions describe random full-stack schedules: every node runs stack.Stack
// (totempg framing, service sync, CPG, votequorum) and its processes use CPG groups the way
// applications do, while the faults of the bare-srp campaign hit the network and the nodes.
type StackScheduleOptions struct {
	ScheduleOptions
	// Groups are the CPG groups in play: every node's process joins a seed-chosen subset at
	// each start, and joins and leaves others during the run.
	Groups []string
	// LargeFraction of the sends are large (MaxSize..LargeMax bytes, several netmtu packets:
	// totempg fragments them); the rest are MinSize..MaxSize.
	LargeFraction float64
	LargeMax      int
	// MembershipEvery is the mean gap between one node's group joins and leaves.
	MembershipEvery time.Duration
	// Quorum runs votequorum on every node (one vote each, expected votes the cluster) and
	// checks quorum exclusivity (CheckSplitBrain).
	Quorum bool
	// App, when set, gives each schedule (by its seed) an application to run on every node
	// beside the campaign's process, with the application's invariants (see Options.App and
	// Options.Invariants): a fresh one per schedule, so a campaign's schedules share no
	// application state. Its groups are checked by the process-group checkers like the
	// campaign's own, its invariants after every step that ran its code; its timers
	// (AppNode.After) stop at the quiet phase, as the workload does.
	App func(seed uint64) (App, []Invariant)
	// Knet, when set, runs every node's stack over knet (sim/knet.go); add LinkFaults to
	// Faults to cut knet links alone.
	Knet *KnetOptions
}

// DefaultStackScheduleOptions: 3–5 nodes, 20 s of faults every ~2 s, token 1 s, each node
// sending 10 messages/s, a third SAFE, one in ten larger than two netmtu packets; three
// groups; votequorum on.
func DefaultStackScheduleOptions() StackScheduleOptions {
	o := DefaultScheduleOptions()
	o.MinNodes, o.MaxNodes = 3, 5
	o.Duration = 20 * time.Second
	o.FaultEvery = 2 * time.Second
	o.Workload = Workload{Rate: 10, SafeFraction: 0.3, MinSize: 1, MaxSize: 400}
	return StackScheduleOptions{
		ScheduleOptions: o,
		Groups:          []string{"g0", "g1", "g2"},
		LargeFraction:   0.1,
		LargeMax:        4000,
		MembershipEvery: 4 * time.Second,
		Quorum:          true,
	}
}

func (o *StackScheduleOptions) validate() error {
	if err := o.ScheduleOptions.validate(); err != nil {
		return err
	}
	if len(o.Groups) == 0 {
		return errors.New("sim: stack schedule: no groups")
	}
	w := o.Workload
	if w.Rate <= 0 || w.SafeFraction < 0 || w.SafeFraction > 1 || w.MinSize < 0 || w.MaxSize < w.MinSize {
		return fmt.Errorf("sim: stack schedule: workload %+v invalid", w)
	}
	if o.LargeFraction < 0 || o.LargeFraction > 1 || (o.LargeFraction > 0 && o.LargeMax < w.MaxSize) {
		return fmt.Errorf("sim: stack schedule: large messages %v up to %d invalid", o.LargeFraction, o.LargeMax)
	}
	if o.MembershipEvery <= 0 {
		return errors.New("sim: stack schedule: membership interval must be positive")
	}
	return nil
}

// stackRun is the campaign's own state beside the simulator: which groups each node's
// process has asked to be in (its sends go only there, as an application's would).
type stackRun struct {
	s      *Sim
	o      StackScheduleOptions
	joined map[srp.NodeID]map[string]bool
	// stopped ends the workload and the membership churn (the quiet phase).
	stopped bool
}

// RunStackSchedule runs one random full-stack schedule: nodes start and join groups, the
// workload sends AGREED and SAFE messages, small and fragmented, to the groups each node is
// in, processes join and leave groups, faults (partitions, one-way cuts, deafness, crashes
// with restarts, pauses, loss bursts, flapping links) are drawn every FaultEvery on average
// for Duration; then the network heals, every node resumes, and liveness is checked: one
// ring, and a probe from every node in every group it is in reaches the whole group. The
// srp-level configuration checks run throughout; the process-group checkers (groupHistory)
// and quorum exclusivity run at the end.
func RunStackSchedule(seed uint64, o StackScheduleOptions, trace io.Writer) (Result, error) {
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	if len(o.Faults) == 0 {
		o.Faults = AllFaults
	}
	r, err := newStackRun(seed, o.NodesFor(seed), o, trace)
	if err != nil {
		return Result{}, err
	}
	s := r.s
	res := Result{Seed: seed, Nodes: len(s.nodes)}
	finish := func(err error) (Result, error) {
		if err == nil {
			err = r.check(true)
		}
		return finishResult(s, res, err)
	}
	for _, n := range s.nodes {
		r.scheduleSend(n)
		r.scheduleMembership(n)
	}
	if err := s.faultPhase(o.FaultEvery, o.Duration, o.Faults); err != nil {
		return finish(err)
	}
	if err := s.RunUntil(o.Duration); err != nil {
		return finish(err)
	}
	if err := r.check(false); err != nil {
		return finish(err)
	}
	r.stopped = true
	s.quiet = true
	s.Heal()
	if o.Knet != nil {
		s.knetQuiet() // sim/knetfaults.go
	}
	for _, n := range s.nodes {
		if n.paused {
			if err := s.Resume(n.ID); err != nil {
				return finish(err)
			}
		}
		if !n.up {
			if err := s.Restart(n.ID); err != nil {
				return finish(err)
			}
		}
	}
	return finish(r.liveness())
}

// newStackRun builds the simulator of a full-stack run: nodes with their initial groups,
// votequorum when asked, the process-group history on. Nothing is scheduled yet.
func newStackRun(seed uint64, nodes int, o StackScheduleOptions, trace io.Writer) (*stackRun, error) {
	link := o.Link
	// The groups each node joins at start are drawn from the seed alone, before the
	// simulator's generator is made, so they do not shift any other draw.
	initial := map[srp.NodeID][]string{}
	x := splitmix(seed ^ 0x5eed)
	for id := srp.NodeID(1); int(id) <= nodes; id++ {
		for _, g := range o.Groups {
			x = splitmix(x)
			if x%3 != 0 { // two in three
				initial[id] = append(initial[id], g)
			}
		}
		if len(initial[id]) == 0 {
			initial[id] = []string{o.Groups[int(x%uint64(len(o.Groups)))]}
		}
	}
	so := StackOptions{reserved: o.Groups}
	if o.Quorum {
		nl := make([]quorum.NodeEntry, nodes)
		for i := range nl {
			nl[i] = quorum.NodeEntry{NodeID: quorum.NodeID(i + 1), Votes: 1}
		}
		so.Quorum = func(srp.NodeID) *quorum.Config { return &quorum.Config{Nodelist: nl} }
	}
	var r *stackRun
	newProto := func(cfg srp.Config) (Protocol, error) {
		sop := so
		sop.Groups = initial[cfg.NodeID]
		// A (re)started process is in its initial groups again, whatever it did before.
		r.joined[cfg.NodeID] = map[string]bool{}
		for _, g := range sop.Groups {
			r.joined[cfg.NodeID][g] = true
		}
		if o.Knet != nil {
			return NewKnetProtocol(sop, o.Knet.forSchedule(seed, nodes))(cfg)
		}
		return NewStackProtocol(sop)(cfg)
	}
	var app App
	var invariants []Invariant
	if o.App != nil {
		app, invariants = o.App(seed)
	}
	s, err := New(Options{Seed: seed, Nodes: nodes, Token: o.Token, Link: &link, Trace: trace,
		StartSpread: 200 * time.Millisecond, NewProtocol: newProto, App: app, Invariants: invariants,
		Config: o.accelConfig(), SendSpacing: o.sendSpacing()})
	if err != nil {
		return nil, err
	}
	s.ghist = newGroupHistory(s.NodeIDs())
	r = &stackRun{s: s, o: o, joined: map[srp.NodeID]map[string]bool{}}
	return r, nil
}

// check runs the process-group checkers and quorum exclusivity.
func (r *stackRun) check(final bool) error {
	s := r.s
	if s.stopped != nil {
		return s.stopped
	}
	if vs := s.ghist.Check(final); len(vs) > 0 {
		v := vs[0]
		v.Seed = s.opts.Seed
		s.stopped = v
		return v
	}
	if r.o.Quorum {
		if err := s.qlog.CheckSplitBrain(); err != nil {
			var v *Violation
			if !errors.As(err, &v) {
				v = s.violation(InvQuorumSplitBrain, "%v", err)
			}
			v.Seed = s.opts.Seed
			s.stopped = v
			return v
		}
	}
	return nil
}

func (r *stackRun) proto(n *Node) *StackProtocol {
	if !n.up || n.paused {
		return nil
	}
	p, _ := stackOf(n.proc)
	return p
}

// groupsOf is the node's joined groups, sorted (a map's order would break determinism).
func (r *stackRun) groupsOf(id srp.NodeID) []string {
	var gs []string
	for g, in := range r.joined[id] {
		if in {
			gs = append(gs, g)
		}
	}
	slices.Sort(gs)
	return gs
}

func (r *stackRun) scheduleSend(n *Node) {
	s := r.s
	gap := time.Duration(s.rng.ExpFloat64() / r.o.Workload.Rate * float64(time.Second))
	s.schedule(&event{at: s.now + gap + 1, kind: evAction, action: func() error {
		if r.stopped {
			return nil
		}
		r.scheduleSend(n)
		p := r.proto(n)
		if p == nil {
			return nil
		}
		gs := r.groupsOf(n.ID)
		if len(gs) == 0 {
			return nil
		}
		w := r.o.Workload
		g := gs[s.rng.IntN(len(gs))]
		size := w.MinSize + s.rng.IntN(w.MaxSize-w.MinSize+1)
		if s.rng.Float64() < r.o.LargeFraction {
			size = w.MaxSize + s.rng.IntN(r.o.LargeMax-w.MaxSize+1)
		}
		guar := srp.Agreed
		if s.rng.Float64() < w.SafeFraction {
			guar = srp.Safe
		}
		return r.send(n, p, g, guar, size)
	}})
}

// send originates one tagged message from n's process to group g.
func (r *stackRun) send(n *Node, p *StackProtocol, g string, guar srp.Guarantee, size int) error {
	s := r.s
	id := MsgID{Sender: n.ID, Counter: n.counter + 1}
	buf := encodePayloadHeader(make([]byte, 0, payloadHeaderSize+size), id)
	for i := 0; i < size; i++ {
		buf = append(buf, byte(id.Counter)+byte(i)*31)
	}
	if err := p.SendGroup(s.now, g, simPID, buf, guar); err != nil {
		if errors.Is(err, srp.ErrQueueFull) {
			s.stats.Backpressure++
		}
		if s.opts.Trace != nil {
			s.traceNode(n, "send", fmt.Sprintf("%s %s %dB refused: %v", g, gname(guar), size, err))
		}
		return s.drain(n)
	}
	n.counter++
	s.stats.Sends++
	s.ghist.AddSent(id, g, guar, buf, s.step, s.now)
	if s.opts.Trace != nil {
		s.traceNode(n, "send", fmt.Sprintf("n%d#%d to %s %s %dB", id.Sender, id.Counter, g, gname(guar), size))
	}
	return s.drain(n)
}

// scheduleMembership makes n's process join a group it is not in or leave one it is in.
func (r *stackRun) scheduleMembership(n *Node) {
	s := r.s
	gap := time.Duration(s.rng.ExpFloat64() * float64(r.o.MembershipEvery))
	s.schedule(&event{at: s.now + gap + 1, kind: evAction, action: func() error {
		if r.stopped {
			return nil
		}
		r.scheduleMembership(n)
		p := r.proto(n)
		if p == nil {
			return nil
		}
		g := r.o.Groups[s.rng.IntN(len(r.o.Groups))]
		var err error
		verb := "join"
		if r.joined[n.ID][g] {
			verb = "leave"
			if err = p.LeaveGroup(s.now, g, simPID); err == nil {
				r.joined[n.ID][g] = false
			}
		} else if err = p.JoinGroup(s.now, g, simPID); err == nil {
			r.joined[n.ID][g] = true
		}
		if s.opts.Trace != nil {
			s.traceNode(n, "cpg", fmt.Sprintf("%s %s: %v", verb, g, err))
		}
		return s.drain(n)
	}})
}

// liveness checks the healed, quiet cluster: one ring of every node, every message each
// node's current incarnation sent delivered back to it, and a probe from each node in each
// group it is in delivered by every node in that group.
func (r *stackRun) liveness() error {
	s := r.s
	// Twice the bare-srp bound: after a heal, five stack nodes with full queues can go
	// through a few rounds of singleton rings and failed lists before they merge (seeds 1272
	// and 1729 need between one and two bounds; the bare campaign never has).
	bound := 2 * s.LivenessBound()
	if err := s.RunFor(bound); err != nil {
		return err
	}
	live := s.Live()
	ring := s.Node(live[0]).proc.RingID()
	for _, id := range live {
		p := s.Node(id).proc
		if p.State() != srp.Operational || p.RingID() != ring || !slices.Equal(p.Members(), live) {
			return s.violation(InvLiveness, "%v after the network healed, live nodes %s are not one ring: %s", bound, fmtIDs(live), s.ringSummary())
		}
	}
	// The quiet phase also lets every sync finish; settle what the processes asked for.
	for _, id := range live {
		n := s.Node(id)
		p := r.proto(n)
		for _, g := range r.o.Groups {
			if p.Stack().CPG().Joined(g, simPID) != r.joined[id][g] {
				return s.violation(InvLiveness, "n%d: group %s: joined=%v at the CPG, but its process asked for %v", id, g, !r.joined[id][g], r.joined[id][g])
			}
		}
	}
	for _, id := range live {
		n := s.Node(id)
		got := map[int]bool{}
		for _, e := range s.ghist.Logs[id] {
			if e.Kind == groupMessage && e.Incarnation == n.incarnation && e.Msg >= 0 {
				got[e.Msg] = true
			}
		}
		for i, m := range s.ghist.Sent {
			// An application's messages are judged by its own invariants; a message it sent
			// just before its process left the group is not delivered back.
			if !slices.Contains(r.o.Groups, m.Group) {
				continue
			}
			if m.ID.Sender == id && m.Incarnation == n.incarnation && !got[i] {
				return s.violation(InvLiveness, "%v after the network healed, n%d has not delivered its own %s to %s (sent at %s)",
					bound, id, s.ghist.msgName(i), m.Group, fmtTime(m.At))
			}
		}
	}
	first := len(s.ghist.Sent)
	for _, id := range live {
		n := s.Node(id)
		for _, g := range r.groupsOf(id) {
			if err := r.send(n, r.proto(n), g, srp.Agreed, 16); err != nil {
				return err
			}
		}
	}
	if err := s.RunFor(bound); err != nil {
		return err
	}
	for _, id := range live {
		got := map[int]bool{}
		for _, e := range s.ghist.Logs[id] {
			if e.Kind == groupMessage && e.Msg >= first {
				got[e.Msg] = true
			}
		}
		for i := first; i < len(s.ghist.Sent); i++ {
			if r.joined[id][s.ghist.Sent[i].Group] && !got[i] {
				return s.violation(InvLiveness, "%v after the probes were sent, n%d (in %s) has not delivered probe %s; %s",
					bound, id, s.ghist.Sent[i].Group, s.ghist.msgName(i), s.ringSummary())
			}
		}
	}
	return s.Check()
}

// StackCampaign runs full-stack schedules seed, seed+1, …, seed+n-1; progress (optional) is
// called after each. Schedule i replays alone with RunStackSchedule(seed+i, o, …).
func StackCampaign(seed uint64, n int, o StackScheduleOptions, progress func(done int, sum *CampaignSummary)) (*CampaignSummary, error) {
	return campaign(seed, n, progress, func(seed uint64) (Result, error) { return RunStackSchedule(seed, o, nil) })
}
