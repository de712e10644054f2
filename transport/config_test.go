package transport

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gototem/gototem/srp"
)

// TestConfigValidate proves Open refuses broken configs with a message naming the problem,
// before touching any socket.
func TestConfigValidate(t *testing.T) {
	a := netip.MustParseAddr
	base := func(kind Kind) Config {
		c := DefaultConfig(kind)
		c.NodeID, c.LocalAddr, c.McastAddr = 1, a("127.0.0.1"), a("239.192.1.1")
		c.Members = map[srp.NodeID]netip.Addr{1: a("127.0.0.1")}
		return c
	}
	cases := []struct {
		name string
		edit func(c *Config)
		kind Kind
		want string
	}{
		{"unknown kind", func(c *Config) { c.Kind = 9 }, UDP, "unknown transport kind"},
		{"nodeid zero", func(c *Config) { c.NodeID = 0 }, UDPU, "nodeid must be non-zero"},
		{"no local address", func(c *Config) { c.LocalAddr = netip.Addr{} }, UDP, "no local address"},
		{"multicast local address", func(c *Config) { c.LocalAddr = a("239.1.1.1") }, UDP, "not a unicast"},
		{"mapped local address", func(c *Config) { c.LocalAddr = a("::ffff:127.0.0.1") }, UDP, "plain IPv4"},
		{"port zero", func(c *Config) { c.Port = 0 }, UDPU, "mcastport 0 out of range"},
		{"udp port 1", func(c *Config) { c.Port = 1 }, UDP, "mcastport 1 out of range 2..65535"},
		{"port too big", func(c *Config) { c.Port = 70000 }, UDPU, "out of range"},
		{"ttl", func(c *Config) { c.TTL = 256 }, UDP, "ttl 256 out of range 0..255"},
		{"netmtu", func(c *Config) { c.NetMTU = 0 }, UDP, "netmtu 0 must be a positive integer"},
		{"batch", func(c *Config) { c.BatchSize = 0 }, UDP, "batch size 0"},
		{"no mcastaddr", func(c *Config) { c.McastAddr = netip.Addr{} }, UDP, "no multicast address specified"},
		{"unicast mcastaddr", func(c *Config) { c.McastAddr = a("10.0.0.1") }, UDP, "not a correct multicast address"},
		{"family mismatch", func(c *Config) { c.McastAddr = a("ff15::1") }, UDP, "family does not match"},
		{"broadcast v6", func(c *Config) { c.Broadcast, c.LocalAddr = true, a("::1") }, UDP, "broadcast needs an IPv4"},
		{"udpu without nodelist", func(c *Config) { c.Members = nil }, UDPU, "udpu needs a nodelist"},
		{"member nodeid 0", func(c *Config) { c.Members[0] = a("127.0.0.2") }, UDPU, "member with nodeid 0"},
		{"member family", func(c *Config) { c.Members[2] = a("::1") }, UDPU, "not of the bind address family"},
		{"crypto short key", func(c *Config) { c.Crypto = &CryptoConfig{Key: make([]byte, 16), Cipher: AES256GCM, Epoch: 1} }, UDPU, "authkey is 16 bytes"},
		{"crypto no epoch", func(c *Config) { c.Crypto = &CryptoConfig{Key: make([]byte, 128), Cipher: AES256GCM} }, UDPU, "epoch must be non-zero"},
		{"crypto no cipher", func(c *Config) { c.Crypto = &CryptoConfig{Key: make([]byte, 128), Epoch: 1} }, UDPU, "cannot encrypt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base(tc.kind)
			tc.edit(&c)
			_, err := Open(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestMatchBindNet proves corosync's bindnetaddr rule: an exact interface address wins,
// otherwise the first interface whose network contains bindnetaddr (usually the network
// address itself), and nothing else matches.
func TestMatchBindNet(t *testing.T) {
	p := netip.MustParsePrefix
	ifs := []Interface{
		{Name: "lo", Index: 1, Addr: netip.MustParseAddr("127.0.0.1"), Prefix: p("127.0.0.1/8")},
		{Name: "eth0", Index: 2, Addr: netip.MustParseAddr("192.168.1.17"), Prefix: p("192.168.1.17/24")},
		{Name: "eth1", Index: 3, Addr: netip.MustParseAddr("10.1.0.5"), Prefix: p("10.1.0.5/16")},
		{Name: "eth1", Index: 3, Addr: netip.MustParseAddr("fd00:1::5"), Prefix: p("fd00:1::5/64")},
		{Name: "eth2", Index: 4, Addr: netip.MustParseAddr("192.168.1.99"), Prefix: p("192.168.1.99/24")},
	}
	cases := []struct {
		bindnet  string
		wantAddr string // "" = no match
	}{
		{"192.168.1.0", "192.168.1.17"},  // network address → first interface in it
		{"192.168.1.99", "192.168.1.99"}, // exact address beats an earlier network match
		{"192.168.1.200", "192.168.1.17"},
		{"10.1.0.0", "10.1.0.5"},
		{"10.1.255.255", "10.1.0.5"},
		{"10.2.0.0", ""},
		{"fd00:1::", "fd00:1::5"},
		{"fd00:2::", ""},
		{"127.0.0.2", "127.0.0.1"},
		{"::ffff:10.1.0.0", "10.1.0.5"},
	}
	for _, tc := range cases {
		got, err := matchBindNet(netip.MustParseAddr(tc.bindnet), ifs)
		switch {
		case tc.wantAddr == "" && err == nil:
			t.Errorf("%s matched %s, want no match", tc.bindnet, got.Addr)
		case tc.wantAddr != "" && (err != nil || got.Addr.String() != tc.wantAddr):
			t.Errorf("%s → %v (%v), want %s", tc.bindnet, got.Addr, err, tc.wantAddr)
		}
	}
	if _, err := ResolveBindNetAddr(netip.MustParseAddr("127.0.0.0")); err != nil {
		t.Errorf("loopback network should resolve on any host: %v", err)
	}
}

// TestPeekSender proves the header nodeid is read in the sender's byte order and that
// anything not a totem v3 header is ignored.
func TestPeekSender(t *testing.T) {
	le := joinMsg(0x01020304, 1)
	be := joinMsg(0x01020304, 1)
	swapHeader(be)
	v2 := joinMsg(5, 5)
	v2[2] = 2
	badMagic := joinMsg(5, 5)
	badMagic[0] = 0xff
	cases := []struct {
		name string
		in   []byte
		id   srp.NodeID
		ok   bool
	}{
		{"little-endian", le, 0x01020304, true},
		{"big-endian", be, 0x01020304, true},
		{"short", le[:12], 0, false},
		{"version 2", v2, 0, false},
		{"bad magic", badMagic, 0, false},
	}
	for _, tc := range cases {
		id, typ, ok := peekSender(tc.in)
		if ok != tc.ok || id != tc.id || (ok && typ != srp.TypeJoin) {
			t.Errorf("%s: got %d %v %v, want %d %v", tc.name, id, typ, ok, tc.id, tc.ok)
		}
	}
	if binary.LittleEndian.Uint16(be) == srp.Magic {
		t.Fatal("swapHeader did not swap")
	}
}

// TestAuthKeyFiles proves the key file rules: written 0400, never overwritten silently,
// length and permission checks on read.
func TestAuthKeyFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "authkey")
	key, err := GenerateAuthKey(DefaultKeyLen)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteAuthKey(p, key, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteAuthKey(p, key, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write without overwrite: %v, want an exists error", err)
	}
	got, err := ReadAuthKey(p)
	if err != nil || string(got) != string(key) {
		t.Fatalf("read back: %v", err)
	}
	if err := WriteAuthKey(p, key[:MinKeyLen], true); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadAuthKey(p); len(got) != MinKeyLen {
		t.Fatalf("overwrite kept %d bytes", len(got))
	}
	if _, err := GenerateAuthKey(MinKeyLen - 1); err == nil {
		t.Fatal("short key generated")
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, make([]byte, 100), 0o400)
	if _, err := ReadAuthKey(short); err == nil || !strings.Contains(err.Error(), "800 bits of minimum 1024") {
		t.Fatalf("short key: %v", err)
	}
	long := filepath.Join(dir, "long")
	os.WriteFile(long, make([]byte, MaxKeyLen+1), 0o600)
	if _, err := ReadAuthKey(long); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("long key: %v", err)
	}
	open := filepath.Join(dir, "open")
	os.WriteFile(open, key, 0o644)
	if _, err := ReadAuthKey(open); err == nil || !strings.Contains(err.Error(), "group or others") {
		t.Fatalf("world-readable key: %v", err)
	}
	if _, err := ReadAuthKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing key file accepted")
	}
}
