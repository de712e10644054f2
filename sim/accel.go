package sim

import (
	"time"

	"github.com/gototem/gototem/srp"
)

// Campaigns on the accelerated ring (srp/accel.go): ScheduleOptions.Accelerated = window
// runs every node with srp.Config.AcceleratedWindow = window, and spaces each Ready's
// datagrams by AcceleratedSpacing, so what the accelerated ring changes happens on the
// simulated wire too: a standard holder's token leaves after its visit's MCASTs, an
// accelerated holder's token ahead of the last window of them, which its successor then
// receives after the token (and after its own first MCASTs). Without the spacing every
// datagram of a Ready left at once and only the links' jitter ordered them.

// AcceleratedSpacing is the time one datagram takes to leave a node in accelerated
// campaigns: a 1500-byte frame at 1 Gb/s.
const AcceleratedSpacing = 12 * time.Microsecond

// accelConfig is the Options.Config of an accelerated campaign; nil (the default
// ScaledConfig) otherwise.
func (o ScheduleOptions) accelConfig() func(id srp.NodeID, members int) srp.Config {
	if o.Accelerated <= 0 {
		return nil
	}
	tok, w := o.Token, o.Accelerated
	return func(id srp.NodeID, members int) srp.Config {
		c := ScaledConfig(id, members, tok)
		c.AcceleratedWindow = w
		return c
	}
}

func (o ScheduleOptions) sendSpacing() time.Duration {
	if o.Accelerated <= 0 {
		return 0
	}
	return AcceleratedSpacing
}
