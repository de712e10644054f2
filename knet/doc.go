// Package knet is libknet's on-wire protocol v1 as Debian's corosync 3.1.7 runs it (libknet
// 1.25): the packet codec, the packet crypto (crypto_model nss/openssl, which share one wire
// layout), and the receive-side de-duplication and reassembly of a sending host's data
// packets.
//
// It owns the bytes knet puts on a link, the per-host receive bookkeeping libknet keeps
// (host.c's seq-number circular buffers, threads_rx.c's defrag buffers) and the link state
// of threads_heartbeat.c, in the shape of rrp.Ring so that sim can cut one link alone. It is pure: no
// sockets, no clock, no randomness of its own (an encrypting caller supplies the IV), no
// goroutines. It must not touch the network (transport/ does), read the wall clock (the
// driver passes time in), or know Totem: a DATA packet's user data is opaque bytes here
// (corosync puts one totem packet in it, on channel 0).
//
// Every decoder is bounded and total: any byte string yields a value or an error, never a
// panic, and no input makes it allocate more than the documented limits.
//
// The layouts were read from libknet 1.25's onwire.h/threads_rx.c/host.c/crypto_nss.c and
// checked against the real corosync captures in ../../shared/knet-captures (see its README).
package knet
