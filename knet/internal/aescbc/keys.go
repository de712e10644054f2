package aescbc

import (
	"encoding/binary"
	"sync"
)

// The key schedule of FIPS-197 section 5.2, laid out for the assembly: round key r is the
// 16 bytes at r*16, in the byte order of the cipher's state (column by column), which is the
// order AESENC and AESDEC take their round key in.

// maxRounds is AES-256's: a schedule holds maxRounds+1 round keys.
const maxRounds = 14

// schedule is one direction's round keys; the unused tail of a shorter key stays zero.
type schedule [(maxRounds + 1) * BlockSize]byte

// sbox is the AES S-box (FIPS-197 section 5.1.1), generated from its definition on first
// use (only a key expansion needs it): the multiplicative inverse in GF(2^8), 0 mapping to
// 0, then the affine transformation.
var sbox = sync.OnceValue(func() *[256]byte {
	var s [256]byte
	for x := range 256 {
		b := gfInverse(byte(x))
		s[x] = b ^ rotl8(b, 1) ^ rotl8(b, 2) ^ rotl8(b, 3) ^ rotl8(b, 4) ^ 0x63
	}
	return &s
})

func rotl8(b byte, n uint) byte { return b<<n | b>>(8-n) }

// gfMul multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (FIPS-197 section 4.2).
func gfMul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		a = xtime(a)
		b >>= 1
	}
	return p
}

// xtime multiplies by x (FIPS-197 section 4.2.1).
func xtime(a byte) byte {
	if a&0x80 != 0 {
		return a<<1 ^ 0x1b
	}
	return a << 1
}

// gfInverse is a^254, the inverse of a nonzero a (its multiplicative group has order 255),
// and 0 for 0: square and multiply over the bits of 254 = 0b11111110.
func gfInverse(a byte) byte {
	r := byte(1)
	for bit := 7; bit >= 0; bit-- {
		r = gfMul(r, r)
		if 254>>bit&1 != 0 {
			r = gfMul(r, a)
		}
	}
	return r
}

func subWord(s *[256]byte, w uint32) uint32 {
	return uint32(s[w>>24])<<24 | uint32(s[w>>16&0xff])<<16 | uint32(s[w>>8&0xff])<<8 | uint32(s[w&0xff])
}

// expandKey fills enc with the cipher's round keys and dec with those of the equivalent
// inverse cipher (FIPS-197 section 5.3.5), the form AESDEC wants: enc's keys in reverse order,
// InvMixColumns applied to all but the first and the last. key is 16, 24 or 32 bytes; it
// returns the number of rounds, 10, 12 or 14.
func expandKey(key []byte, enc, dec *schedule) int {
	nk := len(key) / 4
	rounds := nk + 6
	var w [4 * (maxRounds + 1)]uint32
	for i := range nk {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	s := sbox()
	rcon := uint32(1)
	for i := nk; i < 4*(rounds+1); i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = subWord(s, t<<8|t>>24) ^ rcon<<24
			rcon = uint32(xtime(byte(rcon)))
		case nk > 6 && i%nk == 4:
			t = subWord(s, t)
		}
		w[i] = w[i-nk] ^ t
	}
	*enc, *dec = schedule{}, schedule{}
	for i := range 4 * (rounds + 1) {
		binary.BigEndian.PutUint32(enc[4*i:], w[i])
	}
	for r := 0; r <= rounds; r++ {
		k := enc[(rounds-r)*BlockSize:][:BlockSize]
		d := dec[r*BlockSize:][:BlockSize]
		copy(d, k)
		if r != 0 && r != rounds {
			for c := 0; c < BlockSize; c += 4 {
				invMixColumn(d[c : c+4])
			}
		}
	}
	return rounds
}

// invMixColumn is InvMixColumns (FIPS-197 section 5.3.3) on one column.
func invMixColumn(a []byte) {
	a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
	a[0] = gfMul(a0, 14) ^ gfMul(a1, 11) ^ gfMul(a2, 13) ^ gfMul(a3, 9)
	a[1] = gfMul(a0, 9) ^ gfMul(a1, 14) ^ gfMul(a2, 11) ^ gfMul(a3, 13)
	a[2] = gfMul(a0, 13) ^ gfMul(a1, 9) ^ gfMul(a2, 14) ^ gfMul(a3, 11)
	a[3] = gfMul(a0, 11) ^ gfMul(a1, 13) ^ gfMul(a2, 9) ^ gfMul(a3, 14)
}
