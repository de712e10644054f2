package srp

import "slices"

// Status is a snapshot of the state machine's bookkeeping for traces, the simulator's
// one-line-per-event output and `gototem status`. Names follow totemsrp.c.
type Status struct {
	NodeID            NodeID
	State             State
	RingID            RingID // current ring (the ring being installed in COMMIT/RECOVERY)
	OldRingID         RingID // last ring that reached OPERATIONAL
	Members           []NodeID
	ProcList          []NodeID
	FailedList        []NodeID
	NewMembers        []NodeID // COMMIT/RECOVERY: the ring being installed
	TransMembers      []NodeID // RECOVERY: the transitional membership
	TokenTarget       NodeID
	Aru               uint32 // my_aru of the current sort queue
	HighSeqReceived   uint32
	HighDelivered     uint32
	LastReleased      uint32
	SafeTo            uint32 // highest seq every member is known to hold (SAFE delivery)
	TokenSeq          uint32 // token_seq of the last accepted token
	TokenHeld         bool
	Queued            int // messages waiting in the new-message queue
	RecoveryQueued    int // old-ring messages still to be re-sent in RECOVERY
	RetransFlgCount   int
	RotationCounter   int
	FailedToReceive   bool
	ConsensusReceived []NodeID
}

// Status returns a copy of the current bookkeeping.
func (p *Processor) Status() Status {
	return Status{
		NodeID:            p.myID,
		State:             p.state,
		RingID:            p.ringID,
		OldRingID:         p.oldRingID,
		Members:           slices.Clone(p.membList),
		ProcList:          slices.Clone(p.procList),
		FailedList:        slices.Clone(p.failedList),
		NewMembers:        slices.Clone(p.newMembList),
		TransMembers:      slices.Clone(p.transMembList),
		TokenTarget:       p.tokenTarget,
		Aru:               p.myAru,
		HighSeqReceived:   p.myHighSeqReceived,
		HighDelivered:     p.myHighDelivered,
		LastReleased:      p.lastReleased,
		SafeTo:            p.safeTo,
		TokenSeq:          p.myTokenSeq,
		TokenHeld:         p.myTokenHeld,
		Queued:            p.newQueue.len() + p.transQueue.len(),
		RecoveryQueued:    p.retransQueueLen(),
		RetransFlgCount:   p.myRetransFlgCount,
		RotationCounter:   p.myRotationCounter,
		FailedToReceive:   p.failedToRecv,
		ConsensusReceived: slices.Clone(p.consensusList),
	}
}
