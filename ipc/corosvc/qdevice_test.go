package corosvc

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/totem"
)

// fakeVQ records the quorum-device calls as votequorum would receive them.
type fakeVQ struct {
	calls []string
	err   error
}

func (f *fakeVQ) Status() totem.Status                { return totem.Status{QuorumProvider: "corosync_votequorum"} }
func (f *fakeVQ) SetExpectedVotes(uint32) error       { return nil }
func (f *fakeVQ) SetVotes(totem.NodeID, uint32) error { return nil }
func (f *fakeVQ) QdeviceRegister(name string) error {
	f.calls = append(f.calls, "register "+name)
	return f.err
}
func (f *fakeVQ) QdeviceUnregister(name string) error {
	f.calls = append(f.calls, "unregister "+name)
	return f.err
}
func (f *fakeVQ) QdeviceUpdate(o, n string) error {
	f.calls = append(f.calls, "update "+o+" "+n)
	return f.err
}
func (f *fakeVQ) QdevicePoll(name string, cast bool, ring quorum.RingID) error {
	f.calls = append(f.calls, fmt.Sprintf("poll %s %v %d.%d", name, cast, ring.Rep, ring.Seq))
	return f.err
}
func (f *fakeVQ) QdeviceMasterWins(name string, allow bool) error {
	f.calls = append(f.calls, fmt.Sprintf("master_wins %s %v", name, allow))
	return f.err
}

// qdevReq builds a req_lib_votequorum_qdevice_* message as libvotequorum lays it out (the
// sizes are the C structs' sizeof on x86_64).
func qdevReq(id int32, size int, name string, fill func(b []byte)) []byte {
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b[0:], uint32(id))
	binary.LittleEndian.PutUint32(b[4:], uint32(size))
	copy(b[16:16+254], name)
	if fill != nil {
		fill(b)
	}
	return b
}

// The device calls reach votequorum with the fields where libvotequorum puts them, and
// votequorum's errors come back as the cs_error_t corosync answers.
func TestVotequorumQdeviceCalls(t *testing.T) {
	le := binary.LittleEndian
	f := &fakeVQ{}
	v := NewVotequorum(f, f)
	cases := []struct {
		msg  []byte
		want string
	}{
		{qdevReq(vqQdeviceRegister, 272, "Qdevice", nil), "register Qdevice"},
		{qdevReq(vqQdeviceUpdate, 528, "Qdevice", func(b []byte) { copy(b[271:], "Renamed") }), "update Qdevice Renamed"},
		{qdevReq(vqQdevicePoll, 296, "Qdevice", func(b []byte) {
			le.PutUint32(b[272:], 1)
			le.PutUint32(b[280:], 2)
			le.PutUint64(b[288:], 0x1c)
		}), "poll Qdevice true 2.28"},
		{qdevReq(vqQdevicePoll, 296, "Qdevice", func(b []byte) { le.PutUint32(b[280:], 1); le.PutUint64(b[288:], 4) }), "poll Qdevice false 1.4"},
		{qdevReq(vqQdeviceMasterWins, 280, "Qdevice", func(b []byte) { le.PutUint32(b[272:], 1) }), "master_wins Qdevice true"},
		{qdevReq(vqQdeviceUnregister, 272, "Qdevice", nil), "unregister Qdevice"},
	}
	for _, c := range cases {
		f.calls = nil
		id := int32(le.Uint32(c.msg))
		if got := v.qdeviceCall(id, c.msg); got != csOK {
			t.Fatalf("%s: cs_error %d", c.want, got)
		}
		if len(f.calls) != 1 || f.calls[0] != c.want {
			t.Fatalf("call %v, want %q", f.calls, c.want)
		}
	}
	// A poll too short to carry its ring id is refused without reaching votequorum.
	f.calls = nil
	if got := v.qdeviceCall(vqQdevicePoll, qdevReq(vqQdevicePoll, 280, "Qdevice", nil)); got != csErrInvalid || len(f.calls) != 0 {
		t.Fatalf("short poll: %d, calls %v", got, f.calls)
	}
	for _, c := range []struct {
		err  error
		want int32
	}{
		{quorum.ErrAccess, csErrAccess}, {quorum.ErrExist, csErrExist}, {quorum.ErrNotExist, csErrNotExist},
		{quorum.ErrTryAgain, csErrTryAgain}, {quorum.ErrMessage, csErrMessage}, {quorum.ErrInvalidParam, csErrInvalid},
		{fmt.Errorf("poll for ring 1.4: %w", quorum.ErrMessage), csErrMessage},
	} {
		f.err = c.err
		if got := v.qdeviceCall(vqQdevicePoll, cases[2].msg); got != c.want {
			t.Errorf("%v: cs_error %d, want %d", c.err, got, c.want)
		}
	}
}
