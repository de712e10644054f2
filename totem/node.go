package totem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
	"github.com/gototem/gototem/transport"
)

// recvQueue is how many received batches may wait for the owner goroutine; beyond it the
// receive goroutines block and the kernel socket buffers absorb bursts.
const recvQueue = 16

// Node is a gototem ring member running on real sockets and the wall clock.
type Node struct {
	opts  Options
	rt    *config.Runtime
	log   *slog.Logger
	self  srp.NodeID
	st    *stack.Stack
	links []*transport.Link
	epoch time.Time
	pid   uint32

	reqs   chan func()
	recv   chan received
	stopCh chan stopRequest
	done   chan struct{}
	wg     sync.WaitGroup

	errMu sync.Mutex
	err   error

	roomMu sync.Mutex
	room   chan struct{} // closed (and replaced) whenever sends may succeed again

	stateMu sync.Mutex
	state   nodeState // guarded by stateMu: started / stopped

	// Owned by the owner goroutine.
	groups  map[string]*Group
	members map[srp.NodeID]*memberInfo
	current srp.Configuration
	disp    *dispatcher
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

type received struct {
	link  int
	batch *transport.Batch
	n     int
}

type stopRequest struct {
	done chan struct{}
}

// New prepares a node from a resolved corosync.conf. It opens nothing: Start does.
func New(opts Options) (*Node, error) {
	rt := opts.Config
	if rt == nil {
		return nil, errors.New("totem: Options.Config is nil")
	}
	if rt.NodeID == 0 {
		return nil, errors.New("totem: the local node has no nodeid (is this machine in the nodelist?)")
	}
	switch rt.Totem.Transport {
	case config.TransportUDP, config.TransportUDPU:
	default:
		return nil, fmt.Errorf("totem: transport %q is not supported by gototem (use udp or udpu)", rt.Totem.Transport)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		opts:    opts,
		rt:      rt,
		log:     log,
		self:    srp.NodeID(rt.NodeID),
		reqs:    make(chan func()),
		recv:    make(chan received, recvQueue),
		stopCh:  make(chan stopRequest),
		done:    make(chan struct{}),
		room:    make(chan struct{}),
		groups:  map[string]*Group{},
		members: map[srp.NodeID]*memberInfo{},
		pid:     uint32(os.Getpid()),
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
// only; use Stop to leave the ring.
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
	n.epoch = time.Now()
	links, err := n.openLinks()
	if err != nil {
		return err
	}
	n.links = links
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
	for i, l := range n.links {
		for _, r := range l.Receivers() {
			n.wg.Add(1)
			go n.receiveLoop(i, l, r)
		}
	}
	n.wg.Add(1)
	go n.disp.run(&n.wg)
	go n.ownerLoop()
	n.log.Info("node started", "nodeid", n.self, "transport", string(n.rt.Totem.Transport), "rings", len(n.links))
	return nil
}

func (n *Node) openLinks() ([]*transport.Link, error) {
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
		tc.Logger = n.log
		tc.Members = map[srp.NodeID]netip.Addr{}
		for _, node := range n.rt.Nodes {
			if a := node.IPs[ring.Link]; a.IsValid() {
				tc.Members[srp.NodeID(node.NodeID)] = a
			}
		}
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
			NetMTU:                          mtu,
			RingIDStore:                     NewFileRingIDStore(n.stateDir(), n.self),
			Rand:                            rand.New(rand.NewPCG(uint64(n.epoch.UnixNano()), uint64(n.self))),
			Logger:                          n.log.With("subsys", "srp"),
		},
		Links:  len(n.links),
		Logger: n.log,
	}
	if len(n.links) > 1 {
		sc.RRP = &stack.RRPConfig{
			Mode:                       t.RRPMode,
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
	if n.rt.Quorum.Provider == "corosync_votequorum" {
		qc := quorumConfig(n.rt, n.self)
		sc.Quorum = &qc
		sc.EVStore = quorum.NewFileEVStore(n.stateDir())
	}
	return sc, nil
}

// quorumConfig maps the quorum section and nodelist onto votequorum's inputs.
func quorumConfig(rt *config.Runtime, self srp.NodeID) quorum.Config {
	q := rt.Quorum
	qc := quorum.Config{
		NodeID:                quorum.NodeID(self),
		ExpectedVotes:         q.ExpectedVotes,
		TwoNode:               q.TwoNode,
		LastManStanding:       q.LastManStanding,
		LastManStandingWindow: q.LastManStandingWindow,
		AutoTieBreaker:        q.AutoTieBreaker,
		AutoTieBreakerNode:    q.AutoTieBreakerNode,
		AllowDownscale:        q.AllowDownscale,
		ExpectedVotesTracking: q.ExpectedVotesTracking,
	}
	if q.WaitForAllSet {
		w := q.WaitForAll
		qc.WaitForAll = &w
	}
	if q.VotesSet {
		v := q.Votes
		qc.Votes = &v
	}
	if rt.LocalPos >= 0 {
		for _, node := range rt.Nodes {
			qc.Nodelist = append(qc.Nodelist, quorum.NodeEntry{NodeID: quorum.NodeID(node.NodeID), Votes: node.QuorumVotes})
		}
	}
	if d := q.Device; d != nil {
		qc.Device = quorum.DeviceConfig{Model: d.Model, Timeout: d.Timeout, SyncTimeout: d.SyncTimeout}
		if d.VotesSet {
			v := d.Votes
			qc.Device.Votes = &v
		}
	}
	return qc
}

// now is the node's monotonic clock, the time base every protocol layer sees.
func (n *Node) now() time.Duration { return time.Since(n.epoch) }

// receiveLoop reads one socket and hands batches to the owner goroutine.
func (n *Node) receiveLoop(link int, l *transport.Link, r *transport.Receiver) {
	defer n.wg.Done()
	for {
		b := l.GetBatch()
		cnt, err := r.Read(b)
		if err != nil {
			l.PutBatch(b)
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
			l.PutBatch(b)
			continue
		}
		select {
		case n.recv <- received{link: link, batch: b, n: cnt}:
		case <-n.done:
			l.PutBatch(b)
			return
		}
	}
}

// ownerLoop is the one goroutine that owns the protocol stack.
func (n *Node) ownerLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	n.st.Start(n.now())
	n.flush(timer)
	for {
		select {
		case rcv := <-n.recv:
			l := n.links[rcv.link]
			for _, p := range rcv.batch.Packets[:rcv.n] {
				_ = n.st.Receive(n.now(), rcv.link, p.Data)
			}
			l.PutBatch(rcv.batch)
			// Drain what else is already waiting before flushing: one flush per burst.
		drain:
			for i := 0; i < recvQueue; i++ {
				select {
				case rcv := <-n.recv:
					l := n.links[rcv.link]
					for _, p := range rcv.batch.Packets[:rcv.n] {
						_ = n.st.Receive(n.now(), rcv.link, p.Data)
					}
					l.PutBatch(rcv.batch)
				default:
					break drain
				}
			}
		case <-timer.C:
			n.st.Tick(n.now())
		case f := <-n.reqs:
			f()
		case req := <-n.stopCh:
			n.shutdown(timer)
			close(req.done)
			return
		}
		n.flush(timer)
	}
}

// flush carries out the stack's Ready: transmit, dispatch events, re-arm the timer.
func (n *Node) flush(timer *time.Timer) {
	rd := n.st.Ready()
	if len(rd.Datagrams) > 0 {
		n.transmit(rd.Datagrams)
	}
	for _, ev := range rd.Events {
		n.observe(ev)
		n.disp.push(ev)
	}
	next := rd.NextTick
	n.st.Advance()
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	if next != 0 {
		timer.Reset(max(next-n.now(), 0))
	} else {
		timer.Reset(time.Hour)
	}
	n.signalRoom()
}

// transmit sends datagrams per link, preserving order within a link.
func (n *Node) transmit(ds []stack.Datagram) {
	per := make([][]srp.Outgoing, len(n.links))
	for _, d := range ds {
		if d.Link >= 0 && d.Link < len(per) {
			per[d.Link] = append(per[d.Link], d.Outgoing)
		}
	}
	for i, outs := range per {
		if len(outs) == 0 {
			continue
		}
		if err := n.links[i].Send(outs); err != nil {
			n.log.Warn("send failed", "link", i, "err", err)
		}
	}
}

// observe keeps the owner goroutine's view of membership (for Status and cmap).
func (n *Node) observe(ev stack.Event) {
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

func (n *Node) shutdown(timer *time.Timer) {
	n.st.Shutdown(n.now())
	n.flush(timer)
	close(n.done)
	n.closeLinks()
	n.disp.close()
}

// Stop leaves the ring cleanly (a LEAVE message, as corosync sends on SIGTERM), closes the
// sockets and waits for the node's goroutines, or for ctx.
func (n *Node) Stop(ctx context.Context) error {
	n.stateMu.Lock()
	if n.state != stateRunning {
		n.stateMu.Unlock()
		return nil
	}
	n.state = stateStopped
	n.stateMu.Unlock()
	req := stopRequest{done: make(chan struct{})}
	select {
	case n.stopCh <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	waited := make(chan struct{})
	go func() { n.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is the error that stopped the node, if any.
func (n *Node) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// do runs f on the owner goroutine and waits for it.
func (n *Node) do(f func()) error {
	n.stateMu.Lock()
	running := n.state == stateRunning
	n.stateMu.Unlock()
	if !running {
		return ErrStopped
	}
	finished := make(chan struct{})
	select {
	case n.reqs <- func() { f(); close(finished) }:
	case <-n.done:
		return ErrStopped
	}
	select {
	case <-finished:
		return nil
	case <-n.done:
		return ErrStopped
	}
}

func (n *Node) signalRoom() {
	n.roomMu.Lock()
	close(n.room)
	n.room = make(chan struct{})
	n.roomMu.Unlock()
}

func (n *Node) roomSignal() <-chan struct{} {
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	return n.room
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
	var err error
	if derr := g.n.do(func() { err = g.n.st.Send(g.n.now(), g.name, g.pid, payload, gu) }); derr != nil {
		return derr
	}
	if errors.Is(err, stack.ErrBusy) {
		return ErrBusy
	}
	return err
}

// Send multicasts payload to the group, waiting while the ring is busy (backpressure) until
// ctx is done. It returns once the message is queued for the ring; delivery follows in total
// order through the group handler, this node included.
func (g *Group) Send(ctx context.Context, payload []byte, gu Guarantee) error {
	for {
		room := g.n.roomSignal()
		err := g.TrySend(payload, gu)
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
	_ = g.n.do(func() { out = g.n.st.CPG().Members(g.name) })
	return out
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
func (n *Node) SetVotes(nodeid srp.NodeID, votes uint32) error {
	var err error
	if derr := n.do(func() { err = n.st.SetVotes(n.now(), nodeid, votes) }); derr != nil {
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
