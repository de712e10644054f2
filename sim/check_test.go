package sim

import (
	"strings"
	"testing"

	"github.com/gototem/gototem/srp"
)

// logBuilder writes delivery logs by hand: each test starts from a correct history of
// three nodes on one ring and breaks exactly one thing, proving the checker for that
// invariant can fail (and that the correct history passes every checker).
type logBuilder struct {
	h    *History
	step uint64
}

func newLog() *logBuilder {
	b := &logBuilder{h: NewHistory([]srp.NodeID{1, 2, 3})}
	for _, id := range []srp.NodeID{1, 2, 3} {
		b.h.AddStart(id, 0, 0)
	}
	return b
}

func (b *logBuilder) next() uint64 { b.step++; return b.step }

func (b *logBuilder) send(from srp.NodeID, counter uint64, g srp.Guarantee) []byte {
	p := encodePayloadHeader(nil, MsgID{from, counter})
	p = append(p, "data"...)
	b.h.AddSent(MsgID{from, counter}, g, p, b.next(), 0)
	return p
}

func (b *logBuilder) recv(node srp.NodeID, p []byte) { b.h.AddReceived(node, p, b.next()) }

func (b *logBuilder) conf(node srp.NodeID, kind srp.ConfigurationKind, ring srp.RingID, members ...srp.NodeID) {
	b.h.AddConfig(node, srp.Configuration{Kind: kind, RingID: ring, Members: members}, b.next(), 0)
}

func (b *logBuilder) deliver(node srp.NodeID, p []byte, g srp.Guarantee) {
	id, _ := decodePayloadHeader(p)
	b.h.AddDelivery(node, srp.Message{Sender: id.Sender, Guarantee: g, Payload: p}, b.next(), 0)
}

var ring1 = srp.RingID{Rep: 1, Seq: 4}

// good builds: all three install ring 1/4, n1 sends a (AGREED) and b (SAFE), everyone
// receives both, then everyone delivers a, b.
func good() (*logBuilder, []byte, []byte) {
	b := newLog()
	for _, id := range []srp.NodeID{1, 2, 3} {
		b.conf(id, srp.Regular, ring1, 1, 2, 3)
	}
	a := b.send(1, 1, srp.Agreed)
	s := b.send(1, 2, srp.Safe)
	for _, id := range []srp.NodeID{1, 2, 3} {
		b.recv(id, a)
		b.recv(id, s)
	}
	return b, a, s
}

func TestCheckersPassCorrectHistory(t *testing.T) {
	b, a, s := good()
	for _, id := range []srp.NodeID{1, 2, 3} {
		b.deliver(id, a, srp.Agreed)
		b.deliver(id, s, srp.Safe)
	}
	if vs := b.h.Check(); len(vs) != 0 {
		t.Fatalf("a correct history was flagged: %v", vs[0])
	}
}

func TestCheckersCatchBrokenHistories(t *testing.T) {
	ring2 := srp.RingID{Rep: 1, Seq: 8}
	tests := []struct {
		name  string
		build func() *History
		want  string
	}{
		{"total order: n3 swaps two messages", func() *History {
			b, a, s := good()
			b.deliver(1, a, srp.Agreed)
			b.deliver(1, s, srp.Safe)
			b.deliver(2, a, srp.Agreed)
			b.deliver(2, s, srp.Safe)
			b.deliver(3, s, srp.Safe)
			b.deliver(3, a, srp.Agreed)
			return b.h
		}, InvTotalOrder},
		{"no duplication: n2 delivers a twice", func() *History {
			b, a, _ := good()
			b.deliver(2, a, srp.Agreed)
			b.deliver(2, a, srp.Agreed)
			return b.h
		}, InvNoDuplication},
		{"no creation: a message nobody sent", func() *History {
			b, _, _ := good()
			forged := encodePayloadHeader(nil, MsgID{2, 99})
			b.deliver(3, forged, srp.Agreed)
			return b.h
		}, InvNoCreation},
		{"no creation: payload altered in flight", func() *History {
			b, a, _ := good()
			bad := append([]byte(nil), a...)
			bad[len(bad)-1] ^= 0xff
			b.deliver(2, bad, srp.Agreed)
			return b.h
		}, InvNoCreation},
		{"self delivery: n1 skips its first message", func() *History {
			b, _, s := good()
			b.deliver(1, s, srp.Safe)
			return b.h
		}, InvSelfDelivery},
		{"configuration agreement: two member lists for one ring", func() *History {
			b := newLog()
			b.conf(1, srp.Regular, ring1, 1, 2, 3)
			b.conf(2, srp.Regular, ring1, 1, 2)
			return b.h
		}, InvConfigAgreement},
		{"configuration agreement: transitional not a subset of the old ring", func() *History {
			b := newLog()
			b.conf(1, srp.Regular, srp.RingID{Rep: 1, Seq: 4}, 1, 2)
			b.conf(1, srp.Transitional, ring2, 1, 3)
			b.conf(1, srp.Regular, ring2, 1, 3)
			return b.h
		}, InvConfigAgreement},
		{"configuration agreement: transitional not a subset of the ring that follows", func() *History {
			b := newLog()
			b.conf(1, srp.Regular, srp.RingID{Rep: 1, Seq: 4}, 1, 2, 3)
			b.conf(1, srp.Transitional, ring2, 1, 2, 3)
			b.conf(1, srp.Regular, ring2, 1, 2)
			return b.h
		}, InvConfigAgreement},
		{"virtual synchrony: n1 and n2 move together but n2 missed a", func() *History {
			b, a, _ := good()
			b.deliver(1, a, srp.Agreed)
			b.conf(1, srp.Transitional, ring2, 1, 2)
			b.conf(2, srp.Transitional, ring2, 1, 2)
			return b.h
		}, InvVirtualSynchron},
		{"sender alone: n1 delivers its own a, n2 and n3 skip it and deliver n1's next", func() *History {
			b, a, s := good()
			b.deliver(1, a, srp.Agreed)
			b.deliver(1, s, srp.Safe)
			b.deliver(2, s, srp.Safe)
			b.deliver(3, s, srp.Safe)
			return b.h
		}, InvSenderAlone},
		{"delivery gap: n3 skips a message n1 and n2 delivered", func() *History {
			b, a, s := good()
			for _, id := range []srp.NodeID{1, 2} {
				b.deliver(id, a, srp.Agreed)
				b.deliver(id, s, srp.Safe)
			}
			b.deliver(3, s, srp.Safe)
			return b.h
		}, InvDeliveryGap},
		{"safe delivery: n1 delivers SAFE b before n3 received it", func() *History {
			b := newLog()
			for _, id := range []srp.NodeID{1, 2, 3} {
				b.conf(id, srp.Regular, ring1, 1, 2, 3)
			}
			a := b.send(1, 1, srp.Safe)
			b.recv(1, a)
			b.recv(2, a)
			b.deliver(1, a, srp.Safe)
			b.recv(3, a) // too late
			return b.h
		}, InvSafeDelivery},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs := tc.build().Check()
			if len(vs) == 0 {
				t.Fatalf("broken history passed every checker; want a %s violation", tc.want)
			}
			found := false
			for _, v := range vs {
				if v.Invariant == tc.want {
					found = true
					if !strings.Contains(v.Error(), "step") {
						t.Errorf("violation lacks its step: %v", v)
					}
				}
			}
			if !found {
				t.Fatalf("want a %s violation, got %v", tc.want, vs)
			}
		})
	}
}

// brokenNode wraps the real Processor and corrupts its deliveries in one way, so the
// checkers are shown to catch a misbehaving node inside a real simulated run.
type brokenNode struct {
	Protocol
	id    srp.NodeID
	fault string
	held  *srp.Delivery
	out   []srp.Delivery
	n     int
}

func (b *brokenNode) Ready() srp.Ready {
	rd := b.Protocol.Ready()
	b.out = b.out[:0]
	for _, d := range rd.Deliveries {
		if d.Message == nil {
			b.out = append(b.out, d)
			continue
		}
		b.n++
		switch b.fault {
		case "drop-own":
			if d.Message.Sender == b.id && b.n%7 == 3 {
				continue
			}
		case "duplicate":
			if b.n%11 == 5 {
				b.out = append(b.out, d)
			}
		case "mute":
			// handled in Ready's message filter below
		case "swap":
			if b.n%13 == 6 {
				b.held = &srp.Delivery{Message: &srp.Message{}}
				*b.held.Message = *d.Message
				b.held.Message.Payload = append([]byte(nil), d.Message.Payload...)
				continue
			}
			if b.held != nil {
				b.out = append(b.out, d, *b.held)
				b.held = nil
				continue
			}
		}
		b.out = append(b.out, d)
	}
	rd.Deliveries = b.out
	if b.fault == "mute" {
		// Forward no ORF token: the ring can never include this node.
		msgs := rd.Messages[:0:0]
		for _, m := range rd.Messages {
			if m.Type != srp.TypeORFToken {
				msgs = append(msgs, m)
			}
		}
		rd.Messages = msgs
	}
	return rd
}

// TestLivenessCatchesMuteNode: a node that never forwards the token is live but can never
// be in the ring, so the liveness check must fail once the network is quiet.
func TestLivenessCatchesMuteNode(t *testing.T) {
	s, err := New(Options{Seed: 4, Nodes: 3, Token: 1e9, NewProtocol: func(cfg srp.Config) (Protocol, error) {
		p, err := SRP(cfg)
		if err != nil || cfg.NodeID != 3 {
			return p, err
		}
		return &brokenNode{Protocol: p, id: 3, fault: "mute"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckLiveness()
	v, ok := err.(*Violation)
	if !ok || v.Invariant != InvLiveness {
		t.Fatalf("mute n3 passed the liveness check: %v", err)
	}
	t.Log(v)
}

func TestCheckersCatchBrokenNode(t *testing.T) {
	for _, tc := range []struct{ fault, want string }{
		{"drop-own", InvSelfDelivery},
		{"duplicate", InvNoDuplication},
		{"swap", InvTotalOrder},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			s, err := New(Options{Seed: 3, Nodes: 3, Token: 1e9, NewProtocol: func(cfg srp.Config) (Protocol, error) {
				p, err := SRP(cfg)
				if err != nil || cfg.NodeID != 2 {
					return p, err
				}
				return &brokenNode{Protocol: p, id: 2, fault: tc.fault}, nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.StartWorkload(Workload{Rate: 50, MinSize: 1, MaxSize: 32}); err != nil {
				t.Fatal(err)
			}
			err = s.RunFor(20e9)
			v, ok := err.(*Violation)
			if !ok {
				t.Fatalf("broken node n2 (%s) went unnoticed: %v", tc.fault, err)
			}
			if v.Invariant != tc.want || v.Seed != 3 {
				t.Fatalf("want %s with seed 3, got %v", tc.want, v)
			}
		})
	}
}
