package totem

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gototem/gototem/knet"
)

// A gototem-only knet ring re-keys at run time (issue 15): three nodes on aes256/sha256 with
// key A run a group flood; the configuration changes to key B with aes128/sha512 and
// corosync-cfgtool -R's RELOAD_CONFIG goes round. Every node stages B beside A,
// activates it when its own SAFE ACTIVATE comes back and drops A at CLEANUP, as corosync
// 3.1.7's totemknet does: afterwards every node's knet runs B in slot 2 (PMTUd found
// loopback's MTU again, at sha512's larger overhead), the ring id never
// moved (no membership change at all), no packet failed authentication on any node, and
// every message sent before, during and after the change was delivered to every node in one
// order.
func TestKnetCryptoReloadKeepsRing(t *testing.T) {
	dir := t.TempDir()
	keyA, keyB := filepath.Join(dir, "authkey-a"), filepath.Join(dir, "authkey-b")
	for i, p := range []string{keyA, keyB} {
		k := make([]byte, 256)
		for j := range k {
			k[j] = byte(j*13 + i*101)
		}
		if err := os.WriteFile(p, k, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := netip.AddrFrom4([4]byte{127, byte(10 + rand.IntN(200)), byte(rand.IntN(250)), 0})
	port := 20000 + rand.IntN(20000)
	confA := clusterConf("knet", 3, base, port, "crypto_cipher: aes256", "crypto_hash: sha256", "keyfile: "+keyA)
	confB := clusterConf("knet", 3, base, port, "crypto_cipher: aes128", "crypto_hash: sha512", "keyfile: "+keyB)
	var ms []*member
	var reloadErrs sync.Map
	a := base
	for id := 1; id <= 3; id++ {
		a = a.Next()
		addr := a
		var m *member
		m = startMemberWith(t, Options{Config: reloadConf(t, confA, addr),
			OnCfgReload: func(from NodeID) error {
				kept, err := m.node.Reload(reloadConf(t, confB, addr))
				if err == nil && len(kept) > 0 {
					err = fmt.Errorf("reload kept %v", kept)
				}
				if err != nil {
					reloadErrs.Store(id, err)
				}
				return err
			}})
		ms = append(ms, m)
	}
	joinAll(t, ms)
	ring, _ := ms[0].lastRegular()
	// Token timer expiries while the ring formed (a node alone first, then the merge) are
	// not the re-keying's: count from here.
	lossesBefore := make([]uint64, len(ms))
	for i, m := range ms {
		lossesBefore[i] = m.node.Status().Protocol.TokenLosses
	}

	// Node 1 sends all along; the reload happens in the middle.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := 0
	send := func(n int) {
		for range n {
			sent++
			if err := ms[0].group.Send(ctx, []byte(fmt.Sprintf("m%04d", sent)), Agreed); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	send(100)
	done := make(chan error, 1)
	go func() { done <- ms[1].node.CfgReload() }()
	send(200)
	if err := <-done; err != nil {
		t.Fatalf("cfg reload: %v", err)
	}
	reloadErrs.Range(func(k, v any) bool { t.Errorf("node %v: reload: %v", k, v); return true })
	waitFor(t, 10*time.Second, "every node on key B, slot 2, old slot cleared", func() bool {
		for _, m := range ms {
			l := m.node.links[0]
			c := l.KnetCryptoTarget()
			if c == nil || c.Config().Cipher.String() != "aes128" || l.KnetCryptoIndex() != 2 {
				return false
			}
		}
		return true
	})
	wantMTU := knet.UDPDataMTU(ms[0].node.links[0].KnetCryptoTarget(), 65535, false)
	waitFor(t, 10*time.Second, fmt.Sprintf("PMTUd at the new overhead (data MTU %d)", wantMTU), func() bool {
		for _, m := range ms {
			if m.node.links[0].KnetDataMTU() != wantMTU {
				return false
			}
		}
		return true
	})
	send(100)
	want := make([]string, sent)
	for i := range want {
		want[i] = fmt.Sprintf("m%04d", i+1)
	}
	waitFor(t, 10*time.Second, "every message everywhere", func() bool {
		for _, m := range ms {
			if len(m.rec.messages()) < sent {
				return false
			}
		}
		return true
	})
	for i, m := range ms {
		got := m.rec.messages()
		for j, g := range got {
			_, got[j], _ = strings.Cut(g, ":") // the sender's {nodeid pid}
		}
		if !slices.Equal(got, want) {
			k := firstMismatch(got, want)
			t.Errorf("node %d delivered %d messages, want %d in order (first difference at %d: %q)", i+1, len(got), len(want), k, got[min(k, len(got)-1)])
		}
		if r, _ := m.lastRegular(); r.RingID != ring.RingID {
			t.Errorf("node %d: ring %v after the re-keying, was %v: the membership changed", i+1, r.RingID, ring.RingID)
		}
		st := m.node.Status()
		if losses := st.Protocol.TokenLosses - lossesBefore[i]; st.Drops.AuthFailure != 0 || losses != 0 {
			t.Errorf("node %d: %d authentication failures, %d token losses during the re-keying", i+1, st.Drops.AuthFailure, losses)
		}
	}
}

func firstMismatch(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
