package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/totem"
)

func init() {
	register("run", command{
		summary: "run a Totem node from a corosync.conf (run -c FILE [--socket PATH] [--state-dir DIR] [--local-addr IP] [--log-level L])",
		run:     runRun,
	})
}

const runUsage = `usage: gototem run -c FILE [--socket PATH] [--state-dir DIR] [--local-addr IP]... [--log-level debug|info|warn] [--no-ipc]
Runs a Totem node from an unchanged corosync.conf and serves the control socket
(default ` + defaultSocket + `, or gototem.sock in --state-dir) and corosync's client IPC
(libqb abstract sockets "cmap" ..., in this network namespace). SIGTERM/SIGINT leave the
ring cleanly and exit 0; SIGHUP re-reads FILE: the logging section is applied at once,
other changes are reported as needing a restart.
`

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runUsage) }
	file := fs.String("c", "/etc/corosync/corosync.conf", "corosync.conf")
	sock := fs.String("socket", "", "control socket path")
	stateDir := fs.String("state-dir", "", "state directory (overrides system.state_dir)")
	level := fs.String("log-level", "", "debug, info or warn (overrides the logging section)")
	noIPC := fs.Bool("no-ipc", false, "do not serve corosync's client IPC (cmap ...) on its abstract sockets")
	var addrs addrList
	fs.Var(&addrs, "local-addr", "this node's address (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprint(stderr, runUsage)
		return 2
	}
	if *level != "" && *level != "debug" && *level != "info" && *level != "warn" {
		fmt.Fprintf(stderr, "gototem: run: --log-level must be debug, info or warn, not %q\n", *level)
		return 2
	}
	rt, err := loadRuntime(*file, addrs, true, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: run: %s: configuration not usable\n", *file)
		return 1
	}
	protocolThread, threadRelease := schedHook(rt, stderr, "run")
	host, _ := os.Hostname()
	logs := &logSwitch{stderr: stderr, override: *level, host: host}
	if err := logs.apply(rt.Logging); err != nil {
		fmt.Fprintf(stderr, "gototem: run: logging: %v\n", err)
		return 1
	}
	defer logs.close()
	log := slog.New(logs)
	if *sock == "" {
		*sock = defaultSocket
		if *stateDir != "" {
			*sock = filepath.Join(*stateDir, "gototem.sock")
		}
	}
	// The control server needs the node and the node's callbacks feed the server.
	var ctl atomic.Pointer[controlServer]
	var coro atomic.Pointer[coroIPC]
	// corosync-cfgtool -k on any node: corosync exits at once (a fatal error exit, no
	// LEAVE), and so does this daemon.
	killed := make(chan string, 1)
	shutdownReq := make(chan string, 1)
	// corosync-cfgtool -R on any node reaches every node as cfg's RELOAD_CONFIG: what SIGHUP
	// does. node is set before Start, so before the dispatch goroutine can call this.
	var node *totem.Node
	reloadFn := func() error {
		return reload(*file, addrs, node, logs, log, stderr)
	}
	node, err = totem.New(totem.Options{
		ProtocolThread:        protocolThread,
		ProtocolThreadRelease: threadRelease,
		// The daemon's callbacks copy into its clients' rings and never wait: running them
		// on the receive goroutine saves a hand-over per batch (totem.Options.InlineDelivery).
		InlineDelivery: true,
		Config:         totem.FromRuntime(rt),
		StateDir:       *stateDir,
		Logger:         log,
		OnMembership: func(m totem.Membership) {
			// The node itself logs corosync's lines for memberships and quorum.
			if srv := ctl.Load(); srv != nil {
				srv.membership(m)
			}
			coro.Load().membership(m)
		},
		OnQuorum: func(q totem.QuorumState) {
			coro.Load().changed()
		},
		OnExpectedVotes: func(v uint32) { coro.Load().expectedVotes(v) },
		OnCfgKill: func(from totem.NodeID, reason string) {
			select {
			case killed <- fmt.Sprintf("killed by node %d: %s", from, reason):
			default:
			}
		},
		OnCfgReload: func(from totem.NodeID) error { return reloadFn() },
		OnShutdownRequest: func(reason string) {
			select {
			case shutdownReq <- reason:
			default:
			}
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "gototem: run: %v\n", err)
		return 1
	}
	// The socket comes first: a second daemon on the same socket must fail before it
	// touches the ring.
	ln, err := listenControl(*sock)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: run: %v\n", err)
		return 1
	}
	defer os.Remove(*sock)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	startCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = node.Start(startCtx)
	cancel()
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "gototem: run: starting node %d: %v\n", rt.NodeID, err)
		return 1
	}
	if !*noIPC {
		x, err := startCoroIPC(node, rt, log.With("subsys", "ipc"))
		if err != nil {
			// Without corosync's sockets the ring still runs and the control socket still
			// answers; corosync's tools and libraries will not find this node.
			log.Error("corosync IPC not served", "err", err)
		} else {
			coro.Store(x)
			defer x.close()
		}
	}
	srv := newControlServer(nodeAdapter{node}, log.With("subsys", "control"))
	if x := coro.Load(); x != nil {
		// One cmap: the control socket shows the IPC service's view.
		view := x.cmap.Dump
		srv.cmapView.Store(&view)
	}
	ctl.Store(srv)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.serve(ln) }()
	log.Log(context.Background(), totem.LevelNotice, "gototem (corosync 3.1 compatible) started", "config", *file, "nodeid", rt.NodeID, "socket", *sock)

	stop := func() int {
		srv.close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := node.Stop(ctx); err != nil && !errors.Is(err, totem.ErrStopped) {
			log.Error("stop", "err", err)
			fmt.Fprintf(stderr, "gototem: run: stop: %v\n", err)
			return 1
		}
		log.Info("gototem stopped")
		return 0
	}
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				_ = reload(*file, addrs, node, logs, log, stderr) // logged there
				continue
			}
			log.Info("signal, leaving the ring", "signal", s.String())
			return stop()
		case why := <-shutdownReq:
			// corosync's shutdown request: a clean leave and exit 0 (systemd sees the unit
			// stop; the reason is in the log).
			log.Info("shutdown requested by a service, leaving the ring", "reason", why)
			return stop()
		case why := <-killed:
			// No node.Stop: the others see this node's token loss, as with corosync.
			srv.close()
			log.Error("Corosync Cluster Engine exiting: " + why)
			fmt.Fprintf(stderr, "gototem: run: %s\n", why)
			return 1
		case err := <-serveErr:
			if err != nil {
				log.Error("control socket failed", "err", err)
				fmt.Fprintf(stderr, "gototem: run: %v\n", err)
				stop()
				return 1
			}
		}
	}
}

// loadRuntime loads and resolves the configuration, printing warnings and errors. At start
// (starting set), a node whose port another daemon holds gives way to the next local node of
// the nodelist (pickFreeNode); a reload keeps the node it runs as.
func loadRuntime(file string, addrs addrList, starting bool, stderr io.Writer) (*config.Runtime, error) {
	cfg, warns, err := config.Load(file)
	printWarnings(stderr, warns)
	if err != nil {
		printErrors(stderr, err)
		return nil, err
	}
	local := totem.HostLocal() // a daemon must not guess which node it is: no fallback
	if len(addrs) > 0 {        // --local-addr names the node: match by those addresses only
		local.Addrs, local.Hostname = addrs, ""
	}
	rt, warns, err := cfg.Resolve(local)
	printWarnings(stderr, warns)
	if err != nil {
		printErrors(stderr, err)
		return nil, err
	}
	if starting && len(addrs) == 0 {
		rt = pickFreeNode(cfg, rt, stderr)
	}
	return rt, nil
}

// reload is SIGHUP and corosync-cfgtool -R: the file is read again, the logging section
// applied (it is the daemon's), and the rest handed to the node, which applies what corosync
// applies at run time (timers, nodelist, votequorum's reloadable options) and keeps the rest
// at its running value. An unusable file changes nothing and is the error.
func reload(file string, addrs addrList, node *totem.Node, logs *logSwitch, log *slog.Logger, stderr io.Writer) error {
	rt, err := loadRuntime(file, addrs, false, stderr)
	if err != nil {
		log.Error("reload: configuration not usable, keeping the running one", "config", file, "err", err)
		return err
	}
	if err := logs.apply(rt.Logging); err != nil {
		log.Error("reload: logging not applied", "err", err)
		return err
	}
	if _, err := node.Reload(totem.FromRuntime(rt)); err != nil {
		log.Error("reload: not applied, the node runs on as before", "config", file, "err", err)
		return err
	}
	log.Info("reload: configuration applied", "config", file)
	return nil
}

// logSwitch is the daemon's slog handler: it writes to stderr and/or the logfile as the
// logging section says, with debug per subsystem (logger_subsys), and can be
// reconfigured on SIGHUP while the node holds loggers derived from it.
type logSwitch struct {
	stderr   io.Writer
	override string // --log-level
	host     string // this host's name, in every line as in corosync's

	cur atomic.Pointer[logConfig]
	mu  sync.Mutex // serializes writes and reconfiguration
}

type logConfig struct {
	sinks    []io.Writer
	file     *os.File
	level    slog.Level
	subsys   map[string]slog.Level
	timeMode string // on, off, hires
}

func levelOf(debug string) slog.Level {
	if debug == "on" || debug == "trace" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func (s *logSwitch) apply(l config.Logging) error {
	c := &logConfig{level: levelOf(l.Debug), subsys: map[string]slog.Level{}, timeMode: l.Timestamp}
	switch s.override {
	case "debug":
		c.level = slog.LevelDebug
	case "warn":
		c.level = slog.LevelWarn
	case "info":
		c.level = slog.LevelInfo
	}
	for _, sub := range l.Subsys {
		c.subsys[strings.ToLower(sub.Subsys)] = levelOf(sub.Debug)
	}
	if l.ToStderr {
		c.sinks = append(c.sinks, s.stderr)
	}
	if l.ToLogfile && l.Logfile != "" {
		f, err := os.OpenFile(l.Logfile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("logfile %s: %w", l.Logfile, err)
		}
		c.file = f
		c.sinks = append(c.sinks, f)
	}
	s.mu.Lock()
	old := s.cur.Swap(c)
	s.mu.Unlock()
	if old != nil && old.file != nil {
		old.file.Close()
	}
	return nil
}

func (s *logSwitch) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cur.Load(); c != nil && c.file != nil {
		c.file.Close()
	}
}

func (s *logSwitch) Enabled(_ context.Context, lv slog.Level) bool {
	c := s.cur.Load()
	if c == nil || len(c.sinks) == 0 {
		return false
	}
	min := c.level
	for _, sl := range c.subsys {
		min = minLevel(min, sl)
	}
	return lv >= min
}

func minLevel(a, b slog.Level) slog.Level {
	if a < b {
		return a
	}
	return b
}

func (s *logSwitch) Handle(ctx context.Context, r slog.Record) error {
	return s.handle(ctx, r, nil, nil)
}

// handle writes one record; attrs/groups are those bound with WithAttrs/WithGroup.
func (s *logSwitch) handle(_ context.Context, r slog.Record, attrs []slog.Attr, groups []string) error {
	c := s.cur.Load()
	if c == nil || len(c.sinks) == 0 {
		return nil
	}
	min := c.level
	subsys := ""
	find := func(a slog.Attr) bool {
		if a.Key == "subsys" {
			subsys = strings.ToLower(a.Value.String())
			return false
		}
		return true
	}
	for _, a := range attrs {
		find(a)
	}
	r.Attrs(find)
	if sl, ok := c.subsys[subsys]; ok {
		min = sl
	}
	if r.Level < min {
		return nil
	}
	line := corosyncLine(nil, r, attrs, groups, c.timeMode, s.host, os.Getpid())
	s.mu.Lock()
	defer s.mu.Unlock()
	var firstErr error
	for _, w := range c.sinks {
		if _, err := w.Write(line); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func (s *logSwitch) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &boundHandler{s: s, attrs: attrs}
}

func (s *logSwitch) WithGroup(name string) slog.Handler {
	return &boundHandler{s: s, groups: []string{name}}
}

// boundHandler is logSwitch with attributes or groups bound, still following reloads.
type boundHandler struct {
	s      *logSwitch
	attrs  []slog.Attr
	groups []string
}

func (b *boundHandler) Enabled(ctx context.Context, lv slog.Level) bool { return b.s.Enabled(ctx, lv) }
func (b *boundHandler) Handle(ctx context.Context, r slog.Record) error {
	return b.s.handle(ctx, r, b.attrs, b.groups)
}
func (b *boundHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(b.groups) > 0 {
		// Attributes after a group belong inside it; keep it simple and correct by
		// flattening them into the record's top level with the group as a prefix.
		qual := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			qual[i] = slog.Attr{Key: strings.Join(b.groups, ".") + "." + a.Key, Value: a.Value}
		}
		attrs = qual
	}
	return &boundHandler{s: b.s, attrs: append(append([]slog.Attr{}, b.attrs...), attrs...), groups: b.groups}
}
func (b *boundHandler) WithGroup(name string) slog.Handler {
	return &boundHandler{s: b.s, attrs: b.attrs, groups: append(append([]string{}, b.groups...), name)}
}
