package knet

import (
	"slices"
	"testing"
	"time"
)

const ms = time.Millisecond

// pair is two nodes' link layers joined by a network of up to 8 links with a fixed one-way
// delay, where a link can be cut (both directions).
type pair struct {
	t     *testing.T
	nodes map[HostID]*Links
	delay time.Duration
	cut   [MaxLink]bool
	now   time.Duration
	queue []inflight
	log   []LinkEvent
}

type inflight struct {
	at   time.Duration
	to   HostID
	from HostID
	pkt  Packet
}

func newPair(t *testing.T, mode LinkMode, links int, cfg LinkConfig) *pair {
	p := &pair{t: t, nodes: map[HostID]*Links{1: NewLinks(1, mode), 2: NewLinks(2, mode)}, delay: 50 * time.Microsecond}
	for l := 0; l < links; l++ {
		if err := p.nodes[1].AddLink(2, uint8(l), cfg); err != nil {
			t.Fatal(err)
		}
		if err := p.nodes[2].AddLink(1, uint8(l), cfg); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// run advances time to until in heartbeat steps, delivering packets in between: a PING
// is answered with its PONG, a PONG goes to Links.Pong.
func (p *pair) run(until time.Duration) {
	for p.now <= until {
		next := until + 1
		for _, n := range p.nodes {
			next = min(next, n.NextTick())
		}
		for _, f := range p.queue {
			next = min(next, f.at)
		}
		if next > until {
			p.now = until + 1
			return
		}
		p.now = next
		for id, n := range p.nodes {
			if n.NextTick() == p.now {
				n.Tick(p.now, 0, func(host HostID, link uint8, ping *Packet) {
					if !p.cut[link] {
						p.queue = append(p.queue, inflight{at: p.now + p.delay, to: host, from: id, pkt: *ping})
					}
				})
			}
		}
		var rest []inflight
		for _, f := range p.queue {
			if f.at != p.now {
				rest = append(rest, f)
				continue
			}
			switch f.pkt.Type {
			case TypePing:
				if !p.cut[f.pkt.Link] {
					rest = append(rest, inflight{at: p.now + p.delay, to: f.from, from: f.to, pkt: f.pkt.Pong(f.to)})
				}
			case TypePong:
				p.nodes[f.to].Pong(p.now, f.from, &f.pkt)
			}
		}
		p.queue = rest
		for _, n := range p.nodes {
			p.log = append(p.log, n.Events()...)
		}
	}
}

// events returns the logged link events of both nodes, and clears the log.
func (p *pair) events() []LinkEvent {
	ev := p.log
	p.log = nil
	return ev
}

// TestLinkUpOnThirdPong: with corosync's timers for token 3650 ms (interval 912 ms, timeout
// 1825 ms, pong count 2) the heartbeat pings at 0, 1.0 and 2.0 s (every 5th 200 ms beat)
// and the link comes up on the 3rd pong, ~2.0 s after the first ping, as in
// knet-formation.
func TestLinkUpOnThirdPong(t *testing.T) {
	cfg := CorosyncLinkConfig(3650 * ms)
	if cfg.PingInterval != 912*ms || cfg.PingTimeout != 1825*ms || cfg.PongCount != 2 || cfg.Priority != 1 {
		t.Fatalf("corosync link config %+v", cfg)
	}
	a := NewLinks(1, Passive)
	if err := a.AddLink(2, 0, cfg); err != nil {
		t.Fatal(err)
	}
	var pings []time.Duration
	var up time.Duration
	for now := time.Duration(0); now <= 3*time.Second; now += Heartbeat {
		a.Tick(now, 7, func(host HostID, link uint8, ping *Packet) {
			if host != 2 || link != 0 || ping.Type != TypePing || ping.Host != 1 || ping.Seq != 7 || ping.Timed != 1 {
				t.Fatalf("ping %+v", ping)
			}
			pings = append(pings, now)
			pong := ping.Pong(2)
			if !a.Pong(now+100*time.Microsecond, 2, &pong) {
				t.Fatal("pong refused")
			}
		})
		for _, ev := range a.Events() {
			if ev.Up && ev.Host == 2 && ev.Link == 0 && ev.Reachable {
				up = ev.At
			}
		}
	}
	if want := []time.Duration{0, 1000 * ms, 2000 * ms, 3000 * ms}; !slices.Equal(pings, want) {
		t.Errorf("pings at %v, want %v", pings, want)
	}
	if up != 2000*ms+100*time.Microsecond {
		t.Errorf("up at %v, want 2.0001s", up)
	}
	if st := a.Status(); len(st) != 1 || !st[0].Connected || st[0].Latency != 100*time.Microsecond {
		t.Errorf("status %+v", st)
	}
}

// TestLinkDownTimeout: a link that has been up long enough (backoff decayed to 1) goes down
// at the first heartbeat 1825 ms + 2 × latency after its last pong; a young one waits for
// the decaying backoff (10 × the timeout at configuration, one less per second).
func TestLinkDownTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cutAt    time.Duration
		wantDown time.Duration
	}{
		// Last pong at 20.0001 s; 21.8 s is 1799.9 ms later, 22.0 s is past 1825.1 ms.
		{"old link", 20*time.Second + 100*ms, 22 * time.Second},
		// Up at 2.0001 s (its last pong), then nothing: the backoff after the adjustments at
		// 0.8+k s is 9-k, so from 6.8 s the timeout is 3 × 1825 ms + 2 × 0.1 ms = 5475.2 ms,
		// which the heartbeat at 7.4 s (5399.9 ms) has not reached and the one at 7.6 s has.
		{"young link", 2*time.Second + 100*ms, 7600 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, Passive, 1, CorosyncLinkConfig(3650*ms))
			p.run(tc.cutAt)
			p.events()
			p.cut[0] = true
			p.run(30 * time.Second)
			ev := p.events()
			if len(ev) != 2 {
				t.Fatalf("events %+v", ev)
			}
			for _, e := range ev {
				if e.Up || e.Reachable || e.At != tc.wantDown {
					t.Errorf("event %+v, want down at %v", e, tc.wantDown)
				}
			}
			if p.nodes[1].Reachable(2) || len(p.nodes[1].Route(nil, 2)) != 0 {
				t.Error("host still routed after its only link went down")
			}
		})
	}
}

func TestLinkLatencyAndStalePong(t *testing.T) {
	a := NewLinks(1, Active)
	if err := a.AddLink(2, 3, LinkConfig{PingInterval: time.Second, PingTimeout: time.Second, PingPrecision: 2, PongCount: 1}); err != nil {
		t.Fatal(err)
	}
	pong := func(now, sent time.Duration) bool {
		p := NewPing(2, 3, int64(sent/time.Second), int64(sent%time.Second), 0, true).Pong(2)
		return a.Pong(now, 2, &p)
	}
	if pong(10*time.Second, 8*time.Second) {
		t.Error("a pong 2 s late (timeout 1 s) counted")
	}
	pong(10*time.Second, 10*time.Second-1*ms) // 1 ms
	pong(11*time.Second, 11*time.Second-3*ms) // mean of 1, 3: 2 ms
	pong(12*time.Second, 12*time.Second-6*ms) // precision 2: (2 + 6) / 2 = 4 ms
	st := a.Status()
	if len(st) != 1 || st[0].Latency != 4*ms || st[0].Link != 3 {
		t.Errorf("status %+v", st)
	}
	// PongCount 1: up on the 2nd counted pong.
	if ev := a.Events(); len(ev) != 1 || !ev[0].Up || ev[0].At != 11*time.Second {
		t.Errorf("events %+v", ev)
	}
	// Unknown host, unknown link, not a pong.
	p := NewPing(2, 3, 12, 0, 0, true)
	q := p.Pong(9)
	r := p.Pong(2)
	r.Link = 5
	if a.Pong(12*time.Second, 9, &q) || a.Pong(12*time.Second, 2, &r) || a.Pong(12*time.Second, 2, &p) {
		t.Error("pong from an unknown host/link, or a ping, accepted")
	}
	if a.AddLink(1, 0, LinkConfig{}) == nil || a.AddLink(2, 8, LinkConfig{}) == nil || a.AddLink(2, 0, LinkConfig{PongCount: 300}) == nil {
		t.Error("bad AddLink accepted")
	}
}

// TestLinkRouting: which links carry DATA to a host, by mode, priorities and link state.
func TestLinkRouting(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mode      LinkMode
		prio      [3]uint8
		connected [3]bool
		want      [][]uint8 // successive Route calls
	}{
		{"passive equal priorities: lowest link", Passive, [3]uint8{1, 1, 1}, [3]bool{true, true, true}, [][]uint8{{0}, {0}}},
		{"passive by priority", Passive, [3]uint8{1, 5, 2}, [3]bool{true, true, true}, [][]uint8{{1}}},
		{"passive best link down", Passive, [3]uint8{1, 5, 2}, [3]bool{true, false, true}, [][]uint8{{2}}},
		{"active: every connected link", Active, [3]uint8{1, 1, 1}, [3]bool{true, false, true}, [][]uint8{{0, 2}, {0, 2}}},
		{"rr rotates", RR, [3]uint8{1, 1, 1}, [3]bool{true, true, true}, [][]uint8{{0}, {1}, {2}, {0}}},
		{"rr skips a down link", RR, [3]uint8{1, 1, 1}, [3]bool{true, false, true}, [][]uint8{{0}, {2}, {0}}},
		{"no link up: nothing", Active, [3]uint8{1, 1, 1}, [3]bool{}, [][]uint8{nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewLinks(1, tc.mode)
			for i := range 3 {
				if err := a.AddLink(2, uint8(i), LinkConfig{PongCount: 1, Priority: tc.prio[i]}); err != nil {
					t.Fatal(err)
				}
				if tc.connected[i] {
					for range 2 {
						p := NewPing(1, uint8(i), 0, 0, 0, true).Pong(2)
						a.Pong(0, 2, &p)
					}
				}
			}
			for k, want := range tc.want {
				if got := a.Route(nil, 2); !slices.Equal(got, want) {
					t.Errorf("route %d: %v, want %v", k, got, want)
				}
			}
			if a.Reachable(2) != (tc.want[0] != nil) {
				t.Errorf("reachable %v", a.Reachable(2))
			}
		})
	}
}

// TestLinkCutAndHeal: two links, passive. Cutting link 0 brings it down on both sides while
// link 1 stays up and carries the data; healing brings link 0 back (3 pongs) and, at equal
// priority, the data returns to it. A socket error downs a link at once.
func TestLinkCutAndHeal(t *testing.T) {
	p := newPair(t, Passive, 2, CorosyncLinkConfig(3650*ms))
	p.run(15 * time.Second)
	if ev := p.events(); len(ev) != 4 {
		t.Fatalf("start-up events %+v", ev)
	}
	p.cut[0] = true
	p.run(20 * time.Second)
	ev := p.events()
	if len(ev) != 2 || ev[0].Up || ev[1].Up || ev[0].Link != 0 || !ev[0].Reachable || ev[0].At > 17*time.Second {
		t.Fatalf("cut events %+v", ev)
	}
	for id, peer := range map[HostID]HostID{1: 2, 2: 1} {
		if got := p.nodes[id].Route(nil, peer); !slices.Equal(got, []uint8{1}) {
			t.Errorf("node %d routes to %d on %v during the cut", id, peer, got)
		}
	}
	p.cut[0] = false
	p.run(25 * time.Second)
	ev = p.events()
	if len(ev) != 2 || !ev[0].Up || !ev[1].Up || ev[0].Link != 0 {
		t.Fatalf("heal events %+v", ev)
	}
	// A link that went down earns its pongs again: the 3rd pong after the heal comes two
	// ping periods (1 s each) after the first.
	for _, e := range ev {
		if e.At < 22*time.Second {
			t.Errorf("link 0 back up at %v, less than 2 s after the heal at 20 s", e.At)
		}
	}
	if got := p.nodes[1].Route(nil, 2); !slices.Equal(got, []uint8{0}) {
		t.Errorf("after healing routes on %v", got)
	}
	p.nodes[1].LinkError(p.now, 2, 0)
	p.nodes[1].LinkError(p.now, 2, 1)
	ev = p.nodes[1].Events()
	if len(ev) != 2 || ev[0].Up || !ev[0].Reachable || ev[1].Reachable {
		t.Errorf("socket errors: %+v", ev)
	}
}

func TestParseLinkMode(t *testing.T) {
	for s, want := range map[string]LinkMode{"": Passive, "passive": Passive, "active": Active, "rr": RR} {
		if m, err := ParseLinkMode(s); err != nil || m != want || (s != "" && m.String() != s) {
			t.Errorf("%q: %v %v", s, m, err)
		}
	}
	if _, err := ParseLinkMode("round-robin"); err == nil {
		t.Error("round-robin accepted")
	}
}
