package sim

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
)

// Protocol is what a simulated node runs: the driver contract of srp/api.go. *srp.Processor
// satisfies it; an rrp- or quorum-wrapped stack plugs in here through Options.NewProtocol.
type Protocol interface {
	Start(now time.Duration)
	Step(now time.Duration, datagram []byte) error
	Tick(now time.Duration)
	Send(now time.Duration, payload []byte, g srp.Guarantee) error
	Leave(now time.Duration)
	Ready() srp.Ready
	Advance()
	State() srp.State
	RingID() srp.RingID
	Members() []srp.NodeID
	Status() srp.Status
}

// LinkProtocol is a Protocol that runs over several links (redundant rings, rrp): every
// datagram it receives or sends names the link, the ring number, it travels on. The
// simulator gives each (from, to, link) its own fate, so one ring can be cut alone.
type LinkProtocol interface {
	Protocol
	// Links is the number of links (rings) the node is configured with.
	Links() int
	// StepLink is Step for a datagram that arrived on link.
	StepLink(now time.Duration, link int, datagram []byte) error
	// MessageLinks names the link of each of Ready().Messages, in the same order; valid
	// until Advance.
	MessageLinks() []int
}

// SRP builds the production Processor: the default Options.NewProtocol.
func SRP(cfg srp.Config) (Protocol, error) {
	p, err := srp.NewProcessor(cfg)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ScaledConfig is srp.DefaultConfig for a cluster of members nodes with every timer scaled
// so the effective token is token (zero: unscaled). Campaigns use token 1s to cover more
// membership changes per virtual hour; the ratios between timers stay corosync's.
func ScaledConfig(id srp.NodeID, members int, token time.Duration) srp.Config {
	c := srp.DefaultConfig(id, members)
	if token <= 0 || token == c.Token {
		return c
	}
	scale := func(d time.Duration) time.Duration {
		// d·token overflows int64 nanoseconds once both pass about 3 s (a 5-node cluster's
		// consensus times a 3 s token), so the product is taken at 128 bits; the quotient is
		// the same as the plain expression wherever that one did not overflow.
		hi, lo := bits.Mul64(uint64(d), uint64(token))
		if hi >= uint64(c.Token) {
			return time.Duration(math.MaxInt64)
		}
		q, _ := bits.Div64(hi, lo, uint64(c.Token))
		return max(time.Duration(min(q, math.MaxInt64)), time.Millisecond)
	}
	c.TokenRetransmit, c.Hold = scale(c.TokenRetransmit), scale(c.Hold)
	c.Join, c.Consensus = scale(c.Join), scale(c.Consensus)
	c.Merge, c.Downcheck = scale(c.Merge), scale(c.Downcheck)
	c.Token = token
	return c
}

// Options configure a simulation. The zero value of every field but Nodes is usable.
type Options struct {
	Seed  uint64
	Nodes int // node ids 1..Nodes
	// Config returns a node's srp configuration (default ScaledConfig(id, Nodes, Token)).
	// RingIDStore and Rand are always replaced by the simulator's.
	Config func(id srp.NodeID, members int) srp.Config
	// Token scales the default timers (see ScaledConfig); zero keeps corosync's.
	Token time.Duration
	// NewProtocol builds a node's protocol (default SRP).
	NewProtocol func(cfg srp.Config) (Protocol, error)
	// Link is every link's behaviour unless overridden with SetLink (default DefaultLink).
	Link *LinkParams
	// StartSpread staggers the nodes' first start uniformly over [0, StartSpread).
	StartSpread time.Duration
	// App sets up each node incarnation's application (optional): its groups and callbacks,
	// as on a real node. With an App, NewProtocol defaults to the full stack (StackProtocol).
	App App
	// Invariants are the application's own, checked beside gototem's in Check, and also
	// after every step that ran application code (a callback, a timer of After, a call
	// from a test's At): an application's state changes in no other step, so a violation is
	// caught at the step that made it.
	Invariants []Invariant
	// srpApp gives each node incarnation a bare-srp application (tests of srp alone).
	srpApp func(id srp.NodeID, s srpSender) srpApp
	// Trace, when set, receives one line per event (see the package doc).
	Trace io.Writer
	// PauseBuffer is how many datagrams a paused node's socket holds before dropping
	// (default 256, a few hundred KiB of receive buffer).
	PauseBuffer int
	// SendSpacing, when set, is the time a node takes to put each datagram of one Ready on
	// the wire: the i-th leaves i·SendSpacing after the first, so a token emitted after a
	// visit's MCASTs leaves after them (accel.go). Zero: all at once, as before.
	SendSpacing time.Duration
}

// Stats are what a run did, for summaries.
type Stats struct {
	Events         uint64
	DatagramsSent  uint64 // per receiver copy handed to the network, own copy included
	DatagramsLost  uint64 // dropped by loss, cuts, a down node or a full pause buffer
	Duplicated     uint64
	Faults         uint64 // fault actions applied
	Sends          uint64 // messages srp accepted
	Backpressure   uint64 // sends refused with ErrQueueFull
	Delivered      uint64 // message deliveries over all nodes
	Configurations uint64 // configuration deliveries over all nodes
	Rings          uint64 // distinct regular ring ids installed
	DecodeErrors   uint64 // datagrams a node's protocol rejected
	VirtualTime    time.Duration
}

// Node is one simulated node. Its fields are read through methods; faults go through Sim.
type Node struct {
	ID  srp.NodeID
	sim *Sim
	cfg srp.Config

	proc        Protocol
	store       srp.MemoryRingIDStore // survives crashes: the ringid_<nodeid> file
	up, paused  bool
	incarnation int
	timerGen    uint64
	timerAt     time.Duration // 0: none armed
	timerMissed bool          // a timer came due while paused
	pauseBuf    []pendingDatagram
	app         srpApp
	appNode     *AppNode      // the application of this incarnation (Options.App)
	appq        []stack.Event // events waiting for the application, in order
	dispatching bool          // application code is running on this node
	counter     uint64        // last MsgID counter used; survives restarts
	inDrain     bool
	deferred    []deferredSend
	sameInstant int // consecutive timer firings without time moving: a spinning timer
	lastTick    time.Duration
}

type pendingDatagram struct {
	from srp.NodeID
	link int
	data []byte
}

// Up reports whether the node is running (not crashed; it may be paused).
func (n *Node) Up() bool { return n.up }

// Paused reports whether the node is paused.
func (n *Node) Paused() bool { return n.paused }

// Protocol is the node's current protocol instance (nil while crashed).
func (n *Node) Protocol() Protocol { return n.proc }

// Sim is one deterministic simulation.
type Sim struct {
	opts  Options
	rng   *rand.Rand
	now   time.Duration
	step  uint64
	seq   uint64
	q     eventHeap
	nodes []*Node
	net   network
	hist  *History
	qlog  *QuorumLog
	// linkEvents are the redundant-ring faults and recoveries StackProtocol nodes reported.
	linkEvents []LinkEvent

	// txDelay is the SendSpacing offset of the datagram being transmitted.
	txDelay time.Duration

	// ghist is the process-group record of a full-stack campaign (nil otherwise).
	ghist *groupHistory
	stats Stats
	rings map[srp.RingID]bool

	work    *Workload
	stopped error // first violation found while running (progress, incremental checks)
	appRan  bool  // the current step ran application code: check Options.Invariants
	quiet   bool  // a run's quiet phase: application timers no longer fire

	stormStart  time.Duration
	stormEvents int

	fateBuf []time.Duration
	line    []byte
}

// New builds a simulation and schedules every node's start; nothing runs until RunFor.
func New(opts Options) (*Sim, error) {
	if opts.Nodes < 1 || opts.Nodes > srp.ProcessorCountMax {
		return nil, fmt.Errorf("sim: nodes: %d outside 1..%d", opts.Nodes, srp.ProcessorCountMax)
	}
	if opts.NewProtocol == nil {
		opts.NewProtocol = SRP
		if opts.App != nil {
			opts.NewProtocol = NewStackProtocol(StackOptions{})
		}
	}
	if opts.Config == nil {
		tok := opts.Token
		opts.Config = func(id srp.NodeID, members int) srp.Config { return ScaledConfig(id, members, tok) }
	}
	base := DefaultLink
	if opts.Link != nil {
		base = *opts.Link
	}
	if err := base.validate(); err != nil {
		return nil, err
	}
	if opts.PauseBuffer <= 0 {
		opts.PauseBuffer = 256
	}
	// PCG with the seed split over both words: the one generator behind every choice.
	s := &Sim{
		opts:  opts,
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9E3779B97F4A7C15)),
		net:   network{base: base, override: map[link]LinkParams{}, cut: map[link]bool{}, ringCut: map[ringLink]bool{}},
		rings: map[srp.RingID]bool{},
	}
	ids := make([]srp.NodeID, opts.Nodes)
	for i := range ids {
		ids[i] = srp.NodeID(i + 1)
	}
	s.hist = NewHistory(ids)
	s.qlog = NewQuorumLog()
	for _, id := range ids {
		cfg := opts.Config(id, opts.Nodes)
		cfg.NodeID = id
		n := &Node{ID: id, sim: s, cfg: cfg}
		s.nodes = append(s.nodes, n)
		var at time.Duration
		if opts.StartSpread > 0 {
			at = time.Duration(s.rng.Int64N(int64(opts.StartSpread)))
		}
		s.schedule(&event{at: at, kind: evAction, label: fmt.Sprintf("start n%d", id), action: func() error { return s.start(n) }})
	}
	return s, nil
}

// Now is the virtual time.
func (s *Sim) Now() time.Duration { return s.now }

// Step is the number of events processed so far.
func (s *Sim) Step() uint64 { return s.step }

// Seed is the seed this simulation was built with.
func (s *Sim) Seed() uint64 { return s.opts.Seed }

// Rand is the simulation's generator, for callers' own random choices (a schedule built
// from it replays with the seed).
func (s *Sim) Rand() *rand.Rand { return s.rng }

// History is the record the checkers read.
func (s *Sim) History() *History { return s.hist }

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	st := s.stats
	st.VirtualTime = s.now
	st.Rings = uint64(len(s.rings))
	return st
}

// Nodes returns the nodes, ordered by id.
func (s *Sim) Nodes() []*Node { return s.nodes }

// Node returns node id, or nil.
func (s *Sim) Node(id srp.NodeID) *Node {
	if id < 1 || int(id) > len(s.nodes) {
		return nil
	}
	return s.nodes[id-1]
}

// NodeIDs returns every node id.
func (s *Sim) NodeIDs() []srp.NodeID { return slices.Clone(s.hist.Nodes) }

// ---------------------------------------------------------------------------------------
// The run loop

// RunFor processes events until d of virtual time has passed, then runs every invariant.
// It returns the first violation (a *Violation) or nil.
func (s *Sim) RunFor(d time.Duration) error {
	return s.RunUntil(s.now + d)
}

// RunUntil processes every event due at or before t, then runs every invariant.
func (s *Sim) RunUntil(t time.Duration) error {
	if err := s.run(t); err != nil {
		return err
	}
	return s.Check()
}

// run is RunUntil without the history checks (campaigns check at coarser points).
func (s *Sim) run(t time.Duration) error {
	for s.stopped == nil && len(s.q) > 0 && s.q[0].at <= t {
		e := s.q.pop()
		if e.at > s.now {
			s.now = e.at
		}
		s.step++
		s.stats.Events++
		if e.at >= s.stormStart+stormWindow {
			s.stormStart, s.stormEvents = e.at, 0
		}
		if s.stormEvents++; s.stormEvents > s.stormLimit() {
			s.stopped = s.violation(InvProgress, "%d events within %v of virtual time: a datagram storm (the protocol answers datagrams with more datagrams without end)",
				s.stormEvents, stormWindow)
			break
		}
		if err := s.handle(e); err != nil && s.stopped == nil {
			s.stopped = err
		}
		if s.appRan && s.stopped == nil {
			s.appRan = false
			s.stopped = s.checkApp()
		}
	}
	if s.stopped != nil {
		return s.stopped
	}
	if t > s.now {
		s.now = t
	}
	return nil
}

// Check runs every invariant on the history so far, then Options.Invariants.
func (s *Sim) Check() error {
	if s.stopped != nil {
		return s.stopped
	}
	if vs := s.hist.Check(); len(vs) > 0 {
		v := vs[0]
		v.Seed = s.opts.Seed
		s.stopped = v
		return v
	}
	s.stopped = s.checkApp()
	return s.stopped
}

// checkApp runs Options.Invariants.
func (s *Sim) checkApp() error {
	for _, inv := range s.opts.Invariants {
		if err := inv.Check(s); err != nil {
			return &Violation{Invariant: inv.Name, Seed: s.opts.Seed, Step: s.step, At: s.now, Detail: err.Error()}
		}
	}
	return nil
}

func (s *Sim) violation(inv, format string, args ...any) *Violation {
	return &Violation{Invariant: inv, Seed: s.opts.Seed, Step: s.step, At: s.now, Detail: fmt.Sprintf(format, args...)}
}

// A storm is more events in stormWindow of virtual time than any healthy ring produces:
// every node multicasting to every other node at LAN latency a few hundred times over.
const stormWindow = 10 * time.Millisecond

func (s *Sim) stormLimit() int {
	n := len(s.nodes)
	return 200*n*n + 100000
}

type eventKind uint8

const (
	evDatagram eventKind = iota
	evTimer
	evAction
)

type event struct {
	at     time.Duration
	seq    uint64
	kind   eventKind
	node   *Node
	from   srp.NodeID
	link   int    // evDatagram: the link (ring number) it travels on
	gen    uint64 // evTimer: the node's timer generation; evDatagram: the receiver's incarnation
	data   []byte
	label  string
	action func() error
}

func (s *Sim) schedule(e *event) {
	s.seq++
	e.seq = s.seq
	s.q.push(e)
}

// At schedules fn at virtual time t (or now, if t is past). The label names it in the
// trace. fn's error stops the run like a violation.
func (s *Sim) At(t time.Duration, label string, fn func() error) {
	s.schedule(&event{at: max(t, s.now), kind: evAction, label: label, action: fn})
}

func (s *Sim) handle(e *event) error {
	switch e.kind {
	case evAction:
		err := e.action()
		s.traceEvent(e.label)
		return err
	case evTimer:
		n := e.node
		if e.gen != n.timerGen || !n.up {
			return nil // re-armed or cancelled since
		}
		n.timerAt = 0
		if n.paused {
			n.timerMissed = true
			return nil
		}
		if s.now == n.lastTick {
			n.sameInstant++
			if n.sameInstant > 10000 {
				return s.violation(InvProgress, "n%d asked to be woken at %s more than 10000 times without time advancing", n.ID, fmtTime(s.now))
			}
		} else {
			n.sameInstant = 0
		}
		n.lastTick = s.now
		n.proc.Tick(s.now)
		err := s.drain(n)
		s.traceNode(n, "timer", "")
		return err
	case evDatagram:
		n := e.node
		if !n.up || n.incarnation != int(e.gen) && e.gen != 0 {
			s.stats.DatagramsLost++
			if !n.up {
				s.portUnreachable(e) // sim/knet.go: knet hears the ICMP error
			}
			return nil
		}
		if n.paused {
			if len(n.pauseBuf) >= s.opts.PauseBuffer {
				s.stats.DatagramsLost++
				return nil
			}
			n.pauseBuf = append(n.pauseBuf, pendingDatagram{from: e.from, link: e.link, data: e.data})
			return nil
		}
		err := s.receive(n, e.from, e.link, e.data)
		if s.opts.Trace != nil {
			d := describe(e.from, e.data)
			if e.link != 0 {
				d += " ring" + strconv.Itoa(e.link)
			}
			s.traceNode(n, "recv", d)
		}
		return err
	}
	return nil
}

// receive feeds one datagram to a running node, tapping MCASTs first: the simulator's own
// record of what each node's srp holds, for the SAFE checker.
func (s *Sim) receive(n *Node, from srp.NodeID, link int, data []byte) error {
	s.tap(n, data)
	var err error
	if sp, ok := n.proc.(sourceStepper); ok { // knet checks the source (sim/knet.go)
		err = sp.StepFrom(s.now, from, link, data)
	} else if lp, ok := n.proc.(LinkProtocol); ok {
		err = lp.StepLink(s.now, link, data)
	} else {
		err = n.proc.Step(s.now, data)
	}
	if err != nil {
		s.stats.DecodeErrors++
	}
	return s.drain(n)
}

func (s *Sim) tap(n *Node, data []byte) {
	if len(data) < srp.HeaderSize || data[3] != byte(srp.TypeMcast) {
		return
	}
	var m srp.Mcast
	if m.Decode(data) != nil {
		return
	}
	// A node holds a message only if its srp can take it: MCASTs of another ring are
	// dropped (after their GATHER effect), so they do not count as received.
	if m.RingID != n.proc.RingID() {
		return
	}
	p := m.Payload
	if m.Header.Encapsulated == srp.Encapsulated {
		var inner srp.Mcast
		if inner.Decode(m.Payload) != nil {
			return
		}
		p = inner.Payload
	}
	s.hist.AddReceived(n.ID, p, s.step)
}

// drain is the driver loop's second half: transmit, deliver, re-arm, Advance; then feed
// any sends the application made from its callbacks, one input at a time.
func (s *Sim) drain(n *Node) error {
	for {
		rd := n.proc.Ready()
		var links []int
		if lp, ok := n.proc.(LinkProtocol); ok {
			links = lp.MessageLinks()
		}
		for i, m := range rd.Messages {
			link := 0
			if i < len(links) {
				link = links[i]
			}
			s.txDelay = time.Duration(i) * s.opts.SendSpacing
			s.transmit(n, m, link)
		}
		n.inDrain = true
		for _, d := range rd.Deliveries {
			s.deliver(n, d)
		}
		if sp, ok := stackOf(n.proc); ok {
			s.stackEvents(n, sp)
		}
		n.inDrain = false
		n.proc.Advance()
		s.arm(n, rd.NextTick)
		if len(n.deferred) == 0 || !n.up {
			s.dispatch(n)
			return nil
		}
		d := n.deferred[0]
		n.deferred = n.deferred[1:]
		// Room was checked when the application called Send, so a refusal here is rare
		// (queue filled by the same callback burst); it is counted and traced by sendNow.
		_ = s.sendNow(n, d.payload, d.g)
	}
}

func (s *Sim) arm(n *Node, next time.Duration) {
	if next == 0 {
		if n.timerAt != 0 {
			n.timerGen++
			n.timerAt = 0
		}
		return
	}
	if next == n.timerAt {
		return
	}
	n.timerGen++
	n.timerAt = next
	s.schedule(&event{at: max(next, s.now), kind: evTimer, node: n, gen: n.timerGen})
}

// transmit puts one datagram on the network. A multicast fans out to every node with an
// independent fate per receiver; the sender's own copy (and a unicast to itself) is looped
// back without loss, as the kernel does.
func (s *Sim) transmit(n *Node, m srp.Outgoing, link int) {
	data := append([]byte(nil), m.Data...)
	if m.Dest == srp.ToNode {
		s.sendTo(n, m.To, link, data)
		return
	}
	if m.Type == srp.TypeMcast {
		// An originator holds its own message from the moment it sends it (totemsrp puts
		// it in its sort queue before the loopback copy arrives).
		s.tap(n, data)
	}
	for _, to := range s.nodes {
		s.sendTo(n, to.ID, link, data)
	}
}

const loopbackDelay = 5 * time.Microsecond

func (s *Sim) sendTo(n *Node, to srp.NodeID, link int, data []byte) {
	dst := s.Node(to)
	if dst == nil {
		s.stats.DatagramsLost++
		return
	}
	s.stats.DatagramsSent++
	if to == n.ID {
		s.schedule(&event{at: s.now + loopbackDelay, kind: evDatagram, node: dst, from: n.ID, link: link, gen: uint64(dst.incarnation), data: data})
		return
	}
	if s.net.ringCut[ringLink{n.ID, to, link}] {
		// Checked before any draw: a cut ring must not shift the other rings' random fates.
		s.stats.DatagramsLost++
		return
	}
	s.fateBuf = s.net.fate(s.rng, n.ID, to, s.fateBuf)
	if len(s.fateBuf) == 0 {
		s.stats.DatagramsLost++
	}
	if len(s.fateBuf) > 1 {
		s.stats.Duplicated++
	}
	for _, d := range s.fateBuf {
		// gen 0: a datagram addressed to the node, not an incarnation; a restarted node
		// receives what was in flight, as a real socket would.
		s.schedule(&event{at: s.now + s.txDelay + d, kind: evDatagram, node: dst, from: n.ID, link: link, data: data})
	}
}

func (s *Sim) deliver(n *Node, d srp.Delivery) {
	switch {
	case d.Config != nil:
		s.stats.Configurations++
		if d.Config.Kind == srp.Regular {
			s.rings[d.Config.RingID] = true
		}
		s.hist.AddConfig(n.ID, *d.Config, s.step, s.now)
		if s.opts.Trace != nil {
			s.traceConfig(n, d.Config)
		}
		if n.app != nil {
			n.app.OnConfiguration(*d.Config)
		}
	case d.Message != nil:
		s.stats.Delivered++
		s.hist.AddDelivery(n.ID, *d.Message, s.step, s.now)
		if n.app != nil {
			if _, ok := decodePayloadHeader(d.Message.Payload); ok {
				n.app.OnDeliver(d.Message.Sender, d.Message.Payload[payloadHeaderSize:])
			}
		}
	}
}

// send originates payload at n on behalf of the workload or the application.
func (s *Sim) send(n *Node, payload []byte, g srp.Guarantee) error {
	if err := s.sendNow(n, payload, g); err != nil {
		return err
	}
	return s.drain(n)
}

func (s *Sim) sendNow(n *Node, payload []byte, g srp.Guarantee) error {
	id := MsgID{Sender: n.ID, Counter: n.counter + 1}
	buf := make([]byte, 0, payloadHeaderSize+len(payload))
	buf = encodePayloadHeader(buf, id)
	buf = append(buf, payload...)
	if err := n.proc.Send(s.now, buf, g); err != nil {
		if errors.Is(err, srp.ErrQueueFull) {
			s.stats.Backpressure++
		}
		if s.opts.Trace != nil {
			s.traceNode(n, "send", fmt.Sprintf("%s %dB refused: %v", gname(g), len(payload), err))
		}
		return err
	}
	n.counter++
	s.stats.Sends++
	s.hist.AddSent(id, g, buf, s.step, s.now)
	if s.opts.Trace != nil {
		s.traceNode(n, "send", fmt.Sprintf("n%d#%d %s %dB", id.Sender, id.Counter, gname(g), len(payload)))
	}
	return nil
}

// Send originates payload at node id now, as its application would (ErrNodeDown when the
// node is crashed or paused, srp.ErrQueueFull on backpressure).
func (s *Sim) Send(id srp.NodeID, payload []byte, g srp.Guarantee) error {
	n := s.Node(id)
	if n == nil {
		return fmt.Errorf("sim: send: no node %d", id)
	}
	return srpSender{n: n, incarnation: n.incarnation}.Send(payload, g)
}

// ---------------------------------------------------------------------------------------
// Node lifecycle

func (s *Sim) start(n *Node) error {
	if n.up {
		return nil
	}
	cfg := n.cfg
	cfg.RingIDStore = &n.store
	cfg.Rand = s.rng
	p, err := s.opts.NewProtocol(cfg)
	if err != nil {
		return fmt.Errorf("sim: n%d: %w", n.ID, err)
	}
	n.proc = p
	if b, ok := p.(simBinder); ok { // knet's clock and trace (sim/knet.go)
		b.bind(s, n)
	}
	n.up, n.paused = true, false
	n.incarnation++
	n.timerGen++
	n.timerAt = 0
	n.pauseBuf, n.deferred = nil, nil
	s.hist.AddStart(n.ID, s.step, s.now)
	if s.ghist != nil {
		s.ghist.AddStart(n.ID, s.step, s.now)
	}
	if s.opts.srpApp != nil {
		n.app = s.opts.srpApp(n.ID, srpSender{n: n, incarnation: n.incarnation})
	}
	p.Start(s.now)
	if s.opts.App != nil {
		a := &AppNode{n: n, incarnation: n.incarnation, groups: map[string]*Group{}}
		n.appNode = a
		// The stack's first events wait until the application has set itself up, as a
		// real node's callbacks are registered before anything is delivered.
		n.dispatching = true
		err := s.opts.App(a)
		n.dispatching = false
		s.appRan = true
		if err != nil {
			return fmt.Errorf("sim: n%d: application: %w", n.ID, err)
		}
	}
	return s.drain(n)
}

func (s *Sim) crash(n *Node) {
	if !n.up {
		return
	}
	n.up, n.paused = false, false
	n.proc, n.app, n.appNode = nil, nil, nil
	n.appq, n.dispatching = nil, false
	n.timerGen++
	n.timerAt = 0
	n.pauseBuf, n.deferred = nil, nil
	s.hist.AddCrash(n.ID, s.step, s.now)
	if s.ghist != nil {
		s.ghist.AddCrash(n.ID, s.step, s.now)
	}
	s.qlog.AddDown(n.ID, s.now)
}

// resume wakes a paused node the way a stopped VM wakes: its timers are all overdue, so
// they fire first with the new now, and only then does it read its socket buffer.
func (s *Sim) resume(n *Node) error {
	if !n.up || !n.paused {
		return nil
	}
	n.paused = false
	buf := n.pauseBuf
	n.pauseBuf = nil
	if n.timerMissed {
		n.timerMissed = false
		n.proc.Tick(s.now)
		if err := s.drain(n); err != nil {
			return err
		}
	}
	for _, d := range buf {
		if !n.up {
			break
		}
		if err := s.receive(n, d.from, d.link, d.data); err != nil {
			return err
		}
	}
	// The application's timers that came due during the pause fire now, late.
	if a := n.appNode; a != nil {
		due := a.timers
		a.timers = nil
		for _, f := range due {
			if !a.live() {
				break
			}
			if err := s.appCall(n, f); err != nil {
				return err
			}
		}
	}
	return nil
}
