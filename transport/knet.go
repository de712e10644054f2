package transport

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
)

// The knet transport (corosync 3's default) drives knet.Endpoint, libknet's protocol as a
// pure state machine, on real sockets. What corosync 3.1.7's exec/totemknet.c and libknet
// 1.25 do, and this driver reproduces:
//
//   - one UDP socket per link L, bound to ringL_addr:(5405+L) (mcastport + link number, the
//     default corosync gives nodelist links); every packet to a peer goes from that socket to
//     the peer's ringL_addr on the same port, replies included (libknet answers the
//     configured address, not the packet's source);
//   - IP_PMTUDISC_DO on every link socket, as libknet's transport_udp.c sets it, so the kernel
//     refuses (EMSGSIZE) a datagram larger than the path MTU instead of fragmenting it: that
//     refusal is PMTUd's first answer;
//   - one knet seq counter and one sealed copy per fragment, sent to every destination on the
//     links the link_mode picks; knet's per-packet salt (the CBC IV) from crypto/rand;
//   - a totem packet's destination decided as corosync's dst_host_filter_callback_fn decides:
//     a token (srp.ToNode) to its target host alone, with the totem header's target_nodeid
//     set to it (receivers' knet filters check it), everything else to every reachable host;
//   - this node's own packets: corosync gives its own host a knet loopback link, so a
//     broadcast and a token to itself come back through knet's datafd. Here a token to itself
//     comes back through the local AF_UNIX loop (a Receiver named "loop"), and a broadcast
//     too unless Config.LoopInProcess leaves that to the caller (totem does).
//
// Timers: the Endpoint needs a heartbeat (knet.Heartbeat, 200 ms: pings and pong timeouts).
// The transport never reads the wall clock; like every other timer of the stack, the
// heartbeat is driven by the integrator: totem calls KnetTick at KnetNextTick with its
// monotonic clock, and Config.Clock (totem's clock) stamps received packets (a pong's round
// trip) and sends.

// KnetLink is one knet link of this node: its local address and port, and each peer's
// address on it.
type KnetLink struct {
	Number    uint8
	LocalAddr netip.Addr
	Port      int // corosync: 5405 + Number unless the interface sets mcastport
	// Peers maps every other node to its address on this link (the nodelist's ringN_addr).
	Peers map[srp.NodeID]netip.Addr
	// Link is the link's knet timers and priority.
	Link knet.LinkConfig
}

// KnetConfig is the knet part of Config (Kind Knet).
type KnetConfig struct {
	Links []KnetLink
	Mode  knet.LinkMode
	// Crypto seals and opens every packet (nil or disabled: clear).
	Crypto *knet.Crypto
	// Clock is the caller's monotonic clock (totem: time since the node's epoch).
	Clock func() time.Duration
	// MTU is totem.knet_mtu: a fixed link MTU instead of PMTUd's result (0: discover).
	MTU int
	// PMTUDInterval is totem.knet_pmtud_interval: how often PMTUd runs again on every
	// connected link (0: only when a link comes up). See knet_pmtud.go.
	PMTUDInterval time.Duration
}

// knetState is a Link's knet machinery. mu guards the Endpoint (and the sockets' use from
// the several goroutines that answer on them: receive loops send pongs, the heartbeat
// sends pings, the owner sends data).
type knetState struct {
	mu    sync.Mutex
	ep    *knet.Endpoint
	clock func() time.Duration
	socks [knet.MaxLink]*udpSock
	self  srp.NodeID
	hosts []knet.HostID
	dest  [1]knet.HostID
	tok   []byte           // token copy with target_nodeid set
	dsts  []netip.AddrPort // knetFlushLocked's scratch: a message's destinations on one link
	links []KnetLink

	// sendKnet's scratch (knet_seal.go): a visit's messages, the owner's Sealer for small
	// visits, the workers' completion reports and which messages are sealed
	msgs   []knetMsg
	sealer knet.Sealer
	visit  sealVisit
	ready  []bool
	// knetDatagram's parallel opening of a coalesced read (knet_seal.go), and the reader's
	// own Opener for its share
	ob     openBatch
	opener knet.Opener

	// crypto reconfiguration (knet_crypto.go): the slot of the last configuration staged
	// (corosync's crypto_index, 1 at start) and that configuration (nil: none)
	cryptoIndex  int
	cryptoTarget *knet.Crypto
	mtu          int // knet_mtu (0: PMTUd)

	// PMTUd (knet_pmtud.go)
	pmtud    map[pmtudKey]*pmtudRun
	ifMTU    [knet.MaxLink]int
	fixedMTU bool
	interval time.Duration
	lastRun  time.Duration
	// pmtudRestart: the crypto in use changed; search again at the next tick
	pmtudRestart bool
}

// Kind Knet is `transport: knet`.
const Knet Kind = UDPU + 1

// knetSocketBuffer is libknet's socket buffer request (KNET_RING_RCVBUFF, 8 MiB).
const knetSocketBuffer = 8 << 20

func (c *Config) validateKnet() error {
	k := c.Knet
	if k == nil || len(k.Links) == 0 {
		return errors.New("transport: knet needs at least one link")
	}
	if c.NodeID == 0 || c.NodeID > 0xffff {
		// knet host ids are 16 bits; corosync refuses larger nodeids with knet.
		return fmt.Errorf("transport: knet nodeid %d out of range 1..65535", c.NodeID)
	}
	if k.Clock == nil {
		return errors.New("transport: knet needs the caller's clock (KnetConfig.Clock)")
	}
	seen := map[uint8]bool{}
	for _, l := range k.Links {
		if l.Number >= knet.MaxLink || seen[l.Number] {
			return fmt.Errorf("transport: knet link %d invalid or given twice", l.Number)
		}
		seen[l.Number] = true
		if !l.LocalAddr.IsValid() || l.LocalAddr.IsMulticast() || l.LocalAddr.IsUnspecified() {
			return fmt.Errorf("transport: knet link %d: local address %s is not a unicast address", l.Number, l.LocalAddr)
		}
		if l.Port < 1 || l.Port > 65535 {
			return fmt.Errorf("transport: knet link %d: port %d out of range", l.Number, l.Port)
		}
		for id, a := range l.Peers {
			if id == 0 || id > 0xffff || id == c.NodeID {
				return fmt.Errorf("transport: knet link %d: peer nodeid %d invalid", l.Number, id)
			}
			if !a.IsValid() || a.Unmap().Is4() != l.LocalAddr.Is4() {
				return fmt.Errorf("transport: knet link %d: peer %d address %s is not of the link's family", l.Number, id, a)
			}
		}
	}
	if c.NetMTU <= 0 {
		return fmt.Errorf("transport: netmtu %d must be a positive integer", c.NetMTU)
	}
	if c.BatchSize < 1 || c.BatchSize > 1024 {
		return fmt.Errorf("transport: batch size %d out of range 1..1024", c.BatchSize)
	}
	return nil
}

// openKnet binds one socket per link and builds the Endpoint.
func (l *Link) openKnet() error {
	k := l.cfg.Knet
	ks := &knetState{clock: k.Clock, self: l.cfg.NodeID, links: slices.Clone(k.Links),
		pmtud: map[pmtudKey]*pmtudRun{}, fixedMTU: k.MTU > 0, interval: k.PMTUDInterval,
		cryptoIndex: 1, mtu: k.MTU}
	ec := knet.EndpointConfig{Self: knet.HostID(l.cfg.NodeID), Mode: k.Mode, Peers: map[knet.HostID][]knet.PeerLink{}}
	if k.Crypto != nil && k.Crypto.Enabled() {
		// A Crypto keeps scratch state: this Link gets its own, whoever else holds k.Crypto.
		ks.cryptoTarget = k.Crypto.Clone()
		ec.Keyring = knet.NewKeyring(ks.cryptoTarget)
		ec.Salt = rand.Reader
	}
	for _, kl := range k.Links {
		s, err := l.listen(fmt.Sprintf("knet link %d", kl.Number), netip.AddrPortFrom(kl.LocalAddr, uint16(kl.Port)),
			sockOpts{rcvbuf: knetSocketBuffer, sndbuf: knetSocketBuffer, priority: tokenPriority, pmtuDiscDo: true})
		if err != nil {
			return err
		}
		ks.socks[kl.Number] = s
		ks.ifMTU[kl.Number] = interfaceMTU(kl.LocalAddr)
		// UDP_GRO with GSO: a peer's fragments sent as one segmented message arrive as one
		// (knetDatagram).
		r, err := newReader(s.conn, s.conn, nil, l.cfg.BatchSize, l.cfg.GSO)
		if err != nil {
			return err
		}
		l.recvs = append(l.recvs, &Receiver{link: l, name: fmt.Sprintf("knet%d", kl.Number), r: r, isKnet: true, knetLink: kl.Number})
		for id, a := range kl.Peers {
			h := knet.HostID(id)
			ec.Peers[h] = append(ec.Peers[h], knet.PeerLink{Link: kl.Number,
				Addr: netip.AddrPortFrom(a.Unmap().WithZone(""), uint16(kl.Port)), Config: kl.Link})
		}
	}
	for h := range ec.Peers {
		ks.hosts = append(ks.hosts, h)
	}
	slices.Sort(ks.hosts)
	ep, err := knet.NewEndpoint(ec)
	if err != nil {
		return fmt.Errorf("transport: %w", err)
	}
	if k.MTU > 0 {
		ep.SetDataMTU(knet.UDPDataMTU(k.Crypto, k.MTU, !k.Links[0].LocalAddr.Is4()))
	}
	ks.ep = ep
	l.knet = ks
	return nil
}

// knetDatagram runs what one socket read put in b.bufs[i] through the Endpoint and appends
// the messages it completes to b.Packets. That is one datagram, or, with UDP_GRO, several of
// one size that the kernel kept together (a peer's GSO send of a fragmented message, which
// then costs the receiving IP stack one traversal too); each is taken on its own, in order.
// A message completed by a lone datagram is copied over that datagram's buffer (a full
// receive buffer); one completed inside a coalesced buffer, whose later datagrams are still
// to be read, is copied into b.knet instead. Either way the Packet stays valid as long as
// the Batch. Pongs and PMTUd replies go out at once.
func (l *Link) knetDatagram(r *Receiver, b *Batch, i int, m rawMsg) {
	ks := l.knet
	ks.mu.Lock()
	defer ks.mu.Unlock()
	buf := b.bufs[i]
	if m.seg <= 0 || m.seg >= m.n {
		if msg, ok := l.knetReceiveLocked(r, buf[:m.n], m.from); ok {
			b.Packets = append(b.Packets, Packet{Data: append(buf[:0], msg...), From: m.from})
		}
		return
	}
	l.ctr.coalesced.Add(1)
	if len(b.Packets) == 0 {
		b.knet = b.knet[:0] // nothing of this Batch refers to it any more
	}
	var ob *openBatch
	if ks.ep.Encrypted() && m.n >= openParallelMin*m.seg {
		ob = l.knetOpenParallelLocked(buf[:m.n], m.seg)
	}
	for j, data := 0, buf[:m.n]; len(data) > 0; j++ {
		k := min(m.seg, len(data))
		var msg []byte
		var ok bool
		if ob != nil {
			msg, ok = l.knetReceiveOpenedLocked(r, data[:k:k], m.from, ob.plain[j], ob.errs[j])
		} else {
			msg, ok = l.knetReceiveLocked(r, data[:k:k], m.from)
		}
		data = data[k:]
		if !ok {
			continue
		}
		if cap(b.knet)-len(b.knet) < len(msg) {
			// A new area; the old one stays with the Packets that point into it. It
			// settles at what one Read needs, after which nothing is allocated.
			b.knet = make([]byte, 0, max(2*cap(b.knet), len(msg), 1<<16))
		}
		start := len(b.knet)
		b.knet = append(b.knet, msg...)
		b.Packets = append(b.Packets, Packet{Data: b.knet[start:len(b.knet):len(b.knet)], From: m.from})
	}
}

// knetReceiveLocked runs one datagram through the Endpoint and returns the totem message it
// completed (valid until the next call), counting what it dropped. ks.mu held.
func (l *Link) knetReceiveLocked(r *Receiver, wire []byte, from netip.AddrPort) ([]byte, bool) {
	return l.knetReceiveOpenedLocked(r, wire, from, nil, errNotOpened)
}

// errNotOpened tells knetReceiveOpenedLocked that the Endpoint opens the datagram itself.
var errNotOpened = errors.New("not opened yet")

// knetReceiveOpenedLocked is knetReceiveLocked for a datagram the workers opened (plain,
// err: Endpoint.Open's result), or, with errNotOpened, one the Endpoint opens. ks.mu held.
func (l *Link) knetReceiveOpenedLocked(r *Receiver, wire []byte, from netip.AddrPort, plain []byte, openErr error) ([]byte, bool) {
	ks := l.knet
	now := ks.clock()
	before := ks.ep.Counters()
	var msgs []knet.Message
	var replies []knet.Datagram
	if openErr == errNotOpened {
		msgs, replies = ks.ep.Receive(now, r.knetLink, from, wire)
	} else {
		msgs, replies = ks.ep.ReceiveOpened(now, r.knetLink, from, plain, openErr)
	}
	l.knetSendLocked(replies)
	l.pmtudReplies(now)
	l.ctr.receivedBytes.Add(uint64(len(wire)))
	if len(msgs) == 0 {
		l.knetCountDrop(&before, from)
		return nil, false
	}
	m := msgs[0]
	if len(m.Data) >= 13 {
		// corosync's knet filter also runs on receive: a packet whose totem header names
		// another node (target_nodeid, offset 9, host order) is dropped as not ours.
		if to := srp.NodeID(binary.LittleEndian.Uint32(m.Data[9:13])); to != 0 && to != ks.self {
			l.ctr.droppedNotForUs.Add(1)
			return nil, false
		}
	}
	l.ctr.receivedPackets.Add(1)
	return m.Data, true
}

// knetCountDrop puts a datagram the Endpoint refused into the Link's drop counters, so that
// the stack's DROPS (gototem status, stats.gototem.drops.* in cmap) and its rate-limited log
// line show knet's refusals as they show udpu's: a packet that does not open with the key
// (another key, a bit flipped in transit or by an attacker) is an authentication failure, a
// second copy of a delivered seq in passive or rr mode a replay, an undecodable or
// impossible packet malformed, a host or source address outside the nodelist unlisted.
// Pings, pongs, held fragments and active mode's second copies are not drops. ks.mu held.
func (l *Link) knetCountDrop(before *knet.EndpointCounters, from netip.AddrPort) {
	c := l.knet.ep.Counters()
	switch {
	case c.Crypto != before.Crypto:
		l.ctr.droppedAuth.Add(1)
		l.noteDrop(&l.lastDrop.Auth, from)
	case c.Replay != before.Replay:
		l.ctr.droppedReplay.Add(1)
		l.noteDrop(&l.lastDrop.Replay, from)
	case c.Malformed != before.Malformed, c.BadFragment != before.BadFragment, c.Compressed != before.Compressed:
		l.ctr.droppedMalformed.Add(1)
		l.noteDrop(&l.lastDrop.Malformed, from)
	case c.UnknownHost != before.UnknownHost, c.BadSource != before.BadSource:
		l.ctr.droppedUnlisted.Add(1)
		l.noteDrop(&l.lastDrop.Unlisted, from)
	}
}

// knetSendLocked sends the Endpoint's datagrams one by one (pings, pongs, PMTUd: few and
// from any goroutine, so not through the owner's batch scratch). ks.mu held.
func (l *Link) knetSendLocked(ds []knet.Datagram) {
	for _, d := range ds {
		s := l.knet.socks[d.Link]
		if s == nil {
			continue
		}
		if _, err := s.conn.WriteToUDPAddrPort(d.Data, d.To); err != nil {
			l.ctr.sendErrors.Add(1)
			continue
		}
		l.ctr.sent(len(d.Data))
	}
}

// sendKnet is Send for Kind Knet (owner goroutine): out is usually a whole token visit,
// laid out first and then sealed and sent message by message (knet_seal.go).
func (l *Link) sendKnet(out []srp.Outgoing) error {
	ks := l.knet
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.clock()
	var errs error
	ks.ep.ResetSend()
	msgs := ks.msgs[:0]
	for _, o := range out {
		if len(o.Data) > knet.MaxPacketSize {
			l.ctr.droppedTooBig.Add(1)
			continue
		}
		var dests []knet.HostID
		data := o.Data
		if o.Dest == srp.ToNode {
			if o.To == ks.self {
				// knet's loopback link: a token to ourselves (a singleton ring).
				errs = errors.Join(errs, l.knetLoop(data))
				continue
			}
			ks.dest[0] = knet.HostID(o.To)
			dests = ks.dest[:]
			if len(data) >= 13 {
				// corosync's knet filter routes by the totem header's target_nodeid
				// (offset 9, host order) and a receiving libknet drops a unicast not
				// addressed to it: put the target where a real node looks for it.
				// (SendMore copies it into the packet at once.)
				ks.tok = append(ks.tok[:0], data...)
				ks.tok[9], ks.tok[10], ks.tok[11], ks.tok[12] = byte(o.To), byte(o.To>>8), byte(o.To>>16), byte(o.To>>24)
				data = ks.tok
			}
		} else if !l.cfg.LoopInProcess {
			errs = errors.Join(errs, l.knetLoop(data))
		}
		ds, jobs, err := ks.ep.SendMore(now, data, dests)
		if err != nil {
			l.ctr.droppedTooBig.Add(1)
			continue
		}
		if len(ds) == 0 && o.Dest == srp.ToNode {
			l.ctr.droppedNoRoute.Add(1)
		}
		msgs = append(msgs, knetMsg{ds: ds, jobs: jobs})
	}
	errs = errors.Join(errs, l.knetSealAndFlushLocked(msgs))
	clear(msgs)
	ks.msgs = msgs[:0]
	return errs
}

// knetFlushLocked sends a message's datagrams, one sendmmsg per link socket, queued
// destination by destination. The Endpoint emits a fragmented message fragment by fragment,
// each to every host in turn; regrouped, a host's fragments (all of one size but the last)
// are consecutive, so the GSO writer hands each host's share of a 64 KiB totem packet to the
// kernel as one UDP_SEGMENT message instead of ~45 datagrams: one traversal of the IP stack
// per host instead of one per fragment. The datagrams on the wire, and their order per
// host, are unchanged. ks.mu held.
func (l *Link) knetFlushLocked(ds []knet.Datagram) error {
	ks := l.knet
	var errs error
	for link := range uint8(knet.MaxLink) {
		s := ks.socks[link]
		if s == nil {
			continue
		}
		ks.dsts = ks.dsts[:0]
		for _, d := range ds {
			if d.Link == link && !slices.Contains(ks.dsts, d.To) {
				ks.dsts = append(ks.dsts, d.To)
			}
		}
		l.msgs = l.msgs[:0]
		for _, to := range ks.dsts {
			for _, d := range ds {
				if d.Link == link && d.To == to {
					l.queue(d.Data, d.To)
				}
			}
		}
		if len(l.msgs) > 0 {
			errs = errors.Join(errs, l.flush(s))
		}
	}
	return errs
}

func (l *Link) knetLoop(p []byte) error {
	if err := l.loop.send(p); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			l.ctr.droppedLoopFull.Add(1)
			return nil
		}
		l.ctr.sendErrors.Add(1)
		return fmt.Errorf("transport: local loop: %w", err)
	}
	return nil
}

// KnetTick runs knet's heartbeat at now (pings due, pong timeouts) and returns the link
// changes it caused. For other kinds it does nothing.
func (l *Link) KnetTick(now time.Duration) []knet.LinkEvent {
	ks := l.knet
	if ks == nil {
		return nil
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	l.knetSendLocked(ks.ep.Tick(now))
	ev := slices.Clone(ks.ep.Events()) // the caller logs them
	for _, e := range ev {
		if e.Up {
			l.pmtudStart(now, e.Host, e.Link)
		}
	}
	l.pmtudTick(now)
	return ev
}

// KnetNextTick is when KnetTick is next due (0: at once; for other kinds, never: -1).
func (l *Link) KnetNextTick() time.Duration {
	ks := l.knet
	if ks == nil {
		return -1
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.ep.NextTick()
}

// KnetStatus reports every link of every other host (corosync-cfgtool -s's knet view);
// nil for other kinds.
func (l *Link) KnetStatus() []knet.LinkStatus {
	ks := l.knet
	if ks == nil {
		return nil
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.ep.LinkStatus()
}

// KnetCounters reports what the knet Endpoint did with every datagram.
func (l *Link) KnetCounters() knet.EndpointCounters {
	ks := l.knet
	if ks == nil {
		return knet.EndpointCounters{}
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.ep.Counters()
}

// KnetDataMTU is the user bytes per knet DATA packet in use (knet's minimum until PMTUd
// settles); 0 for other kinds.
func (l *Link) KnetDataMTU() int {
	ks := l.knet
	if ks == nil {
		return 0
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.ep.DataMTU()
}

// KnetLinks returns the configured links (nil for other kinds).
func (l *Link) KnetLinks() []KnetLink {
	if l.knet == nil {
		return nil
	}
	return l.knet.links
}
