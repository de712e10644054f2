package sim

import (
	"testing"
)

// TestScenarios plays every named scenario on corosync's default timers with three seeds
// and proves each both exercised its fault (a membership change beyond the first ring)
// and kept every invariant, liveness included.
func TestScenarios(t *testing.T) {
	for _, sc := range Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				res, err := sc.Run(seed, nil)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if res.Violation != nil {
					t.Errorf("seed %d: %v\nreplay: gototem sim --scenario %s --seed %d --trace", seed, res.Violation, sc.Name, seed)
					continue
				}
				if res.Stats.Delivered == 0 {
					t.Errorf("seed %d: nothing delivered", seed)
				}
				// Every fault but steady loss must cost the cluster its full ring.
				if sc.Name != "mtu-under-loss" && res.Degraded == 0 {
					t.Errorf("seed %d: the fault never shrank the ring", seed)
				}
				t.Logf("seed %d: %d rings (%d degraded), %d delivered, virtual %v", seed, res.Stats.Rings, res.Degraded,
					res.Stats.Delivered, res.Stats.VirtualTime)
			}
		})
	}
}
