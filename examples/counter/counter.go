// Package counter is a replicated counter written against totem's application model: a
// totem.GroupHandler plus the node's membership callback. The same Counter runs unchanged on
// real nodes (totem.Node) and on simulated ones (sim.AppNode); its tests run it both ways
// and check the same invariant (Checker) on both.
//
// The point of the example is what a node may apply. Every node receives every "add"
// operation in the ring's total order, but a node applies one only when it was delivered in
// a regular configuration whose membership is a majority of the cluster:
//
//   - Not in a transitional configuration. The operations delivered there were sent in the
//     old ring and are delivered only to the members that move on together; the other side
//     of a partition delivers a different set (corosync, and gototem with it, delivers the
//     old ring's remaining messages after the transitional configuration only from senders
//     that moved on with the receiver). A rule that judges "majority" on the last regular
//     configuration lets a minority apply those operations while the majority applies
//     others after the same point: two histories.
//   - Not in a minority configuration: the majority may be applying at the same time.
//   - In a majority regular configuration: two majorities intersect and a node is in one
//     ring at a time, so at most one such configuration delivers at a time, and its members
//     deliver the same operations in the same order from its start up to where each leaves
//     it: one history.
//
// The membership callback and the group's messages come in one total order (on a real node
// OnMembership runs on the dispatch goroutine with the handlers), so "the configuration
// delivering now" is exact, not a guess.
//
// What the rule does not give: a node that leaves a configuration early misses its last
// operations, and the minority side misses what the majority applied. A real service
// transfers its state to the Joined members of the next regular configuration, as corosync's
// services synchronize after every membership change; this example does not, and its
// invariant allows such holes but never a fork.
package counter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gototem/gototem/totem"
)

// opID names one operation: its sender, the sending Counter (a restarted node's new Counter is
// another one) and its sequence number there.
type opID struct {
	Sender totem.Process
	Origin uint64
	Seq    uint64
}

func (o opID) String() string { return fmt.Sprintf("%v/%d#%d", o.Sender, o.Origin, o.Seq) }

// origins numbers the Counters of this process: with the sender's node and pid, it tells a
// restarted node's operations from its previous incarnation's.
var origins atomic.Uint64

// appliedOp is one operation a counter applied, with the configuration it was delivered in and
// the operation this counter applied before it there.
type appliedOp struct {
	Ring totem.RingID
	op   opID
	// After is the operation applied before it in Ring; with AfterStart the operation is the
	// first one of Ring this counter applied and the counter was in the group when Ring
	// began, so it is the first operation of Ring; with neither, the counter joined the group
	// during Ring and its first operation there has no known predecessor.
	After      opID
	AfterStart bool
}

// Counter is one node's replica. Its methods are safe for concurrent use.
type Counter struct {
	mu      sync.Mutex
	cluster int
	send    func(payload []byte, gu totem.Guarantee) error
	origin  uint64
	seq     uint64

	ring      totem.RingID
	majority  bool  // the configuration delivering now is regular and a majority
	inGroup   bool  // this process's own join confchg was delivered
	fromStart bool  // in the group when the current regular configuration began
	last      *opID // the last operation applied in the current configuration

	value   int64
	applied []appliedOp

	// lastRegularRule is the old, unsound rule (majority judged on the last regular
	// configuration, transitional deliveries applied); tests use it to show the checker
	// catching it.
	lastRegularRule bool
	lastRegularBig  bool
}

// New returns a counter for a cluster of the given number of nodes (the majority is counted
// against it).
func New(cluster int) *Counter { return &Counter{cluster: cluster, origin: origins.Add(1)} }

// Attach gives the counter its group's send call: (*totem.Group).TrySend on a real node,
// (*sim.Group).TrySend in the simulator.
func (c *Counter) Attach(send func(payload []byte, gu totem.Guarantee) error) {
	c.mu.Lock()
	c.send = send
	c.mu.Unlock()
}

// opSize is an operation's size on the wire: origin, sequence number, amount.
const opSize = 24

// ErrNotAttached is returned by Add before Attach.
var ErrNotAttached = errors.New("counter: not attached to a group")

// Add multicasts an "add n" operation; every replica applies it if and where the rule
// allows. It returns the group's error (totem.ErrBusy: try again later).
func (c *Counter) Add(n int64) error {
	c.mu.Lock()
	send := c.send
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	if send == nil {
		return ErrNotAttached
	}
	var b [opSize]byte
	binary.LittleEndian.PutUint64(b[0:], c.origin)
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(n))
	return send(b[:], totem.Agreed)
}

// OnMembership is the node's membership callback (totem.Options.OnMembership,
// sim.AppNode.OnMembership): it decides what the messages that follow may do.
func (c *Counter) OnMembership(m totem.Membership) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = nil
	if m.Kind == totem.Regular {
		c.ring = m.RingID
		c.fromStart = c.inGroup
		c.lastRegularBig = 2*len(m.Members) > c.cluster
	}
	c.majority = m.Kind == totem.Regular && 2*len(m.Members) > c.cluster
	if c.lastRegularRule {
		// The old rule: the last regular configuration's size decides, in its transitional
		// configuration too; operations delivered there count as the regular one's.
		c.majority = c.lastRegularBig
		if m.Kind == totem.Transitional {
			c.last = c.lastApplied()
		}
	}
}

func (c *Counter) lastApplied() *opID {
	if k := len(c.applied); k > 0 && c.applied[k-1].Ring == c.ring {
		id := c.applied[k-1].op
		return &id
	}
	return nil
}

// ConfigChange is the group's membership change: the first one a handler gets is its own
// join.
func (c *Counter) ConfigChange(totem.GroupChange) {
	c.mu.Lock()
	c.inGroup = true
	c.mu.Unlock()
}

// Deliver is one operation in total order: applied only in a majority regular
// configuration.
func (c *Counter) Deliver(m totem.Message) {
	if len(m.Payload) != opSize {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.majority {
		return // delivered, not applied: see the package doc
	}
	id := opID{Sender: m.Sender, Origin: binary.LittleEndian.Uint64(m.Payload[0:]), Seq: binary.LittleEndian.Uint64(m.Payload[8:])}
	a := appliedOp{Ring: c.ring, op: id}
	if c.last != nil {
		a.After = *c.last
	} else {
		a.AfterStart = c.fromStart
	}
	c.value += int64(binary.LittleEndian.Uint64(m.Payload[16:]))
	c.applied = append(c.applied, a)
	c.last = &id
}

// Value returns the counter's value and how many operations it applied.
func (c *Counter) Value() (value int64, applied int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.value, len(c.applied)
}

// Checker checks the counters' invariant, one history: within a configuration, every
// operation applied anywhere has one successor and one predecessor (every replica that
// applied two operations in a row there applied the same two), an operation is applied in one
// configuration only, and by a replica at most once. It reads only what each counter
// applied since the last Check, so checking after every step of a simulation stays cheap.
type Checker struct {
	next  map[point]opID
	prev  map[ringOp]point
	ring  map[opID]totem.RingID
	seen  map[*Counter]int
	twice map[*Counter]map[opID]bool
}

type point struct {
	ring  totem.RingID
	op    opID
	start bool
}

type ringOp struct {
	ring totem.RingID
	op   opID
}

// NewChecker returns an empty checker.
func NewChecker() *Checker {
	return &Checker{next: map[point]opID{}, prev: map[ringOp]point{}, ring: map[opID]totem.RingID{},
		seen: map[*Counter]int{}, twice: map[*Counter]map[opID]bool{}}
}

// Check reads what the counters applied since the last call and returns the first breach
// of the invariant. A counter replaced by a new one (a restarted node) is simply another
// replica.
func (k *Checker) Check(counters ...*Counter) error {
	for _, c := range counters {
		if c == nil {
			continue
		}
		c.mu.Lock()
		fresh := c.applied[k.seen[c]:]
		k.seen[c] = len(c.applied)
		c.mu.Unlock()
		if k.twice[c] == nil {
			k.twice[c] = map[opID]bool{}
		}
		for _, a := range fresh {
			if k.twice[c][a.op] {
				return fmt.Errorf("a replica applied %v twice", a.op)
			}
			k.twice[c][a.op] = true
			if r, ok := k.ring[a.op]; ok && r != a.Ring {
				return fmt.Errorf("%v applied in ring %v by one replica and in ring %v by another", a.op, r, a.Ring)
			}
			k.ring[a.op] = a.Ring
			if !a.AfterStart && a.After == (opID{}) {
				continue
			}
			p := point{ring: a.Ring, op: a.After, start: a.AfterStart}
			if x, ok := k.next[p]; ok && x != a.op {
				return fmt.Errorf("two histories in ring %v: after %s one replica applied %v, another %v", a.Ring, p, x, a.op)
			}
			k.next[p] = a.op
			ro := ringOp{ring: a.Ring, op: a.op}
			if q, ok := k.prev[ro]; ok && q != p {
				return fmt.Errorf("two histories in ring %v: %v applied after %s by one replica, after %s by another", a.Ring, a.op, q, p)
			}
			k.prev[ro] = p
		}
	}
	return nil
}

func (p point) String() string {
	if p.start {
		return "its start"
	}
	return p.op.String()
}
