package knet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestMTUFigures(t *testing.T) {
	aes := aes256sha256(t, captureKey(t))
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		// The README's figures, read from the captures and corosync's logs.
		{"min data MTU, no crypto", MinDataMTU(nil), 482},
		{"min data MTU, aes256/sha256", MinDataMTU(aes), 421},
		{"1500-byte link, no crypto", UDPDataMTU(nil, 1500, false), 1446},
		{"1500-byte link, aes256/sha256", UDPDataMTU(aes, 1500, false), 1397},
		{"1500-byte IPv6 link, no crypto", UDPDataMTU(nil, 1500, true), 1426},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		c           *Crypto
		plain, wire int
	}{{nil, 1472, 1472}, {aes, 1423, 1472}} {
		p, err := NewPMTUDProbe(1, 0, tc.c, 1500, false)
		if err != nil {
			t.Fatal(err)
		}
		b := p.AppendEncode(nil)
		wire := len(b)
		if tc.c != nil {
			wire = len(tc.c.Seal(nil, b, &[SaltSize]byte{}))
		}
		if p.Size != 1500 || len(b) != tc.plain || wire != tc.wire {
			t.Errorf("probe: size %d, plaintext %d, UDP payload %d; want 1500, %d, %d", p.Size, len(b), wire, tc.plain, tc.wire)
		}
	}
	if _, err := NewPMTUDProbe(1, 0, nil, 40, false); err == nil {
		t.Error("a 40-byte probe built")
	}
}

func TestTxSend(t *testing.T) {
	tx := Tx{Self: 3}
	msg := message(1, 1000)
	pkts, _, err := tx.Send(nil, msg, 482, true, 0)
	if err != nil || len(pkts) != 3 || tx.Seq() != 1 {
		t.Fatalf("%d packets, seq %d, %v", len(pkts), tx.Seq(), err)
	}
	for i, p := range pkts {
		if p.Seq != 1 || p.FragNum != 3 || int(p.FragSeq) != i+1 || p.Bcast != 1 || p.Host != 3 {
			t.Errorf("fragment %d: %+v", i+1, p)
		}
	}
	if len(pkts[2].Data) != 1000-2*482 {
		t.Errorf("last fragment %d bytes", len(pkts[2].Data))
	}
	pkts, _, _ = tx.Send(pkts[:0], msg[:482], 482, false, 0)
	if len(pkts) != 1 || pkts[0].FragNum != 1 || pkts[0].FragSeq != 0 || pkts[0].Seq != 2 || pkts[0].Bcast != 0 {
		t.Errorf("unfragmented: %+v", pkts)
	}
	// The counter skips 0 on wrap, and asks for forced pings every SEQ_MAX/8 messages.
	tx.SetSeq(65535)
	if pkts, _, _ = tx.Send(pkts[:0], msg[:1], 482, true, 0); pkts[0].Seq != 1 {
		t.Errorf("after 65535: seq %d", pkts[0].Seq)
	}
	forced := 0
	for range 3 * 8191 {
		if _, f, _ := tx.Send(nil, msg[:1], 482, true, 0); f {
			forced++
		}
	}
	if forced != 3 {
		t.Errorf("%d forced pings in 3 x 8191 messages", forced)
	}
	for _, tc := range []struct {
		msg []byte
		mtu int
		err error
	}{{nil, 482, ErrMessageSize}, {make([]byte, MaxPacketSize+1), 1446, ErrMessageSize}, {msg, 0, ErrMTU}, {msg, 3, ErrMTU}} {
		if _, _, err := tx.Send(nil, tc.msg, tc.mtu, true, 0); !errors.Is(err, tc.err) {
			t.Errorf("len %d mtu %d: %v", len(tc.msg), tc.mtu, err)
		}
	}
}

type dgram struct {
	src, dst netip.Addr
	b        []byte
}

func datagrams(t testing.TB, name string) []dgram {
	t.Helper()
	f, err := os.Open(filepath.Join(capturesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []dgram
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		u, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || u == nil {
			t.Fatalf("%s: not IPv4/UDP", name)
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
		out = append(out, dgram{src, dst, u.Payload})
	}
}

// TestTxReproducesCorosync: every DATA packet real corosync sent is what Tx.Send makes of
// the message it carries (reassembled at its receiver), byte for byte: the same seq, one
// counter per sender over all destinations (+1 per message, a broadcast's copies sharing
// it), the same fragment boundaries at the data MTU in force (482/421 before PMTUd, 1446
// after), the same header fields. And every PMTUd probe is NewPMTUDProbe's.
func TestTxReproducesCorosync(t *testing.T) {
	for _, name := range []string{"knet-formation.pcap", "knet-join.pcap", "knet-leave-kill.pcap", "knet-steady.pcap", "knet-aes256-formation.pcap"} {
		t.Run(name, func(t *testing.T) {
			var c *Crypto
			if name == "knet-aes256-formation.pcap" {
				c = aes256sha256(t, captureKey(t))
			}
			type flow struct {
				host HostID
				dst  netip.Addr
			}
			rx := map[flow]*HostRx{}
			held := map[flow][][]byte{}    // captured packets of the message being reassembled
			lastSeq := map[HostID]uint16{} // the sender's counter as seen so far
			messages, probes, gaps := 0, 0, 0
			for i, d := range datagrams(t, name) {
				plain := d.b
				if c != nil {
					var err error
					if plain, err = c.Open(nil, d.b); err != nil {
						t.Fatal(err)
					}
				}
				var p Packet
				if err := p.Decode(plain); err != nil {
					t.Fatal(err)
				}
				if p.Type == TypePMTUD {
					probes++
					want, err := NewPMTUDProbe(p.Host, p.Link, c, int(p.Size), false)
					if err != nil || !bytes.Equal(want.AppendEncode(nil), plain) {
						t.Errorf("packet %d: PMTUd probe of %d bytes differs from NewPMTUDProbe's (%v)", i+1, p.Size, err)
					}
				}
				if p.Type != TypeData {
					continue
				}
				if last, ok := lastSeq[p.Host]; ok && p.Seq != last && p.Seq != last+1 {
					if d := p.Seq - last; d > 1000 {
						t.Errorf("packet %d: host %d seq %d after %d", i+1, p.Host, p.Seq, last)
					}
					gaps++
				}
				lastSeq[p.Host] = p.Seq
				f := flow{p.Host, d.dst}
				if rx[f] == nil {
					rx[f] = NewHostRx(0)
				}
				held[f] = append(held[f], plain)
				msg, r := rx[f].Data(&p)
				if r == RxHeld {
					continue
				}
				if r != RxDeliver {
					t.Fatalf("packet %d: %v", i+1, r)
				}
				messages++
				sent := held[f]
				held[f] = nil
				var first Packet
				first.Decode(sent[0])
				mtu := MaxPacketSize
				if first.Fragmented() {
					mtu = len(first.Data)
					if mtu != MinDataMTU(c) && mtu != UDPDataMTU(c, 1500, false) {
						t.Errorf("packet %d: fragmented at %d bytes", i+1, mtu)
					}
				}
				tx := Tx{Self: p.Host}
				tx.SetSeq(p.Seq - 1)
				if p.Seq == 1 {
					tx.SetSeq(65535)
				}
				pkts, _, err := tx.Send(nil, msg, mtu, p.Bcast == 1, p.Channel)
				if err != nil {
					t.Fatal(err)
				}
				if len(pkts) != len(sent) {
					t.Fatalf("packet %d: %d packets, corosync sent %d", i+1, len(pkts), len(sent))
				}
				for k := range pkts {
					// Fragments travel in order in these captures; compare each to its own.
					var q Packet
					q.Decode(sent[k])
					got := pkts[q.FragSeq-min(q.FragSeq, 1)].AppendEncode(nil)
					if !bytes.Equal(got, sent[k]) {
						t.Fatalf("packet %d: fragment %d/%d differs:\n got %s\nwant %s", i+1, q.FragSeq, q.FragNum, head(got), head(sent[k]))
					}
				}
			}
			if messages == 0 {
				t.Error("no messages")
			}
			// The sender's counter never skips a number on the wire, except where the
			// capture itself lost packets: knet-join has no traffic between 5.26 and
			// 5.96 s (the ORF token_seq jumps 0x7 -> 0x81, every node's seq by ~47), and
			// knet-steady's busiest second loses bursts the same way (token_seq jumps
			// too). Pinned so that a new gap is looked at.
			if want := map[string]int{"knet-join.pcap": 3, "knet-steady.pcap": 16}[name]; gaps != want {
				t.Errorf("%d seq gaps, want %d", gaps, want)
			}
			t.Logf("%d messages re-sent byte-exact, %d probes", messages, probes)
		})
	}
}

func head(b []byte) string { return fmt.Sprintf("%x…(%d)", b[:min(len(b), DataHeaderSize)], len(b)) }
