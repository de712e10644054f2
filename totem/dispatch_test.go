package totem

import (
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/stack"
)

// TestDispatcherDeferredWake pins the receive path's deferred wake-up: events pushed with
// later set are not handed to the application until wake (the receive goroutine found its
// socket empty), unless deferMax of them are waiting; a push without later, and close,
// wake the dispatcher at once.
func TestDispatcherDeferredWake(t *testing.T) {
	d := newDispatcher(&Node{})
	var mu sync.Mutex
	got := 0
	h := &countHandler{fn: func() { mu.Lock(); got++; mu.Unlock() }}
	d.setHandler("g", h)
	var wg sync.WaitGroup
	wg.Add(1)
	go d.run(&wg)
	delivered := func() int { mu.Lock(); defer mu.Unlock(); return got }
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for delivered() != want {
			if time.Now().After(deadline) {
				t.Fatalf("delivered %d, want %d", delivered(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	ev := func(n int) []stack.Event {
		var evs []stack.Event
		for range n {
			evs = append(evs, stack.Event{Message: &services.GroupMessage{Group: "g"}})
		}
		return evs
	}

	// Deferral only holds back a dispatcher that waits: let it deliver something first and
	// go back to waiting.
	d.push(ev(1), false, nil)
	waitFor(1)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		d.mu.Lock()
		w := d.waiting
		d.mu.Unlock()
		if w {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dispatcher never went back to waiting")
		}
	}

	d.push(ev(3), true, nil)
	time.Sleep(20 * time.Millisecond) // a wrongly woken dispatcher would deliver meanwhile
	if n := delivered(); n != 1 {
		t.Fatalf("a deferred push was delivered (%d) before wake", n-1)
	}
	d.wake()
	waitFor(4)

	d.push(ev(deferMax), true, nil) // too many to hold back
	waitFor(4 + deferMax)

	d.push(ev(1), true, nil)
	d.push(ev(1), false, nil) // an API call's flush wakes at once, for both
	waitFor(6 + deferMax)

	d.push(ev(2), true, nil)
	d.close()
	wg.Wait()
	if n := delivered(); n != 8+deferMax {
		t.Fatalf("after close delivered %d, want %d", n, 8+deferMax)
	}
}

type countHandler struct{ fn func() }

func (c *countHandler) Deliver(Message)          { c.fn() }
func (c *countHandler) ConfigChange(GroupChange) {}
