package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/srp"
)

// Slow re-forms of the full stack after a heal (TestQuorumWaitForAll seed 251: 10.7 s against a
// liveness bound of 8.87 s, where bare srp re-forms the same kind of history in at most 2.4 s).
//
// Ruled out, on every input of the run (stackAudit): an srp timer firing late or never because
// the stack's wake-up missed it, and srp output the stack failed to take. Nor are inputs held
// back while a sync runs: Stack.Receive hands every datagram to srp (only application sends wait).
// What the trace shows instead is corosync's membership algorithm meeting a network that
// reorders one sender's datagrams:
//
//  1. Nodes whose consensus timers run out together each put every non-agreeing node in their
//     failed list and multicast that JOIN (memb_state_consensus_timeout_expired); alone in
//     proc − failed, each forms a singleton ring at once.
//  2. On the REGULAR configuration the stack's sync engine multicasts SERVICE_BUILD, as corosync's
//     sync_start does; about 40 µs after that node's JOIN. Bare srp is silent there (its rep's
//     MERGE_DETECT comes a merge timeout later).
//  3. FaultyLink draws each datagram's delay independently (100 µs + up to 400 µs of jitter), so
//     that MCAST overtakes its sender's JOIN at a receiver about 40 % of the time. The foreign
//     MCAST moves an OPERATIONAL receiver to GATHER (message_handler_mcast); the JOIN, which
//     OPERATIONAL would have ignored because it names the receiver failed
//     (ignore_join_under_operational), now arrives in GATHER, where memb_join_process answers it
//     by failing the sender in return.
//  4. Failed lists that differ are adopted only from members of one's own last ring
//     (memb_join_process), so the singletons and the rest disagree until the next consensus
//     timeout, which fires for all of them together again: back to 1.
//
// corosync 3.1.7 does each step the same way (exec/totemsrp.c, exec/main.c and exec/sync.c of
// v3.1.7; the rules are in docs/reference/totem-protocol.md §4.3–4.5 and services-sync.md
// §0), so this is kept as a finding, not fixed. Bare srp with an application that talks right
// after each configuration gets most of the stack's tail (TestQuorumReformTimes); with every
// directed link kept in order except for FaultyLink's explicit 2 % reorder, the same draws give
// the stack bare srp's tail and seed 251 re-forms in about 1.2 s (sim/testdata/srp-findings.md).

// stackAudit runs a node's StackProtocol and checks, around every input, the plumbing between
// the stack and srp, and records JOINs that reached this node behind a later datagram of
// their sender. skew > 0 misreports the stack's wake-up that much late, to show the checks fail.
type stackAudit struct {
	*StackProtocol
	self srp.NodeID
	log  *auditLog
	seen overtakes
	skew time.Duration
}

// auditLog is what the audits of one node found, over all its incarnations.
type auditLog struct {
	inputs       int
	overdue      int // an input arrived after an srp timer was due: that timer fired late
	dueAfterTick int // a Tick left an srp timer due at that instant unfired
	lateWakeup   int // the wake-up handed to the driver is later than srp's next timer
	leftBehind   int // srp output the stack did not take up after an input
	// stale are the overtaken JOINs naming this node failed that it received in GATHER.
	stale []staleJoin
}

type staleJoin struct {
	at   time.Duration
	join string
}

func (l *auditLog) plumbingFaults() int {
	return l.overdue + l.dueAfterTick + l.lateWakeup + l.leftBehind
}

func (a *stackAudit) Ready() srp.Ready {
	rd := a.StackProtocol.Ready()
	if a.skew > 0 && rd.NextTick != 0 {
		rd.NextTick += a.skew
	}
	return rd
}

func (a *stackAudit) Step(now time.Duration, datagram []byte) error {
	return a.StepLink(now, 0, datagram)
}

func (a *stackAudit) StepLink(now time.Duration, link int, datagram []byte) error {
	a.before(now)
	inGather := a.State() == srp.Gather
	j, stale := a.seen.observe(a.self, datagram)
	err := a.StackProtocol.StepLink(now, link, datagram)
	if stale && inGather {
		a.log.stale = append(a.log.stale, staleJoin{at: now, join: fmt.Sprintf("JOIN n%d ring seq %d failed %v, n%d already heard on ring seq %d",
			j.SystemFrom, j.RingSeq, j.FailedList, j.SystemFrom, a.seen.newest[j.SystemFrom])})
	}
	a.after()
	return err
}

func (a *stackAudit) Tick(now time.Duration) {
	a.before(now)
	a.StackProtocol.Tick(now)
	if next := a.Stack().SRP().Ready().NextTick; next != 0 && next <= now {
		a.log.dueAfterTick++
	}
	a.after()
}

func (a *stackAudit) before(now time.Duration) {
	if next := a.Stack().SRP().Ready().NextTick; next != 0 && next < now {
		a.log.overdue++
	}
}

func (a *stackAudit) after() {
	a.log.inputs++
	if next := a.Stack().SRP().Ready().NextTick; next != 0 {
		if wake := a.Ready().NextTick; wake == 0 || wake > next {
			a.log.lateWakeup++
		}
	}
	if a.Stack().SRP().HasReady() {
		a.log.leftBehind++
	}
}

// overtakes remembers, per sender, the newest ring seq a node has seen it multicast on. A node's
// ring seq only grows (a JOIN carries the seq of its current ring, a COMMIT raises it), so a
// JOIN with a lower seq than an MCAST already received from its sender was sent before that
// MCAST and overtaken by it on the way.
type overtakes struct {
	newest map[srp.NodeID]uint64
	mc     srp.Mcast
	j      srp.Join
}

// observe takes one received datagram. For a JOIN naming self failed that an MCAST of its
// sender overtook, it returns the JOIN (valid until the next call) and true.
func (o *overtakes) observe(self srp.NodeID, datagram []byte) (*srp.Join, bool) {
	h, _, err := srp.PeekHeader(datagram)
	if err != nil {
		return nil, false
	}
	switch h.Type {
	case srp.TypeMcast:
		if o.mc.Decode(datagram) != nil {
			return nil, false
		}
		if o.newest == nil {
			o.newest = map[srp.NodeID]uint64{}
		}
		if seq := o.mc.RingID.Seq; seq > o.newest[o.mc.SystemFrom] {
			o.newest[o.mc.SystemFrom] = seq
		}
	case srp.TypeJoin:
		if o.j.Decode(datagram) != nil || o.j.SystemFrom == self {
			return nil, false
		}
		return &o.j, slices.Contains(o.j.FailedList, self) && o.j.RingSeq < o.newest[o.j.SystemFrom]
	}
	return nil, false
}

// auditProtocols wraps opts' protocol in a stackAudit on every node; the logs are per node id.
func auditProtocols(opts *Options, skew time.Duration) map[srp.NodeID]*auditLog {
	logs := map[srp.NodeID]*auditLog{}
	inner := opts.NewProtocol
	opts.NewProtocol = func(cfg srp.Config) (Protocol, error) {
		p, err := inner(cfg)
		if err != nil {
			return nil, err
		}
		sp, ok := p.(*StackProtocol)
		if !ok {
			return nil, fmt.Errorf("audit: n%d runs %T, not the stack", cfg.NodeID, p)
		}
		if logs[cfg.NodeID] == nil {
			logs[cfg.NodeID] = &auditLog{}
		}
		return &stackAudit{StackProtocol: sp, self: cfg.NodeID, log: logs[cfg.NodeID], skew: skew}, nil
	}
	return logs
}

// Found by TestQuorumWaitForAll seed 251 (6 nodes, unit votes, wait_for_all): 10.7 s, nine
// consensus periods, see the top of this file. Since a JOIN that makes its receiver adopt new
// sets counts as its sender's agreement (srp/gather.go, a gototem deviation), step 4's
// disagreement settles without another consensus period and the seed re-forms in 1.5 s; over
// TestQuorumWaitForAll's seeds 1-1500 none is slow any more (it was this one in 1-300). The test
// now keeps that: seed 251 within the liveness bound, with the audit's plumbing checks. The
// audit only reads, so the run is exactly that seed's history; the votequorum verdicts are not
// logged under it (the simulator logs them for a bare StackProtocol only).
func TestQuorumSlowReformSeed251(t *testing.T) {
	const seed = 251
	c, r, spread := waitForAllCase(seed)
	opts, err := quorumOptions(seed, c, FaultyLink, spread)
	if err != nil {
		t.Fatal(err)
	}
	logs := auditProtocols(&opts, 0)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitForAllHistory(s, r, nil); err != nil {
		t.Fatal(err)
	}
	healed := s.Now()
	took, err := runUntilOneRing(s, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took > s.LivenessBound() {
		t.Fatalf("seed %d re-formed %v after the heal, over the liveness bound %v: the slow re-form that ended when an adopting JOIN "+
			"began to count as its sender's agreement (srp/gather.go) is back", seed, took, s.LivenessBound())
	}
	var faults []string
	inputs, stale := 0, 0
	var first []string
	for _, id := range s.NodeIDs() {
		l := logs[id]
		inputs += l.inputs
		if l.plumbingFaults() > 0 {
			faults = append(faults, fmt.Sprintf("n%d: %d late timers, %d timers left due after Tick, %d wake-ups later than srp's timer, %d inputs left srp output behind",
				id, l.overdue, l.dueAfterTick, l.lateWakeup, l.leftBehind))
		}
		for _, sj := range l.stale {
			if sj.at >= healed {
				stale++
				if len(first) < 3 {
					first = append(first, fmt.Sprintf("t=%s n%d: %s", fmtTime(sj.at), id, sj.join))
				}
			}
		}
	}
	if inputs == 0 {
		t.Fatal("the audit saw no input: it did not wrap the nodes' protocols")
	}
	if len(faults) > 0 {
		t.Fatalf("stack/srp plumbing over %d inputs:\n%s", inputs, strings.Join(faults, "\n"))
	}
	t.Logf("re-formed %v after the heal (bound %v); %d inputs, no late or missed srp timer; %d overtaken JOINs named their receiver failed in GATHER after the heal, first:\n%s",
		took, s.LivenessBound(), inputs, stale, strings.Join(first, "\n"))
}

// The audit's plumbing checks catch a driver woken after srp's timers: a wake-up reported 1 ms
// late fires every timer late, and each is counted; reported on time, none is.
func TestStackAuditCatchesLateWakeups(t *testing.T) {
	c := quorumCase{nodes: 3, history: "any", cfg: quorum.Config{Nodelist: unitNodelist(3)}}
	for _, skew := range []time.Duration{0, time.Millisecond} {
		opts, err := quorumOptions(1, c, DefaultLink, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		logs := auditProtocols(&opts, skew)
		s, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RunFor(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		late, wake := 0, 0
		for _, l := range logs {
			late += l.overdue
			wake += l.lateWakeup
		}
		if skew == 0 && late+wake != 0 {
			t.Errorf("wake-ups on time: %d late timers, %d late wake-ups", late, wake)
		}
		if skew > 0 && (late == 0 || wake == 0) {
			t.Errorf("wake-ups %v late: %d late timers, %d late wake-ups; the audit missed them", skew, late, wake)
		}
	}
}

// A JOIN is overtaken when its sender's MCAST of a newer ring arrived first; only one that
// names the receiver failed matters.
func TestOvertakenJoin(t *testing.T) {
	join := func(from srp.NodeID, seq uint64, failed ...srp.NodeID) []byte {
		j := srp.Join{Header: srp.Header{NodeID: from}, SystemFrom: from, RingSeq: seq, ProcList: []srp.NodeID{1, 2, 3}, FailedList: failed}
		return j.AppendEncode(nil)
	}
	mcast := func(from srp.NodeID, seq uint64) []byte {
		m := srp.Mcast{Header: srp.Header{NodeID: from}, SystemFrom: from, Seq: 1, RingID: srp.RingID{Rep: from, Seq: seq}}
		return m.AppendEncode(nil)
	}
	var o overtakes
	steps := []struct {
		what  string
		data  []byte
		stale bool
	}{
		{"JOIN before any MCAST of its sender", join(2, 8, 1, 3), false},
		{"MCAST of n2's new ring 12", mcast(2, 12), false},
		{"n2's older JOIN naming n1 failed", join(2, 8, 1, 3), true},
		{"n2's older JOIN not naming n1", join(2, 8, 3), false},
		{"n2's JOIN of ring 12", join(2, 12, 1, 3), false},
		{"n3's older JOIN: n3 sent no MCAST", join(3, 8, 1, 2), false},
		{"a truncated JOIN", join(2, 8, 1, 3)[:20], false},
	}
	for _, st := range steps {
		if _, stale := o.observe(1, st.data); stale != st.stale {
			t.Errorf("%s: overtaken %v, want %v", st.what, stale, st.stale)
		}
	}
}

// chatter is an application that, like the stack's sync engine, multicasts right after every
// REGULAR configuration and keeps multicasting for a few rotations: one message, then one more
// each time its previous one is delivered back, rounds messages in all.
type chatter struct {
	s      srpSender
	rounds int
	left   int
}

func (c *chatter) OnConfiguration(cf srp.Configuration) {
	if cf.Kind == srp.Regular {
		c.left = c.rounds - 1
		_ = c.s.Send([]byte("sync"), srp.Agreed) // refusals are counted by the simulator
	}
}

func (c *chatter) OnDeliver(from srp.NodeID, _ []byte) {
	if from == c.s.ID() && c.left > 0 {
		c.left--
		_ = c.s.Send([]byte("sync"), srp.Agreed)
	}
}

// How long TestQuorumWaitForAll's histories take to re-form one ring after the final heal, on
// bare srp, on bare srp with an application that talks right after each configuration as the
// stack's sync does, and on the stack. The figures behind sim/testdata/srp-findings.md:
//
//	GOTOTEM_SIM_SEEDS=2000 go test ./sim -run TestQuorumReformTimes -v
//
// Bare srp must re-form every history within the liveness bound; the others are only reported
// (TestQuorumSlowReformSeed251 keeps why the stack may not).
func TestQuorumReformTimes(t *testing.T) {
	seeds := quorumSeeds(t, 16)
	variants := []struct {
		name  string
		adapt func(*Options)
	}{
		{"srp", func(o *Options) { o.NewProtocol, o.Invariants = SRP, nil }},
		{"srp+chatter", func(o *Options) {
			o.NewProtocol, o.Invariants = SRP, nil
			o.srpApp = func(id srp.NodeID, s srpSender) srpApp { return &chatter{s: s, rounds: 5} }
		}},
		{"stack", func(*Options) {}},
	}
	limits := []time.Duration{1300 * time.Millisecond, 2500 * time.Millisecond, 5 * time.Second}
	for _, v := range variants {
		over := make([]int, len(limits)+1)
		var worst time.Duration
		var worstSeed uint64
		for _, seed := range seeds {
			c, r, spread := waitForAllCase(seed)
			opts, err := quorumOptions(seed, c, FaultyLink, spread)
			if err != nil {
				t.Fatal(err)
			}
			v.adapt(&opts)
			s, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := waitForAllHistory(s, r, nil); err != nil {
				t.Fatalf("%s seed %d: %v", v.name, seed, err)
			}
			took, err := runUntilOneRing(s, 60*time.Second)
			if err != nil {
				t.Fatalf("%s seed %d: %v", v.name, seed, err)
			}
			bound := s.LivenessBound()
			for i, l := range append(limits, bound) {
				if took > l {
					over[i]++
				}
			}
			if took > worst {
				worst, worstSeed = took, seed
			}
			if v.name == "srp" && took > bound {
				t.Errorf("srp seed %d: re-formed %v after the heal, past the liveness bound %v", seed, took, bound)
			}
		}
		t.Logf("%-11s %d histories: over 1.3 s %d, over 2.5 s %d, over 5 s %d, over the liveness bound %d; worst %v (seed %d)",
			v.name, len(seeds), over[0], over[1], over[2], over[3], worst, worstSeed)
	}
}
