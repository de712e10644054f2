// Package knet is libknet's on-wire protocol v1 as Debian's corosync 3.1.7 runs it (libknet
// 1.25), as pure components a transport composes:
//
//   - wire.go: the packet codec (header, DATA, PING/PONG, PMTUD/PMTUD_REPLY), byte-exact.
//   - crypto.go, keyring.go: packet crypto (crypto_model nss and openssl share one wire
//     layout: salt | AES-CBC | HMAC keyed with the whole authkey; the AES-CBC is
//     internal/aescbc's, an AES-NI assembly on amd64), and the two crypto configurations
//     corosync's runtime reconfiguration switches between.
//   - tx.go: the sender's seq counter, fragmentation at the data MTU, the MTU arithmetic.
//   - rx.go: the receiver's per-host de-duplication window and reassembly (HostRx).
//   - link.go: the link layer (Links): ping/pong heartbeat, latency, link up/down, and which
//     links carry DATA under link_mode passive/active/rr. Shaped like rrp.Ring so that sim
//     can cut one link alone.
//   - pmtud.go: the path MTU search of one link (PMTUD).
//   - endpoint.go: all of the above composed as one node's knet (Endpoint): the driver
//     feeds it datagrams and time and sends what it returns.
//
// transport/knet.go drives an Endpoint on real sockets (Kind Knet); totem/knet.go maps
// corosync.conf onto it.
//
// It owns the bytes knet puts on a link and the state libknet keeps per host and link. It
// is pure: no sockets, no clock, no randomness of its own (an encrypting caller supplies
// the salt), no goroutines. It must not touch the network (transport/ does), read the wall
// clock (the driver passes a monotonic time in), or know Totem: a DATA packet's user data
// is opaque bytes here (corosync puts one totem packet in it, on channel 0).
//
// A node's receive path, as libknet's RX thread runs it (Endpoint.Receive): Keyring.Open (drop and count on
// error: a wrong key or a tampered packet), Packet.Decode, then by type:
//   - DATA: accept it only from a configured address of the sending host and only while
//     Links says the host is reachable; HostRx.Data de-duplicates (copies from other
//     links, replays within the 4096-seq window: counted as Duplicate in link_mode active,
//     where every packet travels on each link, as Replay otherwise) and reassembles;
//     deliver the message.
//   - PING: answer Packet.Pong(self), sealed, on the link the ping names, to that link's
//     configured address (not the packet's source); then HostRx.Ping.
//   - PONG: Links.Pong. PMTUD: answer PMTUDReply(self). PMTUD_REPLY: PMTUD.Reply.
//
// and its send path (Endpoint.Send, Endpoint.Tick): Tx.Send at the data MTU (MinDataMTU until PMTUD settled, then the
// smallest of the links'), each packet to the links Links.Route names for each destination
// host (a broadcast: every reachable host, the same seq), sealed; Links.Tick at NextTick
// (its pings sealed likewise), Links.ForcePings when Tx.Send asks for it; on a LinkEvent
// that leaves a host unreachable, HostRx.Reset; on one that brings a link up, a PMTUD run.
//
// Every decoder is bounded and total: any byte string yields a value or an error, never a
// panic, and no input makes it hold more than the documented limits.
//
// The facts were read from libknet 1.25 (onwire.h, threads_rx.c, threads_tx.c,
// threads_heartbeat.c, threads_pmtud.c, host.c, onwire.c, crypto*.c) and corosync 3.1.7's
// exec/totemknet.c and totemconfig.c, and checked against the real captures in
// testdata/captures (copied from ../../shared/knet-captures; see its README).
package knet
