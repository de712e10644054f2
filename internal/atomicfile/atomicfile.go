// Package atomicfile replaces small state files so that a crash leaves the old content or the
// new, never a torn file nor a rename lost with the directory entry: the one copy of that
// write, used for the ring-id file (package totem) and votequorum's ev_tracking (package
// quorum).
package atomicfile

import (
	"os"
	"path/filepath"
)

// syncDir is the directory fsync, a variable so a test can see it happen.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	if cerr := d.Close(); serr == nil {
		serr = cerr
	}
	return serr
}

// Write replaces path with data and mode perm: it writes a temporary file beside it, fsyncs
// it, renames it over path and fsyncs the directory, so the rename itself survives a power
// loss. On failure the temporary file is removed and path is unchanged.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	return syncDir(dir)
}
