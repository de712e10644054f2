// Package testenv is what gototem's tests ask of the machine and the repository: whether they run
// in CI, where the conformance inputs are, and what to do when a dependency is missing.
//
// The rule (issue 16): a test that cannot run because something outside it is missing (real
// corosync, network namespaces, a capture) skips on a developer's machine, saying what is
// missing, and FAILS under CI=true, where a skip would let CI claim a proof it did not run.
// It owns no test logic (Seed only reads and logs a seed) and is imported only by _test files
// and test harnesses.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// CI reports whether the tests run in CI (CI=true, as CI systems set it).
func CI() bool { return os.Getenv("CI") == "true" }

// Need stops the test when err is non-nil: a skip on a developer's machine, a failure in CI.
// what names the missing thing and how to get it.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if CI() {
		t.Fatalf("CI=true and %s is missing: %v", what, err)
	}
	t.Skipf("%s is missing (a failure under CI=true): %v", what, err)
}

// Root is the repository's top directory, found from this file's own path so that it does not
// depend on the package a test runs in.
func Root() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testenv: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Captures is testdata/captures: real corosync 3.1.7 traffic over udp and udpu (pcap files
// with their events and corosync.conf), recorded in the netns lab; see its README.md.
func Captures() string { return filepath.Join(Root(), "testdata", "captures") }

// Configs is testdata/configs: real-world corosync.conf files that must run unchanged.
func Configs() string { return filepath.Join(Root(), "testdata", "configs") }

// Capture returns the path of one file in Captures, failing the test (skipping outside CI) if
// it is absent.
func Capture(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Captures(), name)
	_, err := os.Stat(p)
	Need(t, "capture "+name, err)
	return p
}

// Seed is a randomized test's seed: the environment variable env (a number, or "random" for
// the clock's), def when it is unset; the test logs it with how to replay it.
func Seed(t testing.TB, env string, def uint64) uint64 {
	t.Helper()
	s := def
	switch v := os.Getenv(env); v {
	case "":
	case "random":
		s = uint64(time.Now().UnixNano())
	default:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number or random: %v", env, v, err)
		}
		s = n
	}
	t.Logf("seed %d (%s=%d replays it)", s, env, s)
	return s
}
