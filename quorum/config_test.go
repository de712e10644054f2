package quorum

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// Startup errors and incompatibility rules of votequorum.md §3 (the table) and §7.
func TestStartupErrors(t *testing.T) {
	one := ptr(uint32(1))
	three := ptr(uint32(3))
	tests := []struct {
		name string
		cfg  Config
		want string // "" = starts
	}{
		{"no nodelist, no expected_votes", Config{NodeID: 1}, "nodelist or quorum.expected_votes must be configured!"},
		{"local node not in the nodelist counts as no nodelist", Config{NodeID: 9, Nodelist: nodelist(3)}, "nodelist or quorum.expected_votes must be configured!"},
		{"expected_votes alone is enough", Config{NodeID: 1, ExpectedVotes: 3}, ""},
		{"two_node + qdevice", Config{NodeID: 1, Nodelist: nodelist(2), TwoNode: true, Device: DeviceConfig{Model: "net"}}, "two_node and quorum device cannot be configured at the same time!"},
		{"ATB + LMS + odd, no WFA", Config{NodeID: 1, Nodelist: nodelist(3), AutoTieBreaker: true, LastManStanding: true}, "auto_tie_breaker & last_man_standing not available in odd sized cluster"},
		{"ATB + LMS + odd + WFA", Config{NodeID: 1, Nodelist: nodelist(3), AutoTieBreaker: true, LastManStanding: true, WaitForAll: ptr(true)}, ""},
		{"qdevice + LMS", Config{NodeID: 1, Nodelist: nodelist(2), LastManStanding: true, Device: DeviceConfig{Model: "net"}}, "quorum.device is not compatible with last_man_standing"},
		{"qdevice + ATB", Config{NodeID: 1, Nodelist: nodelist(2), AutoTieBreaker: true, Device: DeviceConfig{Model: "net"}}, "quorum.device is not compatible with auto_tie_breaker"},
		{"qdevice + allow_downscale", Config{NodeID: 1, Nodelist: nodelist(2), AllowDownscale: true, Device: DeviceConfig{Model: "net"}}, "quorum.device is not compatible with allow_downscale"},
		{"qdevice + expected_votes, no device.votes", Config{NodeID: 1, Nodelist: nodelist(2), ExpectedVotes: 3, Device: DeviceConfig{Model: "net"}}, "quorum.device.votes must be specified when quorum.expected_votes is set"},
		{"qdevice + uneven votes, no device.votes", Config{NodeID: 1, Nodelist: []NodeEntry{{1, 2}, {2, 1}}, Device: DeviceConfig{Model: "net"}}, "quorum.device.votes must be specified when not all nodes votes 1"},
		{"device.votes too high", Config{NodeID: 1, Nodelist: nodelist(2), ExpectedVotes: 4, Device: DeviceConfig{Model: "net", Votes: three}}, "quorum.device.votes is too high or expected_votes is too low"},
		{"device.votes fits", Config{NodeID: 1, Nodelist: nodelist(2), ExpectedVotes: 4, Device: DeviceConfig{Model: "net", Votes: one}}, ""},
		{"nodeid 0", Config{NodeID: 0, Nodelist: nodelist(2)}, "nodeid 0 is reserved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, nil, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want configuration error %q", err, tc.want)
			}
		})
	}
}

// Conflicts corosync survives with a log line, and what it then runs with.
func TestConfigResolution(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		twoNode  bool
		wfa      bool
		atb      ATBMode
		expected uint32
		warn     string
	}{
		{"two_node implies wait_for_all", Config{Nodelist: nodelist(2), TwoNode: true}, true, true, ATBNone, 2, ""},
		{"explicit wait_for_all 0 wins", Config{Nodelist: nodelist(2), TwoNode: true, WaitForAll: ptr(false)}, true, false, ATBNone, 2, ""},
		{"two_node + ATB: two_node off (WFA stays, it follows the key)", Config{Nodelist: nodelist(2), TwoNode: true, AutoTieBreaker: true}, false, true, ATBLowest, 2, "two_node has been disabled"},
		{"ATB odd without WFA: ATB off", Config{Nodelist: nodelist(3), AutoTieBreaker: true}, false, false, ATBNone, 3, "auto_tie_breaker has been disabled"},
		{"ATB highest", Config{Nodelist: nodelist(4), AutoTieBreaker: true, AutoTieBreakerNode: "highest"}, false, false, ATBHighest, 4, ""},
		{"ATB list stops at the first non-number", Config{Nodelist: nodelist(4), AutoTieBreaker: true, AutoTieBreakerNode: "4 2 x 1"}, false, false, ATBList, 4, ""},
		{"ATB garbage: off with the misspelt key", Config{Nodelist: nodelist(4), AutoTieBreaker: true, AutoTieBreakerNode: "nobody"}, false, false, ATBNone, 4, "auto_tie_breaker_nodes is not valid"},
		{"ATB node without ATB", Config{Nodelist: nodelist(4), AutoTieBreakerNode: "lowest"}, false, false, ATBNone, 4, "meaningless"},
		{"expected_votes overrides the nodelist", Config{Nodelist: nodelist(3), ExpectedVotes: 7}, false, false, ATBNone, 7, ""},
		{"qdevice auto votes: E = 2N-1", Config{Nodelist: nodelist(3), Device: DeviceConfig{Model: "net"}}, false, false, ATBNone, 5, ""},
		{"weighted nodelist", Config{Nodelist: []NodeEntry{{1, 3}, {2, 1}, {3, 0}}}, false, false, ATBNone, 4, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.NodeID = 1
			m, err := New(tc.cfg, &MemoryEVStore{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.TwoNode() != tc.twoNode || m.d.wfa != tc.wfa || m.ATB() != tc.atb || m.ExpectedVotes() != tc.expected {
				t.Fatalf("two_node=%v wfa=%v atb=%v E=%d, want %v %v %v %d", m.TwoNode(), m.d.wfa, m.ATB(), m.ExpectedVotes(), tc.twoNode, tc.wfa, tc.atb, tc.expected)
			}
			w := strings.Join(m.Warnings(), "\n")
			if (tc.warn == "") != (w == "") || !strings.Contains(w, tc.warn) {
				t.Fatalf("warnings %q, want %q", w, tc.warn)
			}
		})
	}
	m, _ := New(Config{NodeID: 1, Nodelist: nodelist(4), AutoTieBreaker: true, AutoTieBreakerNode: "4 2 x 1"}, nil, nil)
	if !slices.Equal(m.d.atbList, []NodeID{4, 2}) {
		t.Fatalf("atb list %v", m.d.atbList)
	}
	if d := m.d.lmsWindow; d != DefaultLastManStandingWindow {
		t.Fatalf("default window %v", d)
	}
	m, _ = New(Config{NodeID: 1, Nodelist: nodelist(3), Device: DeviceConfig{Model: "net"}}, nil, nil)
	if m.qdevice.votes != 2 || m.QdeviceTimeout() != 10*time.Second || m.d.qdeviceSync != 30*time.Second {
		t.Fatalf("qdevice votes %d timeouts %v %v", m.qdevice.votes, m.QdeviceTimeout(), m.d.qdeviceSync)
	}
}

// A reload with a conflict is logged and resolved at run time instead of failing.
func TestReloadConflicts(t *testing.T) {
	m, err := New(Config{NodeID: 1, Nodelist: nodelist(2), Device: DeviceConfig{Model: "net"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(0)
	if err := m.Reload(0, Config{NodeID: 1, Nodelist: nodelist(2), TwoNode: true, Device: DeviceConfig{Model: "net"}}); err != nil {
		t.Fatal(err)
	}
	if m.QdeviceCanOperate() || !m.TwoNode() {
		t.Fatalf("unregistered device + two_node on reload: want two_node kept, device disabled")
	}
	if err := m.QdeviceRegister(0, "Qdevice"); !errors.Is(err, ErrAccess) {
		t.Fatalf("register with device disabled: %v", err)
	}
	// Broken reload: keep running on current data.
	if err := m.Reload(0, Config{NodeID: 1}); err != nil {
		t.Fatal(err)
	}
	if m.ExpectedVotes() != 3 {
		t.Fatalf("expected votes changed by an unusable reload: %d", m.ExpectedVotes())
	}
}

// An absent wait_for_all follows two_node on reload too; a reload never re-arms the wait.
func TestReloadTwoNodeCarriesImplicitWFA(t *testing.T) {
	cfg := Config{NodeID: 1, Nodelist: nodelist(2), TwoNode: true}
	m, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(0)
	if !m.WaitingForAll() {
		t.Fatal("two_node alone at start must wait for all")
	}
	cfg.TwoNode = false
	if err := m.Reload(0, cfg); err != nil {
		t.Fatal(err)
	}
	info, _ := m.GetInfo(0)
	if m.WaitingForAll() || info.Flags&(InfoWaitForAll|InfoTwoNode) != 0 {
		t.Fatalf("after two_node off: waiting=%v flags=%b", m.WaitingForAll(), info.Flags)
	}
	cfg.TwoNode = true
	if err := m.Reload(0, cfg); err != nil {
		t.Fatal(err)
	}
	info, _ = m.GetInfo(0)
	if m.WaitingForAll() || info.Flags&InfoWaitForAll == 0 {
		t.Fatalf("after two_node on again: waiting=%v flags=%b (wait_for_all on, not re-armed)", m.WaitingForAll(), info.Flags)
	}
	// Explicit wait_for_all does not follow.
	cfg = Config{NodeID: 1, Nodelist: nodelist(2), TwoNode: true, WaitForAll: ptr(true)}
	m, _ = New(cfg, nil, nil)
	cfg.TwoNode = false
	if err := m.Reload(0, cfg); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.GetInfo(0); info.Flags&InfoWaitForAll == 0 {
		t.Fatal("explicit wait_for_all dropped on reload")
	}
}
