package srp

import "testing"

// codecBenchMessages are realistic sizes: an idle token, a token carrying the full retransmit
// list, a full-MTU mcast, a 3-node join, and commit tokens for 3 and 384 members.
func codecBenchMessages() []struct {
	name string
	msg  wireCodec
} {
	full := make([]RTRItem, RetransmitEntriesMax)
	addr := make([]NodeID, ProcessorCountMax)
	for i := range addr {
		addr[i] = NodeID(i + 1)
	}
	return []struct {
		name string
		msg  wireCodec
	}{
		{"orf/idle", &ORFToken{Header: Header{NodeID: 1}, RingID: RingID{1, 9}}},
		{"orf/rtr30", &ORFToken{Header: Header{NodeID: 1}, RingID: RingID{1, 9}, RTRList: full}},
		{"mcast/1410", &Mcast{Header: Header{Encapsulated: NotEncapsulated, NodeID: 2}, Payload: make([]byte, 1410)}},
		{"merge_detect", &MergeDetect{Header: Header{NodeID: 1}, SystemFrom: 1}},
		{"join/3", &Join{Header: Header{NodeID: 3}, SystemFrom: 3, ProcList: []NodeID{1, 2, 3}}},
		{"commit/3", &CommitToken{Header: Header{NodeID: 1}, Addr: addr[:3], Members: make([]CommitMember, 3)}},
		{"commit/384", &CommitToken{Header: Header{NodeID: 1}, Addr: addr, Members: make([]CommitMember, ProcessorCountMax)}},
		{"hold_cancel", &TokenHoldCancel{Header: Header{NodeID: 1}}},
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bm := range codecBenchMessages() {
		dgram := bm.msg.AppendEncode(nil)
		for _, order := range []string{"le", "be"} {
			in := dgram
			if order == "be" {
				in = codecToBigEndian(b, dgram)
			}
			b.Run(bm.name+"/"+order, func(b *testing.B) {
				dst := newWireCodec(MessageType(in[3]))
				if err := dst.Decode(in); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for b.Loop() {
					if err := dst.Decode(in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, bm := range codecBenchMessages() {
		b.Run(bm.name, func(b *testing.B) {
			buf := make([]byte, 0, bm.msg.EncodedLen())
			b.SetBytes(int64(bm.msg.EncodedLen()))
			b.ReportAllocs()
			for b.Loop() {
				buf = bm.msg.AppendEncode(buf[:0])
			}
		})
	}
}

func BenchmarkPeekHeader(b *testing.B) {
	dgram := (&ORFToken{Header: Header{NodeID: 1}}).AppendEncode(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := PeekHeader(dgram); err != nil {
			b.Fatal(err)
		}
	}
}
