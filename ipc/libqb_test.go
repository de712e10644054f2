package ipc

import (
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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
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
	bin := buildLibqbClient(t)
	svc := newEchoService()
	s, name := startServer(t, Options{}, svc)
	out, err := exec.Command(bin, name, "echo", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := `connected max 1048576
resp id 1 size 31 err 1 ping 0
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
}

func TestLibqbClientFlowControl(t *testing.T) {
	bin := buildLibqbClient(t)
	_, name := startServer(t, Options{}, newEchoService())
	out, err := exec.Command(bin, name, "flow").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "send under flow control: EAGAIN") {
		t.Fatalf("libqb client printed:\n%s", out)
	}
}

// TestLibqbClientAccess runs the libqb client as user nobody: refused with EACCES unless the
// uidgid rule allows it, and then served (the control file is chowned to it).
func TestLibqbClientAccess(t *testing.T) {
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
}
