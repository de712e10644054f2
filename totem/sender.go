package totem

import (
	"sync"

	"github.com/gototem/gototem/srp"
)

// The accelerated ring's post-token multicasts, sent off the event loop.
//
// In the accelerated ring (srp/accel.go) a visit's Ready ends with the token followed by the
// visit's last MCASTs (up to gototem_accelerated_window of them). Sent in line, those
// sendmmsg calls (two copies of each datagram on a 3-node udpu ring) hold mu, so this node
// neither reads its successor's MCASTs nor takes its next token until they are out: the token
// left early, but the holder itself still waited for its whole window. transmit therefore
// sends everything up to the token itself and hands the MCASTs after it to the link's
// postTokenSender, whose goroutine sends them while the event loop goes on with the next
// input.
//
// Order and ownership: a Link's Send belongs to one goroutine at a time. The event loop waits
// for the pending hand-off (wait) before it uses the link again (the next transmit, a
// reload's SetMembers, closing the links), so the link sees its datagrams in srp's order and
// never two Sends at once. The datagrams' Data point into srp's buffers, valid only until
// the second Advance after the Ready (stack.ReuseDatagramBuffers), which the event loop
// reaches before the goroutine is done (the flush that hands off loops the node's own copies
// back in a second round); the hand-off therefore copies them into the sender's arena first
// (a memcpy of at most the window's bytes, against the kernel's cost of sending each one
// once per member).
type postTokenSender struct {
	send func([]srp.Outgoing) error // the link's Send
	req  chan struct{}              // a hand-off is ready in out
	done chan error                 // the hand-off's Send returned
	// out and arena belong to the event loop until a hand-off, then to the goroutine until
	// its done is received.
	out     []srp.Outgoing
	arena   []byte
	pending bool
	// handOffs counts the visits whose post-token MCASTs went out here (tests read it).
	handOffs uint64
}

func newPostTokenSender(send func([]srp.Outgoing) error, wg *sync.WaitGroup) *postTokenSender {
	s := &postTokenSender{send: send, req: make(chan struct{}, 1), done: make(chan error, 1)}
	wg.Add(1)
	go s.run(wg)
	return s
}

func (s *postTokenSender) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for range s.req {
		s.done <- s.send(s.out)
	}
}

// handOff copies run (the MCASTs after a visit's token) and sends it on the sender's
// goroutine. The caller has waited for the previous hand-off.
func (s *postTokenSender) handOff(run []srp.Outgoing) {
	size := 0
	for _, o := range run {
		size += len(o.Data)
	}
	if cap(s.arena) < size {
		s.arena = make([]byte, 0, size+size/4)
	}
	a := s.arena[:0]
	s.out = s.out[:0]
	for _, o := range run {
		start := len(a)
		a = append(a, o.Data...)
		o.Data = a[start:len(a):len(a)]
		s.out = append(s.out, o)
	}
	s.arena = a
	s.pending = true
	s.handOffs++
	s.req <- struct{}{}
}

// wait returns the pending hand-off's send error (nil when none is pending).
func (s *postTokenSender) wait() error {
	if !s.pending {
		return nil
	}
	s.pending = false
	return <-s.done
}

// stop ends the goroutine once the pending hand-off is done.
func (s *postTokenSender) stop() error {
	err := s.wait()
	close(s.req)
	return err
}

// splitAfterToken returns where the MCASTs that follow a visit's token start in out (one
// link's datagrams of one Ready), or -1 when out does not end that way: only a run of
// ToAll datagrams after an ORF token is sent off the event loop.
func splitAfterToken(out []srp.Outgoing) int {
	for i := len(out) - 1; i >= 0; i-- {
		o := out[i]
		if o.Dest == srp.ToAll {
			continue
		}
		if o.Dest == srp.ToNode && o.Type == srp.TypeORFToken && i < len(out)-1 {
			return i + 1
		}
		return -1
	}
	return -1
}
