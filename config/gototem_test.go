package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gototem/gototem/config"
)

// accelConf is a three-node udpu file; extra goes in totem, marks[i] in node i+1.
func accelConf(extra string, marks ...string) string {
	var b strings.Builder
	b.WriteString("totem {\n\tversion: 2\n\tcluster_name: accel\n\ttransport: udpu\n" + extra + "}\nnodelist {\n")
	for i := range 3 {
		b.WriteString("\tnode {\n\t\tring0_addr: 10.0.0." + string(rune('1'+i)) + "\n\t\tnodeid: " + string(rune('1'+i)) + "\n")
		if i < len(marks) {
			b.WriteString("\t\t" + marks[i] + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// The accelerated ring is on only when asked for and every nodelist node is declared a
// gototem node; otherwise the file is refused, saying which node is not.
func TestGototemAccelerated(t *testing.T) {
	yes := "gototem_node: yes"
	cases := []struct {
		name, in string
		window   int
		err      string
	}{
		{"off by default", accelConf("", yes, yes, yes), 0, ""},
		{"on, every node declared", accelConf("\tgototem_accelerated: yes\n", yes, yes, yes), config.DefaultAcceleratedWindow, ""},
		{"window set", accelConf("\tgototem_accelerated: yes\n\tgototem_accelerated_window: 5\n", yes, yes, yes), 5, ""},
		{"explicitly off", accelConf("\tgototem_accelerated: no\n", yes, yes, yes), 0, ""},
		{"node 2 not declared", accelConf("\tgototem_accelerated: yes\n", yes, "", yes), 0, "nodelist node 1 (nodeid 2) is not declared gototem_node: yes"},
		{"node declared no", accelConf("\tgototem_accelerated: yes\n", yes, yes, "gototem_node: no"), 0, "nodelist node 2 (nodeid 3)"},
		{"bad window", accelConf("\tgototem_accelerated: yes\n\tgototem_accelerated_window: 0\n", yes, yes, yes), 0, "gototem_accelerated_window \"0\""},
		{"no nodelist", "totem {\n\tversion: 2\n\ttransport: udp\n\tcluster_name: x\n\tgototem_accelerated: yes\n\tinterface {\n\t\tringnumber: 0\n\t\tbindnetaddr: 10.0.0.0\n\t}\n}\n", 0, "needs a nodelist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := config.Parse("corosync.conf", strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q\n%s", err, tc.err, tc.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, tc.in)
			}
			if got := c.Totem.AcceleratedWindow; got != tc.window {
				t.Fatalf("AcceleratedWindow %d, want %d", got, tc.window)
			}
			// gototem's own keys are known: no "unknown key" warning.
			if s := fmt.Sprint(warns); strings.Contains(s, "gototem") {
				t.Fatalf("warnings about gototem keys: %s", s)
			}
		})
	}
}

// A ring whose every node is declared a gototem node takes gototem's wider token window
// when the file sets none, and is a GototemRing (a message cut by a merge is sent again
// whole); a file's own window_size or max_messages is kept, and one node not declared (a
// possible corosync node) keeps corosync's defaults and behaviour.
func TestGototemWindowDefaults(t *testing.T) {
	yes := "gototem_node: yes"
	cases := []struct {
		name, in       string
		window, maxMsg int
	}{
		{"corosync's defaults without declarations", accelConf(""), 50, 17},
		{"one node not declared", accelConf("", yes, "", yes), 50, 17},
		{"every node declared", accelConf("", yes, yes, yes), config.GototemWindowSize, config.GototemMaxMessages},
		{"window_size set", accelConf("\twindow_size: 80\n", yes, yes, yes), 80, 80},
		{"max_messages set", accelConf("\tmax_messages: 17\n", yes, yes, yes), config.GototemWindowSize, 17},
		{"both set", accelConf("\twindow_size: 50\n\tmax_messages: 17\n", yes, yes, yes), 50, 17},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := config.Parse("corosync.conf", strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("%v\n%s", err, tc.in)
			}
			if c.Totem.WindowSize != tc.window || c.Totem.MaxMessages != tc.maxMsg {
				t.Fatalf("window_size %d max_messages %d, want %d %d\n%s", c.Totem.WindowSize, c.Totem.MaxMessages, tc.window, tc.maxMsg, tc.in)
			}
			if all := strings.Count(tc.in, yes) == 3; c.Totem.GototemRing != all {
				t.Fatalf("GototemRing %v, want %v\n%s", c.Totem.GototemRing, all, tc.in)
			}
		})
	}
}
