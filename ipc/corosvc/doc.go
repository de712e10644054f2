// Package corosvc answers corosync 3.1.7's client services over the libqb IPC server of
// package ipc: cmap, quorum, votequorum (with the quorum-device calls corosync-qdevice makes),
// cfg and cpg. Each service is a translation between corosync's request and response structs
// (include/corosync/ipc_*.h, laid out with every field aligned(8)) and state that lives
// elsewhere: the key view and status of the running node (totem.Node.CmapKeys and Status) and
// the node's calls (votequorum's qdevice_*, cfg's kill and cluster-wide reload, cpg's process
// groups), reached through the small interfaces declared here so tests can use a fake node.
// The package owns only what corosync's clients create themselves: keys a client set or
// deleted through cmap, its iterators and its tracks. It must not keep a second copy of ring,
// group or quorum state, and must not touch sockets (package ipc does) or the ring (package
// totem does).
//
// corosync-qdevice runs against these services in the server's socket mode: libqb clients
// follow the connection type the server chooses, and libvotequorum/libcmap need nothing else.
package corosvc
