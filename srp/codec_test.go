package srp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// wireCodec is what every message type offers; the tests drive all six through it.
type wireCodec interface {
	Decode([]byte) error
	AppendEncode([]byte) []byte
	EncodedLen() int
}

// newWireCodec returns an empty value of the message type t.
func newWireCodec(t MessageType) wireCodec {
	switch t {
	case TypeORFToken:
		return new(ORFToken)
	case TypeMcast:
		return new(Mcast)
	case TypeMergeDetect:
		return new(MergeDetect)
	case TypeJoin:
		return new(Join)
	case TypeCommitToken:
		return new(CommitToken)
	case TypeTokenHoldCancel:
		return new(TokenHoldCancel)
	}
	return nil
}

// codecUnhex reads a hexdump in the reference's format ("0000: 70 c0 ..."), ignoring offsets.
func codecUnhex(t *testing.T, dump string) []byte {
	t.Helper()
	var s strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		if i := strings.Index(line, ":"); i >= 0 {
			line = line[i+1:]
		}
		s.WriteString(strings.ReplaceAll(strings.TrimSpace(line), " ", ""))
	}
	b, err := hex.DecodeString(s.String())
	if err != nil {
		t.Fatalf("bad hexdump: %v", err)
	}
	return b
}

// TestWorkedExamples proves the codec against the four byte-exact examples of
// totem-wire.md §6, in both directions: the struct encodes to exactly the reference bytes,
// and the reference bytes decode to exactly the struct.
func TestWorkedExamples(t *testing.T) {
	mcastPayload := codecUnhex(t, `
		00 00 00 00 00 00 01 00 15 00 01 00 01 00 61 00 00 02 00
		00 00 00 00 10 00 00 00 00 00 00 00`)
	tests := []struct {
		name string
		msg  wireCodec
		dump string
	}{
		{
			name: "join from 1, proc {1,2}, ring_seq 8",
			msg: &Join{
				Header:     Header{Type: TypeJoin, NodeID: 1},
				SystemFrom: 1, RingSeq: 8,
				ProcList: []NodeID{1, 2}, FailedList: []NodeID{},
			},
			dump: `
0000: 70 c0 03 03 00 01 00 00 00 00 00 00 00 01 00 00
0010: 00 02 00 00 00 00 00 00 00 08 00 00 00 00 00 00
0020: 00 01 00 00 00 02 00 00 00`,
		},
		{
			name: "initial token from rep 1, ring 1.c",
			msg: &ORFToken{
				Header: Header{Type: TypeORFToken, NodeID: 1},
				ARU:    0xFFFFFFFF, ARUAddr: 1, RingID: RingID{Rep: 1, Seq: 12},
				RTRList: []RTRItem{},
			},
			dump: `
0000: 70 c0 03 00 00 01 00 00 00 00 00 00 00 00 00 00
0010: 00 00 00 00 00 ff ff ff ff 01 00 00 00 01 00 00
0020: 00 0c 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0030: 00 00 00 00 00 00 00 00 00`,
		},
		{
			name: "mcast from 2, seq 5, cpg message in group a",
			msg: &Mcast{
				Header:     Header{Type: TypeMcast, Encapsulated: NotEncapsulated, NodeID: 2},
				SystemFrom: 2, Seq: 5, RingID: RingID{Rep: 1, Seq: 12},
				Payload: mcastPayload,
			},
			dump: `
0000: 70 c0 03 01 02 02 00 00 00 00 00 00 00 02 00 00
0010: 00 05 00 00 00 00 00 00 00 01 00 00 00 0c 00 00
0020: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0030: 00 00 00 01 00 15 00 01 00 01 00 61 00 00 02 00
0040: 00 00 00 00 10 00 00 00 00 00 00 00`,
		},
		{
			name: "commit token from 1 for {1,2}, entry 0 filled",
			msg: &CommitToken{
				Header:   Header{Type: TypeCommitToken, NodeID: 1},
				TokenSeq: 1, RingID: RingID{Rep: 1, Seq: 12}, MembIndex: 1,
				Addr: []NodeID{1, 2},
				Members: []CommitMember{
					{RingID: RingID{Rep: 1, Seq: 8}, ARU: 3, HighDelivered: 3, ReceivedFlg: 1},
					{},
				},
			},
			dump: `
0000: 70 c0 03 04 00 01 00 00 00 00 00 00 00 01 00 00
0010: 00 01 00 00 00 0c 00 00 00 00 00 00 00 00 00 00
0020: 00 01 00 00 00 02 00 00 00 01 00 00 00 02 00 00
0030: 00 01 00 00 00 08 00 00 00 00 00 00 00 03 00 00
0040: 00 03 00 00 00 01 00 00 00 00 00 00 00 00 00 00
0050: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
0060: 00`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := codecUnhex(t, tc.dump)
			if got := tc.msg.AppendEncode(nil); !bytes.Equal(got, want) {
				t.Errorf("encode:\n got %x\nwant %x", got, want)
			}
			if tc.msg.EncodedLen() != len(want) {
				t.Errorf("EncodedLen %d, datagram is %d", tc.msg.EncodedLen(), len(want))
			}
			got := reflect.New(reflect.TypeOf(tc.msg).Elem()).Interface().(wireCodec)
			if err := got.Decode(want); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(codecNormalize(got), codecNormalize(tc.msg)) {
				t.Errorf("decode:\n got %+v\nwant %+v", got, tc.msg)
			}
		})
	}
}

// codecToBigEndian re-writes a little-endian datagram as a big-endian sender would, using its
// own field table (an independent statement of §3–§5's layouts), so the decoder's swapping
// is checked against something other than itself.
func codecToBigEndian(t interface{ Fatalf(string, ...any) }, le []byte) []byte {
	be := bytes.Clone(le)
	var u32s, u64s []int
	ring := func(off int) { u32s = append(u32s, off); u64s = append(u64s, off+4) }
	u32s = append(u32s, 5, 9)
	switch MessageType(le[3]) {
	case TypeORFToken:
		u32s = append(u32s, 13, 17, 21, 25, 41, 45, 49, 53)
		ring(29)
		n := int(binary.LittleEndian.Uint32(le[53:]))
		for i := range n {
			off := 57 + 16*i
			ring(off)
			u32s = append(u32s, off+12)
		}
	case TypeMcast:
		u32s = append(u32s, 13, 17, 21, 37, 41)
		ring(25)
	case TypeMergeDetect:
		u32s = append(u32s, 13)
		ring(17)
	case TypeJoin:
		u32s = append(u32s, 13, 17, 21)
		u64s = append(u64s, 25)
		n := int(binary.LittleEndian.Uint32(le[17:]) + binary.LittleEndian.Uint32(le[21:]))
		for i := range n {
			u32s = append(u32s, 33+4*i)
		}
	case TypeCommitToken:
		u32s = append(u32s, 13, 29, 33, 37)
		ring(17)
		n := int(binary.LittleEndian.Uint32(le[37:]))
		for i := range n {
			u32s = append(u32s, 41+4*i)
			off := 41 + 4*n + 24*i
			ring(off)
			u32s = append(u32s, off+12, off+16, off+20)
		}
	case TypeTokenHoldCancel:
		ring(13)
	default:
		t.Fatalf("codecToBigEndian: type %d", le[3])
	}
	binary.BigEndian.PutUint16(be, Magic)
	for _, off := range u32s {
		binary.BigEndian.PutUint32(be[off:], binary.LittleEndian.Uint32(le[off:]))
	}
	for _, off := range u64s {
		binary.BigEndian.PutUint64(be[off:], binary.LittleEndian.Uint64(le[off:]))
	}
	return be
}

// genCodecRing draws ring ids with all bytes significant, so a swap mistake cannot hide.
func genCodecRing(t *rapid.T, label string) RingID {
	return RingID{Rep: NodeID(rapid.Uint32().Draw(t, label+".rep")), Seq: rapid.Uint64().Draw(t, label+".seq")}
}

func genCodecHeader(t *rapid.T, typ MessageType) Header {
	return Header{
		Type:         typ,
		Encapsulated: rapid.Uint8().Draw(t, "encapsulated"),
		NodeID:       NodeID(rapid.Uint32().Draw(t, "nodeid")),
		TargetNodeID: rapid.Uint32().Draw(t, "target_nodeid"),
	}
}

func genCodecNodeIDs(t *rapid.T, max int, label string) []NodeID {
	return rapid.SliceOfN(rapid.Custom(func(t *rapid.T) NodeID {
		return NodeID(rapid.Uint32().Draw(t, "id"))
	}), 0, max).Draw(t, label)
}

// genCodecMessage draws any valid message of any type, with every field random.
func genCodecMessage(t *rapid.T) wireCodec {
	typ := MessageType(rapid.IntRange(0, 5).Draw(t, "type"))
	switch typ {
	case TypeORFToken:
		return &ORFToken{
			Header: genCodecHeader(t, typ), Seq: rapid.Uint32().Draw(t, "seq"),
			TokenSeq: rapid.Uint32().Draw(t, "token_seq"), ARU: rapid.Uint32().Draw(t, "aru"),
			ARUAddr: NodeID(rapid.Uint32().Draw(t, "aru_addr")), RingID: genCodecRing(t, "ring"),
			Backlog: rapid.Uint32().Draw(t, "backlog"), FCC: rapid.Uint32().Draw(t, "fcc"),
			RetransFlg: rapid.Int32().Draw(t, "retrans_flg"),
			RTRList: rapid.SliceOfN(rapid.Custom(func(t *rapid.T) RTRItem {
				return RTRItem{RingID: genCodecRing(t, "rtr.ring"), Seq: rapid.Uint32().Draw(t, "rtr.seq")}
			}), 0, RetransmitEntriesMax).Draw(t, "rtr"),
		}
	case TypeMcast:
		return &Mcast{
			Header: genCodecHeader(t, typ), SystemFrom: NodeID(rapid.Uint32().Draw(t, "system_from")),
			Seq: rapid.Uint32().Draw(t, "seq"), ThisSeqno: rapid.Int32().Draw(t, "this_seqno"),
			RingID: genCodecRing(t, "ring"), NodeIDZero: rapid.Uint32().Draw(t, "node_id"),
			Guarantee: Guarantee(rapid.Int32().Draw(t, "guarantee")),
			Payload:   rapid.SliceOfN(rapid.Byte(), 0, 1500).Draw(t, "payload"),
		}
	case TypeMergeDetect:
		return &MergeDetect{Header: genCodecHeader(t, typ),
			SystemFrom: NodeID(rapid.Uint32().Draw(t, "system_from")), RingID: genCodecRing(t, "ring")}
	case TypeJoin:
		return &Join{
			Header: genCodecHeader(t, typ), SystemFrom: NodeID(rapid.Uint32().Draw(t, "system_from")),
			RingSeq:  rapid.Uint64().Draw(t, "ring_seq"),
			ProcList: genCodecNodeIDs(t, ProcessorCountMax, "proc"), FailedList: genCodecNodeIDs(t, ProcessorCountMax, "failed"),
		}
	case TypeCommitToken:
		addr := genCodecNodeIDs(t, ProcessorCountMax, "addr")
		members := make([]CommitMember, len(addr))
		for i := range members {
			members[i] = CommitMember{RingID: genCodecRing(t, "memb.ring"), ARU: rapid.Uint32().Draw(t, "memb.aru"),
				HighDelivered: rapid.Uint32().Draw(t, "memb.hd"), ReceivedFlg: rapid.Uint32().Draw(t, "memb.rf")}
		}
		return &CommitToken{
			Header: genCodecHeader(t, typ), TokenSeq: rapid.Uint32().Draw(t, "token_seq"),
			RingID: genCodecRing(t, "ring"), RetransFlg: rapid.Uint32().Draw(t, "retrans_flg"),
			MembIndex: int32(rapid.IntRange(0, len(addr)).Draw(t, "memb_index")),
			Addr:      addr, Members: members,
		}
	default:
		return &TokenHoldCancel{Header: genCodecHeader(t, typ), RingID: genCodecRing(t, "ring")}
	}
}

// codecNormalize makes nil and empty lists compare equal: decoding into a fresh value yields
// empty-but-non-nil or nil lists depending on reuse, which is not a semantic difference.
func codecNormalize(c wireCodec) wireCodec {
	switch m := c.(type) {
	case *ORFToken:
		if len(m.RTRList) == 0 {
			m.RTRList = nil
		}
	case *Mcast:
		if len(m.Payload) == 0 {
			m.Payload = nil
		}
	case *Join:
		if len(m.ProcList) == 0 {
			m.ProcList = nil
		}
		if len(m.FailedList) == 0 {
			m.FailedList = nil
		}
	case *CommitToken:
		if len(m.Addr) == 0 {
			m.Addr, m.Members = nil, nil
		}
	}
	return c
}

// TestRoundTripProperty: for any valid message, decode(encode(m)) == m, EncodedLen is the
// encoded size, PeekHeader agrees, and the big-endian form of the same datagram decodes to
// the same value (with Swapped reporting it). rapid prints the failing seed.
func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		msg := codecNormalize(genCodecMessage(t))
		b := msg.AppendEncode(nil)
		if len(b) != msg.EncodedLen() {
			t.Fatalf("encoded %d bytes, EncodedLen %d", len(b), msg.EncodedLen())
		}
		h, swapped, err := PeekHeader(b)
		if err != nil || swapped || Swapped(b) {
			t.Fatalf("PeekHeader: %v swapped=%v Swapped=%v", err, swapped, Swapped(b))
		}
		for name, dgram := range map[string][]byte{"little-endian": b, "big-endian": codecToBigEndian(t, b)} {
			got := newWireCodec(h.Type)
			if err := got.Decode(dgram); err != nil {
				t.Fatalf("%s decode: %v", name, err)
			}
			if !reflect.DeepEqual(codecNormalize(got), msg) {
				t.Fatalf("%s decode:\n got %+v\nwant %+v", name, got, msg)
			}
		}
		be := codecToBigEndian(t, b)
		if !Swapped(be) {
			t.Fatalf("Swapped false for a big-endian datagram")
		}
		if h2, sw, err := PeekHeader(be); err != nil || !sw || h2 != h {
			t.Fatalf("PeekHeader(big-endian) = %+v %v %v, want %+v true nil", h2, sw, err, h)
		}
	})
}

// TestTypeMismatch: each Decode refuses a well-formed datagram of any other type, so a
// dispatch bug in the state machine surfaces as an error instead of a misread message.
func TestTypeMismatch(t *testing.T) {
	for have := TypeORFToken; have <= TypeTokenHoldCancel; have++ {
		b := codecSample(have)
		for want := TypeORFToken; want <= TypeTokenHoldCancel; want++ {
			err := newWireCodec(want).Decode(b)
			if (err == nil) != (have == want) {
				t.Errorf("decode %s datagram as %s: err %v", have, want, err)
			}
			if have != want && !errors.Is(err, ErrBadType) {
				t.Errorf("decode %s datagram as %s: %v, want ErrBadType", have, want, err)
			}
		}
	}
}

// codecSample is a small valid datagram of type t, with non-empty lists.
func codecSample(t MessageType) []byte {
	switch t {
	case TypeORFToken:
		return (&ORFToken{Header: Header{NodeID: 1}, RingID: RingID{1, 9},
			RTRList: []RTRItem{{RingID{1, 9}, 4}}}).AppendEncode(nil)
	case TypeMcast:
		return (&Mcast{Header: Header{Encapsulated: NotEncapsulated, NodeID: 2}, SystemFrom: 2,
			Payload: []byte{1, 2, 3}}).AppendEncode(nil)
	case TypeMergeDetect:
		return (&MergeDetect{Header: Header{NodeID: 1}, SystemFrom: 1, RingID: RingID{1, 9}}).AppendEncode(nil)
	case TypeJoin:
		return (&Join{Header: Header{NodeID: 3}, SystemFrom: 3, RingSeq: 9,
			ProcList: []NodeID{1, 2, 3}, FailedList: []NodeID{4}}).AppendEncode(nil)
	case TypeCommitToken:
		return (&CommitToken{Header: Header{NodeID: 1}, RingID: RingID{1, 13}, MembIndex: 1,
			Addr: []NodeID{1, 2}, Members: []CommitMember{{RingID: RingID{1, 9}, ReceivedFlg: 1}}}).AppendEncode(nil)
	case TypeTokenHoldCancel:
		return (&TokenHoldCancel{Header: Header{NodeID: 1}, RingID: RingID{1, 9}}).AppendEncode(nil)
	}
	return nil
}

// set returns b with the little-endian u32 at off replaced.
func codecSet32(b []byte, off int, v uint32) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[off:], v)
	return b
}

// TestDecodeErrors is the table of malformed and hostile datagrams: each must fail with the
// stated sentinel, as a *DecodeError naming the type, with a message explaining the limit,
// and leave the destination value as it was.
func TestDecodeErrors(t *testing.T) {
	token := codecSample(TypeORFToken)
	join := codecSample(TypeJoin)
	commit := codecSample(TypeCommitToken)
	tests := []struct {
		name    string
		as      MessageType
		b       []byte
		want    error
		wantTyp MessageType
		msg     string // substring of Error()
	}{
		{"empty", TypeORFToken, nil, ErrTooShort, TypeUnknown, "srp: decode: too short: 0 bytes"},
		{"12-byte header", TypeJoin, join[:12], ErrTooShort, TypeUnknown, "12 bytes, header needs 13"},
		{"corosync 2.3 magic", TypeJoin, append([]byte{0xFE, 0xFE}, join[2:]...), ErrBadMagic, TypeUnknown, "corosync 2.3+"},
		{"knet packet", TypeJoin, append([]byte{0x01, 0x02}, join[2:]...), ErrBadMagic, TypeUnknown, "0x0102 (probably unencrypted kronosnet)"},
		{"garbage magic", TypeJoin, append([]byte{0x12, 0x34}, join[2:]...), ErrBadMagic, TypeUnknown, "unknown"},
		{"version 2", TypeJoin, append([]byte{0x70, 0xC0, 2}, join[3:]...), ErrBadVersion, TypeJoin, "2, want 3"},
		{"type 6", TypeJoin, append([]byte{0x70, 0xC0, 3, 6}, join[4:]...), ErrBadType, 6, "type byte 6"},
		{"token fixed part cut", TypeORFToken, token[:56], ErrTooShort, TypeORFToken, "56 bytes, token needs 57"},
		{"token rtr item cut", TypeORFToken, token[:len(token)-1], ErrBadLength, TypeORFToken, "1 rtr items need 73"},
		{"token 31 rtr items", TypeORFToken, codecSet32(token, 53, 31), ErrBadLength, TypeORFToken, "rtr_list_entries 31"},
		{"token negative rtr count", TypeORFToken, codecSet32(token, 53, 0xFFFFFFFF), ErrBadLength, TypeORFToken, "rtr_list_entries -1"},
		{"token over 1500 bytes", TypeORFToken, append(bytes.Clone(token), make([]byte, 1500)...), ErrTooLarge, TypeORFToken, "limit 1500"},
		{"mcast header cut", TypeMcast, codecSample(TypeMcast)[:44], ErrTooShort, TypeMcast, "mcast header needs 45"},
		{"mcast over frame size", TypeMcast, append(codecSample(TypeMcast), make([]byte, FrameSizeMax)...), ErrTooLarge, TypeMcast, "limit 65581"},
		{"merge detect cut", TypeMergeDetect, codecSample(TypeMergeDetect)[:28], ErrTooShort, TypeMergeDetect, "needs 29"},
		{"join fixed part cut", TypeJoin, join[:32], ErrTooShort, TypeJoin, "join needs 33"},
		{"join list cut", TypeJoin, join[:len(join)-1], ErrBadLength, TypeJoin, "3 proc + 1 failed entries need 49"},
		{"join proc count 385", TypeJoin, codecSet32(join, 17, 385), ErrBadLength, TypeJoin, "exceed 384"},
		{"join failed count 2^32-1", TypeJoin, codecSet32(join, 21, 0xFFFFFFFF), ErrBadLength, TypeJoin, "exceed 384"},
		{"join over 40000 bytes", TypeJoin, append(bytes.Clone(join), make([]byte, JoinMaxBytes)...), ErrTooLarge, TypeJoin, "limit 40000"},
		{"commit fixed part cut", TypeCommitToken, commit[:40], ErrTooShort, TypeCommitToken, "commit token needs 41"},
		{"commit member cut", TypeCommitToken, commit[:len(commit)-1], ErrBadLength, TypeCommitToken, "2 members need 97"},
		{"commit 385 members", TypeCommitToken, codecSet32(commit, 37, 385), ErrBadLength, TypeCommitToken, "addr_entries 385"},
		{"commit negative members", TypeCommitToken, codecSet32(commit, 37, 0x80000000), ErrBadLength, TypeCommitToken, "addr_entries -2147483648"},
		{"commit memb_index past end", TypeCommitToken, codecSet32(commit, 33, 3), ErrBadLength, TypeCommitToken, "memb_index 3"},
		{"commit negative memb_index", TypeCommitToken, codecSet32(commit, 33, 0xFFFFFFFF), ErrBadLength, TypeCommitToken, "memb_index -1"},
		{"hold cancel cut", TypeTokenHoldCancel, codecSample(TypeTokenHoldCancel)[:24], ErrTooShort, TypeTokenHoldCancel, "needs 25"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Decode into a value holding a valid message: a failed decode must leave it
			// untouched, so a receiver never acts on a half-overwritten message.
			m := newWireCodec(tc.as)
			prev := codecSample(tc.as)
			if err := m.Decode(prev); err != nil {
				t.Fatal(err)
			}
			err := m.Decode(tc.b)
			if got := m.AppendEncode(nil); !bytes.Equal(got, prev) {
				t.Errorf("failed decode changed the value: %x, was %x", got, prev)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err %T is not a *DecodeError", err)
			}
			if de.Type != tc.wantTyp {
				t.Errorf("DecodeError.Type = %d, want %d", de.Type, tc.wantTyp)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err.Error(), tc.msg)
			}
		})
	}
}

// TestTruncationNeverPanics: every prefix of every valid datagram, in both byte orders,
// either decodes or fails with a *DecodeError; the only prefixes that may decode are the
// whole datagram and, for MCAST, any prefix holding the 45-byte header (its payload is
// simply shorter).
func TestTruncationNeverPanics(t *testing.T) {
	for typ := TypeORFToken; typ <= TypeTokenHoldCancel; typ++ {
		le := codecSample(typ)
		for _, b := range [][]byte{le, codecToBigEndian(t, le)} {
			for n := 0; n <= len(b); n++ {
				err := newWireCodec(typ).Decode(b[:n])
				mayDecode := n == len(b) || (typ == TypeMcast && n >= McastHeaderSize)
				if mayDecode != (err == nil) {
					t.Errorf("%s cut to %d of %d bytes: err %v", typ, n, len(b), err)
				}
				var de *DecodeError
				if err != nil && !errors.As(err, &de) {
					t.Errorf("%s cut to %d: %T is not a *DecodeError", typ, n, err)
				}
			}
		}
	}
}

// TestTrailingBytesIgnored: like corosync, a datagram longer than its counts say decodes,
// and the tail is dropped on re-encode.
func TestTrailingBytesIgnored(t *testing.T) {
	for _, typ := range []MessageType{TypeORFToken, TypeMergeDetect, TypeJoin, TypeCommitToken, TypeTokenHoldCancel} {
		b := codecSample(typ)
		m := newWireCodec(typ)
		if err := m.Decode(append(bytes.Clone(b), 0xAA, 0xBB)); err != nil {
			t.Fatalf("%s with tail: %v", typ, err)
		}
		if got := m.AppendEncode(nil); !bytes.Equal(got, b) {
			t.Errorf("%s with tail re-encodes to %x, want %x", typ, got, b)
		}
	}
}

// TestDecodeReusesLists: decoding a shorter message into a value that held a longer one
// leaves no stale entries, and decoding never writes into the caller's buffer.
func TestDecodeReusesLists(t *testing.T) {
	var j Join
	long := (&Join{Header: Header{NodeID: 1}, ProcList: []NodeID{1, 2, 3, 4}, FailedList: []NodeID{5, 6}}).AppendEncode(nil)
	short := (&Join{Header: Header{NodeID: 1}, ProcList: []NodeID{7}}).AppendEncode(nil)
	if err := j.Decode(long); err != nil {
		t.Fatal(err)
	}
	shortCopy := bytes.Clone(short)
	if err := j.Decode(short); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j.ProcList, []NodeID{7}) || len(j.FailedList) != 0 {
		t.Errorf("after reuse: proc %v failed %v", j.ProcList, j.FailedList)
	}
	if !bytes.Equal(short, shortCopy) {
		t.Errorf("Decode modified its input")
	}
}

// TestMcastPayloadAliases: the payload is a window on the datagram (no copy) whose capacity
// stops at the datagram's end, so an append by the upper layer cannot scribble past it.
func TestMcastPayloadAliases(t *testing.T) {
	b := append(codecSample(TypeMcast), 0, 0, 0, 0)[:48]
	var m Mcast
	if err := m.Decode(b); err != nil {
		t.Fatal(err)
	}
	if &m.Payload[0] != &b[McastHeaderSize] {
		t.Errorf("payload was copied")
	}
	if cap(m.Payload) != len(m.Payload) {
		t.Errorf("payload cap %d exceeds its length %d", cap(m.Payload), len(m.Payload))
	}
}

// TestHeaderTargetAndEncapsulatedPreserved: the fields the protocol ignores survive a round
// trip, which is what makes re-encoding captured packets byte-identical.
func TestHeaderTargetAndEncapsulatedPreserved(t *testing.T) {
	j := &Join{Header: Header{Encapsulated: 7, NodeID: 0, TargetNodeID: 0x748a0e5b}, SystemFrom: 3,
		ProcList: []NodeID{1, 2}, FailedList: []NodeID{3}}
	b := j.AppendEncode(nil)
	if !bytes.Equal(b[9:13], []byte{0x5b, 0x0e, 0x8a, 0x74}) || b[4] != 7 {
		t.Fatalf("header bytes %x", b[:13])
	}
	var got Join
	if err := got.Decode(b); err != nil {
		t.Fatal(err)
	}
	if got.Header != (Header{Type: TypeJoin, Encapsulated: 7, NodeID: 0, TargetNodeID: 0x748a0e5b}) || !got.IsLeave() {
		t.Errorf("header %+v", got.Header)
	}
}

// TestEncoderWritesTypeOfItsMessage: the encoder writes its own message type, not whatever
// Header.Type holds, so a zero Header (the common case in the state machine) is valid.
func TestEncoderWritesTypeOfItsMessage(t *testing.T) {
	b := (&CommitToken{Header: Header{Type: TypeJoin}}).AppendEncode(nil)
	if b[3] != byte(TypeCommitToken) {
		t.Errorf("type byte %d", b[3])
	}
}

// TestCommitTokenMissingMembersEncodeZero: an Addr longer than Members (entries not yet
// filled in) encodes the missing entries as zero, as corosync's zeroed buffer does.
func TestCommitTokenMissingMembersEncodeZero(t *testing.T) {
	c := &CommitToken{Addr: []NodeID{1, 2, 3}, Members: []CommitMember{{ARU: 5}}}
	b := c.AppendEncode(nil)
	if len(b) != CommitTokenSize+28*3 || len(b) != c.EncodedLen() {
		t.Fatalf("len %d", len(b))
	}
	var got CommitToken
	if err := got.Decode(b); err != nil {
		t.Fatal(err)
	}
	want := []CommitMember{{ARU: 5}, {}, {}}
	if !reflect.DeepEqual(got.Members, want) {
		t.Errorf("members %+v", got.Members)
	}
}

// TestAllocsZero proves the hot path is garbage-free: decoding into a value that already has
// list capacity, and encoding into a buffer with room, allocate nothing for any type.
func TestAllocsZero(t *testing.T) {
	msgs := []wireCodec{
		&ORFToken{Header: Header{NodeID: 1}, RTRList: make([]RTRItem, RetransmitEntriesMax)},
		&Mcast{Header: Header{NodeID: 1}, Payload: make([]byte, 1410)},
		&MergeDetect{Header: Header{NodeID: 1}},
		&Join{Header: Header{NodeID: 1}, ProcList: make([]NodeID, 200), FailedList: make([]NodeID, 184)},
		&CommitToken{Addr: make([]NodeID, ProcessorCountMax), Members: make([]CommitMember, ProcessorCountMax)},
		&TokenHoldCancel{},
	}
	for _, m := range msgs {
		b := m.AppendEncode(nil)
		typ := MessageType(b[3])
		dst := newWireCodec(typ)
		if err := dst.Decode(b); err != nil { // first decode sizes the lists
			t.Fatal(err)
		}
		buf := make([]byte, 0, len(b))
		if a := testing.AllocsPerRun(100, func() {
			if err := dst.Decode(b); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s decode: %v allocs", typ, a)
		}
		if a := testing.AllocsPerRun(100, func() { buf = dst.AppendEncode(buf[:0]) }); a != 0 {
			t.Errorf("%s encode: %v allocs", typ, a)
		}
		if a := testing.AllocsPerRun(100, func() { _, _, _ = PeekHeader(b) }); a != 0 {
			t.Errorf("%s PeekHeader: %v allocs", typ, a)
		}
	}
}

// TestMessageTypeString pins the names the pcap tool prints and the summary line keys.
func TestMessageTypeString(t *testing.T) {
	want := []string{"orf", "mcast", "merge_detect", "join", "commit", "hold_cancel"}
	for i, w := range want {
		if got := MessageType(i).String(); got != w {
			t.Errorf("%d: %q, want %q", i, got, w)
		}
	}
	if got := MessageType(9).String(); got != "type(9)" {
		t.Errorf("unknown type: %q", got)
	}
}
