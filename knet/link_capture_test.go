package knet

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// logLinkUp reads the "[KNET ] rx: host: H link: L is up" lines of each node's log in an
// events file: node -> "H/L" -> time.
func logLinkUp(t *testing.T, name string) map[int]map[string]time.Time {
	t.Helper()
	f, err := os.Open(filepath.Join(capturesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	node := regexp.MustCompile(`^## node (\d+)`)
	up := regexp.MustCompile(`^(\w{3} \d\d \d\d:\d\d:\d\d\.\d{3}) .*\[KNET  \] rx: host: (\d+) link: (\d+) is up`)
	out := map[int]map[string]time.Time{}
	cur := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := node.FindStringSubmatch(sc.Text()); m != nil {
			cur, _ = strconv.Atoi(m[1])
			out[cur] = map[string]time.Time{}
		} else if m := up.FindStringSubmatch(sc.Text()); m != nil && cur != 0 {
			// The lab's logs and pcaps share the machine's clock (UTC, December 2026).
			at, err := time.Parse("Jan 02 15:04:05.000 2006", m[1]+" 2026")
			if err != nil {
				t.Fatal(err)
			}
			out[cur][m[2]+"/"+m[3]] = at
		}
	}
	return out
}

// pcapTimes returns the capture time of each UDP datagram of a capture, in file order.
func pcapTimes(t *testing.T, name string) []time.Time {
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
	var out []time.Time
	for {
		_, ci, err := r.ReadPacketData()
		if err != nil {
			return out
		}
		out = append(out, ci.Timestamp)
	}
}

// TestLinksAgreeWithCorosync replays the real PONGs each node received through a Links
// configured as corosync configures knet (token 3650 ms: pong count 2, ping timeout 1825
// ms): every link corosync's log declares up comes up here too, on the same pong, within
// 10 ms of the log's time (pongs are 1 s apart, so that is the same pong; the log's
// timestamps run a few ms off the capture's), and no link goes down.
func TestLinksAgreeWithCorosync(t *testing.T) {
	for _, name := range []string{"knet-formation", "knet-join", "knet-aes256-formation"} {
		t.Run(name, func(t *testing.T) {
			var c *Crypto
			if strings.Contains(name, "aes256") {
				c = aes256sha256(t, captureKey(t))
			}
			dgs := datagrams(t, name+".pcap")
			times := pcapTimes(t, name+".pcap")
			want := logLinkUp(t, name+".events.txt")
			links := map[HostID]*Links{}
			// A node's monotonic time at a pong is the time its ping carried plus the
			// round trip the capture saw (the bridge is between the two nodes).
			type pingKey struct {
				from      HostID
				sec, nsec int64
			}
			pingAt := map[pingKey]time.Time{}
			pkts := make([]Packet, len(dgs))
			for i, d := range dgs {
				plain := d.b
				if c != nil {
					plain, _ = c.Open(nil, d.b)
				}
				p := &pkts[i]
				if err := p.Decode(plain); err != nil {
					t.Fatal(err)
				}
				if p.Type == TypePing {
					pingAt[pingKey{p.Host, p.TimeSec, p.TimeNsec}] = times[i]
				}
			}
			got := map[int]map[string]time.Time{}
			for i, d := range dgs {
				p, at := &pkts[i], times[i]
				if p.Type != TypePong {
					continue
				}
				self := HostID(d.dst.As4()[3]) // node i is 10.77.0.i
				if d.dst != netip.AddrFrom4([4]byte{10, 77, 0, byte(self)}) {
					t.Fatalf("pong to %v", d.dst)
				}
				l := links[self]
				if l == nil {
					l = NewLinks(self, Passive)
					for peer := HostID(1); peer <= 3; peer++ {
						if peer != self {
							l.AddLink(peer, 0, CorosyncLinkConfig(3650*ms))
						}
					}
					links[self] = l
				}
				sentAt, ok := pingAt[pingKey{self, p.TimeSec, p.TimeNsec}]
				if !ok {
					t.Fatalf("node %d: pong from %d at %v to a ping the capture lacks", self, p.Host, at)
				}
				now := time.Duration(p.TimeSec)*time.Second + time.Duration(p.TimeNsec) + at.Sub(sentAt)
				if !l.Pong(now, p.Host, p) {
					t.Errorf("node %d: pong from %d at %v ignored", self, p.Host, at)
				}
				for _, ev := range l.Events() {
					if !ev.Up {
						t.Errorf("node %d: link to %d down at %v", self, ev.Host, at)
					}
					if got[int(self)] == nil {
						got[int(self)] = map[string]time.Time{}
					}
					got[int(self)][fmt.Sprintf("%d/%d", ev.Host, ev.Link)] = at
				}
			}
			for node, ups := range want {
				for hl, logAt := range ups {
					at, ok := got[node][hl]
					if !ok {
						t.Errorf("node %d: corosync logged host/link %s up at %v, not up here", node, hl, logAt.Format("15:04:05.000"))
						continue
					}
					if d := at.Sub(logAt); d <= -10*ms || d >= 10*ms {
						t.Errorf("node %d: host/link %s up at %v here, logged at %v", node, hl, at.Format("15:04:05.000000"), logAt.Format("15:04:05.000"))
					}
				}
				// In knet-join nodes 1 and 2 were up before the capture began: their link
				// comes up here on its 3rd captured pong, with nothing in the log.
				if name == "knet-join" && node != 3 {
					delete(got[node], fmt.Sprintf("%d/0", 3-node))
				}
				if len(got[node]) != len(ups) {
					t.Errorf("node %d: %d links up here, %d logged", node, len(got[node]), len(ups))
				}
			}
			if len(want) != 3 {
				t.Errorf("%d nodes' logs parsed", len(want))
			}
		})
	}
}
