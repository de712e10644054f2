package sim

import (
	"errors"
	"time"

	"github.com/gototem/gototem/srp"
)

// Application is the application logic of one simulated node: the same callbacks it gets
// on a real node. Callbacks run inside the simulator's loop, in delivery order; payload
// and configuration slices are only valid during the call.
type Application interface {
	// OnDeliver is an ordered message, payload as the sender passed it to Sender.Send.
	OnDeliver(sender srp.NodeID, payload []byte)
	// OnConfiguration is a transitional or regular configuration, in EVS order.
	OnConfiguration(c srp.Configuration)
}

// QuorumObserver is the seam for votequorum: an Application that also implements it is told
// every votequorum verdict of its node when the node runs StackProtocol with votequorum.
type QuorumObserver interface {
	OnQuorum(quorate bool, members []srp.NodeID)
}

// Sender is an Application's handle on its node: what it sends is ordered by the ring.
// Send may be called from inside a callback; the message is handed to srp after the
// current Ready has been processed, as the driver contract requires.
type Sender interface {
	// Send originates payload. ErrQueueFull (from srp) is backpressure; ErrNodeDown means
	// this incarnation of the node crashed or is paused.
	Send(payload []byte, g srp.Guarantee) error
	// ID is the node's id.
	ID() srp.NodeID
	// Now is the virtual time.
	Now() time.Duration
}

// AppFactory builds the Application of one incarnation of a node: a restart builds a new
// one, because a crashed process loses its memory.
type AppFactory func(id srp.NodeID, s Sender) Application

// ErrNodeDown is returned by Sender.Send for a crashed (or paused) node.
var ErrNodeDown = errors.New("sim: node is down")

// MaxPayload is the largest application payload: srp's limit (netmtu - 90) less the
// simulator's 12-byte message header.
func MaxPayload(netMTU int) int { return netMTU - 2*srp.McastHeaderSize - payloadHeaderSize }

type nodeSender struct {
	n           *Node
	incarnation int
}

func (s nodeSender) ID() srp.NodeID     { return s.n.ID }
func (s nodeSender) Now() time.Duration { return s.n.sim.now }
func (s nodeSender) Send(payload []byte, g srp.Guarantee) error {
	n := s.n
	if !n.up || n.incarnation != s.incarnation || n.paused {
		return ErrNodeDown
	}
	if len(payload) > MaxPayload(n.cfg.NetMTU) {
		return srp.ErrMessageTooLarge
	}
	if n.inDrain {
		// The driver contract forbids an input before Advance: queue it. Room is checked
		// against srp's queue so backpressure still reaches the application.
		if pr, ok := n.proc.(interface{ QueueRoom() int }); ok && pr.QueueRoom() <= len(n.deferred) {
			return srp.ErrQueueFull
		}
		n.deferred = append(n.deferred, deferredSend{payload: append([]byte(nil), payload...), g: g})
		return nil
	}
	return n.sim.send(n, payload, g)
}

type deferredSend struct {
	payload []byte
	g       srp.Guarantee
}
