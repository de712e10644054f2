package capture

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
)

// knetCapturesDir holds real corosync 3.1.7 / libknet 1.25 captures, copied into the
// repository from ../../shared/knet-captures (see its README), so these tests need nothing
// outside it: a missing file is a failure, never a skip.
const knetCapturesDir = "../knet/testdata/captures"

func knetCrypto(t testing.TB) *knet.Crypto {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(knetCapturesDir, "knet-aes256.authkey"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := knet.NewCrypto(knet.CryptoConfig{Model: "nss", Cipher: knet.CipherAES256, Hash: knet.HashSHA256, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readKnet(t testing.TB, name string) ([]Packet, Stats) {
	t.Helper()
	var o Options
	if strings.Contains(name, "aes256") {
		o.KnetCrypto = knetCrypto(t)
	}
	pkts, st, err := ReadFileOptions(filepath.Join(knetCapturesDir, name), o)
	if err != nil {
		t.Fatal(err)
	}
	return pkts, st
}

// knetCounts are the README's tables: packets per knet type, and the Totem messages the
// DATA packets carry (a message sent to two hosts counts twice, as the README counts
// unfragmented packets and first fragments).
var knetCounts = []struct {
	file                                   string
	frames                                 int
	data, ping, pong, pmtud, pmtudReply    int
	orf, mcast, merge, join, commit, holdc int
	fragments                              int // DATA packets that are fragments (counted by our decoder)
	maxUDP                                 int // largest DATA UDP payload (0: not pinned)
}{
	{"knet-formation.pcap", 368, 248, 54, 54, 6, 6, 156, 30, 20, 12, 6, 0, 36, 496},
	{"knet-join.pcap", 204, 100, 46, 42, 8, 8, 37, 0, 17, 39, 7, 0, 0, 0},
	{"knet-leave-kill.pcap", 382, 306, 48, 28, 0, 0, 104, 10, 8, 178, 4, 0, 4, 1460},
	{"knet-steady.pcap", 5175, 5083, 46, 46, 0, 0, 4845, 112, 18, 0, 0, 104, 8, 1460},
	{"knet-aes256-formation.pcap", 339, 243, 42, 42, 6, 6, 147, 30, 18, 12, 6, 0, 48, 496},
}

// TestKnetCapturesDecode: every packet of every real knet capture is a knet packet our
// codec decodes and re-encodes byte-exact (for the encrypted file: decrypts, and re-seals
// with its own salt to the captured bytes), every DATA message is delivered once and is a
// Totem packet srp's codec re-encodes exactly, no fragment is left over, and the per-type
// counts are the README's.
func TestKnetCapturesDecode(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(knetCapturesDir, "*.pcap"))
	if len(files) != len(knetCounts) {
		t.Errorf("%d knet captures, %d pinned", len(files), len(knetCounts))
	}
	for _, tc := range knetCounts {
		t.Run(tc.file, func(t *testing.T) {
			pkts, st := readKnet(t, tc.file)
			if len(pkts) != tc.frames || st.Frames != tc.frames || st.Knet != tc.frames || st.Undecodable != 0 {
				t.Fatalf("%d packets, stats %+v; want %d knet packets, none undecodable", len(pkts), st, tc.frames)
			}
			var (
				kinds              = map[knet.PacketType]int{}
				totem              [6]int
				frags, maxUDP, msg int
				held, heldWant     int
				c                  = knetCrypto(t)
			)
			for _, p := range pkts {
				k := p.Knet
				if k == nil || p.Err != nil {
					t.Fatalf("frame %d: knet %v err %v", p.Frame, k, p.Err)
				}
				kinds[k.Packet.Type]++
				if got := k.Packet.AppendEncode(nil); !bytes.Equal(got, k.Plain) {
					t.Fatalf("frame %d: knet re-encoding differs", p.Frame)
				}
				if k.Encrypted {
					var salt [knet.SaltSize]byte
					copy(salt[:], p.Data)
					if !bytes.Equal(c.Seal(nil, k.Plain, &salt), p.Data) {
						t.Fatalf("frame %d: re-sealing differs", p.Frame)
					}
				} else if !bytes.Equal(k.Plain, p.Data) {
					t.Fatalf("frame %d: clear packet is not the datagram", p.Frame)
				}
				if p.Src.Port() != 5405 || p.Dst.Port() != 5405 {
					t.Errorf("frame %d: ports %v > %v, knet link 0 uses 5405 both ways", p.Frame, p.Src, p.Dst)
				}
				if k.Packet.Type != knet.TypeData {
					if p.Totem != nil {
						t.Errorf("frame %d: %s carries Totem", p.Frame, k.Packet.Type)
					}
					continue
				}
				if k.Packet.Channel != 0 || k.Packet.Compress != 0 {
					t.Errorf("frame %d: channel %d compress %d", p.Frame, k.Packet.Channel, k.Packet.Compress)
				}
				if k.Packet.Fragmented() {
					frags++
				}
				maxUDP = max(maxUDP, len(p.Data))
				switch k.Rx {
				case knet.RxDeliver:
					msg++
					if p.Totem == nil {
						t.Fatalf("frame %d: delivered message without Totem", p.Frame)
					}
					totem[p.Totem.Header.Type]++
					if k.Packet.Fragmented() {
						heldWant += int(k.Packet.FragNum) - 1
					}
					if got := p.Message().AppendEncode(nil); !bytes.Equal(got, k.Message) {
						t.Fatalf("frame %d: Totem re-encoding differs", p.Frame)
					}
					// The filter callback's rule: target_nodeid 0 <=> bcast.
					if (p.Totem.Header.TargetNodeID == 0) != (k.Packet.Bcast == 1) {
						t.Errorf("frame %d: target %d with bcast %d", p.Frame, p.Totem.Header.TargetNodeID, k.Packet.Bcast)
					}
				case knet.RxHeld:
					held++
					if !k.Packet.Fragmented() {
						t.Errorf("frame %d: unfragmented packet held", p.Frame)
					}
				default:
					t.Errorf("frame %d: %v (seq %d)", p.Frame, k.Rx, k.Packet.Seq)
				}
			}
			want := map[knet.PacketType]int{knet.TypeData: tc.data, knet.TypePing: tc.ping, knet.TypePong: tc.pong,
				knet.TypePMTUD: tc.pmtud, knet.TypePMTUDReply: tc.pmtudReply}
			for typ, n := range want {
				if kinds[typ] != n {
					t.Errorf("%s: %d, README %d", typ, kinds[typ], n)
				}
			}
			if w := [6]int{tc.orf, tc.mcast, tc.merge, tc.join, tc.commit, tc.holdc}; totem != w {
				t.Errorf("totem types %v, README %v (orf mcast merge join commit hold_cancel)", totem, w)
			}
			if frags != tc.fragments || (tc.maxUDP != 0 && maxUDP != tc.maxUDP) {
				t.Errorf("%d fragments, largest DATA %d bytes; want %d, %d", frags, maxUDP, tc.fragments, tc.maxUDP)
			}
			if held != heldWant {
				t.Errorf("%d fragments held, %d needed by the delivered messages: a message was left incomplete", held, heldWant)
			}
			if st.KnetMessages != msg {
				t.Errorf("stats count %d messages, %d delivered", st.KnetMessages, msg)
			}
		})
	}
}

// TestKnetCapturesAgreeWithCorosyncLogs: every ring change corosync logged during a knet
// capture is on the wire inside the knet DATA packets, with the logged members (the same
// checks as for the udp/udpu captures).
func TestKnetCapturesAgreeWithCorosyncLogs(t *testing.T) {
	for _, tc := range knetCounts {
		t.Run(tc.file, func(t *testing.T) {
			pkts, _ := readKnet(t, tc.file)
			evs := readEvents(t, filepath.Join(knetCapturesDir, strings.TrimSuffix(tc.file, ".pcap")+".events.txt"))
			multi := 0
			for _, ev := range evs {
				if len(ev.members) > 1 {
					multi++
					formedRing(t, pkts, ev.ring, ev.members)
				} else if s := ringSenders(pkts, ev.ring); len(s) > 0 && !slices.Equal(s, ev.members) {
					t.Errorf("singleton ring %s of node %d carried by %v", ringStr(ev.ring), ev.node, s)
				}
			}
			if multi == 0 && !strings.Contains(tc.file, "steady") {
				t.Errorf("no multi-node ring change parsed")
			}
		})
	}
}

// TestKnetFragmentsOfSteady: the README's two mcasts larger than the 1446-byte knet MTU
// (2008 and 2399 bytes from node 1) arrive as 1460+576 and 1460+967-byte packets and are
// reassembled at each receiver to the Totem mcast corosync sent.
func TestKnetFragmentsOfSteady(t *testing.T) {
	pkts, _ := readKnet(t, "knet-steady.pcap")
	var sizes []int
	for _, p := range pkts {
		if k := p.Knet; k != nil && k.Packet.Fragmented() && k.Rx == knet.RxDeliver {
			if p.Totem == nil || p.Totem.Header.Type != srp.TypeMcast || p.Totem.Header.NodeID != 1 {
				t.Errorf("frame %d: reassembled %v", p.Frame, p.Totem)
				continue
			}
			sizes = append(sizes, len(k.Message))
		}
	}
	// Each of the two messages goes to nodes 2 and 3.
	if want := []int{2008, 2008, 2399, 2399}; !slices.Equal(sizes, want) {
		t.Errorf("reassembled sizes %v, want %v", sizes, want)
	}
}

// TestKnetEncryptedWithoutOrWrongKey: without the key, every packet of the encrypted
// capture is reported (not dropped silently) as probably encrypted knet; with a wrong key,
// as not opening; none is mistaken for clear knet or Totem.
func TestKnetEncryptedWithoutOrWrongKey(t *testing.T) {
	path := filepath.Join(knetCapturesDir, "knet-aes256-formation.pcap")
	pkts, st, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var e *errKnetEncrypted
	for _, p := range pkts {
		if p.Err == nil || !errors.As(p.Err, &e) || e.keyed || p.Totem != nil {
			t.Fatalf("frame %d without key: err %v", p.Frame, p.Err)
		}
	}
	if st.Undecodable != len(pkts) || st.Knet != len(pkts) {
		t.Errorf("stats %+v", st)
	}
	key, _ := os.ReadFile(filepath.Join(knetCapturesDir, "knet-aes256.authkey"))
	key[0] ^= 0xff
	wrong, err := knet.NewCrypto(knet.CryptoConfig{Model: "nss", Cipher: knet.CipherAES256, Hash: knet.HashSHA256, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	pkts, _, err = ReadFileOptions(path, Options{KnetCrypto: wrong})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if !errors.As(p.Err, &e) || !e.keyed || !errors.Is(p.Err, knet.ErrDigest) {
			t.Fatalf("frame %d with a wrong key: err %v", p.Frame, p.Err)
		}
	}
}
