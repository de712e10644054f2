package sim

import (
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// TestRestartKeepsRingID: a crashed node restarts from its persisted ring sequence (the
// simulator's per-node MemoryRingIDStore), so the rings it forms never reuse an id, and
// the cluster takes it back.
func TestRestartKeepsRingID(t *testing.T) {
	s, err := New(Options{Seed: 9, Nodes: 3, Token: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	before := s.Node(1).Protocol().RingID()
	stored := s.Node(1).store
	if !stored.Valid || stored.Seq < before.Seq {
		t.Fatalf("n1's store holds %+v, ring is %v", stored, before)
	}
	s.Crash(1)
	if err := s.RunFor(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(1); err != nil {
		t.Fatal(err)
	}
	if got := s.Node(1).Protocol().RingID(); got.Seq <= before.Seq {
		t.Fatalf("restarted n1 starts on ring seq %d, not above %d", got.Seq, before.Seq)
	}
	if err := s.CheckLiveness(); err != nil {
		t.Fatal(err)
	}
	after := s.Node(1).Protocol().RingID()
	if after.Seq <= before.Seq || len(s.Node(1).Protocol().Members()) != 3 {
		t.Fatalf("after restart: ring %v members %v (before: %v)", after, s.Node(1).Protocol().Members(), before)
	}
}

// TestPauseBuffersAndFiresStaleTimers: a paused node receives nothing and runs no timer;
// on resume its overdue token timer fires at once, so it sees the token as lost, just as
// a resumed VM does, and the cluster forms a ring without it in between.
func TestPauseBuffersAndFiresStaleTimers(t *testing.T) {
	s, err := New(Options{Seed: 2, Nodes: 3, Token: time.Second, PauseBuffer: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.StartWorkload(Workload{Rate: 50, MinSize: 1, MaxSize: 16}); err != nil {
		t.Fatal(err)
	}
	s.Pause(3)
	lostBefore := s.Stats().DatagramsLost
	if err := s.RunFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(s.Node(3).pauseBuf) != 8 || s.Stats().DatagramsLost == lostBefore {
		t.Fatalf("paused socket holds %d datagrams (want the 8-datagram limit, the rest dropped)", len(s.Node(3).pauseBuf))
	}
	if m := s.Node(1).Protocol().Members(); len(m) != 2 {
		t.Fatalf("n1 and n2 did not form a ring without paused n3: %v", m)
	}
	if err := s.Resume(3); err != nil {
		t.Fatal(err)
	}
	if st := s.Node(3).Protocol().State(); st == srp.Operational {
		t.Fatalf("resumed n3 still OPERATIONAL: its overdue token timer did not fire")
	}
	s.StopWorkload()
	if err := s.CheckLiveness(); err != nil {
		t.Fatal(err)
	}
}

// TestScaledConfigLargeTokens: scaling a 5-node cluster's timers to a 3 s token once
// overflowed int64 nanoseconds (consensus came out as 1 ms and the config was refused).
func TestScaledConfigLargeTokens(t *testing.T) {
	for _, members := range []int{3, 5, 7, 16} {
		for _, token := range []time.Duration{time.Second, 2950 * time.Millisecond, 10 * time.Second} {
			c := ScaledConfig(1, members, token)
			if c.Token != token {
				t.Fatalf("%d members, token %v: got token %v", members, token, c.Token)
			}
			// corosync's ratio: consensus is 1.2 token.
			if want := token * 12 / 10; c.Consensus < want-time.Millisecond || c.Consensus > want+time.Millisecond {
				t.Errorf("%d members, token %v: consensus %v, want about %v", members, token, c.Consensus, want)
			}
			if _, err := srp.NewProcessor(c); err != nil {
				t.Errorf("%d members, token %v: %v", members, token, err)
			}
		}
	}
}
