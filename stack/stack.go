// Package stack composes one node's pure protocol layers — srp (ordering and membership),
// totempg (packing, fragmentation, group framing), the service layer (corosync's sync engine and
// CPG process groups), votequorum and the redundant ring — into a single deterministic state
// machine with the same Step/Ready shape as srp. The real node (totem/) runs a Stack on sockets
// and the wall clock; the simulator (sim/) runs the very same Stack on virtual time, so whatever
// the simulator proves about a Stack holds for the daemon.
//
// It owns the wiring between the layers and nothing else: no goroutines, no clock, no I/O.
package stack

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
)

// Errors of the Stack's application inputs.
var (
	// ErrBusy: the ring cannot take the message now (send queue full, or a sync is running
	// with too much already held back). Retry later: corosync's CS_ERR_TRY_AGAIN.
	ErrBusy = errors.New("stack: ring busy, try again")
	// ErrStopped: the stack has left the ring.
	ErrStopped = errors.New("stack: stopped")
)

// heldMax bounds the application messages held back while a sync runs (real nodes refuse
// flow-controlled requests during sync; we accept a bounded number and send them after).
const heldMax = 1024

// Config configures a Stack.
type Config struct {
	SRP srp.Config
	// Quorum enables votequorum (quorum.provider: corosync_votequorum); nil disables it.
	Quorum  *quorum.Config
	EVStore quorum.EVStore // nil: memory
	// Links is the number of redundant rings (1 without rrp).
	Links int
	// RRP configures the redundant ring when Links > 1.
	RRP *RRPConfig
	// ReuseDatagramBuffers lets Ready's datagram Data alternate between two buffers the
	// Stack reuses: they stay valid until the second Advance after the Ready, not for ever.
	// That spares an allocation per datagram for a driver that is done with them by then
	// (totem); one that keeps datagrams longer (the simulator's network) leaves it off.
	ReuseDatagramBuffers bool
	// ReuseEventBuffers makes the GroupMessages of Ready's Events (and their Payloads) valid
	// only until Advance, which reuses their memory: a driver that copies what it keeps
	// before Advance (totem's dispatcher) delivers without an allocation per message.
	ReuseEventBuffers bool
	// SendQueueDelay, when set, bounds application messages waiting in srp's queue by the
	// time this node needs to send them rather than by srp's count alone (4 MiB of packets,
	// ~2,800 at netmtu 1500, which a flood kept full: every message then waited tens of
	// milliseconds behind it). Send refuses with ErrBusy once the queue holds more packets
	// than this node drains in SendQueueDelay at the rate it took them at recent token
	// visits (never fewer than two visits' worth, 2×max_messages, so a flood still fills
	// every visit). Service messages are not limited. Zero: srp's count only.
	SendQueueDelay time.Duration
	Logger         *slog.Logger
	// ConfigVersion is totem.config_version, sent in cmap's sync message (nil: the key is
	// absent, which corosync sends as type 0).
	ConfigVersion *uint64
	// GototemRing: no corosync node is in the ring (every nodelist node declared
	// gototem_node: yes; the simulator's rings). A message of this node's cut by a merge is
	// then sent again whole, so that every member delivers it; otherwise it is continued, as
	// corosync does, which only the members of the old ring can reassemble, but which
	// corosync's members of that ring would throw away if it came again whole.
	GototemRing bool
}

// Datagram is one datagram to transmit on one link.
type Datagram struct {
	Link int
	srp.Outgoing
}

// Event is one upward event, in total order; exactly one field is set.
type Event struct {
	// Membership is a ring configuration (transitional or regular) as srp delivered it.
	Membership *srp.Configuration
	// Group is a process-group membership change.
	Group *services.Confchg
	// Message is a message delivered to a group this node has a member in.
	Message *services.GroupMessage
	// Quorum is votequorum's verdict after a change.
	Quorum *quorum.Change
	// ExpectedVotes is votequorum's expected-votes notification to its trackers (the node's
	// expected votes): see quorum.Ready.ExpectedVotes.
	ExpectedVotes *uint32
	// Synced reports the end of service synchronization for a ring.
	Synced *srp.RingID
	// Fault reports a redundant-ring link marked faulty or recovered.
	Fault *LinkEvent
	// Registration answers a QdeviceRegister once its QDEVICE_REG came back through totem
	// (corosync answers the registering client only then).
	Registration *quorum.RegistrationResult
	// CfgKill is a cfg KILLNODE naming this node (corosync-cfgtool -k): the driver exits.
	CfgKill *CfgKill
	// CfgReload is a cfg RELOAD_CONFIG (corosync-cfgtool -R on any node): the driver reloads.
	CfgReload *CfgReload
	// ShutdownRequest is a service asking this node to exit (cmap's config_version check):
	// the driver logs Reason and leaves the ring.
	ShutdownRequest *ShutdownRequest
	// CfgCrypto is this node's own knet crypto reconfiguration phase come back SAFE: the
	// driver takes it (totem: the knet transport's crypto slots).
	CfgCrypto *CfgCrypto
}

// Ready is what the Stack asks of its driver after an input, with srp.Ready's obligations:
// transmit Datagrams in order (a ToAll datagram must also come back to this Stack through
// Receive), hand Events upward in order, call Tick at NextTick, then Advance.
type Ready struct {
	Datagrams []Datagram
	Events    []Event
	NextTick  time.Duration
}

// Counters of the layers above srp.
type Counters struct {
	SRP             srp.Counters
	SyncDiscarded   uint64 // malformed sync messages
	SyncStale       uint64 // sync messages of an old ring: normal around membership changes
	SyncCompleted   uint64
	CPGDropped      uint64
	QuorumMalformed uint64
	CmapMalformed   uint64 // CMAP_MCASTs without a readable config_version item
	// ConfigVersionMismatch counts first syncs that found a peer with a higher
	// config_version (each asks the driver to shut down).
	ConfigVersionMismatch uint64
	CfgMalformed          uint64 // cfg KILLNODEs too short to hold their fields
	UnknownService        uint64
	FramingDropped        uint64
	Framing               FramingDrops
	Held                  int
}

// Stack is one node's protocol state.
type Stack struct {
	cfg  Config
	self srp.NodeID
	log  *slog.Logger
	now  time.Duration

	srp  *srp.Processor
	pg   *framing
	sync *services.SyncEngine
	cpg  *services.CPG
	vq   *quorum.Machine
	rrp  *redundantRing

	held    []services.Outbound // application messages held while a sync runs
	stopped bool

	configVersions map[srp.NodeID]uint64 // cmap sync: runtime.members.<id>.config_version
	cmap           cmapSync              // cmap's first-sync config_version check
	activate       phaseWait             // a knet crypto reconfiguration's ACTIVATE phase
	cleanup        phaseWait             // and its CLEANUP phase
	svcMsgs        ServiceMessages       // runtime.services.<svc>.<fn>.tx/rx

	rd       Ready
	counters Counters
	inStep   bool

	// SendQueueDelay: srp's queue size, and the rate (packets/s) this node's queue was
	// drained at over recent token visits.
	srpQueueMax int
	drainRate   float64
	lastToken   time.Duration
	lastSent    uint64
}

// New builds a Stack.
func New(cfg Config) (*Stack, error) {
	if cfg.Links == 0 {
		cfg.Links = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{cfg: cfg, self: cfg.SRP.NodeID, log: log}
	s.cpg = services.NewCPG(s.self)
	if cfg.ReuseEventBuffers {
		s.cpg.ReuseBuffers()
	}
	ids := []int{services.ServiceCMAP, services.ServiceCPG, services.ServiceQuorum}
	participants := map[int]services.Participant{services.ServiceCPG: s.cpg, services.ServiceCMAP: cmapParticipant{s}}
	if cfg.Quorum != nil {
		store := cfg.EVStore
		if store == nil {
			store = &quorum.MemoryEVStore{}
		}
		vq, err := quorum.New(*cfg.Quorum, store, log)
		if err != nil {
			return nil, err
		}
		s.vq = vq
		ids = append(ids, services.ServiceVoteQuorum)
		participants[services.ServiceVoteQuorum] = quorumParticipant{s}
	}
	se, err := services.NewSyncEngine(ids, participants)
	if err != nil {
		return nil, err
	}
	s.sync = se
	pg, err := newFraming(cfg.SRP.NetMTU)
	if err != nil {
		return nil, err
	}
	s.pg = pg
	pg.self = s.self
	sc := cfg.SRP
	sc.TokenCallback = s.onToken
	// corosync's two send queues: what was queued before a membership change waits until
	// the new ring's sync completes (TransAck in onMessage).
	sc.TransAck = true
	p, err := srp.NewProcessor(sc)
	if err != nil {
		return nil, err
	}
	s.srp = p
	if cfg.ReuseDatagramBuffers {
		// Ready's datagrams point into srp's buffers, which Advance recycles
		// (RecycleFreed) only after the Ready after next.
		p.HoldFreedBuffers()
	}
	s.srpQueueMax = p.QueueRoom() // the queue is empty: its room is its size
	if cfg.Links > 1 {
		r, err := newRedundantRing(cfg.Links, cfg.RRP)
		if err != nil {
			return nil, err
		}
		s.rrp = r
	}
	return s, nil
}

// quorumParticipant adapts votequorum to the sync engine: corosync runs votequorum's sync
// hooks as one of the services.
type quorumParticipant struct{ s *Stack }

func (q quorumParticipant) SyncInit(ring srp.RingID, members, trans []srp.NodeID) {
	q.s.vq.Sync(q.s.now, quorum.RingID{Rep: quorum.NodeID(ring.Rep), Seq: ring.Seq}, toQuorumIDs(members))
}
func (q quorumParticipant) SyncProcess() ([][]byte, bool) { return q.s.vq.SyncProcess(q.s.now) }
func (q quorumParticipant) SyncActivate()                 { q.s.vq.SyncActivate(q.s.now) }
func (q quorumParticipant) SyncAbort()                    { q.s.vq.SyncAbort() }

func toQuorumIDs(ids []srp.NodeID) []quorum.NodeID {
	out := make([]quorum.NodeID, len(ids))
	for i, id := range ids {
		out[i] = quorum.NodeID(id)
	}
	return out
}

// Self is this node's id.
func (s *Stack) Self() srp.NodeID { return s.self }

// SRP exposes the ring state machine for inspection (state, ring id, members, counters).
func (s *Stack) SRP() *srp.Processor { return s.srp }

// CPG exposes the process-group model for inspection.
func (s *Stack) CPG() *services.CPG { return s.cpg }

// Quorum exposes votequorum (nil when not configured).
func (s *Stack) Quorum() *quorum.Machine { return s.vq }

// Synchronizing reports whether a service synchronization is running.
func (s *Stack) Synchronizing() bool { return s.sync.Synchronizing() }

// Counters returns the layers' counters.
func (s *Stack) Counters() Counters {
	c := s.counters
	c.SRP = s.srp.Counters()
	c.SyncDiscarded = s.sync.Discarded()
	c.SyncStale = s.sync.Stale()
	c.SyncCompleted = s.sync.Completed()
	c.CPGDropped = s.cpg.Dropped()
	if s.vq != nil {
		c.QuorumMalformed = s.vq.Counters().Malformed
	}
	c.FramingDropped = s.pg.dropped()
	c.Framing = s.pg.drops
	c.Held = len(s.held)
	return c
}

// Start begins membership: the node forms a singleton ring, then merges with whoever answers.
func (s *Stack) Start(now time.Duration) {
	s.now = now
	if s.vq != nil {
		s.vq.Start(now)
	}
	s.srp.Start(now)
	s.pump()
}

// Receive feeds a datagram received on link. The error is a decode error the caller counts.
func (s *Stack) Receive(now time.Duration, link int, datagram []byte) error {
	s.now = now
	if s.stopped {
		return nil
	}
	if s.rrp != nil && !s.rrp.receive(now, link, datagram) {
		s.pump()
		return nil
	}
	err := s.srp.Step(now, datagram)
	s.pump()
	return err
}

// Tick fires every timer due at now.
func (s *Stack) Tick(now time.Duration) {
	s.now = now
	if s.stopped {
		return
	}
	s.srp.Tick(now)
	if s.vq != nil {
		s.vq.Tick(now)
	}
	if s.rrp != nil {
		s.rrp.tick(now)
	}
	s.pump()
}

// Join adds the local process pid to group.
func (s *Stack) Join(now time.Duration, group string, pid uint32) error {
	s.now = now
	body, err := s.cpg.Join(group, pid)
	if err != nil {
		return err
	}
	return s.sendApp(services.Outbound{Group: "a", Body: body}, srp.Agreed, true)
}

// Leave removes the local process pid from group.
func (s *Stack) Leave(now time.Duration, group string, pid uint32) error {
	return s.LeaveFor(now, group, pid, services.ReasonLeave)
}

// LeaveFor removes the local process pid from group, every node reporting reason
// (services.ReasonProcDown for a process that died).
func (s *Stack) LeaveFor(now time.Duration, group string, pid uint32, reason services.Reason) error {
	s.now = now
	body, err := s.cpg.LeaveFor(group, pid, reason)
	if err != nil {
		return err
	}
	return s.sendApp(services.Outbound{Group: "a", Body: body}, srp.Agreed, true)
}

// Send multicasts payload to group from the local process pid. ErrBusy is backpressure.
func (s *Stack) Send(now time.Duration, group string, pid uint32, payload []byte, g srp.Guarantee) error {
	s.now = now
	if s.stopped {
		return ErrStopped
	}
	live := !s.sync.Synchronizing() && len(s.held) == 0 // not held back by a sync
	if live && len(payload) <= services.MaxMcastPayload {
		// The common case, one MCAST straight into the packer: its group frame and CPG
		// header are built in an array on the stack and the payload copied once, into the
		// packet, where Mcast's body cost two allocations per message.
		var hdr [4 + 1 + services.McastHeaderSize]byte
		head := appendGroupHeader(hdr[:0], "a")
		head, err := s.cpg.AppendMcastHeader(head, group, pid, len(payload))
		if err != nil {
			return err
		}
		if !s.appRoomFor(len(payload)) {
			return ErrBusy
		}
		if err := s.pg.sendHead(s.srp, now, head, payload, g); err != nil {
			if errors.Is(err, errFramingBusy) {
				return ErrBusy
			}
			return err
		}
		s.svcMsgs.Tx[services.ServiceCPG][cpgMcastFunction]++
		s.pg.kick(s.srp, now)
		s.pump()
		return nil
	}
	bodies, err := s.cpg.Mcast(group, pid, payload)
	if err != nil {
		return err
	}
	if live && !s.appRoomFor(len(payload)) {
		return ErrBusy
	}
	if !live {
		if len(s.held)+len(bodies) > heldMax {
			return ErrBusy
		}
		for _, b := range bodies {
			s.held = append(s.held, services.Outbound{Group: "a", Body: b})
		}
		s.pump()
		return nil
	}
	if err := s.pg.sendAll(s.srp, now, "a", bodies, g); err != nil {
		return err
	}
	for _, b := range bodies {
		s.countTx("a", b)
	}
	s.pg.kick(s.srp, now)
	s.pump()
	return nil
}

// appLimit is how many packets application messages may fill in srp's queue now.
func (s *Stack) appLimit() int {
	if s.cfg.SendQueueDelay <= 0 {
		return s.srpQueueMax
	}
	limit := int(s.drainRate * s.cfg.SendQueueDelay.Seconds())
	return min(max(limit, 2*s.cfg.SRP.MaxMessages), s.srpQueueMax)
}

// appRoomFor reports whether a payload of n bytes fits under appLimit. An empty queue takes
// any message, however many packets it needs, or a large one would never go.
func (s *Stack) appRoomFor(n int) bool {
	queued := s.srpQueueMax - s.srp.QueueRoom()
	return queued == 0 || queued+s.pg.packetsFor(n+services.McastHeaderSize+5) <= s.appLimit()
}

// noteDrain runs at every token visit, before this node takes from its queue: the messages
// it sent since the last visit over the time since then is one sample of its drain rate.
func (s *Stack) noteDrain() {
	sent := s.srp.Counters().McastSent
	if dt := s.now - s.lastToken; s.lastToken > 0 && dt > 0 {
		sample := float64(sent-s.lastSent) / dt.Seconds()
		s.drainRate += (sample - s.drainRate) / 4 // a few rotations of memory
	}
	s.lastToken, s.lastSent = s.now, sent
}

// TakePayloads (with ReuseEventBuffers) hands the caller the memory that holds the payloads
// of this Ready's messages, so they outlive Advance without a copy, and gives the Stack spare
// to continue in; the caller must not hand spare over while it still reads it.
func (s *Stack) TakePayloads(spare []byte) []byte { return s.cpg.SwapPayloads(spare) }

// SendLimit is the most room SendRoom can report under the current limit (srp's queue, the
// SendQueueDelay bound, or the messages held during a sync): a driver wakes refused senders
// once a good part of it is free.
func (s *Stack) SendLimit() int {
	if s.sync.Synchronizing() || len(s.held) > 0 {
		return heldMax
	}
	return s.appLimit()
}

// SendRoom is how many more srp messages Send could queue now (a message needs one per
// packet it fills): the room in srp's queue, or while a sync holds application messages
// back, the room left among those. A driver uses it to decide when a refused sender should
// retry.
func (s *Stack) SendRoom() int {
	if s.stopped {
		return 0
	}
	if s.sync.Synchronizing() || len(s.held) > 0 {
		return max(heldMax-len(s.held), 0)
	}
	queued := s.srpQueueMax - s.srp.QueueRoom()
	return min(s.srp.QueueRoom(), max(s.appLimit()-queued, 0))
}

// SetExpectedVotes is corosync-quorumtool -e.
func (s *Stack) SetExpectedVotes(now time.Duration, v uint32) error {
	if s.vq == nil {
		return errors.New("stack: votequorum not configured")
	}
	s.now = now
	err := s.vq.SetExpected(now, v)
	s.pump()
	return err
}

// SetVotes is corosync-quorumtool -v.
func (s *Stack) SetVotes(now time.Duration, node srp.NodeID, votes uint32) error {
	if s.vq == nil {
		return errors.New("stack: votequorum not configured")
	}
	s.now = now
	err := s.vq.SetVotes(now, quorum.NodeID(node), votes)
	s.pump()
	return err
}

// CancelWaitForAll is corosync-quorumtool's cancel of wait_for_all.
func (s *Stack) CancelWaitForAll(now time.Duration) error {
	if s.vq == nil {
		return errors.New("stack: votequorum not configured")
	}
	s.now = now
	s.vq.CancelWaitForAll(now)
	s.pump()
	return nil
}

// errNoVotequorum answers the quorum-device calls without votequorum, as corosync answers a
// call to a service it did not load.
var errNoVotequorum = errors.New("stack: votequorum not configured")

// qdevice runs one of votequorum's quorum-device calls (the IPC calls corosync-qdevice makes)
// and sends what it produced.
func (s *Stack) qdevice(now time.Duration, f func() error) error {
	if s.vq == nil {
		return errNoVotequorum
	}
	s.now = now
	err := f()
	s.pump()
	return err
}

// QdeviceRegister is votequorum_qdevice_register: nil means the registration went out, and its
// outcome comes as an Event.Registration.
func (s *Stack) QdeviceRegister(now time.Duration, name string) error {
	return s.qdevice(now, func() error { return s.vq.QdeviceRegister(now, name) })
}

// QdeviceUnregister is votequorum_qdevice_unregister.
func (s *Stack) QdeviceUnregister(now time.Duration, name string) error {
	return s.qdevice(now, func() error { return s.vq.QdeviceUnregister(now, name) })
}

// QdeviceUpdate is votequorum_qdevice_update (a rename).
func (s *Stack) QdeviceUpdate(now time.Duration, oldName, newName string) error {
	return s.qdevice(now, func() error { return s.vq.QdeviceUpdate(now, oldName, newName) })
}

// QdevicePoll is votequorum_qdevice_poll: the device's vote for the partition of ring.
func (s *Stack) QdevicePoll(now time.Duration, name string, castVote bool, ring quorum.RingID) error {
	return s.qdevice(now, func() error { return s.vq.QdevicePoll(now, name, castVote, ring) })
}

// QdeviceMasterWins is votequorum_qdevice_master_wins.
func (s *Stack) QdeviceMasterWins(now time.Duration, name string, allow bool) error {
	return s.qdevice(now, func() error { return s.vq.QdeviceMasterWins(now, name, allow) })
}

// Shutdown leaves the ring cleanly (srp's LEAVE); the Stack accepts no more input after it.
func (s *Stack) Shutdown(now time.Duration) {
	s.now = now
	if s.stopped {
		return
	}
	if s.vq != nil {
		s.vq.Shutdown(now)
	}
	s.pump()
	s.srp.Leave(now)
	s.stopped = true
	s.pump()
}

// sendApp queues an application-level message (CPG join/leave): held while a sync runs, as real
// nodes hold their clients' requests, then sent in order.
func (s *Stack) sendApp(o services.Outbound, g srp.Guarantee, force bool) error {
	if s.stopped {
		return ErrStopped
	}
	if s.sync.Synchronizing() || len(s.held) > 0 {
		if len(s.held) >= heldMax && !force {
			return ErrBusy
		}
		s.held = append(s.held, o)
		s.pump()
		return nil
	}
	if err := s.pg.send(s.srp, s.now, o.Group, o.Body, g); err != nil {
		if errors.Is(err, errFramingBusy) {
			s.held = append(s.held, o)
			s.pump()
			return nil
		}
		return err
	}
	s.countTx(o.Group, o.Body)
	s.pg.kick(s.srp, s.now)
	s.pump()
	return nil
}

// onToken runs inside srp when a token arrives, before srp takes messages from its queue.
func (s *Stack) onToken() {
	if s.cfg.SendQueueDelay > 0 {
		s.noteDrain()
	}
	s.pg.flush(s.srp, s.now)
}

// pump moves everything srp produced up through the layers, and everything the layers
// produced down into srp, until nothing moves. It runs after every input.
func (s *Stack) pump() {
	if s.inStep {
		return
	}
	s.inStep = true
	defer func() { s.inStep = false }()
	for round := 0; ; round++ {
		moved := false
		rd := s.srp.Ready()
		for _, o := range rd.Messages {
			s.emit(o)
			moved = true
		}
		for _, d := range rd.Deliveries {
			moved = true
			switch {
			case d.Config != nil:
				s.onConfiguration(d.Config)
			case d.Message != nil:
				s.onMessage(d.Message)
			}
		}
		s.rd.NextTick = rd.NextTick
		s.srp.Advance()
		if s.drainServices() {
			moved = true
		}
		if !moved || round > 10000 {
			break
		}
	}
	s.rd.NextTick = minTick(s.rd.NextTick, s.nextServiceTick())
}

func minTick(a, b time.Duration) time.Duration {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

func (s *Stack) nextServiceTick() time.Duration {
	t := time.Duration(0)
	if s.vq != nil {
		t = minTick(t, s.vq.Ready().NextTick)
	}
	if s.rrp != nil {
		t = minTick(t, s.rrp.nextTick())
	}
	return t
}

// emit hands one srp datagram to the link layer (every link, or the redundant ring's choice).
func (s *Stack) emit(o srp.Outgoing) {
	// srp's buffer is valid only until its Advance, unless srp holds freed buffers for
	// the stack's own Advance (ReuseDatagramBuffers: HoldFreedBuffers, RecycleFreed).
	if !s.cfg.ReuseDatagramBuffers {
		o.Data = slices.Clone(o.Data)
	}
	if s.rrp == nil {
		s.rd.Datagrams = append(s.rd.Datagrams, Datagram{Link: 0, Outgoing: o})
		return
	}
	s.rrp.send(s.now, o, func(link int, o srp.Outgoing) {
		s.rd.Datagrams = append(s.rd.Datagrams, Datagram{Link: link, Outgoing: o})
	})
}

func (s *Stack) onConfiguration(c *srp.Configuration) {
	cc := *c
	cc.Members = slices.Clone(c.Members)
	cc.Joined = slices.Clone(c.Joined)
	cc.Left = slices.Clone(c.Left)
	s.rd.Events = append(s.rd.Events, Event{Membership: &cc})
	s.pg.reset(c)
	if c.Kind == srp.Transitional {
		s.sync.Transitional(c.Members)
		return
	}
	// A message of this node's cut by the change (its head delivered in the old ring, the
	// rest still queued). Without joiners every member of the new ring comes from this node's
	// old ring and delivered the same head there (the transitional configuration's promise),
	// so the rest continues it, as corosync's totempg does; restarting every stream at every
	// change lost hundreds of a corosync sender's messages on the gototem node of a mixed ring
	// after a token loss (TestIPCCPGFloodPause). With joiners, members from another ring
	// cannot reassemble it: a ring of gototem nodes only sends it again whole, so every
	// member delivers it; a ring that may hold corosync nodes continues it like corosync,
	// whose members of the old ring throw a message sent again whole away ("fragmented
	// continuation 0 is not equal to assembly last_frag_num"; TestIPCCPGFloodMerge). Either
	// way the joined senders' streams restart here.
	if len(c.Joined) > 0 && s.cfg.GototemRing {
		s.pg.straddle(s.srp)
	} else {
		s.pg.continueCut()
	}
	s.pg.restartAssemblies(c.Joined)
	s.pg.useRecv(true)
	for _, o := range s.sync.Regular(c.RingID, c.Members) {
		s.sendService(o)
	}
	s.cryptoPhase(0, 0) // members that left are no longer waited for
}

func (s *Stack) onMessage(m *srp.Message) {
	s.pg.deliver(m, func(sender srp.NodeID, group string, body []byte, swapped bool) {
		switch group {
		case "sync":
			wasSyncing := s.sync.Synchronizing()
			s.sync.Deliver(sender, body)
			if wasSyncing && !s.sync.Synchronizing() {
				ring := s.sync.Ring()
				s.rd.Events = append(s.rd.Events, Event{Synced: &ring})
				// corosync's totempg_trans_ack: srp returns to its normal queue (what was
				// queued before the change goes out now, after the sync), totempg to its
				// normal packing and reassembly state. Only for srp's current ring: the
				// last BARRIER of a ring can be delivered among the old ring's messages
				// after srp installed the next one, whose sync has not even started
				// (corosync delivers those before it sets waiting_trans_ack; sim seed 178
				// of the full-stack campaign lost the sender's own fragmented messages).
				if ring == s.srp.RingID() {
					s.srp.TransAck()
				}
				// Reassembly returns to the normal set even when the barrier came late, among
				// the old ring's messages: every member of the transitional configuration
				// then reads the rest of each sender's normal stream into the same set,
				// whether it finished the sync in the ring or only during the recovery, so
				// the next ring can continue a message cut by the change (full-stack
				// campaign, seed 1864: n1, a ring behind, kept n4's cut message in the
				// sync's set, which the next sync cleared, and threw away n4's next three
				// messages, which n3 and n4 delivered).
				s.pg.useRecv(false)
			}
		case "a":
			s.deliverService(sender, body, swapped)
		}
	})
	s.collectCPG()
}

// deliverService dispatches a group-"a" body by the service id in its qb header.
func (s *Stack) deliverService(sender srp.NodeID, body []byte, swapped bool) {
	if len(body) < 16 {
		s.counters.UnknownService++
		return
	}
	id := readU32(body, swapped)
	s.svcMsgs.count(&s.svcMsgs.Rx, body, swapped)
	switch id >> 16 {
	case services.ServiceCMAP:
		s.deliverCmap(sender, body, swapped)
	case services.ServiceCPG:
		s.cpg.Deliver(sender, body, swapped)
	case services.ServiceVoteQuorum:
		if s.vq != nil {
			_ = s.vq.Deliver(s.now, quorum.NodeID(sender), body, swapped)
		}
	case services.ServiceCFG:
		s.deliverCfg(sender, body, swapped)
	case services.ServicePLoad:
		// pload is a load generator: nothing to act on.
	default:
		s.counters.UnknownService++
	}
}

func (s *Stack) collectCPG() {
	for _, ev := range s.cpg.Events() {
		switch {
		case ev.Confchg != nil:
			s.rd.Events = append(s.rd.Events, Event{Group: ev.Confchg})
		case ev.Message != nil:
			s.rd.Events = append(s.rd.Events, Event{Message: ev.Message})
		}
	}
}

// drainServices sends what the service layer and votequorum produced; reports whether anything
// moved.
func (s *Stack) drainServices() bool {
	moved := false
	if s.sync.Pending() {
		for _, o := range s.sync.Work() {
			s.sendService(o)
			moved = true
		}
	}
	s.collectCPG()
	if s.vq != nil {
		rd := s.vq.Ready()
		for _, b := range rd.Messages {
			s.sendService(services.Outbound{Group: "a", Body: b})
			moved = true
		}
		for i := range rd.ExpectedVotes {
			v := rd.ExpectedVotes[i]
			s.rd.Events = append(s.rd.Events, Event{ExpectedVotes: &v})
			moved = true
		}
		for i := range rd.Changes {
			ch := rd.Changes[i]
			s.rd.Events = append(s.rd.Events, Event{Quorum: &ch})
			moved = true
		}
		for i := range rd.Registrations {
			r := rd.Registrations[i]
			s.rd.Events = append(s.rd.Events, Event{Registration: &r})
			moved = true
		}
		s.vq.Advance()
	}
	if !s.sync.Synchronizing() && len(s.held) > 0 {
		n := 0
		for _, o := range s.held {
			if err := s.pg.send(s.srp, s.now, o.Group, o.Body, srp.Agreed); err != nil {
				break
			}
			s.countTx(o.Group, o.Body)
			n++
		}
		if n > 0 {
			s.held = slices.Delete(s.held, 0, n)
			moved = true
		}
	}
	// A packet sent here can make srp emit (a TOKEN_HOLD_CANCEL on an idle ring): that is
	// progress, or the datagram would wait in srp's Ready until the next input.
	if s.pg.kick(s.srp, s.now) {
		moved = true
	}
	if s.rrp != nil {
		for _, ev := range s.rrp.events() {
			e := ev
			s.rd.Events = append(s.rd.Events, Event{Fault: &e})
		}
	}
	return moved
}

// sendService sends a service-layer message. These must never be refused: a real node waits
// forever for a BARRIER we fail to send, so when srp's queue is full they wait in the packer's
// overflow (bounded by the number of services) rather than being dropped.
func (s *Stack) sendService(o services.Outbound) {
	if err := s.pg.sendPriority(s.srp, s.now, o.Group, o.Body); err != nil {
		s.log.Warn("service message not sent", "group", o.Group, "err", err)
		return
	}
	s.countTx(o.Group, o.Body)
}

// Ready returns what the driver must do. Valid until Advance.
func (s *Stack) Ready() Ready { return s.rd }

// Advance acknowledges the last Ready. The Datagrams and Events arrays are reused for the
// next Ready (a flood would otherwise regrow them on every input); the datagrams' Data are
// not, so a driver may keep those.
func (s *Stack) Advance() {
	clear(s.rd.Datagrams)
	clear(s.rd.Events)
	s.rd = Ready{NextTick: s.rd.NextTick, Datagrams: s.rd.Datagrams[:0], Events: s.rd.Events[:0]}
	if s.cfg.ReuseDatagramBuffers {
		s.srp.RecycleFreed()
	}
	if s.cfg.ReuseEventBuffers {
		s.cpg.Recycle()
	}
}

func readU32(b []byte, swapped bool) uint32 {
	if swapped {
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func (s *Stack) String() string {
	return fmt.Sprintf("node %d %s ring %d.%x members %v", s.self, s.srp.State(), s.srp.RingID().Rep, s.srp.RingID().Seq, s.srp.Members())
}
