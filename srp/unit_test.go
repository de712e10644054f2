package srp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// §1.1: the rollover rule, including the case the protocol depends on.
func TestSeqCompare(t *testing.T) {
	cases := []struct {
		a, b    uint32
		lt, lte bool
		why     string
	}{
		{0, 0, false, true, "equal"},
		{1, 2, true, true, "plain"},
		{2, 1, false, false, "plain"},
		{0, 0xFFFFFFFF, false, false, "lte(0,0xFFFFFFFF) is false: token_seq 0 passes a reset filter"},
		{0xFFFFFFFF, 0, true, true, "0xFFFFFFFF is start−1, before 0"},
		{0xFFFFFFFE, 0xFFFFFFFF, true, true, "both high"},
		{0x80000000, 0x80000001, true, true, "threshold"},
		{0x80000001, 5, true, true, "high vs low: both shifted, 5 wraps above 0x7FFF0001"},
		{0xFFFFF000, 0x10, true, true, "rollover: 0x10 follows 0xFFFFF000"},
		{0x7FFFFFFF, 0x80000000, true, true, "threshold is not shifted"},
	}
	for _, c := range cases {
		if got := seqLT(c.a, c.b); got != c.lt {
			t.Errorf("lt(%#x,%#x)=%v want %v (%s)", c.a, c.b, got, c.lt, c.why)
		}
		if got := seqLTE(c.a, c.b); got != c.lte {
			t.Errorf("lte(%#x,%#x)=%v want %v (%s)", c.a, c.b, got, c.lte, c.why)
		}
	}
}

// §1.1 sort queue: a seq is stored only inside [head, head+16384) and only once; releasing
// moves the window.
func TestSortQueueWindow(t *testing.T) {
	q := newSortQueue()
	steps := []struct {
		op        string
		seq       uint32
		ok, outOf bool
	}{
		{"add", 1, true, false},
		{"add", 1, false, false}, // duplicate
		{"add", 16384, true, false},
		{"add", 16385, false, true}, // one past the window
		{"add", 0, false, true},     // below the head
		{"release", 10, false, false},
		{"add", 16385, true, false}, // the window moved
		{"add", 10, false, true},    // released seqs are gone for good
		{"add", 16394, true, false},
		{"add", 16395, false, true},
	}
	for i, s := range steps {
		switch s.op {
		case "add":
			ok, out := q.add(s.seq, []byte{byte(i)})
			if ok != s.ok || out != s.outOf {
				t.Fatalf("step %d add(%d) = %v,%v want %v,%v", i, s.seq, ok, out, s.ok, s.outOf)
			}
		case "release":
			q.release(s.seq, nil)
		}
	}
	if q.has(1) || !q.has(16384) || q.head != 11 {
		t.Fatalf("after release: has(1)=%v has(16384)=%v head=%d", q.has(1), q.has(16384), q.head)
	}
	// Around the 32-bit wrap the window is contiguous.
	q.reset(0xFFFFFFF0, nil)
	if ok, _ := q.add(0xFFFFFFF5, []byte{1}); !ok {
		t.Fatal("add below wrap")
	}
	if ok, _ := q.add(3, []byte{1}); !ok {
		t.Fatal("add across wrap")
	}
	q.release(2, nil)
	if q.has(0xFFFFFFF5) || !q.has(3) || q.head != 3 {
		t.Fatalf("release across wrap: head=%d", q.head)
	}
}

// §6.5 fcc_calculate: the per-visit budget.
func TestFlowControlBudget(t *testing.T) {
	cases := []struct {
		name         string
		fcc, backlog uint32
		queued       int
		pbl          uint32
		want         int
	}{
		{"idle ring: max_messages", 0, 0, 0, 0, 17},
		{"window nearly used", 40, 0, 0, 0, 10},
		{"window used up", 50, 0, 0, 0, 0},
		{"fcc above window wraps: cap not applied (corosync quirk)", 60, 0, 0, 0, 17},
		{"fair share of the backlog", 0, 100, 10, 10, 5}, // 50*10/(100+10-10)
		{"share rounds to 0: not applied", 0, 1000, 1, 1, 17},
	}
	for _, c := range cases {
		p, _ := NewProcessor(DefaultConfig(1, 2))
		p.state = Operational
		for range c.queued {
			p.newQueue.push(queuedMsg{})
		}
		p.myPbl = c.pbl
		p.tok = ORFToken{FCC: c.fcc, Backlog: c.backlog}
		if got := p.fccAllowed(); got != c.want {
			t.Errorf("%s: allowed %d want %d", c.name, got, c.want)
		}
	}
}

// §6.5 on a running ring: no node sends more than max_messages per visit, and any
// N consecutive visits (one rotation) send at most window_size messages.
func TestFlowControlOnRing(t *testing.T) {
	c := newCluster(t, 5)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	cfg := c.cfg(1)
	var visits []int
	for _, id := range c.ids {
		for k := range 400 {
			if err := c.nodes[id].p.Send(c.now, []byte(strings.Repeat("x", k%100)), Agreed); err != nil {
				t.Fatal(err)
			}
		}
		c.collect(c.nodes[id])
	}
	// Count new MCASTs per token visit by watching each node's Ready after a token.
	orig := c.nodes
	_ = orig
	done := func() bool {
		for _, id := range c.ids {
			if c.nodes[id].p.newQueue.len() > 0 {
				return false
			}
		}
		return true
	}
	for !done() {
		var tn *tnode
		if len(c.q) > 0 && c.q[0].data[3] == byte(TypeORFToken) {
			tn = c.nodes[c.q[0].to]
		}
		before := uint64(0)
		if tn != nil {
			before = tn.p.counters.McastSent
		}
		if !c.step(c.now + time.Minute) {
			t.Fatal("ring stalled")
		}
		if tn != nil {
			visits = append(visits, int(tn.p.counters.McastSent-before))
		}
	}
	for i, v := range visits {
		if v > cfg.MaxMessages {
			t.Fatalf("visit %d sent %d > max_messages %d", i, v, cfg.MaxMessages)
		}
		if i+5 <= len(visits) {
			sum := 0
			for _, x := range visits[i : i+5] {
				sum += x
			}
			if sum > cfg.WindowSize {
				t.Fatalf("visits %d..%d sent %d > window_size %d", i, i+4, sum, cfg.WindowSize)
			}
		}
	}
	c.run(2 * time.Second)
	if n := len(c.nodes[3].messages()); n != 2000 {
		t.Fatalf("delivered %d of 2000", n)
	}
}

// Send's contract: size limit, queue limit (MESSAGE_QUEUE_MAX = 4 MiB / (netmtu−90)),
// not running.
func TestSendLimits(t *testing.T) {
	p, err := NewProcessor(DefaultConfig(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(0, []byte("x"), Agreed); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("before Start: %v", err)
	}
	p.Start(0)
	if err := p.Send(0, make([]byte, 1411), Agreed); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("1411 bytes: %v", err)
	}
	if err := p.Send(0, make([]byte, 1410), Agreed); err != nil {
		t.Fatalf("1410 bytes: %v", err)
	}
	if want := 4194304/1410 - 1; p.QueueRoom() != want {
		t.Fatalf("QueueRoom %d want %d", p.QueueRoom(), want)
	}
	for p.QueueRoom() > 0 {
		if err := p.Send(0, []byte("y"), Agreed); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Send(0, []byte("z"), Agreed); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full queue: %v", err)
	}
}

// §8/§9: corosync 3.1.7's derived defaults.
func TestDefaultConfig(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		n                               int
		token, retrans, hold, consensus time.Duration
	}{
		{2, 3000 * ms, 714 * ms, 561 * ms, 3600 * ms},
		{3, 3650 * ms, 869 * ms, 685 * ms, 4380 * ms},
		{4, 4300 * ms, 1023 * ms, 808 * ms, 5160 * ms},
		{5, 4950 * ms, 1178 * ms, 932 * ms, 5940 * ms},
	}
	for _, c := range cases {
		cfg := DefaultConfig(1, c.n)
		if cfg.Token != c.token || cfg.TokenRetransmit != c.retrans || cfg.Hold != c.hold || cfg.Consensus != c.consensus {
			t.Errorf("n=%d: token %v retrans %v hold %v consensus %v", c.n, cfg.Token, cfg.TokenRetransmit, cfg.Hold, cfg.Consensus)
		}
		if cfg.Join != 50*ms || cfg.Merge != 200*ms || cfg.WindowSize != 50 || cfg.MaxMessages != 17 ||
			cfg.MissCountConst != 5 || cfg.FailRecvConst != 2500 || cfg.SeqnoUnchangedConst != 30 {
			t.Errorf("n=%d: fixed defaults %+v", c.n, cfg)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.NodeID = 0 }, "nodeid"},
		{func(c *Config) { c.Token = 0 }, "token: must be positive"},
		{func(c *Config) { c.Consensus = c.Join - 1 }, "consensus"},
		{func(c *Config) { c.SendJoin = 10 * time.Millisecond }, "Rand"},
		{func(c *Config) { c.WindowSize = 16380 }, "window_size + max_messages"},
		{func(c *Config) { c.MissCountConst = 0 }, "miss_count_const"},
		{func(c *Config) { c.NetMTU = 90 }, "netmtu"},
	}
	for _, c := range cases {
		cfg := DefaultConfig(1, 2)
		c.mod(&cfg)
		_, err := NewProcessor(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error mentioning %q, got %v", c.want, err)
		}
	}
}

// Wire §6 worked examples: the bytes gototem emits for a JOIN and for the initial ORF token
// are corosync's.
func TestWireExactJoinAndInitialToken(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p, _ := NewProcessor(DefaultConfig(1, 2))
	p.running = true
	p.procList = []NodeID{1, 2}
	p.ringID = RingID{Rep: 1, Seq: 8}
	p.emitJoin(0)
	want := unhex(`70 c0 03 03 00 01 00 00 00 00 00 00 00 01 00 00
		00 02 00 00 00 00 00 00 00 08 00 00 00 00 00 00
		00 01 00 00 00 02 00 00 00`)
	if got := p.Ready().Messages[0]; got.Dest != ToAll || !bytes.Equal(got.Data, want) {
		t.Fatalf("JOIN\n got %x\nwant %x", got.Data, want)
	}
	p.Advance()
	p.ringID = RingID{Rep: 1, Seq: 12}
	p.tokenTarget = 2
	p.sendInitialORFToken(0)
	want = unhex(`70 c0 03 00 00 01 00 00 00 00 00 00 00 00 00 00
		00 00 00 00 00 ff ff ff ff 01 00 00 00 01 00 00
		00 0c 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		00 00 00 00 00 00 00 00 00`)
	if got := p.Ready().Messages[0]; got.Dest != ToNode || got.To != 2 || !bytes.Equal(got.Data, want) {
		t.Fatalf("initial ORF token to %d\n got %x\nwant %x", got.To, got.Data, want)
	}
}

// §7.4: the LEAVE is a JOIN with header nodeid 0, self removed from proc and appended last
// to failed.
func TestLeaveWireFormat(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	p := c.nodes[2].p
	p.Leave(c.now)
	out := p.Ready().Messages
	if len(out) != 1 || out[0].Type != TypeJoin {
		t.Fatalf("Leave emitted %+v", out)
	}
	var j Join
	if err := j.Decode(out[0].Data); err != nil {
		t.Fatal(err)
	}
	if !j.IsLeave() || j.SystemFrom != 2 || j.FailedList[len(j.FailedList)-1] != 2 || containsID(j.ProcList, 2) {
		t.Fatalf("LEAVE %+v", j)
	}
	if p.Ready().NextTick != 0 {
		t.Fatal("timer armed after Leave")
	}
}

// §6.2 step 13: a missing seq goes on the rtr list only once it has been missing on
// miss_count_const token visits (time for a late multicast to arrive), and only once.
func TestMissCountBeforeRetransmitRequest(t *testing.T) {
	p, _ := NewProcessor(DefaultConfig(1, 2))
	p.state = Operational
	p.ringID = RingID{Rep: 1, Seq: 5}
	p.regular.add(1, []byte{1})
	p.regular.add(3, []byte{3})
	p.myAru, p.myHighSeqReceived = 1, 3
	for visit := 1; visit <= 6; visit++ {
		p.tok = ORFToken{Seq: 3, RTRList: p.tok.RTRList}
		p.addRetransmitRequests(p.regular)
		want := 0
		if visit >= p.cfg.MissCountConst {
			want = 1
		}
		if len(p.tok.RTRList) != want {
			t.Fatalf("visit %d: rtr list %v, want %d entries", visit, p.tok.RTRList, want)
		}
		if want == 1 && p.tok.RTRList[0] != (RTRItem{RingID: p.ringID, Seq: 2}) {
			t.Fatalf("visit %d: rtr entry %+v", visit, p.tok.RTRList[0])
		}
	}
	// Already listed by someone else: not added twice.
	p.tok = ORFToken{Seq: 3, RTRList: []RTRItem{{RingID: p.ringID, Seq: 2}}}
	p.addRetransmitRequests(p.regular)
	if len(p.tok.RTRList) != 1 {
		t.Fatalf("duplicate rtr entry: %v", p.tok.RTRList)
	}
}

// §6.2 step 8: a token whose token_seq is not above the last accepted one (a retransmitted
// copy) is dropped and changes nothing.
func TestDuplicateTokenFiltered(t *testing.T) {
	c := newCluster(t, 3)
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	var tok []byte
	c.dropFn = func(from, to NodeID, data []byte) bool {
		if tok == nil && to == 2 && data[3] == byte(TypeORFToken) {
			tok = slices.Clone(data)
		}
		return false
	}
	c.run(100 * time.Millisecond)
	c.dropFn = nil
	p := c.nodes[2].p
	before := p.Counters()
	if err := p.Step(c.now, tok); err != nil {
		t.Fatal(err)
	}
	after := p.Counters()
	if after.DropTokenDup != before.DropTokenDup+1 || after.TokensReceived != before.TokensReceived {
		t.Fatalf("replayed token: dup %d→%d received %d→%d", before.DropTokenDup, after.DropTokenDup,
			before.TokensReceived, after.TokensReceived)
	}
	if len(p.Ready().Messages) != 0 {
		t.Fatal("replayed token was forwarded")
	}
}

// §6.6 with gototem's order: a retransmitted copy of the last accepted token (same
// token_seq) must not count as a second visit. Its aru equals my_last_aru, so corosync's
// order (free before the duplicate filter) would release messages that a member behind a
// one-way cut never received (found by the simulator, `gototem sim --seed 1043`).
func TestDuplicateTokenDoesNotFreeMessages(t *testing.T) {
	p := idleRingNode(t, 3, 4, 0x10)
	for seq := uint32(0x16); seq <= 0x18; seq++ {
		m := Mcast{Header: Header{Encapsulated: NotEncapsulated, NodeID: 2}, SystemFrom: 2, Seq: seq, RingID: p.ringID}
		p.regular.add(seq, m.AppendEncode(nil))
	}
	p.myAru, p.myHighSeqReceived, p.myHighDelivered = 0x18, 0x18, 0x18
	tok := ORFToken{Header: Header{NodeID: 2}, Seq: 0x18, TokenSeq: 0x11, ARU: 0x18, RingID: p.ringID}
	if err := p.Step(0, tok.AppendEncode(nil)); err != nil {
		t.Fatal(err)
	}
	if p.lastReleased != 0x15 {
		t.Fatalf("first visit released up to %#x", p.lastReleased)
	}
	p.Advance()
	// The same token again (the sender's retransmission after the forward was lost).
	if err := p.Step(time.Millisecond, tok.AppendEncode(nil)); err != nil {
		t.Fatal(err)
	}
	if p.lastReleased != 0x15 || !p.regular.has(0x16) {
		t.Fatalf("a duplicate token freed messages up to %#x", p.lastReleased)
	}
}
