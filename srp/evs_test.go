package srp

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Checkers for the EVS properties the tests rely on (§7): one total order, no duplicates,
// the same messages between two consecutive configurations at every member that installs
// both, and old-ring messages only before the regular configuration of the new ring.

type evsCheck struct {
	t testing.TB
	c *cluster
}

func (v evsCheck) all() {
	v.t.Helper()
	v.noDuplicates()
	v.totalOrder()
	v.virtualSynchrony()
	v.deliveredInSendingRing()
}

func (v evsCheck) noDuplicates() {
	v.t.Helper()
	for _, id := range v.c.ids {
		seen := map[string]bool{}
		for _, m := range v.c.nodes[id].messages() {
			if seen[m] {
				v.t.Fatalf("node %d delivered %q twice", id, m)
			}
			seen[m] = true
		}
	}
}

// totalOrder: any two messages delivered by two nodes are delivered in the same order.
func (v evsCheck) totalOrder() {
	v.t.Helper()
	for _, a := range v.c.ids {
		idx := map[string]int{}
		for i, m := range v.c.nodes[a].messages() {
			idx[m] = i
		}
		for _, b := range v.c.ids {
			if b <= a {
				continue
			}
			last, lastMsg := -1, ""
			for _, m := range v.c.nodes[b].messages() {
				i, ok := idx[m]
				if !ok {
					continue
				}
				if i < last {
					v.t.Fatalf("order differs: node %d delivered %q before %q, node %d after", a, m, lastMsg, b)
				}
				last, lastMsg = i, m
			}
		}
	}
}

// confKey names a configuration: a transitional configuration shares the new ring's id
// with the other transitional configurations of that ring, so its members are part of it.
type confKey struct {
	kind    ConfigurationKind
	ring    RingID
	members string
}

// segments splits a node's deliveries into (configuration, messages-delivered-in-it).
func segments(n *tnode) (keys []confKey, msgs [][]string) {
	for _, e := range n.events {
		if e.config != nil {
			keys = append(keys, confKey{e.config.Kind, e.config.RingID, fmt.Sprint(e.config.Members)})
			msgs = append(msgs, nil)
			continue
		}
		if len(keys) == 0 {
			keys = append(keys, confKey{})
			msgs = append(msgs, nil)
		}
		msgs[len(msgs)-1] = append(msgs[len(msgs)-1], string(e.msg.Payload))
	}
	return keys, msgs
}

// virtualSynchrony: two nodes that install configuration C and then the same next
// configuration deliver exactly the same messages in C.
func (v evsCheck) virtualSynchrony() {
	v.t.Helper()
	type span struct {
		next confKey
		msgs []string
		node NodeID
	}
	spans := map[confKey][]span{}
	for _, id := range v.c.ids {
		keys, msgs := segments(v.c.nodes[id])
		for i := 0; i+1 < len(keys); i++ {
			if keys[i] == (confKey{}) {
				continue
			}
			spans[keys[i]] = append(spans[keys[i]], span{keys[i+1], msgs[i], id})
		}
	}
	for k, ss := range spans {
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				if ss[i].next == ss[j].next && !slices.Equal(ss[i].msgs, ss[j].msgs) {
					v.t.Fatalf("configuration %v %v → %v: node %d delivered %v, node %d delivered %v",
						k.kind, k.ring, ss[i].next.ring, ss[i].node, ss[i].msgs, ss[j].node, ss[j].msgs)
				}
			}
		}
	}
}

// deliveredInSendingRing: a message delivered in a regular configuration was sent on that
// ring; one delivered in a transitional configuration was sent on the ring before it.
func (v evsCheck) deliveredInSendingRing() {
	v.t.Helper()
	for _, id := range v.c.ids {
		var cur *Configuration
		for _, e := range v.c.nodes[id].events {
			if e.config != nil {
				cur = e.config
				continue
			}
			if cur == nil {
				v.t.Fatalf("node %d delivered %q before any configuration", id, e.msg.Payload)
			}
			if cur.Kind == Regular && e.msg.RingID != cur.RingID {
				v.t.Fatalf("node %d delivered %q (ring %v) in regular configuration of ring %v", id, e.msg.Payload, e.msg.RingID, cur.RingID)
			}
			if cur.Kind == Transitional && e.msg.RingID == cur.RingID {
				v.t.Fatalf("node %d delivered new-ring message %q in a transitional configuration", id, e.msg.Payload)
			}
		}
	}
}

// traffic sends one message from every up node every period until d has elapsed.
type traffic struct {
	c      *cluster
	count  map[NodeID]int
	period time.Duration
	g      func(id NodeID, k int) Guarantee
	sent   map[string]bool
}

func newTraffic(c *cluster, period time.Duration) *traffic {
	return &traffic{c: c, count: map[NodeID]int{}, period: period, sent: map[string]bool{},
		g: func(NodeID, int) Guarantee { return Agreed }}
}

func (tr *traffic) run(d time.Duration) {
	end := tr.c.now + d
	for tr.c.now < end {
		for _, id := range tr.c.ids {
			n := tr.c.nodes[id]
			if !n.up || !n.p.running {
				continue
			}
			k := tr.count[id]
			payload := fmt.Sprintf("n%d-%d", id, k)
			if err := tr.c.send(id, payload, tr.g(id, k)); err == nil {
				tr.count[id]++
				tr.sent[payload] = true
			}
		}
		tr.c.run(min(tr.period, end-tr.c.now))
		if progressOn && tr.c.now/(100*time.Millisecond) != (tr.c.now-tr.period)/(100*time.Millisecond) {
			tr.c.t.Logf("t=%v sent=%d queued=%d wall=%v\n%s", tr.c.now, tr.c.sent, len(tr.c.q), time.Now().Format("05.000"), tr.c.describe())
		}
	}
}

// §7.1: with lossless links every message is delivered by every member in one order.
func TestSteadyStateOrderedDelivery(t *testing.T) {
	c := newCluster(t, 5)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	tr := newTraffic(c, 2*time.Millisecond)
	tr.run(2 * time.Second)
	c.run(2 * time.Second)
	want := c.nodes[1].messages()
	if len(want) != len(tr.sent) {
		t.Fatalf("node 1 delivered %d of %d messages", len(want), len(tr.sent))
	}
	for _, id := range c.ids {
		if got := c.nodes[id].messages(); !slices.Equal(got, want) {
			t.Fatalf("node %d delivered a different sequence (%d messages)", id, len(got))
		}
	}
	evsCheck{t, c}.all()
}

// §6.2 steps 12–13: lost MCASTs are requested on the token (after miss_count_const visits)
// and retransmitted by a holder; delivery still converges to one sequence everywhere.
func TestRetransmissionRecoversLoss(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	c := newCluster(t, 5)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	c.dropFn = func(from, to NodeID, data []byte) bool {
		// Lose 10% of MCAST copies (never the sender's own loopback, which is local).
		return from != to && data[3] == byte(TypeMcast) && rng.IntN(10) == 0
	}
	tr := newTraffic(c, 2*time.Millisecond)
	tr.run(2 * time.Second)
	c.dropFn = nil
	c.run(5 * time.Second)
	if !c.converged(c.ids...) {
		t.Fatalf("seed %d: ring broke under 10%% loss:\n%s", seed, c.describe())
	}
	var rtr, retrans uint64
	for _, id := range c.ids {
		rtr += c.nodes[id].p.Counters().RetransRequested
		retrans += c.nodes[id].p.Counters().McastRetransmitted
	}
	if rtr == 0 || retrans == 0 {
		t.Fatalf("seed %d: no retransmission happened (requested %d, sent %d)", seed, rtr, retrans)
	}
	want := c.nodes[1].messages()
	if len(want) != len(tr.sent) {
		t.Fatalf("seed %d: node 1 delivered %d of %d", seed, len(want), len(tr.sent))
	}
	for _, id := range c.ids {
		if !slices.Equal(c.nodes[id].messages(), want) {
			t.Fatalf("seed %d: node %d differs", seed, id)
		}
	}
	evsCheck{t, c}.all()
}

// §6.1, §7.2: messages in flight while the membership changes — a crash, a partition and
// its healing, a restart and a LEAVE — are delivered in one total order; members that
// install the same two configurations deliver the same messages between them; old-ring
// messages recovered after a crash appear after the transitional configuration.
func TestMessagesAcrossMembershipChanges(t *testing.T) {
	for _, lossy := range []bool{false, true} {
		t.Run(fmt.Sprintf("lossy=%v", lossy), func(t *testing.T) {
			seed := testSeed(t)
			rng := rand.New(rand.NewPCG(seed, 11))
			c := newCluster(t, 5)
			if lossy {
				c.dropFn = func(from, to NodeID, data []byte) bool {
					return from != to && data[3] == byte(TypeMcast) && rng.IntN(20) == 0
				}
			}
			c.startAll()
			c.mustConverge(30*time.Second, c.ids...)
			tr := newTraffic(c, 3*time.Millisecond)
			tr.g = func(id NodeID, k int) Guarantee { return Guarantee(k % 2) }
			tr.run(500 * time.Millisecond)
			c.crash(5)
			tr.run(12 * time.Second)
			c.partition([]NodeID{1, 2}, []NodeID{3, 4})
			tr.run(12 * time.Second)
			c.heal()
			tr.run(3 * time.Second)
			c.restart(5)
			firstAfterRestart := tr.count[5] // earlier ones died with the crash
			tr.run(3 * time.Second)
			c.leave(2)
			tr.run(2 * time.Second)
			c.dropFn = nil
			c.run(15 * time.Second)
			final := []NodeID{1, 3, 4, 5}
			if !c.converged(final...) {
				t.Fatalf("seed %d: no final ring:\n%s", seed, c.describe())
			}
			evsCheck{t, c}.all()
			// Every final member delivers everything it sent while it was up.
			for _, id := range final {
				got := map[string]bool{}
				for _, m := range c.nodes[id].messages() {
					got[m] = true
				}
				from := 0
				if id == 5 {
					from = firstAfterRestart
				}
				for k := from; k < tr.count[id]; k++ {
					if p := fmt.Sprintf("n%d-%d", id, k); !got[p] {
						t.Fatalf("seed %d: node %d never delivered its own %q", seed, id, p)
					}
				}
			}
			var trans int
			for _, cf := range c.nodes[1].configs() {
				if cf.Kind == Transitional {
					trans++
				}
			}
			t.Logf("node 1 saw %d transitional configurations, delivered %d messages", trans, len(c.nodes[1].messages()))
		})
	}
}
