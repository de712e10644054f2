package stack_test

import (
	"fmt"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
)

// oneNode builds node 1 of a one-node nodelist with votequorum, as a corosync.conf with
// one node and quorum.provider: corosync_votequorum would.
func oneNode() *stack.Stack {
	qcfg := quorum.Config{NodeID: 1, Nodelist: []quorum.NodeEntry{{NodeID: 1, Votes: 1}}}
	s, err := stack.New(stack.Config{SRP: srp.DefaultConfig(1, 1), Quorum: &qcfg, Links: 1})
	if err != nil {
		panic(err) // the configuration above is valid
	}
	return s
}

// drive runs s in virtual time the way totem/ and sim/ drive a Stack: every datagram comes
// back through Receive (the token of a one-node ring is addressed to the node itself, and
// ToAll is always looped back) and Tick is called at NextTick when nothing is in flight.
// Once the ring is OPERATIONAL and the service sync is over, ready runs once (the
// application's moment to join and send). Each datagram is shown to sent and each event to
// event, which returns true to stop.
func drive(s *stack.Stack, ready func(now time.Duration), sent func([]byte), event func(stack.Event) bool) {
	var (
		now      time.Duration
		inflight [][]byte
		started  bool
	)
	s.Start(now)
	for range 10000 {
		rd := s.Ready()
		for _, d := range rd.Datagrams {
			data := append([]byte(nil), d.Data...)
			inflight = append(inflight, data)
			if sent != nil {
				sent(data)
			}
		}
		for _, ev := range rd.Events {
			if event(ev) {
				s.Advance()
				return
			}
		}
		next := rd.NextTick
		s.Advance()

		switch {
		case !started && s.SRP().State() == srp.Operational && !s.Synchronizing():
			ready(now)
			started = true
		case len(inflight) > 0:
			d := inflight[0]
			inflight = inflight[1:]
			if err := s.Receive(now, 0, d); err != nil {
				fmt.Println(err)
				return
			}
		case next != 0:
			now = max(now, next)
			s.Tick(now)
		default:
			fmt.Println("no timer armed")
			return
		}
	}
	fmt.Println("gave up")
}

// Example is one node's whole stack: it forms its ring (a transitional then a regular
// configuration), finishes the service sync (SERVICE_BUILD and one BARRIER per service),
// is quorate with its one vote, joins process 100 to group "app", and has its own message
// delivered to the group in total order.
func Example() {
	s := oneNode()
	drive(s, func(now time.Duration) {
		if err := s.Join(now, "app", 100); err != nil {
			fmt.Println(err)
		}
		if err := s.Send(now, "app", 100, []byte("hello"), srp.Agreed); err != nil {
			fmt.Println(err)
		}
	}, nil, func(ev stack.Event) bool {
		switch {
		case ev.Membership != nil:
			fmt.Println("membership", ev.Membership.Kind, ev.Membership.Members, "ring", ev.Membership.RingID)
		case ev.Quorum != nil:
			fmt.Printf("quorum: quorate=%v members %v votes %d/%d\n", ev.Quorum.Quorate, ev.Quorum.Members,
				ev.Quorum.TotalVotes, ev.Quorum.ExpectedVotes)
		case ev.Synced != nil:
			fmt.Println("synced ring", *ev.Synced)
		case ev.Group != nil:
			for _, j := range ev.Group.Joined {
				fmt.Printf("group %q: node %d pid %d joined (%v)\n", ev.Group.Group, j.NodeID, j.PID, j.Reason)
			}
		case ev.Message != nil:
			fmt.Printf("message to %q from node %d pid %d: %s\n", ev.Message.Group, ev.Message.Sender,
				ev.Message.PID, ev.Message.Payload)
			return true
		}
		return false
	})
	// Output:
	// quorum: quorate=true members [] votes 1/1
	// membership transitional [] ring 1.5
	// membership regular [1] ring 1.5
	// synced ring 1.5
	// quorum: quorate=true members [1] votes 1/1
	// group "app": node 1 pid 100 joined (join)
	// message to "app" from node 1 pid 100: hello
}

// ExampleDescribePacket takes apart the totempg packets a node multicasts, as a capture
// decoder does: each MCAST's payload packs one or more messages, each with the groups it
// is for and the service message it carries. Shown here: the one-node ring of Example up
// to its first application message. votequorum's NODEINFO from start-up goes first; then
// the sync: a SERVICE_BUILD and one BARRIER per service phase (cmap, cpg, quorum,
// votequorum), the last packed with votequorum's NODEINFOs (its own and the quorum
// device's, nodeid 0) as real nodes pack them; then CPG's PROCJOIN and the MCAST.
func ExampleDescribePacket() {
	s := oneNode()
	var m srp.Mcast
	drive(s, func(now time.Duration) {
		if err := s.Join(now, "app", 100); err != nil {
			fmt.Println(err)
		}
		if err := s.Send(now, "app", 100, []byte("hello"), srp.Agreed); err != nil {
			fmt.Println(err)
		}
	}, func(datagram []byte) {
		if h, _, err := srp.PeekHeader(datagram); err != nil || h.Type != srp.TypeMcast || m.Decode(datagram) != nil {
			return
		}
		_, _, pieces, err := stack.DescribePacket(m.Payload, false)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, p := range pieces {
			fmt.Printf("mcast seq %d: %d bytes groups %q %s\n", m.Seq, p.Len, p.Groups, p.Service)
		}
	}, func(ev stack.Event) bool { return ev.Message != nil })
	// Output:
	// mcast seq 1: 37 bytes groups ["a"] votequorum.nodeinfo
	// mcast seq 2: 560 bytes groups ["sync"] sync.service_build
	// mcast seq 3: 333 bytes groups ["a"] cmap.mcast
	// mcast seq 3: 40 bytes groups ["sync"] sync.barrier
	// mcast seq 4: 40 bytes groups ["sync"] sync.barrier
	// mcast seq 5: 40 bytes groups ["sync"] sync.barrier
	// mcast seq 6: 37 bytes groups ["a"] votequorum.nodeinfo
	// mcast seq 6: 37 bytes groups ["a"] votequorum.nodeinfo
	// mcast seq 6: 40 bytes groups ["sync"] sync.barrier
	// mcast seq 7: 173 bytes groups ["a"] cpg.procjoin
	// mcast seq 8: 194 bytes groups ["a"] cpg.mcast
}
