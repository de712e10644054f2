package totem

import (
	"context"
	"testing"
	"time"
)

// Three gototem nodes over knet on loopback: links come up by ping/pong, then the same
// ring, group and total-order checks as over udpu, and a LEAVE re-forms quickly.
func TestNodesOverKnet(t *testing.T) {
	testCluster(t, "knet")
}

// Status shows knet's own link state per peer (what corosync-cfgtool -s prints): connected
// once the ping/pong exchange brought the link up, and after a peer stops, down again once
// its pong timeout has passed.
func TestKnetStatusPeers(t *testing.T) {
	ms := startCluster(t, "knet", 2)
	waitFor(t, 10*time.Second, "a 2-node ring", ringOf(ms, []NodeID{1, 2}))
	peers := func() map[NodeID]bool {
		st := ms[0].node.Status()
		if len(st.Links) != 1 || st.Links[0].Link != 0 {
			t.Fatalf("status links %+v, want link 0 only", st.Links)
		}
		return st.Links[0].Peers
	}
	if p := peers(); len(p) != 1 || !p[2] {
		t.Fatalf("node 1's knet peers %v, want node 2 connected", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ms[1].node.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// token 1000 ms: ping timeout 500 ms, times the young link's backoff (up to 10).
	waitFor(t, 15*time.Second, "node 2's link down", func() bool { return !peers()[2] })
}
