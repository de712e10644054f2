package sim

import (
	"bytes"
	"os"
	"strconv"
	"testing"
)

// The full-stack campaign over knet (DefaultKnetStackScheduleOptions: two links, the
// link_mode drawn from each seed, the link faults beside every other fault): the
// process-group checkers, quorum exclusivity and liveness hold. CI budget: 300 schedules
// (about 20 s), 40 under -race (about 23 s); GOTOTEM_FULL=1 runs 3000 (about 135 s, clean),
// GOTOTEM_KNET_SCHEDULES=N any number. The knet tests of this package together take about
// 35 s, and 62 s under -race. Replay a seed with `gototem sim --stack --knet --seed S --schedules 1 --trace`.
func TestKnetStackCampaign(t *testing.T) {
	n := 300
	if raceEnabled {
		n = 40
	}
	if os.Getenv("GOTOTEM_FULL") == "1" {
		n = 3000
	}
	if v := os.Getenv("GOTOTEM_KNET_SCHEDULES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("GOTOTEM_KNET_SCHEDULES=%q: want a positive count", v)
		}
	}
	o := DefaultKnetStackScheduleOptions()
	var modes [3]int
	sum, err := campaign(1, n, nil, func(seed uint64) (Result, error) {
		modes[o.Knet.forSchedule(seed, 3).Mode]++
		res, err := RunStackSchedule(seed, o, nil)
		return res, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sum.Violations {
		t.Errorf("seed %d: %v\nreplay: gototem sim --stack --knet --seed %d --schedules 1 --trace", v.Seed, v, v.Seed)
	}
	var links [3]int
	// The link faults and knet's reaction are there: the first schedules' traces show links
	// cut alone and knet taking them down and up.
	for seed := uint64(1); seed <= 3; seed++ {
		var tr bytes.Buffer
		if _, err := RunStackSchedule(seed, o, &tr); err != nil {
			t.Fatal(err)
		}
		links[0] += bytes.Count(tr.Bytes(), []byte("cut ring "))
		links[1] += bytes.Count(tr.Bytes(), []byte(" on ring ")) + bytes.Count(tr.Bytes(), []byte(" on link "))
		links[2] += bytes.Count(tr.Bytes(), []byte(" knet host "))
	}
	if links[0]+links[1] == 0 || links[2] == 0 {
		t.Fatalf("seeds 1-3: %d link cuts, %d pair cuts and flaps, %d knet link events: the link faults did not run", links[0], links[1], links[2])
	}
	t.Logf("seeds 1-3: %d link cuts, %d pair cuts and flaps, %d knet link events", links[0], links[1], links[2])
	t.Logf("%d schedules (link_mode passive/active/rr %v), %v virtual, %d faults, %d rings, %d sent, %d delivered",
		sum.Schedules, modes, sum.VirtualTime, sum.Faults, sum.Rings, sum.Sends, sum.Delivered)
}
