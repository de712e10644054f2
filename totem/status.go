package totem

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
	"github.com/gototem/gototem/transport"
)

// Status is a snapshot of a running node: what corosync-cfgtool, corosync-quorumtool and
// corosync-cmapctl would report about it.
type Status struct {
	NodeID    NodeID
	Transport string // "udp" or "udpu"
	RRPMode   string // "none", "active" or "passive"
	// State is the membership protocol's state, in corosync's words: OPERATIONAL, GATHER,
	// COMMIT or RECOVERY.
	State   string
	RingID  RingID
	Members []NodeID // the current regular configuration, ascending
	// Synchronizing is true between a regular configuration and the end of service
	// synchronization (real nodes hold flow-controlled requests meanwhile).
	Synchronizing bool
	Links         []LinkStatus
	// Nodes lists every node this node knows of: the nodelist, plus nodes learned from the
	// network on a nodelist-less multicast ring. Ascending by nodeid.
	Nodes []NodeStatus
	// QuorumProvider is quorum.provider ("" when votequorum is not configured).
	QuorumProvider string
	Quorum         quorum.Snapshot
	SRP            srp.Counters
	Net            []transport.Counters // per link
	// Dropped counts service messages (CPG, sync, votequorum) dropped as malformed.
	Dropped uint64
	// Backlog is how many events wait for the application's callbacks, and BacklogPeak the
	// most that ever waited: a handler falling behind shows here.
	Backlog, BacklogPeak int
	// ThreadReleases counts the times a receive loop gave its protocol thread back under a
	// flood (Options.ProtocolThreadRelease; package doc, "Protocol threads").
	ThreadReleases uint64

	// Healthy is true only when the node is OPERATIONAL with services synchronized. Health
	// says what it is doing otherwise; Stuck is set once it has been out of OPERATIONAL
	// (or synchronizing) for longer than token + 2 × consensus, and then Members is only
	// the last ring it was on.
	Healthy bool
	Health  string
	Stuck   bool
	// StateFor is the time since the node last entered or left OPERATIONAL.
	StateFor time.Duration
	Drops    Drops
	Protocol Protocol
	// ConfigVersions are the members' totem.config_version as their cmap sync messages
	// carried them (runtime.members.<id>.config_version); a node that never sent one is absent.
	ConfigVersions map[NodeID]uint64
	// ServiceMessages count the exec messages sent and received per service and function
	// (runtime.services.<service>.<function>.tx/rx).
	ServiceMessages stack.ServiceMessages
}

// LinkStatus is one ring (link) of the node.
type LinkStatus struct {
	Link      int
	LocalAddr string
	Faulty    bool
	// Text is the ring's status as corosync 2.x's corosync-cfgtool -s printed it, e.g.
	// "ring 0 active with no faults".
	Text string
	// Peers (knet only, else nil) says, for every other node configured on this link,
	// whether knet has its link connected (ping/pong), as corosync-cfgtool -s shows it.
	Peers map[NodeID]bool
	// MTU (knet only) is the user bytes a knet packet carries on this link, as
	// corosync-cfgtool -n prints it: what PMTU discovery settled on (knet's minimum before).
	MTU int
}

// NodeStatus is one known node.
type NodeStatus struct {
	NodeID NodeID
	Name   string   // nodelist name, if any
	Addrs  []string // per link
	// Member reports whether the node is in the current regular configuration.
	Member bool
	// JoinCount counts the regular configurations the node joined, as runtime.members.N.join_count.
	JoinCount uint32
	// Left reports whether the node was a member once and is not now.
	Left bool
}

// Status returns a snapshot of the node. On a stopped node it returns what is known without
// the ring (state and counters of the last run are not kept).
func (n *Node) Status() Status {
	var s Status
	if err := n.do(func() { s = n.statusLocked() }); err != nil {
		s = Status{NodeID: NodeID(n.self), Transport: string(n.rt.Totem.Transport), RRPMode: n.rt.Totem.RRPMode}
	}
	return s
}

// statusLocked builds the Status; mu held.
func (n *Node) statusLocked() Status {
	p := n.st.SRP()
	s := Status{
		NodeID:         NodeID(n.self),
		Transport:      string(n.rt.Totem.Transport),
		RRPMode:        n.rt.Totem.RRPMode,
		State:          p.State().String(),
		RingID:         ringID(n.current.RingID),
		Members:        nodeIDs(n.current.Members),
		Synchronizing:  n.st.Synchronizing(),
		QuorumProvider: n.rt.Quorum.Provider,
		SRP:            p.Counters(),
	}
	s.Backlog, s.BacklogPeak = n.disp.backlog()
	s.ThreadReleases = n.threadReleases.Load()
	c := n.st.Counters()
	s.Dropped = c.SyncDiscarded + c.CPGDropped + c.QuorumMalformed + c.CmapMalformed + c.UnknownService + c.FramingDropped
	s.ServiceMessages = n.st.ServiceMessages()
	if cv := n.st.ConfigVersions(); len(cv) > 0 {
		s.ConfigVersions = make(map[NodeID]uint64, len(cv))
		for id, v := range cv {
			s.ConfigVersions[NodeID(id)] = v
		}
	}
	faults := n.st.LinkStatus()
	for i, l := range n.links {
		ls := LinkStatus{Link: n.rt.Rings[i].Link, LocalAddr: n.rt.Rings[i].BindNetAddr.String()}
		if i < len(faults) {
			ls.Faulty, ls.Text = faults[i].Faulty, faults[i].Text
		} else {
			ls.Text = fmt.Sprintf("ring %d active with no faults", ls.Link)
		}
		s.Links = append(s.Links, ls)
		s.Net = append(s.Net, l.Counters())
	}
	if len(n.links) == 1 && n.rt.Totem.Transport == config.TransportKnet {
		s.Links = knetLinkStatus(n.rt, n.links[0].KnetStatus(), n.links[0].KnetDataMTU())
	}
	if q := n.st.Quorum(); q != nil {
		s.Quorum = q.Snapshot()
	}
	// Known nodes: the nodelist, learned addresses, and anyone seen in a configuration.
	known := map[srp.NodeID]*NodeStatus{}
	get := func(id srp.NodeID) *NodeStatus {
		ns := known[id]
		if ns == nil {
			ns = &NodeStatus{NodeID: NodeID(id), Addrs: make([]string, max(len(n.links), len(n.rt.Rings)))} // knet: one link, several rings
			known[id] = ns
		}
		return ns
	}
	for _, node := range n.rt.Nodes {
		ns := get(srp.NodeID(node.NodeID))
		ns.Name = node.Name
		for i, r := range n.rt.Rings {
			if a := node.IPs[r.Link]; a.IsValid() {
				ns.Addrs[i] = a.String()
			}
		}
	}
	for i, l := range n.links {
		for id, a := range l.Learned() {
			ns := get(id)
			if ns.Addrs[i] == "" {
				ns.Addrs[i] = a.String()
			}
		}
	}
	for id, m := range n.members {
		ns := get(id)
		ns.Member, ns.Left, ns.JoinCount = m.member, m.left, m.joinCount
	}
	for _, ns := range known {
		s.Nodes = append(s.Nodes, *ns)
	}
	slices.SortFunc(s.Nodes, func(a, b NodeStatus) int { return cmp.Compare(a.NodeID, b.NodeID) })
	n.healthLocked(&s)
	return s
}

// CmapKeys returns the node's key view as corosync-cmapctl prints the default map: the
// configuration keys, runtime.config.totem.*, runtime.members.* and runtime.votequorum.*,
// sorted bytewise.
func (n *Node) CmapKeys() []config.KeyValue {
	var rt *config.Runtime
	if n.do(func() { rt = n.rt }) != nil { // Reload replaces rt with mu held
		rt = n.rt // stopped: no reload runs any more
	}
	keys := rt.Keys()
	st := n.Status()
	add := func(key string, t config.Type, v string) {
		keys = append(keys, config.KeyValue{Key: key, Type: t, Value: v})
	}
	for _, ns := range st.Nodes {
		if ns.JoinCount == 0 && !ns.Member {
			continue
		}
		prefix := fmt.Sprintf("runtime.members.%d.", ns.NodeID)
		if v, ok := st.ConfigVersions[ns.NodeID]; ok {
			add(prefix+"config_version", config.TypeU64, strconv.FormatUint(v, 10))
		}
		var ip strings.Builder
		for i, a := range ns.Addrs {
			if a != "" {
				fmt.Fprintf(&ip, "r(%d) ip(%s) ", rt.Rings[i].Link, a)
			}
		}
		add(prefix+"ip", config.TypeStr, ip.String())
		add(prefix+"join_count", config.TypeU32, strconv.FormatUint(uint64(ns.JoinCount), 10))
		status := "joined"
		if !ns.Member {
			status = "left"
		}
		add(prefix+"status", config.TypeStr, status)
	}
	if rt.Quorum.Provider != "" {
		q := st.Quorum
		add("runtime.votequorum.this_node_id", config.TypeU32, strconv.FormatUint(uint64(n.self), 10))
		add("runtime.votequorum.two_node", config.TypeU8, boolDigit(q.Local.Flags&quorum.InfoTwoNode != 0))
		add("runtime.votequorum.ev_barrier", config.TypeU32, strconv.FormatUint(uint64(q.EVBarrier), 10))
		// corosync publishes these once a membership was quorate by votes, and
		// wait_for_all_status only when wait_for_all is on (it sets the key where it
		// changes the status); it has no runtime.votequorum.quorate.
		if q.LowestNodeID != 0 {
			add("runtime.votequorum.lowest_node_id", config.TypeU32, strconv.FormatUint(uint64(q.LowestNodeID), 10))
			add("runtime.votequorum.highest_node_id", config.TypeU32, strconv.FormatUint(uint64(q.HighestNodeID), 10))
		}
		if q.Local.Flags&quorum.InfoWaitForAll != 0 {
			add("runtime.votequorum.wait_for_all_status", config.TypeU8, boolDigit(q.WaitForAllStatus))
		}
	}
	keys = append(keys, serviceKeys(rt, st)...)
	keys = append(keys, statsKeys(st)...)
	slices.SortFunc(keys, func(a, b config.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	return keys
}

// runService is one service engine gototem runs, as corosync lists it in cmap.
type runService struct {
	id        int
	name      string // corosync_<name>
	functions int    // exec message functions, counted under runtime.services.<name>.<fn>
}

// runServices are the engines gototem runs, by corosync service id. corosync 3.1.7 also loads
// pload (4), mon (6) and wd (7), which gototem does not run.
var runServices = []runService{
	{0, "cmap", 1}, {1, "cfg", 5}, {2, "cpg", 7}, {3, "quorum", 0}, {5, "votequorum", 4},
}

// serviceKeys are internal_configuration.service.<id>.{name,ver} (exec/service.c) and
// runtime.services.<name>.service_id and .<fn>.tx/rx, for the services this node runs.
func serviceKeys(rt *config.Runtime, st Status) []config.KeyValue {
	var keys []config.KeyValue
	add := func(key string, t config.Type, v string) {
		keys = append(keys, config.KeyValue{Key: key, Type: t, Value: v})
	}
	for _, sv := range runServices {
		if sv.name == "votequorum" && rt.Quorum.Provider != "corosync_votequorum" {
			continue
		}
		add(fmt.Sprintf("internal_configuration.service.%d.name", sv.id), config.TypeStr, "corosync_"+sv.name)
		add(fmt.Sprintf("internal_configuration.service.%d.ver", sv.id), config.TypeU32, "0")
		add(fmt.Sprintf("runtime.services.%s.service_id", sv.name), config.TypeU16, strconv.Itoa(sv.id))
		for fn := 0; fn < sv.functions; fn++ {
			p := fmt.Sprintf("runtime.services.%s.%d.", sv.name, fn)
			add(p+"rx", config.TypeU64, strconv.FormatUint(st.ServiceMessages.Rx[sv.id][fn], 10))
			add(p+"tx", config.TypeU64, strconv.FormatUint(st.ServiceMessages.Tx[sv.id][fn], 10))
		}
	}
	return keys
}

// statsKeys is the stats view: corosync's stats.srp.* names where a counter matches one
// (corosync-cmapctl -m stats), and stats.gototem.* for the drop reasons and health that
// corosync does not count. corosync keeps the stats map apart; gototem serves it in the
// same key view, so `gototem cmap stats.` selects it.
func statsKeys(st Status) []config.KeyValue {
	p := st.SRP
	var keys []config.KeyValue
	u64 := func(key string, v uint64) {
		keys = append(keys, config.KeyValue{Key: key, Type: config.TypeU64, Value: strconv.FormatUint(v, 10)})
	}
	u64("stats.srp.orf_token_tx", p.TokensSent)
	u64("stats.srp.orf_token_rx", p.TokensReceived)
	u64("stats.srp.memb_merge_detect_tx", p.MergeDetectsSent)
	u64("stats.srp.memb_merge_detect_rx", p.MergeDetectsReceived)
	u64("stats.srp.memb_join_tx", p.JoinsSent)
	u64("stats.srp.memb_join_rx", p.JoinsReceived)
	u64("stats.srp.mcast_tx", p.McastSent)
	u64("stats.srp.mcast_retx", p.McastRetransmitted)
	u64("stats.srp.mcast_rx", p.McastReceived)
	u64("stats.srp.memb_commit_token_tx", p.CommitTokensSent)
	u64("stats.srp.token_hold_cancel_tx", p.HoldCancelsSent)
	u64("stats.srp.operational_entered", p.RingsFormed)
	u64("stats.srp.operational_token_lost", p.TokenLosses)
	u64("stats.srp.gather_entered", p.GatherEntries)
	u64("stats.srp.consensus_timeouts", p.ConsensusTimeouts)
	d := st.Drops
	u64("stats.srp.rx_msg_dropped", d.UnlistedSender+d.DecodeError+d.AuthFailure+d.Replay+d.Oversize+d.Invalid)
	u64("stats.gototem.drops.unlisted_sender", d.UnlistedSender)
	u64("stats.gototem.drops.decode_error", d.DecodeError)
	u64("stats.gototem.drops.auth_failure", d.AuthFailure)
	u64("stats.gototem.drops.replay", d.Replay)
	u64("stats.gototem.drops.oversize", d.Oversize)
	u64("stats.gototem.drops.queue_full", d.QueueFull)
	u64("stats.gototem.drops.invalid", d.Invalid)
	u64("stats.gototem.protocol.retransmits", st.Protocol.Retransmits)
	u64("stats.gototem.protocol.token_retransmits", p.TokenRetransmits)
	u64("stats.gototem.protocol.syncs", st.Protocol.Syncs)
	u64("stats.gototem.protocol.last_sync_ms", uint64(st.Protocol.LastSync.Milliseconds()))
	u64("stats.gototem.protocol.thread_releases", st.ThreadReleases)
	healthy := "0"
	if st.Healthy {
		healthy = "1"
	}
	keys = append(keys,
		config.KeyValue{Key: "stats.gototem.health.healthy", Type: config.TypeU8, Value: healthy},
		config.KeyValue{Key: "stats.gototem.health.state", Type: config.TypeStr, Value: st.Health})
	return keys
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
