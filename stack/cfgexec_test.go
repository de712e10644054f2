package stack

import (
	"slices"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// corosync-cfgtool -k: only the named node gets the kill, with the sender and reason; -R: every
// node reloads, and only the sender sees its own.
func TestCfgKillAndReload(t *testing.T) {
	nw := newNet(t, 3, false)
	nw.run(3 * time.Second)
	if err := nw.nodes[1].CfgKillNode(nw.now, 2, "test kill"); err != nil {
		t.Fatal(err)
	}
	nw.collect(1)
	if err := nw.nodes[3].CfgReload(nw.now); err != nil {
		t.Fatal(err)
	}
	nw.collect(3)
	nw.run(time.Second)
	for id := srp.NodeID(1); id <= 3; id++ {
		var kills []CfgKill
		var reloads []CfgReload
		for _, ev := range nw.events[id] {
			if ev.CfgKill != nil {
				kills = append(kills, *ev.CfgKill)
			}
			if ev.CfgReload != nil {
				reloads = append(reloads, *ev.CfgReload)
			}
		}
		if id == 2 && (len(kills) != 1 || kills[0] != (CfgKill{From: 1, Reason: "test kill"})) {
			t.Fatalf("node 2 kills %+v", kills)
		}
		if id != 2 && len(kills) != 0 {
			t.Fatalf("node %d was killed too: %+v", id, kills)
		}
		if len(reloads) != 1 || reloads[0] != (CfgReload{From: 3, Own: id == 3}) {
			t.Fatalf("node %d reloads %+v", id, reloads)
		}
	}
	if _, err := encodeCfgKill(1, string(make([]byte, 257))); err == nil {
		t.Fatal("a 257-byte reason was accepted")
	}
}

// A node seals with the new knet crypto configuration only when every peer has it: its own
// ACTIVATE came back and every member of the ring then sent its ACTIVATE (sent once that
// member staged the new one). It drops the old configuration only when nobody may still
// seal with it: its own CLEANUP came back and every member then sent its CLEANUP (sent once
// that member seals with the new one), or left the ring.
func TestCryptoPhasesWaitForEveryMember(t *testing.T) {
	nw := newNet(t, 3, false)
	nw.run(3 * time.Second)
	phases := func(id srp.NodeID) []int {
		var out []int
		for _, ev := range nw.events[id] {
			if ev.CfgCrypto != nil {
				out = append(out, ev.CfgCrypto.Phase)
			}
		}
		return out
	}
	send := func(id srp.NodeID, phase int) {
		t.Helper()
		if err := nw.nodes[id].CfgCryptoReconfig(nw.now, phase); err != nil {
			t.Fatal(err)
		}
		nw.collect(id)
		nw.run(500 * time.Millisecond)
	}
	send(2, CryptoPhaseActivate)
	send(1, CryptoPhaseActivate)
	if got := phases(1); len(got) != 0 {
		t.Fatalf("node 1 activated while node 3 had not staged: %v", got)
	}
	if got := phases(2); len(got) != 0 {
		t.Fatalf("node 2 activated while node 3 had not staged: %v", got)
	}
	send(3, CryptoPhaseActivate)
	for id := srp.NodeID(1); id <= 3; id++ {
		if got := phases(id); !slices.Equal(got, []int{CryptoPhaseActivate}) {
			t.Fatalf("node %d phases once every node sent ACTIVATE: %v", id, got)
		}
	}
	send(1, CryptoPhaseCleanup)
	if got := phases(1); !slices.Equal(got, []int{CryptoPhaseActivate}) {
		t.Fatalf("node 1 cleaned up before nodes 2 and 3 sent CLEANUP: %v", got)
	}
	send(2, CryptoPhaseCleanup)
	if got := phases(1); len(got) != 1 {
		t.Fatalf("node 1 cleaned up while node 3 may still seal with the old key: %v", got)
	}
	// Node 3 leaves without its CLEANUP: node 1 no longer waits for it.
	nw.island = map[srp.NodeID]int{3: 1}
	nw.run(6 * time.Second)
	if got := phases(1); !slices.Equal(got, []int{CryptoPhaseActivate, CryptoPhaseCleanup}) {
		t.Fatalf("node 1 phases after node 3 left: %v", got)
	}
	if got := phases(2); !slices.Equal(got, []int{CryptoPhaseActivate, CryptoPhaseCleanup}) {
		t.Fatalf("node 2 (its own CLEANUP and node 1's, node 3 gone) phases %v", got)
	}
}
