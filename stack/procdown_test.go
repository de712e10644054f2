package stack

import (
	"testing"
	"time"

	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
)

// A local process that went away without leaving is removed with reason PROCDOWN on every node
// (corosync's cpg_lib_exit_fn); cpg_leave's reason stays LEAVE.
func TestLeaveReasons(t *testing.T) {
	nw := newNet(t, 2, false)
	nw.run(3 * time.Second)
	for _, pid := range []uint32{10, 11} {
		if err := nw.nodes[1].Join(nw.now, "g", pid); err != nil {
			t.Fatal(err)
		}
		nw.collect(1)
	}
	// Node 2 needs a member of its own to get the group's confchgs.
	if err := nw.nodes[2].Join(nw.now, "g", 20); err != nil {
		t.Fatal(err)
	}
	nw.collect(2)
	nw.run(time.Second)
	if err := nw.nodes[1].Leave(nw.now, "g", 10); err != nil {
		t.Fatal(err)
	}
	if err := nw.nodes[1].LeaveFor(nw.now, "g", 11, services.ReasonProcDown); err != nil {
		t.Fatal(err)
	}
	nw.collect(1)
	nw.run(time.Second)
	for id := srp.NodeID(1); id <= 2; id++ {
		reasons := map[uint32]services.Reason{}
		for _, ev := range nw.events[id] {
			if ev.Group != nil {
				for _, l := range ev.Group.Left {
					reasons[l.PID] = l.Reason
				}
			}
		}
		if reasons[10] != services.ReasonLeave || reasons[11] != services.ReasonProcDown {
			t.Fatalf("node %d left reasons %v, want 10: LEAVE, 11: PROCDOWN", id, reasons)
		}
	}
}
