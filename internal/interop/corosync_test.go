package interop

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCorosyncOnlyRing validates the harness against three real corosync 3.1 nodes, over udpu
// and over udp multicast: they form one ring and finish service synchronization, corosync
// derives the multicast group from cluster_name as McastAddrFor does, votequorum counts three
// votes; a SIGKILLed node is dropped (the two survivors install a new, higher ring and sync)
// and quorum holds with two of three votes; the restarted node rejoins into a third ring.
func TestCorosyncOnlyRing(t *testing.T) {
	needCorosync(t)
	for _, transport := range []string{"udpu", "udp"} {
		t.Run(transport, func(t *testing.T) {
			ctx := context.Background()
			c := newCluster(t, Options{Engines: engines(Corosync, Corosync, Corosync), Transport: transport})
			if err := c.CheckConfig(ctx); err != nil {
				t.Fatal(err)
			}
			var r1 RingID
			formed, err := timed(func() error {
				if err := c.StartAll(ctx); err != nil {
					return err
				}
				var err error
				r1, err = c.WaitRing(ctx, ids(1, 3), ids(1, 3), 30*time.Second)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WaitSynced(ctx, ids(1, 3), r1, 10*time.Second); err != nil {
				t.Fatalf("ring %v formed but sync did not complete: %v", r1, err)
			}
			t.Logf("MEASURED %s: start of 3 nodes -> all agree on ring %v: %v", transport, r1, formed.Round(time.Millisecond))

			if transport == "udp" {
				got, err := c.Node(1).Cmap(ctx, "totem.interface.0.mcastaddr")
				if err != nil {
					t.Fatal(err)
				}
				if want := McastAddrFor(c.ClusterName(), 0).String(); got != want {
					t.Errorf("corosync derived mcastaddr %s from %q, McastAddrFor says %s", got, c.ClusterName(), want)
				}
			}
			q, err := c.Node(1).Quorum(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if q.Ring != r1 || !q.Quorate || q.Nodes != 3 || q.ExpectedVotes != 3 || q.TotalVotes != 3 || q.Quorum != 2 || q.NodeID != 1 || len(q.Members) != 3 {
				t.Errorf("node 1 quorum view after formation: %+v", q)
			}
			links, err := c.Node(1).LinkStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[int]string{1: "localhost", 2: "connected", 3: "connected"}; fmt.Sprint(links[0]) != fmt.Sprint(want) {
				t.Errorf("node 1 link 0 status %v, want %v", links[0], want)
			}

			// crash: the survivors notice by token loss + consensus, not by a LEAVE
			if err := c.Node(3).Kill(); err != nil {
				t.Fatal(err)
			}
			var r2 RingID
			detect, err := timed(func() error {
				var err error
				r2, err = c.WaitRing(ctx, ids(1, 2), ids(1, 2), 30*time.Second)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if r2.Seq <= r1.Seq {
				t.Errorf("ring after the crash %v does not follow %v", r2, r1)
			}
			if err := c.WaitSynced(ctx, ids(1, 2), r2, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			t.Logf("MEASURED %s: kill -9 node 3 -> nodes 1,2 agree on ring %v: %v", transport, r2, detect.Round(time.Millisecond))
			evs, err := c.Node(1).LogEvents()
			if err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(evs, func(e LogEvent) bool { return e.Kind == LogMembership && e.Ring == r2 }); i < 0 || !slices.Equal(evs[i].Left, []int{3}) {
				t.Errorf("node 1's log has no membership %v with \"Members left: 3\"", r2)
			}
			if q, err := c.Node(2).Quorum(ctx); err != nil || !q.Quorate || q.TotalVotes != 2 || q.ExpectedVotes != 3 || q.Ring != r2 {
				t.Errorf("node 2 quorum after the crash: %+v, %v (want quorate, 2 of 3 votes, ring %v)", q, err, r2)
			}

			var r3 RingID
			rejoin, err := timed(func() error {
				if err := c.Node(3).Start(ctx); err != nil {
					return err
				}
				var err error
				r3, err = c.WaitRing(ctx, ids(1, 3), ids(1, 3), 30*time.Second)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if r3.Seq <= r2.Seq {
				t.Errorf("ring after the rejoin %v does not follow %v", r3, r2)
			}
			if err := c.WaitSynced(ctx, ids(1, 3), r3, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			t.Logf("MEASURED %s: restart node 3 -> all agree on ring %v: %v", transport, r3, rejoin.Round(time.Millisecond))
			if v, err := c.Node(1).Cmap(ctx, "runtime.members.3.join_count"); err != nil || v != "2" {
				t.Errorf("node 1: runtime.members.3.join_count = %q, %v; want 2 after a rejoin", v, err)
			}
		})
	}
}

// TestCorosyncCPGClient checks the C client and the ordering check of the suite on real
// corosync: clients on nodes 1 and 2 join one group (each sees the other join, reason JOIN),
// both send concurrently (generated bursts and lines from stdin), and both deliver the same
// messages in the same total order, each sender's in FIFO order, attributed to the right
// nodeid and pid. A client that leaves is seen leaving with reason LEAVE.
func TestCorosyncCPGClient(t *testing.T) {
	needCorosync(t)
	ctx := context.Background()
	bin, err := BuildCPGClient(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, Options{Engines: engines(Corosync, Corosync, Corosync)})
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := c.WaitRing(ctx, ids(1, 3), ids(1, 3), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx, ids(1, 3), r, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	const burst, lines = 60, 10
	const group = "interop-order"
	clients := map[int]*Proc{}
	pids := map[int]int{}
	for _, id := range []int{1, 2} {
		p, err := c.Node(id).StartProc(bin, "-g", group, "-n", fmt.Sprint(burst), "-i", "3", "-p", fmt.Sprintf("c%d", id), "-w", "2", "-T", "120")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitFor(30*time.Second, "READY", func(ls []string) bool { _, _, ok := p.Ready(); return ok }); err != nil {
			t.Fatal(err)
		}
		nodeid, pid, _ := p.Ready()
		if nodeid != id {
			t.Fatalf("client on node %d reports local nodeid %d", id, nodeid)
		}
		clients[id], pids[id] = p, pid
	}
	t0 := time.Now()
	for k := 0; k < lines; k++ {
		for _, id := range []int{1, 2} {
			if err := clients[id].Send(fmt.Sprintf("s%d-%04d", id, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	total := 2 * (burst + lines)
	for _, id := range []int{1, 2} {
		p := clients[id]
		if err := p.WaitFor(60*time.Second, fmt.Sprintf("%d deliveries", total), func(ls []string) bool {
			n := 0
			for _, l := range ls {
				if strings.HasPrefix(l, "DELIVER ") {
					n++
				}
			}
			return n >= total
		}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("MEASURED: %d messages from 2 clients delivered on both nodes %v after the first stdin line", total, time.Since(t0).Round(time.Millisecond))

	var orders [][]string
	for _, id := range []int{1, 2} {
		ds, err := clients[id].Deliveries()
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != total {
			t.Fatalf("node %d delivered %d messages, want %d", id, len(ds), total)
		}
		var order []string
		next := map[string]int{}
		for _, d := range ds {
			// the payload names its sender: c<id>-NNNN (generated) or s<id>-NNNN (stdin)
			var kind byte
			var from, seq int
			if _, err := fmt.Sscanf(d.Payload, "%c%d-%d", &kind, &from, &seq); err != nil {
				t.Fatalf("node %d delivered unexpected payload %q", id, d.Payload)
			}
			if d.NodeID != from || d.PID != pids[from] {
				t.Errorf("node %d: %q delivered as from %d/%d, sent by %d/%d", id, d.Payload, d.NodeID, d.PID, from, pids[from])
			}
			stream := d.Payload[:2]
			if seq != next[stream] {
				t.Errorf("node %d: %q delivered out of FIFO order (expected sequence %d)", id, d.Payload, next[stream])
			}
			next[stream] = seq + 1
			order = append(order, d.Payload)
		}
		orders = append(orders, order)
	}
	if !slices.Equal(orders[0], orders[1]) {
		i := 0
		for i < len(orders[0]) && orders[0][i] == orders[1][i] {
			i++
		}
		t.Fatalf("total order differs at delivery %d: node 1 %v, node 2 %v", i, orders[0][i:min(i+5, total)], orders[1][i:min(i+5, total)])
	}

	// client 1 joined first, so it must have seen client 2 join (reason 1, CPG_REASON_JOIN)
	if !hasConfchg(t, clients[1], func(cc Confchg) bool {
		return slices.Contains(cc.Joined, Process{NodeID: 2, PID: pids[2], Reason: 1})
	}) {
		t.Errorf("client 1 never saw 2/%d join with reason 1", pids[2])
	}
	if err := clients[2].Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := clients[1].WaitFor(10*time.Second, "client 2's leave", func([]string) bool {
		return hasConfchg(t, clients[1], func(cc Confchg) bool {
			return slices.Contains(cc.Left, Process{NodeID: 2, PID: pids[2], Reason: 2})
		})
	}); err != nil {
		t.Fatal(err)
	}
}

func hasConfchg(t *testing.T, p *Proc, pred func(Confchg) bool) bool {
	t.Helper()
	ccs, err := p.Confchgs()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(ccs, pred)
}

// TestCorosyncReferenceScenarios runs the mixed suite's scenarios (mixed_test.go) with real
// corosync in every role. It proves the scenarios' expectations are what corosync itself does
// (so a mixed failure is gototem's, not the test's), and keeps their code exercised while the
// mixed tests are gated.
func TestCorosyncReferenceScenarios(t *testing.T) {
	needCorosync(t)
	t.Run("ring", func(t *testing.T) {
		ringScenario(t, newCluster(t, Options{Engines: engines(Corosync, Corosync, Corosync)}))
	})
	t.Run("partition", func(t *testing.T) {
		partitionScenario(t, newCluster(t, Options{Engines: engines(Corosync, Corosync, Corosync)}))
	})
	t.Run("five", func(t *testing.T) {
		fiveNodeScenario(t, newCluster(t, Options{Engines: engines(Corosync, Corosync, Corosync, Corosync, Corosync)}))
	})
}

// TestStandInGototemPaths drives a gototem-engine node whose "gototem" is the stand-in script
// (real corosync behind the gototem CLI): the harness's gototem code paths — launch with run -c
// --socket, status/quorum/cmap through --socket, listen and send — work end to end, so the
// mixed tests wait only on the daemon itself.
func TestStandInGototemPaths(t *testing.T) {
	needCorosync(t)
	c := newCluster(t, Options{Engines: engines(Corosync, Corosync, Gototem), Gototem: standInGototem(t)})
	bin, err := BuildCPGClient(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := formRing(t, c)
	if links, err := c.Node(3).LinkStatus(context.Background()); err != nil || links[0][1] != "connected" || links[0][3] != "localhost" {
		t.Errorf("gototem-engine node status: %v, %v", links, err)
	}
	sameQuorum(t, c, ids(1, 3), true, 3)
	checkCPGOrder(t, c, bin, "interop-standin", 10, 5)
	if err := c.Node(3).Kill(); err != nil {
		t.Fatal(err)
	}
	changeTo(t, c, r, []int{1, 2}, "kill -9 the gototem-engine node")
}

// TestCorosyncTwoNodeExplicitMcast: two real nodes over udp with an explicit mcastaddr form a
// ring on that group (cmap shows it) and, with two_node, are quorate with 2 expected votes.
func TestCorosyncTwoNodeExplicitMcast(t *testing.T) {
	needCorosync(t)
	ctx := context.Background()
	c := newCluster(t, Options{Engines: engines(Corosync, Corosync), Transport: "udp", McastAddr: "239.255.77.1"})
	if err := c.CheckConfig(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := c.WaitRing(ctx, ids(1, 2), ids(1, 2), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Node(2).Cmap(ctx, "totem.interface.0.mcastaddr"); err != nil || v != "239.255.77.1" {
		t.Errorf("node 2 mcastaddr %q, %v", v, err)
	}
	q, err := c.Node(2).Quorum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Quorate || q.ExpectedVotes != 2 || q.Quorum != 1 || !slices.Contains(q.Flags, "2Node") || q.Ring != r {
		t.Errorf("two-node quorum view %+v (ring %v)", q, r)
	}
}
