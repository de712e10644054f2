package knet

import (
	"errors"
	"fmt"
	"time"
)

// LinkMode is corosync's totem.link_mode, knet's link handler policy for every host.
type LinkMode uint8

const (
	// Passive sends each packet on one link: the connected link of highest
	// knet_link_priority (the lowest link number among equals).
	Passive LinkMode = iota
	// Active sends each packet on every connected link; the receiver's seq window drops
	// the copies.
	Active
	// RR sends each packet on one connected link, rotating through them.
	RR
)

func (m LinkMode) String() string {
	switch m {
	case Active:
		return "active"
	case RR:
		return "rr"
	}
	return "passive"
}

// ParseLinkMode reads totem.link_mode (corosync's default is passive).
func ParseLinkMode(s string) (LinkMode, error) {
	switch s {
	case "", "passive":
		return Passive, nil
	case "active":
		return Active, nil
	case "rr":
		return RR, nil
	}
	return Passive, fmt.Errorf("knet: link_mode %q: want passive, active or rr", s)
}

// Heartbeat is libknet's KNET_THREADS_TIMERES: its heartbeat thread wakes every 200 ms,
// pings the links whose ping interval has passed and checks their pong timeouts. That is
// why a 912 ms knet_ping_interval shows as pings 1000 ms apart on the wire.
const Heartbeat = 200 * time.Millisecond

const (
	// pongTimeoutBackoff is KNET_LINK_PONG_TIMEOUT_BACKOFF: a link that was just configured
	// or went down waits this many ping timeouts for a pong before being declared down
	// (again); the factor drops by one per second to 1.
	pongTimeoutBackoff = 10
	// pongTimeoutLatMul is KNET_LINK_PONG_TIMEOUT_LAT_MUL: the link's mean latency, times
	// this, is added to the pong timeout.
	pongTimeoutLatMul = 2
	// adjustEvery: the backoff is adjusted every 5th heartbeat (~1 s).
	adjustEvery = 5
)

// LinkConfig is one link's knet settings as corosync gives them to libknet. Zero values
// take libknet's defaults; corosync passes its own (see CorosyncLinkConfig).
type LinkConfig struct {
	PingInterval  time.Duration // knet_ping_interval (libknet default 1000 ms)
	PingTimeout   time.Duration // knet_ping_timeout (2000 ms)
	PingPrecision int           // knet_ping_precision: latency samples averaged (2048)
	PongCount     int           // knet_pong_count: pongs counted before "up" (5)
	Priority      uint8         // knet_link_priority (passive mode: highest wins)
}

// CorosyncLinkConfig is what corosync 3.1.7 configures for a link when corosync.conf says
// nothing: pong count 2, precision 2048, priority 1, ping timeout token/pong_count and
// interval token/(2·pong_count) for the runtime token timeout (3650 ms by default for 3
// nodes gives 1825 and 912 ms, the values of the knet captures).
func CorosyncLinkConfig(token time.Duration) LinkConfig {
	const pongCount = 2
	return LinkConfig{
		PingInterval:  (token / (2 * pongCount)).Truncate(time.Millisecond),
		PingTimeout:   (token / pongCount).Truncate(time.Millisecond),
		PingPrecision: 2048,
		PongCount:     pongCount,
		Priority:      1,
	}
}

func (c *LinkConfig) fill() error {
	if c.PingInterval == 0 {
		c.PingInterval = 1000 * time.Millisecond
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = 2000 * time.Millisecond
	}
	if c.PingPrecision == 0 {
		c.PingPrecision = 2048
	}
	if c.PongCount == 0 {
		c.PongCount = 5
	}
	if c.PingInterval < 0 || c.PingTimeout <= 0 || c.PingPrecision < 0 || c.PongCount < 1 || c.PongCount > 255 {
		return fmt.Errorf("knet: bad link timers %+v", *c)
	}
	return nil
}

// LinkEvent reports a link going up or down.
type LinkEvent struct {
	Host HostID
	Link uint8
	Up   bool
	At   time.Duration
	// Reachable is whether the host still has a link up after the change. A host that
	// became unreachable must have its receive state reset (HostRx.Reset), as libknet
	// clears its buffers; a link that came up asks for a PMTUd run.
	Reachable bool
}

// LinkStatus is one link of one host, as corosync-cfgtool -s shows it.
type LinkStatus struct {
	Host      HostID
	Link      uint8
	Enabled   bool
	Connected bool
	Priority  uint8
	// Latency is the mean round trip over the last PingPrecision pongs.
	Latency time.Duration
	// PongTimeout is the current pong timeout (ping timeout × backoff + 2 × latency).
	PongTimeout time.Duration
}

type linkState struct {
	cfg          LinkConfig
	enabled      bool
	connected    bool
	receivedPong int
	pinged       bool
	pingLast     time.Duration
	havePong     bool
	pongLast     time.Duration
	latencyUs    int64
	samples      int
	backoff      int
	adjUs        int64 // pong_timeout_adj in microseconds
}

type hostLinks struct {
	id     HostID
	links  [MaxLink]linkState
	active []uint8 // libknet's active_links: where DATA to this host goes
}

// Links is the knet link layer of one node: for every other host and each of its links
// (0..7), the ping/pong heartbeat, latency, the up/down decision, and which links carry
// DATA under the link mode. It is libknet 1.25's threads_heartbeat.c, the pong handling
// of threads_rx.c and host.c's destination cache, as a pure state machine in the shape of
// rrp.Ring: the driver calls Tick at NextTick, hands it PONGs and socket errors, and asks
// Route where a DATA packet goes. Time is a monotonic duration; a PING carries it as its
// timestamp, and the echoing PONG gives the round trip.
type Links struct {
	self   HostID
	mode   LinkMode
	hosts  []*hostLinks
	byID   map[HostID]*hostLinks
	beat   int
	next   time.Duration
	events []LinkEvent
	ping   Packet
}

// NewLinks is the link layer of host self.
func NewLinks(self HostID, mode LinkMode) *Links {
	return &Links{self: self, mode: mode, byID: map[HostID]*hostLinks{}, beat: 1}
}

// Mode returns the link mode.
func (l *Links) Mode() LinkMode { return l.mode }

// AddLink configures and enables link of host: it starts pinging at the next heartbeat and
// comes up after PongCount+1 pongs.
func (l *Links) AddLink(host HostID, link uint8, cfg LinkConfig) error {
	if host == l.self {
		return errors.New("knet: a host does not ping itself (corosync uses a loopback link)")
	}
	if link >= MaxLink {
		return fmt.Errorf("knet: link %d, want 0..%d", link, MaxLink-1)
	}
	if err := cfg.fill(); err != nil {
		return err
	}
	h := l.byID[host]
	if h == nil {
		h = &hostLinks{id: host}
		l.byID[host] = h
		l.hosts = append(l.hosts, h)
	}
	h.links[link] = linkState{cfg: cfg, enabled: true, backoff: pongTimeoutBackoff,
		adjUs: cfg.PingTimeout.Microseconds() * pongTimeoutBackoff}
	return nil
}

// NextTick is when the heartbeat next runs (0 before the first Tick: run it now).
func (l *Links) NextTick() time.Duration { return l.next }

// Tick runs one heartbeat at now: about once a second the pong timeouts relax towards the
// ping timeout; every enabled link whose ping interval has passed is pinged (emit gets the
// PING to send on that link; seq is the node's current DATA seq counter, and p is only
// valid during the call); a link without a pong for its pong timeout goes down.
func (l *Links) Tick(now time.Duration, seq uint16, emit func(host HostID, link uint8, p *Packet)) {
	if l.beat%adjustEvery == 0 {
		l.adjust()
		l.beat = 1
	} else {
		l.beat++
	}
	l.sendPings(now, seq, true, emit)
	l.next = now + Heartbeat
}

// ForcePings sends an untimed ping on every link now, as libknet does every SEQ_MAX/8 DATA
// packets so that receivers can tell a sender's counter wrapped from a restart.
func (l *Links) ForcePings(now time.Duration, seq uint16, emit func(host HostID, link uint8, p *Packet)) {
	l.sendPings(now, seq, false, emit)
}

func (l *Links) sendPings(now time.Duration, seq uint16, timed bool, emit func(host HostID, link uint8, p *Packet)) {
	for _, h := range l.hosts {
		for i := range h.links {
			s := &h.links[i]
			if !s.enabled {
				continue
			}
			if !timed || !s.pinged || now-s.pingLast >= s.cfg.PingInterval {
				l.ping = NewPing(l.self, uint8(i), int64(now/time.Second), int64(now%time.Second), seq, timed)
				emit(h.id, uint8(i), &l.ping)
				s.pinged, s.pingLast = true, now
			}
			if s.havePong && (now-s.pongLast).Microseconds() >= s.adjUs {
				l.down(now, h, uint8(i))
			}
		}
	}
}

// adjust is _adjust_pong_timeouts.
func (l *Links) adjust() {
	for _, h := range l.hosts {
		for i := range h.links {
			s := &h.links[i]
			if !s.enabled {
				continue
			}
			if s.backoff > 1 {
				s.backoff--
			}
			s.adjUs = s.cfg.PingTimeout.Microseconds()*int64(s.backoff) + s.latencyUs*pongTimeoutLatMul
		}
	}
}

// Pong takes a PONG received from host (the link is the one its link byte names, as in
// libknet). It returns false for a pong that was ignored (unknown host or link, or older
// than the ping timeout).
func (l *Links) Pong(now time.Duration, host HostID, p *Packet) bool {
	h := l.byID[host]
	if h == nil || p.Type != TypePong {
		return false
	}
	s := &h.links[p.Link%MaxLink]
	if !s.enabled {
		return false
	}
	s.havePong, s.pongLast = true, now
	sent := time.Duration(p.TimeSec)*time.Second + time.Duration(p.TimeNsec)
	latUs := (now - sent).Microseconds()
	if latUs < 0 || latUs > s.cfg.PingTimeout.Microseconds() {
		// An answer to a ping older than the timeout says nothing about the link now.
		return false
	}
	s.samples = min(s.samples+1, s.cfg.PingPrecision)
	s.latencyUs = (s.latencyUs*int64(s.samples-1) + latUs) / int64(s.samples)
	if s.latencyUs < s.adjUs && !s.connected {
		if s.receivedPong >= s.cfg.PongCount {
			l.up(now, h, p.Link%MaxLink)
		} else {
			s.receivedPong++
		}
	}
	return true
}

// LinkError takes a socket error for host's link (ICMP port unreachable after the peer's
// corosync died): libknet sets the link down at once instead of waiting for the timeout.
func (l *Links) LinkError(now time.Duration, host HostID, link uint8) {
	if h := l.byID[host]; h != nil && link < MaxLink && h.links[link].enabled {
		l.down(now, h, link)
	}
}

// down is _link_down: the link must earn PongCount+1 pongs again, with a fresh backoff.
func (l *Links) down(now time.Duration, h *hostLinks, link uint8) {
	s := &h.links[link]
	s.receivedPong, s.havePong, s.backoff = 0, false, pongTimeoutBackoff
	if s.connected {
		s.connected = false
		h.update(l.mode)
		l.events = append(l.events, LinkEvent{Host: h.id, Link: link, Up: false, At: now, Reachable: len(h.active) > 0})
	}
}

func (l *Links) up(now time.Duration, h *hostLinks, link uint8) {
	h.links[link].connected = true
	h.update(l.mode)
	l.events = append(l.events, LinkEvent{Host: h.id, Link: link, Up: true, At: now, Reachable: true})
}

// update is _host_dstcache_update_sync: passive keeps the single connected link of highest
// priority (the first among equals), active and rr keep every connected link in order.
func (h *hostLinks) update(mode LinkMode) {
	h.active = h.active[:0]
	best := -1
	for i := range h.links {
		s := &h.links[i]
		if !s.enabled || !s.connected {
			continue
		}
		if mode != Passive {
			h.active = append(h.active, uint8(i))
			continue
		}
		if int(s.Priority()) > best {
			best = int(s.Priority())
			h.active = append(h.active[:0], uint8(i))
		}
	}
}

// Priority is the link's knet_link_priority.
func (s *linkState) Priority() uint8 { return s.cfg.Priority }

// Route appends to dst the links a DATA packet to host goes on: none while the host has no
// link up (knet sends it no data at all then), one in passive and rr mode, all connected
// ones in active mode. In rr mode each call moves on to the next link.
func (l *Links) Route(dst []uint8, host HostID) []uint8 {
	h := l.byID[host]
	if h == nil || len(h.active) == 0 {
		return dst
	}
	switch l.mode {
	case Active:
		return append(dst, h.active...)
	case RR:
		first := h.active[0]
		copy(h.active, h.active[1:])
		h.active[len(h.active)-1] = first
		return append(dst, first)
	}
	return append(dst, h.active[0])
}

// Reachable reports whether host has a link up.
func (l *Links) Reachable(host HostID) bool {
	h := l.byID[host]
	return h != nil && len(h.active) > 0
}

// Events returns and clears the link up/down events.
func (l *Links) Events() []LinkEvent {
	ev := l.events
	l.events = nil
	return ev
}

// Status reports every enabled link of every host, hosts in the order they were added.
func (l *Links) Status() []LinkStatus {
	var out []LinkStatus
	for _, h := range l.hosts {
		for i := range h.links {
			s := &h.links[i]
			if !s.enabled {
				continue
			}
			out = append(out, LinkStatus{Host: h.id, Link: uint8(i), Enabled: true, Connected: s.connected,
				Priority: s.cfg.Priority, Latency: time.Duration(s.latencyUs) * time.Microsecond,
				PongTimeout: time.Duration(s.adjUs) * time.Microsecond})
		}
	}
	return out
}
