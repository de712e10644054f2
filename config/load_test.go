package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadUIDGIDDir proves Load reads <dir>/uidgid.d/* as corosync does, and rejects
// anything but uidgid sections there.
func TestLoadUIDGIDDir(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "corosync.conf")
	if err := os.WriteFile(conf, []byte(udpu("", "uidgid {\n uid: alice\n}\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "uidgid.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "uidgid.d", "pacemaker"), []byte("uidgid {\n uid: hacluster\n gid: haclient\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.UIDGID.UIDs, ",") != "alice,hacluster" || strings.Join(c.UIDGID.GIDs, ",") != "haclient" {
		t.Errorf("uidgid = %+v", c.UIDGID)
	}
	found := false
	for _, kv := range c.Keys() {
		found = found || kv.String() == "uidgid.config.uid.hacluster (u8) = 1"
	}
	if !found {
		t.Error("uidgid.d key missing from the key view")
	}
	bad := filepath.Join(dir, "uidgid.d", "bad")
	if err := os.WriteFile(bad, []byte("totem {\n version: 2\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(conf); err == nil || !strings.Contains(err.Error(), bad+":1: only uidgid sections are allowed") {
		t.Errorf("error = %v, want the stray totem section rejected with its file and line", err)
	}
}

// TestLegacyMembers proves a 1.x/2.x udpu file without a nodelist is first-class: the
// interface member addresses become the node list, ids derive from ring0 addresses, and
// the local node is found among them.
func TestLegacyMembers(t *testing.T) {
	text := "totem {\n version: 2\n transport: udpu\n token: 1000\n secauth: off\n interface {\n  ringnumber: 0\n  bindnetaddr: 10.0.0.0\n" +
		"  member {\n   memberaddr: 10.0.0.1\n  }\n  member {\n   memberaddr: 10.0.0.2\n  }\n }\n}\n"
	rt, warns, err := check(text, Local{Addrs: LocalAddrs(netip.MustParseAddr("10.0.0.2"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Nodes) != 2 || rt.LocalPos != 1 || rt.NodeID != 0x0a000002 || rt.Totem.Token.Milliseconds() != 1000 {
		t.Errorf("nodes %d local %d nodeid %d token %v", len(rt.Nodes), rt.LocalPos, rt.NodeID, rt.Totem.Token)
	}
	for _, kv := range rt.Keys() {
		if strings.HasPrefix(kv.Key, "nodelist.") {
			t.Errorf("member-derived nodes must not appear as nodelist keys: %v", kv)
		}
	}
	if !hasWarning(warns, "member section is deprecated") {
		t.Errorf("warnings %v lack the member deprecation", warns)
	}
}

// TestOldDefaultsWarned proves a nodelist-less (2.x) file is told where 2.x and 3.x
// defaults differ, since gototem follows 3.x.
func TestOldDefaultsWarned(t *testing.T) {
	_, warns, err := check(udp2("", "", ""), local1)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"secauth is not set", "token is not set", "running as udp (multicast)"} {
		if !hasWarning(warns, w) {
			t.Errorf("no warning %q in %v", w, warns)
		}
	}
}

// TestReadKey proves corosync's key-length limits and the keyfile/inline-key choice.
func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	writeMode := func(name string, n int, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, n), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask may have narrowed it
			t.Fatal(err)
		}
		return p
	}
	write := func(name string, n int) string { return writeMode(name, n, 0o600) }
	tests := []struct {
		c    Crypto
		want int
		err  string
	}{
		{Crypto{Keyfile: write("ok", 256)}, 256, ""},
		{Crypto{Keyfile: write("short", 100)}, 0, "Could only read 800 bits of minimum 1024 bits"},
		{Crypto{Keyfile: write("long", 5000)}, 0, "too long"},
		{Crypto{Keyfile: filepath.Join(dir, "missing")}, 0, "cannot open keyfile"},
		// The one reader checks permissions on the daemon's path too (issue 12: a 0444
		// key was used without a word).
		{Crypto{Keyfile: writeMode("world", 256, 0o444)}, 0, "mode 0444 lets group or others read it"},
		{Crypto{Keyfile: writeMode("group", 256, 0o440)}, 0, "mode 0440 lets group or others read it"},
		{Crypto{Keyfile: writeMode("owner-ro", 256, 0o400)}, 256, ""},
		{Crypto{Keyfile: dir}, 0, "not a regular file"},
		// At the length limits and one past them.
		{Crypto{Keyfile: write("min", MinKeyLen)}, MinKeyLen, ""},
		{Crypto{Keyfile: write("min-1", MinKeyLen-1)}, 0, "Could only read"},
		{Crypto{Keyfile: write("max", MaxKeyLen)}, MaxKeyLen, ""},
		{Crypto{Keyfile: write("max+1", MaxKeyLen+1)}, 0, "too long"},
		{Crypto{Keyfile: DefaultKeyfile, Key: strings.Repeat("k", 128)}, 128, ""},
	}
	for i, tc := range tests {
		key, err := tc.c.ReadKey()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("case %d: error %v, want %q", i, err, tc.err)
			}
			continue
		}
		if err != nil || len(key) != tc.want {
			t.Errorf("case %d: %d bytes, %v; want %d", i, len(key), err, tc.want)
		}
	}
}

// TestTotemNodeIDWithoutNodelist proves a 2.x file's totem.nodeid is honoured when there is
// no nodelist (3.x ignores it only because the nodelist carries ids), and Local() is nil.
func TestTotemNodeIDWithoutNodelist(t *testing.T) {
	rt := mustResolve(t, udp2("  nodeid: 7\n", "", ""), local1)
	if rt.NodeID != 7 || rt.Local() != nil || rt.Rings[0].BindNetAddr.String() != "10.0.0.1" {
		t.Errorf("nodeid %d local %v bind %s; want 7, nil, 10.0.0.1", rt.NodeID, rt.Local(), rt.Rings[0].BindNetAddr)
	}
	rt = mustResolve(t, udpu("", ""), local1)
	if l := rt.Local(); l == nil || l.Name != "n1" || l.IPs[0].String() != "10.0.0.1" {
		t.Errorf("Local() = %+v, want node n1", l)
	}
}
