package interop

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// The mixed suite of issue 8: gototem daemons in the same rings as real corosync 3.1 daemons.
// It runs wherever real corosync can (root, namespaces, Debian's corosync installed by
// .ci/install-interop.sh); GOTOTEM_INTEROP=0 skips it. Each test states what a passing run
// proves.

const interopGate = "GOTOTEM_INTEROP"

// mixedCluster builds the gototem binary and a cluster of the given engines (token 1000 ms).
// With GOTOTEM_INTEROP_STANDIN=1 the gototem nodes run the stand-in (real corosync behind the
// gototem CLI) instead: a check of the suite itself, not of gototem.
func mixedCluster(t *testing.T, transport string, es ...Engine) *Cluster {
	t.Helper()
	return mixedClusterWith(t, Options{Engines: es, Transport: transport})
}

// mixedClusterWith is mixedCluster with more options; Gototem is filled in.
func mixedClusterWith(t *testing.T, o Options) *Cluster {
	t.Helper()
	if os.Getenv("GOTOTEM_INTEROP_STANDIN") == "1" {
		needCorosync(t)
		o.Gototem = standInGototem(t)
		return newCluster(t, o)
	}
	if os.Getenv(interopGate) == "0" {
		t.Skipf("%s=0: the mixed gototem/corosync suite is switched off", interopGate)
	}
	needCorosync(t)
	o.Gototem = buildGototem(t)
	return newCluster(t, o)
}

// formRing starts every node and waits until all agree on one ring of all of them and the real
// nodes finished service synchronization for it (which needs gototem's SERVICE_BUILD and one
// BARRIER per service: services-sync.md §1.6).
func formRing(t *testing.T, c *Cluster) RingID {
	t.Helper()
	ctx := context.Background()
	all := ids(1, len(c.Nodes()))
	var r RingID
	d, err := timed(func() error {
		if err := c.StartAll(ctx); err != nil {
			return err
		}
		var err error
		r, err = c.WaitRing(ctx, all, all, 30*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx, c.IDs(Corosync), r, 10*time.Second); err != nil {
		t.Fatalf("ring %v: the real nodes did not complete sync: %v", r, err)
	}
	t.Logf("MEASURED: %d nodes (%v) formed ring %v in %v", len(all), c.Nodes(), r, d.Round(time.Millisecond))
	return r
}

// changeTo waits until the nodes ids agree on a ring of exactly ids that follows prev, with
// sync completed on the real nodes among them, and returns it.
func changeTo(t *testing.T, c *Cluster, prev RingID, members []int, what string) RingID {
	t.Helper()
	ctx := context.Background()
	var r RingID
	// A corosync node marks a member left (cmap runtime.members) at the transitional
	// configuration, before the new ring's id is there: the members can match while the ring
	// is still the old one, so wait for a ring that follows prev (bounded).
	deadline := time.Now().Add(30 * time.Second)
	d, err := timed(func() error {
		for {
			var err error
			r, err = c.WaitRing(ctx, members, members, max(time.Until(deadline), time.Second))
			if err != nil || r.Seq > prev.Seq || time.Now().After(deadline) {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r.Seq <= prev.Seq {
		t.Fatalf("%s: ring %v does not follow %v", what, r, prev)
	}
	var real []int
	for _, id := range members {
		if c.Node(id).Engine == Corosync {
			real = append(real, id)
		}
	}
	// A heal can form the same membership twice in quick succession (corosync re-forms when a
	// late JOIN arrives: seen as ring 1.21 then 1.25 with the same members). The wait follows
	// the ring while its members stay the same, at most a few times.
	for tries := 0; ; tries++ {
		err := c.WaitSynced(ctx, real, r, 10*time.Second)
		if err == nil {
			break
		}
		next, werr := c.WaitRing(ctx, members, members, 5*time.Second)
		if tries == 3 || werr != nil || next.Seq <= r.Seq {
			t.Fatalf("%s: ring %v: the real nodes did not complete sync: %v", what, r, err)
		}
		t.Logf("%s: the members re-formed as ring %v after %v; following it", what, next, r)
		r = next
	}
	t.Logf("MEASURED: %s -> nodes %v agree on ring %v after %v", what, members, r, d.Round(time.Millisecond))
	return r
}

// killRestart kills node id with SIGKILL: the other members install a ring of their own,
// with the quorum their votes give them (one a node); then it restarts the node and waits
// until all of members are one ring again, which it returns.
func killRestart(t *testing.T, c *Cluster, prev RingID, id int, members []int) RingID {
	t.Helper()
	others := slices.DeleteFunc(slices.Clone(members), func(m int) bool { return m == id })
	if err := c.Node(id).Kill(); err != nil {
		t.Fatal(err)
	}
	r := changeTo(t, c, prev, others, fmt.Sprintf("kill -9 node %d (%s)", id, c.Node(id).Engine))
	sameQuorum(t, c, others, 2*len(others) > len(c.Nodes()), len(others))
	if err := c.Node(id).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return changeTo(t, c, r, members, fmt.Sprintf("restart node %d (%s)", id, c.Node(id).Engine))
}

// sameQuorum checks that every node in members prints the same quorum numbers (corosync-
// quorumtool -s on real nodes, `gototem quorum` on gototem nodes): ring, quorate, node count,
// expected and total votes, quorum; and that the total is votes (one per member).
func sameQuorum(t *testing.T, c *Cluster, members []int, quorate bool, votes int) {
	t.Helper()
	ctx := context.Background()
	var ref QuorumStatus
	for i, id := range members {
		q, err := c.Node(id).Quorum(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if q.NodeID != id {
			t.Errorf("node %d's quorum view says Node ID %d", id, q.NodeID)
		}
		if q.Quorate != quorate || q.TotalVotes != votes || q.Nodes != len(members) {
			t.Errorf("node %d (%s): quorate %v, total votes %d, nodes %d; want %v, %d, %d", id, c.Node(id).Engine, q.Quorate, q.TotalVotes, q.Nodes, quorate, votes, len(members))
		}
		if i == 0 {
			ref = q
			continue
		}
		if q.Ring != ref.Ring || q.Quorate != ref.Quorate || q.ExpectedVotes != ref.ExpectedVotes ||
			q.TotalVotes != ref.TotalVotes || q.Quorum != ref.Quorum || q.Nodes != ref.Nodes {
			t.Errorf("node %d (%s) quorum %+v differs from node %d (%s) %+v", id, c.Node(id).Engine, q, members[0], c.Node(members[0]).Engine, ref)
		}
	}
}

// Two corosync + one gototem over udpu and udp: one ring that both real nodes list the gototem
// node in and `gototem status` lists both real nodes in; votequorum on the real nodes counts
// gototem's vote and `gototem quorum` prints the same numbers; kill -9 gototem → the real
// nodes install a 2-node ring and sync; restart → 3 again; kill a corosync node → gototem and
// the surviving corosync install the same ring id; and the real nodes log sync completion
// after every change.
func TestMixedRing(t *testing.T) {
	for _, transport := range []string{"udpu", "udp"} {
		t.Run(transport, func(t *testing.T) {
			ringScenario(t, mixedCluster(t, transport, Corosync, Corosync, Gototem))
		})
	}
}

// ringScenario is TestMixedRing's body for any three nodes; node 3 plays the gototem node.
func ringScenario(t *testing.T, c *Cluster) {
	ctx := context.Background()
	r := formRing(t, c)

	links, err := c.Node(3).LinkStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]string{1: "connected", 2: "connected", 3: "localhost"}; fmt.Sprint(links[0]) != fmt.Sprint(want) {
		t.Errorf("gototem status link 0: %v, want %v", links[0], want)
	}
	for _, id := range []int{1, 2} {
		if v, err := c.Node(id).Cmap(ctx, "runtime.members.3.status"); err != nil || v != "joined" {
			t.Errorf("corosync node %d: runtime.members.3.status = %q, %v", id, v, err)
		}
	}
	sameQuorum(t, c, ids(1, 3), true, 3)

	r = killRestart(t, c, r, 3, ids(1, 3))
	sameQuorum(t, c, ids(1, 3), true, 3)
	r = killRestart(t, c, r, 2, ids(1, 3))
	sameQuorum(t, c, ids(1, 3), true, 3)

	// a clean leave (SIGTERM) is seen at once, without waiting for token loss
	if err := c.Node(3).Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	changeTo(t, c, r, []int{1, 2}, fmt.Sprintf("SIGTERM node 3 (%s)", c.Node(3).Engine))
}

// Partition 1 | 2 against 2 corosync + 1 gototem, cut with netlab CutLink: the isolated node
// is inquorate (1 of 3 votes) and the pair is quorate (2 of 3) whichever engines are on each
// side, every node on a side prints the same numbers, and after healing all three merge.
func TestMixedPartition(t *testing.T) {
	partitionScenario(t, mixedCluster(t, "udpu", Corosync, Corosync, Gototem))
}

// partitionScenario is TestMixedPartition's body for any three nodes.
func partitionScenario(t *testing.T, c *Cluster) {
	r := formRing(t, c)
	for _, alone := range []int{3, 1} { // gototem alone, then a corosync node alone
		var rest []int
		for _, id := range ids(1, 3) {
			if id != alone {
				rest = append(rest, id)
			}
		}
		if err := c.Lab().CutLink(alone, 0); err != nil {
			t.Fatal(err)
		}
		r = changeTo(t, c, r, rest, fmt.Sprintf("cut node %d off", alone))
		if _, err := c.WaitRing(context.Background(), []int{alone}, []int{alone}, 30*time.Second); err != nil {
			t.Fatalf("isolated node %d: %v", alone, err)
		}
		sameQuorum(t, c, rest, true, 2)
		sameQuorum(t, c, []int{alone}, false, 1)
		if err := c.Lab().HealLink(alone, 0); err != nil {
			t.Fatal(err)
		}
		r = changeTo(t, c, r, ids(1, 3), fmt.Sprintf("heal node %d", alone))
		sameQuorum(t, c, ids(1, 3), true, 3)
	}
}

// CPG both ways: the C client on both corosync nodes and `gototem listen` on the gototem node
// join one group; the C clients send bursts and gototem sends with `gototem send`; every
// listener delivers every message, in the same total order, and the C clients attribute
// gototem's messages to nodeid 3.
func TestMixedCPG(t *testing.T) {
	c := mixedCluster(t, "udpu", Corosync, Corosync, Gototem)
	bin, err := BuildCPGClient(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	formRing(t, c)
	checkCPGOrder(t, c, bin, "interop-mixed", 40, 20)
}

// checkCPGOrder runs the C client on every corosync node and `gototem listen` on every gototem
// node; each C client sends perClient generated messages, each gototem node perGototem
// messages with `gototem send`; then every listener must hold the same sequence of all of them.
func checkCPGOrder(t *testing.T, c *Cluster, clientBin, group string, perClient, perGototem int) {
	t.Helper()
	ctx := context.Background()
	want := map[string]bool{}
	listeners := map[int]*Proc{}
	for _, n := range c.Nodes() {
		var p *Proc
		var err error
		if n.Engine == Gototem {
			// flags before the group: the CLI parses flags with the standard flag package
			p, err = n.StartProc(c.opts.Gototem, "listen", "--socket", n.Sock, "-t", "120", group)
		} else {
			p, err = n.StartProc(clientBin, "-g", group, "-T", "120")
			if err == nil {
				err = p.WaitFor(30*time.Second, "READY", func([]string) bool { _, _, ok := p.Ready(); return ok })
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		listeners[n.ID] = p
	}
	// every listener must be a group member before anything is sent, or it would miss the
	// first messages: wait until a C client sees a member on every node
	if real := c.IDs(Corosync); len(real) > 0 {
		p := listeners[real[0]]
		err := p.WaitFor(20*time.Second, "a group member on every node", func([]string) bool {
			ccs, _ := p.Confchgs()
			if len(ccs) == 0 {
				return false
			}
			have := map[int]bool{}
			for _, m := range ccs[len(ccs)-1].Members {
				have[m.NodeID] = true
			}
			return len(have) == len(c.Nodes())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes() {
		k := perClient
		prefix := fmt.Sprintf("m-c%d", n.ID)
		if n.Engine == Gototem {
			k, prefix = perGototem, fmt.Sprintf("m-g%d", n.ID)
		}
		for i := 0; i < k; i++ {
			want[fmt.Sprintf("%s-%04d", prefix, i)] = true
		}
	}
	t0 := time.Now()
	for _, n := range c.Nodes() {
		if n.Engine == Corosync {
			for i := 0; i < perClient; i++ {
				if err := listeners[n.ID].Send(fmt.Sprintf("m-c%d-%04d", n.ID, i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, n := range c.Nodes() {
		if n.Engine != Gototem {
			continue
		}
		for i := 0; i < perGototem; i++ {
			if out, err := n.Gototem(ctx, "send", group, fmt.Sprintf("m-g%d-%04d", n.ID, i)); err != nil {
				t.Fatalf("gototem send on node %d: %v: %s", n.ID, err, out)
			}
		}
	}
	var ref []string
	refID := 0
	for _, n := range c.Nodes() {
		p := listeners[n.ID]
		if err := p.WaitFor(60*time.Second, fmt.Sprintf("%d messages", len(want)), func(ls []string) bool {
			return len(PayloadOrder(ls, want)) >= len(want)
		}); err != nil {
			t.Fatal(err)
		}
		order := PayloadOrder(p.Lines(), want)
		if len(order) != len(want) {
			t.Fatalf("node %d delivered %d messages, want %d (duplicates?)", n.ID, len(order), len(want))
		}
		if ref == nil {
			ref, refID = order, n.ID
		} else if !slices.Equal(order, ref) {
			i := 0
			for order[i] == ref[i] {
				i++
			}
			t.Fatalf("total order differs at delivery %d: node %d %v, node %d %v", i, refID, ref[i:min(i+4, len(ref))], n.ID, order[i:min(i+4, len(order))])
		}
		if n.Engine == Corosync {
			ds, err := p.Deliveries()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				var from int
				if _, err := fmt.Sscanf(d.Payload[3:], "%d-", &from); err == nil && d.NodeID != from {
					t.Errorf("node %d's client got %q from nodeid %d", n.ID, d.Payload, d.NodeID)
				}
			}
		}
	}
	t.Logf("MEASURED: %d messages delivered in one order on %d nodes within %v", len(want), len(c.Nodes()), time.Since(t0).Round(time.Millisecond))
	for _, p := range listeners {
		if err := p.Stop(5 * time.Second); err != nil {
			t.Logf("stopping listener on node %d: %v", p.Node.ID, err)
		}
	}
}

// One corosync + two gototem (gototem is the representative, nodeid 1): the ring forms and
// the real node syncs; quorum agrees; a gototem crash and the corosync node's clean leave are
// both handled; CPG order holds across the three.
func TestMixedOneCorosyncTwoGototem(t *testing.T) {
	c := mixedCluster(t, "udpu", Gototem, Gototem, Corosync)
	bin, err := BuildCPGClient(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := formRing(t, c)
	sameQuorum(t, c, ids(1, 3), true, 3)
	checkCPGOrder(t, c, bin, "interop-1c2g", 30, 15)

	r = killRestart(t, c, r, 1, ids(1, 3)) // the representative crashes
	if err := c.Node(3).Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	changeTo(t, c, r, []int{1, 2}, "SIGTERM the corosync node")
	sameQuorum(t, c, []int{1, 2}, true, 2)
}

// Three gototem + two corosync (5 nodes): the ring forms; a partition {1,4} | {2,3,5} leaves
// each side with both engines, the 2-node side inquorate (2 of 5) and the 3-node side quorate;
// healing merges all five; CPG order holds across all five.
func TestMixedThreeGototemTwoCorosync(t *testing.T) {
	fiveNodeScenario(t, mixedCluster(t, "udpu", Gototem, Gototem, Gototem, Corosync, Corosync))
}

// fiveNodeScenario is TestMixedThreeGototemTwoCorosync's body for any five nodes.
func fiveNodeScenario(t *testing.T, c *Cluster) {
	bin, err := BuildCPGClient(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := formRing(t, c)
	sameQuorum(t, c, ids(1, 5), true, 5)
	checkCPGOrder(t, c, bin, "interop-3g2c", 25, 10)

	if err := c.Partition([]int{1, 4}, []int{2, 3, 5}); err != nil {
		t.Fatal(err)
	}
	r = changeTo(t, c, r, []int{2, 3, 5}, "partition {1,4} | {2,3,5}")
	if _, err := c.WaitRing(context.Background(), []int{1, 4}, []int{1, 4}, 30*time.Second); err != nil {
		t.Fatalf("minority side: %v", err)
	}
	sameQuorum(t, c, []int{2, 3, 5}, true, 3)
	sameQuorum(t, c, []int{1, 4}, false, 2)
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	changeTo(t, c, r, ids(1, 5), "heal the partition")
	sameQuorum(t, c, ids(1, 5), true, 5)
}
