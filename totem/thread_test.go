package totem

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gototem/gototem/config"
)

// The receive loop's thread policy (package doc, "Protocol threads"), window by window: a
// flood gives the protocol thread back, light load takes one again, and in between nothing
// moves (the two rates are a hysteresis band, so a rate near one edge cannot flap).
func TestRecvThreadPolicy(t *testing.T) {
	type window struct {
		bytes      int // received over one recvWindow
		wantLocked bool
	}
	perWindow := func(rate int) int { return int(int64(rate) * int64(recvWindow) / int64(time.Second)) }
	// just inside the band, clear of its edges (each window arrives in ten batches, rounded down)
	bandLow, bandHigh := recvRetakeBytes*11/10, recvReleaseBytes*9/10
	for _, tc := range []struct {
		name    string
		windows []window
		// hooks: how many times ProtocolThread and ProtocolThreadRelease ran after the start
		retakes, releases int
	}{
		{"light load keeps the thread", []window{{perWindow(300 << 10), true}, {perWindow(bandLow), true}, {perWindow(bandHigh), true}}, 0, 0},
		{"a flood gives it back", []window{{perWindow(2 * recvReleaseBytes), false}, {perWindow(3 * recvReleaseBytes), false}}, 0, 1},
		{"inside the band nothing moves", []window{{perWindow(2 * recvReleaseBytes), false}, {perWindow(bandHigh), false}, {perWindow(bandLow), false}}, 0, 1},
		{"quiet again takes a thread", []window{{perWindow(2 * recvReleaseBytes), false}, {perWindow(recvRetakeBytes / 2), true}, {0, true}}, 1, 1},
		{"flood, quiet, flood", []window{{perWindow(2 * recvReleaseBytes), false}, {0, true}, {perWindow(2 * recvReleaseBytes), false}}, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var takes, releases atomic.Int32
			n := &Node{log: slog.New(slog.DiscardHandler), opts: Options{
				ProtocolThread:        func() error { takes.Add(1); return nil },
				ProtocolThreadRelease: func() { releases.Add(1) },
			}}
			done := make(chan error)
			go func() {
				g := recvThread{locked: n.protocolThread("receive"), release: true}
				now := time.Duration(0)
				for i, w := range tc.windows {
					// the window's bytes in ten batches, the last one closing the window
					for range 10 {
						now += recvWindow / 10
						g.note(n, now, w.bytes/10)
					}
					if g.locked != w.wantLocked {
						done <- fmt.Errorf("window %d (%d bytes): locked %v, want %v", i, w.bytes, g.locked, w.wantLocked)
						return
					}
				}
				done <- nil
			}()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := int(takes.Load()) - 1; got != tc.retakes {
				t.Errorf("ProtocolThread ran %d times after the start, want %d", got, tc.retakes)
			}
			if got := int(releases.Load()); got != tc.releases {
				t.Errorf("ProtocolThreadRelease ran %d times, want %d", got, tc.releases)
			}
			if got := int(n.threadReleases.Load()); got != tc.releases {
				t.Errorf("ThreadReleases %d, want %d", got, tc.releases)
			}
		})
	}
	// Without a release hook the loop never gives its thread back.
	n := &Node{log: slog.New(slog.DiscardHandler), opts: Options{ProtocolThread: func() error { return nil }}}
	g := recvThread{locked: true, release: n.opts.ProtocolThreadRelease != nil}
	for i := range 20 {
		g.note(n, time.Duration(i+1)*recvWindow, 10*perWindow(recvReleaseBytes))
	}
	if !g.locked || n.threadReleases.Load() != 0 {
		t.Fatalf("no ProtocolThreadRelease: locked %v, releases %d", g.locked, n.threadReleases.Load())
	}
}

// Two nodes on real sockets with both thread hooks and inline delivery: node 2's receive
// loop gives its thread back while node 1 floods it, the flood is delivered whole and in
// order on both nodes (inline delivery keeps the dispatcher's order), and once the ring is
// quiet again the loop takes a protocol thread back.
func TestReceiveLoopReleasesThreadUnderFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a flood of 40k messages over loopback")
	}
	var takes, releases [2]atomic.Int32
	var ms []*member
	base := netip.AddrFrom4([4]byte{127, byte(10 + rand.IntN(200)), byte(rand.IntN(250)), 0})
	port := 20000 + rand.IntN(20000)
	for i := 1; i <= 2; i++ {
		cfg, _, err := config.Parse("corosync.conf", strings.NewReader(clusterConf("udpu", 2, base, port)))
		if err != nil {
			t.Fatal(err)
		}
		rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(netip.AddrFrom4([4]byte{127, base.As4()[1], base.As4()[2], byte(i)}))})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, startMemberWith(t, Options{
			Config:                FromRuntime(rt),
			ProtocolThread:        func() error { takes[i-1].Add(1); return nil },
			ProtocolThreadRelease: func() { releases[i-1].Add(1) },
			InlineDelivery:        true,
		}))
	}
	joinAll(t, ms)
	startTakes := takes[1].Load()
	const total = 40000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	payload := make([]byte, 1000) // about one message per datagram: a high packet rate
	for i := range total {
		copy(payload, fmt.Sprintf("%08d", i))
		if err := ms[0].group.Send(ctx, payload, Agreed); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	waitFor(t, 30*time.Second, "the flood delivered on both nodes", func() bool {
		return len(ms[0].rec.messages()) == total && len(ms[1].rec.messages()) == total
	})
	for j, m := range ms {
		for i, got := range m.rec.messages() {
			// the recorder's "sender:payload", the payload starting with its number
			if want := fmt.Sprintf("}:%08d", i); !strings.Contains(got, want) || !strings.HasPrefix(got, "{1 ") {
				t.Fatalf("node %d message %d: %.24q, want node 1's number %d", j+1, i, got, i)
			}
		}
	}
	if r := ms[1].node.Status().ThreadReleases; r == 0 || releases[1].Load() == 0 {
		t.Fatalf("node 2 never gave its receive thread back under the flood (ThreadReleases %d, hook %d)", r, releases[1].Load())
	}
	// Quiet: the next windows see only the ring's own traffic, and the loop takes a thread.
	waitFor(t, 5*time.Second, "node 2's receive loop on a protocol thread again", func() bool {
		return takes[1].Load() > startTakes
	})
	t.Logf("node 2: %d releases, %d protocol threads taken since the ring formed", releases[1].Load(), takes[1].Load()-startTakes)
}
