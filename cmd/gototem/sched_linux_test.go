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

// system.sched_rr: the hook puts the protocol thread that calls it under SCHED_RR and no
// other thread, neither those running before nor those the runtime starts afterwards (from
// ordinary goroutines, or while the protocol goroutine runs): the Go runtime's idle threads
// spin, and at priority 99 they starved the libqb clients. It runs in a child process (this
// test binary again), so the test binary itself never becomes realtime. Shown failing: with
// the hook setting every thread of /proc/self/task (stop 14's setSchedRR), "thread N:
// policy 2".
func TestSchedRRProtocolThreadOnly(t *testing.T) {
	runSchedChild(t, "TestSchedRRProtocolThreadOnly", "rr")
}

// The fallback when SCHED_RR is refused: nice -20 on the protocol thread alone (Linux keeps a
// nice level per thread). The child refuses SCHED_RR through setThreadRR, so the fallback
// runs as root too.
func TestSchedRRFallbackProtocolThreadOnly(t *testing.T) {
	runSchedChild(t, "TestSchedRRFallbackProtocolThreadOnly", "nice")
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

// schedChild runs the hook on a locked goroutine (as totem's protocol goroutines do, with
// SCHED_RR refused when want is "nice"), starts new threads from it and from elsewhere, and
// checks that the hook's thread alone has the policy or nice level want names.
func schedChild(want string) {
	if want == "nice" {
		setThreadRR = func(int) error { return unix.EPERM }
	}
	var wg sync.WaitGroup
	release := make(chan struct{})
	// New threads: locked goroutines force the runtime to start Ms.
	spawn := func(n int) {
		for range n {
			wg.Add(1)
			go func() {
				runtime.LockOSThread()
				wg.Done()
				<-release
			}()
		}
	}
	type result struct {
		tid int
		how string
		err error
	}
	res := make(chan result)
	go func() {
		runtime.LockOSThread()
		how, err := schedThread()
		spawn(2) // started while the realtime thread runs
		res <- result{unix.Gettid(), how, err}
		<-release
	}()
	r := <-res
	if r.how != want {
		if errors.Is(r.err, unix.EPERM) || errors.Is(r.err, unix.EACCES) {
			println("SKIP-EPERM", r.err.Error())
			return
		}
		println("schedThread:", r.how, r.err)
		os.Exit(1)
	}
	spawn(2)
	wg.Wait()
	tids, _ := os.ReadDir("/proc/self/task")
	for _, e := range tids {
		tid, _ := strconv.Atoi(e.Name())
		set := tid == r.tid
		if want == "rr" {
			a, err := unix.SchedGetAttr(tid, 0)
			if err != nil {
				println("thread", tid, err.Error())
				os.Exit(1)
			}
			if (a.Policy == unix.SCHED_RR) != set {
				println("thread", tid, ": policy", a.Policy, "protocol thread", set)
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
		if nice := 20 - prio; (nice == -20) != set {
			println("thread", tid, ": nice", nice, "protocol thread", set)
			os.Exit(1)
		}
	}
	close(release)
	println("ALL-SET", want, "protocol thread only, of", len(tids), "threads")
}
