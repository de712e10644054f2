package stack

import (
	"bytes"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// FuzzFramingDeliver feeds arbitrary totempg packets from two senders, in both byte orders,
// through the reassembler: it must never panic, never buffer past its bound, and every message
// it delivers must parse as group-framed.
func FuzzFramingDeliver(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 0, 7, 0, 1, 0, 1, 0, 'a', 'h', 'i'}, []byte{0, 0, 0, 0, 3, 0, 1, 0, 2, 0, 1, 0})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 1, 0, 5, 0, 1, 0, 4, 0, 's'}, []byte{0, 0, 0, 0, 0, 1, 1, 0, 3, 0, 'y', 'n', 'c'})
	f.Fuzz(func(t *testing.T, p1, p2 []byte) {
		fr, err := newFraming(1500)
		if err != nil {
			t.Fatal(err)
		}
		fn := func(_ srp.NodeID, g string, body []byte, _ bool) {
			if g != "a" && g != "sync" {
				t.Fatalf("delivered group %q", g)
			}
		}
		for i, p := range [][]byte{p1, p2, p1, p2} {
			fr.deliver(&srp.Message{Sender: srp.NodeID(1 + i%2), Payload: p, Endian: i >= 2}, fn)
			for _, a := range fr.senders {
				if len(a.buf) > maxAssembly {
					t.Fatalf("assembly grew to %d", len(a.buf))
				}
			}
		}
	})
}

// Packing round trip: what the sender side builds, the receiver side takes apart into the
// same messages in the same order, across packing and fragmentation.
func TestFramingRoundTrip(t *testing.T) {
	sc := srp.DefaultConfig(1, 1)
	p, err := srp.NewProcessor(sc)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(0)
	f, _ := newFraming(1500)
	var want [][]byte
	for i, n := range []int{10, 1300, 5, 5000, 0, 1401, 70000, 3} {
		body := bytes.Repeat([]byte{byte('A' + i)}, n)
		want = append(want, body)
		if err := f.send(p, 0, "a", body, srp.Agreed); err != nil {
			t.Fatal(err)
		}
	}
	f.flush(p, 0)
	// Pull the queued packets back out of srp's new-message queue by driving a singleton ring.
	rx, _ := newFraming(1500)
	var got [][]byte
	for now := time.Duration(0); now < 20*time.Second && len(got) < len(want); now += time.Millisecond {
		p.Tick(now)
		rd := p.Ready()
		var loop [][]byte
		for _, o := range rd.Messages {
			loop = append(loop, bytes.Clone(o.Data))
		}
		for _, d := range rd.Deliveries {
			if d.Message != nil {
				rx.deliver(d.Message, func(_ srp.NodeID, _ string, body []byte, _ bool) { got = append(got, bytes.Clone(body)) })
			}
		}
		p.Advance()
		for _, b := range loop {
			p.Step(now, b)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
}

// The worked MCAST example of totem-wire.md §6: one message for group "a" whose body is a
// 16-byte qb request header with id (CPG 2 << 16) | 0 and size 16 packs into exactly these
// payload bytes (from offset 45 of the datagram).
func TestFramingWireExample(t *testing.T) {
	f, _ := newFraming(1500)
	body := []byte{0, 0, 2, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0}
	msg := frame("a", body)
	f.staged = append(f.staged, msg...)
	f.stagedLens = append(f.stagedLens, uint16(len(msg)))
	want := []byte{
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // version, type, fragmented, continuation, msg_count 1
		0x15, 0x00, // length 21
		0x01, 0x00, 0x01, 0x00, 0x61, // one group, "a"
		0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	}
	if got := f.buildStaged(0); !bytes.Equal(got, want) {
		t.Fatalf("packet\n got % x\nwant % x", got, want)
	}
}
