package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `gototem config import` writes the corosync.conf, prints what does not carry over as
// FILE: warning: lines, and fails with exit 1 on a file that is not CMAN's.
func TestConfigImportCommand(t *testing.T) {
	in := filepath.Join("..", "..", "config", "testdata", "cman", "abiquo-cluster.conf")
	out := filepath.Join(t.TempDir(), "corosync.conf")
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"config", "import", "-o", out, in}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(data), "two_node: 1") || !strings.Contains(string(data), "cluster_name: pacemaker1") {
		t.Fatalf("written file: %v\n%s", err, data)
	}
	if !strings.Contains(stderr.String(), in+": warning: <fencedevices> is not carried over") {
		t.Errorf("warnings: %s", stderr.String())
	}
	bad := filepath.Join(t.TempDir(), "cluster.conf")
	os.WriteFile(bad, []byte("totem { }"), 0o600)
	stderr.Reset()
	if code := dispatch([]string{"config", "import", bad}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "not CMAN XML") {
		t.Errorf("bad file: exit %d: %s", code, stderr.String())
	}
	if code := dispatch([]string{"config", "import"}, &stdout, &stderr); code != 2 {
		t.Errorf("no file: exit %d", code)
	}
}

// Every subcommand answers --help alike: usage on stdout, exit 0 (most exited 2 and two 0).
func TestEverySubcommandHelp(t *testing.T) {
	for name := range commands {
		for _, flag := range []string{"-h", "--help"} {
			var stdout, stderr bytes.Buffer
			if code := dispatch([]string{name, flag}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "usage") || stderr.Len() != 0 {
				t.Errorf("gototem %s %s: exit %d, stdout %q, stderr %q", name, flag, code, stdout.String(), stderr.String())
			}
		}
	}
}

// `config check` says what `run` would do: a knet file (corosync 3's default transport, no
// transport line) is valid and runs; one with knet_transport sctp is refused by both.
func TestConfigCheckAgreesWithRunOnKnet(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "corosync.conf")
	os.WriteFile(conf, []byte("totem {\n\tversion: 2\n\tcluster_name: k\n}\nnodelist {\n\tnode {\n\t\tring0_addr: 127.0.0.1\n\t\tnodeid: 1\n\t}\n}\n"), 0o600)
	var out, errb bytes.Buffer
	check := dispatch([]string{"config", "check", "--local-addr", "127.0.0.1", conf}, &out, &errb)
	if check != 0 || !strings.Contains(out.String(), "valid: transport knet") {
		t.Errorf("config check of a knet file: exit %d, %q %q", check, out.String(), errb.String())
	}
	sctp := filepath.Join(dir, "sctp.conf")
	os.WriteFile(sctp, []byte("totem {\n\tversion: 2\n\tinterface {\n\t\tlinknumber: 0\n\t\tknet_transport: sctp\n\t}\n}\nnodelist {\n\tnode {\n\t\tring0_addr: 127.0.0.1\n\t\tnodeid: 1\n\t}\n}\n"), 0o600)
	out.Reset()
	errb.Reset()
	check = dispatch([]string{"config", "check", "--local-addr", "127.0.0.1", sctp}, &out, &errb)
	if check != 1 || !strings.Contains(errb.String(), "sctp") {
		t.Errorf("config check of a knet sctp file: exit %d, %q", check, errb.String())
	}
	errb.Reset()
	run := dispatch([]string{"run", "-c", sctp, "--local-addr", "127.0.0.1", "--state-dir", t.TempDir(), "--socket", filepath.Join(t.TempDir(), "s"), "--no-ipc"}, &out, &errb)
	if run != 1 || !strings.Contains(errb.String(), "sctp") {
		t.Errorf("run of a knet sctp file: exit %d, %q", run, errb.String())
	}
}
