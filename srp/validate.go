package srp

import "slices"

// Validation of received values before they change protocol state (issue 12). corosync
// 3.1.7 trusts a decoded JOIN's ring sequence (message_handler_memb_join raises
// token_ring_id_seq before its per-state filters drop the JOIN), so one forged JOIN near
// 2^64 makes the next commit token's ring sequence wrap and every member refuse it. The
// rules below hold whatever a peer sends:
//   - a sender id outside the configured nodelist changes nothing (Config.Nodelist);
//   - a ring sequence that would wrap or that jumps absurdly past ours is refused;
//   - a JOIN or LEAVE claiming to come from this node with other sets than mine is forged;
//   - this node never enters its own failed set, except through FAILED TO RECEIVE (§4.3.1),
//     where corosync's singleton-ring rule needs it.

const (
	// maxRingSeq: ring sequences at or above it are refused. A ring change adds 4 (a
	// restart 1): at a thousand ring changes a second a cluster needs 10^9 years to get
	// here, and 2^62 leaves room for 2^60 further rings before the 64-bit wrap.
	maxRingSeq = uint64(1) << 62
	// maxRingSeqJump: a JOIN or commit token more than this above the highest ring
	// sequence this node knows of is refused. Legitimate jumps come from a partition that
	// kept re-forming on its own; 2^40 is 2^38 ring changes, more than any cluster lives
	// through, while a forger needs 2^22 accepted JOINs to push the sequence to maxRingSeq.
	maxRingSeqJump = uint64(1) << 40
	// maxTokenSeqJump: between two accepted ORF tokens of one ring, token_seq grows by one
	// per member (≤ ProcessorCountMax); retransmitted copies repeat the value. A token
	// claiming a larger step is forged or corrupt, and accepting it would make the next
	// genuine tokens look like duplicates.
	maxTokenSeqJump = 4 * ProcessorCountMax
	// maxSeqAhead: an ORF token's seq may lead my aru by at most the sort queue (senders
	// keep to the window, §6.2 step 15); twice that leaves room for the recovery queue.
	maxSeqAhead = 2 * sortQueueSize
)

// listed reports whether id may take part: true when no nodelist was configured.
func (p *Processor) listed(id NodeID) bool {
	if len(p.nodelist) == 0 {
		return true
	}
	_, ok := slices.BinarySearch(p.nodelist, id)
	return ok
}

// allListed reports whether every id of ids is in the nodelist.
func (p *Processor) allListed(ids []NodeID) bool {
	if len(p.nodelist) == 0 {
		return true
	}
	for _, id := range ids {
		if !p.listed(id) {
			return false
		}
	}
	return true
}

// knownRingSeq is the highest ring sequence this node has accepted.
func (p *Processor) knownRingSeq() uint64 { return max(p.ringID.Seq, p.tokenRingIDSeq) }

// ringSeqAbsurd reports whether a received ring sequence would wrap or jumps too far.
func (p *Processor) ringSeqAbsurd(seq uint64) bool {
	if seq >= maxRingSeq {
		return true
	}
	known := p.knownRingSeq()
	return seq > known && seq-known > maxRingSeqJump
}

// SetNodelist replaces the nodeids allowed to take part (a runtime nodelist change). An
// empty list disables the check (udp without a nodelist learns its peers).
func (p *Processor) SetNodelist(ids []NodeID) {
	p.nodelist = setFrom(p.nodelist[:0], ids)
}
