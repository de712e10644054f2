package transport

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
)

// Runtime re-keying of a knet link in corosync's three phases, key A to key B: after STAGE
// on both nodes packets under A still flow; after node 1 alone ACTIVATEs, its B packets and
// node 2's A packets both open on the other side (each opens with either slot); after both
// activate and CLEANUP, B flows both ways and a packet sealed with A is dropped and counted
// as an authentication failure, while the same kind of packet opened before the cleanup.
// The link never goes down. Then B to none: clear packets flow and the old B slot is gone.
func TestKnetCryptoReconfigure(t *testing.T) {
	a, b := knetKey(11), knetKey(12)
	ns := knetNodes(t, knetCrypto(t, a), knetCrypto(t, a))
	waitKnetUp(t, ns[0], 2)
	waitKnetUp(t, ns[1], 1)
	atk := rawSocket(t, netip.AddrPortFrom(ns[0].addr, 0))
	to2 := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ns[1].addr, uint16(ns[1].link.knet.links[0].Port)))
	seq := uint32(0)
	exchange := func(what string) {
		t.Helper()
		for _, p := range [][2]*node{{ns[0], ns[1]}, {ns[1], ns[0]}} {
			seq++
			m := mcastMsg(p[0].id, seq, 2000)
			if err := p[0].link.Send([]srp.Outgoing{toAll(srp.TypeMcast, m)}); err != nil {
				t.Fatal(err)
			}
			if g := p[1].expect(t, 1); !bytes.Equal(g[0].data, m) {
				t.Fatalf("%s: node %d got %s from node %d", what, p[1].id, describe(g), p[0].id)
			}
		}
	}
	exchange("key A")
	for _, n := range ns {
		if idx, err := n.link.KnetCryptoStage(knetCrypto(t, b)); err != nil || idx != 2 {
			t.Fatalf("stage: slot %d, %v; want slot 2", idx, err)
		}
	}
	exchange("B staged, A in use")
	if err := ns[0].link.KnetCryptoActivate(); err != nil {
		t.Fatal(err)
	}
	exchange("node 1 on B, node 2 on A")
	if err := ns[1].link.KnetCryptoActivate(); err != nil {
		t.Fatal(err)
	}
	exchange("both on B, A still held")
	// A ping sealed with key A by host 1 (a knet of its own that has A only): opened while
	// the old slot is held, refused once it is cleared.
	stillA := func() []byte {
		p := knet.NewPing(1, 0, 0, 0, 0, true)
		var salt [knet.SaltSize]byte
		return knet.NewKeyring(knetCrypto(t, a)).Seal(nil, p.AppendEncode(nil), &salt)
	}()
	send := func(d []byte) {
		t.Helper()
		if _, err := atk.WriteToUDP(d, to2); err != nil {
			t.Fatal(err)
		}
	}
	pings := ns[1].link.KnetCounters().Ping
	send(stillA)
	waitCounters(t, ns[1], "the key-A ping opened before cleanup", func(Counters) bool { return ns[1].link.KnetCounters().Ping > pings })
	if c := ns[1].link.Counters(); c.DroppedAuth != 0 {
		t.Fatalf("node 2 refused %d packets before cleanup", c.DroppedAuth)
	}
	for _, n := range ns {
		n.link.KnetCryptoCleanup()
	}
	exchange("key B after cleanup")
	send(stillA)
	waitCounters(t, ns[1], "the key-A ping refused after cleanup", func(c Counters) bool { return c.DroppedAuth == 1 })
	for _, n := range ns {
		for _, s := range n.link.KnetStatus() {
			if !s.Connected {
				t.Errorf("node %d: link %+v went down during the re-keying", n.id, s)
			}
		}
		if c := n.link.Counters(); c.DroppedAuth > 1 {
			t.Errorf("node %d: %d authentication failures, want only the attacker's", n.id, c.DroppedAuth)
		}
	}

	// B to none: staged none lets clear packets in at once; after activation both send clear.
	for _, n := range ns {
		if idx, err := n.link.KnetCryptoStage(nil); err != nil || idx != 1 {
			t.Fatalf("stage none: slot %d, %v; want slot 1", idx, err)
		}
	}
	exchange("none staged, B in use")
	for _, n := range ns {
		if err := n.link.KnetCryptoActivate(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range ns {
		n.link.KnetCryptoCleanup()
	}
	exchange("clear")
	if c := ns[0].link.knet.ep.Crypto(); c != nil {
		t.Errorf("node 1 still seals with %+v", c.Config())
	}
}
