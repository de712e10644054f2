//go:build linux

package transport

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/net/ipv4"

	"github.com/gototem/gototem/srp"
)

// TestGSORuns pins how queued datagrams are grouped into GSO messages: consecutive, one
// destination, one size, a shorter datagram only as a run's last, at most gsoMaxSegments
// and gsoMaxBytes per message.
func TestGSORuns(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:5405")
	b := netip.MustParseAddrPort("10.0.0.2:5405")
	type q struct {
		size int
		dst  netip.AddrPort
	}
	var many []q
	for range gsoMaxSegments + 3 {
		many = append(many, q{100, a})
	}
	var big []q
	for range 50 {
		big = append(big, q{1400, a})
	}
	cases := []struct {
		in   []q
		want []int // datagrams per message
	}{
		{[]q{{1400, a}, {1400, a}, {700, a}, {1400, a}}, []int{3, 1}},
		{[]q{{1400, a}, {1400, b}, {1400, b}}, []int{1, 2}},
		{[]q{{500, a}, {1400, a}, {1400, a}}, []int{1, 2}},
		{[]q{{1400, a}, {300, a}, {300, a}}, []int{2, 1}},
		{many, []int{gsoMaxSegments, 3}},
		{big, []int{gsoMaxBytes / 1400, 50 - gsoMaxBytes/1400}},
	}
	for i, c := range cases {
		var msgs []ipv4.Message
		var dsts []netip.AddrPort
		for _, x := range c.in {
			msgs = append(msgs, ipv4.Message{Buffers: [][]byte{make([]byte, x.size)}})
			dsts = append(dsts, x.dst)
		}
		w := newGSOWriter()
		if !w.build(msgs, dsts, false) {
			t.Fatalf("case %d: build refused", i)
		}
		if !slices.Equal(w.segs, c.want) {
			t.Errorf("case %d: runs %v, want %v", i, w.segs, c.want)
		}
	}
}

// TestGSOSendsSameDatagrams proves a GSO link delivers exactly the datagrams, in the order,
// that a link sending one by one does (runs of equal size, shorter run ends, size changes),
// whether the receiver takes them coalesced (UDP_GRO) and splits them, or one by one. It
// also shows that GSO and GRO were really used on this kernel (SegmentedSends,
// CoalescedRecvs), so the comparison is not between identical paths.
func TestGSOSendsSameDatagrams(t *testing.T) {
	var out []srp.Outgoing
	seq := uint32(1)
	add := func(n, size int) {
		for range n {
			out = append(out, toAll(srp.TypeMcast, mcastMsg(1, seq, size)))
			seq++
		}
	}
	add(10, 1400)
	add(1, 700)
	add(5, 1400)
	add(1, 300)
	add(20, 1000)
	add(3, 1400)
	for _, mode := range []struct{ gso, gro bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
		gso, gro := mode.gso, mode.gro
		t.Run(fmt.Sprintf("gso=%v,gro=%v", gso, gro), func(t *testing.T) {
			nodes, _ := openRetrying(t, func(tn testNet) []Config {
				m := members(tn, 1, 2)
				c1 := cfgFor(UDPU, tn, 1, m)
				c1.GSO = gso
				c1.LoopInProcess = true
				c2 := cfgFor(UDPU, tn, 2, m)
				c2.GSO = gro // the receive side of the same option: UDP_GRO
				return []Config{c1, c2}
			})
			if err := nodes[0].link.Send(out); err != nil {
				t.Fatal(err)
			}
			gs := nodes[1].expect(t, len(out))
			for i, g := range gs {
				if !bytes.Equal(g.data, out[i].Data) {
					t.Fatalf("datagram %d: got %d bytes, want %d (%s)", i, len(g.data), len(out[i].Data), describe(gs[i:i+1]))
				}
			}
			c := nodes[0].link.Counters()
			if c.SentPackets != uint64(len(out)) || c.SendErrors != 0 {
				t.Fatalf("counters %+v, want %d sent", c, len(out))
			}
			if gso != (c.SegmentedSends > 0) {
				t.Fatalf("gso=%v but %d segmented sends", gso, c.SegmentedSends)
			}
			// Loopback keeps a GSO run whole up to a UDP_GRO socket and segments it for
			// any other: coalesced receives show exactly when both ends have it on.
			rc := nodes[1].link.Counters()
			if want := gso && gro; want != (rc.CoalescedRecvs > 0) || rc.ReceivedPackets != uint64(len(out)) {
				t.Fatalf("receiver counters %+v: want coalesced=%v and %d packets", rc, want, len(out))
			}
		})
	}
}
