package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/gototem/gototem/internal/netlab"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildCPGClient compiles testdata/cpgclient.c (found next to this source file) against libcpg
// into dir and returns the binary's path. It needs gcc and the libcpg headers
// (.ci/install-interop.sh installs both).
func BuildCPGClient(dir string) (string, error) {
	src, err := testdataFile("cpgclient.c")
	if err != nil {
		return "", err
	}
	return BuildC(src, filepath.Join(dir, "cpgclient"), "libcpg")
}

// BuildC compiles one C file against the pkg-config packages pkgs (falling back to -l<name
// without the lib prefix> when pkg-config does not know them).
func BuildC(src, out string, pkgs ...string) (string, error) {
	if _, err := exec.LookPath("gcc"); err != nil {
		return "", errors.New("interop: gcc is not installed (run .ci/install-interop.sh)")
	}
	args := []string{"-O2", "-Wall", "-Wextra", "-o", out, src}
	for _, p := range pkgs {
		flags, err := exec.Command("pkg-config", "--cflags", "--libs", p).Output()
		if err != nil {
			flags = []byte("-l" + strings.TrimPrefix(p, "lib"))
		}
		args = append(args, strings.Fields(string(flags))...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "gcc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("interop: gcc %s: %v: %s", filepath.Base(src), err, bytes.TrimSpace(b))
	}
	return out, nil
}

// testdataFile locates a file of this package's testdata directory, from the source file's
// own path (tests run in the package directory, but a helper may be called from elsewhere).
func testdataFile(name string) (string, error) {
	candidates := []string{filepath.Join("testdata", name)}
	if _, self, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(self), "testdata", name))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("interop: testdata/%s not found", name)
}

// Proc is a program running inside a node's namespace whose stdout is collected line by line
// and whose stdin stays open for Send: the C CPG client, `gototem listen`.
type Proc struct {
	Node *Node
	cmd  *exec.Cmd
	in   io.WriteCloser

	mu    sync.Mutex
	lines []string
	news  chan struct{} // closed and replaced whenever a line arrives or the output ends
	ended bool
	done  chan struct{}
	err   error
}

// StartProc runs name with args inside the node's namespace. Stderr goes to stdout's lines
// prefixed with "stderr: ", so failures are visible in Lines. The cluster's Close kills it by
// PID if it is still running.
func (n *Node) StartProc(name string, args ...string) (*Proc, error) {
	cmd := n.c.lab.Command(context.Background(), n.ID, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errp, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := netlab.StartTied(cmd); err != nil {
		return nil, fmt.Errorf("interop: node %d: start %s: %v", n.ID, name, err)
	}
	p := &Proc{Node: n, cmd: cmd, in: in, news: make(chan struct{}), done: make(chan struct{})}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.collect(out, "") }()
	go func() { defer readers.Done(); p.collect(errp, "stderr: ") }()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		p.err = cmd.Wait()
		p.mu.Lock()
		p.ended = true
		close(p.news)
		p.news = make(chan struct{})
		p.mu.Unlock()
		close(p.done)
	}()
	n.c.mu.Lock()
	n.c.procs = append(n.c.procs, p)
	n.c.mu.Unlock()
	return p, nil
}

func (p *Proc) collect(r io.Reader, prefix string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, prefix+sc.Text())
		close(p.news)
		p.news = make(chan struct{})
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r) // a line over the limit: keep draining so the child never blocks
}

// PID is the program's process id (ip netns exec execs it, so it is the program's own).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Send writes one line to the program's stdin.
func (p *Proc) Send(line string) error {
	if strings.ContainsRune(line, '\n') {
		return fmt.Errorf("interop: Send: line contains a newline")
	}
	_, err := io.WriteString(p.in, line+"\n")
	return err
}

// CloseStdin signals end of input.
func (p *Proc) CloseStdin() error { return p.in.Close() }

// Lines returns a copy of every line read so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// WaitFor waits up to d until pred holds for the lines read so far (it is re-evaluated on every
// new line), or the program's output ends.
func (p *Proc) WaitFor(d time.Duration, what string, pred func(lines []string) bool) error {
	deadline := time.After(d)
	for {
		p.mu.Lock()
		lines := append([]string(nil), p.lines...)
		news, ended := p.news, p.ended
		p.mu.Unlock()
		if pred(lines) {
			return nil
		}
		if ended {
			return fmt.Errorf("interop: node %d pid %d ended (%v) before %s; output tail:\n%s", p.Node.ID, p.PID(), p.err, what, tail(lines, 15))
		}
		select {
		case <-news:
		case <-deadline:
			return fmt.Errorf("interop: node %d pid %d: no %s within %v; output tail:\n%s", p.Node.ID, p.PID(), what, d, tail(lines, 15))
		}
	}
}

// Stop sends SIGTERM, waits up to d, then SIGKILL. It returns the exit error of a program
// that ended by itself with a failure (not the signal's).
func (p *Proc) Stop(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("interop: pid %d survives SIGKILL", p.PID())
	}
	return fmt.Errorf("interop: pid %d ignored SIGTERM for %v; killed", p.PID(), d)
}

// Deliveries parses the DELIVER lines of the C client's output, in order.
func (p *Proc) Deliveries() ([]Delivery, error) {
	var out []Delivery
	for _, l := range p.Lines() {
		kind, d, _, err := ParseClientLine(l)
		if err != nil {
			return nil, err
		}
		if kind == "DELIVER" {
			out = append(out, d)
		}
	}
	return out, nil
}

// Confchgs parses the CONFCHG lines of the C client's output, in order.
func (p *Proc) Confchgs() ([]Confchg, error) {
	var out []Confchg
	for _, l := range p.Lines() {
		kind, _, c, err := ParseClientLine(l)
		if err != nil {
			return nil, err
		}
		if kind == "CONFCHG" {
			out = append(out, c)
		}
	}
	return out, nil
}

// Ready returns the nodeid and pid of the client's READY line (it has joined its group).
func (p *Proc) Ready() (nodeid, pid int, ok bool) {
	for _, l := range p.Lines() {
		if strings.HasPrefix(l, "READY ") {
			if _, err := fmt.Sscanf(l, "READY %d %d", &nodeid, &pid); err == nil {
				return nodeid, pid, true
			}
		}
	}
	return 0, 0, false
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
