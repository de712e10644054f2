package srp

import (
	"slices"
	"testing"
	"time"
)

// §6.2 step 9: the token callback runs on every accepted token before this node takes
// messages from its queue, so what it Sends (totempg's flushed packer) rides this visit.
func TestTokenCallbackRunsBeforeSending(t *testing.T) {
	c := newCluster(t, 3)
	var calls int
	var p2 *Processor
	base := c.cfg
	c.cfg = func(id NodeID) Config {
		cfg := base(id)
		if id == 2 {
			cfg.TokenCallback = func() {
				calls++
				if calls == 50 {
					if err := p2.Send(0, []byte("from-callback"), Agreed); err != nil {
						t.Errorf("Send from callback: %v", err)
					}
				}
			}
		}
		return cfg
	}
	cfg := c.cfg(2)
	cfg.RingIDStore = c.nodes[2].store
	p2, _ = NewProcessor(cfg)
	c.nodes[2].p = p2
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	sentBefore := p2.Counters().McastSent
	c.runUntil(30*time.Second, func() bool { return calls >= 50 })
	if calls < 50 {
		t.Fatalf("callback ran %d times", calls)
	}
	// The message was multicast during the very visit whose callback queued it.
	if p2.Counters().McastSent != sentBefore+1 || p2.newQueue.len() != 0 {
		t.Fatalf("callback's message not sent on the same visit (sent %d, queued %d)",
			p2.Counters().McastSent-sentBefore, p2.newQueue.len())
	}
	c.run(time.Second)
	if !slices.Equal(c.nodes[1].messages(), []string{"from-callback"}) {
		t.Fatalf("node 1 delivered %v", c.nodes[1].messages())
	}
}
