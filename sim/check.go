package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/gototem/gototem/srp"
)

// Names of the invariants, as a Violation reports them.
const (
	InvTotalOrder      = "total order"
	InvNoDuplication   = "no duplication"
	InvNoCreation      = "no creation"
	InvSelfDelivery    = "self delivery"
	InvVirtualSynchron = "virtual synchrony"
	InvConfigAgreement = "configuration agreement"
	InvSafeDelivery    = "safe delivery"
	// InvDeliveryGap: within one configuration every member delivers a prefix of one
	// sequence. A member that skips a message another member delivered in that
	// configuration, and goes on delivering later ones, lost it.
	InvDeliveryGap = "delivery gap"
	// InvSenderAlone is the delivery gap users saw (issue 12): the skipped message was
	// delivered by its sender and by no other member of a configuration that carried on.
	InvSenderAlone = "sender alone"
	InvLiveness    = "liveness"
	InvProgress    = "progress" // the run loop itself: a timer that never lets time advance
)

// Violation is a broken invariant. Seed, Step and At locate it for replay.
type Violation struct {
	Invariant string
	Seed      uint64
	Step      uint64
	At        time.Duration
	Detail    string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("sim: %s violated at step %d (t=%s, seed %d): %s",
		v.Invariant, v.Step, fmtTime(v.At), v.Seed, v.Detail)
}

// Invariant is an extra check run beside gototem's own, e.g. an application's.
type Invariant struct {
	Name  string
	Check func(s *Sim) error
}

// Check runs every history invariant over the entries added since the last call (the
// checkers keep their state, so checking after every step costs time linear in the run)
// and returns the violations found, ordered by step. Once an invariant is violated it is
// reported again on every later call. Seed is left for the caller.
func (h *History) Check() []*Violation {
	c := &h.chk
	if c.pos == nil {
		c.init(h)
	}
	for ; c.cursor < len(h.order); c.cursor++ {
		r := h.order[c.cursor]
		c.entry(h, r.node, h.Logs[r.node][r.idx])
	}
	out := make([]*Violation, 0, len(c.found))
	for _, inv := range checkOrder {
		if v := c.found[inv]; v != nil {
			out = append(out, v)
		}
	}
	slices.SortStableFunc(out, func(a, b *Violation) int { return cmp.Compare(a.Step, b.Step) })
	return out
}

var checkOrder = []string{InvNoCreation, InvNoDuplication, InvTotalOrder, InvSelfDelivery,
	InvConfigAgreement, InvVirtualSynchron, InvSafeDelivery, InvSenderAlone, InvDeliveryGap}

// checker is the incremental state of the history invariants.
type checker struct {
	cursor int
	found  map[string]*Violation
	// pos[node][msg] is msg's position (1-based) in node's delivery sequence.
	pos map[srp.NodeID][]int32
	cnt map[srp.NodeID]int32
	// maxCommon[[a,b]] is the highest position in a's sequence of a message a and b both
	// delivered. Total order holds iff, whenever a message becomes common to a and b
	// (the second of them delivers it), its position at the first exceeds that maximum.
	maxCommon map[[2]srp.NodeID]int32
	// self delivery: next index into own[node][incarnation] each node must deliver.
	nextOwn map[srp.NodeID]map[int]int
	// per-node configuration state.
	nodes map[srp.NodeID]*nodeCheck
	// regular[ring] is the first member list seen installed for a ring.
	regular map[srp.RingID]regRef
	// epochs[[start,end]] is the first node's message set between two configurations.
	epochs map[[2]configKey]epochRef
	// within[conf] is the longest delivery sequence any node has shown in configuration
	// conf: every member's sequence there must be a prefix of it (no gaps).
	within map[configKey]*withinRef
}

type withinRef struct {
	seq   []int
	nodes map[int][]srp.NodeID // message -> nodes that delivered it in the configuration
}

type regRef struct {
	node    srp.NodeID
	members []srp.NodeID
}

type epochRef struct {
	node srp.NodeID
	set  []int
}

type nodeCheck struct {
	conf        *srp.Configuration // in force (last delivered), nil before any
	prevRegular *srp.Configuration
	trans       *srp.Configuration // transitional awaiting its regular
	lastRegular srp.RingID
	epochKey    configKey
	inEpoch     bool
	epochMsgs   []int
}

// configKey names a configuration: a transitional one is only unique together with the
// regular configuration it leaves (each old ring has its own transitional view).
type configKey struct {
	kind srp.ConfigurationKind
	ring srp.RingID
	from srp.RingID // transitional: the regular ring left
}

func (c *checker) init(h *History) {
	c.found = make(map[string]*Violation)
	c.pos = make(map[srp.NodeID][]int32)
	c.cnt = make(map[srp.NodeID]int32)
	c.maxCommon = make(map[[2]srp.NodeID]int32)
	c.nextOwn = make(map[srp.NodeID]map[int]int)
	c.nodes = make(map[srp.NodeID]*nodeCheck)
	c.regular = make(map[srp.RingID]regRef)
	c.epochs = make(map[[2]configKey]epochRef)
	c.within = make(map[configKey]*withinRef)
	for _, n := range h.Nodes {
		c.nodes[n] = &nodeCheck{}
		c.nextOwn[n] = make(map[int]int)
	}
}

func (c *checker) report(v *Violation) {
	if c.found[v.Invariant] == nil {
		c.found[v.Invariant] = v
	}
}

func (c *checker) entry(h *History, node srp.NodeID, e Entry) {
	nc := c.nodes[node]
	if nc == nil {
		nc = &nodeCheck{}
		c.nodes[node] = nc
		c.nextOwn[node] = make(map[int]int)
	}
	switch e.Kind {
	case EntryStart, EntryCrash:
		*nc = nodeCheck{}
	case EntryConfig:
		c.config(h, node, nc, e)
	case EntryMessage:
		c.message(h, node, nc, e)
	}
}

// message checks one delivery: creation, duplication, total order, self delivery (FIFO,
// no gaps within an incarnation; whether the last ones arrive is liveness's job) and safe
// delivery (every member of the configuration in force had received it, as tapped at the
// network layer rather than taken from srp's own bookkeeping).
func (c *checker) message(h *History, node srp.NodeID, nc *nodeCheck, e Entry) {
	if e.Msg < 0 {
		c.report(h.viol(InvNoCreation, e, "n%d delivered a %d-byte message from n%d that no node sent", node, e.Len, e.Sender))
		return
	}
	s := h.Sent[e.Msg]
	if e.Sender != s.ID.Sender || e.Len != s.Len || e.Sum != s.Sum || e.Guarantee != s.Guarantee {
		c.report(h.viol(InvNoCreation, e, "n%d delivered %s altered: sender n%d/%d bytes/%s, sent by n%d/%d bytes/%s",
			node, h.msgName(e.Msg), e.Sender, e.Len, gname(e.Guarantee), s.ID.Sender, s.Len, gname(s.Guarantee)))
		return
	}
	p := c.pos[node]
	if e.Msg >= len(p) {
		p = append(p, make([]int32, len(h.Sent)-len(p))...)
		c.pos[node] = p
	}
	if p[e.Msg] != 0 {
		c.report(h.viol(InvNoDuplication, e, "n%d delivered %s twice", node, h.msgName(e.Msg)))
		return
	}
	c.cnt[node]++
	mine := c.cnt[node]
	p[e.Msg] = mine
	for _, other := range h.Nodes {
		if other == node {
			continue
		}
		op := c.pos[other]
		if e.Msg >= len(op) || op[e.Msg] == 0 {
			continue
		}
		theirs := op[e.Msg]
		k := [2]srp.NodeID{other, node}
		if theirs < c.maxCommon[k] {
			c.report(h.viol(InvTotalOrder, e, "n%d delivered %s after a message n%d delivered after it (n%d's order position %d < %d)",
				node, h.msgName(e.Msg), other, other, theirs, c.maxCommon[k]))
		}
		c.maxCommon[k] = max(c.maxCommon[k], theirs)
		c.maxCommon[[2]srp.NodeID{node, other}] = mine
	}
	if s.ID.Sender == node {
		if s.Incarnation != e.Incarnation {
			c.report(h.viol(InvSelfDelivery, e, "n%d (incarnation %d) delivered its own %s from incarnation %d",
				node, e.Incarnation, h.msgName(e.Msg), s.Incarnation))
		} else {
			list := h.own[node][s.Incarnation]
			k := c.nextOwn[node][s.Incarnation]
			if k >= len(list) || list[k] != e.Msg {
				want := "nothing"
				if k < len(list) {
					want = h.msgName(list[k])
				}
				c.report(h.viol(InvSelfDelivery, e, "n%d delivered its own %s while its next own message in send order is %s",
					node, h.msgName(e.Msg), want))
			}
			c.nextOwn[node][s.Incarnation] = k + 1
		}
	}
	if nc.inEpoch {
		c.gap(h, node, nc, e)
		nc.epochMsgs = append(nc.epochMsgs, e.Msg)
	}
	if s.Guarantee == srp.Safe && nc.conf != nil {
		for _, m := range nc.conf.Members {
			if rs := h.ReceivedStep(m, e.Msg); rs == 0 || rs > e.Step {
				c.report(h.viol(InvSafeDelivery, e, "n%d delivered SAFE %s in %s ring %s %s before member n%d had received it",
					node, h.msgName(e.Msg), nc.conf.Kind, ringStr(nc.conf.RingID), fmtIDs(nc.conf.Members), m))
				break
			}
		}
	}
}

// config checks configuration agreement (every member of a regular configuration
// installs the same members for its ring id and is among them; its representative is the
// lowest member; a transitional configuration is a subset of the regular configurations
// around it) and virtual synchrony (nodes that move together from C to C′ delivered the
// same set of messages in C).
func (c *checker) config(h *History, node srp.NodeID, nc *nodeCheck, e Entry) {
	conf := e.Config
	k := configKey{kind: conf.Kind, ring: conf.RingID}
	if conf.Kind == srp.Transitional {
		k.from = nc.lastRegular
	}
	if nc.inEpoch {
		set := slices.Clone(nc.epochMsgs)
		slices.Sort(set)
		ek := [2]configKey{nc.epochKey, k}
		if r, ok := c.epochs[ek]; !ok {
			c.epochs[ek] = epochRef{node, set}
		} else if !slices.Equal(r.set, set) {
			c.report(h.viol(InvVirtualSynchron, e,
				"n%d and n%d both moved from %s ring %s to %s ring %s but delivered different messages there: n%d %d, n%d %d (first difference %s)",
				r.node, node, nc.epochKey.kind, ringStr(nc.epochKey.ring), k.kind, ringStr(k.ring),
				r.node, len(r.set), node, len(set), h.msgName(firstDiff(r.set, set))))
		}
	}
	nc.epochKey, nc.inEpoch, nc.epochMsgs = k, true, nc.epochMsgs[:0]
	nc.conf = conf

	// A node's first transitional configuration since it started is empty: it had no old
	// ring (corosync starts with an empty member list; its start-up logs show no TRANS
	// line). Every other configuration holds the node itself.
	firstTrans := conf.Kind == srp.Transitional && nc.prevRegular == nil && len(conf.Members) == 0
	if !firstTrans && (!slices.IsSorted(conf.Members) || !slices.Contains(conf.Members, node)) {
		c.report(h.viol(InvConfigAgreement, e, "n%d installed %s ring %s with members %v: not sorted or without itself",
			node, conf.Kind, ringStr(conf.RingID), conf.Members))
		return
	}
	if conf.Kind == srp.Transitional {
		if nc.prevRegular != nil && !subset(conf.Members, nc.prevRegular.Members) {
			c.report(h.viol(InvConfigAgreement, e, "n%d: transitional %v of ring %s is not a subset of the regular configuration %v it leaves",
				node, conf.Members, ringStr(conf.RingID), nc.prevRegular.Members))
		}
		nc.trans = conf
		return
	}
	nc.lastRegular = conf.RingID
	if conf.RingID.Rep != conf.Members[0] {
		c.report(h.viol(InvConfigAgreement, e, "n%d: ring %s has representative n%d but its lowest member is n%d",
			node, ringStr(conf.RingID), conf.RingID.Rep, conf.Members[0]))
	}
	if r, ok := c.regular[conf.RingID]; ok && !slices.Equal(r.members, conf.Members) {
		c.report(h.viol(InvConfigAgreement, e, "ring %s: n%d installed members %v, n%d installed %v",
			ringStr(conf.RingID), r.node, r.members, node, conf.Members))
	} else if !ok {
		c.regular[conf.RingID] = regRef{node, conf.Members}
	}
	if nc.trans != nil && !subset(nc.trans.Members, conf.Members) {
		c.report(h.viol(InvConfigAgreement, e, "n%d: transitional %v is not a subset of the regular configuration %v that follows it",
			node, nc.trans.Members, conf.Members))
	}
	nc.trans = nil
	nc.prevRegular = conf
}

// gap checks that node's deliveries in its current configuration follow the sequence the
// configuration's other members delivered there, without a hole: srp delivers a regular
// configuration's messages in seq order with none skipped, and a transitional configuration's
// (recovered old-ring messages) likewise among the members that share it. The virtual
// synchrony check only compares sets once a configuration ends; this one catches a member
// that skipped a message while the configuration carries on (the lab stream of issue 12: n1
// delivered its own message, n2 and n3 skipped it and delivered n1's next one).
func (c *checker) gap(h *History, node srp.NodeID, nc *nodeCheck, e Entry) {
	w := c.within[nc.epochKey]
	if w == nil {
		w = &withinRef{nodes: map[int][]srp.NodeID{}}
		c.within[nc.epochKey] = w
	}
	i := len(nc.epochMsgs)
	if i < len(w.seq) && w.seq[i] != e.Msg {
		skipped := w.seq[i]
		by := w.nodes[skipped]
		inv := InvDeliveryGap
		if len(by) == 1 && by[0] == h.Sent[skipped].ID.Sender {
			inv = InvSenderAlone
		}
		c.report(h.viol(inv, e, "n%d delivered %s as message %d of %s ring %s, where %s delivered %s: n%d skipped it",
			node, h.msgName(e.Msg), i+1, nc.epochKey.kind, ringStr(nc.epochKey.ring), fmtIDs(by), h.msgName(skipped), node))
		return
	}
	if i == len(w.seq) {
		w.seq = append(w.seq, e.Msg)
	}
	w.nodes[e.Msg] = append(w.nodes[e.Msg], node)
}

func (h *History) viol(inv string, e Entry, format string, args ...any) *Violation {
	return &Violation{Invariant: inv, Step: e.Step, At: e.At, Detail: fmt.Sprintf(format, args...)}
}

func (h *History) msgName(i int) string {
	if i < 0 || i >= len(h.Sent) {
		return "unknown message"
	}
	id := h.Sent[i].ID
	return fmt.Sprintf("n%d#%d", id.Sender, id.Counter)
}

func gname(g srp.Guarantee) string {
	if g == srp.Safe {
		return "SAFE"
	}
	return "AGREED"
}

func firstDiff(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			return b[i]
		case i >= len(b):
			return a[i]
		case a[i] != b[i]:
			return min(a[i], b[i])
		}
	}
	return -1
}

func ringStr(r srp.RingID) string { return fmt.Sprintf("%d/%d", r.Rep, r.Seq) }

func subset(sub, of []srp.NodeID) bool {
	for _, x := range sub {
		if !slices.Contains(of, x) {
			return false
		}
	}
	return true
}
