package totem

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
)

// dispatcher hands events to the application on a goroutine of its own, in total order. The
// protocol stack never waits for application code: a callback that blocks (or calls Send and
// waits for room) delays later callbacks, never the token. The queue is unbounded because the
// protocol must not stall on a slow reader; its length is reported in Status so an operator can
// see a handler falling behind.
//
// A message's payload stays where the stack's CPG put it: push takes that memory over from
// the stack (Stack.TakePayloads) before the Advance that would reuse it, and hands it back
// for reuse once the batch is delivered. The handler's Payload is valid until Deliver
// returns, as corosync's deliver callback's buffer is, and a flood delivers without an
// allocation or a copy per message.
type dispatcher struct {
	n        *Node
	mu       sync.Mutex
	cond     *sync.Cond
	queue    dispatchBatch
	spare    dispatchBatch // the batch run delivered from last, reused for the next queue
	free     [][]byte      // payload memory delivered from, for the stack to reuse
	handlers map[string]GroupHandler
	// handlersGen counts setHandler calls: run's last handler lookup (lastHandler) holds
	// while it is unchanged, so a flood's messages do not each take mu and hash the group
	// name.
	handlersGen atomic.Uint64
	lastHandler handlerCache // used by the busy deliverer only
	closed      bool
	pending     bool // events queued whose wake-up waits for wake
	busy        bool // a batch is being delivered (by run or runInline); its deliverer owns lastHandler and events
	waiting     bool // run is blocked for want of events (tests wait for it)
	maxQueue    int
	events      eventLog // corosync's key log lines; used by the busy deliverer only
	// lastRegular is the last regular configuration's members, for Membership's Joined and
	// Left; used by run only.
	lastRegular []NodeID
}

// dispatchBatch is a run of queued events with the memory that holds its messages' payloads.
type dispatchBatch struct {
	items  []dispatchItem
	arenas [][]byte
}

// dispatchItem is one queued event: a message held by value (its Payload in one of the
// batch's arenas), or any other stack event.
type dispatchItem struct {
	msg   Message
	isMsg bool
	ev    stack.Event
}

// arenaKeep bounds an arena kept for reuse, and freeMax how many are kept: memory a burst
// grew past these (a handler far behind) goes back to the garbage collector.
const (
	arenaKeep = 8 << 20
	arenaMin  = 64 << 10
	freeMax   = 1024
)

func newDispatcher(n *Node) *dispatcher {
	d := &dispatcher{n: n, handlers: map[string]GroupHandler{}, events: eventLog{log: n.log}}
	d.cond = sync.NewCond(&d.mu)
	return d
}

func (d *dispatcher) setHandler(group string, h GroupHandler) {
	d.mu.Lock()
	d.handlers[group] = h
	d.handlersGen.Add(1)
	d.mu.Unlock()
}

// handlerCache is one handler lookup and the handlersGen it was made at.
type handlerCache struct {
	group string
	h     GroupHandler
	gen   uint64
	valid bool
}

// deferMax bounds how many events a receive goroutine may queue before it wakes the
// dispatcher, however busy its socket stays.
const deferMax = 256

// push queues one flush's events with one lock and one wake-up. With later set the wake-up
// waits for wake (a receive goroutine about to wait for its socket), unless deferMax events
// are waiting: the token is forwarded before the callbacks run, and a burst of batches
// costs one goroutine wake-up instead of one per batch.
//
// take, when not nil, is Stack.TakePayloads: push takes over the memory of the messages'
// payloads with it. Without it the payloads must stay valid by themselves.
func (d *dispatcher) push(evs []stack.Event, later bool, take func(spare []byte) []byte) {
	d.mu.Lock()
	q := &d.queue
	msgs := false
	for _, ev := range evs {
		if ev.Message == nil {
			q.items = append(q.items, dispatchItem{ev: ev})
			continue
		}
		q.items = append(q.items, dispatchItem{msg: message(ev.Message), isMsg: true})
		msgs = true
	}
	if msgs && take != nil {
		var spare []byte
		if k := len(d.free); k > 0 {
			spare, d.free = d.free[k-1], d.free[:k-1]
		} else {
			// A fresh arena starts at a size most flushes fit in, rather than growing
			// by doubling through the stack's appends.
			spare = make([]byte, 0, arenaMin)
		}
		q.arenas = append(q.arenas, take(spare))
	}
	d.maxQueue = max(d.maxQueue, len(q.items))
	d.pending = later && len(q.items) < deferMax
	wakeNow := !d.pending
	d.mu.Unlock()
	if wakeNow {
		d.cond.Signal()
	}
}

// wake delivers a deferred wake-up.
func (d *dispatcher) wake() {
	d.mu.Lock()
	p := d.pending
	d.pending = false
	d.mu.Unlock()
	if p {
		d.cond.Signal()
	}
}

func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cond.Signal()
}

func (d *dispatcher) backlog() (now, peak int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queue.items), d.maxQueue
}

// run delivers until closed and drained.
func (d *dispatcher) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		d.mu.Lock()
		for d.busy || len(d.queue.items) == 0 && !d.closed {
			d.waiting = !d.busy
			d.cond.Wait()
			d.waiting = false
		}
		if len(d.queue.items) == 0 { // closed and drained
			d.mu.Unlock()
			return
		}
		d.runBatch()
	}
}

// runInline delivers what is queued on the calling goroutine (Options.InlineDelivery: the
// receive loop, once its batch is processed and the node's lock released), unless a batch is
// being delivered already: then the dispatcher goroutine delivers this one after it, in order.
func (d *dispatcher) runInline() {
	d.mu.Lock()
	if d.busy || len(d.queue.items) == 0 {
		d.mu.Unlock()
		return
	}
	d.pending = false // delivered here: the receive loop's deferred wake-up has nothing to do
	d.runBatch()
}

// runBatch takes the whole queue and delivers it, one deliverer at a time (busy): d.mu held
// on entry, released on return. The dispatcher goroutine is signalled only when it has
// something to do (more queued, or closing), so an inline batch costs it no wake-up.
func (d *dispatcher) runBatch() {
	d.busy = true
	batch := d.queue
	d.queue = dispatchBatch{items: d.spare.items[:0], arenas: d.spare.arenas[:0]}
	d.spare = dispatchBatch{}
	d.mu.Unlock()
	for i := range batch.items {
		if it := &batch.items[i]; it.isMsg {
			d.deliverMessage(it.msg)
		} else {
			d.deliver(it.ev)
		}
	}
	clear(batch.items)
	d.mu.Lock()
	for _, a := range batch.arenas {
		if cap(a) <= arenaKeep && len(d.free) < freeMax {
			d.free = append(d.free, a[:0])
		}
	}
	clear(batch.arenas)
	d.spare = batch
	d.busy = false
	signal := len(d.queue.items) > 0 || d.closed
	d.mu.Unlock()
	if signal {
		d.cond.Signal()
	}
}

func (d *dispatcher) handler(group string) GroupHandler {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handlers[group]
}

func (d *dispatcher) deliver(ev stack.Event) {
	o := d.n.opts
	switch {
	case ev.Membership != nil:
		m := d.membership(ev.Membership)
		d.events.membership(m)
		if o.OnMembership != nil {
			o.OnMembership(m)
		}
	case ev.Quorum != nil:
		q := quorumState(ev.Quorum)
		d.events.quorum(q)
		if o.OnQuorum != nil {
			o.OnQuorum(q)
		}
	case ev.ExpectedVotes != nil:
		if o.OnExpectedVotes != nil {
			o.OnExpectedVotes(*ev.ExpectedVotes)
		}
	case ev.Group != nil:
		if h := d.handler(ev.Group.Group); h != nil {
			h.ConfigChange(groupChange(ev.Group))
		}
	case ev.Message != nil:
		d.deliverMessage(message(ev.Message))
	case ev.Synced != nil:
		d.events.synced()
	case ev.Fault != nil:
		d.events.fault(ev.Fault.Link, ev.Fault.Faulty, ev.Fault.Text)
	case ev.CfgKill != nil:
		d.n.log.Error(fmt.Sprintf("Killed by node %d: %s", ev.CfgKill.From, ev.CfgKill.Reason), SubsysKey, "CFG")
		if o.OnCfgKill != nil {
			o.OnCfgKill(NodeID(ev.CfgKill.From), ev.CfgKill.Reason)
		}
	case ev.ShutdownRequest != nil:
		d.n.log.Error(ev.ShutdownRequest.Reason, SubsysKey, "CMAP")
		if o.OnShutdownRequest != nil {
			o.OnShutdownRequest(ev.ShutdownRequest.Reason)
		}
	case ev.CfgReload != nil:
		var err error
		if o.OnCfgReload != nil {
			err = o.OnCfgReload(NodeID(ev.CfgReload.From))
		}
		if ev.CfgReload.Own {
			d.n.cfgReloadDone(err)
		}
	}
}

func (d *dispatcher) deliverMessage(m Message) {
	c := &d.lastHandler
	if !c.valid || c.group != m.Group || c.gen != d.handlersGen.Load() {
		d.mu.Lock()
		*c = handlerCache{group: m.Group, h: d.handlers[m.Group], gen: d.handlersGen.Load(), valid: true}
		d.mu.Unlock()
	}
	if c.h != nil {
		c.h.Deliver(m)
	}
}

// membership converts a configuration, with Joined and Left counted against the previous
// regular configuration as Membership documents (srp reports Left in the transitional
// configuration only).
func (d *dispatcher) membership(c *srp.Configuration) Membership {
	m := Membership{Kind: Regular, RingID: ringID(c.RingID), Members: nodeIDs(c.Members)}
	if c.Kind == srp.Transitional {
		m.Kind = Transitional
		m.Left = minus(d.lastRegular, m.Members)
		return m
	}
	m.Joined, m.Left = minus(m.Members, d.lastRegular), minus(d.lastRegular, m.Members)
	d.lastRegular = append(d.lastRegular[:0], m.Members...)
	return m
}

// minus is a without the members of b.
func minus(a, b []NodeID) []NodeID {
	var out []NodeID
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
