package interop

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestVotequorumExpectedVotesNotification: a libvotequorum tracker (testdata/vqtrack.c) on a
// corosync node and one on a gototem node of the same ring get the same callbacks when
// corosync-quorumtool -e sets expected votes, from either kind of node and even to the value
// already in force: corosync's expected-votes notification (then its quorum notification).
func TestVotequorumExpectedVotesNotification(t *testing.T) {
	c := mixedCluster(t, "udpu", Corosync, Corosync, Gototem)
	formRing(t, c)
	bin, err := BuildC(mustTestdata(t, "vqtrack.c"), filepath.Join(t.TempDir(), "vqtrack"), "libvotequorum")
	if err != nil {
		t.Fatal(err)
	}
	trackers := map[int]*Proc{}
	for _, id := range []int{1, 3} {
		p, err := c.Node(id).StartProc(bin)
		if err != nil {
			t.Fatal(err)
		}
		// CS_TRACK_CHANGES starts with the current state, from both engines (votequorum.c's
		// trackstart sends the node list and the verdict).
		if err := p.WaitFor(10*time.Second, "tracking and the initial state", func(l []string) bool {
			return slices.Equal(l, []string{"tracking", "nodelist 3 ctx=42", "quorum 1 3 ctx=42"})
		}); err != nil {
			t.Fatalf("node %d: %v (lines %q)", id, err, p.Lines())
		}
		trackers[id] = p
	}
	ctx := context.Background()
	for _, from := range []int{1, 3} {
		mark := map[int]int{1: len(trackers[1].Lines()), 3: len(trackers[3].Lines())}
		if out, err := c.Node(from).Tool(ctx, "corosync-quorumtool", "-e", "3"); err != nil {
			t.Fatalf("corosync-quorumtool -e 3 on node %d: %v: %s", from, err, out)
		}
		for _, id := range []int{1, 3} {
			if err := trackers[id].WaitFor(10*time.Second, "expected 3", func(l []string) bool {
				return slices.Contains(l[mark[id]:], "expected 3 ctx=42")
			}); err != nil {
				t.Fatalf("-e 3 on node %d: node %d's tracker: %v", from, id, err)
			}
		}
		time.Sleep(500 * time.Millisecond) // what follows the notification, if anything
		got := map[int]string{}
		for _, id := range []int{1, 3} {
			got[id] = strings.Join(trackers[id].Lines()[mark[id]:], " | ")
		}
		t.Logf("-e 3 on node %d: corosync's tracker %q, gototem's %q", from, got[1], got[3])
		if got[1] != got[3] {
			t.Errorf("-e 3 on node %d: corosync's tracker saw %q, gototem's %q", from, got[1], got[3])
		}
	}
}

func mustTestdata(t *testing.T, name string) string {
	t.Helper()
	p, err := testdataFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
