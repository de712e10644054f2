package interop

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gototem/gototem/internal/netlab"
)

// Debian's Pacemaker 2.1 (pacemaker, pacemaker-cli-utils) on a node of a Cluster: the proof
// that gototem is a drop-in messaging layer is Pacemaker running on it unchanged.
//
// How one node's Pacemaker is run (the facts of ../shared/lab/pacemaker-lab.sh):
//   - pacemakerd runs in the node's network namespace (its libqb clients find the node's
//     daemon on the abstract sockets cmap, cfg, cpg, quorum; Pacemaker's own servers, cib_rw,
//     crmd, attrd, ..., are abstract sockets too, so nodes never see each other's) and in a
//     private mount and UTS namespace where the node's run/ is bind-mounted over /run
//     (pacemakerd's /run/crm, Dummy's /run/Dummy-<id>.state, which must not be shared), its
//     pcmk/lib over /var/lib/pacemaker (the CIB), its pcmk/log over /var/log/pacemaker, and
//     the hostname is node<id> (Pacemaker's fallback for the node name).
//   - The chain ip netns exec -> unshare -> sh -> env -> pacemakerd execs at every step, so
//     the PID netlab records is pacemakerd's, and it leads its own process group. pacemakerd
//     forks the subdaemons (based, fenced, execd, attrd, schedulerd, controld); execd forks the
//     resource agents. Stop sends SIGTERM to pacemakerd, waits, then SIGKILLs whatever is
//     left of its descendants and its process group: only processes this harness started.
//   - A fresh CIB (cib.xml without .sig, read without a digest check) carries the cluster
//     options: dc-deadtime=2s takes a cold start from ~22 s (every controller waits
//     dc-deadtime in S_PENDING before the first election) to a few seconds.
//   - Pacemaker's daemons run as hacluster:haclient; pacemakerd (root) writes
//     uidgid.gid.<haclient>=1 into cmap at start-up, and the cluster daemon must then let
//     them in (corosync's uidgid rule).
//   - Clients (crm_mon, cibadmin, crm_attribute) run through nsenter into pacemakerd's
//     network, mount and UTS namespaces.

const (
	pacemakerd = "/usr/sbin/pacemakerd"
	pcmkUser   = "hacluster"
	pcmkGroup  = "haclient"
)

// CheckPacemaker reports why Pacemaker cannot run here (not installed, no hacluster user).
func CheckPacemaker() error {
	for _, p := range []string{pacemakerd, "/usr/sbin/crm_mon", "/usr/sbin/cibadmin", "/usr/lib/ocf/resource.d/pacemaker/Dummy"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("pacemaker: %v (apt-get install pacemaker pacemaker-cli-utils)", err)
		}
	}
	if _, err := user.Lookup(pcmkUser); err != nil {
		return fmt.Errorf("pacemaker: %v", err)
	}
	if _, err := user.LookupGroup(pcmkGroup); err != nil {
		return fmt.Errorf("pacemaker: %v", err)
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return fmt.Errorf("pacemaker: %v", err)
	}
	return nil
}

// PacemakerOptions are the cluster options of the fresh CIB, in order (name, value).
type PacemakerOptions struct {
	CIBOptions [][2]string
	// Hostnames gives node id's host name (default node<id>, the harness's nodelist names).
	Hostnames map[int]string
}

// Pacemaker is Pacemaker running (or stopped) on one node.
type Pacemaker struct {
	Node *Node
	Dir  string // <node dir>/pcmk: lib/ (the CIB), log/ (pacemaker.log), pacemakerd.out
	proc *netlab.Proc
	// every process seen in pacemakerd's tree (pid -> start time), for cleanup
	seen map[int]uint64
}

// StartPacemaker starts pacemakerd on the node (its cluster daemon must run) with a fresh CIB,
// and waits until it answers (crmadmin -P says running), bounded by ctx and 30 s.
func (n *Node) StartPacemaker(ctx context.Context, opts PacemakerOptions) (*Pacemaker, error) {
	p := &Pacemaker{Node: n, Dir: filepath.Join(n.Dir, "pcmk"), seen: map[int]uint64{}}
	if err := p.prepare(opts); err != nil {
		return nil, err
	}
	script := `set -e
mount --bind "$1/run" /run
mount --bind "$1/pcmk/lib" /var/lib/pacemaker
mount --bind "$1/pcmk/log" /var/log/pacemaker
hostname "$2"
exec ` + pacemakerd
	host := fmt.Sprintf("node%d", n.ID)
	if h := opts.Hostnames[n.ID]; h != "" {
		host = h
	}
	args := []string{"-m", "-u", "--propagation", "private", "sh", "-c", script, "sh", n.Dir, host}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/var/lib/pacemaker",
		"PCMK_logfile=/var/log/pacemaker/pacemaker.log", "PCMK_logfacility=none", "PCMK_debug=no", "HA_LOGFACILITY=none"}
	proc, err := n.c.lab.Start(n.ID, netlab.Spec{Path: "unshare", Args: args, Env: env, Log: filepath.Join(p.Dir, "pacemakerd.out")})
	if err != nil {
		return nil, fmt.Errorf("pacemaker: start on node %d: %v", n.ID, err)
	}
	p.proc = proc
	n.c.logf("node %d: pacemakerd launched, pid %d", n.ID, p.PID())
	err = Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		p.track()
		if !p.Running() {
			return false, "exited"
		}
		out, err := p.CLI(ctx, "crmadmin", "-P", "-t", "1000")
		if err == nil && bytes.Contains(out, []byte("running")) {
			return true, ""
		}
		return false, fmt.Sprintf("crmadmin -P: %v %s", err, bytes.TrimSpace(out))
	}, func() bool { return !p.Running() })
	if err != nil {
		return p, fmt.Errorf("pacemaker: node %d not started: %v\n%s", n.ID, err, p.LogTail(20))
	}
	return p, nil
}

// prepare makes the node's Pacemaker directories as the package does for the real ones
// (hacluster:haclient, 0750 for lib, 0770 for log) and writes a fresh CIB.
func (p *Pacemaker) prepare(opts PacemakerOptions) error {
	u, err := user.Lookup(pcmkUser)
	if err != nil {
		return err
	}
	g, err := user.LookupGroup(pcmkGroup)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	_ = os.RemoveAll(p.Dir)
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{"lib", 0o750}, {"lib/cib", 0o750}, {"lib/pengine", 0o750}, {"lib/blackbox", 0o750}, {"lib/cores", 0o750},
		{"log", 0o770}, {"log/bundles", 0o770}} {
		path := filepath.Join(p.Dir, d.path)
		if err := os.MkdirAll(path, d.mode); err != nil {
			return err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(path, d.mode); err != nil {
			return err
		}
	}
	// the node's dirs must be reachable by hacluster through the bind mounts only; the
	// node's run/ also holds what a previous Pacemaker left (Dummy state files)
	run := filepath.Join(p.Node.Dir, "run")
	for _, pat := range []string{"Dummy-*", "crm", "resource-agents"} {
		m, _ := filepath.Glob(filepath.Join(run, pat))
		for _, f := range m {
			_ = os.RemoveAll(f)
		}
	}
	var b strings.Builder
	b.WriteString(`<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">` + "\n")
	b.WriteString("  <configuration>\n    <crm_config>\n      <cluster_property_set id=\"cib-bootstrap-options\">\n")
	for _, kv := range opts.CIBOptions {
		fmt.Fprintf(&b, "        <nvpair id=\"cib-bootstrap-options-%s\" name=\"%s\" value=\"%s\"/>\n", kv[0], kv[0], xmlEscape(kv[1]))
	}
	b.WriteString("      </cluster_property_set>\n    </crm_config>\n    <nodes/>\n    <resources/>\n    <constraints/>\n  </configuration>\n  <status/>\n</cib>\n")
	cib := filepath.Join(p.Dir, "lib", "cib", "cib.xml")
	if err := os.WriteFile(cib, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Chown(cib, uid, gid)
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// PID is pacemakerd's.
func (p *Pacemaker) PID() int { return p.proc.Cmd.Process.Pid }

// Running reports whether pacemakerd is alive.
func (p *Pacemaker) Running() bool { return p.proc != nil && !p.proc.Exited() }

// CLI runs a Pacemaker client in the node's Pacemaker namespaces, bounded by 15 s.
func (p *Pacemaker) CLI(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	full := append([]string{"--target", strconv.Itoa(p.PID()), "--net", "--mount", "--uts", "--", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%s: no answer within 15 s", name)
	}
	return out.Bytes(), err
}

// LogTail returns the end of the node's pacemaker.log and pacemakerd's output.
func (p *Pacemaker) LogTail(lines int) string {
	var b strings.Builder
	for _, f := range []string{filepath.Join(p.Dir, "pacemakerd.out"), filepath.Join(p.Dir, "log", "pacemaker.log")} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		l := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(l) > lines {
			l = l[len(l)-lines:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", f, strings.Join(l, "\n"))
	}
	return b.String()
}

// PcmkState is what crm_mon --output-as=xml says.
type PcmkState struct {
	DC        string // "" when there is none
	Quorum    bool
	Online    []string
	Offline   []string // offline, pending or unclean
	Resources map[string]PcmkResource
}

// PcmkResource is one primitive: its role and the nodes it is active on.
type PcmkResource struct {
	Role  string
	Nodes []string
}

func (s PcmkState) String() string {
	var rs []string
	for id, r := range s.Resources {
		rs = append(rs, fmt.Sprintf("%s:%s@%s", id, r.Role, strings.Join(r.Nodes, "+")))
	}
	slices.Sort(rs)
	return fmt.Sprintf("dc=%q quorum=%v online=%v offline=%v rsc=%v", s.DC, s.Quorum, s.Online, s.Offline, rs)
}

type crmMonXML struct {
	Summary struct {
		DC struct {
			Present    string `xml:"present,attr"`
			Name       string `xml:"name,attr"`
			WithQuorum string `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
	} `xml:"summary"`
	Nodes []struct {
		Name    string `xml:"name,attr"`
		Online  string `xml:"online,attr"`
		Pending string `xml:"pending,attr"`
	} `xml:"nodes>node"`
	Resources []crmMonResource `xml:"resources>resource"`
	Groups    []struct {
		Resources []crmMonResource `xml:"resource"`
	} `xml:"resources>group"`
}

type crmMonResource struct {
	ID    string `xml:"id,attr"`
	Role  string `xml:"role,attr"`
	Nodes []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

// ParseCrmMon reads crm_mon --output-as=xml.
func ParseCrmMon(out []byte) (PcmkState, error) {
	var x crmMonXML
	if err := xml.Unmarshal(out, &x); err != nil {
		return PcmkState{}, fmt.Errorf("crm_mon xml: %v", err)
	}
	s := PcmkState{Resources: map[string]PcmkResource{}}
	if x.Summary.DC.Present == "true" {
		s.DC = x.Summary.DC.Name
		s.Quorum = x.Summary.DC.WithQuorum == "true"
	}
	for _, n := range x.Nodes {
		if n.Online == "true" && n.Pending != "true" {
			s.Online = append(s.Online, n.Name)
		} else {
			s.Offline = append(s.Offline, n.Name)
		}
	}
	add := func(r crmMonResource) {
		pr := PcmkResource{Role: r.Role}
		for _, n := range r.Nodes {
			pr.Nodes = append(pr.Nodes, n.Name)
		}
		s.Resources[r.ID] = pr
	}
	for _, r := range x.Resources {
		add(r)
	}
	for _, g := range x.Groups {
		for _, r := range g.Resources {
			add(r)
		}
	}
	return s, nil
}

// State asks crm_mon.
func (p *Pacemaker) State(ctx context.Context) (PcmkState, error) {
	out, err := p.CLI(ctx, "crm_mon", "-1", "--output-as=xml")
	if err != nil {
		return PcmkState{}, fmt.Errorf("crm_mon: %v: %s", err, bytes.TrimSpace(out))
	}
	return ParseCrmMon(out)
}

// WaitState polls crm_mon until cond holds, bounded by d.
func (p *Pacemaker) WaitState(ctx context.Context, d time.Duration, what string, cond func(PcmkState) bool) (PcmkState, error) {
	var last PcmkState
	err := Poll(ctx, d, 250*time.Millisecond, func() (bool, string) {
		p.track()
		s, err := p.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		last = s
		return cond(s), s.String()
	}, func() bool { return !p.Running() })
	if err != nil {
		return last, fmt.Errorf("node %d: waiting for %s: %v\n%s", p.Node.ID, what, err, p.LogTail(25))
	}
	return last, nil
}

// procStart returns a process's start time (field 22 of /proc/pid/stat), its parent and its
// process group; ok is false when it is gone.
func procStart(pid int) (start uint64, ppid, pgrp int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	pgrp, _ = strconv.Atoi(f[2])
	start, _ = strconv.ParseUint(f[19], 10, 64)
	return start, ppid, pgrp, true
}

// track records pacemakerd's descendants and the members of its process group.
func (p *Pacemaker) track() {
	if p.proc == nil {
		return
	}
	root := p.PID()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	type info struct {
		start      uint64
		ppid, pgrp int
	}
	all := map[int]info{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, pp, pg, ok := procStart(pid); ok {
			all[pid] = info{st, pp, pg}
		}
	}
	if rs, ok := all[root]; ok && p.Running() {
		p.seen[root] = rs.start
	}
	// descendants by parent links, plus the process group pacemakerd leads
	changed := true
	for changed {
		changed = false
		for pid, in := range all {
			if _, known := p.seen[pid]; known {
				continue
			}
			_, parentKnown := p.seen[in.ppid]
			if parentKnown || (in.pgrp == root && p.Running()) {
				p.seen[pid] = in.start
				changed = true
			}
		}
	}
}

// alive returns the recorded processes still running (same PID and start time).
func (p *Pacemaker) alive() []int {
	var out []int
	for pid, st := range p.seen {
		if s, _, _, ok := procStart(pid); ok && s == st {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// Stop sends SIGTERM to pacemakerd (a clean stop: it stops its resources and subdaemons and
// leaves the cluster layer's cfg tracking) and waits up to d; whatever it started that is
// still alive then is SIGKILLed, and Stop reports it.
func (p *Pacemaker) Stop(d time.Duration) error {
	if p.proc == nil {
		return nil
	}
	p.track()
	var errs []error
	if p.Running() {
		if err := p.proc.Signal(syscall.SIGTERM); err != nil {
			errs = append(errs, err)
		}
		end := time.Now().Add(d)
		for p.Running() && time.Now().Before(end) {
			p.track()
			time.Sleep(100 * time.Millisecond)
		}
		if p.Running() {
			errs = append(errs, fmt.Errorf("pacemaker: node %d: pacemakerd (pid %d) still running %v after SIGTERM", p.Node.ID, p.PID(), d))
		} else if err := p.proc.Wait(5 * time.Second); err != nil { // exited: returns at once
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 0 {
				errs = append(errs, fmt.Errorf("pacemaker: node %d: pacemakerd exited: %v", p.Node.ID, err))
			}
		}
	}
	if left := p.killLeft(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("pacemaker: node %d: processes left after pacemakerd: %v", p.Node.ID, left))
	}
	return errors.Join(errs...)
}

// Kill SIGKILLs pacemakerd and everything it started.
func (p *Pacemaker) Kill() {
	if p.proc == nil {
		return
	}
	p.track()
	if p.Running() {
		_ = p.proc.Kill()
	}
	p.killLeft()
}

// killLeft SIGKILLs the recorded processes still alive and waits (up to 5 s) for them.
func (p *Pacemaker) killLeft() []int {
	left := p.alive()
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for end := time.Now().Add(5 * time.Second); len(p.alive()) > 0 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	// libqb files of our dead processes: IPC directories (qb-<server>-<client>-...) they
	// served or opened
	for pid := range p.seen {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // the PID is someone else's now
		}
		for _, pat := range []string{fmt.Sprintf("/dev/shm/qb-%d-*", pid), fmt.Sprintf("/dev/shm/qb-*-%d-*", pid)} {
			m, _ := filepath.Glob(pat)
			for _, f := range m {
				_ = os.RemoveAll(f)
			}
		}
	}
	return left
}
