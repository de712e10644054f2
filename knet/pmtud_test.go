package knet

import (
	"errors"
	"testing"
)

// runPMTUD drives a search over a path whose interface MTU is kernel (larger probes are
// refused by the kernel, which reports kernel) and whose real path MTU is path (larger probes
// are lost). It returns the data MTU, the probe sizes sent on the wire and the error.
func runPMTUD(t *testing.T, c *Crypto, ipv6 bool, kernel, path int) (int, []int, error) {
	t.Helper()
	ping := PingSize
	if c != nil {
		ping += c.Overhead(PingSize)
	}
	s := NewPMTUD(c, ipv6, ping)
	var sent []int
	for !s.Done() {
		p, err := s.Next(1, 0)
		if err != nil {
			return 0, sent, err
		}
		if s.Done() {
			break
		}
		b := p.AppendEncode(nil)
		wire := len(b)
		if c != nil {
			wire += c.Overhead(len(b))
		}
		if wire+ipOverhead(ipv6)+UDPOverhead != int(p.Size) {
			t.Fatalf("probe of size %d is %d bytes on the wire", p.Size, wire)
		}
		switch {
		case int(p.Size) > kernel:
			s.SendFailed(kernel)
		case int(p.Size) > path:
			sent = append(sent, int(p.Size))
			s.Timeout()
		default:
			sent = append(sent, int(p.Size))
			s.Reply(int(p.Size))
		}
		if s.Attempts() > pmtudMaxAttempts {
			t.Fatal("more attempts than the failsafe allows")
		}
	}
	return s.DataMTU(), sent, nil
}

func TestPMTUD(t *testing.T) {
	aes := aes256sha256(t, captureKey(t))
	// The captures: the 65535-byte probe fails locally, the kernel says 1500, and one
	// 1500-byte probe with its reply settles 1446 (1397 with aes256/sha256).
	for _, tc := range []struct {
		name string
		c    *Crypto
		ipv6 bool
		want int
	}{{"clear", nil, false, 1446}, {"aes256", aes, false, 1397}, {"clear IPv6", nil, true, 1426}} {
		mtu, sent, err := runPMTUD(t, tc.c, tc.ipv6, 1500, 1500)
		if err != nil || mtu != tc.want || len(sent) != 1 || sent[0] != 1500 {
			t.Errorf("%s on a 1500-byte LAN: mtu %d, probes %v, %v; want %d after one 1500-byte probe", tc.name, mtu, sent, err, tc.want)
		}
	}
	// A path narrower than the interface (a tunnel): the search bisects down to the
	// largest size that passes, exactly without a cipher, within a block with one.
	for _, path := range []int{1400, 1280, 600, 9000 - 1} {
		kernel := 1500
		if path > kernel {
			kernel = 9000
		}
		mtu, sent, err := runPMTUD(t, nil, false, kernel, path)
		if want := UDPDataMTU(nil, path, false); err != nil || mtu != want {
			t.Errorf("clear, path %d: mtu %d (probes %v, %v), want %d", path, mtu, sent, err, want)
		}
		mtu, sent, err = runPMTUD(t, aes, false, kernel, path)
		if best := UDPDataMTU(aes, path, false); err != nil || mtu > best || mtu < best-16 {
			t.Errorf("aes256, path %d: mtu %d (probes %v, %v), want %d or up to a block less", path, mtu, sent, err, best)
		}
	}
	// The interface MTU changes under the search (the kernel refuses 1500 while reporting
	// 1500): libknet's failsafe ends it after 30 attempts.
	s := NewPMTUD(nil, false, PingSize)
	var err error
	for n := 0; n < 100 && err == nil; n++ {
		if _, err = s.Next(1, 0); err == nil {
			s.SendFailed(1500)
		}
	}
	if !errors.Is(err, ErrPMTUDAborted) || s.Attempts() != 30 || !s.Done() || s.DataMTU() != 0 {
		t.Errorf("changing MTU: %d attempts, %v", s.Attempts(), err)
	}
	// Nothing ever answers: the search gives up instead of probing forever.
	if mtu, sent, err := runPMTUD(t, nil, false, 1500, 0); !errors.Is(err, ErrPMTUDAborted) || mtu != 0 {
		t.Errorf("no replies: mtu %d, %d probes, %v", mtu, len(sent), err)
	}
}
