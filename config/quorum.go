package config

// The quorum section: votequorum's inputs and its startup compatibility rules
// (votequorum.md §2–§3).

import (
	"strconv"
	"strings"
	"time"
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
	wfa, set := flagKey(k, "quorum.wait_for_all")
	q.WaitForAll, q.WaitForAllSet = wfa || (!set && q.TwoNode), set
	q.LastManStanding, _ = flagKey(k, "quorum.last_man_standing")
	q.LastManStandingWindow = 10 * time.Second
	if v, ok := k.uint("quorum.last_man_standing_window"); ok {
		q.LastManStandingWindow = time.Duration(v) * time.Millisecond
	}
	q.AutoTieBreaker, _ = flagKey(k, "quorum.auto_tie_breaker")
	q.AutoTieBreakerNode, _ = k.str("quorum.auto_tie_breaker_node") // absent: votequorum takes lowest; and a default here would read as set
	q.AllowDownscale, _ = flagKey(k, "quorum.allow_downscale")
	q.ExpectedVotesTracking, _ = flagKey(k, "quorum.expected_votes_tracking")
	if q.AllowDownscale {
		q.ExpectedVotesTracking = true
	}
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

// checkQuorum applies votequorum's startup rules (votequorum.md §3): fatal combinations
// are errors, combinations votequorum silently switches off are warnings.
func (c *Config) checkQuorum(d *diag) {
	k, q := c.keys, &c.Quorum
	line := func(key string) int { return c.lineOr("quorum."+key, "quorum") }
	// votequorum sees a nodelist only through nodelist.node.N keys, not 2.x members.
	nodelistEV, nodes := uint32(0), 0
	allOne := true
	for _, n := range c.Nodes {
		if n.FromMembers {
			continue
		}
		nodes++
		nodelistEV += n.QuorumVotes
		if n.QuorumVotes != 1 {
			allOne = false
		}
	}
	if nodes == 0 && q.ExpectedVotes == 0 {
		d.errorf(line("provider"), "configuration error: nodelist or quorum.expected_votes must be configured!")
	}
	if q.Device != nil {
		dl := line("device.model")
		if q.TwoNode {
			d.errorf(dl, "two_node and quorum device cannot be configured at the same time!")
		}
		if q.LastManStanding {
			d.errorf(dl, "quorum.device is not compatible with last_man_standing")
		}
		if q.AutoTieBreaker {
			d.errorf(dl, "quorum.device is not compatible with auto_tie_breaker")
		}
		if q.AllowDownscale {
			d.errorf(dl, "quorum.device is not compatible with allow_downscale")
		}
		if !q.Device.VotesSet && q.ExpectedVotes != 0 {
			d.errorf(dl, "quorum.device.votes must be specified when quorum.expected_votes is set")
		}
		if !q.Device.VotesSet && !allOne {
			d.errorf(dl, "quorum.device.votes must be specified when not all nodes votes 1")
		}
		if q.Device.VotesSet && q.Device.Votes > 0 && q.ExpectedVotes != 0 && int64(q.ExpectedVotes)-int64(q.Device.Votes) < 2 {
			d.errorf(line("device.votes"), "quorum.device.votes is too high or expected_votes is too low")
		}
	}
	if q.TwoNode && q.AutoTieBreaker {
		d.warnf(line("two_node"), "two_node is switched off by votequorum because auto_tie_breaker is on")
		q.TwoNode = false
		if !k.has("quorum.wait_for_all") {
			q.WaitForAll = false
		}
	}
	if q.TwoNode && nodes > 2 {
		d.warnf(line("two_node"), "two_node with %d nodes: corosync accepts it, but after a split where each side has at most two members every side is quorate (split brain)", nodes)
	}
	if q.AutoTieBreaker && nodelistEV%2 == 1 && !q.WaitForAll {
		if q.LastManStanding {
			d.errorf(line("auto_tie_breaker"), "auto_tie_breaker & last_man_standing not available in odd sized cluster")
		} else {
			d.warnf(line("auto_tie_breaker"), "auto_tie_breaker is switched off by votequorum: the nodelist has an odd number of votes (%d) and wait_for_all is off", nodelistEV)
			q.AutoTieBreaker = false
		}
	}
	if k.has("quorum.auto_tie_breaker_node") {
		if !q.AutoTieBreaker {
			d.warnf(line("auto_tie_breaker_node"), "auto_tie_breaker_node is set but auto_tie_breaker is off")
		} else if !validATBNode(q.AutoTieBreakerNode) {
			d.warnf(line("auto_tie_breaker_node"), "auto_tie_breaker_node %q is neither lowest, highest nor a list of node ids: votequorum switches auto_tie_breaker off", q.AutoTieBreakerNode)
			q.AutoTieBreaker = false
		}
	}
	if q.LastManStanding && !q.WaitForAll {
		d.warnf(line("last_man_standing"), "last_man_standing without wait_for_all: votequorum.5 calls wait_for_all essential with it")
	}
	if q.AllowDownscale {
		d.warnf(line("allow_downscale"), "allow_downscale is incomplete and unsupported in corosync (votequorum.5); it also forces expected_votes_tracking on")
	}
	if q.ExpectedVotes != 0 && nodes > 0 && q.ExpectedVotes != nodelistEV && q.Device == nil {
		d.warnf(line("expected_votes"), "expected_votes %d overrides the nodelist's vote total %d", q.ExpectedVotes, nodelistEV)
	}
}

// validATBNode mirrors votequorum's parse: lowest, highest, or a list that starts with a
// non-zero node id.
func validATBNode(s string) bool {
	if s == "lowest" || s == "highest" {
		return true
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return false
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	return err == nil && n != 0
}
