package interop

import (
	"context"
	"fmt"
	"os"
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
