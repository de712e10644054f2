package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setSchedRR is corosync's system.sched_rr: yes (its default): the daemon runs under
// SCHED_RR at the highest priority, and when that is refused at the highest nice level
// (corosync's fallback). corosync 3.1.7 does it at startup; gototem did not, and in the
// netns lab on a shared two-core machine that was the difference in the tail of the agreed
// latency at 100 msgs/s (issue 14): corosync's token hops preempt the other load at once,
// gototem's waited for a CFS slice (p99 2.8–8.8 ms against corosync's 1.9–6.3 ms).
//
// Linux applies a policy per thread, and a new thread inherits its creator's: every
// thread the Go runtime has started so far is set, so the ones it starts later inherit.
// It returns what was applied ("rr" or "nice") and the error of the RR attempt.
func setSchedRR() (string, error) {
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return "", err
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: 99}
	var rrErr error
	for _, e := range tids {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
			rrErr = fmt.Errorf("sched_setattr(SCHED_RR, 99) on thread %d: %w", tid, err)
			break
		}
	}
	if rrErr == nil {
		return "rr", nil
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, -20); err != nil {
		return "", fmt.Errorf("%v; setpriority(-20): %w", rrErr, err)
	}
	return "nice", rrErr
}
