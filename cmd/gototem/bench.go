package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gototem/gototem/totem"
)

func init() {
	register("bench", command{
		summary: "flood a process group from this node and check total order (bench -c FILE --group G --size N --seconds S ...)",
		run:     runBench,
	})
}

const benchUsage = `usage: gototem bench -c FILE [--local-addr IP]... [--state-dir DIR] --group G --size N --seconds S
                     [--rate R] [--senders all|one|none] [--nodes-expected K] [--safe] [--json] [--cpuprofile F]
Runs one Totem node from an unchanged corosync.conf, waits until the ring has K members that
all joined G, then the sending nodes flood G for S seconds (or send R msgs/s). Every node checks
that each sender's messages arrive in FIFO order with no gap, duplicate or corrupted byte, and
prints one result line. Every node of a run must be given the same --group, --size and --senders.
"one" means the member with the lowest nodeid sends. Exit status 1 on any order or content error
or when the run does not complete in time.
`

// benchHeader is the fixed part of every bench payload: kind, sender nodeid, per-sender
// sequence number and the send time in ns on the host clock (all namespaces of one machine
// share it, so cross-node latency is meaningful there).
const benchHeader = 1 + 4 + 8 + 8

const (
	benchData byte = 'D'
	benchEnd  byte = 'E' // last message of a sender; seq is the count of data messages it sent
)

// encodeBench fills p (len(p) >= benchHeader) with one bench message. The body is a function
// of (sender, seq) so a receiver can verify every byte without keeping a copy.
func encodeBench(p []byte, kind byte, sender totem.NodeID, seq uint64, sentNS int64) {
	p[0] = kind
	binary.BigEndian.PutUint32(p[1:], uint32(sender))
	binary.BigEndian.PutUint64(p[5:], seq)
	binary.BigEndian.PutUint64(p[13:], uint64(sentNS))
	fillBody(p[benchHeader:], sender, seq)
}

// The body is a byte ramp starting at bodyStart: byte i is bodyStart+i (mod 256).
func bodyStart(sender totem.NodeID, seq uint64) byte { return byte(seq) ^ byte(sender)*31 }

// The ramp repeats every 256 bytes: the loop writes the first period and copies double it,
// because a byte loop over 8 KiB bodies was a fifth of the flooding node's CPU (profile of the
// 3-node 8 KiB flood, issue 14).
func fillBody(b []byte, sender totem.NodeID, seq uint64) {
	x := bodyStart(sender, seq)
	n := min(len(b), 256)
	for i := range n {
		b[i] = x + byte(i)
	}
	for k := n; k < len(b); k *= 2 {
		copy(b[k:], b[:k])
	}
}

// newRamp returns 256+n bytes with ramp[j] = byte(j): every n-byte body is one window of it,
// so a receiver checks a body with one bytes.Equal instead of a loop over its bytes (at
// tens of thousands of KiB messages a second the loop was a tenth of a receiver's CPU).
func newRamp(n int) []byte {
	r := make([]byte, 256+n)
	for j := range r {
		r[j] = byte(j)
	}
	return r
}

// benchChecker verifies what a node delivers. It runs on the node's dispatch goroutine;
// mu only guards the read at the end.
type benchChecker struct {
	mu       sync.Mutex
	self     totem.NodeID
	size     int
	ramp     []byte       // newRamp(size), the expected bodies
	now      func() int64 // host clock in ns
	next     map[totem.NodeID]uint64
	ended    map[totem.NodeID]bool
	want     map[totem.NodeID]bool // senders whose end marker finishes the run
	done     chan struct{}
	doneOnce sync.Once

	delivered   uint64
	bytes       uint64
	orderErrors uint64
	firstNS     int64
	lastNS      int64
	order       [8]byte
	digest      uint64 // FNV-1a over (sender, seq) in delivery order: equal on nodes with one total order
	ownLat      []int64
	allLat      []int64
	firstErr    string
}

// maxLatSamples bounds the latency sample memory; later messages are not sampled.
const maxLatSamples = 1 << 21

func newBenchChecker(self totem.NodeID, size int, now func() int64) *benchChecker {
	return &benchChecker{
		self: self, size: size, now: now, ramp: newRamp(size),
		next:   map[totem.NodeID]uint64{},
		ended:  map[totem.NodeID]bool{},
		done:   make(chan struct{}),
		digest: 14695981039346656037,
	}
}

// expect sets the senders to wait for; called once before any of them sends.
func (c *benchChecker) expect(senders []totem.NodeID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want = map[totem.NodeID]bool{}
	for _, s := range senders {
		c.want[s] = true
	}
	if len(senders) == 0 {
		c.doneOnce.Do(func() { close(c.done) })
	}
}

func (c *benchChecker) fail(format string, args ...any) {
	c.orderErrors++
	if c.firstErr == "" {
		c.firstErr = fmt.Sprintf(format, args...)
	}
}

func (c *benchChecker) Deliver(m totem.Message) {
	at := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	p := m.Payload
	if len(p) < benchHeader {
		c.fail("message from node %d: %d bytes, shorter than the %d-byte bench header", m.Sender, len(p), benchHeader)
		return
	}
	kind, sender := p[0], totem.NodeID(binary.BigEndian.Uint32(p[1:]))
	seq, sent := binary.BigEndian.Uint64(p[5:]), int64(binary.BigEndian.Uint64(p[13:]))
	if sender != m.Sender.NodeID {
		c.fail("message delivered as from node %d claims sender %d", m.Sender, sender)
		return
	}
	binary.BigEndian.PutUint32(c.order[:4], uint32(sender))
	binary.BigEndian.PutUint32(c.order[4:], uint32(seq))
	for _, b := range c.order {
		c.digest = (c.digest ^ uint64(b)) * 1099511628211
	}
	switch kind {
	case benchData:
		if c.ended[sender] {
			c.fail("node %d: message seq %d after its end marker", sender, seq)
			return
		}
		if want := c.next[sender]; seq != want {
			c.fail("node %d: seq %d delivered, expected %d (gap or duplicate)", sender, seq, want)
		}
		c.next[sender] = seq + 1
		if len(p) != c.size {
			c.fail("node %d seq %d: %d bytes, expected %d", sender, seq, len(p), c.size)
		} else if !bodyOK(c.ramp, p[benchHeader:], sender, seq) {
			c.fail("node %d seq %d: payload corrupted", sender, seq)
		}
		if c.delivered == 0 {
			c.firstNS = at
		}
		c.delivered++
		c.bytes += uint64(len(p))
		c.lastNS = at
		if len(c.allLat) < maxLatSamples {
			c.allLat = append(c.allLat, at-sent)
		}
		if sender == c.self && len(c.ownLat) < maxLatSamples {
			c.ownLat = append(c.ownLat, at-sent)
		}
	case benchEnd:
		if c.next[sender] != seq {
			c.fail("node %d: end marker says %d messages, %d delivered", sender, seq, c.next[sender])
		}
		c.ended[sender] = true
		if len(c.want) > 0 {
			all := true
			for s := range c.want {
				all = all && c.ended[s]
			}
			if all {
				c.doneOnce.Do(func() { close(c.done) })
			}
		}
	default:
		c.fail("node %d: unknown bench message kind %q", sender, kind)
	}
}

// bodyOK checks b against its ramp; ramp must be newRamp(n) with n >= len(b).
func bodyOK(ramp, b []byte, sender totem.NodeID, seq uint64) bool {
	x := int(bodyStart(sender, seq))
	return bytes.Equal(b, ramp[x:x+len(b)])
}

func (c *benchChecker) ConfigChange(totem.GroupChange) {}

// percentile returns the q-quantile (0..1) of samples in ms, sorting samples in place.
func percentile(samples []int64, q float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	slices.Sort(samples)
	i := int(q * float64(len(samples)-1))
	return float64(samples[i]) / 1e6
}

// benchResult is the one line a bench run prints.
type benchResult struct {
	NodeID      uint32  `json:"nodeid"`
	Size        int     `json:"size"`
	Guarantee   string  `json:"guarantee"` // agreed or safe: what the latencies measure
	Sent        uint64  `json:"sent"`
	Delivered   uint64  `json:"delivered"`
	Seconds     float64 `json:"seconds"`
	MsgsPerSec  float64 `json:"msgs_per_s"`
	MBPerSec    float64 `json:"mb_per_s"`
	OrderErrors uint64  `json:"order_errors"`
	CPUSeconds  float64 `json:"cpu_s"`
	OwnP50ms    float64 `json:"own_p50_ms"`
	OwnP99ms    float64 `json:"own_p99_ms"`
	AllP50ms    float64 `json:"all_p50_ms"`
	AllP99ms    float64 `json:"all_p99_ms"`
	Digest      string  `json:"digest"`
	Error       string  `json:"error,omitempty"`
}

func (c *benchChecker) result(self totem.NodeID, sent uint64, cpu float64) benchResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := benchResult{NodeID: uint32(self), Size: c.size, Sent: sent, Delivered: c.delivered,
		OrderErrors: c.orderErrors, CPUSeconds: cpu, Error: c.firstErr,
		Digest: fmt.Sprintf("%016x", c.digest)}
	if c.delivered > 1 && c.lastNS > c.firstNS {
		r.Seconds = float64(c.lastNS-c.firstNS) / 1e9
		r.MsgsPerSec = float64(c.delivered-1) / r.Seconds
		r.MBPerSec = r.MsgsPerSec * float64(c.size) / 1e6
	}
	r.OwnP50ms, r.OwnP99ms = percentile(c.ownLat, 0.50), percentile(c.ownLat, 0.99)
	r.AllP50ms, r.AllP99ms = percentile(c.allLat, 0.50), percentile(c.allLat, 0.99)
	return r
}

func (r benchResult) String() string {
	s := fmt.Sprintf("bench: node=%d size=%d guarantee=%s sent=%d delivered=%d seconds=%.3f msgs/s=%.0f MB/s=%.2f order_errors=%d cpu_s=%.2f own_p50_ms=%.3f own_p99_ms=%.3f all_p50_ms=%.3f all_p99_ms=%.3f digest=%s",
		r.NodeID, r.Size, r.Guarantee, r.Sent, r.Delivered, r.Seconds, r.MsgsPerSec, r.MBPerSec, r.OrderErrors, r.CPUSeconds,
		r.OwnP50ms, r.OwnP99ms, r.AllP50ms, r.AllP99ms, r.Digest)
	if r.Error != "" {
		s += fmt.Sprintf(" error=%q", r.Error)
	}
	return s
}

// cpuSeconds is this process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// pickSenders applies --senders to the group's members.
func pickSenders(mode string, members []totem.NodeID) []totem.NodeID {
	switch mode {
	case "all":
		return members
	case "one":
		if len(members) == 0 {
			return nil
		}
		return members[:1]
	}
	return nil
}

func groupNodes(ps []totem.Process) []totem.NodeID {
	var ids []totem.NodeID
	for _, p := range ps {
		if !slices.Contains(ids, p.NodeID) {
			ids = append(ids, p.NodeID)
		}
	}
	slices.Sort(ids)
	return ids
}

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage) }
	file := fs.String("c", "/etc/corosync/corosync.conf", "corosync.conf")
	stateDir := fs.String("state-dir", "", "state directory (overrides system.state_dir)")
	group := fs.String("group", "bench", "process group")
	size := fs.Int("size", 1024, "payload bytes")
	seconds := fs.Float64("seconds", 10, "flood duration")
	rate := fs.Float64("rate", 0, "messages per second per sender (0: flood)")
	senders := fs.String("senders", "one", "all, one or none")
	want := fs.Int("nodes-expected", 0, "ring members to wait for (default: nodelist size)")
	safe := fs.Bool("safe", false, "safe delivery")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the flood to this file")
	// Hidden: the lab's raw UDP capacity through the same sockets (benchraw.go).
	raw := fs.Bool("raw", false, "measure raw UDP capacity instead (no Totem)")
	var addrs addrList
	fs.Var(&addrs, "local-addr", "this node's address (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "gototem: bench: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() != 0:
		fmt.Fprint(stderr, benchUsage)
		return 2
	case *size < benchHeader || *size > 1<<20:
		return usageErr("--size must be between %d and %d bytes, not %d", benchHeader, 1<<20, *size)
	case *seconds <= 0 || *seconds > 3600:
		return usageErr("--seconds must be in (0, 3600], not %g", *seconds)
	case *rate < 0:
		return usageErr("--rate must not be negative")
	case *senders != "all" && *senders != "one" && *senders != "none":
		return usageErr("--senders must be all, one or none, not %q", *senders)
	}
	if err := checkGroup("bench", *group); err != nil {
		return usageErr("%v", err)
	}
	rt, err := loadRuntime(*file, addrs, true, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: bench: %s: configuration not usable\n", *file)
		return 1
	}
	protocolThread, threadRelease := schedHook(rt, stderr, "bench")
	if *want <= 0 {
		*want = len(rt.Nodes)
	}
	self := totem.NodeID(rt.NodeID)
	if *raw {
		lowest := self
		for _, n := range rt.Nodes {
			lowest = min(lowest, totem.NodeID(n.NodeID))
		}
		return runRawBench(rt, *senders == "one" && self == lowest, *seconds, stdout, stderr)
	}
	gu := totem.Agreed
	if *safe {
		gu = totem.Safe
	}
	epoch := time.Now()
	hostNS := func() int64 { return epoch.UnixNano() + int64(time.Since(epoch)) }

	var ringMu sync.Mutex
	var ring []totem.NodeID
	node, err := totem.New(totem.Options{Config: totem.FromRuntime(rt), StateDir: *stateDir, ProtocolThread: protocolThread, ProtocolThreadRelease: threadRelease,
		OnMembership: func(m totem.Membership) {
			ringMu.Lock()
			ring = slices.Clone(m.Members)
			ringMu.Unlock()
		}})
	if err != nil {
		fmt.Fprintf(stderr, "gototem: bench: %v\n", err)
		return 1
	}
	setup := 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), setup)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "gototem: bench: starting node %d: %v\n", self, err)
		return 1
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = node.Stop(sctx)
	}()
	chk := newBenchChecker(self, *size, hostNS)
	g, err := node.Join(*group, chk)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: bench: join %s: %v\n", *group, err)
		return 1
	}
	// Wait for K ring members that all joined the group.
	fmt.Fprintf(stderr, "gototem: bench: node %d: waiting for %d ring members in group %s\n", self, *want, *group)
	tk := newTicker(stderr)
	var members []totem.NodeID
	for {
		ringMu.Lock()
		n := len(ring)
		ringMu.Unlock()
		members = groupNodes(g.Members())
		if n >= *want && len(members) >= *want {
			break
		}
		tk.maybe("gototem: bench: node %d: ring has %d members, group %s %d; waiting for %d", self, n, *group, len(members), *want)
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "gototem: bench: node %d: ring has %d members, group %s %d, after %v; want %d\n",
				self, n, *group, len(members), setup, *want)
			return 1
		case <-time.After(20 * time.Millisecond):
		}
	}
	sendFrom := pickSenders(*senders, members)
	chk.expect(sendFrom)

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "gototem: bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "gototem: bench: cpu profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuSeconds()
	flood := time.Duration(*seconds * float64(time.Second))
	// The run must finish: the flood, then time for the ring to drain and deliver end markers.
	runCtx, runCancel := context.WithTimeout(context.Background(), flood+60*time.Second)
	defer runCancel()
	var sent uint64
	var sendErr error
	fmt.Fprintf(stderr, "gototem: bench: node %d: %d members ready; senders %v, %d-byte messages for %v\n", self, len(members), sendFrom, *size, flood)
	stopProgress := make(chan struct{})
	start := time.Now()
	go every(stderr, stopProgress, func() string {
		chk.mu.Lock()
		n := chk.delivered
		chk.mu.Unlock()
		return fmt.Sprintf("gototem: bench: node %d: %v, %d messages delivered", self, time.Since(start).Round(time.Second), n)
	})
	defer close(stopProgress)
	if slices.Contains(sendFrom, self) {
		sent, sendErr = benchSend(runCtx, g, self, *size, flood, *rate, gu, hostNS)
	}
	code := 0
	if sendErr != nil {
		fmt.Fprintf(stderr, "gototem: bench: node %d: send: %v\n", self, sendErr)
		code = 1
	}
	select {
	case <-chk.done:
	case <-runCtx.Done():
		fmt.Fprintf(stderr, "gototem: bench: node %d: not every sender's end marker arrived in time\n", self)
		code = 1
	}
	res := chk.result(self, sent, cpuSeconds()-cpu0)
	if os.Getenv("GOTOTEM_BENCH_COUNTERS") == "1" {
		// Diagnostics for the bench's tuning: the ring's own counters after the run.
		st := node.Status()
		fmt.Fprintf(stderr, "gototem: bench: node %d: srp counters %+v net %+v\n", self, st.SRP, st.Net)
	}
	res.Guarantee = gu.String()
	if res.OrderErrors > 0 {
		code = 1
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintln(stdout, res)
	}
	// Leaving at once would turn the others' last deliveries into a membership change under
	// load; a short linger lets the ring settle first.
	time.Sleep(time.Second)
	return code
}

// benchSend floods (rate 0) or paces messages for d, then sends the end marker.
func benchSend(ctx context.Context, g *totem.Group, self totem.NodeID, size int, d time.Duration, rate float64,
	gu totem.Guarantee, hostNS func() int64) (uint64, error) {
	// One clock read per message stamps it and checks the deadline (two were 5% of the
	// flooding node's CPU at 1 KiB: the VM's clock read is not cheap).
	end := hostNS() + int64(d)
	var seq uint64
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	next := time.Now()
	p := make([]byte, size)
	for {
		if interval > 0 {
			if w := time.Until(next); w > 0 {
				time.Sleep(w)
			}
			next = next.Add(interval)
		}
		ts := hostNS()
		if ts >= end {
			break
		}
		// One buffer for every message: Group.Send copies the payload before it returns.
		encodeBench(p, benchData, self, seq, ts)
		if err := g.Send(ctx, p, gu); err != nil {
			return seq, fmt.Errorf("message %d: %w", seq, err)
		}
		seq++
	}
	p = p[:benchHeader]
	encodeBench(p, benchEnd, self, seq, hostNS())
	if err := g.Send(ctx, p, gu); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return seq, fmt.Errorf("end marker: ring did not take it in time: %w", err)
		}
		return seq, fmt.Errorf("end marker: %w", err)
	}
	return seq, nil
}
