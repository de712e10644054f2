package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
)

// knet in the simulator: corosync 3's transport under the full stack. Each node's stack
// (StackProtocol, one totem link: knet, not rrp, handles the redundancy) sends and receives
// through its own knet.Endpoint, libknet's protocol as a pure state machine; the Endpoint's
// datagrams travel on the simulator's per-link networks (knet link L is the simulator's link
// L, so CutRing(L) and CutRingLink cut one knet link alone, a Partition cuts every link), and
// what a peer's Endpoint delivers goes into that peer's stack. The virtual clock drives the
// Endpoint's heartbeat (Tick at NextTick), so link up/down, latency and failover run on the
// timers corosync derives from the token.
//
// What corosync 3.1.7's totemknet does and this model keeps:
//   - a totem packet to every node (an MCAST, a JOIN, a merge detect) is one knet broadcast
//     to every reachable host; a token goes to its target host alone, with the totem header's
//     target_nodeid set (corosync's knet filter routes by it);
//   - the node's own packets come back through knet's loopback link, never the network (the
//     simulator's own-copy path, which no fault touches);
//   - the data MTU is what PMTUd settles on: the simulator's LAN is IPv4 with a 1500-byte
//     MTU (knet.UDPDataMTU), and totem's packets are fragmented by knet above it.
//
//   - a datagram to a crashed node (its process gone, its host up) earns the sender an ICMP
//     port unreachable one link latency later, if the way back is not cut: libknet takes
//     that link down at once (Endpoint.LinkError). Without it a node restarted before its
//     peers noticed (a link still up in its pong timeout backoff) and whose first pings
//     (seq 0, libknet's restart signal) were lost would have its new packets dropped by
//     the peers as duplicates of the old incarnation's: campaign seed 1832 re-formed
//     without it for the whole quiet phase.
//
// Not modelled: PMTUd itself (there is no kernel to refuse an oversized datagram).

// KnetOptions configure knet's link layer under every node (NewKnetProtocol).
type KnetOptions struct {
	// Nodes is the nodelist: hosts 1..Nodes, each with Links links (the simulator fills it
	// from Options.Nodes where it builds the nodes itself).
	Nodes int
	// Links is the number of knet links per node, 1..8 (0: 2, the pcs-style cluster).
	Links int
	// Mode is totem.link_mode (default passive).
	Mode knet.LinkMode
	// Priority is each link's knet_link_priority (missing entries: corosync's 1). In passive
	// mode the connected link of highest priority carries the data, the lowest-numbered
	// among equals.
	Priority []uint8
	// PongCount is knet_pong_count (0: corosync's 2).
	PongCount int
	// PingInterval and PingTimeout are knet_ping_interval and knet_ping_timeout; zero
	// derives them from the node's effective token as corosync does: timeout token/pong_count,
	// interval token/(2·pong_count), in whole milliseconds.
	PingInterval, PingTimeout time.Duration
	// PingPrecision is knet_ping_precision (0: corosync's 2048).
	PingPrecision int
	// Crypto turns knet's packet crypto on (aes256 and sha256, corosync's pcs defaults) with
	// a key drawn from the node configuration's seed; off by default.
	Crypto bool
	// DataMTU is the user bytes per knet DATA packet (0: what PMTUd finds on a 1500-byte
	// IPv4 link with this crypto).
	DataMTU int
	// ModeFromSeed, in random schedules, draws each schedule's link_mode (passive, active
	// or rr) from its seed instead of using Mode.
	ModeFromSeed bool
	// SmallMTUFromSeed, in random schedules, runs half of them (drawn from the seed) at
	// knet's smallest data MTU, so that most totem packets travel as several knet fragments:
	// reassembly under the schedule's loss, duplication and reordering.
	SmallMTUFromSeed bool
}

func (o KnetOptions) withDefaults() KnetOptions {
	if o.Links == 0 {
		o.Links = 2
	}
	if o.PongCount == 0 {
		o.PongCount = 2
	}
	if o.PingPrecision == 0 {
		o.PingPrecision = 2048
	}
	return o
}

func (o KnetOptions) validate() error {
	if o.Nodes < 1 || o.Nodes > 0xffff {
		return fmt.Errorf("sim: knet: nodelist of %d nodes (knet host ids are 16 bits)", o.Nodes)
	}
	if o.Links < 1 || o.Links > knet.MaxLink {
		return fmt.Errorf("sim: knet: %d links, want 1..%d", o.Links, knet.MaxLink)
	}
	if len(o.Priority) > o.Links {
		return fmt.Errorf("sim: knet: %d priorities for %d links", len(o.Priority), o.Links)
	}
	if o.Mode > knet.RR {
		return fmt.Errorf("sim: knet: link mode %d", o.Mode)
	}
	return nil
}

// LinkConfig is the knet configuration of link for a node whose effective token is token:
// corosync 3.1.7's derivation (totemconfig.c) of the ping timers from the token and
// knet_pong_count unless set, and the link's priority.
func (o KnetOptions) LinkConfig(token time.Duration, link int) knet.LinkConfig {
	o = o.withDefaults()
	pong := int64(o.PongCount)
	tokenMS := token.Milliseconds()
	c := knet.LinkConfig{PingInterval: o.PingInterval, PingTimeout: o.PingTimeout,
		PingPrecision: o.PingPrecision, PongCount: o.PongCount, Priority: 1}
	if c.PingTimeout == 0 {
		c.PingTimeout = time.Duration(tokenMS/pong) * time.Millisecond
	}
	if c.PingInterval == 0 {
		c.PingInterval = time.Duration(tokenMS/(2*pong)) * time.Millisecond
	}
	if link < len(o.Priority) {
		c.Priority = o.Priority[link]
	}
	return c
}

// knetPort is corosync's knet port of link L: mcastport 5405 + L.
func knetPort(link int) uint16 { return 5405 + uint16(link) }

// knetAddr is node id's address on knet link L: each link its own subnet 10.L.0.0/16, the
// host part the node id, so that a datagram's source names both.
func knetAddr(id srp.NodeID, link int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(link), byte(id >> 8), byte(id)}), knetPort(link))
}

// knetNode is the node whose knet address a is (knetAddr's inverse).
func knetNode(a netip.AddrPort) srp.NodeID {
	b := a.Addr().As4()
	return srp.NodeID(b[2])<<8 | srp.NodeID(b[3])
}

// knetKey is the authkey of a simulated cluster with crypto on: every node derives the same
// 256 bytes from its configuration's generator seed... which differs per node, so the key
// is drawn from a fixed stream instead (a cluster shares one authkey).
func knetKey() []byte {
	key := make([]byte, 256)
	x := uint64(0x6b6e6574) // "knet"
	for i := range key {
		x = splitmix(x)
		key[i] = byte(x)
	}
	return key
}

// saltSource is a deterministic salt stream for a node's sealed packets (libknet draws the
// salt from a CSPRNG; the simulator must replay).
type saltSource struct{ x uint64 }

func (s *saltSource) Read(p []byte) (int, error) {
	for i := range p {
		if i%8 == 0 {
			s.x = splitmix(s.x)
		}
		p[i] = byte(s.x >> (8 * (i % 8)))
	}
	return len(p), nil
}

// NewKnetProtocol returns an Options.NewProtocol that runs StackProtocol (so, a single totem
// link) over a knet.Endpoint configured by ko (ko.Nodes is the nodelist).
func NewKnetProtocol(so StackOptions, ko KnetOptions) func(cfg srp.Config) (Protocol, error) {
	return func(cfg srp.Config) (Protocol, error) {
		ko := ko.withDefaults()
		if err := ko.validate(); err != nil {
			return nil, err
		}
		if so.Links > 1 {
			return nil, errors.New("sim: knet: the stack runs one totem link over knet (StackOptions.Links must be 0 or 1; KnetOptions.Links sets the knet links)")
		}
		if cfg.NodeID < 1 || int(cfg.NodeID) > ko.Nodes {
			return nil, fmt.Errorf("sim: knet: node %d is not in the nodelist 1..%d", cfg.NodeID, ko.Nodes)
		}
		inner, err := NewStackProtocol(so)(cfg)
		if err != nil {
			return nil, err
		}
		ec := knet.EndpointConfig{Self: knet.HostID(cfg.NodeID), Mode: ko.Mode, Peers: map[knet.HostID][]knet.PeerLink{}}
		for id := srp.NodeID(1); int(id) <= ko.Nodes; id++ {
			if id == cfg.NodeID {
				continue
			}
			for l := range ko.Links {
				ec.Peers[knet.HostID(id)] = append(ec.Peers[knet.HostID(id)],
					knet.PeerLink{Link: uint8(l), Addr: knetAddr(id, l), Config: ko.LinkConfig(cfg.Token, l)})
			}
		}
		var crypto *knet.Crypto
		if ko.Crypto {
			crypto, err = knet.NewCrypto(knet.CryptoConfig{Model: "nss", Cipher: knet.CipherAES256, Hash: knet.HashSHA256, Key: knetKey()})
			if err != nil {
				return nil, err
			}
			ec.Keyring = knet.NewKeyring(crypto)
			ec.Salt = &saltSource{x: uint64(cfg.NodeID) << 32}
		}
		ep, err := knet.NewEndpoint(ec)
		if err != nil {
			return nil, fmt.Errorf("sim: knet: node %d: %w", cfg.NodeID, err)
		}
		mtu := ko.DataMTU
		if mtu == 0 {
			mtu = knet.UDPDataMTU(crypto, 1500, false)
		}
		ep.SetDataMTU(mtu)
		p := &KnetProtocol{st: inner.(*StackProtocol), ep: ep, o: ko, self: cfg.NodeID}
		p.MarkTraffic(0)
		return p, nil
	}
}

// KnetLinkEvent is a knet link going up or down at a node, for a peer host.
type KnetLinkEvent struct {
	Node srp.NodeID
	knet.LinkEvent
}

// KnetProtocol is a StackProtocol whose datagrams travel through knet (a LinkProtocol over
// the knet links). The stack sees one link; the knet.Endpoint picks the physical links by
// the link mode and their health.
type KnetProtocol struct {
	st   *StackProtocol
	ep   *knet.Endpoint
	o    KnetOptions
	self srp.NodeID
	sim  *Sim
	node *Node
	now  time.Duration // the last input's time (the clock when not bound to a simulator)

	rd    srp.Ready
	links []int
	done  int // the stack's datagrams of this Ready already given to knet
	tok   []byte
	dest  [1]knet.HostID

	events []KnetLinkEvent
	// rxData counts, per link, the knet DATA packets that delivered a totem packet, and
	// rxAt the time of the last one: the scenario reads where the traffic goes.
	rxData [knet.MaxLink]uint64
	rxAt   [knet.MaxLink]time.Duration
	// rxFirst is, per link, the first such packet at or after rxMark (-1: none yet).
	rxMark  time.Duration
	rxFirst [knet.MaxLink]time.Duration
	// sendErrors counts totem packets knet refused (larger than its 64 KiB message limit).
	sendErrors uint64
}

// bind is the simulator's hook at start: the node's clock and trace.
func (p *KnetProtocol) bind(s *Sim, n *Node) { p.sim, p.node = s, n }

func (p *KnetProtocol) clock() time.Duration {
	if p.sim != nil {
		return p.sim.now
	}
	return p.now
}

// Stack is the node's StackProtocol (its stack, quorum, groups).
func (p *KnetProtocol) Stack() *StackProtocol { return p.st }

// Endpoint is the node's knet (link status, counters).
func (p *KnetProtocol) Endpoint() *knet.Endpoint { return p.ep }

// LinkStatus reports every knet link to every other host.
func (p *KnetProtocol) LinkStatus() []knet.LinkStatus { return p.ep.LinkStatus() }

// LinkEvents returns every knet link change of this incarnation so far.
func (p *KnetProtocol) LinkEvents() []KnetLinkEvent { return slices.Clone(p.events) }

// DataReceived returns, for link, how many knet DATA packets delivered a totem packet and
// when the last one arrived.
func (p *KnetProtocol) DataReceived(link int) (uint64, time.Duration) {
	return p.rxData[link], p.rxAt[link]
}

// MarkTraffic starts watching for the first DATA on each link from now on (see FirstData).
func (p *KnetProtocol) MarkTraffic(now time.Duration) {
	p.rxMark = now
	for i := range p.rxFirst {
		p.rxFirst[i] = -1
	}
}

// FirstData is when the first knet DATA packet carrying a totem packet arrived on link since
// MarkTraffic (false: none yet).
func (p *KnetProtocol) FirstData(link int) (time.Duration, bool) {
	return p.rxFirst[link], p.rxFirst[link] >= 0
}

// Links is the number of knet links.
func (p *KnetProtocol) Links() int { return p.o.Links }

// Start starts the stack and knet's heartbeat: the first pings go out at once.
func (p *KnetProtocol) Start(now time.Duration) {
	p.now = now
	p.st.Start(now)
	p.out(p.ep.Tick(now))
	p.linkEvents()
}

// Step takes a datagram on link 0 from the host its knet header names (a driver that knows
// the source uses StepFrom).
func (p *KnetProtocol) Step(now time.Duration, d []byte) error { return p.StepLink(now, 0, d) }

// StepLink takes a datagram on link from the host its knet header names.
func (p *KnetProtocol) StepLink(now time.Duration, link int, d []byte) error {
	var k knet.Packet
	if k.Decode(d) != nil {
		return p.StepFrom(now, 0, link, d) // no host: knet counts it (crypto or malformed)
	}
	return p.StepFrom(now, srp.NodeID(k.Host), link, d)
}

// StepFrom takes a datagram that arrived on link from node from (the simulator's hook: the
// source address knet checks). The node's own packets are totem packets on knet's loopback
// link and go to the stack as they are.
func (p *KnetProtocol) StepFrom(now time.Duration, from srp.NodeID, link int, d []byte) error {
	p.now = now
	if from == p.self {
		return p.st.StepLink(now, 0, d)
	}
	if link < 0 || link >= knet.MaxLink {
		return fmt.Errorf("sim: knet: datagram on link %d", link)
	}
	bad := refused(p.ep.Counters())
	msgs, replies := p.ep.Receive(now, uint8(link), knetAddr(from, link), d)
	p.out(replies)
	p.linkEvents()
	// The Endpoint's buffers are reused by its next call and the stack may keep what it is
	// given (srp's sort queue aliases the datagram), so each message is copied.
	var errs error
	for _, m := range slices.Clone(msgs) {
		p.rxData[link]++
		p.rxAt[link] = now
		if p.rxFirst[link] < 0 && now >= p.rxMark {
			p.rxFirst[link] = now
		}
		errs = errors.Join(errs, p.st.StepLink(now, 0, append([]byte(nil), m.Data...)))
	}
	if errs == nil && refused(p.ep.Counters()) != bad {
		return errors.New("sim: knet: datagram refused (crypto, malformed, unknown host or source)")
	}
	return errs
}

// refused adds up the datagrams knet refused for what they are (the simulator counts them as
// decode errors), as opposed to those it absorbed by design: a copy already delivered, a
// fragment held, DATA from a host with no link up, a late pong.
func refused(c knet.EndpointCounters) uint64 {
	return c.Crypto + c.Malformed + c.UnknownHost + c.BadSource + c.Compressed + c.BadFragment
}

// Tick runs knet's heartbeat when due, then the stack's timers when due.
func (p *KnetProtocol) Tick(now time.Duration) {
	p.now = now
	if p.ep.NextTick() <= now {
		p.out(p.ep.Tick(now))
		p.linkEvents()
	}
	if t := p.st.Ready().NextTick; t != 0 && t <= now {
		p.st.Tick(now)
	}
}

// Send originates payload from the simulator's process (see StackProtocol.Send).
func (p *KnetProtocol) Send(now time.Duration, payload []byte, g srp.Guarantee) error {
	p.now = now
	return p.st.Send(now, payload, g)
}

// Leave shuts the stack down; its LEAVE goes out through knet.
func (p *KnetProtocol) Leave(now time.Duration) {
	p.now = now
	p.st.Leave(now)
}

// Ready passes the stack's new datagrams through knet and returns the knet datagrams with
// the stack's deliveries; NextTick is the earlier of the stack's timers and the heartbeat.
func (p *KnetProtocol) Ready() srp.Ready {
	p.pump(p.clock())
	rd := p.st.Ready()
	p.rd.Deliveries = rd.Deliveries
	p.rd.NextTick = p.ep.NextTick()
	if rd.NextTick != 0 && rd.NextTick < p.rd.NextTick {
		p.rd.NextTick = rd.NextTick
	}
	return p.rd
}

// MessageLinks names the knet link of each of Ready().Messages.
func (p *KnetProtocol) MessageLinks() []int { return p.links }

// Advance acknowledges Ready (the stack's too).
func (p *KnetProtocol) Advance() {
	p.st.Advance()
	p.done = 0
	p.rd = srp.Ready{}
	p.links = p.links[:0]
}

func (p *KnetProtocol) State() srp.State      { return p.st.State() }
func (p *KnetProtocol) RingID() srp.RingID    { return p.st.RingID() }
func (p *KnetProtocol) Members() []srp.NodeID { return p.st.Members() }
func (p *KnetProtocol) Status() srp.Status    { return p.st.Status() }

// pump hands the stack's datagrams not yet sent to knet, as totemknet does: the node's own
// copy through the loopback link, a token to its target, the rest broadcast.
func (p *KnetProtocol) pump(now time.Duration) {
	msgs := p.st.Ready().Messages
	for ; p.done < len(msgs); p.done++ {
		m := msgs[p.done]
		if m.Dest == srp.ToNode && m.To == p.self || m.Dest != srp.ToNode {
			// knet's loopback link: what totem sends to everyone or to itself comes back
			// without touching a network.
			p.rd.Messages = append(p.rd.Messages, srp.Outgoing{Dest: srp.ToNode, To: p.self, Type: m.Type, Data: m.Data})
			p.links = append(p.links, 0)
			if m.Dest == srp.ToNode {
				continue
			}
		}
		var dests []knet.HostID
		data := m.Data
		if m.Dest == srp.ToNode {
			p.dest[0] = knet.HostID(m.To)
			dests = p.dest[:]
			if len(data) >= srp.HeaderSize {
				// target_nodeid, bytes 9..12 of the totem header in the sender's order
				// (little-endian here): corosync's knet filter routes a token by it.
				p.tok = append(p.tok[:0], data...)
				p.tok[9], p.tok[10], p.tok[11], p.tok[12] = byte(m.To), byte(m.To>>8), byte(m.To>>16), byte(m.To>>24)
				data = p.tok
			}
		}
		ds, err := p.ep.Send(now, data, dests)
		if err != nil {
			p.sendErrors++
			continue
		}
		p.out(ds)
	}
}

// out queues the Endpoint's datagrams (copied: its buffers are reused) for the simulator.
func (p *KnetProtocol) out(ds []knet.Datagram) {
	for _, d := range ds {
		p.rd.Messages = append(p.rd.Messages, srp.Outgoing{Dest: srp.ToNode, To: knetNode(d.To), Data: append([]byte(nil), d.Data...)})
		p.links = append(p.links, int(d.Link))
	}
}

// linkEvents records the Endpoint's link changes (and traces them as corosync logs them).
func (p *KnetProtocol) linkEvents() {
	for _, ev := range p.ep.Events() {
		p.events = append(p.events, KnetLinkEvent{Node: p.self, LinkEvent: ev})
		if p.sim != nil && p.sim.opts.Trace != nil {
			state := "down"
			if ev.Up {
				state = "up"
			}
			text := fmt.Sprintf("host %d link %d %s", ev.Host, ev.Link, state)
			if !ev.Reachable {
				text += " (host unreachable)"
			}
			p.sim.traceNode(p.node, "knet", text)
		}
	}
}

// stackOf is the StackProtocol a node runs, alone or under knet.
func stackOf(p Protocol) (*StackProtocol, bool) {
	switch q := p.(type) {
	case *StackProtocol:
		return q, true
	case *KnetProtocol:
		return q.st, true
	}
	return nil, false
}

// simBinder is a protocol that wants its simulator and node at start (its clock, its trace).
type simBinder interface{ bind(s *Sim, n *Node) }

// sourceStepper is a protocol that checks where a datagram came from (knet's access list):
// the simulator gives it the sending node beside the link.
type sourceStepper interface {
	StepFrom(now time.Duration, from srp.NodeID, link int, d []byte) error
}

// describeKnet is a trace line's text for a knet packet in clear: its type and fields, and
// for an unfragmented DATA packet the totem packet inside it.
func describeKnet(from srp.NodeID, data []byte) (string, bool) {
	var k knet.Packet
	if k.Decode(data) != nil {
		return "", false
	}
	switch k.Type {
	case knet.TypeData:
		if k.FragNum > 1 {
			return fmt.Sprintf("knet DATA seq=%d fragment %d/%d from n%d", k.Seq, k.FragSeq, k.FragNum, from), true
		}
		if _, _, err := srp.PeekHeader(k.Data); err == nil {
			return fmt.Sprintf("knet DATA seq=%d: %s", k.Seq, describe(from, k.Data)), true
		}
		return fmt.Sprintf("knet DATA seq=%d from n%d", k.Seq, from), true
	case knet.TypePing, knet.TypePong, knet.TypePMTUD, knet.TypePMTUDReply:
		return fmt.Sprintf("knet %s link %d from n%d", k.Type, k.Link, from), true
	}
	return fmt.Sprintf("knet %s from n%d", k.Type, from), true
}

// portUnreachable is the ICMP port unreachable a datagram to a crashed node's port earns:
// the sender's knet, if it runs one, takes that link to the node down one link latency
// later, unless the way back is cut (then the error is lost like any datagram).
func (s *Sim) portUnreachable(e *event) {
	from, to, l := e.from, e.node.ID, e.link
	if from == to || s.net.cut[link{to, from}] || s.net.ringCut[ringLink{to, from, l}] {
		return
	}
	sender := s.Node(from)
	if sender == nil || !sender.up {
		return
	}
	if _, ok := sender.proc.(*KnetProtocol); !ok {
		// Only knet reacts; scheduling nothing keeps every other run's events (and step
		// numbers) as they were.
		return
	}
	inc := sender.incarnation
	s.At(s.now+s.net.params(to, from).Latency, "", func() error {
		p, ok := sender.proc.(*KnetProtocol)
		if !ok || !sender.up || sender.paused || sender.incarnation != inc || l < 0 || l >= knet.MaxLink {
			return nil
		}
		p.ep.LinkError(s.now, knet.HostID(to), uint8(l))
		p.linkEvents()
		return s.drain(sender)
	})
}
