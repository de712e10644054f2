package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Service 5's messages in totempg group "a" (votequorum.md §9). Each body starts with libqb's
// 16-byte request header: i32 id at 0, 4 bytes of padding, i32 size at 8, 4 bytes of padding,
// with id = (ServiceID << 16) | function. Multi-byte fields are in the sender's byte order;
// gototem writes little-endian, as every realistic peer does.

// NodeID is a corosync nodeid. It has srp.NodeID's meaning and width; quorum does not import srp
// so that it builds on its own (convert with quorum.NodeID(id)). 0 names the quorum device.
type NodeID uint32

// RingID is a totem ring id (representative and sequence), as srp.RingID.
type RingID struct {
	Rep NodeID
	Seq uint64
}

// ServiceID is votequorum's corosync service number.
const ServiceID = 5

// Function numbers of the four votequorum exec messages.
const (
	FnNodeInfo           = 0
	FnReconfigure        = 1
	FnQdeviceReg         = 2
	FnQdeviceReconfigure = 3
)

// Body sizes, including the trailing padding that the 8-byte-aligned header forces.
const (
	qbHeaderSize           = 16
	NodeInfoSize           = 32
	ReconfigureSize        = 32
	QdeviceRegSize         = 280
	QdeviceReconfigureSize = 528
	// QdeviceNameMax is the longest device name: 255 bytes with the terminating NUL.
	QdeviceNameMax   = 254
	qdeviceNameField = 255
)

// QdeviceNodeID is the nodeid a NODEINFO about the quorum device carries.
const QdeviceNodeID NodeID = 0

// NodeFlags is the flags word of a NODEINFO (votequorum.md §10.1).
type NodeFlags uint32

const (
	FlagQuorate           NodeFlags = 1
	FlagLeaving           NodeFlags = 2
	FlagWFAStatus         NodeFlags = 4
	FlagFirst             NodeFlags = 8
	FlagQdeviceRegistered NodeFlags = 16
	FlagQdeviceAlive      NodeFlags = 32
	FlagQdeviceCastVote   NodeFlags = 64
	FlagQdeviceMasterWins NodeFlags = 128
)

// ReconfigParam is the param byte of a RECONFIGURE.
type ReconfigParam uint8

const (
	ParamExpectedVotes ReconfigParam = 1
	ParamNodeVotes     ReconfigParam = 2
	ParamCancelWFA     ReconfigParam = 3
)

// Qdevice registration operations.
const (
	QdeviceUnregister uint32 = 0
	QdeviceRegister   uint32 = 1
)

// NodeInfo announces one node's votes, expected votes and flags (function 0). NodeID 0 describes
// the quorum device.
type NodeInfo struct {
	NodeID        NodeID
	Votes         uint32
	ExpectedVotes uint32
	Flags         NodeFlags
}

// Reconfigure carries an administrative change every node applies (function 1).
type Reconfigure struct {
	NodeID NodeID
	Value  uint32
	Param  ReconfigParam
}

// QdeviceReg registers or unregisters a quorum device name cluster-wide (function 2).
type QdeviceReg struct {
	Operation uint32
	Name      string
}

// QdeviceReconfigure renames the quorum device (function 3).
type QdeviceReconfigure struct {
	OldName, NewName string
}

// Errors a decoder returns, wrapped with context.
var (
	ErrShort       = errors.New("message too short")
	ErrNotVoteQ    = errors.New("not a votequorum message")
	ErrUnknownFunc = errors.New("unknown votequorum function")
	ErrName        = errors.New("bad quorum device name")
)

func putHeader(b []byte, fn int, size int) {
	binary.LittleEndian.PutUint32(b[0:], uint32(ServiceID<<16|fn))
	binary.LittleEndian.PutUint32(b[8:], uint32(size))
}

// EncodeNodeInfo returns the 32-byte NODEINFO body, zero-filled as corosync sends it.
func EncodeNodeInfo(m NodeInfo) []byte {
	b := make([]byte, NodeInfoSize)
	putHeader(b, FnNodeInfo, NodeInfoSize)
	binary.LittleEndian.PutUint32(b[16:], uint32(m.NodeID))
	binary.LittleEndian.PutUint32(b[20:], m.Votes)
	binary.LittleEndian.PutUint32(b[24:], m.ExpectedVotes)
	binary.LittleEndian.PutUint32(b[28:], uint32(m.Flags))
	return b
}

// EncodeReconfigure returns the 32-byte RECONFIGURE body. corosync leaves its padding
// uninitialised; we write zeros.
func EncodeReconfigure(m Reconfigure) []byte {
	b := make([]byte, ReconfigureSize)
	putHeader(b, FnReconfigure, ReconfigureSize)
	binary.LittleEndian.PutUint32(b[16:], uint32(m.NodeID))
	binary.LittleEndian.PutUint32(b[20:], m.Value)
	b[24] = byte(m.Param)
	return b
}

// EncodeQdeviceReg returns the 280-byte QDEVICE_REG body, or an error when the name does not
// fit the 255-byte NUL-terminated field.
func EncodeQdeviceReg(m QdeviceReg) ([]byte, error) {
	if err := checkName(m.Name); err != nil {
		return nil, fmt.Errorf("quorum: encode qdevice reg: %w", err)
	}
	b := make([]byte, QdeviceRegSize)
	putHeader(b, FnQdeviceReg, QdeviceRegSize)
	binary.LittleEndian.PutUint32(b[16:], m.Operation)
	copy(b[20:20+qdeviceNameField], m.Name)
	return b, nil
}

// EncodeQdeviceReconfigure returns the 528-byte QDEVICE_RECONFIGURE body.
func EncodeQdeviceReconfigure(m QdeviceReconfigure) ([]byte, error) {
	for _, n := range []string{m.OldName, m.NewName} {
		if err := checkName(n); err != nil {
			return nil, fmt.Errorf("quorum: encode qdevice reconfigure: %w", err)
		}
	}
	b := make([]byte, QdeviceReconfigureSize)
	putHeader(b, FnQdeviceReconfigure, QdeviceReconfigureSize)
	copy(b[16:16+qdeviceNameField], m.OldName)
	copy(b[271:271+qdeviceNameField], m.NewName)
	return b, nil
}

func checkName(n string) error {
	if len(n) > QdeviceNameMax {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrName, len(n), QdeviceNameMax)
	}
	for i := 0; i < len(n); i++ {
		if n[i] == 0 {
			return fmt.Errorf("%w: NUL at byte %d", ErrName, i)
		}
	}
	return nil
}

// Function returns the function number of a votequorum body. swapped is the "foreign endian"
// indication totem delivers with the message (srp.Message.Endian): the sender wrote the other
// byte order, and corosync's deliver_fn swaps the header id before dispatching.
func Function(b []byte, swapped bool) (int, error) {
	if len(b) < qbHeaderSize {
		return 0, fmt.Errorf("quorum: decode: %w: %d bytes, header needs %d", ErrShort, len(b), qbHeaderSize)
	}
	id := binary.LittleEndian.Uint32(b)
	if swapped {
		id = bits.ReverseBytes32(id)
	}
	if id>>16 != ServiceID {
		return 0, fmt.Errorf("quorum: decode: %w: service %d (id %#08x)", ErrNotVoteQ, id>>16, id)
	}
	fn := int(id & 0xffff)
	if fn > FnQdeviceReconfigure {
		return 0, fmt.Errorf("quorum: decode: %w %d", ErrUnknownFunc, fn)
	}
	return fn, nil
}

// Like corosync, decoders ignore the header's size field and any bytes past the structure;
// a body shorter than the structure is rejected (corosync would read past it).

func need(b []byte, n int, what string) error {
	if len(b) < n {
		return fmt.Errorf("quorum: decode %s: %w: %d bytes, need %d", what, ErrShort, len(b), n)
	}
	return nil
}

func u32(b []byte, swapped bool) uint32 {
	v := binary.LittleEndian.Uint32(b)
	if swapped {
		v = bits.ReverseBytes32(v)
	}
	return v
}

func expectFn(b []byte, swapped bool, fn int, what string) error {
	got, err := Function(b, swapped)
	if err != nil {
		return err
	}
	if got != fn {
		return fmt.Errorf("quorum: decode %s: %w: function %d", what, ErrUnknownFunc, got)
	}
	return nil
}

// DecodeNodeInfo parses a NODEINFO body.
func DecodeNodeInfo(b []byte, swapped bool) (NodeInfo, error) {
	if err := expectFn(b, swapped, FnNodeInfo, "nodeinfo"); err != nil {
		return NodeInfo{}, err
	}
	if err := need(b, NodeInfoSize, "nodeinfo"); err != nil {
		return NodeInfo{}, err
	}
	return NodeInfo{
		NodeID:        NodeID(u32(b[16:], swapped)),
		Votes:         u32(b[20:], swapped),
		ExpectedVotes: u32(b[24:], swapped),
		Flags:         NodeFlags(u32(b[28:], swapped)),
	}, nil
}

// DecodeReconfigure parses a RECONFIGURE body. An unknown param is kept (corosync ignores it).
func DecodeReconfigure(b []byte, swapped bool) (Reconfigure, error) {
	if err := expectFn(b, swapped, FnReconfigure, "reconfigure"); err != nil {
		return Reconfigure{}, err
	}
	// The last 4 bytes are alignment padding a sender may omit only in theory; the fields end at 25.
	if err := need(b, 25, "reconfigure"); err != nil {
		return Reconfigure{}, err
	}
	return Reconfigure{
		NodeID: NodeID(u32(b[16:], swapped)),
		Value:  u32(b[20:], swapped),
		Param:  ReconfigParam(b[24]),
	}, nil
}

// cString reads a NUL-terminated name from a fixed 255-byte field. Bytes after the NUL may be
// garbage (corosync does not clear the buffer), so they are ignored.
func cString(f []byte, what string) (string, error) {
	for i, c := range f {
		if c == 0 {
			return string(f[:i]), nil
		}
	}
	return "", fmt.Errorf("quorum: decode %s: %w: no NUL in %d bytes", what, ErrName, len(f))
}

// DecodeQdeviceReg parses a QDEVICE_REG body.
func DecodeQdeviceReg(b []byte, swapped bool) (QdeviceReg, error) {
	if err := expectFn(b, swapped, FnQdeviceReg, "qdevice reg"); err != nil {
		return QdeviceReg{}, err
	}
	if err := need(b, 20+qdeviceNameField, "qdevice reg"); err != nil {
		return QdeviceReg{}, err
	}
	name, err := cString(b[20:20+qdeviceNameField], "qdevice reg")
	if err != nil {
		return QdeviceReg{}, err
	}
	return QdeviceReg{Operation: u32(b[16:], swapped), Name: name}, nil
}

// DecodeQdeviceReconfigure parses a QDEVICE_RECONFIGURE body.
func DecodeQdeviceReconfigure(b []byte, swapped bool) (QdeviceReconfigure, error) {
	if err := expectFn(b, swapped, FnQdeviceReconfigure, "qdevice reconfigure"); err != nil {
		return QdeviceReconfigure{}, err
	}
	if err := need(b, 271+qdeviceNameField, "qdevice reconfigure"); err != nil {
		return QdeviceReconfigure{}, err
	}
	oldName, err := cString(b[16:16+qdeviceNameField], "qdevice reconfigure old name")
	if err != nil {
		return QdeviceReconfigure{}, err
	}
	newName, err := cString(b[271:271+qdeviceNameField], "qdevice reconfigure new name")
	if err != nil {
		return QdeviceReconfigure{}, err
	}
	return QdeviceReconfigure{OldName: oldName, NewName: newName}, nil
}

// Decode parses any votequorum body and returns one of NodeInfo, Reconfigure, QdeviceReg or
// QdeviceReconfigure.
func Decode(b []byte, swapped bool) (any, error) {
	fn, err := Function(b, swapped)
	if err != nil {
		return nil, err
	}
	switch fn {
	case FnNodeInfo:
		return DecodeNodeInfo(b, swapped)
	case FnReconfigure:
		return DecodeReconfigure(b, swapped)
	case FnQdeviceReg:
		return DecodeQdeviceReg(b, swapped)
	default:
		return DecodeQdeviceReconfigure(b, swapped)
	}
}
