package config

import (
	"strings"
	"testing"
	"time"
)

// corosync 2.x's redundant ring rule: threshold consecutive late tokens must mark a link faulty
// before the token timeout ends the ring, so threshold × rrp_token_expired_timeout stays 50 ms
// under the (effective) token; the default is derived to satisfy it.
func TestRRPTokenExpiredRule(t *testing.T) {
	rt := mustResolve(t, nodelistOf(2, " token: 1000\n"), local1)
	if got := rt.Totem.RRP.TokenExpiredTimeout; got != 95*time.Millisecond {
		t.Fatalf("derived rrp_token_expired_timeout %v, want 95ms = (1000 − 50) / 10", got)
	}
	rt = mustResolve(t, nodelistOf(2, " token: 1000\n rrp_problem_count_threshold: 5\n rrp_token_expired_timeout: 190\n"), local1)
	if got := rt.Totem.RRP.TokenExpiredTimeout; got != 190*time.Millisecond {
		t.Fatalf("explicit value not kept: %v", got)
	}
	_, _, err := Parse("corosync.conf", strings.NewReader(twoRings(" token: 1000\n rrp_token_expired_timeout: 100\n")))
	if err == nil || !strings.Contains(err.Error(), "must not exceed token - 50 ms") {
		t.Fatalf("10 × 100 ms > 950 ms accepted on a redundant ring: %v", err)
	}
	// A single ring runs no rrp timers: corosync 3 does not check them, and neither may we
	// (a token of 300 ms derives a 25 ms rrp_token_expired_timeout, below the 30 ms minimum).
	for _, extra := range []string{" token: 1000\n rrp_token_expired_timeout: 100\n", " token: 300\n"} {
		if _, _, err := Parse("corosync.conf", strings.NewReader(nodelistOf(2, extra))); err != nil {
			t.Errorf("single ring with%q refused: %v", extra, err)
		}
	}
}

// twoRings is a two-node redundant ring (rrp_mode passive, links 0 and 1) with totemExtra from
// the totem section's fifth line on.
func twoRings(totemExtra string) string {
	return "totem {\n version: 2\n transport: udpu\n rrp_mode: passive\n" + totemExtra +
		" interface {\n  linknumber: 0\n }\n interface {\n  linknumber: 1\n }\n}\nnodelist {\n" +
		" node {\n  ring0_addr: 10.0.0.1\n  ring1_addr: 10.1.0.1\n  nodeid: 1\n  name: a\n }\n" +
		" node {\n  ring0_addr: 10.0.0.2\n  ring1_addr: 10.1.0.2\n  nodeid: 2\n  name: b\n }\n}\n"
}
