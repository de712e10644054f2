package srp

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

const accelConverge = 30 * time.Second

// accelerate rebuilds c's (not yet started) processors with the accelerated ring on.
func accelerate(c *cluster, window int) {
	def := c.cfg
	c.cfg = func(id NodeID) Config {
		cfg := def(id)
		cfg.AcceleratedWindow = window
		return cfg
	}
	for _, id := range c.ids {
		n := c.nodes[id]
		cfg := c.cfg(id)
		cfg.RingIDStore = n.store
		p, err := NewProcessor(cfg)
		if err != nil {
			c.t.Fatalf("NewProcessor(%d): %v", id, err)
		}
		n.p = p
	}
}

// visitOrder queues msgs messages at node 1 of a formed 3-node ring and returns what node 1
// sent to node 2 during its next token visit, in wire order: "M<seq>" for an MCAST, "T<seq>"
// for the ORF token (its seq field).
func visitOrder(t *testing.T, window, msgs int) []string {
	t.Helper()
	c := newCluster(t, 3)
	if window > 0 {
		accelerate(c, window)
	}
	c.startAll()
	c.mustConverge(accelConverge, c.ids...)
	type rec struct {
		token bool
		seq   uint32
	}
	var recs []rec
	recording := false
	c.dropFn = func(from, to NodeID, data []byte) bool {
		if from != 1 || to != 2 || !recording {
			return false
		}
		switch MessageType(data[3]) {
		case TypeMcast:
			var m Mcast
			if err := m.Decode(data); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec{false, m.Seq})
		case TypeORFToken:
			var tok ORFToken
			if err := tok.Decode(data); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec{true, tok.Seq})
		}
		return false
	}
	recording = true
	for i := range msgs {
		if err := c.send(1, fmt.Sprintf("m%d", i), Agreed); err != nil {
			t.Fatal(err)
		}
	}
	// The visit: the MCASTs and the token whose seq is the last of them. A token from
	// before it (the held token released by the hold cancel, the previous rotation's) has
	// a lower seq and is left out.
	var got []string
	c.runUntil(accelConverge, func() bool {
		got = got[:0]
		var first, last uint32
		n := 0
		for _, r := range recs {
			if !r.token {
				if n == 0 {
					first = r.seq
				}
				last = r.seq
				n++
			}
		}
		if n < msgs {
			return false
		}
		found := false
		for _, r := range recs {
			switch {
			case !r.token:
				got = append(got, fmt.Sprintf("M%d", r.seq))
			case r.seq >= first && !found:
				got = append(got, fmt.Sprintf("T%d", r.seq))
				found = r.seq == last
			}
		}
		return found
	})
	recording = false
	c.run(100 * testLatency)
	for _, id := range c.ids {
		if len(c.nodes[id].messages()) != msgs {
			t.Fatalf("node %d delivered %d of %d messages", id, len(c.nodes[id].messages()), msgs)
		}
	}
	evsCheck{t, c}.all()
	return got
}

// The holder of an accelerated ring multicasts msgs−window messages, passes the token (whose
// seq already covers the rest), then multicasts the last window messages; the standard ring
// passes the token after all of them. Every member delivers all of them in one order.
func TestAcceleratedTokenPassedBeforePostTokenMcasts(t *testing.T) {
	const msgs = 10
	std := visitOrder(t, 0, msgs)
	for _, w := range []int{4, msgs, 17} {
		got := visitOrder(t, w, msgs)
		if len(got) != msgs+1 || len(std) != msgs+1 {
			t.Fatalf("window %d: visit %v, standard %v", w, got, std)
		}
		pre := max(msgs-w, 0)
		if got[pre][0] != 'T' {
			t.Fatalf("window %d: token at position %d of %v, want %d", w, indexOfToken(got), got, pre)
		}
		// Same seqs in the same order, the token's seq the visit's last.
		last := std[msgs-1]
		if got[pre][1:] != last[1:] {
			t.Fatalf("window %d: token seq %s, want the visit's last MCAST %s", w, got[pre], last)
		}
		var gotM, stdM []string
		for _, g := range got {
			if g[0] == 'M' {
				gotM = append(gotM, g)
			}
		}
		stdM = std[:msgs]
		if fmt.Sprint(gotM) != fmt.Sprint(stdM) {
			t.Fatalf("window %d: MCASTs %v, standard ring %v", w, gotM, stdM)
		}
	}
	if std[msgs][0] != 'T' {
		t.Fatalf("standard ring: token not last in %v", std)
	}
}

func indexOfToken(v []string) int {
	for i, g := range v {
		if g[0] == 'T' {
			return i
		}
	}
	return -1
}

// A negative window is a configuration error, not a silent standard ring.
func TestAcceleratedWindowValidated(t *testing.T) {
	cfg := DefaultConfig(1, 3)
	cfg.AcceleratedWindow = -1
	if _, err := NewProcessor(cfg); err == nil {
		t.Fatal("AcceleratedWindow -1 accepted")
	}
}

// The random fault schedules of TestRandomFaultSchedules (crashes, restarts, partitions,
// one-way cuts, LEAVEs, MCAST loss, reordering) with the accelerated ring and four times
// the traffic: the EVS checkers must hold and the live nodes converge. The window is drawn
// per schedule (1..3: visits here carry one or a few messages, so pre- and post-token parts
// both occur). SRP_ACCEL_SCHEDULES sets how many run (default 6; 3 under -race or -short).
func TestRandomFaultSchedulesAccelerated(t *testing.T) {
	n := 6
	if testing.Short() || accelRace {
		n = 3
	}
	if s := os.Getenv("SRP_ACCEL_SCHEDULES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	base := testSeed(t)
	for i := range n {
		seed := base + uint64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runSchedule(t, seed, 1+int(seed%3)) })
	}
}
