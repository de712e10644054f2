package srp

import (
	"math"
	"slices"
	"testing"
	"time"
)

// Issue 12: nothing a peer sends changes protocol state before it is validated. Each rule of
// validate.go gets one forged datagram fed to a node of a formed 3-node ring (nodelist
// 1..3) or to a node alone in GATHER; the test checks the drop counter that rule names and
// that the state the datagram aimed at is untouched. Each row was shown able to fail by
// disabling its check (see the commit message).

func forgedCluster(t *testing.T) *cluster {
	t.Helper()
	c := newCluster(t, 3)
	base := c.cfg
	c.cfg = func(id NodeID) Config {
		cfg := base(id)
		cfg.Nodelist = []NodeID{1, 2, 3}
		return cfg
	}
	// Rebuild the nodes with the nodelist.
	c.nodes, c.ids = map[NodeID]*tnode{}, nil
	for i := 1; i <= 3; i++ {
		c.add(NodeID(i))
	}
	c.startAll()
	c.mustConverge(30*time.Second, c.ids...)
	return c
}

func encJoin(j Join) []byte { return j.AppendEncode(nil) }

func gatherVictim(t *testing.T, c *cluster) {
	t.Helper()
	c.partition([]NodeID{2}, []NodeID{1, 3})
	c.crash(2)
	c.restart(2)
	v := c.nodes[2]
	// The JOIN names node 3 alone: a JOIN carrying {2,3} would count as node 3's consensus
	// the moment node 2 adopts it (gather.go), and node 2, the lowest, would commit at once.
	j := encJoin(Join{Header: Header{NodeID: 3}, SystemFrom: 3, RingSeq: v.p.RingID().Seq, ProcList: []NodeID{3}})
	if err := v.p.Step(c.now, j); err != nil {
		t.Fatal(err)
	}
	c.collect(v)
	c.run(10 * time.Millisecond)
	if !slices.Equal(v.p.procList, []NodeID{2, 3}) {
		t.Fatalf("victim proc %v, want [2 3]", v.p.procList)
	}
}

func TestForgedPacketRules(t *testing.T) {
	type snapshot struct {
		state       State
		ring        RingID
		tokenRingID uint64
		proc        []NodeID
		failed      []NodeID
		myTokenSeq  uint32
	}
	snap := func(p *Processor) snapshot {
		return snapshot{p.state, p.ringID, p.tokenRingIDSeq, slices.Clone(p.procList), slices.Clone(p.failedList), p.myTokenSeq}
	}
	cases := []struct {
		name string
		// gather: feed the victim (node 2) while it is alone in GATHER instead of on the ring.
		gather bool
		// prep adjusts the victim before the snapshot (to reach a corner).
		prep    func(p *Processor)
		build   func(p *Processor) []byte
		counter func(c Counters) uint64
	}{
		{
			name: "JOIN from an unlisted nodeid with a ring sequence near 2^64",
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: 99}, SystemFrom: 99, RingSeq: math.MaxUint64 - 3, ProcList: []NodeID{99}})
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name: "JOIN from a listed nodeid naming an unlisted one",
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: 3}, SystemFrom: 3, RingSeq: p.ringID.Seq, ProcList: []NodeID{1, 2, 3, 77}})
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name: "JOIN from a listed nodeid with a ring sequence at the wrap ceiling",
			prep: func(p *Processor) { p.tokenRingIDSeq = maxRingSeq - 8 }, // not a jump
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: 3}, SystemFrom: 3, RingSeq: maxRingSeq, ProcList: []NodeID{1, 2, 3}})
			},
			counter: func(c Counters) uint64 { return c.DropAbsurd },
		},
		{
			name: "JOIN whose ring sequence jumps more than 2^40",
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: 3}, SystemFrom: 3, RingSeq: p.knownRingSeq() + maxRingSeqJump + 1, ProcList: []NodeID{1, 2, 3}})
			},
			counter: func(c Counters) uint64 { return c.DropAbsurd },
		},
		{
			name: "JOIN dropped by the OPERATIONAL filter does not raise the ring sequence",
			build: func(p *Processor) []byte {
				// Names me failed: the per-state filter drops it; corosync raised
				// token_ring_id_seq first.
				return encJoin(Join{Header: Header{NodeID: 3}, SystemFrom: 3, RingSeq: p.ringID.Seq + 1000, ProcList: []NodeID{1, 3}, FailedList: []NodeID{2}})
			},
			counter: func(c Counters) uint64 { return c.DropJoin },
		},
		{
			name: "LEAVE claiming to come from me",
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: LeaveDummyNodeID}, SystemFrom: 2, RingSeq: p.ringID.Seq, ProcList: []NodeID{1, 3}, FailedList: []NodeID{2}})
			},
			counter: func(c Counters) uint64 { return c.DropForged },
		},
		{
			name:   "LEAVE claiming to come from me, while in GATHER",
			gather: true,
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: LeaveDummyNodeID}, SystemFrom: 2, RingSeq: p.ringID.Seq, FailedList: []NodeID{2}})
			},
			counter: func(c Counters) uint64 { return c.DropForged },
		},
		{
			name:   "JOIN claiming to come from me with my id failed, while in GATHER",
			gather: true,
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: 2}, SystemFrom: 2, RingSeq: p.ringID.Seq, ProcList: []NodeID{2, 3}, FailedList: []NodeID{2}})
			},
			counter: nil, // ignored like a stale own copy: not counted, nothing changes
		},
		{
			name: "JOIN claiming to come from me with a ring sequence near 2^64",
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: 2}, SystemFrom: 2, RingSeq: math.MaxUint64 - 1, ProcList: []NodeID{1, 2, 3}})
			},
			counter: func(c Counters) uint64 { return c.DropAbsurd },
		},
		{
			name: "LEAVE by one node naming another as the leaver",
			build: func(p *Processor) []byte {
				return encJoin(Join{Header: Header{NodeID: LeaveDummyNodeID}, SystemFrom: 1, RingSeq: p.ringID.Seq, ProcList: []NodeID{1, 3}, FailedList: []NodeID{3}})
			},
			counter: func(c Counters) uint64 { return c.DropForged },
		},
		{
			name: "MERGE_DETECT from an unlisted nodeid",
			build: func(p *Processor) []byte {
				md := MergeDetect{Header: Header{NodeID: 50}, SystemFrom: 50, RingID: RingID{Rep: 50, Seq: 1}}
				return md.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name: "MCAST of a foreign ring from an unlisted nodeid",
			build: func(p *Processor) []byte {
				m := Mcast{Header: Header{NodeID: 60, Encapsulated: NotEncapsulated}, SystemFrom: 60, Seq: 1, RingID: RingID{Rep: 60, Seq: 8}, Payload: []byte("x")}
				return m.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name:   "commit token with a ring sequence near 2^64, while in GATHER",
			gather: true,
			build: func(p *Processor) []byte {
				ct := CommitToken{Header: Header{NodeID: 2}, TokenSeq: 1, RingID: RingID{Rep: 2, Seq: math.MaxUint64 - 1}, Addr: []NodeID{2, 3}, Members: make([]CommitMember, 2)}
				return ct.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropAbsurd },
		},
		{
			name:   "commit token naming an unlisted nodeid, while in GATHER",
			gather: true,
			build: func(p *Processor) []byte {
				ct := CommitToken{Header: Header{NodeID: 2}, TokenSeq: 1, RingID: RingID{Rep: 2, Seq: p.ringID.Seq + 4}, Addr: []NodeID{2, 40}, Members: make([]CommitMember, 2)}
				return ct.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name:   "commit token whose representative is not a member, while in GATHER",
			gather: true,
			build: func(p *Processor) []byte {
				ct := CommitToken{Header: Header{NodeID: 2}, TokenSeq: 1, RingID: RingID{Rep: 5, Seq: p.ringID.Seq + 4}, Addr: []NodeID{2, 3}, Members: make([]CommitMember, 2)}
				return ct.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropCommitToken },
		},
		{
			name: "commit token with a ring sequence near 2^64, while OPERATIONAL",
			build: func(p *Processor) []byte {
				ct := CommitToken{Header: Header{NodeID: 1}, TokenSeq: 1, RingID: RingID{Rep: 1, Seq: math.MaxUint64 - 1}, Addr: []NodeID{1, 2, 3}, Members: make([]CommitMember, 3)}
				return ct.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropAbsurd },
		},
		{
			name: "ORF token of my ring from an unlisted nodeid",
			build: func(p *Processor) []byte {
				tok := ORFToken{Header: Header{NodeID: 42}, Seq: p.myAru, TokenSeq: p.myTokenSeq + 1, ARU: p.myAru, RingID: p.ringID}
				return tok.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name: "ORF token naming an unlisted aru_addr",
			build: func(p *Processor) []byte {
				tok := ORFToken{Header: Header{NodeID: 1}, Seq: p.myAru, TokenSeq: p.myTokenSeq + 1, ARU: p.myAru, ARUAddr: 42, RingID: p.ringID}
				return tok.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name: "TOKEN_HOLD_CANCEL from an unlisted nodeid",
			build: func(p *Processor) []byte {
				hc := TokenHoldCancel{Header: Header{NodeID: 42}, RingID: p.ringID}
				return hc.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name:   "commit token from an unlisted nodeid, while in GATHER",
			gather: true,
			build: func(p *Processor) []byte {
				ct := CommitToken{Header: Header{NodeID: 42}, TokenSeq: 1, RingID: RingID{Rep: 2, Seq: p.ringID.Seq + 4}, Addr: []NodeID{2, 3}, Members: make([]CommitMember, 2)}
				return ct.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropUnlisted },
		},
		{
			name: "ORF token whose token_seq jumps ahead",
			build: func(p *Processor) []byte {
				tok := ORFToken{Header: Header{NodeID: 1}, Seq: p.myAru, TokenSeq: p.myTokenSeq + maxTokenSeqJump + 1, ARU: p.myAru, RingID: p.ringID}
				return tok.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropAbsurd },
		},
		{
			name: "ORF token whose seq leads my aru by more than two sort queues",
			build: func(p *Processor) []byte {
				tok := ORFToken{Header: Header{NodeID: 1}, Seq: p.myAru + maxSeqAhead + 1, TokenSeq: p.myTokenSeq + 1, ARU: p.myAru, RingID: p.ringID}
				return tok.AppendEncode(nil)
			},
			counter: func(c Counters) uint64 { return c.DropAbsurd },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := forgedCluster(t)
			victim := c.nodes[2]
			if tc.gather {
				// Node 2 restarts cut off, learns of node 3 from one JOIN and waits for
				// node 3's agreement: in GATHER with proc {2,3}.
				gatherVictim(t, c)
				if victim.p.State() != Gather {
					t.Fatalf("victim not in GATHER: %s", c.describe())
				}
			}
			p := victim.p
			if tc.prep != nil {
				tc.prep(p)
			}
			before, cb := snap(p), p.Counters()
			if err := p.Step(c.now, tc.build(p)); err != nil {
				t.Fatalf("forged datagram did not decode: %v", err)
			}
			c.collect(victim)
			after, ca := snap(p), p.Counters()
			t.Logf("asserts: dropped by its rule, state %s ring %v token ring seq %d proc %v failed %v unchanged",
				before.state, before.ring, before.tokenRingID, before.proc, before.failed)
			if tc.counter != nil && tc.counter(ca) != tc.counter(cb)+1 {
				t.Errorf("drop counter did not move: before %+v after %+v", cb, ca)
			}
			if !slices.Equal(after.proc, before.proc) || !slices.Equal(after.failed, before.failed) ||
				after.state != before.state || after.ring != before.ring || after.tokenRingID != before.tokenRingID ||
				after.myTokenSeq != before.myTokenSeq {
				t.Errorf("state changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if setHas(p.failedList, p.myID) {
				t.Errorf("node %d is in its own failed set %v", p.myID, p.failedList)
			}
		})
	}
}

// The reported livelock: 15 JOINs near 2^64 from an unlisted nodeid (and 15 from a listed
// one, which an unencrypted udpu ring cannot tell from the real node) leave the ring as it
// was; the ring sequence stays far from the wrap and keeps rising across later rings.
func TestForgedJoinFloodKeepsRing(t *testing.T) {
	c := forgedCluster(t)
	ring := c.nodes[1].p.RingID()
	for i := range 30 {
		from := NodeID(99)
		if i%2 == 1 {
			from = 3
		}
		j := encJoin(Join{Header: Header{NodeID: from}, SystemFrom: from, RingSeq: math.MaxUint64 - uint64(i), ProcList: []NodeID{from}})
		for _, id := range c.ids {
			c.enqueue(from, id, j)
		}
	}
	c.run(10 * time.Second)
	if !c.converged(c.ids...) || c.nodes[1].p.RingID() != ring {
		t.Fatalf("ring changed or stalled after the forged JOINs (was %v):\n%s", ring, c.describe())
	}
	t.Logf("asserts: ring %v unchanged after 30 JOINs near 2^64", ring)
	// A genuine membership change still gets a higher ring id.
	c.crash(3)
	c.mustConverge(30*time.Second, 1, 2)
	if got := c.nodes[1].p.RingID(); got.Seq <= ring.Seq || got.Seq > ring.Seq+100 {
		t.Fatalf("new ring %v after %v: the sequence must rise a little", got, ring)
	}
}

// A forged LEAVE naming node 2, sent to node 2 while the ring re-forms, must not put node 2
// in its own failed set: it keeps forming rings (here: a singleton, then the full ring).
func TestForgedLeaveNamingReceiver(t *testing.T) {
	c := forgedCluster(t)
	gatherVictim(t, c)
	victim := c.nodes[2].p
	leave := encJoin(Join{Header: Header{NodeID: LeaveDummyNodeID}, SystemFrom: 2, RingSeq: victim.RingID().Seq, FailedList: []NodeID{2}})
	if err := victim.Step(c.now, leave); err != nil {
		t.Fatal(err)
	}
	c.collect(c.nodes[2])
	c.mustConverge(30*time.Second, 2)
	c.heal()
	c.mustConverge(60*time.Second, c.ids...)
	t.Logf("asserts: node 2 formed a singleton ring and then rejoined {1,2,3} after a LEAVE naming it")
}

// Oversized datagrams are counted apart from other decode errors (status shows both).
func TestDecodeOversizeCounted(t *testing.T) {
	c := forgedCluster(t)
	p := c.nodes[2].p
	tok := ORFToken{Header: Header{NodeID: 1}, RingID: p.ringID}
	big := append(tok.AppendEncode(nil), make([]byte, ORFTokenMaxBytes)...)
	if err := p.Step(c.now, big); err == nil {
		t.Fatal("oversized ORF token decoded")
	}
	if err := p.Step(c.now, big[:HeaderSize-1]); err == nil {
		t.Fatal("truncated datagram decoded")
	}
	if got := p.Counters(); got.DecodeErrors != 2 || got.DecodeOversize != 1 {
		t.Fatalf("decode errors %d oversize %d, want 2 and 1", got.DecodeErrors, got.DecodeOversize)
	}
}

// SetNodelist replaces the allowed ids at run time; an empty list switches the check off.
func TestSetNodelist(t *testing.T) {
	c := forgedCluster(t)
	p := c.nodes[1].p
	j := encJoin(Join{Header: Header{NodeID: 3}, SystemFrom: 3, RingSeq: p.ringID.Seq, ProcList: []NodeID{1, 2, 3}})
	p.SetNodelist([]NodeID{2, 1})
	p.Step(c.now, j)
	c.collect(c.nodes[1])
	if got := p.Counters().DropUnlisted; got != 1 {
		t.Fatalf("node 3 removed from the nodelist: DropUnlisted %d, want 1", got)
	}
	p.SetNodelist(nil)
	p.Step(c.now, j)
	c.collect(c.nodes[1])
	if got := p.Counters().DropUnlisted; got != 1 {
		t.Fatalf("nodelist check off: DropUnlisted %d, want still 1", got)
	}
}
