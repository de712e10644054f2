package quorum

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to the decoders and to a running Machine: nothing may
// panic, and whatever decodes must re-encode to a body that decodes to the same value.
func FuzzDecode(f *testing.F) {
	reg, _ := EncodeQdeviceReg(QdeviceReg{Operation: QdeviceRegister, Name: "Qdevice"})
	rc, _ := EncodeQdeviceReconfigure(QdeviceReconfigure{OldName: "a", NewName: "b"})
	for _, b := range [][]byte{
		EncodeNodeInfo(NodeInfo{NodeID: 3, Votes: 1, ExpectedVotes: 3}),
		EncodeNodeInfo(NodeInfo{NodeID: 0, Votes: 1}),
		EncodeReconfigure(Reconfigure{NodeID: 1, Value: 2, Param: ParamExpectedVotes}),
		reg, rc, {}, {0, 0, 5, 0},
	} {
		f.Add(b, false, uint32(2))
	}
	f.Fuzz(func(t *testing.T, b []byte, swapped bool, from uint32) {
		msg, err := Decode(b, swapped)
		if err == nil {
			var re []byte
			switch v := msg.(type) {
			case NodeInfo:
				re = EncodeNodeInfo(v)
			case Reconfigure:
				re = EncodeReconfigure(v)
			case QdeviceReg:
				re, err = EncodeQdeviceReg(v)
			case QdeviceReconfigure:
				re, err = EncodeQdeviceReconfigure(v)
			}
			if err != nil {
				t.Fatalf("decoded %+v does not re-encode: %v", msg, err)
			}
			back, err := Decode(re, false)
			if err != nil || back != msg {
				t.Fatalf("round trip: %+v → %x → %+v %v", msg, re, back, err)
			}
		}
		m, err := New(Config{NodeID: 1, Nodelist: nodelist(3), LastManStanding: true, WaitForAll: ptr(true)}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Start(0)
		m.Sync(0, RingID{Rep: 1, Seq: 4}, []NodeID{1, 2, NodeID(from)})
		m.SyncProcess(0)
		_ = m.Deliver(0, NodeID(from), bytes.Clone(b), swapped)
		_ = m.Deliver(0, 2, b, swapped)
		m.SyncActivate(0)
		m.Tick(1 << 40)
		if q := m.Quorum(); q == 0 {
			t.Fatalf("quorum 0 after hostile input")
		}
	})
}
