// Package atomicfile replaces small state files so that a crash leaves the old content or the
// new, never a torn file: the one copy of that write. Write also survives a power loss
// (votequorum's ev_tracking, package quorum); Replace does not fsync, as corosync's ring-id
// file (package totem) is written.
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
func Write(path string, data []byte, perm os.FileMode) error { return write(path, data, perm, true) }

// Replace is Write without the fsyncs: a killed process still leaves the old content or the
// new, a power loss may bring back the old. The ring-id file uses it: every member stores the
// new ring id before passing the commit token on, so two fsyncs per member (about 2.5 ms each
// here) add up around the ring, and corosync writes that file without fsync too.
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, sync bool) error {
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
	if werr == nil && sync {
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
	if !sync {
		return nil
	}
	return syncDir(dir)
}
