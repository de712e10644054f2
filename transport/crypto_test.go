package transport

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gototem/gototem/srp"
)

func testKey(seed byte) []byte {
	k := make([]byte, DefaultKeyLen)
	for i := range k {
		k[i] = seed + byte(i*7)
	}
	return k
}

func withCrypto(c Config, key []byte, epoch uint64) Config {
	c.Crypto = &CryptoConfig{Key: key, Cipher: AES256GCM, Epoch: epoch}
	return c
}

// TestEncryptedUDPU proves, over real sockets, that nodes sharing a key exchange sealed
// datagrams (and get their plaintext back byte for byte), that a node with another key is
// refused and counted as an authentication failure, that a captured datagram replayed to a
// node is rejected, that a restarted sender (new epoch) is accepted while its previous
// epoch's datagrams are then refused, and that tampering and non-sealed datagrams are
// counted drops.
func TestEncryptedUDPU(t *testing.T) {
	key := testKey(1)
	nodes, tn := openRetrying(t, func(tn testNet) []Config {
		m := members(tn, 1, 2, 3, 4) // 4 is the spy socket below, listed so it is not blocked
		return []Config{
			withCrypto(cfgFor(UDPU, tn, 1, m), key, 100),
			withCrypto(cfgFor(UDPU, tn, 2, m), key, 200),
			withCrypto(cfgFor(UDPU, tn, 3, m), testKey(2), 300), // wrong key
		}
	})
	spy := rawSocket(t, netip.AddrPortFrom(tn.addr(4), uint16(tn.port)))
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	join := joinMsg(1, 1, 2)
	if err := n1.link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{n1, n2} {
		if g := n.expect(t, 1)[0]; !bytes.Equal(g.data, join) {
			t.Fatalf("node %d: decrypted % x, want % x", n.id, g.data, join)
		}
	}
	waitCounters(t, n3, "auth failure", func(c Counters) bool { return c.DroppedAuth == 1 })
	n3.expect(t, 0)

	sealed := readRaw(t, spy)
	if len(sealed) != len(join)+CryptoOverhead || bytes.Contains(sealed, join[13:]) {
		t.Fatalf("datagram on the wire is %d bytes and %s the cleartext body", len(sealed),
			map[bool]string{true: "contains", false: "hides"}[bytes.Contains(sealed, join[13:])])
	}

	// Replay the captured copy to node 2, which has already accepted that counter.
	dst := netip.AddrPortFrom(tn.addr(2), uint16(tn.port))
	if _, err := spy.WriteToUDPAddrPort(sealed, dst); err != nil {
		t.Fatal(err)
	}
	waitCounters(t, n2, "replay drop", func(c Counters) bool { return c.DroppedReplay == 1 })

	// Tampering must fail authentication: the sender id, and the counter (moved to a fresh
	// value, else the replay check would refuse it before decryption).
	for _, off := range []int{3, 21} {
		bad := bytes.Clone(sealed)
		bad[off] ^= 0x40
		spy.WriteToUDPAddrPort(bad, dst)
	}
	// A cleartext totem datagram is not accepted by an encrypting node.
	spy.WriteToUDPAddrPort(join, dst)
	waitCounters(t, n2, "tamper drops", func(c Counters) bool { return c.DroppedAuth == 2 && c.DroppedMalformed == 1 })

	// Node 1 restarts with a larger epoch: node 2 accepts it at once.
	n1.stop()
	var err error
	cfg1 := withCrypto(cfgFor(UDPU, tn, 1, members(tn, 1, 2, 3, 4)), key, 101)
	n1 = startNode(t, cfg1)
	join2 := joinMsg(1, 1)
	if err = n1.link.Send([]srp.Outgoing{toAll(srp.TypeJoin, join2)}); err != nil {
		t.Fatal(err)
	}
	if g := n2.expect(t, 1)[0]; !bytes.Equal(g.data, join2) {
		t.Fatalf("after restart node 2 got % x", g.data)
	}
	readRaw(t, spy)
	// The pre-restart datagram is now from a superseded epoch.
	spy.WriteToUDPAddrPort(sealed, dst)
	waitCounters(t, n2, "stale epoch drop", func(c Counters) bool { return c.DroppedReplay == 2 })
	n2.expect(t, 0)
	if c := n2.link.Counters(); c.ReceivedPackets != 2 {
		t.Fatalf("node 2 delivered %d datagrams, want exactly the 2 genuine ones: %+v", c.ReceivedPackets, c)
	}
	if n1.link.MaxPayload() != DefaultNetMTU-CryptoOverhead {
		t.Fatalf("MaxPayload %d, want netmtu minus overhead", n1.link.MaxPayload())
	}
}

// TestEncryptedUDPLoop proves the udp local loop carries cleartext (it never leaves the
// process) while the group copy is sealed and opened by the peer.
func TestEncryptedUDPLoop(t *testing.T) {
	key := testKey(9)
	nodes, _ := openRetrying(t, func(tn testNet) []Config {
		return []Config{withCrypto(cfgFor(UDP, tn, 1, nil), key, 1), withCrypto(cfgFor(UDP, tn, 2, nil), key, 1)}
	})
	mc := mcastMsg(1, 1, 1400)
	if err := nodes[0].link.Send([]srp.Outgoing{toAll(srp.TypeMcast, mc)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if g := n.expect(t, 1)[0]; !bytes.Equal(g.data, mc) {
			t.Fatalf("node %d got a different datagram", n.id)
		}
	}
}

// newPair returns a sender and a receiver crypto state sharing key.
func newPair(t *testing.T, key []byte, sender srp.NodeID, epoch uint64) (*cryptoState, *cryptoState) {
	t.Helper()
	s, err := newCryptoState(&CryptoConfig{Key: key, Cipher: AES256GCM, Epoch: epoch}, 0, sender)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newCryptoState(&CryptoConfig{Key: key, Cipher: AES256GCM, Epoch: 1}, 0, 99)
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

// TestReplayWindow drives the per-sender window through arrival orders and checks which
// datagrams are accepted: in order, reordered within the window, duplicates, too old,
// and a jump far ahead that clears the window.
func TestReplayWindow(t *testing.T) {
	cases := []struct {
		name  string
		order []uint64 // counters in arrival order
		want  []bool   // accepted?
	}{
		{"in order", []uint64{1, 2, 3}, []bool{true, true, true}},
		{"duplicate", []uint64{1, 2, 2, 1}, []bool{true, true, false, false}},
		{"reordered", []uint64{3, 1, 2, 3}, []bool{true, true, true, false}},
		{"edge of window", []uint64{1000, 1000 - replayWindowBits + 1, 1000 - replayWindowBits},
			[]bool{true, true, false}},
		{"far jump clears", []uint64{5, 5 + 10*replayWindowBits, 6, 5 + 10*replayWindowBits - 1},
			[]bool{true, true, false, true}},
		{"word reuse does not alias", []uint64{10, 10 + 64*replayWindowWords, 10 + 64*replayWindowWords - replayWindowBits + 1},
			[]bool{true, true, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, r := newPair(t, testKey(3), 7, 5)
			// Seal every counter up to the largest, then deliver in the asked order.
			var maxC uint64
			for _, c := range tc.order {
				maxC = max(maxC, c)
			}
			sealed := map[uint64][]byte{}
			for c := uint64(1); c <= maxC; c++ {
				if b := s.sealInto(nil, []byte("datagram")); containsU(tc.order, c) {
					sealed[c] = b
				}
			}
			for i, c := range tc.order {
				_, err := r.open(bytes.Clone(sealed[c]), new([12]byte))
				if accepted := err == nil; accepted != tc.want[i] {
					t.Fatalf("arrival %d (counter %d): accepted=%v (err %v), want %v", i, c, accepted, err, tc.want[i])
				}
				if err != nil && !errors.Is(err, errReplay) {
					t.Fatalf("counter %d: error %v, want a replay rejection", c, err)
				}
			}
		})
	}
}

func containsU(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestOpenRejects proves each kind of bad sealed datagram maps to its drop reason.
func TestOpenRejects(t *testing.T) {
	s, r := newPair(t, testKey(4), 7, 5)
	good := s.sealInto(nil, []byte("hello totem"))
	other, _ := newPair(t, testKey(5), 7, 5)
	foreign := other.sealInto(nil, []byte("hello totem"))
	mutate := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, errMalformed},
		{"shorter than overhead", good[:CryptoOverhead-1], errMalformed},
		{"cleartext totem", joinMsg(1, 1), errMalformed},
		{"other version", mutate(func(b []byte) { b[0] = 2 }), errMalformed},
		{"other cipher", mutate(func(b []byte) { b[1] = byte(AES128GCM) }), errMalformed},
		{"nodeid zero", mutate(func(b []byte) { copy(b[2:6], []byte{0, 0, 0, 0}) }), errMalformed},
		{"sender rewritten", mutate(func(b []byte) { b[5] ^= 1 }), errAuth},
		{"epoch rewritten", mutate(func(b []byte) { b[13] ^= 1 }), errAuth},
		{"counter rewritten", mutate(func(b []byte) { b[21] ^= 2 }), errAuth},
		{"body flipped", mutate(func(b []byte) { b[cryptoHeaderSize] ^= 1 }), errAuth},
		{"tag flipped", mutate(func(b []byte) { b[len(b)-1] ^= 1 }), errAuth},
		{"truncated tag", good[:len(good)-1], errAuth},
		{"other key", foreign, errAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.open(bytes.Clone(tc.in), new([12]byte)); !errors.Is(err, tc.want) {
				t.Fatalf("open: %v, want %v", err, tc.want)
			}
		})
	}
	if p, err := r.open(bytes.Clone(good), new([12]byte)); err != nil || string(p) != "hello totem" {
		t.Fatalf("the untouched datagram must still open after the failures: %q %v", p, err)
	}
}

// TestKeysAreSeparated proves the derived keys differ per link, per sender and per epoch:
// the same counter sealed under each must give different ciphertext, which is what keeps
// (key, nonce) pairs unique across rings, nodes and restarts.
func TestKeysAreSeparated(t *testing.T) {
	key := testKey(6)
	seal := func(link uint8, node srp.NodeID, epoch uint64) string {
		cs, err := newCryptoState(&CryptoConfig{Key: key, Cipher: AES256GCM, Epoch: epoch}, link, node)
		if err != nil {
			t.Fatal(err)
		}
		b := cs.sealInto(nil, []byte("same plaintext"))
		return fmt.Sprintf("%x", b[cryptoHeaderSize:])
	}
	seen := map[string]string{}
	for _, v := range []struct {
		link  uint8
		node  srp.NodeID
		epoch uint64
	}{{0, 1, 1}, {1, 1, 1}, {0, 2, 1}, {0, 1, 2}} {
		ct := seal(v.link, v.node, v.epoch)
		name := fmt.Sprintf("link %d node %d epoch %d", v.link, v.node, v.epoch)
		if prev, dup := seen[ct]; dup {
			t.Fatalf("%s and %s produced the same ciphertext", prev, name)
		}
		seen[ct] = name
	}
}

// TestParseCipher covers the corosync totem crypto keys.
func TestParseCipher(t *testing.T) {
	cases := []struct {
		secauth, cipher, hash string
		want                  Cipher
		err                   string
	}{
		{"", "", "", CipherNone, ""},
		{"off", "", "", CipherNone, ""},
		{"on", "", "", AES256GCM, ""},
		{"on", "aes128", "sha1", AES128GCM, ""},
		{"", "aes192", "sha512", AES192GCM, ""},
		{"", "none", "none", CipherNone, ""},
		{"", "aes256", "none", CipherNone, "requires crypto_hash"},
		{"", "aes256", "", CipherNone, "requires crypto_hash"},
		{"", "none", "sha256", CipherNone, "authentication only"},
		{"", "3des", "sha1", CipherNone, "invalid cipher type"},
		{"", "aes256", "crc32", CipherNone, "invalid hash type"},
	}
	for _, tc := range cases {
		got, err := ParseCipher(tc.secauth, tc.cipher, tc.hash)
		if tc.err != "" {
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.err)) {
				t.Errorf("ParseCipher(%q,%q,%q) error %v, want %q", tc.secauth, tc.cipher, tc.hash, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseCipher(%q,%q,%q) = %v, %v; want %v", tc.secauth, tc.cipher, tc.hash, got, err, tc.want)
		}
	}
}
