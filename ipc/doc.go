// Package ipc is a libqb IPC server: the local protocol corosync's client libraries (libcmap,
// libcpg, libquorum, libvotequorum, libcfg) and so Pacemaker and corosync's own tools speak
// to the daemon. It is a driver-level package: it owns sockets, the per-connection control
// file in /dev/shm and the goroutines that serve them, and it knows nothing of cmap, cpg or
// quorum. A Service receives each request's bytes and answers through its Conn.
//
// What a libqb 2.0 client expects, and this package does (facts from libqb's ipc_setup.c,
// ipc_socket.c, ipcs.c, ipcc.c and include/qb/qbipc_common.h):
//
//   - Setup: the client connects a SOCK_STREAM socket to the service's abstract unix name
//     ("cmap", "cpg", ...), bound with the whole 108-byte sun_path (libqb's QB_SUN_LEN gives
//     sizeof(struct sockaddr_un) for abstract names, so the name is NUL-padded), and sends a
//     24-byte qb_ipc_connection_request (id -1 = QB_IPC_MSG_AUTHENTICATE, size, max_msg_size).
//     Its credentials come as SCM_CREDENTIALS (SO_PASSCRED); the server answers with a
//     12328-byte qb_ipc_connection_response carrying an error (negative errno), the connection
//     type the server chose, the max message size and three PATH_MAX names. libqb clients
//     follow the server's choice; this server chooses QB_IPC_SHM as corosync does
//     (Options.SocketMode picks QB_IPC_SOCKET).
//   - Shared-memory mode (shm.go): three libqb ring buffers per connection in
//     /dev/shm/qb-<server pid>-<client pid>-<fd>-XXXXXX, each a header file (pointers and a
//     process-shared POSIX semaphore the reader sleeps on) and a data file; one byte on the
//     setup stream per request and per event (this server writes the bytes of all the
//     events written since its last write at once: the client reads one per event it
//     takes, and a CPG flood then costs a write per batch of deliveries). The client polls
//     that stream, whose peer credentials are the daemon's: Pacemaker checks them and runs
//     only on this mode.
//   - Socket mode: a directory /dev/shm/qb-<server pid>-<client pid>-<fd>-XXXXXX holds the
//     24-byte control file "qb-control-<service>": three {int32 sent; int32 flow_control}
//     blocks for the request, response and event channels. Requests arrive as datagrams on
//     the abstract name "<dir>/qb-<service>-request"; responses go from that socket to the
//     client's "-response", events from "-event-tx" to the client's "-event", both connected
//     on first send (the client binds them only after reading the setup response).
//   - Flow control: a non-zero request flow_control (shm: the request ring's user data) makes the client's qb_ipcc_send fail
//     with EAGAIN, which corosync's libraries return as CS_ERR_TRY_AGAIN.
//   - Liveness: the setup stream stays open for the connection's life; EOF there is the
//     client's death.
//
// Corosync's access rule is applied before a service sees a connection: root (uid 0 or gid
// 0) is allowed, everyone else only if Options.Allow says so (the uidgid entries of
// corosync.conf). Every failure a client can cause (no credentials, a garbled setup,
// a refused user, too many connections, garbage or oversized requests, an event queue it
// never drains, dying in the middle of a call) ends that connection only, and is counted
// in Stats.
//
// Threading: each connection has one goroutine that reads its requests and calls the
// Service's Request in order, so one connection's calls never overlap; different connections
// run concurrently and a Service must lock its own state. In shared-memory mode an event goes
// straight into the client's event ring when nothing waits before it; otherwise, and in socket
// mode, it is queued for the connection's writer goroutine, which also sends the notification
// bytes. A slow reader never blocks the caller of SendEvent.
package ipc
