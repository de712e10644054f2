package stack

import (
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
