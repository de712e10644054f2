package rrp

import (
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/gototem/gototem/srp"
)

func token(ring srp.RingID, tokenSeq uint32) []byte {
	t := srp.ORFToken{Header: srp.Header{NodeID: 1}, RingID: ring, TokenSeq: tokenSeq}
	return t.AppendEncode(nil)
}

func mcast(ring srp.RingID, from srp.NodeID, seq uint32) []byte {
	m := srp.Mcast{Header: srp.Header{NodeID: from, Encapsulated: srp.NotEncapsulated}, SystemFrom: from, RingID: ring, Seq: seq, Payload: []byte("x")}
	return m.AppendEncode(nil)
}

var ring1 = srp.RingID{Rep: 1, Seq: 8}

func newRing(t *testing.T, mode Mode) *Ring {
	t.Helper()
	r, err := New(Config{Mode: mode, Links: 2, Token: time.Second, LinkAddrs: []string{"10.0.0.1", "10.0.1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// drive feeds a token stream every interval for d, on the links listed by on(i), ticking the
// ring as it goes, and returns how many tokens were delivered.
func drive(r *Ring, start time.Duration, d, interval time.Duration, first uint32, on func(i int) []int) (time.Duration, uint32, int) {
	now, seq, delivered := start, first, 0
	for ; now < start+d; now += interval {
		r.Tick(now)
		for _, l := range on(int(seq)) {
			if r.Receive(now, l, token(ring1, seq)) {
				delivered++
			}
		}
		seq++
	}
	r.Tick(now)
	return now, seq, delivered
}

func both(int) []int  { return []int{0, 1} }
func only0(int) []int { return []int{0} }

// Active mode (corosync 2.x): every datagram goes on every link and the second copy is dropped.
func TestActiveSendsEverywhereDropsDuplicates(t *testing.T) {
	r := newRing(t, Active)
	var links []int
	r.Send(0, srp.Outgoing{Type: srp.TypeMcast, Data: mcast(ring1, 2, 1)}, func(l int, _ srp.Outgoing) { links = append(links, l) })
	if len(links) != 2 {
		t.Fatalf("active send used links %v, want both", links)
	}
	m := mcast(ring1, 2, 1)
	if !r.Receive(0, 1, m) || r.Receive(0, 0, m) {
		t.Fatal("want the first copy delivered and the second dropped")
	}
	if !r.Receive(0, 0, mcast(ring1, 2, 2)) {
		t.Fatal("a new message was dropped")
	}
	// A retransmitted token with the same token_seq after it was delivered is a duplicate; a
	// token of another ring is not.
	if !r.Receive(0, 0, token(ring1, 5)) || r.Receive(1, 0, token(ring1, 5)) || !r.Receive(1, 0, token(srp.RingID{Rep: 1, Seq: 12}, 5)) {
		t.Fatal("token identity wrong")
	}
	if r.Counters().Duplicates != 2 {
		t.Fatalf("duplicates %d, want 2", r.Counters().Duplicates)
	}
}

// Cutting link 1 marks it FAULTY once threshold tokens went missing on it, within
// threshold × (token interval) + token_expired_timeout; traffic goes on over link 0; when link 1
// heals it is re-enabled after a clean recovery window.
func TestActiveFaultAndRecovery(t *testing.T) {
	r := newRing(t, Active)
	cfg := r.Config()
	now, seq, _ := drive(r, 0, 500*time.Millisecond, 10*time.Millisecond, 1, both)
	if ev := r.Events(); len(ev) != 0 {
		t.Fatalf("events on a healthy ring: %v", ev)
	}
	cut := now
	now, seq, delivered := drive(r, now, 2*time.Second, 10*time.Millisecond, seq, only0)
	if delivered != 200 {
		t.Fatalf("delivered %d of 200 tokens over the surviving link", delivered)
	}
	ev := r.Events()
	if len(ev) != 1 || ev[0].Link != 1 || !ev[0].Faulty {
		t.Fatalf("events after the cut: %+v", ev)
	}
	bound := time.Duration(cfg.ProblemCountThreshold)*10*time.Millisecond + cfg.TokenExpiredTimeout + 10*time.Millisecond
	if took := ev[0].At - cut; took > bound {
		t.Fatalf("marked faulty after %v, bound %v", took, bound)
	}
	st := r.Status()
	if !st[1].Faulty || st[1].Text != "Marking ringid 1 interface 10.0.1.1 FAULTY" || st[0].Text != "ring 0 active with no faults" {
		t.Fatalf("status %+v", st)
	}
	// Heal.
	_, _, _ = drive(r, now, 3*time.Second, 10*time.Millisecond, seq, both)
	ev = r.Events()
	if len(ev) != 1 || ev[0].Faulty || ev[0].Link != 1 {
		t.Fatalf("events after heal: %+v", ev)
	}
	if st := r.Status(); st[1].Faulty || st[1].Text != "ring 1 active with no faults" {
		t.Fatalf("status after heal %+v", st)
	}
}

// Both links cut: nothing arrives, nothing is delivered, and no link is marked faulty — the
// last working ring is never marked, so srp sees an ordinary token loss.
func TestLastLinkNeverFaulty(t *testing.T) {
	r := newRing(t, Active)
	drive(r, 0, 3*time.Second, 10*time.Millisecond, 1, func(i int) []int {
		if i < 100 {
			return only0(i)
		}
		return nil
	})
	r.Events()
	if st := r.Status(); st[0].Faulty {
		t.Fatalf("link 0 marked faulty: %+v", st)
	}
}

// Passive mode alternates links per token and per multicast, skips a faulty link, and detects a
// link whose receive count lags the other's by more than the threshold.
func TestPassiveAlternatesAndDetectsLag(t *testing.T) {
	r := newRing(t, Passive)
	var got []int
	for i := 0; i < 4; i++ {
		r.Send(0, srp.Outgoing{Type: srp.TypeORFToken, Data: token(ring1, uint32(i))}, func(l int, _ srp.Outgoing) { got = append(got, l) })
	}
	if want := []int{0, 1, 0, 1}; !equal(got, want) {
		t.Fatalf("passive token links %v, want %v", got, want)
	}
	// Tokens arrive alternately; then link 1 stops.
	now, seq, _ := drive(r, 0, 200*time.Millisecond, 10*time.Millisecond, 1, func(i int) []int { return []int{i % 2} })
	_, _, _ = drive(r, now, time.Second, 10*time.Millisecond, seq, only0)
	ev := r.Events()
	if len(ev) != 1 || ev[0].Link != 1 || !ev[0].Faulty {
		t.Fatalf("passive lag not detected: %+v", ev)
	}
	got = nil
	r.Send(0, srp.Outgoing{Type: srp.TypeMcast, Data: mcast(ring1, 1, 1)}, func(l int, _ srp.Outgoing) { got = append(got, l) })
	r.Send(0, srp.Outgoing{Type: srp.TypeMcast, Data: mcast(ring1, 1, 2)}, func(l int, _ srp.Outgoing) { got = append(got, l) })
	if !equal(got, []int{0, 0}) {
		t.Fatalf("multicasts went to %v with link 1 faulty", got)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// corosync 2.x's rule: threshold × token_expired_timeout must stay 50 ms under the token.
func TestCheckTiming(t *testing.T) {
	if _, err := New(Config{Mode: Active, Links: 2, Token: time.Second, TokenExpiredTimeout: 100 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "must not exceed token - 50 ms") {
		t.Fatalf("10 × 100 ms with token 1 s accepted: %v", err)
	}
	r, err := New(Config{Mode: Active, Links: 2, Token: time.Second})
	if err != nil || r.Config().TokenExpiredTimeout != 95*time.Millisecond {
		t.Fatalf("derived default: %v %v", r.Config().TokenExpiredTimeout, err)
	}
	if _, err := New(Config{Mode: None, Links: 2}); err == nil {
		t.Fatal("two links without a mode accepted")
	}
}

// Property (active mode): whatever subset of links each datagram arrives on, in whatever order,
// a datagram is delivered exactly once if it arrived on at least one link, and never otherwise.
func TestActiveDeliversExactlyOnce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r, err := New(Config{Mode: Active, Links: 3, Token: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n := rapid.IntRange(1, 300).Draw(t, "messages")
		type arrival struct {
			msg, link int
		}
		var arrivals []arrival
		for m := 0; m < n; m++ {
			for l := 0; l < 3; l++ {
				if rapid.Bool().Draw(t, "arrives") {
					arrivals = append(arrivals, arrival{m, l})
				}
			}
		}
		perm := rapid.Permutation(arrivals).Draw(t, "order")
		delivered := map[int]int{}
		arrived := map[int]bool{}
		for i, a := range perm {
			now := time.Duration(i) * time.Millisecond
			r.Tick(now)
			var d []byte
			if a.msg%2 == 0 {
				d = mcast(ring1, 2, uint32(a.msg))
			} else {
				d = token(ring1, uint32(a.msg))
			}
			arrived[a.msg] = true
			if r.Receive(now, a.link, d) {
				delivered[a.msg]++
			}
		}
		for m := 0; m < n; m++ {
			want := 0
			if arrived[m] {
				want = 1
			}
			if delivered[m] != want {
				t.Fatalf("message %d delivered %d times, want %d", m, delivered[m], want)
			}
		}
	})
}

// Hostile input never panics: a bad link number is dropped, and truncated or garbage datagrams
// are passed to srp (whose codec counts and drops them) without touching dedup state.
func TestHostileInput(t *testing.T) {
	r := newRing(t, Active)
	full := token(ring1, 3)
	cases := []struct {
		name string
		link int
		data []byte
		want bool
	}{
		{"negative link", -1, full, false},
		{"link out of range", 2, full, false},
		{"empty", 0, nil, true},
		{"garbage", 0, []byte("not a totem header at all"), true},
		{"truncated token", 0, full[:20], true},
		{"truncated token again", 1, full[:20], true},
	}
	for _, c := range cases {
		if got := r.Receive(0, c.link, c.data); got != c.want {
			t.Errorf("%s: deliver=%v, want %v", c.name, got, c.want)
		}
	}
	if !r.Receive(0, 0, full) {
		t.Fatal("a valid token after garbage was dropped")
	}
}

// FuzzReceive: arbitrary datagrams on arbitrary links, interleaved with ticks, never panic and
// never deliver the same identified datagram twice.
func FuzzReceive(f *testing.F) {
	f.Add(token(ring1, 3), mcast(ring1, 2, 9), uint8(1))
	f.Add([]byte{0x70, 0xc0, 3, 0}, []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, a, b []byte, links uint8) {
		r, err := New(Config{Mode: Mode(1 + links%2), Links: 2, Token: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range [][]byte{a, b, a, b} {
			now := time.Duration(i) * 50 * time.Millisecond
			r.Tick(now)
			got := r.Receive(now, i%2, d)
			if _, _, ok := identify(d); ok && i >= 2 && got {
				t.Fatalf("identified datagram delivered twice")
			}
		}
	})
}

func tokenFrom(ring srp.RingID, from srp.NodeID, tokenSeq uint32) []byte {
	t := srp.ORFToken{Header: srp.Header{NodeID: from}, RingID: ring, TokenSeq: tokenSeq}
	return t.AppendEncode(nil)
}

// Passive token routing, step by step: each step either delivers a token on a link (recv)
// or has srp send one (send) and names the links the copy must go on. The representative
// (node 1 of ring1) starts rotations on the links in turn, a member forwards on the link the
// token came in on, a retransmission moves to the next link, and a faulty link is only ever
// a probe.
func TestPassiveTokenRouting(t *testing.T) {
	other := srp.RingID{Rep: 1, Seq: 12}
	type step struct {
		recv  bool
		link  int // recv: the arrival link
		data  []byte
		links []int // send: the links the copy must go on, in emit order
	}
	send := func(d []byte, links ...int) step { return step{data: d, links: links} }
	recv := func(link int, d []byte) step { return step{recv: true, link: link, data: d} }
	cases := []struct {
		name   string
		links  int
		faulty []int // links marked faulty before the steps
		steps  []step
		retx   uint64
	}{
		{"representative alternates per rotation", 2, nil, []step{
			send(tokenFrom(ring1, 1, 1), 0), recv(0, tokenFrom(ring1, 3, 3)),
			send(tokenFrom(ring1, 1, 4), 1), recv(1, tokenFrom(ring1, 3, 6)),
			send(tokenFrom(ring1, 1, 7), 0),
		}, 0},
		{"member forwards on the arrival link", 2, nil, []step{
			recv(1, tokenFrom(ring1, 1, 1)), send(tokenFrom(ring1, 2, 2), 1),
			recv(1, tokenFrom(ring1, 1, 4)), send(tokenFrom(ring1, 2, 5), 1),
			recv(0, tokenFrom(ring1, 1, 7)), send(tokenFrom(ring1, 2, 8), 0),
		}, 0},
		{"a late copy on the other link does not move the arrival link", 2, nil, []step{
			recv(1, tokenFrom(ring1, 1, 1)), recv(0, tokenFrom(ring1, 1, 1)), send(tokenFrom(ring1, 2, 2), 1),
		}, 0},
		{"retransmission goes on the next link", 2, nil, []step{
			recv(1, tokenFrom(ring1, 1, 1)), send(tokenFrom(ring1, 2, 2), 1),
			send(tokenFrom(ring1, 2, 2), 0), send(tokenFrom(ring1, 2, 2), 1),
			recv(0, tokenFrom(ring1, 1, 4)), send(tokenFrom(ring1, 2, 5), 0),
		}, 2},
		{"representative's retransmission moves too", 2, nil, []step{
			send(tokenFrom(ring1, 1, 1), 0), send(tokenFrom(ring1, 1, 1), 1),
		}, 1},
		{"three links: retransmissions cycle", 3, nil, []step{
			recv(2, tokenFrom(ring1, 1, 1)), send(tokenFrom(ring1, 2, 2), 2),
			send(tokenFrom(ring1, 2, 2), 0), send(tokenFrom(ring1, 2, 2), 1), send(tokenFrom(ring1, 2, 2), 2),
		}, 3},
		{"three links, one faulty: retransmissions skip it and probe it", 3, []int{1}, []step{
			recv(0, tokenFrom(ring1, 1, 1)), send(tokenFrom(ring1, 2, 2), 0, 1),
			send(tokenFrom(ring1, 2, 2), 2, 1), send(tokenFrom(ring1, 2, 2), 0, 1),
		}, 2},
		{"arrival on a faulty link: round robin over the healthy ones", 2, []int{1}, []step{
			recv(1, tokenFrom(ring1, 1, 1)), send(tokenFrom(ring1, 2, 2), 0, 1),
		}, 0},
		{"a token of another ring is not forwarded by arrival", 2, nil, []step{
			recv(1, tokenFrom(ring1, 1, 1)), send(tokenFrom(other, 2, 1), 0),
		}, 0},
		{"a new token after a retransmission is not a retransmission", 2, nil, []step{
			send(tokenFrom(ring1, 1, 1), 0), send(tokenFrom(ring1, 1, 1), 1), send(tokenFrom(ring1, 1, 4), 1),
		}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := New(Config{Mode: Passive, Links: c.links, Token: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range c.faulty {
				r.links[l].faulty = true
			}
			for i, s := range c.steps {
				if s.recv {
					r.Receive(0, s.link, s.data)
					continue
				}
				var got []int
				r.Send(0, srp.Outgoing{Type: srp.TypeORFToken, Data: s.data}, func(l int, _ srp.Outgoing) { got = append(got, l) })
				if !equal(got, s.links) {
					t.Fatalf("step %d: token went on links %v, want %v", i, got, s.links)
				}
			}
			if got := r.Counters().TokenRetransmits; got != c.retx {
				t.Fatalf("TokenRetransmits %d, want %d", got, c.retx)
			}
		})
	}
}

// Property (passive mode): whatever tokens arrive on whatever links and whatever srp sends or
// sends again, each token send puts exactly one copy on a healthy link (plus a probe on every
// faulty link), and a retransmission never takes the healthy link its previous copy took
// while another healthy link exists.
func TestPassiveOneCopyRetransmissionMoves(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(t, "links")
		r, err := New(Config{Mode: Passive, Links: n, Token: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n - 1 {
			r.links[i].faulty = rapid.Bool().Draw(t, "faulty")
		}
		rings := []srp.RingID{ring1, {Rep: 2, Seq: 9}}
		draw := func() []byte {
			return tokenFrom(rapid.SampledFrom(rings).Draw(t, "ring"), srp.NodeID(rapid.IntRange(1, 3).Draw(t, "from")), uint32(rapid.IntRange(1, 6).Draw(t, "seq")))
		}
		var last []byte
		lastHealthy := -1
		for step := range rapid.IntRange(1, 60).Draw(t, "steps") {
			now := time.Duration(step) * 10 * time.Millisecond
			r.Tick(now)
			if rapid.Bool().Draw(t, "receive") {
				r.Receive(now, rapid.IntRange(0, n-1).Draw(t, "link"), draw())
				continue
			}
			d := draw()
			if last != nil && rapid.Bool().Draw(t, "again") {
				d = last
			}
			var faulty []bool
			healthy := 0
			for _, st := range r.Status() {
				faulty = append(faulty, st.Faulty)
				if !st.Faulty {
					healthy++
				}
			}
			var copies []int
			r.Send(now, srp.Outgoing{Type: srp.TypeORFToken, Data: d}, func(l int, _ srp.Outgoing) { copies = append(copies, l) })
			got, probes := -1, 0
			for _, l := range copies {
				if faulty[l] {
					probes++
				} else if got >= 0 {
					t.Fatalf("step %d: copies on healthy links %v", step, copies)
				} else {
					got = l
				}
			}
			if got < 0 || probes != n-healthy {
				t.Fatalf("step %d: copies %v with faulty %v: want one healthy link and a probe on each faulty one", step, copies, faulty)
			}
			if string(d) == string(last) && healthy > 1 && got == lastHealthy {
				t.Fatalf("step %d: retransmission on link %d again", step, got)
			}
			last, lastHealthy = d, got
		}
	})
}
