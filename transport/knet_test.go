package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
)

// knetTimers are fast link timers for loopback tests: links come up within about a second
// (three heartbeats of 200 ms after the first pongs).
var knetTimers = knet.LinkConfig{PingInterval: 50 * time.Millisecond, PingTimeout: 400 * time.Millisecond, PongCount: 2, Priority: 1}

func knetKey(seed byte) []byte {
	k := make([]byte, 256)
	for i := range k {
		k[i] = byte(i)*7 + seed
	}
	return k
}

func knetCrypto(t *testing.T, key []byte) *knet.Crypto {
	t.Helper()
	c, err := knet.NewCrypto(knet.CryptoConfig{Model: "nss", Cipher: knet.CipherAES256, Hash: knet.HashSHA256, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// knetNodes opens n knet nodes on one link of a loopback test network (node i's crypto is
// cryptos[i-1], nil for clear) and drives their heartbeats as totem does, until cleanup.
func knetNodes(t *testing.T, cryptos ...*knet.Crypto) []*node {
	t.Helper()
	return knetNodesMTU(t, 0, cryptos...)
}

// knetNodesMTU is knetNodes with knet_mtu set (0: PMTUd).
func knetNodesMTU(t *testing.T, mtu int, cryptos ...*knet.Crypto) []*node {
	t.Helper()
	start := time.Now()
	clock := func() time.Duration { return time.Since(start) }
	nodes, _ := openRetrying(t, func(tn testNet) []Config {
		var cfgs []Config
		for i := range cryptos {
			id := i + 1
			c := DefaultConfig(Knet)
			c.NodeID = srp.NodeID(id)
			c.NetMTU = 65536
			c.LocalAddr = tn.addr(id) // node.addr; Open takes it from link 0 anyway
			c.LoopInProcess = true
			peers := map[srp.NodeID]netip.Addr{}
			for j := range cryptos {
				if j+1 != id {
					peers[srp.NodeID(j+1)] = tn.addr(j + 1)
				}
			}
			c.Knet = &KnetConfig{Clock: clock, Crypto: cryptos[i], MTU: mtu,
				Links: []KnetLink{{Number: 0, LocalAddr: tn.addr(id), Port: tn.port, Peers: peers, Link: knetTimers}}}
			cfgs = append(cfgs, c)
		}
		return cfgs
	})
	done := make(chan struct{})
	for _, n := range nodes {
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if next := n.link.KnetNextTick(); clock() >= next {
					n.link.KnetTick(clock())
				}
			}
		}()
	}
	t.Cleanup(func() { close(done) })
	return nodes
}

// waitKnetUp waits until n has every link to the hosts up.
func waitKnetUp(t *testing.T, n *node, hosts ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		up := 0
		for _, s := range n.link.KnetStatus() {
			for _, h := range hosts {
				if int(s.Host) == h && s.Connected {
					up++
				}
			}
		}
		if up == len(hosts) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: knet links to %v not up: %+v, counters %+v", n.id, hosts, n.link.KnetStatus(), n.link.KnetCounters())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Three clear knet nodes on loopback: the links come up by ping/pong; a 3045-byte MCAST
// from node 1 (7 fragments at knet's minimum data MTU of 482) reaches nodes 2 and 3 whole,
// once, and not node 1 (LoopInProcess); a token to node 2 reaches node 2 only, with the
// totem header's target_nodeid set to 2 as corosync's knet filter expects; a token to
// itself comes back through the local loop.
func TestKnetDelivery(t *testing.T) {
	ns := knetNodes(t, nil, nil, nil)
	waitKnetUp(t, ns[0], 2, 3)
	waitKnetUp(t, ns[1], 1, 3)
	waitKnetUp(t, ns[2], 1, 2)

	m := mcastMsg(1, 5, 3000)
	mtu := ns[0].link.KnetDataMTU()
	if err := ns[0].link.Send([]srp.Outgoing{toAll(srp.TypeMcast, m)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns[1:] {
		g := n.expect(t, 1)
		if !bytes.Equal(g[0].data, m) || g[0].recv != "knet0" || g[0].from.Addr() != ns[0].addr {
			t.Fatalf("node %d got %s, want the %d-byte mcast from node 1 (first difference at %d)", n.id, describe(g), len(m), firstDiff(g[0].data, m))
		}
	}
	if c := ns[1].link.KnetCounters(); int(c.Fragment) != (len(m)+mtu-1)/mtu-1 || c.Delivered < 1 {
		t.Errorf("node 2 counters %+v: want %d fragments held (data MTU %d) then the message delivered", c, (len(m)+mtu-1)/mtu-1, mtu)
	}
	tok := tokenMsg(1, 9)
	if err := ns[0].link.Send([]srp.Outgoing{toNode(2, tok)}); err != nil {
		t.Fatal(err)
	}
	g := ns[1].expect(t, 1)
	if len(g[0].data) != len(tok) || binary.LittleEndian.Uint32(g[0].data[9:13]) != 2 ||
		!bytes.Equal(g[0].data[:9], tok[:9]) || !bytes.Equal(g[0].data[13:], tok[13:]) {
		t.Fatalf("node 2 got token % x, want % x with target_nodeid 2", g[0].data, tok)
	}
	if err := ns[0].link.Send([]srp.Outgoing{toNode(1, tok)}); err != nil {
		t.Fatal(err)
	}
	g = ns[0].expect(t, 1)
	if !g[0].local || g[0].recv != "loop" || !bytes.Equal(g[0].data, tok) {
		t.Fatalf("node 1 got %s, want its own token through the loop", describe(g))
	}
	select {
	case x := <-ns[2].ch:
		t.Fatalf("node 3 got %s, the tokens were for nodes 2 and 1", describe([]got{x}))
	case <-time.After(100 * time.Millisecond):
	}
	// A packet whose totem header names node 3 reaches node 3 only, even sent to all:
	// corosync's knet filter runs on receive too.
	named := tokenMsg(1, 10)
	binary.LittleEndian.PutUint32(named[9:13], 3)
	if err := ns[0].link.Send([]srp.Outgoing{toAll(srp.TypeORFToken, named)}); err != nil {
		t.Fatal(err)
	}
	if g := ns[2].expect(t, 1); !bytes.Equal(g[0].data, named) {
		t.Fatalf("node 3 got %s", describe(g))
	}
	waitCounters(t, ns[1], "the packet named for node 3 dropped", func(c Counters) bool { return c.DroppedNotForUs == 1 })
	select {
	case x := <-ns[1].ch:
		t.Fatalf("node 2 got %s, a packet addressed to node 3", describe([]got{x}))
	case <-time.After(100 * time.Millisecond):
	}
}

// aes256/sha256: nodes 1 and 2 share a key and exchange a message; node 3 holds another
// key: its links never come up on either side, it receives nothing, and node 1 counts its
// packets as crypto drops.
func TestKnetCryptoWrongKey(t *testing.T) {
	ns := knetNodes(t, knetCrypto(t, knetKey(1)), knetCrypto(t, knetKey(1)), knetCrypto(t, knetKey(2)))
	waitKnetUp(t, ns[0], 2)
	waitKnetUp(t, ns[1], 1)
	m := mcastMsg(1, 1, 1000)
	if err := ns[0].link.Send([]srp.Outgoing{toAll(srp.TypeMcast, m)}); err != nil {
		t.Fatal(err)
	}
	if g := ns[1].expect(t, 1); !bytes.Equal(g[0].data, m) {
		t.Fatalf("node 2 got %s", describe(g))
	}
	for _, s := range ns[0].link.KnetStatus() {
		if s.Host == 3 && s.Connected {
			t.Errorf("node 1's link to the wrong-key node 3 is up: %+v", s)
		}
	}
	for _, s := range ns[2].link.KnetStatus() {
		if s.Connected {
			t.Errorf("wrong-key node 3 has a link up: %+v", s)
		}
	}
	if c := ns[0].link.KnetCounters(); c.Crypto == 0 {
		t.Errorf("node 1 counters %+v: want node 3's pings counted as crypto drops", c)
	}
	select {
	case x := <-ns[2].ch:
		t.Fatalf("wrong-key node 3 received %s", describe([]got{x}))
	case <-time.After(100 * time.Millisecond):
	}
}

// A knet config is checked before any socket opens.
func TestKnetConfigErrors(t *testing.T) {
	clock := func() time.Duration { return 0 }
	a := netip.MustParseAddr("127.0.0.1")
	for name, k := range map[string]*KnetConfig{
		"no links":  {Clock: clock},
		"no clock":  {Links: []KnetLink{{LocalAddr: a, Port: 5405}}},
		"bad port":  {Clock: clock, Links: []KnetLink{{LocalAddr: a, Port: 0}}},
		"link 8":    {Clock: clock, Links: []KnetLink{{Number: 8, LocalAddr: a, Port: 5405}}},
		"same link": {Clock: clock, Links: []KnetLink{{LocalAddr: a, Port: 5405}, {LocalAddr: a, Port: 5406}}},
		"family": {Clock: clock, Links: []KnetLink{{LocalAddr: a, Port: 5405,
			Peers: map[srp.NodeID]netip.Addr{2: netip.MustParseAddr("::1")}}}},
	} {
		c := DefaultConfig(Knet)
		c.NodeID, c.Knet = 1, k
		if l, err := Open(c); err == nil || errors.Is(err, syscall.EADDRINUSE) {
			if l != nil {
				l.Close()
			}
			t.Errorf("%s: Open accepted %+v (err %v)", name, k, err)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// PMTUd: once the links are up, the search settles on loopback's MTU (65536: the first
// probe, 65535 bytes, passes and is answered), the data MTU grows from knet's minimum to what
// a 65535-byte IP packet carries, and a 20000-byte message then crosses in one packet.
func TestKnetPMTUD(t *testing.T) {
	ns := knetNodes(t, nil, nil)
	waitKnetUp(t, ns[0], 2)
	want := knet.UDPDataMTU(nil, 65535, false)
	deadline := time.Now().Add(5 * time.Second)
	for ns[0].link.KnetDataMTU() != want {
		if time.Now().After(deadline) {
			t.Fatalf("data MTU %d after 5 s, want %d (knet counters %+v)", ns[0].link.KnetDataMTU(), want, ns[0].link.KnetCounters())
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := mcastMsg(1, 1, 20000)
	if err := ns[0].link.Send([]srp.Outgoing{toAll(srp.TypeMcast, m)}); err != nil {
		t.Fatal(err)
	}
	if g := ns[1].expect(t, 1); !bytes.Equal(g[0].data, m) {
		t.Fatalf("node 2 got %s", describe(g))
	}
	if c := ns[1].link.KnetCounters(); c.Fragment != 0 {
		t.Errorf("node 2 held %d fragments; at data MTU %d the message fits one packet", c.Fragment, want)
	}
}

// Tampered and replayed encrypted packets over the knet transport (issue 15): three
// aes256/sha256 nodes on loopback. A genuine DATA packet node 1's knet sealed for node 2 is
// sent by an attacker socket on node 1's address (knet checks the source address, not the
// port): the first copy is delivered, every later copy is dropped and counted as a replay;
// copies with one bit flipped (in the salt, the ciphertext, the MAC) are dropped and counted
// as authentication failures. Both counters are the ones the stack's DROPS show, with the
// attacker as the last source. Nothing of it reaches the application, the links stay up,
// and node 1's next message still reaches nodes 2 and 3.
func TestKnetTamperedReplayed(t *testing.T) {
	key := knetKey(5)
	ns := knetNodes(t, knetCrypto(t, key), knetCrypto(t, key), knetCrypto(t, key))
	waitKnetUp(t, ns[0], 2, 3)
	waitKnetUp(t, ns[1], 1, 3)
	waitKnetUp(t, ns[2], 1, 2)

	// Node 1's own knet seals a message (its seq counter moves as for any send); the
	// datagram for node 2 is the "captured" packet.
	m := mcastMsg(1, 7, 300)
	ks := ns[0].link.knet
	ks.mu.Lock()
	ds, err := ks.ep.Send(ks.clock(), m, nil)
	var captured []byte
	for _, d := range ds {
		if d.To.Addr() == ns[1].addr {
			captured = bytes.Clone(d.Data)
		}
	}
	ks.mu.Unlock()
	if err != nil || captured == nil {
		t.Fatalf("no datagram for node 2 (%v): %+v", err, ds)
	}
	atk := rawSocket(t, netip.AddrPortFrom(ns[0].addr, 0))
	to2 := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ns[1].addr, uint16(ns[1].link.knet.links[0].Port)))
	send := func(d []byte) {
		t.Helper()
		if _, err := atk.WriteToUDP(d, to2); err != nil {
			t.Fatal(err)
		}
	}
	send(captured)
	if g := ns[1].expect(t, 1); !bytes.Equal(g[0].data, m) {
		t.Fatalf("node 2 got %s, want the genuine message once", describe(g))
	}
	const replays = 5
	for range replays {
		send(captured)
	}
	flips := []int{0, knet.SaltSize + 3, len(captured) / 2, len(captured) - 1}
	for _, i := range flips {
		d := bytes.Clone(captured)
		d[i] ^= 0x10
		send(d)
	}
	want := func(c Counters) bool { return c.DroppedReplay == replays && c.DroppedAuth == uint64(len(flips)) }
	waitCounters(t, ns[1], "replays and tampered packets counted", want)
	if src := ns[1].link.LastDropSources(); src.Replay != atk.LocalAddr().(*net.UDPAddr).AddrPort() || src.Auth != src.Replay {
		t.Errorf("last drop sources %+v, want the attacker %v", src, atk.LocalAddr())
	}
	select {
	case x := <-ns[1].ch:
		t.Fatalf("node 2 delivered %s from the attacker", describe([]got{x}))
	case <-time.After(200 * time.Millisecond):
	}
	for _, s := range ns[1].link.KnetStatus() {
		if !s.Connected {
			t.Errorf("node 2's link %+v went down", s)
		}
	}
	next := mcastMsg(1, 8, 300)
	if err := ns[0].link.Send([]srp.Outgoing{toAll(srp.TypeMcast, next)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns[1:] {
		if g := n.expect(t, 1); !bytes.Equal(g[0].data, next) {
			t.Fatalf("node %d got %s after the attack, want node 1's next message", n.id, describe(g))
		}
	}
	if c := ns[2].link.Counters(); c.DroppedReplay+c.DroppedAuth != 0 {
		t.Errorf("node 3, not attacked, counted drops: %+v", c)
	}
}

// A fragmented message leaves as one UDP_SEGMENT message per host: the transport regroups
// the Endpoint's fragment-major datagrams by destination, so GSO sees each host's fragments
// back to back. Three nodes at knet_mtu 1500, clear and aes256: a 20000-byte MCAST (14 and
// 15 fragments) is sent by node 1 in two segmented sends, one per peer, is read by each peer
// as one coalesced datagram (UDP_GRO) and arrives whole.
func TestKnetFragmentsSegmented(t *testing.T) {
	key := knetKey(9)
	for _, c := range []*knet.Crypto{nil, knetCrypto(t, key)} {
		ns := knetNodesMTU(t, 1500, c, c, c)
		waitKnetUp(t, ns[0], 2, 3)
		waitKnetUp(t, ns[1], 1, 3)
		waitKnetUp(t, ns[2], 1, 2)
		before := ns[0].link.Counters()
		m := mcastMsg(1, 3, 20000)
		if err := ns[0].link.Send([]srp.Outgoing{toAll(srp.TypeMcast, m)}); err != nil {
			t.Fatal(err)
		}
		for _, n := range ns[1:] {
			if g := n.expect(t, 1); !bytes.Equal(g[0].data, m) {
				t.Fatalf("crypto %v: node %d got %s", c != nil, n.id, describe(g))
			}
		}
		after := ns[0].link.Counters()
		frags := (len(m) + ns[0].link.KnetDataMTU() - 1) / ns[0].link.KnetDataMTU()
		if seg := after.SegmentedSends - before.SegmentedSends; seg != 2 {
			t.Errorf("crypto %v: %d segmented sends for %d fragments to 2 hosts, want 2 (one per host)", c != nil, seg, frags)
		}
		for _, n := range ns[1:] {
			// the receivers' UDP_GRO kept each segmented send together (knetDatagram)
			if nc := n.link.Counters(); nc.CoalescedRecvs == 0 {
				t.Errorf("crypto %v: node %d read no coalesced datagrams: %+v", c != nil, n.id, nc)
			}
		}
		if sent := after.SentPackets - before.SentPackets; sent < uint64(2*frags) { // pings may add a few
			t.Errorf("crypto %v: %d datagrams sent, want %d", c != nil, sent, 2*frags)
		}
	}
}

// TestKnetVisitSealedInParallel: a token visit large enough for the sealing workers
// (knet_seal.go) — several fragmented MCASTs, a small one, then the token — arrives
// complete and in the order sent, with aes256/sha256 and clear: the workers seal the
// messages in any order, the owner sends them in order. (Sending each message as soon as
// it is sealed instead of in order fails it.)
func TestKnetVisitSealedInParallel(t *testing.T) {
	key := knetKey(11)
	for _, c := range []*knet.Crypto{knetCrypto(t, key), nil} {
		ns := knetNodesMTU(t, 1500, c, c, c)
		waitKnetUp(t, ns[0], 2, 3)
		waitKnetUp(t, ns[1], 1, 3)
		waitKnetUp(t, ns[2], 1, 2)
		for round := range 5 {
			var out []srp.Outgoing
			var want [][]byte
			for i := range 8 {
				size := 30000 - 3000*i
				if i == 5 {
					size = 100
				}
				m := mcastMsg(1, uint32(100*round+i), size)
				out = append(out, toAll(srp.TypeMcast, m))
				want = append(want, m)
			}
			tok := tokenMsg(1, uint32(round))
			out = append(out, toNode(2, tok))
			if err := ns[0].link.Send(out); err != nil {
				t.Fatal(err)
			}
			for _, n := range ns[1:] {
				w := len(want)
				if n.id == 2 {
					w++
				}
				g := n.expect(t, w)
				for i, m := range want {
					if !bytes.Equal(g[i].data, m) {
						t.Fatalf("crypto %v round %d: node %d's packet %d is not MCAST %d (%d bytes, want %d)", c != nil, round, n.id, i, i, len(g[i].data), len(m))
					}
				}
				if n.id == 2 && (len(g[w-1].data) != len(tok) || !bytes.Equal(g[w-1].data[13:], tok[13:])) {
					t.Fatalf("crypto %v round %d: node 2's last packet is not the token", c != nil, round)
				}
			}
		}
	}
}
