package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gototem/gototem/internal/atomicfile"
)

// EVStore persists the expected-votes-tracking barrier (quorum.expected_votes_tracking): the
// highest expected votes this node ever used, so that after a restart it never believes in a
// smaller cluster than it has seen.
type EVStore interface {
	// Load returns the stored barrier; a store that holds nothing returns 0.
	Load() (uint32, error)
	// Store durably records barrier. It is called only with a value larger than any stored.
	Store(barrier uint32) error
}

// MemoryEVStore keeps the barrier in memory, for tests and the simulator (a "restarted" node
// reuses the same value).
type MemoryEVStore struct {
	Barrier uint32
	Writes  int // number of Store calls, so tests can see when a write happened
}

func (m *MemoryEVStore) Load() (uint32, error) { return m.Barrier, nil }
func (m *MemoryEVStore) Store(b uint32) error {
	m.Barrier = b
	m.Writes++
	return nil
}

// FileEVStore is corosync's <state_dir>/ev_tracking file: one raw 4-byte unsigned integer in host
// byte order. Unlike corosync (whose writes go through a closed descriptor, votequorum.md §7.6
// quirk a) every Store writes a temporary file, syncs it and renames it over the old one, so a
// crash leaves either the old or the new value, never a torn one.
type FileEVStore struct {
	Path string
}

// NewFileEVStore returns the store at <stateDir>/ev_tracking.
func NewFileEVStore(stateDir string) *FileEVStore {
	return &FileEVStore{Path: filepath.Join(stateDir, "ev_tracking")}
}

// Load reads the barrier. A missing or short file reads as 0, as corosync treats it.
func (f *FileEVStore) Load() (uint32, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("quorum: ev_tracking: %w", err)
	}
	if len(b) < 4 {
		return 0, nil
	}
	return binary.NativeEndian.Uint32(b), nil
}

// Store writes the barrier atomically (write temp + fsync + rename + directory fsync:
// atomicfile, the same write as the ring-id file's).
func (f *FileEVStore) Store(barrier uint32) error {
	var buf [4]byte
	binary.NativeEndian.PutUint32(buf[:], barrier)
	// corosync creates the file with mode 0700; keep that so both can share a state dir.
	if err := atomicfile.Write(f.Path, buf[:], 0o700); err != nil {
		return fmt.Errorf("quorum: ev_tracking: store %d: %w", barrier, err)
	}
	return nil
}
