package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/totem"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current renderings")

// golden compares got with testdata/golden/name, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got ---\n%s--- want ---\n%s", name, got, want)
	}
}

// threeNodes is a synthetic status: node 1 of a udpu ring of 1 and 3 (node 2 is down),
// votequorum with 3 expected votes.
func threeNodes() totem.Status {
	info := func(id quorum.NodeID) quorum.Info {
		return quorum.Info{NodeID: id, Votes: 1, ExpectedVotes: 3, HighestExpected: 3, TotalVotes: 2, Quorum: 2, Flags: quorum.InfoQuorate}
	}
	return totem.Status{
		NodeID:    1,
		Transport: "udpu",
		RRPMode:   "none",
		RingID:    totem.RingID{Rep: 1, Seq: 0x1c},
		Members:   []totem.NodeID{1, 3},
		Links:     []totem.LinkStatus{{Link: 0, LocalAddr: "10.0.0.1", Text: "ring 0 active with no faults"}},
		Nodes: []totem.NodeStatus{
			{NodeID: 1, Name: "node1", Addrs: []string{"10.0.0.1"}, Member: true, JoinCount: 1},
			{NodeID: 2, Name: "node2", Addrs: []string{"10.0.0.2"}, JoinCount: 1, Left: true},
			{NodeID: 3, Addrs: []string{"10.0.0.3"}, Member: true, JoinCount: 2},
		},
		QuorumProvider: "corosync_votequorum",
		Quorum: quorum.Snapshot{
			NodeID:  1,
			RingID:  quorum.RingID{Rep: 1, Seq: 0x1c},
			Members: []quorum.NodeID{3, 1},
			Quorate: true,
			Local:   info(1),
			Nodes:   map[quorum.NodeID]quorum.Info{1: info(1), 3: info(3)},
		},
	}
}

// twoRings is a redundant-ring udp status with a faulty second ring.
func twoRings() totem.Status {
	s := threeNodes()
	s.Transport, s.RRPMode = "udp", "passive"
	s.Links[0].Text = "ring 0 active with no faults"
	s.Links = append(s.Links, totem.LinkStatus{Link: 1, LocalAddr: "10.1.0.1", Faulty: true, Text: "Marking ringid 1 interface 10.1.0.1 FAULTY"})
	for i := range s.Nodes {
		s.Nodes[i].Addrs = append(s.Nodes[i].Addrs, strings.Replace(s.Nodes[i].Addrs[0], "10.0.", "10.1.", 1))
	}
	return s
}

// The cfgtool renderings follow tool-outputs.md §2.2: "LINK ID n " ends with a space on
// udp/udpu, node cells are "nodeid: %10d:<TAB>state", -b prints n/3/1 per node.
func TestCfgtoolGolden(t *testing.T) {
	single := totem.Status{NodeID: 7, Transport: "udpu", Links: []totem.LinkStatus{{Link: 0, LocalAddr: "192.168.1.7"}},
		Nodes: []totem.NodeStatus{{NodeID: 7, Addrs: []string{"192.168.1.7"}, Member: true}}}
	cases := []struct {
		file  string
		s     totem.Status
		brief bool
	}{
		{"cfgtool-s-udpu.txt", threeNodes(), false},
		{"cfgtool-sb-udpu.txt", threeNodes(), true},
		{"cfgtool-s-udp-rrp.txt", twoRings(), false},
		{"cfgtool-sb-udp-rrp.txt", twoRings(), true},
		{"cfgtool-s-single.txt", single, false},
		{"cfgtool-s-nonodes.txt", totem.Status{NodeID: 1, Transport: "udp"}, false},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) { golden(t, c.file, formatCfgtoolStatus(c.s, c.brief)) })
	}
}

// Exact lines that the lab and corosync users grep for, independent of the golden files.
func TestCfgtoolExactLines(t *testing.T) {
	out := formatCfgtoolStatus(threeNodes(), false)
	for _, want := range []string{
		"Local node ID 1, transport udpu\n",
		"LINK ID 0 \n",
		"\taddr\t= 10.0.0.3\n", // the last non-local node's address, as corosync's udpu code
		"\t\tnodeid:          1:\tlocalhost\n",
		"\t\tnodeid:          2:\tdisconnected\n",
		"\t\tnodeid:          3:\tconnected\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if b := formatCfgtoolStatus(threeNodes(), true); !strings.Contains(b, "\tstatus\t= n13\n") {
		t.Errorf("brief: want status n13, got:\n%s", b)
	}
	if b := formatCfgtoolStatus(twoRings(), true); !strings.Contains(b, "LINK ID 1 \n\taddr\t= 10.1.0.3\n\tstatus\t= n11\n") {
		t.Errorf("faulty ring must show its peers as not connected, got:\n%s", b)
	}
}

func TestQuorumGolden(t *testing.T) {
	now := time.Date(2024, 3, 6, 10, 15, 42, 0, time.UTC)
	golden(t, "quorum-s.txt", formatQuorum(threeNodes(), now, false))
	golden(t, "quorum-l.txt", formatQuorum(threeNodes(), now, true))
	inq := threeNodes()
	inq.Quorum.Quorate = false
	inq.Quorum.Members = []quorum.NodeID{1}
	inq.Quorum.Local.Flags = 0
	inq.Quorum.Local.TotalVotes = 1
	golden(t, "quorum-s-inquorate.txt", formatQuorum(inq, now, false))
	out := formatQuorum(threeNodes(), now, false)
	for _, want := range []string{"Date:             Wed Mar  6 10:15:42 2024\n", "Ring ID:          1.1c\n",
		"Quorum:           2  \n", "         1          1 node1 (local)\n", "         3          1 10.0.0.3\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestCmapRendering(t *testing.T) {
	keys := []config.KeyValue{
		{Key: "totem.transport", Type: config.TypeStr, Value: "udpu"},
		{Key: "runtime.members.3.status", Type: config.TypeStr, Value: "joined"},
		{Key: "runtime.members.1.ip", Type: config.TypeStr, Value: "r(0) ip(10.0.0.1) "},
		{Key: "runtime.members.1.status", Type: config.TypeStr, Value: "joined"},
		{Key: "runtime.members.10.status", Type: config.TypeStr, Value: "left"},
		{Key: "runtime.votequorum.this_node_id", Type: config.TypeU32, Value: "1"},
		{Key: "totem.token", Type: config.TypeU32, Value: "1000"},
		{Key: "totem.cluster_name", Type: config.TypeStr, Value: ""},
	}
	all, n := formatCmap(keys, nil)
	if n != len(keys) {
		t.Errorf("all keys: counted %d, want %d", n, len(keys))
	}
	golden(t, "cmap-all.txt", all)
	cases := []struct {
		prefixes []string
		want     int
	}{
		{[]string{"runtime.members"}, 4},
		{[]string{"runtime.members.1."}, 2},
		{[]string{"runtime.members.1"}, 3}, // plain string prefix, as cmapctl: 1. and 10.
		{[]string{"totem.", "totem.t"}, 3}, // overlapping prefixes print each key once
		{[]string{"nosuch"}, 0},
	}
	for _, c := range cases {
		out, n := formatCmap(keys, c.prefixes)
		if n != c.want || strings.Count(out, "\n") != c.want {
			t.Errorf("prefixes %v: %d keys (%d lines), want %d:\n%s", c.prefixes, n, strings.Count(out, "\n"), c.want, out)
		}
	}
	if got := joinedMembers(all); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Errorf("joinedMembers (the lab's parse) = %v, want [1 3]", got)
	}
}

// Issue 12: a node stuck out of OPERATIONAL is connected to nobody, and `status` shows the
// health, the drop counters per reason and the protocol counters after the cfgtool layout.
func TestStatusHealthAndStuck(t *testing.T) {
	s := threeNodes()
	s.Healthy, s.Health = true, "healthy"
	s.Drops.AuthFailure, s.Drops.UnlistedSender, s.Drops.Invalid = 7, 3, 15
	s.Protocol.TokenLosses, s.Protocol.Gathers = 2, 9
	out := formatCfgtoolStatus(s, false) + formatHealth(s)
	for _, want := range []string{"\t\tnodeid:          3:\tconnected\n", "\tstate\t= healthy\n", "\tauth_failure\t= 7\n",
		"\tunlisted_sender\t= 3\n", "\tinvalid\t= 15\n", "\ttoken_losses\t= 2\n", "\tgathers\t= 9\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	s.Healthy, s.Stuck, s.Health = false, true, "STUCK: no ring formed, in GATHER for 40s"
	out = formatCfgtoolStatus(s, false) + formatHealth(s)
	if strings.Contains(out, "connected\n") && !strings.Contains(out, "disconnected\n") || strings.Contains(out, ":\tconnected") {
		t.Errorf("a stuck node shows peers connected:\n%s", out)
	}
	if !strings.Contains(out, "\tstate\t= STUCK") {
		t.Errorf("stuck state not shown:\n%s", out)
	}
	if n := stuckNote(s); !strings.Contains(n, "WARNING: STUCK") {
		t.Errorf("quorum note for a stuck node: %q", n)
	}
	if n := stuckNote(threeNodes()); n != "" {
		t.Errorf("quorum note for a healthy node: %q", n)
	}
	if b := formatCfgtoolStatus(s, true); !strings.Contains(b, "\tstatus\t= n11\n") {
		t.Errorf("brief status of a stuck node:\n%s", b)
	}
}
