package quorum

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Defaults corosync 3.1 applies when a key is absent.
const (
	DefaultLastManStandingWindow = 10 * time.Second // quorum.last_man_standing_window
	DefaultQdeviceTimeout        = 10 * time.Second // quorum.device.timeout
	DefaultQdeviceSyncTimeout    = 30 * time.Second // quorum.device.sync_timeout
	// MaxNodes bounds the node records kept, as corosync's PROCESSOR_COUNT_MAX does.
	MaxNodes = 384
)

// NodeEntry is one nodelist.node.N entry. Votes is quorum_votes; the caller passes 1 when the key
// is absent, as corosync defaults it.
type NodeEntry struct {
	NodeID NodeID
	Votes  uint32
}

// DeviceConfig is quorum.device.*. A Model of "" means no quorum device.
type DeviceConfig struct {
	Model       string
	Votes       *uint32       // nil: unset, computed from the nodelist when possible
	Timeout     time.Duration // 0: DefaultQdeviceTimeout
	SyncTimeout time.Duration // 0: DefaultQdeviceSyncTimeout
}

// Config is what votequorum reads from corosync.conf (votequorum.md §2). Zero values mean
// "key absent" except where a pointer is used to tell absent from 0.
type Config struct {
	// NodeID is the local node (totem.nodeid or its nodelist entry).
	NodeID NodeID
	// Nodelist is the nodelist; corosync treats it as present only when the local node is in it
	// (nodelist.local_node_pos exists).
	Nodelist []NodeEntry
	// Votes is quorum.votes, used only without a nodelist; nil means 1.
	Votes *uint32
	// ExpectedVotes is quorum.expected_votes; 0 means unset.
	ExpectedVotes uint32
	TwoNode       bool
	// WaitForAll is quorum.wait_for_all; nil (absent) means "follow two_node".
	WaitForAll *bool
	// LastManStanding and its window (0: DefaultLastManStandingWindow).
	LastManStanding       bool
	LastManStandingWindow time.Duration
	// AutoTieBreaker and auto_tie_breaker_node ("" when absent: lowest).
	AutoTieBreaker     bool
	AutoTieBreakerNode string
	AllowDownscale     bool
	// ExpectedVotesTracking is quorum.expected_votes_tracking (forced on by AllowDownscale).
	ExpectedVotesTracking bool
	Device                DeviceConfig
}

// ATBMode is auto_tie_breaker's type, runtime.votequorum.atb_type's values.
type ATBMode uint8

const (
	ATBNone ATBMode = iota
	ATBLowest
	ATBHighest
	ATBList
)

func (a ATBMode) String() string {
	return [...]string{"none", "lowest", "highest", "list"}[a&3]
}

// ErrConfig is wrapped by every startup configuration error.
var ErrConfig = errors.New("configuration error")

// derived is the outcome of corosync's votequorum_readconfig: the effective settings and the
// local node's votes and expected votes.
type derived struct {
	haveNodelist bool
	nodeCount    uint32
	nodelistEV   uint32
	usVotes      uint32
	usExpected   uint32
	cfgEV        uint32

	twoNode   bool
	wfa       bool
	lms       bool
	lmsWindow time.Duration
	atb       ATBMode
	atbList   []NodeID
	// initialATB is the configured mode: a reload starts from it again (ATB may have been
	// switched off by the odd-size rule and must be able to come back).
	initialATB     ATBMode
	initialATBList []NodeID
	ad             bool
	evt            bool
	// wfaAutoset: quorum.wait_for_all is absent, so wait_for_all follows two_node.
	wfaAutoset bool

	// findings are the warnings and the fatal error with the key each is about.
	findings []Finding

	haveQdevice       bool
	qdeviceVotes      uint32
	qdeviceVotesSet   bool
	qdeviceCanOperate bool
	qdeviceTimeout    time.Duration
	qdeviceSync       time.Duration

	warnings []string
}

// parseATB reads auto_tie_breaker_node as corosync does: exactly "lowest" or "highest", or a
// string starting with a non-zero number read as whitespace-separated ids up to the first token
// that is 0 or not a number. Anything else disables ATB.
func parseATB(s string) (ATBMode, []NodeID) {
	switch s {
	case "lowest":
		return ATBLowest, nil
	case "highest":
		return ATBHighest, nil
	}
	var list []NodeID
	for _, tok := range strings.Fields(s) {
		n, err := strconv.ParseUint(tok, 10, 32)
		if err != nil || n == 0 {
			break
		}
		list = append(list, NodeID(n))
	}
	if len(list) == 0 {
		return ATBNone, nil
	}
	return ATBList, list
}

// derive runs votequorum_readconfig. At startup (runtime=false) an incompatible combination is
// a fatal error, with corosync's message; on reload it is logged (returned as a warning) and
// handled as corosync does. prev is the running state on reload (nil at startup); evBarrier is
// the loaded expected-votes-tracking barrier.
func derive(c Config, runtime bool, prev *derived, qdeviceRegistered bool, evBarrier uint32) (*derived, error) {
	return deriveFindings(c, runtime, prev, qdeviceRegistered, evBarrier, nil)
}

// deriveFindings is derive; on a fatal error collect (when not nil) receives the findings up
// to and including it.
func deriveFindings(c Config, runtime bool, prev *derived, qdeviceRegistered bool, evBarrier uint32, collect *[]Finding) (*derived, error) {
	d := &derived{}
	if prev != nil {
		// Startup-only keys keep their startup values on reload.
		*d = *prev
		d.warnings = nil
		d.twoNode = false
	}
	d.findings = nil
	warn := func(key, f string, a ...any) {
		msg := fmt.Sprintf(f, a...)
		d.warnings = append(d.warnings, msg)
		d.findings = append(d.findings, Finding{Key: key, Text: msg})
	}
	// fail reports a fatal combination; startupFindings keeps it as the last finding.
	fail := func(key, msg string) (*derived, error) {
		if collect != nil {
			*collect = append(d.findings, Finding{Key: key, Text: msg, Fatal: true})
		}
		return nil, fmt.Errorf("quorum: %w: %s", ErrConfig, strings.TrimPrefix(msg, "configuration error: "))
	}

	d.haveNodelist = false
	var local int = -1
	for i, n := range c.Nodelist {
		if n.NodeID == c.NodeID {
			local = i
		}
	}
	d.nodeCount, d.nodelistEV, d.usVotes = 0, 0, 0
	if local >= 0 {
		d.haveNodelist = true
		for _, n := range c.Nodelist {
			d.nodeCount++
			d.nodelistEV += n.Votes
		}
		d.usVotes = c.Nodelist[local].Votes
	}
	d.cfgEV = c.ExpectedVotes
	d.haveQdevice = c.Device.Model != ""
	var qdVotes uint32
	qdVotesSet := false
	if d.haveQdevice {
		if c.Device.Votes != nil {
			qdVotes, qdVotesSet = *c.Device.Votes, true
		}
		d.qdeviceTimeout = orDefault(c.Device.Timeout, DefaultQdeviceTimeout)
		d.qdeviceSync = orDefault(c.Device.SyncTimeout, DefaultQdeviceSyncTimeout)
		d.qdeviceCanOperate = true
	}
	d.twoNode = c.TwoNode

	if !d.haveNodelist && d.cfgEV == 0 {
		const msg = "nodelist or quorum.expected_votes must be configured!"
		if !runtime {
			return fail("provider", "configuration error: "+msg) // corosync's words
		}
		warn("provider", "configuration error: %s; will continue with current runtime data", msg)
		return prev, nil
	}
	if d.twoNode && d.haveQdevice {
		const msg = "two_node and quorum device cannot be configured at the same time!"
		if !runtime {
			return fail("device.model", msg)
		}
		if qdeviceRegistered {
			warn("device.model", "configuration error: %s; quorum device is registered, disabling two_node", msg)
			d.twoNode = false
		} else {
			warn("device.model", "configuration error: %s; quorum device is not registered, allowing two_node", msg)
			d.qdeviceCanOperate = false
		}
	}
	if !runtime {
		d.wfaAutoset = c.WaitForAll == nil
		if !d.wfaAutoset {
			d.wfa = *c.WaitForAll
		}
		d.ad = c.AllowDownscale
		d.lms = c.LastManStanding
		d.lmsWindow = orDefault(c.LastManStandingWindow, DefaultLastManStandingWindow)
		d.evt = c.ExpectedVotesTracking || c.AllowDownscale
		d.atb, d.atbList = ATBNone, nil
		if c.AutoTieBreaker {
			d.atb = ATBLowest
			if c.AutoTieBreakerNode != "" {
				d.atb, d.atbList = parseATB(c.AutoTieBreakerNode)
				if d.atb == ATBNone {
					// corosync's warning names the key with an "s" it does not have.
					warn("auto_tie_breaker_node", "auto_tie_breaker_nodes is not valid. It must be 'lowest', 'highest' or a space-separated list of node IDs. auto_tie_breaker is disabled")
				}
			}
		} else if c.AutoTieBreakerNode != "" {
			warn("auto_tie_breaker_node", "auto_tie_breaker_node: is meaningless if auto_tie_breaker is set to 0")
		}
		d.initialATB, d.initialATBList = d.atb, d.atbList
	} else {
		d.atb, d.atbList = d.initialATB, d.initialATBList
	}
	// An absent wait_for_all follows two_node, at startup and on every reload (corosync 3.1
	// "Reflect runtime change of 2Node to WFA"); taken before ATB may switch two_node off.
	if d.wfaAutoset {
		d.wfa = d.twoNode
	}
	if d.twoNode && d.atb != ATBNone {
		warn("two_node", "two_node and auto_tie_breaker are both specified but are not compatible; two_node has been disabled")
		d.twoNode = false
	}
	if d.atb != ATBNone && d.nodelistEV%2 == 1 && !d.wfa {
		if d.lms {
			return fail("auto_tie_breaker", "auto_tie_breaker & last_man_standing not available in odd sized cluster")
		}
		warn("auto_tie_breaker", "auto_tie_breaker is set and the cluster has an odd number of nodes; wait_for_all needs to be set for this configuration but it is missing, therefore auto_tie_breaker has been disabled")
		d.atb = ATBNone
	}
	qdeviceConflict := func(key, msg string) error {
		if !runtime {
			_, err := fail(key, msg)
			return err
		}
		warn(key, "configuration error: %s; disabling quorum device operations", msg)
		d.qdeviceCanOperate = false
		return nil
	}
	if d.haveQdevice {
		checks := []struct {
			bad      bool
			key, msg string
		}{
			{d.lms, "device.model", "quorum.device is not compatible with last_man_standing"},
			{d.atb != ATBNone, "device.model", "quorum.device is not compatible with auto_tie_breaker"},
			{d.ad, "device.model", "quorum.device is not compatible with allow_downscale"},
			{d.cfgEV != 0 && !qdVotesSet, "device.model", "quorum.device.votes must be specified when quorum.expected_votes is set"},
			{!qdVotesSet && d.haveNodelist && d.nodeCount != d.nodelistEV, "device.model", "quorum.device.votes must be specified when not all nodes votes 1"},
			{qdVotesSet && qdVotes > 0 && d.cfgEV != 0 && int64(d.cfgEV)-int64(qdVotes) < 2, "device.votes", "quorum.device.votes is too high or expected_votes is too low"},
		}
		for _, ch := range checks {
			if ch.bad {
				if err := qdeviceConflict(ch.key, ch.msg); err != nil {
					return nil, err
				}
			}
		}
		if !qdVotesSet && d.cfgEV == 0 && d.haveNodelist && d.nodeCount == d.nodelistEV {
			// Every node has one vote: the device gets N-1, so it alone plus one node is a majority.
			qdVotes, qdVotesSet = d.nodelistEV-1, true
			d.nodelistEV += qdVotes
		}
	}
	// usExpected 0 means "keep the running value": corosync leaves us->expected_votes alone on a
	// reload without nodelist and expected_votes.
	d.usExpected = 0
	if d.haveNodelist {
		d.usExpected = d.nodelistEV
	} else {
		d.usVotes = 1
		if c.Votes != nil {
			d.usVotes = *c.Votes
		}
	}
	if d.cfgEV != 0 {
		d.usExpected = d.cfgEV
	}
	// expected_votes_tracking: corosync replaces quorum.expected_votes by the stored barrier,
	// which with a fresh (0) barrier and no nodelist leaves expected 0 and lets a lone node be
	// quorate (votequorum.md §7.6 quirk b). We implement the intent: the barrier is a floor.
	if d.evt && evBarrier > d.usExpected {
		d.usExpected = evBarrier
	}
	if !d.haveQdevice {
		d.qdeviceVotes, d.qdeviceVotesSet = 0, false
	}
	if qdVotesSet {
		d.qdeviceVotes, d.qdeviceVotesSet = qdVotes, true
	}
	return d, nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// Finding is one of votequorum's startup messages about a configuration: a warning, or with
// Fatal the combination that stops votequorum from starting. Key is the quorum.* key (without
// the "quorum." prefix) it is about, for a parser to point at the line.
type Finding struct {
	Key   string
	Text  string
	Fatal bool
}

// Resolve applies votequorum's startup rules to c, as New does, and returns c with the
// settings votequorum runs with: WaitForAll set (an absent one follows two_node as
// configured), TwoNode off when auto_tie_breaker switched it off, AutoTieBreaker off when the
// odd-size rule or an invalid auto_tie_breaker_node switched it off, ExpectedVotesTracking on
// with AllowDownscale; with its findings (warnings, and the fatal one beside a wrapped
// ErrConfig). It is the one copy of the rules: package config reports a corosync.conf's quorum
// problems through it.
func Resolve(c Config) (Config, []Finding, error) {
	var fatal []Finding
	d, err := deriveFindings(c, false, nil, false, 0, &fatal)
	if err != nil {
		return c, fatal, err
	}
	wfa := d.wfa
	c.WaitForAll, c.TwoNode, c.LastManStanding = &wfa, d.twoNode, d.lms
	c.AutoTieBreaker = d.atb != ATBNone
	c.AllowDownscale, c.ExpectedVotesTracking = d.ad, d.evt
	return c, d.findings, nil
}
