package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/totem"
)

// TestParseRequest proves every request form parses and every malformed one is refused
// with a message naming the problem.
func TestParseRequest(t *testing.T) {
	long := strings.Repeat("x", maxPayload+1)
	cases := []struct {
		line    string
		want    request // compared field by field where set
		wantErr string
	}{
		{line: "status", want: request{verb: "status"}},
		{line: "status -b\r", want: request{verb: "status", brief: true}},
		{line: "quorum -l", want: request{verb: "quorum", list: true}},
		{line: "cmap runtime.members totem.", want: request{verb: "cmap", prefixes: []string{"runtime.members", "totem."}}},
		{line: "send g hello  world ", want: request{verb: "send", group: "g", payload: []byte("hello  world ")}},
		{line: "send g --safe x", want: request{verb: "send", group: "g", safe: true, payload: []byte("x")}},
		{line: "send g --safer", want: request{verb: "send", group: "g", payload: []byte("--safer")}},
		{line: "sendhex g 00ff0a", want: request{verb: "sendhex", group: "g", payload: []byte{0, 0xff, 0x0a}}},
		{line: "sendhex g --safe 41", want: request{verb: "sendhex", group: "g", safe: true, payload: []byte("A")}},
		{line: "listen grp", want: request{verb: "listen", group: "grp"}},
		{line: "listen --rings grp", want: request{verb: "listen", group: "grp", rings: true}},
		{line: "members grp", want: request{verb: "members", group: "grp"}},
		{line: "setexpected 5", want: request{verb: "setexpected", value: 5}},
		{line: "setvotes 3 0", want: request{verb: "setvotes", nodeid: 3, value: 0}},
		{line: "ping", want: request{verb: "ping"}},
		{line: "", wantErr: "empty request"},
		{line: "   ", wantErr: "empty request"},
		{line: "frobnicate", wantErr: `unknown request "frobnicate"`},
		{line: "\x00\xff\xfe", wantErr: "unknown request"},
		{line: "status -x", wantErr: `status: unknown argument "-x"`},
		{line: "quorum -v", wantErr: "quorum: unknown argument"},
		{line: "send", wantErr: "send: missing group name"},
		{line: "send g", wantErr: "send: missing message"},
		{line: "send g ", wantErr: "send: empty message"},
		{line: "send g --safe", wantErr: "missing message after --safe"},
		{line: "send " + strings.Repeat("g", 129) + " x", wantErr: "group name longer than 128"},
		{line: "send g " + long, wantErr: "payload too large"},
		{line: "sendhex g zz", wantErr: "payload is not hex"},
		{line: "sendhex g", wantErr: "want sendhex GROUP"},
		{line: "listen", wantErr: "listen: want listen GROUP"},
		{line: "listen a b", wantErr: "listen: want listen GROUP"},
		{line: "setexpected 0", wantErr: "try a positive number"},
		{line: "setexpected -1", wantErr: "try a positive number"},
		{line: "setexpected 4294967296", wantErr: "try a positive number"},
		{line: "setvotes 0 1", wantErr: "nodeid was not valid"},
		{line: "setvotes 1 x", wantErr: "votes value was not valid"},
		{line: "ping extra", wantErr: "ping: takes no arguments"},
		{line: strings.Repeat("a", maxRequestLine+1), wantErr: "request too long"},
	}
	for _, c := range cases {
		got, err := parseRequest(c.line)
		name := truncate(fmt.Sprintf("%q", c.line), 40)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v, want one containing %q", name, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: unexpected error %v", name, err)
			continue
		}
		if got.verb != c.want.verb || got.brief != c.want.brief || got.list != c.want.list || got.group != c.want.group ||
			got.safe != c.want.safe || !bytes.Equal(got.payload, c.want.payload) || got.nodeid != c.want.nodeid ||
			got.value != c.want.value || strings.Join(got.prefixes, ",") != strings.Join(c.want.prefixes, ",") {
			t.Errorf("%s: parsed %+v, want %+v", name, got, c.want)
		}
	}
}

// fakeNode is a nodeAPI without a ring: a group's Send loops the message back through the
// handler on another goroutine, as the node's dispatch goroutine would.
type fakeNode struct {
	status totem.Status
	keys   []config.KeyValue

	mu       sync.Mutex
	handlers map[string]totem.GroupHandler
	expected uint32
	votes    map[totem.NodeID]uint32
	sendErr  error
	noEcho   bool // sends are accepted but never delivered
}

func newFakeNode() *fakeNode {
	return &fakeNode{status: threeNodes(), handlers: map[string]totem.GroupHandler{}, votes: map[totem.NodeID]uint32{},
		keys: []config.KeyValue{
			{Key: "runtime.members.1.status", Type: config.TypeStr, Value: "joined"},
			{Key: "runtime.members.3.status", Type: config.TypeStr, Value: "joined"},
			{Key: "totem.token", Type: config.TypeU32, Value: "1000"},
		}}
}

func (f *fakeNode) Status() totem.Status        { return f.status }
func (f *fakeNode) CmapKeys() []config.KeyValue { return f.keys }
func (f *fakeNode) Join(group string, h totem.GroupHandler) (groupAPI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.handlers[group]; ok {
		return nil, totem.ErrGroupJoined
	}
	f.handlers[group] = h
	return &fakeGroup{n: f, name: group}, nil
}
func (f *fakeNode) SetExpectedVotes(v uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v > 100 {
		return errors.New("CS_ERR_INVALID_PARAM")
	}
	f.expected = v
	return nil
}
func (f *fakeNode) SetVotes(id totem.NodeID, v uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.votes[id] = v
	return nil
}
func (f *fakeNode) CancelWaitForAll() error { return nil }

type fakeGroup struct {
	n    *fakeNode
	name string
}

func (g *fakeGroup) Send(ctx context.Context, p []byte, gu totem.Guarantee) error {
	g.n.mu.Lock()
	h, err, noEcho := g.n.handlers[g.name], g.n.sendErr, g.n.noEcho
	g.n.mu.Unlock()
	if err != nil {
		return err
	}
	if !noEcho {
		msg := totem.Message{Group: g.name, Sender: totem.Process{NodeID: g.n.status.NodeID, PID: 42}, Payload: append([]byte(nil), p...)}
		go h.Deliver(msg)
	}
	return nil
}

func (g *fakeGroup) Members() []totem.Process {
	return []totem.Process{{NodeID: 1, PID: 42}, {NodeID: 3, PID: 7}}
}

// startServer serves a fake node on a socket in a temporary directory.
func startServer(t *testing.T, node nodeAPI) (*controlServer, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "gtctl")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sub", "gototem.sock")
	ln, err := listenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := newControlServer(node, nil)
	srv.now = func() time.Time { return time.Date(2024, 3, 6, 10, 15, 42, 0, time.UTC) }
	done := make(chan error, 1)
	go func() { done <- srv.serve(ln) }()
	t.Cleanup(func() {
		srv.close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		os.RemoveAll(dir)
	})
	return srv, sock
}

// rawCall writes data as is and returns the whole reply.
func rawCall(t *testing.T, sock, data string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatal(err)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestServerRequests drives the server over the socket with well-formed and hostile
// requests: every one gets OK or ERR, and the server keeps serving.
func TestServerRequests(t *testing.T) {
	node := newFakeNode()
	srv, sock := startServer(t, node)
	cases := []struct {
		req, want string // want: the reply's prefix
	}{
		{"ping\n", "OK\n"},
		{"status\n", "OK\nLocal node ID 1, transport udpu\nLINK ID 0 \n"},
		{"status -b\n", "OK\nLocal node ID 1, transport udpu\nLINK ID 0 \n\taddr\t= 10.0.0.3\n\tstatus\t= n13\n"},
		{"quorum\n", "OK\nQuorum information\n------------------\nDate:             Wed Mar  6 10:15:42 2024\n"},
		{"quorum -l\n", "OK\n\nMembership information\n"},
		{"cmap runtime.members\n", "OK\nruntime.members.1.status (str) = joined\nruntime.members.3.status (str) = joined\n"},
		{"cmap nosuch\n", "ERR no key matched\n"},
		{"send g hi\n", "OK\n"},
		{"sendhex g 6869\n", "OK\n"},
		{"members g\n", "OK\n1 42\n3 7\n"},
		{"setexpected 3\n", "OK\n"},
		{"setexpected 101\n", "ERR Unable to set expected votes: CS_ERR_INVALID_PARAM\n"},
		{"setvotes 3 2\n", "OK\n"},
		{"bogus\n", "ERR unknown request \"bogus\"\n"},
		{"\n", "ERR empty request\n"},
		{"ping", "OK\n"}, // half-closed without newline
		{"", "ERR reading request: EOF\n"},
		{strings.Repeat("z", maxRequestLine+10) + "\n", "ERR reading request: request longer than"},
		{"\x00\x01\x02\n", "ERR unknown request"},
	}
	for _, c := range cases {
		got := rawCall(t, sock, c.req)
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("request %q: reply %q, want prefix %q", truncate(c.req, 30), truncate(got, 200), c.want)
		}
	}
	if node.expected != 3 || node.votes[3] != 2 {
		t.Errorf("setexpected/setvotes not applied: expected %d votes %v", node.expected, node.votes)
	}
	stats := rawCall(t, sock, "ctlstats\n")
	if !strings.Contains(stats, "bad_requests 5\n") {
		t.Errorf("ctlstats should count 5 bad requests, got %q", stats)
	}
	_ = srv
}

// TestServerSendErrors: a send the ring refuses, or one never delivered back, is an ERR.
func TestServerSendErrors(t *testing.T) {
	node := newFakeNode()
	_, sock := startServer(t, node)
	node.sendErr = totem.ErrStopped
	if got := rawCall(t, sock, "send g x\n"); !strings.HasPrefix(got, "ERR send to g: totem: node not running") {
		t.Errorf("send on a stopped node: %q", got)
	}
}

// TestSendWaitsForDelivery: the send reply comes only after the message came back, and a
// listener sees every message in order, quoted.
func TestSendWaitsForDelivery(t *testing.T) {
	node := newFakeNode()
	_, sock := startServer(t, node)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "listen g\n")
	br := bufio.NewReader(c)
	if first, _ := br.ReadString('\n'); first != "OK listening g\n" {
		t.Fatalf("listen reply %q", first)
	}
	msgs := []string{"one", "two words", "tab\there", "quote\"and\\back", "caf\u00e9"}
	for _, m := range msgs {
		if out, err := controlCall(sock, "send g "+m, 5*time.Second); err != nil || out != "" {
			t.Fatalf("send %q: %q %v", m, out, err)
		}
	}
	if _, err := controlCall(sock, "sendhex g 000a", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{`MSG 1 42 "one"`, `MSG 1 42 "two words"`, `MSG 1 42 "tab\there"`, `MSG 1 42 "quote\"and\\back"`,
		`MSG 1 42 "caf\u00e9"`, `MSG 1 42 "\x00\n"`}
	for _, w := range want {
		line, err := br.ReadString('\n')
		if err != nil || line != w+"\n" {
			t.Fatalf("listen line %q (%v), want %q", line, err, w)
		}
	}
}

// TestSendNotDelivered: with no delivery the send times out instead of hanging. The
// timeout is shortened through a fake node that never echoes, checked via removeWaiter.
func TestSendNotDeliveredLeavesNoWaiter(t *testing.T) {
	node := newFakeNode()
	node.noEcho = true
	srv := newControlServer(node, nil)
	h, err := srv.hub("g")
	if err != nil {
		t.Fatal(err)
	}
	w := &waiter{payload: []byte("x"), done: make(chan struct{})}
	h.waiters = append(h.waiters, w)
	h.removeWaiter(w)
	if len(h.waiters) != 0 {
		t.Fatal("waiter not removed")
	}
	// A message from another node with the same payload must not complete our waiter.
	w2 := &waiter{payload: []byte("x"), done: make(chan struct{})}
	h.waiters = append(h.waiters, w2)
	h.Deliver(totem.Message{Group: "g", Sender: totem.Process{NodeID: 3, PID: 1}, Payload: []byte("x")})
	select {
	case <-w2.done:
		t.Fatal("a peer's message completed a local send")
	default:
	}
	h.Deliver(totem.Message{Group: "g", Sender: totem.Process{NodeID: 1, PID: 42}, Payload: []byte("x")})
	select {
	case <-w2.done:
	default:
		t.Fatal("own message did not complete the send")
	}
}

// TestListenerOverflow: a listen client that stops reading never blocks Deliver; it is
// dropped with an ERR line and counted.
func TestListenerOverflow(t *testing.T) {
	node := newFakeNode()
	srv, sock := startServer(t, node)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "listen flood\n")
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if first, _ := br.ReadString('\n'); !strings.HasPrefix(first, "OK") {
		t.Fatalf("listen reply %q", first)
	}
	srv.mu.Lock()
	h := srv.groups["flood"]
	srv.mu.Unlock()
	payload := bytes.Repeat([]byte("p"), 4096)
	start := time.Now()
	for i := 0; i < 4*listenerQueue; i++ {
		h.Deliver(totem.Message{Group: "flood", Sender: totem.Process{NodeID: 3, PID: 1}, Payload: payload})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Deliver blocked on a slow listener: %v for %d events", d, 4*listenerQueue)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.listenerDrops.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if srv.listenerDrops.Load() != 1 {
		t.Fatalf("listener drops = %d, want 1", srv.listenerDrops.Load())
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, _ := io.ReadAll(br)
	lines := strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ERR listener dropped") {
		t.Errorf("last line %q, want the drop notice", truncate(last, 80))
	}
	h.mu.Lock()
	n := len(h.listeners)
	h.mu.Unlock()
	if n != 0 {
		t.Errorf("%d listeners still registered after the drop", n)
	}
}

// TestListenRings: a `listen --rings` client first gets the regular configuration in force,
// then configurations and messages interleaved exactly as the node delivered them; a plain
// listener on the same group gets no RING lines.
func TestListenRings(t *testing.T) {
	node := newFakeNode()
	srv, sock := startServer(t, node)
	ring := func(kind totem.ConfigurationKind, seq uint64, members ...totem.NodeID) totem.Membership {
		return totem.Membership{Kind: kind, RingID: totem.RingID{Rep: members[0], Seq: seq}, Members: members}
	}
	srv.membership(ring(totem.Regular, 8, 1, 2, 3))
	open := func(req string) (*bufio.Reader, net.Conn) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, req)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		if first, _ := br.ReadString('\n'); !strings.HasPrefix(first, "OK") {
			t.Fatalf("%q: reply %q", req, first)
		}
		return br, c
	}
	withRings, _ := open("listen --rings g\n")
	plain, _ := open("listen g\n")
	srv.mu.Lock()
	h := srv.groups["g"]
	srv.mu.Unlock()
	h.Deliver(totem.Message{Group: "g", Sender: totem.Process{NodeID: 2, PID: 9}, Payload: []byte("a")})
	trans := ring(totem.Transitional, 12, 1, 2)
	trans.Left = []totem.NodeID{3}
	srv.membership(trans)
	next := ring(totem.Regular, 12, 1, 2)
	srv.membership(next)
	h.Deliver(totem.Message{Group: "g", Sender: totem.Process{NodeID: 1, PID: 9}, Payload: []byte("b")})
	want := []string{
		"RING regular ring=1.8 members=1,2,3 joined=- left=-",
		`MSG 2 9 "a"`,
		"RING transitional ring=1.12 members=1,2 joined=- left=3",
		"RING regular ring=1.12 members=1,2 joined=- left=-",
		`MSG 1 9 "b"`,
	}
	for i, w := range want {
		got, err := withRings.ReadString('\n')
		if err != nil || strings.TrimSuffix(got, "\n") != w {
			t.Fatalf("line %d: %q (%v), want %q", i, got, err, w)
		}
	}
	for _, w := range []string{`MSG 2 9 "a"`, `MSG 1 9 "b"`} {
		got, err := plain.ReadString('\n')
		if err != nil || strings.TrimSuffix(got, "\n") != w {
			t.Fatalf("plain listener: %q (%v), want %q", got, err, w)
		}
	}
}

// TestListenSocketFile: permissions, stale socket removal, and refusals.
func TestListenSocketFile(t *testing.T) {
	dir, err := os.MkdirTemp("", "gtsock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "new", "g.sock")
	ln, err := listenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(sock)
	di, _ := os.Stat(filepath.Dir(sock))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("socket %v, dir %v; want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := listenControl(sock); err == nil || !strings.Contains(err.Error(), "another gototem is listening") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	// A socket file nobody listens on is stale and replaced. Go's listener unlinks its
	// file on Close, so make the stale file by hand.
	ln.Close()
	stale := filepath.Join(dir, "stale.sock")
	l2, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l2.SetUnlinkOnClose(false)
	l2.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l3, err := listenControl(stale)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l3.Close()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o600)
	if _, err := listenControl(plain); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if _, err := listenControl("/tmp/" + strings.Repeat("l", 120)); err == nil || !strings.Contains(err.Error(), "longer than 107") {
		t.Errorf("long path: %v", err)
	}
}

// runCmd runs a client subcommand in-process.
func runCmd(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := dispatch(args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestClientCommands runs the client subcommands against a fake node: output, exit codes
// and the error paths.
func TestClientCommands(t *testing.T) {
	node := newFakeNode()
	_, sock := startServer(t, node)
	missing := filepath.Join(os.TempDir(), "gototem-no-such.sock")
	cases := []struct {
		args     []string
		code     int
		out, err string // substrings
	}{
		{[]string{"status", "--socket", sock}, 0, "\t\tnodeid:          3:\tconnected\n", ""},
		{[]string{"status", "--socket", sock, "-b"}, 0, "\tstatus\t= n13\n", ""},
		{[]string{"status", "--socket", missing}, 1, "", "cannot connect to gototem at " + missing + ": "},
		{[]string{"status", "--socket", sock, "extra"}, 2, "", "usage"},
		{[]string{"quorum", "--socket", sock}, 0, "Quorate:          Yes\n", ""},
		{[]string{"quorum", "--socket", sock, "-l"}, 0, "         1          1 node1 (local)\n", ""},
		{[]string{"quorum", "--socket", sock, "-e", "0"}, 1, "", "New expected votes value was not valid"},
		{[]string{"quorum", "--socket", sock, "-e", "101"}, 1, "", "Unable to set expected votes: CS_ERR_INVALID_PARAM"},
		{[]string{"quorum", "--socket", sock, "-e", "4"}, 0, "", ""},
		{[]string{"quorum", "--socket", sock, "-v", "2", "-n", "3"}, 0, "", ""},
		{[]string{"quorum", "--socket", missing}, 1, "", "cannot connect to gototem at"},
		{[]string{"cmap", "--socket", sock, "runtime.members"}, 0, "runtime.members.3.status (str) = joined\n", ""},
		{[]string{"cmap", "--socket", sock, "nosuch"}, 1, "", ""},
		{[]string{"cmap", "--socket", sock}, 0, "totem.token (u32) = 1000\n", ""},
		{[]string{"send", "--socket", sock, "g", "hello", "world"}, 0, "", ""},
		{[]string{"send", "--socket", sock, "--hex", "g", "zz"}, 1, "", "MSG is not hex"},
		{[]string{"send", "--socket", sock, "g"}, 2, "", "usage"},
		{[]string{"send", "--socket", missing, "g", "x"}, 1, "", "cannot connect to gototem at"},
		{[]string{"listen", "--socket", missing, "g"}, 1, "", "cannot connect to gototem at"},
		{[]string{"listen", "--socket", sock, "-t", "0.2", "quiet"}, 3, "", "timed out"},
	}
	for _, c := range cases {
		out, errs, code := runCmd(c.args...)
		if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errs, c.err) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, stdout ~%q, stderr ~%q",
				c.args, code, truncate(out, 200), errs, c.code, c.out, c.err)
		}
	}
	if node.expected != 4 || node.votes[3] != 2 {
		t.Errorf("quorum -e/-v not applied: %d %v", node.expected, node.votes)
	}
	// Not quorate: quorumtool -s exits 2.
	node.status.Quorum.Quorate = false
	if _, _, code := runCmd("quorum", "--socket", sock); code != 2 {
		t.Errorf("inquorate quorum: exit %d, want 2", code)
	}
}

// TestListenCount: listen -n N exits 0 after N messages, with a bound.
func TestListenCount(t *testing.T) {
	node := newFakeNode()
	_, sock := startServer(t, node)
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, _, code := runCmd("listen", "--socket", sock, "-n", "2", "-t", "5", "g")
		done <- result{out, code}
	}()
	// Sends until the listener is there (its join happens when its request arrives).
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		if _, err := controlCall(sock, fmt.Sprintf("send g m%d", i), 2*time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.code != 0 || strings.Count(r.out, "MSG 1 42 \"m") != 2 {
				t.Fatalf("listen -n 2: exit %d, out %q", r.code, r.out)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("listen -n 2 did not exit")
		}
	}
}

// TestStreamListenErrors: the streaming client parses ERR replies and drop notices.
func TestStreamListenErrors(t *testing.T) {
	cases := []struct {
		in   string
		code int
		err  string
		out  string
	}{
		{"ERR listen: want listen GROUP\n", 1, "want listen GROUP", ""},
		{"garbage\n", 1, "malformed reply", ""},
		{"", 1, "no reply", ""},
		{"OK listening g\nMSG 1 2 \"a\"\nERR listener dropped: slow\n", 1, "listener dropped", "MSG 1 2 \"a\"\n"},
		{"OK listening g\nCONFCHG members=1:2 joined=1:2:join left=-\n", 0, "", "CONFCHG"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		code, err := streamListen(bufio.NewReader(strings.NewReader(c.in)), &out, 0)
		if code != c.code || (c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err))) || !strings.Contains(out.String(), c.out) {
			t.Errorf("%q: code %d err %v out %q", c.in, code, err, out.String())
		}
	}
}

func TestConfchgEvent(t *testing.T) {
	c := totem.GroupChange{Group: "g", Members: []totem.Process{{NodeID: 1, PID: 10}, {NodeID: 2, PID: 20}},
		Joined: []totem.MemberChange{{Process: totem.Process{NodeID: 2, PID: 20}, Reason: 1}}}
	if got, want := formatConfchgEvent(c), "CONFCHG members=1:10,2:20 joined=2:20:join left=-\n"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if got := formatConfchgEvent(totem.GroupChange{}); got != "CONFCHG members=- joined=- left=-\n" {
		t.Errorf("empty confchg: %q", got)
	}
}

// FuzzParseRequest: no input panics, and an accepted request respects the documented
// limits (group name, payload size, non-zero values).
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"status -b", "send g --safe hi", "sendhex g 00", "listen g", "setvotes 1 2", "cmap a b", "\x00", "send  x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := parseRequest(line)
		if err != nil {
			return
		}
		switch r.verb {
		case "send", "sendhex":
			if len(r.payload) == 0 || len(r.payload) > maxPayload {
				t.Fatalf("%q: payload of %d bytes accepted", line, len(r.payload))
			}
			fallthrough
		case "listen", "members":
			if checkGroup(r.verb, r.group) != nil {
				t.Fatalf("%q: bad group %q accepted", line, r.group)
			}
		case "setexpected":
			if r.value == 0 {
				t.Fatalf("%q: zero expected votes accepted", line)
			}
		case "setvotes":
			if r.nodeid == 0 {
				t.Fatalf("%q: nodeid 0 accepted", line)
			}
		}
	})
}

// Issue 12: SIGTERM took 20-30 s when a `send` waited for a ring that could not form (it
// waited for sendTimeout). close must end pending sends at once, with an error reply.
func TestCloseEndsPendingSend(t *testing.T) {
	node := newFakeNode()
	node.noEcho = true
	dir := t.TempDir()
	sock := filepath.Join(dir, "gototem.sock")
	ln, err := listenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := newControlServer(node, nil)
	done := make(chan error, 1)
	go func() { done <- srv.serve(ln) }()
	reply := make(chan string, 1)
	go func() {
		out, err := controlCall(sock, "send g waiting", 60*time.Second)
		reply <- fmt.Sprint(out, err)
	}()
	time.Sleep(200 * time.Millisecond) // the send is waiting for its echo
	start := time.Now()
	srv.close()
	took := time.Since(start)
	<-done
	r := <-reply
	if took > 2*time.Second {
		t.Fatalf("close took %v with a send pending", took)
	}
	t.Logf("asserts: close returned in %v; the client got %q", took, r)
}

// With corosync's IPC running, `gototem cmap` is a view of the cmap service (what
// corosync-cmapctl shows, clients' writes included), not a second rendering of the node's keys.
func TestControlCmapIsTheIPCView(t *testing.T) {
	node := newFakeNode()
	srv, sock := startServer(t, node)
	view := func() []string {
		return []string{"runtime.members.1.status (str) = joined", "stats.ipcs.global.active (u64) = 2", "test.set (i8) = -1"}
	}
	srv.cmapView.Store(&view)
	for req, want := range map[string]string{
		"cmap test.\n":             "OK\ntest.set (i8) = -1\n",
		"cmap stats.ipcs.\n":       "OK\nstats.ipcs.global.active (u64) = 2\n",
		"cmap runtime.members.3\n": "ERR no key matched\n", // the node's own key is not shown beside the view
	} {
		if got := rawCall(t, sock, req); got != want {
			t.Errorf("request %q: %q, want %q", req, got, want)
		}
	}
}
