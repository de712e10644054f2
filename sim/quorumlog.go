package sim

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gototem/gototem/srp"
)

// Names of the votequorum invariants, as a Violation reports them.
const (
	InvQuorumSplitBrain  = "quorum: at most one quorate partition"
	InvQuorumWaitForAll  = "quorum: wait_for_all"
	InvQuorumLastManLeft = "quorum: last_man_standing"
)

// QuorumVerdict is one votequorum verdict as the quorum service's callback hands it upward
// (what pacemaker acts on). It stands from At until the node's next verdict or its crash: a
// node believes itself quorate, and may run resources, for that whole interval.
type QuorumVerdict struct {
	Node    srp.NodeID
	At      time.Duration
	Step    uint64
	Quorate bool
	RingID  srp.RingID
	// Members are the totem members of the ring the verdict is about.
	Members                           []srp.NodeID
	ExpectedVotes, TotalVotes, Quorum uint32
}

func (v QuorumVerdict) String() string {
	q := "inquorate"
	if v.Quorate {
		q = "quorate"
	}
	return fmt.Sprintf("%s ring %s %s E=%d T=%d Q=%d", q, ringStr(v.RingID), fmtIDs(v.Members), v.ExpectedVotes, v.TotalVotes, v.Quorum)
}

// ExpectedChange is a change of a node's expected votes. last_man_standing lowers them on a
// timer without a new verdict, so they are logged apart. From is 0 for a node's first value.
type ExpectedChange struct {
	Node     srp.NodeID
	At       time.Duration
	Step     uint64
	From, To uint32
	Quorate  bool // the node's verdict right after the change
}

type quorumEntry struct {
	node srp.NodeID
	at   time.Duration
	v    int // index in Verdicts; -1: the node went down
}

// QuorumLog records votequorum's verdicts and expected-votes changes for the quorum
// checkers. A test can build one by hand to show a checker catching a broken log.
type QuorumLog struct {
	Verdicts []QuorumVerdict
	Expected []ExpectedChange
	entries  []quorumEntry
}

// NewQuorumLog returns an empty log.
func NewQuorumLog() *QuorumLog { return &QuorumLog{} }

// AddVerdict records a verdict (Members is copied).
func (l *QuorumLog) AddVerdict(v QuorumVerdict) {
	v.Members = slices.Clone(v.Members)
	l.entries = append(l.entries, quorumEntry{node: v.Node, at: v.At, v: len(l.Verdicts)})
	l.Verdicts = append(l.Verdicts, v)
}

// AddDown records that node stopped (crashed): its last verdict stops standing.
func (l *QuorumLog) AddDown(node srp.NodeID, at time.Duration) {
	l.entries = append(l.entries, quorumEntry{node: node, at: at, v: -1})
}

// AddExpected records a change of a node's expected votes.
func (l *QuorumLog) AddExpected(c ExpectedChange) { l.Expected = append(l.Expected, c) }

// Quorate returns each node's standing verdict (the last one, unless it crashed since).
func (l *QuorumLog) Standing() map[srp.NodeID]QuorumVerdict {
	out := map[srp.NodeID]QuorumVerdict{}
	for _, e := range l.entries {
		if e.v < 0 {
			delete(out, e.node)
		} else {
			out[e.node] = l.Verdicts[e.v]
		}
	}
	return out
}

// CheckSplitBrain verifies that no two nodes held quorate verdicts about disjoint memberships
// at the same virtual instant. Verdicts are half-open intervals [At, next verdict or crash):
// all changes at one instant are applied together, then every verdict that just began is
// compared with every verdict standing. Any overlap begins when the later verdict does, so
// this sees every one.
func (l *QuorumLog) CheckSplitBrain() error {
	ents := slices.Clone(l.entries)
	slices.SortStableFunc(ents, func(a, b quorumEntry) int { return cmp.Compare(a.at, b.at) })
	standing := map[srp.NodeID]int{}
	for i := 0; i < len(ents); {
		j := i
		var begun []srp.NodeID
		for ; j < len(ents) && ents[j].at == ents[i].at; j++ {
			e := ents[j]
			if e.v < 0 {
				delete(standing, e.node)
			} else {
				standing[e.node] = e.v
			}
			if !slices.Contains(begun, e.node) {
				begun = append(begun, e.node)
			}
		}
		slices.Sort(begun)
		others := make([]srp.NodeID, 0, len(standing))
		for id := range standing {
			others = append(others, id)
		}
		slices.Sort(others)
		for _, a := range begun {
			ai, ok := standing[a]
			if !ok || !l.Verdicts[ai].Quorate {
				continue
			}
			va := l.Verdicts[ai]
			for _, b := range others {
				vb := l.Verdicts[standing[b]]
				if b == a || !vb.Quorate || intersects(va.Members, vb.Members) {
					continue
				}
				return fmt.Errorf("disjoint partitions quorate at once at t=%s: n%d %s (since t=%s) and n%d %s (since t=%s)",
					fmtTime(ents[i].at), a, va, fmtTime(va.At), b, vb, fmtTime(vb.At))
			}
		}
		i = j
	}
	return nil
}

func intersects(a, b []srp.NodeID) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// CheckWaitForAll verifies wait_for_all's promise to a freshly started cluster: no node is
// quorate before some node installed a regular configuration holding every node of the
// cluster (votequorum.md §7.2: wfa_status clears only when all expected votes are seen in one
// ring, or through a quorate peer, which cannot exist before that).
func CheckWaitForAll(h *History, l *QuorumLog) error {
	first, ok := firstFullRing(h)
	for _, v := range l.Verdicts {
		if v.Quorate && (!ok || v.Step < first.Step) {
			where := "no ring has held every node yet"
			if ok {
				where = fmt.Sprintf("the first ring holding every node was installed at t=%s", fmtTime(first.At))
			}
			return fmt.Errorf("n%d %s at t=%s, but %s", v.Node, v, fmtTime(v.At), where)
		}
	}
	return nil
}

// firstFullRing is the earliest regular configuration delivery, at any node, whose members
// are every node of the cluster.
func firstFullRing(h *History) (Entry, bool) {
	var best Entry
	found := false
	for _, id := range h.Nodes {
		for _, e := range h.Logs[id] {
			if e.Kind == EntryConfig && e.Config.Kind == srp.Regular && slices.Equal(sortedIDs(e.Config.Members), h.Nodes) {
				if !found || e.Step < best.Step {
					best, found = e, true
				}
				break
			}
		}
	}
	return best, found
}

func sortedIDs(ids []srp.NodeID) []srp.NodeID {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// LastManStanding is what CheckLastManStanding needs to know of the configuration.
type LastManStanding struct {
	Window time.Duration
	// AutoTieBreaker and its node setting ("", "lowest", "highest" or a list of ids).
	AutoTieBreaker     bool
	AutoTieBreakerNode string
}

// CheckLastManStanding verifies last_man_standing over a failure cascade of one-vote nodes
// (nodes die, none come back, no partition heals: a node may otherwise lower its expected
// votes at once by adopting a quorate peer's, votequorum.md §6.2 step 3):
//   - a node's expected votes go down only once Window has passed since the membership change
//     that last (re)started its timer (§7.3): a change that lost nodes and kept at least quorum
//     members, or, with auto_tie_breaker, one that kept quorum members or fewer with the
//     remembered lowest node among them. Any other change leaves a running timer alone, so a
//     window started earlier may end soon after it: with auto_tie_breaker highest or list a
//     partition can stay quorate without the lowest node, and corosync tests the lowest node
//     whatever the mode (TestQuorumLastManStandingTimerNotRestarted);
//   - never below 2 without auto_tie_breaker: with two nodes quorum is 2, and only the
//     tie-breaker keeps a lone survivor quorate while the window runs;
//   - to 1 only on the node the tie-breaker picks among the last ring of two or more it was
//     in (lowest or highest id, or the list rule: the first listed id present, unless an id
//     listed before it was in that ring).
func CheckLastManStanding(h *History, l *QuorumLog, cfg LastManStanding) error {
	for _, c := range l.Expected {
		if c.From == 0 || c.To >= c.From {
			continue
		}
		armed, lastBig, ok := lmsTimerStart(h, l, c.Node, c.Step, cfg.AutoTieBreaker)
		if !ok {
			return fmt.Errorf("n%d: expected votes %d→%d at t=%s, but no membership change started last_man_standing's timer", c.Node, c.From, c.To, fmtTime(c.At))
		}
		if d := c.At - armed; d < cfg.Window {
			return fmt.Errorf("n%d: expected votes %d→%d at t=%s, only %v after the membership change that started last_man_standing's timer (t=%s; window %v)",
				c.Node, c.From, c.To, fmtTime(c.At), d, fmtTime(armed), cfg.Window)
		}
		if c.To < 2 && !cfg.AutoTieBreaker {
			return fmt.Errorf("n%d: expected votes %d→%d at t=%s without auto_tie_breaker", c.Node, c.From, c.To, fmtTime(c.At))
		}
		if c.To == 1 && !atbPicks(cfg.AutoTieBreakerNode, c.Node, lastBig) {
			return fmt.Errorf("n%d: expected votes %d→1 at t=%s, but auto_tie_breaker (%q) picks another node of its last ring %s",
				c.Node, c.From, fmtTime(c.At), cfg.AutoTieBreakerNode, fmtIDs(lastBig))
		}
	}
	return nil
}

// lmsTimerStart walks node's regular configurations delivered before step and applies
// votequorum's sync_init rule (§7.3) to each: when the last_man_standing timer was last
// (re)started, and the last ring of two or more members. The quorum in force at a change is
// ⌊E/2⌋+1 for the node's expected votes E then (one vote per node, and in a cascade votes
// present never exceed E); the remembered lowest node is the lowest member of the node's last
// verdict that was quorate by votes.
func lmsTimerStart(h *History, l *QuorumLog, node srp.NodeID, step uint64, atb bool) (armed time.Duration, lastBig []srp.NodeID, ok bool) {
	var prev []srp.NodeID
	for _, e := range h.Logs[node] {
		if e.Step > step {
			break
		}
		switch {
		case e.Kind == EntryStart:
			prev, ok = nil, false
		case e.Kind == EntryConfig && e.Config.Kind == srp.Regular:
			m := sortedIDs(e.Config.Members)
			left := slices.ContainsFunc(prev, func(id srp.NodeID) bool { return !slices.Contains(m, id) })
			q := int(l.expectedAt(node, e.Step)/2 + 1)
			low := l.lowestAt(node, e.Step)
			if (len(m) >= q && left) || (len(m) <= q && atb && low != 0 && slices.Contains(m, low)) {
				armed, ok = e.At, true
			}
			if len(m) >= 2 {
				lastBig = m
			}
			prev = m
		}
	}
	return armed, lastBig, ok
}

// expectedAt is node's expected votes as last logged before step.
func (l *QuorumLog) expectedAt(node srp.NodeID, step uint64) uint32 {
	var e uint32
	for _, c := range l.Expected {
		if c.Node == node && c.Step < step {
			e = c.To
		}
	}
	return e
}

// lowestAt is the lowest member of node's last verdict before step that was quorate by votes
// (votequorum refreshes lowest_node_id only then); 0 when there was none.
func (l *QuorumLog) lowestAt(node srp.NodeID, step uint64) srp.NodeID {
	var low srp.NodeID
	for _, v := range l.Verdicts {
		if v.Node == node && v.Step < step && v.Quorate && v.TotalVotes >= v.Quorum && len(v.Members) > 0 {
			low = slices.Min(v.Members)
		}
	}
	return low
}

// atbPicks is votequorum's tie test (§7.4) asked of a lone survivor whose previous ring was
// prev: lowest and highest mean the lowest or highest id of that ring (the last quorate one).
func atbPicks(mode string, self srp.NodeID, prev []srp.NodeID) bool {
	switch mode {
	case "", "lowest":
		return len(prev) > 0 && self == slices.Min(prev)
	case "highest":
		return len(prev) > 0 && self == slices.Max(prev)
	}
	for _, f := range strings.Fields(mode) {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil || v == 0 {
			return false
		}
		id := srp.NodeID(v)
		if id == self {
			return true
		}
		if slices.Contains(prev, id) {
			return false
		}
	}
	return false
}

// QuorumInvariant is CheckSplitBrain as an Options.Invariants entry.
func QuorumInvariant() Invariant {
	return Invariant{Name: InvQuorumSplitBrain, Check: func(s *Sim) error { return s.qlog.CheckSplitBrain() }}
}
