package knet

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version1 is the only on-wire version libknet 1.25 speaks; it drops any other.
const Version1 = 1

// PacketType is knet_header.kh_type. The 0x80 bit marks a "service" packet, which names a
// link in its first payload byte (the receiver picks the link by that byte, not by address).
type PacketType uint8

const (
	TypeData       PacketType = 0x00
	TypePing       PacketType = 0x81
	TypePong       PacketType = 0x82
	TypePMTUD      PacketType = 0x83
	TypePMTUDReply PacketType = 0x84

	typeServiceMask PacketType = 0x80
)

func (t PacketType) String() string {
	switch t {
	case TypeData:
		return "data"
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypePMTUD:
		return "pmtud"
	case TypePMTUDReply:
		return "pmtud_reply"
	}
	return fmt.Sprintf("type(0x%02x)", uint8(t))
}

// IsService reports whether the packet carries a link id (ping, pong, PMTUd).
func (t PacketType) IsService() bool { return t&typeServiceMask != 0 }

// Sizes of the fixed parts (all structs are packed in libknet).
const (
	// HeaderSize is the common header: version, type, host id, two pad bytes.
	HeaderSize = 6
	// DataHeaderSize is HeaderSize + seq(2) compress pad bcast frag_num frag_seq channel.
	DataHeaderSize = 14
	// PingSize is a whole PING or PONG: HeaderSize + link(1) time(16) seq(2) timed(1).
	PingSize = 26
	// PMTUDHeaderSize is HeaderSize + link(1) size(2); a probe is padded to its size.
	PMTUDHeaderSize = 9
	// HeaderAllSize is libknet's KNET_HEADER_ALL_SIZE, sizeof(struct knet_header) with its
	// payload union (the ping struct is the largest): the per-packet overhead knet reserves
	// when it computes the data MTU.
	HeaderAllSize = 26
	// MaxPacketSize is KNET_MAX_PACKET_SIZE: the largest user message (before
	// fragmentation) and the largest reassembled one.
	MaxPacketSize = 65536
	// MaxLink is KNET_MAX_LINK: links are numbered 0..7.
	MaxLink = 8
)

// HostID is knet's node id; corosync uses its nodeid (which therefore must fit 16 bits).
type HostID uint16

// Packet is one decoded knet packet. It is flat, so that one value can be decoded into
// over and over without allocating; which fields mean something depends on Type.
type Packet struct {
	Version uint8
	Type    PacketType
	Host    HostID // sender's host id (big-endian on the wire)
	// MaxVer is byte 4: 0 from libknet 1.25 (a pad byte there); from 1.26 on the highest
	// on-wire version the sender supports. Pad is byte 5. Both are kept for re-encoding.
	MaxVer uint8
	Pad    uint8

	// Seq is a DATA packet's sequence number, or a PING's copy of the sender's DATA seq
	// counter (PONG echoes it). Big-endian on the wire.
	Seq uint16

	// DATA fields.
	Compress uint8 // compression model, 0 = none (corosync's default)
	DataPad  uint8
	Bcast    uint8 // 1 = sent to every reachable host, 0 = to the hosts the filter chose
	FragNum  uint8 // number of fragments; 1 (or 0) = not fragmented
	FragSeq  uint8 // 1..FragNum for a fragment, 0 when not fragmented
	Channel  int8  // corosync's totem datafd is channel 0

	// PING/PONG and PMTUD/PMTUD_REPLY: the link the pinger/prober sent on.
	Link uint8

	// PING/PONG fields. Time is the pinger's CLOCK_MONOTONIC timespec, copied raw in host
	// order (little-endian on every platform corosync ships for); a PONG echoes it.
	TimeSec  int64
	TimeNsec int64
	Timed    uint8 // 1 = periodic ping, 0 = forced by the seq counter (every SEQ_MAX/8 data)

	// PMTUD fields: the probed IP packet size (u16 in host order, no htons in libknet).
	Size uint16

	// Data is what follows the fixed part: a DATA packet's user data (or fragment), a
	// PMTUD probe's fill, anything a PING/PONG/PMTUD_REPLY carries past its struct (nothing,
	// from libknet). It aliases the decoded buffer.
	Data []byte
}

// Errors of Decode; a *DecodeError wraps one of them.
var (
	ErrShort   = errors.New("shorter than its fixed header")
	ErrVersion = errors.New("unsupported on-wire version")
	ErrType    = errors.New("unknown packet type")
)

// DecodeError says why a buffer is not a knet packet.
type DecodeError struct {
	Err  error
	Type PacketType
	Len  int
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("knet: %v (%s, %d bytes)", e.Err, e.Type, e.Len)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// fixedSize is the size of a type's fixed part, 0 for unknown types.
func fixedSize(t PacketType) int {
	switch t {
	case TypeData:
		return DataHeaderSize
	case TypePing, TypePong:
		return PingSize
	case TypePMTUD, TypePMTUDReply:
		return PMTUDHeaderSize
	}
	return 0
}

// Decode fills p from b. p.Data aliases b. On error p is left partly filled; it never
// panics and never allocates.
func (p *Packet) Decode(b []byte) error {
	if len(b) < HeaderSize {
		return &DecodeError{Err: ErrShort, Len: len(b)}
	}
	p.Version, p.Type = b[0], PacketType(b[1])
	if p.Version != Version1 {
		return &DecodeError{Err: ErrVersion, Type: p.Type, Len: len(b)}
	}
	n := fixedSize(p.Type)
	if n == 0 {
		return &DecodeError{Err: ErrType, Type: p.Type, Len: len(b)}
	}
	if len(b) < n {
		return &DecodeError{Err: ErrShort, Type: p.Type, Len: len(b)}
	}
	p.Host = HostID(binary.BigEndian.Uint16(b[2:]))
	p.MaxVer, p.Pad = b[4], b[5]
	p.Seq, p.Compress, p.DataPad, p.Bcast, p.FragNum, p.FragSeq, p.Channel = 0, 0, 0, 0, 0, 0, 0
	p.Link, p.TimeSec, p.TimeNsec, p.Timed, p.Size = 0, 0, 0, 0, 0
	switch p.Type {
	case TypeData:
		p.Seq = binary.BigEndian.Uint16(b[6:])
		p.Compress, p.DataPad, p.Bcast = b[8], b[9], b[10]
		p.FragNum, p.FragSeq, p.Channel = b[11], b[12], int8(b[13])
	case TypePing, TypePong:
		p.Link = b[6]
		p.TimeSec = int64(binary.LittleEndian.Uint64(b[7:]))
		p.TimeNsec = int64(binary.LittleEndian.Uint64(b[15:]))
		p.Seq = binary.BigEndian.Uint16(b[23:])
		p.Timed = b[25]
	case TypePMTUD, TypePMTUDReply:
		p.Link = b[6]
		p.Size = binary.LittleEndian.Uint16(b[7:])
	}
	p.Data = b[n:]
	return nil
}

// EncodedLen is the size AppendEncode writes (0 for a type it cannot encode).
func (p *Packet) EncodedLen() int {
	n := fixedSize(p.Type)
	if n == 0 {
		return 0
	}
	return n + len(p.Data)
}

// AppendEncode appends the wire form of p to dst. A decoded packet re-encodes to the exact
// bytes it came from. Types Decode rejects are not encoded (dst is returned unchanged):
// callers build packets with the constructors below or from a decode.
func (p *Packet) AppendEncode(dst []byte) []byte {
	if fixedSize(p.Type) == 0 {
		return dst
	}
	dst = append(dst, p.Version, byte(p.Type))
	dst = binary.BigEndian.AppendUint16(dst, uint16(p.Host))
	dst = append(dst, p.MaxVer, p.Pad)
	switch p.Type {
	case TypeData:
		dst = binary.BigEndian.AppendUint16(dst, p.Seq)
		dst = append(dst, p.Compress, p.DataPad, p.Bcast, p.FragNum, p.FragSeq, byte(p.Channel))
	case TypePing, TypePong:
		dst = append(dst, p.Link)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(p.TimeSec))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(p.TimeNsec))
		dst = binary.BigEndian.AppendUint16(dst, p.Seq)
		dst = append(dst, p.Timed)
	case TypePMTUD, TypePMTUDReply:
		dst = append(dst, p.Link)
		dst = binary.LittleEndian.AppendUint16(dst, p.Size)
	}
	return append(dst, p.Data...)
}

// Fragmented reports whether a DATA packet is one fragment of a larger message. libknet
// takes frag_num > 1 as fragmented and anything else (1, or a stray 0) as whole.
func (p *Packet) Fragmented() bool { return p.Type == TypeData && p.FragNum > 1 }

// NewData is an unfragmented DATA packet as libknet 1.25 sends it.
func NewData(host HostID, seq uint16, bcast bool, channel int8, data []byte) Packet {
	p := Packet{Version: Version1, Type: TypeData, Host: host, Seq: seq, FragNum: 1, Channel: channel, Data: data}
	if bcast {
		p.Bcast = 1
	}
	return p
}

// NewPing is a PING on link with the pinger's monotonic time (sec, nsec) and its current
// DATA seq counter.
func NewPing(host HostID, link uint8, sec, nsec int64, seq uint16, timed bool) Packet {
	p := Packet{Version: Version1, Type: TypePing, Host: host, Link: link, TimeSec: sec, TimeNsec: nsec, Seq: seq}
	if timed {
		p.Timed = 1
	}
	return p
}

// Pong turns a received PING into the reply libknet sends: the same bytes with the type
// changed and the host id replaced by the ponger's, so the pinger measures the round trip
// on its own clock. Anything past the ping struct is not echoed (libknet sends exactly
// PingSize bytes back).
func (p Packet) Pong(self HostID) Packet {
	q := p
	q.Type, q.Host, q.Data = TypePong, self, nil
	return q
}

// PMTUDReply is the reply to a probe: the 9-byte header, the size echoed, the fill dropped.
func (p Packet) PMTUDReply(self HostID) Packet {
	q := p
	q.Type, q.Host, q.Data = TypePMTUDReply, self, nil
	return q
}
