package interop

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Bad libqb clients against a gototem daemon in a ring with a corosync node (issue 13): a
// client that sends garbage, one that sends a request over max_msg_size, one that dies in the
// middle of a call, 200 connecting at once, a non-root user not in uidgid. The client side
// is this test binary again, run inside the gototem node's namespace (abstract sockets are per
// network namespace) with badClientEnv naming the misbehaviour; it speaks libqb's socket-mode
// handshake itself so that it can break the protocol where libqb's own client never would.

const badClientEnv = "GOTOTEM_INTEROP_BADCLIENT"

func TestMain(m *testing.M) {
	if what := os.Getenv(badClientEnv); what != "" {
		if err := badClient(what); err != nil {
			fmt.Println("badclient:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// qbConn is the client end of one libqb socket-mode connection.
type qbConn struct {
	setup, req int
	maxMsg     uint32
}

func qbAbstract(name string) *unix.RawSockaddrUnix {
	a := &unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	for i := 0; i < len(name) && i < len(a.Path)-1; i++ {
		a.Path[i+1] = int8(name[i])
	}
	return a
}

func qbSockaddr(trap uintptr, fd int, a *unix.RawSockaddrUnix) error {
	if _, _, e := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(a)), unsafe.Sizeof(*a)); e != 0 {
		return e
	}
	return nil
}

// qbDial is qb_ipcc_connect in socket mode: the 24-byte setup request on the service's
// abstract stream socket, the 12328-byte response naming the request socket, and a datagram
// socket of our own bound to <response>-response and connected to <response>-request.
func qbDial(service string, maxMsg uint32) (*qbConn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := qbSockaddr(unix.SYS_CONNECT, fd, qbAbstract(service)); err != nil {
		unix.Close(fd)
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:], 0xffffffff) // QB_IPC_MSG_AUTHENTICATE
	binary.LittleEndian.PutUint32(b[8:], 24)
	binary.LittleEndian.PutUint32(b[16:], maxMsg)
	if _, err := unix.Write(fd, b); err != nil {
		unix.Close(fd)
		return nil, err
	}
	rb := make([]byte, 12328)
	for got := 0; got < len(rb); {
		n, err := unix.Read(fd, rb[got:])
		if err != nil || n == 0 {
			unix.Close(fd)
			return nil, fmt.Errorf("setup response: %d bytes, %v", got, err)
		}
		got += n
	}
	le := binary.LittleEndian
	if e := int32(le.Uint32(rb[16:])); e != 0 {
		unix.Close(fd)
		return nil, unix.Errno(-e)
	}
	if t := le.Uint32(rb[24:]); t != 0 {
		// This client speaks socket mode only (QB_IPC_SOCKET); a server that chose shared
		// memory needs its ring buffers instead.
		unix.Close(fd)
		return nil, fmt.Errorf("the server chose connection type %d, not socket mode", t)
	}
	cstr := func(b []byte) string { s, _, _ := strings.Cut(string(b), "\x00"); return s }
	resp := cstr(rb[40+4096 : 40+2*4096])
	c := &qbConn{setup: fd, maxMsg: le.Uint32(rb[28:])}
	if c.req, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
		c.close()
		return nil, err
	}
	if err := qbSockaddr(unix.SYS_BIND, c.req, qbAbstract(resp+"-response")); err != nil {
		c.close()
		return nil, err
	}
	if err := qbSockaddr(unix.SYS_CONNECT, c.req, qbAbstract(resp+"-request")); err != nil {
		c.close()
		return nil, err
	}
	_ = unix.SetsockoptTimeval(c.req, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return c, nil
}

func (c *qbConn) close() {
	for _, fd := range []int{c.setup, c.req} {
		if fd > 0 {
			unix.Close(fd)
		}
	}
}

// disconnected waits for the server to close the setup socket (how a libqb client learns it
// was dropped).
func (c *qbConn) disconnected() bool {
	b := make([]byte, 64)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		n, err := unix.Read(c.setup, b)
		if n == 0 && err == nil {
			return true
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return true
		}
	}
	return false
}

// badClient runs one misbehaviour against the local daemon and reports what it saw.
func badClient(what string) error {
	switch what {
	case "garbage", "oversized":
		// A small max_msg_size (the server takes the smaller of the two) keeps the oversized
		// datagram within the socket's send buffer.
		c, err := qbDial("cmap", 8192)
		if err != nil {
			return err
		}
		defer c.close()
		m := make([]byte, 64)
		binary.LittleEndian.PutUint32(m[8:], 9999) // the size field disagrees with the datagram
		if what == "oversized" {
			m = make([]byte, c.maxMsg+4096)
			binary.LittleEndian.PutUint32(m[8:], uint32(len(m)))
		}
		if _, err := unix.Write(c.req, m); err != nil {
			return err
		}
		if !c.disconnected() {
			return fmt.Errorf("%s: still connected after 5 s", what)
		}
		fmt.Println("disconnected")
	case "diemidcall":
		c, err := qbDial("cfg", 1<<20)
		if err != nil {
			return err
		}
		// corosync-cfgtool -R's request (MESSAGE_REQ_CFG_RELOAD_CONFIG, 7): the daemon holds
		// the call until its RELOAD_CONFIG came back through totem, and the process is gone
		// by then.
		m := make([]byte, 16)
		binary.LittleEndian.PutUint32(m[0:], 7)
		binary.LittleEndian.PutUint32(m[8:], uint32(len(m)))
		if _, err := unix.Write(c.req, m); err != nil {
			return err
		}
		// Dead from the daemon's side: its sockets closed, as the kernel closes a dying
		// process's descriptors, then the exit_group system call itself (os.Exit in a -race
		// binary first sleeps a second, the race detector's atexit_sleep_ms). The closes come
		// first because exit_group tears the address space down before the descriptors, and a
		// daemon at SCHED_RR (system.sched_rr) answered within that time in every attempt.
		unix.Close(c.req)
		unix.Close(c.setup)
		unix.Exit(0)
	case "many":
		const n = 200
		var wg sync.WaitGroup
		var mu sync.Mutex
		conns, fails := []*qbConn{}, map[string]int{}
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := qbDial("cmap", 1<<20)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fails[err.Error()]++
					return
				}
				conns = append(conns, c)
			}()
		}
		wg.Wait()
		fmt.Printf("connected %d refused %v\n", len(conns), fails)
		for _, c := range conns {
			c.close()
		}
		if len(conns) != n {
			return fmt.Errorf("%d of %d connected: %v", len(conns), n, fails)
		}
	default:
		return fmt.Errorf("unknown misbehaviour %q", what)
	}
	return nil
}

// stat reads one stats map counter of node n with the real corosync-cmapctl.
func stat(t *testing.T, n *Node, key string) uint64 {
	t.Helper()
	out, err := n.Tool(context.Background(), "corosync-cmapctl", "-m", "stats", key)
	if err != nil {
		t.Fatalf("node %d corosync-cmapctl -m stats %s: %v: %s", n.ID, key, err, out)
	}
	_, v, ok := strings.Cut(strings.TrimSpace(string(out)), " = ")
	x, perr := strconv.ParseUint(v, 10, 64)
	if !ok || perr != nil {
		t.Fatalf("node %d stats %s: %q", n.ID, key, out)
	}
	return x
}

// Each bad client is refused or cut off and counted in the stats map (corosync-cmapctl -m
// stats); the daemon stays up, its ring with the corosync node never changes, and a good client
// is served afterwards.
//
// The bad client is a raw libqb client of the test's own that speaks socket mode, so the
// gototem node is configured for it (system.qb_ipc_type: socket); the shared-memory mode's
// hostile clients (truncated rings, SIGKILL mid-call) are in package ipc's tests.
func TestIPCBadClientsGototem(t *testing.T) {
	c := mixedClusterWith(t, Options{Engines: []Engine{Corosync, Gototem}, Transport: "udpu", SystemExtra: []string{"qb_ipc_type: socket"}})
	r := formRing(t, c)
	ctx := context.Background()
	ours := c.Node(2)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(what string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := c.Lab().Command(cctx, ours.ID, self, "-test.run=^$")
		cmd.Env = append(os.Environ(), badClientEnv+"="+what)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bad client %s: %v\n%s", what, err, out)
		}
		return string(out)
	}
	counters := []string{"invalid_request", "oversized_request", "died_in_call", "write_failed", "refused_access", "closed"}
	before := map[string]uint64{}
	for _, k := range counters {
		before[k] = stat(t, ours, "stats.ipcs.global."+k)
	}
	run("garbage")
	run("oversized")
	// A death counts as "in the call" only when the process is gone before the daemon has
	// answered: the -R it dies in waits for a totem round trip, which a loaded machine can let
	// the exit lose. Each attempt is a real mid-call death; up to five are made until the daemon
	// counted one (died_in_call, or write_failed for an answer to a dead socket).
	for attempt := 1; ; attempt++ {
		run("diemidcall")
		err := Poll(ctx, 2*time.Second, 50*time.Millisecond, func() (bool, string) {
			d := stat(t, ours, "stats.ipcs.global.died_in_call") - before["died_in_call"] +
				stat(t, ours, "stats.ipcs.global.write_failed") - before["write_failed"]
			return d >= 1, fmt.Sprintf("died_in_call + write_failed grew by %d", d)
		}, nil)
		if err == nil {
			t.Logf("a client killed in the middle of a call was counted at attempt %d", attempt)
			break
		}
		if attempt == 5 {
			t.Fatalf("five clients killed in the middle of -R, none counted: %v", err)
		}
	}
	t.Logf("200 at once: %s", strings.TrimSpace(run("many")))
	nobody := []string{"--reuid=65534", "--regid=65534", "--clear-groups", "corosync-cmapctl", "-g", "totem.cluster_name"}
	if out, err := ours.Tool(ctx, "setpriv", nobody...); err == nil || !strings.Contains(string(out), "CS_ERR_ACCESS") && !strings.Contains(string(out), "Failed to initialize") {
		t.Errorf("a non-root user not in uidgid was served: %v: %s", err, out)
	}
	delta := func(k string) uint64 { return stat(t, ours, "stats.ipcs.global."+k) - before[k] }
	if err := Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		d := map[string]uint64{}
		for _, k := range counters {
			d[k] = delta(k)
		}
		ok := d["invalid_request"] == 1 && d["oversized_request"] == 1 && d["died_in_call"]+d["write_failed"] >= 1 &&
			d["refused_access"] == 1 && d["closed"] >= 203
		return ok, fmt.Sprintf("counter deltas %v", d)
	}, nil); err != nil {
		t.Fatal(err)
	}
	// The daemon is up, its clients are gone, and the ring never noticed.
	if !ours.Running() {
		t.Fatal("the gototem daemon died")
	}
	if got, err := c.WaitRing(ctx, []int{1, 2}, []int{1, 2}, 5*time.Second); err != nil || got != r {
		t.Fatalf("ring after the bad clients: %v (%v), want %v unchanged", got, err, r)
	}
	if n := stat(t, ours, "stats.ipcs.global.active"); n > 1 {
		t.Errorf("%d IPC connections still active", n)
	}
	if out, err := ours.Tool(ctx, "corosync-cmapctl", "-g", "totem.cluster_name"); err != nil {
		t.Fatalf("a good client after the bad ones: %v: %s", err, out)
	}
}
