package srp

import "time"

// The rep's held token, used for its own new messages (a gototem deviation, §6.3).
//
// On an idle ring the rep keeps the token (token hold) instead of forwarding it. When a
// member has new work, corosync's answer is TOKEN_HOLD_CANCEL: the rep multicasts it even
// when the work is its own, receives its own copy and retransmits the token it holds,
// unchanged; its message goes out on the rep's next visit, one full rotation later.
// Measured in the netns lab (issue 14, 3 nodes, 1 KiB at 100 msgs/s from the rep): 94% of
// the messages found the token held, and each paid that rotation, three wake-ups of three
// processes on a loaded machine, in its agreed latency.
//
// The held token has not left the rep (heldUnsent): no member has seen its token_seq, so
// the rep may still change it. useHeldToken continues the held visit as if the token had
// arrived now: the queued messages get the next seqs (steps 11–17 for them), the aru rule
// of step 18 runs again, the token is forwarded, and the rep delivers its own AGREED
// messages at once. To every other member this is an ordinary visit of the rep; the token
// that leaves carries the same token_seq, only later and with the new seqs. Nothing else
// changes: a non-rep sender still sends TOKEN_HOLD_CANCEL, and once the stored token was
// released (hold timer, retransmit timer, a cancel) the visit is over.
func (p *Processor) useHeldToken(now time.Duration) bool {
	if !p.heldUnsent || p.state != Operational || p.ringID.Rep != p.myID || p.sendQueue().len() == 0 {
		return false
	}
	p.heldUnsent = false
	t := &p.tok
	if len(p.lastToken) < HeaderSize || MessageType(p.lastToken[3]) != TypeORFToken || t.Decode(p.lastToken) != nil ||
		t.RingID != p.ringID {
		return false
	}
	p.accelPending = false
	// Step 11, less what the held visit already used (retransmissions).
	allowed := p.fccAllowed() - int(p.myTrc)
	if allowed < 0 {
		allowed = 0
	}
	// Steps 15-18 for the whole visit: the held part's count plus these.
	p.sendAndAccount(now, t, allowed, p.myTrc)
	// Step 21 without a second token_seq: the stored token's is kept.
	t.Header = Header{NodeID: p.myID}
	p.lastToken = t.AppendEncode(p.lastToken[:0])
	p.emitStoredToken(TypeORFToken)
	p.counters.TokensSent++
	p.counters.HeldTokensUsed++
	p.accelPassToken()
	p.mySeqUnchanged = 0
	p.myTokenHeld = false
	p.stopTimer(timerHold)
	// Step 22.
	p.deliverRegular()
	// The token timer keeps running from the held visit: it measures how long since the
	// token last reached this node, and using it is no new arrival (a cut right after the
	// hold is detected as soon as in corosync; sim's TestRingCutPassiveKeepsMembership,
	// seed 1 at 6 nodes, saw the later detection when this restarted it). The retransmit
	// timer restarts, as when a hold cancel releases the token.
	p.startTimer(timerTokenRetransmit, now, p.cfg.TokenRetransmit)
	return true
}
