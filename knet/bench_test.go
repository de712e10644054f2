package knet

import "testing"

// rxPath is one node's receive path as a transport runs it: open (when crypto is on),
// decode, then de-duplication/reassembly per sender, into buffers it reuses.
type rxPath struct {
	crypto *Crypto
	plain  []byte
	pkt    Packet
	hosts  map[HostID]*HostRx
}

func newRxPath(c *Crypto) *rxPath {
	return &rxPath{crypto: c, plain: make([]byte, 0, MaxPacketSize+1024), hosts: map[HostID]*HostRx{}}
}

func (r *rxPath) receive(wire []byte) int {
	b := wire
	if r.crypto != nil {
		var err error
		if r.plain, err = r.crypto.Open(r.plain[:0], wire); err != nil {
			return 0
		}
		b = r.plain
	}
	if r.pkt.Decode(b) != nil {
		return 0
	}
	h := r.hosts[r.pkt.Host]
	if h == nil {
		h = NewHostRx(0)
		r.hosts[r.pkt.Host] = h
	}
	switch r.pkt.Type {
	case TypeData:
		m, _ := h.Data(&r.pkt)
		return len(m)
	case TypePing:
		h.Ping(&r.pkt)
	}
	return 0
}

// steadyToNode2 is the traffic node 2 receives in knet-steady (a receiver sees one copy
// of each message, so replaying it in a loop exercises delivery, not only de-duplication,
// once the window has moved on: the seqs are renumbered per pass).
func steadyToNode2(t testing.TB) [][]byte {
	var out [][]byte
	for _, p := range udpPayloads(t, "knet-steady.pcap") {
		var k Packet
		if k.Decode(p) == nil && k.Host == 1 {
			out = append(out, p)
		}
	}
	return out
}

// renumber moves the DATA seq of a clear packet one window (and a bit) ahead, in place, so
// that each pass over a capture is new traffic for the receiver.
func renumber(p []byte) {
	if len(p) >= DataHeaderSize && p[1] == byte(TypeData) {
		s := uint16(int(p[6])<<8|int(p[7])) + 4099
		if s == 0 {
			s = 1
		}
		p[6], p[7] = byte(s>>8), byte(s)
	}
}

// TestReceivePathNoAllocs: after warm-up, the receive path allocates nothing per packet,
// clear or encrypted, over real corosync traffic (fragmented messages included).
func TestReceivePathNoAllocs(t *testing.T) {
	pkts := steadyToNode2(t)
	r := newRxPath(nil)
	for _, p := range pkts {
		r.receive(p)
	}
	delivered := 0
	if a := testing.AllocsPerRun(3, func() {
		for _, p := range pkts {
			renumber(p)
		}
		for _, p := range pkts {
			delivered += r.receive(p)
		}
	}); a != 0 {
		t.Errorf("clear: %.0f allocations per pass of %d packets", a, len(pkts))
	}
	if delivered == 0 {
		t.Error("renumbered passes delivered nothing: the test measured only duplicates")
	}
	enc := udpPayloads(t, "knet-aes256-formation.pcap")
	re := newRxPath(aes256sha256(t, captureKey(t)))
	for _, p := range enc {
		re.receive(p)
	}
	if a := testing.AllocsPerRun(3, func() {
		for _, p := range enc {
			re.receive(p)
		}
	}); a != 0 {
		t.Errorf("aes256: %.0f allocations per pass of %d packets", a, len(enc))
	}
}

func BenchmarkDecode(b *testing.B) {
	pkts := steadyToNode2(b)
	var p Packet
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := p.Decode(pkts[i%len(pkts)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceive: decode + de-dup + reassembly per packet of knet-steady as node 2 sees
// it, seqs renumbered per pass so every message is delivered.
func BenchmarkReceive(b *testing.B) {
	pkts := steadyToNode2(b)
	r := newRxPath(nil)
	var bytes int64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := pkts[i%len(pkts)]
		if i%len(pkts) == 0 {
			for _, q := range pkts {
				renumber(q)
			}
		}
		bytes += int64(len(p))
		r.receive(p)
	}
	b.SetBytes(bytes / int64(b.N))
}

// BenchmarkReceiveAES256: the same with aes256/sha256 (Open on the real encrypted packets).
func BenchmarkReceiveAES256(b *testing.B) {
	pkts := udpPayloads(b, "knet-aes256-formation.pcap")
	r := newRxPath(aes256sha256(b, captureKey(b)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.receive(pkts[i%len(pkts)])
	}
}

// BenchmarkSeal: encrypting a full-MTU DATA packet (1460 bytes), the send side's cost.
func BenchmarkSeal(b *testing.B) {
	c := aes256sha256(b, captureKey(b))
	plain := make([]byte, DataHeaderSize+1397)
	var salt [SaltSize]byte
	out := make([]byte, 0, 2048)
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		out = c.Seal(out[:0], plain, &salt)
	}
}

// BenchmarkOpen: checking and decrypting that full-MTU DATA packet, the receive side's cost.
func BenchmarkOpen(b *testing.B) {
	c := aes256sha256(b, captureKey(b))
	plain := make([]byte, DataHeaderSize+1397)
	var salt [SaltSize]byte
	wire := c.Seal(nil, plain, &salt)
	out := make([]byte, 0, 2048)
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = c.Open(out[:0], wire); err != nil {
			b.Fatal(err)
		}
	}
}
