package srp

import "time"

// COMMIT: the commit token's two rotations (§5). Rotation one collects every member's
// old-ring position; rotation two moves every member into RECOVERY.

// createCommitToken is memb_state_commit_token_create (§5.1) followed by COMMIT entry.
func (p *Processor) createCommitToken(now time.Duration) {
	ct := &p.commit
	if p.tokenRingIDSeq+4 >= maxRingSeq {
		// Unreachable without 2^22 accepted forged JOINs (validate.go); a ring id my
		// peers would refuse is not worth creating.
		p.counters.DropAbsurd++
		return
	}
	ct.Header = Header{NodeID: p.myID}
	ct.TokenSeq = 0
	ct.RingID = RingID{Rep: p.myID, Seq: p.tokenRingIDSeq + 4}
	ct.RetransFlg = 0
	ct.MembIndex = 0
	ct.Addr = ct.Addr[:0]
	for _, id := range p.procList {
		if !setHas(p.failedList, id) {
			ct.Addr = append(ct.Addr, id)
		}
	}
	ct.Members = append(ct.Members[:0], make([]CommitMember, len(ct.Addr))...)
	p.commitEnter(now, ct)
}

// handleCommitToken dispatches a received commit token by state (§5.3).
func (p *Processor) handleCommitToken(now time.Duration) {
	ct := &p.commit
	n := int32(len(ct.Addr))
	if n == 0 || len(ct.Members) != len(ct.Addr) || !sortedUnique(ct.Addr) || !setHas(ct.Addr, ct.RingID.Rep) {
		p.counters.DropCommitToken++
		return
	}
	if !p.allListed(ct.Addr) || !p.listed(ct.Header.NodeID) {
		p.counters.DropUnlisted++
		return
	}
	if ct.RingID != p.ringID && p.ringSeqAbsurd(ct.RingID.Seq) {
		// A ring sequence past maxRingSeq would bring the wrap within reach, one far above
		// every JOIN I accepted was not built from them (validate.go). Counted in every
		// state, so a forged one shows even where the state would drop it anyway.
		p.counters.DropAbsurd++
		return
	}
	switch p.state {
	case Gather:
		// Accept only the ring my own consensus would have built, and only a newer one.
		if !slicesEqual(ct.Addr, setMinus(p.procList, p.failedList)) || ct.RingID.Seq <= p.ringID.Seq {
			p.counters.DropCommitToken++
			return
		}
		if ct.MembIndex >= n || ct.Addr[ct.MembIndex] != p.myID {
			p.counters.DropBadMembership++
			return
		}
		p.commitEnter(now, ct)
	case Commit:
		// The second rotation: every entry filled, the token is back for my new ring.
		if ct.RingID == p.ringID && ct.MembIndex == n {
			p.recoveryEnter(now, ct)
			return
		}
		p.counters.DropCommitToken++
	case Recovery:
		// The rep sees the token after its second rotation: start the ring with the first
		// ORF token, once.
		if ct.RingID == p.ringID && p.ringID.Rep == p.myID && !p.originatedOrfToken {
			p.originatedOrfToken = true
			p.sendInitialORFToken(now)
			p.resetTokenTimeout(now)
			p.startTimer(timerTokenRetransmit, now, p.cfg.TokenRetransmit)
			return
		}
		p.counters.DropCommitToken++
	default:
		p.counters.DropCommitToken++
	}
}

func sortedUnique(ids []NodeID) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			return false
		}
	}
	return len(ids) == 0 || ids[0] != 0
}

// commitEnter fills my entry of the commit token and passes it on (§5.2).
func (p *Processor) commitEnter(now time.Duration, ct *CommitToken) {
	n := len(ct.Addr)
	idx := int(ct.MembIndex)
	if idx < 0 || idx >= n || ct.Addr[idx] != p.myID {
		p.counters.DropBadMembership++
		return
	}
	// Durable before announced (§3.5): a ring id that cannot be recorded is not used.
	if err := p.store.Store(ct.RingID.Seq); err != nil {
		p.counters.RingIDStoreErrors++
		p.log.Error("srp: cannot store ring id; not entering COMMIT", "node", p.myID, "ring", ct.RingID, "err", err)
		return
	}
	if !p.oldRingSaved {
		p.oldRingSaved = true
		p.oldRingAru = p.myAru
		p.oldRingHighSeqRecv = p.myHighSeqReceived
		// my_old_ring_id already names the last ring that reached OPERATIONAL.
	}
	me := &ct.Members[idx]
	me.RingID = p.oldRingID
	me.ARU = p.oldRingAru
	me.HighDelivered = p.myHighDelivered
	me.ReceivedFlg = 0
	if p.myAru == p.myHighSeqReceived {
		me.ReceivedFlg = 1
	}
	// Members of my old ring that are behind the best of them have not received everything
	// that ring sent: flag them so recovery re-sends.
	highAru := me.ARU
	for i := 0; i <= idx; i++ {
		if ct.Members[i].RingID == p.oldRingID && seqLT(highAru, ct.Members[i].ARU) {
			highAru = ct.Members[i].ARU
		}
	}
	for i := 0; i <= idx; i++ {
		if ct.Members[i].RingID == p.oldRingID && seqLT(ct.Members[i].ARU, highAru) {
			ct.Members[i].ReceivedFlg = 0
		}
	}
	p.myReceivedFlg = me.ReceivedFlg == 1

	ct.Header = Header{NodeID: p.myID}
	ct.MembIndex++
	p.newMembList = append(p.newMembList[:0], ct.Addr...)
	p.tokenTarget = ct.Addr[int(ct.MembIndex)%n]
	p.sendCommitToken(now, ct)

	p.stopTimer(timerJoin)
	p.stopTimer(timerConsensus)
	p.stopTimer(timerSendJoin)
	prev := p.state
	p.ringID = ct.RingID
	p.tokenRingIDSeq = ct.RingID.Seq
	p.state = Commit
	p.startTimer(timerTokenRetransmit, now, p.cfg.TokenRetransmit)
	p.resetTokenTimeout(now)
	p.myTrc, p.myPbl, p.myCbl = 0, 0, 0
	p.log.Debug("srp: entering COMMIT", "node", p.myID, "from", prev, "ring", p.ringID, "members", p.newMembList)
}

// sendCommitToken stores the token for retransmission and unicasts it to the target.
func (p *Processor) sendCommitToken(now time.Duration, ct *CommitToken) {
	ct.TokenSeq++
	p.lastToken = ct.AppendEncode(p.lastToken[:0])
	p.hasToken = true
	p.emitStoredToken(TypeCommitToken)
	p.counters.CommitTokensSent++
	p.startTimer(timerTokenRetransmit, now, p.cfg.TokenRetransmit)
}

// emitStoredToken sends a copy of the stored token to the token target.
func (p *Processor) emitStoredToken(t MessageType) {
	buf := append(p.transient(len(p.lastToken)), p.lastToken...)
	p.emit(ToNode, p.tokenTarget, t, buf)
}

// resendStoredToken is corosync's token_retransmit: the same bytes (same token_seq), so a
// receiver that already has the original drops the copy. It reports whether a token went out.
func (p *Processor) resendStoredToken(time.Duration) bool {
	if !p.hasToken || len(p.lastToken) < HeaderSize {
		return false
	}
	p.emitStoredToken(MessageType(p.lastToken[3]))
	p.heldUnsent = false
	return true
}

// restoreOldRingState undoes RECOVERY's resets when the new ring fails before it is
// installed, so the next attempt reports the old ring's position again (§4.2, §8).
func (p *Processor) restoreOldRingState() {
	if p.oldRingSaved {
		p.myAru = p.oldRingAru
		p.myHighSeqReceived = p.oldRingHighSeqRecv
	}
}
