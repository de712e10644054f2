package srp

import "time"

// GATHER: the join/consensus algorithm of §4 (corosync's memb_join_process and friends).

// gatherEnter is memb_state_gather_enter (§4.1); it runs on every entry, re-entry included.
func (p *Processor) gatherEnter(now time.Duration, reason string) {
	p.counters.GatherEntries++
	p.orfTokenDiscard = true
	p.originatedOrfToken = false
	p.heldUnsent = false
	p.procList = setAdd(p.procList, p.myID) // callers keep room for self: at most 383 others
	p.sendJoin(now)
	p.startTimer(timerJoin, now, p.cfg.Join)
	p.startTimer(timerConsensus, now, p.cfg.Consensus)
	p.stopTimer(timerTokenRetransmit)
	p.cancelTokenTimeout()
	p.stopTimer(timerMerge)
	p.stopTimer(timerHold)
	p.consensusList = append(p.consensusList[:0], p.myID)
	if p.debugEnabled() {
		p.log.Debug("srp: entering GATHER", "node", p.myID, "from", p.state, "reason", reason,
			"proc", p.procList, "failed", p.failedList)
	}
	p.state = Gather
}

// sendJoin multicasts a JOIN with the current sets, after corosync's random send_join
// delay when one is configured (corosync sleeps; we arm a timer and build the JOIN when it
// fires, so it carries the sets as they are then).
func (p *Processor) sendJoin(now time.Duration) {
	if p.cfg.SendJoin > 0 {
		d := time.Duration(p.cfg.Rand.Uint64() % uint64(p.cfg.SendJoin)) // corosync: random() % send_join
		if d > 0 {
			p.startTimerIfIdle(timerSendJoin, now, d)
			return
		}
	}
	p.emitJoin(now)
}

func (p *Processor) emitJoin(time.Duration) {
	j := Join{
		Header:     Header{NodeID: p.myID},
		SystemFrom: p.myID,
		RingSeq:    p.ringID.Seq,
		ProcList:   p.procList,
		FailedList: p.failedList,
	}
	if j.EncodedLen() > JoinMaxBytes {
		// corosync refuses to build it; with ≤ 384 processors it cannot happen.
		return
	}
	p.emit(ToAll, 0, TypeJoin, j.AppendEncode(p.transient(j.EncodedLen())))
	p.counters.JoinsSent++
}

// handleJoin is message_handler_memb_join (§4.2) for the JOIN in p.join.
func (p *Processor) handleJoin(now time.Duration) {
	j := &p.join
	if j.IsLeave() {
		p.counters.LeavesRecv++
	} else {
		p.counters.JoinsReceived++
	}
	if j.SystemFrom == 0 {
		p.counters.DropJoin++
		return
	}
	if !p.joinValid(j) {
		return
	}
	switch p.state {
	case Operational:
		// A join from a node that failed me, or a stale join from a member (older ring),
		// must not tear down a working ring.
		if containsID(j.FailedList, p.myID) ||
			(setHas(p.membList, j.SystemFrom) && j.RingSeq < p.ringID.Seq) {
			p.counters.DropJoin++
			return
		}
		p.joinProcess(now)
	case Gather:
		p.joinProcess(now)
	case Commit:
		if setHas(p.newMembList, j.SystemFrom) && j.RingSeq >= p.ringID.Seq {
			p.joinProcess(now)
			p.gatherEnter(now, "join in COMMIT")
		} else {
			p.counters.DropJoin++
		}
	case Recovery:
		if setHas(p.newMembList, j.SystemFrom) && j.RingSeq >= p.ringID.Seq {
			p.joinProcess(now)
			p.restoreOldRingState()
			p.gatherEnter(now, "join in RECOVERY")
		} else {
			p.counters.DropJoin++
		}
	}
}

// joinValid applies validate.go's rules to a JOIN or LEAVE before it may change anything,
// counting what it refuses.
func (p *Processor) joinValid(j *Join) bool {
	if j.SystemFrom == p.myID {
		// My own JOIN looped back completes consensus when it carries my current sets (a
		// singleton ring forms on it). A copy with other sets is stale or forged and must
		// not widen my view, so it is ignored (uncounted: stale copies are normal). A LEAVE
		// naming me as its sender is forged (mine stops this Processor): taking it would
		// put me in my own failed set, after which I could never form even a singleton ring.
		if j.IsLeave() {
			p.counters.DropForged++
			return false
		}
		if p.ringSeqAbsurd(j.RingSeq) {
			p.counters.DropAbsurd++ // never in a JOIN of mine
			return false
		}
		return p.ownSetsEqual(j)
	}
	if !p.listed(j.SystemFrom) || !p.allListed(j.ProcList) || !p.allListed(j.FailedList) {
		p.counters.DropUnlisted++
		return false
	}
	if j.IsLeave() && !containsID(j.FailedList, j.SystemFrom) {
		// A leaver lists itself as failed (§7.4); a LEAVE that names someone else as the
		// leaver is forged.
		p.counters.DropForged++
		return false
	}
	if p.ringSeqAbsurd(j.RingSeq) {
		p.counters.DropAbsurd++
		return false
	}
	return true
}

// ownSetsEqual reports whether j carries exactly my proc and failed sets.
func (p *Processor) ownSetsEqual(j *Join) bool {
	p.scratch = setFrom(p.scratch, j.ProcList)
	if !slicesEqual(p.scratch, p.procList) {
		return false
	}
	p.scratch = setFrom(p.scratch, j.FailedList)
	return slicesEqual(p.scratch, p.failedList)
}

func containsID(list []NodeID, id NodeID) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

// joinProcess is memb_join_process (§4.3).
func (p *Processor) joinProcess(now time.Duration) {
	j := &p.join
	s := j.SystemFrom
	// corosync raises token_ring_id_seq on every JOIN, before its filters; here only a
	// JOIN that passed them (and validation) may raise it, so a dropped JOIN cannot push
	// the next ring's sequence.
	if j.RingSeq > p.tokenRingIDSeq {
		p.tokenRingIDSeq = j.RingSeq
	}
	P := setFrom(nil, j.ProcList)
	F := setFrom(nil, j.FailedList)
	if j.IsLeave() && len(j.FailedList) > 0 {
		p.log.Debug("srp: leave received", "node", p.myID, "leaver", j.FailedList[len(j.FailedList)-1])
	}
	switch {
	case slicesEqual(P, p.procList) && slicesEqual(F, p.failedList):
		if !j.IsLeave() {
			p.consensusList = setAdd(p.consensusList, s)
		}
		if p.commitIfAgreed(now) {
			return
		}
	case setSubset(P, p.procList) && setSubset(F, p.failedList):
		// The sender knows less than I do: it will adopt my sets from my JOIN.
	case setHas(p.failedList, s):
		// A node I consider failed cannot widen my view.
	default:
		if len(p.procList)+countMissing(P, p.procList) > ProcessorCountMax ||
			len(p.failedList)+countMissing(F, p.failedList) > ProcessorCountMax {
			// A JOIN naming more processors than a ring can hold (a hostile or corrupt
			// peer) would make my own JOINs undecodable for everyone.
			p.counters.DropJoin++
			return
		}
		nProc, nFailed := len(p.procList), len(p.failedList)
		p.procList = setUnion(p.procList, P)
		if setHas(F, p.myID) {
			// (s is never me: joinValid lets only my own current sets through, so this
			// is how a failed list naming me is handled: I never adopt myself as failed.)
			// Symmetric exclusion: it cannot hear me, so I will not wait for it.
			p.failedList = setAdd(p.failedList, s)
		} else if setHas(p.membList, s) {
			p.failedList = setUnion(p.failedList, F)
		}
		if len(p.procList) != nProc || len(p.failedList) != nFailed {
			p.gatherEnter(now, "join changed my sets")
			// gototem deviation: the JOIN that gave me my new sets carried exactly those
			// sets, so its sender agrees with them: it counts towards consensus now, as it
			// would in corosync once the sender's join timer repeats the same JOIN (sets
			// unchanged, join timeout later). corosync re-enters GATHER with only itself
			// agreed; when the first consensus timeout is not the rep's, the rep adopts
			// that node's failed list and then waits a join timeout for its JOIN again
			// (the lab measured 420–426 ms from token loss to the new ring at token 300
			// against 360–368 ms when the rep timed out first). Only a node's own JOIN can
			// put it in my consensus list either way.
			if !j.IsLeave() && slicesEqual(P, p.procList) && slicesEqual(F, p.failedList) {
				p.consensusList = setAdd(p.consensusList, s)
				p.commitIfAgreed(now)
			}
			return
		}
		// gototem deviation: corosync re-enters GATHER here even when nothing changed (a
		// failed list it does not adopt, from a node outside its membership). Every such
		// JOIN then answers with a JOIN and restarts the consensus timer: nodes that
		// disagree that way multiply JOINs among themselves and never reach the consensus
		// timeout that would settle the disagreement. The join timer still repeats my JOIN.
	}
	if p.state == Operational {
		p.gatherEnter(now, "join in OPERATIONAL")
	}
}

// commitIfAgreed creates the commit token when consensus is reached and I am the one to
// create it (§4.3 step 1), reporting whether it did.
func (p *Processor) commitIfAgreed(now time.Duration) bool {
	if !p.consensusAgreed() {
		return false
	}
	if p.failedToRecv {
		// §4.3.1: after FAILED TO RECEIVE the node leaves alone: a singleton ring.
		p.failedToRecv = false
		p.procList = []NodeID{p.myID}
		p.failedList = nil
		p.createCommitToken(now)
		return true
	}
	if p.lowestMember() == p.myID {
		p.createCommitToken(now)
		return true
	}
	return false
}

func countMissing(s, in []NodeID) int {
	n := 0
	for _, id := range s {
		if !setHas(in, id) {
			n++
		}
	}
	return n
}

func slicesEqual(a, b []NodeID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// consensusAgreed: every processor of proc − failed has sent a JOIN with exactly my sets.
func (p *Processor) consensusAgreed() bool {
	n := 0
	for _, id := range p.procList {
		if setHas(p.failedList, id) {
			continue
		}
		n++
		if !setHas(p.consensusList, id) {
			return false
		}
	}
	return n > 0 || p.failedToRecv
}

// lowestMember is the lowest nodeid of proc − failed: the one that creates the commit token.
func (p *Processor) lowestMember() NodeID {
	for _, id := range p.procList {
		if !setHas(p.failedList, id) {
			return id
		}
	}
	return 0
}

// consensusTimeout is memb_state_consensus_timeout_expired (§4.4).
func (p *Processor) consensusTimeout(now time.Duration) {
	if p.consensusAgreed() {
		p.consensusList = append(p.consensusList[:0], p.myID)
		p.resetTokenTimeout(now)
		return
	}
	for _, id := range p.procList {
		if !setHas(p.consensusList, id) {
			p.failedList = setAdd(p.failedList, id)
		}
	}
	p.gatherEnter(now, "consensus timeout")
}

// foreignSender handles a MCAST or MERGE_DETECT from another ring (§4.5, §6.7, §6.8): in
// OPERATIONAL it starts a membership change that includes the sender, in GATHER it widens
// the proc set once.
func (p *Processor) foreignSender(now time.Duration, from NodeID, why string) {
	if from == 0 || (!setHas(p.procList, from) && len(p.procList) >= ProcessorCountMax) {
		p.counters.DropWrongState++
		return
	}
	switch p.state {
	case Operational:
		p.procList = setAdd(p.procList, from)
		p.gatherEnter(now, why)
	case Gather:
		if !setHas(p.procList, from) {
			p.procList = setAdd(p.procList, from)
			p.gatherEnter(now, why)
		}
	default:
		p.counters.DropWrongState++
	}
}

func (p *Processor) handleMergeDetect(now time.Duration) {
	if p.md.RingID == p.ringID {
		return
	}
	p.counters.MergeDetectsReceived++
	if p.md.SystemFrom == 0 || p.md.SystemFrom == p.myID {
		return
	}
	if !p.listed(p.md.SystemFrom) {
		p.counters.DropUnlisted++
		return
	}
	p.foreignSender(now, p.md.SystemFrom, "merge detect")
}
