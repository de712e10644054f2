package transport

import (
	"encoding/binary"

	"github.com/gototem/gototem/srp"
)

// peekSender reads the sending nodeid and message type from a totem header (bytes 0..8:
// magic, version, type, encapsulated, nodeid), in whichever byte order the magic says the
// sender wrote. Anything that is not a version-3 totem header reports ok=false.
func peekSender(b []byte) (id srp.NodeID, typ srp.MessageType, ok bool) {
	if len(b) < srp.HeaderSize || b[2] != srp.Version {
		return 0, 0, false
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint16(b) {
	case srp.Magic:
		order = binary.LittleEndian
	case uint16(srp.Magic>>8 | (srp.Magic&0xff)<<8):
		order = binary.BigEndian
	default:
		return 0, 0, false
	}
	return srp.NodeID(order.Uint32(b[5:])), srp.MessageType(b[3]), true
}
