package totem

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/internal/testenv"
)

// textHandler keeps each record as "level subsys message".
type textHandler struct{ lines *[]string }

func (h textHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h textHandler) Handle(_ context.Context, r slog.Record) error {
	subsys := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == SubsysKey {
			subsys = a.Value.String()
		}
		return true
	})
	lv := strings.ToLower(r.Level.String())
	if r.Level == LevelNotice {
		lv = "notice"
	}
	*h.lines = append(*h.lines, lv+" "+subsys+" "+r.Message)
	return nil
}
func (h textHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h textHandler) WithGroup(string) slog.Handler      { return h }

// captureStartup is node 1's TOTEM lines of a capture's events file from "Token Timeout" to
// "Initializing transport", as "level subsys message".
func captureStartup(t *testing.T, events string) []string {
	data, err := os.ReadFile(testenv.Capture(t, events))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		_, rest, ok := strings.Cut(l, " vm corosync ")
		if !ok || (out == nil && !strings.Contains(rest, "Token Timeout")) {
			continue
		}
		level, rest, _ := strings.Cut(rest, " ")
		rest = strings.TrimLeft(rest, " ")
		out = append(out, level+" "+strings.TrimSpace(rest[1:7])+" "+rest[9:])
		if strings.Contains(rest, "Initializing transport") {
			return out
		}
	}
	t.Fatalf("%s: no startup lines from Token Timeout to Initializing transport", events)
	return nil
}

// At startup a node logs corosync 3.1.7's totemsrp timer lines (debug, TOTEM) and totemnet's
// transport notice, word for word and value for value: node 1 of the udpu and udp captures
// (three nodes, default timers: "Token Timeout (3650 ms) retransmit timeout (869 ms)",
// "Maximum network MTU 1410") with the capture's own corosync.conf; knet is that file with
// transport: knet, whose lines in the knet captures (shared/knet-captures) differ only in
// "Maximum network MTU 65446" and "(Kronosnet)". Shown failing: with the token warning
// computed from the configured token (3000 ms) instead of the effective one, "Token warning
// every 2250 ms".
func TestLogTotemConfigLikeCorosync(t *testing.T) {
	for _, tc := range []struct{ name, conf, events, transport string }{
		{"udpu", "udpu-corosync.conf.node1", "udpu-formation.events.txt", ""},
		{"udp", "udp-corosync.conf.node1", "udp-formation.events.txt", ""},
		{"knet", "udpu-corosync.conf.node1", "udpu-formation.events.txt", "knet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, err := os.ReadFile(testenv.Capture(t, tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			want := captureStartup(t, tc.events)
			if tc.transport != "" {
				text = bytes.Replace(text, []byte("transport: udpu"), []byte("transport: "+tc.transport), 1)
				for i, l := range want {
					l = strings.Replace(l, "Maximum network MTU 1410", "Maximum network MTU 65446", 1)
					want[i] = strings.Replace(l, "(UDP/IP Unicast)", "(Kronosnet)", 1)
				}
			}
			cfg, _, err := config.Parse(tc.conf, bytes.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(netip.MustParseAddr("10.77.0.1"))})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			logTotemConfig(slog.New(textHandler{&got}), rt.Totem)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got:\n%s\nwant (corosync 3.1.7, %s):\n%s", strings.Join(got, "\n"), tc.events, strings.Join(want, "\n"))
			}
		})
	}
}

// The lines that depend on the settings: token_warning 0 and one below the retransmit
// timeout, and heartbeat_failures_allowed, which gototem does not run a timer for.
func TestLogTotemConfigVariants(t *testing.T) {
	var got []string
	log := slog.New(textHandler{&got})
	tt := config.Totem{Token: 1000e6, TokenRetransmit: 238e6, TokenWarning: 0, Transport: config.TransportUDPU, NetMTU: 1500}
	logTotemConfig(log, tt)
	tt.TokenWarning, tt.HeartbeatFailuresAllowed = 20, 3
	logTotemConfig(log, tt)
	all := "\n" + strings.Join(got, "\n") + "\n"
	for _, want := range []string{
		"debug TOTEM Token warnings disabled",
		"debug TOTEM HeartBeat is Disabled. To enable set heartbeat_failures_allowed > 0",
		"debug TOTEM Token warning every 200 ms (20% of Token Timeout)",
		"debug TOTEM The token warning interval (200 ms) is less than the token retransmit timeout (238 ms) which can lead to spurious token warnings. Consider increasing the token_warning parameter.",
		"debug TOTEM heartbeat_failures_allowed (3)",
		"debug TOTEM HeartBeat is Disabled: gototem has no heartbeat timer (heartbeat_failures_allowed 3 is not used)",
		"notice TOTEM Initializing transport (UDP/IP Unicast).",
	} {
		if !strings.Contains(all, "\n"+want+"\n") {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
}
