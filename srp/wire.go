package srp

// Wire message types as corosync 3.1 lays them out (see docs/reference/totem-wire.md).
// The structs hold decoded, host-order values; Encode* functions write little-endian and
// Decode* functions accept both byte orders. Lists are slices so a decoder can reuse a
// value's backing arrays and decode without allocating.

// NodeID is a processor's identity. In corosync 3 the SRP address of a processor is its nodeid.
type NodeID uint32

// RingID names one ring: its representative (lowest nodeid) and its sequence number.
// corosync compares ring ids bytewise, which for the decoded form is field equality.
type RingID struct {
	Rep NodeID
	Seq uint64
}

// MessageType is the header's type byte.
type MessageType uint8

const (
	TypeORFToken        MessageType = 0
	TypeMcast           MessageType = 1
	TypeMergeDetect     MessageType = 2
	TypeJoin            MessageType = 3 // also LEAVE, with header nodeid 0
	TypeCommitToken     MessageType = 4
	TypeTokenHoldCancel MessageType = 5
)

// Header field values.
const (
	Magic            = 0xC070 // endian detector, written in the sender's byte order
	Version          = 3
	Encapsulated     = 1 // MCAST re-sent during recovery, payload is a whole old-ring MCAST
	NotEncapsulated  = 2
	LeaveDummyNodeID = 0 // header nodeid of a LEAVE
)

// Sizes of the fixed parts and protocol bounds.
const (
	HeaderSize           = 13
	ORFTokenSize         = 57 // + 16 per rtr item
	RTRItemSize          = 16
	McastHeaderSize      = 45
	MergeDetectSize      = 29
	JoinSize             = 33 // + 4 per proc and failed entry
	CommitTokenSize      = 41 // + 28 per member
	CommitMemberSize     = 24
	TokenHoldCancelSize  = 25
	RetransmitEntriesMax = 30
	ProcessorCountMax    = 384
	JoinMaxBytes         = 40000
	FrameSizeMax         = 65536 // largest MCAST totemsrp accepts
)

// Guarantee is the delivery guarantee an MCAST asks for (coroapi.h values).
type Guarantee int32

const (
	Agreed Guarantee = 0
	Safe   Guarantee = 1
)

// Header is the 13-byte totem_message_header. TargetNodeID is knet-only: sent as 0 and
// ignored on receive (udp/udpu fill it with stale bytes).
type Header struct {
	Type         MessageType
	Encapsulated uint8
	NodeID       NodeID
	TargetNodeID uint32
}

// RTRItem is one retransmission request carried by the ORF token.
type RTRItem struct {
	RingID RingID
	Seq    uint32
}

// ORFToken is the ordering, reliability and flow-control token (type 0).
type ORFToken struct {
	Header     Header
	Seq        uint32
	TokenSeq   uint32
	ARU        uint32
	ARUAddr    NodeID
	RingID     RingID
	Backlog    uint32
	FCC        uint32
	RetransFlg int32
	RTRList    []RTRItem // never more than RetransmitEntriesMax
}

// Mcast is a ring-ordered data message (type 1). Payload aliases the decoded datagram.
type Mcast struct {
	Header     Header
	SystemFrom NodeID
	Seq        uint32
	ThisSeqno  int32
	RingID     RingID
	NodeIDZero uint32 // the never-set node_id field; kept so re-encoding is byte-exact
	Guarantee  Guarantee
	Payload    []byte
}

// MergeDetect is sent by an idle ring's representative (type 2).
type MergeDetect struct {
	Header     Header
	SystemFrom NodeID
	RingID     RingID
}

// Join is a membership join (type 3); with Header.NodeID == 0 it is a LEAVE.
type Join struct {
	Header     Header
	SystemFrom NodeID
	RingSeq    uint64
	ProcList   []NodeID
	FailedList []NodeID
}

// IsLeave reports whether the join is the LEAVE sent on clean shutdown.
func (j *Join) IsLeave() bool { return j.Header.NodeID == LeaveDummyNodeID }

// CommitMember is a commit token's per-member entry: the member's previous ring and its
// recovery position there.
type CommitMember struct {
	RingID        RingID
	ARU           uint32
	HighDelivered uint32
	ReceivedFlg   uint32
}

// CommitToken is the membership commit token (type 4). Addr and Members have equal length;
// Members[i] belongs to Addr[i]. Addr is sorted ascending (the ring order).
type CommitToken struct {
	Header     Header
	TokenSeq   uint32
	RingID     RingID
	RetransFlg uint32
	MembIndex  int32
	Addr       []NodeID
	Members    []CommitMember
}

// TokenHoldCancel asks a representative holding the token to release it (type 5).
type TokenHoldCancel struct {
	Header Header
	RingID RingID
}
