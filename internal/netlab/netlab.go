// Package netlab builds small multi-host networks on one Linux machine for tests: one network
// namespace per host, one bridge per ring (in a namespace of its own), a veth pair per host and
// ring. It starts processes inside the hosts, kills them by PID, cuts and heals links,
// partitions a ring into groups of hosts (nft rules on the bridge), adds netem loss, and
// removes everything it created on Close.
//
// It needs root, iproute2 and network-namespace support; Check reports why a machine cannot run
// it so tests can skip with a clear message. All traffic stays inside the namespaces: hosts get
// addresses 10.<77+ring>.<lab>.<host>/24 on their own bridge and nothing routes out.
package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options describe a lab.
type Options struct {
	// Prefix names the namespaces (<prefix>-br, <prefix>-n1 ...); keep it short and unique per
	// test so parallel runs don't collide.
	Prefix string
	Hosts  int // 1..50
	Rings  int // bridges, 1..4 (default 1)
	// Subnet selects the third octet of every address, so two labs can coexist (default 0).
	Subnet int
}

// Lab is a running network of namespaces.
type Lab struct {
	opts Options

	mu     sync.Mutex
	procs  []*Proc
	nsMade []string
}

// Proc is a process started inside a host.
type Proc struct {
	Host int
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Check reports whether this machine can run a lab (root, iproute2, namespaces).
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("netlab: needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("netlab: iproute2 (ip) is not installed")
	}
	name := fmt.Sprintf("gtprobe%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: cannot create a network namespace: %s", strings.TrimSpace(string(out)))
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	return nil
}

// New creates the namespaces, bridges and links. On error it removes what it made.
func New(opts Options) (*Lab, error) {
	if opts.Rings == 0 {
		opts.Rings = 1
	}
	if opts.Hosts < 1 || opts.Hosts > 50 || opts.Rings < 1 || opts.Rings > 4 || opts.Prefix == "" || len(opts.Prefix) > 6 {
		return nil, fmt.Errorf("netlab: bad options %+v (hosts 1..50, rings 1..4, prefix 1..6 chars)", opts)
	}
	l := &Lab{opts: opts}
	if err := l.build(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) brNS() string        { return l.opts.Prefix + "-br" }
func (l *Lab) hostNS(h int) string { return fmt.Sprintf("%s-n%d", l.opts.Prefix, h) }

// NS returns the network namespace name of host h (1-based).
func (l *Lab) NS(h int) string { return l.hostNS(h) }

// Addr returns host h's address on ring r.
func (l *Lab) Addr(h, r int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(77 + r), byte(l.opts.Subnet), byte(h)})
}

// Hosts returns the number of hosts.
func (l *Lab) Hosts() int { return l.opts.Hosts }

func run(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *Lab) addNS(name string) error {
	_ = exec.Command("ip", "netns", "del", name).Run() // a leftover of a crashed earlier run
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	l.nsMade = append(l.nsMade, name)
	return run("ip", "-n", name, "link", "set", "lo", "up")
}

func (l *Lab) build() error {
	if err := l.addNS(l.brNS()); err != nil {
		return err
	}
	for r := 0; r < l.opts.Rings; r++ {
		br := fmt.Sprintf("br%d", r)
		if err := run("ip", "-n", l.brNS(), "link", "add", br, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"); err != nil {
			return err
		}
		if err := run("ip", "-n", l.brNS(), "link", "set", br, "up"); err != nil {
			return err
		}
	}
	for h := 1; h <= l.opts.Hosts; h++ {
		ns := l.hostNS(h)
		if err := l.addNS(ns); err != nil {
			return err
		}
		for r := 0; r < l.opts.Rings; r++ {
			port := l.port(h, r)
			dev := fmt.Sprintf("eth%d", r)
			steps := [][]string{
				{"ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", l.brNS()},
				{"ip", "-n", ns, "addr", "add", l.Addr(h, r).String() + "/24", "dev", dev},
				{"ip", "-n", ns, "link", "set", dev, "up"},
				{"ip", "-n", l.brNS(), "link", "set", port, "master", fmt.Sprintf("br%d", r)},
				{"ip", "-n", l.brNS(), "link", "set", port, "up"},
			}
			if r == 0 {
				steps = append(steps, []string{"ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", dev})
			}
			for _, s := range steps {
				if err := run(s...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// port is the bridge-side name of host h's veth on ring r.
func (l *Lab) port(h, r int) string { return fmt.Sprintf("v%dr%d", h, r) }

// Command returns a command that runs inside host h.
func (l *Lab) Command(ctx context.Context, h int, name string, args ...string) *exec.Cmd {
	full := append([]string{"netns", "exec", l.hostNS(h), name}, args...)
	return exec.CommandContext(ctx, "ip", full...)
}

// Spec describes a process to start inside a host.
type Spec struct {
	Path string
	Args []string
	Env  []string // nil: the test's environment
	Log  string   // file that receives stdout and stderr (appended); empty discards them
}

// Start runs spec inside host h in the background, in its own process group. Close kills it by
// PID if it is still running.
func (l *Lab) Start(h int, spec Spec) (*Proc, error) {
	full := append([]string{"netns", "exec", l.hostNS(h), spec.Path}, spec.Args...)
	cmd := exec.Command("ip", full...)
	cmd.Env = spec.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if spec.Log != "" {
		f, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = f, f
		defer f.Close()
	}
	if err := StartTied(cmd); err != nil {
		return nil, err
	}
	p := &Proc{Host: h, Cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// Signal sends sig to the process (ip netns exec execs the program, so the PID is the program's).
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() error {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	return p.Wait(5 * time.Second)
}

// Wait waits up to d for the process to exit and returns its exit error.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("netlab: pid %d still running after %v", p.Cmd.Process.Pid, d)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// CutLink takes host h's port on ring r down at the bridge: h is cut off on that ring.
func (l *Lab) CutLink(h, r int) error {
	return run("ip", "-n", l.brNS(), "link", "set", l.port(h, r), "down")
}

// HealLink undoes CutLink.
func (l *Lab) HealLink(h, r int) error {
	return run("ip", "-n", l.brNS(), "link", "set", l.port(h, r), "up")
}

// Partition splits ring r into the given groups of hosts: frames between hosts of different
// groups are dropped at the bridge, hosts of one group still reach each other. Hosts named in
// no group form one more group together. It replaces any earlier partition of that ring.
// Unlike CutLink it can keep a minority of several hosts talking among themselves. It needs nft.
func (l *Lab) Partition(r int, groups ...[]int) error {
	if r < 0 || r >= l.opts.Rings {
		return fmt.Errorf("netlab: partition: ring %d out of 0..%d", r, l.opts.Rings-1)
	}
	group := make(map[int]int, l.opts.Hosts)
	for gi, g := range groups {
		for _, h := range g {
			if h < 1 || h > l.opts.Hosts {
				return fmt.Errorf("netlab: partition: host %d out of 1..%d", h, l.opts.Hosts)
			}
			if _, dup := group[h]; dup {
				return fmt.Errorf("netlab: partition: host %d named in two groups", h)
			}
			group[h] = gi + 1
		}
	}
	members := make([][]string, len(groups)+1) // index 0: the hosts named nowhere
	for h := 1; h <= l.opts.Hosts; h++ {
		members[group[h]] = append(members[group[h]], `"`+l.port(h, r)+`"`)
	}
	var rules strings.Builder
	for _, m := range members {
		if len(m) == 0 {
			continue
		}
		set := "{ " + strings.Join(m, ", ") + " }"
		fmt.Fprintf(&rules, "    iifname %s oifname != %s drop\n", set, set)
	}
	table := fmt.Sprintf("netlab_r%d", r)
	_ = exec.Command("ip", "netns", "exec", l.brNS(), "nft", "delete", "table", "bridge", table).Run()
	script := fmt.Sprintf("table bridge %s {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n%s  }\n}\n", table, rules.String())
	cmd := exec.Command("ip", "netns", "exec", l.brNS(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: partition ring %d: nft: %v: %s", r, err, bytes.TrimSpace(out))
	}
	return nil
}

// Heal removes a Partition of ring r (links cut with CutLink stay cut).
func (l *Lab) Heal(r int) error {
	out, err := exec.Command("ip", "netns", "exec", l.brNS(), "nft", "delete", "table", "bridge", fmt.Sprintf("netlab_r%d", r)).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("No such file")) {
		return fmt.Errorf("netlab: heal ring %d: %v: %s", r, err, bytes.TrimSpace(out))
	}
	return nil
}

// Loss sets netem packet loss (percent) on host h's ring-r interface; 0 removes it.
func (l *Lab) Loss(h, r int, percent float64) error {
	dev := fmt.Sprintf("eth%d", r)
	_ = exec.Command("ip", "netns", "exec", l.hostNS(h), "tc", "qdisc", "del", "dev", dev, "root").Run()
	if percent <= 0 {
		return nil
	}
	return run("ip", "netns", "exec", l.hostNS(h), "tc", "qdisc", "add", "dev", dev, "root", "netem", "loss", fmt.Sprintf("%g%%", percent))
}

// Close kills every process the lab started (by PID) and deletes its namespaces, which removes
// their links and bridges with them.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	made := l.nsMade
	l.nsMade = nil
	l.mu.Unlock()
	for _, p := range procs {
		if !p.Exited() {
			_ = p.Kill()
		}
	}
	var errs []error
	for i := len(made) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", made[i]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("netlab: delete %s: %s", made[i], bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

// StartTied starts cmd so that it is killed (SIGKILL) when the test binary dies, however it
// dies: a timeout or ^C used to leave corosync daemons running for minutes, and one that had
// inherited a shell's flock on a shared lock file blocked every other run waiting for it.
//
// The kernel's parent-death signal follows the thread that forked, not the process, and Go
// ends a thread whenever a goroutine locked to it returns (the attacker tests do that after
// entering a namespace): a daemon forked from such a thread was killed in the middle of a
// test. So every tied child is forked from one thread that a goroutine holds for the life of
// the process.
func StartTied(cmd *exec.Cmd) error {
	tiedOnce.Do(func() {
		tiedReqs = make(chan tiedReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range tiedReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	tiedReqs <- tiedReq{cmd, done}
	return <-done
}

type tiedReq struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	tiedOnce sync.Once
	tiedReqs chan tiedReq
)
