package knet

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"slices"

	"github.com/gototem/gototem/knet/internal/aescbc"
)

// Cipher is corosync's crypto_cipher for knet.
type Cipher uint8

const (
	CipherNone Cipher = iota
	CipherAES256
	CipherAES192
	CipherAES128
)

// Hash is corosync's crypto_hash for knet.
type Hash uint8

const (
	HashNone Hash = iota
	HashMD5
	HashSHA1
	HashSHA256
	HashSHA384
	HashSHA512
)

var cipherNames = [...]string{"none", "aes256", "aes192", "aes128"}
var hashNames = [...]string{"none", "md5", "sha1", "sha256", "sha384", "sha512"}

func (c Cipher) String() string {
	if int(c) < len(cipherNames) {
		return cipherNames[c]
	}
	return fmt.Sprintf("cipher(%d)", uint8(c))
}

func (h Hash) String() string {
	if int(h) < len(hashNames) {
		return hashNames[h]
	}
	return fmt.Sprintf("hash(%d)", uint8(h))
}

// ParseCipher reads a crypto_cipher value.
func ParseCipher(s string) (Cipher, error) {
	for i, n := range cipherNames {
		if n == s {
			return Cipher(i), nil
		}
	}
	return 0, fmt.Errorf("knet: unknown crypto_cipher %q", s)
}

// ParseHash reads a crypto_hash value.
func ParseHash(s string) (Hash, error) {
	for i, n := range hashNames {
		if n == s {
			return Hash(i), nil
		}
	}
	return 0, fmt.Errorf("knet: unknown crypto_hash %q", s)
}

// keyLen is the cipher key length: libknet's NSS model imports the first 32/24/16 bytes of
// the private key (OpenSSL's EVP takes the same prefix for AES-256/192/128-CBC).
func (c Cipher) keyLen() int {
	switch c {
	case CipherAES256:
		return 32
	case CipherAES192:
		return 24
	case CipherAES128:
		return 16
	}
	return 0
}

// Size is the MAC length appended to every packet.
func (h Hash) Size() int {
	switch h {
	case HashMD5:
		return md5.Size
	case HashSHA1:
		return sha1.Size
	case HashSHA256:
		return sha256.Size
	case HashSHA384:
		return sha512.Size384
	case HashSHA512:
		return sha512.Size
	}
	return 0
}

func (h Hash) newFunc() func() hash.Hash {
	switch h {
	case HashMD5:
		return md5.New
	case HashSHA1:
		return sha1.New
	case HashSHA256:
		return sha256.New
	case HashSHA384:
		return sha512.New384
	case HashSHA512:
		return sha512.New
	}
	return nil
}

const (
	// MinKeyLen and MaxKeyLen bound the private key (KNET_MIN_KEY_LEN, KNET_MAX_KEY_LEN;
	// corosync reads at most 4096 bytes of its authkey and refuses fewer than 128).
	MinKeyLen = 128
	MaxKeyLen = 4096
	// SaltSize is the random per-packet salt libknet puts first; it is the CBC IV.
	SaltSize = 16
)

// Errors of Open; each is a counted drop for a receiver, never a reason to stop.
var (
	ErrCryptoShort = errors.New("knet: packet too short for its crypto overhead")
	ErrDigest      = errors.New("knet: digest does not match (wrong key or tampered packet)")
	ErrCipherText  = errors.New("knet: ciphertext is not a whole number of blocks")
	ErrPadding     = errors.New("knet: bad CBC padding")
)

// CryptoConfig is one knet crypto configuration as corosync passes it to
// knet_handle_crypto_set_config: the model, cipher and hash names from corosync.conf and
// the authkey's bytes, unchanged (corosync does no derivation of its own).
type CryptoConfig struct {
	Model  string // "nss" (corosync's default) or "openssl": the same wire layout
	Cipher Cipher
	Hash   Hash
	Key    []byte
}

// Crypto seals and opens knet packets as libknet's nss and openssl crypto models do:
//
//	wire = salt(16) | AES-CBC(key[:keylen], iv=salt, PKCS#7-padded packet) | HMAC(key, salt|ciphertext)
//
// The whole knet packet, header included, is encrypted. The HMAC is keyed with the whole
// private key and covers everything before it; the receiver checks it before decrypting.
// With a hash but no cipher the packet goes in clear with the HMAC appended. libknet refuses
// a cipher without a hash, and so does NewCrypto.
//
// A Crypto keeps scratch state: it is not safe for concurrent use (one per goroutine; see
// Clone). Seal and Open allocate nothing when dst has room.
type Crypto struct {
	cfg   CryptoConfig
	block *aescbc.Cipher // the AES key, expanded once; read-only, shared with Sealers and Openers
	// enc and dec are aescbc's CBC modes, made once and re-aimed at each packet's salt with
	// SetIV, so that sealing allocates nothing. They replace crypto/cipher's CBC modes, the
	// largest cost of an encrypted knet flood (34% of the sender's and of each receiver's CPU
	// at 8 KiB with aes256: GOTOTEM_BENCH=1 GOTOTEM_BENCH_ENGINES=gototem
	// GOTOTEM_BENCH_CPUPROFILE=dir GOTOTEM_BENCH_TRANSPORT=knet GOTOTEM_BENCH_KNET_CRYPTO=1
	// go test ./internal/interop -run 'TestBenchCPGFlood$'): on amd64 (Go 1.26) those run
	// one AES-NI block call at a time
	// (crypto/internal/fips140/aes's generic CBC loop), so even decryption waits on each
	// block's rounds in turn. aescbc's amd64 assembly runs a whole packet in one call and
	// decrypts eight blocks at a time (its package doc has the measurements); on another
	// architecture, or a CPU without AES-NI, aescbc is crypto/aes with crypto/cipher's CBC.
	enc, dec *aescbc.Mode
	mac      hash.Hash
	sum      [sha512.Size]byte
}

// NewCrypto checks cfg as libknet's crypto_init does and prepares the keys. Both cipher and
// hash none is valid and means no crypto (Seal and Open copy).
func NewCrypto(cfg CryptoConfig) (*Crypto, error) {
	switch cfg.Model {
	case "nss", "openssl":
	default:
		return nil, fmt.Errorf("knet: crypto_model %q not supported (nss and openssl share the wire format gototem speaks)", cfg.Model)
	}
	if int(cfg.Cipher) >= len(cipherNames) || int(cfg.Hash) >= len(hashNames) {
		return nil, fmt.Errorf("knet: bad cipher %v or hash %v", cfg.Cipher, cfg.Hash)
	}
	if cfg.Cipher != CipherNone && cfg.Hash == HashNone {
		return nil, errors.New("knet: crypto communication requires a hash (crypto_cipher without crypto_hash)")
	}
	c := &Crypto{cfg: cfg}
	c.cfg.Key = append([]byte(nil), cfg.Key...)
	if !c.Enabled() {
		return c, nil
	}
	if len(cfg.Key) < MinKeyLen || len(cfg.Key) > MaxKeyLen {
		return nil, fmt.Errorf("knet: private key is %d bytes, want %d..%d", len(cfg.Key), MinKeyLen, MaxKeyLen)
	}
	if n := cfg.Cipher.keyLen(); n > 0 {
		b, err := aescbc.NewCipher(c.cfg.Key[:n])
		if err != nil {
			return nil, fmt.Errorf("knet: %w", err)
		}
		c.block = b
		var iv [aescbc.BlockSize]byte
		c.enc, c.dec = b.NewEncrypter(iv[:]), b.NewDecrypter(iv[:])
	}
	if f := cfg.Hash.newFunc(); f != nil {
		c.mac = hmac.New(f, c.cfg.Key)
	}
	return c, nil
}

// Clone is an independent Crypto with the same configuration, for another goroutine.
func (c *Crypto) Clone() *Crypto {
	d, err := NewCrypto(c.cfg)
	if err != nil { // c was built from the same config
		panic(err)
	}
	return d
}

// Config returns the configuration (the key is a copy owned by c: do not modify it).
func (c *Crypto) Config() CryptoConfig { return c.cfg }

// Enabled reports whether packets are transformed at all.
func (c *Crypto) Enabled() bool { return c.cfg.Cipher != CipherNone || c.cfg.Hash != HashNone }

// Overhead is the wire size minus the plaintext size of a packet of plain bytes.
func (c *Crypto) Overhead(plain int) int {
	n := c.cfg.Hash.Size()
	if c.block != nil {
		n += SaltSize + aescbc.BlockSize - plain%aescbc.BlockSize
	}
	return n
}

// MaxOverhead bounds Overhead for any size: what knet reserves per packet when it turns a
// link MTU into a data MTU (salt, a whole padding block, the MAC).
func (c *Crypto) MaxOverhead() int {
	n := c.cfg.Hash.Size()
	if c.block != nil {
		n += SaltSize + aescbc.BlockSize
	}
	return n
}

// Seal appends the wire form of the knet packet plain to dst. salt must be fresh random
// bytes for every packet (libknet draws them from the crypto library's RNG); it is unused
// without a cipher. plain and dst must not overlap.
func (c *Crypto) Seal(dst, plain []byte, salt *[SaltSize]byte) []byte {
	start := len(dst)
	if c.block == nil && c.mac == nil {
		return append(dst, plain...)
	}
	dst = grow(dst, c.sealedSize(len(plain)))
	w := dst[start:]
	off := 0
	if c.block != nil {
		off = copy(w, salt[:])
	}
	copy(w[off:], plain)
	c.sealInPlace(w, len(plain), c.enc, c.mac, &c.sum)
	return dst
}

// sealedSize is the wire size of a plain-byte packet (plain itself without crypto).
func (c *Crypto) sealedSize(plain int) int {
	n := plain
	if c.block != nil {
		n = SaltSize + plain&^(aescbc.BlockSize-1) + aescbc.BlockSize
	}
	return n + c.cfg.Hash.Size()
}

// plainOffset is where the plaintext goes in the wire form (after the salt with a cipher).
func (c *Crypto) plainOffset() int {
	if c.block != nil {
		return SaltSize
	}
	return 0
}

// sealInPlace turns w (sealedSize(n) bytes: the salt, then the n-byte plaintext, then room
// for the padding and the MAC) into the wire packet: PKCS#7 padding, AES-CBC with the salt
// as IV, the HMAC over salt and ciphertext. enc, mac and sum are the caller's scratch (c's
// own, or a Sealer's on another goroutine): c itself is only read. RunJobs does the same in
// three steps over several packets at once.
func (c *Crypto) sealInPlace(w []byte, n int, enc *aescbc.Mode, mac hash.Hash, sum *[sha512.Size]byte) {
	end := n
	if c.block != nil {
		var ct []byte
		ct, end = c.pad(w, n)
		enc.SetIV(w[:SaltSize])
		enc.CryptBlocks(ct, ct)
	}
	c.sign(w, end, mac, sum)
}

// pad writes the PKCS#7 padding after the n-byte plaintext of w (laid out as for
// sealInPlace, with a cipher) and returns the span to encrypt in place, with w[:SaltSize]
// as IV, and where the MAC goes.
func (c *Crypto) pad(w []byte, n int) (ct []byte, end int) {
	padded := n&^(aescbc.BlockSize-1) + aescbc.BlockSize
	ct = w[SaltSize : SaltSize+padded]
	// PKCS#7: n bytes of value n, 1..16 (a whole block when already aligned), as NSS's
	// CKM_AES_CBC_PAD and OpenSSL's default padding write.
	for i := n; i < padded; i++ {
		ct[i] = byte(padded - n)
	}
	return ct, SaltSize + padded
}

// sign appends the HMAC of w[:end] at w[end:] (nothing without a hash).
func (c *Crypto) sign(w []byte, end int, mac hash.Hash, sum *[sha512.Size]byte) {
	if mac != nil {
		mac.Reset()
		mac.Write(w[:end])
		copy(w[end:], mac.Sum(sum[:0]))
	}
}

// SealJob is one packet of a deferred send (Endpoint.SendMore): its wire buffer already
// holds the salt and the plaintext, in place; Run pads, encrypts and signs it there. Jobs
// are independent of each other, so a driver may run them on several goroutines, each with
// its own Sealer, and several at once (RunJobs): the salts and seq numbers were assigned in
// order when the jobs were made, so the packets are the same bytes whoever seals them.
type SealJob struct {
	c    *Crypto
	wire []byte
	n    int
}

// Len is the job's wire size (how much sealing work it is).
func (j *SealJob) Len() int { return len(j.wire) }

// Run seals the packet with s's scratch state.
func (j *SealJob) Run(s *Sealer) {
	s.bind(j.c)
	j.c.sealInPlace(j.wire, j.n, s.enc, s.mac, &s.sum)
}

// RunJobs seals jobs with s's scratch state, byte for byte as jobs[i].Run(s) one after the
// other would, but encrypts up to aescbc.MaxChains packets at once: each run of consecutive
// jobs under the same key (the same Crypto, with a cipher) is padded, then encrypted
// together with aescbc's EncryptMulti (each packet its own CBC chain from its own salt,
// interleaved on AES-NI: four full-MTU packets cost about what one does alone), then
// signed one by one. Jobs without a cipher, or alone under their key, run as Run does.
func RunJobs(jobs []SealJob, s *Sealer) {
	for len(jobs) > 0 {
		c := jobs[0].c
		k := 1
		if c.block != nil {
			for k < len(jobs) && k < aescbc.MaxChains && jobs[k].c == c {
				k++
			}
		}
		if k == 1 {
			jobs[0].Run(s)
			jobs = jobs[1:]
			continue
		}
		s.bind(c)
		var chains [aescbc.MaxChains]aescbc.Chain
		var ends [aescbc.MaxChains]int
		for i := range k {
			w := jobs[i].wire
			ct, end := c.pad(w, jobs[i].n)
			chains[i] = aescbc.Chain{IV: w[:SaltSize], Dst: ct, Src: ct}
			ends[i] = end
		}
		s.enc.EncryptMulti(chains[:k])
		for i := range k {
			c.sign(jobs[i].wire, ends[i], s.mac, &s.sum)
		}
		jobs = jobs[k:]
	}
}

// Sealer is one goroutine's scratch state for running SealJobs (a CBC mode and an HMAC for
// the key of the last job it ran). The zero value is ready; a Sealer is not safe for
// concurrent use, the Crypto it reads is (its AES key schedule is read-only).
type Sealer struct {
	c   *Crypto
	enc *aescbc.Mode
	mac hash.Hash
	sum [sha512.Size]byte
}

// Opener is one goroutine's scratch state for Endpoint.Open (a CBC mode and an HMAC per
// keyring index). The zero value is ready; not safe for concurrent use.
type Opener struct {
	slots [3]struct {
		c   *Crypto
		dec *aescbc.Mode
		mac hash.Hash
	}
	sum [sha512.Size]byte
}

// open is c.Open with o's scratch for keyring index i.
func (o *Opener) open(i int, c *Crypto, dst, wire []byte) ([]byte, error) {
	s := &o.slots[i]
	if s.c != c {
		s.c, s.dec, s.mac = c, nil, nil
		if c.block != nil {
			var iv [aescbc.BlockSize]byte
			s.dec = c.block.NewDecrypter(iv[:])
		}
		if f := c.cfg.Hash.newFunc(); f != nil {
			s.mac = hmac.New(f, c.cfg.Key)
		}
	}
	return c.openWith(dst, wire, s.dec, s.mac, &o.sum)
}

func (s *Sealer) bind(c *Crypto) {
	if s.c == c {
		return
	}
	s.c, s.enc, s.mac = c, nil, nil
	if c.block != nil {
		var iv [aescbc.BlockSize]byte
		s.enc = c.block.NewEncrypter(iv[:])
	}
	if f := c.cfg.Hash.newFunc(); f != nil {
		s.mac = hmac.New(f, c.cfg.Key)
	}
}

// Open checks and decrypts one wire packet, appending the knet packet to dst. Errors are
// ErrCryptoShort, ErrDigest, ErrCipherText, ErrPadding. wire and dst must not overlap.
func (c *Crypto) Open(dst, wire []byte) ([]byte, error) {
	return c.openWith(dst, wire, c.dec, c.mac, &c.sum)
}

// openWith is Open with the caller's scratch (c's own, or an Opener's on another
// goroutine): c itself is only read.
func (c *Crypto) openWith(dst, wire []byte, dec *aescbc.Mode, mac hash.Hash, sum *[sha512.Size]byte) ([]byte, error) {
	body := wire
	if mac != nil {
		hl := c.cfg.Hash.Size()
		if len(wire) <= hl || len(wire)-hl > MaxPacketSize {
			return dst, ErrCryptoShort
		}
		body = wire[:len(wire)-hl]
		mac.Reset()
		mac.Write(body)
		if !hmac.Equal(mac.Sum(sum[:0]), wire[len(body):]) {
			return dst, ErrDigest
		}
	}
	if c.block == nil {
		return append(dst, body...), nil
	}
	if len(body) < SaltSize+aescbc.BlockSize {
		return dst, ErrCryptoShort
	}
	ct := body[SaltSize:]
	if len(ct)%aescbc.BlockSize != 0 {
		return dst, ErrCipherText
	}
	start := len(dst)
	dst = grow(dst, len(ct))
	out := dst[start:]
	dec.SetIV(body[:SaltSize])
	dec.CryptBlocks(out, ct)
	n := int(out[len(out)-1])
	if n == 0 || n > aescbc.BlockSize {
		return dst[:start], ErrPadding
	}
	for _, b := range out[len(out)-n:] {
		if int(b) != n {
			return dst[:start], ErrPadding
		}
	}
	return dst[:len(dst)-n], nil
}

// grow extends b by n bytes, reallocating only when its capacity is short.
func grow(b []byte, n int) []byte {
	// slices.Grow at least doubles: a visit laid out packet by packet (SendMore) costs
	// amortized copies, not one of the whole buffer per packet.
	return slices.Grow(b, n)[:len(b)+n]
}
