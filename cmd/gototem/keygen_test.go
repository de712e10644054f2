package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gototem/gototem/transport"
)

// TestKeygen proves the subcommand writes keys of the asked length with mode 0400, that the
// result is readable as an authkey, and that it will not replace a key without -f.
func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "authkey")
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantLen  int    // expected key size after the run (0: no file check)
		wantErr  string // substring of stderr
	}{
		{"default length", []string{"-k", key}, 0, transport.DefaultKeyLen, ""},
		{"refuses to overwrite", []string{"-k", key, "-l", "512"}, 1, transport.DefaultKeyLen, "already exists"},
		{"overwrites with -f", []string{"-k", key, "-l", "512", "-f"}, 0, 512, ""},
		{"too short", []string{"-k", filepath.Join(dir, "short"), "-l", "64"}, 1, 0, "out of range"},
		{"too long", []string{"-k", filepath.Join(dir, "long"), "-l", "4097"}, 1, 0, "out of range"},
		{"stray argument", []string{"-k", key, "extra"}, 2, 0, "unexpected argument"},
		{"bad flag", []string{"-x"}, 2, 0, "flag provided but not defined"},
		{"missing directory", []string{"-k", filepath.Join(dir, "nope", "authkey")}, 1, 0, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(append([]string{"keygen"}, tc.args...), &out, &errb)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.wantCode, errb.String())
			}
			if tc.wantErr != "" && !strings.Contains(errb.String(), tc.wantErr) {
				t.Fatalf("stderr %q lacks %q", errb.String(), tc.wantErr)
			}
			if tc.wantLen == 0 {
				return
			}
			st, err := os.Stat(key)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o400 || st.Size() != int64(tc.wantLen) {
				t.Fatalf("key file mode %v size %d, want 0400 size %d", st.Mode().Perm(), st.Size(), tc.wantLen)
			}
			if _, err := transport.ReadAuthKey(key); err != nil {
				t.Fatalf("written key does not read back: %v", err)
			}
		})
	}
}

// TestKeygenKeysDiffer guards against a constant or badly seeded key.
func TestKeygenKeysDiffer(t *testing.T) {
	dir := t.TempDir()
	var keys [][]byte
	for _, name := range []string{"a", "b"} {
		p := filepath.Join(dir, name)
		if code := dispatch([]string{"keygen", "-k", p}, new(bytes.Buffer), new(bytes.Buffer)); code != 0 {
			t.Fatalf("keygen exit %d", code)
		}
		k, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if bytes.Equal(keys[0], keys[1]) {
		t.Fatal("two generated keys are identical")
	}
}
