package srp

import (
	"slices"
	"testing"
	"time"
)

// TestTransAckHoldsMessagesQueuedBeforeAChange: with Config.TransAck a message queued
// before a membership change is not sent in the new ring until TransAck, while messages
// queued after the installation (the sync's) go first: corosync's two send queues (§7.3).
// Issue 12 was the first half missing: the old message went out ahead of the sync.
func TestTransAckHoldsMessagesQueuedBeforeAChange(t *testing.T) {
	c := newCluster(t, 3)
	base := c.cfg
	c.cfg = func(id NodeID) Config { cfg := base(id); cfg.TransAck = true; return cfg }
	for _, id := range c.ids {
		c.nodes[id].p = nil
		c.restart(id)
	}
	c.mustConverge(10*time.Second, 1, 2, 3)
	for _, id := range c.ids {
		c.nodes[id].p.TransAck()
	}
	// Node 1 is cut off; what it queues now waits for a token that no longer comes.
	c.partition([]NodeID{1}, []NodeID{2, 3})
	if err := c.send(1, "queued before the change", Agreed); err != nil {
		t.Fatal(err)
	}
	c.mustConverge(20*time.Second, 1)
	if !c.nodes[1].p.WaitingTransAck() {
		t.Fatal("a new ring installed without waiting for its trans-ack")
	}
	c.run(2 * time.Second)
	if got := c.nodes[1].messages(); slices.Contains(got, "queued before the change") {
		t.Fatalf("the old message went out before the trans-ack: %q", got)
	}
	if err := c.send(1, "sync", Agreed); err != nil {
		t.Fatal(err)
	}
	c.run(2 * time.Second)
	c.nodes[1].p.TransAck()
	c.collect(c.nodes[1])
	c.run(2 * time.Second)
	got := c.nodes[1].messages()
	i, j := slices.Index(got, "sync"), slices.Index(got, "queued before the change")
	if i < 0 || j < 0 || j < i {
		t.Fatalf("want the sync's message, then the one queued before the change; delivered %q", got)
	}
}
