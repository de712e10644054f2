package main

import (
	"bytes"
	"github.com/gototem/gototem/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCommand proves the CLI contract of `gototem config`: exit 0/1/2, errors as
// FILE:LINE: message on stderr, warnings on stderr either way, and the dump on stdout.
func TestConfigCommand(t *testing.T) {
	valid := filepath.Join("testdata", "config", "valid-udpu.conf")
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr []string // substrings that must appear
	}{
		{name: "check valid", args: []string{"check", "--local-addr", "192.0.2.2", valid}, code: 0,
			stdout: []string{"valid: transport udpu", "nodeid 2"}, stderr: []string{valid + `:16: warning: section "amf" is ignored`}},
		{name: "check invalid lists every problem", args: []string{"check", "--local-addr", "192.0.2.1", filepath.Join("testdata", "config", "invalid.conf")}, code: 1,
			stderr: []string{"invalid.conf:4: The token timeout parameter (20 ms) may not be less than (30 ms).",
				"invalid.conf:5: The consensus timeout parameter (10 ms) may not be less than (30 ms)."}},
		{name: "check catches duplicate ids at resolve", args: []string{"check", "--local-addr", "192.0.2.1", filepath.Join("testdata", "config", "dup-id.conf")}, code: 1,
			stderr: []string{"dup-id.conf:12: Nodeid 1 appears twice in corosync.conf"}},
		{name: "syntax error", args: []string{"check", filepath.Join("testdata", "config", "syntax.conf")}, code: 1,
			stderr: []string{"syntax.conf:3: Extra characters after opening bracket '{'"}},
		{name: "missing file", args: []string{"check", "testdata/config/nope.conf"}, code: 1, stderr: []string{"nope.conf: cannot read configuration"}},
		{name: "local address not a node", args: []string{"check", "--local-addr", "198.51.100.1", valid}, code: 1,
			stderr: []string{"valid-udpu.conf:6: No valid name found for local host"}},
		{name: "dump", args: []string{"dump", "--local-addr", "192.0.2.2", valid}, code: 0,
			stdout: []string{"nodelist.local_node_pos (u32) = 1\n", "runtime.config.totem.token (u32) = 3000\n", "totem.interface.0.bindnetaddr (str) = 192.0.2.2\n"}},
		{name: "dump with prefix form", args: []string{"dump", "--local-addr", "192.0.2.1/24", valid}, code: 0,
			stdout: []string{"nodelist.local_node_pos (u32) = 0\n"}},
		{name: "missing key is a warning", args: []string{"check", "--local-addr", "192.0.2.1", filepath.Join("testdata", "config", "crypto.conf")}, code: 0,
			stderr: []string{"crypto.conf: warning: encryption is on but the key is not usable here: config: cannot open keyfile"}},
		{name: "no subcommand", args: nil, code: 2, stderr: []string{"usage: gototem config check"}},
		{name: "unknown subcommand", args: []string{"lint", valid}, code: 2},
		{name: "no file", args: []string{"check"}, code: 2},
		{name: "bad local address", args: []string{"dump", "--local-addr", "not-an-ip", valid}, code: 2, stderr: []string{`"not-an-ip" is not an IP address`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runConfig(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
		})
	}
}

// TestConfigSharedFiles proves every real config in testdata/configs passes `config check` on a
// machine that is not a node, and the fuel-ha acceptance values of `config dump`.
func TestConfigSharedFiles(t *testing.T) {
	dir := filepath.Join(testenv.Root(), "testdata")
	_, err := os.Stat(filepath.Join(dir, "configs"))
	testenv.Need(t, "testdata/configs", err)
	files, _ := filepath.Glob(filepath.Join(dir, "configs", "*"))
	caps, _ := filepath.Glob(filepath.Join(dir, "captures", "*corosync.conf.node1"))
	for _, f := range append(files, caps...) {
		var out, errb bytes.Buffer
		if code := runConfig([]string{"check", f}, &out, &errb); code != 0 {
			t.Errorf("config check %s: exit %d\n%s", f, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	fuel := filepath.Join(dir, "configs", "fuel-ha.conf")
	if code := runConfig([]string{"dump", "--local-addr", "10.107.0.8", fuel}, &out, &errb); code != 0 {
		t.Fatalf("dump fuel-ha: exit %d\n%s", code, errb.String())
	}
	for _, want := range []string{"runtime.config.totem.nodeid (u32) = 174784520\n", "runtime.config.totem.token (u32) = 3000\n",
		"runtime.config.totem.consensus (u32) = 3600\n", "runtime.config.totem.join (u32) = 60\n", "runtime.config.totem.max_messages (u32) = 20\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("fuel-ha dump lacks %q", want)
		}
	}
}
