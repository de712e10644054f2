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
