package srp

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// holds reports whether node n has (or already released) seq of its current ring.
func holds(n *tnode, ring RingID, seq uint32) bool {
	p := n.p
	if p.RingID() != ring {
		return true // moved on: not a member of that ring's regular configuration any more
	}
	return p.regular.has(seq) || seqLTE(seq, p.lastReleased)
}

// SAFE (the Totem paper's safe delivery, which corosync carries but ignores): a SAFE
// message is delivered in the regular configuration only once every member holds it. The
// same check made for AGREED messages under loss must fail sometimes, which shows the
// check can tell the difference.
func TestSafeDeliveredOnlyWhenEveryMemberHasIt(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	c := newCluster(t, 5)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	var safeEarly, agreedEarly, safeDelivered int
	for _, id := range c.ids {
		c.nodes[id].onDeliv = func(n *tnode, m *Message) {
			if n.p.State() != Operational || m.RingID != n.p.RingID() {
				return
			}
			all := true
			for _, mid := range n.p.Members() {
				if !holds(c.nodes[mid], m.RingID, m.Seq) {
					all = false
				}
			}
			if m.Guarantee == Safe {
				safeDelivered++
				if !all {
					safeEarly++
				}
			} else if !all {
				agreedEarly++
			}
		}
	}
	c.dropFn = func(from, to NodeID, data []byte) bool {
		return from != to && data[3] == byte(TypeMcast) && rng.IntN(10) == 0
	}
	tr := newTraffic(c, 2*time.Millisecond)
	tr.g = func(id NodeID, k int) Guarantee { return Guarantee((k / 3) % 2) }
	tr.run(3 * time.Second)
	c.dropFn = nil
	c.run(3 * time.Second)
	if safeEarly != 0 {
		t.Fatalf("seed %d: %d SAFE deliveries happened before every member held the message", seed, safeEarly)
	}
	if agreedEarly == 0 {
		t.Fatalf("seed %d: no AGREED message was ever delivered ahead of a member; the check proves nothing", seed)
	}
	if safeDelivered == 0 {
		t.Fatalf("seed %d: no SAFE message delivered", seed)
	}
	t.Logf("%d SAFE deliveries all waited; %d AGREED deliveries went ahead of some member", safeDelivered, agreedEarly)
	evsCheck{t, c}.all()
}

// A SAFE message waits for the token aru to pass it on two visits, so it is delivered later
// than an AGREED one would be; an AGREED message queued after it waits behind it (total
// order is never traded for latency).
func TestSafeBlocksLaterAgreed(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	c.run(time.Second)
	start := c.now
	c.send(1, "a0", Agreed)
	c.runUntil(5*time.Second, func() bool { return slices.Contains(c.nodes[2].messages(), "a0") })
	agreedLatency := c.now - start
	start = c.now
	c.send(1, "s1", Safe)
	c.send(1, "a2", Agreed)
	c.runUntil(5*time.Second, func() bool { return slices.Contains(c.nodes[2].messages(), "s1") })
	safeLatency := c.now - start
	c.run(2 * time.Second)
	for _, id := range c.ids {
		if got := c.nodes[id].messages(); !slices.Equal(got, []string{"a0", "s1", "a2"}) {
			t.Fatalf("node %d delivered %v", id, got)
		}
	}
	if safeLatency <= agreedLatency {
		t.Fatalf("SAFE latency %v not above AGREED latency %v", safeLatency, agreedLatency)
	}
	t.Logf("AGREED delivered after %v, SAFE after %v", agreedLatency, safeLatency)
}

// EVS §7.2: a SAFE message that was not known to be held by every member when the ring
// broke is delivered in the transitional configuration, after it — never in the old
// regular configuration — and the AGREED message behind it follows it there.
func TestUnconfirmedSafeDeliveredInTransitional(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	c.run(time.Second)
	// Node 3 hears no MCAST at all: it can never confirm anything sent from now on.
	c.dropFn = func(from, to NodeID, data []byte) bool { return to == 3 && data[3] == byte(TypeMcast) }
	c.send(1, "s", Safe)
	c.send(1, "a", Agreed)
	c.run(300 * time.Millisecond)
	for _, id := range []NodeID{1, 2} {
		if got := c.nodes[id].messages(); len(got) != 0 {
			t.Fatalf("node %d delivered %v while node 3 lacked them", id, got)
		}
	}
	c.crash(3)
	c.mustConverge(20*time.Second, 1, 2)
	for _, id := range []NodeID{1, 2} {
		var seq []string
		for _, e := range c.nodes[id].events {
			seq = append(seq, e.String())
		}
		want := []string{"transitional[1 2]", "1:s", "1:a", "regular[1 2]"}
		if len(seq) < len(want) || !slices.Equal(seq[len(seq)-len(want):], want) {
			t.Fatalf("node %d: deliveries %v, want them to end with %v", id, seq, want)
		}
	}
}
