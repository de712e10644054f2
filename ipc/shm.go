package ipc

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// libqb's shared-memory connection type (QB_IPC_SHM, what corosync serves: its
// cs_get_ipc_type asks for QB_IPC_NATIVE, which libqb on Linux turns into QB_IPC_SHM).
// Facts from libqb 2.0.6 lib/ringbuffer.c, ringbuffer_int.h, ringbuffer_helper.c,
// ipc_shm.c, ipcs.c and ipcc.c:
//
//   - Each connection has three ring buffers, request, response and event, named
//     "<dir>/qb-request-<service>" and so on; each is two files, "<name>-header" (struct
//     qb_ringbuffer_shared_s) and "<name>-data" (the ring, a multiple of the page size).
//     The server creates them (owned by the client's uid and gid, mode 0600: corosync
//     never calls qb_ipcs_connection_auth_set, so libqb's defaults hold) with the
//     negotiated max_msg_size; the client opens them with the same size.
//   - Header (amd64, aligned(8)): write_pt @0, read_pt @4, word_size @8 (ring length in
//     32-bit words), hdr_path[4096] @12, data_path[4096] @4108, ref_count @8204, a
//     process-shared POSIX sem_t @8208 (32 bytes), user_data @8240 (the request ring's is
//     the int32 flow-control flag). The struct is 8248 bytes; the server maps 8252 (4 bytes
//     of user data), a client maps 8248 for the response and event rings.
//   - A chunk is two words, the data size in bytes and a magic (0xA1A1A1A1 when committed,
//     0xA110CED0 while being written, 0xD0D0D0D0 once read), then the data padded to a whole
//     word; indexes wrap at word_size (the C side maps the data twice to write across the
//     end; here the copies are split by hand). A writer needs the chunk plus 12 bytes of
//     margin free; free space is computed from the two pointers and, when they are equal,
//     from the semaphore's value (equal pointers and unread chunks mean full).
//   - The semaphore counts committed, unread chunks: the writer posts after each commit,
//     the reader waits (or tries) before each read. glibc's sem_t on amd64 is a 64-bit word
//     (value in the low 32 bits, waiters in the high 32), then an int "private" that
//     sem_init(pshared=1) sets to 128 (FUTEX_SHARED = LLL_SHARED = FUTEX_PRIVATE_FLAG,
//     which glibc xors away): waiters sleep on the low word with a shared futex, and a post
//     that sees waiters wakes one with FUTEX_WAKE (no private flag).
//   - ref_count is 1 after the server's create and 2 once the client has opened a ring;
//     qb_ipcc_send refuses (ENOTCONN) unless the request ring's count is exactly 2, so the
//     server sets it to 0 when it lets go of a connection.
//   - The setup stream socket stays open and carries one byte per request the client
//     sends (after the chunk is committed) and one byte per event the server sends;
//     qb_ipcc_fd_get hands the client this socket to poll, which is why Pacemaker, which
//     checks that fd's SO_PEERCRED, can only run on this connection type.
const (
	rbOffWritePt  = 0
	rbOffReadPt   = 4
	rbOffWordSize = 8
	rbOffHdrPath  = 12
	rbOffDataPath = rbOffHdrPath + pathMax
	rbOffRefCount = rbOffDataPath + pathMax // 8204
	rbOffSem      = 8208                    // sem_t, 8-aligned
	rbOffSemPriv  = rbOffSem + 8
	rbOffUserData = 8240
	rbHeaderSize  = 8248
	rbSharedSize  = rbHeaderSize + 4 // with the int32 of user data

	rbChunkMagic      = 0xA1A1A1A1
	rbChunkMagicDead  = 0xD0D0D0D0
	rbChunkMagicAlloc = 0xA110CED0
	rbChunkMargin     = 4 * (2 + 1) // QB_RB_CHUNK_MARGIN: header words plus one for alignment

	semShared    = 128 // glibc's "private" field of a pshared semaphore
	futexWake    = 1
	futexWaitOp  = 0
	semValueMask = 0xffffffff
)

var (
	errRingFull    = errors.New("ipc: ring buffer full")
	errRingEmpty   = errors.New("ipc: ring buffer empty")
	errRingCorrupt = errors.New("ipc: ring buffer corrupt")
	errRingFault   = errors.New("ipc: ring buffer mapping faulted (file truncated by the client?)")
	errChunkTooBig = errors.New("ipc: chunk larger than max_msg_size")
)

// ring is one libqb ring buffer, mapped by this process. Its geometry (words, maxMsg) is
// this process's own copy: nothing read back from the shared header is trusted.
type ring struct {
	hdr, data         []byte
	words             uint32
	maxMsg            uint32
	hdrPath, dataPath string
}

// ringDataSize is libqb's real_size for a ring that must take maxMsg-byte chunks.
func ringDataSize(maxMsg uint32) int {
	page := os.Getpagesize()
	size := int(maxMsg) + rbChunkMargin + 1
	return (size + page - 1) / page * page
}

// createRing makes a ring's two files as qb_rb_open(QB_RB_FLAG_CREATE|SHARED_PROCESS)
// does, owned by uid:gid with mode 0600.
func createRing(name string, maxMsg, uid, gid uint32) (r *ring, err error) {
	r = &ring{maxMsg: maxMsg, hdrPath: name + "-header", dataPath: name + "-data"}
	if len(r.hdrPath) >= pathMax || len(r.dataPath) >= pathMax {
		return nil, unix.ENAMETOOLONG
	}
	size := ringDataSize(maxMsg)
	r.words = uint32(size / 4)
	defer func() {
		if err != nil {
			r.unmap()
			os.Remove(r.hdrPath)
			os.Remove(r.dataPath)
		}
	}()
	if r.hdr, err = mapNew(r.hdrPath, rbSharedSize, uid, gid); err != nil {
		return nil, err
	}
	if r.data, err = mapNew(r.dataPath, size, uid, gid); err != nil {
		return nil, err
	}
	atomic.StoreUint32(r.u32(rbOffWordSize), r.words)
	atomic.StoreUint32(r.u32(rbOffWritePt), 0)
	atomic.StoreUint32(r.u32(rbOffReadPt), 0)
	copy(r.hdr[rbOffHdrPath:rbOffHdrPath+pathMax-1], r.hdrPath)
	copy(r.hdr[rbOffDataPath:rbOffDataPath+pathMax-1], r.dataPath)
	atomic.StoreUint64(r.semWord(), 0)
	atomic.StoreInt32((*int32)(unsafe.Pointer(&r.hdr[rbOffSemPriv])), semShared)
	atomic.StoreInt32(r.userWord(), 0)
	atomic.StoreInt32(r.refCount(), 1)
	return r, nil
}

// openRing maps a ring another process created, as a libqb client does (the test client).
func openRing(name string, maxMsg uint32) (r *ring, err error) {
	r = &ring{maxMsg: maxMsg, hdrPath: name + "-header"}
	size := ringDataSize(maxMsg)
	defer func() {
		if err != nil {
			r.unmap()
		}
	}()
	if r.hdr, err = mapFile(r.hdrPath, rbSharedSize); err != nil {
		return nil, err
	}
	r.words = atomic.LoadUint32(r.u32(rbOffWordSize))
	if int(r.words)*4 != size {
		return nil, fmt.Errorf("ipc: ring %s has %d words, want %d", name, r.words, size/4)
	}
	r.dataPath = cstring(r.hdr[rbOffDataPath : rbOffDataPath+pathMax])
	if r.data, err = mapFile(r.dataPath, size); err != nil {
		return nil, err
	}
	atomic.AddInt32(r.refCount(), 1)
	return r, nil
}

func mapNew(path string, size int, uid, gid uint32) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64(size)); err != nil {
		return nil, err
	}
	// As qb_rb_chown: EPERM (not root) is not an error, the client is then this user.
	if err := f.Chown(int(uid), int(gid)); err != nil && !errors.Is(err, unix.EPERM) {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		return nil, err
	}
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return b, nil
}

func mapFile(path string, size int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < int64(size) {
		return nil, fmt.Errorf("ipc: %s is %d bytes, want %d", path, st.Size(), size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return b, nil
}

func (r *ring) unmap() {
	if r.hdr != nil {
		unix.Munmap(r.hdr)
		r.hdr = nil
	}
	if r.data != nil {
		unix.Munmap(r.data)
		r.data = nil
	}
}

// destroy is the server's qb_rb_close: the client's next send sees the connection gone
// (ref_count not 2), then the files go.
func (r *ring) destroy() {
	if r.hdr != nil {
		_ = guarded(func() error { atomic.StoreInt32(r.refCount(), 0); return nil })
	}
	r.unmap()
	os.Remove(r.dataPath)
	os.Remove(r.hdrPath)
}

func (r *ring) u32(off int) *uint32      { return (*uint32)(unsafe.Pointer(&r.hdr[off])) }
func (r *ring) semWord() *uint64         { return (*uint64)(unsafe.Pointer(&r.hdr[rbOffSem])) }
func (r *ring) userWord() *int32         { return (*int32)(unsafe.Pointer(&r.hdr[rbOffUserData])) }
func (r *ring) refCount() *int32         { return (*int32)(unsafe.Pointer(&r.hdr[rbOffRefCount])) }
func (r *ring) word(i uint32) *uint32    { return (*uint32)(unsafe.Pointer(&r.data[(i%r.words)*4])) }
func (r *ring) loadWord(i uint32) uint32 { return atomic.LoadUint32(r.word(i)) }
func (r *ring) storeWord(i, v uint32)    { atomic.StoreUint32(r.word(i), v) }

// semValue is sem_getvalue: the committed chunks not yet taken by the reader.
func (r *ring) semValue() uint32 { return uint32(atomic.LoadUint64(r.semWord()) & semValueMask) }

// semPost is glibc's sem_post on a pshared semaphore: one more in the value, and a shared
// futex wake when the high word counts waiters.
func (r *ring) semPost() {
	w := r.semWord()
	for {
		d := atomic.LoadUint64(w)
		if d&semValueMask == 0x7fffffff { // SEM_VALUE_MAX: a reader that never reads
			return
		}
		if atomic.CompareAndSwapUint64(w, d, d+1) {
			if d>>32 != 0 {
				unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWake, 1, 0, 0, 0)
			}
			return
		}
	}
}

// semTryWait is sem_trywait: takes one from the value if it is not zero.
func (r *ring) semTryWait() bool {
	w := r.semWord()
	for {
		d := atomic.LoadUint64(w)
		if d&semValueMask == 0 {
			return false
		}
		if atomic.CompareAndSwapUint64(w, d, d-1) {
			return true
		}
	}
}

// step is qb_rb_chunk_step: the index after a chunk of size bytes at pt.
func (r *ring) step(pt, size uint32) uint32 {
	pt += 2 + size/4
	if size%4 != 0 {
		pt++
	}
	if pt > r.words-1 {
		pt %= r.words
	}
	return pt
}

// spaceFree is qb_rb_space_free in bytes.
func (r *ring) spaceFree(w, rd uint32) uint32 {
	var free uint32
	switch {
	case w > rd:
		free = r.words - (w - rd) - 1
	case w < rd:
		free = rd - w - 1
	default:
		if r.semValue() > 0 {
			free = 0
		} else {
			free = r.words
		}
	}
	return free * 4
}

// write commits one chunk (qb_rb_chunk_write) and posts the semaphore. errRingFull when the
// reader has not made room.
func (r *ring) write(msg []byte) error {
	return r.writeSized(msg, uint32(len(msg)))
}

// writeSized writes msg but records size in the chunk header: the test client lies with it.
func (r *ring) writeSized(msg []byte, size uint32) error {
	return r.commit(msg, size, true)
}

// commit writes one chunk and, if post, posts the semaphore (the tests hold the post back to
// open the writer's window between the two).
func (r *ring) commit(msg []byte, size uint32, post bool) error {
	return r.commitv(msg, nil, size, post)
}

// writev commits one chunk made of head then body, copied straight into the ring: a service
// frames an event around a payload it does not own without building the event first.
func (r *ring) writev(head, body []byte) error {
	return r.commitv(head, body, uint32(len(head)+len(body)), true)
}

func (r *ring) commitv(head, body []byte, size uint32, post bool) error {
	return guarded(func() error {
		w := atomic.LoadUint32(r.u32(rbOffWritePt))
		rd := atomic.LoadUint32(r.u32(rbOffReadPt))
		if w >= r.words || rd >= r.words {
			return errRingCorrupt
		}
		n := uint32(len(head) + len(body))
		if uint64(r.spaceFree(w, rd)) < uint64(n)+rbChunkMargin {
			return errRingFull
		}
		r.storeWord(w, 0)
		r.storeWord(w+1, rbChunkMagicAlloc)
		off := r.copyIn(int(((w+2)%r.words)*4), head)
		r.copyIn(off, body)
		r.storeWord(w, size)
		atomic.StoreUint32(r.u32(rbOffWritePt), r.step(w, n))
		r.storeWord(w+1, rbChunkMagic)
		if post {
			r.semPost()
		}
		return nil
	})
}

// copyIn copies p into the data at off, wrapping at the end (libqb maps the data twice
// instead), and returns the offset after it. The caller checked the room.
func (r *ring) copyIn(off int, p []byte) int {
	n := copy(r.data[off:], p)
	if n < len(p) {
		off = copy(r.data, p[n:])
		return off
	}
	return (off + n) % len(r.data)
}

// read takes the chunk at read_pt (qb_rb_chunk_read with sem_trywait) into buf, which must
// hold maxMsg bytes. errRingEmpty when no chunk is posted; errChunkTooBig or errRingCorrupt
// when the ring holds what no libqb writer writes (a client writing garbage into its ring).
func (r *ring) read(buf []byte) (n int, err error) {
	err = guarded(func() error {
		rd := atomic.LoadUint32(r.u32(rbOffReadPt))
		if rd >= r.words {
			return errRingCorrupt
		}
		// The semaphore first, as libqb's reader waits on it before it looks: the writer
		// commits the chunk and posts after, so a chunk taken on its magic alone could be
		// read before its post, and the post would then count a chunk that is gone. With
		// the pointers equal, the writer takes that count for a full ring and sends nothing
		// more (a 64-byte libcpg flood stalled on CS_ERR_TRY_AGAIN within 0.2 s).
		if !r.semTryWait() {
			return errRingEmpty
		}
		if r.loadWord(rd+1) != rbChunkMagic {
			r.semPost() // posted without a chunk: give the count back, as libqb does
			return errRingEmpty
		}
		size := r.loadWord(rd)
		if size > r.maxMsg || size > uint32(len(buf)) || uint64(size)+8 > uint64(r.words)*4 {
			return fmt.Errorf("%w: %d bytes, max %d", errChunkTooBig, size, r.maxMsg)
		}
		off := int(((rd + 2) % r.words) * 4)
		c := copy(buf[:size], r.data[off:])
		copy(buf[c:size], r.data)
		n = int(size)
		r.storeWord(rd, 0)
		r.storeWord(rd+1, rbChunkMagicDead)
		atomic.StoreUint32(r.u32(rbOffReadPt), r.step(rd, size))
		return nil
	})
	return n, err
}

// guarded runs f with faults on the mappings turned into errRingFault: a client can
// truncate the files it owns under the server, and that must end its connection, not the
// daemon (libqb's server catches SIGBUS for the same reason).
func guarded(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			if re, ok := p.(interface{ Addr() uintptr }); ok {
				err = fmt.Errorf("%w: address %#x", errRingFault, re.Addr())
				return
			}
			panic(p)
		}
	}()
	return f()
}

// shmRings are a connection's three rings.
type shmRings struct {
	request, response, event *ring
}

// openShm creates the connection's rings as qb_ipcs_shm_connect does.
func (c *Conn) openShm(desc string) (setupResponse, error) {
	names := [3]string{desc + "-request-" + c.service, desc + "-response-" + c.service, desc + "-event-" + c.service}
	for _, n := range names {
		// libqb formats the names with snprintf(NAME_MAX): longer ones would be cut.
		if len(n)+len("-header") >= nameMax {
			return setupResponse{}, unix.ENAMETOOLONG
		}
	}
	var rings [3]*ring
	for i, n := range names {
		r, err := createRing(n, c.maxMsg, c.uid, c.gid)
		if err != nil {
			for _, made := range rings[:i] {
				made.destroy()
			}
			return setupResponse{}, err
		}
		rings[i] = r
	}
	c.ctlMu.Lock()
	c.shm = &shmRings{request: rings[0], response: rings[1], event: rings[2]}
	c.ctlMu.Unlock()
	return setupResponse{
		connType: TypeShm, maxMsgSize: c.maxMsg, connection: c.id,
		request: names[0], response: names[1], event: names[2],
	}, nil
}

// releaseShm destroys the rings; no ring operation runs once it holds ctlMu.
func (c *Conn) releaseShm() {
	c.ctlMu.Lock()
	s := c.shm
	c.shm = nil
	c.ctlMu.Unlock()
	if s == nil {
		return
	}
	s.request.destroy()
	s.response.destroy()
	s.event.destroy()
}

// withRings runs f on the rings unless they are gone.
func (c *Conn) withRings(f func(*shmRings) error) error {
	c.ctlMu.RLock()
	defer c.ctlMu.RUnlock()
	if c.shm == nil {
		return ErrClosed
	}
	return f(c.shm)
}

// RequestBacklog is how many bytes of requests the client has committed to its request ring
// and the server has not read yet; ok is false in socket mode, where the server cannot see
// them. A service that waits on the client's behalf uses it to decide when to switch flow
// control on: while the ring has room the client keeps queueing, and the waiting request's
// successors are there the moment the wait ends.
func (c *Conn) RequestBacklog() (bytes int, ok bool) {
	if !c.shmMode {
		return 0, false
	}
	err := c.withRings(func(s *shmRings) error {
		return guarded(func() error {
			r := s.request
			w := atomic.LoadUint32(r.u32(rbOffWritePt))
			rd := atomic.LoadUint32(r.u32(rbOffReadPt))
			if w >= r.words || rd >= r.words {
				return errRingCorrupt
			}
			switch {
			case w > rd:
				bytes = int(w-rd) * 4
			case w < rd:
				bytes = int(r.words-rd+w) * 4
			case r.semValue() > 0: // equal pointers and unread chunks: full
				bytes = int(r.words) * 4
			}
			return nil
		})
	})
	return bytes, err == nil
}

// watchSetupShm reads the setup socket: one byte per request the client committed. It
// wakes the request loop, and EOF is the client's death.
//
// It stays a goroutine of its own, reading while the request loop is in a call: libqb's
// client retries the send of its byte for as long as the socket is full, spinning, and a
// socket holds only a few hundred one-byte sends. Merged into the request loop (with a
// second reader started only for calls longer than 10 ms) the three libcpg clients of a
// 1 KiB flood burnt twice their CPU and the flood fell by a third; with that reader started
// after 100 µs the merge measured no better than this (42-47k msgs/s either way, 21-25 µs
// of daemon CPU per delivered message, GOTOTEM_BENCH_ENGINES=gototem
// GOTOTEM_BENCH_SIZES=1024).
func (c *Conn) watchSetupShm() {
	buf := make([]byte, 512)
	for {
		_, err := c.setupSock.Read(buf)
		if err != nil {
			c.Close()
			return
		}
		select {
		case c.reqWake <- struct{}{}:
		default:
		}
	}
}

// readRequestsShm takes requests from the request ring in order, while flow control is off.
func (c *Conn) readRequestsShm() {
	buf := make([]byte, c.maxMsg)
	for {
		if c.fc.Load() {
			select {
			case <-c.done:
				return
			case <-c.fcWake:
				continue
			}
		}
		var n int
		err := c.withRings(func(s *shmRings) error {
			var err error
			n, err = s.request.read(buf)
			return err
		})
		if errors.Is(err, errRingEmpty) {
			select {
			case <-c.done:
				return
			case <-c.reqWake:
			case <-c.fcWake:
			}
			continue
		}
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return
			}
			c.srv.st.invalid.Add(1)
			c.invalid.Add(1)
			if errors.Is(err, errChunkTooBig) {
				c.srv.st.oversized.Add(1)
			}
			c.srv.log.Warn("ipc: bad request ring, disconnecting", "service", c.service, "pid", c.pid, "err", err)
			return
		}
		msg := buf[:n]
		id, size, ok := RequestHeader(msg)
		if !ok || int(size) != n {
			c.srv.st.invalid.Add(1)
			c.invalid.Add(1)
			c.srv.log.Warn("ipc: malformed request, disconnecting", "service", c.service, "pid", c.pid, "len", n, "size", size)
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

// ringWrite writes one chunk into a ring of the connection, waiting for room while the
// client catches up, until deadline (zero: until the connection ends).
func (c *Conn) ringWrite(pick func(*shmRings) *ring, msg []byte, deadline func() bool) error {
	sleep := 50 * time.Microsecond
	start := time.Now()
	retried := false
	for {
		err := c.withRings(func(s *shmRings) error { return pick(s).write(msg) })
		if !errors.Is(err, errRingFull) {
			return err
		}
		if !retried {
			c.sendRetries.Add(1)
			retried = true
		}
		if deadline != nil && deadline() {
			return err
		}
		// The client posts nothing when it makes room: poll (corosync's outq_flush retries
		// on every main-loop turn). At most 1 ms apart while the client is reading, so a
		// ring that holds one large event is refilled promptly; after a second of a full
		// ring (a client busy elsewhere) every 10 ms, to cost little.
		select {
		case <-c.done:
			return ErrClosed
		case <-time.After(sleep):
		}
		switch {
		case time.Since(start) > time.Second:
			sleep = 10 * time.Millisecond
		default:
			sleep = min(2*sleep, time.Millisecond)
		}
	}
}
