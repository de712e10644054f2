package quorum

import (
	"bytes"
	"github.com/gototem/gototem/internal/testenv"
	"os"
	"path/filepath"
	"testing"
)

// Real corosync 3.1.7 traffic (testdata/captures, udp multicast: every message appears once).
var capturesDir = testenv.Captures()

// groupAVoteQuorum is totempg's group "a" prefix followed by the start of a votequorum
// NODEINFO id (0x00050000): plain udp captures carry the bodies verbatim.
var groupAVoteQuorum = []byte{0x01, 0x00, 0x01, 0x00, 'a', 0x00, 0x00, 0x05, 0x00}

func capturedNodeInfos(t *testing.T, name string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(capturesDir, name))
	testenv.Need(t, "captures", err)
	var out [][]byte
	for i := 0; ; i++ {
		j := bytes.Index(raw[i:], groupAVoteQuorum)
		if j < 0 || i+j+5+NodeInfoSize > len(raw) {
			return out
		}
		i += j
		out = append(out, raw[i+5:i+5+NodeInfoSize])
	}
}

// Every NODEINFO real nodes sent decodes and re-encodes to the same 32 bytes.
func TestCapturedNodeInfoRoundTrip(t *testing.T) {
	for _, f := range []string{"udp-formation.pcap", "udp-join.pcap", "udp-leave-kill.pcap", "udp-partition-heal.pcap", "udpu-join.pcap"} {
		bodies := capturedNodeInfos(t, f)
		if len(bodies) == 0 {
			t.Fatalf("%s: no NODEINFO found", f)
		}
		for _, b := range bodies {
			ni, err := DecodeNodeInfo(b, false)
			if err != nil {
				t.Fatalf("%s: %x: %v", f, b, err)
			}
			if re := EncodeNodeInfo(ni); !bytes.Equal(re, b) {
				t.Fatalf("%s: re-encoded %x, captured %x", f, re, b)
			}
		}
	}
}

// Three gototem Machines replaying the lab's cluster formation and join send exactly the
// NODEINFO bytes the three corosync 3.1.7 nodes sent, in the same order, and end quorate.
func TestCapturedSequences(t *testing.T) {
	cfg := Config{Nodelist: nodelist(3)} // the lab: votequorum, expected 3 from the nodelist
	t.Run("formation", func(t *testing.T) {
		want := capturedNodeInfos(t, "udp-formation.pcap")
		c := newCluster(t)
		for i := NodeID(1); i <= 3; i++ {
			c.boot(i, cfg)
		}
		c.split(span(1, 3))
		compareSent(t, c.sent, want)
		c.expect("formed", state{true, 3, 2, 3}, 1, 2, 3)
	})
	t.Run("join", func(t *testing.T) {
		want := capturedNodeInfos(t, "udp-join.pcap")
		c := newCluster(t)
		c.boot(1, cfg)
		c.boot(2, cfg)
		c.split(span(1, 2))
		c.sent = nil // the capture starts when node 3 is started
		c.boot(3, cfg)
		c.split(span(1, 3))
		compareSent(t, c.sent, want)
		c.expect("joined", state{true, 3, 2, 3}, 1, 2, 3)
	})
}

func compareSent(t *testing.T, got, want [][]byte) {
	t.Helper()
	var ni [][]byte
	for _, b := range got {
		if fn, err := Function(b, false); err == nil && fn == FnNodeInfo {
			ni = append(ni, b)
		}
	}
	if len(ni) != len(want) {
		t.Fatalf("sent %d NODEINFOs, corosync sent %d", len(ni), len(want))
	}
	for i := range want {
		if !bytes.Equal(ni[i], want[i]) {
			t.Fatalf("NODEINFO %d: sent %x, corosync sent %x", i, ni[i], want[i])
		}
	}
}
