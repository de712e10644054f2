package knet

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// fragments splits msg as libknet's TX thread does: every fragment but the last carries mtu
// user bytes, all carry the message's seq and frag_num, frag_seq counts from 1.
func fragments(host HostID, seq uint16, msg []byte, mtu int) []Packet {
	if len(msg) <= mtu {
		return []Packet{NewData(host, seq, true, 0, msg)}
	}
	n := (len(msg) + mtu - 1) / mtu
	var out []Packet
	for k := 1; k <= n; k++ {
		p := NewData(host, seq, true, 0, msg[(k-1)*mtu:min(k*mtu, len(msg))])
		p.FragNum, p.FragSeq = uint8(n), uint8(k)
		out = append(out, p)
	}
	return out
}

func message(seq uint16, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(int(seq)*7 + i)
	}
	return b
}

func TestRxUnfragmentedDedup(t *testing.T) {
	var h HostRx
	p := NewData(2, 5, true, 0, []byte("token"))
	if m, r := h.Data(&p); r != RxDeliver || string(m) != "token" {
		t.Fatalf("first copy: %v %q", r, m)
	}
	if _, r := h.Data(&p); r != RxDuplicate {
		t.Fatalf("second copy (another link, or a replay): %v", r)
	}
	q := NewData(2, 6, false, 0, []byte("next"))
	if _, r := h.Data(&q); r != RxDeliver {
		t.Fatalf("next seq: %v", r)
	}
	if _, r := h.Data(&p); r != RxDuplicate {
		t.Fatalf("old copy after newer: %v", r)
	}
	if h.Stats[RxDeliver] != 2 || h.Stats[RxDuplicate] != 2 {
		t.Errorf("stats %v", h.Stats)
	}
}

func TestRxReassembly(t *testing.T) {
	msg := message(9, 2399) // knet-steady's 2399-byte mcast: 1446 + 953
	for name, order := range map[string][]int{
		"in order":        {0, 1},
		"last first":      {1, 0},
		"duplicate first": {0, 0, 1},
		"duplicate last":  {1, 1, 0},
	} {
		var h HostRx
		frags := fragments(1, 9, msg, 1446)
		var got []byte
		for i, idx := range order {
			m, r := h.Data(&frags[idx])
			want := RxHeld
			if i == len(order)-1 {
				want = RxDeliver
			}
			if r != want {
				t.Fatalf("%s: packet %d: %v, want %v", name, i, r, want)
			}
			got = m
		}
		if !bytes.Equal(got, msg) {
			t.Errorf("%s: reassembled %d bytes differ", name, len(got))
		}
		if _, r := h.Data(&frags[0]); r != RxDuplicate {
			t.Errorf("%s: fragment after delivery: %v", name, r)
		}
		if h.Pending() != 0 {
			t.Errorf("%s: %d buffers still pending", name, h.Pending())
		}
	}
	// Four fragments in a shuffled order, as formation's 4-fragment sync messages.
	msg = message(3, 482*3+100)
	frags := fragments(1, 3, msg, 482)
	var h HostRx
	for i, idx := range []int{2, 3, 0, 1} {
		m, r := h.Data(&frags[idx])
		if (i < 3 && r != RxHeld) || (i == 3 && (r != RxDeliver || !bytes.Equal(m, msg))) {
			t.Fatalf("fragment %d: %v", idx+1, r)
		}
	}
}

func TestRxExpiredAndBounded(t *testing.T) {
	var h HostRx
	frags := fragments(1, 10, message(10, 1000), 482)
	h.Data(&frags[0])
	// 40 newer messages push seq 10 out of the reassembly window (DefragBuffers+1).
	for s := uint16(11); s <= 50; s++ {
		p := NewData(1, s, true, 0, []byte{1})
		h.Data(&p)
	}
	if h.Pending() != 0 {
		t.Errorf("stale reassembly kept: %d pending", h.Pending())
	}
	if _, r := h.Data(&frags[1]); r != RxExpired {
		t.Errorf("fragment of a given-up message: %v", r)
	}

	// More partial messages than buffers: the least recently updated is recycled, the
	// pending count never exceeds the limit.
	small := NewHostRx(4)
	for s := uint16(100); s < 110; s++ {
		f := fragments(1, s, message(s, 600), 482)
		small.Data(&f[0])
		if small.Pending() > 4 {
			t.Fatalf("%d pending with a limit of 4", small.Pending())
		}
	}
	if small.Pending() != 4 {
		t.Errorf("%d pending, want 4", small.Pending())
	}
	f := fragments(1, 109, message(109, 600), 482)
	if m, r := small.Data(&f[1]); r != RxDeliver || !bytes.Equal(m, message(109, 600)) {
		t.Errorf("newest message: %v", r)
	}
}

func TestRxMalformed(t *testing.T) {
	base := fragments(1, 20, message(20, 1000), 482) // 482 482 36
	cases := map[string]func() []Packet{
		"frag_seq 0": func() []Packet {
			p := base[0]
			p.FragSeq = 0
			return []Packet{p}
		},
		"frag_seq past frag_num": func() []Packet {
			p := base[0]
			p.FragSeq = 4
			return []Packet{p}
		},
		"frag_num changes": func() []Packet {
			p := base[1]
			p.FragNum = 5
			return []Packet{base[0], p}
		},
		"sizes disagree": func() []Packet {
			p := base[1]
			p.Data = p.Data[:400]
			return []Packet{base[0], p}
		},
		"empty fragment": func() []Packet {
			p := base[0]
			p.Data = nil
			return []Packet{p}
		},
		"beyond MaxPacketSize": func() []Packet {
			p := NewData(1, 20, true, 0, make([]byte, 1000))
			p.FragNum, p.FragSeq = 200, 3
			return []Packet{p}
		},
		"last fragment overflows": func() []Packet {
			a := NewData(1, 20, true, 0, make([]byte, 60000))
			a.FragNum, a.FragSeq = 2, 1
			b := NewData(1, 20, true, 0, make([]byte, 6000))
			b.FragNum, b.FragSeq = 2, 2
			return []Packet{a, b}
		},
		"not data": func() []Packet { return []Packet{NewPing(1, 0, 0, 0, 20, true)} },
	}
	for name, mk := range cases {
		var h HostRx
		pkts := mk()
		var r RxResult
		for i := range pkts {
			_, r = h.Data(&pkts[i])
		}
		if r != RxMalformed {
			t.Errorf("%s: %v", name, r)
		}
	}
}

func TestRxSeqWrapAndRestart(t *testing.T) {
	var h HostRx
	// The sender's counter wraps 65535 -> 1 (libknet skips 0).
	for _, s := range []uint16{65533, 65534, 65535, 1, 2} {
		p := NewData(1, s, true, 0, []byte{byte(s)})
		if _, r := h.Data(&p); r != RxDeliver {
			t.Fatalf("seq %d: %v", s, r)
		}
	}
	old := NewData(1, 65535, true, 0, nil)
	if _, r := h.Data(&old); r != RxDuplicate {
		t.Errorf("replay of 65535 after the wrap: %v", r)
	}

	// The sender restarts: its counter starts again, so its seqs look old and would be
	// refused, until its first timed ping with seq 0 wipes the window.
	var g HostRx
	for s := uint16(1); s <= 300; s++ {
		p := NewData(1, s, true, 0, nil)
		g.Data(&p)
	}
	ping := NewPing(1, 0, 1, 0, 300, true)
	g.Ping(&ping)
	p := NewData(1, 1, true, 0, nil)
	if _, r := g.Data(&p); r != RxDuplicate {
		t.Fatalf("restarted sender's seq 1 before its ping: %v", r)
	}
	ping = NewPing(1, 0, 2, 0, 0, true)
	g.Ping(&ping)
	if _, r := g.Data(&p); r != RxDeliver {
		t.Errorf("restarted sender's seq 1 after its seq-0 ping: %v", r)
	}

	// Untimed ping with no data since the previous untimed ping: the window is wiped.
	var u HostRx
	d := NewData(1, 40, true, 0, nil)
	u.Data(&d)
	un := NewPing(1, 0, 0, 0, 40, false)
	u.Ping(&un) // data came before it: kept
	if _, r := u.Data(&d); r != RxDuplicate {
		t.Errorf("after an untimed ping following data: %v", r)
	}
	un.Seq = 41
	u.Ping(&un) // data (the duplicate) came in between: kept
	un.Seq = 42
	u.Ping(&un) // nothing since: wiped
	if _, r := u.Data(&d); r != RxDeliver {
		t.Errorf("after an untimed ping with no data since the last: %v", r)
	}

	// Reset (no link up) forgets everything.
	u.Reset()
	if _, r := u.Data(&d); r != RxDeliver {
		t.Errorf("after Reset: %v", r)
	}
}

// TestRxRandomDelivery: a sender's messages of random sizes, fragmented at a random MTU,
// each sent over two links (active mode), with packets reordered within a short span:
// every message is delivered exactly once and intact. The seed is printed for replay.
func TestRxRandomDelivery(t *testing.T) {
	seed := uint64(424242)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for round := 0; round < 50; round++ {
		var h HostRx
		mtu := 100 + rng.IntN(1400)
		start := uint16(rng.IntN(65536))
		var pkts []Packet
		msgs := map[uint16][]byte{}
		seq := start
		for i := 0; i < 60; i++ {
			if seq == 0 {
				seq = 1
			}
			m := message(seq, 1+rng.IntN(6000))
			msgs[seq] = m
			for _, f := range fragments(1, seq, m, mtu) {
				pkts = append(pkts, f, f)
			}
			seq++
		}
		// Local shuffles only: reordering stays well within the DefragBuffers window.
		for i := range pkts {
			j := min(len(pkts)-1, i+rng.IntN(6))
			pkts[i], pkts[j] = pkts[j], pkts[i]
		}
		got := map[uint16]int{}
		for i := range pkts {
			m, r := h.Data(&pkts[i])
			if r == RxMalformed || r == RxExpired {
				t.Fatalf("round %d (mtu %d start %d): packet %d seq %d: %v", round, mtu, start, i, pkts[i].Seq, r)
			}
			if r == RxDeliver {
				got[pkts[i].Seq]++
				if !bytes.Equal(m, msgs[pkts[i].Seq]) {
					t.Fatalf("round %d: seq %d corrupted", round, pkts[i].Seq)
				}
			}
		}
		for s := range msgs {
			if got[s] != 1 {
				t.Fatalf("round %d (mtu %d start %d): seq %d delivered %d times", round, mtu, start, s, got[s])
			}
		}
	}
}

func TestRxNoAllocs(t *testing.T) {
	var h HostRx
	msg := message(1, 3000)
	seq := uint16(1)
	pre := fragments(1, seq, msg, 1446)
	for i := range pre {
		h.Data(&pre[i]) // the first fragmented message allocates its defrag buffer
	}
	if a := testing.AllocsPerRun(100, func() {
		seq++
		p := NewData(1, seq, true, 0, msg[:100])
		h.Data(&p)
	}); a != 0 {
		t.Errorf("%.1f allocations per unfragmented packet", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		seq++
		for i := range pre {
			pre[i].Seq = seq
			h.Data(&pre[i])
		}
	}); a != 0 {
		t.Errorf("%.1f allocations per fragmented message", a)
	}
}
