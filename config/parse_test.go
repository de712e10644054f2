package config

import (
	"strings"
	"testing"
)

// parseOnly runs the grammar stage alone and returns the stored keys as "type=value".
func parseOnly(t *testing.T, text string) (map[string]string, *diag, error) {
	t.Helper()
	d := &diag{file: "t.conf"}
	p, err := parseKeys(d, strings.NewReader(text))
	if len(d.errs) > 0 {
		err = d.errs // the grammar stage reports through d; errSyntax only stops it
	}
	if err != nil {
		return nil, d, err
	}
	out := map[string]string{}
	for k, e := range p.keys {
		out[k] = e.typ.String() + "=" + e.value
	}
	return out, d, nil
}

// TestGrammar proves each rule of corosync-conf.md §1.1–§1.4: what a line means, what is
// stored where, and which lines are rejected with which message and line number.
func TestGrammar(t *testing.T) {
	long := func(n int) string {
		return "totem {\ncluster_name: " + strings.Repeat("x", n-len("cluster_name: ")) + "\n}\n"
	}
	tests := []struct {
		name string
		in   string
		want map[string]string // keys that must be present with "type=value"
		none []string          // keys that must be absent
		err  string            // "LINE: substring" of the first error
		warn string            // substring of some warning
	}{
		{name: "comments and blank lines", in: "# c\n\n   # indented comment\ntotem {\n\t# c\nversion: 2\n}\n",
			want: map[string]string{"totem.version": "u32=2"}},
		{name: "hash after a value is part of the value", in: "totem {\ncluster_name: a # b\n}\n",
			want: map[string]string{"totem.cluster_name": "str=a # b"}},
		{name: "hash after a typed value is an integer error", in: "totem {\ntoken: 3000 # ms\n}\n",
			err: `2: Value of key "totem.token" is expected to be integer in range (0..4294967295), but "3000 # ms" was given`},
		{name: "section with colon and no space", in: "totem: {\nversion: 2\n}\nquorum{\nprovider: x\n}\n",
			want: map[string]string{"totem.version": "u32=2", "quorum.provider": "str=x"}},
		{name: "missing section name", in: "totem {\n{\n}\n", err: "2: Missing section name before opening bracket '{'"},
		{name: "brace and close on one line", in: "nodelist {\nnode { }\n}\n", err: "2: Extra characters after opening bracket '{'"},
		{name: "brace inside a value", in: "totem {\nkey: a{b\n}\n", err: "2: Extra characters after opening bracket '{'"},
		{name: "colons and spaces kept in values", in: "nodelist {\nnode {\nring0_addr:   fe80::1%eth0  \nname: a b\n}\n}\n",
			want: map[string]string{"nodelist.node.0.ring0_addr": "str=fe80::1%eth0", "nodelist.node.0.name": "str=a b"}},
		{name: "CRLF line ends", in: "totem {\r\ncluster_name: c\r\n}\r\n", want: map[string]string{"totem.cluster_name": "str=c"}},
		{name: "close brace after value stays in the value", in: "totem {\ncluster_name: v }\n",
			err: `2: Missing closing brace (section "totem" opened at line 1 is not closed)`},
		{name: "close brace with comment", in: "totem {\n} # end\n", err: "2: Extra characters before or after closing bracket '}'"},
		{name: "unexpected close", in: "totem {\n}\n}\n", err: "3: Unexpected closing brace"},
		{name: "plain word", in: "totem {\nversion 2\n}\n", err: "2: Line is not opening or closing section or key value"},
		{name: "missing closing brace", in: "totem {\nversion: 2\n", err: "2: Missing closing brace"},
		{name: "quotes are ordinary characters", in: "totem {\ncluster_name: \"foo\"\n}\n",
			want: map[string]string{"totem.cluster_name": `str="foo"`}},
		{name: "empty key", in: "totem {\n: value\n}\n", err: "2: Key name can't be empty"},
		{name: "unknown sections stored as strings", in: "service {\nname: pacemaker\nver: 1\n}\n",
			want: map[string]string{"service.name": "str=pacemaker", "service.ver": "str=1"}},
		{name: "duplicate key: later wins, warned", in: "totem {\ntoken: 1000\ntoken: 2000\n}\n",
			want: map[string]string{"totem.token": "u32=2000"}, warn: "replaces the one from line 2"},
		{name: "repeated top-level sections merge", in: "totem {\nversion: 2\n}\ntotem {\ntoken: 5\n}\n",
			want: map[string]string{"totem.version": "u32=2", "totem.token": "u32=5"}},
		{name: "node blocks are numbered", in: "nodelist {\nnode {\nring0_addr: a\nnodeid: 7\n}\nnode {\nring0_addr: b\nquorum_votes: 2\n}\n}\n",
			want: map[string]string{"nodelist.node.0.ring0_addr": "str=a", "nodelist.node.0.nodeid": "u32=7",
				"nodelist.node.1.ring0_addr": "str=b", "nodelist.node.1.quorum_votes": "u32=2"}},
		{name: "interface keys re-homed by linknumber", in: "totem {\ninterface {\nlinknumber: 1\nmcastport: 6000\nttl: 3\nbindnetaddr: 10.0.0.0\n}\n}\n",
			want: map[string]string{"totem.interface.1.mcastport": "u16=6000", "totem.interface.1.ttl": "u8=3",
				"totem.interface.1.bindnetaddr": "str=10.0.0.0"}, none: []string{"totem.interface.1.linknumber"}},
		{name: "2.x ringnumber selects the link", in: "totem {\ninterface {\nringnumber: 1\nbindnetaddr: 10.0.0.0\n}\n}\n",
			want: map[string]string{"totem.interface.1.bindnetaddr": "str=10.0.0.0"}},
		{name: "interface without number is link 0", in: "totem {\ninterface {\nmcastaddr: 239.1.1.1\n}\n}\n",
			want: map[string]string{"totem.interface.0.mcastaddr": "str=239.1.1.1"}},
		{name: "unknown interface key stored unindexed", in: "totem {\ninterface {\nfoo: bar\n}\n}\n",
			want: map[string]string{"totem.interface.foo": "str=bar"}, warn: `unknown interface key "foo"`},
		{name: "linknumber too big", in: "totem {\ninterface {\nlinknumber: 8\n}\n}\n", err: "3: interface ring number 8 is bigger than allowed maximum 7"},
		{name: "linknumber not a u8", in: "totem {\ninterface {\nlinknumber: 300\n}\n}\n", err: `3: Value of key "totem.interface.linknumber" is expected to be integer in range (0..255)`},
		{name: "interface mcastport range", in: "totem {\ninterface {\nmcastport: 70000\n}\n}\n", err: `3: Value of key "totem.interface.0.mcastport" is expected to be integer in range (0..65535)`},
		{name: "member addresses", in: "totem {\ninterface {\nmember {\nmemberaddr: 10.0.0.1\n}\nmember {\nmemberaddr: 10.0.0.2\n}\n}\n}\n",
			want: map[string]string{"totem.interface.0.member.0": "str=10.0.0.1", "totem.interface.0.member.1": "str=10.0.0.2"}},
		{name: "member allows only memberaddr", in: "totem {\ninterface {\nmember {\naddr: 1\n}\n}\n}\n", err: "4: Only memberaddr is allowed in member section"},
		{name: "member allows no sub-section", in: "totem {\ninterface {\nmember {\nx {\n", err: `4: Sub-section "x" is not allowed inside section "member"`},
		{name: "logger_subsys", in: "logging {\nlogger_subsys {\nsubsys: QUORUM\ndebug: on\n}\n}\n",
			want: map[string]string{"logging.logger_subsys.QUORUM.debug": "str=on", "logging.logger_subsys.QUORUM.subsys": "str=QUORUM"}},
		{name: "logger_subsys needs subsys", in: "logging {\nlogger_subsys {\ndebug: on\n}\n}\n", err: "2: No subsys key in logger_subsys directive"},
		{name: "logging_daemon corosync", in: "logging {\nlogging_daemon {\nname: corosync\ndebug: on\n}\nlogging_daemon {\nname: corosync\nsubsys: CPG\ndebug: off\n}\n}\n",
			want: map[string]string{"logging.debug": "str=on", "logging.logger_subsys.CPG.debug": "str=off"}},
		{name: "logging_daemon other daemon", in: "logging {\nlogging_daemon {\nname: qdevice\ndebug: on\n}\n}\n",
			want: map[string]string{"logging.logging_daemon.qdevice.debug": "str=on"}},
		{name: "logging_daemon needs name", in: "logging {\nlogging_daemon {\ndebug: on\n}\n}\n", err: "2: No name key in logging_daemon directive"},
		{name: "uidgid", in: "uidgid {\nuid: hacluster\ngid: 189\n}\n",
			want: map[string]string{"uidgid.config.uid.hacluster": "u8=1", "uidgid.config.gid.189": "u8=1"}},
		{name: "uidgid allows only uid and gid", in: "uidgid {\nuser: x\n}\n", err: "2: uidgid: Only uid and gid are allowed items"},
		{name: "uidgid allows no sub-section", in: "uidgid {\nsub {\n}\n}\n", err: `2: Sub-section "sub" is not allowed inside section "uidgid"`},
		{name: "line of 510 characters is accepted", in: long(maxLine), want: map[string]string{}},
		{name: "line of 511 characters is too long", in: long(maxLine + 1), err: "2: Line too long"},
		{name: "very long line does not buffer unbounded", in: long(100000), err: "2: Line too long"},
		{name: "key path of 254 is accepted", in: "totem {\n" + strings.Repeat("k", 248) + ": v\n}\n", want: map[string]string{}},
		{name: "key path of 255 is too long", in: "totem {\n" + strings.Repeat("k", 249) + ": v\n}\n", err: "2: New key makes total cmap path too long"},
		{name: "section path too long", in: "totem {\n" + strings.Repeat("s", 250) + " {\n}\n}\n", err: "2: Start of section makes total cmap path too long"},
		{name: "empty section with a space is accepted", in: "my section {\n}\n", want: map[string]string{}},
		{name: "key in a section with a space is rejected", in: "my section {\nk: v\n}\n", err: `2: Can't store key "my section.k"`},
		{name: "short key path", in: "ab: v\n", err: `1: Can't store key "ab"`, warn: "outside of any section"},
		{name: "byte A0 is a blank", in: "totem\xa0{\n\xa0cluster_name:\xa0c\xa0\n}\n", want: map[string]string{"totem.cluster_name": "str=c"}},
		{name: "plus sign accepted in integers", in: "totem {\ntoken: +5000\n}\n", want: map[string]string{"totem.token": "u32=5000"}},
		{name: "hex rejected", in: "totem {\ntoken: 0x10\n}\n", err: `2: Value of key "totem.token"`},
		{name: "negative u32 rejected", in: "totem {\ntoken: -1\n}\n", err: `2: Value of key "totem.token" is expected to be integer in range (0..4294967295), but "-1" was given`},
		{name: "u8 range", in: "quorum {\ntwo_node: 256\n}\n", err: `2: Value of key "quorum.two_node" is expected to be integer in range (0..255)`},
		{name: "i32 accepts negatives", in: "totem {\nknet_compression_level: -3\n}\n", want: map[string]string{"totem.knet_compression_level": "i32=-3"}},
		{name: "u64 uses the unsigned message", in: "totem {\nconfig_version: abc\n}\n", err: `2: Value of key "totem.config_version" is expected to be unsigned integer, but "abc" was given`},
		{name: "u64 full range", in: "totem {\nconfig_version: 18446744073709551615\n}\n", want: map[string]string{"totem.config_version": "u64=18446744073709551615"}},
		{name: "poll_period is u64", in: "resources {\nsystem {\nmemory_used {\npoll_period: 5000\n}\n}\n}\n",
			want: map[string]string{"resources.system.memory_used.poll_period": "u64=5000"}},
		{name: "sub-section in node keeps its path", in: "nodelist {\nnode {\nring0_addr: a\nextra {\nk: v\n}\n}\n}\n",
			want: map[string]string{"nodelist.node.0.extra.k": "str=v", "nodelist.node.0.ring0_addr": "str=a"}, none: []string{"nodelist.node.1.ring0_addr"}},
		{name: "NUL byte rejected", in: "totem {\nversion: 2\x00\n}\n", err: "2: Line contains a NUL byte"},
		{name: "last line without newline", in: "totem {\nversion: 2\n}", want: map[string]string{"totem.version": "u32=2"}},
		{name: "string values of typed keys under other sections stay strings", in: "totem {\ninterface {\nringnumber: 0\n}\n}\nother {\ntoken: x\n}\n",
			want: map[string]string{"other.token": "str=x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, d, err := parseOnly(t, tc.in)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("parsed without error; want %q", tc.err)
				}
				if !strings.Contains(err.Error(), "t.conf:"+tc.err) {
					t.Fatalf("error %q does not contain %q", err, "t.conf:"+tc.err)
				}
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for k, v := range tc.want {
				if keys[k] != v {
					t.Errorf("key %s = %q, want %q (all: %v)", k, keys[k], v, keys)
				}
			}
			for _, k := range tc.none {
				if _, ok := keys[k]; ok {
					t.Errorf("key %s is stored, want absent", k)
				}
			}
			if tc.warn != "" && !hasWarning(d.warns, tc.warn) {
				t.Errorf("no warning containing %q in %v", tc.warn, d.warns)
			}
		})
	}
}

func hasWarning(ws Warnings, sub string) bool {
	for _, w := range ws {
		if strings.Contains(w.String(), sub) {
			return true
		}
	}
	return false
}

// TestKeyType proves the typed-key table of corosync-conf.md §1.5 on representative paths.
func TestKeyType(t *testing.T) {
	for path, want := range map[string]Type{
		"totem.token": TypeU32, "totem.netmtu": TypeU32, "totem.rrp_problem_count_timeout": TypeU32,
		"totem.knet_compression_level": TypeI32, "totem.config_version": TypeU64,
		"totem.interface.0.mcastport": TypeU16, "totem.interface.3.ttl": TypeU8,
		"totem.interface.1.knet_pong_count": TypeU32, "totem.interface.0.bindnetaddr": TypeStr,
		"totem.cluster_name": TypeStr, "quorum.expected_votes": TypeU32, "quorum.two_node": TypeU8,
		"quorum.device.votes": TypeU32, "quorum.device.master_wins": TypeU8, "quorum.device.model": TypeStr,
		"quorum.auto_tie_breaker_node": TypeStr, "nodelist.node.12.nodeid": TypeU32,
		"nodelist.node.0.ring0_addr": TypeStr, "pload.count": TypeU32, "resources.watchdog_timeout": TypeU32,
		"resources.process.poll_period": TypeU64, "uidgid.config.uid.x": TypeU8, "logging.debug": TypeStr,
		"other.token": TypeStr,
	} {
		if got := keyType(path); got != want {
			t.Errorf("keyType(%s) = %v, want %v", path, got, want)
		}
	}
}

// A configuration of exactly MaxConfigSize bytes parses; one byte more is refused with a
// clear error (issue 12: every length bounded, the parser included).
func TestConfigSizeLimit(t *testing.T) {
	base := udpu("", "")
	pad := func(total int) string {
		var b strings.Builder
		b.WriteString(base)
		line := "# " + strings.Repeat("x", 97) + "\n" // 100 bytes
		for b.Len()+len(line) <= total {
			b.WriteString(line)
		}
		if rest := total - b.Len(); rest > 0 {
			b.WriteString("#" + strings.Repeat("y", rest-2) + "\n")
		}
		if b.Len() != total {
			t.Fatalf("built %d bytes, want %d", b.Len(), total)
		}
		return b.String()
	}
	if _, _, err := Parse("at-limit.conf", strings.NewReader(pad(MaxConfigSize))); err != nil {
		t.Fatalf("%d bytes refused: %v", MaxConfigSize, err)
	}
	_, _, err := Parse("past-limit.conf", strings.NewReader(pad(MaxConfigSize+1)))
	if err == nil || !strings.Contains(err.Error(), "Configuration larger than 1048576 bytes") {
		t.Fatalf("%d bytes: %v", MaxConfigSize+1, err)
	}
	t.Logf("asserts: %d bytes parse, %d bytes: %v", MaxConfigSize, MaxConfigSize+1, err)
}
