// Package transport owns gototem's real network I/O for one Totem ring: the UDP sockets of
// corosync 3.1's `udp` (multicast or broadcast) and `udpu` (unicast) transports, IPv4 and IPv6,
// batched sends and receives, and optional packet encryption keyed from a corosync authkey file;
// and corosync 3's default `knet` transport (Kind Knet, knet.go): package knet's pure
// Endpoint driven on one socket per knet link, with PMTUd on the kernel's answers
// (knet_pmtud.go). A knet Link is the one link totemsrp sees; knet's own links (up to 8,
// link_mode passive/active/rr) live inside it, and its heartbeat is driven by the caller
// (KnetTick at KnetNextTick), like every timer, with the caller's clock.
//
// A Link is one ring's sockets. It moves opaque totemsrp datagrams: it never decodes a totem
// message beyond the 13-byte header's nodeid (used to learn addresses when a udp config has
// no nodelist), never reads a clock and holds no protocol state. Membership, ordering, timers
// and redundant-ring policy belong to srp/ and rrp/; the goroutines that pump receive sockets
// belong to the integrator (totem/).
//
// Sockets and ports follow corosync 3.1 exactly (see docs/reference/totem-wire.md §1):
//
//	udpu: one socket bound to local:mcastport receives everything and sends tokens; one socket
//	      per member bound to local:0 sends that member its copy of each "multicast".
//	udp:  a receive socket bound to mcastaddr:mcastport joined to the group on the local
//	      interface; a send socket bound to local:(mcastport-1) for multicasts and tokens
//	      (multicast loop off, TTL from the config); a token socket bound to local:mcastport.
//	both: a local AF_UNIX datagram pair that carries this node's own multicasts back into its
//	      receive path, because totemsrp must see them and udp switches IP_MULTICAST_LOOP off
//	      (with Config.LoopInProcess the caller loops them back itself and no copy of its own
//	      reaches a socket).
//
// With Config.GSO (Linux) a run of equal-size datagrams to one destination leaves in one
// sendmmsg entry that the kernel segments (UDP_SEGMENT), and receive sockets take coalesced
// datagrams (UDP_GRO) that Read splits again: fewer passes through the IP stack, the same
// datagrams on the wire. knet (knet.go) does the same per link socket: a fragmented
// message's fragments to one host leave as one segmented message and are read as one.
//
// With encryption off a datagram is byte-identical to corosync's: no framing at all. With
// encryption on every datagram is sealed with an AEAD (see crypto.go for the format and the
// replay scheme); such a cluster cannot interoperate with real corosync udp/udpu, which has no
// crypto for these transports.
package transport
