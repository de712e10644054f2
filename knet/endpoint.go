package knet

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
)

// PeerLink is one link to a remote host: the address its packets come from and go to
// (corosync: ringL_addr and port 5405+L) and its timers.
type PeerLink struct {
	Link   uint8
	Addr   netip.AddrPort
	Config LinkConfig
}

// EndpointConfig is one node's knet handle as corosync sets it up.
type EndpointConfig struct {
	Self  HostID
	Mode  LinkMode
	Peers map[HostID][]PeerLink
	// Keyring seals and opens packets (nil: clear traffic only).
	Keyring *Keyring
	// Salt supplies each sealed packet's random salt: crypto/rand.Reader in a daemon, a
	// seeded source in the simulator. Unused without crypto.
	Salt io.Reader
	// DefragBuffers bounds reassembly per host (0: libknet's 32).
	DefragBuffers int
}

// Datagram is a UDP payload to send on a link's socket to an address.
type Datagram struct {
	Link uint8
	To   netip.AddrPort
	Data []byte
}

// Message is a complete user message received from a host.
type Message struct {
	From HostID
	Data []byte
}

// EndpointCounters count what Receive did with each datagram (one counter per outcome, so
// every datagram lands in exactly one) and what Send sent.
type EndpointCounters struct {
	Crypto      uint64 // did not open: wrong key, tampered, truncated, or clear while refused
	Malformed   uint64 // opened but not a knet v1 packet
	UnknownHost uint64 // from a host id not configured
	BadSource   uint64 // source address is not the host's configured one for that link
	Unreachable uint64 // DATA from a host with no link up (libknet drops it)
	Duplicate   uint64 // DATA whose seq was already delivered, in link_mode active: another link's copy
	Replay      uint64 // DATA whose seq was already delivered, in passive or rr mode: a replay (or a copy the network made)
	Fragment    uint64 // DATA fragment held for reassembly
	Expired     uint64 // DATA fragment of a message already given up
	BadFragment uint64 // DATA with impossible fragment fields
	Compressed  uint64 // DATA compressed by the sender (knet_compression_model): not supported
	Delivered   uint64 // DATA that completed a message
	Ping        uint64
	Pong        uint64
	PongIgnored uint64 // too late (older than the ping timeout) or for an unknown link
	PMTUD       uint64 // probes answered and replies received
	Sent        uint64 // datagrams Send and Tick produced
	Unroutable  uint64 // destinations Send skipped: unknown or unreachable host
}

// Endpoint is one node's knet: the composition of Keyring, Tx, HostRx per host, Links and
// the address checks libknet makes, as one pure state machine. The driver owns the sockets
// (one per link) and the clock: it passes every datagram received to Receive, sends what
// Receive, Send and Tick return, and calls Tick at NextTick. Path MTU discovery is the
// driver's (it needs the kernel's answers, see PMTUD); it sets the result with SetDataMTU.
//
// Returned slices (datagrams, messages) are valid until the next call.
type Endpoint struct {
	cfg      EndpointConfig
	keyring  *Keyring
	links    *Links
	tx       Tx
	rx       map[HostID]*HostRx
	peers    map[HostID][MaxLink]*PeerLink
	dataMTU  int
	counters EndpointCounters
	events   []LinkEvent

	replies []PMTUDReplyInfo

	out    []Datagram
	msgs   []Message
	pkts   []Packet
	plain  []byte
	wire   []byte
	routes []uint8
	salt   [SaltSize]byte
	jobs   []SealJob
	sealer Sealer
}

// NewEndpoint checks cfg and builds the endpoint; links start down and come up by pings.
func NewEndpoint(cfg EndpointConfig) (*Endpoint, error) {
	if cfg.Keyring == nil {
		cfg.Keyring = NewKeyring(nil)
	}
	e := &Endpoint{cfg: cfg, keyring: cfg.Keyring, links: NewLinks(cfg.Self, cfg.Mode), tx: Tx{Self: cfg.Self},
		rx: map[HostID]*HostRx{}, peers: map[HostID][MaxLink]*PeerLink{}}
	// Hosts in id order, not the map's: the link layer keeps them in the order added, which
	// is the order of every broadcast, heartbeat and status, and a pure state machine must
	// not depend on map iteration (the simulator replays by seed).
	hosts := make([]HostID, 0, len(cfg.Peers))
	for host := range cfg.Peers {
		hosts = append(hosts, host)
	}
	slices.Sort(hosts)
	for _, host := range hosts {
		pls := cfg.Peers[host]
		var arr [MaxLink]*PeerLink
		for i := range pls {
			pl := pls[i]
			if err := e.links.AddLink(host, pl.Link, pl.Config); err != nil {
				return nil, err
			}
			if arr[pl.Link] != nil {
				return nil, fmt.Errorf("knet: host %d link %d configured twice", host, pl.Link)
			}
			arr[pl.Link] = &pl
		}
		e.peers[host] = arr
		e.rx[host] = NewHostRx(cfg.DefragBuffers)
	}
	if e.keyring.InUse() != 0 && cfg.Salt == nil {
		return nil, errors.New("knet: crypto needs a salt source")
	}
	e.dataMTU = MinDataMTU(e.keyring.slots[e.keyring.InUse()])
	return e, nil
}

// LinkStatus reports every link of every host.
func (e *Endpoint) LinkStatus() []LinkStatus { return e.links.Status() }

// Reachable reports whether host has a link up.
func (e *Endpoint) Reachable(host HostID) bool { return e.links.Reachable(host) }

// Events returns and clears the link up/down events.
func (e *Endpoint) Events() []LinkEvent {
	ev := e.events
	e.events = nil
	return ev
}

// drain moves the link layer's events to the endpoint's, resetting the receive state of a
// host that has no link left, as libknet clears its buffers then.
func (e *Endpoint) drain() {
	for _, ev := range e.links.Events() {
		if !ev.Up && !ev.Reachable {
			if rx := e.rx[ev.Host]; rx != nil {
				rx.Reset()
			}
		}
		e.events = append(e.events, ev)
	}
}

// LinkError reports a socket error for host's link (ICMP port unreachable): the link goes
// down at once.
func (e *Endpoint) LinkError(now time.Duration, host HostID, link uint8) {
	e.links.LinkError(now, host, link)
	e.drain()
}

// Counters returns the counters.
func (e *Endpoint) Counters() EndpointCounters { return e.counters }

// DataMTU is the user bytes per DATA packet Send uses.
func (e *Endpoint) DataMTU() int { return e.dataMTU }

// SetDataMTU sets the data MTU (the smallest PMTUD result over the links in use).
func (e *Endpoint) SetDataMTU(n int) {
	if n > 0 {
		e.dataMTU = n
	}
}

// seal appends the wire form of the knet packet plain to e.wire and returns it.
func (e *Endpoint) seal(plain []byte) []byte {
	if e.keyring.InUse() != 0 {
		if _, err := io.ReadFull(e.cfg.Salt, e.salt[:]); err != nil {
			// A salt source that fails is a driver bug; a zero salt would only weaken
			// confidentiality of this packet, never its authenticity.
			e.salt = [SaltSize]byte{}
		}
	}
	start := len(e.wire)
	e.wire = e.keyring.Seal(e.wire, plain, &e.salt)
	return e.wire[start:]
}

func (e *Endpoint) emit(link uint8, to netip.AddrPort, data []byte) {
	e.out = append(e.out, Datagram{Link: link, To: to, Data: data})
	e.counters.Sent++
}

// Send turns one user message into the datagrams that carry it: one seq number, fragments
// at the data MTU, each sealed once and sent to every destination on the links the link
// mode picks. dests nil is a broadcast to every reachable host (bcast 1); otherwise the
// listed hosts (bcast 0), as corosync's filter callback chooses by the totem header's
// target_nodeid. Unknown or unreachable destinations are skipped and counted. The data is
// not delivered to the sender itself (corosync's loopback link): that is the driver's.
func (e *Endpoint) Send(now time.Duration, msg []byte, dests []HostID) ([]Datagram, error) {
	e.ResetSend()
	ds, jobs, err := e.SendMore(now, msg, dests)
	for i := range jobs {
		jobs[i].Run(&e.sealer)
	}
	return ds, err
}

// ResetSend starts a batch of SendMore calls: the datagrams and jobs of the previous batch
// (and of Send, Tick and Receive, which share the buffers) are invalid from now on.
func (e *Endpoint) ResetSend() {
	e.out, e.wire = e.out[:0], e.wire[:0]
	clear(e.jobs) // drop the references to the keys
	e.jobs = e.jobs[:0]
}

// SendMore is Send for a batch of messages whose sealing the driver takes over: it assigns
// the seq number, fragments, draws every fragment's salt in order and lays each packet's
// plaintext out in its wire buffer, and returns this message's datagrams together with the
// jobs that seal them (none without crypto). A datagram's data are valid once every job of
// its message has run, until the next ResetSend. The datagrams of earlier SendMore calls of
// the batch stay valid, so a driver defers a whole token visit, seals its messages on
// several goroutines and sends each as soon as it is sealed, in order. No job may run
// while SendMore or any other method of e runs (a later call may move the buffers the
// jobs were made over; the jobs and datagrams keep pointing at the old ones).
func (e *Endpoint) SendMore(now time.Duration, msg []byte, dests []HostID) ([]Datagram, []SealJob, error) {
	o0, j0 := len(e.out), len(e.jobs)
	var err error
	var force bool
	e.pkts, force, err = e.tx.Send(e.pkts[:0], msg, e.dataMTU, dests == nil, 0)
	if err != nil {
		return nil, nil, err
	}
	for i := range e.pkts {
		w := e.sealLater(&e.pkts[i])
		if dests == nil {
			for _, h := range e.links.hosts {
				e.dispatch(h.id, w)
			}
		} else {
			for _, h := range dests {
				if _, ok := e.peers[h]; !ok || !e.links.Reachable(h) {
					if i == 0 {
						e.counters.Unroutable++
					}
					continue
				}
				e.dispatch(h, w)
			}
		}
	}
	if force {
		e.links.ForcePings(now, e.tx.Seq(), e.pingOut)
	}
	return e.out[o0:], e.jobs[j0:], nil
}

// sealLater lays p out in e.wire as seal would seal it (its salt drawn now, in order) and
// queues the job that finishes it; clear packets are final at once.
func (e *Endpoint) sealLater(p *Packet) []byte {
	c := e.keyring.sealing()
	start := len(e.wire)
	if c == nil {
		e.wire = p.AppendEncode(e.wire)
		return e.wire[start:len(e.wire):len(e.wire)]
	}
	n := p.EncodedLen()
	size := c.sealedSize(n)
	e.wire = grow(e.wire, size)
	w := e.wire[start : start+size : start+size]
	off := c.plainOffset()
	if off > 0 {
		if _, err := io.ReadFull(e.cfg.Salt, w[:SaltSize]); err != nil {
			clear(w[:SaltSize]) // as seal: a driver bug, never a weaker MAC
		}
	}
	p.AppendEncode(w[off:off])
	e.jobs = append(e.jobs, SealJob{c: c, wire: w, n: n})
	return w
}

func (e *Endpoint) dispatch(host HostID, w []byte) {
	e.routes = e.links.Route(e.routes[:0], host)
	for _, l := range e.routes {
		if pl := e.peers[host][l]; pl != nil {
			e.emit(l, pl.Addr, w)
		}
	}
}

func (e *Endpoint) pingOut(host HostID, link uint8, p *Packet) {
	pl := e.peers[host][link]
	if pl == nil {
		return
	}
	e.plain = p.AppendEncode(e.plain[:0])
	e.emit(link, pl.Addr, e.seal(e.plain))
}

// Tick runs the link layer's heartbeat: pings due and pong timeouts. It returns the pings to
// send; link changes go to Events.
func (e *Endpoint) Tick(now time.Duration) []Datagram {
	e.out, e.wire = e.out[:0], e.wire[:0]
	e.links.Tick(now, e.tx.Seq(), e.pingOut)
	e.drain()
	return e.out
}

// NextTick is when Tick is next due.
func (e *Endpoint) NextTick() time.Duration { return e.links.NextTick() }

// Receive takes one datagram that arrived on link's socket from the address from. It
// returns the messages it completed and the datagrams to send in answer (pongs, PMTUd
// replies). Whatever it drops is counted.
func (e *Endpoint) Receive(now time.Duration, link uint8, from netip.AddrPort, wire []byte) ([]Message, []Datagram) {
	var err error
	e.plain, _, err = e.keyring.Open(e.plain[:0], wire)
	return e.ReceiveOpened(now, link, from, e.plain, err)
}

// Encrypted reports whether any crypto configuration is installed (Open then does real work).
func (e *Endpoint) Encrypted() bool { return e.keyring.slots[1] != nil || e.keyring.slots[2] != nil }

// Open is Receive's first step for a driver that opens datagrams on several goroutines:
// it appends the knet packet wire carries to dst, with the keyring as Receive opens it
// (the configuration in use, then the other, then clear if allowed), using o's scratch.
// Calls with distinct Openers may run concurrently with each other, not with any other
// method of e. The result goes to ReceiveOpened, in the order the datagrams arrived.
func (e *Endpoint) Open(o *Opener, dst, wire []byte) ([]byte, error) {
	out, _, err := e.keyring.open(o, dst, wire)
	return out, err
}

// ReceiveOpened is Receive for a datagram Open already opened: plain is Open's result
// (the returned messages may point into it) and err its error, counted as Receive counts it.
func (e *Endpoint) ReceiveOpened(now time.Duration, link uint8, from netip.AddrPort, plain []byte, err error) ([]Message, []Datagram) {
	e.out, e.msgs, e.wire = e.out[:0], e.msgs[:0], e.wire[:0]
	if err != nil {
		e.counters.Crypto++
		return nil, nil
	}
	var p Packet
	if p.Decode(plain) != nil {
		e.counters.Malformed++
		return nil, nil
	}
	peer, ok := e.peers[p.Host]
	if !ok {
		e.counters.UnknownHost++
		return nil, nil
	}
	if p.Type.IsService() {
		// The link byte names the link; its configured address must be the source (knet's
		// access list), and replies go to that configured address, not the source port.
		pl := peer[p.Link%MaxLink]
		if pl == nil || pl.Addr.Addr() != from.Addr() {
			e.counters.BadSource++
			return nil, nil
		}
		switch p.Type {
		case TypePing:
			e.counters.Ping++
			e.rx[p.Host].Ping(&p)
			pong := p.Pong(e.cfg.Self)
			e.plain = pong.AppendEncode(e.plain[:0])
			e.emit(pl.Link, pl.Addr, e.seal(e.plain))
		case TypePong:
			if e.links.Pong(now, p.Host, &p) {
				e.counters.Pong++
			} else {
				e.counters.PongIgnored++
			}
			e.drain()
		case TypePMTUD:
			e.counters.PMTUD++
			r := p.PMTUDReply(e.cfg.Self)
			e.plain = r.AppendEncode(e.plain[:0])
			e.emit(pl.Link, pl.Addr, e.seal(e.plain))
		case TypePMTUDReply:
			e.counters.PMTUD++
			e.replies = append(e.replies, PMTUDReplyInfo{Host: p.Host, Link: pl.Link, Size: int(p.Size)})
		}
		return nil, e.out
	}
	// DATA: the source must be one of the host's configured link addresses.
	known := false
	for _, pl := range peer {
		if pl != nil && pl.Addr.Addr() == from.Addr() {
			known = true
			break
		}
	}
	if !known {
		e.counters.BadSource++
		return nil, nil
	}
	if !e.links.Reachable(p.Host) {
		e.counters.Unreachable++
		return nil, nil
	}
	if p.Compress != 0 {
		// corosync's default knet_compression_model is none; a node configured with zlib
		// or lz4 would send data gototem cannot read, so it is refused rather than
		// delivered as garbage.
		e.counters.Compressed++
		return nil, nil
	}
	msg, r := e.rx[p.Host].Data(&p)
	switch r {
	case RxDeliver:
		e.counters.Delivered++
		e.msgs = append(e.msgs, Message{From: p.Host, Data: msg})
		return e.msgs, nil
	case RxDuplicate:
		// Only active mode sends a packet on several links; in passive and rr mode every
		// DATA packet leaves once, so a second copy of a delivered seq is a replay (a
		// captured packet sent again, which passes the crypto check) or the network's.
		if e.cfg.Mode == Active {
			e.counters.Duplicate++
		} else {
			e.counters.Replay++
		}
	case RxHeld:
		e.counters.Fragment++
	case RxExpired:
		e.counters.Expired++
	default:
		e.counters.BadFragment++
	}
	return nil, nil
}
