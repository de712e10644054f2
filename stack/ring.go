package stack

import (
	"errors"
	"time"

	"github.com/gototem/gototem/srp"
)

// RRPConfig configures the redundant ring (corosync 2.x's totemrrp semantics).
type RRPConfig struct {
	Mode                       string // "active" or "passive"
	ProblemCountThreshold      int
	ProblemCountMcastThreshold int
	ProblemCountTimeout        time.Duration
	TokenExpiredTimeout        time.Duration
	AutoRecoveryCheckTimeout   time.Duration
	Token                      time.Duration
}

// LinkEvent reports a link marked faulty or recovered.
type LinkEvent struct {
	Link   int
	Faulty bool
	Text   string
}

// LinkState is one link's state for status displays.
type LinkState struct {
	Faulty bool
	Text   string
}

// redundantRing adapts the rrp package to the stack.
type redundantRing struct{}

func newRedundantRing(links int, cfg *RRPConfig) (*redundantRing, error) {
	return nil, errors.New("stack: redundant ring not available yet")
}

func (r *redundantRing) receive(now time.Duration, link int, datagram []byte) bool { return true }
func (r *redundantRing) tick(now time.Duration)                                    {}
func (r *redundantRing) nextTick() time.Duration                                   { return 0 }
func (r *redundantRing) events() []LinkEvent                                       { return nil }
func (r *redundantRing) status() []LinkState                                       { return nil }
func (r *redundantRing) send(now time.Duration, o srp.Outgoing, emit func(int, srp.Outgoing)) {
	emit(0, o)
}

// LinkStatus reports each link's state (one entry per link).
func (s *Stack) LinkStatus() []LinkState {
	if s.rrp == nil {
		return nil
	}
	return s.rrp.status()
}
