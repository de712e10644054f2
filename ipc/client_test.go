package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// testClient is a libqb socket-mode client written from the same facts as the server, so the
// unit tests can misbehave in ways libqb never would. The cgo-free C test (libqb_test.go)
// checks the server against the real libqb client.
type testClient struct {
	setup, req, ev int
	ctl            []byte
	resp           setupResponse
	// shm mode: the three rings, opened as a libqb client opens them.
	rq, rs, re *ring
}

func dialTest(service string, maxMsg uint32) (*testClient, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	addr, _ := abstractAddr(service)
	if err := connectAbstract(fd, addr); err != nil {
		unix.Close(fd)
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	b := make([]byte, setupRequestSize)
	binary.LittleEndian.PutUint32(b[0:], 0xffffffff)
	binary.LittleEndian.PutUint32(b[8:], setupRequestSize)
	binary.LittleEndian.PutUint32(b[16:], maxMsg)
	if _, err := writeIntr(fd, b); err != nil {
		unix.Close(fd)
		return nil, err
	}
	rb := make([]byte, setupResponseSize)
	for got := 0; got < len(rb); {
		n, err := readIntr(fd, rb[got:])
		if err != nil || n == 0 {
			unix.Close(fd)
			return nil, fmt.Errorf("setup response: read %d: %v", n, err)
		}
		got += n
	}
	r, _ := decodeSetupResponse(rb)
	if r.errno != 0 {
		unix.Close(fd)
		return nil, unix.Errno(-r.errno)
	}
	c := &testClient{setup: fd, resp: r}
	switch r.connType {
	case TypeSocket:
	case TypeShm:
		for _, p := range []struct {
			r    **ring
			name string
		}{{&c.rq, r.request}, {&c.rs, r.response}, {&c.re, r.event}} {
			if *p.r, err = openRing(p.name, r.maxMsgSize); err != nil {
				c.close()
				return nil, err
			}
		}
		return c, nil
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("connection type %d", r.connType)
	}
	f, err := os.OpenFile(r.request, os.O_RDWR, 0)
	if err != nil {
		c.close()
		return nil, err
	}
	c.ctl, err = unix.Mmap(int(f.Fd()), 0, controlSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	f.Close()
	if err != nil {
		c.close()
		return nil, err
	}
	if c.req, err = testDgram(r.response+"-response", r.response+"-request"); err != nil {
		c.close()
		return nil, err
	}
	if c.ev, err = testDgram(r.response+"-event", r.response+"-event-tx"); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func testDgram(local, remote string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	la, _ := abstractAddr(local)
	ra, _ := abstractAddr(remote)
	if err := bindAbstract(fd, la); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := connectAbstract(fd, ra); err != nil {
		unix.Close(fd)
		return -1, err
	}
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, nil
}

// close releases the client's sockets and mappings. A second call does nothing: a test that
// closes a client early (a client that went away) still has dialOK's close run at its end,
// and must not close descriptor numbers the process has handed out again since.
func (c *testClient) close() {
	for _, fd := range []*int{&c.setup, &c.req, &c.ev} {
		if *fd > 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if c.ctl != nil {
		unix.Munmap(c.ctl)
		c.ctl = nil
	}
	for _, r := range []*ring{c.rq, c.rs, c.re} {
		if r != nil {
			r.unmap()
		}
	}
}

// fcFlag is the server's flow-control flag as the client sees it.
func (c *testClient) fcFlag() int32 {
	if c.shm() {
		return atomic.LoadInt32(c.rq.userWord())
	}
	return atomic.LoadInt32(c.word(ctlRequest + 4))
}

func (c *testClient) shm() bool { return c.resp.connType == TypeShm }

func (c *testClient) word(off int) *int32 { return (*int32)(unsafe.Pointer(&c.ctl[off])) }

var errFlowControl = errors.New("flow control on")

// send sends one request the way qb_ipcc_send does: refused while flow control is on.
func (c *testClient) send(id int32, body []byte) error {
	if c.shm() {
		// qb_ipc_shm_fc_get: the server's flag, and ENOTCONN unless both ends hold the ring.
		if atomic.LoadInt32(c.rq.refCount()) != 2 {
			return unix.ENOTCONN
		}
		if atomic.LoadInt32(c.rq.userWord()) != 0 {
			return errFlowControl
		}
	} else if atomic.LoadInt32(c.word(ctlRequest+4)) != 0 {
		return errFlowControl
	}
	m := make([]byte, RequestHeaderSize+len(body))
	binary.LittleEndian.PutUint32(m[0:], uint32(id))
	binary.LittleEndian.PutUint32(m[8:], uint32(len(m)))
	copy(m[RequestHeaderSize:], body)
	return c.sendRaw(m)
}

func (c *testClient) sendRaw(m []byte) error {
	if c.shm() {
		return c.sendLying(m, uint32(len(m)))
	}
	atomic.AddInt32(c.word(ctlRequest), 1)
	_, err := writeIntr(c.req, m)
	return err
}

type testMsg struct {
	id, size, err int32
	body          []byte
}

func readMsg(fd int) (testMsg, error) {
	b := make([]byte, 1<<20)
	n, err := readIntr(fd, b)
	if err != nil {
		return testMsg{}, err
	}
	return decodeMsg(b[:n])
}

func decodeMsg(b []byte) (testMsg, error) {
	n := len(b)
	if n < ResponseHeaderSize {
		return testMsg{}, fmt.Errorf("message of %d bytes", n)
	}
	le := binary.LittleEndian
	return testMsg{id: int32(le.Uint32(b)), size: int32(le.Uint32(b[8:])), err: int32(le.Uint32(b[16:])), body: b[ResponseHeaderSize:n]}, nil
}

// sendLying commits m to the request ring with size in its chunk header, then the byte on
// the setup socket that tells the server (qb_ipcc_sendv in shm mode).
func (c *testClient) sendLying(m []byte, size uint32) error {
	if err := c.rq.writeSized(m, size); err != nil {
		return err
	}
	_, err := writeIntr(c.setup, []byte{1})
	return err
}

func (c *testClient) recv() (testMsg, error) {
	if c.shm() {
		return readRing(c.rs)
	}
	return readMsg(c.req)
}

func (c *testClient) recvEvent() (testMsg, error) {
	if !c.shm() {
		return readMsg(c.ev)
	}
	m, err := readRing(c.re)
	if err != nil {
		return m, err
	}
	// qb_ipcc_event_recv takes the event's notification byte off the setup socket.
	b := make([]byte, 1)
	if n, err := readIntr(c.setup, b); n != 1 {
		return m, fmt.Errorf("event notification byte: %d %v", n, err)
	}
	return m, nil
}

// readRing waits up to 5 s for a chunk (polling: the test client does not sleep on the
// semaphore; libqb's own client, in libqb_test.go, does).
func readRing(r *ring) (testMsg, error) {
	b := make([]byte, r.maxMsg)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		n, err := r.read(b)
		if err == nil {
			return decodeMsg(b[:n])
		}
		if !errors.Is(err, errRingEmpty) {
			return testMsg{}, err
		}
		if time.Now().After(end) {
			return testMsg{}, unix.ETIMEDOUT
		}
	}
}

func (c *testClient) call(id int32, body []byte) (testMsg, error) {
	if err := c.send(id, body); err != nil {
		return testMsg{}, err
	}
	return c.recv()
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) bool {
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// readIntr and writeIntr retry a system call the Go runtime's preemption signal interrupted
// (EINTR: raw unix.Read/Write do not restart; a 200-client test met it under CI's load).
func readIntr(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func writeIntr(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Write(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}
