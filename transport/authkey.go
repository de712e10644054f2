package transport

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/internal/atomicfile"
)

// DefaultAuthKeyPath is where corosync looks for totem.keyfile when none is configured.
const DefaultAuthKeyPath = "/etc/corosync/authkey"

// The authkey file format is corosync-keygen's: the raw random bytes, nothing else, owned by
// root with mode 0400.

// GenerateAuthKey returns n random bytes from the system's cryptographic generator.
func GenerateAuthKey(n int) ([]byte, error) {
	if n < MinKeyLen || n > MaxKeyLen {
		return nil, fmt.Errorf("transport: authkey length %d out of range %d..%d bytes", n, MinKeyLen, MaxKeyLen)
	}
	key := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("transport: reading random bytes: %w", err)
	}
	return key, nil
}

// WriteAuthKey writes key to path with mode 0400. Without overwrite an existing file is an
// error (fs.ErrExist): replacing a cluster's key by accident splits the cluster. With
// overwrite the key is replaced through atomicfile (a temporary file synced and renamed over
// it, the directory synced), so a reader never sees a half-written key.
func WriteAuthKey(path string, key []byte, overwrite bool) error {
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return fmt.Errorf("transport: authkey length %d out of range %d..%d bytes", len(key), MinKeyLen, MaxKeyLen)
	}
	if !overwrite {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
		if err != nil {
			return fmt.Errorf("transport: authkey %s: %w", path, err)
		}
		return finishKeyFile(f, path, key)
	}
	if err := atomicfile.Write(path, key, 0o400); err != nil {
		return fmt.Errorf("transport: authkey %s: %w", path, err)
	}
	return nil
}

func finishKeyFile(f *os.File, path string, key []byte) error {
	_, werr := f.Write(key)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return fmt.Errorf("transport: authkey %s: %w", path, err)
	}
	return nil
}

// ReadAuthKey reads an authkey file: config.ReadKeyFile, the one reader the daemon uses
// too (regular file, no group/other access, corosync's length limits).
func ReadAuthKey(path string) ([]byte, error) {
	key, err := config.ReadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	return key, nil
}
