package main

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// system.sched_rr: setSchedRR leaves every thread of the process under SCHED_RR, those the
// runtime starts afterwards included. It runs in a child process (this test binary again),
// so the test binary itself never becomes realtime. Shown failing: with the loop over
// /proc/self/task replaced by one sched_setattr(0) call, the child's other threads stay
// SCHED_OTHER ("thread N: policy 0").
func TestSchedRRAllThreads(t *testing.T) {
	if os.Getenv("GOTOTEM_SCHED_CHILD") == "1" {
		schedChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSchedRRAllThreads$")
	cmd.Env = append(os.Environ(), "GOTOTEM_SCHED_CHILD=1")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if strings.Contains(s, "SKIP-EPERM") {
		t.Skipf("SCHED_RR not permitted here: %s", s)
	}
	if err != nil || !strings.Contains(s, "ALL-RR") {
		t.Fatalf("child: %v\n%s", err, s)
	}
}

func schedChild() {
	how, err := setSchedRR()
	if how != "rr" {
		if errors.Is(err, unix.EPERM) {
			println("SKIP-EPERM", err.Error())
			return
		}
		println("setSchedRR:", how, err)
		os.Exit(1)
	}
	// New threads after the call: locked goroutines force the runtime to start Ms.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			wg.Done()
			<-release
		}()
	}
	wg.Wait()
	tids, _ := os.ReadDir("/proc/self/task")
	for _, e := range tids {
		tid, _ := strconv.Atoi(e.Name())
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			println("thread", tid, err.Error())
			os.Exit(1)
		}
		if a.Policy != unix.SCHED_RR {
			println("thread", tid, ": policy", a.Policy)
			os.Exit(1)
		}
	}
	close(release)
	println("ALL-RR", len(tids), "threads")
}
