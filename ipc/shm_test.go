package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"time"

	"golang.org/x/sys/unix"
	"path/filepath"
	"sync"
	"testing"
)

// ringPair makes a ring as the server does and maps it again as a client does.
func ringPair(t *testing.T, maxMsg uint32) (server, client *ring) {
	t.Helper()
	name := filepath.Join(shmDir(t), "qb-request-test")
	s, err := createRing(name, maxMsg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.destroy)
	c, err := openRing(name, maxMsg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.unmap)
	return s, c
}

// TestRingReadWaitsForPost: a chunk committed but not yet posted is not taken. libqb's writer
// commits, then posts; a reader that took the chunk in between would leave the post counting
// a chunk that is gone, and with the pointers equal the writer would take the ring for full
// forever (a libcpg flood stalled that way on CS_ERR_TRY_AGAIN).
func TestRingReadWaitsForPost(t *testing.T) {
	srv, cli := ringPair(t, 8192)
	buf := make([]byte, 8192)
	for i := 0; i < 3; i++ {
		msg := []byte(fmt.Sprintf("request %d", i))
		if err := cli.commit(msg, uint32(len(msg)), false); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.read(buf); !errors.Is(err, errRingEmpty) {
			t.Fatalf("read before the post: %v, want errRingEmpty", err)
		}
		cli.semPost()
		n, err := srv.read(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("read after the post: %q %v", buf[:n], err)
		}
		if v := cli.semValue(); v != 0 {
			t.Fatalf("semaphore %d after the read, want 0", v)
		}
		w, rd := *cli.u32(rbOffWritePt), *cli.u32(rbOffReadPt)
		if free := cli.spaceFree(w, rd); free != cli.words*4 {
			t.Fatalf("empty ring has %d bytes free, want %d", free, cli.words*4)
		}
	}
	// A post without a chunk (a broken client) is given back, not consumed.
	cli.semPost()
	if _, err := srv.read(buf); !errors.Is(err, errRingEmpty) || cli.semValue() != 1 {
		t.Fatalf("post without a chunk: %v, semaphore %d", err, cli.semValue())
	}
}

// TestRingRandomSizes writes and reads chunks of random sizes (unaligned ones included)
// through a small ring, many times round, with the reader lagging by a random number of
// chunks; every chunk comes back intact and in order, and a full ring says so. Seed printed.
func TestRingRandomSizes(t *testing.T) {
	const seed = 20261203
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	srv, cli := ringPair(t, 4096) // an 8 KiB ring: 4096 + margin rounded to pages
	buf := make([]byte, 4096)
	var queue [][]byte
	sent, got, full := 0, 0, 0
	for sent < 5000 {
		msg := make([]byte, 1+rng.Intn(1500))
		rng.Read(msg)
		err := cli.write(msg)
		switch {
		case errors.Is(err, errRingFull):
			full++
		case err != nil:
			t.Fatal(err)
		default:
			queue = append(queue, msg)
			sent++
		}
		for k := rng.Intn(3); k > 0 || errors.Is(err, errRingFull); k-- {
			n, rerr := srv.read(buf)
			if errors.Is(rerr, errRingEmpty) {
				break
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(queue) == 0 || !bytes.Equal(buf[:n], queue[0]) {
				t.Fatalf("chunk %d: got %d bytes, want %d", got, n, len(queue[0]))
			}
			queue = queue[1:]
			got++
			err = nil
		}
	}
	if full == 0 {
		t.Fatal("the ring never filled: the test does not reach the wrap under pressure")
	}
	t.Logf("%d chunks, %d full-ring refusals", sent, full)
}

// burstService sends burst events from Connect, before the connection's writer runs.
type burstService struct {
	*echoService
	burst int
}

func (b burstService) Connect(c *Conn) error {
	for i := 0; i < b.burst; i++ {
		if err := c.SendEvent(testEventID, 1, []byte(fmt.Sprint(i))); err != nil {
			return err
		}
	}
	return b.echoService.Connect(c)
}

// TestEventNotificationsBatched: events written into the ring while the writer has not run
// yet are announced by one write of as many bytes (libqb's client reads one byte per event),
// not by one write each; the client then finds exactly one byte per event, none more.
func TestEventNotificationsBatched(t *testing.T) {
	const burst = 100
	s, name := startServer(t, Options{}, burstService{newEchoService(), burst})
	c, err := dialTest(name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for i := 0; i < burst; i++ {
		ev, err := c.recvEvent()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if string(ev.body) != fmt.Sprint(i) {
			t.Fatalf("event %d: %q", i, ev.body)
		}
	}
	// One more echo: its event comes with its own byte, and nothing is left over.
	if _, err := c.call(idEcho, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.recvEvent(); err != nil || string(ev.body) != "last" {
		t.Fatalf("last event %+v %v", ev, err)
	}
	time.Sleep(50 * time.Millisecond)
	if n, _, err := unix.Recvfrom(c.setup, make([]byte, 16), unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Fatalf("stray notification bytes: %d %v", n, err)
	}
	conns := s.Conns()
	if len(conns) != 1 {
		t.Fatalf("%d conns", len(conns))
	}
	if w := conns[0].notifyWrites.Load(); w != 2 {
		t.Fatalf("%d notification writes for %d events then 1, want 2", w, burst)
	}
	if st := conns[0].Stats(); st.Events != burst+1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRequestBacklog: the requests a client queued in its request ring behind a call the
// service is still in are counted in bytes as the ring holds them (an 8-byte chunk header and
// the data padded to a word), and the count falls to zero once the server has read them.
func TestRequestBacklog(t *testing.T) {
	svc := newEchoService()
	s, name := startServer(t, Options{}, svc)
	c, err := dialTest(name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.send(idBlock, nil); err != nil {
		t.Fatal(err)
	}
	<-svc.blocked
	var release sync.Once
	defer release.Do(func() { close(svc.release) }) // a failure must not leave the call blocked
	conns := s.Conns()
	if len(conns) != 1 {
		t.Fatalf("%d conns", len(conns))
	}
	sc := conns[0]
	if n, ok := sc.RequestBacklog(); !ok || n != 0 {
		t.Fatalf("backlog before: %d %v", n, ok)
	}
	want := 0
	for _, size := range []int{0, 5, 1000} {
		if err := c.send(idNoAnswer, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		want += 8 + (RequestHeaderSize+size+3)/4*4
	}
	if n, ok := sc.RequestBacklog(); !ok || n != want {
		t.Fatalf("backlog of three requests: %d %v, want %d", n, ok, want)
	}
	release.Do(func() { close(svc.release) })
	if !waitFor(func() bool { n, _ := sc.RequestBacklog(); return n == 0 }) {
		n, _ := sc.RequestBacklog()
		t.Fatalf("backlog after the reads: %d", n)
	}
}
