package srp

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// levelNotice is corosync's notice level (totem.LevelNotice): between slog's Info and Warn.
const levelNotice = slog.LevelInfo + 2

// timerID names the totem timers of §8 that belong to the state machine. The pause
// detector and the downcheck timer are transport concerns and do not exist here.
type timerID uint8

const (
	timerToken           timerID = iota // token loss (orf_token_timeout)
	timerTokenRetransmit                // resend the stored token
	timerHold                           // rep holding an idle token: release it
	timerJoin                           // resend JOIN in GATHER
	timerConsensus                      // GATHER consensus deadline
	timerMerge                          // idle ring: rep multicasts MERGE_DETECT
	timerSendJoin                       // send_join > 0: the delayed JOIN (corosync sleeps instead)
	timerTokenWarning                   // token_warning: the "not received in N ms" notice
	numTimers
)

type timer struct {
	at    time.Duration
	armed bool
}

func (p *Processor) startTimer(id timerID, now, d time.Duration) {
	p.timers[id] = timer{at: now + d, armed: true}
}

// startTimerIfIdle arms id only when it is not already running (the merge timer keeps its
// first deadline while the ring stays idle, §6.2 step 3).
func (p *Processor) startTimerIfIdle(id timerID, now, d time.Duration) {
	if !p.timers[id].armed {
		p.startTimer(id, now, d)
	}
}

func (p *Processor) stopTimer(id timerID) { p.timers[id] = timer{} }

// resetTokenTimeout is corosync's reset_token_timeout: the token-loss timer restarts, and
// with it the token warning (token_warning percent of it, in corosync's integer
// milliseconds).
func (p *Processor) resetTokenTimeout(now time.Duration) {
	p.startTimer(timerToken, now, p.cfg.Token)
	if w := p.tokenWarning(); w > 0 {
		p.startTimer(timerTokenWarning, now, w)
	}
}

// cancelTokenTimeout is corosync's cancel_token_timeout: both timers stop.
func (p *Processor) cancelTokenTimeout() {
	p.stopTimer(timerToken)
	p.stopTimer(timerTokenWarning)
}

func (p *Processor) tokenWarning() time.Duration {
	return time.Duration(p.cfg.TokenWarning*int(p.cfg.Token/time.Millisecond)/100) * time.Millisecond
}

// nextTick is the earliest armed deadline, or 0 when nothing is armed.
func (p *Processor) nextTick() time.Duration {
	var next time.Duration
	found := false
	for _, t := range p.timers {
		if t.armed && (!found || t.at < next) {
			next, found = t.at, true
		}
	}
	if !found {
		return 0
	}
	if next <= 0 {
		// 0 means "no timer" in Ready; a deadline at the very start is due immediately.
		return 1
	}
	return next
}

// Tick fires every timer due at or before now, earliest first (ties in timerID order), so
// a late driver sees the same sequence of expiries as a punctual one.
func (p *Processor) Tick(now time.Duration) {
	if !p.running {
		return
	}
	for {
		best := numTimers
		for id := range numTimers {
			t := p.timers[id]
			if t.armed && t.at <= now && (best == numTimers || t.at < p.timers[best].at) {
				best = id
			}
		}
		if best == numTimers || !p.running {
			return
		}
		if late := now - p.timers[best].at; late > p.cfg.Token/2 && p.running {
			// corosync's pause detector (pause_flush) reports a gap of more than half the
			// token; here the driver's clock shows it as a timer serviced that late. The
			// soak's question "was a false membership change a paused process?" is
			// answered by this line next to the token loss.
			p.log.Warn(fmt.Sprintf("srp: timer serviced %d ms late: process pause or overloaded host", late/time.Millisecond),
				"node", p.myID, "timer", best, "state", p.state)
			p.counters.LateTimers++
		}
		p.stopTimer(best)
		p.fire(now, best)
	}
}

func (p *Processor) fire(now time.Duration, id timerID) {
	switch id {
	case timerToken:
		p.tokenTimeout(now)
	case timerTokenRetransmit:
		p.tokenRetransmitTimeout(now)
	case timerHold:
		// §6.3: the held token is released; one-shot (the retransmit timer still backs it up).
		if (p.state == Operational || p.state == Recovery) && p.resendStoredToken(now) {
			p.counters.TokensReleased++
		}
	case timerJoin:
		if p.state == Gather || p.state == Commit {
			p.sendJoin(now)
			p.startTimer(timerJoin, now, p.cfg.Join)
		}
	case timerConsensus:
		if p.state == Gather {
			p.counters.ConsensusTimeouts++
			p.consensusTimeout(now)
		}
	case timerMerge:
		p.mergeTimeout(now)
	case timerSendJoin:
		p.emitJoin(now)
	case timerTokenWarning:
		// corosync's timer_function_orf_token_warning, word for word (3.1.7 ends the line
		// with a space): the time since the last token this node accepted, re-armed.
		p.counters.TokenWarnings++
		p.log.Log(context.Background(), levelNotice, fmt.Sprintf("Token has not been received in %d ms ",
			(now-p.lastTokenRx)/time.Millisecond))
		p.startTimer(timerTokenWarning, now, p.tokenWarning())
	}
}

// tokenTimeout is corosync's timer_function_orf_token_timeout (§8 "token (loss)").
func (p *Processor) tokenTimeout(now time.Duration) {
	switch p.state {
	case Operational:
		p.counters.TokenLosses++
		// corosync's notice line, word for word (timer_function_orf_token_timeout), with no
		// attributes: a corosync-format log shows it as corosync does.
		p.log.Log(context.Background(), levelNotice, fmt.Sprintf(
			"A processor failed, forming new configuration: token timed out (%dms), waiting %dms for consensus.",
			p.cfg.Token/time.Millisecond, p.cfg.Consensus/time.Millisecond))
		p.gatherEnter(now, "token loss in OPERATIONAL")
	case Gather:
		p.consensusTimeout(now)
		p.gatherEnter(now, "token timer after agreed consensus")
	case Commit:
		p.counters.TokenLosses++
		p.gatherEnter(now, "token loss in COMMIT")
	case Recovery:
		p.counters.TokenLosses++
		p.restoreOldRingState()
		p.gatherEnter(now, "token loss in RECOVERY")
		p.orfTokenDiscard = true
	}
}

// tokenRetransmitTimeout resends the stored token (ORF or commit) in every state but
// GATHER, where no token of ours is in flight (§6.3).
func (p *Processor) tokenRetransmitTimeout(now time.Duration) {
	if p.state == Gather {
		return
	}
	if p.resendStoredToken(now) {
		p.counters.TokenRetransmits++
	}
	p.startTimer(timerTokenRetransmit, now, p.cfg.TokenRetransmit)
}

func (p *Processor) mergeTimeout(now time.Duration) {
	if p.state != Operational || p.ringID.Rep != p.myID {
		return
	}
	md := MergeDetect{Header: Header{NodeID: p.myID}, SystemFrom: p.myID, RingID: p.ringID}
	buf := md.AppendEncode(p.transient(md.EncodedLen()))
	p.emit(ToAll, 0, TypeMergeDetect, buf)
	p.counters.MergeDetectsSent++
}
