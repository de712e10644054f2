package ipc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is one client connection to one service.
type Conn struct {
	srv     *Server
	svc     Service
	service string
	id      uint64

	pid      int32
	uid, gid uint32
	maxMsg   uint32

	dir       string // the connection's directory in ShmDir
	ctlPath   string // the control file
	base      string // the abstract base name of the datagram sockets
	ctlMu     sync.RWMutex
	ctl       []byte    // socket mode: the mmap'ed control file; nil once released
	shm       *shmRings // shm mode: the three rings; nil once released (under ctlMu)
	shmMode   bool
	reqWake   chan struct{} // shm mode: a request byte arrived on the setup socket
	setupSock *os.File
	reqSock   *os.File // bound to base-request; sends responses to base-response
	evSock    *os.File // bound to base-event-tx; sends events to base-event

	respMu        sync.Mutex
	respConnected bool

	// Events: written into the event ring at once when they can be (shm), else queued in
	// order for the writer goroutine, which evWake wakes.
	evMu      sync.Mutex
	evQueue   [][]byte // events not yet written, from evHead on
	evHead    int
	evNotify  int           // shm: events in the ring whose notification byte is not sent yet
	evBytes   atomic.Int64  // bytes queued, at most Options.EventBytes
	evWake    chan struct{} // capacity 1
	done      chan struct{}
	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	closeOnce sync.Once
	closing   atomic.Bool
	inCall    atomic.Bool // a request is with the service and has no response yet
	fc        atomic.Bool
	fcWake    chan struct{}

	// Per-connection counters, as corosync's stats.ipcs.* keys show them.
	requests, responses, events, sendRetries, fcCount, invalid, overload atomic.Uint64
	notifyWrites                                                         atomic.Uint64 // shm: writes of notification bytes

	ctxMu   sync.Mutex
	context any
}

// Service is the name the client connected to.
func (c *Conn) Service() string { return c.service }

// ID is unique over the server's life.
func (c *Conn) ID() uint64 { return c.id }

// Cred is the client's pid, uid and gid as the kernel reported them at setup.
func (c *Conn) Cred() (pid int32, uid, gid uint32) { return c.pid, c.uid, c.gid }

// MaxMsgSize is the negotiated maximum message size.
func (c *Conn) MaxMsgSize() int { return int(c.maxMsg) }

// SetContext attaches the service's per-connection state.
func (c *Conn) SetContext(v any) { c.ctxMu.Lock(); c.context = v; c.ctxMu.Unlock() }

// Context returns what SetContext stored.
func (c *Conn) Context() any { c.ctxMu.Lock(); defer c.ctxMu.Unlock(); return c.context }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// DoneContext is canceled when the connection ends: a service waiting on the client's
// behalf (a multicast waiting for room in the ring) stops waiting for a client that is gone.
func (c *Conn) DoneContext() context.Context { return c.ctx }

// ConnStats are one connection's counters.
type ConnStats struct {
	Requests, Responses, Events, SendRetries, FlowControlCount, InvalidRequest, Overload uint64
	FlowControl                                                                          bool
	QueueSize                                                                            int // events waiting to be written
}

// Stats returns the connection's counters.
func (c *Conn) Stats() ConnStats {
	return ConnStats{
		Requests: c.requests.Load(), Responses: c.responses.Load(), Events: c.events.Load(),
		SendRetries: c.sendRetries.Load(), FlowControlCount: c.fcCount.Load(),
		InvalidRequest: c.invalid.Load(), Overload: c.overload.Load(),
		FlowControl: c.fc.Load(), QueueSize: c.queuedEvents(),
	}
}

func (c *Conn) queuedEvents() int {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	return len(c.evQueue) - c.evHead
}

// CountOverload is for services: a request refused with CS_ERR_TRY_AGAIN.
func (c *Conn) CountOverload() { c.overload.Add(1) }

// ctlWord returns the int32 at off of the control file, for atomic access shared with the
// client process. The caller holds ctlMu and has checked ctl.
func (c *Conn) ctlWord(off int) *int32 {
	return (*int32)(unsafe.Pointer(&c.ctl[off]))
}

// ctlAdd adds d to a word of the control file, if it is still mapped.
func (c *Conn) ctlAdd(off int, d int32) {
	c.ctlMu.RLock()
	if c.ctl != nil {
		atomic.AddInt32(c.ctlWord(off), d)
	}
	c.ctlMu.RUnlock()
}

// ctlStore sets a word of the control file, if it is still mapped.
func (c *Conn) ctlStore(off int, v int32) {
	c.ctlMu.RLock()
	if c.ctl != nil {
		atomic.StoreInt32(c.ctlWord(off), v)
	}
	c.ctlMu.RUnlock()
	if off == ctlRequest+4 {
		// shm mode: the flow-control flag is the request ring's user data (qb_ipc_shm_fc_set).
		_ = c.withRings(func(s *shmRings) error {
			return guarded(func() error { atomic.StoreInt32(s.request.userWord(), v); return nil })
		})
	}
}

// open creates the control file and the two server datagram sockets and returns the setup
// response naming them.
func (c *Conn) open(setupFd int) (setupResponse, error) {
	s := c.srv
	dir, err := s.connDir(c.pid, setupFd, c.uid, c.gid)
	if err != nil {
		return setupResponse{}, err
	}
	c.dir = dir
	desc := dir + "/qb" // libqb's connection description: the directory plus "/qb"
	c.ctlPath = desc + "-control-" + c.service
	if c.shmMode {
		return c.openShm(desc)
	}
	c.base = desc + "-" + c.service
	if len(c.ctlPath) >= nameMax || len(c.base)+len("-event-tx")+1 > sunPathLen {
		return setupResponse{}, unix.ENAMETOOLONG
	}
	f, err := os.OpenFile(c.ctlPath, os.O_CREATE|os.O_EXCL|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return setupResponse{}, err
	}
	defer f.Close()
	if err := f.Truncate(controlSize); err != nil {
		return setupResponse{}, err
	}
	_ = f.Chown(int(c.uid), int(c.gid))
	_ = f.Chmod(0o600)
	c.ctl, err = unix.Mmap(int(f.Fd()), 0, controlSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		c.ctl = nil
		return setupResponse{}, fmt.Errorf("mmap %s: %w", c.ctlPath, err)
	}
	for off := 0; off < controlSize; off += 4 {
		atomic.StoreInt32(c.ctlWord(off), 0)
	}
	if c.reqSock, err = c.dgram(c.base + "-request"); err != nil {
		return setupResponse{}, err
	}
	if c.evSock, err = c.dgram(c.base + "-event-tx"); err != nil {
		return setupResponse{}, err
	}
	return setupResponse{
		connType: TypeSocket, maxMsgSize: c.maxMsg, connection: c.id,
		request: c.ctlPath, response: c.base, event: c.base,
	}, nil
}

// dgram makes a non-blocking datagram socket bound to an abstract name, its buffers sized
// for the largest message (libqb's set_sock_size; as root SO_*BUFFORCE passes rmem_max).
func (c *Conn) dgram(name string) (*os.File, error) {
	addr, err := abstractAddr(name)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := bindAbstract(fd, addr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", name, err)
	}
	size := int(c.maxMsg) + 1024
	for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
		if cur, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, o[1]); err == nil && cur > size {
			continue
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], size) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], size)
		}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// release frees what open made (and the setup socket's connection state is the caller's).
func (c *Conn) release() {
	if c.reqSock != nil {
		c.reqSock.Close()
	}
	if c.evSock != nil {
		c.evSock.Close()
	}
	c.ctlMu.Lock()
	if c.ctl != nil {
		unix.Munmap(c.ctl)
		c.ctl = nil
	}
	c.ctlMu.Unlock()
	c.releaseShm()
	if c.ctlPath != "" {
		os.Remove(c.ctlPath)
	}
	if c.dir != "" && strings.HasPrefix(filepath.Base(c.dir), "qb-") {
		os.Remove(c.dir) // only if empty: the client may still hold its own files there
	}
}

// serve runs the connection: the liveness watch, the event writer and, in this goroutine,
// the requests.
func (c *Conn) serve() {
	evDone := make(chan struct{})
	go func() { defer close(evDone); c.writeEvents() }()
	if c.shmMode {
		go c.watchSetupShm()
		c.readRequestsShm()
	} else {
		go c.watchSetup()
		c.readRequests()
	}
	c.Close()
	c.finish(evDone)
}

// finish runs after Close: waits for the event writer, tells the service, frees the slot
// and the files.
func (c *Conn) finish(evDone <-chan struct{}) {
	if evDone != nil {
		<-evDone
	}
	c.svc.Disconnect(c)
	// Files first: once Active shows the connection gone, nothing of it is left in ShmDir.
	c.release()
	c.srv.forget(c)
}

// Close ends the connection; the service's Disconnect follows once its last Request
// returned. Safe to call from anywhere, more than once.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		if c.inCall.Load() {
			c.srv.st.diedInCall.Add(1)
		}
		close(c.done)
		c.cancel()
		c.setupSock.Close()
		if c.reqSock != nil {
			c.reqSock.Close()
		}
		if c.evSock != nil {
			c.evSock.Close()
		}
	})
}

// watchSetup is libqb's liveness check: the client holds the setup stream open for the
// connection's life, so EOF or an error there means it has gone.
func (c *Conn) watchSetup() {
	buf := make([]byte, 64)
	for {
		_, err := c.setupSock.Read(buf)
		if err != nil {
			c.Close()
			return
		}
	}
}

// readRequests reads request datagrams and hands them to the service in order.
func (c *Conn) readRequests() {
	rc, err := c.reqSock.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 16<<10)
	peek := make([]byte, RequestHeaderSize)
	for {
		if c.fc.Load() {
			// libqb's server reads nothing while flow control is on; a well-behaved client
			// sends nothing either. Requests already queued wait in the socket.
			select {
			case <-c.done:
				return
			case <-c.fcWake:
				continue
			}
		}
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			// MSG_TRUNC makes the peek return the datagram's real length, so the buffer
			// grows only to what was actually sent and an oversized one is caught unread.
			n, _, rerr = unix.Recvfrom(int(fd), peek, unix.MSG_PEEK|unix.MSG_TRUNC)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err != nil || rerr != nil {
			return
		}
		if n > int(c.maxMsg) {
			unix.Recvfrom(int(fdOf(rc)), peek, 0) // consume it
			c.srv.st.oversized.Add(1)
			c.invalid.Add(1)
			c.srv.log.Warn("ipc: request larger than max_msg_size, disconnecting", "service", c.service, "pid", c.pid, "size", n, "max", c.maxMsg)
			return
		}
		if n > len(buf) {
			buf = make([]byte, n)
		}
		var m int
		err = rc.Read(func(fd uintptr) bool {
			m, _, rerr = unix.Recvfrom(int(fd), buf[:n], 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err != nil || rerr != nil {
			return
		}
		// The client counts its sends in the request block; libqb's server counts them
		// down as it reads, so the queue length both sides see stays true.
		c.ctlAdd(ctlRequest, -1)
		msg := buf[:m]
		id, size, ok := RequestHeader(msg)
		if !ok || int(size) != m {
			// A libqb client always sends whole messages whose header carries their size:
			// anything else is not one of them.
			c.srv.st.invalid.Add(1)
			c.invalid.Add(1)
			c.srv.log.Warn("ipc: malformed request, disconnecting", "service", c.service, "pid", c.pid, "len", m, "size", size)
			return
		}
		if id == MsgDisconnect {
			return
		}
		c.requests.Add(1)
		c.srv.st.requests.Add(1)
		c.inCall.Store(true)
		c.svc.Request(c, id, msg)
		c.inCall.Store(false)
		if c.closing.Load() {
			return
		}
	}
}

func fdOf(rc interface{ Control(func(uintptr)) error }) uintptr {
	var out uintptr
	rc.Control(func(fd uintptr) { out = fd })
	return out
}

// ErrClosed is returned when writing to an ended connection.
var ErrClosed = errors.New("ipc: connection closed")

// connectPeer connects a server socket to the client's socket of the given suffix. The
// client binds its sockets only after it has read the setup response, so the first send
// may come too early: retry briefly, as libqb's _finish_connecting does.
func (c *Conn) connectPeer(f *os.File, suffix string) error {
	addr, err := abstractAddr(c.base + "-" + suffix)
	if err != nil {
		return err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for try := 0; ; try++ {
		var cerr error
		if err := rc.Control(func(fd uintptr) { cerr = connectAbstract(int(fd), addr) }); err != nil {
			return err
		}
		if cerr == nil {
			return nil
		}
		if try >= 20 {
			return cerr
		}
		select {
		case <-c.done:
			return ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// send writes one datagram on a connected socket, waiting at most SetupTimeout for room.
func (c *Conn) send(f *os.File, msg []byte) error {
	f.SetWriteDeadline(time.Now().Add(c.srv.opts.SetupTimeout))
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	retried := false
	err = rc.Write(func(fd uintptr) bool {
		werr = unix.Send(int(fd), msg, unix.MSG_NOSIGNAL)
		if werr == unix.EAGAIN || werr == unix.ENOBUFS {
			if !retried {
				c.sendRetries.Add(1)
				retried = true
			}
			return false
		}
		return werr != unix.EINTR
	})
	if err != nil {
		return err
	}
	return werr
}

// Respond sends the response to the request being handled: a qb_ipc_response_header
// (id, size, error) followed by body.
func (c *Conn) Respond(id int32, csErr int32, body ...[]byte) error {
	return c.RespondRaw(frame(id, csErr, body))
}

// RespondRaw sends a response the service framed itself (header included).
func (c *Conn) RespondRaw(msg []byte) error {
	if len(msg) > int(c.maxMsg) {
		return fmt.Errorf("ipc: response of %d bytes over max_msg_size %d", len(msg), c.maxMsg)
	}
	c.respMu.Lock()
	defer c.respMu.Unlock()
	if c.closing.Load() {
		return ErrClosed
	}
	// Answered: the client's death from now on is not a death in the middle of a call.
	c.inCall.Store(false)
	if c.shmMode {
		// A client reads each response before its next request, so the ring is full only
		// when it stopped reading: wait SetupTimeout for it, as for a socket write.
		end := time.Now().Add(c.srv.opts.SetupTimeout)
		err := c.ringWrite(func(s *shmRings) *ring { return s.response }, msg, func() bool { return time.Now().After(end) })
		if err != nil {
			if !errors.Is(err, ErrClosed) {
				c.srv.st.writeFailed.Add(1)
			}
			c.Close()
			return err
		}
		c.responses.Add(1)
		c.srv.st.responses.Add(1)
		return nil
	}
	if !c.respConnected {
		if err := c.connectPeer(c.reqSock, "response"); err != nil {
			c.srv.st.writeFailed.Add(1)
			c.Close()
			return err
		}
		c.respConnected = true
	}
	if err := c.send(c.reqSock, msg); err != nil {
		c.srv.st.writeFailed.Add(1)
		c.Close()
		return err
	}
	c.ctlAdd(ctlResponse, 1)
	c.responses.Add(1)
	c.srv.st.responses.Add(1)
	return nil
}

func frame(id, csErr int32, body [][]byte) []byte {
	n := ResponseHeaderSize
	for _, b := range body {
		n += len(b)
	}
	msg := make([]byte, ResponseHeaderSize, n)
	PutResponseHeader(msg, id, n, csErr)
	for _, b := range body {
		msg = append(msg, b...)
	}
	return msg
}

// SendEvent queues an event (a qb_ipc_response_header and body) for the client's dispatch.
// It never blocks: a client that lets EventQueue events pile up is disconnected.
func (c *Conn) SendEvent(id int32, csErr int32, body ...[]byte) error {
	return c.SendEventRaw(frame(id, csErr, body))
}

// SendEventRaw queues an event the service framed itself. The connection may keep msg: the
// caller must not change it afterwards.
func (c *Conn) SendEventRaw(msg []byte) error {
	return c.sendEvent(msg, nil, msg)
}

// SendEventHead sends the event made of head (its qb_ipc_response_header included, its size
// field covering body) followed by body. Neither is kept: both may be reused once it
// returns. In shared-memory mode the event is copied straight into the client's event ring
// when nothing waits before it, so a CPG delivery costs one copy of its payload.
func (c *Conn) SendEventHead(head, body []byte) error {
	return c.sendEvent(head, body, nil)
}

// sendEvent writes the event into the event ring if the queue before it is empty and the
// ring has room (the notification byte follows from the writer goroutine, one write for
// every event written since its last), or queues it for the writer: owned when the caller
// gave it away whole, else a copy (so that head and body stay on the caller's stack).
func (c *Conn) sendEvent(head, body, owned []byte) error {
	size := len(head) + len(body)
	if size > int(c.maxMsg) {
		return fmt.Errorf("ipc: event of %d bytes over max_msg_size %d", size, c.maxMsg)
	}
	if c.closing.Load() {
		return ErrClosed
	}
	c.evMu.Lock()
	if c.shmMode && c.evHead == len(c.evQueue) {
		err := c.withRings(func(s *shmRings) error { return s.event.writev(head, body) })
		if err == nil {
			c.evNotify++
			wake := c.evNotify == 1
			c.evMu.Unlock()
			c.events.Add(1)
			c.srv.st.events.Add(1)
			if wake {
				c.wakeEventWriter()
			}
			return nil
		}
		if !errors.Is(err, errRingFull) {
			c.evMu.Unlock()
			if !errors.Is(err, ErrClosed) {
				c.srv.st.writeFailed.Add(1)
			}
			c.Close()
			return err
		}
		c.sendRetries.Add(1)
	}
	queued := len(c.evQueue) - c.evHead
	if queued >= c.srv.opts.EventQueue || c.evBytes.Load()+int64(size) > c.srv.opts.EventBytes {
		c.evMu.Unlock()
		c.srv.st.eventOverflow.Add(1)
		c.srv.log.Warn("ipc: client does not read its events, disconnecting", "service", c.service, "pid", c.pid, "queued", queued, "queued_bytes", c.evBytes.Load())
		c.Close()
		return ErrClosed
	}
	msg := owned
	if msg == nil {
		msg = make([]byte, size)
		copy(msg[copy(msg, head):], body)
	}
	c.evQueue = append(c.evQueue, msg)
	c.evBytes.Add(int64(size))
	wake := queued == 0
	c.evMu.Unlock()
	if wake {
		c.wakeEventWriter()
	}
	return nil
}

func (c *Conn) wakeEventWriter() {
	select {
	case c.evWake <- struct{}{}:
	default:
	}
}

// popEvent takes the first queued event, or nil; evMu held.
func (c *Conn) popEvent() []byte {
	if c.evHead == len(c.evQueue) {
		return nil
	}
	msg := c.evQueue[c.evHead]
	c.evQueue[c.evHead] = nil
	c.evHead++
	if c.evHead == len(c.evQueue) {
		c.evQueue, c.evHead = c.evQueue[:0], 0
	}
	c.evBytes.Add(-int64(len(msg)))
	return msg
}

// writeEvents is the connection's event writer: what sendEvent could not write at once, and
// in shared-memory mode the notification bytes.
func (c *Conn) writeEvents() {
	if c.shmMode {
		c.writeEventsShm()
		return
	}
	connected := false
	for {
		select {
		case <-c.done:
			return
		case <-c.evWake:
		}
		for {
			c.evMu.Lock()
			msg := c.popEvent()
			c.evMu.Unlock()
			if msg == nil {
				break
			}
			if !connected {
				if err := c.connectPeer(c.evSock, "event"); err != nil {
					if !c.closing.Load() {
						c.srv.st.writeFailed.Add(1)
					}
					c.Close()
					return
				}
				connected = true
			}
			// A client blocked in its dispatch is normal; one that never reads fills the
			// socket, then the queue, and is disconnected by SendEvent. The write deadline
			// only spares this goroutine when the client vanished without closing.
			for {
				err := c.send(c.evSock, msg)
				if err == nil {
					break
				}
				if errors.Is(err, os.ErrDeadlineExceeded) && !c.closing.Load() {
					continue
				}
				if !c.closing.Load() {
					c.srv.st.writeFailed.Add(1)
				}
				c.Close()
				return
			}
			c.ctlAdd(ctlEvent, 1)
			c.events.Add(1)
			c.srv.st.events.Add(1)
		}
	}
}

// writeEventsShm moves queued events into the event ring as the client makes room, and sends
// the notification bytes: one per event, as libqb's client reads one per event it takes,
// but in one write for all the events written since the last (libqb batches them the same
// way when the setup socket is full: its outstanding_notifiers). A flood thus costs a write
// per batch of deliveries, not one per message.
func (c *Conn) writeEventsShm() {
	var zeros []byte
	sleep, fullSince := time.Duration(0), time.Time{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if sleep == 0 {
			select {
			case <-c.done:
				return
			case <-c.evWake:
			}
		} else {
			// The client posts nothing when it makes room: poll (corosync's outq_flush
			// retries on every main-loop turn). At most 1 ms apart while the client is
			// reading, so a ring that holds one large event is refilled promptly; after a
			// second of a full ring (a client busy elsewhere) every 10 ms, to cost little.
			timer.Reset(sleep)
			select {
			case <-c.done:
				return
			case <-timer.C:
			}
		}
		c.evMu.Lock()
		full := false
		for c.evHead < len(c.evQueue) {
			msg := c.evQueue[c.evHead]
			err := c.withRings(func(s *shmRings) error { return s.event.write(msg) })
			if errors.Is(err, errRingFull) {
				full = true
				break
			}
			if err != nil {
				c.evMu.Unlock()
				if !c.closing.Load() {
					c.srv.st.writeFailed.Add(1)
				}
				c.Close()
				return
			}
			c.popEvent()
			c.evNotify++
			c.events.Add(1)
			c.srv.st.events.Add(1)
		}
		n := c.evNotify
		c.evNotify = 0
		c.evMu.Unlock()
		switch {
		case !full:
			sleep, fullSince = 0, time.Time{}
		case fullSince.IsZero():
			sleep, fullSince = 50*time.Microsecond, time.Now()
		case time.Since(fullSince) > time.Second:
			sleep = 10 * time.Millisecond
		default:
			sleep = min(2*sleep, time.Millisecond)
		}
		if n == 0 {
			continue
		}
		if len(zeros) < n {
			zeros = make([]byte, min(max(n, 64), 64<<10))
		}
		for n > 0 {
			c.setupSock.SetWriteDeadline(time.Now().Add(c.srv.opts.SetupTimeout))
			w, err := c.setupSock.Write(zeros[:min(n, len(zeros))])
			n -= w
			c.notifyWrites.Add(1)
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) && !c.closing.Load() {
				continue
			}
			if !c.closing.Load() {
				c.srv.st.writeFailed.Add(1)
			}
			c.Close()
			return
		}
	}
}

// SetFlowControl asks the client to stop (on) or resume sending: libqb's client reads the
// request block's flow_control before every send and returns EAGAIN while it is set.
func (c *Conn) SetFlowControl(on bool) {
	if c.fc.Swap(on) == on {
		return
	}
	v := int32(0)
	if on {
		v = 1
		c.fcCount.Add(1)
		c.srv.st.flowControl.Add(1)
	}
	c.ctlStore(ctlRequest+4, v)
	if !on {
		select {
		case c.fcWake <- struct{}{}:
		default:
		}
	}
}
