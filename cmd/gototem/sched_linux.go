package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// schedThread is corosync's system.sched_rr: yes (its default) for the calling thread:
// SCHED_RR at the highest priority, and when that is refused the highest nice level
// (corosync's fallback). corosync 3.1.7 sets its one thread at startup; gototem did not, and
// in the netns lab on a shared two-core machine that was the difference in the tail of the
// agreed latency at 100 msgs/s (issue 14): corosync's token hops preempt the other load at
// once, gototem's waited for a CFS slice (p99 2.8–8.8 ms against corosync's 1.9–6.3 ms).
//
// It is totem.Options.ProtocolThread's hook: the node calls it on each thread it locked for
// a protocol goroutine (receive loops, timers, dispatcher), and only those run realtime.
// Setting every thread of the process instead put the Go runtime's spinning idle threads at
// priority 99, and the libqb clients on the same cores (Pacemaker's daemons, libcpg
// programs) starved: the libcpg flood fell from 55.5k to 5.9k msgs/s at 1 KiB. It returns
// what was applied ("rr" or "nice") and the error of the RR attempt.
func schedThread() (string, error) {
	tid := unix.Gettid()
	rrErr := setThreadRR(tid)
	if rrErr == nil {
		return "rr", nil
	}
	rrErr = fmt.Errorf("sched_setattr(SCHED_RR, 99) on thread %d: %w", tid, rrErr)
	if err := setThreadNice(tid, -20); err != nil {
		return "", fmt.Errorf("%v; setpriority(-20) on thread %d: %w", rrErr, tid, err)
	}
	return "nice", rrErr
}

// The per-thread system calls of schedThread; a test refuses SCHED_RR through setThreadRR
// to reach the fallback as root.
var (
	setThreadRR = func(tid int) error {
		return unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: 99}, 0)
	}
	setThreadNice = func(tid, nice int) error { return unix.Setpriority(unix.PRIO_PROCESS, tid, nice) }
)

// unschedThread undoes schedThread on the calling thread (SCHED_OTHER, nice 0) before the
// node hands it back to the Go runtime, which would otherwise run any goroutine on it at
// priority 99. Errors are ignored: the thread was set by this process, which may reset it.
func unschedThread() {
	tid := unix.Gettid()
	_ = unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0)
	_ = setThreadNice(tid, 0)
}
