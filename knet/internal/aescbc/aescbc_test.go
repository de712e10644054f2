package aescbc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"math/rand/v2"
	"strings"
	"testing"
)

// paths runs f once on the assembly (when this machine and build have it) and once on the
// crypto/cipher fallback, forced with useAsm.
func paths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, asm := range []bool{true, false} {
		name := "asm"
		if !asm {
			name = "fallback"
		}
		t.Run(name, func(t *testing.T) {
			if asm && !haveAsm {
				t.Skip("no AES-NI assembly in this build or on this CPU")
			}
			defer func(v bool) { useAsm = v }(useAsm)
			useAsm = asm
			f(t)
		})
	}
}

func mustCipher(t testing.TB, key []byte) *Cipher {
	t.Helper()
	c, err := NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	if (c.block == nil) != useAsm {
		t.Fatalf("useAsm %v but the cipher's fallback block is %v", useAsm, c.block)
	}
	return c
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// The CBC examples of NIST SP 800-38A, appendix F.2: F.2.1/F.2.2 (AES-128), F.2.3/F.2.4
// (AES-192), F.2.5/F.2.6 (AES-256). Each decrypt example is its encrypt example reversed.
var sp80038a = []struct {
	name            string
	key, iv, pt, ct string
}{
	{
		name: "F.2.1 CBC-AES128",
		key:  "2b7e151628aed2a6abf7158809cf4f3c",
		iv:   "000102030405060708090a0b0c0d0e0f",
		pt:   "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
		ct:   "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2 73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
	},
	{
		name: "F.2.3 CBC-AES192",
		key:  "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
		iv:   "000102030405060708090a0b0c0d0e0f",
		pt:   "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
		ct:   "4f021db243bc633d7178183a9fa071e8 b4d9ada9ad7dedf4e5e738763f69145a 571b242012fb7ae07fa9baac3df102e0 08b0e27988598881d920a9e64f5615cd",
	},
	{
		name: "F.2.5 CBC-AES256",
		key:  "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
		iv:   "000102030405060708090a0b0c0d0e0f",
		pt:   "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
		ct:   "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d 39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b",
	},
	// FIPS-197 appendix C: one block under a zero IV is the cipher itself.
	{
		name: "FIPS-197 C.1 AES-128",
		key:  "000102030405060708090a0b0c0d0e0f",
		iv:   "00000000000000000000000000000000",
		pt:   "00112233445566778899aabbccddeeff",
		ct:   "69c4e0d86a7b0430d8cdb78070b4c55a",
	},
	{
		name: "FIPS-197 C.2 AES-192",
		key:  "000102030405060708090a0b0c0d0e0f1011121314151617",
		iv:   "00000000000000000000000000000000",
		pt:   "00112233445566778899aabbccddeeff",
		ct:   "dda97ca4864cdfe06eaf70a0ec0d7191",
	},
	{
		name: "FIPS-197 C.3 AES-256",
		key:  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		iv:   "00000000000000000000000000000000",
		pt:   "00112233445566778899aabbccddeeff",
		ct:   "8ea2b7ca516745bfeafc49904b496089",
	},
}

// TestKnownAnswers: the standards' examples, encrypting and decrypting, into another
// buffer and in place, on both paths.
func TestKnownAnswers(t *testing.T) {
	paths(t, func(t *testing.T) {
		for _, v := range sp80038a {
			key, iv, pt, ct := unhex(v.key), unhex(v.iv), unhex(v.pt), unhex(v.ct)
			c := mustCipher(t, key)
			for _, step := range []struct {
				what     string
				mode     func([]byte) *Mode
				in, want []byte
			}{{"encrypt", c.NewEncrypter, pt, ct}, {"decrypt", c.NewDecrypter, ct, pt}} {
				got := make([]byte, len(step.in))
				step.mode(iv).CryptBlocks(got, step.in)
				if !bytes.Equal(got, step.want) {
					t.Errorf("%s %s:\n got %x\nwant %x", v.name, step.what, got, step.want)
				}
				copy(got, step.in)
				step.mode(iv).CryptBlocks(got, got)
				if !bytes.Equal(got, step.want) {
					t.Errorf("%s %s in place:\n got %x\nwant %x", v.name, step.what, got, step.want)
				}
			}
		}
	})
}

// TestKeySchedule: FIPS-197's expansion examples (appendix A.1's round key 10, which
// appendix B also prints; its S-box examples), and the decryption schedule's ends.
func TestKeySchedule(t *testing.T) {
	s := sbox()
	for _, c := range []struct{ in, out byte }{{0x00, 0x63}, {0x01, 0x7c}, {0x53, 0xed}, {0xff, 0x16}} {
		if s[c.in] != c.out {
			t.Errorf("S-box(%#02x) = %#02x, want %#02x", c.in, s[c.in], c.out)
		}
	}
	var seen [256]bool
	for _, b := range s {
		seen[b] = true
	}
	for i, ok := range seen {
		if !ok {
			t.Errorf("S-box is not a permutation: %#02x is no output", i)
		}
	}
	var enc, dec schedule
	if r := expandKey(unhex("2b7e151628aed2a6abf7158809cf4f3c"), &enc, &dec); r != 10 {
		t.Fatalf("AES-128 rounds = %d", r)
	}
	if got, want := enc[160:176], unhex("d014f9a8c9ee2589e13f0cc8b6630ca6"); !bytes.Equal(got, want) {
		t.Errorf("round key 10 = %x, want %x", got, want)
	}
	if !bytes.Equal(dec[:16], enc[160:176]) || !bytes.Equal(dec[160:176], enc[:16]) {
		t.Error("the decryption schedule does not start with the last round key and end with the first")
	}
	if !bytes.Equal(enc[176:], make([]byte, len(enc)-176)) {
		t.Error("AES-128's schedule wrote past round key 10")
	}
	for n, rounds := range map[int]int{24: 12, 32: 14} {
		if r := expandKey(make([]byte, n), &enc, &dec); r != rounds {
			t.Errorf("%d-byte key: %d rounds, want %d", n, r, rounds)
		}
	}
}

// seed is AESCBC_SEED (a number, or "random" for the clock's), 1 by default; printed.
func seed(t *testing.T) uint64 { return testenv.Seed(t, "AESCBC_SEED", 1) }

// blockCounts is every length from 0 to 40 blocks (each of the assembly's 8-, 4- and
// 1-block paths and their mixes), knet's full packets (1408 bytes), 8 KiB+16 and more.
func blockCounts() []int {
	var n []int
	for i := 0; i <= 40; i++ {
		n = append(n, i)
	}
	return append(n, 88, 89, 95, 512, 513, 4099)
}

// TestAgainstCryptoCipher: random keys, IVs and messages of every key size against
// crypto/aes with crypto/cipher's CBC: into another buffer (at any alignment, dst longer
// than src with its tail untouched) and in place, in one call and split over several (the
// IV carries over), after SetIV, and the mode's IV at the end (what a next call chains from).
func TestAgainstCryptoCipher(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 0xae5cbc))
	paths(t, func(t *testing.T) {
		for _, keyLen := range []int{16, 24, 32} {
			for _, blocks := range blockCounts() {
				name := fmt.Sprintf("aes%d/%d blocks", keyLen*8, blocks)
				key := randBytes(rng, keyLen)
				iv := randBytes(rng, BlockSize)
				pt := randBytes(rng, blocks*BlockSize)
				ref, err := aes.NewCipher(key)
				if err != nil {
					t.Fatal(err)
				}
				ct := make([]byte, len(pt))
				cipher.NewCBCEncrypter(ref, iv).CryptBlocks(ct, pt)
				c := mustCipher(t, key)

				for _, dir := range []struct {
					name     string
					mode     func(iv []byte) *Mode
					ref      func(iv []byte) cipher.BlockMode
					src, out []byte
				}{
					{"encrypt", c.NewEncrypter, func(iv []byte) cipher.BlockMode { return cipher.NewCBCEncrypter(ref, iv) }, pt, ct},
					{"decrypt", c.NewDecrypter, func(iv []byte) cipher.BlockMode { return cipher.NewCBCDecrypter(ref, iv) }, ct, pt},
				} {
					name := name + " " + dir.name
					// Into another buffer, both at random alignments, dst longer than src.
					off := rng.IntN(BlockSize)
					buf := randBytes(rng, off+len(dir.src)+BlockSize)
					tail := append([]byte(nil), buf[off+len(dir.src):]...)
					pad := rng.IntN(BlockSize)
					src := append(make([]byte, pad), dir.src...)[pad:]
					m := dir.mode(iv)
					m.CryptBlocks(buf[off:], src)
					check(t, name+" into another buffer", buf[off:off+len(dir.src)], dir.out)
					if !bytes.Equal(buf[off+len(dir.src):], tail) {
						t.Errorf("%s: wrote past len(src)", name)
					}
					if !bytes.Equal(src, dir.src) {
						t.Errorf("%s: changed src", name)
					}
					// The IV carried over: one more random block continues the chain.
					more := randBytes(rng, BlockSize)
					r := dir.ref(iv)
					want := make([]byte, len(dir.src)+BlockSize)
					r.CryptBlocks(want, append(append([]byte(nil), dir.src...), more...))
					got := make([]byte, BlockSize)
					m.CryptBlocks(got, more)
					check(t, name+" next call", got, want[len(dir.src):])

					// In place, split into up to three calls at random block boundaries.
					inPlace := append([]byte(nil), dir.src...)
					m.SetIV(iv)
					cuts := []int{rng.IntN(blocks+1) * BlockSize, rng.IntN(blocks+1) * BlockSize}
					if cuts[0] > cuts[1] {
						cuts[0], cuts[1] = cuts[1], cuts[0]
					}
					m.CryptBlocks(inPlace[:cuts[0]], inPlace[:cuts[0]])
					m.CryptBlocks(inPlace[cuts[0]:cuts[1]], inPlace[cuts[0]:cuts[1]])
					m.CryptBlocks(inPlace[cuts[1]:], inPlace[cuts[1]:])
					check(t, fmt.Sprintf("%s in place in calls cut at %v", name, cuts), inPlace, dir.out)
				}
			}
		}
	})
}

func check(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: first difference in block %d of %d", what, i/BlockSize, len(want)/BlockSize)
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestMisuse: the panics of cipher.BlockMode's contract, and NewCipher's key sizes.
func TestMisuse(t *testing.T) {
	paths(t, func(t *testing.T) {
		c := mustCipher(t, make([]byte, 32))
		buf := make([]byte, 64)
		for _, m := range []*Mode{c.NewEncrypter(buf[:16]), c.NewDecrypter(buf[:16])} {
			for name, f := range map[string]func(){
				"partial block":   func() { m.CryptBlocks(buf, buf[:17]) },
				"short dst":       func() { m.CryptBlocks(buf[:16], buf[:32]) },
				"inexact overlap": func() { m.CryptBlocks(buf[16:48], buf[:32]) },
				"short IV":        func() { m.SetIV(buf[:15]) },
			} {
				if !panics(f) {
					t.Errorf("%s did not panic", name)
				}
			}
			m.CryptBlocks(nil, nil)
			m.CryptBlocks(buf[:0], buf[16:16])
		}
		if !panics(func() { c.NewEncrypter(buf[:17]) }) {
			t.Error("NewEncrypter took a 17-byte IV")
		}
		for _, n := range []int{0, 15, 17, 31, 33} {
			if _, err := NewCipher(make([]byte, n)); err == nil {
				t.Errorf("NewCipher took a %d-byte key", n)
			}
		}
	})
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

// TestNoAllocs: CryptBlocks and SetIV allocate nothing.
func TestNoAllocs(t *testing.T) {
	paths(t, func(t *testing.T) {
		c := mustCipher(t, make([]byte, 32))
		iv := make([]byte, BlockSize)
		enc, dec := c.NewEncrypter(iv), c.NewDecrypter(iv)
		buf := make([]byte, 1408)
		if a := testing.AllocsPerRun(100, func() {
			enc.SetIV(iv)
			enc.CryptBlocks(buf, buf)
			dec.SetIV(iv)
			dec.CryptBlocks(buf, buf)
		}); a != 0 {
			t.Errorf("%.0f allocations per run", a)
		}
	})
}

// BenchmarkEncrypt and BenchmarkDecrypt: AES-256-CBC in place on a knet packet's size
// (1408 bytes) and 8 KiB, this package's assembly against crypto/cipher's CBC ("stdlib").
func BenchmarkEncrypt(b *testing.B) { benchCBC(b, false) }
func BenchmarkDecrypt(b *testing.B) { benchCBC(b, true) }

func benchCBC(b *testing.B, decrypt bool) {
	key, iv := make([]byte, 32), make([]byte, BlockSize)
	for _, size := range []int{1408, 8 << 10} {
		b.Run(fmt.Sprintf("%d/asm", size), func(b *testing.B) {
			if !haveAsm {
				b.Skip("no AES-NI assembly in this build or on this CPU")
			}
			c, err := NewCipher(key)
			if err != nil {
				b.Fatal(err)
			}
			m := c.NewEncrypter(iv)
			if decrypt {
				m = c.NewDecrypter(iv)
			}
			run(b, m, size)
		})
		b.Run(fmt.Sprintf("%d/stdlib", size), func(b *testing.B) {
			ref, err := aes.NewCipher(key)
			if err != nil {
				b.Fatal(err)
			}
			m := cipher.NewCBCEncrypter(ref, iv)
			if decrypt {
				m = cipher.NewCBCDecrypter(ref, iv)
			}
			run(b, m, size)
		})
	}
}

func run(b *testing.B, m cipher.BlockMode, size int) {
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		m.CryptBlocks(buf, buf)
	}
}
