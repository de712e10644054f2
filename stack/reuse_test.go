package stack

import (
	"bytes"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// TestReuseDatagramBuffers drives a singleton ring that forms and carries traffic with
// ReuseDatagramBuffers on, keeping each Ready's datagrams across one Advance while the
// next input writes new ones (as totem's flush does with its own copies): they must still
// hold what they held. It fails if the buffers alternated only every Advance.
func TestReuseDatagramBuffers(t *testing.T) {
	s, err := New(Config{SRP: srp.DefaultConfig(1, 1), ReuseDatagramBuffers: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(0)
	var prev []Datagram // the previous Ready's datagrams, kept past its Advance
	var prevWant [][]byte
	checked := 0
	for step := range 3000 {
		now := time.Duration(step) * time.Millisecond
		rd := s.Ready()
		for i, d := range prev {
			if !bytes.Equal(d.Data, prevWant[i]) {
				t.Fatalf("step %d: datagram %d of the previous Ready changed before the second Advance", step, i)
			}
			checked++
		}
		prev = append(prev[:0], rd.Datagrams...)
		prevWant = prevWant[:0]
		for _, d := range prev {
			prevWant = append(prevWant, bytes.Clone(d.Data))
		}
		s.Advance()
		for _, d := range prev {
			if d.Dest == srp.ToAll || d.To == 1 {
				_ = s.Receive(now, d.Link, d.Data) // loop back, writing the other buffer
			}
		}
		if step == 500 {
			if err := s.Join(now, "g", 7); err != nil {
				t.Fatal(err)
			}
		}
		if step > 600 && step%3 == 0 {
			_ = s.Send(now, "g", 7, bytes.Repeat([]byte{byte(step)}, 100+step%3000), srp.Agreed)
		}
		s.Tick(now)
	}
	if checked < 1000 {
		t.Fatalf("only %d datagrams checked: the ring carried too little traffic to show anything", checked)
	}
}
