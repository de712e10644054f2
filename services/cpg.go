package services

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gototem/gototem/srp"
)

// CPG message functions (service 2), as ids (service<<16 | function).
const (
	cpgProcJoin     = ServiceCPG << 16 // function 0
	cpgProcLeave    = ServiceCPG<<16 | 1
	cpgJoinList     = ServiceCPG<<16 | 2
	cpgMcast        = ServiceCPG<<16 | 3
	cpgDownlistOld  = ServiceCPG<<16 | 4
	cpgDownlist     = ServiceCPG<<16 | 5
	cpgPartialMcast = ServiceCPG<<16 | 6

	cpgNameSize       = 136 // mar_cpg_name_t: u32 length, pad, 128 bytes
	cpgNameMax        = 128 // CPG_MAX_NAME_LENGTH: corosync's join refuses only longer names
	cpgProcMsgSize    = 168
	cpgJoinListHeader = 24 // a qb *response* header
	cpgJoinListEntry  = 144
	cpgMcastHeader    = 184
	cpgPartialHeader  = 200

	// MaxMcastPayload is libcpg's cut-off (IPC_REQUEST_SIZE − 1024): larger messages travel as
	// PARTIAL_MCAST fragments of this size.
	MaxMcastPayload = 1047552
	// MaxMessage bounds a reassembled PARTIAL_MCAST message; a hostile sender cannot make us
	// buffer more.
	MaxMessage = 64 << 20

	// MaxGroupsPerNode bounds one node's memberships (process, group), its own and, as
	// every node applies the same rule to the same delivered PROCJOINs, those it records
	// for each other node. Every membership is a 144-byte JOINLIST entry after each
	// configuration change: thousands of groups in one JOINLIST passed totempg's 1 MiB
	// reassembly limit and sync never finished (issue 12). 4096 entries are 576 KiB, sent
	// as joinListChunk-sized messages.
	MaxGroupsPerNode = 4096
	// MaxJoinsPerProcess bounds the groups one process (client) may join.
	MaxJoinsPerProcess = 1024
	// MaxPartialsPerNode bounds the PARTIAL_MCAST messages one node may have in reassembly
	// at once (one per sending process): each may grow to MaxMessage.
	MaxPartialsPerNode = 64
	// joinListChunk is the most entries one JOINLIST carries (144 KiB): receivers merge
	// every JOINLIST of a sync, corosync's included, so the list may be split.
	joinListChunk = 1024

	partialFirst     = 1
	partialContinued = 2
	partialLast      = 3
)

// Reason says why a process joined or left a group (cpg.h's CPG_REASON_*).
type Reason uint32

const (
	ReasonJoin     Reason = 1
	ReasonLeave    Reason = 2
	ReasonNodeDown Reason = 3
	ReasonNodeUp   Reason = 4
	ReasonProcDown Reason = 5
)

func (r Reason) String() string {
	switch r {
	case ReasonJoin:
		return "join"
	case ReasonLeave:
		return "leave"
	case ReasonNodeDown:
		return "nodedown"
	case ReasonNodeUp:
		return "nodeup"
	case ReasonProcDown:
		return "procdown"
	}
	return fmt.Sprintf("reason(%d)", uint32(r))
}

// Process is one member of a process group: CPG identifies it by (nodeid, pid, group).
type Process struct {
	NodeID srp.NodeID
	PID    uint32
	Group  string
}

// MemberChange is a process joining or leaving, with the reason.
type MemberChange struct {
	Process
	Reason Reason
}

// Confchg is a group membership change as CPG's confchg callback reports it.
type Confchg struct {
	Group   string
	Members []Process // sorted by (nodeid, pid)
	Joined  []MemberChange
	Left    []MemberChange
}

// GroupMessage is a message delivered to a group in total order.
type GroupMessage struct {
	Group   string
	Sender  srp.NodeID
	PID     uint32
	Payload []byte
}

// TotemConfchg is the ring membership CPG reports to its clients after each activation.
type TotemConfchg struct {
	RingID  srp.RingID
	Members []srp.NodeID
}

// CPGEvent is one output of the CPG service: exactly one field is set.
type CPGEvent struct {
	Confchg *Confchg
	Message *GroupMessage
	Totem   *TotemConfchg
}

// Errors of the local CPG API.
var (
	ErrBadGroupName  = errors.New("cpg: group name must be 1..128 bytes")
	ErrAlreadyJoined = errors.New("cpg: process already joined to group")
	ErrNotJoined     = errors.New("cpg: process not joined to group")
	// ErrTooManyGroups: the node already holds MaxGroupsPerNode memberships.
	ErrTooManyGroups = fmt.Errorf("cpg: this node already has %d group memberships (the limit)", MaxGroupsPerNode)
	// ErrTooManyJoins: the process already joined MaxJoinsPerProcess groups.
	ErrTooManyJoins = fmt.Errorf("cpg: this process already joined %d groups (the limit)", MaxJoinsPerProcess)
)

type localState uint8

const (
	joinStarted localState = iota + 1
	joinCompleted
	leaveStarted
)

type localKey struct {
	group string
	pid   uint32
}

type partialKey struct {
	node srp.NodeID
	pid  uint32
}

type partialMsg struct {
	group string
	want  int
	buf   []byte
}

// CPG is corosync's closed process group service (exec/cpg.c) as a pure model: the cluster-wide
// process records every node keeps, the local members of this node, and the sync rules that
// rebuild group views after each configuration change. Every node replays the same delivered
// messages in the same order, so every node derives the same views; a gototem node does
// exactly what a real node does so that gototem groups and corosync CPG groups are one.
type CPG struct {
	self    srp.NodeID
	records []Process // sorted by (nodeid, pid, group)
	local   map[localKey]localState
	// pidJoins counts c.local entries per pid (MaxJoinsPerProcess).
	pidJoins map[uint32]int
	// delivering and sendable follow local (setLocal), for the per-message paths: per group,
	// how many local members deliver (joined or leaving) and a member's copy of the name; the
	// last (group, pid) AppendMcastHeader found in local. Ranging over local for every
	// delivered message (its randomized iterator start included) and hashing the group name
	// for every send were 10% of a 1 KiB flood's protocol CPU (BenchmarkStackFlood). Kept
	// by counting, not rederived: a rederivation per join made a process's thousandth join
	// walk every group it had joined (the race pass of ./services took 424 s instead of 3).
	delivering map[string]deliveringGroup
	sendable   localKey

	// sync state
	joinlists   []Process // JOINLIST entries stored until activation, with the totem sender
	prevMembers []srp.NodeID
	left        []srp.NodeID
	ring        srp.RingID
	members     []srp.NodeID

	partial map[partialKey]*partialMsg
	events  []CPGEvent
	spare   []CPGEvent // the buffer Events returned last; reused by the next batch

	// With reuse set (ReuseBuffers), delivered messages and their payloads live in memory
	// the CPG reuses after Recycle, instead of one allocation each for the message and its
	// payload: under a flood those were most of a node's allocations.
	reuse   bool
	slab    [][]GroupMessage // fixed-size blocks: a pointer into one never moves
	slabN   int              // GroupMessages handed out since Recycle
	payload []byte           // payload copies since Recycle

	dropped uint64
}

// slabBlock is how many GroupMessages one block of the reuse slab holds.
const slabBlock = 256

// ReuseBuffers makes delivered GroupMessages and their Payloads valid only until the next
// Recycle, which then reuses their memory. A driver that copies what it keeps before calling
// Recycle (totem's dispatcher does) delivers without allocating; one that keeps messages for
// ever (the simulator's history) leaves it off.
func (c *CPG) ReuseBuffers() { c.reuse = true }

// Recycle ends the validity of every GroupMessage delivered since the last Recycle (with
// ReuseBuffers) and reuses their memory for the next ones.
func (c *CPG) Recycle() {
	// Only the entries handed out are cleared (they hold group-name references): clearing
	// whole blocks cost a 256-entry clear per Advance, 8% of a 1 KiB flood's protocol CPU
	// (BenchmarkStackFlood), when an Advance delivers one or two messages.
	for i, used := 0, c.slabN; used > 0; i++ {
		k := min(used, slabBlock)
		clear(c.slab[i][:k])
		used -= k
	}
	c.slabN = 0
	c.payload = c.payload[:0]
}

// SwapPayloads (with ReuseBuffers) hands the caller the memory that holds the payloads
// delivered since the last Recycle, so they stay valid after it without a copy, and goes on
// in spare (emptied), which the caller must be done with.
func (c *CPG) SwapPayloads(spare []byte) []byte {
	cur := c.payload
	c.payload = spare[:0]
	return cur
}

// newMessage returns a GroupMessage carrying a copy of payload.
func (c *CPG) newMessage(group string, sender srp.NodeID, pid uint32, payload []byte) *GroupMessage {
	if !c.reuse {
		return &GroupMessage{Group: group, Sender: sender, PID: pid, Payload: slices.Clone(payload)}
	}
	start := len(c.payload)
	// A reallocation leaves the payloads handed out earlier where they were, still valid.
	c.payload = append(c.payload, payload...)
	if c.slabN/slabBlock == len(c.slab) {
		c.slab = append(c.slab, make([]GroupMessage, slabBlock))
	}
	m := &c.slab[c.slabN/slabBlock][c.slabN%slabBlock]
	c.slabN++
	*m = GroupMessage{Group: group, Sender: sender, PID: pid, Payload: c.payload[start:len(c.payload):len(c.payload)]}
	return m
}

// NewCPG returns the CPG service of node self.
func NewCPG(self srp.NodeID) *CPG {
	return &CPG{self: self, local: map[localKey]localState{}, delivering: map[string]deliveringGroup{}, pidJoins: map[uint32]int{}, partial: map[partialKey]*partialMsg{}}
}

// Events returns and clears the events produced since the last call. The slice is valid
// until the next call: two buffers alternate, so a flood of deliveries does not grow a new
// array for every batch.
func (c *CPG) Events() []CPGEvent {
	ev := c.events
	clear(c.spare) // the batch before this one: drop its references
	c.events, c.spare = c.spare[:0], ev
	return ev
}

// Dropped counts CPG messages dropped as malformed, unknown, or from a node without a member.
func (c *CPG) Dropped() uint64 { return c.dropped }

// Members returns the processes of group as this node currently sees them.
func (c *CPG) Members(group string) []Process {
	var out []Process
	for _, p := range c.records {
		if p.Group == group {
			out = append(out, p)
		}
	}
	return out
}

// Records returns every process record of every group, in the order this node keeps them
// (cpg_iteration's CPG_ITERATION_ALL and NAME_ONLY walk them so).
func (c *CPG) Records() []Process { return slices.Clone(c.records) }

// Joined reports whether the local process pid is a completed member of group.
func (c *CPG) Joined(group string, pid uint32) bool {
	return c.local[localKey{group, pid}] == joinCompleted
}

// validGroup: a group name is a length and that many bytes, NULs included, as corosync's
// mar_name_compare compares them: Pacemaker joins "cib", "crmd", ... with the terminating
// NUL counted in the length, and "cib\x00" is not "cib". Up to 128 bytes, as corosync's
// join accepts (its node-down confchg keys groups by the name as a C string, writing a NUL
// at value[length]; this stack keys by length and bytes, so a 128-byte name is whole here).
func validGroup(name string) bool {
	return len(name) >= 1 && len(name) <= cpgNameMax
}

// Join starts joining the local process pid to group and returns the PROCJOIN to multicast.
func (c *CPG) Join(group string, pid uint32) ([]byte, error) {
	if !validGroup(group) {
		return nil, ErrBadGroupName
	}
	k := localKey{group, pid}
	if _, ok := c.local[k]; ok {
		return nil, ErrAlreadyJoined
	}
	if len(c.local) >= MaxGroupsPerNode {
		return nil, ErrTooManyGroups
	}
	if c.pidJoins[pid] >= MaxJoinsPerProcess {
		return nil, ErrTooManyJoins
	}
	c.setLocal(k, joinStarted)
	c.pidJoins[pid]++
	return encodeProcMsg(cpgProcJoin, group, pid, ReasonJoin), nil
}

// Leave starts the local process's leave and returns the PROCLEAVE to multicast.
func (c *CPG) Leave(group string, pid uint32) ([]byte, error) {
	return c.LeaveFor(group, pid, ReasonLeave)
}

// LeaveFor is Leave with the reason the PROCLEAVE carries: ReasonLeave for cpg_leave,
// ReasonProcDown for a client that went away without leaving (corosync's cpg_lib_exit_fn).
// Every node reports the member gone with that reason.
func (c *CPG) LeaveFor(group string, pid uint32, reason Reason) ([]byte, error) {
	k := localKey{group, pid}
	st, ok := c.local[k]
	if !ok || st == leaveStarted {
		return nil, ErrNotJoined
	}
	c.setLocal(k, leaveStarted)
	return encodeProcMsg(cpgProcLeave, group, pid, reason), nil
}

// Mcast returns the message bodies that carry payload to group from the local process pid:
// one MCAST, or PARTIAL_MCAST fragments as libcpg cuts them for large payloads.
func (c *CPG) Mcast(group string, pid uint32, payload []byte) ([][]byte, error) {
	if !validGroup(group) {
		return nil, ErrBadGroupName
	}
	if st := c.local[localKey{group, pid}]; st == 0 {
		return nil, ErrNotJoined
	}
	if len(payload) <= MaxMcastPayload {
		return [][]byte{encodeMcast(group, pid, c.self, payload)}, nil
	}
	if len(payload) > MaxMessage {
		return nil, fmt.Errorf("cpg: message of %d bytes exceeds %d", len(payload), MaxMessage)
	}
	var out [][]byte
	for off := 0; off < len(payload); off += MaxMcastPayload {
		end := min(off+MaxMcastPayload, len(payload))
		kind := partialContinued
		switch {
		case off == 0:
			kind = partialFirst
		case end == len(payload):
			kind = partialLast
		}
		out = append(out, encodePartial(group, pid, c.self, len(payload), kind, payload[off:end]))
	}
	return out, nil
}

// McastHeaderSize is the size of the header AppendMcastHeader writes before a payload.
const McastHeaderSize = cpgMcastHeader

// AppendMcastHeader appends the header of the MCAST that carries a payload of n bytes to group
// from the local process pid: the header followed by the payload is exactly Mcast's single
// body, built without copying the payload. It refuses what Mcast refuses, and payloads that
// need PARTIAL_MCAST fragments (n > MaxMcastPayload): those go through Mcast.
func (c *CPG) AppendMcastHeader(dst []byte, group string, pid uint32, n int) ([]byte, error) {
	if !validGroup(group) {
		return dst, ErrBadGroupName
	}
	if k := (localKey{group, pid}); k != c.sendable {
		if st := c.local[k]; st == 0 {
			return dst, ErrNotJoined
		}
		c.sendable = k
	}
	if n > MaxMcastPayload {
		return dst, fmt.Errorf("cpg: payload of %d bytes needs PARTIAL_MCAST", n)
	}
	return appendMcastHeader(dst, group, pid, c.self, n), nil
}

// Deliver processes one CPG message (service 2 body) delivered in total order from sender.
// swapped says the sender wrote big-endian.
func (c *CPG) Deliver(sender srp.NodeID, body []byte, swapped bool) {
	bo := byteOrder(swapped)
	if len(body) < 16 {
		c.dropped++
		return
	}
	id := bo.Uint32(body)
	var err error
	switch id {
	case cpgProcJoin, cpgProcLeave:
		err = c.deliverProc(sender, id, body, bo)
	case cpgJoinList:
		err = c.deliverJoinList(sender, body, bo)
	case cpgMcast:
		err = c.deliverMcast(sender, body, bo)
	case cpgPartialMcast:
		err = c.deliverPartial(sender, body, bo)
	case cpgDownlist, cpgDownlistOld:
		// corosync 3.1 only logs these; the left list is computed locally.
	default:
		err = fmt.Errorf("unknown function %d", id&0xffff)
	}
	if err != nil {
		c.dropped++
	}
}

func (c *CPG) deliverProc(sender srp.NodeID, id uint32, b []byte, bo binary.ByteOrder) error {
	if len(b) < cpgProcMsgSize {
		return errShort
	}
	group, err := getName(b[16:], bo)
	if err != nil {
		return err
	}
	p := Process{NodeID: sender, PID: bo.Uint32(b[152:]), Group: group}
	if id == cpgProcJoin {
		if c.indexOf(p) >= 0 {
			return nil
		}
		if c.nodeRecords(sender) >= MaxGroupsPerNode {
			// Every node refuses the same PROCJOIN (same order, same records), so views
			// stay equal; the sender's own Join already refused it if it runs gototem.
			return fmt.Errorf("node %d already has %d group memberships", sender, MaxGroupsPerNode)
		}
		c.insert(p)
		if sender == c.self && c.local[localKey{group, p.PID}] == joinStarted {
			c.setLocal(localKey{group, p.PID}, joinCompleted)
		}
		c.confchg(group, []MemberChange{{p, ReasonJoin}}, nil)
		return nil
	}
	reason := Reason(bo.Uint32(b[160:]))
	c.remove(p)
	c.confchg(group, nil, []MemberChange{{p, reason}})
	if _, ok := c.local[localKey{group, p.PID}]; ok && sender == c.self {
		c.setLocal(localKey{group, p.PID}, 0)
		if c.pidJoins[p.PID]--; c.pidJoins[p.PID] <= 0 {
			delete(c.pidJoins, p.PID)
		}
	}
	c.dropPartial(partialKey{sender, p.PID})
	return nil
}

func (c *CPG) deliverJoinList(sender srp.NodeID, b []byte, bo binary.ByteOrder) error {
	if len(b) < cpgJoinListHeader {
		return errShort
	}
	size := int(bo.Uint32(b[8:]))
	if size < cpgJoinListHeader || size > len(b) || (size-cpgJoinListHeader)%cpgJoinListEntry != 0 {
		return fmt.Errorf("joinlist size %d for %d bytes", size, len(b))
	}
	have := 0
	for _, p := range c.joinlists {
		if p.NodeID == sender {
			have++
		}
	}
	for off := cpgJoinListHeader; off < size; off += cpgJoinListEntry {
		group, err := getName(b[off+8:], bo)
		if err != nil {
			return err
		}
		if have >= MaxGroupsPerNode {
			return fmt.Errorf("joinlists of node %d pass %d entries", sender, MaxGroupsPerNode)
		}
		c.joinlists = append(c.joinlists, Process{NodeID: sender, PID: bo.Uint32(b[off:]), Group: group})
		have++
	}
	return nil
}

func (c *CPG) deliverMcast(sender srp.NodeID, b []byte, bo binary.ByteOrder) error {
	if len(b) < cpgMcastHeader {
		return errShort
	}
	// The name is looked up among the local groups as bytes: a group without a local member
	// is dropped without ever becoming a string, and one with a member takes that member's
	// string, so a delivery allocates no name.
	name, err := nameBytes(b[16:], bo)
	if err != nil {
		return err
	}
	n := int(bo.Uint32(b[152:]))
	if n > len(b)-cpgMcastHeader {
		return fmt.Errorf("mcast msglen %d for %d bytes", n, len(b)-cpgMcastHeader)
	}
	group, ok := c.localGroup(name)
	if !ok {
		return nil
	}
	c.deliverLocal(group, sender, bo.Uint32(b[160:]), b[cpgMcastHeader:cpgMcastHeader+n])
	return nil
}

func (c *CPG) deliverPartial(sender srp.NodeID, b []byte, bo binary.ByteOrder) error {
	if len(b) < cpgPartialHeader {
		return errShort
	}
	group, err := getName(b[16:], bo)
	if err != nil {
		return err
	}
	total := int(bo.Uint32(b[152:]))
	frag := int(bo.Uint32(b[160:]))
	pid := bo.Uint32(b[168:])
	kind := bo.Uint32(b[176:])
	if frag > len(b)-cpgPartialHeader || total > MaxMessage {
		return fmt.Errorf("partial mcast fraglen %d msglen %d for %d bytes", frag, total, len(b))
	}
	data := b[cpgPartialHeader : cpgPartialHeader+frag]
	k := partialKey{sender, pid}
	pm := c.partial[k]
	switch kind {
	case partialFirst:
		if pm == nil && c.partialsOf(sender) >= MaxPartialsPerNode {
			return fmt.Errorf("node %d already has %d partial messages in reassembly", sender, MaxPartialsPerNode)
		}
		pm = &partialMsg{group: group, want: total, buf: make([]byte, 0, min(total, MaxMcastPayload*2))}
		c.partial[k] = pm
	case partialContinued, partialLast:
		if pm == nil {
			return errors.New("partial mcast continuation without a first fragment")
		}
	default:
		return fmt.Errorf("partial mcast type %d", kind)
	}
	if len(pm.buf)+len(data) > pm.want {
		delete(c.partial, k)
		return errors.New("partial mcast overruns its announced length")
	}
	pm.buf = append(pm.buf, data...)
	if kind == partialLast {
		delete(c.partial, k)
		c.deliverToGroup(pm.group, sender, pid, pm.buf)
	}
	return nil
}

func (c *CPG) deliverToGroup(group string, sender srp.NodeID, pid uint32, payload []byte) {
	if !c.hasLocalMember(group) {
		return
	}
	c.deliverLocal(group, sender, pid, payload)
}

// deliverLocal is deliverToGroup for a group known to have a local member.
func (c *CPG) deliverLocal(group string, sender srp.NodeID, pid uint32, payload []byte) {
	// corosync drops a message from a node with no record in the group ("Unknown node").
	known := false
	for _, p := range c.records {
		if p.NodeID == sender && p.Group == group {
			known = true
			break
		}
	}
	if !known {
		c.dropped++
		return
	}
	c.events = append(c.events, CPGEvent{Message: c.newMessage(group, sender, pid, payload)})
}

func (c *CPG) hasLocalMember(group string) bool {
	for k, st := range c.local {
		if k.group == group && (st == joinCompleted || st == leaveStarted) {
			return true
		}
	}
	return false
}

// localGroup finds group among the groups with a local member that delivers (joined, or
// leaving), and returns that member's copy of the name.
func (c *CPG) localGroup(group []byte) (string, bool) {
	d, ok := c.delivering[string(group)] // the conversion does not allocate for a lookup
	return d.name, ok
}

// deliveringGroup is a group's entry in CPG.delivering.
type deliveringGroup struct {
	name string
	n    int // local members that deliver
}

// setLocal moves a local member to state st (0: gone) and keeps delivering and sendable in
// step with local.
func (c *CPG) setLocal(k localKey, st localState) {
	was := c.local[k]
	if st == 0 {
		delete(c.local, k)
	} else {
		c.local[k] = st
	}
	if k == c.sendable {
		c.sendable = localKey{}
	}
	delivers := func(s localState) bool { return s == joinCompleted || s == leaveStarted }
	switch d := c.delivering[k.group]; {
	case delivers(st) && !delivers(was):
		c.delivering[k.group] = deliveringGroup{name: k.group, n: d.n + 1}
	case !delivers(st) && delivers(was):
		if d.n <= 1 {
			delete(c.delivering, k.group)
		} else {
			c.delivering[k.group] = deliveringGroup{name: d.name, n: d.n - 1}
		}
	}
}

func (c *CPG) confchg(group string, joined, left []MemberChange) {
	if !c.hasLocalMember(group) {
		return
	}
	c.events = append(c.events, CPGEvent{Confchg: &Confchg{Group: group, Members: c.Members(group), Joined: joined, Left: left}})
}

func cmpProcess(a, b Process) int {
	if a.NodeID != b.NodeID {
		return cmp.Compare(a.NodeID, b.NodeID)
	}
	if a.PID != b.PID {
		return cmp.Compare(a.PID, b.PID)
	}
	return strings.Compare(a.Group, b.Group)
}

// nodeRecords counts the memberships recorded for node id (records are sorted by nodeid).
func (c *CPG) nodeRecords(id srp.NodeID) int {
	lo, _ := slices.BinarySearchFunc(c.records, id, func(p Process, id srp.NodeID) int { return cmp.Compare(p.NodeID, id) })
	hi := lo
	for hi < len(c.records) && c.records[hi].NodeID == id {
		hi++
	}
	return hi - lo
}

func (c *CPG) indexOf(p Process) int {
	i, ok := slices.BinarySearchFunc(c.records, p, cmpProcess)
	if !ok {
		return -1
	}
	return i
}

func (c *CPG) insert(p Process) {
	i, ok := slices.BinarySearchFunc(c.records, p, cmpProcess)
	if !ok {
		c.records = slices.Insert(c.records, i, p)
	}
}

func (c *CPG) remove(p Process) {
	if i := c.indexOf(p); i >= 0 {
		c.records = slices.Delete(c.records, i, i+1)
	}
}

func (c *CPG) dropPartial(k partialKey) { delete(c.partial, k) }

// partialsOf counts node's messages in reassembly (the map holds a handful normally).
func (c *CPG) partialsOf(node srp.NodeID) int {
	n := 0
	for k := range c.partial {
		if k.node == node {
			n++
		}
	}
	return n
}

// SyncInit implements Participant: it computes the nodes that left since the last activation.
func (c *CPG) SyncInit(ring srp.RingID, members, trans []srp.NodeID) {
	c.ring = ring
	c.members = slices.Clone(members)
	c.left = c.left[:0]
	for _, n := range c.prevMembers {
		if !slices.Contains(trans, n) {
			c.left = append(c.left, n)
		}
	}
	// A foreign node clears stored JOINLIST entries at every new regular configuration, so that
	// entries of an aborted sync cannot resurrect processes of a node that has left.
	c.joinlists = c.joinlists[:0]
}

// SyncProcess implements Participant: the JOINLIST of this node's process records, if any.
// The DOWNLIST is optional (receivers only log it) and not sent.
//
// Like corosync's cpg_exec_send_joinlist it lists the records (every process whose PROCJOIN
// was delivered and whose PROCLEAVE was not), not the local join states: a process whose leave
// was requested but not yet delivered is still a member, so it must be listed, or the other
// members remove it at activation (PROCDOWN) while this node keeps it, and its messages
// queued before the leave are then delivered here and dropped there as from an unknown node
// (found by the full-stack campaign, seed 2). A process whose join is not yet delivered is
// not listed: its PROCJOIN adds it everywhere at once.
func (c *CPG) SyncProcess() ([][]byte, bool) {
	var mine []Process
	for _, p := range c.records {
		if p.NodeID == c.self {
			mine = append(mine, p)
		}
	}
	if len(mine) == 0 {
		return nil, true
	}
	slices.SortFunc(mine, cmpProcess)
	var msgs [][]byte
	for len(mine) > 0 {
		n := min(len(mine), joinListChunk)
		msgs = append(msgs, encodeJoinList(mine[:n]))
		mine = mine[n:]
	}
	return msgs, true
}

// SyncActivate implements Participant: node-down, node-up and zombie rules in corosync's order.
func (c *CPG) SyncActivate() {
	// 1. node down
	byGroup := map[string][]MemberChange{}
	var groups []string
	kept := c.records[:0]
	for _, p := range c.records {
		if slices.Contains(c.left, p.NodeID) {
			if _, ok := byGroup[p.Group]; !ok {
				groups = append(groups, p.Group)
			}
			byGroup[p.Group] = append(byGroup[p.Group], MemberChange{p, ReasonNodeDown})
			c.dropPartial(partialKey{p.NodeID, p.PID})
			continue
		}
		kept = append(kept, p)
	}
	c.records = kept
	slices.Sort(groups)
	for _, g := range groups {
		c.confchg(g, nil, byGroup[g])
	}
	// 2. node up
	byGroup = map[string][]MemberChange{}
	groups = groups[:0]
	for _, p := range c.joinlists {
		if p.NodeID == c.self || c.indexOf(p) >= 0 {
			continue
		}
		c.insert(p)
		if _, ok := byGroup[p.Group]; !ok {
			groups = append(groups, p.Group)
		}
		byGroup[p.Group] = append(byGroup[p.Group], MemberChange{p, ReasonNodeUp})
	}
	slices.Sort(groups)
	for _, g := range groups {
		c.confchg(g, byGroup[g], nil)
	}
	// 3. zombies: records of other nodes not confirmed by their JOINLIST in this sync
	for i := 0; i < len(c.records); {
		p := c.records[i]
		if p.NodeID == c.self || slices.Contains(c.joinlists, p) {
			i++
			continue
		}
		c.records = slices.Delete(c.records, i, i+1)
		c.dropPartial(partialKey{p.NodeID, p.PID})
		c.confchg(p.Group, nil, []MemberChange{{p, ReasonProcDown}})
	}
	// 4.
	c.joinlists = c.joinlists[:0]
	c.prevMembers = slices.Clone(c.members)
	c.events = append(c.events, CPGEvent{Totem: &TotemConfchg{RingID: c.ring, Members: slices.Clone(c.members)}})
}

// SyncAbort implements Participant.
func (c *CPG) SyncAbort() { c.joinlists = c.joinlists[:0] }

var errShort = errors.New("cpg: message too short")

func byteOrder(swapped bool) binary.ByteOrder {
	if swapped {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func putName(b []byte, name string) {
	binary.LittleEndian.PutUint32(b, uint32(len(name)))
	copy(b[8:8+128], name)
}

func getName(b []byte, bo binary.ByteOrder) (string, error) {
	name, err := nameBytes(b, bo)
	return string(name), err
}

// nameBytes is getName's name without copying it out of b.
func nameBytes(b []byte, bo binary.ByteOrder) ([]byte, error) {
	n := bo.Uint32(b)
	if n < 1 || n > 128 {
		return nil, fmt.Errorf("cpg: group name length %d", n)
	}
	return b[8 : 8+n], nil
}

func encodeProcMsg(id uint32, group string, pid uint32, reason Reason) []byte {
	b := make([]byte, cpgProcMsgSize)
	putQBRequest(b, int32(id), cpgProcMsgSize)
	putName(b[16:], group)
	binary.LittleEndian.PutUint32(b[152:], pid)
	binary.LittleEndian.PutUint32(b[160:], uint32(reason))
	return b
}

func encodeJoinList(ps []Process) []byte {
	size := cpgJoinListHeader + cpgJoinListEntry*len(ps)
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b[0:], cpgJoinList)
	binary.LittleEndian.PutUint32(b[8:], uint32(size))
	for i, p := range ps {
		off := cpgJoinListHeader + cpgJoinListEntry*i
		binary.LittleEndian.PutUint32(b[off:], p.PID)
		putName(b[off+8:], p.Group)
	}
	return b
}

func encodeMcast(group string, pid uint32, self srp.NodeID, payload []byte) []byte {
	b := appendMcastHeader(make([]byte, 0, cpgMcastHeader+len(payload)), group, pid, self, len(payload))
	return append(b, payload...)
}

// appendMcastHeader appends an MCAST's 184-byte header for a payload of n bytes.
func appendMcastHeader(dst []byte, group string, pid uint32, self srp.NodeID, n int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, cpgMcastHeader)...)
	b := dst[start:]
	putQBRequest(b, cpgMcast, cpgMcastHeader+n)
	putName(b[16:], group)
	binary.LittleEndian.PutUint32(b[152:], uint32(n))
	binary.LittleEndian.PutUint32(b[160:], pid)
	binary.LittleEndian.PutUint32(b[168:], uint32(self))
	return dst
}

func encodePartial(group string, pid uint32, self srp.NodeID, total, kind int, frag []byte) []byte {
	b := make([]byte, cpgPartialHeader+len(frag))
	putQBRequest(b, cpgPartialMcast, len(b))
	putName(b[16:], group)
	binary.LittleEndian.PutUint32(b[152:], uint32(total))
	binary.LittleEndian.PutUint32(b[160:], uint32(len(frag)))
	binary.LittleEndian.PutUint32(b[168:], pid)
	binary.LittleEndian.PutUint32(b[176:], uint32(kind))
	binary.LittleEndian.PutUint32(b[184:], uint32(self))
	copy(b[cpgPartialHeader:], frag)
	return b
}
