package stack

import (
	"errors"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// TestSendQueueDelay: with SendQueueDelay set, a flood that the ring does not drain is refused
// after two token visits' worth of packets (2×max_messages) instead of srp's whole queue, and
// SendRoom agrees with Send; without it the flood fills srp's queue. A singleton ring whose
// datagrams are never looped back never drains, so the measured drain rate stays 0.
func TestSendQueueDelay(t *testing.T) {
	for _, delay := range []time.Duration{0, 2 * time.Millisecond} {
		cfg := srp.DefaultConfig(1, 1)
		s, err := New(Config{SRP: cfg, SendQueueDelay: delay})
		if err != nil {
			t.Fatal(err)
		}
		s.Start(0)
		now := time.Duration(0)
		run := func(until func() bool) {
			for step := 0; step < 5000 && !until(); step++ {
				now += time.Millisecond
				rd := s.Ready()
				ds := append([]Datagram(nil), rd.Datagrams...)
				s.Advance()
				for _, d := range ds {
					_ = s.Receive(now, d.Link, d.Data)
				}
				s.Tick(now)
			}
		}
		run(func() bool { return s.SRP().State() == srp.Operational && !s.Synchronizing() })
		if err := s.Join(now, "g", 7); err != nil {
			t.Fatal(err)
		}
		run(func() bool { return s.CPG().Joined("g", 7) })
		if !s.CPG().Joined("g", 7) {
			t.Fatal("the join was never delivered")
		}
		s.Advance()
		// From here on nothing is looped back: the ring does not drain.
		payload := make([]byte, 1024)
		accepted := 0
		for ; accepted < 100000; accepted++ {
			if s.SendRoom() == 0 {
				break
			}
			if err := s.Send(now, "g", 7, payload, srp.Agreed); err != nil {
				if !errors.Is(err, ErrBusy) {
					t.Fatal(err)
				}
				break
			}
			s.Advance()
		}
		queued := s.srpQueueMax - s.SRP().QueueRoom()
		t.Logf("delay %v: %d messages accepted, %d packets queued (srp's queue holds %d)", delay, accepted, queued, s.srpQueueMax)
		if delay == 0 && queued < s.srpQueueMax-2 {
			t.Fatalf("without SendQueueDelay the flood stopped at %d of %d packets", queued, s.srpQueueMax)
		}
		if delay > 0 && queued > 2*cfg.MaxMessages+2 {
			t.Fatalf("with SendQueueDelay %v and no drain, %d packets were queued; want at most 2×max_messages (%d)", delay, queued, 2*cfg.MaxMessages)
		}
	}
}
