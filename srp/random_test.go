package srp

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Random fault schedules: crashes, restarts, partitions, heals, LEAVEs and MCAST loss over
// traffic with mixed guarantees. After every schedule the EVS checkers must hold and, once
// the faults stop, every live node must end on one ring. A failure prints the seed that
// replays it (SRP_SEED=...); SRP_SCHEDULES sets how many schedules run (default 4).
func TestRandomFaultSchedules(t *testing.T) {
	n := 4
	if s := os.Getenv("SRP_SCHEDULES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		n = 3
	}
	base := testSeed(t)
	for i := range n {
		seed := base + uint64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runSchedule(t, seed, 0) })
	}
}

// runSchedule runs one random schedule; accel > 0 runs the accelerated ring with that
// window (accel_test.go) and four times the traffic, so visits have messages to split.
func runSchedule(t *testing.T, seed uint64, accel int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	size := 3 + rng.IntN(4)
	c := newCluster(t, size)
	period := 4 * time.Millisecond
	if accel > 0 {
		accelerate(c, accel)
		period = time.Millisecond
	}
	c.sentLimit = 5_000_000 // far above any schedule: only a JOIN/retransmit storm gets here
	var log []string
	loss := 0
	c.dropFn = func(from, to NodeID, data []byte) bool {
		return loss > 0 && from != to && data[3] == byte(TypeMcast) && rng.IntN(100) < loss
	}
	safeEarly := 0
	for _, id := range c.ids {
		c.nodes[id].onDeliv = func(n *tnode, m *Message) {
			// SAFE: in the regular configuration only once every member holds it.
			if m.Guarantee != Safe || n.p.State() != Operational || m.RingID != n.p.RingID() {
				return
			}
			for _, mid := range n.p.Members() {
				if !holds(c.nodes[mid], m.RingID, m.Seq) {
					safeEarly++
				}
			}
		}
	}
	if rng.IntN(2) == 0 {
		// Reordering: up to 1 ms extra per datagram, so tokens overtake MCASTs.
		c.jitter = func() time.Duration { return time.Duration(rng.IntN(1000)) * time.Microsecond }
		log = append(log, "jitter")
	}
	c.startAll()
	tr := newTraffic(c, period)
	tr.g = func(NodeID, int) Guarantee { return Guarantee(rng.IntN(2)) }
	for range 6 {
		switch rng.IntN(7) {
		case 0:
			id := c.ids[rng.IntN(len(c.ids))]
			if c.nodes[id].up {
				c.crash(id)
				log = append(log, fmt.Sprintf("crash %d", id))
			}
		case 1:
			for _, id := range c.ids {
				if !c.nodes[id].up {
					c.restart(id)
					log = append(log, fmt.Sprintf("restart %d", id))
					break
				}
			}
		case 2:
			perm := rng.Perm(len(c.ids))
			k := 1 + rng.IntN(len(c.ids)-1)
			var a, b []NodeID
			for i, j := range perm {
				if i < k {
					a = append(a, c.ids[j])
				} else {
					b = append(b, c.ids[j])
				}
			}
			c.partition(a, b)
			log = append(log, fmt.Sprintf("partition %v|%v", a, b))
		case 3:
			c.heal()
			log = append(log, "heal")
		case 4:
			id := c.ids[rng.IntN(len(c.ids))]
			if c.nodes[id].up {
				c.leave(id)
				log = append(log, fmt.Sprintf("leave %d", id))
			}
		case 6:
			// A one-way link failure: a hears nothing from b, b still hears a.
			a, b := c.ids[rng.IntN(len(c.ids))], c.ids[rng.IntN(len(c.ids))]
			if a != b {
				c.cut[[2]NodeID{b, a}] = true
				log = append(log, fmt.Sprintf("cut %d→%d", b, a))
			}
		case 5:
			loss = []int{0, 5, 20}[rng.IntN(3)]
			log = append(log, fmt.Sprintf("loss %d%%", loss))
		}
		tr.run(time.Duration(500+rng.IntN(12000)) * time.Millisecond)
		if progressOn {
			t.Logf("after %v: t=%v sent=%d\n%s", log, c.now, c.sent, c.describe())
		}
	}
	c.heal()
	loss = 0
	c.run(40 * time.Second)
	var live []NodeID
	for _, id := range c.ids {
		if c.nodes[id].up {
			live = append(live, id)
		}
	}
	if len(live) > 0 && !c.converged(live...) {
		t.Fatalf("seed %d, schedule %v: live nodes %v did not converge:\n%s", seed, log, live, c.describe())
	}
	defer func() {
		if t.Failed() {
			t.Logf("seed %d, schedule %v", seed, log)
		}
	}()
	evsCheck{t, c}.all()
	var delivered, configs int
	for _, id := range c.ids {
		delivered += len(c.nodes[id].messages())
		configs += len(c.nodes[id].configs())
	}
	t.Logf("size %d, schedule %v: %d deliveries, %d configurations, live %v", size, log, delivered, configs, live)
	if safeEarly > 0 {
		t.Fatalf("seed %d: %d SAFE deliveries before every member held the message", seed, safeEarly)
	}
	// The final ring delivers the same messages from its installation on.
	if len(live) > 1 {
		ring := c.nodes[live[0]].p.RingID()
		var ref []string
		for i, id := range live {
			var got []string
			in := false
			for _, e := range c.nodes[id].events {
				if e.config != nil {
					in = e.config.Kind == Regular && e.config.RingID == ring
					continue
				}
				if in {
					got = append(got, string(e.msg.Payload))
				}
			}
			if i == 0 {
				ref = got
			} else if !slices.Equal(got, ref) {
				t.Fatalf("seed %d: node %d delivered %d messages on the final ring, node %d %d", seed, id, len(got), live[0], len(ref))
			}
		}
	}
}
