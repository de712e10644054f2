package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the gototem binary: with GOTOTEM_AS_MAIN=1
// it runs the command line as gototem would, so the daemon and demo tests start real
// child processes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("GOTOTEM_AS_MAIN") == "1" {
		os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// selfCommand runs this test binary as gototem.
func selfCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "GOTOTEM_AS_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func singleNodeConf(port int, extra string) string {
	return fmt.Sprintf(`totem {
	version: 2
	cluster_name: single
	transport: udpu
	token: %s
	interface {
		linknumber: 0
		mcastport: %d
	}
}
nodelist {
	node {
		ring0_addr: 127.0.0.1
		nodeid: 1
		name: solo
	}
}
quorum {
	provider: corosync_votequorum
}
logging {
	to_stderr: yes
	to_syslog: no
%s}
`, "1000", port, extra)
}

// TestRunErrors: a bad command line or configuration exits non-zero with a message and
// never starts a node.
func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("totem {\n\ttoken: -5\n"), 0o600)
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"run", "-c", filepath.Join(dir, "missing.conf")}, 1, "configuration not usable"},
		{[]string{"run", "-c", bad}, 1, "bad.conf"},
		{[]string{"run", "--log-level", "loud", "-c", bad}, 2, "--log-level must be debug, info or warn"},
		{[]string{"run", "-c", bad, "extra"}, 2, "usage"},
	}
	for _, c := range cases {
		_, errs, code := runCmd(c.args...)
		if code != c.code || !strings.Contains(errs, c.err) {
			t.Errorf("%v: exit %d stderr %q; want %d ~%q", c.args, code, errs, c.code, c.err)
		}
	}
}

// TestRunDaemon runs a real one-node daemon (this binary as gototem run) and drives it
// through its control socket: status, cmap, send/listen, SIGHUP reload, a second daemon
// on the same socket, and SIGTERM → exit 0 with the socket removed.
func TestRunDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	dir, err := os.MkdirTemp("", "gtrun")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	port := 40000 + 2*(os.Getpid()%5000)
	conf := filepath.Join(dir, "corosync.conf")
	os.WriteFile(conf, []byte(singleNodeConf(port, "")), 0o600)
	sock := filepath.Join(dir, "ctl", "gototem.sock")
	var logs bytes.Buffer
	cmd := selfCommand(t, "run", "-c", conf, "--socket", sock, "--state-dir", dir, "--local-addr", "127.0.0.1")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	}()
	// Wait for the one-node ring and votequorum's verdict on it.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := controlCall(sock, "cmap runtime.members.1.status", time.Second)
		q, qerr := controlCall(sock, "quorum", time.Second)
		if err == nil && strings.Contains(out, "= joined") && qerr == nil && strings.Contains(q, "\nNodes:            1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node never joined: %q %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	out, _, code := runCmd("status", "--socket", sock)
	if code != 0 || !strings.HasPrefix(out, "Local node ID 1, transport udpu\nLINK ID 0 \n\taddr\t= 127.0.0.1\n\tstatus:\n\t\tnodeid:          1:\tlocalhost\n") {
		t.Errorf("status: %d %q", code, out)
	}
	out, _, code = runCmd("quorum", "--socket", sock)
	if code != 0 || !strings.Contains(out, "Quorate:          Yes") || !strings.Contains(out, "solo (local)") {
		t.Errorf("quorum: %d %q", code, out)
	}
	// listen -n 2 in a child while this process sends twice.
	lis := selfCommand(t, "listen", "--socket", sock, "-n", "2", "-t", "10", "chat")
	var lout bytes.Buffer
	lis.Stdout, lis.Stderr = &lout, &lout
	if err := lis.Start(); err != nil {
		t.Fatal(err)
	}
	// Send only once the listener is registered, or it would miss the messages.
	for i := 0; ; i++ {
		out, err := controlCall(sock, "ctlstats", time.Second)
		if err == nil && strings.Contains(out, "\nlisteners 1\n") {
			break
		}
		if i > 200 {
			t.Fatalf("listener never registered: %q %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range []string{"first", "second line"} {
		if _, errs, code := runCmd("send", "--socket", sock, "chat", m); code != 0 {
			t.Fatalf("send %q: %d %s", m, code, errs)
		}
	}
	if err := lis.Wait(); err != nil {
		t.Fatalf("listen: %v: %s", err, lout.String())
	}
	if got := lout.String(); !strings.Contains(got, "\"first\"\n") || !strings.Contains(got, "\"second line\"\n") ||
		strings.Index(got, "first") > strings.Index(got, "second") {
		t.Errorf("listen output: %q", got)
	}

	// A second daemon on the same socket refuses to start.
	_, errs, code := runCmd("run", "-c", conf, "--socket", sock, "--state-dir", dir, "--local-addr", "127.0.0.1")
	if code != 1 || !strings.Contains(errs, "another gototem is listening") {
		t.Errorf("second daemon: %d %q", code, errs)
	}

	// SIGHUP: logging is applied (a logfile appears), the token changes at run time, the
	// cluster name keeps its running value and is reported as corosync reports it.
	logfile := filepath.Join(dir, "node.log")
	reloaded := strings.Replace(singleNodeConf(port, fmt.Sprintf("\tto_logfile: yes\n\tlogfile: %s\n", logfile)), "token: 1000", "token: 2000", 1)
	reloaded = strings.Replace(reloaded, "cluster_name: single", "cluster_name: renamed", 1)
	os.WriteFile(conf, []byte(reloaded), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(logfile)
		tok, _ := controlCall(sock, "cmap runtime.config.totem.token", time.Second)
		name, _ := controlCall(sock, "cmap totem.cluster_name", time.Second)
		if strings.Contains(string(data), "Modified entry 'totem.cluster_name' in corosync.conf cannot be changed at run-time") &&
			strings.Contains(string(data), "applied") && strings.Contains(tok, "= 2000") && strings.Contains(name, "= single") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload not applied (token %q, cluster name %q) or not logged to the new logfile: %q", tok, name, data)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop within 15s of SIGTERM")
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("socket file left behind")
	}
	_, errs, code = runCmd("status", "--socket", sock)
	if code != 1 || !strings.Contains(errs, "cannot connect to gototem at "+sock) {
		t.Errorf("status after stop: %d %q", code, errs)
	}
}

// TestDemo runs the README's first command end to end: 3 real child nodes on loopback.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Setenv("GOTOTEM_AS_MAIN", "1")
	out, errs, code := runCmd("demo", "--messages", "5")
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"formed: 1 2 3 (quorate 3/3)", "node 2 killed", ": 1 3 (quorate 2/3) — detected in",
		"rejoined in", "round 2: 15 messages from 3 nodes delivered in one total order", "demo: all checks passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("demo:\n%s", out)
}
