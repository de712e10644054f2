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
	_, _, err := Parse("corosync.conf", strings.NewReader(nodelistOf(2, " token: 1000\n rrp_token_expired_timeout: 100\n")))
	if err == nil || !strings.Contains(err.Error(), "must not exceed token - 50 ms") {
		t.Fatalf("10 × 100 ms > 950 ms accepted: %v", err)
	}
}
