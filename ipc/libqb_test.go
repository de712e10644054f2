package ipc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// libqbClient is a client built on the real libqb (Debian's libqb-dev), so the server is
// checked against the library Pacemaker and corosync's tools use, not only against
// testClient, which was written from the same reading of libqb as the server.
const libqbClient = `
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <qb/qbipcc.h>

static ssize_t call(qb_ipcc_connection_t *c, void *m, size_t len, void *r, size_t rlen) {
	struct iovec iov = { m, len };
	return qb_ipcc_sendv_recv(c, &iov, 1, r, rlen, 5000);
}

struct msg { struct qb_ipc_request_header hdr; char body[256]; };
struct res { struct qb_ipc_response_header hdr; char body[256]; };

int main(int argc, char **argv) {
	qb_ipcc_connection_t *c = qb_ipcc_connect(argv[1], 1 << 20);
	if (c == NULL) {
		printf("connect: %s\n", strerror(errno));
		return 2;
	}
	printf("connected max %d\n", qb_ipcc_get_buffer_size(c));
	/* Pacemaker's check: the fd it polls must carry the server's credentials. */
	int fd = -1;
	struct ucred cred;
	socklen_t cl = sizeof cred;
	memset(&cred, 0, sizeof cred);
	qb_ipcc_fd_get(c, &fd);
	getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
	printf("poll fd %s\n", cred.pid > 0 ? "has the server's credentials" : "is anonymous");
	if (strcmp(argv[2], "echo") == 0) {
		int n = atoi(argv[3]);
		for (int i = 0; i < n; i++) {
			struct msg m; struct res r, e;
			memset(&m, 0, sizeof m);
			m.hdr.id = 1;
			snprintf(m.body, sizeof m.body, "ping %d", i);
			m.hdr.size = sizeof m.hdr + strlen(m.body) + 1;
			ssize_t rc = call(c, &m, m.hdr.size, &r, sizeof r);
			if (rc < 0) { printf("send_recv: %zd\n", rc); return 3; }
			printf("resp id %d size %d err %d %s\n", r.hdr.id, r.hdr.size, r.hdr.error, r.body);
			rc = qb_ipcc_event_recv(c, &e, sizeof e, 5000);
			if (rc < 0) { printf("event_recv: %zd\n", rc); return 4; }
			printf("event id %d size %d %s\n", e.hdr.id, e.hdr.size, e.body);
		}
	} else if (strcmp(argv[2], "events") == 0) {
		/* One request makes the server send n events at once, more than the event ring
		   holds: they come through qb_ipcc_event_recv in order, each with its byte (the
		   call polls the fd before it looks at the ring), and no byte is left over. */
		int n = atoi(argv[3]);
		struct msg m; struct res r, e;
		memset(&m, 0, sizeof m);
		m.hdr.id = 4;
		m.hdr.size = sizeof m.hdr + 4;
		memcpy(m.body, &n, 4);
		ssize_t rc = call(c, &m, m.hdr.size, &r, sizeof r);
		if (rc < 0) { printf("send_recv: %zd\n", rc); return 3; }
		for (int i = 0; i < n; i++) {
			char want[16];
			int wl = snprintf(want, sizeof want, "%d", i);
			rc = qb_ipcc_event_recv(c, &e, sizeof e, 5000);
			if (rc < 0) { printf("event %d: %zd\n", i, rc); return 4; }
			if (rc != (ssize_t)sizeof e.hdr + wl || memcmp(e.body, want, wl) != 0) {
				printf("event %d: %zd bytes, %.*s\n", i, rc, (int)(rc - sizeof e.hdr), e.body);
				return 5;
			}
		}
		struct timespec pause = { 0, 50000000 };
		nanosleep(&pause, NULL);
		struct pollfd p = { fd, POLLIN, 0 };
		printf("%d events in order, stray notification: %s\n", n, poll(&p, 1, 0) > 0 ? "yes" : "no");
	} else if (strcmp(argv[2], "slow") == 0) {
		/* The server answers 200 ms later: the client is asleep on the response
		   semaphore by then and only the server's futex wake ends that sleep early. */
		struct msg m; struct res r;
		struct timespec t0, t1;
		memset(&m, 0, sizeof m);
		m.hdr.id = 6;
		m.hdr.size = sizeof m.hdr;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ssize_t rc = call(c, &m, m.hdr.size, &r, sizeof r);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		printf("slow call: %zd, %s\n", rc, ms < 1000 ? "woken" : "not woken");
	} else if (strcmp(argv[2], "flow") == 0) {
		struct msg m; struct res r;
		memset(&m, 0, sizeof m);
		m.hdr.id = 3;
		m.hdr.size = sizeof m.hdr;
		ssize_t rc = call(c, &m, m.hdr.size, &r, sizeof r);
		printf("flow on: %zd\n", rc);
		m.hdr.id = 1;
		rc = qb_ipcc_send(c, &m, m.hdr.size);
		printf("send under flow control: %s\n", rc == -EAGAIN ? "EAGAIN" : "sent");
	}
	qb_ipcc_disconnect(c);
	printf("done\n");
	return 0;
}
`

// buildLibqbClient compiles libqbClient; under CI a missing compiler or libqb is a failure.
func buildLibqbClient(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err == nil {
		_, err = os.Stat("/usr/include/qb/qbipcc.h")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("gcc and libqb-dev are needed: %v", err)
		}
		t.Skipf("gcc and libqb-dev are needed: %v", err)
	}
	// Not t.TempDir: its parent is 0700 and the access test runs the client as nobody.
	dir, err := os.MkdirTemp("", "gtipc-qbclient")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := filepath.Join(dir, "qbclient.c")
	bin := filepath.Join(dir, "qbclient")
	if err := os.WriteFile(src, []byte(libqbClient), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-O1", "-o", bin, src, "-lqb").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	os.Chmod(dir, 0o755)
	return bin
}

func TestLibqbClientEcho(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		bin := buildLibqbClient(t)
		svc := newEchoService()
		s, name := startServer(t, Options{}, svc)
		out, err := exec.Command(bin, name, "echo", "3").CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		fd := "poll fd has the server's credentials\n"
		if socketMode(t) {
			fd = "poll fd is anonymous\n"
		}
		want := `connected max 1048576
` + fd + `resp id 1 size 31 err 1 ping 0
event id 9 size 31 ping 0
resp id 1 size 31 err 1 ping 1
event id 9 size 31 ping 1
resp id 1 size 31 err 1 ping 2
event id 9 size 31 ping 2
done
`
		if string(out) != want {
			t.Fatalf("libqb client printed:\n%s\nwant:\n%s", out, want)
		}
		if !waitFor(func() bool { return s.Stats().Active == 0 && s.Stats().Closed == 1 }) {
			t.Fatalf("disconnect not seen: %+v", s.Stats())
		}
	})
}

func TestLibqbClientFlowControl(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		bin := buildLibqbClient(t)
		_, name := startServer(t, Options{}, newEchoService())
		out, err := exec.Command(bin, name, "flow").CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(string(out), "send under flow control: EAGAIN") {
			t.Fatalf("libqb client printed:\n%s", out)
		}
	})
}

// TestLibqbClientAccess runs the libqb client as user nobody: refused with EACCES unless the
// uidgid rule allows it, and then served (the control file is chowned to it).
func TestLibqbClientAccess(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		if os.Geteuid() != 0 {
			if os.Getenv("CI") == "true" {
				t.Fatal("needs root to run a client as another user")
			}
			t.Skip("needs root to run a client as another user")
		}
		bin := buildLibqbClient(t)
		const nobody = 65534
		var allow atomic.Bool
		s, name := startServer(t, Options{Allow: func(uid, gid uint32) bool { return allow.Load() && uid == nobody }}, newEchoService())
		run := func() string {
			cmd := exec.Command(bin, name, "echo", "1")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			out, _ := cmd.CombinedOutput()
			return string(out)
		}
		if out := run(); !strings.Contains(out, "connect: Permission denied") || strings.Contains(out, "connected") {
			t.Fatalf("nobody not in uidgid:\n%s", out)
		}
		if s.Stats().RefusedAccess != 1 {
			t.Fatalf("stats %+v", s.Stats())
		}
		allow.Store(true)
		if out := run(); !strings.Contains(out, "resp id 1 size 31 err 1 ping 0") {
			t.Fatalf("nobody allowed by uidgid:\n%s", out)
		}
	})
}

// TestLibqbClientWrap sends 3000 requests of unaligned sizes through an 8 KiB connection:
// libqb's client writes across the end of its (doubly mapped) request ring and reads across
// the end of the response and event rings many times, where this server splits its copies
// by hand. Every response and event must come back intact and in order.
func TestLibqbClientWrap(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		bin := buildLibqbClient(t)
		_, name := startServer(t, Options{MaxMsgSize: 8 << 10}, newEchoService())
		const n = 3000
		out, err := exec.Command(bin, name, "echo", fmt.Sprint(n)).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != 2*n+3 || lines[0] != "connected max 8192" || lines[len(lines)-1] != "done" {
			t.Fatalf("libqb client printed %d lines, first %q last %q", len(lines), lines[0], lines[len(lines)-1])
		}
		for i := 0; i < n; i++ {
			body := fmt.Sprintf("ping %d", i)
			size := ResponseHeaderSize + len(body) + 1
			if want := fmt.Sprintf("resp id 1 size %d err 1 %s", size, body); lines[2+2*i] != want {
				t.Fatalf("line %d: %q, want %q", 2+2*i, lines[2+2*i], want)
			}
			if want := fmt.Sprintf("event id 9 size %d %s", size, body); lines[3+2*i] != want {
				t.Fatalf("line %d: %q, want %q", 3+2*i, lines[3+2*i], want)
			}
		}
	})
}

// TestLibqbClientEventBurst: 20000 events sent at once to a real libqb client over an 8 KiB
// connection, whose event ring holds a few hundred: the server writes what fits straight
// into the ring, queues the rest, refills the ring as the client drains it, and sends the
// notification bytes a batch at a time; the client gets every event in order, each with
// exactly one byte.
func TestLibqbClientEventBurst(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		bin := buildLibqbClient(t)
		s, name := startServer(t, Options{MaxMsgSize: 8 << 10}, newEchoService())
		const n = 20000
		out, err := exec.Command(bin, name, "events", fmt.Sprint(n)).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want := fmt.Sprintf("%d events in order, stray notification: no\n", n)
		if !strings.Contains(string(out), want) {
			t.Fatalf("libqb client printed:\n%s\nwant %q", out, want)
		}
		// The counter follows each write, so the client may have read the last one first.
		if !waitFor(func() bool { return s.Stats().Events == n }) {
			t.Fatalf("stats %+v", s.Stats())
		}
		if st := s.Stats(); st.EventOverflow != 0 || st.WriteFailed != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestLibqbClientWakeup: a libqb client asleep on its response semaphore (sem_timedwait on a
// process-shared sem_t) is woken by the server's post (a shared FUTEX_WAKE), not by libqb's
// 2 s re-check of the connection (QB_IPC_MAX_WAIT_MS).
func TestLibqbClientWakeup(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		bin := buildLibqbClient(t)
		_, name := startServer(t, Options{}, newEchoService())
		out, err := exec.Command(bin, name, "slow").CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(string(out), "slow call: 24, woken") {
			t.Fatalf("libqb client printed:\n%s", out)
		}
	})
}

// TestLibqbClientKilled kills a real libqb client (SIGKILL) while the service is handling its
// call: the server counts a death in the call, ends the connection and leaves nothing of it
// in ShmDir (in shm mode, the six ring files and their directory).
func TestLibqbClientKilled(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		bin := buildLibqbClient(t)
		s, name := startServer(t, Options{}, newEchoService())
		cmd := exec.Command(bin, name, "slow")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !waitFor(func() bool { return s.Stats().Requests == 1 }) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no request: %+v", s.Stats())
		}
		cmd.Process.Kill()
		cmd.Wait()
		if !waitFor(func() bool { st := s.Stats(); return st.Active == 0 && st.DiedInCall == 1 }) {
			t.Fatalf("death not handled: %+v", s.Stats())
		}
		ents, err := os.ReadDir(s.opts.ShmDir)
		if err != nil || len(ents) != 0 {
			t.Fatalf("left in %s: %v %v", s.opts.ShmDir, ents, err)
		}
	})
}
