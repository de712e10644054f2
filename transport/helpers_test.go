package transport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gototem/gototem/internal/testenv"
	"github.com/gototem/gototem/srp"
)

// Helpers for tests over real loopback sockets. Each test draws its own port and 127.x.y.z
// addresses so that tests of other packages running on the same host do not collide.

const waitTimeout = 3 * time.Second

// got is one packet as a test node received it (copied out of the Batch).
type got struct {
	recv  string
	data  []byte
	from  netip.AddrPort
	local bool
}

// node is a Link with one reader goroutine per Receiver feeding ch, as the integrator does.
type node struct {
	id   srp.NodeID
	addr netip.Addr
	link *Link
	ch   chan got
	wg   sync.WaitGroup
}

func startNode(t *testing.T, cfg Config) *node {
	t.Helper()
	l, err := Open(cfg)
	if err != nil {
		t.Fatalf("open node %d: %v", cfg.NodeID, err)
	}
	n := &node{id: cfg.NodeID, addr: cfg.LocalAddr, link: l, ch: make(chan got, 1024)}
	for _, r := range l.Receivers() {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			for range 100000 { // bounded: a test never receives this many
				b := l.GetBatch()
				k, err := r.Read(b)
				if err != nil {
					l.PutBatch(b)
					return
				}
				for _, p := range b.Packets[:k] {
					n.ch <- got{recv: r.Name(), data: append([]byte(nil), p.Data...), from: p.From, local: p.Local}
				}
				l.PutBatch(b)
			}
		}()
	}
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.link.Close()
	n.wg.Wait()
}

// expect waits for exactly want packets and then checks that nothing more arrives for a
// short grace period (duplicates would show up there).
func (n *node) expect(t *testing.T, want int) []got {
	t.Helper()
	var out []got
	deadline := time.After(waitTimeout)
	for len(out) < want {
		select {
		case g := <-n.ch:
			out = append(out, g)
		case <-deadline:
			t.Fatalf("node %d: received %d packets, want %d (counters %+v)", n.id, len(out), want, n.link.Counters())
		}
	}
	select {
	case g := <-n.ch:
		t.Fatalf("node %d: unexpected extra packet on %s from %v: % x", n.id, g.recv, g.from, g.data)
	case <-time.After(100 * time.Millisecond):
	}
	return out
}

// waitCounters polls until cond holds on n's counters, or fails.
func waitCounters(t *testing.T, n *node, what string, cond func(Counters) bool) Counters {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		c := n.link.Counters()
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: timed out waiting for %s; counters %+v", n.id, what, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testNet picks a port pair and a 127.a.b.0/24 block for one test.
type testNet struct {
	port  int
	base  [3]byte
	group netip.Addr
}

func newTestNet(t testing.TB) testNet {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x7070))
	tn := testNet{port: 20000 + 2*r.IntN(20000), base: [3]byte{127, byte(1 + r.IntN(250)), byte(1 + r.IntN(250))}}
	tn.group = netip.AddrFrom4([4]byte{239, 192, byte(r.IntN(256)), byte(1 + r.IntN(254))})
	t.Logf("test network: 127.%d.%d.0/24 port %d group %s", tn.base[1], tn.base[2], tn.port, tn.group)
	return tn
}

func (tn testNet) addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{tn.base[0], tn.base[1], tn.base[2], byte(i)})
}

// openRetrying opens nodes and, when a port is already taken by someone else on the host,
// retries the whole set on a new test network (bounded).
func openRetrying(t *testing.T, build func(tn testNet) []Config) ([]*node, testNet) {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		tn := newTestNet(t)
		cfgs := build(tn)
		var links []*Link
		var err error
		for _, c := range cfgs {
			var l *Link
			if l, err = Open(c); err != nil {
				break
			}
			links = append(links, l)
		}
		for _, l := range links {
			l.Close()
		}
		if err == nil {
			nodes := make([]*node, len(cfgs))
			for i, c := range cfgs {
				nodes[i] = startNode(t, c)
			}
			return nodes, tn
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("open: %v", err)
		}
	}
	t.Fatal("no free port after 5 attempts")
	return nil, testNet{}
}

// Datagram builders using the srp codec, so the tests move real totem messages.

func joinMsg(from srp.NodeID, procs ...srp.NodeID) []byte {
	j := srp.Join{Header: srp.Header{NodeID: from}, SystemFrom: from, RingSeq: 8, ProcList: procs}
	return j.AppendEncode(nil)
}

func tokenMsg(from srp.NodeID, seq uint32) []byte {
	tok := srp.ORFToken{Header: srp.Header{NodeID: from}, Seq: seq, TokenSeq: seq, ARU: seq,
		RingID: srp.RingID{Rep: 1, Seq: 12}}
	return tok.AppendEncode(nil)
}

func mcastMsg(from srp.NodeID, seq uint32, payloadLen int) []byte {
	p := make([]byte, payloadLen)
	for i := range p {
		p[i] = byte(i)
	}
	m := srp.Mcast{Header: srp.Header{NodeID: from, Encapsulated: srp.NotEncapsulated}, SystemFrom: from,
		Seq: seq, RingID: srp.RingID{Rep: 1, Seq: 12}, Payload: p}
	return m.AppendEncode(nil)
}

func toAll(t srp.MessageType, data []byte) srp.Outgoing {
	return srp.Outgoing{Dest: srp.ToAll, Type: t, Data: data}
}

func toNode(id srp.NodeID, data []byte) srp.Outgoing {
	return srp.Outgoing{Dest: srp.ToNode, To: id, Type: srp.TypeORFToken, Data: data}
}

// rawSocket is a plain UDP socket standing in for a foreign or hostile peer.
func rawSocket(t *testing.T, at netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(at))
	testenv.Need(t, "a raw peer socket on "+at.String(), err)
	t.Cleanup(func() { c.Close() })
	return c
}

func readRaw(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	buf := make([]byte, bufSize)
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("raw peer read: %v", err)
	}
	return buf[:n]
}

func members(tn testNet, ids ...int) map[srp.NodeID]netip.Addr {
	m := map[srp.NodeID]netip.Addr{}
	for _, id := range ids {
		m[srp.NodeID(id)] = tn.addr(id)
	}
	return m
}

func cfgFor(kind Kind, tn testNet, id int, m map[srp.NodeID]netip.Addr) Config {
	c := DefaultConfig(kind)
	c.NodeID = srp.NodeID(id)
	c.LocalAddr = tn.addr(id)
	c.Port = tn.port
	c.McastAddr = tn.group
	c.Members = m
	return c
}

func describe(gs []got) string {
	s := ""
	for _, g := range gs {
		s += fmt.Sprintf("[%s from %v local=%v %d B] ", g.recv, g.from, g.local, len(g.data))
	}
	return s
}

// rxCounter reads a receiver in its own goroutine and counts what arrives, for the flood
// benchmarks: the sender keeps at most a window of datagrams or messages unread.
type rxCounter struct {
	received atomic.Int64
	progress chan struct{}
	done     chan struct{}
	stall    *time.Timer // one timer reused, so the harness adds no allocations
	link     *Link       // the receiving link, closed by report
	start    time.Time   // set by startTimer
	mallocs  uint64      // the process's allocation count at startTimer
}

func countReceived(l *Link, r *Receiver) *rxCounter {
	c := &rxCounter{progress: make(chan struct{}, 1), done: make(chan struct{}), stall: time.NewTimer(time.Hour), link: l}
	go func() {
		defer close(c.done)
		bt := l.GetBatch()
		for {
			n, err := r.Read(bt)
			if err != nil {
				return
			}
			c.received.Add(int64(n))
			select {
			case c.progress <- struct{}{}:
			default:
			}
		}
	}()
	return c
}

// waitWindow sleeps while more than window of sent are unread, each wait bounded: a lost
// datagram must not stall the benchmark, it shows up as loss instead.
func (c *rxCounter) waitWindow(sent, window int) {
	for int64(sent)-c.received.Load() > int64(window) {
		c.stall.Reset(50 * time.Millisecond)
		select {
		case <-c.progress:
			continue
		case <-c.stall.C:
		}
		break
	}
}

// startTimer starts what report measures: the benchmark's timer, the wall clock and the
// allocation count.
func (c *rxCounter) startTimer(b *testing.B) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.mallocs = ms.Mallocs
	b.ResetTimer()
	c.start = time.Now()
}

// report ends a flood benchmark that sent sent units (unit: "pkt" datagrams, "msg"
// messages) of size bytes since startTimer: it waits for them (drain), closes the receiving
// link and reports the received rate, the goodput, the loss and the allocations per received
// unit, the whole process's (sender, receiver and harness) divided by what arrived.
func (c *rxCounter) report(b *testing.B, sent, size int, unit string) {
	c.drain(sent)
	elapsed := time.Since(c.start)
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.link.Close()
	<-c.done
	got := c.received.Load()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "recv-"+unit+"/s")
	b.ReportMetric(float64(got)*float64(size)/elapsed.Seconds()/1e6, "recv-MB/s")
	b.ReportMetric(100*float64(int64(sent)-got)/float64(sent), "loss-%")
	if got > 0 {
		b.ReportMetric(float64(ms.Mallocs-c.mallocs)/float64(got), "allocs/"+unit)
	}
}

// drain waits up to a second for every one of sent to arrive.
func (c *rxCounter) drain(sent int) {
	deadline := time.Now().Add(time.Second)
	for c.received.Load() < int64(sent) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
}

// openLinkPair opens nodes 1 and 2's links with cfg on a fresh test network, drawing another
// network (up to 5) when the port is taken; the caller closes them.
func openLinkPair(tb testing.TB, cfg func(tn testNet, id int) Config) (testNet, []*Link) {
	tb.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		tn := newTestNet(tb)
		var links []*Link
		var err error
		for id := 1; id <= 2; id++ {
			var l *Link
			if l, err = Open(cfg(tn, id)); err != nil {
				break
			}
			links = append(links, l)
		}
		if err == nil {
			return tn, links
		}
		for _, l := range links {
			l.Close()
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			tb.Fatal(err)
		}
	}
	tb.Fatal("no free port after 5 attempts")
	return testNet{}, nil
}
