package srp

// The wire codec: turns the six corosync 3.1 totemsrp message types into datagrams and back
// (layouts in docs/reference/totem-wire.md §3–§5).
//
// Byte order: corosync writes every field in the sender's native order and marks it with the
// magic 0xC070, so a receiver that reads the magic as 0x70C0 swaps. gototem always encodes
// little-endian (what every x86-64/aarch64 corosync sends) and decodes both orders into
// host values; "swapped" below always means "sent big-endian", whatever the host. Unlike corosync, the decoder also swaps TOKEN_HOLD_CANCEL's ring id and every
// commit-token member entry: corosync's raw compare / conditional swap there are quirks
// (§2) that only make cross-endian rings misbehave.
//
// Safety: a datagram comes from the network, so no count in it is trusted. Every count is
// bounded by the protocol limit before it is used and checked against the datagram length,
// and no decoder can panic or allocate more than the bounded lists. A decoder validates
// the whole datagram before it writes anything, so on error the destination keeps its old
// value. Decoding into a value that already holds lists of the needed capacity, and
// encoding into a buffer with room, allocate nothing: the receive path makes no garbage.
// (Errors do allocate; a flood of bad datagrams costs one small allocation per drop.)
//
// Like corosync, decoders accept bytes after the message's declared end and ignore them
// (an MCAST's payload is, by definition, everything after its header). Re-encoding a
// decoded message reproduces the original bytes for any datagram without such a tail that
// was sent little-endian; Header.TargetNodeID and Mcast.NodeIDZero are kept for that
// reason even though the protocol never reads them.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Sentinel reasons carried by a *DecodeError; test with errors.Is.
var (
	ErrTooShort   = errors.New("too short")
	ErrBadMagic   = errors.New("bad magic")
	ErrBadVersion = errors.New("bad version")
	ErrBadType    = errors.New("bad type")
	// ErrBadLength: a count in the message does not fit the datagram or exceeds a protocol
	// bound (rtr_list_entries > 30, more than ProcessorCountMax list entries, a negative
	// count, memb_index past addr_entries).
	ErrBadLength = errors.New("bad length")
	ErrTooLarge  = errors.New("too large")
)

// DecodeError is the only error type the decoders return. Type is the header's type byte,
// or TypeUnknown when the datagram is shorter than a header or its magic says it is not
// corosync 3 Totem; Reason wraps one of the Err* sentinels with the detail that explains it.
type DecodeError struct {
	Type   MessageType
	Reason error
}

// TypeUnknown marks a DecodeError for a datagram without a meaningful type byte. It is not
// a wire value.
const TypeUnknown MessageType = 0xFF

func (e *DecodeError) Error() string {
	if e.Type == TypeUnknown {
		return "srp: decode: " + e.Reason.Error()
	}
	return "srp: decode " + e.Type.String() + ": " + e.Reason.Error()
}

func (e *DecodeError) Unwrap() error { return e.Reason }

// String names the type as gototem's tools print it.
func (t MessageType) String() string {
	switch t {
	case TypeORFToken:
		return "orf"
	case TypeMcast:
		return "mcast"
	case TypeMergeDetect:
		return "merge_detect"
	case TypeJoin:
		return "join"
	case TypeCommitToken:
		return "commit"
	case TypeTokenHoldCancel:
		return "hold_cancel"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Limits the decoders enforce beyond the fixed sizes in wire.go.
const (
	// ORFTokenMaxBytes: corosync 3.1.10 drops longer tokens; a valid one is at most 537.
	ORFTokenMaxBytes = 1500
	// McastMaxBytes: totemsrp never handles an MCAST whose body exceeds FRAME_SIZE_MAX.
	McastMaxBytes = FrameSizeMax + McastHeaderSize
)

func decodeErr(t MessageType, sentinel error, format string, args ...any) *DecodeError {
	return &DecodeError{Type: t, Reason: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// Swapped reports whether the datagram's magic says the sender wrote the opposite
// (big-endian) byte order. The state machine stores MCASTs as received and asks again at
// delivery time, as corosync does, to set Message.Endian for the upper layer.
func Swapped(b []byte) bool {
	return len(b) >= 2 && b[0] == 0xC0 && b[1] == 0x70
}

// PeekHeader validates the parts of the header every message shares — length ≥ 13, magic
// in either order, version 3, type 0..5 — in the order corosync's receive path checks them
// (§7), and returns the header in host order.
func PeekHeader(b []byte) (h Header, swapped bool, err error) {
	if len(b) < HeaderSize {
		return Header{}, false, decodeErr(TypeUnknown, ErrTooShort, "%d bytes, header needs %d", len(b), HeaderSize)
	}
	switch {
	case b[0] == 0x70 && b[1] == 0xC0:
	case b[0] == 0xC0 && b[1] == 0x70:
		swapped = true
	default:
		// Not a corosync 3 datagram, so its fourth byte says nothing about a type.
		return Header{}, false, decodeErr(TypeUnknown, ErrBadMagic, "0x%02x%02x (%s)", b[0], b[1], magicGuess(b))
	}
	if b[2] != Version {
		return Header{}, swapped, decodeErr(MessageType(b[3]), ErrBadVersion, "%d, want %d", b[2], Version)
	}
	if b[3] > uint8(TypeTokenHoldCancel) {
		return Header{}, swapped, decodeErr(MessageType(b[3]), ErrBadType, "type byte %d is not a totem message", b[3])
	}
	r := wireReader{b: b, swapped: swapped}
	h = Header{
		Type:         MessageType(b[3]),
		Encapsulated: b[4],
		NodeID:       NodeID(r.u32(5)),
		TargetNodeID: r.u32(9),
	}
	return h, swapped, nil
}

// magicGuess names the likely sender of a foreign datagram the way corosync logs it, so an
// operator can tell a corosync 2 node or a knet peer on the port from random garbage.
func magicGuess(b []byte) string {
	switch {
	case b[0] == 0xFF && b[1] == 0xFF:
		return "probably corosync 2.2"
	case b[0] == 0xFE && b[1] == 0xFE:
		return "probably corosync 2.3+"
	case b[0] == 0x01:
		return "probably unencrypted kronosnet"
	case b[0] <= 0x05:
		return "probably unencrypted corosync 2.0/2.1/1.x/openais"
	}
	return "encrypted or unknown sender"
}

// wireReader reads fields at fixed offsets in the sender's byte order. Callers have checked
// the length first, so the accesses are in bounds.
type wireReader struct {
	b       []byte
	swapped bool
}

func (r wireReader) u32(off int) uint32 {
	if r.swapped {
		return binary.BigEndian.Uint32(r.b[off:])
	}
	return binary.LittleEndian.Uint32(r.b[off:])
}

func (r wireReader) u64(off int) uint64 {
	if r.swapped {
		return binary.BigEndian.Uint64(r.b[off:])
	}
	return binary.LittleEndian.Uint64(r.b[off:])
}

func (r wireReader) ringID(off int) RingID {
	return RingID{Rep: NodeID(r.u32(off)), Seq: r.u64(off + 4)}
}

// checkHeader checks the shared header and that it announces want.
func checkHeader(b []byte, want MessageType) (Header, wireReader, error) {
	h, swapped, err := PeekHeader(b)
	if err != nil {
		return h, wireReader{}, err
	}
	if h.Type != want {
		return h, wireReader{}, decodeErr(h.Type, ErrBadType, "decoding as %s", want)
	}
	return h, wireReader{b: b, swapped: swapped}, nil
}

func needBytes(b []byte, t MessageType, need int, what string) error {
	if len(b) < need {
		return decodeErr(t, ErrTooShort, "%d bytes, %s needs %d", len(b), what, need)
	}
	return nil
}

// Little-endian appenders; the encoders grow dst once to EncodedLen so these never allocate.

func appendHeader(dst []byte, t MessageType, h *Header) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, Magic)
	dst = append(dst, Version, byte(t), h.Encapsulated)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.NodeID))
	return binary.LittleEndian.AppendUint32(dst, h.TargetNodeID)
}

func appendRingID(dst []byte, r RingID) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(r.Rep))
	return binary.LittleEndian.AppendUint64(dst, r.Seq)
}

func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }

// ---------------------------------------------------------------------------------------
// ORF token (type 0)

// EncodedLen is the datagram size of the token: 57 + 16 per rtr item.
func (t *ORFToken) EncodedLen() int { return ORFTokenSize + RTRItemSize*len(t.RTRList) }

// Decode fills t from a whole datagram, reusing t.RTRList's backing array.
func (t *ORFToken) Decode(b []byte) error {
	h, r, err := checkHeader(b, TypeORFToken)
	if err != nil {
		return err
	}
	if err := needBytes(b, TypeORFToken, ORFTokenSize, "token"); err != nil {
		return err
	}
	if len(b) > ORFTokenMaxBytes {
		return decodeErr(TypeORFToken, ErrTooLarge, "%d bytes, limit %d", len(b), ORFTokenMaxBytes)
	}
	n := int32(r.u32(53))
	if n < 0 || n > RetransmitEntriesMax {
		return decodeErr(TypeORFToken, ErrBadLength, "rtr_list_entries %d outside 0..%d", n, RetransmitEntriesMax)
	}
	if need := ORFTokenSize + RTRItemSize*int(n); len(b) < need {
		return decodeErr(TypeORFToken, ErrBadLength, "%d bytes, %d rtr items need %d", len(b), n, need)
	}
	t.Header = h
	t.Seq = r.u32(13)
	t.TokenSeq = r.u32(17)
	t.ARU = r.u32(21)
	t.ARUAddr = NodeID(r.u32(25))
	t.RingID = r.ringID(29)
	t.Backlog = r.u32(41)
	t.FCC = r.u32(45)
	t.RetransFlg = int32(r.u32(49))
	t.RTRList = t.RTRList[:0]
	for i := range int(n) {
		off := ORFTokenSize + RTRItemSize*i
		t.RTRList = append(t.RTRList, RTRItem{RingID: r.ringID(off), Seq: r.u32(off + 12)})
	}
	return nil
}

// AppendEncode appends the little-endian datagram. rtr_list_entries is len(t.RTRList): the
// caller keeps it within RetransmitEntriesMax (peers drop longer tokens).
func (t *ORFToken) AppendEncode(dst []byte) []byte {
	dst = slices.Grow(dst, t.EncodedLen())
	dst = appendHeader(dst, TypeORFToken, &t.Header)
	dst = appendU32(dst, t.Seq)
	dst = appendU32(dst, t.TokenSeq)
	dst = appendU32(dst, t.ARU)
	dst = appendU32(dst, uint32(t.ARUAddr))
	dst = appendRingID(dst, t.RingID)
	dst = appendU32(dst, t.Backlog)
	dst = appendU32(dst, t.FCC)
	dst = appendU32(dst, uint32(t.RetransFlg))
	dst = appendU32(dst, uint32(len(t.RTRList)))
	for i := range t.RTRList {
		dst = appendRingID(dst, t.RTRList[i].RingID)
		dst = appendU32(dst, t.RTRList[i].Seq)
	}
	return dst
}

// ---------------------------------------------------------------------------------------
// MCAST (type 1)

// EncodedLen is 45 + the payload length.
func (m *Mcast) EncodedLen() int { return McastHeaderSize + len(m.Payload) }

// Decode fills m from a whole datagram. m.Payload aliases b: the caller must not reuse b
// while m's payload is in use.
func (m *Mcast) Decode(b []byte) error {
	h, r, err := checkHeader(b, TypeMcast)
	if err != nil {
		return err
	}
	if err := needBytes(b, TypeMcast, McastHeaderSize, "mcast header"); err != nil {
		return err
	}
	if len(b) > McastMaxBytes {
		return decodeErr(TypeMcast, ErrTooLarge, "%d bytes, limit %d", len(b), McastMaxBytes)
	}
	m.Header = h
	m.SystemFrom = NodeID(r.u32(13))
	m.Seq = r.u32(17)
	m.ThisSeqno = int32(r.u32(21))
	m.RingID = r.ringID(25)
	m.NodeIDZero = r.u32(37)
	m.Guarantee = Guarantee(int32(r.u32(41)))
	m.Payload = b[McastHeaderSize:len(b):len(b)]
	return nil
}

// AppendEncode appends the little-endian datagram; Header.Encapsulated is written as held
// (Encapsulated or NotEncapsulated).
func (m *Mcast) AppendEncode(dst []byte) []byte {
	dst = slices.Grow(dst, m.EncodedLen())
	dst = appendHeader(dst, TypeMcast, &m.Header)
	dst = appendU32(dst, uint32(m.SystemFrom))
	dst = appendU32(dst, m.Seq)
	dst = appendU32(dst, uint32(m.ThisSeqno))
	dst = appendRingID(dst, m.RingID)
	dst = appendU32(dst, m.NodeIDZero)
	dst = appendU32(dst, uint32(m.Guarantee))
	return append(dst, m.Payload...)
}

// ---------------------------------------------------------------------------------------
// MEMB_MERGE_DETECT (type 2)

// EncodedLen is always 29.
func (d *MergeDetect) EncodedLen() int { return MergeDetectSize }

// Decode fills d from a whole datagram.
func (d *MergeDetect) Decode(b []byte) error {
	h, r, err := checkHeader(b, TypeMergeDetect)
	if err != nil {
		return err
	}
	if err := needBytes(b, TypeMergeDetect, MergeDetectSize, "merge detect"); err != nil {
		return err
	}
	d.Header = h
	d.SystemFrom = NodeID(r.u32(13))
	d.RingID = r.ringID(17)
	return nil
}

// AppendEncode appends the little-endian datagram.
func (d *MergeDetect) AppendEncode(dst []byte) []byte {
	dst = slices.Grow(dst, MergeDetectSize)
	dst = appendHeader(dst, TypeMergeDetect, &d.Header)
	dst = appendU32(dst, uint32(d.SystemFrom))
	return appendRingID(dst, d.RingID)
}

// ---------------------------------------------------------------------------------------
// MEMB_JOIN / LEAVE (type 3)

// EncodedLen is 33 + 4 per proc and failed entry.
func (j *Join) EncodedLen() int { return JoinSize + 4*(len(j.ProcList)+len(j.FailedList)) }

// Decode fills j from a whole datagram, reusing ProcList's and FailedList's backing arrays.
// Each list is bounded by ProcessorCountMax (the size of corosync's own sets) and the
// datagram by JoinMaxBytes (the largest join a corosync sender builds).
func (j *Join) Decode(b []byte) error {
	h, r, err := checkHeader(b, TypeJoin)
	if err != nil {
		return err
	}
	if err := needBytes(b, TypeJoin, JoinSize, "join"); err != nil {
		return err
	}
	if len(b) > JoinMaxBytes {
		return decodeErr(TypeJoin, ErrTooLarge, "%d bytes, limit %d", len(b), JoinMaxBytes)
	}
	p, f := r.u32(17), r.u32(21)
	if p > ProcessorCountMax || f > ProcessorCountMax {
		return decodeErr(TypeJoin, ErrBadLength, "proc_list_entries %d / failed_list_entries %d exceed %d", p, f, ProcessorCountMax)
	}
	if need := JoinSize + 4*int(p+f); len(b) < need {
		return decodeErr(TypeJoin, ErrBadLength, "%d bytes, %d proc + %d failed entries need %d", len(b), p, f, need)
	}
	j.Header = h
	j.SystemFrom = NodeID(r.u32(13))
	j.RingSeq = r.u64(25)
	j.ProcList = readNodeIDs(j.ProcList[:0], r, JoinSize, int(p))
	j.FailedList = readNodeIDs(j.FailedList[:0], r, JoinSize+4*int(p), int(f))
	return nil
}

func readNodeIDs(dst []NodeID, r wireReader, off, n int) []NodeID {
	for i := range n {
		dst = append(dst, NodeID(r.u32(off+4*i)))
	}
	return dst
}

// AppendEncode appends the little-endian datagram (a LEAVE when Header.NodeID is 0).
func (j *Join) AppendEncode(dst []byte) []byte {
	dst = slices.Grow(dst, j.EncodedLen())
	dst = appendHeader(dst, TypeJoin, &j.Header)
	dst = appendU32(dst, uint32(j.SystemFrom))
	dst = appendU32(dst, uint32(len(j.ProcList)))
	dst = appendU32(dst, uint32(len(j.FailedList)))
	dst = binary.LittleEndian.AppendUint64(dst, j.RingSeq)
	for _, n := range j.ProcList {
		dst = appendU32(dst, uint32(n))
	}
	for _, n := range j.FailedList {
		dst = appendU32(dst, uint32(n))
	}
	return dst
}

// ---------------------------------------------------------------------------------------
// MEMB_COMMIT_TOKEN (type 4)

// EncodedLen is 41 + 28 per member (len(c.Addr)).
func (c *CommitToken) EncodedLen() int {
	return CommitTokenSize + (4+CommitMemberSize)*len(c.Addr)
}

// Decode fills c from a whole datagram, reusing Addr's and Members' backing arrays.
// addr_entries is bounded by ProcessorCountMax and memb_index by addr_entries (it indexes
// the member entry the receiver fills next), so the state machine can index with it.
func (c *CommitToken) Decode(b []byte) error {
	h, r, err := checkHeader(b, TypeCommitToken)
	if err != nil {
		return err
	}
	// Stricter than corosync 3.1, which lets a datagram shorter than the fixed part through.
	if err := needBytes(b, TypeCommitToken, CommitTokenSize, "commit token"); err != nil {
		return err
	}
	n := int32(r.u32(37))
	if n < 0 || n > ProcessorCountMax {
		return decodeErr(TypeCommitToken, ErrBadLength, "addr_entries %d outside 0..%d", n, ProcessorCountMax)
	}
	if need := CommitTokenSize + (4+CommitMemberSize)*int(n); len(b) < need {
		return decodeErr(TypeCommitToken, ErrBadLength, "%d bytes, %d members need %d", len(b), n, need)
	}
	idx := int32(r.u32(33))
	if idx < 0 || idx > n {
		return decodeErr(TypeCommitToken, ErrBadLength, "memb_index %d outside 0..addr_entries %d", idx, n)
	}
	c.Header = h
	c.TokenSeq = r.u32(13)
	c.RingID = r.ringID(17)
	c.RetransFlg = r.u32(29)
	c.MembIndex = idx
	c.Addr = readNodeIDs(c.Addr[:0], r, CommitTokenSize, int(n))
	c.Members = c.Members[:0]
	base := CommitTokenSize + 4*int(n)
	for i := range int(n) {
		off := base + CommitMemberSize*i
		c.Members = append(c.Members, CommitMember{
			RingID:        r.ringID(off),
			ARU:           r.u32(off + 12),
			HighDelivered: r.u32(off + 16),
			ReceivedFlg:   r.u32(off + 20),
		})
	}
	return nil
}

// AppendEncode appends the little-endian datagram. addr_entries is len(c.Addr); member
// entries missing from c.Members (len(Members) < len(Addr)) are written as zero, which is
// how corosync represents entries not yet filled in; extra ones are not written.
func (c *CommitToken) AppendEncode(dst []byte) []byte {
	dst = slices.Grow(dst, c.EncodedLen())
	dst = appendHeader(dst, TypeCommitToken, &c.Header)
	dst = appendU32(dst, c.TokenSeq)
	dst = appendRingID(dst, c.RingID)
	dst = appendU32(dst, c.RetransFlg)
	dst = appendU32(dst, uint32(c.MembIndex))
	dst = appendU32(dst, uint32(len(c.Addr)))
	for _, a := range c.Addr {
		dst = appendU32(dst, uint32(a))
	}
	for i := range c.Addr {
		var m CommitMember
		if i < len(c.Members) {
			m = c.Members[i]
		}
		dst = appendRingID(dst, m.RingID)
		dst = appendU32(dst, m.ARU)
		dst = appendU32(dst, m.HighDelivered)
		dst = appendU32(dst, m.ReceivedFlg)
	}
	return dst
}

// ---------------------------------------------------------------------------------------
// TOKEN_HOLD_CANCEL (type 5)

// EncodedLen is always 25.
func (h *TokenHoldCancel) EncodedLen() int { return TokenHoldCancelSize }

// Decode fills h from a whole datagram.
func (h *TokenHoldCancel) Decode(b []byte) error {
	hd, r, err := checkHeader(b, TypeTokenHoldCancel)
	if err != nil {
		return err
	}
	if err := needBytes(b, TypeTokenHoldCancel, TokenHoldCancelSize, "token hold cancel"); err != nil {
		return err
	}
	h.Header = hd
	h.RingID = r.ringID(13)
	return nil
}

// AppendEncode appends the little-endian datagram.
func (h *TokenHoldCancel) AppendEncode(dst []byte) []byte {
	dst = slices.Grow(dst, TokenHoldCancelSize)
	dst = appendHeader(dst, TypeTokenHoldCancel, &h.Header)
	return appendRingID(dst, h.RingID)
}
