package main

import (
	"strings"
	"testing"
	"time"
)

// A ticker is silent for the first progressEvery, then prints at most once per
// progressEvery, so a long campaign or bench shows it is alive within seconds without
// flooding a log.
func TestTickerPrintsEveryFewSeconds(t *testing.T) {
	var b strings.Builder
	now := time.Unix(0, 0)
	tk := &ticker{w: &b, last: now, now: func() time.Time { return now }}
	for i := 0; i < 100; i++ { // 100 calls over 10 s
		tk.maybe("step %d", i)
		now = now.Add(100 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || lines[0] != "step 20" {
		t.Fatalf("got %d lines %q; want 4, the first at 2 s (step 20)", len(lines), lines)
	}
}
