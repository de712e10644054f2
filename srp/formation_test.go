package srp

import (
	"fmt"
	"testing"
	"time"
)

// §3, §4, §5, §6.4, §7.2: nodes started together gather, agree, pass the commit token
// twice, recover and install one ring; every node agrees on its id and members and has
// delivered a regular configuration naming all of them.
func TestColdFormation(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 16} {
		t.Run(fmt.Sprintf("%dnodes", n), func(t *testing.T) {
			c := newCluster(t, n)
			c.startAll()
			took := c.mustConverge(60*time.Second, c.ids...)
			t.Logf("%d nodes formed ring %v after %v (virtual)", n, c.nodes[1].p.RingID(), took)
			for _, id := range c.ids {
				cfgs := c.nodes[id].configs()
				last := cfgs[len(cfgs)-1]
				if last.Kind != Regular || len(last.Members) != n || last.RingID != c.nodes[id].p.RingID() {
					t.Fatalf("node %d: last configuration %+v", id, last)
				}
			}
			// As in the real cold start (testdata/captures/udp-formation: singletons 1.5,
			// 2.5, 3.5, then ring 1.9): a fresh store gives seq 0+1, each ring adds 4.
			if want := (RingID{Rep: 1, Seq: 9}); n > 1 && c.nodes[1].p.RingID() != want {
				t.Fatalf("ring %v, corosync forms %v", c.nodes[1].p.RingID(), want)
			}
			// The ring seq moved by 4 per formed ring past the loaded seq (0, +1 at start).
			if seq := c.nodes[1].p.RingID().Seq; (seq-1)%4 != 0 {
				t.Fatalf("ring seq %d is not 1 + 4k", seq)
			}
			if st := c.nodes[1].store; !st.Valid || st.Seq != c.nodes[1].p.RingID().Seq {
				t.Fatalf("ring id store holds %+v, ring is %v", *st, c.nodes[1].p.RingID())
			}
		})
	}
}
