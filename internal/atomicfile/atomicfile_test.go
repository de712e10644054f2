package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write replaces the file with the new content and mode, fsyncs the directory after the
// rename, and leaves nothing beside it. Shown failing: without the directory fsync the
// synced list stays empty.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	var synced []string
	old := syncDir
	syncDir = func(d string) error { synced = append(synced, d); return old(d) }
	defer func() { syncDir = old }()
	path := filepath.Join(dir, "ringid_1")
	for _, v := range []string{"first", "second"} {
		if err := Write(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != v {
			t.Fatalf("read %q, %v; want %q", b, err, v)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if len(synced) != 2 || synced[0] != dir {
		t.Fatalf("directory fsyncs %v, want %s twice", synced, dir)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(ents))
	}
}

// Replace replaces the file as Write does, without any fsync (the ring-id file's write).
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	synced := 0
	old := syncDir
	syncDir = func(d string) error { synced++; return old(d) }
	defer func() { syncDir = old }()
	path := filepath.Join(dir, "ringid_1")
	for _, v := range []string{"first", "second"} {
		if err := Replace(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != v {
			t.Fatalf("read %q, %v; want %q", b, err, v)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || synced != 0 {
		t.Fatalf("%d entries (want the file alone), %d directory fsyncs (want none)", len(ents), synced)
	}
}

// A write that cannot happen (the directory is gone) returns the error and leaves no
// temporary file.
func TestWriteFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	if err := Write(filepath.Join(dir, "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	// Renaming over a directory fails after the temporary file was written: it is removed.
	d := t.TempDir()
	if err := os.Mkdir(filepath.Join(d, "f"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(d, "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("rename over a directory succeeded")
	}
	ents, _ := os.ReadDir(d)
	if len(ents) != 1 {
		t.Fatalf("%d entries left, want the directory alone", len(ents))
	}
}

// TestOneAtomicWrite: the repository's code replaces files through Write or Replace only; a
// rename of a temporary file elsewhere is a second copy (one of which forgot the directory
// fsync once, and another came back when the ring-id file dropped its fsyncs).
func TestOneAtomicWrite(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if filepath.ToSlash(rel) == "internal/atomicfile/atomicfile.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if src := string(b); strings.Contains(src, "os.Rename(") && (strings.Contains(src, ".Sync()") || strings.Contains(src, "os.CreateTemp(")) {
			t.Errorf("%s renames a temporary file over another itself: use atomicfile.Write or Replace", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
