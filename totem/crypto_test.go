package totem

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gototem/gototem/transport"
)

func keyFile(t *testing.T, seed byte) string {
	t.Helper()
	key := make([]byte, 256)
	for i := range key {
		key[i] = seed + byte(i*7)
	}
	path := filepath.Join(t.TempDir(), "authkey")
	if err := transport.WriteAuthKey(path, key, false); err != nil {
		t.Fatal(err)
	}
	return path
}

// Encrypted rings (a gototem extension on udp/udpu): nodes sharing the authkey form a ring with
// either cipher; a node with another key is counted as authentication failures by the others
// and can neither join nor inject.
func TestEncryptedRing(t *testing.T) {
	for _, cipher := range []string{"aes256", "chacha20"} {
		t.Run(cipher, func(t *testing.T) {
			good, bad := keyFile(t, 1), keyFile(t, 2)
			ms := startCluster(t, "udpu", 3, func(id int) []string {
				key := good
				if id == 3 {
					key = bad
				}
				return []string{"crypto_cipher: " + cipher, "crypto_hash: sha256", "keyfile: " + key}
			})
			waitFor(t, 10*time.Second, "a ring of the two nodes sharing the key", ringOf(ms[:2], []NodeID{1, 2}))
			time.Sleep(300 * time.Millisecond)
			if c, ok := ms[2].lastRegular(); !ok || len(c.Members) != 1 {
				t.Fatalf("the node with the wrong key is in %v", c.Members)
			}
			st := ms[0].node.Status()
			if st.Net[0].DroppedAuth == 0 {
				t.Fatalf("no authentication failures counted: %+v", st.Net[0])
			}
		})
	}
}
