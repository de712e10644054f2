package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// TestUDPUThreeNodes proves the udpu socket layout on loopback: a ToAll reaches every
// member exactly once including the sender itself (a real copy to its own nodelist
// address, as corosync does), multicast copies come from an ephemeral source port, and a
// token is unicast from the mcastport socket to the target's mcastport.
func TestUDPUThreeNodes(t *testing.T) {
	nodes, tn := openRetrying(t, func(tn testNet) []Config {
		m := members(tn, 1, 2, 3)
		return []Config{cfgFor(UDPU, tn, 1, m), cfgFor(UDPU, tn, 2, m), cfgFor(UDPU, tn, 3, m)}
	})
	join := joinMsg(1, 1, 2, 3)
	mcast := mcastMsg(1, 5, 1000)
	if err := nodes[0].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join), toAll(srp.TypeMcast, mcast)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		gs := n.expect(t, 2)
		if !bytes.Equal(gs[0].data, join) || !bytes.Equal(gs[1].data, mcast) {
			t.Fatalf("node %d: got %s, want the JOIN then the MCAST in order", n.id, describe(gs))
		}
		for _, g := range gs {
			if g.from.Addr() != tn.addr(1) || g.from.Port() == uint16(tn.port) || g.local {
				t.Fatalf("node %d: multicast copy from %v local=%v, want %s from an ephemeral port",
					n.id, g.from, g.local, tn.addr(1))
			}
		}
	}
	tok := tokenMsg(1, 7)
	if err := nodes[0].link.Send([]srp.Outgoing{toNode(2, tok)}); err != nil {
		t.Fatal(err)
	}
	g := nodes[1].expect(t, 1)[0]
	if !bytes.Equal(g.data, tok) || g.from != netip.AddrPortFrom(tn.addr(1), uint16(tn.port)) {
		t.Fatalf("token: got %s, want it from %s:%d", describe([]got{g}), tn.addr(1), tn.port)
	}
	nodes[0].expect(t, 0)
	nodes[2].expect(t, 0)
	c := nodes[0].link.Counters()
	if c.SentPackets != 7 || c.ReceivedPackets != 2 || c.SendErrors != 0 {
		t.Fatalf("sender counters %+v, want 7 sent (2×3 copies + token), 2 received", c)
	}
}

// TestUDPUBlockUnlistedIPs proves block_unlisted_ips: a datagram from an address outside the
// nodelist is dropped and counted, and accepted once the option is off.
func TestUDPUBlockUnlistedIPs(t *testing.T) {
	for _, block := range []bool{true, false} {
		t.Run(map[bool]string{true: "yes", false: "no"}[block], func(t *testing.T) {
			nodes, tn := openRetrying(t, func(tn testNet) []Config {
				// Node 1 knows only 1 and 2; node 3 lists everyone and so sends to node 1.
				c1 := cfgFor(UDPU, tn, 1, members(tn, 1, 2))
				c1.BlockUnlistedIPs = block
				return []Config{c1, cfgFor(UDPU, tn, 3, members(tn, 1, 2, 3))}
			})
			_ = tn
			if err := nodes[1].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, joinMsg(3, 3))}); err != nil {
				t.Fatal(err)
			}
			nodes[1].expect(t, 1) // its own copy
			if block {
				c := waitCounters(t, nodes[0], "unlisted drop", func(c Counters) bool { return c.DroppedUnlisted == 1 })
				if c.ReceivedPackets != 0 {
					t.Fatalf("unlisted datagram was delivered: %+v", c)
				}
				nodes[0].expect(t, 0)
			} else {
				nodes[0].expect(t, 1)
			}
		})
	}
}

// TestUDPMulticastThreeNodes proves the udp socket layout: multicasts go to the group from
// mcastport-1 and reach each other node once; the sender gets its own copy exactly once,
// through the local loop (the kernel's echo on lo is recognised and dropped); tokens are
// unicast from mcastport-1 to the target's token socket.
func TestUDPMulticastThreeNodes(t *testing.T) {
	nodes, tn := openRetrying(t, func(tn testNet) []Config {
		m := members(tn, 1, 2, 3)
		return []Config{cfgFor(UDP, tn, 1, m), cfgFor(UDP, tn, 2, m), cfgFor(UDP, tn, 3, m)}
	})
	join := joinMsg(2, 2)
	if err := nodes[1].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		g := n.expect(t, 1)[0]
		if !bytes.Equal(g.data, join) {
			t.Fatalf("node %d: wrong datagram % x", n.id, g.data)
		}
		if n.id == 2 {
			if !g.local || g.recv != "loop" {
				t.Fatalf("sender's own copy came via %s local=%v, want the local loop", g.recv, g.local)
			}
			continue
		}
		if g.recv != "mcast" || g.from != netip.AddrPortFrom(tn.addr(2), uint16(tn.port-1)) {
			t.Fatalf("node %d: got it on %s from %v, want mcast socket from %s:%d", n.id, g.recv, g.from, tn.addr(2), tn.port-1)
		}
	}
	waitCounters(t, nodes[1], "own echo", func(c Counters) bool { return c.DroppedOwnEcho == 1 })

	tok := tokenMsg(2, 3)
	if err := nodes[1].link.Send([]srp.Outgoing{toNode(3, tok)}); err != nil {
		t.Fatal(err)
	}
	g := nodes[2].expect(t, 1)[0]
	if g.recv != "token" || g.from != netip.AddrPortFrom(tn.addr(2), uint16(tn.port-1)) || !bytes.Equal(g.data, tok) {
		t.Fatalf("token arrived as %s, want on the token socket from %s:%d", describe([]got{g}), tn.addr(2), tn.port-1)
	}
	nodes[0].expect(t, 0)
	nodes[1].expect(t, 0)
}

// TestUDPLearnsNodeAddresses proves that a udp ring without a nodelist learns nodeid →
// address from received JOINs (either byte order) and can then unicast the token, that a
// LEAVE (nodeid 0) teaches nothing, and that a token to an unknown node is a counted drop.
func TestUDPLearnsNodeAddresses(t *testing.T) {
	nodes, tn := openRetrying(t, func(tn testNet) []Config {
		return []Config{cfgFor(UDP, tn, 1, nil), cfgFor(UDP, tn, 2, nil), cfgFor(UDP, tn, 3, nil)}
	})
	if err := nodes[0].link.Send([]srp.Outgoing{toNode(2, tokenMsg(1, 1))}); err != nil {
		t.Fatal(err)
	}
	if c := nodes[0].link.Counters(); c.DroppedNoRoute != 1 || c.SentPackets != 0 {
		t.Fatalf("token to an unknown node: counters %+v, want one no-route drop", c)
	}

	leave := joinMsg(0, 2)
	bigEndianJoin := joinMsg(3, 3)
	swapHeader(bigEndianJoin)
	if err := nodes[1].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, leave), toAll(srp.TypeJoin, joinMsg(2, 2))}); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, bigEndianJoin)}); err != nil {
		t.Fatal(err)
	}
	nodes[0].expect(t, 3)
	want := map[srp.NodeID]netip.Addr{2: tn.addr(2), 3: tn.addr(3)}
	if got := nodes[0].link.Learned(); len(got) != 2 || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("learned %v, want %v", got, want)
	}
	tok := tokenMsg(1, 2)
	if err := nodes[0].link.Send([]srp.Outgoing{toNode(3, tok)}); err != nil {
		t.Fatal(err)
	}
	// Node 3 saw node 2's LEAVE and JOIN, its own JOIN through the loop, then the token.
	var tokens int
	for _, g := range nodes[2].expect(t, 4) {
		if g.recv == "token" {
			tokens++
			if !bytes.Equal(g.data, tok) {
				t.Fatalf("token corrupted: % x", g.data)
			}
		}
	}
	if tokens != 1 {
		t.Fatalf("node 3 got %d tokens, want 1", tokens)
	}
}

// swapHeader rewrites a little-endian totem header as a big-endian sender would (magic and
// nodeid); enough for the transport, which reads nothing else.
func swapHeader(b []byte) {
	binary.BigEndian.PutUint16(b, srp.Magic)
	id := binary.LittleEndian.Uint32(b[5:])
	binary.BigEndian.PutUint32(b[5:], id)
}

// TestSendSkipsOversizedDatagram proves a datagram larger than UDP allows is counted and
// skipped while the rest of the batch is still sent.
func TestSendSkipsOversizedDatagram(t *testing.T) {
	nodes, _ := openRetrying(t, func(tn testNet) []Config {
		return []Config{cfgFor(UDPU, tn, 1, members(tn, 1))}
	})
	huge := make([]byte, MaxDatagram+1)
	copy(huge, joinMsg(1, 1))
	small := joinMsg(1, 1)
	if err := nodes[0].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, huge), toAll(srp.TypeJoin, small)}); err != nil {
		t.Fatal(err)
	}
	g := nodes[0].expect(t, 1)[0]
	if !bytes.Equal(g.data, small) {
		t.Fatalf("got %d bytes, want the small JOIN", len(g.data))
	}
	if c := nodes[0].link.Counters(); c.DroppedTooBig != 1 {
		t.Fatalf("counters %+v, want one too-big drop", c)
	}
}

// TestSetMembersAtRuntime proves a node added with SetMembers starts receiving multicasts
// and one removed stops, without reopening the Link.
func TestSetMembersAtRuntime(t *testing.T) {
	nodes, tn := openRetrying(t, func(tn testNet) []Config {
		return []Config{cfgFor(UDPU, tn, 1, members(tn, 1)), cfgFor(UDPU, tn, 2, members(tn, 1, 2))}
	})
	send := func() {
		if err := nodes[0].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, joinMsg(1, 1))}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	nodes[0].expect(t, 1)
	nodes[1].expect(t, 0)
	if err := nodes[0].link.SetMembers(members(tn, 1, 2)); err != nil {
		t.Fatal(err)
	}
	send()
	nodes[0].expect(t, 1)
	nodes[1].expect(t, 1)
	if err := nodes[0].link.SetMembers(members(tn, 1)); err != nil {
		t.Fatal(err)
	}
	send()
	nodes[0].expect(t, 1)
	nodes[1].expect(t, 0)
}

// TestCloseUnblocksReaders proves Close ends every pending Read, batched or not, with an
// error wrapping net.ErrClosed, and that a second Close is harmless.
func TestCloseUnblocksReaders(t *testing.T) {
	for _, batch := range []int{1, DefaultBatchSize} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			var l *Link
			for attempt := 0; attempt < 5 && l == nil; attempt++ {
				c := cfgFor(UDP, newTestNet(t), 1, nil)
				c.BatchSize = batch
				l, _ = Open(c)
			}
			if l == nil {
				t.Fatal("cannot open a link")
			}
			errs := make(chan error, len(l.Receivers()))
			for _, r := range l.Receivers() {
				go func() {
					b := l.GetBatch()
					_, err := r.Read(b)
					errs <- err
				}()
			}
			time.Sleep(20 * time.Millisecond) // let the readers park in the poller
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for range l.Receivers() {
				select {
				case err := <-errs:
					if !errors.Is(err, net.ErrClosed) {
						t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
					}
				case <-time.After(waitTimeout):
					t.Fatal("a Read stayed blocked after Close")
				}
			}
			if err := l.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

// TestLoopNeverBlocksSend proves that when nobody drains the loop receiver, Send still
// returns promptly and the own copies that do not fit are counted, not waited for.
func TestLoopNeverBlocksSend(t *testing.T) {
	var l *Link
	for attempt := 0; attempt < 5 && l == nil; attempt++ {
		tn := newTestNet(t)
		l, _ = Open(cfgFor(UDP, tn, 1, nil))
	}
	if l == nil {
		t.Fatal("cannot open a link")
	}
	defer l.Close()
	out := []srp.Outgoing{toAll(srp.TypeMcast, mcastMsg(1, 1, 1400))}
	start := time.Now()
	for i := 0; i < 5000 && l.Counters().DroppedLoopFull == 0; i++ {
		if err := l.Send(out); err != nil {
			t.Fatal(err)
		}
	}
	if c := l.Counters(); c.DroppedLoopFull == 0 {
		t.Fatalf("5000 unread own multicasts all fit the loop? counters %+v", c)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Send took %v with a full loop", d)
	}
}

// TestLoopInProcess proves that with LoopInProcess the sender's own copy of a multicast
// never reaches its sockets (no copy to its own udpu address, no local loop, not even a
// "loop" receiver), while every other member still gets each datagram once, in order.
func TestLoopInProcess(t *testing.T) {
	for _, kind := range []Kind{UDPU, UDP} {
		t.Run(kind.String(), func(t *testing.T) {
			nodes, _ := openRetrying(t, func(tn testNet) []Config {
				m := members(tn, 1, 2, 3)
				c1 := cfgFor(kind, tn, 1, m)
				c1.LoopInProcess = true
				return []Config{c1, cfgFor(kind, tn, 2, m), cfgFor(kind, tn, 3, m)}
			})
			for _, r := range nodes[0].link.Receivers() {
				if r.Name() == "loop" {
					t.Fatal("LoopInProcess link opened a local loop receiver")
				}
			}
			join := joinMsg(1, 1, 2, 3)
			mcast := mcastMsg(1, 5, 1000)
			if err := nodes[0].link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join), toAll(srp.TypeMcast, mcast)}); err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes[1:] {
				gs := n.expect(t, 2)
				if !bytes.Equal(gs[0].data, join) || !bytes.Equal(gs[1].data, mcast) {
					t.Fatalf("node %d: got %s, want the JOIN then the MCAST", n.id, describe(gs))
				}
			}
			nodes[0].expect(t, 0)
			want := uint64(2 * 2) // two datagrams to each other member
			if kind == UDP {
				want = 2 // one group send each
			}
			// (udp on lo still echoes the group sends; they are dropped as own echo, as
			// without LoopInProcess.)
			if c := nodes[0].link.Counters(); c.SentPackets != want || c.ReceivedPackets != 0 {
				t.Fatalf("sender counters %+v, want %d sent and nothing received", c, want)
			}
		})
	}
}
