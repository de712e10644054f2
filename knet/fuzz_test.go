package knet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// addCaptureSeeds adds real corosync packets (clear ones from knet-formation, which has
// pings, pongs, PMTUd and fragmented DATA) as fuzz seeds.
func addCaptureSeeds(f *testing.F, name string, max int) {
	for i, p := range udpPayloads(f, name) {
		if i >= max {
			break
		}
		f.Add(p)
	}
}

// FuzzDecode: any bytes decode or fail cleanly, and what decodes re-encodes to exactly the
// input.
func FuzzDecode(f *testing.F) {
	addCaptureSeeds(f, "knet-formation.pcap", 400)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := p.Decode(b); err != nil {
			return
		}
		if p.EncodedLen() != len(b) || !bytes.Equal(p.AppendEncode(nil), b) {
			t.Fatalf("re-encoding of %x differs", b)
		}
	})
}

// FuzzOpen: any bytes given to Open with the capture's key fail cleanly or open; whatever
// opens re-seals with its own salt to the input (so nothing is accepted that the key did
// not produce), and the plaintext is never longer than the input.
func FuzzOpen(f *testing.F) {
	addCaptureSeeds(f, "knet-aes256-formation.pcap", 400)
	key := captureKey(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := aes256sha256(t, key)
		plain, err := c.Open(nil, b)
		if err != nil {
			return
		}
		if len(plain) >= len(b) {
			t.Fatalf("%d bytes opened to %d", len(b), len(plain))
		}
		var salt [SaltSize]byte
		copy(salt[:], b)
		if !bytes.Equal(c.Seal(nil, plain, &salt), b) {
			t.Fatal("opened packet does not re-seal to itself")
		}
	})
}

// FuzzHostRx drives one HostRx with a stream of DATA and PING packets cut from the input
// (each record: 2-byte length, then that many bytes of knet packet, header patched to be a
// DATA or PING from host 1): it never panics, never holds more than its limit of messages,
// delivers nothing longer than MaxPacketSize, and a seq once delivered is not delivered
// again until the window moves or a ping wipes it.
func FuzzHostRx(f *testing.F) {
	rec := func(ps ...Packet) []byte {
		var out []byte
		for _, p := range ps {
			b := p.AppendEncode(nil)
			out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
			out = append(out, b...)
		}
		return out
	}
	msg := message(1, 1000)
	fr := fragments(1, 5, msg, 400)
	f.Add(rec(fr[2], fr[0], fr[1], fr[1]))
	f.Add(rec(NewData(1, 1, true, 0, msg[:10]), NewData(1, 1, true, 0, msg[:10]), NewPing(1, 0, 0, 0, 0, true), NewData(1, 1, true, 0, nil)))
	f.Add(rec(NewData(1, 65535, true, 0, msg[:3]), NewData(1, 1, true, 0, msg[:3]), NewPing(1, 0, 0, 0, 1, false), NewPing(1, 0, 0, 0, 2, false)))
	f.Fuzz(func(t *testing.T, in []byte) {
		h := NewHostRx(4)
		var p Packet
		for len(in) >= 2 {
			n := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if n > len(in) {
				return
			}
			rec := in[:n]
			in = in[n:]
			if p.Decode(rec) != nil {
				continue
			}
			switch p.Type {
			case TypeData:
				m, r := h.Data(&p)
				if r == RxDeliver && len(m) > MaxPacketSize {
					t.Fatalf("delivered %d bytes", len(m))
				}
				if r == RxDeliver {
					// An immediate copy is always a duplicate.
					if _, r2 := h.Data(&p); r2 != RxDuplicate {
						t.Fatalf("copy of delivered seq %d: %v", p.Seq, r2)
					}
				}
			case TypePing:
				h.Ping(&p)
			}
			if h.Pending() > 4 || len(h.bufs) > 4 {
				t.Fatalf("%d pending, %d buffers with a limit of 4", h.Pending(), len(h.bufs))
			}
			for i := range h.bufs {
				if len(h.bufs[i].store) > MaxPacketSize {
					t.Fatalf("buffer %d holds %d bytes", i, len(h.bufs[i].store))
				}
			}
		}
	})
}

// FuzzEndpointReceive feeds arbitrary datagrams (from host 2's address or another) to an
// endpoint whose link to host 2 is up: it never panics, answers at most one datagram per
// datagram, and counts every datagram it does not deliver under exactly one reason.
func FuzzEndpointReceive(f *testing.F) {
	addCaptureSeeds(f, "knet-formation.pcap", 100)
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newNet(t, 2, 1, Passive, nil)
		w.run(3 * time.Second)
		ep := w.eps[1]
		before := ep.Counters()
		for _, from := range []netip.AddrPort{linkAddr(2, 0), linkAddr(3, 0)} {
			msgs, out := ep.Receive(w.now, 0, from, b)
			if len(out) > 1 || len(msgs) > 1 {
				t.Fatalf("%d replies, %d messages", len(out), len(msgs))
			}
		}
		c := ep.Counters()
		n := func(x EndpointCounters) uint64 {
			return x.Crypto + x.Malformed + x.UnknownHost + x.BadSource + x.Unreachable + x.Duplicate + x.Replay +
				x.Fragment + x.Expired + x.BadFragment + x.Compressed + x.Delivered + x.Ping + x.Pong + x.PongIgnored + x.PMTUD
		}
		if n(c)-n(before) != 2 {
			t.Fatalf("2 datagrams, counters moved by %d: %+v", n(c)-n(before), c)
		}
	})
}
