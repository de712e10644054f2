package srp

import "time"

// The ORF token and MCAST paths (§6.2, §6.5, §6.6, §7.1): ordering, retransmission
// requests, flow control and delivery. They run in OPERATIONAL and RECOVERY.

// handleORFToken is message_handler_orf_token, step by step in corosync's order (§6.2).
func (p *Processor) handleORFToken(now time.Duration) {
	t := &p.tok
	p.accelPending = false
	p.heldUnsent = false
	if !p.listed(t.Header.NodeID) || (t.ARUAddr != 0 && !p.listed(t.ARUAddr)) {
		// Before step 3's idle detection, which a token of any ring feeds (validate.go).
		p.counters.DropUnlisted++
		return
	}
	// Step 1.
	if p.orfTokenDiscard {
		p.counters.DropTokenDiscard++
		return
	}
	// Step 3: idle detection, before the ring-id check as in corosync.
	if t.Seq == p.myLastSeq {
		p.startTimerIfIdle(timerMerge, now, p.cfg.Merge)
		p.mySeqUnchanged++
	} else {
		p.stopTimer(timerMerge)
		p.stopTimer(timerHold)
		p.mySeqUnchanged = 0
	}
	p.myLastSeq = t.Seq
	// Step 5: token hold decision.
	isRep := p.ringID.Rep == p.myID
	p.myTokenHeld = (isRep && p.mySeqUnchanged > p.cfg.SeqnoUnchangedConst) ||
		(!isRep && p.mySeqUnchanged >= p.cfg.SeqnoUnchangedConst)
	forward := !(isRep && p.myTokenHeld)
	// Step 7.
	if t.RingID != p.ringID {
		p.counters.DropForeignRing++
		return
	}
	// Values no member of this ring sends (validate.go). A forged token_seq far ahead would
	// make every genuine token after it look like a duplicate.
	if d := t.TokenSeq - p.myTokenSeq; d > maxTokenSeqJump && d < 1<<31 ||
		seqLT(p.myAru, t.Seq) && t.Seq-p.myAru > maxSeqAhead {
		p.counters.DropAbsurd++
		return
	}
	// Step 8: duplicate / retransmitted token.
	if seqLTE(t.TokenSeq, p.myTokenSeq) {
		p.counters.DropTokenDup++
		return
	}
	// Step 6, moved after the ring-id check (§11.5: another ring's aru must not free ours)
	// and after the duplicate filter: a retransmitted copy of the token I accepted last
	// carries that visit's aru again, and counting it as a second visit would free
	// messages a member still lacks (found by the simulator with a one-way cut: corosync
	// frees on duplicates too).
	if p.state == Operational {
		p.messagesFree(t.ARU)
	}
	p.counters.TokensReceived++
	p.lastTokenRx = now // corosync's TOKEN_RECEIVED stats, which the token warning reads
	// Step 9.
	if p.cfg.TokenCallback != nil {
		p.cfg.TokenCallback()
	}
	// Step 10.
	lastAru := p.myLastAru
	p.myLastAru = t.ARU
	if p.state == Operational {
		// gototem's SAFE rule: an aru seen on two successive visits is held by every
		// member (the same argument that lets corosync free messages, §6.6).
		if safe := seqMin(t.ARU, lastAru); seqLT(p.safeTo, safe) && seqLTE(safe, p.myHighSeqReceived) {
			p.safeTo = safe
		}
	}
	// Step 11.
	allowed := p.fccAllowed()
	// Step 12: satisfy retransmission requests first.
	sq := p.currentQueue()
	retransmitted := 0
	keep := t.RTRList[:0]
	for _, item := range t.RTRList {
		if retransmitted < allowed && item.RingID == p.ringID {
			if d := sq.get(item.Seq); d != nil {
				p.emit(ToAll, 0, TypeMcast, d)
				p.counters.McastRetransmitted++
				retransmitted++
				continue
			}
		}
		keep = append(keep, item)
	}
	t.RTRList = keep
	allowed -= retransmitted
	// Step 13: ask for what I miss.
	p.addRetransmitRequests(sq)
	p.sendAndAccount(now, t, allowed, uint32(retransmitted))
	// Step 19.
	if t.ARU == lastAru && t.ARUAddr != 0 {
		p.myAruCount++
	} else {
		p.myAruCount = 0
	}
	// Step 20: I keep lowering the aru and never catch up: leave the ring alone.
	if p.myAruCount > p.cfg.FailRecvConst && t.ARUAddr == p.myID {
		p.counters.FailedToReceive++
		p.log.Debug("srp: FAILED TO RECEIVE", "node", p.myID, "ring", p.ringID, "aru", p.myAru)
		p.failedToRecv = true
		p.failedList = setAdd(p.failedList, p.myID)
		p.gatherEnter(now, "failed to receive")
		return
	}
	// Step 21.
	p.myTokenSeq = t.TokenSeq
	t.TokenSeq++
	if p.state == Recovery {
		p.recoveryComplete(now)
	}
	t.Header = Header{NodeID: p.myID}
	p.lastToken = t.AppendEncode(p.lastToken[:0])
	p.hasToken = true
	if forward {
		p.emitStoredToken(TypeORFToken)
		p.counters.TokensSent++
		p.accelPassToken() // accel.go: the token goes before the post-token MCASTs
	} else {
		p.counters.TokensHeld++
		p.heldUnsent = true
	}
	// Step 22.
	if p.state == Operational {
		p.deliverRegular()
	}
	p.resetTokenTimeout(now)
	p.startTimer(timerTokenRetransmit, now, p.cfg.TokenRetransmit)
	if isRep && p.myTokenHeld {
		p.startTimer(timerHold, now, p.cfg.Hold)
	}
}

// currentQueue is the sort queue the ring is using: recovery's while recovering.
func (p *Processor) currentQueue() *sortQueue {
	if p.state == Recovery {
		return p.recovery
	}
	return p.regular
}

// fccAllowed is fcc_calculate (§6.5): this visit's budget for retransmissions plus new
// messages, and my current backlog.
func (p *Processor) fccAllowed() int {
	t := &p.tok
	allowed := uint32(p.cfg.MaxMessages)
	// Unsigned on purpose: with fcc > window_size the cap wraps and is not applied.
	if room := uint32(p.cfg.WindowSize) - t.FCC; allowed > room {
		allowed = room
	}
	switch p.state {
	case Operational:
		p.myCbl = uint32(p.sendQueue().len())
	case Recovery:
		p.myCbl = uint32(p.retransQueueLen())
	default:
		p.myCbl = 0
	}
	if total := t.Backlog + p.myCbl - p.myPbl; total != 0 {
		share := uint32(uint64(p.cfg.WindowSize) * uint64(p.myPbl) / uint64(total))
		if share > 0 && allowed > share {
			allowed = share
		}
	}
	return int(allowed)
}

// addRetransmitRequests is §6.2 step 13.
func (p *Processor) addRetransmitRequests(sq *sortQueue) {
	t := &p.tok
	for seq := p.myAru + 1; seqLTE(seq, t.Seq) && len(t.RTRList) < RetransmitEntriesMax; seq++ {
		if !sq.inRange(seq) {
			break
		}
		if sq.has(seq) {
			continue
		}
		if sq.missed(seq) < p.cfg.MissCountConst {
			continue
		}
		listed := false
		for _, item := range t.RTRList {
			if item.Seq == seq && item.RingID == p.ringID {
				listed = true
				break
			}
		}
		if !listed {
			t.RTRList = append(t.RTRList, RTRItem{RingID: p.ringID, Seq: seq})
			p.counters.RetransRequested++
		}
	}
}

// sendQueued is §6.2 step 16: new messages (OPERATIONAL) or encapsulated old-ring
// messages (RECOVERY) get the next ring seqs, are stored and multicast.
func (p *Processor) sendQueued(now time.Duration, allowed int) int {
	t := &p.tok
	sq := p.currentQueue()
	sent := 0
	pre := -1 // accel.go: where the post-token MCASTs start; -1: none
	if p.cfg.AcceleratedWindow > 0 && p.state == Operational {
		pre = p.accelSplit(min(allowed, p.sendQueue().len()))
	}
	for ; sent < allowed; sent++ {
		if sent == pre {
			p.accelMarkPostToken()
		}
		var buf []byte
		switch {
		case p.state == Operational && p.sendQueue().len() > 0:
			m := p.sendQueue().pop()
			buf = p.encodeMcastInPlace(t.Seq+1, m)
		case p.state == Recovery && p.retransQueueLen() > 0:
			inner := p.retransQueue[p.retransHead]
			p.retransQueue[p.retransHead] = nil
			p.retransHead++
			buf = p.encodeMcast(t.Seq+1, Encapsulated, Agreed, inner)
		default:
			return p.finishSend(sent)
		}
		t.Seq++
		if ok, _ := sq.add(t.Seq, buf); !ok {
			// The window guard keeps this from happening; never lose a seq silently.
			p.freeBuf(buf)
		}
		p.myHighSeqReceived = t.Seq
		p.emit(ToAll, 0, TypeMcast, buf)
		p.counters.McastSent++
	}
	return p.finishSend(sent)
}

func (p *Processor) finishSend(sent int) int {
	if sent > 0 {
		p.updateAru()
	}
	return sent
}

func (p *Processor) encodeMcast(seq uint32, encap uint8, g Guarantee, payload []byte) []byte {
	m := p.nextMcast(seq, encap, g)
	m.Payload = payload
	return m.AppendEncode(p.getBuf(m.EncodedLen()))
}

// nextMcast is the header of this node's next MCAST with sequence number seq. this_seqno is
// corosync's global_seqno++: informational, starts at 0.
func (p *Processor) nextMcast(seq uint32, encap uint8, g Guarantee) Mcast {
	seqno := p.thisSeqno
	p.thisSeqno++
	return Mcast{
		Header:     Header{Encapsulated: encap, NodeID: p.myID},
		SystemFrom: p.myID,
		Seq:        seq,
		ThisSeqno:  seqno,
		RingID:     p.ringID,
		Guarantee:  g,
	}
}

// encodeMcastInPlace is encodeMcast for a queued message: the header goes into the room in
// front of its payload, and the queued buffer becomes the datagram.
func (p *Processor) encodeMcastInPlace(seq uint32, m queuedMsg) []byte {
	h := p.nextMcast(seq, NotEncapsulated, m.g)
	// Without a payload AppendEncode writes exactly the header, into m.framed's own array.
	if hdr := h.AppendEncode(m.framed[:0]); len(hdr) != McastHeaderSize || &hdr[0] != &m.framed[0] {
		panic("srp: MCAST header is not McastHeaderSize bytes")
	}
	return m.framed
}

// updateAru advances my_aru over contiguously received seqs of the current queue.
func (p *Processor) updateAru() {
	sq := p.currentQueue()
	for seqLT(p.myAru, p.myHighSeqReceived) && sq.has(p.myAru+1) {
		p.myAru++
	}
}

// messagesFree is §6.6: a slot is released only once it is below the aru on two visits
// and delivered here; after that no member can ask for it again.
func (p *Processor) messagesFree(tokenAru uint32) {
	releaseTo := seqMin(seqMin(tokenAru, p.myLastAru), p.myHighDelivered)
	if seqLTE(releaseTo, p.lastReleased) || releaseTo-p.lastReleased >= sortQueueSize {
		return
	}
	p.regular.release(releaseTo, p.freeBuf)
	p.lastReleased = releaseTo
}

// handleMcast is message_handler_mcast (§7.1, §6.8) for the MCAST in p.mc; datagram is the
// raw bytes, stored as received.
func (p *Processor) handleMcast(now time.Duration, datagram []byte) {
	m := &p.mc
	if !p.listed(m.SystemFrom) || !p.listed(m.Header.NodeID) {
		p.counters.DropUnlisted++
		return
	}
	if m.RingID != p.ringID {
		p.counters.DropForeignRing++
		if m.SystemFrom != 0 && (p.state == Operational || p.state == Gather) {
			p.foreignSender(now, m.SystemFrom, "foreign mcast")
		}
		return
	}
	if p.state == Recovery && m.Header.Encapsulated != Encapsulated {
		// A member that installed the ring before me already sends new messages; my
		// regular queue still holds the old ring, where this one must not land (corosync
		// would store it there). It is requested again once I am OPERATIONAL.
		p.counters.DropWrongState++
		return
	}
	sq := p.regular
	if m.Header.Encapsulated == Encapsulated && p.state != Operational {
		// In OPERATIONAL the recovery messages already live in the regular queue.
		sq = p.recovery
	}
	if sq.has(m.Seq) {
		p.counters.DropDuplicate++
		return
	}
	if !sq.inRange(m.Seq) {
		p.counters.DropWindow++
		return
	}
	buf := append(p.getBuf(len(datagram)), datagram...)
	sq.add(m.Seq, buf)
	p.counters.McastReceived++
	if seqLT(p.myHighSeqReceived, m.Seq) && sq == p.currentQueue() {
		p.myHighSeqReceived = m.Seq
	}
	p.updateAru()
	if p.state == Operational {
		p.deliverRegular()
	}
}

// deliverRegular hands up, in seq order, every message from my_high_delivered+1 that is
// present, stopping at the first gap (agreed order) and at the first SAFE message not yet
// known to be held by every member; later AGREED messages wait behind it so the total order
// is the same at every member.
func (p *Processor) deliverRegular() {
	for seqLT(p.myHighDelivered, p.myHighSeqReceived) {
		seq := p.myHighDelivered + 1
		d := p.regular.get(seq)
		if d == nil {
			return
		}
		if len(d) >= McastHeaderSize && d[4] != Encapsulated && seqLT(p.safeTo, seq) && guaranteeOf(d) == Safe {
			return
		}
		p.myHighDelivered = seq
		if len(d) > 4 && d[4] == Encapsulated {
			continue // a recovery-phase message: its content was delivered at installation
		}
		p.deliverDatagram(d)
	}
}

// handleTokenHoldCancel: a member has new work while the token is held (§6.3).
func (p *Processor) handleTokenHoldCancel(now time.Duration) {
	if !p.listed(p.hc.Header.NodeID) {
		p.counters.DropUnlisted++
		return
	}
	if p.hc.RingID != p.ringID {
		p.counters.DropForeignRing++
		return
	}
	p.mySeqUnchanged = 0
	if p.ringID.Rep == p.myID {
		// corosync runs the token-retransmit timer function: the held token goes out now.
		// Same action as tokenRetransmitTimeout, counted as a release, not a retransmission.
		p.counters.HoldCancelsHonored++
		if p.state != Gather {
			if p.resendStoredToken(now) {
				p.counters.TokensReleased++
			}
			p.startTimer(timerTokenRetransmit, now, p.cfg.TokenRetransmit)
		}
	}
}

func (p *Processor) sendHoldCancel() {
	hc := TokenHoldCancel{Header: Header{NodeID: p.myID}, RingID: p.ringID}
	p.emit(ToAll, 0, TypeTokenHoldCancel, hc.AppendEncode(p.transient(hc.EncodedLen())))
	p.counters.HoldCancelsSent++
}

// sendAndAccount is steps 15-18 of a token visit (§6.2): the window guard, the new messages
// the budget allows, the flow-control bookkeeping (unsigned, as corosync) with counted
// already sent in this visit, and the aru. handleORFToken and the held-token send
// (holdsend.go) share it.
func (p *Processor) sendAndAccount(now time.Duration, t *ORFToken, allowed int, counted uint32) {
	// Step 15: window guard.
	if seqLT(p.lastReleased+uint32(sortQueueSize)-uint32(allowed)-uint32(p.cfg.WindowSize), t.Seq) {
		allowed = 0
		p.counters.FlowControlZeroBudget++
	}
	// Step 16.
	sent := p.sendQueued(now, allowed)
	// Step 17.
	total := counted + uint32(sent)
	t.FCC += total - p.myTrc
	t.Backlog += p.myCbl - p.myPbl
	p.myTrc = total
	p.myPbl = p.myCbl
	// Step 18: aru.
	if seqLT(p.myAru, t.ARU) || t.ARUAddr == p.myID || t.ARUAddr == 0 {
		t.ARU = p.myAru
		if t.ARU == t.Seq {
			t.ARUAddr = 0
		} else {
			t.ARUAddr = p.myID
		}
	}
}
