package interop

import (
	"context"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// The netns lab of issue 6: gototem daemons only, one per namespace, each with its own
// corosync.conf, over real links. These tests need root and network namespaces (not corosync).

func gototemCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if os.Getenv("GOTOTEM_LAB") == "0" {
		t.Skip("GOTOTEM_LAB=0: the gototem netns lab is switched off")
	}
	testenv.Need(t, "root and network namespaces for the gototem netns lab", labCheck())
	opts.Gototem = buildGototem(t)
	return newCluster(t, opts)
}

func labCheck() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	return nil
}

func allGototem(n int) []Engine {
	es := make([]Engine, n)
	for i := range es {
		es[i] = Gototem
	}
	return es
}

// effectiveToken is totem's runtime token for n nodes (token + (n−2)·650 ms).
func effectiveToken(tokenMS, n int) time.Duration {
	t := tokenMS
	if n > 2 {
		t += (n - 2) * 650
	}
	return time.Duration(t) * time.Millisecond
}

// 3 and 5 gototem nodes over udpu and over udp multicast form one ring; kill -9 of a node makes
// the survivors install a new configuration within token + consensus + 1 s; messages sent
// through the change are delivered in one order by all survivors (virtual synchrony: they
// moved together, so they delivered the same messages), and the listeners' streams, ring
// configurations included, pass the simulator's EVS checkers.
func TestGototemLabRings(t *testing.T) {
	for _, tc := range []struct {
		transport string
		nodes     int
	}{{"udpu", 3}, {"udp", 3}, {"udpu", 5}, {"udp", 5}} {
		t.Run(fmt.Sprintf("%s-%d", tc.transport, tc.nodes), func(t *testing.T) {
			c := gototemCluster(t, Options{Engines: allGototem(tc.nodes), Transport: tc.transport, Quiet: true})
			r := formRing(t, c)
			ctx := context.Background()
			token := effectiveToken(1000, tc.nodes)
			bound := token + token*12/10 + time.Second
			survivors := ids(1, tc.nodes-1)

			// listeners on the survivors, a sender on node 1 while the last node is killed
			group := "lab"
			listeners := startRingListeners(t, c, survivors, group)
			sent := 0
			send := func(k int) {
				for i := 0; i < k; i++ {
					msg := fmt.Sprintf("evs-%04d", sent)
					if out, err := c.Node(1).Gototem(ctx, "send", group, msg); err != nil {
						t.Fatalf("send: %v: %s", err, out)
					}
					sent++
				}
			}
			send(5)
			victim := c.Node(tc.nodes)
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			// These are sent while the ring notices the crash: each waits (up to the change
			// plus synchronization) for its own delivery, so they run beside the wait.
			during := make(chan error, 1)
			go func() {
				for i := 0; i < 5; i++ {
					msg := fmt.Sprintf("evs-%04d", 5+i)
					if out, err := c.run(ctx, 1, 3*bound, c.opts.Gototem, "send", "--socket", c.Node(1).Sock, group, msg); err != nil {
						during <- fmt.Errorf("send %s during the change: %v: %s", msg, err, out)
						return
					}
				}
				during <- nil
			}()
			r2, err := c.WaitRing(ctx, survivors, survivors, 2*bound)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(killed)
			if err := <-during; err != nil {
				t.Fatal(err)
			}
			sent += 5
			t.Logf("MEASURED: %s %d nodes: kill -9 node %d -> ring %v after %v (bound token+consensus+1s = %v)", tc.transport, tc.nodes, tc.nodes, r2, took.Round(time.Millisecond), bound)
			if took > bound {
				t.Errorf("new configuration after %v, more than token + consensus + 1 s = %v", took, bound)
			}
			if r2.Seq <= r.Seq {
				t.Fatalf("ring %v does not follow %v", r2, r)
			}
			send(5)
			want := map[string]bool{}
			for i := 0; i < sent; i++ {
				want[fmt.Sprintf("evs-%04d", i)] = true
			}
			var ref []string
			for _, id := range survivors {
				p := listeners[id]
				if err := p.WaitFor(30*time.Second, "every message", func(ls []string) bool { return len(PayloadOrder(ls, want)) >= len(want) }); err != nil {
					t.Fatal(err)
				}
				order := PayloadOrder(p.Lines(), want)
				if len(order) != len(want) {
					t.Fatalf("node %d delivered %d messages, want %d", id, len(order), len(want))
				}
				if ref == nil {
					ref = order
				} else if !slices.Equal(order, ref) {
					t.Fatalf("node %d delivered another order:\n%v\n%v", id, order, ref)
				}
			}
			// The same deliveries, configurations included, through the simulator's checkers.
			var sentLog []labSend
			for i := 0; i < sent; i++ {
				sentLog = append(sentLog, labSend{1, fmt.Sprintf("evs-%04d", i)})
			}
			logs := map[srp.NodeID][]string{}
			for _, id := range survivors {
				logs[srp.NodeID(id)] = listeners[id].Lines()
				// The streams must hold the change itself, or the check proves little.
				if !slices.ContainsFunc(logs[srp.NodeID(id)], func(l string) bool { return strings.HasPrefix(l, "RING transitional") }) {
					t.Errorf("node %d's stream has no transitional configuration for the crash", id)
				}
			}
			checkLabEVS(t, sentLog, logs)
			for _, p := range listeners {
				p.Stop(5 * time.Second)
			}
		})
	}
}

// startRingListeners runs `gototem listen --rings group` on each node, for the EVS check, and
// waits for their joins to go around the ring.
func startRingListeners(t *testing.T, c *Cluster, nodes []int, group string) map[int]*Proc {
	t.Helper()
	listeners := map[int]*Proc{}
	for _, id := range nodes {
		n := c.Node(id)
		p, err := n.StartProc(c.opts.Gototem, "listen", "--socket", n.Sock, "--rings", "-t", "120", group)
		if err != nil {
			t.Fatal(err)
		}
		listeners[id] = p
	}
	time.Sleep(500 * time.Millisecond)
	return listeners
}

// Kill -9 and restart one node of 3 several times over udpu: the median detection time, for
// the closing note, and each within the bound.
func TestGototemLabFailoverMedian(t *testing.T) {
	c := gototemCluster(t, Options{Engines: allGototem(3), Quiet: true})
	formRing(t, c)
	ctx := context.Background()
	bound := effectiveToken(1000, 3)*22/10 + time.Second
	var took []time.Duration
	for run := 0; run < 3; run++ {
		if err := c.Node(3).Kill(); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if _, err := c.WaitRing(ctx, ids(1, 2), ids(1, 2), 2*bound); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(t0))
		if err := c.Node(3).Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitRing(ctx, ids(1, 3), ids(1, 3), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(took)
	t.Logf("MEASURED: kill -9 -> new membership, 3 gototem nodes udpu token 1000: runs %v, median %v (bound %v)", took, took[len(took)/2].Round(time.Millisecond), bound)
	for _, d := range took {
		if d > bound {
			t.Errorf("detection took %v, bound %v", d, bound)
		}
	}
}

// Two rings, active and passive: cutting ring 1 keeps membership and gototem status reports
// ring 1 FAULTY; after healing it reports "active with no faults" again.
func TestGototemLabRedundantRing(t *testing.T) {
	for _, mode := range []string{"active", "passive"} {
		t.Run(mode, func(t *testing.T) {
			c := gototemCluster(t, Options{Engines: allGototem(3), Rings: 2, RRPMode: mode, Quiet: true})
			r := formRing(t, c)
			ctx := context.Background()
			// Messages flow before, during and after the cut; every node's stream goes
			// through the EVS checkers at the end, and none may hold a configuration change.
			group := "rrp"
			listeners := startRingListeners(t, c, ids(1, 3), group)
			var sent []labSend
			send := func(k int) {
				for i := 0; i < k; i++ {
					from := 1 + len(sent)%3
					msg := fmt.Sprintf("rrp-%04d", len(sent))
					if out, err := c.Node(from).Gototem(ctx, "send", group, msg); err != nil {
						t.Fatalf("send from node %d: %v: %s", from, err, out)
					}
					sent = append(sent, labSend{srp.NodeID(from), msg})
				}
			}
			send(6)
			for h := 1; h <= 3; h++ {
				if err := c.Lab().CutLink(h, 1); err != nil {
					t.Fatal(err)
				}
			}
			ringText := func(id int) string {
				out, _ := c.Node(id).Gototem(ctx, "status")
				return string(out)
			}
			if err := Poll(ctx, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
				s := ringText(1)
				return strings.Contains(s, "Marking ringid 1 interface") && strings.Contains(s, "FAULTY"), s
			}, nil); err != nil {
				t.Fatalf("ring 1 never reported FAULTY: %v", err)
			}
			v, err := c.Node(2).ViewOf(ctx)
			if err != nil || v.Ring != r || len(v.Members) != 3 {
				t.Fatalf("membership changed with one ring cut: %v (was %v) %v", v, r, err)
			}
			send(6)
			for h := 1; h <= 3; h++ {
				if err := c.Lab().HealLink(h, 1); err != nil {
					t.Fatal(err)
				}
			}
			if err := Poll(ctx, 20*time.Second, 250*time.Millisecond, func() (bool, string) {
				s := ringText(1)
				return strings.Contains(s, "ring 1 active with no faults"), s
			}, nil); err != nil {
				t.Fatalf("ring 1 did not recover: %v", err)
			}
			if v, err := c.Node(3).ViewOf(ctx); err != nil || v.Ring != r {
				t.Fatalf("membership changed across the cut and heal: %v (was %v) %v", v, r, err)
			}
			send(6)
			want := map[string]bool{}
			for _, m := range sent {
				want[m.text] = true
			}
			logs := map[srp.NodeID][]string{}
			for id, p := range listeners {
				if err := p.WaitFor(30*time.Second, "every message", func(ls []string) bool { return len(PayloadOrder(ls, want)) >= len(want) }); err != nil {
					t.Fatal(err)
				}
				p.Stop(5 * time.Second)
				logs[srp.NodeID(id)] = p.Lines()
				for _, l := range p.Lines() {
					if strings.HasPrefix(l, "RING transitional") {
						t.Errorf("node %d saw a configuration change with one ring cut: %s", id, l)
					}
				}
			}
			checkLabEVS(t, sent, logs)
		})
	}
}
