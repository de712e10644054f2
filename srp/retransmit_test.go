package srp

import (
	"math/rand/v2"
	"testing"
	"time"
)

// §6.3: a lost ORF token is resent from the stored copy after token_retransmit; the ring
// survives without a membership change and the duplicate (same token_seq) is filtered.
func TestLostTokenIsRetransmitted(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	formed := c.nodes[1].p.Counters().RingsFormed
	dropped := 0
	c.dropFn = func(from, to NodeID, data []byte) bool {
		if dropped < 3 && from == 2 && to == 3 && data[3] == byte(TypeORFToken) {
			dropped++
			return true
		}
		return false
	}
	tr := newTraffic(c, 5*time.Millisecond)
	tr.run(5 * time.Second)
	c.run(2 * time.Second)
	if dropped != 3 {
		t.Fatalf("dropped %d tokens", dropped)
	}
	if c.nodes[2].p.Counters().TokenRetransmits == 0 {
		t.Fatal("node 2 never retransmitted its token")
	}
	if c.nodes[1].p.Counters().RingsFormed != formed || !c.converged(c.ids...) {
		t.Fatalf("a lost token changed the membership:\n%s", c.describe())
	}
	if len(c.nodes[3].messages()) != len(tr.sent) {
		t.Fatalf("delivered %d of %d", len(c.nodes[3].messages()), len(tr.sent))
	}
}

// §5.2: the commit token is retransmitted in COMMIT too, so one lost copy does not stop
// the ring from forming.
func TestLostCommitTokenIsRetransmitted(t *testing.T) {
	c := newCluster(t, 3)
	dropped := 0
	c.dropFn = func(from, to NodeID, data []byte) bool {
		if dropped < 2 && data[3] == byte(TypeCommitToken) && from != to {
			dropped++
			return true
		}
		return false
	}
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	var rt uint64
	for _, id := range c.ids {
		rt += c.nodes[id].p.Counters().TokenRetransmits
	}
	if dropped != 2 || rt == 0 {
		t.Fatalf("dropped %d commit tokens, %d retransmits", dropped, rt)
	}
}

// §4.1: with send_join the JOINs go out after a random delay drawn from cfg.Rand; the
// ring still forms and the delay is honoured.
func TestSendJoinDelay(t *testing.T) {
	c := newCluster(t, 5)
	base := c.cfg
	seed := testSeed(t)
	c.cfg = func(id NodeID) Config {
		cfg := base(id)
		cfg.SendJoin = 30 * time.Millisecond
		cfg.Rand = rand.New(rand.NewPCG(seed, uint64(id)))
		return cfg
	}
	for _, id := range c.ids {
		cfg := c.cfg(id)
		cfg.RingIDStore = c.nodes[id].store
		c.nodes[id].p, _ = NewProcessor(cfg)
	}
	c.startAll()
	delayed := 0
	for _, id := range c.ids {
		if c.nodes[id].p.timers[timerSendJoin].armed {
			delayed++
		}
	}
	if delayed == 0 {
		t.Fatalf("seed %d: no JOIN was delayed", seed)
	}
	c.mustConverge(30*time.Second, c.ids...)
}

// On a healthy ring the held token goes on by the hold timer or a hold cancel: those are
// releases, not retransmissions, so an operator reading TokenRetransmits sees only loss.
func TestHoldReleasesAreNotRetransmits(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	base := map[NodeID]Counters{}
	for _, id := range c.ids {
		base[id] = c.nodes[id].p.Counters()
	}
	c.run(10 * time.Second) // idle: the representative holds the token
	tr := newTraffic(c, 50*time.Millisecond)
	tr.run(3 * time.Second) // sparse sends: hold cancels release it
	c.run(time.Second)
	var released, retransmitted uint64
	for _, id := range c.ids {
		now := c.nodes[id].p.Counters()
		released += now.TokensReleased - base[id].TokensReleased
		retransmitted += now.TokenRetransmits - base[id].TokenRetransmits
	}
	if released == 0 {
		t.Fatal("the held token was never released")
	}
	if retransmitted != 0 {
		t.Fatalf("%d token retransmissions on a lossless ring (%d releases)", retransmitted, released)
	}
}
