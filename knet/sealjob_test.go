package knet

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
)

// sendPair is two endpoints of host 1 built alike (same peers, key and salt seed), both
// with every link to hosts 2 and 3 up.
func sendPair(t *testing.T, c CryptoConfig) (a, b *Endpoint) {
	t.Helper()
	mk := func() *Endpoint {
		w := newNet(t, 3, 1, Passive, nil)
		for h := HostID(1); h <= 3; h++ {
			var kr *Keyring
			if c.Cipher != CipherNone || c.Hash != HashNone {
				cr, err := NewCrypto(c)
				if err != nil {
					t.Fatal(err)
				}
				kr = NewKeyring(cr)
			}
			w.eps[h].keyring = NewKeyring(nil)
			if kr != nil {
				w.eps[h].keyring = kr
				w.eps[h].cfg.Salt = rand.NewChaCha8([32]byte{byte(h)})
			}
			w.eps[h].dataMTU = MinDataMTU(w.eps[h].keyring.sealing())
		}
		w.run(3 * 1000 * ms) // pings bring the links up
		for h := HostID(2); h <= 3; h++ {
			if !w.eps[1].Reachable(h) {
				t.Fatalf("host %d not reachable from host 1", h)
			}
		}
		return w.eps[1]
	}
	return mk(), mk()
}

// TestSendMoreSealedAnywhere: a batch laid out by SendMore whose jobs run on several
// goroutines, in reverse order, each with its own Sealer, is byte for byte what Send
// writes message by message: the salts and seq numbers are assigned when the jobs are
// made, so who seals a packet, and when, changes nothing on the wire. (A salt drawn in
// Run instead of SendMore, or a Sealer keeping another key, fails it.)
func TestSendMoreSealedAnywhere(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 256)
	for _, c := range []CryptoConfig{
		{Model: "nss", Cipher: CipherAES256, Hash: HashSHA256, Key: key},
		{Model: "openssl", Cipher: CipherAES128, Hash: HashSHA1, Key: key},
		{Model: "nss", Hash: HashSHA512, Key: key},
		{Model: "nss"},
	} {
		a, b := sendPair(t, c)
		msgs := [][]byte{bytes.Repeat([]byte{1}, 3000), {2}, bytes.Repeat([]byte{3}, 64), bytes.Repeat([]byte{4}, 20000)}
		var want [][]byte
		for i, m := range msgs {
			dests := []HostID(nil)
			if i == 1 {
				dests = []HostID{3}
			}
			ds, err := a.Send(0, m, dests)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				want = append(want, append([]byte{d.Link, byte(d.To.Port())}, append(d.To.Addr().AsSlice(), d.Data...)...))
			}
		}
		b.ResetSend()
		var all []Datagram
		var jobs []SealJob
		for i, m := range msgs {
			dests := []HostID(nil)
			if i == 1 {
				dests = []HostID{3}
			}
			ds, js, err := b.SendMore(0, m, dests)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ds...)
			jobs = append(jobs, js...)
		}
		if enabled := c.Cipher != CipherNone || c.Hash != HashNone; enabled != (len(jobs) > 0) {
			t.Fatalf("%v/%v: %d jobs", c.Cipher, c.Hash, len(jobs))
		}
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var s Sealer
				for i := len(jobs) - 1 - w; i >= 0; i -= 3 {
					jobs[i].Run(&s)
				}
			}()
		}
		wg.Wait()
		if len(all) != len(want) {
			t.Fatalf("%v/%v: %d datagrams, Send made %d", c.Cipher, c.Hash, len(all), len(want))
		}
		for i, d := range all {
			got := append([]byte{d.Link, byte(d.To.Port())}, append(d.To.Addr().AsSlice(), d.Data...)...)
			if !bytes.Equal(got, want[i]) {
				t.Fatalf("%v/%v: datagram %d differs from Send's (first difference at %d)", c.Cipher, c.Hash, i, firstDiffAt(got, want[i]))
			}
		}
	}
}

func firstDiffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

var _ = netip.AddrPort{}
