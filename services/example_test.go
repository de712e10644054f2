package services_test

import (
	"fmt"
	"slices"

	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
)

// node is one member's service layer: the sync engine with CPG taking part in its phase,
// as corosync's executive runs them above totempg.
type node struct {
	sync *services.SyncEngine
	cpg  *services.CPG
}

type sent struct {
	from srp.NodeID
	out  services.Outbound
}

// ring plays totem for the examples: what a member multicasts is queued, and each queued
// message is delivered to every live member in one total order, after which every member's
// sync engine gets the chance to run its next phase.
type ring struct {
	nodes map[srp.NodeID]*node
	live  []srp.NodeID
	queue []sent
	// watch is the node whose CPG events are printed.
	watch srp.NodeID
}

func newRing(watch srp.NodeID, ids ...srp.NodeID) *ring {
	r := &ring{nodes: map[srp.NodeID]*node{}, watch: watch}
	for _, id := range ids {
		cpg := services.NewCPG(id)
		se, err := services.NewSyncEngine(
			[]int{services.ServiceCMAP, services.ServiceCPG, services.ServiceVoteQuorum},
			map[int]services.Participant{services.ServiceCPG: cpg})
		if err != nil {
			panic(err)
		}
		r.nodes[id] = &node{sync: se, cpg: cpg}
	}
	return r
}

// configure delivers a regular configuration to members (after a transitional one holding
// those that were already together) and runs everything queued until the ring is quiet.
func (r *ring) configure(rid srp.RingID, members ...srp.NodeID) {
	trans := slices.DeleteFunc(slices.Clone(r.live), func(id srp.NodeID) bool { return !slices.Contains(members, id) })
	r.live = members
	for _, id := range members {
		n := r.nodes[id]
		n.sync.Transitional(trans)
		for _, o := range n.sync.Regular(rid, members) {
			r.queue = append(r.queue, sent{id, o})
		}
	}
	r.run()
}

func (r *ring) send(from srp.NodeID, bodies ...[]byte) {
	for _, b := range bodies {
		r.queue = append(r.queue, sent{from, services.Outbound{Group: "a", Body: b}})
	}
	r.run()
}

func (r *ring) run() {
	for len(r.queue) > 0 {
		q := r.queue[0]
		r.queue = r.queue[1:]
		if !slices.Contains(r.live, q.from) {
			continue // sent by a node that has since left the ring
		}
		for _, id := range r.live {
			n := r.nodes[id]
			if q.out.Group == "sync" {
				n.sync.Deliver(q.from, q.out.Body)
			} else {
				n.cpg.Deliver(q.from, q.out.Body, false)
			}
			evs := n.cpg.Events()
			if id == r.watch {
				printEvents(evs)
			}
		}
		for _, id := range r.live {
			for _, o := range r.nodes[id].sync.Work() {
				r.queue = append(r.queue, sent{id, o})
			}
		}
	}
}

func printEvents(evs []services.CPGEvent) {
	for _, ev := range evs {
		switch {
		case ev.Totem != nil:
			fmt.Println("totem confchg: ring", ev.Totem.RingID, "members", ev.Totem.Members)
		case ev.Confchg != nil:
			c := ev.Confchg
			fmt.Printf("confchg %q: members %s", c.Group, procs(c.Members))
			for _, j := range c.Joined {
				fmt.Printf(" joined %d/%d (%v)", j.NodeID, j.PID, j.Reason)
			}
			for _, l := range c.Left {
				fmt.Printf(" left %d/%d (%v)", l.NodeID, l.PID, l.Reason)
			}
			fmt.Println()
		case ev.Message != nil:
			fmt.Printf("deliver %q from %d/%d: %s\n", ev.Message.Group, ev.Message.Sender, ev.Message.PID, ev.Message.Payload)
		}
	}
}

func procs(ps []services.Process) string {
	s := "["
	for i, p := range ps {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d/%d", p.NodeID, p.PID)
	}
	return s + "]"
}

// Example runs the service layer of two nodes as node 1 sees it: the sync after ring 1.8
// forms (SERVICE_BUILD, then one BARRIER round per service), a CPG group "g" that process
// 100 on node 1 and process 200 on node 2 join, a message to the group, and the confchg
// with reason nodedown when node 2 fails and ring 1.c has node 1 alone.
func Example() {
	r := newRing(1, 1, 2)
	r.configure(srp.RingID{Rep: 1, Seq: 8}, 1, 2)
	fmt.Println("syncs completed:", r.nodes[1].sync.Completed(), r.nodes[2].sync.Completed())

	j1, _ := r.nodes[1].cpg.Join("g", 100)
	r.send(1, j1)
	j2, _ := r.nodes[2].cpg.Join("g", 200)
	r.send(2, j2)
	msg, err := r.nodes[2].cpg.Mcast("g", 200, []byte("hello"))
	if err != nil {
		fmt.Println(err)
		return
	}
	r.send(2, msg...)

	r.configure(srp.RingID{Rep: 1, Seq: 12}, 1)
	fmt.Println("members of g on node 1:", procs(r.nodes[1].cpg.Members("g")))
	// Output:
	// totem confchg: ring 1.8 members [1 2]
	// syncs completed: 1 1
	// confchg "g": members [1/100] joined 1/100 (join)
	// confchg "g": members [1/100 2/200] joined 2/200 (join)
	// deliver "g" from 2/200: hello
	// confchg "g": members [1/100] left 2/200 (nodedown)
	// totem confchg: ring 1.c members [1]
	// members of g on node 1: [1/100]
}

// ExampleEncodeBarrier shows the sync engine's messages on the wire: a BARRIER is the IPC
// request header (id 0 = barrier, size 32, each field 8-aligned) and the ring id it belongs
// to (representative 1, seq 8), zero padded to 32 bytes; a SERVICE_BUILD lists the
// services taking part and is 552 bytes whatever the list, as corosync's fixed-size struct
// is.
func ExampleEncodeBarrier() {
	rid := srp.RingID{Rep: 1, Seq: 8}
	b := services.EncodeBarrier(rid)
	fmt.Printf("barrier: %d bytes\n", len(b))
	fmt.Printf("header:  % x\n", b[:16])
	fmt.Printf("ring id: % x\n", b[16:28])
	sb := services.EncodeServiceBuild(rid, []int{services.ServiceCMAP, services.ServiceCPG, services.ServiceVoteQuorum})
	fmt.Println("service_build:", len(sb), "bytes")
	// Output:
	// barrier: 32 bytes
	// header:  00 00 00 00 00 00 00 00 20 00 00 00 00 00 00 00
	// ring id: 01 00 00 00 08 00 00 00 00 00 00 00
	// service_build: 552 bytes
}
