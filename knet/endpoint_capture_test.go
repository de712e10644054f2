package knet

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// TestEndpointAsNode2 puts an Endpoint in node 2's place in real corosync traffic: it gets
// every datagram the capture shows arriving at 10.77.0.2, in order. It must answer each ping
// with the pong real node 2 sent (the same plaintext), bring its links up from the pongs
// real node 2 received, and then deliver every message sent to node 2 - none refused as
// unreachable, wrongly addressed or undecryptable.
func TestEndpointAsNode2(t *testing.T) {
	for _, name := range []string{"knet-formation", "knet-aes256-formation"} {
		t.Run(name, func(t *testing.T) {
			var c *Crypto
			cfg := EndpointConfig{Self: 2, Mode: Passive, Salt: zeroReader{}, Peers: map[HostID][]PeerLink{}}
			if name == "knet-aes256-formation" {
				c = aes256sha256(t, captureKey(t))
				cfg.Keyring = NewKeyring(c)
			}
			addr := func(h HostID) netip.AddrPort {
				return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 77, 0, byte(h)}), 5405)
			}
			for _, h := range []HostID{1, 3} {
				cfg.Peers[h] = []PeerLink{{Link: 0, Addr: addr(h), Config: CorosyncLinkConfig(3650 * ms)}}
			}
			ep, err := NewEndpoint(cfg)
			if err != nil {
				t.Fatal(err)
			}
			open := func(b []byte) []byte {
				if c == nil {
					return b
				}
				p, err := c.Open(nil, b)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			type stamp struct {
				host      HostID
				sec, nsec int64
			}
			dgs, times := datagrams(t, name+".pcap"), pcapTimes(t, name+".pcap")
			pingAt := map[stamp]time.Time{}   // node 2's pings
			realPong := map[stamp][]byte{}    // node 2's pongs, by the ping they answer
			wantMsgs := map[HostID][][]byte{} // messages to node 2, by sender
			rx := map[HostID]*HostRx{1: NewHostRx(0), 3: NewHostRx(0)}
			for i, d := range dgs {
				var p Packet
				plain := open(d.b)
				if err := p.Decode(plain); err != nil {
					t.Fatal(err)
				}
				switch {
				case p.Type == TypePing && p.Host == 2:
					pingAt[stamp{2, p.TimeSec, p.TimeNsec}] = times[i]
				case p.Type == TypePong && p.Host == 2:
					realPong[stamp{HostID(d.dst.As4()[3]), p.TimeSec, p.TimeNsec}] = bytes.Clone(plain)
				case p.Type == TypeData && d.dst == addr(2).Addr():
					if m, r := rx[p.Host].Data(&p); r == RxDeliver {
						wantMsgs[p.Host] = append(wantMsgs[p.Host], bytes.Clone(m))
					}
				}
			}
			var now time.Duration
			got := map[HostID][][]byte{}
			pongs := 0
			for i, d := range dgs {
				if d.dst != addr(2).Addr() {
					continue
				}
				var p Packet
				p.Decode(open(d.b))
				if p.Type == TypePong {
					// Node 2's clock at this pong: its ping's time plus the round trip seen.
					s := stamp{2, p.TimeSec, p.TimeNsec}
					now = max(now, time.Duration(p.TimeSec)*time.Second+time.Duration(p.TimeNsec)+times[i].Sub(pingAt[s]))
				}
				msgs, out := ep.Receive(now, 0, netip.AddrPortFrom(d.src, 5405), d.b)
				for _, m := range msgs {
					got[m.From] = append(got[m.From], bytes.Clone(m.Data))
				}
				if p.Type == TypePing {
					want := realPong[stamp{p.Host, p.TimeSec, p.TimeNsec}]
					if len(out) != 1 || out[0].To != addr(p.Host) || !bytes.Equal(open(out[0].Data), want) {
						t.Fatalf("datagram %d: ping from %d answered with %d datagrams, not node 2's pong", i+1, p.Host, len(out))
					}
					pongs++
				}
			}
			for _, h := range []HostID{1, 3} {
				if len(got[h]) != len(wantMsgs[h]) || len(got[h]) == 0 {
					t.Errorf("from %d: %d messages delivered, %d sent to node 2", h, len(got[h]), len(wantMsgs[h]))
					continue
				}
				for k := range got[h] {
					if !bytes.Equal(got[h][k], wantMsgs[h][k]) {
						t.Errorf("from %d: message %d differs", h, k)
					}
				}
			}
			cn := ep.Counters()
			if cn.Crypto+cn.Malformed+cn.UnknownHost+cn.BadSource+cn.Unreachable+cn.Duplicate+cn.Replay+cn.PongIgnored != 0 || pongs == 0 {
				t.Errorf("counters %+v, %d pings answered", cn, pongs)
			}
			if !ep.Reachable(1) || !ep.Reachable(3) {
				t.Error("links not up at the end")
			}
		})
	}
}
