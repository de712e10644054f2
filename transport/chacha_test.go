package transport

import (
	"bytes"
	"testing"
)

// ChaCha20-Poly1305 (crypto_cipher: chacha20) works like the AES-GCM ciphers: the same key
// opens a sealed datagram once, a replay and another key are refused, and a datagram sealed
// with one cipher does not open under the other.
func TestChaCha20Poly1305(t *testing.T) {
	key := testKey(7)
	s, err := newCryptoState(&CryptoConfig{Key: key, Cipher: ChaCha20Poly1305, Epoch: 5}, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newCryptoState(&CryptoConfig{Key: key, Cipher: ChaCha20Poly1305, Epoch: 1}, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("a totem datagram")
	sealed := s.sealInto(nil, plain)
	var nonce [12]byte
	got, err := r.open(bytes.Clone(sealed), &nonce)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := r.open(bytes.Clone(sealed), &nonce); err == nil {
		t.Fatal("replayed datagram accepted")
	}
	other, _ := newCryptoState(&CryptoConfig{Key: testKey(8), Cipher: ChaCha20Poly1305, Epoch: 1}, 0, 3)
	if _, err := other.open(bytes.Clone(s.sealInto(nil, plain)), &nonce); err == nil {
		t.Fatal("datagram opened with another key")
	}
	aes, _ := newCryptoState(&CryptoConfig{Key: key, Cipher: AES256GCM, Epoch: 1}, 0, 4)
	if _, err := aes.open(bytes.Clone(s.sealInto(nil, plain)), &nonce); err == nil {
		t.Fatal("ChaCha20 datagram opened as AES-GCM")
	}
	if c, err := ParseCipher("", "chacha20", "sha256"); err != nil || c != ChaCha20Poly1305 {
		t.Fatalf("ParseCipher chacha20: %v %v", c, err)
	}
}
