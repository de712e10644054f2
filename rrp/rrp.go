// Package rrp is the redundant ring protocol: one Totem ring carried over two or more links
// (networks), with corosync 2.x's active and passive modes, per-link fault detection, and
// automatic recovery of a link that heals. corosync 3 dropped it for udp/udpu (only knet has
// links there); gototem keeps it so two-ring corosync 2 configurations keep working.
//
// Like srp it is pure: no goroutines, clock or I/O. It sits between srp and the transport links:
// srp's outgoing datagrams go through Send, which says which links carry each one; datagrams
// received on any link go through Receive, which says whether srp should see them. It peeks at
// Totem headers only (type, ring id, sequence numbers) and never changes a datagram.
//
// Differences from corosync 2.x, on purpose: in active mode a token is handed to srp on its
// first arrival instead of being held until every link delivered it (the hold added up to
// rrp_token_expired_timeout of latency per hop while a link was broken); a link that does not
// deliver the token within rrp_token_expired_timeout of the first copy still earns a problem
// count exactly as in 2.x. A faulty link keeps carrying traffic as a probe (active: everything;
// passive: tokens), so its recovery is seen without a separate test message.
//
// In passive mode tokens are routed differently from 2.x's passive_token_send, which has each
// node alternate links for the tokens it sends. With one link cut, that loses about every
// other hop's copy, each recovered only by srp's token_retransmit (token / 4.2): at 5 or more
// nodes a rotation outlasts the token timeout and the membership is lost well before the lag
// rule (rrp_problem_count_threshold tokens) marks the link faulty. Here the representative
// starts each rotation on the next link in turn, every other member forwards the token on the
// link it arrived on, and a retransmission (the same ring id and token_seq sent again) goes on
// the next link after the one its previous copy took. A cut link then costs at most about one
// token_retransmit per rotation whatever the ring's size, each link still carries every other
// rotation so the lag rule keeps its meaning, and there is still one copy of each token on the
// wire. Retransmissions are not charged as problem counts: with this routing only the
// representative meets a cut link, once per two rotations, so the lag rule (one token of lag
// per rotation) marks the link faulty first, and a charge could only add false suspicion
// from a token that was merely slow.
package rrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/gototem/gototem/srp"
)

// Mode is rrp_mode.
type Mode uint8

const (
	None Mode = iota
	Active
	Passive
)

func (m Mode) String() string {
	switch m {
	case Active:
		return "active"
	case Passive:
		return "passive"
	}
	return "none"
}

// ParseMode reads rrp_mode's value.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "none":
		return None, nil
	case "active":
		return Active, nil
	case "passive":
		return Passive, nil
	}
	return None, fmt.Errorf("rrp: rrp_mode %q: want none, active or passive", s)
}

// Config configures a redundant ring. Zero durations and thresholds take corosync 2.x's
// defaults.
type Config struct {
	Mode  Mode
	Links int
	// ProblemCountThreshold problem counts mark a link faulty (default 10).
	ProblemCountThreshold int
	// ProblemCountMcastThreshold is passive mode's lag in multicasts (default 10 × threshold).
	ProblemCountMcastThreshold int
	// ProblemCountTimeout decays each link's problem count by one (default 2000 ms).
	ProblemCountTimeout time.Duration
	// TokenExpiredTimeout is how long after a token's first copy the other links have to
	// deliver theirs (default (Token − 50 ms) / threshold).
	TokenExpiredTimeout time.Duration
	// AutoRecoveryCheckTimeout is the window in which a faulty link must prove itself healthy to
	// be re-enabled (default 1000 ms).
	AutoRecoveryCheckTimeout time.Duration
	// Token is the effective token timeout, for the default and the 50 ms rule.
	Token time.Duration
	// LinkAddrs are the local addresses per link, for status texts.
	LinkAddrs []string
}

// dedupWindow bounds how long a seen token or message is remembered for duplicate dropping.
const dedupWindow = 4096

func (c *Config) fill() error {
	if c.Links < 1 || c.Links > 8 {
		return fmt.Errorf("rrp: %d links, want 1..8", c.Links)
	}
	if c.Mode == None && c.Links > 1 {
		return errors.New("rrp: several links need rrp_mode active or passive")
	}
	if c.ProblemCountThreshold == 0 {
		c.ProblemCountThreshold = 10
	}
	if c.ProblemCountMcastThreshold == 0 {
		c.ProblemCountMcastThreshold = 10 * c.ProblemCountThreshold
	}
	if c.ProblemCountTimeout == 0 {
		c.ProblemCountTimeout = 2000 * time.Millisecond
	}
	if c.AutoRecoveryCheckTimeout == 0 {
		c.AutoRecoveryCheckTimeout = 1000 * time.Millisecond
	}
	if c.Token == 0 {
		c.Token = 3000 * time.Millisecond
	}
	if c.TokenExpiredTimeout == 0 {
		c.TokenExpiredTimeout = (c.Token - 50*time.Millisecond) / time.Duration(c.ProblemCountThreshold)
		c.TokenExpiredTimeout = c.TokenExpiredTimeout.Truncate(time.Millisecond)
	}
	return CheckTiming(*c)
}

// CheckTiming enforces corosync 2.x's rule: threshold late tokens in a row must mark a link
// faulty before the token timeout (less 50 ms) declares the whole ring lost.
func CheckTiming(c Config) error {
	if c.ProblemCountThreshold < 1 || c.ProblemCountMcastThreshold < 1 {
		return errors.New("rrp: problem count thresholds must be positive")
	}
	if c.TokenExpiredTimeout < 30*time.Millisecond || c.ProblemCountTimeout < 30*time.Millisecond || c.AutoRecoveryCheckTimeout < 30*time.Millisecond {
		return errors.New("rrp: rrp timers may not be less than 30 ms")
	}
	if limit := c.Token - 50*time.Millisecond; time.Duration(c.ProblemCountThreshold)*c.TokenExpiredTimeout > limit {
		return fmt.Errorf("rrp: rrp_problem_count_threshold (%d) * rrp_token_expired_timeout (%v) must not exceed token - 50 ms (%v)",
			c.ProblemCountThreshold, c.TokenExpiredTimeout, limit)
	}
	return nil
}

// Event reports a link marked faulty or re-enabled.
type Event struct {
	Link   int
	Faulty bool
	At     time.Duration
	Text   string
}

// LinkStatus is one link's state as corosync-cfgtool -s (2.x) shows it.
type LinkStatus struct {
	Link         int
	Faulty       bool
	ProblemCount int
	Text         string
	Received     uint64
	Sent         uint64
}

// Counters of the redundant ring.
type Counters struct {
	Duplicates uint64 // copies dropped because another link delivered them first
	Delivered  uint64
	LateTokens uint64 // tokens a link failed to deliver in time
	Faults     uint64
	Recoveries uint64
	// TokenRetransmits counts passive-mode tokens srp sent again, each put on a link other
	// than the one the previous copy went on.
	TokenRetransmits uint64
}

type link struct {
	faulty   bool
	problems int
	// passive: tokens and mcasts received since the counts were last compared
	tokens, mcasts uint64
	// recovery: tokens seen and tokens missed in the current check window
	windowSeen, windowLate int
	recv, sent             uint64
}

type key struct {
	kind uint8
	rep  uint32
	seq  uint64
	a, b uint32
}

type seen struct {
	at       time.Duration
	links    uint8 // bitmask of links that delivered it
	token    bool
	expireAt time.Duration // tokens: when missing links earn a problem count (0: settled)
}

// Ring is the redundant ring state of one node.
type Ring struct {
	cfg   Config
	links []link

	seen  map[key]*seen
	order []key // insertion order, bounded by dedupWindow
	head  int

	// expiring lists tokens whose other copies are still awaited, in arrival order (their
	// deadlines are arrival + a constant, so the front expires first).
	expiring []*seen

	sendToken, sendMcast int // passive round robin

	// Passive token routing: the token srp last sent and the link its latest copy went on (a
	// second send of the same token is a retransmission), and the ring and link of the last
	// token delivered to srp (a member forwards the token on the link it came in on).
	sentKey     key
	sentLink    int
	sentValid   bool
	arrivedKey  key
	arrivedLink int
	arrivedOK   bool

	nextDecay time.Duration
	nextCheck time.Duration
	started   bool

	events   []Event
	counters Counters
}

// New builds the redundant ring.
func New(cfg Config) (*Ring, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Ring{cfg: cfg, links: make([]link, cfg.Links), seen: map[key]*seen{}}, nil
}

// Config returns the effective configuration (defaults filled).
func (r *Ring) Config() Config { return r.cfg }

func (r *Ring) start(now time.Duration) {
	if !r.started {
		r.started = true
		r.nextDecay = now + r.cfg.ProblemCountTimeout
		r.nextCheck = now + r.cfg.AutoRecoveryCheckTimeout
	}
}

// Send decides which links carry out and calls emit for each.
func (r *Ring) Send(now time.Duration, out srp.Outgoing, emit func(link int, out srp.Outgoing)) {
	r.start(now)
	token := out.Type == srp.TypeORFToken || out.Type == srp.TypeCommitToken
	if r.cfg.Mode != Passive {
		for i := range r.links {
			r.links[i].sent++
			emit(i, out)
		}
		return
	}
	// Passive: multicasts alternate rings; tokens are routed by passiveTokenLink. Faulty links
	// are skipped but still see every token as a probe.
	var chosen int
	if token {
		chosen = r.passiveTokenLink(out.Data)
	} else {
		chosen = r.roundRobin(&r.sendMcast)
	}
	r.links[chosen].sent++
	emit(chosen, out)
	if token {
		for i := range r.links {
			if i != chosen && r.links[i].faulty {
				r.links[i].sent++
				emit(i, out)
			}
		}
	}
}

// roundRobin picks the next non-faulty link after *ctr and advances *ctr past it.
func (r *Ring) roundRobin(ctr *int) int {
	chosen := r.usableFrom(*ctr)
	*ctr = chosen + 1
	return chosen
}

// usableFrom is the first non-faulty link at or after from, cyclically; with every link
// faulty it is from itself: keep trying them all, the ring is on its own.
func (r *Ring) usableFrom(from int) int {
	for k := range len(r.links) {
		if i := (from + k) % len(r.links); !r.links[i].faulty {
			return i
		}
	}
	return from % len(r.links)
}

// passiveTokenLink chooses the one link a token goes on (see the package comment for why it
// differs from corosync 2.x): a retransmission goes on the next link after the one its
// previous copy took; the ring's representative starts each rotation on the next link in
// turn; every other member forwards the token on the link it arrived on.
func (r *Ring) passiveTokenLink(data []byte) int {
	k, _, ok := identify(data)
	if !ok {
		return r.roundRobin(&r.sendToken)
	}
	var chosen int
	switch {
	case r.sentValid && k == r.sentKey:
		chosen = r.usableFrom(r.sentLink + 1)
		r.counters.TokenRetransmits++
	case !r.isRepSend(data, k) && r.arrivedOK && sameRing(k, r.arrivedKey) && !r.links[r.arrivedLink].faulty:
		chosen = r.arrivedLink
	default:
		chosen = r.roundRobin(&r.sendToken)
	}
	r.sentKey, r.sentLink, r.sentValid = k, chosen, true
	return chosen
}

// isRepSend reports whether a token of ring k is sent by that ring's representative (the
// sender's node id is in the header, the representative's in the ring id).
func (r *Ring) isRepSend(data []byte, k key) bool {
	h, _, err := srp.PeekHeader(data)
	return err == nil && uint32(h.NodeID) == k.rep
}

// sameRing reports whether two tokens belong to the same ring (and are of the same kind).
func sameRing(a, b key) bool { return a.kind == b.kind && a.rep == b.rep && a.seq == b.seq }

// Receive reports whether srp should see a datagram that arrived on link: false for a copy
// another link already delivered.
func (r *Ring) Receive(now time.Duration, linkNo int, datagram []byte) bool {
	r.start(now)
	if linkNo < 0 || linkNo >= len(r.links) {
		return false
	}
	l := &r.links[linkNo]
	l.recv++
	k, token, ok := identify(datagram)
	if !ok {
		// Membership traffic (JOIN, MERGE_DETECT, TOKEN_HOLD_CANCEL) and anything srp will
		// reject: srp handles repeats of these itself.
		r.counters.Delivered++
		return true
	}
	if token {
		l.tokens++
		l.windowSeen++
	} else {
		l.mcasts++
	}
	s := r.seen[k]
	if s != nil {
		s.links |= 1 << linkNo
		if s.expireAt != 0 && s.links == 1<<len(r.links)-1 {
			s.expireAt = 0 // every link delivered it: nothing to charge
		}
		r.counters.Duplicates++
		return false
	}
	s = &seen{at: now, links: 1 << linkNo, token: token}
	if token {
		r.arrivedKey, r.arrivedLink, r.arrivedOK = k, linkNo, true
	}
	if token && r.cfg.Mode == Active {
		s.expireAt = now + r.cfg.TokenExpiredTimeout
		r.expiring = append(r.expiring, s)
	}
	r.remember(k, s)
	if r.cfg.Mode == Passive {
		r.passiveMonitor(now)
	}
	r.counters.Delivered++
	return true
}

func (r *Ring) remember(k key, s *seen) {
	if len(r.order) < dedupWindow {
		r.order = append(r.order, k)
	} else {
		old := r.order[r.head]
		if os := r.seen[old]; os != nil && os.expireAt != 0 {
			r.settle(os)
		}
		delete(r.seen, old)
		r.order[r.head] = k
		r.head = (r.head + 1) % dedupWindow
	}
	r.seen[k] = s
}

// identify extracts a datagram's identity: tokens by (ring, token_seq), commit tokens by
// (ring, token_seq, memb_index), multicasts by (ring, seq, sender, encapsulation).
func identify(b []byte) (k key, token, ok bool) {
	h, swapped, err := srp.PeekHeader(b)
	if err != nil {
		return k, false, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if swapped {
		bo = binary.BigEndian
	}
	switch h.Type {
	case srp.TypeORFToken:
		if len(b) < srp.ORFTokenSize {
			return k, false, false
		}
		return key{kind: 0, a: bo.Uint32(b[17:]), rep: bo.Uint32(b[29:]), seq: bo.Uint64(b[33:])}, true, true
	case srp.TypeCommitToken:
		if len(b) < srp.CommitTokenSize {
			return k, false, false
		}
		return key{kind: 4, a: bo.Uint32(b[13:]), rep: bo.Uint32(b[17:]), seq: bo.Uint64(b[21:]), b: bo.Uint32(b[33:])}, true, true
	case srp.TypeMcast:
		if len(b) < srp.McastHeaderSize {
			return k, false, false
		}
		return key{kind: 1 + b[4]<<4, a: bo.Uint32(b[17:]), rep: bo.Uint32(b[25:]), seq: bo.Uint64(b[29:]), b: uint32(h.NodeID)}, false, true
	}
	return k, false, false
}

// settle charges a problem count to every healthy link that did not deliver a token in time.
func (r *Ring) settle(s *seen) {
	s.expireAt = 0
	for i := range r.links {
		if s.links&(1<<i) != 0 {
			continue
		}
		l := &r.links[i]
		l.windowLate++
		if l.faulty {
			continue
		}
		r.counters.LateTokens++
		l.problems++
		if l.problems >= r.cfg.ProblemCountThreshold {
			r.markFaulty(i, s.at+r.cfg.TokenExpiredTimeout)
		}
	}
}

// passiveMonitor compares the links' receive counts: a link lagging the best one by more than
// the threshold is marked faulty (corosync 2.x passive_monitor).
func (r *Ring) passiveMonitor(now time.Duration) {
	var maxTok, maxMc uint64
	for _, l := range r.links {
		if !l.faulty {
			maxTok, maxMc = max(maxTok, l.tokens), max(maxMc, l.mcasts)
		}
	}
	for i := range r.links {
		l := &r.links[i]
		if l.faulty {
			continue
		}
		if maxTok-l.tokens > uint64(r.cfg.ProblemCountThreshold) || maxMc-l.mcasts > uint64(r.cfg.ProblemCountMcastThreshold) {
			r.markFaulty(i, now)
		}
	}
}

func (r *Ring) markFaulty(i int, now time.Duration) {
	l := &r.links[i]
	if l.faulty {
		return
	}
	if r.healthy() == 1 {
		// corosync never marks the last working ring faulty: losing it is srp's token loss.
		l.problems = 0
		return
	}
	l.faulty = true
	l.windowSeen, l.windowLate = 0, 0
	r.counters.Faults++
	r.events = append(r.events, Event{Link: i, Faulty: true, At: now, Text: r.text(i)})
}

func (r *Ring) healthy() int {
	n := 0
	for _, l := range r.links {
		if !l.faulty {
			n++
		}
	}
	return n
}

// Tick runs the timers: token-expiry checks, problem-count decay, recovery checks.
func (r *Ring) Tick(now time.Duration) {
	r.start(now)
	for len(r.expiring) > 0 && (r.expiring[0].expireAt == 0 || r.expiring[0].expireAt <= now) {
		if s := r.expiring[0]; s.expireAt != 0 {
			r.settle(s)
		}
		r.expiring[0] = nil
		r.expiring = r.expiring[1:]
	}
	for r.nextDecay <= now {
		for i := range r.links {
			if r.links[i].problems > 0 && !r.links[i].faulty {
				r.links[i].problems--
			}
		}
		r.nextDecay += r.cfg.ProblemCountTimeout
	}
	if r.nextCheck <= now {
		for i := range r.links {
			l := &r.links[i]
			// A faulty link that carried tokens all through the window and missed none is
			// healthy again.
			if l.faulty && l.windowSeen > 0 && l.windowLate == 0 {
				l.faulty, l.problems = false, 0
				if r.cfg.Mode == Passive {
					// Start the lag comparison afresh.
					for j := range r.links {
						r.links[j].tokens, r.links[j].mcasts = 0, 0
					}
				}
				r.counters.Recoveries++
				r.events = append(r.events, Event{Link: i, Faulty: false, At: now, Text: r.text(i)})
			}
			l.windowSeen, l.windowLate = 0, 0
		}
		r.nextCheck = now + r.cfg.AutoRecoveryCheckTimeout
	}
}

// NextTick is when Tick next has work (0: never).
func (r *Ring) NextTick() time.Duration {
	if !r.started {
		return 0
	}
	next := min(r.nextDecay, r.nextCheck)
	for _, s := range r.expiring {
		if s.expireAt != 0 {
			return min(next, s.expireAt)
		}
	}
	return next
}

// Events returns and clears the fault and recovery events.
func (r *Ring) Events() []Event {
	ev := r.events
	r.events = nil
	return ev
}

// Counters returns the ring's counters.
func (r *Ring) Counters() Counters { return r.counters }

func (r *Ring) text(i int) string {
	addr := ""
	if i < len(r.cfg.LinkAddrs) {
		addr = r.cfg.LinkAddrs[i]
	}
	if r.links[i].faulty {
		return fmt.Sprintf("Marking ringid %d interface %s FAULTY", i, addr)
	}
	return fmt.Sprintf("ring %d active with no faults", i)
}

// Status reports every link.
func (r *Ring) Status() []LinkStatus {
	out := make([]LinkStatus, len(r.links))
	for i, l := range r.links {
		out[i] = LinkStatus{Link: i, Faulty: l.faulty, ProblemCount: l.problems, Text: r.text(i), Received: l.recv, Sent: l.sent}
	}
	return out
}
