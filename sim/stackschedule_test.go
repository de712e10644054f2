package sim

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestStackScheduleProbe is a temporary probe.
func TestStackScheduleProbe(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROBE_N"))
	if n == 0 {
		t.Skip()
	}
	o := DefaultStackScheduleOptions()
	if os.Getenv("PROBE_SMALL") != "" {
		o.LargeFraction = 0
	}
	start := time.Now()
	sum, err := StackCampaign(1, n, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sum.Violations {
		t.Logf("%v", v)
	}
	t.Logf("%d schedules in %v: sends %d delivered %d rings %d faults %d", sum.Schedules, time.Since(start), sum.Sends, sum.Delivered, sum.Rings, sum.Faults)
}

func TestStackScheduleDump(t *testing.T) {
	seed, _ := strconv.ParseUint(os.Getenv("DUMP_SEED"), 10, 64)
	if seed == 0 {
		t.Skip()
	}
	f, _ := os.Create("/tmp/simstack-dump.txt")
	defer f.Close()
	res, err := RunStackSchedule(seed, DefaultStackScheduleOptions(), f)
	t.Logf("%v %v", res.Violation, err)
}
