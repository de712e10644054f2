package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Abiquo guide's two-node CMAN cluster (testdata/cman/abiquo-cluster.conf) becomes the
// corosync.conf pcs would write for it, and that file resolves on rsha1 as a two_node
// votequorum cluster over udpu.
func TestImportCMANAbiquo(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "cman", "abiquo-cluster.conf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text, warns, err := ImportCMAN(f)
	if err != nil {
		t.Fatal(err)
	}
	const want = `# Imported from a CMAN cluster.conf by gototem config import.
totem {
	version: 2
	cluster_name: pacemaker1
	config_version: 8
	transport: udpu
}

nodelist {
	node {
		ring0_addr: rsha1
		name: rsha1
		nodeid: 1
	}
	node {
		ring0_addr: rsha2
		name: rsha2
		nodeid: 2
	}
}

quorum {
	provider: corosync_votequorum
	two_node: 1
}

logging {
	to_syslog: yes
	to_logfile: yes
	logfile: /var/log/cluster/corosync.log
	timestamp: on
}
`
	if text != want {
		t.Errorf("imported:\n%s\nwant:\n%s", text, want)
	}
	for _, w := range []string{"key derived from the cluster name", "expected_votes=\"1\"",
		"clusternode rsha1: fencing (method pcmk-redirect: pcmk)", "clusternode rsha2: fencing", "<fencedevices>"} {
		if !strings.Contains(strings.Join(warns, "\n"), w) {
			t.Errorf("no warning mentions %q; warnings:\n%s", w, strings.Join(warns, "\n"))
		}
	}
	for _, w := range warns {
		if strings.Contains(w, "<rm>") || strings.Contains(w, "fence_daemon") {
			t.Errorf("warning about an element that says nothing: %s", w)
		}
	}
	cfg, _, err := Parse("imported", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]string{"rsha1": "10.60.13.57", "rsha2": "10.60.13.56"}
	rt, _, err := cfg.Resolve(Local{Addrs: LocalAddrs(netip.MustParseAddr("10.60.13.57")),
		LookupHost: func(h string) ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr(hosts[h])}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if rt.NodeID != 1 || len(rt.Nodes) != 2 || rt.Totem.Transport != TransportUDPU || !rt.Quorum.TwoNode || !rt.Quorum.WaitForAll ||
		rt.Totem.ClusterName != "pacemaker1" {
		t.Errorf("resolved: nodeid %d, %d nodes, transport %s, two_node %v, wait_for_all %v, name %q",
			rt.NodeID, len(rt.Nodes), rt.Totem.Transport, rt.Quorum.TwoNode, rt.Quorum.WaitForAll, rt.Totem.ClusterName)
	}
}

// Each CMAN setting lands on its corosync.conf key, or in a warning, or is an error.
func TestImportCMANCases(t *testing.T) {
	node := func(name, id string) string {
		return `<clusternode name="` + name + `" nodeid="` + id + `"/>`
	}
	two := node("a", "1") + node("b", "2")
	for _, c := range []struct {
		name, xml string
		want      []string // lines in the output
		warn      string   // a warning that must appear
		err       string   // the error, when it must fail
	}{
		{"multicast default", `<cluster name="c" config_version="1"><clusternodes>` + two + `</clusternodes></cluster>`,
			[]string{"transport: udp", "\tinterface {"}, "derived the multicast address", ""},
		{"multicast address and port kept", `<cluster name="c"><cman port="5500"><multicast addr="239.1.2.3" ttl="2"/></cman><clusternodes>` + two + `</clusternodes></cluster>`,
			[]string{"mcastaddr: 239.1.2.3", "mcastport: 5500", "ttl: 2"}, "", ""},
		{"udpb is broadcast", `<cluster name="c"><cman transport="udpb"/><clusternodes>` + two + `</clusternodes></cluster>`,
			[]string{"transport: udp", "broadcast: yes"}, "", ""},
		{"totem timers and keyfile", `<cluster name="c"><totem token="10000" consensus="12000" keyfile="/etc/cluster/k"/><cman transport="udpu"/><clusternodes>` + two + `</clusternodes></cluster>`,
			[]string{"token: 10000", "consensus: 12000", "crypto_cipher: aes256", "keyfile: /etc/cluster/k"}, "keeps that key file", ""},
		{"secauth off", `<cluster name="c"><totem secauth="off"/><cman transport="udpu"/><clusternodes>` + two + `</clusternodes></cluster>`,
			nil, "", ""},
		{"votes and expected votes", `<cluster name="c"><cman transport="udpu" expected_votes="4"/><clusternodes><clusternode name="a" nodeid="1" votes="2"/>` + node("b", "2") + node("c", "3") + `</clusternodes></cluster>`,
			[]string{"quorum_votes: 2", "expected_votes: 4"}, "", ""},
		{"altname is ring1", `<cluster name="c"><cman transport="udpu"/><totem rrp_mode="passive"/><clusternodes><clusternode name="a" nodeid="1"><altname name="a2"/></clusternode><clusternode name="b" nodeid="2"><altname name="b2"/></clusternode></clusternodes></cluster>`,
			[]string{"ring1_addr: a2", "ring1_addr: b2", "rrp_mode: passive"}, "", ""},
		{"qdisk", `<cluster name="c"><cman transport="udpu"/><quorumd label="q"/><clusternodes>` + two + `</clusternodes></cluster>`,
			nil, "corosync-qdevice", ""},
		{"rgmanager services", `<cluster name="c"><cman transport="udpu"/><rm><service name="web"/></rm><clusternodes>` + two + `</clusternodes></cluster>`,
			nil, "rgmanager", ""},
		{"missing nodeid", `<cluster name="c"><cman transport="udpu"/><clusternodes><clusternode name="a"/>` + node("b", "2") + `</clusternodes></cluster>`,
			nil, "clusternode a has no nodeid", ""},
		{"two_node with three nodes", `<cluster name="c"><cman two_node="1"/><clusternodes>` + two + node("c", "3") + `</clusternodes></cluster>`,
			nil, "", "two_node=\"1\" with 3 clusternodes"},
		{"duplicate nodeid", `<cluster name="c"><clusternodes>` + node("a", "1") + node("b", "1") + `</clusternodes></cluster>`,
			nil, "", "share nodeid 1"},
		{"duplicate node", `<cluster name="c"><clusternodes>` + node("a", "1") + node("a", "2") + `</clusternodes></cluster>`,
			nil, "", "appears twice"},
		{"bad nodeid", `<cluster name="c"><clusternodes>` + node("a", "x") + `</clusternodes></cluster>`,
			nil, "", "not a positive number"},
		{"no name", `<cluster><clusternodes>` + two + `</clusternodes></cluster>`, nil, "", "no name attribute"},
		{"no nodes", `<cluster name="c"/>`, nil, "", "no <clusternode>"},
		{"not cluster", `<corosync/>`, nil, "", "CMAN's is <cluster>"},
		{"not xml", `totem { version: 2 }`, nil, "", "not CMAN XML"},
		{"too large", `<cluster name="c">` + strings.Repeat("<!-- padding -->", maxClusterConfSize/16) + `</cluster>`, nil, "", "larger than"},
		{"rdma", `<cluster name="c"><cman transport="rdma"/><clusternodes>` + two + `</clusternodes></cluster>`, nil, "", "rdma"},
		{"bad config_version", `<cluster name="c" config_version="v8"><clusternodes>` + two + `</clusternodes></cluster>`, nil, "", "config_version"},
		{"altname on one node only", `<cluster name="c"><clusternodes><clusternode name="a" nodeid="1"><altname name="a2"/></clusternode>` + node("b", "2") + `</clusternodes></cluster>`,
			nil, "", "no altname"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text, warns, err := ImportCMAN(strings.NewReader(c.xml))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range c.want {
				if !strings.Contains(text, line) {
					t.Errorf("no %q in\n%s", line, text)
				}
			}
			if c.warn != "" && !strings.Contains(strings.Join(warns, "\n"), c.warn) {
				t.Errorf("no warning with %q: %q", c.warn, warns)
			}
			if _, _, err := Parse("imported", strings.NewReader(text)); err != nil {
				t.Errorf("output does not parse: %v\n%s", err, text)
			}
		})
	}
}
