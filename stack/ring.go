package stack

import (
	"fmt"
	"time"

	"github.com/gototem/gototem/rrp"
	"github.com/gototem/gototem/srp"
)

// RRPConfig configures the redundant ring (corosync 2.x's totemrrp semantics; see package
// rrp). Its Links field is ignored: the stack's Config.Links decides.
type RRPConfig = rrp.Config

// LinkEvent reports a link marked faulty or recovered.
type LinkEvent = rrp.Event

// LinkState is one link's state for status displays.
type LinkState = rrp.LinkStatus

// redundantRing adapts the rrp package to the stack.
type redundantRing struct {
	r *rrp.Ring
}

func newRedundantRing(links int, cfg *RRPConfig) (*redundantRing, error) {
	if cfg == nil {
		return nil, fmt.Errorf("stack: %d links need a redundant ring configuration", links)
	}
	c := *cfg
	c.Links = links
	r, err := rrp.New(c)
	if err != nil {
		return nil, err
	}
	return &redundantRing{r: r}, nil
}

func (r *redundantRing) receive(now time.Duration, link int, datagram []byte) bool {
	return r.r.Receive(now, link, datagram)
}
func (r *redundantRing) tick(now time.Duration)  { r.r.Tick(now) }
func (r *redundantRing) nextTick() time.Duration { return r.r.NextTick() }
func (r *redundantRing) events() []LinkEvent     { return r.r.Events() }
func (r *redundantRing) status() []LinkState     { return r.r.Status() }
func (r *redundantRing) send(now time.Duration, o srp.Outgoing, emit func(int, srp.Outgoing)) {
	r.r.Send(now, o, emit)
}

// LinkStatus reports each link's state (nil with a single link).
func (s *Stack) LinkStatus() []LinkState {
	if s.rrp == nil {
		return nil
	}
	return s.rrp.status()
}
