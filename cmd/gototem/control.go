package main

// The control socket: how `gototem run` answers the client commands (status, quorum, cmap,
// send, listen) and any other program that can write a line to a Unix socket. The protocol
// is specified in CONTROL.md next to this file; this file owns the parser and the server.
// It must not reach into the ring: everything goes through nodeAPI, which *totem.Node
// satisfies through nodeAdapter, so tests run the server against a fake node.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/totem"
)

const (
	// defaultSocket is where run listens and the clients connect without --socket.
	defaultSocket = "/run/gototem/gototem.sock"
	// maxRequestLine bounds one request: a sendhex of a 64 KiB payload plus the verb.
	maxRequestLine = 2*maxPayload + 256
	// maxPayload bounds one message sent through the socket; corosync's CPG takes larger
	// messages, but a shell-facing socket has no business carrying them.
	maxPayload = 64 << 10
	// maxGroupName is CPG's group name limit.
	maxGroupName = 128
	// listenerQueue bounds the lines waiting for one slow listen client; beyond it the
	// listener is dropped rather than stalling the dispatch goroutine of the node.
	listenerQueue = 1024
	// sendTimeout bounds how long a send request waits for its own delivery.
	sendTimeout = 30 * time.Second
	// requestTimeout bounds reading the request line from a client.
	requestTimeout = 10 * time.Second
	// writeTimeout bounds one write to a client, so a client that stops reading cannot
	// hold a server goroutine forever.
	writeTimeout = 10 * time.Second
	// maxSocketPath is the room in sockaddr_un.sun_path without the NUL.
	maxSocketPath = 107
)

// nodeAPI is what the control server needs from a running node.
type nodeAPI interface {
	Status() totem.Status
	CmapKeys() []config.KeyValue
	Join(group string, h totem.GroupHandler) (groupAPI, error)
	SetExpectedVotes(v uint32) error
	SetVotes(nodeid totem.NodeID, votes uint32) error
	CancelWaitForAll() error
}

// groupAPI is one joined process group.
type groupAPI interface {
	Send(ctx context.Context, payload []byte, gu totem.Guarantee) error
	Members() []totem.Process
}

// nodeAdapter makes *totem.Node a nodeAPI (Join returns the concrete *totem.Group).
type nodeAdapter struct{ *totem.Node }

func (a nodeAdapter) Join(group string, h totem.GroupHandler) (groupAPI, error) {
	g, err := a.Node.Join(group, h)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// request is one parsed request line.
type request struct {
	verb     string
	brief    bool     // status -b
	list     bool     // quorum -l
	prefixes []string // cmap
	group    string   // send, sendhex, listen
	rings    bool     // listen --rings
	safe     bool     // send --safe
	payload  []byte   // send, sendhex
	nodeid   uint32   // setvotes
	value    uint32   // setexpected, setvotes
}

// parseRequest parses one request line (without its newline). Errors are the text of the
// ERR reply.
func parseRequest(line string) (request, error) {
	line = strings.TrimSuffix(line, "\r")
	if len(line) > maxRequestLine {
		return request{}, fmt.Errorf("request too long (%d bytes, limit %d)", len(line), maxRequestLine)
	}
	verb, rest, _ := strings.Cut(strings.TrimLeft(line, " \t"), " ")
	fields := strings.Fields(rest)
	r := request{verb: verb}
	switch verb {
	case "":
		return r, errors.New("empty request")
	case "status":
		for _, f := range fields {
			if f != "-b" {
				return r, fmt.Errorf("status: unknown argument %q (status [-b])", f)
			}
			r.brief = true
		}
	case "quorum":
		for _, f := range fields {
			switch f {
			case "-l":
				r.list = true
			case "-s":
			default:
				return r, fmt.Errorf("quorum: unknown argument %q (quorum [-l])", f)
			}
		}
	case "cmap":
		r.prefixes = fields
	case "send":
		group, text, ok := strings.Cut(rest, " ")
		if err := checkGroup(verb, group); err != nil {
			return r, err
		}
		if !ok {
			return r, errors.New("send: missing message (send GROUP [--safe] TEXT)")
		}
		if t, found := strings.CutPrefix(text, "--safe "); found {
			r.safe, text = true, t
		} else if text == "--safe" {
			return r, errors.New("send: missing message after --safe")
		}
		r.group, r.payload = group, []byte(text)
	case "sendhex":
		args := fields
		if len(args) > 0 && args[len(args)-1] == "--safe" {
			r.safe, args = true, args[:len(args)-1]
		}
		if len(args) == 3 && args[1] == "--safe" {
			r.safe, args = true, []string{args[0], args[2]}
		}
		if len(args) != 2 {
			return r, errors.New("sendhex: want sendhex GROUP [--safe] HEX")
		}
		if err := checkGroup(verb, args[0]); err != nil {
			return r, err
		}
		p, err := hex.DecodeString(args[1])
		if err != nil {
			return r, fmt.Errorf("sendhex: payload is not hex: %v", err)
		}
		r.group, r.payload = args[0], p
	case "listen", "members":
		if verb == "listen" && len(fields) == 2 && fields[0] == "--rings" {
			r.rings, fields = true, fields[1:]
		}
		if len(fields) != 1 {
			return r, fmt.Errorf("%s: want %s GROUP", verb, verb)
		}
		if err := checkGroup(verb, fields[0]); err != nil {
			return r, err
		}
		r.group = fields[0]
	case "setexpected":
		if len(fields) != 1 {
			return r, errors.New("setexpected: want setexpected N")
		}
		v, err := strconv.ParseUint(fields[0], 10, 31)
		if err != nil || v == 0 {
			return r, errors.New("setexpected: New expected votes value was not valid, try a positive number")
		}
		r.value = uint32(v)
	case "setvotes":
		if len(fields) != 2 {
			return r, errors.New("setvotes: want setvotes NODEID N")
		}
		id, err := strconv.ParseUint(fields[0], 10, 32)
		if err != nil || id == 0 {
			return r, errors.New("setvotes: The nodeid was not valid, try a positive number")
		}
		v, err := strconv.ParseUint(fields[1], 10, 31)
		if err != nil {
			return r, errors.New("setvotes: New votes value was not valid, try a positive number or zero")
		}
		r.nodeid, r.value = uint32(id), uint32(v)
	case "cancelwfa", "ping", "ctlstats":
		if len(fields) != 0 {
			return r, fmt.Errorf("%s: takes no arguments", verb)
		}
	default:
		return r, fmt.Errorf("unknown request %q", truncate(verb, 32))
	}
	if len(r.payload) > maxPayload {
		return r, fmt.Errorf("%s: payload too large (%d bytes, limit %d)", verb, len(r.payload), maxPayload)
	}
	if (verb == "send" || verb == "sendhex") && len(r.payload) == 0 {
		return r, fmt.Errorf("%s: empty message", verb)
	}
	return r, nil
}

func checkGroup(verb, g string) error {
	switch {
	case g == "":
		return fmt.Errorf("%s: missing group name", verb)
	case len(g) > maxGroupName:
		return fmt.Errorf("%s: group name longer than %d bytes", verb, maxGroupName)
	case strings.ContainsAny(g, " \t\r\n\x00"):
		return fmt.Errorf("%s: group name contains a blank or control character", verb)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// controlServer serves the control socket of one node.
type controlServer struct {
	node nodeAPI
	log  *slog.Logger
	now  func() time.Time
	// cmapView, when set, is the corosync cmap service's view (corosvc.Cmap.Dump): `gototem
	// cmap` then shows exactly what corosync-cmapctl shows, clients' writes and the IPC
	// stats included, instead of a second rendering of the node's keys.
	cmapView atomic.Pointer[func() []string]

	mu     sync.Mutex
	groups map[string]*groupHub
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	// stopping is cancelled by close: a send waiting for ring room or for its own message
	// to come back gives up at once. (It waited for sendTimeout: with a node that could
	// not form a ring, SIGTERM took 30 s.)
	stopping context.Context
	stop     context.CancelFunc

	// Counters, reported by the ctlstats request.
	requests      atomic.Uint64
	badRequests   atomic.Uint64
	listenerDrops atomic.Uint64
	listeners     atomic.Int64 // listen clients connected now

	// ringMu orders ring configurations against listeners registering: a `listen --rings`
	// client first gets the regular configuration in force, then every later one, so its
	// stream is a delivery log that starts with a configuration. Lock order: ringMu, mu, a
	// hub's mu.
	ringMu   sync.Mutex
	lastRing *totem.Membership // the last regular configuration delivered
}

func newControlServer(node nodeAPI, log *slog.Logger) *controlServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &controlServer{node: node, log: log, now: time.Now, groups: map[string]*groupHub{}, conns: map[net.Conn]struct{}{},
		stopping: ctx, stop: cancel}
}

// listenControl creates the control socket at path: parent directory 0700 if it has to be
// created, socket 0600, and a stale socket file removed only when nothing answers on it.
func listenControl(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket %s: path longer than %d bytes", path, maxSocketPath)
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another gototem is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: removing stale socket: %w", path, err)
		}
	}
	// The umask makes the socket owner-only from its creation, with no window in which
	// another user could connect before a chmod.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return ln, nil
}

// serve accepts clients until close. It returns nil after close.
func (s *controlServer) serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("control socket: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// close stops accepting, disconnects every client and waits for their goroutines.
func (s *controlServer) close() {
	s.stop()
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// handle answers one client.
func (s *controlServer) handle(c net.Conn) {
	s.requests.Add(1)
	_ = c.SetReadDeadline(time.Now().Add(requestTimeout))
	br := bufio.NewReaderSize(c, 4096)
	line, err := readLine(br, maxRequestLine)
	if err != nil {
		s.badRequests.Add(1)
		s.reply(c, fmt.Errorf("reading request: %v", err), "")
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	req, err := parseRequest(line)
	if err != nil {
		s.badRequests.Add(1)
		s.reply(c, err, "")
		return
	}
	if req.verb == "listen" {
		s.listen(c, br, req.group, req.rings)
		return
	}
	text, err := s.execute(req)
	s.reply(c, err, text)
}

// readLine reads one newline-terminated line of at most limit bytes.
func readLine(br *bufio.Reader, limit int) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > limit+2 {
			return "", fmt.Errorf("request longer than %d bytes", limit)
		}
		if err == nil {
			return strings.TrimSuffix(string(b[:len(b)-1]), "\r"), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(b) > 0 {
			// A client that half-closes without a newline still sent a request.
			return string(b), nil
		}
		return "", err
	}
}

func (s *controlServer) reply(c net.Conn, err error, text string) {
	var b strings.Builder
	if err != nil {
		b.WriteString("ERR " + oneLine(err.Error()) + "\n")
	} else {
		b.WriteString("OK\n")
		b.WriteString(text)
	}
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, werr := io.WriteString(c, b.String()); werr != nil {
		s.log.Debug("control: reply not written", "err", werr)
	}
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// execute runs a one-shot request and returns the reply text.
func (s *controlServer) execute(r request) (string, error) {
	switch r.verb {
	case "ping":
		return "", nil
	case "status":
		st := s.node.Status()
		if r.brief {
			return formatCfgtoolStatus(st, true), nil
		}
		return formatCfgtoolStatus(st, false) + formatHealth(st), nil
	case "quorum":
		st := s.node.Status()
		return formatQuorum(st, s.now(), r.list) + stuckNote(st), nil
	case "cmap":
		if view := s.cmapView.Load(); view != nil {
			out, n := filterLines((*view)(), r.prefixes)
			if n == 0 {
				return "", errors.New("no key matched")
			}
			return out, nil
		}
		out, n := formatCmap(s.node.CmapKeys(), r.prefixes)
		if n == 0 {
			return "", errors.New("no key matched")
		}
		return out, nil
	case "send", "sendhex":
		return "", s.send(r)
	case "members":
		h, err := s.hub(r.group)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, p := range h.g.Members() {
			fmt.Fprintf(&b, "%d %d\n", p.NodeID, p.PID)
		}
		return b.String(), nil
	case "setexpected":
		return "", wrapOp("Unable to set expected votes", s.node.SetExpectedVotes(r.value))
	case "setvotes":
		return "", wrapOp(fmt.Sprintf("Unable to set votes %d for nodeid: %d", r.value, r.nodeid), s.node.SetVotes(totem.NodeID(r.nodeid), r.value))
	case "cancelwfa":
		return "", wrapOp("Unable to cancel wait_for_all", s.node.CancelWaitForAll())
	case "ctlstats":
		return fmt.Sprintf("requests %d\nbad_requests %d\nlisteners %d\nlistener_drops %d\n",
			s.requests.Load(), s.badRequests.Load(), s.listeners.Load(), s.listenerDrops.Load()), nil
	}
	return "", fmt.Errorf("unknown request %q", r.verb)
}

func wrapOp(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// hub returns the group's hub, joining the group on first use. The daemon is one CPG
// process per group for all its clients: joins are not undone when a client leaves,
// because another client may be sending to the same group.
func (s *controlServer) hub(group string) (*groupHub, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.groups[group]; h != nil {
		return h, nil
	}
	h := &groupHub{name: group, self: s.node.Status().NodeID, listeners: map[*listener]struct{}{}, srv: s}
	g, err := s.node.Join(group, h)
	if err != nil {
		return nil, fmt.Errorf("joining group %s: %w", group, err)
	}
	h.g = g
	s.groups[group] = h
	return h, nil
}

// send multicasts and returns once the message came back to this node in total order, so
// a client that sends and then sends again sees its messages ordered.
func (s *controlServer) send(r request) error {
	h, err := s.hub(r.group)
	if err != nil {
		return err
	}
	gu := totem.Agreed
	if r.safe {
		gu = totem.Safe
	}
	ctx, cancel := context.WithTimeout(s.stopping, sendTimeout)
	defer cancel()
	// Sends of one group are serialized so the order of waiters is the order in which
	// the messages entered the ring, which is the order they come back in.
	h.sendMu.Lock()
	w := &waiter{payload: r.payload, done: make(chan struct{})}
	h.mu.Lock()
	h.waiters = append(h.waiters, w)
	h.mu.Unlock()
	err = h.g.Send(ctx, r.payload, gu)
	if err != nil {
		h.removeWaiter(w)
	}
	h.sendMu.Unlock()
	if err != nil {
		return fmt.Errorf("send to %s: %w", r.group, err)
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		h.removeWaiter(w)
		if s.stopping.Err() != nil {
			return fmt.Errorf("send to %s: queued, not delivered back before the daemon stopped", r.group)
		}
		return fmt.Errorf("send to %s: queued but not delivered back within %v", r.group, sendTimeout)
	}
}

// listen streams the group's events to the client until it disconnects or overflows.
func (s *controlServer) listen(c net.Conn, br *bufio.Reader, group string, rings bool) {
	h, err := s.hub(group)
	if err != nil {
		s.reply(c, err, "")
		return
	}
	l := &listener{ch: make(chan string, listenerQueue), overflow: make(chan struct{}), conn: c, drops: &s.listenerDrops, rings: rings}
	s.ringMu.Lock()
	h.mu.Lock()
	h.listeners[l] = struct{}{}
	if rings && s.lastRing != nil {
		l.push(formatRingEvent(*s.lastRing))
	}
	h.mu.Unlock()
	s.ringMu.Unlock()
	s.listeners.Add(1)
	defer func() {
		h.mu.Lock()
		delete(h.listeners, l)
		h.mu.Unlock()
		s.listeners.Add(-1)
	}()
	gone := make(chan struct{})
	go func() {
		// Anything the client sends after the request is ignored; EOF means it left.
		_, _ = io.Copy(io.Discard, br)
		close(gone)
	}()
	partial := false // a write cut short left half a line on the stream
	write := func(line string, timeout time.Duration) bool {
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		n, err := io.WriteString(c, line)
		partial = n > 0 && n < len(line)
		return err == nil
	}
	if !write("OK listening "+group+"\n", writeTimeout) {
		return
	}
	for {
		// An overflow wins over queued lines: the client is already too far behind.
		select {
		case <-l.overflow:
			s.log.Warn("control: listener dropped: it did not keep up", "group", group)
			msg := fmt.Sprintf("ERR listener dropped: more than %d events queued (client too slow)\n", listenerQueue)
			if partial {
				msg = "\n" + msg
			}
			write(msg, time.Second)
			return
		default:
		}
		select {
		case line := <-l.ch:
			if !write(line, writeTimeout) {
				select {
				case <-l.overflow:
					continue // report the drop
				default:
					return
				}
			}
		case <-l.overflow:
		case <-gone:
			return
		}
	}
}

// listener is one listen client's bounded queue.
type listener struct {
	ch       chan string
	overflow chan struct{}
	conn     net.Conn
	drops    *atomic.Uint64
	rings    bool // also gets RING lines (listen --rings)
	dropped  bool // guarded by the hub's mu
}

// push queues a line without ever blocking. On overflow the listener is dropped: counted,
// its writer told, and a write blocked on the client cut short.
func (l *listener) push(line string) {
	if l.dropped {
		return
	}
	select {
	case l.ch <- line:
	default:
		l.dropped = true
		l.drops.Add(1)
		close(l.overflow)
		_ = l.conn.SetWriteDeadline(time.Now())
	}
}

type waiter struct {
	payload []byte
	done    chan struct{}
}

// groupHub is the daemon's handler for one joined group: it fans events out to listen
// clients and completes send requests when their message comes back.
type groupHub struct {
	name   string
	self   totem.NodeID
	g      groupAPI
	srv    *controlServer
	sendMu sync.Mutex

	mu        sync.Mutex
	listeners map[*listener]struct{}
	waiters   []*waiter
}

func (h *groupHub) removeWaiter(w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.waiters {
		if x == w {
			h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
			return
		}
	}
}

// Deliver runs on the node's dispatch goroutine: it must never block.
func (h *groupHub) Deliver(m totem.Message) {
	line := formatMessageEvent(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.listeners {
		l.push(line)
	}
	if m.Sender.NodeID == h.self && len(h.waiters) > 0 && bytes.Equal(h.waiters[0].payload, m.Payload) {
		close(h.waiters[0].done)
		h.waiters = h.waiters[1:]
	}
}

// ConfigChange runs on the node's dispatch goroutine.
func (h *groupHub) ConfigChange(c totem.GroupChange) {
	line := formatConfchgEvent(c)
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.listeners {
		l.push(line)
	}
}

// membership fans a ring configuration out to every `listen --rings` client. It runs on the
// node's dispatch goroutine, in total order with the groups' messages, so each client sees
// configurations exactly where the node delivered them.
func (s *controlServer) membership(m totem.Membership) {
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	if m.Kind == totem.Regular {
		mc := m
		s.lastRing = &mc
	}
	line := formatRingEvent(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.groups {
		h.mu.Lock()
		for l := range h.listeners {
			if l.rings {
				l.push(line)
			}
		}
		h.mu.Unlock()
	}
}

// formatRingEvent is the listen --rings line of a ring configuration:
// RING <regular|transitional> ring=<rep>.<seq> members=<nodeid,...> joined=<...> left=<...>.
func formatRingEvent(m totem.Membership) string {
	ids := func(l []totem.NodeID) string {
		if len(l) == 0 {
			return "-"
		}
		parts := make([]string, len(l))
		for i, id := range l {
			parts[i] = strconv.FormatUint(uint64(id), 10)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprintf("RING %s ring=%d.%d members=%s joined=%s left=%s\n",
		m.Kind, m.RingID.Rep, m.RingID.Seq, ids(m.Members), ids(m.Joined), ids(m.Left))
}

// formatMessageEvent is the listen line of a delivered message:
// MSG <nodeid> <pid> <payload as a double-quoted ASCII string with Go/C escapes>.
func formatMessageEvent(m totem.Message) string {
	return fmt.Sprintf("MSG %d %d %s\n", m.Sender.NodeID, m.Sender.PID, strconv.QuoteToASCII(string(m.Payload)))
}

// formatConfchgEvent is the listen line of a group membership change:
// CONFCHG members=<nodeid:pid,...> joined=<nodeid:pid:reason,...> left=<...> ("-" if empty).
func formatConfchgEvent(c totem.GroupChange) string {
	var b strings.Builder
	b.WriteString("CONFCHG members=")
	if len(c.Members) == 0 {
		b.WriteString("-")
	}
	for i, p := range c.Members {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d", p.NodeID, p.PID)
	}
	for _, part := range []struct {
		name string
		list []totem.MemberChange
	}{{" joined=", c.Joined}, {" left=", c.Left}} {
		b.WriteString(part.name)
		if len(part.list) == 0 {
			b.WriteString("-")
		}
		for i, p := range part.list {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d:%d:%s", p.NodeID, p.PID, p.Reason)
		}
	}
	b.WriteByte('\n')
	return b.String()
}

// dialControl connects to a node's control socket.
func dialControl(path string) (net.Conn, error) {
	c, err := net.DialTimeout("unix", path, 3*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to gototem at %s: %w", path, unwrapOp(err))
	}
	return c, nil
}

// unwrapOp drops net.OpError's repetition of the address so the message reads once.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// controlCall sends one request and returns the reply text after the OK line, or the ERR
// message as an error. timeout bounds the whole exchange.
func controlCall(path, line string, timeout time.Duration) (string, error) {
	c, err := dialControl(path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", fmt.Errorf("gototem at %s: writing request: %w", path, unwrapOp(err))
	}
	data, err := io.ReadAll(io.LimitReader(c, 64<<20))
	if err != nil {
		return "", fmt.Errorf("gototem at %s: reading reply: %w", path, unwrapOp(err))
	}
	first, rest, _ := strings.Cut(string(data), "\n")
	switch {
	case first == "OK" || strings.HasPrefix(first, "OK "):
		return rest, nil
	case strings.HasPrefix(first, "ERR "):
		return "", errors.New(strings.TrimPrefix(first, "ERR "))
	case first == "":
		return "", fmt.Errorf("gototem at %s: connection closed without a reply", path)
	}
	return "", fmt.Errorf("gototem at %s: malformed reply %q", path, truncate(first, 80))
}

// clientFlags is the flag set every client command starts with: --socket PATH.
func clientFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("socket", defaultSocket, "control socket of the node")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gototem %s: %s\n", name, commands[name].summary)
		fs.PrintDefaults()
	}
	return fs, sock
}
