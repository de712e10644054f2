package knet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The worked examples of ../../shared/knet-captures/README.md, i.e. real corosync bytes:
// the first PING of knet-formation (node 1 -> 3), node 3's PONG to it, and the first ORF
// token of knet-steady in its DATA packet (node 1 -> 2, seq 81, unicast, unfragmented).
func TestDecodeCapturedExamples(t *testing.T) {
	ping := unhex(t, "01 81 0001 0000 00 5c0e000000000000 b6de101900000000 0000 01")
	var p Packet
	if err := p.Decode(ping); err != nil {
		t.Fatal(err)
	}
	want := Packet{Version: 1, Type: TypePing, Host: 1, Link: 0, TimeSec: 3676, TimeNsec: 420535990, Seq: 0, Timed: 1, Data: ping[26:]}
	if !equalPacket(p, want) {
		t.Errorf("ping decoded as %+v, want %+v", p, want)
	}
	pong := p.Pong(3)
	if got := pong.AppendEncode(nil); !bytes.Equal(got, unhex(t, "01 82 0003 0000 00 5c0e000000000000 b6de101900000000 0000 01")) {
		t.Errorf("pong %x", got)
	}

	data := unhex(t, "01 00 0001 0000 0051 00 00 00 01 00 00 70c0030000010000000200000000")
	if err := p.Decode(data); err != nil {
		t.Fatal(err)
	}
	if p.Type != TypeData || p.Host != 1 || p.Seq != 81 || p.Bcast != 0 || p.FragNum != 1 || p.FragSeq != 0 || p.Channel != 0 || p.Fragmented() {
		t.Errorf("data decoded as %+v", p)
	}
	if !bytes.Equal(p.Data, data[14:]) || p.Data[0] != 0x70 {
		t.Errorf("user data %x", p.Data)
	}
	// A probe of 1500 bytes carries size dc 05 (little-endian) and is zero-filled.
	probe := append(unhex(t, "01 83 0002 0000 00 dc05"), make([]byte, 1463)...)
	if err := p.Decode(probe); err != nil || p.Size != 1500 || p.Link != 0 || len(p.Data) != 1463 {
		t.Fatalf("probe: %v %+v", err, p)
	}
	r := p.PMTUDReply(1)
	if got := r.AppendEncode(nil); !bytes.Equal(got, unhex(t, "01 84 0001 0000 00 dc05")) {
		t.Errorf("pmtud reply %x", got)
	}
}

func equalPacket(a, b Packet) bool {
	ad, bd := a.Data, b.Data
	a.Data, b.Data = nil, nil
	return reflect.DeepEqual(a, b) && bytes.Equal(ad, bd)
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		err  error
	}{
		{"empty", nil, ErrShort},
		{"five bytes", []byte{1, 0, 0, 1, 0}, ErrShort},
		{"version 2", []byte{2, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, ErrVersion},
		{"totem magic", unhex(t, "70c00300000100000002000000"), ErrVersion},
		{"type 0x85", []byte{1, 0x85, 0, 1, 0, 0, 0, 0, 0}, ErrType},
		{"type 0x01", []byte{1, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrType},
		{"data 13 bytes", []byte{1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0}, ErrShort},
		{"ping 25 bytes", append([]byte{1, 0x81, 0, 1, 0, 0}, make([]byte, 19)...), ErrShort},
		{"pong 7 bytes", []byte{1, 0x82, 0, 1, 0, 0, 0}, ErrShort},
		{"pmtud 8 bytes", []byte{1, 0x83, 0, 1, 0, 0, 0, 0}, ErrShort},
	}
	for _, tc := range cases {
		var p Packet
		err := p.Decode(tc.in)
		var de *DecodeError
		if !errors.Is(err, tc.err) || !errors.As(err, &de) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		}
	}
	// The exact minimum of each type decodes.
	for _, n := range []struct {
		t PacketType
		n int
	}{{TypeData, 14}, {TypePing, 26}, {TypePong, 26}, {TypePMTUD, 9}, {TypePMTUDReply, 9}} {
		b := make([]byte, n.n)
		b[0], b[1] = 1, byte(n.t)
		var p Packet
		if err := p.Decode(b); err != nil || len(p.Data) != 0 {
			t.Errorf("%s of %d bytes: %v", n.t, n.n, err)
		}
	}
}

// TestRoundTripRandom: any valid-type buffer re-encodes to itself, and any packet built
// from fields decodes back to the same fields. Seeded; the seed is printed for replay.
func TestRoundTripRandom(t *testing.T) {
	seed := uint64(20261203)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	types := []PacketType{TypeData, TypePing, TypePong, TypePMTUD, TypePMTUDReply}
	var p, q Packet
	for i := 0; i < 5000; i++ {
		typ := types[rng.IntN(len(types))]
		b := make([]byte, fixedSize(typ)+rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		b[0], b[1] = Version1, byte(typ)
		if err := p.Decode(b); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if p.EncodedLen() != len(b) {
			t.Fatalf("iteration %d: EncodedLen %d, len %d", i, p.EncodedLen(), len(b))
		}
		out := p.AppendEncode(nil)
		if !bytes.Equal(out, b) {
			t.Fatalf("iteration %d: re-encode\n got %x\nwant %x", i, out, b)
		}
		if err := q.Decode(out); err != nil || !equalPacket(p, q) {
			t.Fatalf("iteration %d: decode of encode differs: %v", i, err)
		}
	}
}

func TestDecodeClearsPreviousFields(t *testing.T) {
	var p Packet
	ping := NewPing(2, 1, 5, 6, 7, true)
	if err := p.Decode(ping.AppendEncode(nil)); err != nil {
		t.Fatal(err)
	}
	d := NewData(3, 9, true, 0, []byte("x"))
	if err := p.Decode(d.AppendEncode(nil)); err != nil {
		t.Fatal(err)
	}
	if p.Link != 0 || p.TimeSec != 0 || p.Timed != 0 || p.Seq != 9 || p.Bcast != 1 {
		t.Errorf("stale fields after decoding DATA over PING: %+v", p)
	}
}

func TestEncodeUnknownType(t *testing.T) {
	p := Packet{Version: 1, Type: 0x7f}
	if got := p.AppendEncode([]byte{9}); !bytes.Equal(got, []byte{9}) || p.EncodedLen() != 0 {
		t.Errorf("unknown type encoded to %x", got)
	}
}
