// Package interop runs REAL corosync 3.1 daemons and gototem daemons side by side, each node in
// its own network namespace (built with netlab), so the suite can check that gototem joins
// corosync's rings, counts in its votequorum and exchanges CPG messages with its clients.
//
// It owns: generating the cluster's corosync.conf (udpu or udp multicast, nodeids 1..N,
// votequorum), starting, stopping (SIGTERM) and killing (SIGKILL) each daemon by its PID,
// cutting the network (netlab), asking a real node with corosync-cmapctl / corosync-quorumtool /
// corosync-cfgtool and a gototem node with the same questions through `gototem
// status|quorum|cmap --socket PATH`, reading the corosync log for new memberships and
// "Completed service synchronization", and the small C CPG client in testdata.
//
// It must not touch anything it did not create: no system corosync service, no namespaces or
// processes of others, nothing outside its temporary directory except the libqb files in
// /dev/shm named after the PIDs of corosyncs it started and that are gone. Every wait is
// bounded by a deadline.
//
// How several corosyncs share one machine: each runs in its node's network namespace (libqb
// IPC uses abstract unix sockets, which are per network namespace, so a tool started with `ip
// netns exec` talks to that node's daemon) and in a private mount namespace where the node's
// own directory is bind-mounted over /run, because corosync's pid file /run/corosync.pid is
// hard-coded. State (ring id files) and the log go to per-node directories named in the config.
// corosync 3.1.7 publishes no ring id in cmap (there is no runtime.totem tree), so the ring id
// comes from corosync-quorumtool -s ("Ring ID: 1.1c") or from the log's "A new membership
// (1.1c) was formed" lines.
//
// The suite (go test ./interop, as root after .ci/install-interop.sh) has four parts:
// TestCorosync* run real corosync only and validate the harness and the mixed scenarios with
// corosync in every role; TestStandInGototemPaths drives the gototem code paths through a
// stand-in script (real corosync behind the gototem CLI) — both by default, under a minute;
// TestMixed* put gototem nodes beside corosync nodes (GOTOTEM_INTEROP=1; with
// GOTOTEM_INTEROP_STANDIN=1 they run against the stand-in instead, to check the suite itself);
// TestBenchCPGFlood measures CPG throughput (GOTOTEM_BENCH=1). GOTOTEM_INTEROP_KEEP=1 keeps
// every cluster's directory (configs, logs) for a post-mortem.
package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gototem/gototem/internal/netlab"
)

// Engine is what a node runs.
type Engine int

const (
	Corosync Engine = iota // the system's corosync (Debian's 3.1.7)
	Gototem                // `gototem run` from Options.Gototem
)

func (e Engine) String() string {
	if e == Gototem {
		return "gototem"
	}
	return "corosync"
}

// Options describe a cluster. Zero values give the defaults noted on each field.
type Options struct {
	// Prefix names the netlab namespaces (1..6 characters, unique among concurrent labs).
	Prefix string
	// Subnet is the netlab third address octet (10.77.<Subnet>.<nodeid>), default 0.
	Subnet int
	// Engines gives node i+1's engine; its length is the number of nodes (1..20).
	Engines []Engine
	// Transport is "udpu" (default), "udp" (multicast; the group is derived from
	// ClusterName by corosync unless McastAddr is set) or "knet" (corosync 3's default).
	Transport string
	// Knet (transport knet only): link_mode, crypto and authkey. With Rings > 1 every node,
	// corosync or gototem, runs that many knet links.
	Knet KnetOptions
	// McastAddr, if set with udp, is written as totem.interface.mcastaddr.
	McastAddr string
	// TokenMS is totem.token; default 1000 to keep failure detection near 3.5 s (corosync adds
	// token_coefficient per node above two, and detection is token + consensus).
	TokenMS int
	// ClusterName defaults to "gototem-lab" (the name the shared captures were made with).
	ClusterName string
	// Rings is the number of redundant rings (default 1). More than one needs RRPMode and
	// gototem engines only: corosync 3 has no redundant ring on udp/udpu.
	Rings   int
	RRPMode string
	// TotemExtra lines go into the totem section as they are, e.g. "window_size: 20".
	TotemExtra []string
	// SystemExtra lines go into the system section, e.g. "qb_ipc_type: socket".
	SystemExtra []string
	// Quiet turns corosync's debug logging off (it is on by default: the suite reads the log
	// and debug lines explain failures).
	Quiet bool
	// Dir is the working directory; default a new directory under os.TempDir(). Keep it short:
	// a unix socket path holds at most 107 bytes. Removed by Close unless KeepDir.
	Dir     string
	KeepDir bool
	// Gototem is the gototem binary; required when any engine is Gototem.
	Gototem string
	// Logf receives progress lines (t.Logf); nil discards them.
	Logf func(format string, args ...any)
}

// Cluster is a set of nodes on one netlab network.
type Cluster struct {
	opts   Options
	lab    *netlab.Lab
	dir    string
	nodes  []*Node
	ownDir bool

	mu      sync.Mutex
	started []int   // PIDs of every daemon started (their /dev/shm files are ours to remove)
	procs   []*Proc // clients started with StartProc
}

// Node is one member of the cluster, running or not.
type Node struct {
	ID     int
	Engine Engine
	Dir    string // per-node directory: corosync.conf, logs, run/, lib/
	Conf   string
	Log    string // the daemon's own log file (corosync: logging.logfile)
	Stdout string // the daemon's stdout+stderr
	Sock   string // gototem's control socket

	c    *Cluster
	proc *netlab.Proc
}

// Check reports why this machine cannot run real corosync nodes: not root, no namespaces, or
// corosync and its tools not installed (.ci/install-interop.sh installs them).
func Check() error {
	if err := netlab.Check(); err != nil {
		return err
	}
	for _, b := range []string{"corosync", "corosync-cmapctl", "corosync-quorumtool", "corosync-cfgtool", "unshare", "mount"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("interop: %s is not installed (run .ci/install-interop.sh)", b)
		}
	}
	return nil
}

// New writes the configuration and builds the network; no daemon runs yet (StartAll).
func New(opts Options) (*Cluster, error) {
	if opts.Transport == "" {
		opts.Transport = "udpu"
	}
	if opts.TokenMS == 0 {
		opts.TokenMS = 1000
	}
	if opts.ClusterName == "" {
		opts.ClusterName = "gototem-lab"
	}
	n := len(opts.Engines)
	switch {
	case n < 1 || n > 20:
		return nil, fmt.Errorf("interop: %d nodes: want 1..20", n)
	case opts.Transport != "udpu" && opts.Transport != "udp" && opts.Transport != "knet":
		return nil, fmt.Errorf("interop: transport %q: want udpu, udp or knet", opts.Transport)
	case opts.TokenMS < 0:
		return nil, fmt.Errorf("interop: token %d ms: want a positive number", opts.TokenMS)
	case slices.Contains(opts.Engines, Gototem) && opts.Gototem == "":
		return nil, errors.New("interop: a gototem node needs Options.Gototem (the binary)")
	case slices.ContainsFunc(opts.Engines, func(e Engine) bool { return e != Corosync && e != Gototem }):
		return nil, fmt.Errorf("interop: engines %v: each must be Corosync or Gototem", opts.Engines)
	case opts.McastAddr != "" && opts.Transport != "udp":
		return nil, errors.New("interop: McastAddr needs transport udp")
	}
	if opts.McastAddr != "" {
		if a, err := netip.ParseAddr(opts.McastAddr); err != nil || !a.Is4() || !a.IsMulticast() {
			return nil, fmt.Errorf("interop: McastAddr %q: want an IPv4 multicast address", opts.McastAddr)
		}
	}
	c := &Cluster{opts: opts, dir: opts.Dir}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "gti")
		if err != nil {
			return nil, fmt.Errorf("interop: %v", err)
		}
		c.dir, c.ownDir = d, true
	}
	for i, e := range opts.Engines {
		d := filepath.Join(c.dir, fmt.Sprintf("n%d", i+1))
		nd := &Node{ID: i + 1, Engine: e, Dir: d, Conf: filepath.Join(d, "corosync.conf"),
			Log: filepath.Join(d, "corosync.log"), Stdout: filepath.Join(d, "stdout.log"),
			Sock: filepath.Join(d, "gototem.sock"), c: c}
		if len(nd.Sock) > 107 {
			c.cleanupDir()
			return nil, fmt.Errorf("interop: socket path %s is %d bytes, a unix socket allows 107: use a shorter Dir", nd.Sock, len(nd.Sock))
		}
		for _, sub := range []string{"run", "lib"} {
			if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
				c.cleanupDir()
				return nil, fmt.Errorf("interop: %v", err)
			}
		}
		c.nodes = append(c.nodes, nd)
	}
	if opts.Rings == 0 {
		opts.Rings = 1
	}
	lab, err := netlab.New(netlab.Options{Prefix: opts.Prefix, Hosts: n, Subnet: opts.Subnet, Rings: opts.Rings})
	if err != nil {
		c.cleanupDir()
		return nil, err
	}
	c.lab = lab
	if err := c.writeKnetKey(); err != nil {
		c.Close()
		return nil, err
	}
	for _, nd := range c.nodes {
		if err := os.WriteFile(nd.Conf, []byte(c.Config(nd.ID)), 0o644); err != nil {
			c.Close()
			return nil, fmt.Errorf("interop: %v", err)
		}
	}
	return c, nil
}

// Config returns node id's corosync.conf. Every node's file is the same apart from the paths
// of its own log and state directory.
func (c *Cluster) Config(id int) string {
	o := c.opts
	nd := c.nodes[id-1]
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# generated by gototem interop for node %d of %d (%s)", id, len(c.nodes), o.Transport)
	p("totem {")
	p("    version: 2")
	p("    cluster_name: %s", o.ClusterName)
	p("    transport: %s", o.Transport)
	if o.Transport == "knet" {
		c.knetTotem(id, p)
	} else {
		// udp/udpu cannot encrypt in corosync 3; saying so keeps corosync from warning about it
		p("    crypto_cipher: none")
		p("    crypto_hash: none")
	}
	p("    token: %d", o.TokenMS)
	if o.Rings > 1 && o.Transport != "knet" {
		p("    rrp_mode: %s", o.RRPMode)
	}
	for _, l := range o.TotemExtra {
		p("    %s", l)
	}
	if o.Transport == "udp" && o.McastAddr != "" {
		p("    interface {")
		p("        linknumber: 0")
		p("        mcastaddr: %s", o.McastAddr)
		p("        mcastport: 5405")
		p("    }")
	}
	p("}")
	p("nodelist {")
	for _, m := range c.nodes {
		p("    node {")
		for r := 0; r < max(o.Rings, 1); r++ {
			p("        ring%d_addr: %s", r, c.lab.Addr(m.ID, r))
		}
		p("        nodeid: %d", m.ID)
		p("        name: node%d", m.ID)
		p("    }")
	}
	p("}")
	p("quorum {")
	p("    provider: corosync_votequorum")
	if len(c.nodes) == 2 {
		p("    two_node: 1")
	}
	p("}")
	p("logging {")
	p("    to_stderr: no")
	p("    to_syslog: no")
	p("    to_logfile: yes")
	p("    logfile: %s", nd.Log)
	p("    timestamp: hires")
	p("    fileline: off")
	p("    debug: %s", map[bool]string{true: "off", false: "on"}[o.Quiet])
	p("}")
	p("system {")
	p("    state_dir: %s", filepath.Join(nd.Dir, "lib"))
	// the default would move corosync into the root cgroup, outside the test's
	p("    move_to_root_cgroup: no")
	for _, l := range o.SystemExtra {
		p("    %s", l)
	}
	p("}")
	return b.String()
}

// Lab is the underlying network.
func (c *Cluster) Lab() *netlab.Lab { return c.lab }

// Dir is the working directory.
func (c *Cluster) Dir() string { return c.dir }

// Node returns node id (1-based).
func (c *Cluster) Node(id int) *Node { return c.nodes[id-1] }

// Nodes returns every node in nodeid order.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// IDs returns the nodeids of the nodes that run engine e.
func (c *Cluster) IDs(e Engine) []int {
	var ids []int
	for _, n := range c.nodes {
		if n.Engine == e {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// Transport is the configured transport.
func (c *Cluster) Transport() string { return c.opts.Transport }

// ClusterName is the configured cluster_name.
func (c *Cluster) ClusterName() string { return c.opts.ClusterName }

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// CheckConfig runs `corosync -t` on node 1's file inside node 1's namespace (corosync looks up
// the local address there): the generated config must be one real corosync accepts.
func (c *Cluster) CheckConfig(ctx context.Context) error {
	out, err := c.run(ctx, 1, 10*time.Second, "corosync", "-t", "-c", c.nodes[0].Conf)
	if err != nil {
		return fmt.Errorf("interop: corosync -t rejects %s: %v: %s", c.nodes[0].Conf, err, bytes.TrimSpace(out))
	}
	return nil
}

// StartAll launches every node at once (as a cluster boot does), then waits until each answers
// its local queries. It does not wait for the ring: see WaitMembers.
func (c *Cluster) StartAll(ctx context.Context) error {
	for _, n := range c.nodes {
		if err := n.launch(); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := n.waitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close kills every daemon the cluster started (by PID), deletes the namespaces, removes the
// libqb blackbox files of those daemons and, unless KeepDir, the working directory.
func (c *Cluster) Close() error {
	var errs []error
	c.mu.Lock()
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	for _, p := range procs {
		_ = p.Stop(3 * time.Second) // clients first: they leave their groups while corosync runs
	}
	if c.lab != nil {
		// SIGTERM first so corosync leaves cleanly and removes its own shared memory
		for _, n := range c.nodes {
			if n.Running() {
				_ = n.proc.Signal(syscall.SIGTERM)
			}
		}
		for _, n := range c.nodes {
			if n.proc != nil {
				_ = n.proc.Wait(5 * time.Second)
			}
		}
		errs = append(errs, c.lab.Close()) // SIGKILLs what is left, by PID
	}
	c.removeShm()
	c.cleanupDir()
	return errors.Join(errs...)
}

func (c *Cluster) cleanupDir() {
	if c.ownDir && !c.opts.KeepDir {
		_ = os.RemoveAll(c.dir)
	}
}

// removeShm deletes what a corosync killed with SIGKILL leaves in /dev/shm — its 8 MiB libqb
// blackbox files and the directories of IPC connections it served — for the PIDs this cluster
// started and that are gone.
func (c *Cluster) removeShm() {
	c.mu.Lock()
	pids := slices.Clone(c.started)
	c.mu.Unlock()
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		for _, s := range []string{"data", "header"} {
			_ = os.Remove(fmt.Sprintf("/dev/shm/qb-corosync-%d-blackbox-%s", pid, s))
		}
		// libqb names an IPC connection's directory qb-<server pid>-<client pid>-...: a
		// daemon that dies with clients connected leaves them behind
		leftovers, _ := filepath.Glob(fmt.Sprintf("/dev/shm/qb-%d-*", pid))
		for _, d := range leftovers {
			_ = os.RemoveAll(d)
		}
	}
}

// run executes a command inside node id's namespace, bounded by d.
func (c *Cluster) run(ctx context.Context, id int, d time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cmd := c.lab.Command(ctx, id, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%s: no answer within %v", name, d)
	}
	return out.Bytes(), err
}

func (n *Node) String() string { return fmt.Sprintf("%d:%s", n.ID, n.Engine) }

// PID returns the daemon's PID, 0 if it never started.
func (n *Node) PID() int {
	if n.proc == nil {
		return 0
	}
	return n.proc.Cmd.Process.Pid
}

// Running reports whether the daemon process is alive.
func (n *Node) Running() bool { return n.proc != nil && !n.proc.Exited() }

// Start launches the node (a restart after Stop/Kill is a re-join) and waits until it answers
// local queries (bounded by ctx and 15 s).
func (n *Node) Start(ctx context.Context) error {
	if err := n.launch(); err != nil {
		return err
	}
	return n.waitReady(ctx)
}

// launch starts the daemon through: ip netns exec <ns> unshare -m sh -c 'mount --bind <dir>/run
// /run && exec <daemon>'. Every step execs the next, so the PID netlab records is the daemon's.
func (n *Node) launch() error {
	if n.Running() {
		return fmt.Errorf("interop: node %d already running (pid %d)", n.ID, n.PID())
	}
	var script string
	var args []string
	switch n.Engine {
	case Corosync:
		// -f: stay in the foreground, so the PID is the daemon's and SIGTERM/SIGKILL reach it
		script = `mount --bind "$1/run" /run && exec corosync -f -c "$1/corosync.conf"`
		args = []string{n.Dir}
		_ = os.Remove(filepath.Join(n.Dir, "run", "corosync.pid"))
	case Gototem:
		// a node's own hosts file, if the test wrote one, resolves the nodelist's names
		// (the Abiquo guide's cluster names its nodes rsha1, rsha2)
		script = `mount --bind "$1/run" /run && { [ ! -f "$1/hosts" ] || mount --bind "$1/hosts" /etc/hosts; } && exec "$2" run -c "$1/corosync.conf" --socket "$1/gototem.sock"`
		args = []string{n.Dir, n.c.opts.Gototem}
		_ = os.Remove(n.Sock) // left behind by a killed gototem
	}
	full := append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, args...)
	p, err := n.c.lab.Start(n.ID, netlab.Spec{Path: "unshare", Args: full, Log: n.Stdout})
	if err != nil {
		return fmt.Errorf("interop: start node %d (%s): %v", n.ID, n.Engine, err)
	}
	n.proc = p
	// the lab script's convention, so its helpers (and a person) can find the daemon
	_ = os.WriteFile(filepath.Join(n.Dir, "pid"), []byte(fmt.Sprintf("%d\n", n.PID())), 0o644)
	n.c.mu.Lock()
	n.c.started = append(n.c.started, p.Cmd.Process.Pid)
	n.c.mu.Unlock()
	n.c.logf("node %d (%s) launched, pid %d", n.ID, n.Engine, n.PID())
	return nil
}

// waitReady waits until the daemon answers a local query: corosync's cmap IPC, or gototem's
// control socket. A daemon that exits meanwhile is an error quoting the end of its logs.
func (n *Node) waitReady(ctx context.Context) error {
	err := Poll(ctx, 15*time.Second, 100*time.Millisecond, func() (bool, string) {
		if !n.Running() {
			return false, "exited"
		}
		var out []byte
		var err error
		if n.Engine == Corosync {
			out, err = n.Tool(ctx, "corosync-cmapctl", "-g", "runtime.config.totem.token")
		} else {
			out, err = n.Gototem(ctx, "status")
		}
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, bytes.TrimSpace(out))
		}
		return true, ""
	}, func() bool { return !n.Running() })
	if err != nil {
		return fmt.Errorf("interop: node %d (%s) not ready: %v\n%s", n.ID, n.Engine, err, n.LogTail(15))
	}
	return nil
}

// Stop sends SIGTERM (corosync leaves the ring cleanly) and waits up to d for the exit; a
// daemon still alive then is killed and Stop reports it.
func (n *Node) Stop(d time.Duration) error {
	if !n.Running() {
		return nil
	}
	if err := n.proc.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("interop: node %d: SIGTERM: %v", n.ID, err)
	}
	if err := n.proc.Wait(d); err != nil && !n.proc.Exited() {
		_ = n.proc.Kill()
		return fmt.Errorf("interop: node %d (pid %d) ignored SIGTERM for %v; killed", n.ID, n.PID(), d)
	}
	n.c.logf("node %d stopped (SIGTERM)", n.ID)
	return nil
}

// Pause stops the daemon with SIGSTOP for d and lets it go on with SIGCONT: a process pause
// (an overloaded host, a stalled disk) long enough for a token loss when d passes the token
// timeout. The daemon keeps its sockets: what arrived meanwhile waits in their buffers.
func (n *Node) Pause(d time.Duration) error {
	if !n.Running() {
		return fmt.Errorf("interop: node %d is not running", n.ID)
	}
	if err := n.proc.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("interop: node %d: SIGSTOP: %v", n.ID, err)
	}
	n.c.logf("node %d paused (SIGSTOP) for %v", n.ID, d)
	time.Sleep(d)
	if err := n.proc.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("interop: node %d: SIGCONT: %v", n.ID, err)
	}
	return nil
}

// Kill sends SIGKILL: the node vanishes without leaving the ring (a crash).
func (n *Node) Kill() error {
	if !n.Running() {
		return fmt.Errorf("interop: node %d is not running", n.ID)
	}
	if err := n.proc.Kill(); err != nil && !n.proc.Exited() {
		return fmt.Errorf("interop: node %d: %v", n.ID, err)
	}
	n.c.removeShm()
	n.c.logf("node %d killed (SIGKILL)", n.ID)
	return nil
}

// Tool runs a program (a corosync tool, a client) inside the node's namespace, bounded by 5 s.
func (n *Node) Tool(ctx context.Context, name string, args ...string) ([]byte, error) {
	return n.c.run(ctx, n.ID, 5*time.Second, name, args...)
}

// Gototem runs `gototem SUB --socket <sock> ARGS...` inside the node's namespace, bounded by
// 5 s (the CLI contract of shared/lab/README.md: --socket comes right after the subcommand).
func (n *Node) Gototem(ctx context.Context, sub string, args ...string) ([]byte, error) {
	if n.c.opts.Gototem == "" {
		return nil, errors.New("interop: no gototem binary configured")
	}
	full := append([]string{sub, "--socket", n.Sock}, args...)
	return n.c.run(ctx, n.ID, 5*time.Second, n.c.opts.Gototem, full...)
}

// Members returns, sorted, the nodeids this node lists as joined in runtime.members.
func (n *Node) Members(ctx context.Context) ([]int, error) {
	var out []byte
	var err error
	if n.Engine == Corosync {
		out, err = n.Tool(ctx, "corosync-cmapctl", "-b", "runtime.members")
	} else {
		out, err = n.Gototem(ctx, "cmap", "runtime.members")
	}
	if err != nil {
		return nil, fmt.Errorf("node %d members: %v: %s", n.ID, err, bytes.TrimSpace(out))
	}
	return ParseJoinedMembers(string(out))
}

// Quorum returns the node's corosync-quorumtool -s view (gototem: `gototem quorum`).
func (n *Node) Quorum(ctx context.Context) (QuorumStatus, error) {
	var out []byte
	var err error
	if n.Engine == Corosync {
		out, err = n.Tool(ctx, "corosync-quorumtool", "-s")
		// exit status 2 means "not quorate", and the status is printed all the same
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			err = nil
		}
	} else {
		out, err = n.Gototem(ctx, "quorum")
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			err = nil
		}
	}
	if err != nil {
		return QuorumStatus{}, fmt.Errorf("node %d quorum: %v: %s", n.ID, err, bytes.TrimSpace(out))
	}
	q, err := ParseQuorumStatus(string(out))
	if err != nil {
		return q, fmt.Errorf("node %d: %v", n.ID, err)
	}
	return q, nil
}

// RingID returns the ring the node reports (the quorum view's Ring ID line).
func (n *Node) RingID(ctx context.Context) (RingID, error) {
	q, err := n.Quorum(ctx)
	return q.Ring, err
}

// LinkStatus returns corosync-cfgtool -s (gototem: `gototem status`) as link → nodeid → state.
func (n *Node) LinkStatus(ctx context.Context) (map[int]map[int]string, error) {
	var out []byte
	var err error
	if n.Engine == Corosync {
		out, err = n.Tool(ctx, "corosync-cfgtool", "-s")
	} else {
		out, err = n.Gototem(ctx, "status")
	}
	if err != nil {
		return nil, fmt.Errorf("node %d link status: %v: %s", n.ID, err, bytes.TrimSpace(out))
	}
	return ParseLinkStatus(string(out))
}

// Cmap returns the value of one key (corosync-cmapctl -g; gototem: `gototem cmap KEY`).
func (n *Node) Cmap(ctx context.Context, key string) (string, error) {
	var out []byte
	var err error
	if n.Engine == Corosync {
		out, err = n.Tool(ctx, "corosync-cmapctl", "-g", key)
	} else {
		out, err = n.Gototem(ctx, "cmap", key)
	}
	if err != nil {
		return "", fmt.Errorf("node %d cmap %s: %v: %s", n.ID, key, err, bytes.TrimSpace(out))
	}
	v, ok := ParseCmapValue(string(out), key)
	if !ok {
		return "", fmt.Errorf("node %d cmap: no %s in %q", n.ID, key, firstLines(string(out), 3))
	}
	return v, nil
}

// LogEvents parses the node's corosync log (memberships and sync completions so far).
func (n *Node) LogEvents() ([]LogEvent, error) {
	b, err := os.ReadFile(n.Log)
	if err != nil {
		return nil, fmt.Errorf("node %d log: %v", n.ID, err)
	}
	return ParseCorosyncLog(string(b)), nil
}

// LogTail returns the last lines of the node's log and stdout, for failure messages.
func (n *Node) LogTail(lines int) string {
	var b strings.Builder
	for _, f := range []string{n.Log, n.Stdout} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", f, len(ls), strings.Join(ls, "\n"))
	}
	return b.String()
}

// View is one node's answer to "which ring are you in, with whom".
type View struct {
	Members []int
	Ring    RingID
}

func (v View) String() string { return fmt.Sprintf("%v@%v", v.Members, v.Ring) }

// ViewOf asks a node for its members and ring id.
func (n *Node) ViewOf(ctx context.Context) (View, error) {
	m, err := n.Members(ctx)
	if err != nil {
		return View{}, err
	}
	r, err := n.RingID(ctx)
	return View{Members: m, Ring: r}, err
}

// WaitRing waits until every node in ids lists exactly want as its members and all of them
// report the same ring id, and returns that ring. On timeout the error shows each node's last
// answer.
func (c *Cluster) WaitRing(ctx context.Context, ids, want []int, d time.Duration) (RingID, error) {
	want = slices.Sorted(slices.Values(want))
	var ring RingID
	// each round spawns two tools per node: poll gently, the machine is shared
	err := Poll(ctx, d, 200*time.Millisecond, func() (bool, string) {
		var views []string
		ok := true
		var first RingID
		for i, id := range ids {
			v, err := c.Node(id).ViewOf(ctx)
			if err != nil {
				views = append(views, fmt.Sprintf("node %d: %v", id, err))
				ok = false
				continue
			}
			views = append(views, fmt.Sprintf("node %d: %v", id, v))
			if !slices.Equal(v.Members, want) {
				ok = false
			}
			if i == 0 {
				first = v.Ring
			} else if v.Ring != first {
				ok = false
			}
		}
		ring = first
		return ok, strings.Join(views, "; ")
	}, nil)
	if err != nil {
		return RingID{}, fmt.Errorf("interop: waiting for nodes %v to agree on members %v: %v", ids, want, err)
	}
	return ring, nil
}

// WaitSynced waits until the logs of the (real corosync) nodes ids show sync completion for
// ring r — corosync logs "Completed service synchronization" once every service synced.
func (c *Cluster) WaitSynced(ctx context.Context, ids []int, r RingID, d time.Duration) error {
	return Poll(ctx, d, 100*time.Millisecond, func() (bool, string) {
		var pending []string
		for _, id := range ids {
			evs, err := c.Node(id).LogEvents()
			if err != nil {
				pending = append(pending, err.Error())
				continue
			}
			last, synced := SyncState(evs)
			if last != r || !synced {
				pending = append(pending, fmt.Sprintf("node %d: last ring %v synced %v", id, last, synced))
			}
		}
		return len(pending) == 0, strings.Join(pending, "; ")
	}, nil)
}

// Partition splits the cluster network into groups (nodes named in no group form one more);
// Heal undoes it. CutLink/HealLink of the Lab isolate single nodes instead.
func (c *Cluster) Partition(groups ...[]int) error { return c.lab.Partition(0, groups...) }

// Heal removes a Partition.
func (c *Cluster) Heal() error { return c.lab.Heal(0) }

// Poll calls cond every interval until it returns true, the ctx ends, d passes or abort (if
// not nil) returns true. The error carries cond's last description of what it saw.
func Poll(ctx context.Context, d, interval time.Duration, cond func() (bool, string), abort func() bool) error {
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, desc := cond()
		if ok {
			return nil
		}
		last = desc
		if abort != nil && abort() {
			return fmt.Errorf("gave up: %s", last)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reached within %v; last: %s", d, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%v; last: %s", ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}
