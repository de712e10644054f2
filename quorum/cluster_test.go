package quorum

import (
	"fmt"
	"slices"
	"time"
)

// cluster is a test bus: it runs Machines through the driver contract in doc.go, delivering
// each partition's messages in one total order to every member of that partition (sender by
// sender, each sender's messages in order), as totem would. It is deliberately small; the
// network simulator (sim/) runs the same contract with real faults.
// tb is what the bus needs of *testing.T and *rapid.T alike.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
}

type cluster struct {
	t       tb
	now     time.Duration
	cfgs    map[NodeID]Config
	stores  map[NodeID]*MemoryEVStore
	nodes   map[NodeID]*Machine
	group   map[NodeID][]NodeID // node → members of its current ring
	seq     uint64
	changes map[NodeID][]Change
	expects map[NodeID][]uint32 // expected-votes notifications
	// device: nodes whose quorum device is attached, and whether it grants its vote there.
	device map[NodeID]bool
	// lastSync is when each node last started a sync; onTick, if set, sees every timer firing.
	lastSync map[NodeID]time.Duration
	onTick   func(id NodeID, before, after state)
	// sent logs every multicast body once, in the total order the bus delivered them.
	sent [][]byte
	// senderOrder, if set, chooses the order in which the members' sync messages are put into
	// the total order (totem may interleave senders any way); default ascending nodeid.
	senderOrder func(members []NodeID) []int
}

func newCluster(t tb) *cluster {
	return &cluster{t: t, cfgs: map[NodeID]Config{}, stores: map[NodeID]*MemoryEVStore{},
		nodes: map[NodeID]*Machine{}, group: map[NodeID][]NodeID{}, changes: map[NodeID][]Change{}, expects: map[NodeID][]uint32{},
		device: map[NodeID]bool{}, lastSync: map[NodeID]time.Duration{}}
}

// nodelist returns n one-vote entries 1..n.
func nodelist(n int) []NodeEntry {
	l := make([]NodeEntry, n)
	for i := range l {
		l[i] = NodeEntry{NodeID: NodeID(i + 1), Votes: 1}
	}
	return l
}

// boot starts node id with cfg (NodeID filled in) in a ring of its own, as totem forms one at
// start.
func (c *cluster) boot(id NodeID, cfg Config) {
	c.t.Helper()
	cfg.NodeID = id
	c.cfgs[id] = cfg
	st := c.stores[id]
	if st == nil {
		st = &MemoryEVStore{}
		c.stores[id] = st
	}
	m, err := New(cfg, st, nil)
	if err != nil {
		c.t.Fatalf("boot node %d: %v", id, err)
	}
	c.nodes[id] = m
	m.Start(c.now)
	c.ring([]NodeID{id})
}

// kill stops node id without a word (its record on the others becomes DEAD at the next ring).
func (c *cluster) kill(id NodeID) {
	delete(c.nodes, id)
	for n, g := range c.group {
		c.group[n] = slices.DeleteFunc(slices.Clone(g), func(x NodeID) bool { return x == id })
	}
	delete(c.group, id)
}

// split forms a new ring for each group (members must be running).
func (c *cluster) split(groups ...[]NodeID) {
	c.t.Helper()
	for _, g := range groups {
		c.ring(g)
	}
}

// ring forms one new ring with members and runs votequorum's sync in it.
func (c *cluster) ring(members []NodeID) {
	c.t.Helper()
	members = slices.Clone(members)
	slices.Sort(members)
	c.seq += 4
	rid := RingID{Rep: members[0], Seq: c.seq}
	for _, id := range members {
		if c.nodes[id] == nil {
			c.t.Fatalf("ring %v: node %d is not running", members, id)
		}
	}
	// Messages queued in the old ring are delivered there first (totem's recovery).
	c.drain()
	for _, id := range members {
		c.group[id] = members
	}
	for _, id := range members {
		c.nodes[id].Sync(c.now, rid, members)
		c.lastSync[id] = c.now
		if cast, ok := c.device[id]; ok {
			// A registered device polls with the new ring id promptly.
			if err := c.nodes[id].QdevicePoll(c.now, "Qdevice", cast, rid); err != nil && c.nodes[id].us.flags&FlagQdeviceRegistered != 0 {
				c.t.Fatalf("node %d poll: %v", id, err)
			}
		}
	}
	// Every member runs votequorum's phase when the previous barrier completes, so each builds
	// its NODEINFO before it sees the others' (the lab captures show exactly that).
	phase := make([][][]byte, len(members))
	for i, id := range members {
		msgs, done := c.nodes[id].SyncProcess(c.now)
		if !done {
			c.t.Fatalf("node %d: sync not done after poll", id)
		}
		phase[i] = msgs
	}
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	if c.senderOrder != nil {
		order = c.senderOrder(members)
	}
	for _, i := range order {
		for _, b := range phase[i] {
			c.deliver(members[i], members, b)
		}
	}
	for _, id := range members {
		c.nodes[id].SyncActivate(c.now)
	}
	c.drain()
}

func (c *cluster) deliver(from NodeID, members []NodeID, b []byte) {
	c.t.Helper()
	c.sent = append(c.sent, b)
	for _, to := range members {
		if err := c.nodes[to].Deliver(c.now, from, b, false); err != nil {
			c.t.Fatalf("deliver %d→%d: %v", from, to, err)
		}
	}
}

// drain hands every Ready to the bus until no node has anything left to send.
func (c *cluster) drain() {
	c.t.Helper()
	for round := 0; ; round++ {
		if round > 100 {
			c.t.Fatalf("messages never settle")
		}
		sent := false
		for _, id := range c.ids() {
			m := c.nodes[id]
			rd := m.Ready()
			m.Advance()
			c.changes[id] = append(c.changes[id], rd.Changes...)
			c.expects[id] = append(c.expects[id], rd.ExpectedVotes...)
			for _, b := range rd.Messages {
				sent = true
				c.deliver(id, c.group[id], b)
			}
		}
		if !sent {
			return
		}
	}
}

// advance moves time by d, firing due timers.
func (c *cluster) advance(d time.Duration) {
	c.t.Helper()
	end := c.now + d
	for {
		next := end
		for _, id := range c.ids() {
			if nt := c.nodes[id].Ready().NextTick; nt != 0 && nt < next {
				next = nt
			}
		}
		c.now = max(c.now, next)
		for _, id := range c.ids() {
			if nt := c.nodes[id].Ready().NextTick; nt != 0 && nt <= c.now {
				before := c.state(id)
				c.nodes[id].Tick(c.now)
				c.drain()
				if c.onTick != nil {
					c.onTick(id, before, c.state(id))
				}
			}
		}
		c.drain()
		if next >= end {
			return
		}
	}
}

func (c *cluster) ids() []NodeID {
	var ids []NodeID
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// state is one node's numbers as quorumtool shows them.
type state struct {
	Quorate  bool
	Expected uint32
	Quorum   uint32
	Total    uint32
}

func (s state) String() string {
	return fmt.Sprintf("quorate=%v E=%d Q=%d T=%d", s.Quorate, s.Expected, s.Quorum, s.Total)
}

func (c *cluster) state(id NodeID) state {
	m := c.nodes[id]
	info, err := m.GetInfo(id)
	if err != nil {
		c.t.Fatalf("getinfo %d: %v", id, err)
	}
	return state{Quorate: m.Quorate(), Expected: info.ExpectedVotes, Quorum: info.Quorum, Total: info.TotalVotes}
}

// expect checks every listed node.
func (c *cluster) expect(step string, want state, ids ...NodeID) {
	c.t.Helper()
	for _, id := range ids {
		if got := c.state(id); got != want {
			c.t.Errorf("%s: node %d: got %v, want %v", step, id, got, want)
		}
	}
}

func span(a, b NodeID) []NodeID {
	var l []NodeID
	for i := a; i <= b; i++ {
		l = append(l, i)
	}
	return l
}

func ptr[T any](v T) *T { return &v }
