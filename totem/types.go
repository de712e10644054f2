package totem

import (
	"strconv"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
)

// NodeID is a node's id in the nodelist (corosync's nodeid).
type NodeID uint32

// RingID names one ring: its representative (the lowest node id of its members) and a sequence
// number that grows with every ring. It prints as corosync's logs and tools print it, "1.d":
// the representative and the sequence in hex.
type RingID struct {
	Rep NodeID
	Seq uint64
}

func (r RingID) String() string { return srp.RingID{Rep: srp.NodeID(r.Rep), Seq: r.Seq}.String() }

// ConfigurationKind tells the two configurations of Extended Virtual Synchrony apart.
type ConfigurationKind uint8

const (
	// Transitional is delivered first on a ring change: the members of the old ring that move
	// on together. Messages delivered after it and before the next Regular configuration
	// were sent in the old ring and are delivered only to these members.
	Transitional ConfigurationKind = iota
	// Regular is the new ring itself; every member delivers the same messages after it.
	Regular
)

func (k ConfigurationKind) String() string {
	if k == Transitional {
		return "transitional"
	}
	return "regular"
}

// Membership is a ring configuration as EVS delivers it, in total order with messages.
//
// Joined and Left compare with the previous regular configuration, as corosync's "A new
// membership (1.16) was formed. Members joined: 2 left: 3" does: in a Regular configuration,
// Joined are the members that were not in the previous regular configuration (this node itself
// in its first one) and Left the members of it that are gone; in a Transitional configuration
// Joined is empty and Left are the members of the previous regular configuration that did not
// move on with this node.
type Membership struct {
	Kind    ConfigurationKind
	RingID  RingID
	Members []NodeID // ascending
	Joined  []NodeID
	Left    []NodeID
}

// Guarantee is a message's delivery guarantee.
type Guarantee uint8

const (
	// Agreed delivers in total order as soon as the ring has ordered the message.
	Agreed Guarantee = iota
	// Safe delivers only once every member of the configuration is known to have the message:
	// a message delivered SAFE in a configuration is held by every member of it.
	Safe
)

func (g Guarantee) String() string {
	if g == Safe {
		return "safe"
	}
	return "agreed"
}

func (g Guarantee) srp() srp.Guarantee {
	if g == Safe {
		return srp.Safe
	}
	return srp.Agreed
}

// Process is a member of a process group: a process on a node, as CPG names it.
type Process struct {
	NodeID NodeID
	PID    uint32
}

func (p Process) String() string {
	return strconv.FormatUint(uint64(p.NodeID), 10) + ":" + strconv.FormatUint(uint64(p.PID), 10)
}

// Message is one message delivered to a group, in the ring's total order.
type Message struct {
	Group   string
	Sender  Process
	Payload []byte // valid until Deliver returns: copy it to keep it
}

// ChangeReason says why a process joined or left a group (corosync's CPG_REASON_*).
type ChangeReason uint8

const (
	ReasonJoin     ChangeReason = 1 // the process joined the group
	ReasonLeave    ChangeReason = 2 // the process left the group
	ReasonNodeDown ChangeReason = 3 // its node left the ring
	ReasonNodeUp   ChangeReason = 4 // its node joined the ring (a member already in the group)
	ReasonProcDown ChangeReason = 5 // the process died without leaving
)

func (r ChangeReason) String() string { return services.Reason(r).String() }

// MemberChange is a process joining or leaving a group, with the reason.
type MemberChange struct {
	Process
	Reason ChangeReason
}

// GroupChange is a process group membership change (CPG's confchg), in total order with the
// group's messages: every member of the group sees the same changes between the same messages.
type GroupChange struct {
	Group   string
	Members []Process // after the change, sorted by (node id, pid)
	Joined  []MemberChange
	Left    []MemberChange
}

// QuorumState is votequorum's verdict after a change, with the numbers behind it.
type QuorumState struct {
	RingID        RingID
	Members       []NodeID // the ring's members, ascending
	Quorate       bool
	ExpectedVotes uint32
	TotalVotes    uint32
	Quorum        uint32 // votes needed
}

// Conversions from the layers' own types. They copy headers, never payloads.

func nodeIDs(ids []srp.NodeID) []NodeID {
	if ids == nil {
		return nil
	}
	out := make([]NodeID, len(ids))
	for i, id := range ids {
		out[i] = NodeID(id)
	}
	return out
}

func ringID(r srp.RingID) RingID { return RingID{Rep: NodeID(r.Rep), Seq: r.Seq} }

func message(m *services.GroupMessage) Message {
	return Message{Group: m.Group, Sender: Process{NodeID: NodeID(m.Sender), PID: m.PID}, Payload: m.Payload}
}

func processes(ps []services.Process) []Process {
	out := make([]Process, len(ps))
	for i, p := range ps {
		out[i] = Process{NodeID: NodeID(p.NodeID), PID: p.PID}
	}
	return out
}

func memberChanges(cs []services.MemberChange) []MemberChange {
	if len(cs) == 0 {
		return nil
	}
	out := make([]MemberChange, len(cs))
	for i, c := range cs {
		out[i] = MemberChange{Process: Process{NodeID: NodeID(c.NodeID), PID: c.PID}, Reason: ChangeReason(c.Reason)}
	}
	return out
}

func groupChange(c *services.Confchg) GroupChange {
	return GroupChange{Group: c.Group, Members: processes(c.Members), Joined: memberChanges(c.Joined), Left: memberChanges(c.Left)}
}

func quorumState(q *quorum.Change) QuorumState {
	ids := make([]NodeID, len(q.Members))
	for i, m := range q.Members {
		ids[i] = NodeID(m)
	}
	return QuorumState{RingID: RingID{Rep: NodeID(q.RingID.Rep), Seq: q.RingID.Seq}, Members: ids, Quorate: q.Quorate,
		ExpectedVotes: q.ExpectedVotes, TotalVotes: q.TotalVotes, Quorum: q.Quorum}
}
