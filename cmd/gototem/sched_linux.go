package main

import (
	"errors"
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
// Linux applies a policy, and a nice level too, per thread, and a new thread inherits its
// creator's: every thread the Go runtime has started so far is set, so the ones it starts
// later inherit. (setpriority(PRIO_PROCESS, 0) is the calling thread only on Linux: the
// fallback walks the threads as the SCHED_RR path does.) It returns what was applied ("rr"
// or "nice") and the error of the RR attempt.
func setSchedRR() (string, error) {
	rrErr := eachThread(func(tid int) error {
		if err := setThreadRR(tid); err != nil {
			return fmt.Errorf("sched_setattr(SCHED_RR, 99) on thread %d: %w", tid, err)
		}
		return nil
	})
	if rrErr == nil {
		return "rr", nil
	}
	err := eachThread(func(tid int) error {
		if err := setThreadNice(tid, -20); err != nil {
			return fmt.Errorf("setpriority(-20) on thread %d: %w", tid, err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%v; %w", rrErr, err)
	}
	return "nice", rrErr
}

// The per-thread system calls of setSchedRR; a test refuses SCHED_RR through setThreadRR
// to reach the fallback as root.
var (
	setThreadRR = func(tid int) error {
		return unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: 99}, 0)
	}
	setThreadNice = func(tid, nice int) error { return unix.Setpriority(unix.PRIO_PROCESS, tid, nice) }
)

// eachThread calls set on every thread of the process (/proc/self/task), stopping at the
// first error (a thread that ended meanwhile is no error). A thread the runtime starts during the walk inherits its creator's setting,
// set or not yet, so the walk repeats until a pass meets no thread it has not set.
func eachThread(set func(tid int) error) error {
	done := map[int]bool{}
	for {
		tids, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, e := range tids {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := set(tid); err != nil && !errors.Is(err, unix.ESRCH) { // ESRCH: it ended
				return err
			}
			done[tid], fresh = true, true
		}
		if !fresh {
			return nil
		}
	}
}
