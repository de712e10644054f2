package sim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
)

// Names of the process-group invariants (the full-stack campaign's checkers), as a Violation
// reports them. They are what a CPG application sees, checked per group.
const (
	// InvGroupOrder: two nodes deliver the messages they both delivered in one order.
	InvGroupOrder = "group total order"
	// InvGroupDuplicate: a node delivers a message at most once.
	InvGroupDuplicate = "group no duplication"
	// InvGroupCreation: a delivered message was sent, unaltered, to that group by its sender.
	InvGroupCreation = "group no creation"
	// InvGroupSelf: a node delivers its own messages in the order it sent them, none skipped.
	InvGroupSelf = "group self delivery"
	// InvGroupSync: members of a group that move together from one configuration to the
	// next delivered the same messages and confchgs there, in the same order.
	InvGroupSync = "group virtual synchrony"
	// InvGroupSenderAlone: a message delivered by its sender and by no other member of the
	// group in a configuration that carried on (issue 12's lost message).
	InvGroupSenderAlone = "group sender alone"
	// InvGroupSafe: a SAFE message delivered in a configuration is delivered by every member
	// of it that belongs to the group and does not crash.
	InvGroupSafe = "group safe delivery"
)

// groupSent is one message a process sent to a group.
type groupSent struct {
	ID          MsgID
	Group       string
	Guarantee   srp.Guarantee
	Step        uint64
	At          time.Duration
	Incarnation int
	Len         int
	Sum         uint64
}

// groupEntryKind says what a groupEntry records.
type groupEntryKind uint8

const (
	groupStart   groupEntryKind = iota // a new incarnation of the node began
	groupCrash                         // the incarnation ended without a goodbye
	groupRing                          // srp delivered a ring configuration
	groupSynced                        // service synchronization completed for the ring
	groupConfchg                       // a CPG confchg
	groupMessage                       // a CPG message
)

// groupEntry is one line of a node's process-group log.
type groupEntry struct {
	Kind        groupEntryKind
	Step        uint64
	At          time.Duration
	Incarnation int
	Ring        *srp.Configuration // groupRing
	Group       string             // groupConfchg, groupMessage
	Confchg     *services.Confchg  // groupConfchg
	// groupMessage: Msg indexes groupHistory.Sent (-1: no sent message has its header);
	// Sender, Len and Sum are what was delivered.
	Msg    int
	Sender srp.NodeID
	Len    int
	Sum    uint64
}

// groupHistory is what the process-group checkers read: every message sent to a group, and
// per node, in order, its ring configurations, sync completions, confchgs and messages. A test
// builds one by hand with the Add methods to show a checker catching a broken log.
type groupHistory struct {
	Nodes       []srp.NodeID
	Sent        []groupSent
	Logs        map[srp.NodeID][]groupEntry
	index       map[MsgID]int
	incarnation map[srp.NodeID]int
}

// newGroupHistory returns an empty history for the given nodes.
func newGroupHistory(nodes []srp.NodeID) *groupHistory {
	h := &groupHistory{Nodes: slices.Clone(nodes), Logs: map[srp.NodeID][]groupEntry{},
		index: map[MsgID]int{}, incarnation: map[srp.NodeID]int{}}
	slices.Sort(h.Nodes)
	return h
}

func (h *groupHistory) add(node srp.NodeID, e groupEntry) {
	e.Incarnation = h.incarnation[node]
	if e.Kind != groupMessage {
		e.Msg = -1
	}
	h.Logs[node] = append(h.Logs[node], e)
}

// AddStart records a new incarnation of node.
func (h *groupHistory) AddStart(node srp.NodeID, step uint64, at time.Duration) {
	h.incarnation[node]++
	h.add(node, groupEntry{Kind: groupStart, Step: step, At: at})
}

// AddCrash records that node crashed.
func (h *groupHistory) AddCrash(node srp.NodeID, step uint64, at time.Duration) {
	h.add(node, groupEntry{Kind: groupCrash, Step: step, At: at})
}

// AddSent records that the stack at id.Sender accepted payload (starting with id's header)
// for group.
func (h *groupHistory) AddSent(id MsgID, group string, g srp.Guarantee, payload []byte, step uint64, at time.Duration) {
	h.index[id] = len(h.Sent)
	h.Sent = append(h.Sent, groupSent{ID: id, Group: group, Guarantee: g, Step: step, At: at,
		Incarnation: h.incarnation[id.Sender], Len: len(payload), Sum: checksum(payload)})
}

// AddRing records a ring configuration delivered at node (c is copied).
func (h *groupHistory) AddRing(node srp.NodeID, c srp.Configuration, step uint64, at time.Duration) {
	cc := srp.Configuration{Kind: c.Kind, RingID: c.RingID, Members: slices.Clone(c.Members),
		Joined: slices.Clone(c.Joined), Left: slices.Clone(c.Left)}
	h.add(node, groupEntry{Kind: groupRing, Step: step, At: at, Ring: &cc})
}

// AddSynced records the end of service synchronization at node.
func (h *groupHistory) AddSynced(node srp.NodeID, step uint64, at time.Duration) {
	h.add(node, groupEntry{Kind: groupSynced, Step: step, At: at})
}

// AddConfchg records a CPG confchg delivered at node (c is copied).
func (h *groupHistory) AddConfchg(node srp.NodeID, c services.Confchg, step uint64, at time.Duration) {
	cc := services.Confchg{Group: c.Group, Members: slices.Clone(c.Members),
		Joined: slices.Clone(c.Joined), Left: slices.Clone(c.Left)}
	h.add(node, groupEntry{Kind: groupConfchg, Step: step, At: at, Group: c.Group, Confchg: &cc})
}

// AddMessage records a CPG message delivered at node.
func (h *groupHistory) AddMessage(node srp.NodeID, group string, sender srp.NodeID, payload []byte, step uint64, at time.Duration) {
	e := groupEntry{Kind: groupMessage, Step: step, At: at, Group: group, Msg: -1, Sender: sender,
		Len: len(payload), Sum: checksum(payload)}
	if id, ok := decodePayloadHeader(payload); ok {
		if i, ok := h.index[id]; ok {
			e.Msg = i
		}
	}
	h.add(node, e)
}

func (h *groupHistory) addStackEvent(node srp.NodeID, ev stack.Event, step uint64, at time.Duration) {
	switch {
	case ev.Membership != nil:
		h.AddRing(node, *ev.Membership, step, at)
	case ev.Synced != nil:
		h.AddSynced(node, step, at)
	case ev.Group != nil:
		h.AddConfchg(node, *ev.Group, step, at)
	case ev.Message != nil:
		h.AddMessage(node, ev.Message.Group, ev.Message.Sender, ev.Message.Payload, step, at)
	}
}

func (h *groupHistory) msgName(i int) string {
	if i < 0 || i >= len(h.Sent) {
		return "unknown message"
	}
	id := h.Sent[i].ID
	return fmt.Sprintf("n%d#%d", id.Sender, id.Counter)
}

// groupEpoch is one node's view of one group during one configuration (an srp ring
// configuration, regular or transitional): what it delivered there, in order.
type groupEpoch struct {
	node srp.NodeID
	// full: the node had a process in the group from the configuration's start to its end
	// (no local join or leave in between), so it must have seen everything the group saw.
	full bool
	seq  []string // "m<index>" messages, "c<...>" confchgs outside a sync
	msgs []int
	last groupEntry // the entry that ended the epoch (or the last one), to locate reports
}

// epochEnd names how a node left a configuration: the next configuration's key, or open
// (still in it when the log ends); a crash ends it without a successor.
type epochEnd struct {
	next configKey
	open bool
}

// Check runs every process-group invariant over the whole history and returns the
// violations found, ordered by step. final says the run is over and healed (open epochs of
// nodes in the same configuration are compared as if they ended together).
func (h *groupHistory) Check(final bool) []*Violation {
	found := map[string]*Violation{}
	report := func(inv string, e groupEntry, format string, args ...any) {
		if found[inv] == nil {
			found[inv] = &Violation{Invariant: inv, Step: e.Step, At: e.At, Detail: fmt.Sprintf(format, args...)}
		}
	}
	// epochs[conf][end][group] lists the nodes' epochs that share a configuration and its end.
	epochs := map[configKey]map[epochEnd]map[string][]*groupEpoch{}
	// pos[node][msg]: position (1-based) in node's delivery sequence, over all groups.
	pos := map[srp.NodeID]map[int]int{}
	// safe obligations, checked once every log is walked.
	type safeDue struct {
		msg  int
		conf configKey
		by   srp.NodeID
		e    groupEntry
	}
	var safes []safeDue
	// installed[node][conf] = step the node's final incarnation installed conf; local[node][g]
	// = step since which the final incarnation has had a process in g continuously.
	installed := map[srp.NodeID]map[configKey]uint64{}
	localSince := map[srp.NodeID]map[string]uint64{}
	// leftFor[node][conf] = members of the transitional configuration the node's final
	// incarnation moved to from conf (absent: it was still in conf when its log ends).
	leftFor := map[srp.NodeID]map[configKey][]srp.NodeID{}
	delivered := map[srp.NodeID]map[int]bool{}

	for _, node := range h.Nodes {
		log := h.Logs[node]
		pos[node] = map[int]int{}
		delivered[node] = map[int]bool{}
		var (
			conf      configKey
			inConf    bool
			lastReg   srp.RingID
			syncing   bool
			local     = map[string]map[uint32]bool{} // group -> own pids in it
			since     = map[string]uint64{}
			cur       = map[string]*groupEpoch{}
			nextOwn   = map[int]int{} // incarnation -> index into own sends
			own       = map[int][]int{}
			count     int
			inst      = map[configKey]uint64{}
			trans     = map[configKey][]srp.NodeID{}
			lastEntry groupEntry
		)
		for i, s := range h.Sent {
			if s.ID.Sender == node {
				own[s.Incarnation] = append(own[s.Incarnation], i)
			}
		}
		hasLocal := func(g string) bool { return len(local[g]) > 0 }
		closeEpochs := func(end epochEnd, crashed bool, at groupEntry) {
			if inConf && !crashed {
				for g, ep := range cur {
					if at.Step != 0 {
						ep.last = at // the configuration change that ended it
					}
					m := epochs[conf]
					if m == nil {
						m = map[epochEnd]map[string][]*groupEpoch{}
						epochs[conf] = m
					}
					if m[end] == nil {
						m[end] = map[string][]*groupEpoch{}
					}
					m[end][g] = append(m[end][g], ep)
				}
			}
			cur = map[string]*groupEpoch{}
		}
		openEpoch := func(g string, full bool) *groupEpoch {
			ep := &groupEpoch{node: node, full: full, last: lastEntry}
			cur[g] = ep
			return ep
		}
		for _, e := range log {
			lastEntry = e
			switch e.Kind {
			case groupStart, groupCrash:
				closeEpochs(epochEnd{}, true, e)
				inConf, syncing = false, false
				clear(local)
				clear(since)
				clear(inst)
				clear(trans)
				lastReg = srp.RingID{}
			case groupRing:
				k := configKey{kind: e.Ring.Kind, ring: e.Ring.RingID}
				if e.Ring.Kind == srp.Transitional {
					k.from = lastReg
					trans[configKey{kind: srp.Regular, ring: lastReg}] = e.Ring.Members
				} else {
					lastReg = e.Ring.RingID
					syncing = true
				}
				closeEpochs(epochEnd{next: k}, false, e)
				conf, inConf = k, true
				inst[k] = e.Step
				for g := range local {
					if hasLocal(g) {
						openEpoch(g, true)
					}
				}
			case groupSynced:
				syncing = false
			case groupConfchg:
				g := e.Group
				before := hasLocal(g)
				for _, j := range e.Confchg.Joined {
					if j.NodeID == node {
						if local[g] == nil {
							local[g] = map[uint32]bool{}
						}
						local[g][j.PID] = true
					}
				}
				for _, l := range e.Confchg.Left {
					if l.NodeID == node {
						delete(local[g], l.PID)
					}
				}
				after := hasLocal(g)
				if !before && after {
					since[g] = e.Step
				}
				if before && !after {
					delete(since, g)
				}
				if !inConf {
					continue
				}
				ep := cur[g]
				if ep == nil {
					ep = openEpoch(g, false)
				}
				if before != after {
					ep.full = false
				}
				if !syncing {
					ep.seq = append(ep.seq, confchgKey(e.Confchg))
				}
				ep.last = e
			case groupMessage:
				if e.Msg < 0 {
					report(InvGroupCreation, e, "n%d delivered a %d-byte message from n%d in group %q that nobody sent", node, e.Len, e.Sender, e.Group)
					continue
				}
				s := h.Sent[e.Msg]
				if s.ID.Sender != e.Sender || s.Group != e.Group || s.Len != e.Len || s.Sum != e.Sum {
					report(InvGroupCreation, e, "n%d delivered %s altered: group %q sender n%d %d bytes, sent to %q by n%d, %d bytes",
						node, h.msgName(e.Msg), e.Group, e.Sender, e.Len, s.Group, s.ID.Sender, s.Len)
					continue
				}
				if pos[node][e.Msg] != 0 {
					report(InvGroupDuplicate, e, "n%d delivered %s twice", node, h.msgName(e.Msg))
					continue
				}
				count++
				pos[node][e.Msg] = count
				delivered[node][e.Msg] = true
				if s.ID.Sender == node && s.Incarnation == e.Incarnation {
					list := own[e.Incarnation]
					k := nextOwn[e.Incarnation]
					if k >= len(list) || list[k] != e.Msg {
						want := "nothing"
						if k < len(list) {
							want = h.msgName(list[k])
						}
						report(InvGroupSelf, e, "n%d delivered its own %s while its next own message in send order is %s", node, h.msgName(e.Msg), want)
					}
					nextOwn[e.Incarnation] = k + 1
				}
				if !inConf {
					continue
				}
				ep := cur[e.Group]
				if ep == nil {
					ep = openEpoch(e.Group, false)
				}
				ep.seq = append(ep.seq, fmt.Sprintf("m%d", e.Msg))
				ep.msgs = append(ep.msgs, e.Msg)
				ep.last = e
				if s.Guarantee == srp.Safe {
					safes = append(safes, safeDue{msg: e.Msg, conf: conf, by: node, e: e})
				}
			}
		}
		if len(log) > 0 && log[len(log)-1].Kind != groupCrash {
			closeEpochs(epochEnd{open: true}, false, groupEntry{})
			installed[node] = inst
			localSince[node] = since
			leftFor[node] = trans
		}
	}

	// Virtual synchrony per group, and the sender-alone special case.
	confs := make([]configKey, 0, len(epochs))
	for k := range epochs {
		confs = append(confs, k)
	}
	slices.SortFunc(confs, func(a, b configKey) int {
		if c := cmp.Compare(a.ring.Seq, b.ring.Seq); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ring.Rep, b.ring.Rep); c != 0 {
			return c
		}
		return cmp.Compare(a.kind, b.kind)
	})
	for _, k := range confs {
		for end, groups := range epochs[k] {
			if end.open && !final {
				continue
			}
			names := make([]string, 0, len(groups))
			for g := range groups {
				names = append(names, g)
			}
			slices.Sort(names)
			for _, g := range names {
				var full []*groupEpoch
				for _, ep := range groups[g] {
					if ep.full {
						full = append(full, ep)
					}
				}
				if len(full) < 2 {
					continue
				}
				ref := full[0]
				for _, ep := range full[1:] {
					if slices.Equal(ref.seq, ep.seq) {
						continue
					}
					a, b := ref, ep
					if missing := onlyIn(a.msgs, b.msgs); missing >= 0 {
						h.reportSync(report, k, g, a, b, missing, groups[g])
					} else if missing := onlyIn(b.msgs, a.msgs); missing >= 0 {
						h.reportSync(report, k, g, b, a, missing, groups[g])
					} else {
						report(InvGroupSync, ep.last, "group %q in %s ring %s: n%d and n%d moved on together but saw different sequences: n%d %v, n%d %v",
							g, k.kind, ringStr(k.ring), a.node, b.node, a.node, a.seq, b.node, b.seq)
					}
				}
			}
		}
	}

	// Total order over every message two nodes both delivered.
	for i, a := range h.Nodes {
		for _, b := range h.Nodes[i+1:] {
			type pair struct{ pa, pb int }
			var common []pair
			for m, pa := range pos[a] {
				if pb, ok := pos[b][m]; ok {
					common = append(common, pair{pa, pb})
				}
			}
			slices.SortFunc(common, func(x, y pair) int { return cmp.Compare(x.pa, y.pa) })
			for j := 1; j < len(common); j++ {
				if common[j].pb < common[j-1].pb {
					e := groupEntry{}
					for _, le := range h.Logs[b] {
						if le.Kind == groupMessage && pos[b][le.Msg] == common[j-1].pb {
							e = le
							break
						}
					}
					report(InvGroupOrder, e, "n%d and n%d delivered two common messages in opposite orders", a, b)
					break
				}
			}
		}
	}

	// SAFE: every member of the configuration that stayed up, in the group, delivers it.
	if final {
		for _, sd := range safes {
			g := h.Sent[sd.msg].Group
			var members []srp.NodeID
			sender := h.Sent[sd.msg].ID.Sender
			for _, node := range h.Nodes {
				at, ok := installed[node][sd.conf]
				if !ok {
					continue
				}
				if since, ok := localSince[node][g]; !ok || since >= at {
					continue
				}
				// corosync's srp (and ours, to stay in lockstep with it) delivers an old
				// ring's remaining messages after a change only from originators that
				// moved on with the receiver (the transitional configuration): a member
				// that lost the sender misses the sender's undelivered SAFE messages.
				if sd.conf.kind == srp.Regular {
					if tr, moved := leftFor[node][sd.conf]; moved && !slices.Contains(tr, sender) {
						continue
					}
				}
				members = append(members, node)
			}
			for _, q := range members {
				if !delivered[q][sd.msg] {
					report(InvGroupSafe, sd.e, "n%d delivered SAFE %s of group %q in %s ring %s; n%d, a member of both that stayed up, never did",
						sd.by, h.msgName(sd.msg), g, sd.conf.kind, ringStr(sd.conf.ring), q)
					break
				}
			}
		}
	}

	out := make([]*Violation, 0, len(found))
	for _, v := range found {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *Violation) int {
		if c := cmp.Compare(a.Step, b.Step); c != 0 {
			return c
		}
		return strings.Compare(a.Invariant, b.Invariant)
	})
	return out
}

// reportSync reports that a delivered msg in configuration k and b did not, both full
// members of group g moving on together: as sender-alone when only its sender delivered it.
func (h *groupHistory) reportSync(report func(string, groupEntry, string, ...any), k configKey, g string, a, b *groupEpoch, msg int, all []*groupEpoch) {
	var by []srp.NodeID
	for _, ep := range all {
		if slices.Contains(ep.msgs, msg) {
			by = append(by, ep.node)
		}
	}
	slices.Sort(by)
	inv := InvGroupSync
	if len(by) == 1 && by[0] == h.Sent[msg].ID.Sender {
		inv = InvGroupSenderAlone
	}
	report(inv, b.last, "group %q in %s ring %s: n%d delivered %s, n%d did not, and both moved on together (delivered by %s)",
		g, k.kind, ringStr(k.ring), a.node, h.msgName(msg), b.node, fmtIDs(by))
}

// onlyIn returns the first element of a not in b, or -1.
func onlyIn(a, b []int) int {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return x
		}
	}
	return -1
}

func confchgKey(c *services.Confchg) string {
	var b strings.Builder
	b.WriteString("c")
	for _, p := range c.Members {
		fmt.Fprintf(&b, " %d/%d", p.NodeID, p.PID)
	}
	b.WriteString(" +")
	for _, p := range c.Joined {
		fmt.Fprintf(&b, " %d/%d/%s", p.NodeID, p.PID, p.Reason)
	}
	b.WriteString(" -")
	for _, p := range c.Left {
		fmt.Fprintf(&b, " %d/%d/%s", p.NodeID, p.PID, p.Reason)
	}
	return b.String()
}
