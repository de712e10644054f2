package sim

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"time"

	"github.com/gototem/gototem/srp"
)

// Every payload the simulator hands to srp starts with this header, so a delivery can be
// traced back to exactly one send whoever originated it (the workload or a test).
const payloadHeaderSize = 12 // sender uint32 + counter uint64, little-endian

// MsgID identifies one originated message: its sender and the sender's send counter
// (which survives restarts, so an id is never reused).
type MsgID struct {
	Sender  srp.NodeID
	Counter uint64
}

func encodePayloadHeader(dst []byte, id MsgID) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(id.Sender))
	return binary.LittleEndian.AppendUint64(dst, id.Counter)
}

// TaggedPayload is body behind id's header: the payload the checkers attribute to id. It is
// for histories built outside the simulator, such as a lab's delivery logs, where messages
// carry their own names and the log is translated into AddSent/AddDelivery calls.
func TaggedPayload(id MsgID, body []byte) []byte {
	return append(encodePayloadHeader(make([]byte, 0, payloadHeaderSize+len(body)), id), body...)
}

func decodePayloadHeader(p []byte) (MsgID, bool) {
	if len(p) < payloadHeaderSize {
		return MsgID{}, false
	}
	return MsgID{
		Sender:  srp.NodeID(binary.LittleEndian.Uint32(p)),
		Counter: binary.LittleEndian.Uint64(p[4:]),
	}, true
}

func checksum(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// SentMsg is the simulator's record of one message srp accepted from a node.
type SentMsg struct {
	ID          MsgID
	Guarantee   srp.Guarantee
	Step        uint64
	At          time.Duration
	Incarnation int
	Len         int
	Sum         uint64 // checksum of the whole payload, to catch corruption
}

// EntryKind says what a delivery-log entry records.
type EntryKind uint8

const (
	// EntryStart: a new incarnation of the node began (first start or restart).
	EntryStart EntryKind = iota
	// EntryConfig: srp delivered a configuration.
	EntryConfig
	// EntryMessage: srp delivered a message.
	EntryMessage
	// EntryCrash: the node crashed; its incarnation ended without a goodbye.
	EntryCrash
)

// Entry is one line of a node's delivery log.
type Entry struct {
	Kind        EntryKind
	Step        uint64
	At          time.Duration
	Incarnation int
	Config      *srp.Configuration // EntryConfig
	// EntryMessage: Msg indexes History.Sent, or is -1 when the payload names no message
	// the simulator saw sent. Sender, Guarantee, Len and Sum are what srp delivered.
	Msg       int
	Sender    srp.NodeID
	Guarantee srp.Guarantee
	Len       int
	Sum       uint64
}

// History is everything the checkers read: what was sent, what each node's srp received
// (tapped at the network layer) and what each node delivered, in order. A test can build
// one by hand with the Add methods to show a checker catching a broken log.
type History struct {
	Nodes []srp.NodeID
	Sent  []SentMsg
	Logs  map[srp.NodeID][]Entry
	// received[node][msg] is the first step at which node's srp accepted a datagram
	// carrying msg (directly or encapsulated in recovery); 0: never.
	received map[srp.NodeID][]uint64
	index    map[MsgID]int
	// incarnation is each node's current incarnation, for the Add methods.
	incarnation map[srp.NodeID]int
	// order is every log entry in the order it was added (node, index in its log): the
	// checkers consume it incrementally, so checking after every step stays linear.
	order []logRef
	// own[node][incarnation] lists the node's sends in send order.
	own map[srp.NodeID]map[int][]int
	chk checker
}

type logRef struct {
	node srp.NodeID
	idx  int
}

// NewHistory returns an empty history for the given node ids.
func NewHistory(nodes []srp.NodeID) *History {
	h := &History{
		Nodes:       slices.Clone(nodes),
		Logs:        make(map[srp.NodeID][]Entry, len(nodes)),
		received:    make(map[srp.NodeID][]uint64, len(nodes)),
		index:       make(map[MsgID]int),
		incarnation: make(map[srp.NodeID]int, len(nodes)),
		own:         make(map[srp.NodeID]map[int][]int, len(nodes)),
	}
	slices.Sort(h.Nodes)
	return h
}

// AddStart records that node began a new incarnation.
func (h *History) AddStart(node srp.NodeID, step uint64, at time.Duration) {
	h.incarnation[node]++
	h.add(node, Entry{Kind: EntryStart, Step: step, At: at, Incarnation: h.incarnation[node], Msg: -1})
}

// AddCrash records that node crashed.
func (h *History) AddCrash(node srp.NodeID, step uint64, at time.Duration) {
	h.add(node, Entry{Kind: EntryCrash, Step: step, At: at, Incarnation: h.incarnation[node], Msg: -1})
}

// AddSent records that srp at id.Sender accepted payload (which starts with id's header).
func (h *History) AddSent(id MsgID, g srp.Guarantee, payload []byte, step uint64, at time.Duration) int {
	i := len(h.Sent)
	h.Sent = append(h.Sent, SentMsg{
		ID: id, Guarantee: g, Step: step, At: at, Incarnation: h.incarnation[id.Sender],
		Len: len(payload), Sum: checksum(payload),
	})
	h.index[id] = i
	inc := h.incarnation[id.Sender]
	if h.own[id.Sender] == nil {
		h.own[id.Sender] = make(map[int][]int)
	}
	h.own[id.Sender][inc] = append(h.own[id.Sender][inc], i)
	return i
}

// Lookup returns the index in Sent of a message id.
func (h *History) Lookup(id MsgID) (int, bool) {
	i, ok := h.index[id]
	return i, ok
}

// AddReceived records that node's srp accepted a datagram carrying the message whose
// payload is p (ignored when p names no sent message: creation is caught at delivery).
func (h *History) AddReceived(node srp.NodeID, p []byte, step uint64) {
	id, ok := decodePayloadHeader(p)
	if !ok {
		return
	}
	i, ok := h.index[id]
	if !ok {
		return
	}
	r := h.received[node]
	if i >= len(r) {
		r = append(r, make([]uint64, i+1-len(r)+len(r)/2)...)
		h.received[node] = r
	}
	if r[i] == 0 {
		r[i] = step
	}
}

// ReceivedStep is the first step at which node's srp held message i (0: never).
func (h *History) ReceivedStep(node srp.NodeID, i int) uint64 {
	r := h.received[node]
	if i < 0 || i >= len(r) {
		return 0
	}
	return r[i]
}

// AddConfig records a configuration delivery (c is copied).
func (h *History) AddConfig(node srp.NodeID, c srp.Configuration, step uint64, at time.Duration) {
	cc := srp.Configuration{
		Kind: c.Kind, RingID: c.RingID,
		Members: slices.Clone(c.Members), Joined: slices.Clone(c.Joined), Left: slices.Clone(c.Left),
	}
	h.add(node, Entry{Kind: EntryConfig, Step: step, At: at, Incarnation: h.incarnation[node], Config: &cc, Msg: -1})
}

// AddDelivery records a message delivery as srp reported it.
func (h *History) AddDelivery(node srp.NodeID, m srp.Message, step uint64, at time.Duration) {
	e := Entry{
		Kind: EntryMessage, Step: step, At: at, Incarnation: h.incarnation[node], Msg: -1,
		Sender: m.Sender, Guarantee: m.Guarantee, Len: len(m.Payload), Sum: checksum(m.Payload),
	}
	if id, ok := decodePayloadHeader(m.Payload); ok {
		if i, ok := h.index[id]; ok {
			e.Msg = i
		}
	}
	h.add(node, e)
}

func (h *History) add(node srp.NodeID, e Entry) {
	h.order = append(h.order, logRef{node, len(h.Logs[node])})
	h.Logs[node] = append(h.Logs[node], e)
}

// Delivered reports how many messages node delivered in total.
func (h *History) Delivered(node srp.NodeID) int {
	n := 0
	for _, e := range h.Logs[node] {
		if e.Kind == EntryMessage {
			n++
		}
	}
	return n
}
