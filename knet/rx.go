package knet

import "fmt"

const (
	// SeqWindow is KNET_CBUFFER_SIZE: how many recent seq numbers of a host a receiver
	// remembers as delivered (and, separately, as seen by the reassembly).
	SeqWindow = 4096
	// DefragBuffers is KNET_DEFRAG_BUFFERS: messages of one host being reassembled at once.
	DefragBuffers = 32
	// seqMax is SEQ_MAX, the seq counter's range (it is 16 bits on the wire).
	seqMax = 65535
)

// RxResult is what HostRx.Data did with a DATA packet.
type RxResult uint8

const (
	// RxDeliver: the packet completes a message the receiver has not delivered yet.
	RxDeliver RxResult = iota
	// RxDuplicate: that seq number was already delivered (a copy from another link in
	// active mode, or a replay).
	RxDuplicate
	// RxHeld: a fragment was stored; the message is not complete yet (or the fragment was
	// a copy of one already stored).
	RxHeld
	// RxExpired: a fragment of a message whose reassembly already finished or was given
	// up (libknet's ETIME).
	RxExpired
	// RxMalformed: fragment fields no sender produces (frag_seq 0 or past frag_num,
	// frag_num changing within a message, fragment sizes that disagree, more than
	// MaxPacketSize bytes), or not a DATA packet. libknet 1.25 trusted these fields; gototem
	// drops the packet and counts it.
	RxMalformed
	numRxResults
)

var rxResultNames = [...]string{"deliver", "duplicate", "held", "expired", "malformed"}

func (r RxResult) String() string {
	if int(r) < len(rxResultNames) {
		return rxResultNames[r]
	}
	return fmt.Sprintf("rx(%d)", uint8(r))
}

// RxStats counts HostRx.Data's results, by RxResult.
type RxStats [numRxResults]uint64

// seqSet is one of host.c's circular buffers: one bit per seq number modulo SeqWindow.
type seqSet [SeqWindow / 64]uint64

func (s *seqSet) has(seq uint16) bool {
	i := seq % SeqWindow
	return s[i/64]&(1<<(i%64)) != 0
}

func (s *seqSet) set(seq uint16) {
	i := seq % SeqWindow
	s[i/64] |= 1 << (i % 64)
}

// clearRange clears slots from..to inclusive (indexes into the window, from <= to).
func (s *seqSet) clearRange(from, to int) {
	for i := from; i <= to; i++ {
		s[i/64] &^= 1 << (i % 64)
	}
}

// defragBuf is one message being reassembled. Fragments are kept in arrival order in
// store (off[k] is where fragment k starts, plus one; 0 = not received) and laid out only
// when the last one arrives: memory grows with the bytes actually received, never with what
// a frag_num claims. Every fragment but the last has the message's fragment size; the last
// may be shorter, and when it comes first the fragment size is not known yet (pMTU may
// differ per direction, so the receiver cannot use its own MTU to guess).
type defragBuf struct {
	inUse      bool
	seq        uint16
	fragNum    uint8
	recv       int
	fragSize   int
	lastLen    int
	lastUpdate uint64
	off        [256]int32
	store      []byte
}

// HostRx is what one node keeps about the DATA it receives from one other host: the
// de-duplication window of delivered seq numbers and the reassembly of fragmented messages,
// as libknet 1.25's host.c and threads_rx.c keep them, as a pure component.
//
// Memory is bounded: at most limit defrag buffers, each holding at most the bytes received
// for its message (which cannot pass MaxPacketSize), plus one message-sized output buffer;
// all allocated on first need and reused. The "oldest buffer" libknet
// picks by its monotonic clock is picked here by a count of packets, which orders them the
// same way without a clock.
//
// Not safe for concurrent use. Messages Data returns alias HostRx's buffers or the packet,
// and are valid until the next call.
type HostRx struct {
	rxSeq      uint16 // host->rx_seq_num: the newest seq number seen
	delivered  seqSet
	defragSeen seqSet
	gotData    bool
	untimedSeq uint16
	timedSeq   uint16
	limit      int
	bufs       []defragBuf
	out        []byte // the last reassembled message
	tick       uint64
	Stats      RxStats
}

// NewHostRx returns the receive state for one remote host (the zero HostRx is also ready,
// with libknet's limit). defragBuffers <= 0 means
// libknet's DefragBuffers; a smaller number bounds memory further (fewer messages in flight).
func NewHostRx(defragBuffers int) *HostRx {
	if defragBuffers <= 0 {
		defragBuffers = DefragBuffers
	}
	return &HostRx{limit: defragBuffers}
}

// Data takes one DATA packet from the host (already past crypto, host and link checks) and
// returns the complete message when this packet completes one not delivered before. A
// delivered seq number is remembered: a later copy is RxDuplicate.
func (h *HostRx) Data(p *Packet) ([]byte, RxResult) {
	msg, r := h.data(p)
	h.Stats[r]++
	return msg, r
}

func (h *HostRx) data(p *Packet) ([]byte, RxResult) {
	if p.Type != TypeData {
		return nil, RxMalformed
	}
	h.gotData = true
	if !h.lookup(p.Seq, &h.delivered, false) {
		return nil, RxDuplicate
	}
	if !p.Fragmented() {
		h.delivered.set(p.Seq)
		return p.Data, RxDeliver
	}
	msg, r := h.defrag(p)
	if r == RxDeliver {
		h.delivered.set(p.Seq)
	}
	return msg, r
}

// Ping takes a PING from the host: libknet uses its seq field (the sender's DATA counter)
// to move the window, and detects a restarted sender. An untimed ping (sent every SEQ_MAX/8
// DATA packets) with no DATA received since the previous one means the window is stale:
// it is wiped. A timed ping with seq 0, seen after another seq, means the sender restarted
// and has sent nothing yet: wiped too.
func (h *HostRx) Ping(p *Packet) {
	if p.Type != TypePing {
		return
	}
	if p.Timed == 0 {
		wipe := false
		if p.Seq != h.untimedSeq {
			h.untimedSeq = p.Seq
			wipe = !h.gotData
			h.gotData = false
		}
		h.lookup(p.Seq, &h.delivered, wipe)
		return
	}
	if p.Seq != h.timedSeq {
		h.timedSeq = p.Seq
		if p.Seq == 0 {
			h.lookup(0, &h.delivered, true)
		}
	}
}

// Reset forgets everything about the host, as libknet does when the host has no link up
// left.
func (h *HostRx) Reset() { h.clear(0) }

// Pending is the number of messages being reassembled.
func (h *HostRx) Pending() int {
	n := 0
	for i := range h.bufs {
		if h.bufs[i].inUse {
			n++
		}
	}
	return n
}

func (h *HostRx) clear(seq uint16) {
	h.delivered, h.defragSeen = seqSet{}, seqSet{}
	h.rxSeq = seq
	for i := range h.bufs {
		h.bufs[i].inUse = false
	}
}

// lookup is host.c's _seq_num_lookup: it reports whether seq is new in set and slides the
// window when seq is ahead of rxSeq. A seq within SeqWindow behind rxSeq is judged by the
// set; one further away than that in either direction restarts the window at seq.
func (h *HostRx) lookup(seq uint16, set *seqSet, wipe bool) bool {
	if h.rxSeq == 0 {
		// A receiver that just started (or was reset) takes the first seq it sees as the
		// window's position, so an overloaded sender's data is not refused before a ping
		// sets it.
		h.rxSeq = seq
	}
	if wipe {
		h.clear(seq)
	}
	h.reclaim()
	var dist uint16
	if seq < h.rxSeq {
		// libknet computes SEQ_MAX - seq + rx in int and stores it in 16 bits: one less
		// than the true distance back. Kept, as it decides which old seqs count as seen.
		dist = uint16(seqMax - int(seq) + int(h.rxSeq))
	} else {
		dist = h.rxSeq - seq
	}
	head := int(seq % SeqWindow)
	if dist < SeqWindow {
		return !set.has(seq)
	}
	if dist <= seqMax-SeqWindow {
		h.delivered, h.defragSeen = seqSet{}, seqSet{}
		h.rxSeq = seq
	}
	// seq is ahead: forget what the slots between the old position and seq remembered
	// from one window ago.
	tail := int((h.rxSeq + 1) % SeqWindow)
	if tail > head {
		h.delivered.clearRange(tail, SeqWindow-1)
		h.delivered.clearRange(0, head)
		h.defragSeen.clearRange(tail, SeqWindow-1)
		h.defragSeen.clearRange(0, head)
	} else {
		h.delivered.clearRange(tail, head)
		h.defragSeen.clearRange(tail, head)
	}
	h.rxSeq = seq
	return true
}

// reclaim is _reclaim_old_defrag_bufs: a message whose seq fell more than DefragBuffers+1
// behind the newest seq (or is ahead of it) will not be completed; its buffer is freed.
// This is the timeout of reassembly, counted in seq numbers instead of seconds.
func (h *HostRx) reclaim() {
	head := h.rxSeq + 1
	tail := h.rxSeq - (DefragBuffers + 1)
	for i := range h.bufs {
		b := &h.bufs[i]
		if !b.inUse {
			continue
		}
		if tail > head {
			if b.seq >= head && b.seq <= tail {
				b.inUse = false
			}
		} else if b.seq >= head || b.seq <= tail {
			b.inUse = false
		}
	}
}

// findBuf is find_pckt_defrag_buf: the buffer already holding seq, else a free one, else
// the least recently updated one; nil when seq was already reassembled or given up.
func (h *HostRx) findBuf(seq uint16) *defragBuf {
	for i := range h.bufs {
		if h.bufs[i].inUse && h.bufs[i].seq == seq {
			return &h.bufs[i]
		}
	}
	if !h.lookup(seq, &h.defragSeen, false) {
		return nil
	}
	h.defragSeen.set(seq)
	for i := range h.bufs {
		if !h.bufs[i].inUse {
			return &h.bufs[i]
		}
	}
	limit := h.limit
	if limit <= 0 { // the zero HostRx
		limit = DefragBuffers
	}
	if len(h.bufs) < limit {
		h.bufs = append(h.bufs, defragBuf{})
		return &h.bufs[len(h.bufs)-1]
	}
	oldest := 0
	for i := range h.bufs {
		if h.bufs[i].lastUpdate < h.bufs[oldest].lastUpdate {
			oldest = i
		}
	}
	h.bufs[oldest].inUse = false
	return &h.bufs[oldest]
}

func (h *HostRx) defrag(p *Packet) ([]byte, RxResult) {
	n, k, size := int(p.FragNum), int(p.FragSeq), len(p.Data)
	if k < 1 || k > n || size == 0 || size > MaxPacketSize {
		return nil, RxMalformed
	}
	b := h.findBuf(p.Seq)
	if b == nil {
		return nil, RxExpired
	}
	if !b.inUse {
		store := b.store[:0]
		*b = defragBuf{inUse: true, seq: p.Seq, fragNum: p.FragNum, store: store}
	}
	h.tick++
	b.lastUpdate = h.tick
	if b.fragNum != p.FragNum {
		return nil, RxMalformed
	}
	if b.off[k] != 0 {
		return nil, RxHeld
	}
	fragSize, lastLen := b.fragSize, b.lastLen
	if k == n {
		lastLen = size
	} else if fragSize == 0 {
		fragSize = size
	} else if size != fragSize {
		return nil, RxMalformed
	}
	if fragSize != 0 && lastLen != 0 && (n-1)*fragSize+lastLen > MaxPacketSize ||
		fragSize != 0 && (n-1)*fragSize > MaxPacketSize {
		return nil, RxMalformed
	}
	b.fragSize, b.lastLen = fragSize, lastLen
	b.off[k] = int32(len(b.store)) + 1
	b.store = append(b.store, p.Data...)
	b.recv++
	if b.recv < n {
		return nil, RxHeld
	}
	b.inUse = false
	h.out = h.out[:0]
	for i := 1; i <= n; i++ {
		l := b.fragSize
		if i == n {
			l = b.lastLen
		}
		o := int(b.off[i] - 1)
		h.out = append(h.out, b.store[o:o+l]...)
	}
	return h.out, RxDeliver
}
