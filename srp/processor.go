package srp

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"
)

// Counters are cumulative event counts, for tests, the simulator and `gototem status`.
type Counters struct {
	DecodeErrors   uint64 // datagrams Step rejected (the error was returned to the caller)
	DecodeOversize uint64 // of DecodeErrors: longer than the message type allows

	TokensReceived     uint64 // ORF tokens accepted (passed ring-id and token_seq checks)
	TokensSent         uint64 // ORF tokens forwarded or originated (first transmission)
	TokenRetransmits   uint64 // stored token (ORF or commit) sent again by the token-retransmit timer
	TokensReleased     uint64 // held token sent on by the hold timer or a TOKEN_HOLD_CANCEL
	TokenLosses        uint64 // token timer expiries outside GATHER
	TokenWarnings      uint64 // token_warning notices ("Token has not been received in N ms")
	LateTimers         uint64 // timers serviced more than token/2 after their deadline (a paused process)
	TokensHeld         uint64 // token visits the rep kept the token (token hold)
	HeldTokensUsed     uint64 // held tokens the rep forwarded with its own new messages (holdsend.go)
	TokensAccelerated  uint64 // tokens passed ahead of some of the visit's MCASTs (accel.go)
	CommitTokensSent   uint64 // commit tokens created or forwarded (first transmission)
	HoldCancelsSent    uint64
	HoldCancelsHonored uint64 // TOKEN_HOLD_CANCEL for my ring received while I am rep

	McastSent          uint64 // new messages (and encapsulated recovery messages) given a seq
	McastReceived      uint64 // MCASTs stored in a sort queue (own loopback excluded: it is a duplicate)
	McastRetransmitted uint64 // stored MCASTs re-sent for a retransmission request
	McastDelivered     uint64 // application messages delivered upward
	RetransRequested   uint64 // seqs this node added to the token's rtr list

	JoinsSent, JoinsReceived  uint64
	LeavesSent, LeavesRecv    uint64
	MergeDetectsSent          uint64
	MergeDetectsReceived      uint64 // from a foreign ring
	RingsFormed               uint64 // OPERATIONAL entries
	GatherEntries             uint64 // GATHER entries and re-entries (membership rounds)
	ConsensusTimeouts         uint64
	FailedToReceive           uint64 // "FAILED TO RECEIVE" (§6.2 step 20)
	ConfigurationsDelivered   uint64
	RingIDStoreErrors         uint64
	QueueFullRejects          uint64
	FlowControlZeroBudget     uint64 // token visits where the window guard allowed nothing
	RecoveryMessagesQueued    uint64 // old-ring messages queued for encapsulated re-send
	OldRingMessagesRecovered  uint64 // old-ring messages moved out of the recovery queue
	OldRingMessagesNotDeliver uint64 // skipped at OPERATIONAL entry (originator not in deliver list)

	// Drops, per reason.
	DropForeignRing   uint64 // MCAST/token/hold-cancel of another ring (after its GATHER effect)
	DropDuplicate     uint64 // MCAST whose slot is already filled (including own loopback)
	DropWindow        uint64 // MCAST outside the sort-queue window
	DropTokenDiscard  uint64 // ORF token while orf_token_discard is set (GATHER/COMMIT)
	DropTokenDup      uint64 // ORF token with token_seq ≤ the last accepted one
	DropCommitToken   uint64 // commit token not acceptable in this state
	DropJoin          uint64 // JOIN ignored by the per-state filter
	DropWrongState    uint64 // anything else a state ignores
	DropBadMembership uint64 // commit token whose memb_index does not name me
	DropUnlisted      uint64 // sender or named id outside Config.Nodelist
	DropAbsurd        uint64 // ring/token sequence that would wrap or jumps absurdly
	DropForged        uint64 // JOIN/LEAVE claiming to be mine, or naming me where I cannot be
}

// Processor is one Totem SRP instance. It is not safe for concurrent use: the driver
// serialises Start/Step/Tick/Send/Leave/Ready/Advance.
type Processor struct {
	cfg      Config
	log      *slog.Logger
	store    RingIDStore
	myID     NodeID
	nodelist []NodeID // sorted; empty: no check
	netMTU   int      // payload budget: cfg.NetMTU - 2*McastHeaderSize
	queueMax int      // MESSAGE_QUEUE_MAX

	running bool
	left    bool // Leave was called: the Processor is finished for good
	state   State

	ringID, oldRingID RingID
	tokenRingIDSeq    uint64

	// GATHER sets and memberships, kept sorted so set comparison is slice equality.
	procList, failedList, consensusList []NodeID
	membList, newMembList               []NodeID
	installedRing                       bool // a ring was installed since Start: there is an old ring
	transMembList, deliverMembList      []NodeID

	myAru, myHighSeqReceived, myHighDelivered uint32
	myLastAru, lastReleased                   uint32
	myTokenSeq, myLastSeq                     uint32
	mySeqUnchanged, myAruCount                int
	myTokenHeld                               bool

	oldRingSaved                   bool
	oldRingAru, oldRingHighSeqRecv uint32

	myRetransFlgCount, myRotationCounter int
	myInstallSeq                         uint32
	myReceivedFlg, mySetRetransFlg       bool
	myHighRingDelivered                  uint32
	myTrc, myPbl, myCbl                  uint32
	orfTokenDiscard, originatedOrfToken  bool
	failedToRecv                         bool
	thisSeqno                            int32

	// safeTo: highest seq of the current ring every member is known to hold (the token aru
	// seen on two successive visits, the rule corosync uses to free messages, §6.6).
	safeTo uint32

	regular, recovery *sortQueue
	newQueue          msgQueue
	retransQueue      [][]byte // old-ring datagrams waiting to be re-sent encapsulated
	retransHead       int

	// transQueue takes Send while waitingTransAck (Config.TransAck): from a ring's
	// installation until TransAck. Issue 12: a message queued in newQueue before a
	// membership change was sent in the new ring ahead of the service sync, where members
	// that had not yet learnt the sender's CPG processes dropped it and the sender did not.
	transQueue      msgQueue
	waitingTransAck bool

	tokenTarget NodeID
	lastToken   []byte // stored copy of the last token sent, for retransmission
	hasToken    bool
	lastTokenRx time.Duration // when this node last accepted an ORF token (the token warning's origin)

	timers [numTimers]timer

	// accelMark is where this visit's post-token MCASTs start in out (accel.go).
	accelMark    int
	accelPending bool
	// heldUnsent: the rep holds the token of its last visit and has not sent it since
	// (holdsend.go).
	heldUnsent bool

	// Reused decode targets: the receive path allocates nothing.
	tok    ORFToken
	mc     Mcast
	inner  Mcast
	join   Join
	commit CommitToken
	md     MergeDetect
	hc     TokenHoldCancel

	scratch []NodeID // ownSetsEqual's set buffer

	// Ready under construction and the buffers it references.
	out     []Outgoing
	dels    []Delivery
	msgSlab []Message
	pool    [][]byte // free buffers of cap ≥ bufSize
	pending [][]byte // buffers freed this round, recycled on Advance
	// holdFreed (HoldFreedBuffers): Advance leaves pending alone; RecycleFreed ages it
	// through aging into pool instead.
	holdFreed bool
	aging     [][]byte
	bufSize   int

	counters Counters
}

// msgQueue is a FIFO of application payloads waiting for the token.
type msgQueue struct {
	items []queuedMsg
	head  int
}

// queuedMsg is one queued payload. framed holds McastHeaderSize bytes of room and then the
// payload, so the token visit writes the MCAST header in front of it in place instead of
// copying the payload into a new datagram (one copy fewer per packet: issue 14).
type queuedMsg struct {
	framed []byte
	g      Guarantee
}

// payload is the message without the header room.
func (m queuedMsg) payload() []byte { return m.framed[McastHeaderSize:] }

// queued copies head and body into a pooled buffer behind room for the MCAST header.
func (p *Processor) queued(head, mid, body []byte, g Guarantee) queuedMsg {
	b := p.getBuf(McastHeaderSize + len(head) + len(mid) + len(body))
	return queuedMsg{framed: append(append(append(b[:McastHeaderSize], head...), mid...), body...), g: g}
}

func (q *msgQueue) len() int { return len(q.items) - q.head }

func (q *msgQueue) push(m queuedMsg) {
	if q.head > 0 && q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	q.items = append(q.items, m)
}

func (q *msgQueue) pop() queuedMsg {
	m := q.items[q.head]
	q.items[q.head] = queuedMsg{}
	q.head++
	if q.head > 1024 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return m
}

// NewProcessor validates cfg and returns a stopped Processor; call Start.
func NewProcessor(cfg Config) (*Processor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Processor{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    cfg.RingIDStore,
		myID:     cfg.NodeID,
		netMTU:   cfg.NetMTU - 2*McastHeaderSize,
		regular:  newSortQueue(),
		recovery: newSortQueue(),
		bufSize:  cfg.NetMTU,
		nodelist: setFrom(nil, cfg.Nodelist),
	}
	// corosync's MESSAGE_QUEUE_MAX: 4 MiB worth of full-size messages.
	p.queueMax = (4 << 20) / p.netMTU
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.store == nil {
		p.store = &MemoryRingIDStore{}
	}
	return p, nil
}

// Start loads the ring sequence and enters GATHER, as corosync does when its interface
// comes up (§3): the stored seq plus one, in memory only, so a restarted node never reuses a
// ring id it may already have announced.
func (p *Processor) Start(now time.Duration) {
	if p.running || p.left {
		return
	}
	seq, ok, err := p.store.Load()
	if err != nil {
		p.counters.RingIDStoreErrors++
		p.log.Error("srp: ring id load failed; starting from 0", "node", p.myID, "err", err)
		seq, ok = 0, false
	}
	if !ok {
		if err := p.store.Store(0); err != nil {
			p.counters.RingIDStoreErrors++
			p.log.Error("srp: ring id store failed", "node", p.myID, "err", err)
		}
	}
	seq++
	p.ringID = RingID{Rep: p.myID, Seq: seq}
	p.oldRingID = p.ringID
	p.tokenRingIDSeq = seq
	p.membList = []NodeID{p.myID}
	p.procList = nil
	p.failedList = nil
	p.myReceivedFlg = true
	p.running = true
	p.state = Operational
	p.waitingTransAck = p.cfg.TransAck // corosync starts with it set
	p.gatherEnter(now, "interface up")
}

// Step handles one received datagram (the Processor copies what it keeps; datagram may be
// reused after Step returns). A datagram that does not decode is returned as a
// *DecodeError for the caller to count and is otherwise ignored; nothing a peer sends can
// make Step panic.
func (p *Processor) Step(now time.Duration, datagram []byte) error {
	if !p.running {
		return nil
	}
	h, _, err := PeekHeader(datagram)
	if err != nil {
		p.decodeFailed(err)
		return err
	}
	switch h.Type {
	case TypeORFToken:
		if err := p.tok.Decode(datagram); err != nil {
			p.decodeFailed(err)
			return err
		}
		p.handleORFToken(now)
	case TypeMcast:
		if err := p.mc.Decode(datagram); err != nil {
			p.decodeFailed(err)
			return err
		}
		p.handleMcast(now, datagram)
	case TypeMergeDetect:
		if err := p.md.Decode(datagram); err != nil {
			p.decodeFailed(err)
			return err
		}
		p.handleMergeDetect(now)
	case TypeJoin:
		if err := p.join.Decode(datagram); err != nil {
			p.decodeFailed(err)
			return err
		}
		p.handleJoin(now)
	case TypeCommitToken:
		if err := p.commit.Decode(datagram); err != nil {
			p.decodeFailed(err)
			return err
		}
		p.handleCommitToken(now)
	case TypeTokenHoldCancel:
		if err := p.hc.Decode(datagram); err != nil {
			p.decodeFailed(err)
			return err
		}
		p.handleTokenHoldCancel(now)
	}
	return nil
}

// decodeFailed counts a datagram Step could not decode, oversized ones apart.
func (p *Processor) decodeFailed(err error) {
	p.counters.DecodeErrors++
	if errors.Is(err, ErrTooLarge) {
		p.counters.DecodeOversize++
	}
}

// Send queues an application payload (a totempg packet) for the next token visit. The
// payload is copied. A node whose token is held announces the new work with a
// TOKEN_HOLD_CANCEL so an idle ring starts rotating again (§6.3).
func (p *Processor) Send(now time.Duration, payload []byte, g Guarantee) error {
	return p.SendParts(now, payload, nil, nil, g)
}

// SendParts is Send of the payload head, mid and body laid end to end, copied once into the
// queued datagram (totempg's length array and its packed messages need no buffer of their
// own; a fragment of a large message goes from the caller's slices straight to the datagram).
func (p *Processor) SendParts(now time.Duration, head, mid, body []byte, g Guarantee) error {
	if !p.running {
		return ErrNotRunning
	}
	if len(head)+len(mid)+len(body) > p.netMTU {
		return ErrMessageTooLarge
	}
	q := p.sendQueue()
	if q.len() >= p.queueMax {
		p.counters.QueueFullRejects++
		return ErrQueueFull
	}
	q.push(p.queued(head, mid, body, g))
	if p.myTokenHeld {
		p.myTokenHeld = false
		if !p.useHeldToken(now) {
			p.sendHoldCancel()
		}
	}
	return nil
}

// QueueRoom is the number of messages Send would still accept.
func (p *Processor) QueueRoom() int {
	if r := p.queueMax - p.sendQueue().len(); r > 0 {
		return r
	}
	return 0
}

// sendQueue is the queue Send fills and the token empties: the trans queue while a new
// ring waits for its trans-ack, the normal queue otherwise.
func (p *Processor) sendQueue() *msgQueue {
	if p.waitingTransAck {
		return &p.transQueue
	}
	return &p.newQueue
}

// TransAck is corosync's totempg_trans_ack: the layer above has finished synchronizing
// the ring, so Send and the token return to the normal queue, whose messages (queued
// before the membership change) now go out after the sync's. A no-op without
// Config.TransAck.
func (p *Processor) TransAck() {
	if p.waitingTransAck {
		p.waitingTransAck = false
		if p.newQueue.len() > 0 && p.myTokenHeld {
			p.myTokenHeld = false
			p.sendHoldCancel()
		}
	}
}

// QueuedMessage is a message waiting in the send queue, not yet given a seq.
type QueuedMessage struct {
	Payload   []byte
	Guarantee Guarantee
}

// TakeQueued removes and returns the messages waiting in the normal send queue (not the
// trans queue), oldest first. The layer above uses it, with Requeue, to rewrite what a
// membership change cut in two: totempg must not continue in a new ring a message whose
// first fragments the new ring's other members never saw.
func (p *Processor) TakeQueued() []QueuedMessage {
	out := make([]QueuedMessage, 0, p.newQueue.len())
	for p.newQueue.len() > 0 {
		m := p.newQueue.pop()
		out = append(out, QueuedMessage{Payload: m.payload(), Guarantee: m.g})
	}
	return out
}

// Requeue puts msgs at the front of the normal send queue, in order (payloads copied). It
// may pass the queue's bound by what TakeQueued took out and a few messages more.
func (p *Processor) Requeue(msgs []QueuedMessage) {
	rest := p.newQueue.items[p.newQueue.head:]
	items := make([]queuedMsg, 0, len(msgs)+len(rest))
	for _, m := range msgs {
		items = append(items, p.queued(m.Payload, nil, nil, m.Guarantee))
	}
	p.newQueue.items, p.newQueue.head = append(items, rest...), 0
}

// WaitingTransAck reports whether the ring is waiting for TransAck (totempg switches to
// its second set of packing and reassembly state meanwhile).
func (p *Processor) WaitingTransAck() bool { return p.waitingTransAck }

// Leave sends the LEAVE of a clean shutdown (§7.4: a JOIN with header nodeid 0, self
// removed from proc and appended to failed) and stops the Processor: later inputs are
// ignored and no timer stays armed.
func (p *Processor) Leave(now time.Duration) {
	if !p.running {
		return
	}
	j := Join{
		Header:     Header{NodeID: LeaveDummyNodeID},
		SystemFrom: p.myID,
		RingSeq:    p.ringID.Seq,
	}
	for _, id := range p.procList {
		if id != p.myID {
			j.ProcList = append(j.ProcList, id)
		}
	}
	for _, id := range p.failedList {
		if id != p.myID {
			j.FailedList = append(j.FailedList, id)
		}
	}
	j.FailedList = append(j.FailedList, p.myID) // receivers read the last entry as the leaver
	if j.EncodedLen() <= JoinMaxBytes {
		p.emit(ToAll, 0, TypeJoin, j.AppendEncode(p.transient(j.EncodedLen())))
		p.counters.LeavesSent++
	}
	p.log.Debug("srp: leaving", "node", p.myID, "ring", p.ringID)
	p.running = false
	p.left = true
	p.timers = [numTimers]timer{}
}

// Ready returns what the driver must do now (api.go). The slices and the bytes they
// reference stay valid until Advance.
func (p *Processor) Ready() Ready {
	var next time.Duration
	if p.running {
		next = p.nextTick()
	}
	return Ready{Messages: p.out, Deliveries: p.dels, NextTick: next}
}

// HasReady reports whether Ready has datagrams to send or deliveries to hand up.
func (p *Processor) HasReady() bool { return len(p.out) > 0 || len(p.dels) > 0 }

// Advance tells the Processor the last Ready was handled: its buffers may be reused.
func (p *Processor) Advance() {
	clear(p.out)
	p.out = p.out[:0]
	clear(p.dels)
	p.dels = p.dels[:0]
	clear(p.msgSlab)
	p.msgSlab = p.msgSlab[:0]
	if !p.holdFreed {
		p.recycle(p.pending)
		p.pending = p.pending[:0]
	}
}

// HoldFreedBuffers hands the reuse of freed buffers to the driver's RecycleFreed calls
// instead of Advance: every Outgoing's Data (a pooled buffer: a sort-queue message, a
// token or JOIN copy) then stays valid until the second RecycleFreed after the Ready that
// carried it, however many Ready/Advance rounds come in between. The stack gathers many
// rounds into one Ready of its own and used to copy every datagram to make it outlive
// them (a tenth of a flooding node's CPU at 8 KiB, issue 14).
func (p *Processor) HoldFreedBuffers() { p.holdFreed = true }

// RecycleFreed (with HoldFreedBuffers) makes the buffers freed before the previous call
// reusable; those freed since wait for the next call.
func (p *Processor) RecycleFreed() {
	p.recycle(p.aging)
	p.aging, p.pending = p.pending, p.aging[:0]
}

// recycle puts freed buffers in the pool and clears bufs.
func (p *Processor) recycle(bufs [][]byte) {
	for _, b := range bufs {
		if cap(b) >= p.bufSize && len(p.pool) < 4096 {
			p.pool = append(p.pool, b[:0])
		}
	}
	clear(bufs)
}

// State is the current membership state.
func (p *Processor) State() State { return p.state }

// RingID is the ring this node is on or installing (in COMMIT/RECOVERY: the new ring).
func (p *Processor) RingID() RingID { return p.ringID }

// Members is the membership of the last regular configuration delivered (a copy).
func (p *Processor) Members() []NodeID { return slices.Clone(p.membList) }

// Counters returns a snapshot of the event counters.
func (p *Processor) Counters() Counters { return p.counters }

// --- output and buffer plumbing ---------------------------------------------------------

// getBuf returns an empty buffer with room for n bytes, from the pool when it fits.
func (p *Processor) getBuf(n int) []byte {
	if n <= p.bufSize {
		if k := len(p.pool); k > 0 {
			b := p.pool[k-1]
			p.pool = p.pool[:k-1]
			return b[:0]
		}
		return make([]byte, 0, p.bufSize)
	}
	return make([]byte, 0, n)
}

// freeBuf retires a buffer that may still be referenced by this round's Ready.
func (p *Processor) freeBuf(b []byte) {
	if b != nil {
		p.pending = append(p.pending, b)
	}
}

// transient is a buffer for an outgoing datagram that is not kept after this round.
func (p *Processor) transient(n int) []byte {
	b := p.getBuf(n)
	p.freeBuf(b[:0:cap(b)])
	return b
}

func (p *Processor) emit(dest Destination, to NodeID, t MessageType, data []byte) {
	p.out = append(p.out, Outgoing{Dest: dest, To: to, Type: t, Data: data})
}

func (p *Processor) deliverConfig(c *Configuration) {
	p.counters.ConfigurationsDelivered++
	p.log.Debug("srp: configuration", "node", p.myID, "kind", c.Kind, "ring", c.RingID,
		"members", c.Members, "joined", c.Joined, "left", c.Left)
	p.dels = append(p.dels, Delivery{Config: c})
}

// deliverDatagram hands one stored MCAST (the inner one for an encapsulated message)
// upward. The Message lives in a slab reused after Advance, so delivery does not allocate.
func (p *Processor) deliverDatagram(data []byte) {
	if err := p.inner.Decode(data); err != nil {
		return // stored datagrams were decoded once already; unreachable
	}
	p.msgSlab = append(p.msgSlab, Message{
		Sender:    p.inner.Header.NodeID,
		RingID:    p.inner.RingID,
		Seq:       p.inner.Seq,
		Guarantee: p.inner.Guarantee,
		Payload:   p.inner.Payload,
		Endian:    Swapped(data),
	})
	p.counters.McastDelivered++
	p.dels = append(p.dels, Delivery{Message: &p.msgSlab[len(p.msgSlab)-1]})
}

// debugEnabled guards debug logs whose attributes would allocate on a busy path.
func (p *Processor) debugEnabled() bool { return p.log.Enabled(context.Background(), slog.LevelDebug) }

// --- sorted node sets -------------------------------------------------------------------

func setHas(s []NodeID, id NodeID) bool {
	_, ok := slices.BinarySearch(s, id)
	return ok
}

func setAdd(s []NodeID, id NodeID) []NodeID {
	i, ok := slices.BinarySearch(s, id)
	if ok {
		return s
	}
	return slices.Insert(s, i, id)
}

func setUnion(s []NodeID, add []NodeID) []NodeID {
	for _, id := range add {
		s = setAdd(s, id)
	}
	return s
}

// setMinus returns a new sorted set a − b.
func setMinus(a, b []NodeID) []NodeID {
	var r []NodeID
	for _, id := range a {
		if !setHas(b, id) {
			r = append(r, id)
		}
	}
	return r
}

func setSubset(sub, of []NodeID) bool {
	for _, id := range sub {
		if !setHas(of, id) {
			return false
		}
	}
	return true
}

// setFrom builds a sorted, de-duplicated set from a wire list (which a peer may send in any
// order, with repeats), reusing dst.
func setFrom(dst []NodeID, list []NodeID) []NodeID {
	dst = append(dst[:0], list...)
	slices.Sort(dst)
	return slices.Compact(dst)
}
