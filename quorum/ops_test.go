package quorum

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSetVotes(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 5, Config{})
	c.split(span(1, 5))
	if err := c.nodes[2].SetVotes(c.now, 9, 1); !errors.Is(err, ErrNameNotFound) {
		t.Fatalf("unknown node: %v", err)
	}
	if err := c.nodes[2].SetVotes(c.now, 1, 3); err != nil {
		t.Fatal(err)
	}
	c.drain()
	// Every node applies RECONFIGURE(NODE_VOTES): T=7 > E=5 raises E to 7, Q=4.
	c.expect("node 1 has 3 votes", state{true, 7, 4, 7}, span(1, 5)...)
	// Node 1 applied it to its own record too, so its NODEINFO in the next sync keeps it.
	c.split(span(1, 5))
	c.expect("next sync: node 1 announces 3 votes", state{true, 7, 4, 7}, span(1, 5)...)
	// A vote count that would leave quorum above the total is refused.
	if err := c.nodes[1].SetVotes(c.now, 1, 0); err != nil {
		t.Fatalf("votes 0: %v", err)
	}
	c.drain()
	c.expect("node 1 has 0 votes", state{true, 7, 4, 4}, span(1, 5)...)
	if err := c.nodes[1].SetVotes(c.now, 2, 0); !errors.Is(err, ErrInvalidParam) {
		t.Fatalf("votes 0 for node 2 too (quorum 4 > total 3): %v", err)
	}
}

func TestCancelWaitForAll(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 3, Config{WaitForAll: ptr(true)})
	c.split(span(1, 2))
	c.expect("2 of 3 before all were seen", state{false, 3, 2, 2}, 1, 2)
	c.nodes[2].CancelWaitForAll(c.now)
	c.drain()
	c.expect("after cancel_wait_for_all", state{true, 3, 2, 2}, 1, 2)
}

// Quorum changes during a sync are reported once, at activation, with the new ring.
func TestCallbackDeferredDuringSync(t *testing.T) {
	m, err := New(Config{NodeID: 1, Nodelist: nodelist(3)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(0)
	m.Advance()
	ring := RingID{Rep: 1, Seq: 8}
	m.Sync(0, ring, []NodeID{2, 1})
	msgs, done := m.SyncProcess(0)
	if !done || len(msgs) != 2 {
		t.Fatalf("sync process: %d msgs, done %v", len(msgs), done)
	}
	if fn, _ := Function(msgs[0], false); fn != FnNodeInfo {
		t.Fatalf("first message is not NODEINFO")
	}
	if ni, _ := DecodeNodeInfo(msgs[1], false); ni.NodeID != 0 {
		t.Fatalf("NODEINFO(0) must come after our own: %+v", ni)
	}
	for _, b := range append(msgs, EncodeNodeInfo(NodeInfo{NodeID: 2, Votes: 1, ExpectedVotes: 3})) {
		if err := m.Deliver(0, 1, b, false); err != nil {
			t.Fatal(err)
		}
	}
	if !m.Quorate() || len(m.Ready().Changes) != 0 {
		t.Fatalf("quorate=%v changes=%v: the verdict must wait for activation", m.Quorate(), m.Ready().Changes)
	}
	m.SyncActivate(0)
	ch := m.Ready().Changes
	want := Change{RingID: ring, Members: []NodeID{1, 2}, Quorate: true, ExpectedVotes: 3, TotalVotes: 2, Quorum: 2}
	if len(ch) != 1 || ch[0].RingID != want.RingID || ch[0].Quorate != want.Quorate || ch[0].Quorum != want.Quorum ||
		ch[0].TotalVotes != want.TotalVotes || len(ch[0].Members) != 2 {
		t.Fatalf("changes %+v, want [%+v]", ch, want)
	}
	if s := m.Snapshot(); !s.Quorate || s.RingID != ring {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestAllowDownscaleLeaving(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 5, Config{AllowDownscale: true})
	c.split(span(1, 5))
	c.nodes[5].Shutdown(c.now)
	c.drain()
	c.kill(5)
	c.split(span(1, 4))
	// Receivers count the nodes left (4) but never let quorum fall below ev_barrier (5).
	c.expect("after node 5 left cleanly", state{true, 4, 3, 4}, span(1, 4)...)
	for _, ns := range c.nodes[1].Nodes() {
		if ns.NodeID == 5 && ns.State != StateDead {
			t.Fatalf("node 5 record %v", ns)
		}
	}
	if c.stores[1].Barrier != 5 {
		t.Fatalf("allow_downscale forces expected_votes_tracking: barrier %d", c.stores[1].Barrier)
	}
}

func TestExpectedVotesTracking(t *testing.T) {
	c := newCluster(t)
	cfg := Config{ExpectedVotesTracking: true, Nodelist: nodelist(3)}
	for i := NodeID(1); i <= 3; i++ {
		c.boot(i, cfg)
	}
	c.boot(4, Config{ExpectedVotesTracking: true, Nodelist: nodelist(4)})
	c.split(span(1, 4))
	c.expect("a fourth node raises expected", state{true, 4, 3, 4}, span(1, 4)...)
	if c.stores[1].Barrier != 4 {
		t.Fatalf("barrier %d, want 4", c.stores[1].Barrier)
	}
	c.kill(1)
	c.boot(1, cfg)
	c.expect("restart remembers 4 although the nodelist says 3", state{false, 4, 3, 1}, 1)
}

func TestFileEVStore(t *testing.T) {
	dir := t.TempDir()
	s := NewFileEVStore(dir)
	if v, err := s.Load(); v != 0 || err != nil {
		t.Fatalf("missing file: %d %v", v, err)
	}
	if err := s.Store(7); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "ev_tracking"))
	if err != nil || len(raw) != 4 || binary.NativeEndian.Uint32(raw) != 7 {
		t.Fatalf("file %x %v: want 4 bytes host order", raw, err)
	}
	if v, err := s.Load(); v != 7 || err != nil {
		t.Fatalf("load %d %v", v, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	if err := os.WriteFile(s.Path, []byte{1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Load(); v != 0 || err != nil {
		t.Fatalf("short file: %d %v", v, err)
	}
	bad := NewFileEVStore(filepath.Join(dir, "missing", "dir"))
	if err := bad.Store(1); err == nil {
		t.Fatal("store into a missing directory succeeded")
	}
	// A machine whose store fails keeps running and counts the failure.
	m, err := New(Config{NodeID: 1, Nodelist: nodelist(3), ExpectedVotesTracking: true}, bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(0)
	if m.Counters().EVStoreErrors == 0 {
		t.Fatal("failed write not counted")
	}
}

func TestQdeviceRegistration(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 2, Config{Device: DeviceConfig{Model: "net"}})
	c.split(span(1, 2))
	m := c.nodes[1]
	if err := m.QdevicePoll(c.now, "Qdevice", true, m.CurrentRing()); !errors.Is(err, ErrNotExist) {
		t.Fatalf("poll before register: %v", err)
	}
	if err := m.QdeviceRegister(c.now, "Qdevice"); err != nil {
		t.Fatal(err)
	}
	if err := m.QdeviceRegister(c.now, "Other"); !errors.Is(err, ErrTryAgain) {
		t.Fatalf("second register while pending: %v", err)
	}
	rd := m.Ready()
	if len(rd.Registrations) != 0 {
		t.Fatal("registered before the message came back")
	}
	c.drain()
	if m.us.flags&FlagQdeviceRegistered == 0 || c.nodes[2].qdeviceName != "Qdevice" {
		t.Fatalf("not registered (flags %b), node 2 knows %q", m.us.flags, c.nodes[2].qdeviceName)
	}
	if err := m.QdeviceRegister(c.now, "Other"); !errors.Is(err, ErrExist) {
		t.Fatalf("other name: %v", err)
	}
	if err := m.QdevicePoll(c.now, "Qdevice", true, RingID{Rep: 1, Seq: 1}); !errors.Is(err, ErrMessage) {
		t.Fatalf("poll for an old ring: %v", err)
	}
	if err := m.QdevicePoll(c.now, "Other", true, m.CurrentRing()); !errors.Is(err, ErrInvalidParam) {
		t.Fatalf("poll with another name: %v", err)
	}
	if err := m.QdevicePoll(c.now, "Qdevice", true, m.CurrentRing()); err != nil {
		t.Fatal(err)
	}
	c.drain()
	c.expect("node 1 gets the device vote", state{true, 3, 2, 3}, 1)

	// A new ring: the sync waits for a poll with the new ring id, at most sync_timeout.
	rid := RingID{Rep: 1, Seq: 1000}
	m.Sync(c.now, rid, []NodeID{1, 2})
	if _, done := m.SyncProcess(c.now); done {
		t.Fatal("sync did not wait for the device")
	}
	if nt := m.Ready().NextTick; nt != c.now+DefaultQdeviceSyncTimeout {
		t.Fatalf("next tick %v, want sync_timeout", nt)
	}
	m.Tick(c.now + DefaultQdeviceSyncTimeout)
	if _, done := m.SyncProcess(c.now); !done {
		t.Fatal("sync still waiting after sync_timeout")
	}
	if m.us.flags&(FlagQdeviceAlive|FlagQdeviceCastVote) != 0 {
		t.Fatal("timed-out device still alive")
	}

	if err := m.QdeviceUnregister(c.now, "Qdevice"); err != nil {
		t.Fatal(err)
	}
	m.SyncActivate(c.now)
	c.group[1] = []NodeID{1, 2}
	c.drain()
	if c.nodes[2].qdeviceName != "" {
		t.Fatalf("node 2 still knows %q after unregister", c.nodes[2].qdeviceName)
	}
}

type fakeDevice struct {
	cast bool
	err  error
}

func (f *fakeDevice) Name() string { return "Qdevice" }
func (f *fakeDevice) Vote(RingID, []NodeID) (bool, error) {
	return f.cast, f.err
}

func TestDeviceRunner(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 2, Config{Device: DeviceConfig{Model: "net"}})
	c.split(span(1, 2))
	dev := &fakeDevice{cast: true}
	r := &DeviceRunner{Dev: dev}
	step := func() {
		t.Helper()
		if err := r.Step(c.now, c.nodes[1], c.group[1]); err != nil && dev.err == nil {
			t.Fatal(err)
		}
		c.drain()
	}
	step() // register
	step() // first poll
	c.expect("device voting", state{true, 3, 2, 3}, 1)
	if r.Next() != c.now+5*time.Second {
		t.Fatalf("poll interval: next %v", r.Next())
	}
	dev.err = errors.New("arbiter unreachable")
	for i := 0; i < 4; i++ {
		c.advance(5 * time.Second)
		step()
	}
	c.expect("vote withdrawn after the timeout", state{true, 3, 2, 2}, 1)
	if r.Failures == 0 || r.Polls != 1 {
		t.Fatalf("polls %d failures %d", r.Polls, r.Failures)
	}
}

func TestMasterWins(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 4, Config{Device: DeviceConfig{Model: "net", Votes: ptr(uint32(1))}, ExpectedVotes: 5})
	c.split(span(1, 4))
	m := c.nodes[1]
	if err := m.QdeviceRegister(c.now, "Qdevice"); err != nil {
		t.Fatal(err)
	}
	c.drain()
	if err := m.QdeviceMasterWins(c.now, "Qdevice", true); err != nil {
		t.Fatal(err)
	}
	c.device[1] = true
	if err := m.QdevicePoll(c.now, "Qdevice", true, m.CurrentRing()); err != nil {
		t.Fatal(err)
	}
	c.drain()
	// {1}: 1 node vote + 1 device vote = 2 < Q=3, but its device is master and votes for it.
	c.split([]NodeID{1}, span(2, 4))
	if !m.Quorate() {
		t.Fatalf("master_wins partition inquorate: %v", c.state(1))
	}
	c.expect("{2,3,4}", state{true, 5, 3, 3}, 2, 3, 4)
}

func TestNodeRecordLimit(t *testing.T) {
	m, err := New(Config{NodeID: 1, ExpectedVotes: 1000}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(0)
	var last error
	for id := NodeID(2); id < MaxNodes+10; id++ {
		last = m.Deliver(0, id, EncodeNodeInfo(NodeInfo{NodeID: id, Votes: 1, ExpectedVotes: 1000}), false)
	}
	if !errors.Is(last, ErrTooManyNodes) || m.Counters().NoRecord == 0 || len(m.Nodes()) != MaxNodes {
		t.Fatalf("err %v counters %+v records %d", last, m.Counters(), len(m.Nodes()))
	}
	// A DEAD record is recycled.
	m.Sync(0, RingID{Rep: 1, Seq: 4}, []NodeID{1, 2})
	m.Sync(0, RingID{Rep: 1, Seq: 8}, []NodeID{1})
	if err := m.Deliver(0, 999, EncodeNodeInfo(NodeInfo{NodeID: 999, Votes: 1}), false); err != nil {
		t.Fatalf("no DEAD record recycled: %v", err)
	}
}
