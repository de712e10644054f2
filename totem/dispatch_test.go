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

// TestDispatcherHandlerReplaced: the dispatcher remembers its last handler lookup, and a
// handler set for the group afterwards (a process group's fan-out replacing the first
// handler, procgroup.go) must receive every later message; so must a handler for another
// group in between. It fails when the remembered lookup ignores setHandler.
func TestDispatcherHandlerReplaced(t *testing.T) {
	d := newDispatcher(&Node{})
	var mu sync.Mutex
	counts := map[string]int{}
	handler := func(name string) GroupHandler {
		return &countHandler{fn: func() { mu.Lock(); counts[name]++; mu.Unlock() }}
	}
	get := func(name string) int { mu.Lock(); defer mu.Unlock(); return counts[name] }
	var wg sync.WaitGroup
	wg.Add(1)
	go d.run(&wg)
	msgs := func(group string, n int) []stack.Event {
		var evs []stack.Event
		for range n {
			evs = append(evs, stack.Event{Message: &services.GroupMessage{Group: group}})
		}
		return evs
	}
	waitFor := func(name string, want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); get(name) != want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s delivered %d, want %d", name, get(name), want)
			}
		}
	}
	d.setHandler("g", handler("first"))
	d.push(msgs("g", 3), false, nil)
	waitFor("first", 3)
	d.setHandler("g", handler("second"))
	d.push(msgs("g", 2), false, nil)
	waitFor("second", 2)
	d.setHandler("h", handler("other"))
	d.push(append(msgs("h", 1), msgs("g", 1)...), false, nil)
	waitFor("other", 1)
	waitFor("second", 3)
	d.close()
	wg.Wait()
	if n := get("first"); n != 3 {
		t.Fatalf("the replaced handler got %d messages, want 3", n)
	}
}
