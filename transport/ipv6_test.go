package transport

import (
	"bytes"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gototem/gototem/srp"
)

// IPv6 on this kind of host: ::1 is the only loopback address and lo carries no IPv6
// multicast route (a send to ff15::x fails with ENETUNREACH), so the multi-node IPv6 tests
// build their own network: a network namespace and a veth pair inside it, created and
// removed by the test, with ULA /128 addresses (no DAD). Unicast between local addresses
// runs over the namespace's lo; group traffic leaves one veth end and enters the other,
// which is what a real NIC segment does. Nothing is added to the host's own namespace: the
// test's sockets are opened from an OS thread that has entered the namespace (a socket stays
// in the namespace it was created in, whichever thread later uses it). Tests skip with the
// reason when the host does not allow this (not root, no ip(8), no IPv6); under CI=true
// testenv.Need turns that into a failure.

type vethPair struct {
	ns     string     // the test's network namespace
	a, b   string     // interface names inside ns
	prefix netip.Addr // fd6a:7474:<r>:: ; node i lives at prefix+i
}

// in runs f on an OS thread inside the pair's namespace and returns to the original
// namespace afterwards. If the thread cannot return it stays locked, and the runtime ends it
// with the goroutine instead of reusing a thread in the wrong namespace.
func (v vethPair) in(t *testing.T, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("own network namespace: %v", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + v.ns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("test namespace: %v", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("entering %s: %v", v.ns, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("leaving %s: %v (thread retired)", v.ns, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
}

func (v vethPair) addr(i int) netip.Addr {
	b := v.prefix.As16()
	b[15] = byte(i)
	return netip.AddrFrom16(b)
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newVethPair creates the namespace and the pair in it, with node addresses 1 and 3 on end
// a and 2 on end b.
func newVethPair(t *testing.T) vethPair {
	t.Helper()
	_, err := exec.LookPath("ip")
	testenv.Need(t, "ip(8) for an IPv6 test network", err)
	r := rand.Uint32() // names only: nothing a test asserts depends on it
	v := vethPair{ns: fmt.Sprintf("gtt%05x", r&0xfffff), a: fmt.Sprintf("gtt%05xa", r&0xfffff), b: fmt.Sprintf("gtt%05xb", r&0xfffff)}
	v.prefix = netip.AddrFrom16([16]byte{0xfd, 0x6a, 0x74, 0x74, byte(r >> 8), byte(r)})
	testenv.Need(t, "a network namespace for the IPv6 tests (needs root)", ipCmd("netns", "add", v.ns))
	t.Cleanup(func() {
		if err := ipCmd("netns", "del", v.ns); err != nil {
			t.Errorf("removing test namespace: %v", err)
		}
	})
	for _, step := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", v.a, "type", "veth", "peer", "name", v.b},
		{"link", "set", v.a, "up"}, {"link", "set", v.b, "up"},
		{"-6", "addr", "add", v.addr(1).String() + "/128", "dev", v.a, "nodad"},
		{"-6", "addr", "add", v.addr(3).String() + "/128", "dev", v.a, "nodad"},
		{"-6", "addr", "add", v.addr(2).String() + "/128", "dev", v.b, "nodad"},
	} {
		testenv.Need(t, "a configured IPv6 test network", ipCmd(append([]string{"-n", v.ns}, step...)...))
	}
	// Both ends need their carrier, and each address must take local delivery, before a
	// test starts: probe every address with a datagram to itself (bounded).
	deadline := time.Now().Add(3 * time.Second)
	for _, id := range []int{1, 2, 3} {
		for !v.addrReady(t, v.addr(id)) {
			if time.Now().After(deadline) {
				testenv.Need(t, "a usable IPv6 test address", fmt.Errorf("%s never became usable", v.addr(id)))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return v
}

// open opens the test's links from inside the namespace.
func (v vethPair) open(t *testing.T, build func(tn testNet) []Config) (nodes []*node, tn testNet) {
	t.Helper()
	v.in(t, func() { nodes, tn = openRetrying(t, build) })
	return nodes, tn
}

func (v vethPair) addrReady(t *testing.T, a netip.Addr) (ok bool) {
	v.in(t, func() { ok = addrReady(a) })
	return ok
}

func addrReady(a netip.Addr) bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: a.AsSlice(), Zone: a.Zone()})
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := c.WriteToUDPAddrPort([]byte("probe"), c.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _, err = c.ReadFromUDPAddrPort(make([]byte, 8))
	return err == nil
}

func v6Config(kind Kind, v vethPair, port int, group netip.Addr, id int, m map[srp.NodeID]netip.Addr) Config {
	c := DefaultConfig(kind)
	c.NodeID, c.LocalAddr, c.Port, c.McastAddr, c.Members = srp.NodeID(id), v.addr(id), port, group, m
	return c
}

// TestIPv6SingleNodeLoopback proves the IPv6 sockets on ::1 alone: a one-node udpu ring gets
// its own multicast as a real datagram and can send the token to itself.
func TestIPv6SingleNodeLoopback(t *testing.T) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	testenv.Need(t, "IPv6 loopback", err)
	c.Close()
	nodes, _ := openRetrying(t, func(tn testNet) []Config {
		c := DefaultConfig(UDPU)
		c.NodeID, c.LocalAddr, c.Port = 1, netip.IPv6Loopback(), tn.port
		c.Members = map[srp.NodeID]netip.Addr{1: netip.IPv6Loopback()}
		return []Config{c}
	})
	if err := nodes[0].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, joinMsg(1, 1)), toNode(1, tokenMsg(1, 1))}); err != nil {
		t.Fatal(err)
	}
	gs := nodes[0].expect(t, 2)
	if gs[0].from.Addr() != netip.IPv6Loopback() || gs[0].local {
		t.Fatalf("got %s, want real datagrams from ::1", describe(gs))
	}
}

// TestIPv6UDPU runs three udpu nodes over IPv6 addresses: every ToAll reaches each member
// once, and the token is unicast.
func TestIPv6UDPU(t *testing.T) {
	v := newVethPair(t)
	m := map[srp.NodeID]netip.Addr{1: v.addr(1), 2: v.addr(2), 3: v.addr(3)}
	nodes, tn := v.open(t, func(tn testNet) []Config {
		return []Config{v6Config(UDPU, v, tn.port, netip.Addr{}, 1, m), v6Config(UDPU, v, tn.port, netip.Addr{}, 2, m),
			v6Config(UDPU, v, tn.port, netip.Addr{}, 3, m)}
	})
	join := joinMsg(2, 2)
	if err := nodes[1].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join), toNode(3, tokenMsg(2, 1))}); err != nil {
		t.Fatal(err)
	}
	nodes[0].expect(t, 1)
	nodes[1].expect(t, 1)
	gs := nodes[2].expect(t, 2)
	if gs[1].from != netip.AddrPortFrom(v.addr(2), uint16(tn.port)) {
		t.Fatalf("token from %v, want [%s]:%d", gs[1].from, v.addr(2), tn.port)
	}
}

// TestIPv6Multicast runs two udp nodes on the two veth ends with an IPv6 group: the group
// join, IPV6_MULTICAST_IF and loop-off settings work, each node gets the other's multicast
// once and its own once (through the local loop), and addresses are learned from JOINs.
func TestIPv6Multicast(t *testing.T) {
	v := newVethPair(t)
	var group netip.Addr
	nodes, tn := v.open(t, func(tn testNet) []Config {
		g := tn.group.As4()
		group = netip.AddrFrom16([16]byte{0xff, 0x15, 14: g[2], 15: g[3]})
		return []Config{v6Config(UDP, v, tn.port, group, 1, nil), v6Config(UDP, v, tn.port, group, 2, nil)}
	})
	for i, n := range nodes {
		join := joinMsg(n.id, n.id)
		if err := n.link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join)}); err != nil {
			t.Fatal(err)
		}
		other := nodes[1-i]
		g := other.expect(t, 1)[0]
		if !bytes.Equal(g.data, join) || g.recv != "mcast" || g.from != netip.AddrPortFrom(v.addr(int(n.id)), uint16(tn.port-1)) {
			t.Fatalf("node %d got %s, want node %d's JOIN on the group from port %d", other.id, describe([]got{g}), n.id, tn.port-1)
		}
		if g := n.expect(t, 1)[0]; !g.local {
			t.Fatalf("node %d's own copy came from %s, want the local loop", n.id, g.recv)
		}
	}
	if got := nodes[0].link.Learned()[2]; got != v.addr(2) {
		t.Fatalf("node 1 learned %v for node 2, want %s", got, v.addr(2))
	}
	tok := tokenMsg(1, 9)
	if err := nodes[0].link.Send([]srp.Outgoing{toNode(2, tok)}); err != nil {
		t.Fatal(err)
	}
	if g := nodes[1].expect(t, 1)[0]; g.recv != "token" || !bytes.Equal(g.data, tok) {
		t.Fatalf("token arrived as %s", describe([]got{g}))
	}
}

// TestUDPBroadcast proves `broadcast: yes`: multicasts go to 255.255.255.255:mcastport and
// reach the other node, the sender's own copy comes once through the local loop. It only
// runs where the kernel routes such a broadcast from a 127/8 source over lo, so that no
// packet leaves the host.
func TestUDPBroadcast(t *testing.T) {
	nodes, tn := openRetrying(t, func(tn testNet) []Config {
		var cs []Config
		for id := 1; id <= 2; id++ {
			c := cfgFor(UDP, tn, id, nil)
			c.Broadcast, c.McastAddr = true, netip.Addr{}
			cs = append(cs, c)
		}
		return cs
	})
	for _, id := range []int{1, 2} {
		out, err := exec.Command("ip", "-4", "route", "get", "255.255.255.255", "from", tn.addr(id).String()).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "dev lo") {
			t.Skipf("a broadcast from %s would not stay on lo here (%s): not sending it", tn.addr(id), strings.TrimSpace(string(out)))
		}
	}
	join := joinMsg(1, 1)
	if err := nodes[0].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join)}); err != nil {
		t.Fatal(err)
	}
	if g := nodes[0].expect(t, 1)[0]; !g.local {
		t.Fatalf("sender's copy came via %s", g.recv)
	}
	if g := nodes[1].expect(t, 1)[0]; g.recv != "mcast" || !bytes.Equal(g.data, join) {
		t.Fatalf("node 2 got %s", describe([]got{g}))
	}
}

// TestIPv6LinkLocalUDPU proves link-local operation: a zone-less fe80:: bind address gets
// its interface as zone (bind fails without one), which also scopes the sends to the peers'
// zone-less fe80:: addresses, and block_unlisted_ips matches those nodelist addresses.
func TestIPv6LinkLocalUDPU(t *testing.T) {
	v := newVethPair(t)
	r := v.prefix.As16()
	ll := func(i int) netip.Addr {
		return netip.AddrFrom16([16]byte{0xfe, 0x80, 8: 0x74, 9: 0x74, 10: r[4], 11: r[5], 15: byte(i)})
	}
	for i, dev := range []string{v.a, v.b} {
		if err := ipCmd("-n", v.ns, "-6", "addr", "add", ll(i+1).String()+"/64", "dev", dev, "nodad"); err != nil {
			t.Skipf("cannot add link-local test addresses: %v", err)
		}
	}
	// Like the global addresses, each link-local one must take local delivery before the test
	// sends (a JOIN to itself was once lost right after the address was added, under CI load).
	deadline := time.Now().Add(3 * time.Second)
	for i, dev := range []string{v.a, v.b} {
		for !v.addrReady(t, ll(i+1).WithZone(dev)) {
			if time.Now().After(deadline) {
				testenv.Need(t, "a usable link-local test address", fmt.Errorf("%s never became usable", ll(i+1)))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	m := map[srp.NodeID]netip.Addr{1: ll(1), 2: ll(2)}
	nodes, _ := v.open(t, func(tn testNet) []Config {
		var cs []Config
		for id := 1; id <= 2; id++ {
			c := DefaultConfig(UDPU)
			c.NodeID, c.LocalAddr, c.Port, c.Members = srp.NodeID(id), ll(id), tn.port, m
			cs = append(cs, c)
		}
		return cs
	})
	join := joinMsg(1, 1, 2)
	if err := nodes[0].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join), toNode(2, tokenMsg(1, 1))}); err != nil {
		t.Fatal(err)
	}
	nodes[0].expect(t, 1)
	gs := nodes[1].expect(t, 2)
	if gs[0].from.Addr() != ll(1) || !bytes.Equal(gs[0].data, join) {
		t.Fatalf("node 2 got %s", describe(gs))
	}
	if c := nodes[1].link.Counters(); c.DroppedUnlisted != 0 {
		t.Fatalf("link-local member dropped as unlisted: %+v", c)
	}
}
