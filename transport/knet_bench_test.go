package transport

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
)

// knetPair opens two knet Links on one loopback link (nodes 1 and 2, knet_mtu 1500 so that
// messages are cut into knet fragments as on Ethernet: 1446 data bytes clear, 1397 with
// aes256/sha256) and brings the link up on both sides. Node 1's receive loop runs in the
// background until cleanup (it answers node 2's pings); node 2's Receiver is returned
// undriven, for the caller to read. No heartbeat runs once the link is up: a link stays up
// until a Tick finds its pongs late, so the measurement sees data packets only.
func knetPair(tb testing.TB, c *knet.Crypto) (l1, l2 *Link, r2 *Receiver) {
	tb.Helper()
	start := time.Now()
	clock := func() time.Duration { return time.Since(start) }
	_, links := openLinkPair(tb, func(tn testNet, id int) Config {
		cfg := DefaultConfig(Knet)
		cfg.NodeID = srp.NodeID(id)
		cfg.NetMTU = 65536
		cfg.LocalAddr = tn.addr(id)
		cfg.LoopInProcess = true
		peer := 3 - id
		cfg.Knet = &KnetConfig{Clock: clock, Crypto: c, MTU: 1500, Links: []KnetLink{{Number: 0,
			LocalAddr: tn.addr(id), Port: tn.port, Link: knetTimers,
			Peers: map[srp.NodeID]netip.Addr{srp.NodeID(peer): tn.addr(peer)}}}}
		return cfg
	})
	l1, l2 = links[0], links[1]
	r2 = l2.Receivers()[0]
	pump := func(l *Link, stop func() bool) {
		b := l.GetBatch()
		defer l.PutBatch(b)
		for !stop() {
			if _, err := l.Receivers()[0].Read(b); err != nil {
				return // closed, or node 2's read deadline
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); pump(l1, func() bool { return false }) }()
	tb.Cleanup(func() { l1.Close(); l2.Close(); wg.Wait() })
	// Node 2's pump runs until both sides are up; a read deadline wakes it if it is parked.
	s2 := l2.knet.socks[0].conn
	pumped := make(chan struct{})
	go func() { defer close(pumped); pump(l2, func() bool { return up(l1) && up(l2) }) }()
	deadline := time.Now().Add(5 * time.Second)
	for !up(l1) || !up(l2) {
		if time.Now().After(deadline) {
			tb.Fatalf("knet link not up after 5 s: node 1 %+v, node 2 %+v", l1.KnetStatus(), l2.KnetStatus())
		}
		for _, l := range links {
			if clock() >= l.KnetNextTick() {
				l.KnetTick(clock())
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s2.SetReadDeadline(time.Now()); err != nil {
		tb.Fatal(err)
	}
	<-pumped
	if err := s2.SetReadDeadline(time.Time{}); err != nil {
		tb.Fatal(err)
	}
	return l1, l2, r2
}

func up(l *Link) bool {
	for _, s := range l.KnetStatus() {
		if s.Connected {
			return true
		}
	}
	return false
}

// TestKnetReceiveNoAllocs: once warm, the knet transport's receive path (recvmmsg, knet
// decryption, de-duplication, reassembly of a fragmented message, totem's target filter)
// and its send path (fragmentation, sealing, sendmmsg) allocate nothing per message, with
// crypto off and with aes256/sha256, at 64 B, 1 KiB and 8 KiB (6 fragments).
func TestKnetReceiveNoAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation measurement skipped in -short and under the race detector")
	}
	for _, crypto := range []bool{false, true} {
		t.Run(fmt.Sprintf("crypto=%v", crypto), func(t *testing.T) {
			var c *knet.Crypto
			if crypto {
				c = knetCrypto(t, knetKey(3))
			}
			l1, l2, r := knetPair(t, c)
			b := l2.GetBatch()
			for _, size := range []int{64, 1024, 8192} {
				m := mcastMsg(1, 1, size)
				out := []srp.Outgoing{toAll(srp.TypeMcast, m)}
				step := func() {
					if err := l1.Send(out); err != nil {
						t.Fatal(err)
					}
					n, err := r.Read(b)
					if err != nil || n != 1 || !bytes.Equal(b.Packets[0].Data, m) {
						t.Fatalf("%d B: read %d packets (%v), want the message; knet counters %+v", size, n, err, l2.KnetCounters())
					}
				}
				step() // warm-up: reassembly buffers and scratch reach their size
				before := l2.Counters().ReceivedPackets
				if a := testing.AllocsPerRun(100, step); a != 0 {
					t.Errorf("%d B: %.2f allocations per message sent and received, want 0", size, a)
				}
				if got := l2.Counters().ReceivedPackets - before; got != 101 {
					t.Errorf("%d B: received %d messages, want 101", size, got)
				}
			}
			if kc := l2.KnetCounters(); kc.Crypto+kc.Malformed+kc.Duplicate+kc.BadFragment != 0 {
				t.Errorf("node 2 dropped packets: %+v", kc)
			}
		})
	}
}

// BenchmarkKnetReceive: node 1 sends totem MCASTs of the given size through the knet
// transport (knet_mtu 1500) and node 2 reads them on one goroutine, at most window
// messages in flight. Reported: messages/s and MB/s received, allocations per received
// message (the whole process: sender, receiver and the benchmark).
func BenchmarkKnetReceive(b *testing.B) {
	for _, crypto := range []bool{false, true} {
		for _, size := range []int{64, 1024, 8192, 65000} {
			b.Run(fmt.Sprintf("crypto=%v/size=%d", crypto, size), func(b *testing.B) {
				var c *knet.Crypto
				if crypto {
					c = knetCrypto(&testing.T{}, knetKey(3))
				}
				benchKnet(b, c, size)
			})
		}
	}
}

func benchKnet(b *testing.B, c *knet.Crypto, size int) {
	const window = 64
	l1, l2, r := knetPair(b, c)
	out := []srp.Outgoing{toAll(srp.TypeMcast, mcastMsg(1, 1, size))}
	rx := countReceived(l2, r)
	rx.startTimer(b)
	sent := 0
	for sent < b.N {
		rx.waitWindow(sent, window)
		if err := l1.Send(out); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	rx.report(b, sent, size, "msg")
}
