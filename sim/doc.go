// Package sim is gototem's deterministic network simulator: N nodes run the production
// Totem SRP state machine through the same driver contract as a real node (srp/api.go), on
// virtual time, over a faulty simulated network, while checkers verify the guarantees of
// Extended Virtual Synchrony from the nodes' delivery logs.
//
// What it owns: the virtual clock and its event queue, the network model (per-link latency,
// loss, duplication, reordering, partitions including one-way cuts, flapping links,
// multicast fan-out with independent fate per receiver, the sender's own copy), node
// faults (crash, restart with the persisted ring id, pause with stale timers), the
// workload generator, the invariant checkers, random fault schedules, named scenarios and
// the readable one-line-per-event trace.
//
// What it must not touch: the wall clock, goroutines, sockets and global randomness. Every
// random choice is drawn from one PCG generator seeded by Options.Seed, so a seed replays
// a run exactly (`gototem sim --seed S --trace`). It never edits the protocol's state: it
// only feeds Step/Tick/Send and reads Ready, exactly as totem/ does.
//
// Users of gototem run their own application here, unchanged: Options.App sets up each node
// incarnation's application through an AppNode exactly as an embedder sets one up on a
// totem.Node (OnMembership, OnQuorum, Join with a totem.GroupHandler, TrySend and Leave on the
// Group), on the full stack; Options.Invariants adds the application's own invariants beside
// the EVS ones, checked after every step that ran application code. Scenario.RunApp and
// StackScheduleOptions.App run it under the named scenarios and the random full-stack
// schedules. Package examples/counter is such an application, tested both here and on real
// nodes. The Protocol interface is the seam for other layers:
// StackProtocol runs the full stack (stack.Stack: totempg, services, votequorum, redundant
// ring) per node, logs every votequorum verdict with its virtual time (QuorumLog, checked by
// CheckSplitBrain, CheckWaitForAll, CheckLastManStanding) and carries each datagram's link, so
// one ring of a redundant ring can be cut alone (CutRing, HealRing).
//
// Two random campaigns run beside each other. The bare-srp one (RunSchedule, Campaign)
// checks EVS on srp's own deliveries. The full-stack one (RunStackSchedule, StackCampaign,
// `gototem sim --stack`) runs what the daemon runs, stack.Stack per node, in process-group
// mode: processes join and leave CPG groups during the faults and send SAFE and AGREED
// messages, some fragmented across packets; a process-group history records what each node's
// application sees and its checkers work per group (total order, no creation or duplication,
// self delivery, virtual synchrony between confchgs, a message delivered by its sender
// alone, SAFE delivery), beside quorum exclusivity (CheckSplitBrain).
//
// knet (sim/knet*.go): NewKnetProtocol runs each node's stack over its own knet.Endpoint,
// corosync 3's transport; knet link L travels on the simulator's link L, so one knet link is
// cut alone (CutRing, CutRingLink, FlapLink) while knet's heartbeat, driven by the virtual
// clock, takes it down and fails over by link_mode. KnetLinkCut checks a link cut against
// bounds derived from the knet timers corosync derives from the token; RunKnetLinkSchedule
// plays random one-link faults and checks the membership is kept; StackScheduleOptions.Knet
// with LinkFaults (`gototem sim --knet`) runs the full-stack campaign over knet.
package sim
