package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gototem/gototem/srp"
)

// capturesDir holds the real corosync 3.1.7 captures (see its README.md).
var capturesDir = testenv.Captures()

func captureFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(capturesDir, "*.pcap"))
	if err != nil || len(files) == 0 {
		if err == nil {
			err = os.ErrNotExist
		}
		testenv.Need(t, "real corosync captures in "+capturesDir, err)
	}
	return files
}

func readCapture(t *testing.T, name string) []Packet {
	t.Helper()
	path := filepath.Join(capturesDir, name)
	_, err := os.Stat(path)
	testenv.Need(t, "capture "+path, err)
	pkts, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pkts
}

// TestCapturesDecodeAndReencode: every UDP datagram of every real capture is a Totem
// message our codec accepts, and re-encoding it reproduces the captured bytes exactly —
// the strongest check that the layouts, the byte order and the preserved "ignored" fields
// (target_nodeid, mcast node_id) match corosync.
func TestCapturesDecodeAndReencode(t *testing.T) {
	for _, f := range captureFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			pkts, st, err := ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The files were captured with filter "udp" and only corosync runs there.
			if st.Frames != st.Totem || st.NonUDP+st.OtherUDP+st.Fragments+st.Undecodable != 0 {
				t.Errorf("stats %+v: every frame should be a decodable Totem datagram", st)
			}
			for _, p := range pkts {
				if p.Err != nil {
					t.Errorf("frame %d: %v", p.Frame, p.Err)
					continue
				}
				if p.Totem.Swapped {
					t.Errorf("frame %d: big-endian, but the lab is x86-64", p.Frame)
				}
				if got := p.Message().AppendEncode(nil); !bytes.Equal(got, p.Data) {
					t.Errorf("frame %d (%s): re-encoding differs\n got %x\nwant %x", p.Frame, p.Totem.Header.Type, got, p.Data)
				}
			}
		})
	}
}

// captureCounts pins, per capture, the frame count the README gives and the per-type
// counts our decoder finds. Plausibility (checked against README and events.txt when
// pinned): commit tokens are 2 rotations of the new ring per formed multi-node ring
// (3+3 for {1,2,3}, 2+2 for {1,2}); udpu sends every "multicast" as one copy per other
// member (the copy to itself does not cross the bridge), so its join/merge counts are twice
// udp's for the same activity (leave-kill: 356 vs 178 joins over the ~4.4 s consensus
// wait at one join per 50 ms per node); steady state is 3 tokens and 1 merge detect (2
// copies in udpu) per 685 ms hold period. No capture has a token hold cancel.
var captureCounts = []struct {
	file                                   string
	frames                                 int
	orf, mcast, merge, join, commit, holdc int
}{
	{"udpu-formation.pcap", 214, 109, 65, 14, 20, 6, 0},
	{"udp-formation.pcap", 215, 147, 45, 7, 10, 6, 0},
	{"udpu-steady.pcap", 37, 21, 0, 16, 0, 0, 0},
	{"udp-steady.pcap", 31, 24, 0, 7, 0, 0, 0},
	{"udpu-leave-term.pcap", 93, 41, 18, 24, 6, 4, 0},
	{"udp-leave-term.pcap", 74, 43, 11, 13, 3, 4, 0},
	{"udpu-join.pcap", 215, 140, 43, 14, 12, 6, 0},
	{"udp-join.pcap", 192, 145, 27, 8, 6, 6, 0},
	{"udpu-leave-kill.pcap", 413, 29, 20, 4, 356, 4, 0},
	{"udp-leave-kill.pcap", 234, 36, 14, 2, 178, 4, 0},
	{"udpu-partition-heal.pcap", 720, 106, 32, 32, 540, 10, 0},
	{"udp-partition-heal.pcap", 504, 177, 31, 16, 270, 10, 0},
}

func TestCaptureTypeCounts(t *testing.T) {
	files := captureFiles(t)
	if len(files) != len(captureCounts) {
		t.Errorf("%d captures on disk, %d pinned: pin the new ones", len(files), len(captureCounts))
	}
	for _, tc := range captureCounts {
		t.Run(tc.file, func(t *testing.T) {
			pkts := readCapture(t, tc.file)
			var n [6]int
			for _, p := range pkts {
				if p.Err == nil {
					n[p.Totem.Header.Type]++
				}
			}
			want := [6]int{tc.orf, tc.mcast, tc.merge, tc.join, tc.commit, tc.holdc}
			if len(pkts) != tc.frames || n != want {
				t.Errorf("%d packets %v, want %d %v (orf mcast merge join commit hold_cancel)", len(pkts), n, tc.frames, want)
			}
		})
	}
}

func ring(rep srp.NodeID, seq uint64) srp.RingID { return srp.RingID{Rep: rep, Seq: seq} }

// ringStr prints a ring id as corosync does: rep.seq with seq in hex.
func ringStr(r srp.RingID) string { return fmt.Sprintf("%d.%x", r.Rep, r.Seq) }

// commits returns the commit tokens of a capture in order.
func commits(pkts []Packet) []*srp.CommitToken {
	var out []*srp.CommitToken
	for _, p := range pkts {
		if c, ok := p.Message().(*srp.CommitToken); ok {
			out = append(out, c)
		}
	}
	return out
}

// formedRing checks the wire shows ring r formed with exactly members: a commit token for
// r naming them that went all the way round (memb_index == member count, every entry
// filled in), then an ORF token on r. It returns the index of that commit token's packet.
func formedRing(t *testing.T, pkts []Packet, r srp.RingID, members []srp.NodeID) int {
	t.Helper()
	for i, p := range pkts {
		c, ok := p.Message().(*srp.CommitToken)
		if !ok || c.RingID != r || int(c.MembIndex) != len(c.Addr) {
			continue
		}
		if !slices.Equal(c.Addr, members) {
			t.Errorf("ring %s: commit token members %v, want %v", ringStr(r), c.Addr, members)
			return i
		}
		for j, m := range c.Members {
			if m.RingID.Rep == 0 {
				t.Errorf("ring %s: completed commit token has member %d's entry unfilled", ringStr(r), c.Addr[j])
			}
		}
		for _, q := range pkts[i:] {
			if tok, ok := q.Message().(*srp.ORFToken); ok && tok.RingID == r {
				return i
			}
		}
		t.Errorf("ring %s: no ORF token after its commit token", ringStr(r))
		return i
	}
	t.Errorf("ring %s %v: no completed commit token in the capture", ringStr(r), members)
	return -1
}

// ringSenders is the set of header nodeids of packets carrying ring r (tokens, mcasts,
// merge detects, commit tokens).
func ringSenders(pkts []Packet, r srp.RingID) []srp.NodeID {
	var out []srp.NodeID
	for _, p := range pkts {
		var rr srp.RingID
		switch m := p.Message().(type) {
		case *srp.ORFToken:
			rr = m.RingID
		case *srp.Mcast:
			rr = m.RingID
		case *srp.MergeDetect:
			rr = m.RingID
		case *srp.CommitToken:
			rr = m.RingID
		case *srp.TokenHoldCancel:
			rr = m.RingID
		default:
			continue
		}
		if rr == r && !slices.Contains(out, p.Totem.Header.NodeID) {
			out = append(out, p.Totem.Header.NodeID)
		}
	}
	slices.Sort(out)
	return out
}

// TestCaptureMemberships checks the membership story each capture's README tells against
// what the decoded packets show.
func TestCaptureMemberships(t *testing.T) {
	for _, tr := range []string{"udpu", "udp"} {
		t.Run(tr+"-formation", func(t *testing.T) {
			pkts := readCapture(t, tr+"-formation.pcap")
			formedRing(t, pkts, ring(1, 0x9), []srp.NodeID{1, 2, 3})
		})
		t.Run(tr+"-steady", func(t *testing.T) {
			pkts := readCapture(t, tr+"-steady.pcap")
			var last *srp.ORFToken
			for _, p := range pkts {
				switch m := p.Message().(type) {
				case *srp.ORFToken:
					if m.RingID != ring(1, 0x9) || m.Seq != m.ARU || m.ARUAddr != 0 {
						t.Errorf("frame %d: token %+v, want ring 1.9 with nothing outstanding", p.Frame, m)
					}
					if last != nil && m.TokenSeq != last.TokenSeq+1 {
						t.Errorf("frame %d: token_seq %#x after %#x", p.Frame, m.TokenSeq, last.TokenSeq)
					}
					last = m
				case *srp.MergeDetect:
					if m.Header.NodeID != 1 || m.RingID != ring(1, 0x9) {
						t.Errorf("frame %d: merge detect %+v, want from rep 1 on 1.9", p.Frame, m)
					}
				default:
					t.Errorf("frame %d: %s on an idle ring", p.Frame, p.Totem.Header.Type)
				}
			}
		})
		t.Run(tr+"-leave-term", func(t *testing.T) {
			pkts := readCapture(t, tr+"-leave-term.pcap")
			leave := -1
			for i, p := range pkts {
				if j, ok := p.Message().(*srp.Join); ok && j.IsLeave() {
					if j.SystemFrom != 3 || !slices.Equal(j.ProcList, []srp.NodeID{1, 2}) || !slices.Equal(j.FailedList, []srp.NodeID{3}) {
						t.Errorf("frame %d: leave %+v, want from 3, proc {1,2}, failed {3}", p.Frame, j)
					}
					if leave < 0 {
						leave = i
					}
				}
			}
			if leave < 0 {
				t.Fatal("no LEAVE (join with header nodeid 0)")
			}
			if at := formedRing(t, pkts, ring(1, 0xd), []srp.NodeID{1, 2}); at >= 0 && at < leave {
				t.Errorf("ring 1.d formed before the leave")
			}
		})
		t.Run(tr+"-join", func(t *testing.T) {
			pkts := readCapture(t, tr+"-join.pcap")
			formedRing(t, pkts, ring(1, 0x12), []srp.NodeID{1, 2, 3})
			if s := ringSenders(pkts, ring(3, 0xe)); len(s) > 0 && !slices.Equal(s, []srp.NodeID{3}) {
				t.Errorf("singleton ring 3.e carried by %v", s)
			}
		})
		t.Run(tr+"-leave-kill", func(t *testing.T) {
			pkts := readCapture(t, tr+"-leave-kill.pcap")
			formedRing(t, pkts, ring(1, 0x16), []srp.NodeID{1, 2})
			cs := commits(pkts)
			if len(cs) == 0 || cs[len(cs)-1].RingID != ring(1, 0x16) {
				t.Errorf("final ring is not 1.16")
			}
		})
		t.Run(tr+"-partition-heal", func(t *testing.T) {
			pkts := readCapture(t, tr+"-partition-heal.pcap")
			split := formedRing(t, pkts, ring(1, 0x1f), []srp.NodeID{1, 2})
			// Node 3's singleton ring never sends a commit token over the wire (it goes to
			// itself), but its mcasts and merge detects on 3.1f cross the bridge.
			if s := ringSenders(pkts, ring(3, 0x1f)); !slices.Equal(s, []srp.NodeID{3}) {
				t.Errorf("ring 3.1f carried by %v, want only node 3", s)
			}
			healed := formedRing(t, pkts, ring(1, 0x23), []srp.NodeID{1, 2, 3})
			if split >= 0 && healed >= 0 && healed < split {
				t.Errorf("1.23 formed before 1.1f")
			}
			// The merged ring's commit token records where each member came from.
			c := commits(pkts)
			last := c[len(c)-1]
			want := []srp.RingID{ring(1, 0x1f), ring(1, 0x1f), ring(3, 0x1f)}
			for i, m := range last.Members {
				if m.RingID != want[i] {
					t.Errorf("member %d came from %s, want %s", last.Addr[i], ringStr(m.RingID), ringStr(want[i]))
				}
			}
		})
	}
}

// membership is one "A new membership (r) was formed" event of a node's corosync log,
// with the member list of the QUORUM line that follows it.
type membership struct {
	node    srp.NodeID
	ring    srp.RingID
	members []srp.NodeID
}

var (
	nodeSection = regexp.MustCompile(`^## node (\d+)`)
	newRing     = regexp.MustCompile(`A new membership \((\d+)\.([0-9a-f]+)\) was formed`)
	quorumList  = regexp.MustCompile(`\[QUORUM\] Members\[\d+\]:((?: \d+)+)`)
)

// readEvents parses the ring changes out of a capture's .events.txt.
func readEvents(t *testing.T, path string) []membership {
	t.Helper()
	f, err := os.Open(path)
	testenv.Need(t, "events file "+path, err)
	defer f.Close()
	var out []membership
	var node srp.NodeID
	pending := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := nodeSection.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			node, pending = srp.NodeID(n), -1
		} else if m := newRing.FindStringSubmatch(line); m != nil {
			rep, _ := strconv.ParseUint(m[1], 10, 32)
			seq, _ := strconv.ParseUint(m[2], 16, 64)
			out = append(out, membership{node: node, ring: ring(srp.NodeID(rep), seq)})
			pending = len(out) - 1
		} else if m := quorumList.FindStringSubmatch(line); m != nil && pending >= 0 {
			for _, s := range strings.Fields(m[1]) {
				n, _ := strconv.Atoi(s)
				out[pending].members = append(out[pending].members, srp.NodeID(n))
			}
			pending = -1
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCapturesAgreeWithCorosyncLogs takes every ring change corosync logged during a
// capture as ground truth and finds it on the wire: a multi-node ring must show a complete
// commit token with exactly the logged members followed by its ORF token; a singleton ring
// (its commit token never leaves the node) must be carried only by its member, and the
// first completed commit token that includes the member must record it as that member's
// old ring (in these captures every singleton ring precedes the merge that ends it).
func TestCapturesAgreeWithCorosyncLogs(t *testing.T) {
	for _, f := range captureFiles(t) {
		events := strings.TrimSuffix(f, ".pcap") + ".events.txt"
		t.Run(filepath.Base(f), func(t *testing.T) {
			pkts, _, err := ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			evs := readEvents(t, events)
			if len(evs) == 0 && !strings.Contains(f, "steady") {
				t.Fatalf("no ring changes parsed from %s", events)
			}
			for _, ev := range evs {
				if len(ev.members) == 0 {
					t.Errorf("node %d ring %s: no QUORUM member line in the log", ev.node, ringStr(ev.ring))
					continue
				}
				if !slices.Contains(ev.members, ev.node) {
					t.Errorf("node %d logged ring %s without itself: %v", ev.node, ringStr(ev.ring), ev.members)
				}
				if len(ev.members) > 1 {
					formedRing(t, pkts, ev.ring, ev.members)
					continue
				}
				if s := ringSenders(pkts, ev.ring); len(s) > 0 && !slices.Equal(s, ev.members) {
					t.Errorf("singleton ring %s of node %d carried by %v", ringStr(ev.ring), ev.node, s)
				}
				for _, c := range commits(pkts) {
					if i := slices.Index(c.Addr, ev.node); i >= 0 && int(c.MembIndex) == len(c.Addr) {
						if c.Members[i].RingID != ev.ring {
							t.Errorf("ring %s: node %d's old ring recorded as %s, log says %s",
								ringStr(c.RingID), ev.node, ringStr(c.Members[i].RingID), ringStr(ev.ring))
						}
						break
					}
				}
			}
		})
	}
}
