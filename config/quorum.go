package config

// The quorum section: votequorum's inputs and its startup compatibility rules
// (votequorum.md §2–§3).

import (
	"time"

	"github.com/gototem/gototem/quorum"
)

func flagKey(k keyMap, key string) (bool, bool) {
	v, ok := k.uint(key)
	return v != 0, ok
}

func (c *Config) readQuorum(d *diag) {
	k := c.keys
	q := &c.Quorum
	if v, ok := k.str("quorum.provider"); ok {
		if v != "corosync_votequorum" {
			d.errorf(k.line("quorum.provider"), "Invalid quorum provider %q (corosync 3 knows only corosync_votequorum)", v)
		}
		q.Provider = v
	}
	if v, ok := k.uint("quorum.expected_votes"); ok {
		q.ExpectedVotes = uint32(v)
	}
	q.Votes = 1
	if v, ok := k.uint("quorum.votes"); ok {
		q.Votes, q.VotesSet = uint32(v), true
		if len(c.Nodes) > 0 {
			d.warnf(k.line("quorum.votes"), "quorum.votes is used only without a nodelist; use nodelist.node.N.quorum_votes")
		}
	}
	q.TwoNode, _ = flagKey(k, "quorum.two_node")
	// An absent wait_for_all follows two_node: checkQuorum sets the effective value from
	// votequorum's rules.
	q.WaitForAll, q.WaitForAllSet = flagKey(k, "quorum.wait_for_all")
	q.LastManStanding, _ = flagKey(k, "quorum.last_man_standing")
	q.LastManStandingWindow = 10 * time.Second
	if v, ok := k.uint("quorum.last_man_standing_window"); ok {
		q.LastManStandingWindow = time.Duration(v) * time.Millisecond
	}
	q.AutoTieBreaker, _ = flagKey(k, "quorum.auto_tie_breaker")
	q.AutoTieBreakerNode, _ = k.str("quorum.auto_tie_breaker_node") // absent: votequorum takes lowest; and a default here would read as set
	q.AllowDownscale, _ = flagKey(k, "quorum.allow_downscale")
	q.ExpectedVotesTracking, _ = flagKey(k, "quorum.expected_votes_tracking") // allow_downscale forces it: checkQuorum
	if model, ok := k.str("quorum.device.model"); ok && model != "" {
		dev := &QuorumDevice{Model: model, Timeout: 10 * time.Second, SyncTimeout: 30 * time.Second}
		if v, ok := k.uint("quorum.device.votes"); ok {
			dev.Votes, dev.VotesSet = uint32(v), true
		}
		if v, ok := k.uint("quorum.device.timeout"); ok {
			dev.Timeout = time.Duration(v) * time.Millisecond
		}
		if v, ok := k.uint("quorum.device.sync_timeout"); ok {
			dev.SyncTimeout = time.Duration(v) * time.Millisecond
		}
		dev.MasterWins, _ = flagKey(k, "quorum.device.master_wins")
		q.Device = dev
	}
	if q.Provider == "" {
		for _, key := range k.under("quorum.") {
			if key != "quorum.provider" {
				d.warnf(k.line(key), "%s has no effect: quorum.provider is not set, so the cluster is always quorate", key)
				break
			}
		}
		return
	}
	c.checkQuorum(d)
}

// votequorum maps the quorum section onto votequorum's inputs, for node self of a nodelist
// (entries nil: no nodelist, or the local node is not in it): the one mapping, used for the
// startup checks here and by a node that runs votequorum (Runtime.Votequorum).
func (c *Config) votequorum(self uint32, entries []quorum.NodeEntry) quorum.Config {
	q := c.Quorum
	qc := quorum.Config{
		NodeID:                quorum.NodeID(self),
		Nodelist:              entries,
		ExpectedVotes:         q.ExpectedVotes,
		TwoNode:               q.TwoNode,
		LastManStanding:       q.LastManStanding,
		LastManStandingWindow: q.LastManStandingWindow,
		AutoTieBreaker:        q.AutoTieBreaker,
		AutoTieBreakerNode:    q.AutoTieBreakerNode,
		AllowDownscale:        q.AllowDownscale,
		ExpectedVotesTracking: q.ExpectedVotesTracking,
	}
	if q.WaitForAllSet {
		w := q.WaitForAll
		qc.WaitForAll = &w
	}
	if q.VotesSet {
		v := q.Votes
		qc.Votes = &v
	}
	if dev := q.Device; dev != nil {
		qc.Device = quorum.DeviceConfig{Model: dev.Model, Timeout: dev.Timeout, SyncTimeout: dev.SyncTimeout}
		if dev.VotesSet {
			v := dev.Votes
			qc.Device.Votes = &v
		}
	}
	return qc
}

// Votequorum is votequorum's configuration for this node: the quorum section, and the
// nodelist when the local node is in it (corosync's nodelist.local_node_pos).
func (rt *Runtime) Votequorum() quorum.Config {
	var entries []quorum.NodeEntry
	if rt.LocalPos >= 0 {
		for _, n := range rt.Nodes {
			entries = append(entries, quorum.NodeEntry{NodeID: quorum.NodeID(n.NodeID), Votes: n.QuorumVotes})
		}
	}
	return rt.votequorum(rt.NodeID, entries)
}

// checkQuorum applies votequorum's startup rules through package quorum (quorum.Resolve, the
// one copy of them): its fatal combinations are errors and what it switches off warnings, at
// the line of the key each is about. WaitForAll and ExpectedVotesTracking become what
// votequorum runs with; TwoNode and AutoTieBreaker stay as written, since votequorum derives
// from them again at every start and reload. A few warnings of gototem's own follow
// (combinations corosync accepts that do not do what they seem to).
func (c *Config) checkQuorum(d *diag) {
	q := &c.Quorum
	line := func(key string) int { return c.lineOr("quorum."+key, "quorum") }
	// votequorum sees a nodelist only through nodelist.node.N keys, not 2.x members. The
	// startup rules need its size and votes only, so any listed node stands for the local one.
	var entries []quorum.NodeEntry
	nodelistEV := uint32(0)
	for _, n := range c.Nodes {
		if n.FromMembers {
			continue
		}
		entries = append(entries, quorum.NodeEntry{NodeID: quorum.NodeID(n.NodeID), Votes: n.QuorumVotes})
		nodelistEV += n.QuorumVotes
	}
	self := uint32(0)
	if len(entries) > 0 {
		self = uint32(entries[0].NodeID)
	}
	eff, findings, err := quorum.Resolve(c.votequorum(self, entries))
	for _, f := range findings {
		if f.Fatal {
			d.errorf(line(f.Key), "%s", f.Text)
		} else {
			d.warnf(line(f.Key), "%s", f.Text)
		}
	}
	if err != nil {
		return
	}
	q.WaitForAll, q.ExpectedVotesTracking = *eff.WaitForAll, eff.ExpectedVotesTracking
	if eff.TwoNode && len(entries) > 2 {
		d.warnf(line("two_node"), "two_node with %d nodes: corosync accepts it, but after a split where each side has at most two members every side is quorate (split brain)", len(entries))
	}
	if eff.LastManStanding && !*eff.WaitForAll {
		d.warnf(line("last_man_standing"), "last_man_standing without wait_for_all: votequorum.5 calls wait_for_all essential with it")
	}
	if eff.AllowDownscale {
		d.warnf(line("allow_downscale"), "allow_downscale is incomplete and unsupported in corosync (votequorum.5); it also forces expected_votes_tracking on")
	}
	if q.ExpectedVotes != 0 && len(entries) > 0 && q.ExpectedVotes != nodelistEV && q.Device == nil {
		d.warnf(line("expected_votes"), "expected_votes %d overrides the nodelist's vote total %d", q.ExpectedVotes, nodelistEV)
	}
}
