package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/gototem/gototem/srp"
)

// Link is one ring's sockets.
//
// Concurrency: Send and SetMembers belong to one owner goroutine (the one driving the
// srp.Processor); neither may run concurrently with itself or the other. Each
// Receiver is read by exactly one goroutine of its own. Counters, Learned, MaxPayload,
// GetBatch and PutBatch are safe from any goroutine. Close may also be called from any
// goroutine; it unblocks every pending Read, which then returns an error wrapping
// net.ErrClosed.
type Link struct {
	cfg    Config
	log    *slog.Logger
	v6     bool
	crypto *cryptoState

	recvs []*Receiver

	// udp: the mcastport-1 socket (multicasts and tokens); udpu: the listen socket (tokens).
	tokenOut *udpSock
	// udp: same as tokenOut. udpu: nil, multicasts use memberOut.
	mcastOut  *udpSock
	memberOut map[netip.Addr]*udpSock // udpu: one socket bound to local:0 per member address
	sockMu    sync.Mutex              // memberOut changes (SetMembers) against Close
	loop      loopWriter
	group     netip.AddrPort // udp: mcastaddr:port or 255.255.255.255:port
	echoFrom  netip.AddrPort // udp: source of our own multicasts, which lo can echo back
	ifIndex   int            // udp: index of the bind interface (IPv6 group scope)
	// zone is the bind interface's name when LocalAddr is IPv6 link-local. Binding with it
	// ties every socket to that interface, so peers' fe80:: addresses need no zone of their
	// own (corosync hard-codes scope id 2 instead).
	zone string

	members atomic.Pointer[memberTable]
	learnMu sync.Mutex
	learned map[srp.NodeID]netip.Addr

	// Send scratch, owned by the sending goroutine.
	msgs     []ipv4.Message
	bufs     [][]byte // one-element Buffers for msgs[i]
	sealed   [][]byte
	payloads [][]byte
	dsts     []netip.AddrPort // destination of msgs[i]
	udpAddrs map[netip.AddrPort]*net.UDPAddr
	gso      *gsoWriter // nil: GSO off, unsupported, or refused by the kernel

	pool      sync.Pool
	ctr       counters
	dropMu    sync.Mutex
	lastDrop  DropSources
	closeOnce sync.Once
	closers   []io.Closer

	knet *knetState // Kind Knet only
}

// memberTable is the nodelist as the receive goroutines see it; replaced whole by SetMembers.
type memberTable struct {
	byID    map[srp.NodeID]netip.Addr
	allowed map[netip.Addr]struct{} // block_unlisted_ips: member addresses plus our own
	addrs   []netip.Addr            // distinct member addresses, sorted: udpu send order
}

type udpSock struct {
	conn  *net.UDPConn
	batch interface {
		WriteBatch(ms []ipv4.Message, flags int) (int, error)
	}
	local netip.AddrPort
	rc    syscall.RawConn // for the GSO writer's sendmmsg
}

type sockOpts struct {
	reuseAddr, broadcast bool
	rcvbuf, sndbuf       int
	priority             int
	// pmtuDiscDo sets IP_PMTUDISC_DO (IPV6_PMTUDISC_DO): the kernel refuses a datagram
	// larger than the path MTU instead of fragmenting it (knet's PMTUd relies on it).
	pmtuDiscDo bool
}

// Receiver is one receive socket of a Link: udpu has "udpu" (the mcastport socket), udp has
// "mcast" (the group) and "token"; both have "loop" (own multicasts) unless LoopInProcess.
type Receiver struct {
	link  *Link
	name  string
	r     reader
	local bool
	// isKnet: a knet link socket (knetLink); its datagrams go through the knet Endpoint.
	isKnet   bool
	knetLink uint8
	nonce    [12]byte // decryption scratch of the goroutine reading this Receiver
}

// Open creates and binds the ring's sockets.
func Open(cfg Config) (*Link, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == Knet {
		// The loop receiver and the member table speak for link 0's address.
		cfg.LocalAddr, cfg.Port = cfg.Knet.Links[0].LocalAddr, cfg.Knet.Links[0].Port
	}
	l := &Link{cfg: cfg, log: cfg.Logger, v6: cfg.LocalAddr.Is6(), learned: map[srp.NodeID]netip.Addr{},
		udpAddrs: map[netip.AddrPort]*net.UDPAddr{}, memberOut: map[netip.Addr]*udpSock{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.localAddr() // resolves l.zone for a link-local bind address
	l.log = l.log.With("transport", cfg.Kind.String(), "link", cfg.LinkNumber)
	l.pool.New = func() any { return newBatch(cfg.BatchSize) }
	if cfg.GSO && cfg.BatchSize > 1 {
		l.gso = newGSOWriter()
	}
	if cfg.Crypto != nil {
		cs, err := newCryptoState(cfg.Crypto, cfg.LinkNumber, cfg.NodeID)
		if err != nil {
			return nil, err
		}
		l.crypto = cs
	}
	var err error
	switch cfg.Kind {
	case UDPU:
		err = l.openUDPU()
	case UDP:
		err = l.openUDP()
	case Knet:
		err = l.openKnet()
	}
	// knet always needs the loop: a token to ourselves comes back through it (corosync's
	// knet loopback link), whatever LoopInProcess says about broadcasts.
	if err == nil && (!cfg.LoopInProcess || cfg.Kind == Knet) {
		err = l.openLoop()
	}
	if err == nil {
		err = l.SetMembers(cfg.Members)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Link) network() string {
	if l.v6 {
		return "udp6"
	}
	return "udp4"
}

// localAddr returns the bind address with the zone a link-local IPv6 address needs.
func (l *Link) localAddr() netip.Addr {
	a := l.cfg.LocalAddr
	if a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "" {
		if l.zone == "" {
			if ifi, err := l.iface(); err == nil {
				l.zone = ifi.Name
			}
		}
		a = a.WithZone(l.zone)
	}
	return a
}

func (l *Link) iface() (Interface, error) {
	ifs, err := LocalInterfaces()
	if err != nil {
		return Interface{}, err
	}
	return matchBindNet(l.cfg.LocalAddr, ifs)
}

func (l *Link) listen(what string, addr netip.AddrPort, o sockOpts) (*udpSock, error) {
	var conn *net.UDPConn
	if a := addr.Addr(); a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		c, err := bindGroupSocket(addr, l.ifIndex, o)
		if err != nil {
			return nil, fmt.Errorf("transport: %s socket on %s: %w", what, addr, err)
		}
		conn = c
	} else {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = setSockOpts(fd, o) }); err != nil {
				return err
			}
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), l.network(), addr.String())
		if err != nil {
			return nil, fmt.Errorf("transport: %s socket on %s: %w", what, addr, err)
		}
		conn = pc.(*net.UDPConn)
	}
	if !strings.HasPrefix(what, "udpu member") {
		l.closers = append(l.closers, conn) // member sockets are closed through memberOut
	}
	s := &udpSock{conn: conn, local: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	if rc, err := conn.SyscallConn(); err == nil {
		s.rc = rc
	}
	s.local = netip.AddrPortFrom(s.local.Addr().Unmap(), s.local.Port())
	if l.v6 {
		s.batch = ipv6.NewPacketConn(conn)
	} else {
		s.batch = ipv4.NewPacketConn(conn)
	}
	if o.rcvbuf > 0 || o.sndbuf > 0 {
		if rc, err := conn.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				rcv, snd := bufferSizes(fd)
				l.log.Debug("socket buffers", "socket", what, "rcvbuf", rcv, "sndbuf", snd,
					"requested", o.rcvbuf)
			})
		}
	}
	return s, nil
}

func (l *Link) addReceiver(name string, s *udpSock) error {
	r, err := newReader(s.conn, s.conn, nil, l.cfg.BatchSize, l.cfg.GSO)
	if err != nil {
		return err
	}
	l.recvs = append(l.recvs, &Receiver{link: l, name: name, r: r})
	return nil
}

// openUDPU: the listen socket on local:mcastport receives tokens and multicasts and sends
// tokens; the per-member send sockets are made by SetMembers.
func (l *Link) openUDPU() error {
	s, err := l.listen("udpu", netip.AddrPortFrom(l.localAddr(), uint16(l.cfg.Port)),
		sockOpts{rcvbuf: udpuSocketBuffer, sndbuf: udpuSocketBuffer, priority: tokenPriority})
	if err != nil {
		return err
	}
	l.tokenOut = s
	return l.addReceiver("udpu", s)
}

func (l *Link) openUDP() error {
	port := uint16(l.cfg.Port)
	ifi, ierr := l.iface()
	if ierr != nil && !l.cfg.Broadcast {
		return fmt.Errorf("transport: interface for %s: %w", l.cfg.LocalAddr, ierr)
	}
	// Receive socket: bound to the group itself, so it sees only this ring's multicasts;
	// SO_REUSEADDR lets several nodes (or a restarting one) on one host share it.
	recvAddr := netip.AddrPortFrom(l.cfg.McastAddr, port)
	if l.cfg.Broadcast {
		recvAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), port)
	}
	l.ifIndex = ifi.Index
	mrecv, err := l.listen("mcast receive", recvAddr,
		sockOpts{reuseAddr: true, broadcast: l.cfg.Broadcast, rcvbuf: udpSocketBuffer})
	if err != nil {
		return err
	}
	send, err := l.listen("mcast send", netip.AddrPortFrom(l.localAddr(), port-1),
		sockOpts{broadcast: l.cfg.Broadcast, sndbuf: udpSocketBuffer})
	if err != nil {
		return err
	}
	token, err := l.listen("token", netip.AddrPortFrom(l.localAddr(), port),
		sockOpts{rcvbuf: udpSocketBuffer, priority: tokenPriority})
	if err != nil {
		return err
	}
	l.tokenOut, l.mcastOut, l.echoFrom = send, send, send.local
	if l.cfg.Broadcast {
		l.group = recvAddr
	} else {
		l.group = netip.AddrPortFrom(l.cfg.McastAddr.WithZone(""), port)
		if err := l.joinGroup(mrecv, send, ifi); err != nil {
			return err
		}
	}
	if err := l.addReceiver("mcast", mrecv); err != nil {
		return err
	}
	return l.addReceiver("token", token)
}

// joinGroup joins the group on the bind interface and sets up the send socket as corosync
// does: multicast from that interface, TTL from the config, and no kernel loopback (the
// local loop delivers our own copy exactly once).
func (l *Link) joinGroup(recv, send *udpSock, ifi Interface) error {
	nifi, err := net.InterfaceByIndex(ifi.Index)
	if err != nil {
		return fmt.Errorf("transport: interface %s: %w", ifi.Name, err)
	}
	g := &net.UDPAddr{IP: l.cfg.McastAddr.AsSlice()}
	if l.v6 {
		rp, sp := ipv6.NewPacketConn(recv.conn), ipv6.NewPacketConn(send.conn)
		if err := rp.JoinGroup(nifi, g); err != nil {
			return fmt.Errorf("transport: joining %s on %s: %w", l.cfg.McastAddr, ifi.Name, err)
		}
		return errors.Join(wrapOpt("IPV6_MULTICAST_IF", sp.SetMulticastInterface(nifi)),
			wrapOpt("IPV6_MULTICAST_HOPS", sp.SetMulticastHopLimit(l.cfg.TTL)),
			wrapOpt("IPV6_MULTICAST_LOOP", sp.SetMulticastLoopback(false)))
	}
	rp, sp := ipv4.NewPacketConn(recv.conn), ipv4.NewPacketConn(send.conn)
	if err := rp.JoinGroup(nifi, g); err != nil {
		return fmt.Errorf("transport: joining %s on %s: %w", l.cfg.McastAddr, ifi.Name, err)
	}
	return errors.Join(wrapOpt("IP_MULTICAST_IF", sp.SetMulticastInterface(nifi)),
		wrapOpt("IP_MULTICAST_TTL", sp.SetMulticastTTL(l.cfg.TTL)),
		wrapOpt("IP_MULTICAST_LOOP", sp.SetMulticastLoopback(false)))
}

func wrapOpt(name string, err error) error {
	if err != nil {
		return fmt.Errorf("transport: %s: %w", name, err)
	}
	return nil
}

func (l *Link) openLoop() error {
	fds, err := newLoopPair()
	if err != nil {
		return fmt.Errorf("transport: local loop socketpair: %w", os.NewSyscallError("socketpair", err))
	}
	conns := [2]*net.UnixConn{}
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("totem-loop-%d", i))
		c, err := net.FileConn(f)
		f.Close() // FileConn dups the descriptor
		if err != nil {
			return fmt.Errorf("transport: local loop: %w", err)
		}
		conns[i] = c.(*net.UnixConn)
		l.closers = append(l.closers, c)
	}
	rc, err := conns[0].SyscallConn()
	if err != nil {
		return fmt.Errorf("transport: local loop: %w", err)
	}
	l.loop.rc = rc
	l.loop.fn = l.loop.write
	rc.Control(func(fd uintptr) { _ = setSockOpts(fd, sockOpts{sndbuf: loopSocketBuffer}) })
	r, err := newReader(conns[1], nil, conns[1], l.cfg.BatchSize, false)
	if err != nil {
		return err
	}
	l.recvs = append(l.recvs, &Receiver{link: l, name: "loop", r: r, local: true})
	return nil
}

// SetMembers replaces the nodelist (runtime nodelist changes). For udpu it opens a send
// socket for each new member address and closes those of removed ones. Owner goroutine only.
func (l *Link) SetMembers(m map[srp.NodeID]netip.Addr) error {
	t := &memberTable{byID: make(map[srp.NodeID]netip.Addr, len(m)+1), allowed: map[netip.Addr]struct{}{}}
	for id, a := range m {
		if id == 0 || !a.IsValid() || a.Unmap().Is4() != l.cfg.LocalAddr.Is4() {
			return fmt.Errorf("transport: member %d address %s is not of the bind address family", id, a)
		}
		a = a.Unmap().WithZone("")
		if _, dup := t.allowed[a]; !dup {
			t.addrs = append(t.addrs, a)
		}
		t.byID[id] = a
		t.allowed[a] = struct{}{}
	}
	slices.SortFunc(t.addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	self := l.cfg.LocalAddr.WithZone("")
	if _, ok := t.byID[l.cfg.NodeID]; !ok {
		t.byID[l.cfg.NodeID] = self
	}
	t.allowed[self] = struct{}{}

	if l.cfg.Kind == UDPU {
		l.sockMu.Lock()
		defer l.sockMu.Unlock()
		for _, a := range t.addrs {
			if l.memberOut[a] != nil {
				continue
			}
			s, err := l.listen("udpu member "+a.String(), netip.AddrPortFrom(l.localAddr(), 0),
				sockOpts{sndbuf: udpuSocketBuffer})
			if err != nil {
				return err
			}
			l.memberOut[a] = s
		}
		for a, s := range l.memberOut {
			if !slices.Contains(t.addrs, a) {
				s.conn.Close()
				delete(l.memberOut, a)
			}
		}
	}
	l.members.Store(t)
	return nil
}

// Learned returns the nodeid → address pairs learned from JOINs (udp without a nodelist).
func (l *Link) Learned() map[srp.NodeID]netip.Addr {
	l.learnMu.Lock()
	defer l.learnMu.Unlock()
	return maps.Clone(l.learned)
}

// MaxPayload is the netmtu totemsrp should plan with on this link: NetMTU less what
// encryption adds, so a sealed datagram still fits the configured budget.
func (l *Link) MaxPayload() int {
	if l.knet != nil {
		// knet fragments at its own data MTU and its crypto is per fragment: totem plans
		// with netmtu as configured (corosync: 65536 less totemsrp's 90, "Maximum network
		// MTU 65446").
		return l.cfg.NetMTU
	}
	if l.crypto != nil {
		return l.cfg.NetMTU - CryptoOverhead
	}
	return l.cfg.NetMTU
}

// Receivers returns the Link's receive sockets; run one goroutine per Receiver.
func (l *Link) Receivers() []*Receiver { return l.recvs }

// GetBatch returns a Batch sized for this Link from its pool.
func (l *Link) GetBatch() *Batch { return l.pool.Get().(*Batch) }

// PutBatch returns b to the pool; b and every Packet.Data in it must not be used afterwards.
func (l *Link) PutBatch(b *Batch) {
	b.Packets = b.Packets[:0]
	l.pool.Put(b)
}

// Close closes every socket. Pending and later Reads fail with an error wrapping
// net.ErrClosed. Safe to call more than once and from any goroutine.
func (l *Link) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.sockMu.Lock()
		defer l.sockMu.Unlock()
		closers := l.closers
		for _, s := range l.memberOut {
			closers = append(closers, s.conn)
		}
		for _, c := range closers {
			if cerr := c.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
				err = errors.Join(err, cerr)
			}
		}
	})
	return err
}

// Name is the receiver's role: "udpu", "mcast", "token" or "loop".
func (r *Receiver) Name() string { return r.name }

// OnIdle registers f to be called on the reading goroutine each time Read finds the socket
// empty and is about to wait for it (so work that can wait for a quiet moment, such as
// waking another goroutine, is done once per burst instead of once per batch). It reports
// false when the receive path cannot tell (BatchSize 1, or off Linux). Call it before the
// first Read.
func (r *Receiver) OnIdle(f func()) bool { return r.r.setIdle(f) }

// maxEmptyRounds bounds how many all-dropped socket reads one Read absorbs before it
// returns zero packets, so a flood of rejected datagrams cannot pin the caller forever.
const maxEmptyRounds = 64

// Read blocks until at least one datagram passes the filters (too big, own echo,
// block_unlisted_ips, authentication and replay), then fills b.Packets with them and
// returns their number. It may return 0 packets with a nil error after a run of rejected
// datagrams. b's previous contents are overwritten. Only one goroutine may call Read on a
// given Receiver; different Receivers may be read concurrently.
func (r *Receiver) Read(b *Batch) (int, error) {
	l := r.link
	b.Packets = b.Packets[:0]
	for range maxEmptyRounds {
		n, err := r.r.read(b.bufs, b.raw)
		if err != nil {
			return 0, fmt.Errorf("transport: %s receive: %w", r.name, err)
		}
		t := l.members.Load()
		for i := range n {
			m := b.raw[i]
			if m.trunc || m.n >= len(b.bufs[i]) {
				l.ctr.droppedTooBig.Add(1)
				l.noteDrop(&l.lastDrop.TooBig, m.from)
				continue
			}
			if r.isKnet {
				l.knetDatagram(r, b, i, m)
				continue
			}
			data := b.bufs[i][:m.n]
			if m.seg <= 0 || m.seg >= m.n {
				if p, ok := l.filter(r, t, data, m.from); ok {
					b.Packets = append(b.Packets, p)
				}
				continue
			}
			// Several datagrams coalesced (UDP_GRO): each is filtered on its own.
			l.ctr.coalesced.Add(1)
			for len(data) > 0 {
				k := min(m.seg, len(data))
				if p, ok := l.filter(r, t, data[:k:k], m.from); ok {
					b.Packets = append(b.Packets, p)
				}
				data = data[k:]
			}
		}
		if len(b.Packets) > 0 {
			return len(b.Packets), nil
		}
	}
	return 0, nil
}

// filter applies the receive pipeline of one datagram (corosync's transport step, plus
// decryption). It never parses totem content except the header for address learning.
func (l *Link) filter(r *Receiver, t *memberTable, data []byte, from netip.AddrPort) (Packet, bool) {
	wire := len(data)
	if r.local {
		l.ctr.receivedPackets.Add(1)
		l.ctr.receivedBytes.Add(uint64(wire))
		return Packet{Data: data, From: netip.AddrPortFrom(l.cfg.LocalAddr.WithZone(""), l.localPort()), Local: true}, true
	}
	if l.cfg.Kind == UDP && r.name == "mcast" && from == l.echoFrom {
		// Our own multicast handed back by an interface that loops (lo): the local loop
		// has delivered it already. Only the group socket sees echoes; a token a
		// singleton ring sends to itself arrives on the token socket from the same
		// source and must pass.
		l.ctr.droppedOwnEcho.Add(1)
		return Packet{}, false
	}
	if l.cfg.Kind == UDPU && l.cfg.BlockUnlistedIPs {
		if _, ok := t.allowed[from.Addr().WithZone("")]; !ok {
			l.ctr.droppedUnlisted.Add(1)
			l.noteDrop(&l.lastDrop.Unlisted, from)
			return Packet{}, false
		}
	}
	if l.crypto != nil {
		plain, err := l.crypto.open(data, &r.nonce)
		switch {
		case errors.Is(err, errMalformed):
			l.ctr.droppedMalformed.Add(1)
			l.noteDrop(&l.lastDrop.Malformed, from)
			return Packet{}, false
		case errors.Is(err, errReplay):
			l.ctr.droppedReplay.Add(1)
			l.noteDrop(&l.lastDrop.Replay, from)
			return Packet{}, false
		case err != nil:
			l.ctr.droppedAuth.Add(1)
			l.noteDrop(&l.lastDrop.Auth, from)
			return Packet{}, false
		}
		data = plain
	}
	if l.cfg.Kind == UDP {
		l.learn(t, data, from.Addr())
	}
	l.ctr.receivedPackets.Add(1)
	l.ctr.receivedBytes.Add(uint64(wire))
	return Packet{Data: data, From: from}, true
}

// DropSources names, per drop reason, the source of the last datagram dropped for it (the
// zero AddrPort: none yet), so a rate-limited log line can say who sends garbage or holds
// the wrong key without logging every datagram.
type DropSources struct {
	Unlisted, Malformed, Auth, Replay, TooBig netip.AddrPort
}

// noteDrop records from as the last source for one reason: one uncontended lock per
// dropped datagram (the receive goroutines of a link are the only writers).
func (l *Link) noteDrop(slot *netip.AddrPort, from netip.AddrPort) {
	l.dropMu.Lock()
	if *slot != from {
		*slot = from
	}
	l.dropMu.Unlock()
}

// LastDropSources returns the last source per drop reason. Safe from any goroutine.
func (l *Link) LastDropSources() DropSources {
	l.dropMu.Lock()
	defer l.dropMu.Unlock()
	return l.lastDrop
}

func (l *Link) localPort() uint16 {
	if l.echoFrom.IsValid() {
		return l.echoFrom.Port()
	}
	return uint16(l.cfg.Port)
}

// learn records where a JOIN's sender lives, so that a udp ring configured without a
// nodelist can still unicast the token to it. The nodelist, when present, always wins.
// A later JOIN from another address moves the entry (a node that changed address, or, on
// an unencrypted ring, a spoofer: encryption is what makes the learned table trustworthy).
func (l *Link) learn(t *memberTable, data []byte, from netip.Addr) {
	id, typ, ok := peekSender(data)
	if !ok || typ != srp.TypeJoin || id == srp.LeaveDummyNodeID || id == l.cfg.NodeID {
		return
	}
	if _, listed := t.byID[id]; listed {
		return
	}
	from = from.WithZone("")
	l.learnMu.Lock()
	old, known := l.learned[id]
	if !known && len(l.learned) >= maxPeers {
		// Without a nodelist or encryption anyone on the segment can send JOINs; the cap
		// keeps a flood of invented nodeids from growing the table without bound.
		l.learnMu.Unlock()
		return
	}
	if !known || old != from {
		l.learned[id] = from
	}
	l.learnMu.Unlock()
	if !known || old != from {
		l.ctr.learned.Add(1)
		l.log.Info("learned node address", "nodeid", id, "addr", from, "previous", old)
	}
}

func (l *Link) lookup(t *memberTable, id srp.NodeID) (netip.Addr, bool) {
	if a, ok := t.byID[id]; ok {
		return a, true
	}
	l.learnMu.Lock()
	a, ok := l.learned[id]
	l.learnMu.Unlock()
	return a, ok
}
