package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"golang.org/x/crypto/chacha20poly1305"
	"sync"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/srp"
)

// Encrypted datagram format (version 1). corosync 3.1 has no crypto for udp/udpu, so this
// format is gototem's own; it is only spoken between gototem nodes sharing an authkey.
//
//	off  size  field
//	0    1     version (1). Never 0x70 or 0xC0, so a cleartext totem datagram (whose first
//	           byte is half of the 0xC070 magic) can never be mistaken for a sealed one.
//	1    1     cipher id (1 AES-256-GCM, 2 AES-192-GCM, 3 AES-128-GCM)
//	2    4     sender nodeid, big-endian
//	6    8     sender epoch, big-endian: grows with every start of the sender (see below)
//	14   8     counter, big-endian: 1, 2, 3… per sealed datagram of this epoch
//	22   n+16  AEAD(ciphertext of the totem datagram || tag); bytes 0..21 are the AAD
//
// Keys. The authkey is never used raw: PRK = HKDF-Extract(SHA-256, authkey, salt) once, then
// each sender's epoch gets its own key, HKDF-Expand(PRK, "gototem totem v1" || cipher ||
// link || nodeid || epoch). The GCM nonce is 4 zero bytes || counter. A (key, nonce) pair is
// therefore unique as long as a node never reuses an epoch on one link, which is the one
// promise CryptoConfig.Epoch asks of the integrator.
//
// Replay. A receiver keeps, per sender nodeid, the newest epoch it has authenticated and a
// sliding window of the counters seen in it. A datagram is accepted once: counters older
// than the window, already-seen counters and epochs older than the current one are
// rejected and counted. A restarted sender comes back with a larger epoch; its first
// datagram that authenticates under the new epoch's key replaces the old state, so the
// restart is accepted without any handshake, and the old epoch's datagrams can never be
// replayed afterwards. Replay checks happen before decryption only as a cheap pre-filter;
// the window is updated only after the tag verified, so forged datagrams cannot move it.

const (
	cryptoVersion    = 1
	cryptoHeaderSize = 22
	cryptoTagSize    = 16
	// CryptoOverhead is what encryption adds to every datagram.
	CryptoOverhead = cryptoHeaderSize + cryptoTagSize

	// Authkey size bounds, as corosync-keygen and libknet accept them.
	MinKeyLen     = config.MinKeyLen // one definition: config.ReadKeyFile enforces them
	MaxKeyLen     = config.MaxKeyLen
	DefaultKeyLen = 256

	replayWindowWords = 16
	// replayWindowBits is how far behind the newest counter a datagram may arrive: one word
	// less than the ring holds, so the word being reused never still holds live bits.
	replayWindowBits = (replayWindowWords - 1) * 64
	// maxPeers bounds the per-sender state a receiver keeps. Only key holders can create
	// entries (state is added after authentication), so the bound only guards memory.
	maxPeers = 4 * srp.ProcessorCountMax

	hkdfSalt = "gototem authkey v1"
)

// Cipher is the AEAD a sealed datagram uses.
type Cipher uint8

const (
	CipherNone Cipher = iota
	AES256GCM
	AES192GCM
	AES128GCM
	// ChaCha20Poly1305 is the option for CPUs without AES instructions (crypto_cipher:
	// chacha20, a gototem extension).
	ChaCha20Poly1305
)

func (c Cipher) String() string {
	switch c {
	case CipherNone:
		return "none"
	case AES256GCM:
		return "aes256-gcm"
	case AES192GCM:
		return "aes192-gcm"
	case AES128GCM:
		return "aes128-gcm"
	case ChaCha20Poly1305:
		return "chacha20-poly1305"
	}
	return fmt.Sprintf("Cipher(%d)", uint8(c))
}

func (c Cipher) keyLen() int {
	switch c {
	case AES256GCM:
		return 32
	case AES192GCM:
		return 24
	case AES128GCM:
		return 16
	case ChaCha20Poly1305:
		return chacha20poly1305.KeySize
	}
	return 0
}

// ParseCipher maps corosync's totem crypto keys to a Cipher. secauth "on" means aes256 with
// sha256 unless crypto_cipher/crypto_hash are set; an AEAD authenticates by itself, so any
// crypto_hash other than none is accepted and the AEAD's tag replaces the HMAC.
// crypto_cipher none with a hash (authentication only, a knet mode) is not offered.
func ParseCipher(secauth, cryptoCipher, cryptoHash string) (Cipher, error) {
	if cryptoCipher == "" && cryptoHash == "" && secauth == "on" {
		cryptoCipher, cryptoHash = "aes256", "sha256"
	}
	if cryptoCipher == "" {
		cryptoCipher = "none"
	}
	if cryptoHash == "" {
		cryptoHash = "none"
	}
	switch cryptoHash {
	case "none", "md5", "sha1", "sha256", "sha384", "sha512":
	default:
		return CipherNone, fmt.Errorf("transport: crypto_hash %q: invalid hash type. Should be none, md5, sha1, sha256, sha384 or sha512", cryptoHash)
	}
	var c Cipher
	switch cryptoCipher {
	case "none":
		if cryptoHash != "none" {
			return CipherNone, fmt.Errorf("transport: crypto_hash %s without crypto_cipher (authentication only) is not supported; set crypto_cipher too", cryptoHash)
		}
		return CipherNone, nil
	case "aes256":
		c = AES256GCM
	case "aes192":
		c = AES192GCM
	case "aes128":
		c = AES128GCM
	case "chacha20":
		c = ChaCha20Poly1305
	default:
		return CipherNone, fmt.Errorf("transport: crypto_cipher %q: invalid cipher type. Should be none, aes256, aes192, aes128 or chacha20", cryptoCipher)
	}
	if cryptoHash == "none" {
		return CipherNone, errors.New("transport: crypto_cipher requires crypto_hash with value other than none")
	}
	return c, nil
}

// CryptoConfig turns encryption on for a Link.
type CryptoConfig struct {
	// Key is the authkey file's content (MinKeyLen..MaxKeyLen bytes); see ReadAuthKey.
	Key    []byte
	Cipher Cipher
	// Epoch must be larger on every start of this node than on any earlier one (nonces
	// repeat otherwise, and peers reject a smaller epoch as a replay). The integrator passes
	// the wall clock at start in nanoseconds, or a persisted boot counter.
	Epoch uint64
}

func (c *CryptoConfig) validate() error {
	if c.Cipher.keyLen() == 0 {
		return fmt.Errorf("transport: crypto: cipher %s cannot encrypt", c.Cipher)
	}
	if len(c.Key) < MinKeyLen || len(c.Key) > MaxKeyLen {
		return fmt.Errorf("transport: crypto: authkey is %d bytes, want %d..%d", len(c.Key), MinKeyLen, MaxKeyLen)
	}
	if c.Epoch == 0 {
		return errors.New("transport: crypto: epoch must be non-zero and grow across restarts")
	}
	return nil
}

// Reasons a sealed datagram is refused.
var (
	errMalformed = errors.New("malformed sealed datagram")
	errAuth      = errors.New("authentication failed")
	errReplay    = errors.New("replayed or stale datagram")
)

// cryptoState seals outgoing datagrams (owner goroutine only) and opens incoming ones (any
// number of receive goroutines: peers is guarded by mu).
type cryptoState struct {
	cipher Cipher
	prk    []byte
	link   uint8
	self   srp.NodeID
	epoch  uint64

	seal    cipher.AEAD // key of (self, epoch): used for sending and for our own echoes
	counter uint64      // last counter sealed; touched only by the sending goroutine
	// sealNonce is the sender's nonce scratch: a local array passed to the AEAD interface
	// would escape and cost an allocation per datagram.
	sealNonce [12]byte

	mu    sync.Mutex
	peers map[srp.NodeID]*peerState
}

type peerState struct {
	epoch  uint64
	aead   cipher.AEAD
	high   uint64 // highest counter authenticated in epoch
	window [replayWindowWords]uint64
}

func newCryptoState(cfg *CryptoConfig, link uint8, self srp.NodeID) (*cryptoState, error) {
	prk, err := hkdf.Extract(sha256.New, cfg.Key, []byte(hkdfSalt))
	if err != nil {
		return nil, fmt.Errorf("transport: crypto: hkdf: %w", err)
	}
	cs := &cryptoState{cipher: cfg.Cipher, prk: prk, link: link, self: self, epoch: cfg.Epoch,
		peers: make(map[srp.NodeID]*peerState)}
	if cs.seal, err = cs.aeadFor(self, cfg.Epoch); err != nil {
		return nil, err
	}
	return cs, nil
}

func (cs *cryptoState) aeadFor(node srp.NodeID, epoch uint64) (cipher.AEAD, error) {
	info := make([]byte, 0, 32)
	info = append(info, "gototem totem v1"...)
	info = append(info, byte(cs.cipher), cs.link)
	info = binary.BigEndian.AppendUint32(info, uint32(node))
	info = binary.BigEndian.AppendUint64(info, epoch)
	key, err := hkdf.Expand(sha256.New, cs.prk, string(info), cs.cipher.keyLen())
	if err != nil {
		return nil, fmt.Errorf("transport: crypto: hkdf: %w", err)
	}
	if cs.cipher == ChaCha20Poly1305 {
		return chacha20poly1305.New(key)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("transport: crypto: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealInto appends the sealed form of plain to dst[:0] and returns it. dst must not overlap
// plain. Only the sending goroutine calls it.
func (cs *cryptoState) sealInto(dst, plain []byte) []byte {
	cs.counter++
	nonce := cs.sealNonce[:]
	binary.BigEndian.PutUint64(nonce[4:], cs.counter)
	dst = append(dst[:0], cryptoVersion, byte(cs.cipher))
	dst = binary.BigEndian.AppendUint32(dst, uint32(cs.self))
	dst = binary.BigEndian.AppendUint64(dst, cs.epoch)
	dst = binary.BigEndian.AppendUint64(dst, cs.counter)
	return cs.seal.Seal(dst, nonce, plain, dst[:cryptoHeaderSize])
}

// open authenticates and decrypts the sealed datagram b in place and returns the totem
// datagram inside it (a sub-slice of b). Nothing of b is trusted before the tag verified.
// nonce is the calling goroutine's scratch (see sealNonce).
func (cs *cryptoState) open(b []byte, nonce *[12]byte) ([]byte, error) {
	if len(b) < CryptoOverhead || b[0] != cryptoVersion || Cipher(b[1]) != cs.cipher {
		return nil, errMalformed
	}
	node := srp.NodeID(binary.BigEndian.Uint32(b[2:]))
	epoch := binary.BigEndian.Uint64(b[6:])
	counter := binary.BigEndian.Uint64(b[14:])
	if node == 0 || epoch == 0 || counter == 0 {
		return nil, errMalformed
	}

	cs.mu.Lock()
	p := cs.peers[node]
	var aead cipher.AEAD
	switch {
	case p != nil && epoch == p.epoch:
		if !p.fresh(counter) {
			cs.mu.Unlock()
			return nil, errReplay
		}
		aead = p.aead
	case p != nil && epoch < p.epoch:
		cs.mu.Unlock()
		return nil, errReplay
	case node == cs.self && epoch == cs.epoch:
		aead = cs.seal
	}
	cs.mu.Unlock()
	if aead == nil {
		// A sender seen for the first time, or restarted with a newer epoch: derive its key.
		// Costs one HKDF; the state is only installed once the datagram authenticates.
		var err error
		if aead, err = cs.aeadFor(node, epoch); err != nil {
			return nil, errAuth
		}
	}

	*nonce = [12]byte{}
	binary.BigEndian.PutUint64(nonce[4:], counter)
	plain, err := aead.Open(b[cryptoHeaderSize:cryptoHeaderSize], nonce[:], b[cryptoHeaderSize:], b[:cryptoHeaderSize])
	if err != nil {
		return nil, errAuth
	}

	cs.mu.Lock()
	defer cs.mu.Unlock()
	p = cs.peers[node]
	switch {
	case p == nil:
		if len(cs.peers) >= maxPeers {
			return nil, errReplay
		}
		p = &peerState{epoch: epoch, aead: aead}
		cs.peers[node] = p
	case epoch > p.epoch:
		*p = peerState{epoch: epoch, aead: aead}
	case epoch < p.epoch:
		return nil, errReplay // the sender restarted while we were decrypting
	}
	// Re-check under the lock: a duplicate may have arrived on another socket meanwhile.
	if !p.fresh(counter) {
		return nil, errReplay
	}
	p.mark(counter)
	return plain, nil
}

// fresh reports whether counter is inside the window and not seen yet.
func (p *peerState) fresh(counter uint64) bool {
	if counter > p.high {
		return true
	}
	if p.high-counter >= replayWindowBits {
		return false
	}
	word := (counter / 64) % replayWindowWords
	return p.window[word]&(1<<(counter%64)) == 0
}

// mark records counter as seen, sliding the window forward when it is the new highest. The
// window is a ring of words indexed by counter/64 (RFC 6479): words the window slides over
// are cleared, so old bits never alias new counters.
func (p *peerState) mark(counter uint64) {
	if counter > p.high {
		oldBlock, newBlock := p.high/64, counter/64
		if p.high == 0 {
			oldBlock = newBlock // first datagram of the epoch: nothing to keep
			p.window = [replayWindowWords]uint64{}
		}
		diff := newBlock - oldBlock
		if diff > replayWindowWords {
			diff = replayWindowWords
		}
		for i := uint64(1); i <= diff; i++ {
			p.window[(oldBlock+i)%replayWindowWords] = 0
		}
		p.high = counter
	}
	p.window[(counter/64)%replayWindowWords] |= 1 << (counter % 64)
}
