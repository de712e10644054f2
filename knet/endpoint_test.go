package knet

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// net3 is a deterministic network of knet endpoints (hosts 1..n, link L of host i at
// 10.(77+L).0.i:5405+L) with a fixed one-way delay, where a link can be cut.
type net3 struct {
	t     *testing.T
	eps   map[HostID]*Endpoint
	delay time.Duration
	cut   [MaxLink]bool
	now   time.Duration
	queue []wireDgram
	got   map[HostID][][]byte // messages delivered, per receiver
}

type wireDgram struct {
	at   time.Duration
	from netip.AddrPort
	to   netip.AddrPort
	link uint8
	data []byte
}

func linkAddr(h HostID, l uint8) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 77 + l, 0, byte(h)}), 5405+uint16(l))
}

func newNet(t *testing.T, n, links int, mode LinkMode, keys map[HostID][]byte) *net3 {
	w := &net3{t: t, eps: map[HostID]*Endpoint{}, delay: 100 * time.Microsecond, got: map[HostID][][]byte{}}
	for h := HostID(1); h <= HostID(n); h++ {
		cfg := EndpointConfig{Self: h, Mode: mode, Peers: map[HostID][]PeerLink{}}
		for p := HostID(1); p <= HostID(n); p++ {
			if p == h {
				continue
			}
			for l := 0; l < links; l++ {
				cfg.Peers[p] = append(cfg.Peers[p], PeerLink{Link: uint8(l), Addr: linkAddr(p, uint8(l)), Config: CorosyncLinkConfig(3650 * ms)})
			}
		}
		if key := keys[h]; key != nil {
			cfg.Keyring = NewKeyring(mustCrypto(t, key))
			cfg.Salt = rand.NewChaCha8([32]byte{byte(h)})
		}
		ep, err := NewEndpoint(cfg)
		if err != nil {
			t.Fatal(err)
		}
		w.eps[h] = ep
	}
	return w
}

// send queues what an endpoint returned.
func (w *net3) send(from HostID, ds []Datagram) {
	for _, d := range ds {
		if !w.cut[d.Link] {
			w.queue = append(w.queue, wireDgram{at: w.now + w.delay, from: linkAddr(from, d.Link), to: d.To, link: d.Link, data: bytes.Clone(d.Data)})
		}
	}
}

func (w *net3) run(until time.Duration) {
	for {
		next := until + 1
		for _, ep := range w.eps {
			next = min(next, ep.NextTick())
		}
		for _, d := range w.queue {
			next = min(next, d.at)
		}
		if next > until {
			w.now = until
			return
		}
		w.now = next
		for h := HostID(1); h <= HostID(len(w.eps)); h++ {
			if ep := w.eps[h]; ep.NextTick() == w.now {
				w.send(h, ep.Tick(w.now))
			}
		}
		var rest []wireDgram
		old := len(w.queue)
		for _, d := range w.queue[:old] {
			if d.at != w.now {
				rest = append(rest, d)
				continue
			}
			to := HostID(d.to.Addr().As4()[3])
			msgs, out := w.eps[to].Receive(w.now, d.link, d.from, d.data)
			for _, m := range msgs {
				w.got[to] = append(w.got[to], append([]byte{byte(m.From)}, m.Data...))
			}
			w.send(to, out)
		}
		// Replies queued while handling this instant were appended after the old queue.
		w.queue = append(rest, w.queue[old:]...)
	}
}

// broadcast sends msg from h to every reachable host and runs the network a little.
func (w *net3) broadcast(h HostID, msg []byte) {
	ds, err := w.eps[h].Send(w.now, msg, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.send(h, ds)
	w.run(w.now + 10*ms)
}

func TestEndpointsFormAndDeliver(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 256)
	for _, tc := range []struct {
		name  string
		mode  LinkMode
		links int
		keys  map[HostID][]byte
	}{
		{"clear passive one link", Passive, 1, nil},
		{"aes256 passive two links", Passive, 2, map[HostID][]byte{1: key, 2: key, 3: key}},
		{"aes256 active two links", Active, 2, map[HostID][]byte{1: key, 2: key, 3: key}},
		{"clear rr three links", RR, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newNet(t, 3, tc.links, tc.mode, tc.keys)
			w.run(3 * time.Second)
			for h, ep := range w.eps {
				for p := HostID(1); p <= 3; p++ {
					if p != h && !ep.Reachable(p) {
						t.Fatalf("host %d does not reach %d after 3 s", h, p)
					}
				}
				if ev := ep.Events(); len(ev) != 2*tc.links {
					t.Errorf("host %d: %d link events, want %d", h, len(ev), 2*tc.links)
				}
			}
			big := bytes.Repeat([]byte("totem"), 1000) // 5000 bytes: fragmented at the min MTU
			w.broadcast(1, []byte("join"))
			w.broadcast(2, big)
			ds, err := w.eps[3].Send(w.now, []byte("token"), []HostID{1})
			if err != nil {
				t.Fatal(err)
			}
			w.send(3, ds)
			w.run(w.now + 10*ms)
			want := map[HostID][]string{
				1: {"\x02" + string(big), "\x03token"},
				2: {"\x01join"},
				3: {"\x01join", "\x02" + string(big)},
			}
			for h, msgs := range want {
				if len(w.got[h]) != len(msgs) {
					t.Fatalf("host %d got %d messages, want %d", h, len(w.got[h]), len(msgs))
				}
				for i, m := range msgs {
					if string(w.got[h][i]) != m {
						t.Errorf("host %d message %d differs", h, i)
					}
				}
			}
			c := w.eps[1].Counters()
			if tc.mode == Active && c.Duplicate == 0 {
				t.Errorf("active mode over 2 links: no duplicates dropped: %+v", c)
			}
			if tc.mode != Active && c.Duplicate+c.Replay != 0 {
				t.Errorf("%v mode: %d duplicates, %d replays: every packet leaves on one link", tc.mode, c.Duplicate, c.Replay)
			}
			if tc.mode == Active && c.Replay != 0 {
				t.Errorf("active mode: %d copies counted as replays", c.Replay)
			}
			if c.Crypto+c.Malformed+c.UnknownHost+c.BadSource+c.Unreachable+c.Expired+c.BadFragment != 0 {
				t.Errorf("drops in a healthy network: %+v", c)
			}
		})
	}
}

// TestEndpointWrongKey: a node with another key never gets a link up to the others, never
// delivers or disturbs anything, and every one of its packets is counted as a crypto drop.
func TestEndpointWrongKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 256)
	w := newNet(t, 3, 1, Passive, map[HostID][]byte{1: key, 2: key, 3: bytes.Repeat([]byte{8}, 256)})
	w.run(5 * time.Second)
	if w.eps[1].Reachable(3) || w.eps[3].Reachable(1) || !w.eps[1].Reachable(2) {
		t.Fatal("wrong key reached, or right key did not")
	}
	w.broadcast(1, []byte("hello"))
	if len(w.got[3]) != 0 || len(w.got[2]) != 1 {
		t.Errorf("deliveries: host 2 %q, host 3 %q", w.got[2], w.got[3])
	}
	if c := w.eps[1].Counters(); c.Crypto == 0 || c.Delivered != 0 {
		t.Errorf("host 1 counters %+v", c)
	}
	if c := w.eps[3].Counters(); c.Crypto == 0 || c.Ping+c.Pong+c.Delivered != 0 {
		t.Errorf("host 3 counters %+v", c)
	}
}

// TestEndpointLinkCut: passive over two links, link 0 cut: it goes down on both sides,
// traffic continues on link 1; cutting both makes the host unreachable; healing brings
// everything back.
func TestEndpointLinkCut(t *testing.T) {
	w := newNet(t, 2, 2, Passive, nil)
	w.run(15 * time.Second)
	w.eps[1].Events()
	w.eps[2].Events()
	w.cut[0] = true
	w.run(20 * time.Second)
	for h, ep := range w.eps {
		ev := ep.Events()
		if len(ev) != 1 || ev[0].Up || ev[0].Link != 0 || !ev[0].Reachable {
			t.Fatalf("host %d after cutting link 0: %+v", h, ev)
		}
	}
	ds, _ := w.eps[1].Send(w.now, []byte("on link 1"), nil)
	if len(ds) != 1 || ds[0].Link != 1 {
		t.Fatalf("sent %+v", ds)
	}
	w.send(1, ds)
	w.run(w.now + 10*ms)
	if len(w.got[2]) != 1 {
		t.Fatal("not delivered over link 1")
	}
	w.cut[1] = true
	w.run(25 * time.Second)
	if w.eps[1].Reachable(2) {
		t.Fatal("reachable with both links cut")
	}
	if ds, _ := w.eps[1].Send(w.now, []byte("lost"), nil); len(ds) != 0 {
		t.Errorf("sent %d datagrams to an unreachable host", len(ds))
	}
	w.cut[0], w.cut[1] = false, false
	w.run(35 * time.Second)
	if !w.eps[1].Reachable(2) {
		t.Fatal("not reachable after healing")
	}
	w.broadcast(1, []byte("back"))
	if n := len(w.got[2]); n != 2 || string(w.got[2][1]) != "\x01back" {
		t.Errorf("after healing: %q", w.got[2])
	}
}

// TestEndpointRejects: datagrams from unknown hosts, wrong source addresses, garbage, and
// DATA from a host whose links are not up are dropped and counted, each in its own counter.
func TestEndpointRejects(t *testing.T) {
	w := newNet(t, 2, 1, Passive, nil)
	ep := w.eps[1]
	d := NewData(2, 1, true, 0, []byte("early"))
	data := d.AppendEncode(nil)
	ping := NewPing(2, 0, 0, 0, 0, true)
	stranger := NewPing(9, 0, 0, 0, 0, true)
	for _, tc := range []struct {
		from netip.AddrPort
		b    []byte
	}{
		{linkAddr(2, 0), data},                        // host 2 not reachable yet
		{linkAddr(3, 0), data},                        // not host 2's address
		{linkAddr(2, 0), stranger.AppendEncode(nil)},  // unknown host
		{linkAddr(2, 0), []byte{1, 0x99, 0, 2, 0, 0}}, // not knet
		{linkAddr(3, 0), ping.AppendEncode(nil)},      // ping from the wrong address
		{linkAddr(2, 0), []byte{0x70, 0xc0, 3, 0, 0}}, // bare Totem
	} {
		if msgs, out := ep.Receive(0, 0, tc.from, tc.b); len(msgs)+len(out) != 0 {
			t.Errorf("%x from %v: %d messages, %d replies", tc.b, tc.from, len(msgs), len(out))
		}
	}
	c := ep.Counters()
	if c.Unreachable != 1 || c.BadSource != 2 || c.UnknownHost != 1 || c.Malformed != 2 {
		t.Errorf("counters %+v", c)
	}
	// A ping from the right address is answered to the configured address (whatever port
	// it came from), on the link it names.
	_, out := ep.Receive(0, 0, netip.AddrPortFrom(linkAddr(2, 0).Addr(), 40000), ping.AppendEncode(nil))
	if len(out) != 1 || out[0].To != linkAddr(2, 0) || out[0].Link != 0 || out[0].Data[1] != byte(TypePong) {
		t.Errorf("pong %+v", out)
	}
	// Once host 2 is reachable, compressed DATA is refused and counted.
	w.run(3 * time.Second)
	z := NewData(2, 1, true, 0, []byte("lz4 bytes"))
	z.Compress = 2
	if msgs, _ := ep.Receive(w.now, 0, linkAddr(2, 0), z.AppendEncode(nil)); len(msgs) != 0 || ep.Counters().Compressed != 1 {
		t.Errorf("compressed DATA: %d messages, counters %+v", len(msgs), ep.Counters())
	}
	if _, err := ep.Send(0, nil, nil); err == nil {
		t.Error("empty message sent")
	}
	if _, err := NewEndpoint(EndpointConfig{Self: 1, Keyring: NewKeyring(mustCrypto(t, bytes.Repeat([]byte{1}, 128)))}); err == nil {
		t.Error("crypto without a salt source accepted")
	}
	if _, err := NewEndpoint(EndpointConfig{Self: 1, Peers: map[HostID][]PeerLink{2: {{Link: 0}, {Link: 0}}}}); err == nil {
		t.Error("link configured twice accepted")
	}
}

// TestEndpointPeerRestart: host 2 restarts (a new endpoint: its seq counter starts again
// from 1) while host 1 keeps running. Host 1 must deliver its new messages although their
// seq numbers were delivered before: the link going down resets host 1's receive state, and
// the restarted host's pings carry seq 0, which wipes it too.
func TestEndpointPeerRestart(t *testing.T) {
	w := newNet(t, 2, 1, Passive, nil)
	w.run(3 * time.Second)
	for i := range 5 {
		w.broadcast(2, []byte{byte('a' + i)})
	}
	if len(w.got[1]) != 5 {
		t.Fatalf("before the restart: %q", w.got[1])
	}
	// Host 2 dies: its link goes down at host 1 (socket error), then it comes back.
	w.eps[1].LinkError(w.now, 2, 0)
	w.queue = nil
	fresh := newNet(t, 2, 1, Passive, nil)
	w.eps[2] = fresh.eps[2]
	w.run(w.now + 4*time.Second)
	if !w.eps[1].Reachable(2) {
		t.Fatal("restarted host not reachable")
	}
	w.broadcast(2, []byte("new 1"))
	w.broadcast(2, []byte("new 2"))
	if n := len(w.got[1]); n != 7 || string(w.got[1][5]) != "\x02new 1" {
		t.Errorf("after the restart host 1 got %q", w.got[1][5:])
	}
}

// TestEndpointReceiveNoAllocs: a running endpoint receives DATA (whole and fragmented) and
// answers pings without allocating, encrypted.
func TestEndpointReceiveNoAllocs(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 256)
	w := newNet(t, 2, 1, Passive, map[HostID][]byte{1: key, 2: key})
	w.run(3 * time.Second)
	big := bytes.Repeat([]byte("x"), 3000)
	var wires [][]byte
	for _, m := range [][]byte{[]byte("token"), big} {
		ds, err := w.eps[2].Send(w.now, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			wires = append(wires, bytes.Clone(d.Data))
		}
	}
	ping := w.eps[2].keyring.Seal(nil, func() []byte { p := NewPing(2, 0, 3, 0, 0, true); return p.AppendEncode(nil) }(), &[SaltSize]byte{})
	ep, from := w.eps[1], linkAddr(2, 0)
	for _, b := range wires {
		ep.Receive(w.now, 0, from, b) // first delivery; the copies below are duplicates
	}
	if a := testing.AllocsPerRun(100, func() {
		for _, b := range wires {
			ep.Receive(w.now, 0, from, b)
		}
		ep.Receive(w.now, 0, from, ping)
	}); a != 0 {
		t.Errorf("%.1f allocations per round", a)
	}
	if c := ep.Counters(); c.Delivered != 2 || c.Replay == 0 || c.Duplicate != 0 {
		t.Errorf("counters %+v", c)
	}
}

// An Endpoint is a pure state machine: the same configuration gives the same output. Hosts
// are taken in id order, not the configuration map's (random) order, so a broadcast and a
// heartbeat emit their datagrams in one order and LinkStatus lists hosts by id. Found by the
// simulator (sim's knet scenarios traced twice differed).
func TestEndpointHostOrder(t *testing.T) {
	cfg := EndpointConfig{Self: 1, Peers: map[HostID][]PeerLink{}}
	for h := HostID(2); h <= 9; h++ {
		cfg.Peers[h] = []PeerLink{{Link: 0, Addr: linkAddr(h, 0), Config: CorosyncLinkConfig(3650 * ms)}}
	}
	for range 20 {
		ep, err := NewEndpoint(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := HostID(2)
		for _, st := range ep.LinkStatus() {
			if st.Host != want {
				t.Fatalf("LinkStatus hosts %+v, want 2..9 in order", ep.LinkStatus())
			}
			want++
		}
		for i, d := range ep.Tick(0) {
			if d.To != linkAddr(HostID(2+i), 0) {
				t.Fatalf("ping %d to %v, want %v", i, d.To, linkAddr(HostID(2+i), 0))
			}
		}
	}
}
