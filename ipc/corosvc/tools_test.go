package corosvc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/ipc"
)

// The tests here run corosync's own tools, unchanged, against the services. The tools
// connect to the fixed abstract names ("cmap", ...) of their network namespace, so the
// services run in a helper process (this test binary again) in a namespace of its own
// (unshare -n), and each tool runs in it through nsenter.

const helperEnv = "GOTOTEM_COROSVC_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// fakeNode is a KeySource whose keys the test changes through the helper's stdin.
type fakeNode struct {
	mu   sync.Mutex
	keys []config.KeyValue
}

func (f *fakeNode) CmapKeys() []config.KeyValue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]config.KeyValue(nil), f.keys...)
}

func helperMain() int {
	node := &fakeNode{keys: []config.KeyValue{
		{Key: "totem.cluster_name", Type: config.TypeStr, Value: "helper"},
		{Key: "totem.version", Type: config.TypeU32, Value: "2"},
		{Key: "nodelist.node.0.nodeid", Type: config.TypeU32, Value: "1"},
		{Key: "runtime.members.1.status", Type: config.TypeStr, Value: "joined"},
		{Key: "stats.srp.orf_token_rx", Type: config.TypeU64, Value: "85"}, // the node's stats: -m stats only
		{Key: "runtime.votequorum.quorate", Type: config.TypeU8, Value: "1"},
		{Key: "resources.watchdog_timeout", Type: config.TypeU32, Value: "6"},
	}}
	srv := ipc.NewServer(ipc.Options{})
	cmap := NewCmap(node, func() []config.KeyValue {
		st := srv.Stats()
		return []config.KeyValue{{Key: "stats.ipcs.global.active", Type: config.TypeU64, Value: fmt.Sprint(st.Active)}}
	})
	if err := srv.Listen("cmap", cmap); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready")
	// Commands on stdin change the node's keys as a membership change would.
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "nodeset" {
			node.mu.Lock()
			found := false
			for i := range node.keys {
				if node.keys[i].Key == f[1] {
					node.keys[i].Value = f[2]
					found = true
				}
			}
			if !found {
				node.keys = append(node.keys, config.KeyValue{Key: f[1], Type: config.TypeStr, Value: f[2]})
			}
			node.mu.Unlock()
			cmap.Refresh()
			fmt.Println("done")
		}
	}
	srv.Close()
	return 0
}

type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed: %v", tool, err)
			}
			t.Skipf("%s is needed: %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root for a network namespace")
		}
		t.Skip("needs root for a network namespace")
	}
}

func startHelper(t *testing.T) *helper {
	t.Helper()
	need(t, "unshare", "nsenter", "corosync-cmapctl")
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
	})
	line, err := h.out.ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	return h
}

func (h *helper) command(t *testing.T, line string) {
	t.Helper()
	fmt.Fprintln(h.stdin, line)
	if got, err := h.out.ReadString('\n'); err != nil || got != "done\n" {
		t.Fatalf("helper: %q %v", got, err)
	}
}

// tool runs a corosync tool in the helper's namespace.
func (h *helper) tool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", h.cmd.Process.Pid), name}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", a...).CombinedOutput()
	return string(out), err
}

func TestCmapctl(t *testing.T) {
	h := startHelper(t)
	run := func(args ...string) string {
		out, _ := h.tool(t, "corosync-cmapctl", args...)
		return out
	}
	want := `nodelist.node.0.nodeid (u32) = 1
resources.watchdog_timeout (u32) = 6
runtime.members.1.status (str) = joined
runtime.votequorum.quorate (u8) = 1
totem.cluster_name (str) = helper
totem.version (u32) = 2
`
	if got := run(); got != want {
		t.Fatalf("dump:\n%s\nwant:\n%s", got, want)
	}
	if got := run("-g", "totem.cluster_name"); got != "totem.cluster_name (str) = helper\n" {
		t.Fatalf("-g: %q", got)
	}
	if got := run("-g", "no.such.key"); got != "Can't get key no.such.key. Error CS_ERR_NOT_EXIST\n" {
		t.Fatalf("-g missing: %q", got)
	}
	if got := run("runtime."); got != "runtime.members.1.status (str) = joined\nruntime.votequorum.quorate (u8) = 1\n" {
		t.Fatalf("prefix: %q", got)
	}
	// Every type corosync-cmapctl can set comes back as it was set.
	for _, c := range [][3]string{
		{"i8", "-5", "-5"}, {"u8", "200", "200"}, {"i16", "-300", "-300"}, {"u16", "60000", "60000"},
		{"i32", "-70000", "-70000"}, {"u32", "4000000000", "4000000000"}, {"i64", "-5000000000", "-5000000000"},
		{"u64", "18000000000000000000", "18000000000000000000"}, {"flt", "1.5", "1.500000"}, {"dbl", "2.25", "2.250000"},
		{"str", "hello", "hello"},
	} {
		if out := run("-s", "test.v", c[0], "--", c[1]); out != "" {
			t.Fatalf("-s %s: %q", c[0], out)
		}
		if got, w := run("-g", "test.v"), fmt.Sprintf("test.v (%s) = %s\n", c[0], c[2]); got != w {
			t.Fatalf("-g after -s %s: %q want %q", c[0], got, w)
		}
	}
	if out := run("-d", "test.v"); out != "" {
		t.Fatalf("-d: %q", out)
	}
	if got := run("-g", "test.v"); !strings.Contains(got, "CS_ERR_NOT_EXIST") {
		t.Fatalf("-g after -d: %q", got)
	}
	// corosync's read-only keys.
	if got := run("-s", "totem.cluster_name", "str", "x"); got != "Failed to set key totem.cluster_name. Error CS_ERR_ACCESS\n" {
		t.Fatalf("ro set: %q", got)
	}
	if got := run("-d", "nodelist.node.0.nodeid"); !strings.Contains(got, "CS_ERR_ACCESS") {
		t.Fatalf("ro delete: %q", got)
	}
	// A node key deleted by a client is gone until the node changes it.
	if out := run("-d", "resources.watchdog_timeout"); out != "" {
		t.Fatalf("-d node key: %q", out)
	}
	if got := run("resources."); got != "" {
		t.Fatalf("deleted node key still listed: %q", got)
	}
	if got := run("stats."); got != "" {
		t.Fatalf("the node's stats.* keys listed in the default map: %q", got)
	}
	if got := run("-m", "stats"); got != "stats.ipcs.global.active (u64) = 1\nstats.srp.orf_token_rx (u64) = 85\n" {
		t.Fatalf("-m stats: %q", got)
	}
}

func TestCmapctlTrack(t *testing.T) {
	h := startHelper(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// cmapctl -T tracks a prefix until "q" on stdin; stdbuf keeps its lines unbuffered.
	need(t, "stdbuf")
	cmd := exec.CommandContext(ctx, "nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", h.cmd.Process.Pid),
		"stdbuf", "-oL", "corosync-cmapctl", "-T", "runtime.")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	if l, _ := out.ReadString('\n'); l != "Type \"q\" to finish\n" {
		t.Fatalf("track: %q", l)
	}
	// The track is in place once its connection answered; make sure with a round trip.
	time.Sleep(200 * time.Millisecond)
	h.command(t, "nodeset runtime.members.1.status left")
	h.command(t, "nodeset runtime.members.2.status joined")
	if _, err := h.tool(t, "corosync-cmapctl", "-s", "runtime.x", "u8", "1"); err != nil {
		t.Fatal(err)
	}
	h.tool(t, "corosync-cmapctl", "-s", "other.x", "u8", "1") // outside the prefix
	h.tool(t, "corosync-cmapctl", "-d", "runtime.x")
	want := []string{
		"modify> runtime.members.1.status (str) = left",
		"create> runtime.members.2.status (str) = joined",
		"create> runtime.x (u8) = 1",
		"delete> runtime.x (u8) = 1",
	}
	for _, w := range want {
		l, err := out.ReadString('\n')
		if err != nil || strings.TrimSuffix(l, "\n") != w {
			t.Fatalf("track line %q (%v), want %q", l, err, w)
		}
	}
	io.WriteString(stdin, "q\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("cmapctl -T: %v", err)
	}
}
