package stack

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// referenceDeliver is framing.deliver as it was before the receive path stopped copying
// every piece into the sender's assembly buffer (as of commit cc26521), kept to check
// the faster version against, drop counters and reassembly state included.
func (f *framing) referenceDeliver(m *srp.Message, fn func(sender srp.NodeID, group string, body []byte, swapped bool)) {
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
	start := len(a.buf)
	a.buf = append(a.buf, data...)
	complete := count
	if fragmented != 0 {
		complete--
	}
	deliverNow := false
	switch {
	case continuation == 0 && (a.throwAway || a.lastFrag != 0):
		// The sender restarted its stream (framing.deliver says why).
		a.buf = append(a.buf[:0], data...)
		start = 0
		a.throwAway = false
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
		off := 0
		pieceStart := 0
		for i := 0; i < complete; i++ {
			l := int(bo.Uint16(pl[pgHeaderSize+2*i:]))
			var msg []byte
			if i == 0 {
				msg = a.buf[:start+l]
			} else {
				msg = a.buf[start+off : start+off+l]
			}
			off += l
			pieceStart = start + off
			groups, body, err := parseGroups(msg, m.Endian)
			if err != nil {
				f.drops.Groups++
				continue
			}
			for _, g := range groups {
				if g == "a" || g == "sync" {
					fn(m.Sender, g, body, m.Endian)
					break
				}
			}
		}
		if fragmented != 0 {
			// Keep the trailing partial piece for the next packet.
			rest := a.buf[pieceStart:]
			if complete == 0 {
				rest = a.buf
			}
			a.buf = append(a.buf[:0], rest...)
			return
		}
	}
	if fragmented == 0 {
		a.buf = a.buf[:0]
		a.lastFrag, a.throwAway = 0, false
	} else if !deliverNow {
		// Throw-away: keep only what follows, so a later continuation has nothing stale.
		a.buf = a.buf[:0]
	}
}

// TestFramingDeliverMatchesReference feeds random packet sequences (valid frames, fragments
// with right and wrong continuation tags, bad group headers, junk) from two senders through
// both versions and requires the same deliveries, drops and buffered state after every
// packet. GOTOTEM_SEED=<n> replays one failing seed.
func TestFramingDeliverMatchesReference(t *testing.T) {
	seeds := 3000
	first := uint64(1)
	if s := os.Getenv("GOTOTEM_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		first, seeds = v, 1
	}
	for seed := first; seed < first+uint64(seeds); seed++ {
		if err := compareFramingDeliver(seed); err != nil {
			t.Fatalf("seed %d (replay: GOTOTEM_SEED=%d go test ./stack -run TestFramingDeliverMatchesReference): %v", seed, seed, err)
		}
	}
}

func compareFramingDeliver(seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	got, _ := newFraming(1500)
	want, _ := newFraming(1500)
	type dl struct {
		sender  srp.NodeID
		group   string
		body    string
		swapped bool
	}
	var gotD, wantD []dl
	rec := func(out *[]dl) func(srp.NodeID, string, []byte, bool) {
		return func(s srp.NodeID, g string, b []byte, sw bool) { *out = append(*out, dl{s, g, string(b), sw}) }
	}
	for i := range 40 {
		swapped := r.IntN(4) == 0
		var bo binary.AppendByteOrder = binary.LittleEndian
		if swapped {
			bo = binary.BigEndian
		}
		var pieces [][]byte
		for range r.IntN(4) + 1 {
			var p []byte
			switch r.IntN(6) {
			case 0: // raw bytes: a fragment's continuation or junk
				p = make([]byte, r.IntN(40))
				for k := range p {
					p[k] = byte(r.IntN(256))
				}
			case 1: // a bad group header
				p = bo.AppendUint16(nil, uint16(r.IntN(3)))
			default:
				groups := [][]string{{"a"}, {"sync"}, {"x"}, {"x", "a"}, {"a", "sync"}}[r.IntN(5)]
				p = bo.AppendUint16(nil, uint16(len(groups)))
				for _, g := range groups {
					p = bo.AppendUint16(p, uint16(len(g)))
				}
				for _, g := range groups {
					p = append(p, g...)
				}
				p = append(p, bytes.Repeat([]byte{byte(i)}, r.IntN(30))...)
			}
			pieces = append(pieces, p)
		}
		frag := uint8(0)
		if r.IntN(2) == 0 {
			frag = uint8(r.IntN(3) + 1)
		}
		cont := uint8(0)
		if r.IntN(2) == 0 {
			cont = uint8(r.IntN(3) + 1)
		}
		pl := []byte{0, 0, 0, 0, frag, cont}
		pl = bo.AppendUint16(pl, uint16(len(pieces)))
		for _, p := range pieces {
			pl = bo.AppendUint16(pl, uint16(len(p)))
		}
		for _, p := range pieces {
			pl = append(pl, p...)
		}
		switch r.IntN(20) {
		case 0:
			pl = pl[:r.IntN(len(pl))] // short
		case 1:
			pl = append(pl, 0) // lengths do not add up
		}
		m := &srp.Message{Sender: srp.NodeID(1 + r.IntN(2)), Payload: pl, Endian: swapped}
		got.deliver(m, rec(&gotD))
		want.referenceDeliver(m, rec(&wantD))
		if fmt.Sprint(gotD) != fmt.Sprint(wantD) {
			return fmt.Errorf("packet %d: delivered\n%v\nwant\n%v", i, gotD, wantD)
		}
		if got.drops != want.drops {
			return fmt.Errorf("packet %d: drops %+v, want %+v", i, got.drops, want.drops)
		}
		for id, wa := range want.senders {
			ga := got.senders[id]
			if ga == nil || !bytes.Equal(ga.buf, wa.buf) || ga.lastFrag != wa.lastFrag || ga.throwAway != wa.throwAway {
				return fmt.Errorf("packet %d: sender %d state %+v, want %+v", i, id, ga, wa)
			}
		}
	}
	return nil
}

// TestAddFramedMatchesFrame shows that packing a message straight from its group header and
// body (addFramed, the send path) lays out exactly the packets that packing the framed copy
// did (add(frame(...))): same packing, same fragments, same tags, byte for byte, over random
// sequences of sizes around the packet boundaries. GOTOTEM_SEED=<n> replays one seed.
func TestAddFramedMatchesFrame(t *testing.T) {
	seeds := 200
	first := uint64(1)
	if s := os.Getenv("GOTOTEM_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		first, seeds = v, 1
	}
	for seed := first; seed < first+uint64(seeds); seed++ {
		r := rand.New(rand.NewPCG(seed, 0xf4a3))
		var bodies [][]byte
		for i := range 30 {
			n := []int{0, 1, 50, 1380, 1398, 1402, 1403, 2800, 9000}[r.IntN(9)] + r.IntN(8)
			bodies = append(bodies, bytes.Repeat([]byte{byte(i)}, n))
		}
		group := []string{"a", "sync"}[r.IntN(2)]
		got := packetsOf(t, func(f *framing, p *srp.Processor) error {
			for _, b := range bodies {
				if err := f.addFramed(p, 0, group, b, srp.Agreed); err != nil {
					return err
				}
			}
			return nil
		})
		want := packetsOf(t, func(f *framing, p *srp.Processor) error {
			for _, b := range bodies {
				if err := f.add(p, 0, frame(group, b), srp.Agreed); err != nil {
					return err
				}
			}
			return nil
		})
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("seed %d: %d packets, want %d", seed, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("seed %d (replay: GOTOTEM_SEED=%d): packet %d differs", seed, seed, i)
			}
		}
	}
}

// packetsOf runs fill on a fresh framing over a singleton ring and returns the totempg
// packets the ring delivers, in order.
func packetsOf(t *testing.T, fill func(*framing, *srp.Processor) error) [][]byte {
	t.Helper()
	p, err := srp.NewProcessor(srp.DefaultConfig(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	p.Start(0)
	room := p.QueueRoom()
	f, _ := newFraming(1500)
	if err := fill(f, p); err != nil {
		t.Fatal(err)
	}
	f.flush(p, 0)
	var out [][]byte
	last := time.Duration(0)
	for now := time.Duration(0); now < 20*time.Second; now += time.Millisecond {
		p.Tick(now)
		rd := p.Ready()
		var loop [][]byte
		for _, o := range rd.Messages {
			loop = append(loop, bytes.Clone(o.Data))
		}
		for _, d := range rd.Deliveries {
			if d.Message != nil {
				out = append(out, bytes.Clone(d.Message.Payload))
				last = now
			}
		}
		p.Advance()
		for _, b := range loop {
			p.Step(now, b)
		}
		if p.QueueRoom() == room && len(out) > 0 && now-last > 200*time.Millisecond {
			break // queue drained and nothing more delivered
		}
	}
	return out
}
