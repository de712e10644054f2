package knet

import (
	"bytes"
	"errors"
	"testing"
)

func keyOf(b byte) []byte { return bytes.Repeat([]byte{b}, 256) }

func mustCrypto(t *testing.T, key []byte) *Crypto {
	t.Helper()
	c, err := NewCrypto(CryptoConfig{Model: "nss", Cipher: CipherAES256, Hash: HashSHA256, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestKeyringReload follows corosync's crypto reconfiguration between two nodes: the new
// key is installed beside the old one everywhere, then activated, then the old one cleared.
// At every step each node opens what the other sends; after the cleanup the old key and
// clear packets are refused.
func TestKeyringReload(t *testing.T) {
	a, b := NewKeyring(mustCrypto(t, keyOf(1))), NewKeyring(mustCrypto(t, keyOf(1)))
	ping := NewPing(1, 0, 1, 2, 3, true)
	plain := ping.AppendEncode(nil)
	var salt [SaltSize]byte
	exchange := func(step string, wantA, wantB int) {
		t.Helper()
		if got, i, err := b.Open(nil, a.Seal(nil, plain, &salt)); err != nil || i != wantA || !bytes.Equal(got, plain) {
			t.Errorf("%s: b opens a's packet with index %d, %v; want %d", step, i, err, wantA)
		}
		if got, i, err := a.Open(nil, b.Seal(nil, plain, &salt)); err != nil || i != wantB || !bytes.Equal(got, plain) {
			t.Errorf("%s: a opens b's packet with index %d, %v; want %d", step, i, err, wantB)
		}
	}
	exchange("start", 1, 1)
	if _, _, err := a.Open(nil, plain); !errors.Is(err, ErrClearRefused) {
		t.Errorf("clear packet with crypto on: %v", err)
	}
	old := a.Seal(nil, plain, &salt)

	// Reload: key 2 at index 2 on both; a activates before b has (ACTIVATE is per node).
	a.Set(2, mustCrypto(t, keyOf(2)))
	b.Set(2, mustCrypto(t, keyOf(2)))
	exchange("installed", 1, 1)
	a.Use(2)
	exchange("a activated", 2, 1)
	b.Use(2)
	exchange("both activated", 2, 2)
	// CLEANUP: the old index goes; packets under the old key no longer open.
	a.Set(1, nil)
	b.Set(1, nil)
	exchange("cleaned up", 2, 2)
	if _, _, err := a.Open(nil, old); !errors.Is(err, ErrClearRefused) || !errors.Is(err, ErrDigest) {
		t.Errorf("old key after cleanup: %v", err)
	}

	// Turning crypto off: clear traffic allowed first, then the config cleared.
	a.AllowClear(true)
	b.AllowClear(true)
	a.Set(2, nil)
	if a.InUse() != 0 {
		t.Fatalf("in use %d after clearing it", a.InUse())
	}
	if got, i, err := b.Open(nil, a.Seal(nil, plain, &salt)); err != nil || i != 0 || !bytes.Equal(got, plain) {
		t.Errorf("clear packet while allowed: %d %v", i, err)
	}
	if got, i, err := a.Open(nil, b.Seal(nil, plain, &salt)); err != nil || i != 0 || !bytes.Equal(got, b.Seal(nil, plain, &salt)) {
		t.Errorf("a (no config, clear allowed) takes b's sealed packet as clear bytes: %d %v %d", i, err, len(got))
	}
	if a.Use(2) == nil || a.Use(3) == nil || a.Set(0, nil) == nil {
		t.Error("bad index accepted")
	}
	if k := NewKeyring(nil); k.InUse() != 0 || !bytes.Equal(k.Seal(nil, plain, &salt), plain) {
		t.Error("clear keyring seals")
	}
}
