package stack

import (
	"slices"
	"testing"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/srp"
)

// A two-node cluster with a quorum device (quorum.device.model set, no two_node): each node's
// device registers through the Stack and polls it as corosync-qdevice does, voting for its
// partition the way qnetd's ffsplit does (a tie goes to the partition holding the lowest
// nodeid). With the ring whole both nodes count 3 votes; with the link cut exactly node 1 stays
// quorate. This is the path corosync-qdevice takes through gototem's votequorum IPC.
func TestQdeviceFFSplitKeepsOneSide(t *testing.T) {
	nw := newNet(t, 2, false)
	for id := srp.NodeID(1); id <= 2; id++ {
		cfg := nw.nodes[id].cfg
		qc := quorum.Config{NodeID: quorum.NodeID(id), Device: quorum.DeviceConfig{Model: "net", Timeout: 2 * time.Second, SyncTimeout: 4 * time.Second}}
		for j := 1; j <= 2; j++ {
			qc.Nodelist = append(qc.Nodelist, quorum.NodeEntry{NodeID: quorum.NodeID(j), Votes: 1})
		}
		cfg.Quorum = &qc
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nw.nodes[id] = s
		s.Start(0)
		nw.collect(id)
	}
	nw.run(3 * time.Second)

	registered := map[srp.NodeID]bool{}
	for id, s := range nw.nodes {
		if err := s.QdeviceRegister(nw.now, "Qdevice"); err != nil {
			t.Fatalf("node %d register: %v", id, err)
		}
		nw.collect(id)
	}
	nw.run(200 * time.Millisecond)
	for id := range nw.nodes {
		for _, ev := range nw.events[id] {
			if r := ev.Registration; r != nil {
				if r.Err != nil || r.Name != "Qdevice" {
					t.Fatalf("node %d registration %+v", id, r)
				}
				registered[id] = true
			}
		}
		if !registered[id] {
			t.Fatalf("node %d: no registration result", id)
		}
	}
	// A second registration under another name is refused at once (CS_ERR_EXIST).
	if err := nw.nodes[1].QdeviceRegister(nw.now, "Other"); err == nil {
		t.Fatal("a second device name was accepted")
	}

	// ffsplit: a partition with more than half of the nodes wins; a tie goes to the side of
	// the lowest nodeid.
	vote := func(members []srp.NodeID) bool {
		return 2*len(members) > 2 || (2*len(members) == 2 && slices.Contains(members, 1))
	}
	poll := func() {
		for id, s := range nw.nodes {
			ring := s.Quorum().CurrentRing()
			if err := s.QdevicePoll(nw.now, "Qdevice", vote(s.SRP().Members()), ring); err != nil {
				t.Fatalf("node %d poll: %v", id, err)
			}
			nw.collect(id)
		}
	}
	// Poll every 500 ms for d, as corosync-qdevice polls well within the timeout.
	runPolling := func(d time.Duration) {
		for end := nw.now + d; nw.now < end; {
			poll()
			nw.run(500 * time.Millisecond)
		}
	}
	runPolling(2 * time.Second)
	for id, s := range nw.nodes {
		info, _ := s.Quorum().GetInfo(quorum.NodeID(id))
		if !s.Quorum().Quorate() || info.TotalVotes != 3 || info.Flags&quorum.InfoQdeviceCastVote == 0 {
			t.Fatalf("node %d whole ring: quorate %v, info %+v", id, s.Quorum().Quorate(), info)
		}
	}

	nw.cut[0] = true
	runPolling(8 * time.Second)
	for id, s := range nw.nodes {
		if got := s.SRP().Members(); !slices.Equal(got, []srp.NodeID{id}) {
			t.Fatalf("node %d members after the cut %v", id, got)
		}
	}
	if q := nw.lastQuorum(1); q == nil || !q.Quorate || q.TotalVotes != 2 {
		t.Fatalf("node 1 (tie winner) after the cut: %+v", q)
	}
	if q := nw.lastQuorum(2); q == nil || q.Quorate {
		t.Fatalf("node 2 (tie loser) after the cut: %+v", q)
	}

	// A device that stops polling loses its vote after quorum.device.timeout.
	nw.run(3 * time.Second)
	if nw.nodes[1].Quorum().Quorate() {
		t.Fatal("node 1 still quorate with its device silent past the timeout")
	}
}
