package totem

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/gototem/gototem/srp"
)

func TestSplitAfterToken(t *testing.T) {
	tok := srp.Outgoing{Dest: srp.ToNode, To: 2, Type: srp.TypeORFToken}
	mc := srp.Outgoing{Dest: srp.ToAll, Type: srp.TypeMcast}
	join := srp.Outgoing{Dest: srp.ToAll, Type: srp.TypeJoin}
	cancel := srp.Outgoing{Dest: srp.ToNode, To: 1, Type: srp.TypeTokenHoldCancel}
	for _, c := range []struct {
		name string
		out  []srp.Outgoing
		want int
	}{
		{"token after the window (standard ring)", []srp.Outgoing{mc, mc, tok}, -1},
		{"token alone", []srp.Outgoing{tok}, -1},
		{"multicasts only", []srp.Outgoing{mc, mc}, -1},
		{"post-token multicasts", []srp.Outgoing{mc, tok, mc, mc}, 2},
		{"token first", []srp.Outgoing{tok, mc}, 1},
		{"last token of two", []srp.Outgoing{tok, mc, tok, mc}, 3},
		{"not a token before them", []srp.Outgoing{mc, cancel, mc}, -1},
		// srp's ToAll datagrams after a token are its MCASTs; a JOIN there still goes in
		// order, only later (the link's FIFO is kept).
		{"other multicast after the token", []srp.Outgoing{tok, join}, 1},
		{"empty", nil, -1},
	} {
		if got := splitAfterToken(c.out); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// The hand-off copies the datagrams (srp reuses their buffers two Advances later, while the
// goroutine may still be sending), keeps their order and reports the send's error on wait.
func TestPostTokenSenderCopiesInOrder(t *testing.T) {
	var wg sync.WaitGroup
	var got [][]string
	release := make(chan struct{})
	fail := errors.New("boom")
	s := newPostTokenSender(func(out []srp.Outgoing) error {
		<-release // still sending while the event loop reuses its buffers
		var run []string
		for _, o := range out {
			run = append(run, string(o.Data))
		}
		got = append(got, run)
		if len(got) == 2 {
			return fail
		}
		return nil
	}, &wg)
	bufs := [][]byte{[]byte("m1"), []byte("m2"), []byte("m3")}
	run := []srp.Outgoing{{Dest: srp.ToAll, Data: bufs[0]}, {Dest: srp.ToAll, Data: bufs[1]}, {Dest: srp.ToAll, Data: bufs[2]}}
	s.handOff(run)
	for _, b := range bufs {
		copy(b, "XX") // srp reused the buffers
	}
	clear(run)
	close(release)
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	s.handOff([]srp.Outgoing{{Dest: srp.ToAll, Data: []byte("m4")}})
	if err := s.stop(); !errors.Is(err, fail) {
		t.Fatalf("stop: %v, want the send's error", err)
	}
	wg.Wait()
	want := [][]string{{"m1", "m2", "m3"}, {"m4"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if s.handOffs != 2 {
		t.Fatalf("handOffs %d, want 2", s.handOffs)
	}
	if err := s.wait(); err != nil {
		t.Fatalf("wait with nothing pending: %v", err)
	}
}
