package knet

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The real corosync captures copied from ../../shared/knet-captures (see its README).
const capturesDir = "testdata/captures"

// udpPayloads returns the UDP payloads of a capture in file order.
func udpPayloads(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(capturesDir, name))
	if err != nil {
		t.Fatal(err) // the files are in the repository: absence is a failure, CI or not
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			out = append(out, u.Payload)
		}
	}
}

func captureKey(t testing.TB) []byte {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(capturesDir, "knet-aes256.authkey"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func aes256sha256(t testing.TB, key []byte) *Crypto {
	t.Helper()
	c, err := NewCrypto(CryptoConfig{Model: "nss", Cipher: CipherAES256, Hash: HashSHA256, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOpenRealCapture: every packet real corosync encrypted (aes256/sha256 with the
// capture's authkey) passes the HMAC, decrypts to a valid v1 knet packet, and sealing that
// plaintext again with the packet's own salt gives back the captured bytes exactly.
func TestOpenRealCapture(t *testing.T) {
	c := aes256sha256(t, captureKey(t))
	pkts := udpPayloads(t, "knet-aes256-formation.pcap")
	if len(pkts) != 339 {
		t.Fatalf("%d packets, the README counts 339", len(pkts))
	}
	var (
		p      Packet
		counts = map[PacketType]int{}
		plain  []byte
		again  []byte
	)
	for i, w := range pkts {
		var err error
		plain, err = c.Open(plain[:0], w)
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if err := p.Decode(plain); err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		counts[p.Type]++
		if len(w) != len(plain)+c.Overhead(len(plain)) {
			t.Errorf("packet %d: wire %d bytes, plaintext %d + overhead %d", i+1, len(w), len(plain), c.Overhead(len(plain)))
		}
		var salt [SaltSize]byte
		copy(salt[:], w)
		again = c.Seal(again[:0], plain, &salt)
		if !bytes.Equal(again, w) {
			t.Fatalf("packet %d: re-sealing differs", i+1)
		}
	}
	want := map[PacketType]int{TypeData: 243, TypePing: 42, TypePong: 42, TypePMTUD: 6, TypePMTUDReply: 6}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("%s: %d packets, the README counts %d", typ, counts[typ], n)
		}
	}
	// The README's first packet: node 1 -> 3, PING on link 0, seq 0, timed.
	plain, _ = c.Open(nil, pkts[0])
	if want := unhex(t, "01 81 0001 0000 00 b80e000000000000 5c82d10900000000 0000 01"); !bytes.Equal(plain, want) {
		t.Errorf("first packet decrypts to %x", plain)
	}
}

// TestOpenWrongKeyOrScheme: the README's negative checks. An HMAC keyed with only the
// cipher's 32 bytes, another authkey, or the wrong hash does not open corosync's packets.
func TestOpenWrongKeyOrScheme(t *testing.T) {
	key := captureKey(t)
	w := udpPayloads(t, "knet-aes256-formation.pcap")[0]
	other := bytes.Clone(key)
	other[200] ^= 1
	for name, cfg := range map[string]CryptoConfig{
		"key byte 200 flipped": {Model: "nss", Cipher: CipherAES256, Hash: HashSHA256, Key: other},
		"hmac over 128 bytes":  {Model: "nss", Cipher: CipherAES256, Hash: HashSHA256, Key: key[:128]},
		"sha512":               {Model: "openssl", Cipher: CipherAES256, Hash: HashSHA512, Key: key},
	} {
		c, err := NewCrypto(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Open(nil, w); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// TestSealOpenAllSchemes round-trips every cipher/hash pair libknet accepts over sizes that
// hit every padding length, and checks each single-bit flip and truncation is rejected.
func TestSealOpenAllSchemes(t *testing.T) {
	seed := uint64(7)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	key := make([]byte, 256)
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	for ci := CipherNone; ci <= CipherAES128; ci++ {
		for h := HashNone; h <= HashSHA512; h++ {
			c, err := NewCrypto(CryptoConfig{Model: "nss", Cipher: ci, Hash: h, Key: key})
			if ci != CipherNone && h == HashNone {
				if err == nil {
					t.Errorf("%v without a hash accepted", ci)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for n := 1; n <= 70; n++ {
				plain := make([]byte, n)
				for i := range plain {
					plain[i] = byte(rng.Uint32())
				}
				var salt [SaltSize]byte
				for i := range salt {
					salt[i] = byte(rng.Uint32())
				}
				w := c.Seal(nil, plain, &salt)
				if len(w) != n+c.Overhead(n) || c.Overhead(n) > c.MaxOverhead() {
					t.Fatalf("%v/%v n=%d: wire %d, overhead %d max %d", ci, h, n, len(w), c.Overhead(n), c.MaxOverhead())
				}
				got, err := c.Open(nil, w)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("%v/%v n=%d: open %v", ci, h, n, err)
				}
				if h == HashNone {
					continue
				}
				bit := rng.IntN(len(w) * 8)
				w[bit/8] ^= 1 << (bit % 8)
				if _, err := c.Open(nil, w); !errors.Is(err, ErrDigest) {
					t.Fatalf("%v/%v n=%d: bit %d flipped: %v", ci, h, n, bit, err)
				}
				w[bit/8] ^= 1 << (bit % 8)
				if _, err := c.Open(nil, w[:len(w)-1]); err == nil {
					t.Fatalf("%v/%v n=%d: truncated packet opened", ci, h, n)
				}
			}
		}
	}
}

// TestOpenBadPadding: a packet with a valid MAC but impossible PKCS#7 padding (only a peer
// holding the key can make one) is refused, not trusted.
func TestOpenBadPadding(t *testing.T) {
	key := captureKey(t)
	c := aes256sha256(t, key)
	var salt [SaltSize]byte
	plain := make([]byte, 32) // two blocks; Seal adds a third of pure padding
	w := c.Seal(nil, plain, &salt)
	// Drop the padding block and re-MAC: the last plaintext byte is now 0x00, bad padding.
	body := bytes.Clone(w[:SaltSize+32])
	c.mac.Reset()
	c.mac.Write(body)
	forged := c.mac.Sum(body)
	if _, err := c.Open(nil, forged); !errors.Is(err, ErrPadding) {
		t.Errorf("zero padding byte: %v", err)
	}
	// Last byte says 2 padding bytes, the byte before it disagrees (NSS checks them all).
	plain[30], plain[31] = 5, 2
	w = c.Seal(nil, plain, &salt)
	body = bytes.Clone(w[:SaltSize+32])
	c.mac.Reset()
	c.mac.Write(body)
	if _, err := c.Open(nil, c.mac.Sum(body)); !errors.Is(err, ErrPadding) {
		t.Errorf("inconsistent padding bytes: %v", err)
	}
	plain[30] = 2 // now valid: 30 bytes of plaintext
	w = c.Seal(nil, plain, &salt)
	body = bytes.Clone(w[:SaltSize+32])
	c.mac.Reset()
	c.mac.Write(body)
	if got, err := c.Open(nil, c.mac.Sum(body)); err != nil || len(got) != 30 {
		t.Errorf("consistent 2-byte padding: %d bytes, %v", len(got), err)
	}
	// Cipher text not a whole number of blocks, valid MAC.
	c.mac.Reset()
	odd := bytes.Clone(w[:SaltSize+20])
	c.mac.Write(odd)
	if _, err := c.Open(nil, c.mac.Sum(odd)); !errors.Is(err, ErrCipherText) {
		t.Errorf("20-byte ciphertext: %v", err)
	}
}

func TestNewCryptoRejects(t *testing.T) {
	key := make([]byte, 256)
	for name, cfg := range map[string]CryptoConfig{
		"model gcrypt": {Model: "gcrypt", Cipher: CipherAES256, Hash: HashSHA256, Key: key},
		"short key":    {Model: "nss", Cipher: CipherAES256, Hash: HashSHA256, Key: key[:127]},
		"long key":     {Model: "nss", Cipher: CipherAES256, Hash: HashSHA256, Key: make([]byte, 4097)},
		"cipher only":  {Model: "nss", Cipher: CipherAES128, Key: key},
		"bad hash":     {Model: "nss", Hash: 9, Key: key},
	} {
		if _, err := NewCrypto(cfg); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if c, err := NewCrypto(CryptoConfig{Model: "nss"}); err != nil || c.Enabled() || c.Overhead(10) != 0 {
		t.Errorf("none/none: %v", err)
	}
	for _, s := range []string{"aes256", "aes192", "aes128", "none"} {
		if c, err := ParseCipher(s); err != nil || c.String() != s {
			t.Errorf("ParseCipher(%q) = %v, %v", s, c, err)
		}
	}
	for _, s := range []string{"none", "md5", "sha1", "sha256", "sha384", "sha512"} {
		if h, err := ParseHash(s); err != nil || h.String() != s {
			t.Errorf("ParseHash(%q) = %v, %v", s, h, err)
		}
	}
	if _, err := ParseHash("sha3"); err == nil {
		t.Error("sha3 parsed")
	}
}

func TestSealOpenNoAllocs(t *testing.T) {
	c := aes256sha256(t, captureKey(t))
	plain := make([]byte, 1446)
	var salt [SaltSize]byte
	wire := make([]byte, 0, 2048)
	out := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(100, func() {
		wire = c.Seal(wire[:0], plain, &salt)
		var err error
		out, err = c.Open(out[:0], wire)
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per seal+open", allocs)
	}
}
