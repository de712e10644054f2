// Package srp is gototem's Totem Single Ring Protocol: the corosync 3.1 wire codec and the
// membership/ordering state machine (OPERATIONAL, GATHER, COMMIT, RECOVERY) that runs on it.
//
// The state machine (Processor) owns everything totemsrp.c owns: the join/consensus
// algorithm, the commit token's two rotations, recovery of old-ring messages by
// encapsulation, the ORF token (ordering, aru, retransmission requests, flow control, token
// hold), merge detection, the LEAVE sent on clean shutdown, ring-id persistence through a
// RingIDStore, and the delivery of messages and EVS configurations in one total order.
// The references are docs/reference/totem-protocol.md (cited as §n below) and
// totem-wire.md.
//
// What it must not touch: sockets, the clock, goroutines, global randomness and files.
// Every input arrives through Step/Tick/Send with the driver's notion of "now", every
// output leaves through Ready (api.go), and randomness comes only from Config.Rand. The
// totempg packing above it (totempg/), the redundant-ring layer (rrp/), the real transports
// and the file-backed RingIDStore (totem/) live elsewhere.
//
// Driving a Processor (api.go has the loop): every ToAll datagram must also be fed back to
// the sender — consensus needs a node's own JOIN, and the rep releases a held token on its
// own TOKEN_HOLD_CANCEL. A ToNode datagram may be addressed to the sender itself (the token
// of a one-node ring). Deliveries arrive in EVS order: on a ring change first the old
// ring's remaining messages that were deliverable there, then a Transitional
// configuration, the recovered old-ring messages, and the Regular configuration.
//
// Where gototem deliberately differs from corosync 3.1.7, the code says so next to the
// rule. The differences:
//   - SAFE messages are held back until every member is known to have them (corosync
//     carries the guarantee and ignores it); AGREED messages behind a pending SAFE one wait.
//   - Freeing on an ORF token happens after the ring-id check and the token_seq duplicate
//     filter, not before them (§11.5): a retransmitted token must not count as a second
//     visit.
//   - A JOIN that changes none of my sets does not re-enter GATHER (corosync re-enters,
//     which lets disagreeing nodes multiply JOINs and starve the consensus timeout).
//   - In RECOVERY a new-ring MCAST from a member that installed earlier is dropped (and
//     requested again later) instead of landing in the old ring's sort queue.
//   - RECOVERY entry also resets the installation counters (retrans_flg_count, rotation
//     counter); corosync keeps stale values from a failed RECOVERY (§11.4), which lets a
//     node install the ring a rotation early.
//   - The deliver list is set to the transitional members on every RECOVERY entry, and
//     my_high_ring_delivered is always computed.
//   - No "process pause" detector (there is no clock to pause), send_join is a delay timer
//     instead of a blocking sleep, no heartbeat timer, no cancel_token_hold_on_retransmit,
//     and one new-message queue (no trans-ack queue, §7.3).
//   - A JOIN or foreign message that would grow the proc or failed set past 384
//     processors is dropped (a hostile peer could otherwise make my JOINs undecodable).
//   - Received values are validated before they change state (validate.go): a JOIN raises
//     token_ring_id_seq only after the per-state filters (corosync raises it first, so one
//     forged JOIN near 2^64 wrapped the next ring id); ring sequences at or above 2^62 or
//     more than 2^40 above the known one, and ORF tokens whose token_seq or seq jump
//     absurdly, are refused (DropAbsurd); with Config.Nodelist, ids outside it are refused
//     (DropUnlisted); a LEAVE naming me as its sender or naming another leaver is forged
//     (DropForged), and my own JOIN counts only with my current sets, so I never adopt
//     myself as failed (FAILED TO RECEIVE aside).
//   - The rep holding an idle ring's token sends its own new messages with that token at
//     once (holdsend.go); corosync's rep cancels its own hold and sends them a rotation later.
//   - Opt-in, for rings of gototem nodes only: Config.AcceleratedWindow runs the accelerated
//     ring (accel.go), the token passed before the holder's last messages of a visit.
package srp
