package aescbc

import (
	"crypto/aes"
	"crypto/cipher"
	"unsafe"
)

// BlockSize is AES's block size, the unit of CryptBlocks and the length of an IV.
const BlockSize = aes.BlockSize

// useAsm says whether NewCipher builds ciphers on the assembly: the CPU has AES-NI on an
// amd64 build. Tests turn it off to run the crypto/cipher fallback on the same machine.
var useAsm = haveAsm

// Cipher is one AES key, expanded once. It is read-only after NewCipher: any number of
// goroutines may make and run modes on it, each its own.
type Cipher struct {
	rounds   int // 10, 12 or 14 on the assembly; 0 on the fallback
	enc, dec schedule
	block    cipher.Block // the fallback's cipher, nil on the assembly
}

// NewCipher expands an AES-128, AES-192 or AES-256 key (16, 24 or 32 bytes); another
// length is crypto/aes's KeySizeError.
func NewCipher(key []byte) (*Cipher, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, aes.KeySizeError(len(key))
	}
	c := &Cipher{}
	if !useAsm {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		c.block = b
		return c, nil
	}
	c.rounds = expandKey(key, &c.enc, &c.dec)
	return c, nil
}

// Mode is a CBC encrypter or decrypter on a Cipher: a cipher.BlockMode whose IV can be
// reset, as crypto/cipher's CBC modes are. Like theirs, its IV carries across CryptBlocks
// calls (it ends as the last ciphertext block), and it is not safe for concurrent use.
type Mode struct {
	c       *Cipher
	decrypt bool
	iv      [BlockSize]byte
	generic ivMode // the fallback's crypto/cipher mode, nil on the assembly
}

// ivMode is what crypto/cipher's CBC modes are beside a cipher.BlockMode.
type ivMode interface {
	cipher.BlockMode
	SetIV([]byte)
}

var _ ivMode = (*Mode)(nil)

// NewEncrypter is a CBC encrypter starting from iv (BlockSize bytes).
func (c *Cipher) NewEncrypter(iv []byte) *Mode { return c.newMode(iv, false) }

// NewDecrypter is a CBC decrypter starting from iv (BlockSize bytes).
func (c *Cipher) NewDecrypter(iv []byte) *Mode { return c.newMode(iv, true) }

func (c *Cipher) newMode(iv []byte, decrypt bool) *Mode {
	if len(iv) != BlockSize {
		panic("aescbc: IV length must equal block size")
	}
	m := &Mode{c: c, decrypt: decrypt}
	if c.block == nil {
		copy(m.iv[:], iv)
		return m
	}
	var g cipher.BlockMode
	if decrypt {
		g = cipher.NewCBCDecrypter(c.block, iv)
	} else {
		g = cipher.NewCBCEncrypter(c.block, iv)
	}
	// crypto/cipher's CBC modes have SetIV (crypto/tls resets their IV per record the same
	// way); the fallback tests would catch a Go without it.
	m.generic = g.(ivMode)
	return m
}

// BlockSize is BlockSize.
func (m *Mode) BlockSize() int { return BlockSize }

// SetIV restarts the chain from iv (BlockSize bytes).
func (m *Mode) SetIV(iv []byte) {
	if len(iv) != BlockSize {
		panic("aescbc: IV length must equal block size")
	}
	if m.generic != nil {
		m.generic.SetIV(iv)
		return
	}
	copy(m.iv[:], iv)
}

// CryptBlocks encrypts or decrypts src, a whole number of blocks, into dst, with the
// contract of cipher.BlockMode: dst is at least as long as src, and the two are the same
// memory or do not overlap at all. It panics otherwise, as crypto/cipher does.
func (m *Mode) CryptBlocks(dst, src []byte) {
	if len(src)%BlockSize != 0 {
		panic("aescbc: input not full blocks")
	}
	if len(dst) < len(src) {
		panic("aescbc: output smaller than input")
	}
	if inexactOverlap(dst[:len(src)], src) {
		panic("aescbc: invalid buffer overlap")
	}
	if m.generic != nil {
		m.generic.CryptBlocks(dst, src)
		return
	}
	if len(src) == 0 {
		return
	}
	if m.decrypt {
		cbcDecrypt(m.c.rounds, &m.c.dec, &m.iv, &dst[0], &src[0], len(src))
	} else {
		cbcEncrypt(m.c.rounds, &m.c.enc, &m.iv, &dst[0], &src[0], len(src))
	}
}

// inexactOverlap reports whether x and y share memory without starting at the same
// address (both non-empty).
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	px, py := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	return px != py && px < py+uintptr(len(y)) && py < px+uintptr(len(x))
}
