package totem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/rrp"
	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
	"github.com/gototem/gototem/transport"
)

// Node is a gototem ring member running on real sockets and the wall clock.
type Node struct {
	opts           Options
	threadWarned   atomic.Bool   // Options.ProtocolThread failed once (logged)
	threadReleases atomic.Uint64 // receive loops that gave their protocol thread back (recvThread)
	rt             *config.Runtime
	log            *slog.Logger
	self           srp.NodeID
	st             *stack.Stack
	links          []*transport.Link
	epoch          time.Time
	pid            uint32

	stopCh chan stopRequest
	done   chan struct{}
	wg     sync.WaitGroup

	// finished is closed once every goroutine of the node has returned.
	finished chan struct{}

	stateMu sync.Mutex
	state   nodeState // guarded by stateMu: started / stopped

	// mu serializes the protocol stack: whichever goroutine has an input (a receive goroutine
	// with a batch, an API caller, the timer goroutine) takes mu and runs the stack itself.
	// Handing every input to one owner goroutine instead cost two goroutine wake-ups per
	// datagram batch and per Send, and those wake-ups, not the protocol work, bounded how
	// fast the token could go round. Everything below is guarded by mu.
	mu    sync.Mutex
	live  bool // the stack is running: set by Start, cleared by shutdown
	timer *time.Timer
	armed time.Duration // the NextTick the timer is armed for; 0: disarmed
	out   []srp.Outgoing
	// accelerated: the ring runs srp's accelerated ring (receiveLoop passes a token on before
	// the rest of its batch).
	accelerated bool
	// wakeLater: the flush runs for a receive goroutine whose Receiver calls disp.wake when
	// its socket is drained, so the dispatcher's wake-up can wait for that.
	wakeLater bool
	// self holds this node's own multicasts, to be fed back into the stack as if received
	// (the transport runs with LoopInProcess).
	own     []stack.Datagram
	groups  map[string]*Group
	members map[srp.NodeID]*memberInfo
	current srp.Configuration
	// changed is closed (and replaced) when a group's membership changes, for WaitMembers.
	changed chan struct{}
	disp    *dispatcher
	// room is closed (and replaced) when a Send that found the ring busy may retry.
	// roomWanted says some Send waits on it. Waiters are woken only once half of the
	// stack's send limit is free again: a flood then refills the queue in bursts instead of
	// retrying, and being refused, on every flush.
	room       chan struct{}
	roomWanted bool
	// Health (health.go): when the node last entered or left OPERATIONAL, and how long
	// service synchronization took after the last regular configuration.
	operational         bool
	phaseSince          time.Duration
	syncing             bool
	syncStart, lastSync time.Duration
	healthLog           healthLogger
	// qdevReg receives the outcome of the pending quorum-device registration (qdevice.go).
	qdevReg chan quorum.RegistrationResult
	cfgWait cfgWait // the pending CfgReload (cfg.go)
	// knetPhases are this node's own knet crypto reconfiguration phases delivered in the
	// current flush, taken after its Advance (knet.go).
	knetPhases []int
}

type nodeState uint8

const (
	stateNew nodeState = iota
	stateRunning
	stateStopped
)

type memberInfo struct {
	joinCount uint32
	member    bool
	left      bool
}

type stopRequest struct {
	done chan struct{}
}

// New prepares a node. It checks the configuration and opens nothing: Start does.
func New(opts Options) (*Node, error) {
	rt, err := opts.Config.Runtime()
	if err != nil {
		return nil, err
	}
	if opts.StateDir == "" && opts.Config.file == nil {
		return nil, errors.New("totem: Options.StateDir is required with a Config built in code (where the node keeps its ring sequence across restarts)")
	}
	if rt.NodeID == 0 {
		return nil, errors.New("totem: the local node has no nodeid (is this machine in the nodelist?)")
	}
	switch rt.Totem.Transport {
	case config.TransportUDP, config.TransportUDPU, config.TransportKnet:
	default:
		return nil, fmt.Errorf("totem: transport %q is not supported by gototem (use knet, udp or udpu)", rt.Totem.Transport)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = slog.New(newThrottle(log.Handler()))
	n := &Node{
		opts:     opts,
		rt:       rt,
		log:      log,
		self:     srp.NodeID(rt.NodeID),
		stopCh:   make(chan stopRequest),
		finished: make(chan struct{}),
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
		room:     make(chan struct{}),
		groups:   map[string]*Group{},
		members:  map[srp.NodeID]*memberInfo{},
		pid:      uint32(os.Getpid()),
	}
	return n, nil
}

// stateDir is where the ring id and ev_tracking files live.
func (n *Node) stateDir() string {
	if n.opts.StateDir != "" {
		return n.opts.StateDir
	}
	return n.rt.System.StateDir
}

// Start opens the sockets and starts the node's goroutines. The context bounds start-up
// only (a context done before the node runs leaves nothing open); use Stop to leave the ring.
func (n *Node) Start(ctx context.Context) error {
	n.stateMu.Lock()
	defer n.stateMu.Unlock()
	if n.state != stateNew {
		return errors.New("totem: Start called twice")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(n.stateDir(), 0o700); err != nil {
		return fmt.Errorf("totem: state directory: %w", err)
	}
	if err := checkWritable(n.stateDir()); err != nil {
		// A node that cannot record its ring id can never enter COMMIT (§3.5): it would
		// start, never join and log an error per attempt. Refuse to start instead.
		return err
	}
	n.epoch = time.Now()
	logTotemConfig(n.log, n.rt.Totem)
	links, err := n.openLinks()
	if err != nil {
		return err
	}
	n.links = links
	if err := ctx.Err(); err != nil {
		n.closeLinks()
		return err
	}
	sc, err := n.stackConfig()
	if err != nil {
		n.closeLinks()
		return err
	}
	st, err := stack.New(sc)
	if err != nil {
		n.closeLinks()
		return err
	}
	n.st = st
	n.disp = newDispatcher(n)
	n.state = stateRunning
	n.timer = time.NewTimer(time.Hour)
	n.timer.Stop()
	n.mu.Lock()
	n.live = true
	n.st.Start(n.now())
	n.flush()
	n.mu.Unlock()
	for i, l := range n.links {
		for _, r := range l.Receivers() {
			n.wg.Add(1)
			go n.receiveLoop(i, l, r)
		}
		if l.KnetNextTick() >= 0 {
			n.wg.Add(1)
			go n.knetHeartbeat(l)
		}
	}
	n.wg.Add(1)
	go func() {
		n.protocolThread("dispatcher")
		n.disp.run(&n.wg)
	}()
	go n.timerLoop()
	n.wg.Add(1)
	go n.healthLoop()
	go func() { n.wg.Wait(); close(n.finished) }()
	n.log.Info("node started", "nodeid", n.self, "transport", string(n.rt.Totem.Transport), "rings", len(n.links))
	return nil
}

func (n *Node) openLinks() ([]*transport.Link, error) {
	if n.rt.Totem.Transport == config.TransportKnet {
		l, err := n.openKnet()
		if err != nil {
			return nil, err
		}
		return []*transport.Link{l}, nil
	}
	kind := transport.UDPU
	if n.rt.Totem.Transport == config.TransportUDP {
		kind = transport.UDP
	}
	var key []byte
	var cipher transport.Cipher
	if n.rt.Totem.Crypto.Enabled() {
		var err error
		cipher, err = transport.ParseCipher("", n.rt.Totem.Crypto.Cipher, n.rt.Totem.Crypto.Hash)
		if err != nil {
			return nil, fmt.Errorf("totem: %w", err)
		}
		key, err = n.rt.Totem.Crypto.ReadKey()
		if err != nil {
			return nil, fmt.Errorf("totem: %w", err)
		}
	}
	var links []*transport.Link
	for _, ring := range n.rt.Rings {
		tc := transport.DefaultConfig(kind)
		tc.NodeID = n.self
		tc.LinkNumber = uint8(ring.Link)
		tc.LocalAddr = ring.BindNetAddr
		tc.Port = int(ring.McastPort)
		tc.McastAddr = ring.McastAddr
		tc.Broadcast = ring.Broadcast
		tc.TTL = int(ring.TTL)
		tc.BlockUnlistedIPs = n.rt.Totem.BlockUnlistedIPs
		tc.NetMTU = n.rt.Totem.NetMTU
		tc.LoopInProcess = true // flush feeds our own multicasts back into the stack
		tc.Logger = n.log
		tc.Members = n.linkMembers(ring.Link)
		if key != nil {
			tc.Crypto = &transport.CryptoConfig{Key: key, Cipher: cipher, Epoch: uint64(n.epoch.UnixNano())}
		}
		l, err := transport.Open(tc)
		if err != nil {
			for _, o := range links {
				o.Close()
			}
			return nil, err
		}
		links = append(links, l)
	}
	if len(links) == 0 {
		return nil, errors.New("totem: the configuration gives this node no ring to run")
	}
	return links, nil
}

func (n *Node) closeLinks() {
	for _, l := range n.links {
		l.Close()
	}
}

// stackConfig maps the resolved corosync.conf onto the protocol stack.
func (n *Node) stackConfig() (stack.Config, error) {
	t := n.rt.Totem
	mtu := t.NetMTU
	for _, l := range n.links {
		mtu = min(mtu, l.MaxPayload())
	}
	n.accelerated = t.AcceleratedWindow > 0
	sc := stack.Config{
		SRP: srp.Config{
			NodeID:                          n.self,
			Token:                           t.Token,
			TokenRetransmit:                 t.TokenRetransmit,
			Hold:                            t.Hold,
			Join:                            t.Join,
			SendJoin:                        t.SendJoin,
			Consensus:                       t.Consensus,
			Merge:                           t.Merge,
			Downcheck:                       t.Downcheck,
			TokenRetransmitsBeforeLossConst: t.TokenRetransmitsBeforeLossConst,
			FailRecvConst:                   t.FailRecvConst,
			SeqnoUnchangedConst:             t.SeqnoUnchangedConst,
			MissCountConst:                  t.MissCountConst,
			WindowSize:                      t.WindowSize,
			MaxMessages:                     t.MaxMessages,
			TokenWarning:                    t.TokenWarning,
			AcceleratedWindow:               t.AcceleratedWindow,
			NetMTU:                          mtu,
			Nodelist:                        n.nodelist(),
			RingIDStore:                     newfileRingIDStore(n.stateDir(), n.self),
			Rand:                            rand.New(rand.NewPCG(uint64(n.epoch.UnixNano()), uint64(n.self))),
			Logger:                          n.log.With(SubsysKey, "TOTEM"), // corosync logs totemsrp under TOTEM
		},
		Links:  len(n.links),
		Logger: n.log,
		// flush is done with a Ready's datagrams before the Advance after next: the own
		// copies it loops back are the only ones it keeps past one Advance.
		ReuseDatagramBuffers: true,
		// The dispatcher copies each message before the Advance that ends it (push).
		ReuseEventBuffers: true,
		SendQueueDelay:    sendQueueDelay,
		GototemRing:       t.GototemRing,
	}
	if len(n.links) > 1 {
		mode, err := rrp.ParseMode(t.RRPMode)
		if err != nil {
			return stack.Config{}, err
		}
		sc.RRP = &stack.RRPConfig{
			Mode:                       mode,
			ProblemCountThreshold:      t.RRP.ProblemCountThreshold,
			ProblemCountMcastThreshold: t.RRP.ProblemCountMcastThreshold,
			ProblemCountTimeout:        t.RRP.ProblemCountTimeout,
			TokenExpiredTimeout:        t.RRP.TokenExpiredTimeout,
			AutoRecoveryCheckTimeout:   t.RRP.AutorecoveryCheckTimeout,
			Token:                      t.Token,
		}
		for _, r := range n.rt.Rings {
			sc.RRP.LinkAddrs = append(sc.RRP.LinkAddrs, r.BindNetAddr.String())
		}
	}
	if v := t.ConfigVersion; v != 0 {
		// 0 and absent publish the same runtime.members.<id>.config_version (0) on every
		// receiver; corosync's check treats 0 as "no version".
		sc.ConfigVersion = &v
	}
	if n.rt.Quorum.Provider == "corosync_votequorum" {
		qc := n.rt.Votequorum() // config's one mapping of the quorum section
		qc.NodeID = quorum.NodeID(n.self)
		sc.Quorum = &qc
		sc.EVStore = quorum.NewFileEVStore(n.stateDir())
	}
	return sc, nil
}

// now is the node's monotonic clock, the time base every protocol layer sees.
func (n *Node) now() time.Duration { return time.Since(n.epoch) }

// receiveLoop reads one socket and runs each batch through the stack itself.
func (n *Node) receiveLoop(link int, l *transport.Link, r *transport.Receiver) {
	defer n.wg.Done()
	gov := recvThread{locked: n.protocolThread("receive"), release: n.opts.ProtocolThreadRelease != nil}
	b := l.GetBatch()
	defer l.PutBatch(b)
	later := r.OnIdle(n.disp.wake) // callbacks' wake-up waits until the socket is drained
	for {
		cnt, err := r.Read(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-n.done:
				return
			default:
			}
			n.log.Warn("receive error", "link", link, "err", err)
			continue
		}
		if cnt == 0 {
			continue
		}
		n.mu.Lock()
		if !n.live {
			n.mu.Unlock()
			return
		}
		now := n.now()
		bytes := 0
		for i, p := range b.Packets[:cnt] {
			bytes += len(p.Data)
			_ = n.st.Receive(now, link, p.Data)
			if n.accelerated && i < cnt-1 && len(p.Data) > 3 && srp.MessageType(p.Data[3]) == srp.TypeORFToken {
				// Accelerated ring: the token was sent ahead of its holder's last MCASTs,
				// which may share this batch; pass it on before storing them.
				n.flush()
			}
		}
		n.wakeLater = later
		n.flush()
		n.wakeLater = false
		n.mu.Unlock()
		if n.opts.InlineDelivery {
			n.disp.runInline()
		}
		gov.note(n, now, bytes)
	}
}

// The receive loop's thread policy (package doc, "Protocol threads"), by the bytes it reads:
// not by packets, since a ring carrying any traffic passes its token without a hold, and at
// 100 messages a second of 1 KiB a receive loop read ~3000 packets a second but only 283-290
// KB/s with 2, 3 or 5 nodes on loopback (measured through Status().Net's counters), where
// its realtime thread keeps the agreed latency's tail down (issue 14). Under the libcpg
// flood (GOTOTEM_BENCH=1 go test ./internal/interop -run TestIPCCPGBenchSideBySide) it read
// 17-25k packets a second, mostly full MCASTs.
const (
	recvWindow       = 100 * time.Millisecond
	recvReleaseBytes = 4 << 20 // bytes a second over a window: give the thread back
	recvRetakeBytes  = 1 << 20 // below this, take a thread again
)

// recvThread tracks one receive loop's byte rate and holds or releases its thread.
type recvThread struct {
	locked  bool // running on a thread of its own, through Options.ProtocolThread
	release bool // Options.ProtocolThreadRelease is set: the thread may be given back
	start   time.Duration
	bytes   int
}

func (g *recvThread) note(n *Node, now time.Duration, bytes int) {
	if !g.release {
		return
	}
	g.bytes += bytes
	d := now - g.start
	if d < recvWindow {
		return
	}
	rate := float64(g.bytes) / d.Seconds()
	g.start, g.bytes = now, 0
	switch {
	case g.locked && rate > recvReleaseBytes:
		n.opts.ProtocolThreadRelease()
		runtime.UnlockOSThread()
		g.locked = false
		n.threadReleases.Add(1)
		n.log.Debug("receive loop runs on the runtime's threads", "bytes_per_s", int(rate))
	case !g.locked && rate < recvRetakeBytes:
		g.locked = n.protocolThread("receive")
		n.log.Debug("receive loop runs on a protocol thread again", "bytes_per_s", int(rate))
	}
}

// timerLoop fires the stack's timers and carries out Stop.
func (n *Node) timerLoop() {
	n.protocolThread("timer")
	for {
		select {
		case <-n.timer.C:
			n.mu.Lock()
			if n.live {
				n.armed = 0
				n.st.Tick(n.now())
				n.flush()
			}
			n.mu.Unlock()
		case req := <-n.stopCh:
			n.mu.Lock()
			n.shutdown()
			n.mu.Unlock()
			close(req.done)
			return
		}
	}
}

// protocolThread runs the calling goroutine on an OS thread of its own and hands that thread
// to Options.ProtocolThread; it reports whether it did. system.sched_rr once set every thread
// of the process: the Go runtime's idle threads spin looking for work, and at priority 99
// they kept the libqb clients (ordinary processes) off the CPU: the libcpg flood fell from
// 55.5k to 5.9k msgs/s at 1 KiB on the two-core lab, where corosync's one realtime thread
// sleeps in epoll. The timer and dispatch goroutines never unlock: when they end, the
// runtime retires their threads; a receive loop may give its thread back (recvThread).
func (n *Node) protocolThread(role string) bool {
	if n.opts.ProtocolThread == nil {
		return false
	}
	runtime.LockOSThread()
	if err := n.opts.ProtocolThread(); err != nil && n.threadWarned.CompareAndSwap(false, true) {
		n.log.Warn("protocol thread setup failed", "role", role, "err", err)
	}
	return true
}

// sendQueueDelay is stack.Config.SendQueueDelay for a node: Send waits once the messages
// already queued would take this node this long to send. Agreed latency under a flood was
// the time to drain srp's whole 4 MiB queue (p99 36–70 ms for 1 KiB messages, issue 14);
// two milliseconds still leave several token visits' worth queued, so throughput holds.
const sendQueueDelay = 2 * time.Millisecond

// selfRounds bounds how many times one flush feeds own multicasts back and carries out what
// they caused. Receiving one's own multicast settles (a JOIN equal to our sets, a duplicate
// MCAST); the bound only keeps a misbehaving exchange from holding mu: leftovers wait for
// an immediate timer wake-up.
const selfRounds = 16

// flush carries out the stack's Ready: transmit, loop own multicasts back in, dispatch
// events, re-arm the timer, wake senders waiting for room. Called with mu held after every
// input.
func (n *Node) flush() {
	var next time.Duration
	for round := 0; ; round++ {
		rd := n.st.Ready()
		if len(rd.Datagrams) > 0 {
			n.transmit(rd.Datagrams)
		}
		if len(rd.Events) > 0 {
			for _, ev := range rd.Events {
				n.observe(ev)
			}
			n.disp.push(rd.Events, n.wakeLater, n.st.TakePayloads)
		}
		next = rd.NextTick
		// The datagrams' data stay valid until the Advance after next
		// (ReuseDatagramBuffers): long enough to loop own copies back below.
		n.st.Advance()
		phases := n.knetCryptoPhases()
		if len(n.own) == 0 {
			if phases {
				continue // carry out what the phases sent
			}
			break
		}
		if round == selfRounds {
			// Come back at once for the rest; their data must outlive the stack's next
			// Advances.
			for i := range n.own {
				n.own[i].Data = slices.Clone(n.own[i].Data)
			}
			next = n.now()
			n.armed = -1
			break
		}
		now := n.now()
		for _, d := range n.own {
			_ = n.st.Receive(now, d.Link, d.Data)
		}
		clear(n.own)
		n.own = n.own[:0]
	}
	// The token timers move on every token, but most flushes (a batch of MCASTs) leave the
	// next deadline where it was: only a changed deadline touches the timer.
	if next != n.armed {
		n.armed = next
		if next != 0 {
			n.timer.Reset(max(next-n.now(), 0))
		} else {
			n.timer.Stop()
		}
	}
	n.notePhase()
	room := n.st.SendRoom()
	if n.roomWanted && room > 0 && room >= n.st.SendLimit()/2 {
		n.roomWanted = false
		close(n.room)
		n.room = make(chan struct{})
	}
}

// transmit sends datagrams per link, preserving order within a link.
func (n *Node) transmit(ds []stack.Datagram) {
	for i, l := range n.links {
		n.out = n.out[:0]
		for _, d := range ds {
			if d.Link == i {
				n.out = append(n.out, d.Outgoing)
			}
		}
		if len(n.out) == 0 {
			continue
		}
		if err := l.Send(n.out); err != nil {
			n.log.Warn("send failed", "link", i, "err", err)
		}
	}
	clear(n.out) // drop references to the stack's buffers
	for _, d := range ds {
		if d.Dest == srp.ToAll && d.Link >= 0 && d.Link < len(n.links) {
			n.own = append(n.own, d)
		}
	}
}

// observe keeps the node's view of membership (for Status and cmap).
func (n *Node) observe(ev stack.Event) {
	if ev.CfgCrypto != nil {
		// Taken after the Advance (knetCryptoPhases): a phase sends, and an input
		// between Ready and Advance could lose what it produced.
		n.knetPhases = append(n.knetPhases, ev.CfgCrypto.Phase)
		return
	}
	if r := ev.Registration; r != nil {
		if n.qdevReg != nil {
			n.qdevReg <- *r // buffered: one registration is pending at a time
			n.qdevReg = nil
		}
		return
	}
	if ev.Group != nil {
		close(n.changed) // wake WaitMembers
		n.changed = make(chan struct{})
	}
	c := ev.Membership
	if c == nil || c.Kind != srp.Regular {
		return
	}
	n.current = *c
	for _, m := range n.members {
		if m.member {
			m.member = false
			m.left = true
		}
	}
	for _, id := range c.Members {
		m := n.members[id]
		if m == nil {
			m = &memberInfo{}
			n.members[id] = m
		}
		if slices.Contains(c.Joined, id) || m.joinCount == 0 {
			m.joinCount++
		}
		m.member, m.left = true, false
	}
}

// shutdown leaves the ring; mu held.
func (n *Node) shutdown() {
	n.st.Shutdown(n.now())
	n.flush()
	n.live = false
	n.timer.Stop()
	close(n.done)
	n.closeLinks()
	n.disp.close()
}

// Stop leaves the ring cleanly (a LEAVE message, as corosync sends on SIGTERM), closes the
// sockets and waits for the node's goroutines, or for ctx. When ctx ends before the stop was
// handed to the node, the node keeps running and Stop may be called again; when it ends after,
// the node stops anyway and a later Stop waits for it to finish. A node never started has
// nothing to stop.
func (n *Node) Stop(ctx context.Context) error {
	n.stateMu.Lock()
	switch n.state {
	case stateNew:
		n.stateMu.Unlock()
		return nil
	case stateRunning:
		req := stopRequest{done: make(chan struct{})}
		select {
		case n.stopCh <- req:
			n.state = stateStopped
		case <-ctx.Done():
			n.stateMu.Unlock()
			return ctx.Err()
		}
	}
	n.stateMu.Unlock()
	select {
	case <-n.finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the node has left the ring (its goroutines may still be finishing: Stop
// waits for them).
func (n *Node) Done() <-chan struct{} { return n.done }

// do runs f with the stack to itself (mu held), then carries out what f made the stack do.
func (n *Node) do(f func()) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.live {
		return ErrStopped
	}
	f()
	n.flush()
	return nil
}

// Group is this node's membership in a process group.
type Group struct {
	n       *Node
	name    string
	pid     uint32
	handler GroupHandler
}

// Join joins a process group. h receives the group's messages and membership changes.
func (n *Node) Join(group string, h GroupHandler) (*Group, error) {
	if h == nil {
		return nil, errors.New("totem: Join needs a handler")
	}
	var g *Group
	var err error
	if derr := n.do(func() {
		if _, ok := n.groups[group]; ok {
			err = ErrGroupJoined
			return
		}
		g = &Group{n: n, name: group, pid: n.pid, handler: h}
		if err = n.st.Join(n.now(), group, g.pid); err == nil {
			n.groups[group] = g
			n.disp.setHandler(group, h)
		}
	}); derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Name is the group's name.
func (g *Group) Name() string { return g.name }

// TrySend multicasts payload to the group, or returns ErrBusy when the ring cannot take it now.
func (g *Group) TrySend(payload []byte, gu Guarantee) error {
	_, err := g.send(payload, gu, false)
	return err
}

// send is TrySend; when wait is set and the ring is busy it also returns the channel that is
// closed when a retry is worth it.
func (g *Group) send(payload []byte, gu Guarantee, wait bool) (<-chan struct{}, error) {
	n := g.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.live {
		return nil, ErrStopped
	}
	err := n.st.Send(n.now(), g.name, g.pid, payload, gu.srp())
	var room <-chan struct{}
	if errors.Is(err, stack.ErrBusy) {
		err = ErrBusy
		if wait {
			n.roomWanted = true
			room = n.room // flush may close it already: then the caller retries at once
		}
	}
	n.flush()
	return room, err
}

// Send multicasts payload to the group, waiting while the ring is busy (backpressure) until
// ctx is done. It returns once the message is queued for the ring; delivery follows in total
// order through the group handler, this node included. The payload is copied before Send
// returns: the caller may reuse its buffer at once.
func (g *Group) Send(ctx context.Context, payload []byte, gu Guarantee) error {
	for {
		room, err := g.send(payload, gu, true)
		if !errors.Is(err, ErrBusy) {
			return err
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		case <-g.n.done:
			return ErrStopped
		}
	}
}

// Leave leaves the group.
func (g *Group) Leave() error {
	var err error
	if derr := g.n.do(func() {
		if g.n.groups[g.name] != g {
			err = services.ErrNotJoined
			return
		}
		err = g.n.st.Leave(g.n.now(), g.name, g.pid)
		if err == nil {
			delete(g.n.groups, g.name)
		}
	}); derr != nil {
		return derr
	}
	return err
}

// Members returns the group's members as this node sees them now.
func (g *Group) Members() []Process {
	var out []Process
	_ = g.n.do(func() { out = processes(g.n.st.CPG().Members(g.name)) })
	return out
}

// WaitMembers waits until the group has at least n members, as this node sees them, and
// returns them; or returns ctx's error, or ErrStopped when the node stops. The group's handler
// sees the same change as a GroupChange, in order with the messages.
func (g *Group) WaitMembers(ctx context.Context, n int) ([]Process, error) {
	for {
		var ms []Process
		var changed <-chan struct{}
		if err := g.n.do(func() {
			ms = processes(g.n.st.CPG().Members(g.name))
			changed = g.n.changed
		}); err != nil {
			return nil, err
		}
		if len(ms) >= n {
			return ms, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-g.n.done:
			return nil, ErrStopped
		}
	}
}

// SetExpectedVotes is corosync-quorumtool -e.
func (n *Node) SetExpectedVotes(v uint32) error {
	var err error
	if derr := n.do(func() { err = n.st.SetExpectedVotes(n.now(), v) }); derr != nil {
		return derr
	}
	return err
}

// SetVotes is corosync-quorumtool -v (-n nodeid).
func (n *Node) SetVotes(nodeid NodeID, votes uint32) error {
	var err error
	if derr := n.do(func() { err = n.st.SetVotes(n.now(), srp.NodeID(nodeid), votes) }); derr != nil {
		return derr
	}
	return err
}

// CancelWaitForAll cancels votequorum's wait_for_all.
func (n *Node) CancelWaitForAll() error {
	var err error
	if derr := n.do(func() { err = n.st.CancelWaitForAll(n.now()) }); derr != nil {
		return derr
	}
	return err
}
