package quorum

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The NODEINFO vector is services-sync.md §3.1's (nodeid 3, votes 1, expected 3, flags 0); the
// others follow votequorum.md §9's layout table field by field.
func TestCodecVectors(t *testing.T) {
	regName := make([]byte, 255)
	copy(regName, "Qdevice")
	tests := []struct {
		name string
		msg  any
		wire string
	}{
		{"nodeinfo from services-sync.md §3.1", NodeInfo{NodeID: 3, Votes: 1, ExpectedVotes: 3},
			"00 00 05 00 00 00 00 00 20 00 00 00 00 00 00 00 03 00 00 00 01 00 00 00 03 00 00 00 00 00 00 00"},
		{"nodeinfo of a running quorate node (flags 0x1)", NodeInfo{NodeID: 1, Votes: 1, ExpectedVotes: 3, Flags: FlagQuorate},
			"00 00 05 00 00 00 00 00 20 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 03 00 00 00 01 00 00 00"},
		{"nodeinfo of a first singleton ring (FIRST 0x8)", NodeInfo{NodeID: 2, Votes: 1, ExpectedVotes: 3, Flags: FlagFirst | FlagWFAStatus},
			"00 00 05 00 00 00 00 00 20 00 00 00 00 00 00 00 02 00 00 00 01 00 00 00 03 00 00 00 0c 00 00 00"},
		{"nodeinfo of the quorum device (0 0 0 0)", NodeInfo{},
			"00 00 05 00 00 00 00 00 20 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
		{"reconfigure expected votes", Reconfigure{NodeID: 1, Value: 2, Param: ParamExpectedVotes},
			"01 00 05 00 00 00 00 00 20 00 00 00 00 00 00 00 01 00 00 00 02 00 00 00 01 00 00 00 00 00 00 00"},
		{"reconfigure node votes", Reconfigure{NodeID: 0x0a0b0c0d, Value: 3, Param: ParamNodeVotes},
			"01 00 05 00 00 00 00 00 20 00 00 00 00 00 00 00 0d 0c 0b 0a 03 00 00 00 02 00 00 00 00 00 00 00"},
		{"reconfigure cancel wfa", Reconfigure{NodeID: 4, Param: ParamCancelWFA},
			"01 00 05 00 00 00 00 00 20 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00"},
		{"qdevice register", QdeviceReg{Operation: QdeviceRegister, Name: "Qdevice"},
			"02 00 05 00 00 00 00 00 18 01 00 00 00 00 00 00 01 00 00 00" + hex.EncodeToString(regName) + "00 00 00 00 00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.wire)
			var got []byte
			var err error
			switch m := tc.msg.(type) {
			case NodeInfo:
				got = EncodeNodeInfo(m)
			case Reconfigure:
				got = EncodeReconfigure(m)
			case QdeviceReg:
				got, err = EncodeQdeviceReg(m)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			dec, err := Decode(want, false)
			if err != nil {
				t.Fatal(err)
			}
			if dec != tc.msg {
				t.Fatalf("decode: got %+v, want %+v", dec, tc.msg)
			}
		})
	}
}

func TestQdeviceReconfigureLayout(t *testing.T) {
	b, err := EncodeQdeviceReconfigure(QdeviceReconfigure{OldName: "old", NewName: "new"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 528 || !bytes.Equal(b[:4], []byte{3, 0, 5, 0}) || b[8] != 0x10 || b[9] != 0x02 ||
		string(b[16:19]) != "old" || string(b[271:274]) != "new" {
		t.Fatalf("layout wrong: % x", b[:24])
	}
	// Garbage after the NUL (corosync does not clear its stack buffer) is ignored.
	for i := 20; i < 271; i++ {
		b[i] = 0xee
	}
	b[526], b[527], b[4], b[12] = 0xaa, 0xbb, 0xcc, 0xdd
	got, err := DecodeQdeviceReconfigure(b, false)
	if err != nil || got.OldName != "old" || got.NewName != "new" {
		t.Fatalf("decode with garbage: %+v %v", got, err)
	}
}

// A foreign-endian sender writes every multi-byte field swapped, the header id included.
func TestDecodeForeignEndian(t *testing.T) {
	be := unhex(t, "00 05 00 00 00 00 00 00 00 00 00 20 00 00 00 00 00 00 00 07 00 00 00 02 00 00 00 09 00 00 00 41")
	got, err := DecodeNodeInfo(be, true)
	want := NodeInfo{NodeID: 7, Votes: 2, ExpectedVotes: 9, Flags: FlagQuorate | FlagQdeviceCastVote}
	if err != nil || got != want {
		t.Fatalf("got %+v %v, want %+v", got, err, want)
	}
	rc := unhex(t, "00 05 00 01 00 00 00 00 00 00 00 20 00 00 00 00 00 00 00 05 00 00 00 04 01 00 00 00 00 00 00 00")
	r, err := DecodeReconfigure(rc, true)
	if err != nil || r != (Reconfigure{NodeID: 5, Value: 4, Param: ParamExpectedVotes}) {
		t.Fatalf("reconfigure: %+v %v", r, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	ni := EncodeNodeInfo(NodeInfo{NodeID: 1})
	reg, _ := EncodeQdeviceReg(QdeviceReg{Name: "x"})
	noNUL := bytes.Clone(reg)
	for i := 20; i < 275; i++ {
		noNUL[i] = 'a'
	}
	cpg := bytes.Clone(ni)
	cpg[2] = 2 // service 2 (CPG)
	unknownFn := bytes.Clone(ni)
	unknownFn[0] = 4
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header only", ni[:16], ErrShort},
		{"truncated nodeinfo", ni[:31], ErrShort},
		{"other service", cpg, ErrNotVoteQ},
		{"unknown function", unknownFn, ErrUnknownFunc},
		{"qdevice name without NUL", noNUL, ErrName},
		{"truncated qdevice reg", reg[:100], ErrShort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b, false)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "quorum: decode") {
				t.Fatalf("error lacks context: %v", err)
			}
		})
	}
	if _, err := EncodeQdeviceReg(QdeviceReg{Name: strings.Repeat("n", 255)}); !errors.Is(err, ErrName) {
		t.Fatalf("255-byte name accepted: %v", err)
	}
}

// A malformed body reaching the Machine is counted and changes nothing.
func TestMachineDropsMalformed(t *testing.T) {
	m, err := New(Config{NodeID: 1, Nodelist: nodelist(3)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(0)
	before := m.Nodes()
	if err := m.Deliver(0, 2, []byte{0, 0, 5, 0}, false); err == nil {
		t.Fatal("short body accepted")
	}
	// NODEINFO(0) before the sender's own NODEINFO: corosync asserts; we drop.
	if err := m.Deliver(0, 2, EncodeNodeInfo(NodeInfo{NodeID: 0, Votes: 1}), false); !errors.Is(err, ErrUnknownSender) {
		t.Fatalf("nodeinfo(0) from unknown sender: %v", err)
	}
	if c := m.Counters(); c.Malformed != 1 || c.UnknownSender != 1 {
		t.Fatalf("counters %+v", c)
	}
	if after := m.Nodes(); len(after) != len(before) {
		t.Fatalf("records changed: %v → %v", before, after)
	}
}
