package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

const reloadBase = `totem {
	version: 2
	cluster_name: alpha
	transport: udpu
	token: 3000
	interface {
		linknumber: 0
		mcastport: 5405
	}
}
nodelist {
	node {
		ring0_addr: 10.0.0.1
		nodeid: 1
	}
	node {
		ring0_addr: 10.0.0.2
		nodeid: 2
	}
}
quorum {
	provider: corosync_votequorum
	two_node: 1
}
`

// TestReload is one row per corosync reload rule: what a re-read file changes on a running
// node, what keeps its running value (and is reported), and what refuses the reload.
func TestReload(t *testing.T) {
	running := func() *Runtime {
		c, _, err := Parse("corosync.conf", strings.NewReader(reloadBase))
		if err != nil {
			t.Fatal(err)
		}
		rt, _, err := c.Resolve(Local{Addrs: LocalAddrs(netip.MustParseAddr("10.0.0.1"))})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	third := "\tnode {\n\t\tring0_addr: 10.0.0.3\n\t\tnodeid: 3\n\t}\n}\nquorum"
	cases := []struct {
		name    string
		edit    func(string) string
		kept    []string
		err     string
		applied func(rt *Runtime) bool
	}{
		{"timers follow the file", func(s string) string { return strings.Replace(s, "token: 3000", "token: 5000", 1) }, nil, "",
			func(rt *Runtime) bool { return rt.Totem.Token.Milliseconds() == 5000 }},
		{"a node is added", func(s string) string { return strings.Replace(s, "}\nquorum", third, 1) }, nil, "",
			func(rt *Runtime) bool { return len(rt.Nodes) == 3 && rt.Nodes[2].NodeID == 3 }},
		{"a node is removed", func(s string) string {
			return strings.Replace(s, "\tnode {\n\t\tring0_addr: 10.0.0.2\n\t\tnodeid: 2\n\t}\n", "", 1)
		}, nil, "", func(rt *Runtime) bool { return len(rt.Nodes) == 1 }},
		{"two_node is reloadable", func(s string) string { return strings.Replace(s, "two_node: 1", "two_node: 0", 1) }, nil, "",
			func(rt *Runtime) bool { return !rt.Quorum.TwoNode }},
		{"cluster_name keeps its running value", func(s string) string { return strings.Replace(s, "alpha", "beta", 1) },
			[]string{"totem.cluster_name"}, "", func(rt *Runtime) bool { return rt.Totem.ClusterName == "alpha" }},
		{"transport keeps its running value", func(s string) string { return strings.Replace(s, "udpu", "udp", 1) },
			[]string{"totem.transport"}, "", func(rt *Runtime) bool { return rt.Totem.Transport == TransportUDPU }},
		{"an added startup-only quorum option stays absent", func(s string) string {
			return strings.Replace(s, "two_node: 1", "two_node: 1\n\tlast_man_standing: 1", 1)
		}, []string{"quorum.last_man_standing"}, "", func(rt *Runtime) bool { return !rt.Quorum.LastManStanding }},
		{"interface settings keep their running value", func(s string) string { return strings.Replace(s, "mcastport: 5405", "mcastport: 5500", 1) },
			[]string{"totem.interface.0.mcastport"}, "", func(rt *Runtime) bool { return rt.Rings[0].McastPort == 5405 }},
		{"the local node id cannot move", func(s string) string { return strings.Replace(s, "nodeid: 1\n", "nodeid: 9\n", 1) }, nil,
			"a node id cannot change", nil},
		{"an existing node's address cannot move", func(s string) string { return strings.Replace(s, "10.0.0.2", "10.0.0.7", 1) }, nil,
			"must be deleted and recreated", nil},
		{"an invalid file is refused", func(s string) string { return strings.Replace(s, "token: 3000", "token: -1", 1) }, nil,
			"token", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt := running()
			next, _, perr := Parse("corosync.conf", strings.NewReader(c.edit(reloadBase)))
			if perr != nil {
				if c.err == "" || !strings.Contains(perr.Error(), c.err) {
					t.Fatalf("parse: %v", perr)
				}
				return // the daemon never gets as far as Reload with a file that does not parse
			}
			got, kept, err := rt.Reload(next)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(kept, c.kept) {
				t.Errorf("kept %v, want %v", kept, c.kept)
			}
			if !c.applied(got) {
				t.Errorf("the reloaded runtime does not show the rule")
			}
			if got.NodeID != 1 {
				t.Errorf("node id %d", got.NodeID)
			}
			for _, kv := range got.Keys() {
				if slices.Contains(c.kept, kv.Key) {
					for _, o := range rt.Keys() {
						if o.Key == kv.Key && o.Value != kv.Value {
							t.Errorf("cmap key %s = %s, want the running %s", kv.Key, kv.Value, o.Value)
						}
					}
				}
			}
		})
	}
}
