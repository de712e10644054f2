package config

import (
	"flag"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden dump files in testdata/golden")

// nodelistOf builds a udpu file with n nodes 10.0.0.1..n (ids derived) and extra totem keys.
func nodelistOf(n int, totemExtra string) string {
	var b strings.Builder
	b.WriteString("totem {\n version: 2\n transport: udpu\n" + totemExtra + "}\nnodelist {\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, " node {\n  ring0_addr: 10.0.0.%d\n }\n", i)
	}
	b.WriteString("}\n")
	return b.String()
}

func mustResolve(t *testing.T, text string, local Local) *Runtime {
	t.Helper()
	rt, _, err := check(text, local)
	if err != nil {
		t.Fatalf("config rejected:\n%v\n--- config ---\n%s", err, text)
	}
	return rt
}

// TestTimerDerivation proves corosync-conf.md §2.2's table: effective token with the
// coefficient, token_retransmit, hold, consensus and the knet ping timers per node count,
// plus the 2.x-era token 1000 values and a disabled coefficient.
func TestTimerDerivation(t *testing.T) {
	tests := []struct {
		nodes                                                int
		extra                                                string
		token, retransmit, hold, consensus, pingTO, pingIntv int64
	}{
		{1, "", 3000, 714, 561, 3600, 1500, 750},
		{2, "", 3000, 714, 561, 3600, 1500, 750},
		{3, "", 3650, 869, 685, 4380, 1825, 912},
		{4, "", 4300, 1023, 808, 5160, 2150, 1075},
		{5, "", 4950, 1178, 932, 5940, 2475, 1237},
		{8, "", 6900, 1642, 1303, 8280, 3450, 1725},
		{2, " token: 1000\n", 1000, 238, 180, 1200, 500, 250},
		{5, " token_coefficient: 0\n", 3000, 714, 561, 3600, 1500, 750},
		{3, " token: 1000\n", 1650, 392, 303, 1980, 825, 412}, // coefficient applies to an explicit token too
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d nodes %q", tc.nodes, tc.extra), func(t *testing.T) {
			rt := mustResolve(t, nodelistOf(tc.nodes, tc.extra), local1)
			tm := rt.Totem
			got := []int64{tm.Token.Milliseconds(), tm.TokenRetransmit.Milliseconds(), tm.Hold.Milliseconds(),
				tm.Consensus.Milliseconds(), rt.Rings[0].KnetPingTimeout.Milliseconds(), rt.Rings[0].KnetPingInterval.Milliseconds()}
			want := []int64{tc.token, tc.retransmit, tc.hold, tc.consensus, tc.pingTO, tc.pingIntv}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("token/retransmit/hold/consensus/ping timeout/interval = %v, want %v", got, want)
			}
		})
	}
}

// TestTimerDefaults proves the fixed defaults and that an explicit 0 means "default" for
// most keys but is a real value for token_warning, send_join and heartbeat_failures_allowed.
func TestTimerDefaults(t *testing.T) {
	rt := mustResolve(t, nodelistOf(2, ""), local1)
	tm := rt.Totem
	ms := time.Millisecond
	check := map[string][2]int64{
		"join": {int64(tm.Join / ms), 50}, "merge": {int64(tm.Merge / ms), 200}, "downcheck": {int64(tm.Downcheck / ms), 1000},
		"send_join": {int64(tm.SendJoin / ms), 0}, "max_network_delay": {int64(tm.MaxNetworkDelay / ms), 50},
		"token_warning": {int64(tm.TokenWarning), 75}, "trblc": {int64(tm.TokenRetransmitsBeforeLossConst), 4},
		"fail_recv_const": {int64(tm.FailRecvConst), 2500}, "seqno_unchanged_const": {int64(tm.SeqnoUnchangedConst), 30},
		"miss_count_const": {int64(tm.MissCountConst), 5}, "window_size": {int64(tm.WindowSize), 50},
		"max_messages": {int64(tm.MaxMessages), 17}, "netmtu": {int64(tm.NetMTU), 1500},
		"rrp_problem_count_timeout":         {int64(tm.RRP.ProblemCountTimeout / ms), 2000},
		"rrp_problem_count_threshold":       {int64(tm.RRP.ProblemCountThreshold), 10},
		"rrp_problem_count_mcast_threshold": {int64(tm.RRP.ProblemCountMcastThreshold), 100},
		"rrp_token_expired_timeout":         {int64(tm.RRP.TokenExpiredTimeout / ms), 295}, // (3000 − 50) / 10
		"rrp_autorecovery_check_timeout":    {int64(tm.RRP.AutorecoveryCheckTimeout / ms), 1000},
	}
	for k, v := range check {
		if v[0] != v[1] {
			t.Errorf("%s = %d, want %d", k, v[0], v[1])
		}
	}
	rt = mustResolve(t, nodelistOf(2, " join: 0\n token_warning: 0\n window_size: 0\n rrp_problem_count_threshold: 4\n"), local1)
	if rt.Totem.Join != 50*ms || rt.Totem.TokenWarning != 0 || rt.Totem.WindowSize != 50 || rt.Totem.RRP.ProblemCountMcastThreshold != 40 {
		t.Errorf("zero handling: join %v token_warning %d window_size %d mcast threshold %d; want 50ms 0 50 40",
			rt.Totem.Join, rt.Totem.TokenWarning, rt.Totem.WindowSize, rt.Totem.RRP.ProblemCountMcastThreshold)
	}
}

// TestNodeIDDerivation proves totem-protocol.md §9.2: ring0 IPv4 read big-endian,
// clear_node_high_bit masking bit 31, explicit ids untouched.
func TestNodeIDDerivation(t *testing.T) {
	tests := []struct {
		addr, extra string
		want        uint32
	}{
		{"192.168.1.1", "", 3232235777},
		{"192.168.1.1", " clear_node_high_bit: yes\n", 1084752129},
		{"192.168.1.10", "", 0xC0A8010A},
		{"10.107.0.8", " clear_node_high_bit: yes\n", 174784520},
	}
	for _, tc := range tests {
		text := "totem {\n version: 2\n transport: udpu\n" + tc.extra + "}\nnodelist {\n node {\n  ring0_addr: " + tc.addr + "\n }\n}\n"
		rt := mustResolve(t, text, Local{Addrs: LocalAddrs(netip.MustParseAddr(tc.addr))})
		if rt.NodeID != tc.want || !rt.Nodes[0].NodeIDDerived {
			t.Errorf("%s %q: nodeid %d (derived %v), want %d", tc.addr, tc.extra, rt.NodeID, rt.Nodes[0].NodeIDDerived, tc.want)
		}
	}
}

// TestMcastFromClusterName proves corosync-conf.md §3.5's worked examples, including the
// "mod 255" quirk and the link offset.
func TestMcastFromClusterName(t *testing.T) {
	tests := []struct {
		name string
		link int
		v6   bool
		want string
	}{
		{"ExampleCluster", 0, false, "239.192.134.59"},
		{"ExampleCluster", 1, false, "239.192.134.60"},
		{"hacluster", 0, false, "239.192.204.129"},
		{"testcluster", 0, false, "239.192.123.175"},
		{"ExampleCluster", 0, true, "ff15::86b4"},
	}
	for _, tc := range tests {
		if got := McastFromClusterName(tc.name, tc.link, tc.v6).String(); got != tc.want {
			t.Errorf("McastFromClusterName(%q, %d, %v) = %s, want %s", tc.name, tc.link, tc.v6, got, tc.want)
		}
	}
}

// TestRings proves ports, send ports, broadcast and redundant-ring settings as gototem's
// transport will read them.
func TestRings(t *testing.T) {
	two := udp2("  rrp_mode: passive\n", "    mcastport: 6000\n", "totem {\n interface {\n  ringnumber: 1\n  bindnetaddr: 10.1.0.0\n  mcastaddr: 239.1.1.2\n }\n}\n")
	rt := mustResolve(t, two, Local{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.7/24"), netip.MustParsePrefix("10.1.0.7/24")}})
	if len(rt.Rings) != 2 || rt.Totem.RRPMode != "passive" || rt.Totem.Transport != TransportUDP {
		t.Fatalf("rings %d mode %s transport %s; want 2 passive udp", len(rt.Rings), rt.Totem.RRPMode, rt.Totem.Transport)
	}
	r0, r1 := rt.Rings[0], rt.Rings[1]
	if r0.McastPort != 6000 || r0.SendPort != 5999 || r0.BindNetAddr.String() != "10.0.0.7" || r0.McastAddr.String() != "239.1.1.1" {
		t.Errorf("ring 0 = %+v", r0)
	}
	if r1.McastPort != 5406 || r1.SendPort != 5405 || r1.BindNetAddr.String() != "10.1.0.7" {
		t.Errorf("ring 1 = %+v (default port 5405+link)", r1)
	}
	if rt.NodeID != 0x0a000007 {
		t.Errorf("nodeid %d, want the ring-0 address 10.0.0.7 read big-endian", rt.NodeID)
	}
	bc := "totem {\n version: 2\n transport: udp\n interface {\n  linknumber: 0\n  broadcast: yes\n }\n}\n" + nodes3
	rt = mustResolve(t, bc, local1)
	if r := rt.Rings[0]; r.McastAddr.String() != "255.255.255.255" || r.McastPort != 5405 {
		t.Errorf("broadcast ring = %+v", r)
	}
	u := mustResolve(t, udpu("", ""), local1)
	if r := u.Rings[0]; r.SendPort != 5405 || r.McastAddr.IsValid() || r.BindNetAddr.String() != "10.0.0.1" {
		t.Errorf("udpu ring = %+v (sends from its own port, no group)", r)
	}
}

// TestCryptoAndQuorumDefaults proves secauth's mapping, keyfile/state_dir defaults and
// wait_for_all following two_node.
func TestCryptoAndQuorumDefaults(t *testing.T) {
	rt := mustResolve(t, udpu("  secauth: on\n", "quorum {\n provider: corosync_votequorum\n two_node: 1\n}\n"), local1)
	cr := rt.Totem.Crypto
	if cr.Cipher != "aes256" || cr.Hash != "sha256" || cr.Keyfile != DefaultKeyfile || !cr.Enabled() {
		t.Errorf("crypto = %+v, want aes256/sha256 from secauth with the default keyfile", cr)
	}
	if !rt.Quorum.TwoNode || !rt.Quorum.WaitForAll || rt.System.StateDir != DefaultStateDir {
		t.Errorf("quorum %+v state_dir %q", rt.Quorum, rt.System.StateDir)
	}
	rt = mustResolve(t, udpu("", "quorum {\n provider: corosync_votequorum\n two_node: 1\n wait_for_all: 0\n}\n"), local1)
	if rt.Quorum.WaitForAll {
		t.Error("explicit wait_for_all: 0 must win over two_node")
	}
	rt = mustResolve(t, udpu("", "logging {\n to_syslog: no\n logger_subsys {\n  subsys: QUORUM\n  debug: on\n }\n}\n"), local1)
	if len(rt.Logging.Subsys) != 1 || rt.Logging.Subsys[0].Debug != "on" || rt.Logging.Subsys[0].ToSyslog || rt.Logging.ToSyslog {
		t.Errorf("logging = %+v; subsys must inherit to_syslog no and set debug on", rt.Logging)
	}
}

func testdataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testenv.Root(), "testdata")
	_, err := os.Stat(filepath.Join(dir, "configs"))
	testenv.Need(t, "testdata/configs", err)
	return dir
}

// TestSharedConfigs proves every real config in testdata/configs passes the check stage (warnings
// allowed), resolved as `gototem config check` does on a machine that is not a node.
func TestSharedConfigs(t *testing.T) {
	dir := testdataDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "configs", "*"))
	caps, _ := filepath.Glob(filepath.Join(dir, "captures", "*corosync.conf.node1"))
	files = append(files, caps...)
	if len(files) < 4 {
		t.Fatalf("found only %d shared configs: %v", len(files), files)
	}
	for _, f := range files {
		c, warns, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if _, w2, err := c.Resolve(Local{Fallback: true}); err != nil {
			t.Errorf("%s: %v", f, err)
		} else {
			t.Logf("%s: %d warnings", f, len(warns)+len(w2))
		}
	}
}

// TestFuelHA proves the acceptance values for the 5-controller 2.x multicast file.
func TestFuelHA(t *testing.T) {
	dir := testdataDir(t)
	c, _, err := Load(filepath.Join(dir, "configs", "fuel-ha.conf"))
	if err != nil {
		t.Fatal(err)
	}
	rt, _, err := c.Resolve(Local{Addrs: LocalAddrs(netip.MustParseAddr("10.107.0.8"))})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, kv := range rt.Keys() {
		keys[kv.Key] = kv.String()
	}
	for _, want := range []string{
		"runtime.config.totem.nodeid (u32) = 174784520",
		"runtime.config.totem.token (u32) = 3000",
		"runtime.config.totem.consensus (u32) = 3600",
		"runtime.config.totem.join (u32) = 60",
		"runtime.config.totem.max_messages (u32) = 20",
		"totem.interface.0.mcastaddr (str) = 239.1.1.2",
		"totem.interface.0.mcastport (u16) = 5405",
	} {
		key, _, _ := strings.Cut(want, " ")
		if keys[key] != want {
			t.Errorf("dump has %q, want %q", keys[key], want)
		}
	}
	if rt.Totem.Transport != TransportUDP || rt.Rings[0].SendPort != 5404 {
		t.Errorf("transport %s send port %d; want udp from 5404", rt.Totem.Transport, rt.Rings[0].SendPort)
	}
}

// TestGoldenDumps compares the full key view with testdata/golden/*.dump (go test
// -update rewrites them): a 3-node udpu file and a 2-ring udp file.
func TestGoldenDumps(t *testing.T) {
	cases := []struct {
		name  string
		local Local
	}{
		{"udpu-3node", Local{Addrs: LocalAddrs(netip.MustParseAddr("192.168.122.12"))}},
		{"udp-2ring", Local{Addrs: LocalAddrs(netip.MustParseAddr("192.168.122.11"), netip.MustParseAddr("10.10.0.11"))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join("testdata", "golden", tc.name+".conf")
			c, _, err := Load(conf)
			if err != nil {
				t.Fatal(err)
			}
			rt, _, err := c.Resolve(tc.local)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, kv := range rt.Keys() {
				b.WriteString(kv.String() + "\n")
			}
			golden := filepath.Join("testdata", "golden", tc.name+".dump")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -run TestGoldenDumps -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("dump differs from %s (rerun with -update if intended):\n--- got ---\n%s--- want ---\n%s", golden, b.String(), want)
			}
		})
	}
}

// TestKeysSorted proves the key view is byte-wise sorted, as corosync-cmapctl prints it
// (nodelist.node.10 before nodelist.node.2).
func TestKeysSorted(t *testing.T) {
	rt := mustResolve(t, nodelistOf(11, ""), local1)
	kv := rt.Keys()
	for i := 1; i < len(kv); i++ {
		if kv[i-1].Key >= kv[i].Key {
			t.Fatalf("keys not strictly sorted: %q before %q", kv[i-1].Key, kv[i].Key)
		}
	}
	var i10, i2 int
	for i, k := range kv {
		switch k.Key {
		case "nodelist.node.10.nodeid":
			i10 = i
		case "nodelist.node.2.nodeid":
			i2 = i
		}
	}
	if !(i10 < i2) || kv[i10].String() != "nodelist.node.10.nodeid (u32) = 167772171" {
		t.Errorf("node 10 at %d (%v), node 2 at %d", i10, kv[i10], i2)
	}
}

// TestCaptureConfigs checks the derivations against what real corosync 3.1.7 did with the
// lab configs (testdata/captures/README.md): the udp group it derived from
// "gototem-lab", its ports and its runtime timers for three nodes.
func TestCaptureConfigs(t *testing.T) {
	dir := testdataDir(t)
	for _, tr := range []string{"udp", "udpu"} {
		c, _, err := Load(filepath.Join(dir, "captures", tr+"-corosync.conf.node1"))
		if err != nil {
			t.Fatal(err)
		}
		rt, _, err := c.Resolve(Local{Addrs: LocalAddrs(netip.MustParseAddr("10.77.0.1"))})
		if err != nil {
			t.Fatal(err)
		}
		tm := rt.Totem
		got := fmt.Sprint(rt.NodeID, tm.Token.Milliseconds(), tm.Consensus.Milliseconds(), tm.Join.Milliseconds(), tm.Merge.Milliseconds(),
			tm.Hold.Milliseconds(), tm.TokenRetransmit.Milliseconds(), tm.WindowSize, tm.MaxMessages, tm.NetMTU, rt.Rings[0].McastPort)
		if want := "1 3650 4380 50 200 685 869 50 17 1500 5405"; got != want {
			t.Errorf("%s: nodeid/token/consensus/join/merge/hold/retransmit/window/max_messages/netmtu/port = %s, want %s", tr, got, want)
		}
		r := rt.Rings[0]
		switch tr {
		case "udp":
			if r.McastAddr.String() != "239.192.90.134" || r.SendPort != 5404 {
				t.Errorf("udp group %s send port %d; corosync used 239.192.90.134 from 5404", r.McastAddr, r.SendPort)
			}
		case "udpu":
			if r.McastAddr.IsValid() || r.SendPort != 5405 {
				t.Errorf("udpu group %s send port %d; want none and 5405", r.McastAddr, r.SendPort)
			}
		}
	}
}
