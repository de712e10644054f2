package srp

import (
	"slices"
	"time"
)

// RECOVERY: old-ring messages re-sent encapsulated on the new ring (§6.1, §6.4), then the
// installation of the new ring with EVS's transitional and regular configurations (§7.2).

// recoveryEnter is memb_state_recovery_enter, given the commit token after its first
// rotation (§6.1).
func (p *Processor) recoveryEnter(now time.Duration, ct *CommitToken) {
	p.orfTokenDiscard = false
	p.myHighRingDelivered = 0
	p.recovery.reset(0, p.freeBuf)
	p.retransQueue = p.retransQueue[:0]
	p.retransHead = 0
	// A flag raised during a recovery that failed is not mine on this ring.
	p.mySetRetransFlg = false

	// The second rotation starts here: pass the (full) token on unchanged.
	ct.Header = Header{NodeID: p.myID}
	p.sendCommitToken(now, ct)

	// §1.1: after this reset the new ring's first token (token_seq 0) is accepted.
	p.myTokenSeq = 0xFFFFFFFF

	// The transitional configuration: new members that were with me on my old ring. A node
	// that has not installed a ring since it started had no old ring: corosync starts with an
	// empty member list, so its first transitional configuration is empty and its first
	// regular one lists itself as joined (the lab's start-up logs show no "TRANS [0]" line
	// for the singleton ring and "Sync joined[1]: <self>"; cmap's config_version check and
	// vsf_quorum's joined list depend on it).
	p.transMembList = p.transMembList[:0]
	for i, id := range ct.Addr {
		if p.installedRing && setHas(p.membList, id) && ct.Members[i].RingID == p.oldRingID {
			p.transMembList = append(p.transMembList, id)
		}
	}
	// gototem initialises the deliver list to the transitional members on every entry
	// (corosync only when someone lacks messages, and keeps a stale list otherwise).
	p.deliverMembList = append(p.deliverMembList[:0], p.transMembList...)

	originate := false
	low := p.oldRingHighSeqRecv
	for i, id := range ct.Addr {
		if !setHas(p.transMembList, id) {
			continue
		}
		m := &ct.Members[i]
		if m.ReceivedFlg == 0 {
			originate = true
		}
		if seqLT(m.ARU, low) {
			low = m.ARU
		}
		// Computed always (corosync: only when originating): it bounds which SAFE messages
		// may still be delivered before the transitional configuration (§7.2 step 3).
		if seqLT(p.myHighRingDelivered, m.HighDelivered) {
			p.myHighRingDelivered = m.HighDelivered
		}
	}
	if originate {
		// Re-send everything above the lowest trans aru that I hold, so every trans member
		// ends with the same old-ring messages.
		for seq := low + 1; seqLTE(seq, p.oldRingHighSeqRecv) && seq-low <= sortQueueSize; seq++ {
			if d := p.regular.get(seq); d != nil {
				p.retransQueue = append(p.retransQueue, d)
				p.counters.RecoveryMessagesQueued++
			}
		}
	}

	// gototem resets the installation counters too (corosync does not, §11.4): a node whose
	// previous RECOVERY failed late would otherwise carry two "quiet rotations" into this
	// one and install the ring on its first visit, while the others are still recovering
	// (found by the simulator: that node then sends new messages nobody else may store).
	p.myRetransFlgCount, p.myRotationCounter = 0, 0
	p.myAru, p.myAruCount, p.mySeqUnchanged = 0, 0, 0
	p.myHighSeqReceived, p.myInstallSeq, p.lastReleased = 0, 0, 0
	p.resetTokenTimeout(now)
	p.startTimer(timerTokenRetransmit, now, p.cfg.TokenRetransmit)
	p.state = Recovery
	p.log.Debug("srp: entering RECOVERY", "node", p.myID, "ring", p.ringID, "trans", p.transMembList,
		"low", low, "old_high", p.oldRingHighSeqRecv, "resend", len(p.retransQueue))
}

// sendInitialORFToken starts the new ring (wire §5.1): seq 0, token_seq 0, aru "start − 1".
func (p *Processor) sendInitialORFToken(now time.Duration) {
	t := &p.tok
	*t = ORFToken{RTRList: t.RTRList[:0]}
	t.Header = Header{NodeID: p.myID}
	t.ARU = 0xFFFFFFFF
	t.ARUAddr = p.myID
	t.RingID = p.ringID
	if p.retransQueueLen() > 0 {
		// The rep owns the flag it raised: only it may lower it (§6.4 step 1).
		t.RetransFlg = 1
		p.mySetRetransFlg = true
	}
	p.lastToken = t.AppendEncode(p.lastToken[:0])
	p.hasToken = true
	p.emitStoredToken(TypeORFToken)
	p.counters.TokensSent++
}

func (p *Processor) retransQueueLen() int { return len(p.retransQueue) - p.retransHead }

// recoveryComplete is §6.4, run on a token in RECOVERY just before it is forwarded: the
// ring is installed once nobody has had anything to re-send for two rotations and the
// token aru has confirmed the install point on two more.
func (p *Processor) recoveryComplete(now time.Duration) {
	t := &p.tok
	if p.retransQueueLen() > 0 {
		if t.RetransFlg == 0 {
			t.RetransFlg = 1
			p.mySetRetransFlg = true
		}
	} else if t.RetransFlg == 1 && p.mySetRetransFlg {
		t.RetransFlg = 0
		p.mySetRetransFlg = false
	}
	if t.RetransFlg == 0 {
		p.myRetransFlgCount++
	} else {
		p.myRetransFlgCount = 0
	}
	if p.myRetransFlgCount == 2 {
		p.myInstallSeq = t.Seq
	}
	if p.myRetransFlgCount >= 2 && !p.myReceivedFlg && seqLTE(p.myInstallSeq, p.myAru) {
		p.myReceivedFlg = true
		p.deliverMembList = append(p.deliverMembList[:0], p.transMembList...)
	}
	if p.myRetransFlgCount >= 3 && seqLTE(p.myInstallSeq, t.ARU) {
		p.myRotationCounter++
	} else {
		p.myRotationCounter = 0
	}
	if p.myRotationCounter == 2 {
		p.operationalEnter(now)
		p.myRotationCounter = 0
		p.myRetransFlgCount = 0
	}
}

// operationalEnter is memb_state_operational_enter, in corosync's order (§7.2), with
// gototem's SAFE rule added to step 3.
func (p *Processor) operationalEnter(now time.Duration) {
	p.originatedOrfToken = false
	p.consensusList = p.consensusList[:0]
	p.oldRingSaved = false

	// Step 2: unwrap recovered old-ring messages into the old ring's queue.
	oldHigh := p.oldRingHighSeqRecv
	for seq := uint32(1); seqLTE(seq, p.myAru); seq++ {
		d := p.recovery.get(seq)
		if d == nil {
			continue
		}
		if err := p.inner.Decode(d); err != nil || p.inner.Header.Encapsulated != Encapsulated {
			continue
		}
		innerBytes := p.inner.Payload
		if err := p.inner.Decode(innerBytes); err != nil || p.inner.RingID != p.oldRingID {
			continue
		}
		if p.regular.has(p.inner.Seq) {
			continue
		}
		buf := append(p.getBuf(len(innerBytes)), innerBytes...)
		if ok, _ := p.regular.add(p.inner.Seq, buf); !ok {
			p.freeBuf(buf)
			continue
		}
		p.counters.OldRingMessagesRecovered++
		if seqLT(oldHigh, p.inner.Seq) {
			oldHigh = p.inner.Seq
		}
	}

	// Step 3: what is deliverable in the old regular configuration: up to the first gap,
	// and a SAFE message only if some transitional member already delivered it there
	// (then it was known to every old member). The bound comes from the commit token, so
	// every transitional member stops at the same message.
	for seq := p.myHighDelivered + 1; seqLTE(seq, oldHigh); seq++ {
		d := p.regular.get(seq)
		if d == nil {
			break
		}
		if guaranteeOf(d) == Safe && seqLT(p.myHighRingDelivered, seq) {
			break
		}
		p.myHighDelivered = seq
		p.deliverDatagram(d)
	}

	// Steps 4–5: the transitional configuration.
	var left []NodeID
	if p.installedRing {
		left = setMinus(p.membList, p.transMembList)
	}
	joined := setMinus(p.newMembList, p.transMembList)
	oldMemb := p.membList
	p.membList = slices.Clone(p.newMembList)
	p.installedRing = true
	p.deliverConfig(&Configuration{
		Kind:    Transitional,
		RingID:  p.ringID,
		Members: slices.Clone(p.transMembList),
		Left:    left,
	})

	// Step 7: the rest of the old ring, skipping gaps, from originators in the deliver list.
	for seq := p.myHighDelivered + 1; seqLTE(seq, oldHigh); seq++ {
		d := p.regular.get(seq)
		if d == nil {
			continue
		}
		if err := p.inner.Decode(d); err != nil {
			continue
		}
		if !setHas(p.deliverMembList, p.inner.Header.NodeID) {
			p.counters.OldRingMessagesNotDeliver++
			continue
		}
		p.myHighDelivered = seq
		p.deliverDatagram(d)
	}

	// Step 9: the regular configuration.
	p.deliverConfig(&Configuration{
		Kind:    Regular,
		RingID:  p.ringID,
		Members: slices.Clone(p.membList),
		Joined:  joined,
	})

	// Steps 10–11: the recovery queue becomes the ring's regular queue; its (encapsulated)
	// messages are never delivered as themselves.
	p.regular, p.recovery = p.recovery, p.regular
	p.recovery.reset(0, p.freeBuf)
	p.myLastAru = 0
	p.procList = slices.Clone(p.membList)
	p.failedList = nil
	p.myHighDelivered = 0
	for seq := uint32(1); seqLTE(seq, p.myHighSeqReceived); seq++ {
		if p.regular.has(seq) {
			p.myHighDelivered = seq
		}
	}
	p.regular.release(p.myHighDelivered, p.freeBuf)
	p.lastReleased = p.myHighDelivered
	p.safeTo = p.myHighDelivered
	p.mySetRetransFlg = false
	p.retransQueue = p.retransQueue[:0]
	p.retransHead = 0

	p.state = Operational
	p.waitingTransAck = p.cfg.TransAck // §7.3: the sync of the new ring goes first
	p.myReceivedFlg = true
	p.oldRingID = p.ringID
	p.counters.RingsFormed++
	p.log.Debug("srp: a new membership was formed", "node", p.myID, "ring", p.ringID,
		"members", p.membList, "joined", joined, "left", left, "old", oldMemb)
}

// guaranteeOf reads the guarantee of a stored MCAST (the inner one if encapsulated).
func guaranteeOf(d []byte) Guarantee {
	var m Mcast
	if m.Decode(d) != nil {
		return Agreed
	}
	return m.Guarantee
}
