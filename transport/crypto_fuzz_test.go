package transport

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzOpen from the seeds")

// fuzzGenuine seals the genuine datagrams of the fuzz target: key, sender and epoch are
// fixed so the sealed bytes (and the committed corpus) are reproducible.
func fuzzGenuine(t testing.TB) map[string][]byte {
	s, err := newCryptoState(&CryptoConfig{Key: testKey(42), Cipher: AES256GCM, Epoch: 7}, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	genuine := map[string][]byte{}
	for _, plain := range [][]byte{joinMsg(3, 1, 2, 3), tokenMsg(3, 9), mcastMsg(3, 4, 100), {}, []byte("x")} {
		genuine[string(s.sealInto(nil, plain))] = plain
	}
	return genuine
}

func fuzzSeeds(genuine map[string][]byte) [][]byte {
	var seeds [][]byte
	for _, sealed := range slices.Sorted(maps.Keys(genuine)) { // sorted: stable corpus file names
		b := []byte(sealed)
		seeds = append(seeds, b, b[:len(b)-1], b[:cryptoHeaderSize])
		flipped := bytes.Clone(b)
		flipped[len(flipped)/2] ^= 0x80
		seeds = append(seeds, flipped)
	}
	return append(seeds, nil, joinMsg(1, 1), bytes.Repeat([]byte{1}, CryptoOverhead))
}

// FuzzOpen feeds arbitrary datagrams to the decrypt path of a fresh receiver. It must never
// panic, and it may accept a datagram only if it is byte for byte one the genuine sender
// sealed, returning exactly that plaintext; the same datagram a second time is a replay.
func FuzzOpen(f *testing.F) {
	genuine := fuzzGenuine(f)
	for _, s := range fuzzSeeds(genuine) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := newCryptoState(&CryptoConfig{Key: testKey(42), Cipher: AES256GCM, Epoch: 1}, 0, 99)
		if err != nil {
			t.Fatal(err)
		}
		var nonce [12]byte
		plain, err := r.open(bytes.Clone(data), &nonce)
		if err != nil {
			return
		}
		want, ok := genuine[string(data)]
		if !ok {
			t.Fatalf("accepted a datagram the sender never sealed: % x", data)
		}
		if !bytes.Equal(plain, want) {
			t.Fatalf("plaintext % x, want % x", plain, want)
		}
		peekSender(plain)
		if _, err := r.open(bytes.Clone(data), &nonce); err == nil {
			t.Fatal("the same datagram was accepted twice")
		}
	})
}

// TestFuzzCorpus keeps the committed corpus in step with the seeds (go test -run
// TestFuzzCorpus -update-corpus rewrites it) and checks the corpus still decodes.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	seeds := fuzzSeeds(fuzzGenuine(t))
	if *updateCorpus {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("corpus missing (run with -update-corpus): %v", err)
	}
	if len(entries) < len(seeds) {
		t.Fatalf("corpus has %d files, want at least the %d seeds", len(entries), len(seeds))
	}
}
