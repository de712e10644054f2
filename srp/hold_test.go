package srp

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// §6.3: on an idle ring the rep holds the token after seqno_unchanged_const visits, so the
// ring rotates about once per `hold`; a node with new work multicasts TOKEN_HOLD_CANCEL and
// the rep releases the token at once, so the message is not delayed by the hold.
func TestTokenHoldAndCancel(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	c.run(2 * time.Second)
	rep := c.nodes[1].p
	if rep.Counters().TokensHeld == 0 {
		t.Fatal("idle rep never held the token")
	}
	before := c.nodes[2].p.Counters().TokensReceived
	c.run(10 * time.Second)
	rot := c.nodes[2].p.Counters().TokensReceived - before
	hold := c.cfg(1).Hold
	if maxRot := uint64(10*time.Second/hold) + 2; rot > maxRot {
		t.Fatalf("idle ring rotated %d times in 10s, hold %v allows ~%d", rot, hold, maxRot)
	}
	if !c.nodes[3].p.myTokenHeld {
		t.Fatal("non-rep did not note the idle ring")
	}
	start := c.now
	c.send(3, "wake", Agreed)
	if c.nodes[3].p.Counters().HoldCancelsSent != 1 {
		t.Fatal("no TOKEN_HOLD_CANCEL sent")
	}
	c.runUntil(time.Second, func() bool { return slices.Contains(c.nodes[1].messages(), "wake") })
	if d := c.now - start; d >= hold/2 {
		t.Fatalf("message delivered after %v; the hold cancel should release the token at once (hold %v)", d, hold)
	}
	if rep.Counters().HoldCancelsHonored == 0 {
		t.Fatal("rep ignored the hold cancel")
	}
}

// §6.2 steps 19–20: a node that keeps lowering the aru for more than fail_recv_const visits
// declares itself FAILED TO RECEIVE, stops forwarding the token and forms a singleton; the
// others continue without it.
func TestFailedToReceive(t *testing.T) {
	c := newCluster(t, 3)
	base := c.cfg
	c.cfg = func(id NodeID) Config {
		cfg := base(id)
		cfg.FailRecvConst = 20
		return cfg
	}
	for _, id := range c.ids {
		cfg := c.cfg(id)
		cfg.RingIDStore = c.nodes[id].store
		c.nodes[id].p, _ = NewProcessor(cfg)
	}
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	// Node 3 loses every MCAST from node 1, including retransmissions.
	c.dropFn = func(from, to NodeID, data []byte) bool {
		return to == 3 && data[3] == byte(TypeMcast) && data[5] == 1
	}
	tr := newTraffic(c, 2*time.Millisecond)
	tr.run(300 * time.Millisecond)
	if c.nodes[3].p.Counters().FailedToReceive == 0 {
		t.Fatalf("node 3 never declared FAILED TO RECEIVE:\n%s", c.describe())
	}
	c.dropFn = nil
	tr.run(20 * time.Second)
	c.run(10 * time.Second)
	if !c.converged(c.ids...) {
		t.Fatalf("ring did not re-form after the loss stopped:\n%s", c.describe())
	}
	evsCheck{t, c}.all()
}

// A hostile or broken peer cannot crash or wedge a node: random datagrams and bit-flipped
// valid ones give decode errors or counted drops, and the ring still works afterwards.
func TestHostileDatagrams(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 5))
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	var captured [][]byte
	c.dropFn = func(from, to NodeID, data []byte) bool {
		if len(captured) < 200 {
			captured = append(captured, slices.Clone(data))
		}
		return false
	}
	tr := newTraffic(c, 5*time.Millisecond)
	tr.run(500 * time.Millisecond)
	c.dropFn = nil
	c.tolerant = true
	victim := c.nodes[2]
	var errs int
	for i := range 20000 {
		var d []byte
		if i%2 == 0 && len(captured) > 0 {
			d = slices.Clone(captured[rng.IntN(len(captured))])
			for range 1 + rng.IntN(4) {
				d[rng.IntN(len(d))] ^= byte(1 << rng.IntN(8))
			}
			if rng.IntN(4) == 0 {
				d = d[:rng.IntN(len(d)+1)]
			}
		} else {
			d = make([]byte, rng.IntN(120))
			for j := range d {
				d[j] = byte(rng.Uint32())
			}
			if len(d) > 4 && rng.IntN(2) == 0 {
				d[0], d[1], d[2], d[3] = 0x70, 0xC0, 3, byte(rng.IntN(6))
			}
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("seed %d: Step panicked on %x: %v", seed, d, r)
				}
			}()
			if victim.p.Step(c.now, d) != nil {
				errs++
			}
		}()
		c.collect(victim)
	}
	t.Logf("%d of 20000 datagrams rejected by the decoder", errs)
	// Bit flips may legitimately have torn the ring down (a forged JOIN is a JOIN); it must
	// come back by itself.
	c.run(60 * time.Second)
	if !c.converged(c.ids...) {
		t.Fatalf("seed %d: ring did not recover from hostile input:\n%s", seed, c.describe())
	}
	before := len(c.nodes[1].messages())
	c.send(3, "after", Agreed)
	c.run(time.Second)
	if got := c.nodes[1].messages(); len(got) != before+1 || got[len(got)-1] != "after" {
		t.Fatalf("seed %d: ring not delivering after hostile input", seed)
	}
}

// holdsend.go: the rep, holding the idle ring's token, sends its own new message with that
// token at once (no TOKEN_HOLD_CANCEL, no rotation first) and delivers it before the token
// comes back; every member delivers it in the same order, and the ring keeps holding and
// releasing as before. Fails with useHeldToken disabled (the rep then cancels its own hold
// and delivers a rotation later).
func TestRepSendsWithHeldToken(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	rep := c.nodes[1].p
	for round := range 3 {
		c.run(2 * time.Second)
		if !rep.myTokenHeld || !rep.heldUnsent {
			t.Fatalf("round %d: idle rep does not hold an unsent token (held %v unsent %v)", round, rep.myTokenHeld, rep.heldUnsent)
		}
		cancels := rep.Counters().HoldCancelsSent
		msg := fmt.Sprintf("rep-%d", round)
		c.send(1, msg, Agreed)
		if got := rep.Counters().HoldCancelsSent; got != cancels {
			t.Fatalf("round %d: the rep sent TOKEN_HOLD_CANCEL for its own message", round)
		}
		if !slices.Contains(c.nodes[1].messages(), msg) {
			t.Fatalf("round %d: the rep did not deliver its message with the held token", round)
		}
		if got := rep.Counters().HeldTokensUsed; got != uint64(round+1) {
			t.Fatalf("round %d: HeldTokensUsed %d", round, got)
		}
		c.runUntil(time.Second, func() bool {
			return slices.Contains(c.nodes[2].messages(), msg) && slices.Contains(c.nodes[3].messages(), msg)
		})
		c.send(3, fmt.Sprintf("other-%d", round), Agreed)
	}
	c.run(2 * time.Second)
	evsCheck{t, c}.all()
}
