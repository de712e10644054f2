package srp

// sortQueueSize is corosync's QUEUE_RTR_ITEMS_SIZE_MAX: the number of sequence numbers a
// sort queue can hold at once. A message is stored only when its seq lies inside the
// window [head, head+sortQueueSize) (§1.1).
const sortQueueSize = 16384

// sortSlot holds one received (or sent) MCAST datagram exactly as it came off the wire, so a
// retransmission is byte-for-byte the original and delivery can re-check its byte order.
type sortSlot struct {
	data []byte
	seq  uint32
	// miss counts token visits on which this seq was missing (§6.2 step 13).
	miss int
	used bool
}

// sortQueue is corosync's sq: a fixed window of slots indexed by seq modulo the size.
type sortQueue struct {
	head  uint32 // lowest seq the window admits: last released + 1
	slots []sortSlot
}

func newSortQueue() *sortQueue {
	return &sortQueue{head: 1, slots: make([]sortSlot, sortQueueSize)}
}

// reset empties the queue and puts the window head just after lastReleased; free receives
// every stored buffer so it can be recycled.
func (q *sortQueue) reset(lastReleased uint32, free func([]byte)) {
	for i := range q.slots {
		s := &q.slots[i]
		if s.used && free != nil {
			free(s.data)
		}
		*s = sortSlot{}
	}
	q.head = lastReleased + 1
}

func (q *sortQueue) inRange(seq uint32) bool { return seq-q.head < sortQueueSize }

func (q *sortQueue) slot(seq uint32) *sortSlot { return &q.slots[seq%sortQueueSize] }

// get returns the stored datagram for seq, or nil.
func (q *sortQueue) get(seq uint32) []byte {
	if !q.inRange(seq) {
		return nil
	}
	s := q.slot(seq)
	if !s.used || s.seq != seq {
		return nil
	}
	return s.data
}

func (q *sortQueue) has(seq uint32) bool { return q.get(seq) != nil }

// add stores data at seq; it reports false (and stores nothing) when seq is outside the
// window or already present — the two drop reasons corosync's receive path has.
func (q *sortQueue) add(seq uint32, data []byte) (ok bool, outOfWindow bool) {
	if !q.inRange(seq) {
		return false, true
	}
	s := q.slot(seq)
	if s.used {
		return false, false
	}
	*s = sortSlot{data: data, seq: seq, used: true}
	return true, false
}

// missed increments and returns seq's miss counter; the counter lives in the empty slot.
func (q *sortQueue) missed(seq uint32) int {
	s := q.slot(seq)
	if s.seq != seq {
		s.seq, s.miss = seq, 0
	}
	s.miss++
	return s.miss
}

// release frees every seq from the head up to and including upTo and moves the head past it.
func (q *sortQueue) release(upTo uint32, free func([]byte)) {
	n := upTo - q.head + 1
	if n > sortQueueSize || seqLT(upTo, q.head) {
		// Nothing to free (upTo below the head) or a span the window cannot hold; the
		// caller's bounds make the latter impossible, this keeps a bad value harmless.
		if !seqLT(upTo, q.head) {
			q.reset(upTo, free)
		}
		return
	}
	for seq := q.head; n > 0; seq, n = seq+1, n-1 {
		s := q.slot(seq)
		if s.used && s.seq == seq && free != nil {
			free(s.data)
		}
		*s = sortSlot{}
	}
	q.head = upTo + 1
}
