package totem

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/transport"
)

// Failures you can see (issue 12): drops per reason and protocol health in Status, one
// rate-limited log line per cause, and a state that is not called healthy while the node
// cannot form a ring.

// logEvery is how often one cause may log: a wrong-key peer is named once per interval,
// with how many datagrams it sent since, instead of once per datagram.
const logEvery = 10 * time.Second

// healthTick is how often the health loop compares the drop counters.
const healthTick = time.Second

// checkWritable proves dir can take the ring id file: create, write, sync, remove.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".gototem-writable-*")
	if err == nil {
		_, err = f.Write([]byte{0})
		if serr := f.Sync(); err == nil {
			err = serr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		os.Remove(f.Name())
	}
	if err != nil {
		return fmt.Errorf("totem: state directory %s is not writable: %w (the ring id must be stored there before this node may announce a ring)", dir, err)
	}
	return nil
}

// nodelist is the nodeids of the nodelist, which the SRP layer enforces (empty without a
// nodelist: a udp ring that learns its peers).
func (n *Node) nodelist() []srp.NodeID {
	var ids []srp.NodeID
	for _, node := range n.rt.Nodes {
		if node.NodeID != 0 {
			ids = append(ids, srp.NodeID(node.NodeID))
		}
	}
	slices.Sort(ids)
	return ids
}

// stuckAfter is how long a node may stay out of OPERATIONAL before Status calls it stuck:
// a membership change takes a token timeout to notice and about one consensus timeout to
// agree, so twice the consensus timeout plus a token is generous.
func (n *Node) stuckAfter() time.Duration {
	return n.rt.Totem.Token + 2*n.rt.Totem.Consensus
}

// notePhase records entering or leaving OPERATIONAL and the end of synchronization; mu
// held, after every input (two field reads on the hot path).
func (n *Node) notePhase() {
	now := time.Duration(-1)
	if op := n.st.SRP().State() == srp.Operational; op != n.operational {
		now = n.now()
		n.operational, n.phaseSince = op, now
	}
	if s := n.st.Synchronizing(); s != n.syncing {
		if now < 0 {
			now = n.now()
		}
		if s {
			n.syncStart = now
		} else {
			n.lastSync = now - n.syncStart
		}
		n.syncing = s
	}
}

// Drops counts received datagrams and messages dropped, per reason, over every link and
// layer. Each reason is also logged, rate-limited, with the last source when known.
type Drops struct {
	UnlistedSender uint64 // source address (udpu block_unlisted_ips) or nodeid outside the nodelist
	DecodeError    uint64 // undecodable totem datagram, unsealed datagram on an encrypted ring, malformed service message
	AuthFailure    uint64 // encrypted ring: tag did not verify (another key or cipher, or tampering)
	Replay         uint64 // encrypted ring: counter already seen
	Oversize       uint64 // larger than the receive buffer, or than its totem message type allows
	QueueFull      uint64 // application message refused (new-message queue full) or own multicast not looped back
	Invalid        uint64 // decoded but refused by validation: wrapping or absurd sequences, forged LEAVE/JOIN
}

// Protocol is the ring's health: how much it retransmits and how often it re-forms.
type Protocol struct {
	Retransmits   uint64 // MCASTs re-sent for retransmission requests, plus token retransmissions
	TokenLosses   uint64 // token timeouts: the ring was lost
	Gathers       uint64 // GATHER entries (membership rounds)
	RingsFormed   uint64
	Syncs         uint64        // service synchronizations completed
	LastSync      time.Duration // how long the last one took
	Synchronizing time.Duration // how long the current one has been running (0: none)
}

// healthLocked fills Status's health fields; mu held.
func (n *Node) healthLocked(s *Status) {
	now := n.now()
	c := n.st.Counters()
	p := c.SRP
	d := &s.Drops
	d.UnlistedSender = p.DropUnlisted
	d.DecodeError = p.DecodeErrors - p.DecodeOversize + s.Dropped
	d.Oversize = p.DecodeOversize
	d.Invalid = p.DropAbsurd + p.DropForged
	d.QueueFull = p.QueueFullRejects
	for _, nc := range s.Net {
		d.UnlistedSender += nc.DroppedUnlisted
		d.DecodeError += nc.DroppedMalformed
		d.AuthFailure += nc.DroppedAuth
		d.Replay += nc.DroppedReplay
		d.Oversize += nc.DroppedTooBig
		d.QueueFull += nc.DroppedLoopFull
	}
	s.Protocol = Protocol{
		Retransmits: p.McastRetransmitted + p.TokenRetransmits,
		TokenLosses: p.TokenLosses,
		Gathers:     p.GatherEntries,
		RingsFormed: p.RingsFormed,
		Syncs:       c.SyncCompleted,
		LastSync:    n.lastSync,
	}
	if n.syncing {
		s.Protocol.Synchronizing = now - n.syncStart
	}
	s.StateFor = now - n.phaseSince
	switch {
	case s.State == "OPERATIONAL" && !n.syncing:
		s.Healthy, s.Health = true, "healthy"
	case s.State == "OPERATIONAL":
		s.Health = fmt.Sprintf("synchronizing services for %v", s.Protocol.Synchronizing.Round(time.Millisecond))
		s.Stuck = s.Protocol.Synchronizing > n.stuckAfter()
	default:
		s.Stuck = s.StateFor > n.stuckAfter()
		verb := "forming a ring"
		if s.Stuck {
			verb = "STUCK: no ring formed"
		}
		s.Health = fmt.Sprintf("%s, in %s for %v", verb, s.State, s.StateFor.Round(time.Millisecond))
	}
}

// healthLoop logs, once per cause and logEvery, what the counters say went wrong.
func (n *Node) healthLoop() {
	defer n.wg.Done()
	t := time.NewTicker(healthTick)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		n.mu.Lock()
		if !n.live {
			n.mu.Unlock()
			return
		}
		s := n.statusLocked()
		var src transport.DropSources
		for _, l := range n.links {
			src = mergeSources(src, l.LastDropSources())
		}
		n.healthLog.check(n.log, time.Now(), &s, src)
		n.mu.Unlock()
	}
}

func mergeSources(a, b transport.DropSources) transport.DropSources {
	pick := func(x, y netip.AddrPort) netip.AddrPort {
		if y.IsValid() {
			return y
		}
		return x
	}
	return transport.DropSources{Unlisted: pick(a.Unlisted, b.Unlisted), Malformed: pick(a.Malformed, b.Malformed),
		Auth: pick(a.Auth, b.Auth), Replay: pick(a.Replay, b.Replay), TooBig: pick(a.TooBig, b.TooBig)}
}

// healthLogger remembers, per cause, the count at its last log line and when that was.
type healthLogger struct {
	causes map[string]*causeLog
}

type causeLog struct {
	logged uint64
	at     time.Time
}

// check logs each cause whose count grew, at most once per logEvery.
func (h *healthLogger) check(log *slog.Logger, now time.Time, s *Status, src transport.DropSources) {
	if h.causes == nil {
		h.causes = map[string]*causeLog{}
	}
	d := &s.Drops
	emit := func(cause string, count uint64, msg string, from netip.AddrPort) {
		c := h.causes[cause]
		if c == nil {
			c = &causeLog{}
			h.causes[cause] = c
		}
		if count <= c.logged || now.Sub(c.at) < logEvery {
			return
		}
		args := []any{"cause", cause, "dropped", count - c.logged, "total", count}
		if from.IsValid() {
			args = append(args, "last_from", from.String())
		}
		log.Warn(msg, args...)
		c.logged, c.at = count, now
	}
	emit("auth_failure", d.AuthFailure, "dropping datagrams that fail authentication: a node with another authkey or cipher?", src.Auth)
	emit("unlisted_sender", d.UnlistedSender, "dropping datagrams from outside the nodelist", src.Unlisted)
	emit("decode_error", d.DecodeError, "dropping undecodable datagrams", src.Malformed)
	emit("replay", d.Replay, "dropping replayed datagrams", src.Replay)
	emit("oversize", d.Oversize, "dropping oversized datagrams", src.TooBig)
	emit("queue_full", d.QueueFull, "messages refused or lost: queue full", netip.AddrPort{})
	emit("invalid", d.Invalid, "dropping forged or out-of-range totem messages (ring/token sequence jumps, forged LEAVE)", netip.AddrPort{})
	stuck := uint64(0)
	if s.Stuck {
		stuck = h.causes["stuck"].next()
	}
	emit("stuck", stuck, "no ring formed: "+s.Health, netip.AddrPort{})
}

// next makes a still-stuck node log again once per logEvery.
func (c *causeLog) next() uint64 {
	if c == nil {
		return 1
	}
	return c.logged + 1
}

// throttle limits warnings and errors to one line per message per logEvery, with how many
// were suppressed: a full or read-only state directory gave ~60 identical ERROR lines a
// second. Info and below pass untouched.
type throttle struct {
	next  slog.Handler
	state *throttleState
}

type throttleState struct {
	mu   sync.Mutex
	seen map[string]*throttled
}

type throttled struct {
	at         time.Time
	suppressed int
}

func newThrottle(h slog.Handler) slog.Handler {
	return &throttle{next: h, state: &throttleState{seen: map[string]*throttled{}}}
}

func (t *throttle) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

func (t *throttle) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return t.next.Handle(ctx, r)
	}
	st := t.state
	st.mu.Lock()
	e := st.seen[r.Message]
	if e == nil {
		if len(st.seen) >= 1024 {
			clear(st.seen) // bounded: messages are constant strings, but be safe
		}
		e = &throttled{}
		st.seen[r.Message] = e
	}
	if !e.at.IsZero() && r.Time.Sub(e.at) < logEvery {
		e.suppressed++
		st.mu.Unlock()
		return nil
	}
	n := e.suppressed
	e.at, e.suppressed = r.Time, 0
	st.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return t.next.Handle(ctx, r)
}

func (t *throttle) WithAttrs(as []slog.Attr) slog.Handler {
	return &throttle{next: t.next.WithAttrs(as), state: t.state}
}

func (t *throttle) WithGroup(name string) slog.Handler {
	return &throttle{next: t.next.WithGroup(name), state: t.state}
}
