package srp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A timer serviced more than token/2 after its deadline means the process (or its driver)
// was paused, corosync's pause_flush threshold: it is counted and logged, so a membership
// change after such a pause shows its cause. A punctual or slightly late Tick is not.
func TestLateTimerIsReported(t *testing.T) {
	var logs bytes.Buffer
	cfg := DefaultConfig(1, 3)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := NewProcessor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(0)
	p.Advance()
	join := p.timers[timerJoin].at
	p.Tick(join + cfg.Token/4) // late, but less than token/2
	if n := p.Counters().LateTimers; n != 0 {
		t.Fatalf("a timer %v late counted as a pause (%d)", cfg.Token/4, n)
	}
	p.Advance()
	join = p.timers[timerJoin].at
	p.Tick(join + cfg.Token) // a whole token late
	if n := p.Counters().LateTimers; n == 0 {
		t.Fatalf("a timer %v late was not reported", cfg.Token)
	}
	if !strings.Contains(logs.String(), "ms late: process pause") {
		t.Fatalf("no late-timer line in the log:\n%s", logs.String())
	}
}
