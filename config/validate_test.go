package config

import (
	"net/netip"
	"strings"
	"testing"
)

// nodes3 is a three-node nodelist on 10.0.0.1-3 with explicit ids.
const nodes3 = `nodelist {
  node {
    ring0_addr: 10.0.0.1
    nodeid: 1
    name: n1
  }
  node {
    ring0_addr: 10.0.0.2
    nodeid: 2
    name: n2
  }
  node {
    ring0_addr: 10.0.0.3
    nodeid: 3
    name: n3
  }
}
`

// udpu builds a valid 3-node udpu file with extra totem keys and extra sections.
func udpu(totemExtra, rest string) string {
	return "totem {\n  version: 2\n  cluster_name: c\n  transport: udpu\n" + totemExtra + "}\n" + nodes3 + rest
}

// udp2 is a 2.x multicast file without a nodelist.
func udp2(totemExtra, ifaceExtra, rest string) string {
	return "totem {\n  version: 2\n" + totemExtra + "  interface {\n    ringnumber: 0\n    bindnetaddr: 10.0.0.0\n    mcastaddr: 239.1.1.1\n" +
		ifaceExtra + "  }\n}\n" + rest
}

var local1 = Local{Addrs: LocalAddrs(netip.MustParseAddr("10.0.0.1"))}

// check runs both stages the way `gototem config check` does.
func check(text string, local Local) (*Runtime, Warnings, error) {
	c, warns, err := Parse("t.conf", strings.NewReader(text))
	if err != nil {
		return nil, warns, err
	}
	rt, w2, err := c.Resolve(local)
	return rt, append(warns, w2...), err
}

// TestValidation proves every validation rule of corosync-conf.md §2–§3, totem-protocol.md
// §9.3 and votequorum.md §3: corosync's rejections are errors (with the line of the key at
// fault), the silent-but-suspicious cases are warnings, and gototem's udp/udpu extensions
// (redundant ring, encryption, no nodelist) are accepted.
func TestValidation(t *testing.T) {
	ipv6Nodes := "nodelist {\n node {\n  ring0_addr: fd00::1\n }\n}\n"
	tests := []struct {
		name  string
		in    string
		local Local
		err   string // "LINE: substring"; empty = valid
		warn  string
	}{
		{name: "baseline udpu is valid", in: udpu("", "")},
		{name: "version missing", in: "totem {\n transport: udpu\n}\n" + nodes3, err: "1: This totem parser can only parse version 2 configurations."},
		{name: "version 3", in: udpu("  version: 3\n", ""), err: "5: This totem parser can only parse version 2"},
		{name: "no totem section", in: nodes3, err: "This totem parser can only parse version 2"},
		{name: "bad transport", in: udpu("  transport: iba\n", ""), err: "5: Invalid transport type. Should be udpu, udp or knet"},
		{name: "knet default is valid", in: "totem {\n version: 2\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n nodeid: 1\n }\n}\n"},
		{name: "knet gcrypt refused", in: "totem {\n version: 2\n crypto_model: gcrypt\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n nodeid: 1\n }\n}\n", err: "3: crypto_model gcrypt is not supported"},
		{name: "knet compression refused", in: "totem {\n version: 2\n knet_compression_model: zlib\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n nodeid: 1\n }\n}\n", err: "3: knet_compression_model zlib is not supported"},
		{name: "knet sctp refused", in: "totem {\n version: 2\n interface {\n  linknumber: 0\n  knet_transport: sctp\n }\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n nodeid: 1\n }\n}\n", err: "knet_transport sctp on link 0 is not supported"},
		{name: "bad link_mode", in: udpu("  link_mode: fast\n", ""), err: `5: The Knet link mode "fast" specified is invalid`},
		{name: "link_mode too long", in: udpu("  link_mode: "+strings.Repeat("a", 64)+"\n", ""), err: "5: totem.link_mode is too long"},
		{name: "bad ip_version", in: udpu("  ip_version: ipv5\n", ""), err: "5: Invalid ip_version type"},
		{name: "bad ip_dscp", in: udpu("  ip_dscp: 64\n", ""), err: `5: Value of key "totem.ip_dscp" is expected to be number (0..63) or symbolical dscp value`},
		{name: "symbolic ip_dscp", in: udpu("  ip_dscp: af41\n", "")},
		{name: "bad rrp_mode", in: udpu("  rrp_mode: both\n", ""), err: "5: Invalid rrp_mode"},
		{name: "bad cipher", in: udpu("  crypto_cipher: 3des\n  crypto_hash: sha1\n", ""), err: "5: Invalid cipher type"},
		{name: "bad hash", in: udpu("  crypto_hash: crc\n", ""), err: "5: Invalid hash type"},
		{name: "bad crypto_model", in: udpu("  crypto_model: foo\n", ""), err: "5: Invalid crypto model"},
		{name: "cipher without hash", in: udpu("  crypto_cipher: aes256\n", ""), err: "5: crypto_cipher requires crypto_hash with value other than none"},
		{name: "hash only on udpu", in: udpu("  crypto_hash: sha1\n", ""), err: "5: crypto_hash sha1 without a cipher"},
		{name: "crypto on udpu is a warned extension", in: udpu("  crypto_cipher: aes256\n  crypto_hash: sha256\n", ""), warn: "5: warning: encryption on udpu (aes256) is a gototem extension"},
		{name: "secauth on udp is a warned extension", in: udp2("  secauth: on\n", "", ""), local: local1, warn: "3: warning: encryption on udp (aes256) is a gototem extension"},
		{name: "unknown cipher on knet", in: "totem {\n version: 2\n transport: knet\n crypto_cipher: chacha20\n crypto_hash: sha256\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n nodeid: 1\n }\n}\n",
			err: "4: Invalid cipher type. Should be none, aes256, aes192 or aes128"},
		{name: "chacha20 on udpu is ChaCha20-Poly1305", in: udpu("  crypto_cipher: chacha20\n  crypto_hash: sha256\n", ""), warn: "encryption on udpu (chacha20) is a gototem extension"},
		{name: "aes128 on udpu is AES-128-GCM", in: udpu("  crypto_cipher: aes128\n  crypto_hash: sha1\n", ""), warn: "encryption on udpu (aes128) is a gototem extension"},
		{name: "token below minimum", in: udpu("  token: 20\n  token_coefficient: 0\n", ""), err: "5: The token timeout parameter (20 ms) may not be less than (30 ms)."},
		{name: "token_warning above 100", in: udpu("  token_warning: 101\n", ""), err: "5: The token warning parameter (101%) must be between 0 (disabled) and 100."},
		{name: "derived retransmit too small", in: udpu("  token: 100\n  token_coefficient: 0\n", ""), err: "5: Not appropriate token or token_retransmits_before_loss_const value set"},
		{name: "explicit retransmit too small", in: udpu("  token_retransmit: 20\n", ""), err: "5: The token retransmit timeout parameter (20 ms) may not be less than (30 ms)."},
		{name: "hold too small", in: udpu("  hold: 13\n", ""), err: "5: The token hold timeout parameter (13 ms) may not be less than (14 ms)."},
		{name: "join too small", in: udpu("  join: 20\n", ""), err: "5: The join timeout parameter (20 ms) may not be less than (30 ms)."},
		{name: "consensus too small", in: udpu("  consensus: 20\n", ""), err: "5: The consensus timeout parameter (20 ms) may not be less than (30 ms)."},
		{name: "consensus below join", in: udpu("  join: 100\n  consensus: 90\n", ""), err: "6: The consensus timeout parameter (90 ms) may not be less than join timeout (100 ms)."},
		{name: "merge too small", in: udpu("  merge: 10\n", ""), err: "5: The merge timeout parameter (10 ms) may not be less than (30 ms)."},
		{name: "downcheck too small", in: udpu("  downcheck: 10\n", ""), err: "5: The downcheck timeout parameter (10 ms) may not be less than (30 ms)."},
		{name: "max_network_delay too small", in: udpu("  max_network_delay: 10\n", ""), err: "5: The max_network_delay parameter (10 ms) may not be less than (30 ms)."},
		{name: "window overflows the sort queue", in: udpu("  window_size: 16380\n", ""), err: "5: window_size + max_messages (16397) exceeds the sort queue"},
		{name: "consensus below 1.2 token warns", in: udpu("  consensus: 3000\n", ""), warn: "5: warning: consensus 3000 ms is less than 1.2 × token"},
		{name: "max_messages above window warns", in: udpu("  max_messages: 60\n", ""), warn: "5: warning: max_messages 60 is larger than window_size 50"},
		{name: "rrp timer too small", in: twoRings(" rrp_problem_count_timeout: 10\n"), err: "5: The rrp_problem_count_timeout parameter (10 ms) may not be less than (30 ms)."},
		{name: "mcastport 0", in: udp2("", "    mcastport: 0\n", ""), local: local1, err: "7: No multicast port specified for interface 0"},
		{name: "ttl on udpu", in: udpu("  interface {\n    ttl: 2\n  }\n", ""), err: "6: Can only set ttl on multicast transport types for interface 0"},
		{name: "ttl on udp is fine", in: udp2("", "    ttl: 4\n", ""), local: local1},
		{name: "link priority on udp", in: udp2("", "    knet_link_priority: 3\n", ""), local: local1, err: "7: Can only set link priority on knet transport type for interface 0"},
		{name: "bad knet_transport", in: udpu("  interface {\n    knet_transport: tcp\n  }\n", ""), err: "6: Unrecognised knet_transport. expected 'udp' or 'sctp'"},
		{name: "mcastaddr not multicast", in: "totem {\n version: 2\n interface {\n bindnetaddr: 10.0.0.0\n mcastaddr: 10.1.1.1\n }\n}\n", local: local1,
			err: "5: mcastaddr is not a correct multicast address for interface 0"},
		{name: "mcast family differs from bind", in: "totem {\n version: 2\n interface {\n bindnetaddr: 10.0.0.0\n mcastaddr: ff15::1\n }\n}\n", local: local1,
			err: "5: Multicast address family does not match bind address family for interface 0"},
		{name: "udp without mcastaddr or cluster_name", in: "totem {\n version: 2\n transport: udp\n}\n" + nodes3, local: local1,
			err: "1: No multicast address specified for interface 0"},
		{name: "udp with cluster_name derives the group", in: "totem {\n version: 2\n transport: udp\n cluster_name: x\n}\n" + nodes3, local: local1},
		{name: "bindnetaddr with nodelist warns", in: udpu("  interface {\n    bindnetaddr: 10.0.0.0\n  }\n", ""),
			warn: "6: warning: interface section bindnetaddr is used together with nodelist. Nodelist one is going to be used."},
		{name: "member sections are deprecated", in: "totem {\n version: 2\n transport: udpu\n interface {\n  bindnetaddr: 10.0.0.0\n  member {\n   memberaddr: 10.0.0.1\n  }\n  member {\n   memberaddr: 10.0.0.2\n  }\n }\n}\n",
			local: local1, warn: "7: warning: member section is deprecated"},
		{name: "three rings on udp", in: udp2("  rrp_mode: active\n", "", "totem {\n interface {\n  ringnumber: 1\n  bindnetaddr: 10.1.0.0\n  mcastaddr: 239.1.1.2\n }\n interface {\n  ringnumber: 2\n  bindnetaddr: 10.2.0.0\n  mcastaddr: 239.1.1.3\n }\n}\n"),
			local: local1, err: "1: 3 is too many configured interfaces for non-Knet transport"},
		{name: "two rings without rrp_mode", in: udp2("", "", "totem {\n interface {\n  ringnumber: 1\n  bindnetaddr: 10.1.0.0\n  mcastaddr: 239.1.1.2\n }\n}\n"),
			local: local1, err: "1: 2 interfaces are configured on udp but neither rrp_mode"},
		{name: "two rings with rrp_mode none", in: udp2("  rrp_mode: none\n", "", "totem {\n interface {\n  ringnumber: 1\n  bindnetaddr: 10.1.0.0\n  mcastaddr: 239.1.1.2\n }\n}\n"),
			local: local1, err: "3: rrp_mode none with 2 interfaces"},
		{name: "two rings on udp with rrp_mode passive", in: udp2("  rrp_mode: passive\n", "", "totem {\n interface {\n  ringnumber: 1\n  bindnetaddr: 10.1.0.0\n  mcastaddr: 239.1.1.2\n }\n}\n"),
			local: Local{Addrs: LocalAddrs(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.1.0.1"))}, warn: "redundant ring (rrp_mode passive) on udp is run by gototem"},
		{name: "rrp_mode with one ring warns", in: udpu("  rrp_mode: active\n", ""), warn: "5: warning: rrp_mode active with a single interface"},
		{name: "interface for a link no node has", in: udpu("  rrp_mode: passive\n  interface {\n    linknumber: 1\n    mcastport: 5410\n  }\n", ""),
			err: "6: interface section for link 1, but no node has a ring1_addr"},
		{name: "section named interface.9", in: udpu("  interface.9 {\n    bindnetaddr: 10.0.0.0\n  }\n", ""), err: "6: interface ring number 9 is bigger than allowed maximum 7"},
		{name: "no interfaces at all", in: "totem {\n version: 2\n transport: udpu\n}\n", err: "1: No interfaces defined"},
		{name: "ring8_addr", in: udpu("", "nodelist {\n node {\n  ring8_addr: 10.0.0.9\n  ring0_addr: 10.0.0.9\n }\n}\n"), err: "25: interface ring number 8 is bigger than allowed maximum 7"},
		{name: "nodeid 0", in: udpu("", "nodelist {\n node {\n  ring0_addr: 10.0.0.9\n  nodeid: 0\n }\n}\n"), err: "26: nodeid 0 is reserved"},
		{name: "knet needs nodeids", in: "totem {\n version: 2\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n }\n}\n", local: local1,
			err: "5: Knet requires an explicit nodeid to be specified for address '10.0.0.1'."},
		{name: "knet nodeid limit", in: "totem {\n version: 2\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n nodeid: 65536\n }\n}\n", local: local1,
			err: "7: Knet requires nodeid to be less than 65536 for address '10.0.0.1'."},
		{name: "IPv6 needs a nodeid", in: "totem {\n version: 2\n transport: udpu\n}\n" + ipv6Nodes, local: Local{Addrs: LocalAddrs(netip.MustParseAddr("fd00::1"))},
			err: "6: An IPV6 network requires that a node ID be specified for address 'fd00::1'."},
		{name: "duplicate explicit nodeid", in: udpu("", "nodelist {\n node {\n  ring0_addr: 10.0.0.9\n  nodeid: 2\n }\n}\n"), err: "26: Nodeid 2 appears twice in corosync.conf"},
		{name: "duplicate generated nodeid", in: "totem {\n version: 2\n transport: udpu\n clear_node_high_bit: yes\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n node {\n  ring0_addr: 138.0.0.1\n }\n}\n",
			local: local1, err: "10: Nodeid 167772161 (autogenerated from 138.0.0.1) appears twice in corosync.conf"},
		{name: "same address on two nodes warns", in: udpu("", "nodelist {\n node {\n  ring0_addr: 10.0.0.2\n  nodeid: 9\n }\n}\n"), warn: "25: warning: address 10.0.0.2 on link 0 is listed for nodes 1 and 3"},
		{name: "mixed families on a link", in: udpu("", "nodelist {\n node {\n  ring0_addr: fd00::9\n  nodeid: 9\n }\n}\n"), err: "25: Nodes for link 0 have different IP families"},
		{name: "unequal link counts", in: udpu("  rrp_mode: passive\n", "nodelist {\n node {\n  ring0_addr: 10.0.0.9\n  ring1_addr: 10.1.0.9\n  nodeid: 9\n }\n}\n"),
			err: "Not all nodes have the same number of links"},
		{name: "multi-link knet needs names", in: "totem {\n version: 2\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n  ring1_addr: 10.1.0.1\n  nodeid: 1\n }\n}\n", local: local1,
			err: "5: for a multi-link configuration, all nodes must have a 'name' attribute"},
		{name: "local node not found", in: udpu("", ""), local: Local{Addrs: LocalAddrs(netip.MustParseAddr("192.168.9.9"))}, err: "6: No valid name found for local host"},
		{name: "local node by host name", in: udpu("", ""), local: Local{Hostname: "n2.example.com"}},
		{name: "fallback warns", in: udpu("", ""), local: Local{Fallback: true}, warn: "6: warning: no nodelist entry matches this machine"},
		{name: "host names need a resolver", in: udpu("", "nodelist {\n node {\n  ring0_addr: node9.example\n  nodeid: 9\n }\n}\n"), err: "25: failed to parse node address 'node9.example'"},
		{name: "resolver is used for host names", in: udpu("", "nodelist {\n node {\n  ring0_addr: node9.example\n  nodeid: 9\n }\n}\n"),
			local: Local{Addrs: local1.Addrs, LookupHost: func(string) ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("10.0.0.9")}, nil }}},
		{name: "bindnetaddr not local", in: udp2("", "", ""), local: Local{Addrs: LocalAddrs(netip.MustParseAddr("192.168.1.1"))}, err: "3: no local interface address is in bindnetaddr 10.0.0.0 of interface 0"},
		{name: "bindnetaddr matched through the interface mask", in: udp2("", "", ""), local: Local{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.200.7/16")}}},
		{name: "totem.nodeid with nodelist warns", in: udpu("  nodeid: 5\n", ""), warn: "5: warning: nodeid in totem section is deprecated and ignored"},
		{name: "bad quorum provider", in: udpu("", "quorum {\n provider: corosync_quorum\n}\n"), err: "24: Invalid quorum provider"},
		{name: "quorum without nodelist or expected_votes", in: udp2("", "", "quorum {\n provider: corosync_votequorum\n}\n"), local: local1,
			err: "10: configuration error: nodelist or quorum.expected_votes must be configured!"},
		{name: "quorum without nodelist but expected_votes", in: udp2("", "", "quorum {\n provider: corosync_votequorum\n expected_votes: 3\n}\n"), local: local1},
		{name: "two_node with device", in: udpu("", "quorum {\n provider: corosync_votequorum\n two_node: 1\n device {\n  model: net\n }\n}\n"),
			err: "27: two_node and quorum device cannot be configured at the same time!"},
		{name: "device with last_man_standing", in: udpu("", "quorum {\n provider: corosync_votequorum\n last_man_standing: 1\n device {\n  model: net\n }\n}\n"),
			err: "quorum.device is not compatible with last_man_standing"},
		{name: "device with auto_tie_breaker", in: udpu("", "quorum {\n provider: corosync_votequorum\n auto_tie_breaker: 1\n wait_for_all: 1\n device {\n  model: net\n }\n}\n"),
			err: "quorum.device is not compatible with auto_tie_breaker"},
		{name: "device with allow_downscale", in: udpu("", "quorum {\n provider: corosync_votequorum\n allow_downscale: 1\n device {\n  model: net\n }\n}\n"),
			err: "quorum.device is not compatible with allow_downscale"},
		{name: "device votes needed with expected_votes", in: udpu("", "quorum {\n provider: corosync_votequorum\n expected_votes: 5\n device {\n  model: net\n }\n}\n"),
			err: "quorum.device.votes must be specified when quorum.expected_votes is set"},
		{name: "device votes needed with uneven votes", in: "totem {\n version: 2\n transport: udpu\n}\nnodelist {\n node {\n  ring0_addr: 10.0.0.1\n  quorum_votes: 2\n }\n}\nquorum {\n provider: corosync_votequorum\n device {\n  model: net\n }\n}\n",
			local: local1, err: "quorum.device.votes must be specified when not all nodes votes 1"},
		{name: "device votes too high", in: udpu("", "quorum {\n provider: corosync_votequorum\n expected_votes: 3\n device {\n  model: net\n  votes: 2\n }\n}\n"),
			err: "28: quorum.device.votes is too high or expected_votes is too low"},
		{name: "ATB with LMS in odd cluster", in: udpu("", "quorum {\n provider: corosync_votequorum\n auto_tie_breaker: 1\n last_man_standing: 1\n}\n"),
			err: "25: auto_tie_breaker & last_man_standing not available in odd sized cluster"},
		{name: "ATB in odd cluster without WFA warns", in: udpu("", "quorum {\n provider: corosync_votequorum\n auto_tie_breaker: 1\n}\n"), warn: "25: warning: auto_tie_breaker is set and the cluster has an odd number of nodes"},
		{name: "two_node with three nodes warns", in: udpu("", "quorum {\n provider: corosync_votequorum\n two_node: 1\n}\n"), warn: "25: warning: two_node with 3 nodes"},
		{name: "bad ATB node list warns", in: udpu("", "quorum {\n provider: corosync_votequorum\n auto_tie_breaker: 1\n wait_for_all: 1\n auto_tie_breaker_node: first\n}\n"),
			warn: "27: warning: auto_tie_breaker_nodes is not valid"},
		{name: "quorum keys without provider warn", in: udpu("", "quorum {\n two_node: 1\n}\n"), warn: "has no effect: quorum.provider is not set"},
		{name: "bad timestamp", in: udpu("", "logging {\n timestamp: yes\n}\n"), err: "24: unknown value for timestamp"},
		{name: "fileline takes on/off only", in: udpu("", "logging {\n fileline: yes\n}\n"), err: "24: unknown value for fileline"},
		{name: "bad debug", in: udpu("", "logging {\n debug: maybe\n}\n"), err: "24: unknown value for debug"},
		{name: "bad to_stderr", in: udpu("", "logging {\n to_stderr: sometimes\n}\n"), err: "24: unknown value for to_stderr"},
		{name: "bad facility", in: udpu("", "logging {\n syslog_facility: local9\n}\n"), err: "24: unknown syslog facility specified"},
		{name: "bad syslog priority", in: udpu("", "logging {\n syslog_priority: loud\n}\n"), err: "24: unknown syslog priority specified"},
		{name: "bad logfile priority in subsys", in: udpu("", "logging {\n logger_subsys {\n  subsys: CPG\n  logfile_priority: x\n }\n}\n"), err: "26: unknown logfile priority specified"},
		{name: "priority names are case-insensitive", in: udpu("", "logging {\n syslog_priority: WARNING\n}\n")},
		{name: "to_file is obsolete", in: udpu("", "logging {\n to_file: yes\n logfile: /tmp/x\n}\n"), warn: "24: warning: to_file is obsolete"},
		{name: "syslog_level is obsolete", in: udpu("", "logging {\n syslog_level: info\n}\n"), warn: "24: warning: syslog_level is obsolete"},
		{name: "bad qb_ipc_type", in: udpu("", "system {\n qb_ipc_type: pipe\n}\n"), err: "24: Invalid system.qb_ipc_type"},
		{name: "bad sched_rr", in: udpu("", "system {\n sched_rr: maybe\n}\n"), err: "24: Invalid system.sched_rr value"},
		{name: "bad move_to_root_cgroup", in: udpu("", "system {\n move_to_root_cgroup: 2\n}\n"), err: "24: Invalid system.move_to_root_cgroup"},
		{name: "bad allow_knet_handle_fallback", in: udpu("", "system {\n allow_knet_handle_fallback: on\n}\n"), err: "24: Invalid system.allow_knet_handle_fallback"},
		{name: "bad priority", in: udpu("", "system {\n priority: high\n}\n"), err: "24: Priority value high is invalid"},
		{name: "watchdog_timeout out of range warns", in: udpu("", "resources {\n watchdog_timeout: 1\n}\n"), warn: "24: warning: watchdog_timeout 1 s is outside 2..120"},
		{name: "nozzle needs a prefix", in: "totem {\n version: 2\n}\nnodelist {\n node {\n ring0_addr: 10.0.0.1\n nodeid: 1\n }\n}\nnozzle {\n name: noz\n ipaddr: 192.168.0.0\n}\n",
			local: local1, err: `10: nozzle: ipprefix "" must be a number in 8..30`},
		{name: "legacy sections warn", in: udpu("", "amf {\n mode: disabled\n}\naisexec {\n user: root\n}\n"), warn: `23: warning: section "amf" is ignored`},
		{name: "misspelt totem key warns", in: udpu("  tokn: 5000\n", ""), warn: "5: warning: unknown key totem.tokn is ignored"},
		{name: "Augeas spelling of fail_recv_const warns", in: udpu("  fail_to_recv_const: 10\n", ""), warn: "reads fail_recv_const"},
		{name: "unknown node key warns", in: udpu("", "nodelist {\n node {\n  ring0_addr: 10.0.0.9\n  nodeid: 9\n  ip: 1\n }\n}\n"), warn: "27: warning: unknown key nodelist.node.3.ip"},
		{name: "unknown logging key warns", in: udpu("", "logging {\n to_sylog: yes\n}\n"), warn: "24: warning: unknown key logging.to_sylog"},
		{name: "1.x subsys tags warn", in: udpu("", "logging {\n logger_subsys {\n  subsys: AMF\n  tags: enter\n }\n}\n"), warn: "26: warning: key logging.logger_subsys.AMF.tags is ignored: 1.x trace tags"},
		{name: "knet keys on udpu warn", in: udpu("  knet_mtu: 1400\n", ""), warn: "5: warning: totem.knet_mtu only applies to the knet transport"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			local := tc.local
			if local.Addrs == nil && local.Hostname == "" && !local.Fallback {
				local = local1
			}
			_, warns, err := check(tc.in, local)
			if tc.err == "" && err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			if tc.err != "" {
				if err == nil {
					t.Fatalf("accepted; want error %q", tc.err)
				}
				want := tc.err
				if want[0] >= '0' && want[0] <= '9' {
					want = "t.conf:" + want
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error\n%v\ndoes not contain %q", err, want)
				}
			}
			if tc.warn != "" && !hasWarning(warns, tc.warn) {
				t.Errorf("no warning containing %q in:\n%v", tc.warn, warns)
			}
		})
	}
}
