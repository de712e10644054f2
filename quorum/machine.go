package quorum

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"
)

// NodeState is a node record's state (IPC VOTEQUORUM_NODESTATE_* values).
type NodeState uint8

const (
	StateMember  NodeState = 1
	StateDead    NodeState = 2
	StateLeaving NodeState = 3
)

func (s NodeState) String() string {
	switch s {
	case StateMember:
		return "MEMBER"
	case StateDead:
		return "DEAD"
	case StateLeaving:
		return "LEAVING"
	}
	return "UNSET"
}

// Errors of the administrative and quorum-device calls, named after the cs_error_t corosync
// returns for the same condition.
var (
	ErrInvalidParam = errors.New("CS_ERR_INVALID_PARAM")
	ErrNameNotFound = errors.New("CS_ERR_NAME_NOT_FOUND")
	ErrNotExist     = errors.New("CS_ERR_NOT_EXIST")
	ErrExist        = errors.New("CS_ERR_EXIST")
	ErrAccess       = errors.New("CS_ERR_ACCESS")
	ErrTryAgain     = errors.New("CS_ERR_TRY_AGAIN")
	ErrMessage      = errors.New("CS_ERR_MESSAGE_ERROR")
	// ErrUnknownSender is a received NODEINFO about the quorum device from a node whose own
	// NODEINFO never arrived. corosync aborts on an assertion there (services-sync.md §3.1, E4);
	// we drop the message.
	ErrUnknownSender = errors.New("nodeinfo for the quorum device from a node never announced")
	// ErrTooManyNodes is a NODEINFO for a new node when all MaxNodes records are live.
	ErrTooManyNodes = errors.New("node records exhausted")
)

type node struct {
	id       NodeID
	state    NodeState
	votes    uint32
	expected uint32
	flags    NodeFlags
}

// Change is one call of corosync's quorum callback: the verdict votequorum hands to the quorum
// service (and so to CPG users and pacemaker), with the numbers behind it.
type Change struct {
	RingID        RingID
	Members       []NodeID // the totem members of the ring, ascending
	Quorate       bool
	ExpectedVotes uint32
	TotalVotes    uint32
	Quorum        uint32
}

// RegistrationResult answers a QdeviceRegister once its QDEVICE_REG came back through totem.
type RegistrationResult struct {
	Name string
	Err  error // nil, or ErrExist when another device name is registered
}

// Ready is what the Machine asks of its driver after inputs (see the contract in doc.go).
type Ready struct {
	// Messages are votequorum bodies to multicast in totempg group "a" with AGREED guarantee,
	// in order. The driver must deliver every one back to this Machine too (totem does).
	Messages [][]byte
	// Changes are quorum callbacks in order.
	Changes []Change
	// Registrations are outcomes of pending QdeviceRegister calls.
	Registrations []RegistrationResult
	// ExpectedVotes are corosync's expected-votes notifications to votequorum trackers, in
	// order (each the node's expected votes then): sent when an EXPECTED_VOTES reconfigure is
	// delivered, even with the value unchanged, and when a recalculation raises expected votes
	// to the votes present. Within one Ready they precede the Changes, as in corosync's
	// recalculation.
	ExpectedVotes []uint32
	// NextTick is when Tick must be called next (0: no timer armed).
	NextTick time.Duration
}

// Counters are drops and failures a node operator should see.
type Counters struct {
	Malformed     uint64 // undecodable bodies
	UnknownSender uint64 // NODEINFO(0) before the sender's own NODEINFO
	NoRecord      uint64 // new node with every record in use
	EVStoreErrors uint64 // failed ev_tracking writes
}

// Machine is votequorum for one node.
type Machine struct {
	cfg   Config
	d     *derived
	store EVStore
	log   *slog.Logger

	us      *node
	nodes   map[NodeID]*node // every record but the quorum device's, us included
	qdevice node             // id 0: only votes are used

	quorum            uint32
	quorate           bool
	wfaStatus         bool
	lowest, highest   NodeID // 0: never quorate by votes yet
	evBarrier         uint32
	evTrackingBarrier uint32

	members, prevMembers []NodeID
	ringID               RingID

	syncInProgress   bool
	syncNodeinfoSent bool
	syncWaitForPoll  bool

	lmsSet      bool
	lmsDeadline time.Duration
	qdevSet     bool
	qdevAt      time.Duration

	qdeviceName       string
	qdeviceRegPending bool
	qdeviceMasterWins bool

	reported Change // last callback, what the quorum service shows
	started  bool
	now      time.Duration
	rd       Ready
	counters Counters
	warnings []string
}

// New reads the configuration as votequorum's init does and returns the errors that make
// corosync refuse to start (exit 20). store may be nil unless expected_votes_tracking or
// allow_downscale is on; log may be nil.
func New(cfg Config, store EVStore, log *slog.Logger) (*Machine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.NodeID == 0 {
		return nil, fmt.Errorf("quorum: %w: nodeid 0 is reserved for the quorum device", ErrConfig)
	}
	m := &Machine{cfg: cfg, store: store, log: log, nodes: map[NodeID]*node{}}
	var barrier uint32
	evt := cfg.ExpectedVotesTracking || cfg.AllowDownscale
	if evt && store != nil {
		b, err := store.Load()
		if err != nil {
			return nil, fmt.Errorf("quorum: Unable to load ev_tracking file!: %w", err)
		}
		barrier = b
	}
	d, err := derive(cfg, false, nil, false, barrier)
	if err != nil {
		return nil, err
	}
	if evt && store == nil {
		return nil, fmt.Errorf("quorum: %w: expected_votes_tracking needs an ev_tracking store", ErrConfig)
	}
	m.d = d
	m.evTrackingBarrier = barrier
	m.us = &node{id: cfg.NodeID, state: StateMember, votes: d.usVotes, expected: d.usExpected, flags: FlagFirst}
	m.nodes[cfg.NodeID] = m.us
	m.qdevice.votes = d.qdeviceVotes
	m.evBarrier = m.us.expected
	m.warnings = d.warnings
	for _, w := range d.warnings {
		log.Warn("votequorum: " + w)
	}
	if d.wfa {
		m.setWFA(true)
	}
	return m, nil
}

// Warnings returns the configuration problems corosync logs (CRIT or WARNING) and survives.
func (m *Machine) Warnings() []string { return slices.Clone(m.warnings) }

// Start runs the rest of votequorum's init: the first quorum calculation and the NODEINFO that
// announces this node.
func (m *Machine) Start(now time.Duration) {
	m.now = now
	if m.started {
		return
	}
	m.started = true
	m.recalculate(false, false)
	m.sendNodeInfo(m.us.id)
}

// Sync is corosync's votequorum_sync_init: the driver calls it for every regular configuration,
// when the sync engine starts votequorum's part. members need not be sorted.
func (m *Machine) Sync(now time.Duration, ring RingID, members []NodeID) {
	m.now = now
	cur := slices.Clone(members)
	slices.Sort(cur)
	cur = slices.Compact(cur)
	m.syncInProgress = true
	m.syncNodeinfoSent = false
	m.syncWaitForPoll = false
	if len(cur) > 1 {
		m.us.flags &^= FlagFirst
	}
	left := false
	for _, id := range m.members {
		if !slices.Contains(cur, id) {
			left = true
			if n := m.nodes[id]; n != nil {
				n.state = StateDead
			}
		}
	}
	if m.d.lms {
		mcount := uint32(len(cur))
		if (mcount >= m.quorum && left) ||
			(mcount <= m.quorum && m.d.atb != ATBNone && m.memberRecord(m.lowest)) {
			m.lmsSet, m.lmsDeadline = true, now+m.d.lmsWindow
		}
	}
	m.prevMembers = m.members
	m.members = cur
	m.ringID = ring
	if m.us.flags&FlagQdeviceRegistered != 0 && m.us.flags&FlagQdeviceAlive != 0 {
		// A registered, alive device must vote again for the new ring before the sync moves on.
		m.qdevSet, m.qdevAt = true, now+m.d.qdeviceSync
		m.syncWaitForPoll = true
	}
}

// SyncProcess is corosync's votequorum_sync_process. It returns the bodies to multicast in group
// "a" before votequorum's sync BARRIER (NODEINFO for this node first, then for the quorum
// device: real nodes abort if NODEINFO(0) from a node precedes that node's own) and whether the
// phase is done. While not done (a registered device has not polled for the new ring and its
// sync_timeout has not passed) the driver holds the BARRIER back and calls again after a poll
// or a tick.
func (m *Machine) SyncProcess(now time.Duration) (msgs [][]byte, done bool) {
	m.now = now
	if !m.syncNodeinfoSent {
		msgs = append(msgs, m.nodeInfoBody(m.us.id), m.nodeInfoBody(QdeviceNodeID))
		if m.qdeviceName != "" {
			if b, err := EncodeQdeviceReg(QdeviceReg{Operation: QdeviceRegister, Name: m.qdeviceName}); err == nil {
				msgs = append(msgs, b)
			}
		}
		m.syncNodeinfoSent = true
	}
	if m.us.flags&FlagQdeviceRegistered != 0 && m.syncWaitForPoll {
		return msgs, false
	}
	return msgs, true
}

// SyncActivate is corosync's votequorum_sync_activate: every member's NODEINFO of this sync has
// been delivered. It recalculates and always reports the verdict.
func (m *Machine) SyncActivate(now time.Duration) {
	m.now = now
	m.recalculate(false, false)
	m.callback()
	m.syncInProgress = false
}

// SyncAbort is corosync's votequorum_sync_abort, which does nothing: a new Sync follows.
func (m *Machine) SyncAbort() {}

// Synchronizing reports whether a sync is in progress (verdict changes are then held back until
// SyncActivate).
func (m *Machine) Synchronizing() bool { return m.syncInProgress }

// Deliver handles one votequorum body delivered by totem in group "a" from node from. swapped is
// the foreign-endian indication. A malformed body returns an error and changes nothing.
func (m *Machine) Deliver(now time.Duration, from NodeID, body []byte, swapped bool) error {
	m.now = now
	msg, err := Decode(body, swapped)
	if err != nil {
		m.counters.Malformed++
		return err
	}
	switch v := msg.(type) {
	case NodeInfo:
		return m.onNodeInfo(from, v)
	case Reconfigure:
		m.onReconfigure(from, v)
	case QdeviceReg:
		m.onQdeviceReg(from, v)
	case QdeviceReconfigure:
		if v.OldName == m.qdeviceName {
			m.qdeviceName = v.NewName
		}
	}
	return nil
}

// Tick fires the timers due at now: last_man_standing_window and the quorum device's poll
// timeout.
func (m *Machine) Tick(now time.Duration) {
	m.now = now
	if m.lmsSet && now >= m.lmsDeadline {
		m.lmsSet = false
		// The window passed without a further membership change: expected votes shrink to what
		// is here, but only for a partition that is still quorate.
		if m.quorate {
			m.recalculate(true, true)
		}
	}
	if m.qdevSet && now >= m.qdevAt {
		m.qdevSet = false
		if m.us.flags&FlagQdeviceAlive != 0 {
			m.us.flags &^= FlagQdeviceAlive | FlagQdeviceCastVote
			m.log.Info("votequorum: lost contact with quorum device " + m.qdeviceName)
			m.sendNodeInfo(m.us.id)
			m.syncWaitForPoll = false
		}
	}
}

// Ready returns what the driver must do now. It stays valid until Advance.
func (m *Machine) Ready() Ready {
	rd := m.rd
	rd.NextTick = 0
	if m.lmsSet {
		rd.NextTick = m.lmsDeadline
	}
	if m.qdevSet && (rd.NextTick == 0 || m.qdevAt < rd.NextTick) {
		rd.NextTick = m.qdevAt
	}
	return rd
}

// Advance acknowledges the last Ready.
func (m *Machine) Advance() { m.rd = Ready{} }

// Counters returns drop and failure counts.
func (m *Machine) Counters() Counters { return m.counters }

// --- administrative operations (corosync-quorumtool -e / -v, cmap cancel_wait_for_all) ---

// SetExpected is `corosync-quorumtool -e n`. It validates on this node and multicasts
// RECONFIGURE(EXPECTED_VOTES); every node, this one included, applies it on delivery.
func (m *Machine) SetExpected(now time.Duration, n uint32) error {
	m.now = now
	if n == 0 || n > math.MaxInt32 {
		return fmt.Errorf("quorum: set expected votes %d: %w", n, ErrInvalidParam)
	}
	// allow_downscale's floor must not hide what the administrator asks for.
	saved := m.d.ad
	m.d.ad = false
	q, total := m.calculateQuorum(true, n)
	m.d.ad = saved
	if n < total || (m.quorate && q > total) {
		return fmt.Errorf("quorum: set expected votes %d (total votes %d, quorum would be %d): %w", n, total, q, ErrInvalidParam)
	}
	m.updateNodeExpected(n)
	m.rd.Messages = append(m.rd.Messages, EncodeReconfigure(Reconfigure{NodeID: m.us.id, Value: n, Param: ParamExpectedVotes}))
	return nil
}

// SetVotes is `corosync-quorumtool -v votes -n nodeid`. Like corosync, the new value is kept in
// the local record when accepted; the target node announces it in its later NODEINFOs.
func (m *Machine) SetVotes(now time.Duration, nodeid NodeID, votes uint32) error {
	m.now = now
	n := m.find(nodeid)
	if n == nil {
		return fmt.Errorf("quorum: set votes of node %d: %w", nodeid, ErrNameNotFound)
	}
	saved := n.votes
	n.votes = votes
	q, total := m.calculateQuorum(true, 0)
	if q < total/2 || q > total {
		n.votes = saved
		return fmt.Errorf("quorum: set votes of node %d to %d (total votes %d, quorum would be %d): %w", nodeid, votes, total, q, ErrInvalidParam)
	}
	m.rd.Messages = append(m.rd.Messages, EncodeReconfigure(Reconfigure{NodeID: nodeid, Value: votes, Param: ParamNodeVotes}))
	return nil
}

// CancelWaitForAll is `corosync-cmapctl -s quorum.cancel_wait_for_all u8 1`.
func (m *Machine) CancelWaitForAll(now time.Duration) {
	m.now = now
	m.rd.Messages = append(m.rd.Messages, EncodeReconfigure(Reconfigure{NodeID: m.us.id, Param: ParamCancelWFA}))
}

// Reload is votequorum's refresh after a configuration change (corosync-cfgtool -R or a cmap
// write under quorum. or nodelist.). Startup-only keys keep their values; conflicts are logged
// and resolved as corosync does. It restores the configured expected votes (undoing
// last_man_standing and -e), as corosync does. An absent wait_for_all follows a changed two_node.
func (m *Machine) Reload(now time.Duration, cfg Config) error {
	m.now = now
	if cfg.NodeID != m.cfg.NodeID {
		return fmt.Errorf("quorum: reload: nodeid changed from %d to %d", m.cfg.NodeID, cfg.NodeID)
	}
	d, err := derive(cfg, true, m.d, m.us.flags&FlagQdeviceRegistered != 0, m.evTrackingBarrier)
	if err != nil {
		return err
	}
	for _, w := range d.warnings {
		m.log.Warn("votequorum: " + w)
	}
	m.warnings = append(m.warnings, d.warnings...)
	if d == m.d {
		return nil // unusable config: keep running on current data
	}
	oldVotes, oldExpected := m.us.votes, m.us.expected
	m.cfg, m.d = cfg, d
	m.us.votes = d.usVotes
	if d.usExpected != 0 {
		m.us.expected = d.usExpected
	}
	m.qdevice.votes = d.qdeviceVotes
	m.evBarrier = m.us.expected
	// A reload never re-arms wait_for_all; when two_node switched an implicit wait_for_all off,
	// a pending status is cleared so that the flag we announce is consistent.
	if !d.wfa && d.wfaAutoset && m.wfaStatus {
		m.setWFA(false)
	}
	m.sendNodeInfo(m.us.id)
	m.sendNodeInfo(QdeviceNodeID)
	if m.us.votes != oldVotes {
		m.rd.Messages = append(m.rd.Messages, EncodeReconfigure(Reconfigure{NodeID: m.us.id, Value: m.us.votes, Param: ParamNodeVotes}))
	}
	if m.us.expected != oldExpected {
		m.rd.Messages = append(m.rd.Messages, EncodeReconfigure(Reconfigure{NodeID: m.us.id, Value: m.us.expected, Param: ParamExpectedVotes}))
	}
	return nil
}

// Shutdown is votequorum's exit: with allow_downscale the node announces it is LEAVING so the
// others shrink expected votes; otherwise nothing is sent and the node simply disappears.
func (m *Machine) Shutdown(now time.Duration) {
	m.now = now
	if m.d.ad {
		m.us.flags |= FlagLeaving
		m.sendNodeInfo(m.us.id)
	}
}

// --- message handlers ---

func (m *Machine) onNodeInfo(from NodeID, msg NodeInfo) error {
	var n *node
	newNode := false
	var oldVotes, oldExpected uint32
	var oldFlags NodeFlags
	var oldState NodeState
	allowDecrease, byNode := false, false

	if msg.NodeID == QdeviceNodeID {
		sender := m.find(from)
		if sender == nil || from == QdeviceNodeID {
			m.counters.UnknownSender++
			return fmt.Errorf("quorum: nodeinfo(0) from node %d: %w", from, ErrUnknownSender)
		}
		n = &m.qdevice
		oldVotes, oldExpected, oldFlags, oldState = n.votes, n.expected, n.flags, n.state
		if !m.quorate && sender.flags&FlagQuorate != 0 {
			n.votes = msg.Votes
		} else {
			n.votes = max(n.votes, msg.Votes)
		}
	} else {
		n = m.find(msg.NodeID)
		if n == nil {
			var err error
			if n, err = m.allocate(msg.NodeID); err != nil {
				return err
			}
			newNode = true
			oldState = StateDead
		} else {
			oldVotes, oldExpected, oldFlags, oldState = n.votes, n.expected, n.flags, n.state
		}
		n.flags = msg.Flags
		n.votes = msg.Votes
		n.state = StateMember
		if n.flags&FlagLeaving != 0 {
			n.state = StateLeaving
			allowDecrease, byNode = true, true
		}
		if !m.quorate && n.flags&FlagQuorate != 0 {
			// An inquorate node joins the quorate cluster's view of expected votes.
			allowDecrease = true
			m.us.expected = msg.ExpectedVotes
		}
		if n.flags&FlagQuorate != 0 || m.d.evt {
			n.expected = msg.ExpectedVotes
		} else {
			n.expected = m.us.expected
		}
		if m.d.lms && n.votes > 1 {
			m.log.Warn("votequorum: Last Man Standing feature is supported only when all cluster nodes votes are set to 1. Disabling LMS.")
			m.d.lms = false
			m.lmsSet = false
		}
	}
	if newNode || msg.NodeID == m.us.id || n.flags&FlagFirst != 0 ||
		oldVotes != n.votes || oldExpected != n.expected || oldFlags != n.flags || oldState != n.state {
		m.recalculate(allowDecrease, byNode)
	}
	if m.d.wfa && n.flags&FlagWFAStatus == 0 && n.flags&FlagQuorate != 0 {
		// Joining a running quorate cluster does not need to wait for all nodes.
		m.setWFA(false)
	}
	return nil
}

func (m *Machine) onReconfigure(from NodeID, r Reconfigure) {
	switch r.Param {
	case ParamExpectedVotes:
		m.updateNodeExpected(r.Value)
		m.rd.ExpectedVotes = append(m.rd.ExpectedVotes, m.us.expected)
		m.evBarrier = r.Value
		if m.d.evt {
			m.us.expected = max(m.us.expected, m.evTrackingBarrier)
		}
		m.recalculate(true, false)
	case ParamNodeVotes:
		n := m.find(r.NodeID)
		if n == nil {
			return
		}
		n.votes = r.Value
		m.recalculate(true, false)
	case ParamCancelWFA:
		m.setWFA(false)
		m.log.Info(fmt.Sprintf("votequorum: wait_for_all_status reset by user on node %d.", r.NodeID))
		m.recalculate(false, false)
	}
}

func (m *Machine) onQdeviceReg(from NodeID, r QdeviceReg) {
	switch r.Operation {
	case QdeviceRegister:
		if from != m.us.id {
			if m.qdeviceName == "" {
				m.qdeviceName = r.Name
			}
			return
		}
		// Our own REGISTER also comes back after every sync; only a pending call completes.
		if m.us.flags&FlagQdeviceRegistered != 0 || !m.qdeviceRegPending {
			return
		}
		m.qdeviceRegPending = false
		if m.qdeviceName == "" {
			m.qdeviceName = r.Name
		}
		res := RegistrationResult{Name: r.Name}
		if r.Name == m.qdeviceName {
			m.us.flags |= FlagQdeviceRegistered
			m.sendNodeInfo(QdeviceNodeID)
			m.sendNodeInfo(m.us.id)
		} else {
			res.Err = fmt.Errorf("quorum: qdevice %q: another device %q is registered: %w", r.Name, m.qdeviceName, ErrExist)
		}
		m.rd.Registrations = append(m.rd.Registrations, res)
	case QdeviceUnregister:
		for _, n := range m.nodes {
			if n.state == StateMember && n.flags&FlagQdeviceRegistered != 0 {
				return
			}
		}
		m.qdeviceName = ""
	}
}

// --- the quorum computation (votequorum.md §5) ---

func sat32(v uint64) uint32 {
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// calculateQuorum is corosync's calculate_quorum. Sums saturate instead of wrapping so a
// hostile vote count cannot make a partition look small.
func (m *Machine) calculateQuorum(allowDecrease bool, maxExpected uint32) (q, total uint32) {
	if m.d.ad && allowDecrease && maxExpected != 0 {
		maxExpected = max(m.evBarrier, maxExpected)
	}
	var highest uint32
	var t uint64
	nodes := 0
	for _, n := range m.nodes {
		if n.state == StateMember {
			highest = max(highest, n.expected)
			t += uint64(n.votes)
			nodes++
		}
	}
	if m.us.flags&FlagQdeviceCastVote != 0 {
		t += uint64(m.qdevice.votes)
		nodes++
	}
	if maxExpected > 0 {
		highest = maxExpected
	}
	q1 := (uint64(highest) + 2) / 2
	q2 := (t + 2) / 2
	nq := sat32(max(q1, q2))
	if !allowDecrease {
		nq = max(m.quorum, nq)
	}
	if m.d.twoNode && nodes <= 2 {
		nq = 1
	}
	return nq, sat32(t)
}

func (m *Machine) updateNodeExpected(v uint32) {
	if v == 0 {
		return
	}
	for _, n := range m.nodes {
		if n.state == StateMember {
			n.expected = v
		}
	}
}

// recalculate is corosync's recalculate_quorum.
func (m *Machine) recalculate(allowDecrease, byCurrentNodes bool) {
	var t uint64
	var members uint32
	for _, n := range m.nodes {
		if n.state == StateMember {
			t += uint64(n.votes)
			members++
		}
	}
	if m.qdevice.votes != 0 {
		t += uint64(m.qdevice.votes)
		members++
	}
	if !byCurrentNodes {
		members = 0
	}
	// Expected votes never stay below the votes present.
	if total := sat32(t); total > m.us.expected {
		m.us.expected = total
		m.rd.ExpectedVotes = append(m.rd.ExpectedVotes, m.us.expected)
	}
	if m.d.evt && m.us.expected > m.evTrackingBarrier {
		m.evTrackingBarrier = m.us.expected
		if m.store != nil {
			if err := m.store.Store(m.evTrackingBarrier); err != nil {
				m.counters.EVStoreErrors++
				m.log.Warn("votequorum: Unable to update ev_tracking_barrier on disk data!!!", "err", err)
			}
		}
	}
	var total uint32
	m.quorum, total = m.calculateQuorum(allowDecrease, members)
	m.updateNodeExpected(members)
	m.areWeQuorate(total)
}

// areWeQuorate is corosync's are_we_quorate; the order of the gates matters.
func (m *Machine) areWeQuorate(total uint32) {
	if m.d.wfa && m.wfaStatus {
		if total != m.us.expected {
			// corosync returns here without touching the QUORATE flag or calling back.
			m.log.Info(fmt.Sprintf("votequorum: Waiting for all cluster members. Current votes: %d expected_votes: %d", total, m.us.expected))
			m.quorate = false
			return
		}
		m.setWFA(false)
	}
	quorate := m.quorum <= total
	if quorate {
		m.lowest, m.highest = m.us.id, m.us.id
		for _, n := range m.nodes {
			if n.state == StateMember {
				m.lowest = min(m.lowest, n.id)
				m.highest = max(m.highest, n.id)
			}
		}
	}
	if m.d.atb != ATBNone && total == m.us.expected/2 &&
		len(m.prevMembers)-len(m.members) < int(m.quorum) && m.checkATB() {
		quorate = true
	}
	if m.qdeviceMasterWins && !quorate {
		for _, n := range m.nodes {
			if n.state == StateMember && n.flags&FlagQdeviceMasterWins != 0 && n.flags&FlagQdeviceCastVote != 0 {
				quorate = true
			}
		}
	}
	changed := quorate != m.quorate
	m.quorate = quorate
	if quorate {
		m.us.flags |= FlagQuorate
	} else {
		m.us.flags &^= FlagQuorate
	}
	if m.d.wfa {
		// Losing quorum re-arms wait_for_all.
		m.setWFA(!quorate)
	}
	if changed && !m.syncInProgress {
		m.callback()
	}
}

// checkATB decides a tie: LOWEST/HIGHEST need the remembered lowest/highest node of the last
// quorate membership here; LIST grants quorum at the first listed node present unless a node
// listed before it was in the previous ring (it may be on the other side).
func (m *Machine) checkATB() bool {
	switch m.d.atb {
	case ATBLowest:
		return m.memberRecord(m.lowest)
	case ATBHighest:
		return m.memberRecord(m.highest)
	}
	for i, id := range m.d.atbList {
		if slices.Contains(m.members, id) {
			for _, before := range m.d.atbList[:i] {
				if slices.Contains(m.prevMembers, before) {
					return false
				}
			}
			return true
		}
	}
	return false
}

func (m *Machine) memberRecord(id NodeID) bool {
	n := m.nodes[id]
	return id != 0 && n != nil && n.state == StateMember
}

func (m *Machine) setWFA(on bool) {
	m.wfaStatus = on
	if on {
		m.us.flags |= FlagWFAStatus
	} else {
		m.us.flags &^= FlagWFAStatus
	}
}

func (m *Machine) callback() {
	t := m.totalVotes(m.us)
	c := Change{
		RingID:        m.ringID,
		Members:       slices.Clone(m.members),
		Quorate:       m.quorate,
		ExpectedVotes: m.us.expected,
		TotalVotes:    t,
		Quorum:        m.quorum,
	}
	m.reported = c
	m.rd.Changes = append(m.rd.Changes, c)
}

func (m *Machine) find(id NodeID) *node {
	if id == QdeviceNodeID {
		return &m.qdevice
	}
	return m.nodes[id]
}

// allocate creates a record, recycling a DEAD one when MaxNodes are in use, as corosync's
// fixed pool does.
func (m *Machine) allocate(id NodeID) (*node, error) {
	if len(m.nodes) >= MaxNodes {
		var victim NodeID
		for nid, n := range m.nodes {
			if n.state == StateDead && n != m.us && (victim == 0 || nid < victim) {
				victim = nid
			}
		}
		if victim == 0 {
			m.counters.NoRecord++
			return nil, fmt.Errorf("quorum: nodeinfo for node %d: %w (%d)", id, ErrTooManyNodes, MaxNodes)
		}
		delete(m.nodes, victim)
	}
	n := &node{id: id}
	m.nodes[id] = n
	return n, nil
}

func (m *Machine) nodeInfoBody(id NodeID) []byte {
	n := m.find(id)
	return EncodeNodeInfo(NodeInfo{NodeID: id, Votes: n.votes, ExpectedVotes: n.expected, Flags: n.flags})
}

func (m *Machine) sendNodeInfo(id NodeID) {
	m.rd.Messages = append(m.rd.Messages, m.nodeInfoBody(id))
}
