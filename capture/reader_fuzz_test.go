package capture

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gototem/gototem/knet"
)

// FuzzReader feeds arbitrary bytes to the Reader as a pcap file: whatever the file holds
// (hostile record lengths, broken Ethernet/IP/UDP headers, half fragments, garbage on the
// Totem ports), reading ends with io.EOF or an error, never a panic, and every returned
// packet is well formed: exactly one of Totem and Err set, a decoded little-endian
// datagram re-encodes to its bytes, and the counts add up. Seeds: the smallest real capture
// and synthetic files built by the reader tests' helpers.
func FuzzReader(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(capturesDir, "udp-steady.pcap")); err == nil {
		f.Add(b)
	}
	join := []byte{0x70, 0xc0, 3, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}
	f.Add(pcapOf(f, udp4(f, "10.77.0.1", "10.77.0.2", 5405, 5405, join), arp(f)))
	f.Add(pcapOf(f, udp4Fragments(f, "10.77.0.1", "10.77.0.2", 5405, 5405, bytes.Repeat(join, 100))...))
	f.Add(pcapOf(f, udp6(f, "fd00::1", "fd00::2", 5404, 5405, join)))
	// knet: a ping, a whole DATA message and a two-fragment one (last fragment first).
	ping := knet.NewPing(1, 0, 3676, 420535990, 0, true)
	whole := knet.NewData(1, 1, true, 0, join)
	f1 := knet.NewData(1, 2, true, 0, join[:20])
	f1.FragNum, f1.FragSeq = 2, 1
	f2 := knet.NewData(1, 2, true, 0, join[20:])
	f2.FragNum, f2.FragSeq = 2, 2
	f.Add(pcapOf(f,
		udp4(f, "10.77.0.1", "10.77.0.2", 5405, 5405, ping.AppendEncode(nil)),
		udp4(f, "10.77.0.1", "10.77.0.2", 5405, 5405, whole.AppendEncode(nil)),
		udp4(f, "10.77.0.1", "10.77.0.2", 5405, 5405, f2.AppendEncode(nil)),
		udp4(f, "10.77.0.1", "10.77.0.2", 5405, 5405, f1.AppendEncode(nil))))
	f.Fuzz(func(t *testing.T, file []byte) {
		r, err := NewReader(bytes.NewReader(file))
		if err != nil {
			return
		}
		n, bad := 0, 0
		for p, err := range r.All() {
			if err != nil {
				break
			}
			n++
			if p.Knet == nil && (p.Totem == nil) == (p.Err == nil) || p.Knet != nil && p.Totem != nil && p.Err != nil {
				t.Fatalf("frame %d: totem %v and err %v", p.Frame, p.Totem, p.Err)
			}
			if p.Knet != nil && p.Totem != nil && !bytes.Equal(p.Knet.Packet.AppendEncode(nil), p.Knet.Plain) {
				t.Fatalf("frame %d: knet re-encoding differs", p.Frame)
			}
			if p.Err != nil {
				bad++
				continue
			}
			if p.Totem == nil {
				continue
			}
			if m := p.Message(); p.Knet == nil && !p.Totem.Swapped && m.EncodedLen() == len(p.Data) && !bytes.Equal(m.AppendEncode(nil), p.Data) {
				t.Fatalf("frame %d: re-encoding differs", p.Frame)
			}
		}
		st := r.Stats()
		if st.Totem != n || st.Undecodable != bad || st.Frames < st.Totem+st.NonUDP+st.OtherUDP {
			t.Fatalf("stats %+v after %d packets, %d bad", st, n, bad)
		}
	})
}
