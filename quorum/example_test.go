package quorum_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gototem/gototem/quorum"
)

// bus plays totem and the sync engine for a few votequorum Machines, as doc.go's driver
// contract asks: every body a node multicasts is delivered to every member of its ring,
// itself included, in one total order, and each new ring runs votequorum's sync phase
// (Sync, the members' NODEINFOs, SyncActivate). Time stands still: these examples need no
// timer.
type bus struct {
	nodes map[quorum.NodeID]*quorum.Machine
	ring  map[quorum.NodeID][]quorum.NodeID // node → members of its current ring
	seq   uint64
}

func boot(nodelist []quorum.NodeEntry, cfg quorum.Config, ids ...quorum.NodeID) *bus {
	b := &bus{nodes: map[quorum.NodeID]*quorum.Machine{}, ring: map[quorum.NodeID][]quorum.NodeID{}}
	for _, id := range ids {
		c := cfg
		c.NodeID, c.Nodelist = id, nodelist
		m, err := quorum.New(c, &quorum.MemoryEVStore{}, nil)
		if err != nil {
			panic(err) // corosync would exit 20; the examples' configurations are valid
		}
		b.nodes[id] = m
		m.Start(0)
		b.form(id) // totem first forms a ring of the node alone
	}
	return b
}

// form installs a new ring of members and runs votequorum's sync in it.
func (b *bus) form(members ...quorum.NodeID) {
	b.drain()
	slices.Sort(members)
	b.seq += 4
	rid := quorum.RingID{Rep: members[0], Seq: b.seq}
	for _, id := range members {
		b.ring[id] = members
		b.nodes[id].Sync(0, rid, members)
	}
	for _, from := range members {
		msgs, _ := b.nodes[from].SyncProcess(0)
		for _, body := range msgs {
			b.deliver(from, body)
		}
	}
	for _, id := range members {
		b.nodes[id].SyncActivate(0)
	}
	b.drain()
}

func (b *bus) deliver(from quorum.NodeID, body []byte) {
	for _, to := range b.ring[from] {
		if err := b.nodes[to].Deliver(0, from, body, false); err != nil {
			panic(err)
		}
	}
}

// drain hands out every Ready until nobody has anything left to multicast.
func (b *bus) drain() {
	for more := true; more; {
		more = false
		for _, id := range slices.Sorted(maps.Keys(b.nodes)) {
			m := b.nodes[id]
			rd := m.Ready()
			msgs := slices.Clone(rd.Messages)
			m.Advance()
			for _, body := range msgs {
				more = true
				b.deliver(id, body)
			}
		}
	}
}

func (b *bus) show(id quorum.NodeID) {
	m := b.nodes[id]
	fmt.Printf("node %d: ring %v quorate=%v expected=%d total=%d quorum=%d\n", id, b.ring[id],
		m.Quorate(), m.ExpectedVotes(), m.Snapshot().Local.TotalVotes, m.Quorum())
}

func oneVoteEach(n int) []quorum.NodeEntry {
	l := make([]quorum.NodeEntry, n)
	for i := range l {
		l[i] = quorum.NodeEntry{NodeID: quorum.NodeID(i + 1), Votes: 1}
	}
	return l
}

// Example runs votequorum for a three-node nodelist of which only nodes 1 and 2 are up.
// Each node alone has 1 of 3 expected votes and is not quorate; once totem puts both in
// one ring and their NODEINFOs are exchanged, 2 votes reach the quorum of 2 (3/2+1). When
// node 2 disappears, node 1's new ring holds 1 vote again and activity is blocked.
func Example() {
	b := boot(oneVoteEach(3), quorum.Config{}, 1, 2)
	b.show(1)
	b.form(1, 2)
	b.show(1)
	b.show(2)
	delete(b.nodes, 2)
	b.form(1)
	b.show(1)
	// Output:
	// node 1: ring [1] quorate=false expected=3 total=1 quorum=2
	// node 1: ring [1 2] quorate=true expected=3 total=2 quorum=2
	// node 2: ring [1 2] quorate=true expected=3 total=2 quorum=2
	// node 1: ring [1] quorate=false expected=3 total=1 quorum=2
}

// ExampleConfig_twoNode shows two_node: quorum is 1 so either node of a two-node cluster
// can survive the other's loss, and the wait_for_all it implies keeps a freshly booted
// node inquorate until it has seen its peer once.
func ExampleConfig_twoNode() {
	b := boot(oneVoteEach(2), quorum.Config{TwoNode: true}, 1, 2)
	fmt.Println("two_node", b.nodes[1].TwoNode(), "wait_for_all", b.nodes[1].WaitingForAll())
	b.show(1)
	b.form(1, 2)
	b.show(1)
	fmt.Println("wait_for_all", b.nodes[1].WaitingForAll())
	delete(b.nodes, 2)
	b.form(1)
	b.show(1)
	// Output:
	// two_node true wait_for_all true
	// node 1: ring [1] quorate=false expected=2 total=1 quorum=1
	// node 1: ring [1 2] quorate=true expected=2 total=2 quorum=1
	// wait_for_all false
	// node 1: ring [1] quorate=true expected=2 total=1 quorum=1
}

// ExampleFormatStatus renders `corosync-quorumtool -s` for node 1 of the three-node
// cluster above with nodes 1 and 2 up. The caller supplies what is not votequorum state
// (the date, the names), so the text is deterministic.
func ExampleFormatStatus() {
	b := boot(oneVoteEach(3), quorum.Config{}, 1, 2)
	b.form(1, 2)
	text := quorum.FormatStatus(quorum.View{
		Date:     "Thu Dec  3 07:00:00 2026",
		Provider: "corosync_votequorum",
		NodeID:   1,
		Status:   b.nodes[1].Snapshot(),
		Names:    map[quorum.NodeID]string{1: "alpha", 2: "beta"},
	})
	// corosync-quorumtool leaves trailing blanks after "Quorum:" and "Flags:", and so does
	// FormatStatus; they are trimmed here only because gofmt trims them from the Output
	// comment.
	for line := range strings.Lines(text) {
		fmt.Println(strings.TrimRight(line, " \n"))
	}
	// Output:
	// Quorum information
	// ------------------
	// Date:             Thu Dec  3 07:00:00 2026
	// Quorum provider:  corosync_votequorum
	// Nodes:            2
	// Node ID:          1
	// Ring ID:          1.c
	// Quorate:          Yes
	//
	// Votequorum information
	// ----------------------
	// Expected votes:   3
	// Highest expected: 3
	// Total votes:      2
	// Quorum:           2
	// Flags:            Quorate
	//
	// Membership information
	// ----------------------
	//     Nodeid      Votes Name
	//          1          1 alpha (local)
	//          2          1 beta
}
