// Package config owns corosync.conf for gototem: the line grammar exactly as corosync 3.1's
// parser (exec/coroparse.c) reads it, the cmap key picture that parser produces, a typed
// view of every 3.1 section and key with 3.1's defaults, corosync's validation rules and
// messages, and the derivations corosync's totemconfig performs (effective token, the
// other totem timers, node ids, multicast addresses, ports).
//
// Older files are first-class: 1.x/2.x keys and sections (rrp_mode, ringnumber, interface
// blocks with bindnetaddr and no nodelist, member sections, secauth, threads, vsftype,
// amf, aisexec, service) are accepted. Where gototem gives them a meaning they are mapped
// (two interfaces plus rrp_mode drive gototem's redundant ring over udp/udpu; secauth
// selects encryption, which gototem supports on udp/udpu); otherwise a warning says they
// are ignored.
//
// The three steps mirror corosync's startup:
//
//	cfg, warns, err := config.Load("/etc/corosync/corosync.conf") // grammar, key types, static rules
//	rt, warns2, err := cfg.Resolve(config.Local{Addrs: addrs})    // local node, node ids, timers
//	for _, kv := range rt.Keys() { fmt.Println(kv) }               // corosync-cmapctl picture
//
// Errors are *Error values (or an ErrorList of them) that carry FILE:LINE and the gist of
// corosync's own message; warnings are returned alongside, never mixed into errors.
//
// The package is pure: it reads files only in Load and never touches the network, the
// clock or the host's interfaces. The caller (cmd/gototem, totem/) supplies the local
// addresses, host name and, if it wants host names resolved, a resolver. It does not
// build srp, rrp, transport or quorum configurations itself; those packages' callers map
// Runtime's plain fields into them.
package config
