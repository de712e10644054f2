package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func init() {
	register("demo", command{
		summary: "start a local 3-node cluster over UDP, check ordering, kill and revive a node (demo [--nodes N])",
		run:     runDemo,
	})
}

const demoUsage = `usage: gototem demo [--nodes N] [--messages M] [--keep]
Starts N (3..5) "gototem run" children on 127.0.0.1..N over real UDP (udpu, token 1000),
sends M ordered messages from every node through the control sockets and checks that all
nodes delivered them in one order, kills node 2 with SIGKILL, brings it back, and prints a
membership and quorum timeline. Exit 0 only when every check passed. --keep leaves the
temporary directory (configs, logs) in place.
`

// demoNode is one child of the demo.
type demoNode struct {
	id   int
	ip   string
	dir  string
	conf string
	sock string
	cmd  *exec.Cmd
	exit chan error // receives the child's Wait result once
	log  *os.File
}

type demo struct {
	out   io.Writer
	exe   string
	dir   string
	nodes []*demoNode
	t0    time.Time
	ctx   context.Context
	mu    sync.Mutex // guards children against concurrent cleanup
}

func (d *demo) logf(format string, args ...any) {
	fmt.Fprintf(d.out, "%+7.2fs %s\n", time.Since(d.t0).Seconds(), fmt.Sprintf(format, args...))
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage) }
	n := fs.Int("nodes", 3, "number of nodes (3..5)")
	msgs := fs.Int("messages", 10, "messages per node per round")
	keep := fs.Bool("keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || *n < 3 || *n > 5 || *msgs < 1 || *msgs > 1000 {
		fmt.Fprint(stderr, demoUsage)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "gototem: demo: cannot find my own binary: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "gtdemo")
	if err != nil {
		fmt.Fprintf(stderr, "gototem: demo: %v\n", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	d := &demo{out: stdout, exe: exe, dir: dir, ctx: ctx}
	defer func() {
		d.killAll()
		if *keep {
			fmt.Fprintf(stdout, "kept %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	if err := d.run(*n, *msgs); err != nil {
		fmt.Fprintf(stderr, "gototem: demo: FAILED: %v\n", err)
		d.tailLogs(stderr)
		return 1
	}
	fmt.Fprintln(stdout, "demo: all checks passed")
	return 0
}

func (d *demo) run(n, msgs int) error {
	// One port per demo run, so two demos (or a real corosync) on the machine do not meet.
	port := 20000 + 2*(os.Getpid()%10000)
	for i := 1; i <= n; i++ {
		nd := &demoNode{id: i, ip: fmt.Sprintf("127.0.0.%d", i), dir: filepath.Join(d.dir, fmt.Sprintf("n%d", i))}
		nd.conf = filepath.Join(nd.dir, "corosync.conf")
		nd.sock = filepath.Join(nd.dir, "gototem.sock")
		if err := os.MkdirAll(nd.dir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(nd.conf, []byte(demoConf(n, port)), 0o600); err != nil {
			return err
		}
		d.nodes = append(d.nodes, nd)
	}
	d.t0 = time.Now()
	fmt.Fprintf(d.out, "demo: %d nodes on 127.0.0.1..%d, udpu port %d, token 1000 ms, in %s\n", n, n, port, d.dir)
	for _, nd := range d.nodes {
		if err := d.start(nd); err != nil {
			return err
		}
	}
	all := d.ids(0)
	ms, err := d.waitRing(d.nodes, all, 20*time.Second)
	if err != nil {
		return err
	}
	d.logf("ring %s formed: %s (%s)", ms.ring, joinIDs(ms.members), ms.quorum)

	if err := d.orderRound("round 1", msgs); err != nil {
		return err
	}

	victim := d.nodes[1]
	pid := victim.cmd.Process.Pid
	killed := time.Now()
	if err := d.kill(victim); err != nil {
		return err
	}
	d.logf("node %d killed (SIGKILL, pid %d)", victim.id, pid)
	survivors := slices.DeleteFunc(slices.Clone(d.nodes), func(x *demoNode) bool { return x == victim })
	ms, err = d.waitRing(survivors, d.ids(victim.id), 30*time.Second)
	if err != nil {
		return err
	}
	d.logf("ring %s: %s (%s) — detected in %.2fs", ms.ring, joinIDs(ms.members), ms.quorum, time.Since(killed).Seconds())

	restarted := time.Now()
	if err := d.start(victim); err != nil {
		return err
	}
	d.logf("node %d restarted (pid %d)", victim.id, victim.cmd.Process.Pid)
	ms, err = d.waitRing(d.nodes, all, 30*time.Second)
	if err != nil {
		return err
	}
	d.logf("ring %s: %s (%s) — rejoined in %.2fs", ms.ring, joinIDs(ms.members), ms.quorum, time.Since(restarted).Seconds())

	if err := d.orderRound("round 2", msgs); err != nil {
		return err
	}
	return d.stopAll()
}

// demoConf is every node's corosync.conf: the same file, as in a real cluster.
func demoConf(n, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "totem {\n\tversion: 2\n\tcluster_name: gtdemo\n\ttransport: udpu\n\ttoken: 1000\n")
	fmt.Fprintf(&b, "\tinterface {\n\t\tlinknumber: 0\n\t\tmcastport: %d\n\t}\n}\n", port)
	b.WriteString("nodelist {\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "\tnode {\n\t\tring0_addr: 127.0.0.%d\n\t\tnodeid: %d\n\t\tname: node%d\n\t}\n", i, i, i)
	}
	b.WriteString("}\nquorum {\n\tprovider: corosync_votequorum\n}\n")
	b.WriteString("logging {\n\tto_stderr: yes\n\tto_logfile: no\n\tto_syslog: no\n\ttimestamp: hires\n}\n")
	return b.String()
}

func (d *demo) ids(except int) []int {
	var out []int
	for _, nd := range d.nodes {
		if nd.id != except {
			out = append(out, nd.id)
		}
	}
	return out
}

func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, " ")
}

func (d *demo) start(nd *demoNode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.ctx.Err(); err != nil {
		return errors.New("interrupted")
	}
	f, err := os.OpenFile(filepath.Join(nd.dir, "gototem.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(d.exe, "run", "-c", nd.conf, "--socket", nd.sock, "--state-dir", nd.dir, "--local-addr", nd.ip)
	cmd.Stdout, cmd.Stderr = f, f
	// A demo that dies without cleaning up still takes its children with it.
	// Its own process group keeps a terminal's Ctrl-C away from the children: the demo
	// alone decides how they end, by PID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting node %d: %w", nd.id, err)
	}
	nd.cmd, nd.log, nd.exit = cmd, f, make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, nd.exit)
	return nil
}

// kill sends SIGKILL to the node's child and reaps it.
func (d *demo) kill(nd *demoNode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if nd.cmd == nil {
		return nil
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-nd.exit:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("node %d (pid %d) did not die after SIGKILL", nd.id, nd.cmd.Process.Pid)
	}
	nd.cmd = nil
	nd.log.Close()
	return nil
}

// stopAll stops every node with SIGTERM and checks each left cleanly (exit 0).
func (d *demo) stopAll() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	for _, nd := range d.nodes {
		if nd.cmd != nil {
			_ = nd.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	var errs []error
	for _, nd := range d.nodes {
		if nd.cmd == nil {
			continue
		}
		select {
		case err := <-nd.exit:
			if err != nil {
				errs = append(errs, fmt.Errorf("node %d: exit after SIGTERM: %v", nd.id, err))
			}
		case <-time.After(15 * time.Second):
			_ = nd.cmd.Process.Signal(syscall.SIGKILL)
			<-nd.exit
			errs = append(errs, fmt.Errorf("node %d: did not stop within 15s of SIGTERM", nd.id))
		}
		nd.cmd = nil
		nd.log.Close()
	}
	if len(errs) == 0 {
		d.logf("all nodes stopped with SIGTERM and exited 0 (%.2fs)", time.Since(start).Seconds())
	}
	return errors.Join(errs...)
}

// killAll is the cleanup path: every child still running is killed by its pid.
func (d *demo) killAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, nd := range d.nodes {
		if nd.cmd == nil {
			continue
		}
		_ = nd.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-nd.exit:
		case <-time.After(5 * time.Second):
		}
		nd.cmd = nil
		nd.log.Close()
	}
}

func (d *demo) tailLogs(w io.Writer) {
	for _, nd := range d.nodes {
		data, err := os.ReadFile(filepath.Join(nd.dir, "gototem.log"))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		fmt.Fprintf(w, "--- node %d log (last %d lines) ---\n%s\n", nd.id, len(lines), strings.Join(lines, "\n"))
	}
}

// ringState is what one node reports about the ring.
type ringState struct {
	members []int  // runtime.members.<id>.status = joined
	qnodes  string // votequorum's member count (its view lags the ring until sync ends)
	ring    string
	quorum  string // "quorate 3/3"
}

// nodeRing asks one node for its members and quorum view.
func nodeRing(sock string) (ringState, error) {
	var rs ringState
	out, err := controlCall(sock, "cmap runtime.members.", 2*time.Second)
	if err != nil && err.Error() != "no key matched" {
		return rs, err
	}
	rs.members = joinedMembers(out)
	q, err := controlCall(sock, "quorum", 2*time.Second)
	if err != nil {
		return rs, err
	}
	fields := map[string]string{}
	for _, line := range strings.Split(q, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	rs.ring = fields["Ring ID"]
	rs.qnodes = fields["Nodes"]
	state := "inquorate"
	if fields["Quorate"] == "Yes" {
		state = "quorate"
	}
	rs.quorum = fmt.Sprintf("%s %s/%s", state, fields["Total votes"], fields["Expected votes"])
	return rs, nil
}

// joinedMembers parses `runtime.members.<id>.status (str) = joined` lines, as the lab does.
func joinedMembers(cmap string) []int {
	var ids []int
	for _, line := range strings.Split(cmap, "\n") {
		rest, ok := strings.CutPrefix(line, "runtime.members.")
		if !ok || !strings.HasSuffix(line, ".status (str) = joined") {
			continue
		}
		id, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(id); err == nil {
			ids = append(ids, n)
		}
	}
	sort.Ints(ids)
	return ids
}

// waitRing polls nodes until each reports exactly want as members, all on one ring id,
// and quorate; bounded by timeout.
func (d *demo) waitRing(nodes []*demoNode, want []int, timeout time.Duration) (ringState, error) {
	deadline := time.Now().Add(timeout)
	var last []string
	for {
		if d.ctx.Err() != nil {
			return ringState{}, errors.New("interrupted")
		}
		last = last[:0]
		var first ringState
		ok := true
		for i, nd := range nodes {
			rs, err := nodeRing(nd.sock)
			if err != nil {
				ok = false
				last = append(last, fmt.Sprintf("node %d: %v", nd.id, err))
				continue
			}
			last = append(last, fmt.Sprintf("node %d: members [%s] ring %s %s", nd.id, joinIDs(rs.members), rs.ring, rs.quorum))
			if !slices.Equal(rs.members, want) || rs.qnodes != strconv.Itoa(len(want)) || !strings.HasPrefix(rs.quorum, "quorate") {
				ok = false
			}
			if i == 0 {
				first = rs
			} else if rs.ring != first.ring {
				ok = false
			}
		}
		if ok {
			return first, nil
		}
		if time.Now().After(deadline) {
			return ringState{}, fmt.Errorf("no ring of [%s] within %v: %s", joinIDs(want), timeout, strings.Join(last, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// orderRound has every node send msgs messages (each send returns after its own ordered
// delivery) while every node listens, then checks all nodes delivered one sequence that
// keeps each sender's order.
func (d *demo) orderRound(name string, msgs int) error {
	group := "demo"
	type stream struct {
		conn  net.Conn
		lines chan string
		errc  chan error
	}
	streams := make([]*stream, len(d.nodes))
	for i, nd := range d.nodes {
		c, err := dialControl(nd.sock)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.WriteString(c, "listen "+group+"\n"); err != nil {
			return err
		}
		s := &stream{conn: c, lines: make(chan string, 4*msgs*len(d.nodes)+64), errc: make(chan error, 1)}
		ready := make(chan error, 1)
		go func() {
			buf := make([]byte, 0, 4096)
			tmp := make([]byte, 4096)
			gotOK := false
			for {
				nr, err := c.Read(tmp)
				buf = append(buf, tmp[:nr]...)
				for {
					i := strings.IndexByte(string(buf), '\n')
					if i < 0 {
						break
					}
					line := string(buf[:i])
					buf = buf[i+1:]
					if !gotOK {
						gotOK = true
						if !strings.HasPrefix(line, "OK") {
							ready <- fmt.Errorf("node %d: listen: %s", nd.id, line)
							return
						}
						ready <- nil
						continue
					}
					if strings.HasPrefix(line, "MSG ") {
						s.lines <- line
					}
				}
				if err != nil {
					if !gotOK {
						ready <- fmt.Errorf("node %d: listen: %v", nd.id, err)
					}
					s.errc <- err
					return
				}
			}
		}()
		select {
		case err := <-ready:
			if err != nil {
				return err
			}
		case <-time.After(10 * time.Second):
			return fmt.Errorf("node %d: listen not acknowledged within 10s", nd.id)
		}
		streams[i] = s
	}
	// Every node's daemon joined the group when its listen arrived; wait until each sees
	// all of them, so no message is ordered before some node's join.
	if err := d.waitGroup(group, 10*time.Second); err != nil {
		return err
	}
	start := time.Now()
	var wg sync.WaitGroup
	sendErr := make(chan error, len(d.nodes))
	lat := make([][]time.Duration, len(d.nodes))
	for i, nd := range d.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 1; k <= msgs; k++ {
				t := time.Now()
				if _, err := controlCall(nd.sock, fmt.Sprintf("send %s %s node%d msg%d", group, name, nd.id, k), 35*time.Second); err != nil {
					sendErr <- fmt.Errorf("node %d: send %d: %w", nd.id, k, err)
					return
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		}()
	}
	wg.Wait()
	close(sendErr)
	if err := <-sendErr; err != nil {
		return err
	}
	total := msgs * len(d.nodes)
	seqs := make([][]string, len(d.nodes))
	for i, s := range streams {
		timeout := time.After(10 * time.Second)
		for len(seqs[i]) < total {
			select {
			case line := <-s.lines:
				// Only this round's messages count (a listener may see a late one of
				// an earlier round).
				if strings.Contains(line, "\""+name+" ") {
					_, payload, _ := strings.Cut(line[4:], " ")
					_, payload, _ = strings.Cut(payload, " ")
					seqs[i] = append(seqs[i], payload)
				}
			case err := <-s.errc:
				return fmt.Errorf("node %d: listen stream ended after %d of %d messages: %v", d.nodes[i].id, len(seqs[i]), total, err)
			case <-timeout:
				return fmt.Errorf("node %d delivered %d of %d messages within 10s", d.nodes[i].id, len(seqs[i]), total)
			case <-d.ctx.Done():
				return errors.New("interrupted")
			}
		}
	}
	for i := 1; i < len(seqs); i++ {
		if !slices.Equal(seqs[i], seqs[0]) {
			return fmt.Errorf("%s: node %d delivered a different order than node %d:\n  %v\n  %v", name, d.nodes[i].id, d.nodes[0].id, seqs[i], seqs[0])
		}
	}
	if err := checkSenderFIFO(seqs[0], name); err != nil {
		return err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	d.logf("%s: %d messages from %d nodes delivered in one total order on all %d nodes (%.2fs; send→own delivery p50 %.1f ms, max %.1f ms)",
		name, total, len(d.nodes), len(d.nodes), time.Since(start).Seconds(),
		float64(all[len(all)/2].Microseconds())/1000, float64(all[len(all)-1].Microseconds())/1000)
	return nil
}

// checkSenderFIFO checks each sender's messages appear in the order it sent them.
func checkSenderFIFO(seq []string, round string) error {
	next := map[string]int{}
	for _, p := range seq {
		s, err := strconv.Unquote(p)
		if err != nil {
			return fmt.Errorf("%s: undecodable payload %s", round, p)
		}
		f := strings.Fields(s)
		if len(f) < 3 {
			return fmt.Errorf("%s: unexpected payload %q", round, s)
		}
		k, err := strconv.Atoi(strings.TrimPrefix(f[len(f)-1], "msg"))
		if err != nil {
			return fmt.Errorf("%s: unexpected payload %q", round, s)
		}
		sender := f[len(f)-2]
		if k != next[sender]+1 {
			return fmt.Errorf("%s: %s's message %d delivered after message %d", round, sender, k, next[sender])
		}
		next[sender] = k
	}
	return nil
}

// waitGroup polls `members GROUP` on every node until each lists every node.
func (d *demo) waitGroup(group string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		var last string
		for _, nd := range d.nodes {
			out, err := controlCall(nd.sock, "members "+group, 2*time.Second)
			if err != nil {
				return fmt.Errorf("node %d: members: %w", nd.id, err)
			}
			seen := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if id, _, found := strings.Cut(line, " "); found {
					seen[id] = true
				}
			}
			if len(seen) != len(d.nodes) {
				ok = false
				last = fmt.Sprintf("node %d sees %d of %d nodes in group %s", nd.id, len(seen), len(d.nodes), group)
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s not complete within %v: %s", group, timeout, last)
		}
		if d.ctx.Err() != nil {
			return errors.New("interrupted")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
