package srp

// The accelerated ring (Babay and Amir, "Fast Total Ordering for Modern Data Centers",
// ICDCS 2016; Spread's Accelerated Ring protocol), a gototem-only option
// (Config.AcceleratedWindow). In the standard ring (corosync) the token holder multicasts
// every new message of its visit and only then passes the token, so at any moment one node
// sends and the next holder idles until the last of those datagrams has left. In the
// accelerated ring the holder gives every message of its visit a seq and stores it, as
// before, multicasts the first part, passes the token, and multicasts the rest after it:
// the successor receives the token while the predecessor's last messages are still on the
// wire and starts its own visit at once.
//
// What changes, and why the EVS properties still hold:
//   - The token's seq already covers the post-token messages (they are numbered before the
//     token leaves), so the next holder numbers after them and the total order is the one
//     the standard ring would have produced for the same visits.
//   - The holder stores every post-token message in its sort queue before the token leaves,
//     and its own aru counts them (it holds them): they can be retransmitted from that
//     moment, exactly like a pre-token message lost on the wire. A holder that crashes or is
//     cut before multicasting them leaves seqs that the other members recover by
//     retransmission from nobody - the same case as a standard-ring holder whose messages
//     were all lost - and the membership protocol's recovery handles it the same way: only
//     the messages some member of the transitional configuration holds are delivered.
//   - Retransmission requests: the successor will usually see the predecessor's
//     post-token seqs missing when the token arrives. It does not ask for them at once:
//     a seq is requested only after it was missing on MissCountConst (corosync's
//     miss_count_const, default 5) token visits, by which time an in-flight message has
//     arrived. Retransmissions answered by the holder still go before the token.
//   - aru: a member lowers the token's aru to its own, which does not count messages still
//     in flight, so under load the aru lags by the predecessor's post-token batch. That is
//     conservative (the aru never claims a message a member lacks), so freeing (§6.6) and
//     SAFE delivery stay correct; they are only later by up to one rotation. Spread's
//     accelerated daemon (protocol.c of its research release) lowers the aru the same way.
//   - RECOVERY is unchanged: encapsulated old-ring messages go before the token.
//
// Spread's accelerated ring, as its daemon does it (protocol.c of the "Accelerated Ring
// Research Version"; facts, not code): new packets of a visit go into a send queue of
// Accelerated_window packets, the older ones multicast as the queue overflows; the token is
// sent, then the queue is flushed, in the same thread, before the daemon returns to its
// event loop. Retransmissions are requested only up to the seq of the last token this daemon
// sent (later seqs may still be in flight); srp uses miss_count_const instead, as above,
// which keeps corosync's token format. Every packet carries the token round it left in;
// a packet from the predecessor of a newer round than the last token received raises the
// token socket's priority above the data socket's, so the next token is handled before
// the rest of that batch (after a token, data gets the priority back). gototem reads both
// from one socket: totem passes a token found mid-batch on before the MCASTs behind it, and
// sends the post-token MCASTs in line after the token, as Spread does (a sender goroutine
// for them was tried, issue 14: no gain on the CPU-bound two-core lab, commit 577512d).
//
// Mixed rings: a corosync node in an accelerated ring would still order and deliver
// correctly (to it the token merely overtook some MCASTs, which the network may do
// anyway), but it would pass the token the standard way and nothing of this is
// corosync's behaviour, so config/ refuses the option unless every node of the nodelist is
// declared a gototem node, and the Processor, given that nodelist, admits no other id.

// accelSplit decides, before a visit's n new messages are multicast, how many of them go
// out before the token: the rest (at most AcceleratedWindow) follow it. -1: none follows
// (the standard ring, RECOVERY, or nothing to send).
func (p *Processor) accelSplit(n int) (pre int) {
	if p.cfg.AcceleratedWindow <= 0 || p.state != Operational || n <= 0 {
		return -1
	}
	return max(n-p.cfg.AcceleratedWindow, 0)
}

// accelMarkPostToken records that the next datagram emitted is the first post-token
// MCAST of this visit.
func (p *Processor) accelMarkPostToken() {
	p.accelMark = len(p.out)
	p.accelPending = true
}

// accelPassToken moves the token just emitted (the last outgoing datagram) in front of
// the visit's post-token MCASTs, so the driver sends it first. Without post-token MCASTs
// it does nothing.
func (p *Processor) accelPassToken() {
	if !p.accelPending {
		return
	}
	p.accelPending = false
	last := len(p.out) - 1
	if p.accelMark >= last {
		return
	}
	tok := p.out[last]
	copy(p.out[p.accelMark+1:], p.out[p.accelMark:last])
	p.out[p.accelMark] = tok
	p.counters.TokensAccelerated++
}
