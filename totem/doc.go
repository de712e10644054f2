// Package totem is gototem's embedding API: a Node is one member of a Totem ring running on
// real UDP sockets and the wall clock. It offers ordered messaging in process groups
// (corosync's CPG), membership and quorum events, and a status view. It is the one package an
// embedder imports: every type its API uses is declared here.
//
// # Configuration
//
// A Config is built in code (LANConfig, then ClusterName, NodeID and Nodes) or read from an
// unchanged corosync.conf (LoadConfig). Both go through the same parser, validation and timer
// derivation, so a node configured in code behaves as the same corosync.conf would make it, and
// can share a ring with real corosync 3.1 nodes given that file (Config.CorosyncConf).
//
// A Node composes the pure protocol stack (package stack: srp, totempg framing, the service
// layer, votequorum, the redundant ring) with the transport's sockets. It owns the sockets and
// the clock; it does not implement protocol logic, so everything the simulator proves about the
// stack holds for a Node.
//
// # Goroutines
//
// One goroutine per socket reads datagrams in batches, a timer goroutine fires the protocol's
// timers, and a dispatch goroutine calls the application's callbacks. The protocol stack is
// single-threaded: whichever goroutine has an input (a received batch, a timer, an API call)
// runs it under one mutex, so no input waits for a goroutine hand-off.
//
// # Callbacks
//
// OnMembership, OnQuorum and each GroupHandler are called on the dispatch goroutine, one at a
// time, in the total order the ring delivered the events in. They may call any Node or Group
// method, including Send, which may wait for room: that delays later callbacks, never the ring.
// Events queue without bound behind a slow callback (the ring must not stall on one member's
// application); Status reports the backlog. With Options.InlineDelivery the receive goroutines
// deliver what their batches produced themselves (still one at a time, in the same order),
// which saves a hand-over per batch but makes a blocking callback stall the protocol.
//
// # Protocol threads
//
// With Options.ProtocolThread the receive, timer and dispatch goroutines are each locked to
// an OS thread of their own, which the hook may make realtime (corosync's sched_rr), so a
// token hop preempts other load at once. A locked goroutine costs the Go runtime a thread
// hand-over every time it wakes: under a libcpg flood of 64-byte messages the daemons spent
// 5.0-5.9 µs per delivered message with it and 2.7-3.2 µs at system.sched_rr: no (three
// runs each, TestIPCCPGBenchSideBySide), for nothing, since a saturated ring does not wait
// on its receive loop's wake-ups.
// A receive loop with Options.ProtocolThreadRelease therefore gives its thread back while it
// reads more than recvReleaseBytes a second (measured over recvWindow) and takes a thread
// again below recvRetakeBytes: light load, where realtime matters for latency, keeps it.
//
// # Backpressure
//
// Group.Send waits while the ring is busy (its send queue is full, or a service
// synchronization after a membership change is holding application traffic, as corosync does)
// and returns when the message is queued; TrySend returns ErrBusy instead of waiting.
// Delivery, including to the sender itself, follows in total order through the group handler.
package totem
