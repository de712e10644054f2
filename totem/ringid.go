package totem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gototem/gototem/internal/atomicfile"
	"github.com/gototem/gototem/srp"
)

// fileRingIDStore persists the ring sequence number in <dir>/ringid_<nodeid>, the file corosync
// keeps: 8 bytes, the sequence as a native-endian u64, so a gototem node and a corosync node can
// share a state directory layout. Writes go through atomicfile (a temporary file synced, renamed,
// and the directory synced), so a crash or a full disk leaves the old value intact rather than a
// torn one, and the new value survives a power loss once Store returns.
type fileRingIDStore struct {
	Path string
}

// newfileRingIDStore returns the store for nodeid in dir.
func newfileRingIDStore(dir string, nodeid srp.NodeID) *fileRingIDStore {
	return &fileRingIDStore{Path: filepath.Join(dir, fmt.Sprintf("ringid_%d", nodeid))}
}

// Load implements srp.RingIDStore. A missing or short file reads as "nothing stored", as
// corosync treats it (it then starts from 0).
func (s *fileRingIDStore) Load() (uint64, bool, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("totem: ring id: %w", err)
	}
	if len(b) < 8 {
		return 0, false, nil
	}
	return binary.NativeEndian.Uint64(b), true, nil
}

// Store implements srp.RingIDStore.
func (s *fileRingIDStore) Store(seq uint64) error {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], seq)
	if err := atomicfile.Write(s.Path, b[:], 0o600); err != nil {
		return fmt.Errorf("totem: ring id: %w", err)
	}
	return nil
}
