package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/totem"
	"github.com/gototem/gototem/transport"
)

// bench --raw measures what the lab's network can carry without Totem, the yardstick the
// flood is reported against (issue 14: goodput as a fraction of the raw UDP capacity of the
// same namespaces, measured in the same run). It opens ring 0's sockets exactly as a node
// does (transport.Link: same ports, GSO and batched sends, same receive path) and the
// sending node multicasts datagrams of the size a full Totem MCAST has under this netmtu,
// max_messages at a time (one token visit's worth), with no flow control at all; every other
// node counts what arrives. The result line is the slowest receiver's figure.

// rawDatagram is the size of a full MCAST datagram: totempg fills netmtu − 2×45 bytes
// (srp reserves room for recovery encapsulation) and srp adds one 45-byte header.
func rawDatagram(netMTU int) int { return netMTU - srp.McastHeaderSize }

// rawResult is the line bench --raw prints.
type rawResult struct {
	node            totem.NodeID
	datagram        int
	sent, received  uint64
	seconds         float64
	datagramsPerSec float64
	mbPerSec        float64 // datagram bytes received per second, 1e6 bytes
	// cpuSeconds is the process's CPU time (user+system) over the run: with the flood's
	// cpu_s it shows what one datagram costs each side without Totem (issue 14's goodput
	// yardstick on a 2-core lab is CPU, not wire, bound).
	cpuSeconds float64
}

func (r rawResult) String() string {
	return fmt.Sprintf("raw: node=%d datagram=%d sent=%d received=%d seconds=%.3f datagrams/s=%.0f MB/s=%.2f cpu_s=%.2f",
		r.node, r.datagram, r.sent, r.received, r.seconds, r.datagramsPerSec, r.mbPerSec, r.cpuSeconds)
}

// rawLinkConfig is totem's ring-0 transport configuration for rt.
func rawLinkConfig(rt *config.Runtime) (transport.Config, error) {
	if len(rt.Rings) == 0 {
		return transport.Config{}, errors.New("the configuration gives this node no ring")
	}
	if rt.Totem.Crypto.Enabled() {
		return transport.Config{}, errors.New("--raw measures cleartext UDP: switch crypto off in the configuration")
	}
	kind := transport.UDPU
	if rt.Totem.Transport == config.TransportUDP {
		kind = transport.UDP
	}
	ring := rt.Rings[0]
	tc := transport.DefaultConfig(kind)
	tc.NodeID = srp.NodeID(rt.NodeID)
	tc.LinkNumber = uint8(ring.Link)
	tc.LocalAddr = ring.BindNetAddr
	tc.Port = int(ring.McastPort)
	tc.McastAddr = ring.McastAddr
	tc.Broadcast = ring.Broadcast
	tc.TTL = int(ring.TTL)
	tc.BlockUnlistedIPs = rt.Totem.BlockUnlistedIPs
	tc.NetMTU = rt.Totem.NetMTU
	tc.LoopInProcess = true
	tc.Members = map[srp.NodeID]netip.Addr{}
	for _, n := range rt.Nodes {
		if a := n.IPs[ring.Link]; a.IsValid() {
			tc.Members[srp.NodeID(n.NodeID)] = a
		}
	}
	return tc, nil
}

// runRawBench sends (sender) or counts (every other node) for seconds. Receivers start
// counting at the first datagram and stop idle seconds after the last one, or at the limit.
func runRawBench(rt *config.Runtime, sender bool, seconds float64, stdout, stderr io.Writer) int {
	tc, err := rawLinkConfig(rt)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: bench: --raw: %v\n", err)
		return 2
	}
	l, err := transport.Open(tc)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: bench: --raw: %v\n", err)
		return 1
	}
	defer l.Close()
	res := rawResult{node: totem.NodeID(rt.NodeID), datagram: rawDatagram(tc.NetMTU)}
	flood := time.Duration(seconds * float64(time.Second))
	if sender {
		// Receivers open their sockets at about the same time: give them a moment.
		time.Sleep(2 * time.Second)
		batch := make([]srp.Outgoing, max(rt.Totem.MaxMessages, 1))
		data := make([]byte, res.datagram)
		for i := range batch {
			batch[i] = srp.Outgoing{Dest: srp.ToAll, Type: srp.TypeMcast, Data: data}
		}
		start, cpu0 := time.Now(), cpuSeconds()
		for time.Since(start) < flood {
			if err := l.Send(batch); err != nil {
				fmt.Fprintf(stderr, "gototem: bench: --raw: send: %v\n", err)
				return 1
			}
			res.sent += uint64(len(batch))
		}
		res.seconds = time.Since(start).Seconds()
		res.cpuSeconds = cpuSeconds() - cpu0
		res.datagramsPerSec = float64(res.sent) / res.seconds
		res.mbPerSec = res.datagramsPerSec * float64(res.datagram) / 1e6
		fmt.Fprintln(stdout, res)
		return 0
	}
	cpu0 := cpuSeconds()
	var count, bytes atomic.Uint64
	var first, last atomic.Int64
	epoch := time.Now()
	var wg sync.WaitGroup
	for _, r := range l.Receivers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := l.GetBatch()
			defer l.PutBatch(b)
			for {
				n, err := r.Read(b)
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if n == 0 {
					continue
				}
				at := int64(time.Since(epoch))
				first.CompareAndSwap(0, at)
				var sz uint64
				for _, p := range b.Packets[:n] {
					sz += uint64(len(p.Data))
				}
				count.Add(uint64(n))
				bytes.Add(sz)
				last.Store(at)
			}
		}()
	}
	const idle = time.Second
	limit := time.Now().Add(flood + 30*time.Second)
	for time.Now().Before(limit) {
		time.Sleep(100 * time.Millisecond)
		if l := last.Load(); l != 0 && time.Since(epoch)-time.Duration(l) > idle {
			break
		}
	}
	l.Close()
	wg.Wait()
	res.received = count.Load()
	res.cpuSeconds = cpuSeconds() - cpu0
	if f, e := first.Load(), last.Load(); e > f && res.received > 1 {
		res.seconds = time.Duration(e - f).Seconds()
		res.datagramsPerSec = float64(res.received-1) / res.seconds
		res.mbPerSec = float64(bytes.Load()) * float64(res.received-1) / float64(res.received) / res.seconds / 1e6
	}
	fmt.Fprintln(stdout, res)
	if res.received == 0 {
		fmt.Fprintf(stderr, "gototem: bench: --raw: node %d received nothing\n", res.node)
		return 1
	}
	return 0
}
