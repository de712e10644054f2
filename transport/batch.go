package transport

import "net/netip"

// bufSize holds the largest UDP datagram (65 535 B payload on IPv6) with one byte to spare,
// so a datagram that fills the buffer is known to be complete.
const bufSize = 65536

// Packet is one received datagram that passed the transport's filters.
type Packet struct {
	// Data is the cleartext totem datagram. It aliases the Batch's buffer: valid until the
	// Batch is read into again or returned to the pool.
	Data []byte
	// From is the sender's address and source port (the sender's own address for Local).
	From netip.AddrPort
	// Local marks this node's own multicast coming back through the local loop.
	Local bool
}

// Batch is a set of receive buffers and the packets last read into them. A Batch belongs
// to one goroutine at a time: the reader fills it, hands it on (e.g. over a channel), and
// whoever consumed it returns it with Link.PutBatch or reads into it again. Nothing in it
// may be kept after that without copying.
type Batch struct {
	Packets []Packet
	bufs    [][]byte
	raw     []rawMsg
	knet    []byte // knet: messages completed inside a coalesced (UDP_GRO) datagram
}

func newBatch(n int) *Batch {
	b := &Batch{Packets: make([]Packet, 0, n), bufs: make([][]byte, n), raw: make([]rawMsg, n)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, bufSize)
	}
	return b
}
