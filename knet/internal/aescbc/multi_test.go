package aescbc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestEncryptMulti: EncryptMulti on 1..4 chains of random keys (every size), IVs and
// lengths (0..40 blocks each, often unequal, sometimes all alike so that the four-way loop
// runs long), each in place or into another buffer at a random alignment (dst longer than
// src, its tail untouched), the IV sometimes the salt just before its src as knet lays a
// packet out, against crypto/cipher's CBC and against this package's single chain
// (SetIV then CryptBlocks) on the same path; then the mode's IV carries on as after the
// last chain. A swapped lane, a lane dropped from the common prefix or a wrong tail fails
// it.
func TestEncryptMulti(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 0x4c4a1e5))
	paths(t, func(t *testing.T) {
		for _, keyLen := range []int{16, 24, 32} {
			for iter := range 300 {
				key := randBytes(rng, keyLen)
				ref, err := aes.NewCipher(key)
				if err != nil {
					t.Fatal(err)
				}
				c := mustCipher(t, key)
				k := 1 + iter%MaxChains
				same := rng.IntN(3) == 0
				sameLen := rng.IntN(41)
				var chains [MaxChains]Chain
				var pts, wants, tails [MaxChains][]byte
				var dsts [MaxChains][]byte // the whole buffer each Dst lies in
				var desc string
				for i := range k {
					blocks := rng.IntN(41)
					if same {
						blocks = sameLen
					}
					n := blocks * BlockSize
					pt := randBytes(rng, n)
					// the IV right before the plaintext in one buffer (knet's salt), or apart
					buf := randBytes(rng, BlockSize+n+BlockSize)
					copy(buf[BlockSize:], pt)
					iv := buf[:BlockSize]
					if rng.IntN(2) == 0 {
						iv = randBytes(rng, BlockSize)
					}
					want := make([]byte, n)
					cipher.NewCBCEncrypter(ref, iv).CryptBlocks(want, pt)
					ch := Chain{IV: iv, Src: buf[BlockSize : BlockSize+n]}
					inPlace := rng.IntN(2) == 0
					if inPlace {
						ch.Dst = ch.Src
						dsts[i] = buf[BlockSize:]
					} else {
						off := rng.IntN(BlockSize)
						d := randBytes(rng, off+n+BlockSize)
						ch.Dst = d[off:]
						dsts[i] = d[off:]
					}
					tails[i] = append([]byte(nil), dsts[i][n:]...)
					chains[i], pts[i], wants[i] = ch, pt, want
					desc += fmt.Sprintf(" %d blocks (in place %v)", blocks, inPlace)
				}
				name := fmt.Sprintf("aes%d iter %d:%s", keyLen*8, iter, desc)
				// the single chain on the same path, on copies
				var singles [MaxChains][]byte
				for i := range k {
					singles[i] = append([]byte(nil), pts[i]...)
					m := c.NewEncrypter(chains[i].IV)
					m.CryptBlocks(singles[i], singles[i])
				}
				m := c.NewEncrypter(make([]byte, BlockSize))
				m.EncryptMulti(chains[:k])
				for i := range k {
					n := len(pts[i])
					got := dsts[i][:n]
					check(t, fmt.Sprintf("%s: chain %d against crypto/cipher", name, i), got, wants[i])
					check(t, fmt.Sprintf("%s: chain %d against CryptBlocks", name, i), got, singles[i])
					if !bytes.Equal(dsts[i][n:], tails[i]) {
						t.Errorf("%s: chain %d wrote past len(src)", name, i)
					}
					if n > 0 && &chains[i].Dst[0] != &chains[i].Src[0] && !bytes.Equal(chains[i].Src, pts[i]) {
						t.Errorf("%s: chain %d changed src", name, i)
					}
				}
				// the mode's IV: one more block continues the last chain
				last := k - 1
				more := randBytes(rng, BlockSize)
				next := chains[last].IV
				if n := len(pts[last]); n > 0 {
					next = wants[last][n-BlockSize:]
				}
				want := make([]byte, BlockSize)
				cipher.NewCBCEncrypter(ref, next).CryptBlocks(want, more)
				m.CryptBlocks(more, more)
				check(t, name+": the block after", more, want)
			}
		}
	})
}

// TestEncryptMultiMisuse: the panics of EncryptMulti's contract, and no chains at all.
func TestEncryptMultiMisuse(t *testing.T) {
	paths(t, func(t *testing.T) {
		c := mustCipher(t, make([]byte, 16))
		buf := make([]byte, 256)
		iv := make([]byte, BlockSize)
		enc, dec := c.NewEncrypter(iv), c.NewDecrypter(iv)
		ok := Chain{IV: iv, Dst: buf[:32], Src: buf[:32]}
		for name, f := range map[string]func(){
			"decrypter":       func() { dec.EncryptMulti([]Chain{ok}) },
			"five chains":     func() { enc.EncryptMulti(make([]Chain, 5)) },
			"short IV":        func() { enc.EncryptMulti([]Chain{{IV: iv[:15]}}) },
			"partial block":   func() { enc.EncryptMulti([]Chain{{IV: iv, Dst: buf, Src: buf[:17]}}) },
			"short dst":       func() { enc.EncryptMulti([]Chain{{IV: iv, Dst: buf[:16], Src: buf[:32]}}) },
			"inexact overlap": func() { enc.EncryptMulti([]Chain{{IV: iv, Dst: buf[16:48], Src: buf[:32]}}) },
			"same chain twice": func() {
				enc.EncryptMulti([]Chain{ok, ok})
			},
			"dst over another's src": func() {
				enc.EncryptMulti([]Chain{ok, {IV: iv, Dst: buf[64:96], Src: buf[16:48]}})
			},
			"dst over another's dst": func() {
				enc.EncryptMulti([]Chain{{IV: iv, Dst: buf[128:160], Src: buf[64:96]}, {IV: iv, Dst: buf[144:176], Src: buf[:32]}})
			},
		} {
			if !panics(f) {
				t.Errorf("%s did not panic", name)
			}
		}
		enc.EncryptMulti(nil)
		// empty chains may share anything; an IV may be another chain's bytes
		enc.EncryptMulti([]Chain{{IV: iv}, {IV: buf[:16], Dst: buf[:0], Src: buf[:0]}, {IV: buf[:16], Dst: buf[32:64], Src: buf[32:64]}})
	})
}

// TestEncryptMultiNoAllocs: EncryptMulti on four chains allocates nothing.
func TestEncryptMultiNoAllocs(t *testing.T) {
	paths(t, func(t *testing.T) {
		c := mustCipher(t, make([]byte, 32))
		m := c.NewEncrypter(make([]byte, BlockSize))
		buf := make([]byte, 4*1424)
		if a := testing.AllocsPerRun(100, func() {
			var chains [MaxChains]Chain
			for i := range chains {
				w := buf[i*1424 : (i+1)*1424]
				chains[i] = Chain{IV: w[:BlockSize], Dst: w[BlockSize : BlockSize+(i+1)*256], Src: w[BlockSize : BlockSize+(i+1)*256]}
			}
			m.EncryptMulti(chains[:])
		}); a != 0 {
			t.Errorf("%.0f allocations per run", a)
		}
	})
}

// BenchmarkEncryptMulti: four knet packets' worth (4 x 1408 bytes, AES-256, in place),
// EncryptMulti against the same four chains one after the other with SetIV and
// CryptBlocks, on the assembly and on crypto/cipher ("stdlib", which EncryptMulti's
// fallback runs).
func BenchmarkEncryptMulti(b *testing.B) {
	const size = 1408
	key := make([]byte, 32)
	buf := make([]byte, MaxChains*(BlockSize+size))
	var chains [MaxChains]Chain
	for i := range chains {
		w := buf[i*(BlockSize+size) : (i+1)*(BlockSize+size)]
		chains[i] = Chain{IV: w[:BlockSize], Dst: w[BlockSize:], Src: w[BlockSize:]}
	}
	mode := func(b *testing.B, asm bool) *Mode {
		if asm && !haveAsm {
			b.Skip("no AES-NI assembly in this build or on this CPU")
		}
		defer func(v bool) { useAsm = v }(useAsm)
		useAsm = asm
		c, err := NewCipher(key)
		if err != nil {
			b.Fatal(err)
		}
		return c.NewEncrypter(make([]byte, BlockSize))
	}
	for _, asm := range []bool{true, false} {
		path := "asm"
		if !asm {
			path = "stdlib"
		}
		b.Run(fmt.Sprintf("4x%d/multi/%s", size, path), func(b *testing.B) {
			m := mode(b, asm)
			b.SetBytes(MaxChains * size)
			b.ReportAllocs()
			for b.Loop() {
				m.EncryptMulti(chains[:])
			}
		})
		b.Run(fmt.Sprintf("4x%d/serial/%s", size, path), func(b *testing.B) {
			m := mode(b, asm)
			b.SetBytes(MaxChains * size)
			b.ReportAllocs()
			for b.Loop() {
				for i := range chains {
					m.SetIV(chains[i].IV)
					m.CryptBlocks(chains[i].Dst, chains[i].Src)
				}
			}
		})
	}
}
