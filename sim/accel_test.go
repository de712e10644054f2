package sim

import (
	"os"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// accelCampaignSizes: the accelerated-ring campaigns' schedule counts (bare srp, full
// stack). CI without the race detector runs 2,000 in all (about a minute); under it 100,
// with -short 40; GOTOTEM_ACCEL_FULL=1 runs 2,000 of each at their default lengths.
func accelCampaignSizes(t *testing.T) (bare, stack int, full bool) {
	switch {
	case os.Getenv("GOTOTEM_ACCEL_FULL") != "":
		return 2000, 2000, true
	case testing.Short():
		return 20, 20, false
	case raceEnabled:
		return 50, 50, false
	}
	return 1000, 1000, false
}

func checkAccelCampaign(t *testing.T, what string, n int, sum *CampaignSummary, err error, replay string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sum.Violations {
		t.Errorf("%s: %v\nreplay: %s --seed %d --schedules 1 --trace", what, v, replay, v.Seed)
	}
	if sum.Delivered < sum.Sends || sum.Rings < uint64(2*n) || sum.Faults < uint64(5*n) {
		t.Errorf("%s: campaign too quiet: %+v", what, sum)
	}
	t.Logf("%s: %d schedules, %v virtual: %d faults, %d membership changes, %d sent, %d delivered, %d violations",
		what, n, sum.VirtualTime.Round(time.Second), sum.Faults, sum.Rings, sum.Sends, sum.Delivered, len(sum.Violations))
}

// TestAcceleratedCampaign runs the random fault campaigns (every fault kind, every EVS
// checker; the full-stack one adds the per-group checkers and quorum exclusivity) with
// every node on the accelerated ring. The bare campaign runs half its schedules with window
// 1 under five times the default traffic, so visits are split (some MCASTs before the
// token, one after), and half with window 17 (all of a visit after the token); the
// full-stack one with window 2. In CI the bare schedules are 20 s of faults instead of 60.
func TestAcceleratedCampaign(t *testing.T) {
	bare, stack, full := accelCampaignSizes(t)
	split := DefaultScheduleOptions()
	split.Accelerated = 1
	split.Workload.Rate = 50
	all := DefaultScheduleOptions()
	all.Accelerated = 17
	if !full {
		split.Duration, all.Duration = 20*time.Second, 20*time.Second
	}
	sum, err := Campaign(1, bare/2, split, nil)
	checkAccelCampaign(t, "bare, window 1, 50 msgs/s a node", bare/2, sum, err,
		"gototem sim --accelerated 1 --duration "+split.Duration.String()+" (rate 50: sim.ScheduleOptions)")
	sum, err = Campaign(100_001, bare-bare/2, all, nil)
	checkAccelCampaign(t, "bare, window 17", bare-bare/2, sum, err,
		"gototem sim --accelerated 17 --duration "+all.Duration.String())
	so := DefaultStackScheduleOptions()
	so.Accelerated = 2
	sum, err = StackCampaign(1, stack, so, nil)
	checkAccelCampaign(t, "full stack, window 2", stack, sum, err, "gototem sim --stack --accelerated 2")
}

// The option really runs the accelerated ring, on a spaced wire: tokens are passed ahead
// of MCASTs (a standard campaign passes none) and every node still delivers everything.
func TestAcceleratedOptionTakesEffect(t *testing.T) {
	for _, window := range []int{0, 3} {
		o := DefaultScheduleOptions()
		o.Accelerated = window
		o.Workload.Rate = 200
		s, err := New(Options{Seed: 7, Nodes: 4, Token: o.Token, Link: &DefaultLink,
			Config: o.accelConfig(), SendSpacing: o.sendSpacing()})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.StartWorkload(o.Workload); err != nil {
			t.Fatal(err)
		}
		if err := s.RunUntil(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		s.StopWorkload()
		if err := s.CheckLiveness(); err != nil {
			t.Fatal(err)
		}
		var accel uint64
		for _, id := range s.NodeIDs() {
			accel += s.Node(id).proc.(*srp.Processor).Counters().TokensAccelerated
		}
		switch {
		case window == 0 && accel != 0:
			t.Fatalf("standard ring passed %d tokens ahead of MCASTs", accel)
		case window > 0 && accel == 0:
			t.Fatal("accelerated campaign passed no token ahead of MCASTs")
		}
		t.Logf("window %d: %d tokens ahead of MCASTs, %d delivered", window, accel, s.Stats().Delivered)
	}
}
