package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/internal/testenv"
	"github.com/gototem/gototem/knet"
)

// The knet suite of issue 15: gototem nodes in real corosync 3.1.7 knet rings (Debian's
// libknet 1.25), crypto off and aes256/sha256, one and two links. Gated like the mixed suite
// (GOTOTEM_INTEROP=0 skips it; under CI a missing corosync is a failure).

// knetKey is a fixed 256-byte authkey (corosync-keygen's size); knetOtherKey differs.
func knetKey(seed byte) []byte {
	k := make([]byte, 256)
	for i := range k {
		k[i] = byte(i*31) ^ seed
	}
	return k
}

var aes256 = KnetOptions{Cipher: "aes256", Hash: "sha256", Key: knetKey(0x5a)}

// knetCluster builds a knet cluster of the given engines with rings links.
func knetCluster(t *testing.T, k KnetOptions, rings int, es ...Engine) *Cluster {
	t.Helper()
	if os.Getenv(interopGate) == "0" {
		t.Skipf("%s=0: the mixed gototem/corosync suite is switched off", interopGate)
	}
	needCorosync(t)
	return newCluster(t, Options{Engines: es, Transport: "knet", Knet: k, Rings: rings, Gototem: buildGototem(t)})
}

// checkKnetLinks checks corosync-cfgtool -s on the real nodes among ids and `gototem
// status` on the gototem ones: on link, every other node of ids shows "connected" except
// those in down, which must not.
func checkKnetLinks(t *testing.T, c *Cluster, ids []int, link int, down ...int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var bad []string
		for _, id := range ids {
			n := c.Node(id)
			ls, err := n.LinkStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, other := range ids {
				if other == id {
					continue
				}
				st := ls[link][other]
				want := !slices.Contains(down, other) && !slices.Contains(down, id)
				if (st == "connected") != want {
					bad = append(bad, fmt.Sprintf("node %d (%s) link %d node %d: %q", id, n.Engine, link, other, st))
				}
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link status: %v", bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Two corosync + one gototem over knet, crypto off and aes256/sha256: one ring; corosync-
// cfgtool -s on both real nodes shows the gototem node's link connected and `gototem status`
// shows theirs; votequorum counts 3 votes everywhere; kill -9 and restart of the gototem
// node, kill -9 and restart of a corosync node, and cutting the gototem node off and healing
// each re-form the ring as corosync does; CPG messages from C clients and from gototem are
// delivered in one order everywhere.
func TestKnetMixedRing(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    KnetOptions
		mtu  int // knet's data MTU on the lab's 1500-byte links (the captures' values)
	}{{"clear", KnetOptions{}, 1446}, {"aes256", aes256, 1397}} {
		t.Run(tc.name, func(t *testing.T) {
			c := knetCluster(t, tc.k, 1, Corosync, Corosync, Gototem)
			ctx := context.Background()
			r := formRing(t, c)
			checkKnetLinks(t, c, ids(1, 3), 0)
			// PMTUd: the 65535-byte probe is refused by the kernel (EMSGSIZE), the
			// 1500-byte one answered by the real nodes: gototem settles where libknet does.
			waitLogWithin(t, c.Node(3), fmt.Sprintf("from=%d to=%d", map[bool]int{false: 482, true: 421}[tc.k.crypto()], tc.mtu), 0, 20*time.Second)
			sameQuorum(t, c, ids(1, 3), true, 3)
			compareKnetCfgtool(t, c, 3, 2, 1)

			bin, err := BuildCPGClient(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			checkCPGOrder(t, c, bin, "knet-"+tc.name, 40, 20)

			r = killRestart(t, c, r, 3, ids(1, 3)) // the gototem node
			checkKnetLinks(t, c, ids(1, 3), 0)
			r = killRestart(t, c, r, 2, ids(1, 3)) // a corosync node

			if err := c.Lab().CutLink(3, 0); err != nil {
				t.Fatal(err)
			}
			r = changeTo(t, c, r, []int{1, 2}, "cut gototem node 3 off")
			if _, err := c.WaitRing(ctx, []int{3}, []int{3}, 30*time.Second); err != nil {
				t.Fatalf("isolated node 3: %v", err)
			}
			sameQuorum(t, c, []int{1, 2}, true, 2)
			sameQuorum(t, c, []int{3}, false, 1)
			checkKnetLinks(t, c, ids(1, 3), 0, 3)
			if err := c.Lab().HealLink(3, 0); err != nil {
				t.Fatal(err)
			}
			changeTo(t, c, r, ids(1, 3), "heal node 3")
			sameQuorum(t, c, ids(1, 3), true, 3)
			checkKnetLinks(t, c, ids(1, 3), 0)
		})
	}
}

// A gototem node whose authkey differs never joins and never disturbs the ring: the two real
// nodes form and keep one ring (its id does not move), their knet links to node 3 never come
// up, and node 3 stays alone.
func TestKnetWrongKey(t *testing.T) {
	k := aes256
	k.KeyOf = func(id int) []byte {
		if id == 3 {
			return knetKey(0x33)
		}
		return knetKey(0x5a)
	}
	c := knetCluster(t, k, 1, Corosync, Corosync, Gototem)
	ctx := context.Background()
	if err := c.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := c.WaitRing(ctx, []int{1, 2}, []int{1, 2}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitRing(ctx, []int{3}, []int{3}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // several knet ping intervals and token rotations
	r2, err := c.WaitRing(ctx, []int{1, 2}, []int{1, 2}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r2 != r {
		t.Errorf("the real nodes' ring moved from %v to %v while the wrong-key node ran", r, r2)
	}
	for _, id := range []int{1, 2} {
		ls, err := c.Node(id).LinkStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ls[0][3] == "connected" {
			t.Errorf("corosync node %d shows its link to the wrong-key node 3 connected", id)
		}
	}
	t.Logf("MEASURED: wrong-key node 3 kept out; ring %v unchanged for 5 s", r)
}

// Two knet links, passive then active, two corosync + one gototem: both links connected
// everywhere; cutting link 0 of the gototem node shows that link down on both sides (the
// real nodes' corosync-cfgtool -s and `gototem status`) while link 1 stays connected, and
// the three nodes keep (or, in passive mode, re-form, as corosync does: knet switches links
// more slowly than the token) one ring that carries CPG traffic; healing brings link 0 back;
// cutting both links too is a token loss that leaves node 3 alone.
func TestKnetTwoLinks(t *testing.T) {
	for _, mode := range []string{"passive", "active"} {
		t.Run(mode, func(t *testing.T) {
			c := knetCluster(t, KnetOptions{LinkMode: mode}, 2, Corosync, Corosync, Gototem)
			ctx := context.Background()
			r := formRing(t, c)
			checkKnetLinks(t, c, ids(1, 3), 0)
			checkKnetLinks(t, c, ids(1, 3), 1)
			bin, err := BuildCPGClient(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}

			if err := c.Lab().CutLink(3, 0); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			checkKnetLinks(t, c, ids(1, 3), 0, 3)
			t.Logf("MEASURED: %s: link 0 of node 3 down on every side %v after the cut", mode, time.Since(start).Round(time.Millisecond))
			checkKnetLinks(t, c, ids(1, 3), 1)
			r2, err := c.WaitRing(ctx, ids(1, 3), ids(1, 3), 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("MEASURED: %s: ring %v -> %v across the link-0 cut (same ring: no token loss: %v)", mode, r, r2, r == r2)
			if mode == "active" && r2 != r {
				// active sends on both links: losing one loses no token, for corosync too
				t.Errorf("active: the link-0 cut changed the ring %v -> %v", r, r2)
			}
			if err := c.WaitSynced(ctx, c.IDs(Corosync), r2, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			checkCPGOrder(t, c, bin, "knet2-"+mode, 20, 10)

			if err := c.Lab().HealLink(3, 0); err != nil {
				t.Fatal(err)
			}
			checkKnetLinks(t, c, ids(1, 3), 0)
			r3, err := c.WaitRing(ctx, ids(1, 3), ids(1, 3), 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}

			for _, l := range []int{0, 1} {
				if err := c.Lab().CutLink(3, l); err != nil {
					t.Fatal(err)
				}
			}
			changeTo(t, c, r3, []int{1, 2}, "cut both links of node 3")
			if _, err := c.WaitRing(ctx, []int{3}, []int{3}, 30*time.Second); err != nil {
				t.Fatalf("node 3 with both links cut: %v", err)
			}
		})
	}
}

// debianConf is Debian's default /etc/corosync/corosync.conf (package corosync): no
// transport line, so corosync 3's default, knet.
const debianConf = "/etc/corosync/corosync.conf"

// section returns the top-level section name { ... } of a corosync.conf, verbatim.
func section(text, name string) string {
	var out []string
	depth, in := 0, false
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if depth == 0 && !in && strings.HasPrefix(t, name) && strings.HasSuffix(t, "{") &&
			strings.TrimSpace(strings.TrimSuffix(t, "{")) == name {
			in = true
		}
		if in {
			out = append(out, line)
		}
		if strings.HasSuffix(t, "{") {
			depth++
		}
		if t == "}" {
			depth--
			if depth == 0 && in {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// Three gototem nodes run the totem and quorum sections of Debian's default corosync.conf
// unchanged (no transport line: knet); only the nodelist (three lab nodes instead of
// 127.0.0.1), the log file and the state directory are the lab's. They form one ring over
// knet with every link connected, count 3 votes, and re-form after a kill -9.
func TestKnetGototemDebianDefault(t *testing.T) {
	raw, err := os.ReadFile(debianConf)
	testenv.Need(t, "Debian's default "+debianConf+" (package corosync)", err)
	text := string(raw)
	totemSec, quorumSec := section(text, "totem"), section(text, "quorum")
	if totemSec == "" || strings.Contains(totemSec, "transport:") {
		t.Fatalf("%s: want a totem section without a transport line, got %q", debianConf, totemSec)
	}
	c := gototemCluster(t, Options{Engines: allGototem(3), Transport: "knet"})
	for _, n := range c.Nodes() {
		var b strings.Builder
		fmt.Fprintf(&b, "%s\n%s\nlogging {\n\tto_stderr: no\n\tto_logfile: yes\n\tlogfile: %s\n\tto_syslog: no\n\tdebug: on\n}\n", totemSec, quorumSec, n.Log)
		b.WriteString("nodelist {\n")
		for _, m := range c.Nodes() {
			fmt.Fprintf(&b, "\tnode {\n\t\tname: node%d\n\t\tnodeid: %d\n\t\tring0_addr: %s\n\t}\n", m.ID, m.ID, c.Lab().Addr(m.ID, 0))
		}
		fmt.Fprintf(&b, "}\nsystem {\n\tstate_dir: %s\n}\n", filepath.Join(n.Dir, "lib"))
		if err := os.WriteFile(n.Conf, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	r := formRing(t, c)
	out, err := c.Node(1).Gototem(ctx, "status")
	if err != nil || !strings.Contains(string(out), "transport knet") {
		t.Fatalf("gototem status: %v: %s", err, out)
	}
	checkKnetLinks(t, c, ids(1, 3), 0)
	sameQuorum(t, c, ids(1, 3), true, 3)
	if err := c.Node(3).Kill(); err != nil {
		t.Fatal(err)
	}
	changeTo(t, c, r, []int{1, 2}, "kill -9 node 3")
}

// Five nodes, three corosync and two gototem, aes256/sha256 (about 20 s, in CI: issue 15 asks
// for 3 and 5 nodes there): one ring, every link connected on every side, 5 votes
// everywhere; kill -9 of a gototem node and of a corosync node re-forms a 3-node ring that
// stays quorate.
func TestKnetMixedFive(t *testing.T) {
	c := knetCluster(t, aes256, 1, Corosync, Gototem, Corosync, Gototem, Corosync)
	r := formRing(t, c)
	checkKnetLinks(t, c, ids(1, 5), 0)
	sameQuorum(t, c, ids(1, 5), true, 5)
	if err := c.Node(4).Kill(); err != nil {
		t.Fatal(err)
	}
	r = changeTo(t, c, r, []int{1, 2, 3, 5}, "kill -9 gototem node 4")
	if err := c.Node(3).Kill(); err != nil {
		t.Fatal(err)
	}
	changeTo(t, c, r, []int{1, 2, 5}, "kill -9 corosync node 3")
	sameQuorum(t, c, []int{1, 2, 5}, true, 3)
}

// compareKnetCfgtool runs Debian's corosync-cfgtool -s and -n unchanged on the gototem node
// ours and on the corosync node real, and compares what both say about the third node peer
// (its link to it: state, addresses, MTU) once each node's own address is named SELF.
func compareKnetCfgtool(t *testing.T, c *Cluster, ours, real, peer int) {
	t.Helper()
	ctx := context.Background()
	say := func(id int, args ...string) string {
		out, err := c.Node(id).Tool(ctx, "corosync-cfgtool", args...)
		if err != nil {
			t.Fatalf("corosync-cfgtool %v on node %d: %v: %s", args, id, err, out)
		}
		s := strings.ReplaceAll(string(out), c.Lab().Addr(id, 0).String(), "SELF")
		return regexp.MustCompile(`(?m)^Local node ID \d+,`).ReplaceAllString(s, "Local node ID N,")
	}
	block := func(out string) string { // -n: the lines of node peer
		var b strings.Builder
		in := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "nodeid:") {
				in = strings.HasPrefix(l, fmt.Sprintf("nodeid: %d ", peer))
			}
			if in && l != "" {
				b.WriteString(l + "\n")
			}
		}
		return b.String()
	}
	deadline := time.Now().Add(20 * time.Second) // both sides' PMTUd settle on their own
	for {
		g, w := block(say(ours, "-n")), block(say(real, "-n"))
		if g == w && g != "" {
			t.Logf("corosync-cfgtool -n, node %d as seen from gototem and from corosync:\n%s", peer, g)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("corosync-cfgtool -n on the gototem node says of node %d:\n%s\non the corosync node:\n%s", peer, g, w)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// -s: the node cells of nodes both list as peers, and the link header.
	g, w := say(ours, "-s"), say(real, "-s")
	for _, want := range []string{"Local node ID N, transport knet\nLINK ID 0 udp\n", fmt.Sprintf("nodeid: %10d:\tconnected\n", peer)} {
		if !strings.Contains(g, want) || !strings.Contains(w, want) {
			t.Fatalf("corosync-cfgtool -s: want %q on both;\ngototem node:\n%s\ncorosync node:\n%s", want, g, w)
		}
	}
}

// Tampered and replayed encrypted knet packets over the real transport (issue 15): three
// gototem daemons on aes256/sha256. A genuine DATA packet node 1 sent to node 3 is captured
// in node 3's namespace (decrypted with the cluster key only to pick a DATA packet, not a
// ping); an attacker socket in node 1's namespace, on node 1's address (libknet checks the
// source address, not the port), sends it again, and sends copies with one byte flipped.
// The copies are dropped as authentication failures on nodes 2 and 3 and the replays as
// replays on node 3, both counted in `gototem status` DROPS (stats.gototem.drops.*), and
// the ring keeps its id.
func TestKnetTamperedReplayed(t *testing.T) {
	c := knetCluster(t, aes256, 1, Gototem, Gototem, Gototem)
	r := formRing(t, c)
	ctx := context.Background()
	lab := c.Lab()
	kc, err := knet.NewCrypto(knet.CryptoConfig{Model: "nss", Cipher: knet.CipherAES256, Hash: knet.HashSHA256, Key: aes256.Key})
	if err != nil {
		t.Fatal(err)
	}
	atk, err := udpIn(lab.NS(1), netip.AddrPortFrom(lab.Addr(1, 0), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer atk.Close()
	sealed, _, err := sniffIn(lab.NS(3), atkPort, 10*time.Second, func(src netip.Addr, p []byte) bool {
		plain, err := kc.Open(nil, p)
		var k knet.Packet
		return err == nil && src == lab.Addr(1, 0) && k.Decode(plain) == nil && k.Type == knet.TypeData
	})
	if err != nil {
		t.Fatal(err)
	}
	tampered := slices.Clone(sealed)
	tampered[len(tampered)/2] ^= 0x20
	for _, tc := range []struct {
		name, counter string
		victims       []int
		d             []byte
	}{
		{"tampered", "auth_failure", []int{2, 3}, tampered},
		{"replayed", "replay", []int{3}, sealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dropsOn(ctx, t, c, tc.counter, tc.victims)
			if err := sendTo(c, atk, tc.victims, 50, tc.d); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			checkDropsGrew(ctx, t, c, tc.counter, before, 50) // every datagram is counted
		})
	}
	r2, err := c.WaitRing(ctx, ids(1, 3), ids(1, 3), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r2 != r {
		t.Errorf("the ring moved from %v to %v under the attack", r, r2)
	}
}

// Runtime re-keying of a mixed knet ring (issue 15): two corosync 3.1.7 nodes and one gototem
// node on aes256/sha256 with key A; every node's authkey is replaced by key B and
// corosync-cfgtool -R runs on a corosync node. corosync's cfg reload re-reads the key, and
// every node, gototem included, stages B, activates it on its own SAFE ACTIVATE and clears
// A at CLEANUP: the ring keeps its id, CPG works across it, corosync logs the
// reconfiguration on index 2, and a gototem node restarted with key A no longer joins
// (the ring is on B) while with key B it does.
func TestKnetCryptoReload(t *testing.T) {
	c := knetCluster(t, aes256, 1, Corosync, Corosync, Gototem)
	ctx := context.Background()
	r := formRing(t, c)
	keyB := knetKey(0x77)
	for _, n := range c.Nodes() {
		if err := os.Chmod(c.keyPath(n.ID), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.keyPath(n.ID), keyB, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.Node(1).Tool(ctx, "corosync-cfgtool", "-R"); err != nil {
		t.Fatalf("corosync-cfgtool -R: %v: %s", err, out)
	}
	// Each corosync node shows the switch by its CLEANUP on the new index. Not by its info
	// line "kronosnet crypto reconfigured on index 2": Debian's 3.1.7-1+deb12u2 (libknet
	// 1.25) left that line, and the debug "Configuring crypto ... on index 2" before it, out of
	// node 2's log in each of three runs on 2026-12-03 (node 1 had both), though libknet's own
	// lines show node 2 loading the new key and both phases run on index 2. libqb's log thread
	// writes a queued line only to the targets its callsite is enabled for when it gets to the
	// line, and the reload re-applies the logging filters meanwhile (reloadsDelivered has the
	// same loss of cfg's "Config reload requested" line).
	for _, id := range []int{1, 2} {
		waitLogWithin(t, c.Node(id), "totemknet_crypto_reconfigure_phase 2, index=2", 0, 20*time.Second)
	}
	waitLogWithin(t, c.Node(3), "kronosnet crypto reconfigured on index 2", 0, 20*time.Second)
	time.Sleep(3 * time.Second) // both phases and a few token rotations on B alone
	r2, err := c.WaitRing(ctx, ids(1, 3), ids(1, 3), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r2 != r {
		t.Errorf("the ring moved from %v to %v during the re-keying", r, r2)
	}
	bin, err := BuildCPGClient(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	checkCPGOrder(t, c, bin, "knet-rekeyed", 20, 10)
	t.Logf("MEASURED: mixed ring re-keyed A -> B by corosync-cfgtool -R with ring %v unchanged", r2)

	// The ring runs B only: node 3 back with key A stays alone; with B it joins.
	if err := c.Node(3).Kill(); err != nil {
		t.Fatal(err)
	}
	r = changeTo(t, c, r2, []int{1, 2}, "kill -9 gototem node 3")
	restart := func(key []byte) {
		if err := os.Chmod(c.keyPath(3), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.keyPath(3), key, 0o400); err != nil {
			t.Fatal(err)
		}
		if err := c.Node(3).Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	restart(aes256.Key)
	if _, err := c.WaitRing(ctx, []int{3}, []int{3}, 30*time.Second); err != nil {
		t.Fatalf("node 3 with the old key: %v", err)
	}
	time.Sleep(3 * time.Second)
	if r3, err := c.WaitRing(ctx, []int{1, 2}, []int{1, 2}, 5*time.Second); err != nil || r3 != r {
		t.Fatalf("the re-keyed ring with node 3 on the old key: %v, %v (was %v)", r3, err, r)
	}
	if err := c.Node(3).Kill(); err != nil {
		t.Fatal(err)
	}
	restart(keyB)
	changeTo(t, c, r, ids(1, 3), "node 3 back with key B")
}
