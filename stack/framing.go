package stack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gototem/gototem/srp"
)

// This file is the totempg layer as the stack uses it (totem-wire.md §9): group framing,
// packing several messages into one MCAST, fragmenting large ones, and reassembling per
// sender with corosync's exact receive rules, quirks included.

const (
	pgHeaderSize = 8
	// maxAssembly bounds one sender's reassembly buffer: corosync's MESSAGE_SIZE_MAX (1 MiB)
	// plus one packet of slack.
	maxAssembly = 1<<20 + 64<<10
	// overflowMax bounds service messages waiting for room in srp's queue.
	overflowMax = 4096
)

var errFramingBusy = errors.New("stack: framing: ring queue full")

type pending struct {
	msg []byte
	g   srp.Guarantee
}

// framing packs outgoing messages into totempg packets and reassembles incoming ones.
type framing struct {
	packetMax int // netmtu − 90: the largest srp payload
	dataMax   int // room for [length array + data]

	// sender
	staged      []byte   // data of the packet being filled
	stagedLens  []uint16 // lengths of the staged messages
	stagedG     srp.Guarantee
	fragTag     uint8 // last fragment tag used (1..255)
	continueTag uint8 // the next packet starts with the continuation of this tag
	overflow    []pending
	// idleRoom is srp's queue room when its queue is empty: staged data is only held back
	// for packing while srp already has work queued, otherwise it would wait for a token
	// that an idle ring holds (token hold) and add hundreds of milliseconds of latency.
	idleRoom int

	// receiver
	senders map[srp.NodeID]*assembly
	drops   FramingDrops
	// cuts counts this node's own messages cut by a membership change: continued in the
	// new ring (continueCut, as corosync does) or queued again whole (straddle).
	cuts    struct{ continued, requeued uint64 }
	scratch []byte

	// corosync keeps two of each (totempg's contexts and its two assembly lists): the
	// normal ones, and those used from a ring's installation until its sync completes
	// (trans-ack). The fields above are the set in use; these hold the other one.
	packTrans    bool // the sender fields above are the trans context
	otherPack    packContext
	recvTrans    bool // senders above is the trans assembly set
	otherSenders map[srp.NodeID]*assembly

	// self and splits: this node's messages of the normal context that were cut across
	// packets and whose last piece this node has not delivered yet, oldest first, with the
	// fragment tag the last piece continues. A membership change can fall between the
	// pieces (see straddle).
	self   srp.NodeID
	splits []split
	// splitsArr is splits' whole backing array (splits is a window on it that moves on as
	// the oldest entries go), and spareSplits framed buffers of delivered splits for reuse:
	// a flood cuts most 1 KiB messages, and a copy per cut message was an allocation per
	// delivered message (TestDeliveryAllocations).
	splitsArr   []split
	spareSplits [][]byte
	spareBytes  int // capacity held in spareSplits, at most spareSplitBytes
}

type split struct {
	framed  []byte
	g       srp.Guarantee
	lastTag uint8
}

// pushSplit appends s to splits, moving the live entries back to the start of the backing
// array when the window reached its end, so the queue does not reallocate as it moves on.
func (f *framing) pushSplit(s split) {
	if len(f.splits) == cap(f.splits) && cap(f.splitsArr) >= 2*len(f.splits)+1 {
		f.splits = f.splitsArr[:copy(f.splitsArr, f.splits)]
	}
	f.splits = append(f.splits, s)
	// Every window on one array ends where the array ends; a different end is a new array,
	// which append starts at its first element.
	end := f.splits[:cap(f.splits)]
	if len(f.splitsArr) == 0 || &end[len(end)-1] != &f.splitsArr[len(f.splitsArr)-1] {
		f.splitsArr = end
	}
}

// popSplit drops the oldest split; recycle hands its buffer back for the next cut message.
func (f *framing) popSplit(recycle bool) {
	if b := f.splits[0].framed; recycle && f.spareBytes+cap(b) <= spareSplitBytes {
		f.spareSplits = append(f.spareSplits, b[:0])
		f.spareBytes += cap(b)
	}
	f.splits[0] = split{}
	f.splits = f.splits[1:]
}

// spareSplit is an empty buffer for a cut message's copy, reused when one is free.
func (f *framing) spareSplit() []byte {
	if n := len(f.spareSplits); n > 0 {
		b := f.spareSplits[n-1]
		f.spareSplits = f.spareSplits[:n-1]
		f.spareBytes -= cap(b)
		return b
	}
	return nil
}

// spareSplitBytes bounds the memory kept for reuse by cut messages' copies: a flood has a few
// hundred 1 KiB messages cut and in flight at once.
const spareSplitBytes = 4 << 20

// splitsMax bounds the split messages remembered: more are never in flight at once in srp's
// queue (queue_max packets), so an overflow only drops the oldest, already lost, record.
const splitsMax = 4096

// packContext is one sender context: the packet being filled and its continuation tag.
type packContext struct {
	staged      []byte
	stagedLens  []uint16
	stagedG     srp.Guarantee
	continueTag uint8
}

// usePack switches the sender fields to the trans context or back. Issue 12: a message
// staged before a membership change must go out in the normal queue after the new ring's
// sync, not packed into the sync's first packet, where members that had not yet learnt the
// sender's processes dropped it.
func (f *framing) usePack(trans bool) {
	if trans == f.packTrans {
		return
	}
	cur := packContext{f.staged, f.stagedLens, f.stagedG, f.continueTag}
	f.staged, f.stagedLens, f.stagedG, f.continueTag = f.otherPack.staged, f.otherPack.stagedLens, f.otherPack.stagedG, f.otherPack.continueTag
	f.otherPack = cur
	f.packTrans = trans
}

// useRecv switches reassembly to the trans set (fresh: what it held belonged to an earlier
// ring's sync) or back to the normal one, whose partial messages survive the sync.
func (f *framing) useRecv(trans bool) {
	if trans == f.recvTrans {
		if trans {
			clear(f.senders)
		}
		return
	}
	f.senders, f.otherSenders = f.otherSenders, f.senders
	if f.senders == nil {
		f.senders = map[srp.NodeID]*assembly{}
	}
	if trans {
		clear(f.senders)
	}
	f.recvTrans = trans
}

type assembly struct {
	buf       []byte
	lastFrag  uint8
	throwAway bool
}

func newFraming(netMTU int) (*framing, error) {
	packet := netMTU - 2*srp.McastHeaderSize
	if packet < pgHeaderSize+64 {
		return nil, fmt.Errorf("stack: netmtu %d leaves no room for messages", netMTU)
	}
	return &framing{packetMax: packet, dataMax: packet - pgHeaderSize, senders: map[srp.NodeID]*assembly{}}, nil
}

// FramingDrops counts totempg packets dropped on receive, by reason.
type FramingDrops struct {
	Short        uint64 // shorter than the header or its length array
	Lengths      uint64 // piece lengths do not add up to the packet (corosync's exact-length rule)
	Overflow     uint64 // a sender's reassembly would pass 1 MiB + 64 KiB
	Continuation uint64 // continuation tag mismatch: throw-away mode entered
	Groups       uint64 // a reassembled message with a malformed group header
	// Straddle: this node's own message cut by a membership change could not be matched to
	// its record, so it was not queued again (it is then lost where the old ring was not).
	Straddle uint64
}

func (f *framing) dropped() uint64 {
	d := f.drops
	return d.Short + d.Lengths + d.Overflow + d.Continuation + d.Groups + d.Straddle
}

// frame prefixes body with the group header for one group.
func frame(group string, body []byte) []byte {
	b := make([]byte, 0, framedLen(group, body))
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(group)))
	b = append(b, group...)
	return append(b, body...)
}

// appendGroupHeader appends the group header of a message sent to one group.
func appendGroupHeader(dst []byte, group string) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, 1)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(group)))
	return append(dst, group...)
}

// framedLen is len(frame(group, body)), known without building the frame.
func framedLen(group string, body []byte) int { return 4 + len(group) + len(body) }

// parseGroups splits a reassembled message into its group names and body.
func parseGroups(msg []byte, swapped bool) (groups []string, body []byte, err error) {
	bo := order(swapped)
	if len(msg) < 2 {
		return nil, nil, errors.New("group header truncated")
	}
	n := int(bo.Uint16(msg))
	if n == 0 || len(msg) < 2+2*n {
		return nil, nil, fmt.Errorf("group count %d for %d bytes", n, len(msg))
	}
	off := 2 + 2*n
	for i := 0; i < n; i++ {
		l := int(bo.Uint16(msg[2+2*i:]))
		if off+l > len(msg) {
			return nil, nil, errors.New("group names overrun the message")
		}
		groups = append(groups, string(msg[off:off+l]))
		off += l
	}
	return groups, msg[off:], nil
}

// serviceGroup is parseGroups for the receive path: it validates the header the same way but
// returns only the first group the stack serves ("a" or "sync"; "" when none), without
// allocating the names.
func serviceGroup(msg []byte, swapped bool) (group string, body []byte, err error) {
	bo := order(swapped)
	if len(msg) < 2 {
		return "", nil, errors.New("group header truncated")
	}
	n := int(bo.Uint16(msg))
	if n == 0 || len(msg) < 2+2*n {
		return "", nil, fmt.Errorf("group count %d for %d bytes", n, len(msg))
	}
	off := 2 + 2*n
	for i := 0; i < n; i++ {
		l := int(bo.Uint16(msg[2+2*i:]))
		if off+l > len(msg) {
			return "", nil, errors.New("group names overrun the message")
		}
		if group == "" {
			switch name := msg[off : off+l]; {
			case string(name) == "a":
				group = "a"
			case string(name) == "sync":
				group = "sync"
			}
		}
		off += l
	}
	return group, msg[off:], nil
}

func order(swapped bool) binary.ByteOrder {
	if swapped {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// packetsFor is how many srp messages a message of n framed bytes needs at worst: a flush of
// what is staged, plus its pieces.
func (f *framing) packetsFor(n int) int {
	piece := f.dataMax - 2
	return 1 + (n+piece-1)/piece
}

// send frames and queues one message; errFramingBusy when srp cannot take all its packets.
func (f *framing) send(p *srp.Processor, now time.Duration, group string, body []byte, g srp.Guarantee) error {
	f.usePack(p.WaitingTransAck())
	// Room is checked before framing: under a flood most attempts find the queue full, and
	// building the frame first cost an allocation and a copy of the body per refusal.
	if p.QueueRoom() < f.packetsFor(framedLen(group, body)) {
		return errFramingBusy
	}
	return f.addFramed(p, now, group, body, g)
}

// sendHead queues one message made of head (group header included) followed by body, without
// joining them first; errFramingBusy when srp cannot take all its packets.
func (f *framing) sendHead(p *srp.Processor, now time.Duration, head, body []byte, g srp.Guarantee) error {
	if p.QueueRoom() < f.packetsFor(len(head)+len(body)) {
		return errFramingBusy
	}
	return f.addParts(p, now, head, body, g)
}

// addFramed is add(frame(group, body)) without building the frame: the group header is laid
// into the packet straight from a small array, the body straight from the caller's slice.
func (f *framing) addFramed(p *srp.Processor, now time.Duration, group string, body []byte, g srp.Guarantee) error {
	var hdr [4 + 255]byte
	if len(group) > 255 {
		return f.add(p, now, frame(group, body), g)
	}
	binary.LittleEndian.PutUint16(hdr[0:], 1)
	binary.LittleEndian.PutUint16(hdr[2:], uint16(len(group)))
	n := copy(hdr[4:], group)
	return f.addParts(p, now, hdr[:4+n], body, g)
}

// sendAll queues several bodies for one group, all or nothing.
func (f *framing) sendAll(p *srp.Processor, now time.Duration, group string, bodies [][]byte, g srp.Guarantee) error {
	f.usePack(p.WaitingTransAck())
	// Room first, frames after: a refused flood attempt then allocates nothing here.
	need := 0
	for _, b := range bodies {
		need += f.packetsFor(framedLen(group, b))
	}
	if p.QueueRoom() < need {
		return ErrBusy
	}
	for _, b := range bodies {
		if err := f.addFramed(p, now, group, b, g); err != nil {
			return err
		}
	}
	return nil
}

// sendPriority queues a service message that must not be refused: when srp's queue is full it
// waits in the overflow list, which flush drains first.
func (f *framing) sendPriority(p *srp.Processor, now time.Duration, group string, body []byte) error {
	f.usePack(p.WaitingTransAck())
	msg := frame(group, body)
	if len(f.overflow) == 0 && p.QueueRoom() >= f.packetsFor(len(msg)) {
		return f.add(p, now, msg, srp.Agreed)
	}
	if len(f.overflow) >= overflowMax {
		return errors.New("stack: framing: service overflow full")
	}
	f.overflow = append(f.overflow, pending{msg: msg, g: srp.Agreed})
	return nil
}

// add packs msg: staged with earlier small messages of the same guarantee when it fits,
// otherwise cut into pieces that fill packets.
func (f *framing) add(p *srp.Processor, now time.Duration, msg []byte, g srp.Guarantee) error {
	return f.addParts(p, now, nil, msg, g)
}

// addParts is add for the message head followed by body.
func (f *framing) addParts(p *srp.Processor, now time.Duration, head, body []byte, g srp.Guarantee) error {
	origHead, origBody, cut := head, body, false
	if len(f.stagedLens) > 0 && f.stagedG != g {
		if err := f.emitStaged(p, now, 0); err != nil {
			return err
		}
	}
	for {
		room := f.dataMax - 2*(len(f.stagedLens)+1) - len(f.staged)
		if n := len(head) + len(body); n <= room {
			f.stagedG = g
			f.staged = append(f.staged, head...)
			f.staged = append(f.staged, body...)
			f.stagedLens = append(f.stagedLens, uint16(n))
			return nil
		}
		if room <= 0 {
			if err := f.emitStaged(p, now, 0); err != nil {
				return err
			}
			continue
		}
		// The message continues in the next packet: this one ends with a fragment.
		f.stagedG = g
		h := min(room, len(head))
		pieceHead, pieceBody := head[:h], body[:room-h]
		head, body = head[h:], body[room-h:]
		// A piece alone in its packet (every fragment of a large message but its first and
		// last) goes from the caller's slices straight into srp's datagram: staging it was
		// a second copy of every byte (8 KiB flood profile: memmove a sixth of the sender).
		alone := len(f.stagedLens) == 0
		if !alone {
			f.staged = append(append(f.staged, pieceHead...), pieceBody...)
		}
		f.stagedLens = append(f.stagedLens, uint16(room))
		f.fragTag++
		if f.fragTag == 0 {
			f.fragTag = 1
		}
		if !f.packTrans {
			if !cut {
				cut = true
				if len(f.splits) >= splitsMax {
					f.popSplit(true)
				}
				f.pushSplit(split{framed: append(append(f.spareSplit(), origHead...), origBody...), g: g})
			}
			f.splits[len(f.splits)-1].lastTag = f.fragTag
		}
		if alone {
			if err := f.emitPiece(p, now, f.fragTag, pieceHead, pieceBody); err != nil {
				return err
			}
		} else if err := f.emitStaged(p, now, f.fragTag); err != nil {
			return err
		}
	}
}

// emitStaged sends the staged packet with the given fragmented tag (0: the last message is
// complete).
func (f *framing) emitStaged(p *srp.Processor, now time.Duration, fragmented uint8) error {
	if len(f.stagedLens) == 0 {
		return nil
	}
	return f.emitPiece(p, now, fragmented, f.staged, nil)
}

// emitPiece sends the staged packet whose pieces are a followed by b (the staged bytes, or
// the one piece addParts did not stage) and empties the stage.
func (f *framing) emitPiece(p *srp.Processor, now time.Duration, fragmented uint8, a, b []byte) error {
	if err := p.SendParts(now, f.stagedHead(fragmented), a, b, f.stagedG); err != nil {
		if len(f.staged) == 0 && len(a)+len(b) > 0 {
			// Keep the piece staged, as emitStaged leaves an unsent packet.
			f.staged = append(append(f.staged, a...), b...)
		}
		return err
	}
	f.continueTag = fragmented
	f.staged = f.staged[:0]
	f.stagedLens = f.stagedLens[:0]
	return nil
}

// buildStaged lays out the staged packet (totem-wire.md §9): version and type 0, the
// fragmented and continuation tags, the piece count, the length array, the pieces.
func (f *framing) buildStaged(fragmented uint8) []byte {
	return append(f.stagedHead(fragmented), f.staged...)
}

// stagedHead is the staged packet up to its pieces (emitStaged hands srp the head and the
// pieces apart, so they are copied once, into srp's datagram).
func (f *framing) stagedHead(fragmented uint8) []byte {
	pkt := f.scratch[:0]
	pkt = binary.LittleEndian.AppendUint16(pkt, 0)
	pkt = binary.LittleEndian.AppendUint16(pkt, 0)
	pkt = append(pkt, fragmented, f.continueTag)
	pkt = binary.LittleEndian.AppendUint16(pkt, uint16(len(f.stagedLens)))
	for _, l := range f.stagedLens {
		pkt = binary.LittleEndian.AppendUint16(pkt, l)
	}
	f.scratch = pkt
	return pkt
}

// kick sends the staged packet at once when srp has nothing queued: packing only pays while
// messages wait anyway, and on an idle ring the queued message is what cancels the token hold.
func (f *framing) kick(p *srp.Processor, now time.Duration) (sent bool) {
	f.usePack(p.WaitingTransAck())
	if len(f.stagedLens) == 0 {
		return false
	}
	if room := p.QueueRoom(); room > f.idleRoom {
		f.idleRoom = room
	}
	if p.QueueRoom() >= f.idleRoom {
		return f.emitStaged(p, now, 0) == nil
	}
	return false
}

// flush runs from srp's token callback: overflowed service messages first, then the staged
// packet, so nothing small waits longer than one token visit.
func (f *framing) flush(p *srp.Processor, now time.Duration) {
	f.usePack(p.WaitingTransAck())
	n := 0
	for _, o := range f.overflow {
		if p.QueueRoom() < f.packetsFor(len(o.msg)) {
			break
		}
		if f.add(p, now, o.msg, o.g) != nil {
			break
		}
		n++
	}
	f.overflow = slices.Delete(f.overflow, 0, n)
	if len(f.stagedLens) > 0 && p.QueueRoom() > 0 {
		_ = f.emitStaged(p, now, 0)
	}
}

// deliver reassembles one ordered srp message and calls fn for each complete application
// message, with its first group and the body after the group header.
func (f *framing) deliver(m *srp.Message, fn func(sender srp.NodeID, group string, body []byte, swapped bool)) {
	pl := m.Payload
	bo := order(m.Endian)
	if len(pl) < pgHeaderSize {
		f.drops.Short++
		return
	}
	fragmented, continuation := pl[4], pl[5]
	count := int(bo.Uint16(pl[6:]))
	if len(pl) < pgHeaderSize+2*count {
		f.drops.Short++
		return
	}
	total := 0
	for i := 0; i < count; i++ {
		total += int(bo.Uint16(pl[pgHeaderSize+2*i:]))
	}
	data := pl[pgHeaderSize+2*count:]
	if total != len(data) || count == 0 {
		f.drops.Lengths++
		return
	}
	if m.Sender == f.self && !f.recvTrans && continuation != 0 && len(f.splits) > 0 &&
		f.splits[0].lastTag == continuation && !(fragmented != 0 && count == 1) {
		f.popSplit(true) // its last piece is here: no longer in flight
	}
	a := f.senders[m.Sender]
	if a == nil {
		a = &assembly{}
		f.senders[m.Sender] = a
	}
	if len(a.buf)+len(data) > maxAssembly {
		// A sender that never finishes a message cannot make us grow without bound.
		f.drops.Overflow++
		a.buf, a.lastFrag, a.throwAway = a.buf[:0], 0, true
		return
	}
	complete := count
	if fragmented != 0 {
		complete--
	}
	deliverNow := false
	switch {
	case continuation == 0 && (a.throwAway || a.lastFrag != 0):
		// The packet starts with a whole message while a head is pending (or the sender's
		// stream is being thrown away): the sender restarted its stream, as gototem's
		// straddle does when it sends a message cut by a ring change with joiners again
		// whole. What is pending can never be completed: forget it and read the packet. A
		// corosync sender never does this (it continues a cut message), and corosync
		// would throw the packet away with what follows; a gototem member of the sender's
		// old ring reads it like the members new to the sender.
		a.buf, a.throwAway = a.buf[:0], false
		a.lastFrag = fragmented
		deliverNow = true
	case a.throwAway:
		// corosync leaves throw-away mode on a packet whose fragmented field is 0 or 1, and
		// delivers nothing from that packet either.
		if fragmented == 0 || fragmented == 1 {
			a.throwAway = false
		}
	case continuation == a.lastFrag:
		a.lastFrag = fragmented
		deliverNow = true
	default:
		a.throwAway = true
		f.drops.Continuation++
	}
	if deliverNow {
		// Only the first piece can continue an earlier packet (its head waits in a.buf) and
		// only the last can be continued by a later one: every other piece is read in place,
		// so an unfragmented message is never copied here.
		off := 0
		for i := 0; i < complete; i++ {
			l := int(bo.Uint16(pl[pgHeaderSize+2*i:]))
			msg := data[off : off+l]
			if i == 0 && len(a.buf) > 0 {
				a.buf = append(a.buf, msg...)
				msg = a.buf
			}
			off += l
			group, body, err := serviceGroup(msg, m.Endian)
			if err != nil {
				f.drops.Groups++
				continue
			}
			if group != "" {
				fn(m.Sender, group, body, m.Endian)
			}
		}
		if fragmented != 0 {
			// Keep the trailing partial piece for the next packet.
			if complete > 0 {
				a.buf = a.buf[:0]
			}
			a.buf = append(a.buf, data[off:]...)
			return
		}
	}
	if fragmented == 0 || !deliverNow {
		// Complete, or throw-away: keep nothing, so a later continuation has nothing stale.
		a.buf = a.buf[:0]
	}
	if fragmented == 0 {
		// corosync frees the sender's assembly at the end of every packet that ends with a
		// whole message, and the next packet takes a fresh one: throw-away mode ends too.
		a.lastFrag, a.throwAway = 0, false
	}
}

// reset forgets reassembly state of senders that are gone after a regular configuration.
func (f *framing) reset(c *srp.Configuration) {
	if c.Kind != srp.Regular {
		return
	}
	for id := range f.senders {
		if !slices.Contains(c.Members, id) {
			delete(f.senders, id)
		}
	}
	for id := range f.otherSenders {
		if !slices.Contains(c.Members, id) {
			delete(f.otherSenders, id)
		}
	}
}

// normalSenders is the normal reassembly set, whichever set is in use.
func (f *framing) normalSenders() map[srp.NodeID]*assembly {
	if f.recvTrans {
		if f.otherSenders == nil {
			f.otherSenders = map[srp.NodeID]*assembly{}
		}
		return f.otherSenders
	}
	return f.senders
}

// restartAssemblies runs at every regular configuration, after straddle or continueCut:
// every member forgets the partial messages of the senders that joined it (from another
// ring: what it holds of theirs is older than anything they continue now), so all members of
// the new ring read each joined sender's next packets from the same state. The senders of its
// own old ring it goes on reading: a gototem sender in a declared gototem-only ring sends a
// cut message again whole (a restart, continuation 0, which deliver reads), any other
// continues it, which only members of the old ring can reassemble, as corosync's do.
// Restarting every sender made a gototem member of a corosync sender's old ring throw the
// continuation away, with the messages after it, where the corosync members delivered them.
// Without any restart, members new to the sender threw its next packets away (the
// full-stack campaign, seed 61: n1 lost n2's next six messages after a merge, n3 and n5
// delivered them).
func (f *framing) restartAssemblies(joined []srp.NodeID) {
	for id, a := range f.normalSenders() {
		if slices.Contains(joined, id) {
			a.buf, a.lastFrag, a.throwAway = a.buf[:0], 0, false
		}
	}
}

// continueCut runs at a regular configuration instead of straddle when the ring has no
// joined members or may hold corosync nodes (Stack.onConfiguration): the rest of a cut
// message of this node's goes out as it is queued, continuing the head the members of its
// old ring delivered there. It only counts.
func (f *framing) continueCut() {
	a := f.normalSenders()[f.self]
	if a != nil && !a.throwAway && (len(a.buf) > 0 || a.lastFrag != 0) && len(f.splits) > 0 {
		f.cuts.continued++
	}
}

// straddle runs at a regular configuration with joined members in a gototem-only ring
// (Config.GototemRing), before restartAssemblies: when this node's own normal stream has a
// message whose first pieces were delivered in the old ring and whose rest waits in srp's
// queue (or in the packet being filled), the rest is taken out and the whole message queued
// again in front, in fresh packets, so that every member of the new ring delivers it, in its
// place, after the sync. corosync continues the cut message, which only the members of the
// old ring can reassemble.
func (f *framing) straddle(p *srp.Processor) {
	a := f.normalSenders()[f.self]
	if a == nil || a.throwAway || (len(a.buf) == 0 && a.lastFrag == 0) || len(f.splits) == 0 {
		return
	}
	sp := f.splits[0]
	if !bytes.HasPrefix(sp.framed, a.buf) {
		f.drops.Straddle++
		return
	}
	f.popSplit(false) // sp.framed lives on in the requeued packets' source below
	f.usePack(false)
	tag := a.lastFrag
	q := p.TakeQueued()
	kept := q[:0]
	for _, m := range q {
		pkt := m.Payload
		if tag == 0 || len(pkt) < pgHeaderSize || pkt[5] != tag {
			kept = append(kept, m)
			tag = 0
			continue
		}
		fragmented, count := pkt[4], int(binary.LittleEndian.Uint16(pkt[6:]))
		if count <= 1 {
			// Nothing but the cut message's rest: the packet goes; a fragmented one passes
			// the rest on to the next.
			tag = fragmented
			continue
		}
		m.Payload = dropFirstPiece(pkt)
		kept = append(kept, m)
		tag = 0
	}
	if tag != 0 && f.continueTag == tag && len(f.stagedLens) > 0 {
		n := int(f.stagedLens[0])
		f.staged = append(f.staged[:0], f.staged[n:]...)
		f.stagedLens = append(f.stagedLens[:0], f.stagedLens[1:]...)
		f.continueTag = 0
	}
	whole := f.wholePackets(sp.framed, sp.g)
	if n := len(whole); n > 1 {
		// The message is cut across packets again: the next change may fall between them
		// too (full-stack campaign seed 2900), so it stays first among the splits.
		sp.lastTag = whole[n-1].Payload[5]
		f.splits = append([]split{sp}, f.splits...)
	}
	f.cuts.requeued++
	p.Requeue(append(whole, kept...))
	// This node's own stream restarts with the message (continuation 0), and the head is no
	// longer a cut in flight: a second change before the packets go out must not queue the
	// message a third time (full-stack campaign, seed 1673: n4 delivered twice).
	a.buf, a.lastFrag, a.throwAway = a.buf[:0], 0, false
}

// dropFirstPiece returns a copy of the totempg packet pkt without its first piece, which no
// longer continues anything (continuation 0). pkt has at least two pieces.
func dropFirstPiece(pkt []byte) []byte {
	count := int(binary.LittleEndian.Uint16(pkt[6:]))
	first := int(binary.LittleEndian.Uint16(pkt[pgHeaderSize:]))
	out := make([]byte, 0, len(pkt)-2-first)
	out = append(out, pkt[:5]...)
	out = append(out, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(count-1))
	out = append(out, pkt[pgHeaderSize+2:pgHeaderSize+2*count]...)
	return append(out, pkt[pgHeaderSize+2*count+first:]...)
}

// wholePackets cuts one framed message into self-contained packets: the first continues
// nothing, the last ends it, fresh fragment tags between.
func (f *framing) wholePackets(msg []byte, g srp.Guarantee) []srp.QueuedMessage {
	var out []srp.QueuedMessage
	cont := uint8(0)
	for len(msg) > 0 {
		n := min(len(msg), f.dataMax-2)
		frag := uint8(0)
		if n < len(msg) {
			f.fragTag++
			if f.fragTag == 0 {
				f.fragTag = 1
			}
			frag = f.fragTag
		}
		pkt := make([]byte, 0, pgHeaderSize+2+n)
		pkt = binary.LittleEndian.AppendUint16(pkt, 0)
		pkt = binary.LittleEndian.AppendUint16(pkt, 0)
		pkt = append(pkt, frag, cont)
		pkt = binary.LittleEndian.AppendUint16(pkt, 1)
		pkt = binary.LittleEndian.AppendUint16(pkt, uint16(n))
		pkt = append(pkt, msg[:n]...)
		out = append(out, srp.QueuedMessage{Payload: pkt, Guarantee: g})
		msg, cont = msg[n:], frag
	}
	return out
}
