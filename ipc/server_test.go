package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Request ids of the test service.
const (
	idEcho      = 1 // respond with the body, then send it back as an event too
	idBlock     = 2 // block until the test releases it, then respond
	idFlowOn    = 3 // switch flow control on for this connection, then respond
	idEvents    = 4 // send N events (N in the body), respond
	idNoAnswer  = 5 // no response
	idSlow      = 6 // respond after 200 ms
	idWaitGone  = 8 // wait for the connection's DoneContext, then report it on waitGone
	testErrUnk  = 7 // CS_ERR_INVALID_PARAM, for unknown ids as corosync answers
	testEventID = 9
)

type echoService struct {
	mu          sync.Mutex
	connects    int
	disconnects int
	release     chan struct{}
	blocked     chan struct{}
	refuse      error
	lastRespErr atomic.Value
	waitGone    chan error
}

func newEchoService() *echoService {
	return &echoService{release: make(chan struct{}), blocked: make(chan struct{}, 16), waitGone: make(chan error, 1)}
}

func (e *echoService) Connect(c *Conn) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refuse != nil {
		return e.refuse
	}
	e.connects++
	c.SetContext(e.connects)
	return nil
}

func (e *echoService) Disconnect(c *Conn) {
	e.mu.Lock()
	e.disconnects++
	e.mu.Unlock()
}

func (e *echoService) counts() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.connects, e.disconnects
}

func (e *echoService) Request(c *Conn, id int32, msg []byte) {
	body := msg[RequestHeaderSize:]
	switch id {
	case idEcho:
		c.Respond(id, 1, body)
		c.SendEvent(testEventID, 1, body)
	case idBlock:
		e.blocked <- struct{}{}
		<-e.release
		if err := c.Respond(id, 1); err != nil {
			e.lastRespErr.Store(err)
		}
	case idFlowOn:
		c.SetFlowControl(true)
		c.Respond(id, 1)
	case idEvents:
		n := int(binary.LittleEndian.Uint32(body))
		for i := 0; i < n; i++ {
			if c.SendEvent(testEventID, 1, []byte(fmt.Sprint(i))) != nil {
				break
			}
		}
		c.Respond(id, 1)
	case idSlow:
		time.Sleep(200 * time.Millisecond)
		c.Respond(id, 1)
	case idWaitGone:
		e.blocked <- struct{}{}
		select {
		case <-c.DoneContext().Done():
			e.waitGone <- nil
		case <-time.After(10 * time.Second):
			e.waitGone <- errors.New("DoneContext not canceled in 10 s")
		}
	case idNoAnswer:
	default:
		c.Respond(id, testErrUnk)
	}
}

var nameSeq atomic.Int32

// serviceName is unique per test and process, and short: the datagram socket names built on
// it must fit sun_path.
func serviceName(t *testing.T) string {
	return fmt.Sprintf("gtipc%d.%d", os.Getpid(), nameSeq.Add(1))
}

// shmDir is a short private directory in /dev/shm for the connections' control files.
func shmDir(t *testing.T) string {
	d, err := os.MkdirTemp("/dev/shm", "gtipc")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755) // like /dev/shm itself: clients of other users must reach their files
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// bothModes runs a test against the server in shared-memory mode (the default, corosync's)
// and in socket mode; startServer reads the mode from the subtest's name.
func bothModes(t *testing.T, f func(t *testing.T)) {
	t.Run("shm", f)
	t.Run("socket", f)
}

func socketMode(t *testing.T) bool { return strings.HasSuffix(t.Name(), "/socket") }

func startServer(t *testing.T, opts Options, svc Service) (*Server, string) {
	t.Helper()
	opts.SocketMode = socketMode(t)
	if opts.ShmDir == "" {
		opts.ShmDir = shmDir(t)
	}
	s := NewServer(opts)
	name := serviceName(t)
	if err := s.Listen(name, svc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, name
}

// dialOK connects a test client to service name asking for maxMsg (0: the server's
// default), failing the test when the server refuses; the client is closed when the test
// ends.
func dialOK(t *testing.T, name string, maxMsg uint32) *testClient {
	t.Helper()
	c, err := dialTest(name, maxMsg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// stillServes checks that a new client's echo is answered: what the test did to the server
// cost it no more than the connection it was done on.
func stillServes(t *testing.T, name string) {
	t.Helper()
	if _, err := dialOK(t, name, 0).call(idEcho, []byte("still serving")); err != nil {
		t.Fatalf("the server no longer serves: %v", err)
	}
}

// wantFlowControlled checks that c may not send: the server has flow control on for it.
func wantFlowControlled(t *testing.T, c *testClient) {
	t.Helper()
	if err := c.send(idEcho, []byte("x")); !errors.Is(err, errFlowControl) {
		t.Fatalf("send under flow control: %v", err)
	}
}

func TestAbstractAddrPadded(t *testing.T) {
	a, err := abstractAddr("cmap")
	if err != nil {
		t.Fatal(err)
	}
	// libqb binds and connects with the whole sockaddr_un: a name of exactly "\0cmap" would
	// be a different socket.
	want := [sunPathLen]int8{0, 'c', 'm', 'a', 'p'}
	if a.Path != want || unsafe.Sizeof(*a) != 110 {
		t.Fatalf("address %v", a.Path)
	}
	if _, err := abstractAddr(strings.Repeat("x", 108)); err == nil {
		t.Fatal("a name longer than sun_path was accepted")
	}
}

func TestSetupResponseLayout(t *testing.T) {
	r := setupResponse{connType: TypeSocket, maxMsgSize: 12345, connection: 7, request: "/dev/shm/x", response: "/dev/shm/y", event: "/dev/shm/z"}
	b := r.encode()
	if len(b) != 12328 {
		t.Fatalf("setup response is %d bytes, libqb's struct is 12328", len(b))
	}
	le := binary.LittleEndian
	if int32(le.Uint32(b[0:])) != -1 || le.Uint32(b[8:]) != 12328 || le.Uint32(b[28:]) != 12345 || cstring(b[40:]) != "/dev/shm/x" || cstring(b[4136:]) != "/dev/shm/y" || cstring(b[8232:]) != "/dev/shm/z" {
		t.Fatalf("layout wrong: % x", b[:48])
	}
	back, _ := decodeSetupResponse(b)
	if back != r {
		t.Fatalf("round trip %+v != %+v", back, r)
	}
}

func TestEchoRequestResponseEvent(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		svc := newEchoService()
		s, name := startServer(t, Options{}, svc)
		c := dialOK(t, name, 1<<20)
		if c.resp.maxMsgSize != 1<<20 {
			t.Fatalf("max_msg_size %d", c.resp.maxMsgSize)
		}
		for i := 0; i < 20; i++ {
			body := []byte(fmt.Sprintf("ping %d", i))
			r, err := c.call(idEcho, body)
			if err != nil {
				t.Fatal(err)
			}
			if r.id != idEcho || r.err != 1 || int(r.size) != ResponseHeaderSize+len(body) || !bytes.Equal(r.body, body) {
				t.Fatalf("response %+v", r)
			}
			ev, err := c.recvEvent()
			if err != nil {
				t.Fatal(err)
			}
			if ev.id != testEventID || !bytes.Equal(ev.body, body) {
				t.Fatalf("event %+v", ev)
			}
		}
		r, err := c.call(77, nil)
		if err != nil || r.err != testErrUnk {
			t.Fatalf("unknown id: %+v %v", r, err)
		}
		if !c.shm() {
			// The control file counts: 21 requests sent and read (back to 0), 21 responses and 20
			// events sent by the server (the client here does not count down).
			if got := atomic.LoadInt32(c.word(ctlRequest)); got != 0 {
				t.Fatalf("request sent counter %d", got)
			}
			// libqb bumps a counter after the datagram is sent, so the client may read the last
			// response before the server counted it: wait for the count (it flaked under load).
			if !waitFor(func() bool { return atomic.LoadInt32(c.word(ctlResponse)) == 21 }) {
				t.Fatalf("response sent counter %d", atomic.LoadInt32(c.word(ctlResponse)))
			}
			if !waitFor(func() bool { return atomic.LoadInt32(c.word(ctlEvent)) == 20 }) {
				t.Fatalf("event sent counter %d", atomic.LoadInt32(c.word(ctlEvent)))
			}
		}
		st := s.Stats()
		if st.Accepted != 1 || st.Active != 1 || st.Requests != 21 || st.Responses != 21 {
			t.Fatalf("stats %+v", st)
		}
		conns := s.Conns()
		if len(conns) != 1 {
			t.Fatalf("%d conns", len(conns))
		}
		pid, uid, _ := conns[0].Cred()
		if int(pid) != os.Getpid() || int(uid) != os.Geteuid() {
			t.Fatalf("credentials pid %d uid %d", pid, uid)
		}
		dir := conns[0].dir
		c.close()
		if !waitFor(func() bool { return s.Stats().Active == 0 }) {
			t.Fatalf("client close not noticed: %+v", s.Stats())
		}
		if _, d := svc.counts(); d != 1 {
			t.Fatalf("%d disconnects", d)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("connection directory %s left behind: %v", dir, err)
		}
	})
}

func TestMaxMsgSizeBounded(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		_, name := startServer(t, Options{MaxMsgSize: 64 << 10}, newEchoService())
		c := dialOK(t, name, 1<<30)
		if c.resp.maxMsgSize != 64<<10 {
			t.Fatalf("a client asking 1 GiB got max_msg_size %d", c.resp.maxMsgSize)
		}
		c2 := dialOK(t, name, 10)
		if c2.resp.maxMsgSize != 8<<10 {
			t.Fatalf("a client asking 10 bytes got %d", c2.resp.maxMsgSize)
		}
	})
}

func TestAccessRule(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Log("running as root: the refusal path is covered by the libqb test as user nobody")
		}
		var allowed atomic.Bool
		svc := newEchoService()
		s, name := startServer(t, Options{Allow: func(uid, gid uint32) bool { return allowed.Load() }}, svc)
		// Root always passes; the uidgid hook is only asked for others.
		c, err := dialTest(name, 0)
		if os.Geteuid() == 0 || os.Getegid() == 0 {
			if err != nil {
				t.Fatalf("root refused: %v", err)
			}
			c.close()
			return
		}
		if !errors.Is(err, unix.EACCES) || s.Stats().RefusedAccess != 1 {
			t.Fatalf("non-root not in uidgid: %v %+v", err, s.Stats())
		}
		allowed.Store(true)
		dialOK(t, name, 0)
	})
}

func TestServiceRefuses(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		svc := newEchoService()
		svc.refuse = unix.EAGAIN
		s, name := startServer(t, Options{}, svc)
		if _, err := dialTest(name, 0); !errors.Is(err, unix.EAGAIN) {
			t.Fatalf("got %v, want EAGAIN", err)
		}
		if st := s.Stats(); st.RefusedByService != 1 || st.Accepted != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestFlowControl(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		_, name := startServer(t, Options{}, newEchoService())
		c := dialOK(t, name, 0)
		if _, err := c.call(idFlowOn, nil); err != nil {
			t.Fatal(err)
		}
		wantFlowControlled(t, c)
	})
}

func TestServerFlowControlAll(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		s, name := startServer(t, Options{}, newEchoService())
		c := dialOK(t, name, 0)
		s.SetFlowControl(true)
		wantFlowControlled(t, c)
		// A connection made while it is on starts with it on.
		c2 := dialOK(t, name, 0)
		if !waitFor(func() bool { return c2.fcFlag() == 1 }) {
			t.Fatal("new connection not flow-controlled")
		}
		s.SetFlowControl(false)
		if _, err := c.call(idEcho, []byte("y")); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.FlowControl != 2 {
			t.Fatalf("flow control count %d", st.FlowControl)
		}
	})
}

func TestBadClientGarbageRequest(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		svc := newEchoService()
		s, name := startServer(t, Options{}, svc)
		for i, m := range [][]byte{
			{1, 2, 3},        // shorter than a header
			make([]byte, 40), // header says size 0
			append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0}, 1, 2), // size 99, 18 bytes
		} {
			c := dialOK(t, name, 0)
			if err := c.sendRaw(m); err != nil {
				t.Fatal(err)
			}
			if !waitFor(func() bool { return s.Stats().InvalidRequest == uint64(i+1) && s.Stats().Active == 0 }) {
				t.Fatalf("garbage %d: %+v", i, s.Stats())
			}
			c.close()
		}
		stillServes(t, name)
	})
}

func TestBadClientOversized(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		s, name := startServer(t, Options{MaxMsgSize: 16 << 10}, newEchoService())
		c := dialOK(t, name, 16<<10)
		big := make([]byte, 40<<10)
		binary.LittleEndian.PutUint32(big[8:], uint32(len(big)))
		var err2 error
		if c.shm() {
			// A ring cannot hold more than max_msg_size: the chunk header lies instead.
			err2 = c.sendLying(big[:64], uint32(len(big)))
		} else {
			unix.SetsockoptInt(c.req, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
			err2 = c.sendRaw(big)
		}
		if err2 != nil {
			t.Fatal(err2)
		}
		if !waitFor(func() bool { st := s.Stats(); return st.Oversized == 1 && st.Active == 0 }) {
			t.Fatalf("oversized: %+v", s.Stats())
		}
	})
}

func TestBadClientNeverReadsEvents(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		svc := newEchoService()
		s, name := startServer(t, Options{EventQueue: 32}, svc)
		lazy := dialOK(t, name, 0)
		good := dialOK(t, name, 0)
		n := make([]byte, 4)
		binary.LittleEndian.PutUint32(n, 1000)
		// The lazy client asks for 1000 events and reads none: its socket holds a few, the
		// queue 32, then it is cut off. Its response may or may not arrive first.
		lazy.send(idEvents, n)
		if !waitFor(func() bool { return s.Stats().EventOverflow == 1 }) {
			t.Fatalf("no overflow: %+v", s.Stats())
		}
		if !waitFor(func() bool { return s.Stats().Active == 1 }) {
			t.Fatalf("lazy client still connected: %+v", s.Stats())
		}
		if _, err := good.call(idEcho, []byte("still here")); err != nil {
			t.Fatal(err)
		}
	})
}

// dieInCall starts a server of svc, sends request id (one the service blocks in) from a
// client and closes the client while the service is handling it: a client process that dies
// in the middle of a call.
func dieInCall(t *testing.T, svc *echoService, id int32) *Server {
	t.Helper()
	s, name := startServer(t, Options{}, svc)
	c := dialOK(t, name, 0)
	if err := c.send(id, nil); err != nil {
		t.Fatal(err)
	}
	<-svc.blocked
	c.close()
	return s
}

func TestBadClientKilledMidCall(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		svc := newEchoService()
		s := dieInCall(t, svc, idBlock)
		if !waitFor(func() bool { return s.Stats().DiedInCall == 1 }) {
			t.Fatalf("death not noticed: %+v", s.Stats())
		}
		if _, d := svc.counts(); d != 0 {
			t.Fatal("Disconnect called while Request still running")
		}
		close(svc.release)
		if !waitFor(func() bool { _, d := svc.counts(); return d == 1 && s.Stats().Active == 0 }) {
			t.Fatalf("not cleaned up: %+v", s.Stats())
		}
		if err, _ := svc.lastRespErr.Load().(error); !errors.Is(err, ErrClosed) {
			t.Fatalf("Respond to a dead client: %v", err)
		}
	})
}

// TestDoneContextEndsWaits: a service waiting on the client's behalf (cpg's multicast waiting
// for room in the ring) on Conn.DoneContext stops waiting when the client dies in the call.
func TestDoneContextEndsWaits(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		svc := newEchoService()
		s := dieInCall(t, svc, idWaitGone)
		if err := <-svc.waitGone; err != nil {
			t.Fatal(err)
		}
		if !waitFor(func() bool { st := s.Stats(); return st.Active == 0 && st.DiedInCall == 1 }) {
			t.Fatalf("not cleaned up: %+v", s.Stats())
		}
	})
}

func TestBadClientSetup(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		s, name := startServer(t, Options{SetupTimeout: 300 * time.Millisecond}, newEchoService())
		addr, _ := abstractAddr(name)
		dial := func() int {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := connectAbstract(fd, addr); err != nil {
				t.Fatal(err)
			}
			return fd
		}
		// 1: connects and says nothing (times out). 2: half a setup, then closes.
		// 3: a whole message that is not a setup.
		silent := dial()
		defer unix.Close(silent)
		half := dial()
		unix.Write(half, make([]byte, 10))
		unix.Close(half)
		wrong := dial()
		m := make([]byte, setupRequestSize)
		binary.LittleEndian.PutUint32(m[8:], setupRequestSize) // id 0, not -1
		unix.Write(wrong, m)
		defer unix.Close(wrong)
		if !waitFor(func() bool { return s.Stats().SetupFailed == 3 }) {
			t.Fatalf("setup failures: %+v", s.Stats())
		}
		if s.Stats().Accepted != 0 {
			t.Fatal("a bad setup was accepted")
		}
	})
}

func TestManyConnectAtOnce(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		const n, max = 200, 150
		svc := newEchoService()
		s, name := startServer(t, Options{MaxConnections: max}, svc)
		var wg sync.WaitGroup
		var ok, emfile, other atomic.Int32
		clients := make(chan *testClient, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dialTest(name, 0)
				switch {
				case err == nil:
					ok.Add(1)
					clients <- c
				case errors.Is(err, unix.EMFILE):
					emfile.Add(1)
				default:
					other.Add(1)
					t.Log(err)
				}
			}()
		}
		wg.Wait()
		close(clients)
		if ok.Load() != max || emfile.Load() != n-max || other.Load() != 0 {
			t.Fatalf("ok %d, EMFILE %d, other %d", ok.Load(), emfile.Load(), other.Load())
		}
		if st := s.Stats(); st.RefusedLimit != n-max || st.Active != max {
			t.Fatalf("stats %+v", st)
		}
		for c := range clients {
			if _, err := c.call(idEcho, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			c.close()
		}
		if !waitFor(func() bool { return s.Stats().Active == 0 }) {
			t.Fatalf("stats %+v", s.Stats())
		}
		// Slots come back: a new client gets in.
		dialOK(t, name, 0)
	})
}

func TestCloseDisconnectsClients(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		svc := newEchoService()
		s := NewServer(Options{ShmDir: shmDir(t), SocketMode: socketMode(t)})
		name := serviceName(t)
		if err := s.Listen(name, svc); err != nil {
			t.Fatal(err)
		}
		if err := s.Listen(name, svc); err == nil {
			t.Fatal("second Listen on one name accepted")
		}
		c := dialOK(t, name, 0)
		s.Close()
		if _, d := svc.counts(); d != 1 {
			t.Fatalf("%d disconnects after Close", d)
		}
		b := make([]byte, 10)
		if n, _ := readIntr(c.setup, b); n != 0 {
			t.Fatal("setup socket still open")
		}
		if _, err := dialTest(name, 0); err == nil {
			t.Fatal("service still listening after Close")
		}
	})
}

// TestBadClientTruncatesRing: a client owns its ring files and may truncate them under the
// server; the server's next access faults (SIGBUS on a page past the end). That ends the
// connection, is counted, and the daemon goes on serving.
func TestBadClientTruncatesRing(t *testing.T) {
	for _, which := range []string{"response", "request"} {
		t.Run(which, func(t *testing.T) {
			s, name := startServer(t, Options{}, newEchoService())
			c := dialOK(t, name, 0)
			if !c.shm() {
				t.Fatal("the default connection type is not shared memory")
			}
			if _, err := c.call(idEcho, []byte("before")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.recvEvent(); err != nil {
				t.Fatal(err)
			}
			if which == "response" {
				if err := os.Truncate(c.rs.dataPath, 0); err != nil {
					t.Fatal(err)
				}
				if err := c.send(idEcho, []byte("after")); err != nil {
					t.Fatal(err)
				}
				if !waitFor(func() bool { st := s.Stats(); return st.Active == 0 && st.WriteFailed == 1 }) {
					t.Fatalf("truncated response ring: %+v", s.Stats())
				}
			} else {
				// The request is committed, then the files vanish under the server's read.
				if err := c.rq.write(append(make([]byte, 8), 24, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(c.rq.dataPath, 0); err != nil {
					t.Fatal(err)
				}
				writeIntr(c.setup, []byte{1})
				if !waitFor(func() bool { st := s.Stats(); return st.Active == 0 && st.InvalidRequest == 1 }) {
					t.Fatalf("truncated request ring: %+v", s.Stats())
				}
			}
			stillServes(t, name)
		})
	}
}
