package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// modelThroughput floods a 3-node ring on the simulated LAN (DefaultLink: 100-300 µs one
// way) where each datagram takes spacing to leave its node, and returns the messages per
// virtual second node 1 delivered over 0.5 s. senders: how many nodes flood (1: node 1 only).
func modelThroughput(t *testing.T, window, size, senders int, spacing time.Duration) float64 {
	t.Helper()
	link := DefaultLink
	s, err := New(Options{Seed: 11, Nodes: 3, Token: time.Second, Link: &link, SendSpacing: spacing,
		Config: func(id srp.NodeID, members int) srp.Config {
			c := ScaledConfig(id, members, time.Second)
			c.AcceleratedWindow = window
			return c
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunUntil(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, size-payloadHeaderSize)
	// Keep every sender's queue non-empty: top it up every 100 µs.
	var topUp func() error
	topUp = func() error {
		for i, id := range s.NodeIDs() {
			if i >= senders {
				break
			}
			n := s.Node(id)
			for n.proc.(*srp.Processor).QueueRoom() > 1000 { // far more than a rotation takes
				if err := s.send(n, payload, srp.Agreed); err != nil {
					break
				}
			}
		}
		s.schedule(&event{at: s.now + 100*time.Microsecond, kind: evAction, action: topUp})
		return nil
	}
	if err := topUp(); err != nil {
		t.Fatal(err)
	}
	if err := s.RunUntil(3200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	before := s.Node(1).proc.(*srp.Processor).Counters().McastDelivered
	if err := s.RunUntil(3700 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	after := s.Node(1).proc.(*srp.Processor).Counters().McastDelivered
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	return float64(after-before) / 0.5
}

// TestAcceleratedThroughputModel is the accelerated ring's gain where the wire, not the CPU,
// bounds the ring (the simulator has no CPU cost; each datagram takes the time a 1 Gb/s
// link needs for it, links add 100-300 µs): standard and accelerated ring in one run, one
// sender and three. It is a model, not a measurement (totem's BenchmarkRingFlood*
// Accelerated are the measurement, CPU-bound on a small machine); the test fails if the
// accelerated ring is not faster than the standard one in the three-sender case.
func TestAcceleratedThroughputModel(t *testing.T) {
	if raceEnabled {
		t.Skip("a throughput model: nothing concurrent to race, and tenfold slower under -race")
	}
	for _, c := range []struct {
		size    int
		spacing time.Duration
	}{{1024, 9 * time.Microsecond}, {1400, 12 * time.Microsecond}} {
		for _, senders := range []int{1, 3} {
			std := modelThroughput(t, 0, c.size, senders, c.spacing)
			acc := modelThroughput(t, 17, c.size, senders, c.spacing)
			t.Logf("%d B datagrams, %d sender(s): standard %.0f msgs/s, accelerated %.0f msgs/s: %.2fx",
				c.size, senders, std, acc, acc/std)
			if senders == 3 && acc <= std {
				t.Errorf("%s: accelerated %.0f msgs/s not above standard %.0f", fmt.Sprint(c.size, "B"), acc, std)
			}
		}
	}
}
