package knet

import (
	"bytes"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"math/rand/v2"
	"testing"
)

// runJobsSeed is KNET_SEAL_SEED (a number, or "random" for the clock's), 1 by default;
// printed.
func runJobsSeed(t *testing.T) uint64 { return testenv.Seed(t, "KNET_SEAL_SEED", 1) }

// layJobs lays out one visit's packets in one buffer as Endpoint.sealLater does (salt,
// plaintext, room for padding and MAC, back to back), each sealed with the Crypto pick
// chooses for it, and returns the buffer, its jobs and their plaintexts and salts.
func layJobs(rng *rand.Rand, sizes []int, pick func(i int) *Crypto) ([]byte, []SealJob, [][]byte, [][SaltSize]byte) {
	var wire []byte
	var offs []int
	var cs []*Crypto
	plains := make([][]byte, len(sizes))
	salts := make([][SaltSize]byte, len(sizes))
	for i, n := range sizes {
		c := pick(i)
		cs = append(cs, c)
		plains[i] = make([]byte, n)
		for j := range plains[i] {
			plains[i][j] = byte(rng.Uint32())
		}
		for j := range salts[i] {
			salts[i][j] = byte(rng.Uint32())
		}
		start := len(wire)
		wire = grow(wire, c.sealedSize(n))
		w := wire[start:]
		off := c.plainOffset()
		if off > 0 {
			copy(w, salts[i][:])
		}
		copy(w[off:], plains[i])
		offs = append(offs, start)
	}
	offs = append(offs, len(wire))
	jobs := make([]SealJob, len(sizes))
	for i := range sizes {
		jobs[i] = SealJob{c: cs[i], wire: wire[offs[i]:offs[i+1]:offs[i+1]], n: sizes[i]}
	}
	return wire, jobs, plains, salts
}

// TestRunJobsAsRun: random visits (1..20 packets of random sizes, empty to beyond a full
// MTU, whole blocks and not) sealed with RunJobs are byte for byte what Run writes job by
// job, and what Seal writes packet by packet, under aes256/sha256, aes192/sha384,
// aes128/sha1, a hash alone (no cipher), and visits that mix them, including two Cryptos
// of the same configuration (another key schedule: never one batch). The Sealers carry
// over from visit to visit, as a worker's do.
func TestRunJobsAsRun(t *testing.T) {
	rng := rand.New(rand.NewPCG(runJobsSeed(t), 0x5ea1))
	key := make([]byte, 256)
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	mk := func(ci Cipher, h Hash) *Crypto {
		c, err := NewCrypto(CryptoConfig{Model: "nss", Cipher: ci, Hash: h, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	aes256 := mk(CipherAES256, HashSHA256)
	cryptos := []*Crypto{aes256, mk(CipherAES192, HashSHA384), mk(CipherAES128, HashSHA1), mk(CipherNone, HashSHA256), aes256.Clone()}
	configs := []struct {
		name string
		pick func(rng *rand.Rand) *Crypto
	}{
		{"aes256/sha256", func(*rand.Rand) *Crypto { return cryptos[0] }},
		{"aes192/sha384", func(*rand.Rand) *Crypto { return cryptos[1] }},
		{"aes128/sha1", func(*rand.Rand) *Crypto { return cryptos[2] }},
		{"sha256 alone", func(*rand.Rand) *Crypto { return cryptos[3] }},
		{"mixed", func(rng *rand.Rand) *Crypto { return cryptos[rng.IntN(len(cryptos))] }},
		// runs of one key then another, so that batches end early
		{"runs", func(rng *rand.Rand) *Crypto { return cryptos[rng.IntN(2)*4] }},
	}
	var serial, batch Sealer
	for _, cfg := range configs {
		for visit := range 40 {
			k := 1 + rng.IntN(20)
			sizes := make([]int, k)
			for i := range sizes {
				switch rng.IntN(4) {
				case 0:
					sizes[i] = DataHeaderSize + 1397 // a full-MTU DATA packet
				case 1:
					sizes[i] = 16 * rng.IntN(100) // whole blocks: a whole block of padding
				default:
					sizes[i] = rng.IntN(1600)
				}
			}
			seed := rng.Uint64()
			picks := rand.New(rand.NewPCG(seed, 1))
			a, ajobs, plains, salts := layJobs(rand.New(rand.NewPCG(seed, 2)), sizes, func(int) *Crypto { return cfg.pick(picks) })
			picks = rand.New(rand.NewPCG(seed, 1))
			b, bjobs, _, _ := layJobs(rand.New(rand.NewPCG(seed, 2)), sizes, func(int) *Crypto { return cfg.pick(picks) })
			if !bytes.Equal(a, b) {
				t.Fatal("the two layouts differ before sealing")
			}
			for i := range ajobs {
				ajobs[i].Run(&serial)
			}
			RunJobs(bjobs, &batch)
			name := fmt.Sprintf("%s visit %d (sizes %v)", cfg.name, visit, sizes)
			for i := range ajobs {
				if !bytes.Equal(bjobs[i].wire, ajobs[i].wire) {
					t.Errorf("%s: packet %d of %d: RunJobs differs from Run at byte %d", name, i, k, firstDiffAt(bjobs[i].wire, ajobs[i].wire))
				}
				want := ajobs[i].c.Seal(nil, plains[i], &salts[i])
				if !bytes.Equal(bjobs[i].wire, want) {
					t.Errorf("%s: packet %d of %d: RunJobs differs from Seal at byte %d", name, i, k, firstDiffAt(bjobs[i].wire, want))
				}
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s: the buffers differ outside the packets", name)
			}
		}
	}
	RunJobs(nil, &batch)
}

// TestRunJobsNoAllocs: sealing a visit with RunJobs allocates nothing once the Sealer is
// bound.
func TestRunJobsNoAllocs(t *testing.T) {
	c := aes256sha256(t, make([]byte, 128))
	_, jobs, _, _ := layJobs(rand.New(rand.NewPCG(1, 2)), []int{1460, 1460, 1460, 1460, 1460, 700}, func(int) *Crypto { return c })
	var s Sealer
	RunJobs(jobs, &s)
	if a := testing.AllocsPerRun(100, func() { RunJobs(jobs, &s) }); a != 0 {
		t.Errorf("%.0f allocations per run", a)
	}
}

// BenchmarkSealJobs: sealing 16 full-MTU DATA packets of one visit (aes256/sha256, the
// capture's key), job by job with Run against RunJobs (four packets' CBC chains at once).
func BenchmarkSealJobs(b *testing.B) {
	c := aes256sha256(b, captureKey(b))
	sizes := make([]int, 16)
	for i := range sizes {
		sizes[i] = DataHeaderSize + 1397
	}
	_, jobs, _, _ := layJobs(rand.New(rand.NewPCG(1, 2)), sizes, func(int) *Crypto { return c })
	b.Run("Run", func(b *testing.B) {
		var s Sealer
		b.SetBytes(int64(len(sizes) * sizes[0]))
		b.ReportAllocs()
		for b.Loop() {
			for i := range jobs {
				jobs[i].Run(&s)
			}
		}
	})
	b.Run("RunJobs", func(b *testing.B) {
		var s Sealer
		b.SetBytes(int64(len(sizes) * sizes[0]))
		b.ReportAllocs()
		for b.Loop() {
			RunJobs(jobs, &s)
		}
	})
}
