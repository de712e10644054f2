package knet

import "errors"

// PMTUD is one run of libknet's path MTU discovery on one link (threads_pmtud.c's
// _handle_check_link_pmtud) as a pure search: it says which probe size to send next; the
// driver reports what happened (the kernel refused the send, the peer's reply arrived, or
// no reply came within the link's pong timeout) until the search settles on the link's
// data MTU.
//
// The search starts at 65535 bytes so that the kernel, which knows the interface MTU,
// refuses the first probe (IP_PMTUDISC_DO) and reports its MTU; the next probe is exactly
// that size, and on an ordinary LAN its reply ends the search: one probe and one reply per
// link and direction, as in the captures. When a reply does not come, it bisects between the
// largest size that got a reply and the smallest that failed.
type PMTUD struct {
	crypto   *Crypto
	overhead int // IP + UDP header bytes
	max      int // KNET_PMTUD_SIZE_V4/V6
	good     int // last_good_mtu
	bad      int // last_bad_mtu (0: none yet)
	onwire   int // the size being probed
	attempts int
	mtu      int // the result, once found
	done     bool
}

// pmtudMaxAttempts is libknet's failsafe: bisecting 576..128000 needs at most 18-19 probes,
// so 30 attempts mean the MTU changed under the search; it is abandoned until the next run.
const pmtudMaxAttempts = 30

// pmtudMaxSize is KNET_PMTUD_SIZE_V4 (and _V6): the first size tried.
const pmtudMaxSize = 65535

// ErrPMTUDAborted says the search made 30 attempts without settling.
var ErrPMTUDAborted = errors.New("knet: PMTUd aborted after 30 attempts (MTU changed during discovery?)")

// NewPMTUD starts a search on a UDP link. lastPingSize is the size of the last ping sent on
// the link (its packet is known to pass: the search's floor).
func NewPMTUD(c *Crypto, ipv6 bool, lastPingSize int) *PMTUD {
	over := ipOverhead(ipv6) + UDPOverhead
	return &PMTUD{crypto: c, overhead: over, max: pmtudMaxSize, good: lastPingSize + over, onwire: pmtudMaxSize}
}

// Next is the probe to send: a PMTUD packet from self on link whose IP size is
// p.Size. It fails once the search has gone on for 30 attempts. After Done, it returns the
// zero Packet.
func (s *PMTUD) Next(self HostID, link uint8) (Packet, error) {
	if s.done {
		return Packet{}, nil
	}
	if s.attempts == pmtudMaxAttempts {
		s.done = true
		return Packet{}, ErrPMTUDAborted
	}
	s.attempts++
	// The size is recomputed from the data MTU it allows: with a cipher the padding makes
	// only some sizes reachable, and the probe must be exactly what a full DATA packet
	// would be.
	app := DataMTU(s.crypto, s.onwire-s.overhead)
	if app <= 0 {
		s.done = true
		return Packet{}, ErrPMTUDAborted
	}
	s.onwire = sealedLen(s.crypto, app+HeaderAllSize) + s.overhead
	return NewPMTUDProbe(self, link, s.crypto, s.onwire, s.overhead == PMTUDOverheadV6+UDPOverhead)
}

// SendFailed reports that the kernel refused to send the probe (EMSGSIZE): kernelMTU is
// the MTU it reported for the path (0 if unknown). The next probe is that size, or halfway.
func (s *PMTUD) SendFailed(kernelMTU int) {
	if kernelMTU > 0 {
		s.bad = kernelMTU + 1
		s.onwire = kernelMTU
		return
	}
	s.bad = s.onwire
	s.onwire = (s.good + s.bad) / 2
}

// Reply reports the PMTUD_REPLY for the probe (size is its size field); a reply for
// another size counts as no reply.
func (s *PMTUD) Reply(size int) {
	if size != s.onwire {
		s.Timeout()
		return
	}
	found := false
	if block, _, _ := cryptoSizes(s.crypto); block != 0 {
		// With a cipher the reachable sizes are a block apart: within a block of the
		// failed size is as close as the search can get.
		found = s.onwire+block >= s.max || (s.bad != 0 && s.bad <= s.onwire+block)
	} else {
		found = s.onwire == s.max || (s.bad != 0 && s.bad == s.onwire+1) || s.bad == s.good
	}
	if found {
		s.mtu = DataMTU(s.crypto, s.onwire-s.overhead)
		s.done = true
		return
	}
	s.good = s.onwire
	s.onwire = (s.good + s.bad) / 2
}

// Timeout reports that no reply came within the link's pong timeout.
func (s *PMTUD) Timeout() {
	s.bad = s.onwire
	s.onwire = (s.good + s.bad) / 2
}

// Done reports whether the search ended; DataMTU is then the link's data MTU (0 if the
// search was abandoned).
func (s *PMTUD) Done() bool { return s.done }

// DataMTU is the data MTU found (user bytes per DATA packet on this link).
func (s *PMTUD) DataMTU() int { return s.mtu }

// Attempts is the number of probes built so far.
func (s *PMTUD) Attempts() int { return s.attempts }
