package main

import (
	"strings"
	"testing"
)

// TestSimKnet: --knet runs the full-stack campaign over knet: the same flags give the same
// output and a clean summary, the trace shows knet's packets and link changes, the link
// faults are accepted fault kinds, and the knet scenarios are listed and run.
func TestSimKnet(t *testing.T) {
	args := []string{"--knet", "--schedules", "3", "--seed", "5", "--duration", "8s"}
	a, errA, codeA := runSimCmd(args...)
	b, _, _ := runSimCmd(args...)
	if a != b {
		t.Fatalf("two runs differ:\n%s\n---\n%s", a, b)
	}
	if !strings.HasSuffix(a, "\nviolations: 0\n") || codeA != 0 || !strings.Contains(a, "schedules: 3\n") {
		t.Fatalf("exit %d:\n%s%s", codeA, a, errA)
	}
	tr, _, code := runSimCmd("--knet", "--seed", "5", "--duration", "8s", "--faults", "linkcut,linkpair,linkflap", "--trace")
	for _, want := range []string{" knet host ", " recv knet ping link 1 ", " recv knet DATA seq="} {
		if code != 0 || !strings.Contains(tr, want) {
			t.Fatalf("--knet --trace: exit %d, no %q:\n%.1500s", code, want, tr)
		}
	}
	if !strings.Contains(tr, " cut ring ") && !strings.Contains(tr, " on ring ") && !strings.Contains(tr, " on link ") {
		t.Fatalf("--knet --faults linkcut,linkpair,linkflap: no link fault in the trace:\n%.1500s", tr)
	}
	out, _, code := runSimCmd("--list")
	if code != 0 || !strings.Contains(out, "knet-link-cut-passive") || !strings.Contains(out, "knet-link-cut-rr") {
		t.Fatalf("--list: code %d\n%s", code, out)
	}
	out, _, code = runSimCmd("--scenario", "knet-link-cut-active", "--seed", "2")
	if code != 0 || !strings.Contains(out, "violations: 0") {
		t.Fatalf("--scenario knet-link-cut-active: code %d\n%s", code, out)
	}
}
