package main

import (
	"bytes"
	"strings"
	"testing"
)

func runSimCmd(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := dispatch(append([]string{"sim"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// TestSimSameFlagsSameOutput: the summary of a small campaign is byte-identical across
// runs, names every figure the issue asks for, and ends with the violations line.
func TestSimSameFlagsSameOutput(t *testing.T) {
	args := []string{"--schedules", "3", "--seed", "11", "--duration", "10s", "--nodes", "3-5"}
	a, errA, codeA := runSimCmd(args...)
	b, _, codeB := runSimCmd(args...)
	if a != b || codeA != codeB {
		t.Fatalf("two runs differ:\n%s\n---\n%s", a, b)
	}
	for _, want := range []string{"schedules: 3\n", "virtual time: ", "faults: ", "membership changes: ",
		"messages delivered: ", "violations: "} {
		if !strings.Contains(a, want) {
			t.Errorf("summary lacks %q:\n%s", want, a)
		}
	}
	if strings.Contains(a, "violations: 0\n") != (codeA == 0) {
		t.Errorf("exit code %d does not match the summary:\n%s%s", codeA, a, errA)
	}
	if strings.Contains(a, "\r") {
		t.Error("progress line written although stdout is not a terminal")
	}
}

// TestSimTraceReplays: --trace prints the timeline of one seed, the same twice.
func TestSimTraceReplays(t *testing.T) {
	args := []string{"--seed", "3", "--duration", "5s", "--nodes", "3", "--trace"}
	a, _, _ := runSimCmd(args...)
	b, _, _ := runSimCmd(args...)
	if a != b {
		t.Fatal("trace of seed 3 differs between two runs")
	}
	if !strings.Contains(a, "installs regular ring") || !strings.Contains(a, "recv TOKEN") {
		t.Fatalf("trace lacks ring installation or token lines:\n%.2000s", a)
	}
}

func TestSimScenarioAndList(t *testing.T) {
	out, _, code := runSimCmd("--list")
	if code != 0 || !strings.Contains(out, "pause-token-loss") {
		t.Fatalf("--list: code %d\n%s", code, out)
	}
	// one column for the descriptions, however long the longest name
	col := -1
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.Index(l, " nodes: ") - 2
		if col >= 0 && i != col {
			t.Fatalf("--list: descriptions not aligned (column %d, then %d):\n%s", col, i, out)
		}
		col = i
	}
	out, _, code = runSimCmd("--scenario", "fast-restart", "--seed", "2")
	if !strings.Contains(out, "scenario: fast-restart") || !strings.Contains(out, "violations: ") {
		t.Fatalf("--scenario: code %d\n%s", code, out)
	}
}

func TestSimBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "0"},
		{"--nodes", "5-3"},
		{"--nodes", "x"},
		{"--schedules", "0"},
		{"--faults", "partition,meteor"},
		{"--scenario", "no-such"},
		{"extra"},
	} {
		_, errs, code := runSimCmd(args...)
		if code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 with a message", args, code, errs)
		}
	}
}

// TestSimStack: --stack runs the full-stack campaign: the same flags give the same output,
// a progress line per tenth of the schedules on a non-terminal, and a summary whose last
// line is exactly "violations: N" (the before-stop hook greps '^violations: 0').
func TestSimStack(t *testing.T) {
	args := []string{"--stack", "--schedules", "4", "--seed", "5", "--duration", "8s"}
	a, errA, codeA := runSimCmd(args...)
	b, _, _ := runSimCmd(args...)
	if a != b {
		t.Fatalf("two runs differ:\n%s\n---\n%s", a, b)
	}
	lines := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "violations: 0" || codeA != 0 {
		t.Fatalf("exit %d, last line %q:\n%s%s", codeA, last, a, errA)
	}
	if strings.Count(a, "progress: ") != 4 || !strings.Contains(a, "progress: 4/4 full-stack schedules") {
		t.Errorf("want one progress line per schedule of 4:\n%s", a)
	}
	for _, want := range []string{"schedules: 4\n", "membership changes: ", "messages delivered: "} {
		if !strings.Contains(a, want) {
			t.Errorf("summary lacks %q:\n%s", want, a)
		}
	}
	// The full-stack trace shows the process-group events.
	tr, _, code := runSimCmd("--stack", "--seed", "5", "--duration", "3s", "--trace")
	if code != 0 || !strings.Contains(tr, " cpg deliver n") || !strings.Contains(tr, " cpg synced ") {
		t.Fatalf("--stack --trace: exit %d, no cpg lines:\n%.1500s", code, tr)
	}
	if _, errs, code := runSimCmd("--stack", "--faults", "meteor"); code != 2 || errs == "" {
		t.Errorf("--stack --faults meteor: exit %d, stderr %q", code, errs)
	}
}
