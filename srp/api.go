package srp

import "time"

// This file is the driver contract: the one way the real node (totem/) and the simulator
// (sim/) run a Processor. Both follow the same loop:
//
//	p.Start(now)
//	for {
//		feed one input: p.Step(now, datagram) | p.Tick(now) | p.Send(now, payload, g)
//		rd := p.Ready()
//		send rd.Messages in order, hand rd.Deliveries upward in order,
//		arm a wake-up for rd.NextTick
//		p.Advance()
//	}
//
// now is a monotonic instant the driver chooses (virtual time in sim/, time since start in
// totem/); the Processor never reads a clock and never keeps a goroutine.

// Destination of an outgoing datagram.
type Destination uint8

const (
	// ToNode is a unicast to Outgoing.To: the ORF token, the commit token and their
	// retransmissions (corosync's token_send).
	ToNode Destination = iota
	// ToAll is a "multicast" (udp: the group, udpu: a copy to every nodelist member). The
	// sender must also receive its own copy: the driver loops it back as an input
	// (corosync's transports do the same, and totemsrp depends on it).
	ToAll
)

// Outgoing is one datagram to transmit. Data is owned by the Processor and valid only
// until Advance: a driver that keeps it longer copies it.
type Outgoing struct {
	Dest Destination
	To   NodeID // for ToNode
	Type MessageType
	Data []byte
}

// ConfigurationKind distinguishes the two configurations EVS delivers on a ring change.
type ConfigurationKind uint8

const (
	// Transitional: the members of the old ring that move to the new one together. Old-ring
	// messages recovered after it are delivered in it.
	Transitional ConfigurationKind = iota
	// Regular: the new ring's full membership.
	Regular
)

func (k ConfigurationKind) String() string {
	if k == Transitional {
		return "transitional"
	}
	return "regular"
}

// Configuration is a membership change delivered in order with messages.
type Configuration struct {
	Kind    ConfigurationKind
	RingID  RingID
	Members []NodeID // sorted ascending
	Joined  []NodeID // regular only: members new since the last regular configuration
	Left    []NodeID // members of the previous configuration not in this one
}

// Message is an ordered application payload (a totempg packet) as originated by Sender.
type Message struct {
	Sender    NodeID
	RingID    RingID // ring the message was originally sent on
	Seq       uint32 // its sequence number on that ring
	Guarantee Guarantee
	Payload   []byte // owned by the Processor; valid until Advance
	// Endian is true when the originator wrote the opposite byte order, so the upper
	// layer must byte-swap its own fields (corosync passes the same flag to totempg).
	Endian bool
}

// Delivery is either a Configuration or a Message; exactly one field is set.
type Delivery struct {
	Config  *Configuration
	Message *Message
}

// State is the membership state of the Totem SRP state machine.
type State uint8

const (
	Operational State = iota + 1
	Gather
	Commit
	Recovery
)

func (s State) String() string {
	switch s {
	case Operational:
		return "OPERATIONAL"
	case Gather:
		return "GATHER"
	case Commit:
		return "COMMIT"
	case Recovery:
		return "RECOVERY"
	}
	return "UNKNOWN"
}

// Ready is everything the Processor asks of its driver after an input. The driver must:
//  1. transmit Messages in order (a ToAll message also comes back to this Processor);
//  2. deliver Deliveries upward in order — EVS's order: a Transitional configuration is
//     delivered before the old ring's recovered messages that follow it, then the Regular
//     configuration; a SAFE message appears only once every member is known to have it;
//  3. call Tick at or after NextTick (zero: no timer armed);
//  4. call Advance before the next input.
type Ready struct {
	Messages   []Outgoing
	Deliveries []Delivery
	NextTick   time.Duration
}

// RingIDStore persists the highest ring sequence number, as corosync's ringid_<nodeid>
// file does, so a restarted node never reuses a ring id.
type RingIDStore interface {
	// Load returns the stored sequence, or ok=false when nothing was ever stored.
	Load() (seq uint64, ok bool, err error)
	// Store durably records seq before the ring using it is announced.
	Store(seq uint64) error
}

// MemoryRingIDStore keeps the ring sequence in memory: for tests and the simulator, where
// a "restart" reuses the same store value.
type MemoryRingIDStore struct {
	Seq   uint64
	Valid bool
}

func (m *MemoryRingIDStore) Load() (uint64, bool, error) { return m.Seq, m.Valid, nil }
func (m *MemoryRingIDStore) Store(seq uint64) error {
	m.Seq, m.Valid = seq, true
	return nil
}

// Rand is the only source of randomness the Processor may use.
type Rand interface {
	Uint64() uint64
}
