package totem

import (
	"sync"

	"github.com/gototem/gototem/stack"
)

// dispatcher hands events to the application on a goroutine of its own, in total order. The
// protocol stack never waits for application code: a callback that blocks (or calls Send and
// waits for room) delays later callbacks, never the token. The queue is unbounded because the
// protocol must not stall on a slow reader; its length is reported in Status so an operator can
// see a handler falling behind.
type dispatcher struct {
	n        *Node
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []stack.Event
	spare    []stack.Event // the array run delivered from last, reused for the next queue
	handlers map[string]GroupHandler
	closed   bool
	maxQueue int
}

func newDispatcher(n *Node) *dispatcher {
	d := &dispatcher{n: n, handlers: map[string]GroupHandler{}}
	d.cond = sync.NewCond(&d.mu)
	return d
}

func (d *dispatcher) setHandler(group string, h GroupHandler) {
	d.mu.Lock()
	d.handlers[group] = h
	d.mu.Unlock()
}

// push queues one flush's events with one lock and one wake-up.
func (d *dispatcher) push(evs []stack.Event) {
	d.mu.Lock()
	d.queue = append(d.queue, evs...)
	d.maxQueue = max(d.maxQueue, len(d.queue))
	d.mu.Unlock()
	d.cond.Signal()
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
	return len(d.queue), d.maxQueue
}

// run delivers until closed and drained.
func (d *dispatcher) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.cond.Wait()
		}
		if len(d.queue) == 0 && d.closed {
			d.mu.Unlock()
			return
		}
		batch := d.queue
		d.queue, d.spare = d.spare[:0], nil
		d.mu.Unlock()
		for _, ev := range batch {
			d.deliver(ev)
		}
		clear(batch)
		d.mu.Lock()
		d.spare = batch
		d.mu.Unlock()
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
		if o.OnMembership != nil {
			c := ev.Membership
			o.OnMembership(Membership{Kind: c.Kind, RingID: c.RingID, Members: c.Members, Joined: c.Joined, Left: c.Left})
		}
	case ev.Quorum != nil:
		if o.OnQuorum != nil {
			o.OnQuorum(*ev.Quorum)
		}
	case ev.Group != nil:
		if h := d.handler(ev.Group.Group); h != nil {
			h.ConfigChange(*ev.Group)
		}
	case ev.Message != nil:
		if h := d.handler(ev.Message.Group); h != nil {
			h.Deliver(*ev.Message)
		}
	}
}
