package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/internal/testenv"
)

// Issue 13: Pacemaker 2.1 runs unchanged on gototem. Each node's Pacemaker is Debian's
// pacemakerd in the node's namespaces (pacemaker.go); the cluster options keep the test short
// (dc-deadtime=2s: the first election after a cold start; totem token 1000 ms: a cut node is
// noticed in ~3.5 s).

func needPacemaker(t *testing.T) {
	t.Helper()
	testenv.Need(t, "Debian's pacemaker and pacemaker-cli-utils (.ci/install-interop.sh)", CheckPacemaker())
}

// startPacemakers starts Pacemaker on every node at once and stops it (cleanly, then by force)
// when the test ends, before the cluster's own cleanup stops the daemons under it.
func startPacemakers(t *testing.T, c *Cluster, opts PacemakerOptions) []*Pacemaker {
	t.Helper()
	ctx := context.Background()
	pms := make([]*Pacemaker, len(c.Nodes()))
	errs := make([]error, len(pms))
	var wg sync.WaitGroup
	for i, n := range c.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pms[i], errs[i] = n.StartPacemaker(ctx, opts)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, p := range pms {
			if p == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p.Running() && t.Failed() {
					t.Logf("node %d pacemaker:\n%s", p.Node.ID, p.LogTail(40))
				}
				if err := p.Stop(60 * time.Second); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}()
		}
		wg.Wait()
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return pms
}

func nodeNames(ids ...int) []string {
	var out []string
	for _, id := range ids {
		out = append(out, fmt.Sprintf("node%d", id))
	}
	return out
}

// sameSet reports whether a holds exactly the names of b.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// dummyState lists the node's Dummy resources that are really running: ocf:pacemaker:Dummy
// keeps its flag in /run/Dummy-<id>.state, and the node's /run is its run/ directory.
func dummyState(n *Node) []string {
	m, _ := filepath.Glob(filepath.Join(n.Dir, "run", "Dummy-*.state"))
	for i := range m {
		m[i] = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[i]), "Dummy-"), ".state")
	}
	return m
}

var fastCIB = PacemakerOptions{CIBOptions: [][2]string{
	{"dc-deadtime", "2s"},
	{"stonith-enabled", "false"},
}}

// pacemakerScenario is issue 13's Pacemaker proof on a 3-node ring of the given engines:
// 3 online with quorum; a Dummy starts (on node 3, where a location score prefers it); node 3
// cut off -> it reports no quorum and stops the Dummy, node 1 shows node 3 offline and runs
// the Dummy itself or on node 2; heal -> 3 online again; a cfg shutdown of a gototem node
// is refused while Pacemaker runs (pacemakerd answers no), Pacemaker stops cleanly, and then
// the cfg shutdown stops the gototem daemon.
func pacemakerScenario(t *testing.T, es ...Engine) {
	needPacemaker(t)
	c := mixedCluster(t, "udpu", es...)
	formRing(t, c)
	ctx := context.Background()
	t0 := time.Now()
	pms := startPacemakers(t, c, fastCIB)
	p1, p3 := pms[0], pms[2]
	all := nodeNames(1, 2, 3)
	st, err := p1.WaitState(ctx, 90*time.Second, "3 nodes online with quorum", func(s PcmkState) bool {
		return s.DC != "" && s.Quorum && sameSet(s.Online, all)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED: Pacemaker started to %s in %v", st, time.Since(t0).Round(time.Millisecond))
	if out, err := p1.CLI(ctx, "crm_mon", "-1"); err != nil || !strings.Contains(string(out), "Online: [ node1 node2 node3 ]") ||
		!strings.Contains(string(out), "partition with quorum") {
		t.Fatalf("crm_mon -1 on node 1: %v\n%s", err, out)
	} else {
		t.Logf("crm_mon -1 on node 1:\n%s", out)
	}

	// A Dummy resource, preferring node 3.
	t0 = time.Now()
	for _, args := range [][]string{
		{"-C", "-o", "resources", "--xml-text", `<primitive id="dummy" class="ocf" provider="pacemaker" type="Dummy"><operations><op id="dummy-monitor-5s" name="monitor" interval="5s" timeout="20s"/></operations></primitive>`},
		{"-C", "-o", "constraints", "--xml-text", `<rsc_location id="dummy-prefers-node3" rsc="dummy" node="node3" score="50"/>`},
	} {
		if out, err := p1.CLI(ctx, "cibadmin", args...); err != nil {
			t.Fatalf("cibadmin %v: %v\n%s", args, err, out)
		}
	}
	if _, err := p1.WaitState(ctx, 60*time.Second, "dummy started on node3", func(s PcmkState) bool {
		r := s.Resources["dummy"]
		return r.Role == "Started" && slices.Equal(r.Nodes, []string{"node3"})
	}); err != nil {
		t.Fatal(err)
	}
	if got := dummyState(c.Node(3)); !slices.Equal(got, []string{"dummy"}) {
		t.Fatalf("node 3's /run Dummy state files: %v", got)
	}
	t.Logf("MEASURED: Dummy started on node3 in %v", time.Since(t0).Round(time.Millisecond))

	// Cut node 3 off.
	t0 = time.Now()
	if err := c.Partition([]int{1, 2}, []int{3}); err != nil {
		t.Fatal(err)
	}
	st, err = p1.WaitState(ctx, 60*time.Second, "node 3 offline, dummy on node 1 or 2", func(s PcmkState) bool {
		r := s.Resources["dummy"]
		return s.Quorum && sameSet(s.Online, nodeNames(1, 2)) && slices.Contains(s.Offline, "node3") &&
			r.Role == "Started" && len(r.Nodes) == 1 && r.Nodes[0] != "node3"
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED: cut: node 1 shows %s after %v", st, time.Since(t0).Round(time.Millisecond))
	st, err = p3.WaitState(ctx, 60*time.Second, "node 3 without quorum, dummy stopped", func(s PcmkState) bool {
		r := s.Resources["dummy"]
		return !s.Quorum && r.Role == "Stopped" && len(dummyState(c.Node(3))) == 0
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED: cut: node 3 shows %s after %v", st, time.Since(t0).Round(time.Millisecond))

	// Heal: all three online again, with quorum everywhere; the Dummy goes home.
	t0 = time.Now()
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Pacemaker{p1, p3} {
		st, err = p.WaitState(ctx, 60*time.Second, "3 online with quorum after heal", func(s PcmkState) bool {
			return s.DC != "" && s.Quorum && sameSet(s.Online, all)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("MEASURED: heal: node %d shows %s after %v", p.Node.ID, st, time.Since(t0).Round(time.Millisecond))
	}

	// cfg shutdown: refused while Pacemaker runs (pacemakerd tracks cfg shutdowns and answers
	// no), then Pacemaker stops cleanly (its daemons leave cpg, pacemakerd stops tracking), and
	// the same request stops the gototem daemon.
	gototems := c.IDs(Gototem)
	if len(gototems) == 0 {
		t.Fatal("no gototem node in the cluster")
	}
	g := c.Node(gototems[0])
	out, err := g.Tool(ctx, "corosync-cfgtool", "-H")
	t.Logf("corosync-cfgtool -H on node %d with Pacemaker running: %v %s", g.ID, err, strings.TrimSpace(string(out)))
	time.Sleep(500 * time.Millisecond)
	if !g.Running() || !pms[g.ID-1].Running() {
		t.Fatalf("node %d: a cfg shutdown was carried out although pacemakerd refused it (daemon running %v, pacemakerd running %v)", g.ID, g.Running(), pms[g.ID-1].Running())
	}
	if log, _ := os.ReadFile(filepath.Join(pms[g.ID-1].Dir, "log", "pacemaker.log")); !strings.Contains(string(log), "Corosync wants to shut down") {
		t.Errorf("node %d: pacemakerd did not see the cfg shutdown request", g.ID)
	}
	t0 = time.Now()
	var wg sync.WaitGroup
	stopErr := make([]error, len(pms))
	for i, p := range pms {
		wg.Add(1)
		go func() { defer wg.Done(); stopErr[i] = p.Stop(60 * time.Second) }()
	}
	wg.Wait()
	for _, err := range stopErr {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("MEASURED: Pacemaker stopped cleanly on all nodes in %v", time.Since(t0).Round(time.Millisecond))
	for _, id := range gototems {
		n := c.Node(id)
		if out, err := n.Tool(ctx, "corosync-cfgtool", "-H"); err != nil {
			t.Errorf("node %d: corosync-cfgtool -H: %v %s", id, err, out)
		}
		if err := Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
			return !n.Running(), "still running"
		}, nil); err != nil {
			t.Errorf("node %d: gototem did not stop on cfg shutdown: %v", id, err)
		}
	}
}

// TestPacemakerGototem: Pacemaker on a ring of three gototem nodes.
func TestPacemakerGototem(t *testing.T) {
	pacemakerScenario(t, Gototem, Gototem, Gototem)
}

// TestPacemakerMixed: Pacemaker on two real corosync nodes and one gototem node (node 3, the
// one cut off and shut down).
func TestPacemakerMixed(t *testing.T) {
	pacemakerScenario(t, Corosync, Corosync, Gototem)
}

// TestPacemakerAbiquo is the Abiquo guide ("Remote Services HA Using Pacemaker") end to end on
// two gototem nodes: its CMAN cluster.conf (config/testdata/cman/abiquo-cluster.conf) goes
// through `gototem config import`; the nodes are called rsha1 and rsha2, as in the guide, and
// find each other through /etc/hosts (each node's own, bind-mounted); only the lab's log and
// state paths are changed in the imported file. Pacemaker gets the guide's settings
// (stonith-enabled=false, no-quorum-policy=ignore, resource-stickiness=100) and a group of a
// Dummy and an IPaddr2 on the lab subnet. kill -9 of the active node's gototem: the group
// runs on the other node, its address configured there.
func TestPacemakerAbiquo(t *testing.T) {
	needPacemaker(t)
	_, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/IPaddr2")
	testenv.Need(t, "the IPaddr2 resource agent (Debian's resource-agents)", err)
	c := mixedCluster(t, "udpu", Gototem, Gototem)
	ctx := context.Background()
	imported := filepath.Join(c.Dir(), "imported.conf")
	src := filepath.Join(testenv.Root(), "config", "testdata", "cman", "abiquo-cluster.conf")
	out, err := exec.Command(c.opts.Gototem, "config", "import", "-o", imported, src).CombinedOutput()
	// (the warnings say what does not carry over: fencing, CMAN's implied key, expected_votes)
	if err != nil {
		t.Fatalf("gototem config import: %v\n%s", err, out)
	}
	t.Logf("gototem config import warnings:\n%s", out)
	conf, err := os.ReadFile(imported)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster_name: pacemaker1", "transport: udpu", "two_node: 1", "ring0_addr: rsha1", "ring0_addr: rsha2"} {
		if !strings.Contains(string(conf), want) {
			t.Fatalf("imported corosync.conf lacks %q:\n%s", want, conf)
		}
	}
	hosts := fmt.Sprintf("127.0.0.1 localhost\n%s rsha1\n%s rsha2\n", c.Lab().Addr(1, 0), c.Lab().Addr(2, 0))
	for _, n := range c.Nodes() {
		text := strings.Replace(string(conf), "/var/log/cluster/corosync.log", n.Log, 1)
		text = strings.Replace(text, "to_syslog: yes", "to_syslog: no", 1)
		text += fmt.Sprintf("\nsystem {\n\tstate_dir: %s\n}\n", filepath.Join(n.Dir, "lib"))
		if err := os.WriteFile(n.Conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "hosts"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	formRing(t, c)
	pms := startPacemakers(t, c, PacemakerOptions{
		CIBOptions: [][2]string{{"dc-deadtime", "2s"}},
		Hostnames:  map[int]string{1: "rsha1", 2: "rsha2"},
	})
	both := []string{"rsha1", "rsha2"}
	if _, err := pms[0].WaitState(ctx, 90*time.Second, "rsha1 and rsha2 online with quorum", func(s PcmkState) bool {
		return s.DC != "" && s.Quorum && sameSet(s.Online, both)
	}); err != nil {
		t.Fatal(err)
	}
	vip := netipAddrOnLab(c, 100)
	for _, args := range [][]string{
		{"crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "false"},
		{"crm_attribute", "--type", "crm_config", "--name", "no-quorum-policy", "--update", "ignore"},
		{"crm_attribute", "--type", "rsc_defaults", "--name", "resource-stickiness", "--update", "100"},
		{"cibadmin", "-C", "-o", "resources", "--xml-text", `<group id="rs">` +
			`<primitive id="rs-ip" class="ocf" provider="heartbeat" type="IPaddr2"><instance_attributes id="rs-ip-ia">` +
			`<nvpair id="rs-ip-ip" name="ip" value="` + vip + `"/><nvpair id="rs-ip-mask" name="cidr_netmask" value="24"/>` +
			`</instance_attributes><operations><op id="rs-ip-mon" name="monitor" interval="5s" timeout="20s"/></operations></primitive>` +
			`<primitive id="rs-svc" class="ocf" provider="pacemaker" type="Dummy"><operations>` +
			`<op id="rs-svc-mon" name="monitor" interval="5s" timeout="20s"/></operations></primitive></group>`},
	} {
		if out, err := pms[0].CLI(ctx, args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	groupOn := func(s PcmkState) string {
		ip, svc := s.Resources["rs-ip"], s.Resources["rs-svc"]
		if ip.Role == "Started" && svc.Role == "Started" && len(ip.Nodes) == 1 && slices.Equal(ip.Nodes, svc.Nodes) {
			return ip.Nodes[0]
		}
		return ""
	}
	st, err := pms[0].WaitState(ctx, 60*time.Second, "group rs started", func(s PcmkState) bool { return groupOn(s) != "" })
	if err != nil {
		t.Fatal(err)
	}
	active := 1
	if groupOn(st) == "rsha2" {
		active = 2
	}
	other := 3 - active
	if !hasAddr(t, c, active, vip) || hasAddr(t, c, other, vip) {
		t.Fatalf("group on rsha%d but %s is on rsha1 %v, rsha2 %v", active, vip, hasAddr(t, c, 1, vip), hasAddr(t, c, 2, vip))
	}
	t.Logf("group rs on rsha%d: %s", active, st)

	t0 := time.Now()
	if err := c.Node(active).Kill(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("rsha%d", other)
	st, err = pms[other-1].WaitState(ctx, 60*time.Second, "group rs on "+want, func(s PcmkState) bool {
		return groupOn(s) == want && hasAddr(t, c, other, vip)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED: kill -9 of rsha%d's gototem: group rs running on %s after %v: %s", active, want, time.Since(t0).Round(time.Millisecond), st)
}

// netipAddrOnLab is an address of the lab's subnet that no node uses.
func netipAddrOnLab(c *Cluster, host byte) string {
	a := c.Lab().Addr(1, 0).As4()
	a[3] = host
	return fmt.Sprintf("%d.%d.%d.%d", a[0], a[1], a[2], a[3])
}

// hasAddr reports whether node id's namespace has addr configured.
func hasAddr(t *testing.T, c *Cluster, id int, addr string) bool {
	out, err := c.Node(id).Tool(context.Background(), "ip", "-4", "-o", "addr", "show")
	if err != nil {
		t.Logf("ip addr on node %d: %v %s", id, err, out)
		return false
	}
	return strings.Contains(string(out), " "+addr+"/")
}
