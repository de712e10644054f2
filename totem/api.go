package totem

import (
	"errors"
	"log/slog"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
)

// Guarantee is a message's delivery guarantee.
type Guarantee = srp.Guarantee

const (
	// Agreed delivers in total order as soon as the ring has ordered the message.
	Agreed = srp.Agreed
	// Safe delivers only once every member of the configuration is known to have the message.
	Safe = srp.Safe
)

// Errors of the Node API.
var (
	// ErrBusy is returned by TrySend when the ring cannot take the message now (corosync's
	// CS_ERR_TRY_AGAIN): the send queue is full, or a synchronization is running.
	ErrBusy = errors.New("totem: ring busy, try again")
	// ErrStopped is returned by calls on a node that was stopped or never started.
	ErrStopped = errors.New("totem: node not running")
	// ErrGroupJoined is returned by Join for a group this node already joined.
	ErrGroupJoined = errors.New("totem: group already joined")
)

// Options configure a Node.
type Options struct {
	// Config is the resolved corosync.conf of this node (config.Load, then Resolve).
	Config *config.Runtime
	// StateDir overrides system.state_dir (ring id and ev_tracking files).
	StateDir string
	// Logger receives structured logs; nil keeps the node quiet.
	Logger *slog.Logger
	// OnMembership is called for every ring configuration, transitional and regular, in
	// total order with group events. See "Callbacks" in the package doc.
	OnMembership func(Membership)
	// OnQuorum is called when votequorum's verdict changes.
	OnQuorum func(QuorumState)
}

// Membership is a ring configuration as EVS delivers it.
type Membership struct {
	Kind    srp.ConfigurationKind
	RingID  srp.RingID
	Members []srp.NodeID
	Joined  []srp.NodeID
	Left    []srp.NodeID
}

// QuorumState is votequorum's verdict with the numbers behind it.
type QuorumState = quorum.Change

// GroupHandler receives one group's events, in total order, on the node's dispatch goroutine.
type GroupHandler interface {
	// Deliver is one message sent to the group. m.Payload is the handler's to keep.
	Deliver(m Message)
	// ConfigChange reports processes joining or leaving the group.
	ConfigChange(c GroupChange)
}

// Message is a message delivered to a group.
type Message = services.GroupMessage

// GroupChange is a process group membership change (CPG's confchg).
type GroupChange = services.Confchg

// Process is a group member: a process on a node.
type Process = services.Process
