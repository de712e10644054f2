package quorum

import (
	"fmt"
	"slices"
)

// InfoFlags is getinfo's flags word (VOTEQUORUM_INFO_*, votequorum.md §10.2).
type InfoFlags uint32

const (
	InfoTwoNode           InfoFlags = 1
	InfoQuorate           InfoFlags = 2
	InfoWaitForAll        InfoFlags = 4
	InfoLastManStanding   InfoFlags = 8
	InfoAutoTieBreaker    InfoFlags = 16
	InfoAllowDownscale    InfoFlags = 32
	InfoQdeviceRegistered InfoFlags = 64
	InfoQdeviceAlive      InfoFlags = 128
	InfoQdeviceCastVote   InfoFlags = 256
	InfoQdeviceMasterWins InfoFlags = 512
)

// Info is what votequorum_getinfo answers about one node.
type Info struct {
	NodeID          NodeID
	State           NodeState
	Votes           uint32
	ExpectedVotes   uint32
	HighestExpected uint32
	TotalVotes      uint32
	Quorum          uint32
	Flags           InfoFlags
	QdeviceVotes    uint32
	QdeviceName     string
}

// totalVotes is getinfo's total: member votes plus the device's when the queried node's flags
// say it casts its vote.
func (m *Machine) totalVotes(n *node) uint32 {
	var t uint64
	for _, o := range m.nodes {
		if o.state == StateMember {
			t += uint64(o.votes)
		}
	}
	if n.flags&FlagQdeviceCastVote != 0 {
		t += uint64(m.qdevice.votes)
	}
	return sat32(t)
}

// GetInfo answers as votequorum_getinfo does; nodeid 0 means the local node. A node never
// announced returns ErrNotExist.
func (m *Machine) GetInfo(nodeid NodeID) (Info, error) {
	if nodeid == QdeviceNodeID {
		nodeid = m.us.id
	}
	n := m.nodes[nodeid]
	if n == nil {
		return Info{}, fmt.Errorf("quorum: getinfo node %d: %w", nodeid, ErrNotExist)
	}
	info := Info{
		NodeID:        n.id,
		State:         n.state,
		Votes:         n.votes,
		ExpectedVotes: n.expected,
		TotalVotes:    m.totalVotes(n),
		Quorum:        m.quorum,
		QdeviceVotes:  m.qdevice.votes,
		QdeviceName:   m.qdeviceName,
	}
	for _, o := range m.nodes {
		if o.state == StateMember {
			info.HighestExpected = max(info.HighestExpected, o.expected)
		}
	}
	set := func(cond bool, f InfoFlags) {
		if cond {
			info.Flags |= f
		}
	}
	set(m.d.twoNode, InfoTwoNode)
	set(m.quorate, InfoQuorate)
	set(m.d.wfa, InfoWaitForAll)
	set(m.d.lms, InfoLastManStanding)
	set(m.d.atb != ATBNone, InfoAutoTieBreaker)
	set(m.d.ad, InfoAllowDownscale)
	set(n.flags&FlagQdeviceRegistered != 0, InfoQdeviceRegistered)
	set(n.flags&FlagQdeviceAlive != 0, InfoQdeviceAlive)
	set(n.flags&FlagQdeviceCastVote != 0, InfoQdeviceCastVote)
	set(n.flags&FlagQdeviceMasterWins != 0, InfoQdeviceMasterWins)
	return info, nil
}

// NodeStatus is one node record as votequorum keeps it.
type NodeStatus struct {
	NodeID        NodeID
	State         NodeState
	Votes         uint32
	ExpectedVotes uint32
	Flags         NodeFlags
}

// Snapshot is everything the quorumtool views show, taken at one instant.
type Snapshot struct {
	NodeID NodeID
	// RingID, Members and Quorate are the quorum service's view: the last verdict votequorum
	// reported (held back during a sync).
	RingID  RingID
	Members []NodeID
	Quorate bool
	// Local is getinfo for this node; Nodes has getinfo for each member that has a record
	// (members whose NODEINFO has not arrived are absent, and the views say so).
	Local Info
	Nodes map[NodeID]Info
	// SyncRing and SyncMembers are the ring of the last sync and its totem members: what
	// votequorum's nodelist notification carries from the start of a sync on, and the ring a
	// quorum device's poll must name.
	SyncRing    RingID
	SyncMembers []NodeID
	// WaitForAllStatus, EVBarrier, LowestNodeID and HighestNodeID are what corosync publishes
	// under runtime.votequorum.* (the node ids are 0 until a membership was quorate by votes).
	WaitForAllStatus bool
	EVBarrier        uint32
	LowestNodeID     NodeID
	HighestNodeID    NodeID
}

// Snapshot captures the state for the views.
func (m *Machine) Snapshot() Snapshot {
	s := Snapshot{
		NodeID:  m.us.id,
		RingID:  m.reported.RingID,
		Members: slices.Clone(m.reported.Members),
		Quorate: m.reported.Quorate,
		Nodes:   map[NodeID]Info{},

		SyncRing:    m.ringID,
		SyncMembers: slices.Clone(m.members),

		WaitForAllStatus: m.wfaStatus,
		EVBarrier:        m.evBarrier,
		LowestNodeID:     m.lowest,
		HighestNodeID:    m.highest,
	}
	s.Local, _ = m.GetInfo(m.us.id)
	for _, id := range s.Members {
		if info, err := m.GetInfo(id); err == nil && id != QdeviceNodeID {
			s.Nodes[id] = info
		}
	}
	return s
}

// Nodes lists every record (DEAD ones included), ascending by nodeid.
func (m *Machine) Nodes() []NodeStatus {
	out := make([]NodeStatus, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, NodeStatus{NodeID: n.id, State: n.state, Votes: n.votes, ExpectedVotes: n.expected, Flags: n.flags})
	}
	slices.SortFunc(out, func(a, b NodeStatus) int { return int(int64(a.NodeID) - int64(b.NodeID)) })
	return out
}

// Quorate is votequorum's own current verdict (cluster_is_quorate).
func (m *Machine) Quorate() bool { return m.quorate }

// Quorum is the current quorum threshold.
func (m *Machine) Quorum() uint32 { return m.quorum }

// ExpectedVotes is this node's expected votes.
func (m *Machine) ExpectedVotes() uint32 { return m.us.expected }

// WaitingForAll reports wait_for_all_status (runtime.votequorum.wait_for_all_status).
func (m *Machine) WaitingForAll() bool { return m.wfaStatus }

// LowestNodeID and HighestNodeID are the tie-breaker references of the last membership that
// was quorate by votes (0: none yet).
func (m *Machine) LowestNodeID() NodeID  { return m.lowest }
func (m *Machine) HighestNodeID() NodeID { return m.highest }

// EVBarrier is runtime.votequorum.ev_barrier, the allow_downscale floor.
func (m *Machine) EVBarrier() uint32 { return m.evBarrier }

// ATB is the effective auto_tie_breaker mode.
func (m *Machine) ATB() ATBMode { return m.d.atb }

// TwoNode is the effective two_node setting.
func (m *Machine) TwoNode() bool { return m.d.twoNode }

// QdeviceCanOperate is runtime.votequorum.qdevice_can_operate.
func (m *Machine) QdeviceCanOperate() bool { return m.d.qdeviceCanOperate }
