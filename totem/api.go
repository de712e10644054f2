package totem

import (
	"errors"
	"log/slog"
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
	// Config is the node's configuration: LANConfig filled in, or LoadConfig's.
	Config Config
	// StateDir holds what a node keeps across restarts: the ring sequence (corosync's
	// ringid_<nodeid> file, which must only grow) and votequorum's ev_tracking file. It must
	// be writable. Required for a Config built in code; a Config read from a corosync.conf
	// defaults to its system.state_dir (/var/lib/corosync), as corosync does.
	StateDir string
	// Logger receives the node's log: corosync's key lines (a membership formed, quorum
	// gained or lost, synchronization done) at LevelNotice with a SubsysKey attribute, and
	// the rest at Debug to Warn. Nil keeps the node quiet.
	Logger *slog.Logger
	// OnMembership is called for every ring configuration, transitional and regular, in
	// total order with group events. See "Callbacks" in the package doc.
	OnMembership func(Membership)
	// OnQuorum is called when votequorum's verdict changes.
	OnQuorum func(QuorumState)
	// OnExpectedVotes is votequorum's expected-votes notification (what corosync sends its
	// votequorum trackers): an EXPECTED_VOTES change was delivered (corosync-quorumtool -e on
	// any node, even to the same value), or the votes present raised expected votes.
	OnExpectedVotes func(expected uint32)
	// OnCfgKill is called when a cfg KILLNODE names this node (corosync-cfgtool -k on any
	// node of the ring): corosync logs "Killed by node N: reason" and exits. Nil: the kill is
	// logged and ignored.
	OnCfgKill func(from NodeID, reason string)
	// OnCfgReload is called for every cfg RELOAD_CONFIG (corosync-cfgtool -R on any node):
	// every node reloads its configuration. Its error answers the requesting client when this
	// node sent the reload.
	OnCfgReload func(from NodeID) error
	// ProtocolThread, when set, is called at the start of each of the node's protocol
	// goroutines (every link's receive loop, the timer loop and the dispatcher), each locked
	// to an OS thread of its own (a receive loop may give it back under a flood:
	// ProtocolThreadRelease): gototem run makes that thread SCHED_RR there
	// (system.sched_rr), as corosync runs its one thread. Only these threads then run
	// realtime; threads the Go runtime starts later come from its template thread, so they
	// stay ordinary. Its error is logged once per node; the goroutine runs on regardless.
	ProtocolThread func() error
	// ProtocolThreadRelease, when set with ProtocolThread, undoes ProtocolThread on the
	// calling thread (gototem run puts it back to SCHED_OTHER). It lets a link's receive loop
	// give its thread back under a flood and run on the runtime's threads, then take a
	// thread again when the load falls (see "Protocol threads" in the package doc). Without
	// it the receive loop keeps its thread for its life.
	ProtocolThreadRelease func()
	// InlineDelivery runs the callbacks on a link's receive goroutine, right after the batch
	// of packets that produced them and outside the node's lock, instead of handing every
	// batch to the dispatch goroutine (which still delivers what timers and sends produce,
	// in the same total order). It saves a goroutine hand-over per batch; callbacks must then
	// return quickly and never wait for the ring (a blocking callback stalls the protocol).
	// gototem run sets it: its callbacks only copy into its clients' shared-memory rings.
	InlineDelivery bool
	// OnShutdownRequest is called when a service asks this node to exit, as corosync's
	// shutdown request: cmap does at the node's first sync with peers when a peer runs a
	// higher totem.config_version than this node's ("Received config version (X) is
	// different than my config version (Y)! Exiting", logged by the node). corosync leaves
	// the ring and exits; gototem's daemon does the same. Nil: logged and ignored.
	OnShutdownRequest func(reason string)
}

// GroupHandler receives one group's events, in total order, on the node's dispatch goroutine.
// The same handler runs on a simulated node (package sim: AppNode.Join, with OnMembership
// there as here), so an application's logic can be tested under partitions, random fault
// schedules and restarts without sockets; package examples/counter is one, tested both ways.
type GroupHandler interface {
	// Deliver is one message sent to the group. m.Payload is valid until Deliver returns (its
	// memory is reused for later messages, as corosync reuses its deliver callback's
	// buffer): a handler that keeps the payload copies it.
	Deliver(m Message)
	// ConfigChange reports processes joining or leaving the group.
	ConfigChange(c GroupChange)
}
