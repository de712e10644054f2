package totem

import (
	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/transport"
)

// Status is a snapshot of a running node: what corosync-cfgtool, corosync-quorumtool and
// corosync-cmapctl would report about it.
type Status struct {
	NodeID    srp.NodeID
	Transport string // "udp" or "udpu"
	RRPMode   string // "none", "active" or "passive"
	State     srp.State
	RingID    srp.RingID
	Members   []srp.NodeID // the current regular configuration, ascending
	// Synchronizing is true between a regular configuration and the end of service
	// synchronization (real nodes hold flow-controlled requests meanwhile).
	Synchronizing bool
	Links         []LinkStatus
	// Nodes lists every node this node knows of: the nodelist, plus nodes learned from the
	// network on a nodelist-less multicast ring. Ascending by nodeid.
	Nodes []NodeStatus
	// QuorumProvider is quorum.provider ("" when votequorum is not configured).
	QuorumProvider string
	Quorum         quorum.Snapshot
	SRP            srp.Counters
	Net            []transport.Counters // per link
	// Dropped counts service messages (CPG, sync, votequorum) dropped as malformed.
	Dropped uint64
}

// LinkStatus is one ring (link) of the node.
type LinkStatus struct {
	Link      int
	LocalAddr string
	Faulty    bool
	// Text is the ring's status as corosync 2.x's corosync-cfgtool -s printed it, e.g.
	// "ring 0 active with no faults".
	Text string
}

// NodeStatus is one known node.
type NodeStatus struct {
	NodeID srp.NodeID
	Name   string   // nodelist name, if any
	Addrs  []string // per link
	// Member reports whether the node is in the current regular configuration.
	Member bool
	// JoinCount counts the regular configurations the node joined, as runtime.members.N.join_count.
	JoinCount uint32
	// Left reports whether the node was a member once and is not now.
	Left bool
}
