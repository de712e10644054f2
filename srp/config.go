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

	// TokenWarning is totem.token_warning: a percentage of Token after which a node that has
	// not received the token logs corosync's notice "Token has not been received in N ms",
	// again every such interval until the token comes or is declared lost. 0 disables it.
	TokenWarning int

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

	// AcceleratedWindow > 0 runs the accelerated ring (accel.go, gototem only): up to this
	// many of a token visit's new messages are multicast after the token is passed instead
	// of before it. 0 is the standard ring, corosync's.
	AcceleratedWindow int

	Logger *slog.Logger // nil: quiet
}

// hz is corosync's HZ on Linux user space (100): 1000/HZ = 10 ms in the hold formula.
const hz = 100

// DefaultTokenCoefficient is corosync's token_coefficient: what the token grows by per node
// above two.
const DefaultTokenCoefficient = 650 * time.Millisecond

// DefaultConfig returns corosync 3.1.7's defaults (corosync.conf(5)) derived for a nodelist
// of members nodes (Derive with DefaultTokenCoefficient).
func DefaultConfig(id NodeID, members int) Config {
	return Config{
		NodeID: id, Token: 3000 * time.Millisecond, Join: 50 * time.Millisecond,
		Merge: 200 * time.Millisecond, Downcheck: 1000 * time.Millisecond,
		TokenRetransmitsBeforeLossConst: 4, FailRecvConst: 2500, SeqnoUnchangedConst: 30,
		MissCountConst: 5, WindowSize: 50, MaxMessages: 17, NetMTU: 1500, TokenWarning: 75,
	}.Derive(members, DefaultTokenCoefficient)
}

// Derive returns c with the timers corosync derives (totemconfig.c's
// totem_volatile_config_read): Token, as configured, grows by coefficient per node above two
// of a nodelist of members nodes; TokenRetransmit, Hold and Consensus left at zero come from
// the effective token with corosync's integer milliseconds and truncations:
// token / (token_retransmits_before_loss_const + 0.2), retransmit·0.8 − 1000/HZ (never below
// 0), 1.2·token.
//
// This is the one copy of the derivation: DefaultConfig (the simulator's and the tests'
// configurations) and package config's corosync.conf reader both use it, so a node configured
// either way runs the same timers (config's TestTimersAreSRPs compares them).
func (c Config) Derive(members int, coefficient time.Duration) Config {
	ms := func(d time.Duration) uint32 { return uint32(d / time.Millisecond) }
	dur := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	token := ms(c.Token)
	if members > 2 {
		token += uint32(members-2) * ms(coefficient)
	}
	c.Token = dur(token)
	retransmit := ms(c.TokenRetransmit)
	if retransmit == 0 {
		retransmit = uint32(float64(token) / (float64(c.TokenRetransmitsBeforeLossConst) + 0.2))
		c.TokenRetransmit = dur(retransmit)
	}
	if c.Hold == 0 {
		if h := float64(retransmit)*0.8 - 1000.0/hz; h > 0 {
			c.Hold = dur(uint32(h))
		}
	}
	if c.Consensus == 0 {
		c.Consensus = dur(uint32(1.2 * float64(token)))
	}
	return c
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
	if c.TokenWarning < 0 || c.TokenWarning > 100 {
		return fmt.Errorf("srp: config: token_warning: must be 0..100 (percent), got %d", c.TokenWarning)
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
	if c.AcceleratedWindow < 0 {
		return fmt.Errorf("srp: config: accelerated window: must not be negative, got %d", c.AcceleratedWindow)
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
