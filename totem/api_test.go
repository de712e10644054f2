package totem

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/srp"
)

func loopbackNodes(n int) []NodeConfig {
	var nodes []NodeConfig
	for id := 1; id <= n; id++ {
		nodes = append(nodes, NodeConfig{ID: NodeID(id), Addrs: []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, byte(id)})}})
	}
	return nodes
}

// A Config built in code and the corosync.conf it stands for resolve to the same cmap picture:
// every default and derived timer comes from package config, whichever way a node is
// configured (one rule, not two that can drift).
func TestConfigInCodeMatchesTheFile(t *testing.T) {
	cfg := LANConfig()
	cfg.ClusterName, cfg.NodeID, cfg.Nodes = "drift", 2, loopbackNodes(5)
	cfg.Quorum.WaitForAll = true
	fromCode, err := cfg.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	const text = `totem {
	version: 2
	cluster_name: drift
	transport: udpu
	crypto_cipher: none
	crypto_hash: none
	interface {
		linknumber: 0
		mcastport: 5405
	}
}
nodelist {
	node {
		nodeid: 1
		ring0_addr: 127.0.0.1
	}
	node {
		nodeid: 2
		ring0_addr: 127.0.0.2
	}
	node {
		nodeid: 3
		ring0_addr: 127.0.0.3
	}
	node {
		nodeid: 4
		ring0_addr: 127.0.0.4
	}
	node {
		nodeid: 5
		ring0_addr: 127.0.0.5
	}
}
quorum {
	provider: corosync_votequorum
	wait_for_all: 1
}
`
	c, _, err := config.Parse("corosync.conf", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	fromFile, _, err := c.Resolve(config.Local{Addrs: config.LocalAddrs(netip.MustParseAddr("127.0.0.2"))})
	if err != nil {
		t.Fatal(err)
	}
	keys := func(rt *config.Runtime) []string {
		var out []string
		for _, kv := range rt.Keys() {
			if !strings.HasPrefix(kv.Key, "logging.") { // the Config keeps its node quiet
				out = append(out, kv.String())
			}
		}
		return out
	}
	if a, b := keys(fromCode), keys(fromFile); !slices.Equal(a, b) {
		t.Errorf("a Config in code and its corosync.conf differ:\ncode: %q\nfile: %q", a, b)
	}
	// 5 nodes: corosync's token is 3000 ms + 3 × 650 ms (token_coefficient), consensus 1.2×.
	if fromCode.Totem.Token != 4950*time.Millisecond || fromCode.Totem.Consensus != 5940*time.Millisecond {
		t.Errorf("derived token %v consensus %v, want corosync's 4.95s and 5.94s", fromCode.Totem.Token, fromCode.Totem.Consensus)
	}
	if fromCode.NodeID != 2 {
		t.Errorf("local node %d, want 2", fromCode.NodeID)
	}
}

// Every way a Config can be wrong is an error that names the setting, before anything opens.
func TestConfigErrors(t *testing.T) {
	ok := func() Config {
		c := LANConfig()
		c.ClusterName, c.NodeID, c.Nodes = "c", 1, loopbackNodes(3)
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no cluster name", func(c *Config) { c.ClusterName = "" }, "ClusterName"},
		{"cluster name with a brace", func(c *Config) { c.ClusterName = "a}" }, "ClusterName"},
		{"no node id", func(c *Config) { c.NodeID = 0 }, "NodeID is not set"},
		{"node id not in the nodelist", func(c *Config) { c.NodeID = 9 }, "NodeID 9 is not in Config.Nodes"},
		{"no nodes", func(c *Config) { c.Nodes = nil }, "Nodes is empty"},
		{"a node without an id", func(c *Config) { c.Nodes[1].ID = 0 }, "a node has no ID"},
		{"two addresses on one ring", func(c *Config) { c.Nodes[0].Addrs = append(c.Nodes[0].Addrs, c.Nodes[0].Addrs[0]) }, "want 1 (one per ring)"},
		{"redundant ring without second addresses", func(c *Config) { c.RRPMode = "passive" }, "want 2 (one per ring)"},
		{"duplicate node id", func(c *Config) { c.Nodes[2].ID = 2 }, "invalid Config"},
		{"unknown transport", func(c *Config) { c.Transport = "tcp" }, "invalid Config"},
		{"cipher without a hash", func(c *Config) { c.CryptoCipher = "aes256" }, "invalid Config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			c.Nodes = slices.Clone(c.Nodes)
			tc.change(&c)
			_, err := New(Options{Config: c, StateDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(Options{Config: ok()}); err == nil || !strings.Contains(err.Error(), "StateDir is required") {
		t.Errorf("a Config in code without a StateDir: %v", err)
	}
}

// Start and Stop under cancellation: a context that ends before Start leaves nothing open; a
// Stop whose context ended before the stop was handed over leaves the node running, and a
// second Stop stops it; Stop on a node never started is a no-op.
func TestLifecycleUnderCancellation(t *testing.T) {
	c := LANConfig()
	c.ClusterName, c.NodeID, c.Nodes, c.Port = "life", 1, loopbackNodes(1), 45131
	n, err := New(Options{Config: c, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Start(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a done context: %v", err)
	}
	n, err = New(Options{Config: c, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Hold the timer goroutine (which takes the stop) on the stack's lock: fire its timer while
	// holding the lock, so it waits for the lock and the hand-over cannot happen before the
	// context ends.
	n.mu.Lock()
	n.timer.Reset(time.Nanosecond)
	time.Sleep(50 * time.Millisecond)
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = n.Stop(short)
	cancel2()
	n.mu.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with a context that ends first: %v", err)
	}
	if _, err := n.Join("still-running", nopHandler{}); err != nil {
		t.Fatalf("the node stopped although Stop gave up before handing the stop over: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel3()
	if err := n.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	select {
	case <-n.finished:
	default:
		t.Fatal("Stop returned nil before the node's goroutines finished")
	}
	if err := n.Stop(ctx); err != nil {
		t.Fatalf("Stop of a stopped node: %v", err)
	}
	if _, err := n.Join("after", nopHandler{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Join on a stopped node: %v", err)
	}
}

type nopHandler struct{}

func (nopHandler) Deliver(Message)          {}
func (nopHandler) ConfigChange(GroupChange) {}

// Membership's Joined and Left count against the previous regular configuration, in both
// kinds (srp itself reports Left in the transitional configuration only).
func TestMembershipJoinedLeft(t *testing.T) {
	d := &dispatcher{}
	conf := func(kind srp.ConfigurationKind, seq uint64, members ...srp.NodeID) *srp.Configuration {
		return &srp.Configuration{Kind: kind, RingID: srp.RingID{Rep: members[0], Seq: seq}, Members: members}
	}
	for _, tc := range []struct {
		c            *srp.Configuration
		joined, left []NodeID
	}{
		{conf(srp.Regular, 4, 1), []NodeID{1}, nil}, // the node's first ring: itself joined
		{conf(srp.Transitional, 8, 1), nil, nil},
		{conf(srp.Regular, 8, 1, 2, 3), []NodeID{2, 3}, nil},
		{conf(srp.Transitional, 12, 1, 2), nil, []NodeID{3}},
		{conf(srp.Regular, 12, 1, 2), nil, []NodeID{3}},
		{conf(srp.Transitional, 16, 1, 2), nil, nil},
		{conf(srp.Regular, 16, 1, 2, 4), []NodeID{4}, nil},
		{conf(srp.Transitional, 20, 2), nil, []NodeID{1, 4}},
		{conf(srp.Regular, 20, 2, 5), []NodeID{5}, []NodeID{1, 4}},
	} {
		m := d.membership(tc.c)
		if !slices.Equal(m.Joined, tc.joined) || !slices.Equal(m.Left, tc.left) {
			t.Errorf("%s %v %v: joined %v left %v, want %v and %v", m.Kind, m.RingID, m.Members, m.Joined, m.Left, tc.joined, tc.left)
		}
	}
}

// WaitMembers gives up with the context's error.
func TestWaitMembersTimesOut(t *testing.T) {
	c := LANConfig()
	c.ClusterName, c.NodeID, c.Nodes, c.Port = "wait", 1, loopbackNodes(2), 45133
	n, err := New(Options{Config: c, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	g, err := n.Join("g", nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := g.WaitMembers(context.Background(), 1)
	if err != nil || len(ms) != 1 || ms[0].NodeID != 1 {
		t.Fatalf("WaitMembers(1) = %v, %v", ms, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := g.WaitMembers(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitMembers(2) with node 2 absent: %v", err)
	}
}
