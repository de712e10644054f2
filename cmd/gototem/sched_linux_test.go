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
	runSchedChild(t, "TestSchedRRAllThreads", "rr")
}

// The fallback when SCHED_RR is refused: nice -20 on every thread, those started afterwards
// included (Linux keeps a nice level per thread). The child refuses SCHED_RR through
// setThreadRR, so the fallback runs as root too. Shown failing: with the fallback as
// setpriority(PRIO_PROCESS, 0, -20) (the calling thread only), the child's other threads
// keep nice 0 ("thread N: nice 0").
func TestSchedRRFallbackAllThreads(t *testing.T) {
	runSchedChild(t, "TestSchedRRFallbackAllThreads", "nice")
}

// runSchedChild runs test again in a child process with GOTOTEM_SCHED_CHILD=want, where
// schedChild does the work; a refusal of the system calls themselves (no privilege) skips.
func runSchedChild(t *testing.T, test, want string) {
	if os.Getenv("GOTOTEM_SCHED_CHILD") == want {
		schedChild(want)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), "GOTOTEM_SCHED_CHILD="+want)
	out, err := cmd.CombinedOutput()
	s := string(out)
	if strings.Contains(s, "SKIP-EPERM") {
		t.Skipf("%s not permitted here: %s", want, s)
	}
	if err != nil || !strings.Contains(s, "ALL-SET") {
		t.Fatalf("child: %v\n%s", err, s)
	}
	line, _, _ := strings.Cut(s[strings.Index(s, "ALL-SET"):], "\n")
	t.Log(line)
}

// schedChild calls setSchedRR (with SCHED_RR refused when want is "nice"), starts new
// threads, and checks every thread for the policy or the nice level want names.
func schedChild(want string) {
	if want == "nice" {
		setThreadRR = func(int) error { return unix.EPERM }
	}
	how, err := setSchedRR()
	if how != want {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
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
		if want == "rr" {
			a, err := unix.SchedGetAttr(tid, 0)
			if err != nil {
				println("thread", tid, err.Error())
				os.Exit(1)
			}
			if a.Policy != unix.SCHED_RR {
				println("thread", tid, ": policy", a.Policy)
				os.Exit(1)
			}
			continue
		}
		// The raw getpriority system call answers 20 - nice.
		prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
		if err != nil {
			println("thread", tid, err.Error())
			os.Exit(1)
		}
		if nice := 20 - prio; nice != -20 {
			println("thread", tid, ": nice", nice)
			os.Exit(1)
		}
	}
	close(release)
	println("ALL-SET", want, len(tids), "threads")
}
