package totem

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/config"
)

// reloadConf resolves a corosync.conf text for the node at addr, as `gototem run` would.
func reloadConf(t *testing.T, text string, addr netip.Addr) Config {
	t.Helper()
	cfg, _, err := config.Parse("corosync.conf", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(addr)})
	if err != nil {
		t.Fatal(err)
	}
	return FromRuntime(rt)
}

// TestReloadGrowsTheRing is `pcs cluster node add`: a running two-node ring gets a third
// node by a reload of the new corosync.conf on the running nodes (corosync-cfgtool -R). The
// third node is refused as unlisted until then; after the reload all three form one ring,
// votequorum expects three votes and the reloaded token is in force. Changes that cannot
// happen at run time are refused without disturbing the ring.
func TestReloadGrowsTheRing(t *testing.T) {
	base := netip.AddrFrom4([4]byte{127, byte(10 + rand.IntN(200)), byte(rand.IntN(250)), 0}) // addresses only
	port := 20000 + rand.IntN(20000)
	addr := func(id int) netip.Addr { return nthAddr(base, id) }
	two, three := clusterConf("udpu", 2, base, port), clusterConf("udpu", 3, base, port, "token: 1500")
	var ms []*member
	start := func(id int, text string) { ms = append(ms, startMember(t, reloadConf(t, text, addr(id)), nil)) }
	start(1, two)
	start(2, two)
	waitFor(t, 10*time.Second, "the two-node ring", ringOf(ms, []NodeID{1, 2}))

	// Refused reloads change nothing: a node id that moves, an address that moves.
	if _, err := ms[0].node.Reload(reloadConf(t, strings.Replace(two, "nodeid: 1\n", "nodeid: 7\n", 1), addr(1))); err == nil || !strings.Contains(err.Error(), "node id cannot change") {
		t.Errorf("nodeid change: %v", err)
	}
	moved := strings.Replace(two, "ring0_addr: "+addr(2).String()+"\n", "ring0_addr: "+addr(9).String()+"\n", 1)
	if _, err := ms[0].node.Reload(reloadConf(t, moved, addr(1))); err == nil || !strings.Contains(err.Error(), "must be deleted and recreated") {
		t.Errorf("address change: %v", err)
	}

	start(3, three)
	time.Sleep(1500 * time.Millisecond) // a token and more: node 3 knocks, unlisted
	if m, ok := ms[0].lastRegular(); !ok || !slices.Equal(m.Members, []NodeID{1, 2}) {
		t.Fatalf("before the reload node 1 is in %v, want [1 2] (node 3 is not in its nodelist)", m.Members)
	}
	for i, m := range ms[:2] {
		kept, err := m.node.Reload(reloadConf(t, three, addr(i+1)))
		if err != nil || len(kept) != 0 {
			t.Fatalf("reload on node %d: kept %v, %v", i+1, kept, err)
		}
	}
	waitFor(t, 15*time.Second, "the three-node ring", ringOf(ms, []NodeID{1, 2, 3}))
	waitFor(t, 5*time.Second, "votequorum expecting 3 votes", func() bool {
		q := ms[0].node.Status().Quorum
		return q.Quorate && q.Local.ExpectedVotes == 3
	})
	var token string
	for _, kv := range ms[0].node.CmapKeys() {
		if kv.Key == "runtime.config.totem.token" {
			token = kv.Value
		}
	}
	// The effective token: token + (nodes - 2) × token_coefficient (650 ms), for the new
	// nodelist of three.
	if token != "2150" {
		t.Errorf("runtime.config.totem.token = %q after the reload, want 2150", token)
	}
	t.Logf("asserts: refused reloads left the ring alone; after the reload the ring is [1 2 3], expected votes 3, token %s", token)
}

// TestStaleConfigVersionExits is the node that was down while the cluster's corosync.conf
// moved on (config_version 10 on the running nodes, 5 on its disk): at its first sync with
// them, cmap's check asks it to shut down with corosync's line, and only it. The running
// nodes then bump their version by a reload, and their peers see it without a new ring.
func TestStaleConfigVersionExits(t *testing.T) {
	base := netip.AddrFrom4([4]byte{127, byte(10 + rand.IntN(200)), byte(rand.IntN(250)), 0})
	port := 20000 + rand.IntN(20000)
	addr := func(id int) netip.Addr { return nthAddr(base, id) }
	conf := func(v int) string { return clusterConf("udpu", 3, base, port, fmt.Sprintf("config_version: %d", v)) }
	type req struct {
		node   int
		reason string
	}
	reqs := make(chan req, 8)
	var ms []*member
	for id, v := range []int{10, 10, 5} {
		if id == 2 {
			waitFor(t, 10*time.Second, "the two-node ring", ringOf(ms, []NodeID{1, 2}))
		}
		ms = append(ms, startMemberWith(t, Options{Config: reloadConf(t, conf(v), addr(id+1)),
			OnShutdownRequest: func(reason string) { reqs <- req{id + 1, reason} }}))
	}
	select {
	case r := <-reqs:
		if want := "Received config version (10) is different than my config version (5)! Exiting"; r.node != 3 || r.reason != want {
			t.Fatalf("node %d asked to shut down: %q; want node 3: %q", r.node, r.reason, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node 3 (config_version 5) was not asked to shut down")
	}
	for i, m := range ms[:2] {
		if _, err := m.node.Reload(reloadConf(t, conf(11), addr(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "node 2's reloaded config_version on node 1", func() bool {
		return ms[0].node.Status().ConfigVersions[2] == 11
	})
	select {
	case r := <-reqs:
		t.Fatalf("node %d asked to shut down after the first sync: %q", r.node, r.reason)
	default:
	}
}

// nthAddr is the address id steps after base (node id's address in clusterConf's nodelist).
func nthAddr(base netip.Addr, id int) netip.Addr {
	for range id {
		base = base.Next()
	}
	return base
}
