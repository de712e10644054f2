package services

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/gototem/gototem/srp"
)

// Service ids (corosync's enum corosync_service_types).
const (
	ServiceCMAP       = 0
	ServiceCFG        = 1
	ServiceCPG        = 2
	ServiceQuorum     = 3
	ServicePLoad      = 4
	ServiceVoteQuorum = 5
	ServiceMon        = 6
	ServiceWD         = 7
)

// Sync message ids in group "sync". They are not service-encoded.
const (
	syncBarrier      = 0
	syncServiceBuild = 1

	syncBarrierSize      = 32
	syncServiceBuildSize = 552
	syncServiceListMax   = 128
	// serviceIDLimit is the bound real nodes index arrays with: a SERVICE_BUILD naming an id at or
	// above it would overrun corosync's tables, so we never send one and ignore it on receive.
	serviceIDLimit = 64
)

// Participant is a service taking part in synchronization, as a corosync service engine with
// sync hooks does. Calls happen in total order on the owner goroutine.
type Participant interface {
	// SyncInit runs when a regular configuration starts a sync. trans is the transitional
	// membership intersected with members.
	SyncInit(ring srp.RingID, members, trans []srp.NodeID)
	// SyncProcess returns the group-"a" message bodies this node multicasts in the service's
	// phase. done=false holds the BARRIER back (votequorum waits for a quorum device's poll);
	// the engine asks again on the next Work.
	SyncProcess() (msgs [][]byte, done bool)
	// SyncActivate runs when every member's BARRIER for the phase has been delivered.
	SyncActivate()
	// SyncAbort runs when a configuration change interrupts the service's phase.
	SyncAbort()
}

// Outbound is one message the service layer wants multicast, in order.
type Outbound struct {
	Group string // "a" or "sync"
	Body  []byte
}

// SyncEngine runs corosync's synchronization barrier protocol (exec/sync.c) after every regular
// configuration. It must mirror real nodes exactly, quirks included: they count one flag per
// member for SERVICE_BUILD and every BARRIER round alike, have no timeout and never check the
// phase, so a missing or doubled BARRIER leaves them waiting forever or out of lockstep.
type SyncEngine struct {
	local        []int // service ids this node runs, ascending
	participants map[int]Participant

	ring     srp.RingID
	members  []srp.NodeID
	got      map[srp.NodeID]bool
	list     []int // union of SERVICE_BUILD lists for ring, ascending
	phase    int   // index into list of the running phase
	building bool  // waiting for SERVICE_BUILD from every member
	running  bool  // a sync is in progress for ring
	pending  bool  // the phase's work is due (scheduled on completion of the previous round)
	trans    []srp.NodeID

	completed uint64 // syncs completed
	discarded uint64 // malformed messages
	stale     uint64 // well-formed messages for an old ring or with no sync running
}

// NewSyncEngine returns an engine for the given local services. Every id in services that has a
// Participant takes part with it; ids without one take part as no-op phases (BARRIER only).
func NewSyncEngine(services []int, participants map[int]Participant) (*SyncEngine, error) {
	local := slices.Clone(services)
	slices.Sort(local)
	local = slices.Compact(local)
	for _, id := range local {
		if id < 0 || id >= serviceIDLimit {
			return nil, fmt.Errorf("services: sync: service id %d out of range 0..%d", id, serviceIDLimit-1)
		}
	}
	return &SyncEngine{local: local, participants: participants, got: map[srp.NodeID]bool{}}, nil
}

// Synchronizing reports whether a sync is in progress (real nodes hold their clients' flow-
// controlled requests meanwhile).
func (e *SyncEngine) Synchronizing() bool { return e.running }

// Ring is the ring of the running or last completed sync (zero after an abort).
func (e *SyncEngine) Ring() srp.RingID { return e.ring }

// Completed is the number of syncs this node finished.
func (e *SyncEngine) Completed() uint64 { return e.completed }

// Discarded counts sync messages dropped as malformed.
func (e *SyncEngine) Discarded() uint64 { return e.discarded }

// Stale counts well-formed sync messages of an old ring (or arriving with no sync running),
// dropped as corosync drops them. They are normal around membership changes: a sync aborted by
// the next ring leaves its messages behind, so they are no sign of a bad peer.
func (e *SyncEngine) Stale() uint64 { return e.stale }

// Transitional records a transitional configuration: it aborts a running sync and keeps the
// member list for the next SyncInit.
func (e *SyncEngine) Transitional(members []srp.NodeID) {
	e.abort()
	e.trans = slices.Clone(members)
}

// Regular starts a sync for a new regular configuration and returns the SERVICE_BUILD to send.
func (e *SyncEngine) Regular(ring srp.RingID, members []srp.NodeID) []Outbound {
	e.abort()
	e.ring = ring
	e.members = slices.Clone(members)
	clear(e.got)
	e.list = slices.Clone(e.local)
	e.phase = 0
	e.building = true
	e.running = true
	trans := intersect(e.trans, members)
	for _, id := range e.local {
		if p := e.participants[id]; p != nil {
			p.SyncInit(ring, e.members, trans)
		}
	}
	return []Outbound{{Group: "sync", Body: EncodeServiceBuild(ring, e.local)}}
}

func (e *SyncEngine) abort() {
	if e.running && e.phase < len(e.list) && !e.building {
		if p := e.participants[e.list[e.phase]]; p != nil {
			p.SyncAbort()
		}
	}
	e.running = false
	e.pending = false
	// A zero ring makes every SERVICE_BUILD and BARRIER until the next regular configuration
	// an "old ring" message, as corosync's sync_abort does.
	e.ring = srp.RingID{}
}

// Deliver processes one group-"sync" message delivered in total order from sender.
func (e *SyncEngine) Deliver(sender srp.NodeID, body []byte) {
	id, ring, services, err := decodeSyncMessage(body)
	if err != nil {
		e.discarded++
		return
	}
	if ring != e.ring || !e.running {
		e.stale++
		return
	}
	if id == syncServiceBuild {
		for _, s := range services {
			if s >= 0 && s < serviceIDLimit && !slices.Contains(e.list, s) {
				e.list = append(e.list, s)
			}
		}
		slices.Sort(e.list)
	}
	// Deliberately no check that id matches the round: corosync counts a BARRIER received while
	// waiting for SERVICE_BUILDs as the SERVICE_BUILD, and we must stay in lockstep with it.
	if slices.Contains(e.members, sender) {
		e.got[sender] = true
	}
	for _, m := range e.members {
		if !e.got[m] {
			return
		}
	}
	clear(e.got)
	if e.building {
		e.building = false
		e.phase = 0
	} else {
		if p := e.participants[e.list[e.phase]]; p != nil {
			p.SyncActivate()
		}
		e.phase++
	}
	if e.phase >= len(e.list) {
		e.running = false
		e.completed++
		return
	}
	e.pending = true
}

// Work returns the messages of the phase that became due, followed by its BARRIER: corosync runs
// a phase from its token callback after the previous round completed; the driver calls Work after
// handing over a batch of deliveries, and again on later ticks while Pending reports a phase whose
// participant was not done.
func (e *SyncEngine) Work() []Outbound {
	if !e.pending {
		return nil
	}
	var out []Outbound
	done := true
	if p := e.participants[e.list[e.phase]]; p != nil {
		var msgs [][]byte
		msgs, done = p.SyncProcess()
		for _, b := range msgs {
			out = append(out, Outbound{Group: "a", Body: b})
		}
	}
	if !done {
		return out
	}
	e.pending = false
	return append(out, Outbound{Group: "sync", Body: EncodeBarrier(e.ring)})
}

// Pending reports whether a phase's work is due (Work has something to do).
func (e *SyncEngine) Pending() bool { return e.pending }

// Phase reports the service id whose phase is running, or -1.
func (e *SyncEngine) Phase() int {
	if !e.running || e.building || e.phase >= len(e.list) {
		return -1
	}
	return e.list[e.phase]
}

func intersect(a, b []srp.NodeID) []srp.NodeID {
	var out []srp.NodeID
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// EncodeBarrier builds a 32-byte BARRIER for ring (little-endian, zero padded).
func EncodeBarrier(ring srp.RingID) []byte {
	b := make([]byte, syncBarrierSize)
	putQBRequest(b, syncBarrier, syncBarrierSize)
	putRing(b[16:], ring)
	return b
}

// EncodeServiceBuild builds a 552-byte SERVICE_BUILD listing services.
func EncodeServiceBuild(ring srp.RingID, services []int) []byte {
	b := make([]byte, syncServiceBuildSize)
	putQBRequest(b, syncServiceBuild, syncServiceBuildSize)
	putRing(b[16:], ring)
	n := min(len(services), syncServiceListMax)
	binary.LittleEndian.PutUint32(b[32:], uint32(n))
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(b[40+4*i:], uint32(services[i]))
	}
	return b
}

// decodeSyncMessage parses a BARRIER or SERVICE_BUILD. corosync never byte-swaps these (a
// mixed-endian cluster cannot finish sync), so neither do we.
func decodeSyncMessage(b []byte) (id int32, ring srp.RingID, services []int, err error) {
	if len(b) < syncBarrierSize {
		return 0, ring, nil, fmt.Errorf("services: sync message of %d bytes, want at least %d", len(b), syncBarrierSize)
	}
	id = int32(binary.LittleEndian.Uint32(b))
	ring = getRing(b[16:])
	switch id {
	case syncBarrier:
		return id, ring, nil, nil
	case syncServiceBuild:
		if len(b) < syncServiceBuildSize {
			return 0, ring, nil, fmt.Errorf("services: SERVICE_BUILD of %d bytes, want %d", len(b), syncServiceBuildSize)
		}
		n := int32(binary.LittleEndian.Uint32(b[32:]))
		if n < 0 || n > syncServiceListMax {
			return 0, ring, nil, fmt.Errorf("services: SERVICE_BUILD lists %d services, at most %d", n, syncServiceListMax)
		}
		services = make([]int, n)
		for i := range services {
			services[i] = int(int32(binary.LittleEndian.Uint32(b[40+4*i:])))
		}
		return id, ring, services, nil
	}
	return 0, ring, nil, fmt.Errorf("services: unknown sync message id %d", id)
}

func putQBRequest(b []byte, id int32, size int) {
	binary.LittleEndian.PutUint32(b[0:], uint32(id))
	binary.LittleEndian.PutUint32(b[8:], uint32(size))
}

func putRing(b []byte, r srp.RingID) {
	binary.LittleEndian.PutUint32(b[0:], uint32(r.Rep))
	binary.LittleEndian.PutUint64(b[4:], r.Seq)
}

func getRing(b []byte) srp.RingID {
	return srp.RingID{Rep: srp.NodeID(binary.LittleEndian.Uint32(b)), Seq: binary.LittleEndian.Uint64(b[4:])}
}
