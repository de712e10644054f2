// Package quorum owns votequorum as corosync 3.1 computes it: votes and expected votes per
// node, the quorum formula and the order of its gates (wait_for_all, auto_tie_breaker,
// qdevice master_wins), two_node, last_man_standing, allow_downscale, expected_votes_tracking,
// the administrative operations (-e, -v, cancel wait_for_all), the quorum device hook, the four
// service-5 messages byte for byte, and the corosync-quorumtool -s / -l renderings. Every rule
// follows docs/reference/votequorum.md; section numbers in comments refer to it.
//
// It is pure: no goroutines, no clock, no I/O except through the EVStore the caller passes. It
// does not frame totempg groups (totempg/ puts these bodies into group "a"), does not run the
// sync engine (services/ does; quorum joins it through Sync/SyncProcess/SyncActivate) and does
// not parse corosync.conf (the caller maps config/ values into Config). It does not import srp so
// that it builds alone: NodeID and RingID mirror srp's and convert directly.
//
// # Driver contract
//
// totem/ (real time) and sim/ (virtual time) drive a Machine the same way:
//
//	m, err := quorum.New(cfg, store, logger) // startup errors: corosync would exit 20
//	m.Start(now)                             // first calculation + NODEINFO(us)
//	loop:
//		feed one input:
//		  regular configuration → m.Sync(now, ring, members), then in votequorum's sync phase
//		                          msgs, done := m.SyncProcess(now): multicast msgs in group "a"
//		                          before the BARRIER; while !done hold the BARRIER and call
//		                          SyncProcess again after the next QdevicePoll or Tick;
//		                          when the phase's barriers are in → m.SyncActivate(now)
//		  sync aborted          → m.SyncAbort()
//		  group "a" body of service 5 delivered from node → m.Deliver(now, from, body, swapped)
//		  timer                 → m.Tick(now)
//		  admin                 → m.SetExpected / m.SetVotes / m.CancelWaitForAll / m.Reload
//		  quorum device         → m.QdeviceRegister / QdevicePoll / ... (or a DeviceRunner)
//		rd := m.Ready()
//		multicast rd.Messages in group "a", AGREED, in order
//		report rd.Changes upward in order (the quorum service's callback)
//		hand rd.Registrations to the device that asked
//		arm a wake-up for rd.NextTick (0: none)
//		m.Advance()
//
// Obligations the rules depend on:
//   - every body this node multicasts must come back to it through Deliver, in totem order with
//     everyone else's: votequorum applies its own NODEINFO and RECONFIGURE only on delivery, so
//     all members apply the same changes in the same order;
//   - Sync is called for every regular configuration, before any message of the new ring is
//     delivered, with the ring's full member list (this node included);
//   - now never goes backwards.
package quorum
