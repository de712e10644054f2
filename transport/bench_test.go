package transport

import (
	"fmt"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// pairFor opens two udpu Links (1 → 2) without the test reader goroutines, so a test or
// benchmark can drive node 2's Receiver itself.
func pairFor(tb testing.TB, batch int, crypto bool) (*Link, *Link, *Receiver) {
	tb.Helper()
	_, links := openLinkPair(tb, func(tn testNet, id int) Config {
		c := cfgFor(UDPU, tn, id, members(tn, 1, 2))
		c.BatchSize = batch
		if crypto {
			c = withCrypto(c, testKey(7), uint64(id))
		}
		return c
	})
	tb.Cleanup(func() { links[0].Close(); links[1].Close() })
	for _, r := range links[1].Receivers() {
		if r.Name() == "udpu" {
			return links[0], links[1], r
		}
	}
	tb.Fatal("no udpu receiver on node 2's link")
	return nil, nil, nil
}

// TestReceiveDoesNotAllocate proves the steady-state receive path (recvmmsg, filtering,
// decryption) and the send path allocate nothing per packet, batched and unbatched, with
// and without encryption.
func TestReceiveDoesNotAllocate(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation measurement skipped in -short and under the race detector")
	}
	for _, batch := range []int{1, DefaultBatchSize} {
		for _, crypto := range []bool{false, true} {
			t.Run(fmt.Sprintf("batch=%d/crypto=%v", batch, crypto), func(t *testing.T) {
				l1, l2, r := pairFor(t, batch, crypto)
				b := l2.GetBatch()
				out := []srp.Outgoing{toNode(2, mcastMsg(1, 1, 1000))}
				step := func() {
					if err := l1.Send(out); err != nil {
						t.Fatal(err)
					}
					if n, err := r.Read(b); err != nil || n != 1 {
						t.Fatalf("read %d packets: %v", n, err)
					}
				}
				step() // warm-up: address cache, slices reach their size
				allocs := testing.AllocsPerRun(200, step)
				if allocs != 0 {
					t.Fatalf("%.2f allocations per sent+received packet, want 0", allocs)
				}
				if c := l2.Counters(); c.ReceivedPackets != 202 {
					t.Fatalf("received %d, want 202", c.ReceivedPackets)
				}
			})
		}
	}
}

// BenchmarkLink measures raw transport throughput between two udpu Links on loopback:
// node 1 sends unicast datagrams of the given size to node 2, which reads them on one
// goroutine. The sender keeps at most `window` datagrams in flight so the figure is the
// sustainable rate rather than a count of kernel drops. Reported: sent and received
// packets/s, received MB/s (of totem payload), loss, and allocations per received packet.
func BenchmarkLink(b *testing.B) {
	for _, size := range []int{64, 1024, 1400} {
		for _, batch := range []int{1, DefaultBatchSize} {
			for _, crypto := range []bool{false, true} {
				name := fmt.Sprintf("size=%d/batch=%d/crypto=%v", size, batch, crypto)
				b.Run(name, func(b *testing.B) { benchLink(b, size, batch, crypto) })
			}
		}
	}
}

func benchLink(b *testing.B, size, batch int, crypto bool) {
	const window = 256
	l1, l2, r := pairFor(b, batch, crypto)
	payload := make([]byte, size)
	copy(payload, mcastMsg(1, 1, max(0, size-srp.McastHeaderSize)))
	out := make([]srp.Outgoing, batch)
	for i := range out {
		out[i] = toNode(2, payload)
	}
	rx := countReceived(l2, r)
	rx.startTimer(b)
	sent := 0
	for sent < b.N {
		k := min(batch, b.N-sent)
		rx.waitWindow(sent, window) // flow control: the receiver catches up
		if err := l1.Send(out[:k]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	b.ReportMetric(float64(sent)/time.Since(rx.start).Seconds(), "sent-pkt/s")
	rx.report(b, sent, size, "pkt")
}
