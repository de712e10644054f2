package rrp_test

import (
	"fmt"
	"time"

	"github.com/gototem/gototem/rrp"
	"github.com/gototem/gototem/srp"
)

var ring = srp.RingID{Rep: 1, Seq: 8}

// orfToken is the ORF token with the given token_seq on ring 1.8, as srp sends it.
func orfToken(tokenSeq uint32) []byte {
	t := srp.ORFToken{Header: srp.Header{Type: srp.TypeORFToken, NodeID: 1}, RingID: ring, TokenSeq: tokenSeq}
	return t.AppendEncode(nil)
}

// Example is a passive redundant ring (rrp_mode: passive) over two links. While the token
// arrives on both links in turn nothing happens; when link 1 stops carrying it, link 1
// falls behind link 0 by one token per rotation, and once it lags by more than
// rrp_problem_count_threshold (10) tokens it is marked FAULTY, with corosync 2.x's
// message. Passive mode then sends every multicast on link 0 only.
func Example() {
	r, err := rrp.New(rrp.Config{Mode: rrp.Passive, Links: 2, Token: time.Second,
		LinkAddrs: []string{"10.0.0.1", "10.0.1.1"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	var now time.Duration
	seq := uint32(1)
	rotate := func(links ...int) {
		for _, l := range links {
			now += 10 * time.Millisecond
			r.Tick(now)
			r.Receive(now, l, orfToken(seq))
			seq++
		}
	}
	for range 10 {
		rotate(0, 1) // healthy: the representative alternates links rotation by rotation
	}
	fmt.Println("events while healthy:", len(r.Events()))

	cut := seq
	for len(r.Events()) == 0 && seq < cut+100 {
		// Link 1 is cut: the odd rotations' tokens are lost on it and srp's retransmission
		// arrives on link 0.
		rotate(0)
	}
	fmt.Println("tokens on link 0 alone before the fault:", seq-cut)
	for _, st := range r.Status() {
		fmt.Printf("link %d faulty=%v: %s\n", st.Link, st.Faulty, st.Text)
	}
	var links []int
	for i := uint32(1); i <= 3; i++ {
		m := srp.Mcast{Header: srp.Header{Type: srp.TypeMcast, NodeID: 1, Encapsulated: srp.NotEncapsulated},
			SystemFrom: 1, RingID: ring, Seq: i, Payload: []byte("x")}
		r.Send(now, srp.Outgoing{Dest: srp.ToAll, Type: srp.TypeMcast, Data: m.AppendEncode(nil)},
			func(link int, _ srp.Outgoing) { links = append(links, link) })
	}
	fmt.Println("multicasts went on links", links)
	// Output:
	// events while healthy: 0
	// tokens on link 0 alone before the fault: 11
	// link 0 faulty=false: ring 0 active with no faults
	// link 1 faulty=true: Marking ringid 1 interface 10.0.1.1 FAULTY
	// multicasts went on links [0 0 0]
}

// ExampleRing_Receive shows active mode (rrp_mode: active): every datagram goes on every
// link, and Receive hands srp only the first copy of each.
func ExampleRing_Receive() {
	r, err := rrp.New(rrp.Config{Mode: rrp.Active, Links: 2, Token: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok := orfToken(5)
	r.Send(0, srp.Outgoing{Dest: srp.ToNode, To: 2, Type: srp.TypeORFToken, Data: tok},
		func(link int, _ srp.Outgoing) { fmt.Println("token sent on link", link) })
	fmt.Println("copy on link 1 to srp:", r.Receive(0, 1, tok))
	fmt.Println("copy on link 0 to srp:", r.Receive(0, 0, tok))
	fmt.Println("duplicates dropped:", r.Counters().Duplicates)
	// Output:
	// token sent on link 0
	// token sent on link 1
	// copy on link 1 to srp: true
	// copy on link 0 to srp: false
	// duplicates dropped: 1
}

// ExampleNew shows the timing New derives and checks, as corosync 2.x's totemconfig did:
// rrp_token_expired_timeout defaults to (token − 50 ms) / rrp_problem_count_threshold, and
// a configuration where threshold late tokens could not mark a link faulty before the
// token timeout loses the whole ring is refused.
func ExampleNew() {
	r, err := rrp.New(rrp.Config{Mode: rrp.Active, Links: 2, Token: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	c := r.Config()
	fmt.Println("rrp_problem_count_threshold:", c.ProblemCountThreshold)
	fmt.Println("rrp_problem_count_mcast_threshold:", c.ProblemCountMcastThreshold)
	fmt.Println("rrp_token_expired_timeout:", c.TokenExpiredTimeout)

	_, err = rrp.New(rrp.Config{Mode: rrp.Active, Links: 2, Token: time.Second,
		TokenExpiredTimeout: 100 * time.Millisecond})
	fmt.Println(err)
	// Output:
	// rrp_problem_count_threshold: 10
	// rrp_problem_count_mcast_threshold: 100
	// rrp_token_expired_timeout: 95ms
	// rrp: rrp_problem_count_threshold (10) * rrp_token_expired_timeout (100ms) must not exceed token - 50 ms (950ms)
}
