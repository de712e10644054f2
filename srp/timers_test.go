package srp

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
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

// token_warning (corosync's timer_function_orf_token_warning): a node that has not received
// the token for token_warning percent of the token timeout logs "Token has not been received
// in N ms", N counted from the last token it accepted, and repeats it every such interval
// until the token comes or is declared lost. A healthy ring, or token_warning 0, logs none.
func TestTokenWarning(t *testing.T) {
	for _, tc := range []struct {
		name    string
		percent int
		crash   bool
		want    []string // node 1's notices from the crash (or the quiet period) on, in order
	}{
		// 3 nodes: token 3650 ms (3000 + 650), warning 75% of it = 2737 ms; the token is
		// lost 3650 ms after node 1's last token, before a second warning is due.
		{"default 75%, node 3 crashes", 75, true, []string{
			"Token has not been received in 2737 ms ",
			"A processor failed, forming new configuration: token timed out (3650ms), waiting 4380ms for consensus."}},
		// 30%: 1095 ms, repeated at 2190 and 3285 ms, then the loss at 3650.
		{"30% repeats until the loss", 30, true, []string{
			"Token has not been received in 1095 ms ",
			"Token has not been received in 2190 ms ",
			"Token has not been received in 3285 ms ",
			"A processor failed, forming new configuration: token timed out (3650ms), waiting 4380ms for consensus."}},
		{"disabled", 0, true, []string{
			"A processor failed, forming new configuration: token timed out (3650ms), waiting 4380ms for consensus."}},
		{"healthy ring", 75, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := newCluster(t, 3)
			c.cfg = func(id NodeID) Config {
				cfg := DefaultConfig(id, 3)
				cfg.TokenWarning = tc.percent
				if id == 1 {
					cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: levelNotice}))
				}
				return cfg
			}
			c.nodes, c.ids = map[NodeID]*tnode{}, nil
			for i := NodeID(1); i <= 3; i++ {
				c.add(i)
			}
			c.startAll()
			c.mustConverge(20*time.Second, 1, 2, 3)
			c.run(5 * time.Second)
			logs.Reset()
			if tc.crash {
				c.crash(3)
				c.mustConverge(30*time.Second, 1, 2)
			} else {
				c.run(20 * time.Second)
			}
			var got []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if i := strings.Index(l, `msg="`); i >= 0 {
					msg := l[i+5:]
					msg = msg[:strings.Index(msg, `"`)]
					if strings.HasPrefix(msg, "Token has not") || strings.HasPrefix(msg, "A processor failed") {
						got = append(got, msg)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("node 1's notices:\n got %q\nwant %q\nlog:\n%s", got, tc.want, logs.String())
			}
			warnings := 0
			for _, l := range tc.want {
				if strings.HasPrefix(l, "Token has not") {
					warnings++
				}
			}
			if w := c.nodes[1].p.Counters().TokenWarnings; w != uint64(warnings) {
				t.Errorf("TokenWarnings = %d, want %d", w, warnings)
			}
		})
	}
}
