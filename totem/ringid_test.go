package totem

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFileRingIDStore(t *testing.T) {
	dir := t.TempDir()
	s := newfileRingIDStore(dir, 7)
	if seq, ok, err := s.Load(); err != nil || ok || seq != 0 {
		t.Fatalf("empty store: %d %v %v", seq, ok, err)
	}
	if err := s.Store(0x1234); err != nil {
		t.Fatal(err)
	}
	if seq, ok, err := s.Load(); err != nil || !ok || seq != 0x1234 {
		t.Fatalf("after store: %d %v %v", seq, ok, err)
	}
	if filepath.Base(s.Path) != "ringid_7" {
		t.Fatalf("file name %s", s.Path)
	}
	if fi, err := os.Stat(s.Path); err != nil || fi.Size() != 8 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file %v %v", fi, err)
	}
	// The temporary file was renamed over the old value: nothing else is left in the directory.
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 1 {
		t.Fatalf("state directory after Store: %v %v", ents, err)
	}
	// A short (torn by another writer) file reads as nothing stored, as in corosync.
	os.WriteFile(s.Path, []byte{1, 2}, 0o600)
	if _, ok, err := s.Load(); ok || err != nil {
		t.Fatalf("short file: ok=%v err=%v", ok, err)
	}
	// A directory that cannot be written to is an error, not a panic or a silent success.
	bad := newfileRingIDStore(filepath.Join(dir, "missing", "sub"), 1)
	if err := bad.Store(1); err == nil {
		t.Fatal("store into a missing directory succeeded")
	}
}
