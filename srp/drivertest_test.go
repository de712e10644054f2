package srp

import (
	"container/heap"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// A small deterministic driver for the state-machine tests: virtual time, a FIFO of
// datagrams with a fixed one-way latency, ToAll looped back to every member including the
// sender (as corosync's transports do), and links that can be cut in either direction.

const testLatency = 200 * time.Microsecond

type packet struct {
	at       time.Duration
	order    uint64
	from, to NodeID
	data     []byte
}

type packetHeap []packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].order < h[j].order
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// SRP_TRACE=1 logs one line per datagram and per state change (go test -v).
var traceOn = os.Getenv("SRP_TRACE") != ""

// SRP_PROGRESS=1 logs progress of long scenario tests.
var progressOn = os.Getenv("SRP_PROGRESS") != ""

func describeDatagram(d []byte) string {
	h, _, err := PeekHeader(d)
	if err != nil {
		return "undecodable: " + err.Error()
	}
	switch h.Type {
	case TypeORFToken:
		var t ORFToken
		if t.Decode(d) == nil {
			return fmt.Sprintf("orf ring=%v seq=%d token_seq=%d aru=%d/%d fcc=%d backlog=%d rtr=%d retrans_flg=%d",
				t.RingID, t.Seq, t.TokenSeq, t.ARU, t.ARUAddr, t.FCC, t.Backlog, len(t.RTRList), t.RetransFlg)
		}
	case TypeMcast:
		var m Mcast
		if m.Decode(d) == nil {
			return fmt.Sprintf("mcast ring=%v seq=%d from=%d encap=%d g=%d len=%d", m.RingID, m.Seq, m.SystemFrom,
				m.Header.Encapsulated, m.Guarantee, len(m.Payload))
		}
	case TypeJoin:
		var j Join
		if j.Decode(d) == nil {
			kind := "join"
			if j.IsLeave() {
				kind = "LEAVE"
			}
			return fmt.Sprintf("%s from=%d ring_seq=%d proc=%v failed=%v", kind, j.SystemFrom, j.RingSeq, j.ProcList, j.FailedList)
		}
	case TypeCommitToken:
		var ct CommitToken
		if ct.Decode(d) == nil {
			return fmt.Sprintf("commit ring=%v memb_index=%d addr=%v", ct.RingID, ct.MembIndex, ct.Addr)
		}
	}
	return h.Type.String()
}

// event is one delivery as a node saw it, copied out of the Processor's buffers.
type event struct {
	config *Configuration
	msg    *Message
	at     time.Duration
}

func (e event) String() string {
	if e.config != nil {
		return fmt.Sprintf("%s%v", e.config.Kind, e.config.Members)
	}
	return fmt.Sprintf("%d:%s", e.msg.Sender, e.msg.Payload)
}

type tnode struct {
	id      NodeID
	p       *Processor
	up      bool
	next    time.Duration
	events  []event
	store   *MemoryRingIDStore
	onDeliv func(n *tnode, m *Message)
}

type cluster struct {
	t       testing.TB
	cfg     func(id NodeID) Config
	now     time.Duration
	nodes   map[NodeID]*tnode
	ids     []NodeID
	q       packetHeap
	order   uint64
	cut     map[[2]NodeID]bool
	latency time.Duration
	// dropFn, when set, may drop any datagram (for loss tests); deterministic by design.
	dropFn func(from, to NodeID, data []byte) bool
	sent   uint64
	// stuckAt/stuckSteps detect a livelock: inputs that never let virtual time advance.
	ticks      uint64
	stuckAt    time.Duration
	stuckSteps int
	// sentLimit, when set, fails the test once that many datagrams were sent (a storm).
	sentLimit uint64
	// jitter, when set, adds a per-datagram delay, so datagrams can overtake each other.
	jitter func() time.Duration
	// tolerant: count decode errors instead of failing (hostile-input tests).
	tolerant     bool
	decodeErrors int
}

// newCluster makes nodes 1..n with the corosync defaults for n nodes; they are not started.
func newCluster(t testing.TB, n int) *cluster {
	c := &cluster{t: t, nodes: map[NodeID]*tnode{}, cut: map[[2]NodeID]bool{}, latency: testLatency}
	c.cfg = func(id NodeID) Config { return DefaultConfig(id, n) }
	for i := 1; i <= n; i++ {
		c.add(NodeID(i))
	}
	return c
}

func (c *cluster) add(id NodeID) *tnode {
	st := &MemoryRingIDStore{}
	cfg := c.cfg(id)
	cfg.RingIDStore = st
	p, err := NewProcessor(cfg)
	if err != nil {
		c.t.Fatalf("NewProcessor(%d): %v", id, err)
	}
	n := &tnode{id: id, p: p, store: st}
	c.nodes[id] = n
	c.ids = append(c.ids, id)
	slices.Sort(c.ids)
	return n
}

func (c *cluster) start(ids ...NodeID) {
	for _, id := range ids {
		n := c.nodes[id]
		n.up = true
		n.p.Start(c.now)
		c.collect(n)
	}
}

func (c *cluster) startAll() { c.start(c.ids...) }

// crash stops a node without a LEAVE: it neither sends nor receives from now on.
func (c *cluster) crash(id NodeID) { c.nodes[id].up = false }

// restart gives a crashed node a fresh Processor over the same ring-id store.
func (c *cluster) restart(id NodeID) {
	n := c.nodes[id]
	cfg := c.cfg(id)
	cfg.RingIDStore = n.store
	p, err := NewProcessor(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	n.p = p
	c.start(id)
}

func (c *cluster) leave(id NodeID) {
	n := c.nodes[id]
	n.p.Leave(c.now)
	c.collect(n)
	n.up = false
}

// partition cuts every link between the groups (both directions).
func (c *cluster) partition(groups ...[]NodeID) {
	for i, a := range groups {
		for j, b := range groups {
			if i == j {
				continue
			}
			for _, x := range a {
				for _, y := range b {
					c.cut[[2]NodeID{x, y}] = true
				}
			}
		}
	}
}

func (c *cluster) heal() { c.cut = map[[2]NodeID]bool{} }

func (c *cluster) enqueue(from, to NodeID, data []byte) {
	if c.cut[[2]NodeID{from, to}] {
		return
	}
	if c.dropFn != nil && c.dropFn(from, to, data) {
		return
	}
	c.order++
	at := c.now + c.latency
	if c.jitter != nil {
		at += c.jitter()
	}
	heap.Push(&c.q, packet{at: at, order: c.order, from: from, to: to, data: data})
}

// collect drains a node's Ready: transmit, record deliveries, remember the wake-up.
func (c *cluster) collect(n *tnode) {
	rd := n.p.Ready()
	if len(rd.Messages) > 10000 {
		kinds := map[MessageType]int{}
		for _, o := range rd.Messages {
			kinds[o.Type]++
		}
		c.t.Fatalf("t=%v: node %d emitted %d datagrams in one Ready %v\n%s", c.now, n.id, len(rd.Messages), kinds, c.describe())
	}
	if c.sent > c.sentLimit && c.sentLimit > 0 {
		c.t.Fatalf("t=%v: more than %d datagrams sent: a storm\n%s", c.now, c.sentLimit, c.describe())
	}
	for _, o := range rd.Messages {
		data := slices.Clone(o.Data)
		c.sent++
		if o.Dest == ToAll {
			for _, id := range c.ids {
				c.enqueue(n.id, id, data)
			}
		} else {
			c.enqueue(n.id, o.To, data)
		}
	}
	for _, d := range rd.Deliveries {
		e := event{at: c.now}
		if d.Config != nil {
			cc := *d.Config
			e.config = &cc
		} else {
			m := *d.Message
			m.Payload = slices.Clone(m.Payload)
			e.msg = &m
			if n.onDeliv != nil {
				n.onDeliv(n, &m)
			}
		}
		n.events = append(n.events, e)
	}
	n.next = rd.NextTick
	n.p.Advance()
}

// step runs the earliest pending input (a datagram or a timer) if it is due by limit.
func (c *cluster) step(limit time.Duration) bool {
	if c.now != c.stuckAt {
		c.stuckAt, c.stuckSteps = c.now, 0
	} else if c.stuckSteps++; c.stuckSteps > 1_000_000 {
		c.t.Fatalf("t=%v: a million inputs without time advancing (next packet %v, queue %d)\n%s",
			c.now, c.q[0].at, len(c.q), c.describe())
	}
	var tn *tnode
	at := time.Duration(-1)
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.up && n.next > 0 && (at < 0 || n.next < at) {
			at, tn = n.next, n
		}
	}
	if len(c.q) > 0 && (at < 0 || c.q[0].at <= at) {
		pk := heap.Pop(&c.q).(packet)
		if pk.at > limit {
			heap.Push(&c.q, pk)
			return false
		}
		c.now = max(c.now, pk.at)
		n := c.nodes[pk.to]
		if n == nil || !n.up {
			return true
		}
		if traceOn {
			c.t.Logf("t=%-12v %d→%d %s", c.now, pk.from, pk.to, describeDatagram(pk.data))
		}
		before := n.p.State()
		if err := n.p.Step(c.now, pk.data); err != nil {
			c.decodeErrors++
			if c.tolerant {
				c.collect(n)
				return true
			}
			c.t.Fatalf("t=%v node %d: Step: %v", c.now, n.id, err)
		}
		if traceOn && n.p.State() != before {
			st := n.p.Status()
			c.t.Logf("t=%-12v node %d %s → %s ring=%v members=%v", c.now, n.id, before, st.State, st.RingID, st.Members)
		}
		c.collect(n)
		return true
	}
	if tn == nil || at > limit {
		return false
	}
	c.now = max(c.now, at)
	c.ticks++
	if progressOn && c.ticks%1_000_000 == 0 {
		c.t.Logf("t=%v tick %d of node %d, timers %+v", c.now, c.ticks, tn.id, tn.p.timers)
	}
	tn.p.Tick(c.now)
	c.collect(tn)
	return true
}

// run advances virtual time by d.
func (c *cluster) run(d time.Duration) {
	limit := c.now + d
	for c.step(limit) {
	}
	c.now = limit
}

// runUntil advances until cond holds (checked after every input) or max elapses; it
// returns the virtual time it took.
func (c *cluster) runUntil(max time.Duration, cond func() bool) (time.Duration, bool) {
	start := c.now
	limit := c.now + max
	for !cond() {
		if !c.step(limit) {
			c.now = limit
			return c.now - start, cond()
		}
	}
	return c.now - start, true
}

// converged: every listed node is OPERATIONAL on one ring whose members are exactly ids.
func (c *cluster) converged(ids ...NodeID) bool {
	want := slices.Clone(ids)
	slices.Sort(want)
	var ring RingID
	for i, id := range ids {
		p := c.nodes[id].p
		if p.State() != Operational || !slices.Equal(p.Members(), want) {
			return false
		}
		if i == 0 {
			ring = p.RingID()
		} else if p.RingID() != ring {
			return false
		}
	}
	return true
}

func (c *cluster) mustConverge(max time.Duration, ids ...NodeID) time.Duration {
	c.t.Helper()
	took, ok := c.runUntil(max, func() bool { return c.converged(ids...) })
	if !ok {
		c.t.Fatalf("t=%v: nodes %v did not converge within %v:\n%s", c.now, ids, max, c.describe())
	}
	return took
}

func (c *cluster) describe() string {
	s := ""
	for _, id := range c.ids {
		n := c.nodes[id]
		p := n.p
		s += fmt.Sprintf("  node %d up=%v %s ring=%v members=%v proc=%v failed=%v aru=%d high=%d delivered=%d\n",
			id, n.up, p.State(), p.RingID(), p.Members(), p.procList, p.failedList, p.myAru, p.myHighSeqReceived, p.myHighDelivered)
	}
	return s
}

// send queues payload at node id and collects the resulting Ready.
func (c *cluster) send(id NodeID, payload string, g Guarantee) error {
	n := c.nodes[id]
	err := n.p.Send(c.now, []byte(payload), g)
	c.collect(n)
	return err
}

// messages returns the payloads a node delivered, in order.
func (n *tnode) messages() []string {
	var r []string
	for _, e := range n.events {
		if e.msg != nil {
			r = append(r, string(e.msg.Payload))
		}
	}
	return r
}

func (n *tnode) configs() []*Configuration {
	var r []*Configuration
	for _, e := range n.events {
		if e.config != nil {
			r = append(r, e.config)
		}
	}
	return r
}
