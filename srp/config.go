package srp

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config is everything a Processor needs from corosync.conf's totem section, already
// derived (§9): Token is the effective runtime token, i.e. with token_coefficient applied.
type Config struct {
	NodeID NodeID
	// Token = effective runtime token. The other durations are the totem timers of §8.
	Token, TokenRetransmit, Hold, Join, SendJoin, Consensus, Merge, Downcheck time.Duration

	TokenRetransmitsBeforeLossConst, FailRecvConst, SeqnoUnchangedConst, MissCountConst int
	WindowSize, MaxMessages                                                             int

	// NetMTU is totem.netmtu as configured (1500 for udp/udpu). Like corosync the Processor
	// reserves 2*McastHeaderSize of it for recovery encapsulation, so an application
	// payload may be at most NetMTU-90 bytes.
	NetMTU int

	// Nodelist, when not empty, is every nodeid allowed in the ring (corosync.conf's
	// nodelist): JOINs, LEAVEs, MERGE_DETECTs, MCASTs and commit tokens from or naming
	// another id are dropped before they change anything (Counters.DropUnlisted). Empty: any
	// id (udp without a nodelist).
	Nodelist []NodeID

	RingIDStore RingIDStore // nil → a fresh MemoryRingIDStore
	Rand        Rand        // nil allowed only if SendJoin == 0

	// TokenCallback, when set, runs synchronously each time a valid ORF token is accepted,
	// before this node takes messages from its queue (§6.2 step 9). totempg flushes its
	// packer here. It may only call Send.
	TokenCallback func()

	// TransAck turns on corosync's trans-ack send queues (§7.3): from every ring
	// installation until the layer above calls Processor.TransAck (corosync's
	// totempg_trans_ack, once service synchronization is complete), Send queues to a
	// separate "trans" queue and the token sends only from it, so messages queued before
	// the change wait until the new ring's sync is done. Without it (a bare ring, nothing
	// synchronizing above it) there is one queue.
	TransAck bool

	Logger *slog.Logger // nil: quiet
}

// Settings are corosync.conf's totem timers and protocol constants as written, times in
// milliseconds: the input of corosync's derivation (totemconfig.c's
// totem_volatile_config_read). Zero TokenRetransmit, Hold and Consensus are derived from the
// token; every other field is used as it is (DefaultSettings has corosync's defaults).
//
// This is the one copy of the derivation and of the defaults: DefaultConfig (the simulator's
// and the tests' configurations) and package config's corosync.conf reader both use it, so a
// node configured either way runs the same timers (config's TestTimersAreSRPs compares them).
type Settings struct {
	Token, TokenCoefficient, TokenRetransmit, Hold, Consensus uint32
	Join, SendJoin, Merge, Downcheck                          uint32
	TokenRetransmitsBeforeLossConst, FailRecvConst            uint32
	SeqnoUnchangedConst, MissCountConst                       uint32
	WindowSize, MaxMessages, NetMTU                           uint32
}

// hz is corosync's HZ on Linux user space (100): 1000/HZ = 10 ms in the hold formula, and
// its protocol minimum is three ticks (config checks the settings against MinimumTimeout).
const hz = 100

// MinimumTimeout is corosync's smallest token, token_retransmit, join, consensus, merge and
// downcheck (three ticks of HZ 100, in milliseconds); MinimumHold the hold formula applied to
// it (0.8·30 − 10).
const (
	MinimumTimeout = 3 * 1000 / hz
	MinimumHold    = 14
)

// DefaultSettings returns corosync 3.1.7's defaults (corosync.conf(5)).
func DefaultSettings() Settings {
	return Settings{
		Token: 3000, TokenCoefficient: 650, Join: 50, Merge: 200, Downcheck: 1000,
		TokenRetransmitsBeforeLossConst: 4, FailRecvConst: 2500, SeqnoUnchangedConst: 30,
		MissCountConst: 5, WindowSize: 50, MaxMessages: 17, NetMTU: 1500,
	}
}

// Derive returns the effective settings for a nodelist of members nodes, as corosync derives
// them: the token grows by TokenCoefficient per node above two (an explicit token too), and
// TokenRetransmit, Hold and Consensus left at zero come from it with totemconfig.c's integer
// truncations: token / (retransmits_before_loss + 0.2), retransmit·0.8 − 1000/HZ (never
// below 0), 1.2·token.
func (s Settings) Derive(members int) Settings {
	if members > 2 {
		s.Token += uint32(members-2) * s.TokenCoefficient
	}
	if s.TokenRetransmit == 0 {
		s.TokenRetransmit = uint32(float64(s.Token) / (float64(s.TokenRetransmitsBeforeLossConst) + 0.2))
	}
	if s.Hold == 0 {
		if h := float64(s.TokenRetransmit)*0.8 - 1000.0/hz; h > 0 {
			s.Hold = uint32(h)
		}
	}
	if s.Consensus == 0 {
		s.Consensus = uint32(1.2 * float64(s.Token))
	}
	return s
}

// Config returns node id's Processor configuration with these settings (already derived).
func (s Settings) Config(id NodeID) Config {
	ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	return Config{
		NodeID:                          id,
		Token:                           ms(s.Token),
		TokenRetransmit:                 ms(s.TokenRetransmit),
		Hold:                            ms(s.Hold),
		Join:                            ms(s.Join),
		SendJoin:                        ms(s.SendJoin),
		Consensus:                       ms(s.Consensus),
		Merge:                           ms(s.Merge),
		Downcheck:                       ms(s.Downcheck),
		TokenRetransmitsBeforeLossConst: int(s.TokenRetransmitsBeforeLossConst),
		FailRecvConst:                   int(s.FailRecvConst),
		SeqnoUnchangedConst:             int(s.SeqnoUnchangedConst),
		MissCountConst:                  int(s.MissCountConst),
		WindowSize:                      int(s.WindowSize),
		MaxMessages:                     int(s.MaxMessages),
		NetMTU:                          int(s.NetMTU),
	}
}

// DefaultConfig returns corosync 3.1.7's defaults for a nodelist of members nodes:
// DefaultSettings derived for members.
func DefaultConfig(id NodeID, members int) Config {
	return DefaultSettings().Derive(members).Config(id)
}

// Errors returned by Send. Test with errors.Is.
var (
	// ErrQueueFull: the new-message queue holds MESSAGE_QUEUE_MAX messages; retry after the
	// token has taken some (backpressure).
	ErrQueueFull = errors.New("srp: new-message queue full")
	// ErrMessageTooLarge: the payload exceeds NetMTU-90 bytes.
	ErrMessageTooLarge = errors.New("srp: message larger than netmtu-90")
	// ErrNotRunning: Send before Start or after Leave.
	ErrNotRunning = errors.New("srp: processor not running")
)

// validate rejects what would make the state machine misbehave rather than what corosync's
// parser rejects (config/ does that): zero or negative timers would spin Tick, and corosync
// asserts window_size + max_messages ≤ 16384 at runtime (§9.3 "Not validated").
func (c *Config) validate() error {
	if c.NodeID == 0 {
		return errors.New("srp: config: nodeid must be non-zero")
	}
	durs := []struct {
		name string
		v    time.Duration
	}{
		{"token", c.Token}, {"token_retransmit", c.TokenRetransmit}, {"hold", c.Hold},
		{"join", c.Join}, {"consensus", c.Consensus}, {"merge", c.Merge}, {"downcheck", c.Downcheck},
	}
	for _, d := range durs {
		if d.v <= 0 {
			return fmt.Errorf("srp: config: %s: must be positive, got %v", d.name, d.v)
		}
	}
	if c.SendJoin < 0 {
		return fmt.Errorf("srp: config: send_join: must not be negative, got %v", c.SendJoin)
	}
	if c.SendJoin > 0 && c.Rand == nil {
		return errors.New("srp: config: send_join > 0 needs a Rand")
	}
	if c.Consensus < c.Join {
		return fmt.Errorf("srp: config: consensus (%v) may not be less than join (%v)", c.Consensus, c.Join)
	}
	ints := []struct {
		name string
		v    int
	}{
		{"token_retransmits_before_loss_const", c.TokenRetransmitsBeforeLossConst},
		{"fail_recv_const", c.FailRecvConst}, {"seqno_unchanged_const", c.SeqnoUnchangedConst},
		{"miss_count_const", c.MissCountConst}, {"window_size", c.WindowSize}, {"max_messages", c.MaxMessages},
	}
	for _, d := range ints {
		if d.v <= 0 {
			return fmt.Errorf("srp: config: %s: must be a positive integer, got %d", d.name, d.v)
		}
	}
	if c.WindowSize+c.MaxMessages > sortQueueSize {
		return fmt.Errorf("srp: config: window_size + max_messages = %d exceeds the %d-slot sort queue",
			c.WindowSize+c.MaxMessages, sortQueueSize)
	}
	if c.NetMTU <= 2*McastHeaderSize || c.NetMTU > FrameSizeMax {
		return fmt.Errorf("srp: config: netmtu: %d outside %d..%d", c.NetMTU, 2*McastHeaderSize+1, FrameSizeMax)
	}
	return nil
}
