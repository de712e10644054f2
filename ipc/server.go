package ipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Service is one named IPC service ("cmap", "cpg", ...).
type Service interface {
	// Connect is called once a client has passed the access rule, before the setup
	// response is sent; a non-nil error (a unix.Errno is passed on as is, anything else as
	// EINVAL) refuses the client. Context set here stays with the Conn.
	Connect(c *Conn) error
	// Request handles one request: msg is the whole datagram, its 16-byte
	// qb_ipc_request_header included, id is the header's id. The service answers with
	// c.Respond (every libqb call waits for one response, except the ones the service's
	// protocol defines as asynchronous). msg is only valid during the call.
	Request(c *Conn, id int32, msg []byte)
	// Disconnect is called once, after the last Request returned, when the connection ends
	// for any reason.
	Disconnect(c *Conn)
}

// Options configure a Server. Zero values take the defaults shown.
type Options struct {
	// Allow is corosync's uidgid rule for non-root clients: nil allows root only.
	Allow func(uid, gid uint32) bool
	// MaxConnections caps the connections over all services (default 1024). A client over
	// the cap is refused with EMFILE, as corosync refuses when it runs short of fds.
	MaxConnections int
	// MaxMsgSize caps the message size a client may negotiate (default 1 MiB, corosync's
	// IPC_REQUEST_SIZE); a client asking for less gets what it asked for, at least MinMsgSize.
	MaxMsgSize uint32
	// MinMsgSize (default 8 KiB).
	MinMsgSize uint32
	// EventQueue is how many events may wait for a client that is not reading (default
	// 65536), and EventBytes how many bytes (default 64 MiB); past either the client is
	// disconnected and counted in EventOverflow. A CPG flood delivers tens of thousands of
	// messages a second, so a client descheduled for a moment must not be taken for a dead
	// one (4096 events were 45 ms of a 1 KiB flood: a libcpg client was dropped under CI load).
	EventQueue int
	EventBytes int64
	// SetupTimeout bounds the handshake and every write to a client (default 5 s): a client
	// that stops reading its responses is disconnected, not waited for.
	SetupTimeout time.Duration
	// SocketMode makes the server choose libqb's socket connection type (QB_IPC_SOCKET)
	// instead of shared memory (QB_IPC_SHM, the default, what corosync chooses). libqb
	// clients follow the server's choice. In socket mode the fd a client polls
	// (qb_ipcc_fd_get) is a datagram socket without peer credentials, so Pacemaker refuses
	// the daemon; corosync's tools and libraries work in both.
	SocketMode bool
	// ShmDir holds the per-connection directories (default /dev/shm, where libqb clients
	// look: the server sends them absolute paths, so any directory works).
	ShmDir string
	Logger *slog.Logger
}

// Stats count what the server did, over all services. Every way a client can fail is a
// counter of its own.
type Stats struct {
	Accepted         uint64 // connections established
	Active           uint64 // connections open now
	Closed           uint64 // connections that ended after being established
	RefusedAccess    uint64 // EACCES: not root and not allowed by uidgid
	RefusedLimit     uint64 // EMFILE: over MaxConnections
	RefusedByService uint64 // the service's Connect refused
	SetupFailed      uint64 // no credentials, a short/garbled setup message, setup timeout, or a resource failure
	Requests         uint64
	Responses        uint64
	Events           uint64
	InvalidRequest   uint64 // a datagram shorter than its header or whose size field disagrees with its length
	Oversized        uint64 // a request larger than the negotiated max_msg_size
	EventOverflow    uint64 // a client that does not read its events, disconnected
	WriteFailed      uint64 // a response or event the client did not take (timeout or gone)
	DiedInCall       uint64 // client gone while one of its requests was being handled
	FlowControl      uint64 // times flow control was switched on towards a client
}

type counters struct {
	accepted, active, closed, refusedAccess, refusedLimit, refusedByService, setupFailed                 atomic.Uint64
	requests, responses, events, invalid, oversized, eventOverflow, writeFailed, diedInCall, flowControl atomic.Uint64
}

// Server serves libqb IPC services on abstract unix sockets.
type Server struct {
	opts Options
	log  *slog.Logger
	pid  int
	st   counters

	mu        sync.Mutex
	listeners map[string]*os.File
	conns     map[*Conn]struct{}
	nconns    int // conns plus setups in progress
	closed    bool
	fcAll     bool
	nextID    uint64
	wg        sync.WaitGroup
}

// NewServer returns a server with no services yet.
func NewServer(opts Options) *Server {
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 1024
	}
	if opts.MaxMsgSize == 0 {
		opts.MaxMsgSize = 1 << 20
	}
	if opts.MinMsgSize == 0 {
		opts.MinMsgSize = 8 << 10
	}
	if opts.MinMsgSize > opts.MaxMsgSize {
		opts.MinMsgSize = opts.MaxMsgSize
	}
	if opts.EventQueue <= 0 {
		opts.EventQueue = 65536
	}
	if opts.EventBytes <= 0 {
		opts.EventBytes = 64 << 20
	}
	if opts.SetupTimeout <= 0 {
		opts.SetupTimeout = 5 * time.Second
	}
	if opts.ShmDir == "" {
		opts.ShmDir = "/dev/shm"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: log, pid: os.Getpid(), listeners: map[string]*os.File{}, conns: map[*Conn]struct{}{}}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.st
	return Stats{
		Accepted: c.accepted.Load(), Active: c.active.Load(), Closed: c.closed.Load(),
		RefusedAccess: c.refusedAccess.Load(), RefusedLimit: c.refusedLimit.Load(),
		RefusedByService: c.refusedByService.Load(), SetupFailed: c.setupFailed.Load(),
		Requests: c.requests.Load(), Responses: c.responses.Load(), Events: c.events.Load(),
		InvalidRequest: c.invalid.Load(), Oversized: c.oversized.Load(),
		EventOverflow: c.eventOverflow.Load(), WriteFailed: c.writeFailed.Load(),
		DiedInCall: c.diedInCall.Load(), FlowControl: c.flowControl.Load(),
	}
}

// Conns returns the established connections.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// SetFlowControl switches flow control on or off for every connection, present and future:
// while it is on, clients' sends fail with EAGAIN (CS_ERR_TRY_AGAIN). corosync does the
// same when totem's send queue fills (cs_ipcs_totem_queue_level_changed).
func (s *Server) SetFlowControl(on bool) {
	s.mu.Lock()
	s.fcAll = on
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.SetFlowControl(on)
	}
}

// Listen publishes a service on the abstract socket name and serves it until Close.
func (s *Server) Listen(name string, svc Service) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("ipc: service name %q: want 1..64 bytes", name)
	}
	addr, err := abstractAddr(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("ipc: server closed")
	}
	if _, dup := s.listeners[name]; dup {
		s.mu.Unlock()
		return fmt.Errorf("ipc: service %q already listening", name)
	}
	s.mu.Unlock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ipc: socket: %w", err)
	}
	if err := bindAbstract(fd, addr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return fmt.Errorf("ipc: service %q: the abstract socket is taken (is corosync running in this network namespace?): %w", name, err)
		}
		return fmt.Errorf("ipc: bind %q: %w", name, err)
	}
	// Credentials arrive with the client's first message (SCM_CREDENTIALS), as libqb asks.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	if err := unix.Listen(fd, 128); err != nil { // libqb's SERVER_BACKLOG
		unix.Close(fd)
		return fmt.Errorf("ipc: listen %q: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "ipc-"+name)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f.Close()
		return errors.New("ipc: server closed")
	}
	s.listeners[name] = f
	s.wg.Add(1)
	s.mu.Unlock()
	go s.acceptLoop(name, f, svc)
	s.log.Info("ipc service listening", "service", name)
	return nil
}

func (s *Server) acceptLoop(name string, f *os.File, svc Service) {
	defer s.wg.Done()
	rc, err := f.SyscallConn()
	if err != nil {
		s.log.Error("ipc accept", "service", name, "err", err)
		return
	}
	for {
		var nfd int
		var aerr error
		err := rc.Read(func(fd uintptr) bool {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return aerr != unix.EAGAIN && aerr != unix.EINTR
		})
		if err != nil {
			return // listener closed
		}
		if aerr != nil {
			// EMFILE and friends: the process is short of fds; back off rather than spin.
			s.log.Warn("ipc accept", "service", name, "err", aerr)
			s.st.setupFailed.Add(1)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			unix.Close(nfd)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.setup(name, nfd, svc)
		}()
	}
}

// Close withdraws every service and disconnects every client.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, f := range s.listeners {
		f.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return nil
}

// reserve takes a connection slot; false when over the cap.
func (s *Server) reserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nconns >= s.opts.MaxConnections {
		return false
	}
	s.nconns++
	return true
}

func (s *Server) release() {
	s.mu.Lock()
	s.nconns--
	s.mu.Unlock()
}

// setup runs the handshake on an accepted stream socket and, if it succeeds, serves the
// connection until it ends.
func (s *Server) setup(service string, fd int, svc Service) {
	sock := os.NewFile(uintptr(fd), "ipc-setup-"+service)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	deadline := time.Now().Add(s.opts.SetupTimeout)
	sock.SetDeadline(deadline)
	req, cred, err := readSetup(sock)
	if err != nil {
		s.st.setupFailed.Add(1)
		s.log.Debug("ipc setup failed", "service", service, "err", err)
		sock.Close()
		return
	}
	// Credentials off again, as libqb does: later bytes on this socket carry none.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 0)
	refuse := func(errno unix.Errno) {
		b := setupResponse{errno: -int32(errno)}.encode()
		writeAll(sock, b)
		sock.Close()
	}
	if req.id != MsgAuthenticate {
		// libqb closes without an answer when the first message is not a setup.
		s.st.setupFailed.Add(1)
		sock.Close()
		return
	}
	if !(cred.Uid == 0 || cred.Gid == 0 || (s.opts.Allow != nil && s.opts.Allow(cred.Uid, cred.Gid))) {
		s.st.refusedAccess.Add(1)
		s.log.Error("Denied connection attempt", "service", service, "uid", cred.Uid, "gid", cred.Gid, "pid", cred.Pid)
		refuse(unix.EACCES)
		return
	}
	if !s.reserve() {
		s.st.refusedLimit.Add(1)
		s.log.Warn("ipc connection refused: too many connections", "service", service, "max", s.opts.MaxConnections)
		refuse(unix.EMFILE)
		return
	}
	max := req.maxMsgSize
	if max < s.opts.MinMsgSize {
		max = s.opts.MinMsgSize
	}
	if max > s.opts.MaxMsgSize {
		max = s.opts.MaxMsgSize
	}
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.mu.Unlock()
	c := &Conn{
		srv: s, svc: svc, service: service, id: id, setupSock: sock,
		pid: cred.Pid, uid: cred.Uid, gid: cred.Gid, maxMsg: max,
		evWake: make(chan struct{}, 1), done: make(chan struct{}), fcWake: make(chan struct{}, 1),
		shmMode: !s.opts.SocketMode, reqWake: make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	resp, err := c.open(fd)
	if err != nil {
		s.st.setupFailed.Add(1)
		s.log.Warn("ipc setup: cannot create the connection's resources", "service", service, "err", err)
		c.release()
		s.release()
		refuse(errnoOf(err))
		return
	}
	if err := svc.Connect(c); err != nil {
		s.st.refusedByService.Add(1)
		c.release()
		s.release()
		refuse(errnoOf(err))
		return
	}
	// Registered before the response goes out, so that a flow-control switch made while the
	// client reads its response reaches it too.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		svc.Disconnect(c)
		c.release()
		s.release()
		sock.Close()
		return
	}
	s.conns[c] = struct{}{}
	fcAll := s.fcAll
	s.mu.Unlock()
	s.st.active.Add(1)
	if fcAll {
		c.SetFlowControl(true)
	}
	if err := writeAll(sock, resp.encode()); err != nil {
		s.st.setupFailed.Add(1)
		c.Close()
		c.finish(nil)
		return
	}
	sock.SetDeadline(time.Time{})
	s.st.accepted.Add(1)
	s.log.Debug("ipc connection", "service", service, "pid", c.pid, "uid", c.uid, "dir", c.dir)
	c.serve()
}

// forget removes an ended connection.
func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	_, ok := s.conns[c]
	delete(s.conns, c)
	if ok {
		s.nconns--
	}
	s.mu.Unlock()
	if ok {
		s.st.active.Add(^uint64(0))
		s.st.closed.Add(1)
	}
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EINVAL
}

// readSetup reads the 24-byte setup request and the credentials that came with it.
func readSetup(sock *os.File) (setupRequest, unix.Ucred, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return setupRequest{}, unix.Ucred{}, err
	}
	buf := make([]byte, setupRequestSize)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	got := 0
	var cred *unix.Ucred
	for got < len(buf) {
		var n, oobn int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf[got:], oob, 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err != nil {
			return setupRequest{}, unix.Ucred{}, err
		}
		if rerr != nil {
			return setupRequest{}, unix.Ucred{}, rerr
		}
		if n == 0 {
			return setupRequest{}, unix.Ucred{}, errors.New("ipc: client closed during setup")
		}
		if cred == nil && oobn > 0 {
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if uc, err := unix.ParseUnixCredentials(&m); err == nil {
						cred = uc
						break
					}
				}
			}
		}
		got += n
	}
	if cred == nil {
		// SO_PASSCRED may have been set after the client's bytes were queued; the
		// connect-time credentials are the same process's.
		fd := -1
		rc.Control(func(f uintptr) { fd = int(f) })
		uc, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return setupRequest{}, unix.Ucred{}, fmt.Errorf("ipc: no client credentials: %w", err)
		}
		cred = uc
	}
	req, err := decodeSetupRequest(buf)
	if err != nil {
		return setupRequest{}, unix.Ucred{}, err
	}
	if req.size != setupRequestSize {
		return setupRequest{}, unix.Ucred{}, fmt.Errorf("ipc: setup request says size %d", req.size)
	}
	return req, *cred, nil
}

// writeAll writes b to a stream socket (the file's deadline bounds it).
func writeAll(f *os.File, b []byte) error {
	for len(b) > 0 {
		n, err := f.Write(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// connDir makes the connection's directory as libqb names it:
// <shm>/qb-<server pid>-<client pid>-<fd>-<random>, mode 0770, owned by the client.
func (s *Server) connDir(clientPid int32, fd int, uid, gid uint32) (string, error) {
	dir, err := os.MkdirTemp(s.opts.ShmDir, fmt.Sprintf("qb-%d-%d-%d-", s.pid, clientPid, fd))
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		os.Remove(dir)
		return "", err
	}
	_ = os.Chown(dir, int(uid), int(gid)) // fails when not root: the client then must be us
	return filepath.Clean(dir), nil
}
