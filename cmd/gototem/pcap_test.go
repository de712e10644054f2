package main

import (
	"bytes"
	"encoding/binary"
	"github.com/gototem/gototem/internal/testenv"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/gototem/gototem/capture"
	"github.com/gototem/gototem/srp"
)

// pcapSteadyGolden is `gototem pcap udpu-steady.pcap`, checked by hand against the
// capture's README: token 1→2→3→1 every 685 ms with token_seq +1 per hop and seq/aru
// constant at 0x15, and node 1's merge detect 200 ms later as two unicast copies.
const pcapSteadyGolden = `   0.000000 10.77.0.1:55906       > 10.77.0.2:5405        merge_detect node=1 ring=1.9 from=1
   0.000026 10.77.0.1:55636       > 10.77.0.3:5405        merge_detect node=1 ring=1.9 from=1
   0.484997 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=1 ring=1.9 seq=0x15 token_seq=0xa2 aru=0x15 aru_addr=0 rtr=0
   0.485126 10.77.0.2:5405        > 10.77.0.3:5405        orf          node=2 ring=1.9 seq=0x15 token_seq=0xa3 aru=0x15 aru_addr=0 rtr=0
   0.485210 10.77.0.3:5405        > 10.77.0.1:5405        orf          node=3 ring=1.9 seq=0x15 token_seq=0xa4 aru=0x15 aru_addr=0 rtr=0
   0.685350 10.77.0.1:55906       > 10.77.0.2:5405        merge_detect node=1 ring=1.9 from=1
   0.685375 10.77.0.1:55636       > 10.77.0.3:5405        merge_detect node=1 ring=1.9 from=1
   1.170338 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=1 ring=1.9 seq=0x15 token_seq=0xa5 aru=0x15 aru_addr=0 rtr=0
   1.170471 10.77.0.2:5405        > 10.77.0.3:5405        orf          node=2 ring=1.9 seq=0x15 token_seq=0xa6 aru=0x15 aru_addr=0 rtr=0
   1.170555 10.77.0.3:5405        > 10.77.0.1:5405        orf          node=3 ring=1.9 seq=0x15 token_seq=0xa7 aru=0x15 aru_addr=0 rtr=0
   1.370677 10.77.0.1:55906       > 10.77.0.2:5405        merge_detect node=1 ring=1.9 from=1
   1.370702 10.77.0.1:55636       > 10.77.0.3:5405        merge_detect node=1 ring=1.9 from=1
   1.855765 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=1 ring=1.9 seq=0x15 token_seq=0xa8 aru=0x15 aru_addr=0 rtr=0
   1.855918 10.77.0.2:5405        > 10.77.0.3:5405        orf          node=2 ring=1.9 seq=0x15 token_seq=0xa9 aru=0x15 aru_addr=0 rtr=0
   1.856011 10.77.0.3:5405        > 10.77.0.1:5405        orf          node=3 ring=1.9 seq=0x15 token_seq=0xaa aru=0x15 aru_addr=0 rtr=0
   2.056169 10.77.0.1:55906       > 10.77.0.2:5405        merge_detect node=1 ring=1.9 from=1
   2.056190 10.77.0.1:55636       > 10.77.0.3:5405        merge_detect node=1 ring=1.9 from=1
   2.541166 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=1 ring=1.9 seq=0x15 token_seq=0xab aru=0x15 aru_addr=0 rtr=0
   2.541306 10.77.0.2:5405        > 10.77.0.3:5405        orf          node=2 ring=1.9 seq=0x15 token_seq=0xac aru=0x15 aru_addr=0 rtr=0
   2.541379 10.77.0.3:5405        > 10.77.0.1:5405        orf          node=3 ring=1.9 seq=0x15 token_seq=0xad aru=0x15 aru_addr=0 rtr=0
   2.741502 10.77.0.1:55906       > 10.77.0.2:5405        merge_detect node=1 ring=1.9 from=1
   2.741524 10.77.0.1:55636       > 10.77.0.3:5405        merge_detect node=1 ring=1.9 from=1
   3.226486 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=1 ring=1.9 seq=0x15 token_seq=0xae aru=0x15 aru_addr=0 rtr=0
   3.226690 10.77.0.2:5405        > 10.77.0.3:5405        orf          node=2 ring=1.9 seq=0x15 token_seq=0xaf aru=0x15 aru_addr=0 rtr=0
   3.226753 10.77.0.3:5405        > 10.77.0.1:5405        orf          node=3 ring=1.9 seq=0x15 token_seq=0xb0 aru=0x15 aru_addr=0 rtr=0
   3.426867 10.77.0.1:55906       > 10.77.0.2:5405        merge_detect node=1 ring=1.9 from=1
   3.426888 10.77.0.1:55636       > 10.77.0.3:5405        merge_detect node=1 ring=1.9 from=1
   3.911851 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=1 ring=1.9 seq=0x15 token_seq=0xb1 aru=0x15 aru_addr=0 rtr=0
   3.912042 10.77.0.2:5405        > 10.77.0.3:5405        orf          node=2 ring=1.9 seq=0x15 token_seq=0xb2 aru=0x15 aru_addr=0 rtr=0
   3.912105 10.77.0.3:5405        > 10.77.0.1:5405        orf          node=3 ring=1.9 seq=0x15 token_seq=0xb3 aru=0x15 aru_addr=0 rtr=0
   4.112229 10.77.0.1:55906       > 10.77.0.2:5405        merge_detect node=1 ring=1.9 from=1
   4.112254 10.77.0.1:55636       > 10.77.0.3:5405        merge_detect node=1 ring=1.9 from=1
   4.597219 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=1 ring=1.9 seq=0x15 token_seq=0xb4 aru=0x15 aru_addr=0 rtr=0
   4.597357 10.77.0.2:5405        > 10.77.0.3:5405        orf          node=2 ring=1.9 seq=0x15 token_seq=0xb5 aru=0x15 aru_addr=0 rtr=0
   4.597510 10.77.0.3:5405        > 10.77.0.1:5405        orf          node=3 ring=1.9 seq=0x15 token_seq=0xb6 aru=0x15 aru_addr=0 rtr=0
   4.797624 10.77.0.1:55906       > 10.77.0.2:5405        merge_detect node=1 ring=1.9 from=1
   4.797647 10.77.0.1:55636       > 10.77.0.3:5405        merge_detect node=1 ring=1.9 from=1
packets: 37 totem, 0 undecodable
types: orf=21 mcast=0 merge_detect=16 join=0 commit=0 hold_cancel=0
`

// TestPcapGolden pins the output format on a real capture. On purpose a format change
// fails here: update the constant from the printed output after checking it by eye.
func TestPcapGolden(t *testing.T) {
	path := testenv.Capture(t, "udpu-steady.pcap")
	var out, errb bytes.Buffer
	if code := dispatch([]string{"pcap", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.String() != pcapSteadyGolden {
		t.Errorf("output differs from the golden; got:\n%s", out.String())
	}
}

// pcapFile writes Ethernet/IPv4/UDP frames carrying the given datagrams, 10 ms apart,
// from 10.77.0.1:5405 to 10.77.0.2:5405, and returns the file's path.
func pcapFile(t *testing.T, name string, datagrams ...[]byte) string {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1795292978, 0)
	for i, d := range datagrams {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 1, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IPv4(10, 77, 0, 1).To4(), DstIP: net.IPv4(10, 77, 0, 2).To4()}
		u := &layers.UDP{SrcPort: 5405, DstPort: 5405}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
				EthernetType: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload(d)); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * 10 * time.Millisecond),
			CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// bigEndian turns a little-endian ORF token without rtr items into a big-endian sender's.
func bigEndian(le []byte) []byte {
	be := bytes.Clone(le)
	binary.BigEndian.PutUint16(be, srp.Magic)
	for _, off := range []int{5, 9, 13, 17, 21, 25, 29, 41, 45, 49, 53} {
		binary.BigEndian.PutUint32(be[off:], binary.LittleEndian.Uint32(le[off:]))
	}
	binary.BigEndian.PutUint64(be[33:], binary.LittleEndian.Uint64(le[33:]))
	return be
}

// TestPcapLines: each message type prints its key fields, a LEAVE and a big-endian sender
// are flagged, an encapsulated MCAST shows the old-ring message inside it, and a datagram
// that does not decode is printed with its error and counted as undecodable.
func TestPcapLines(t *testing.T) {
	// Only the srp fields: the synthetic MCAST payloads here are not totempg packets.
	saved := pcapExtensions
	defer func() { pcapExtensions = saved }()
	pcapExtensions = nil
	inner := (&srp.Mcast{Header: srp.Header{Encapsulated: srp.NotEncapsulated, NodeID: 3}, SystemFrom: 3, Seq: 0x20,
		RingID: srp.RingID{Rep: 1, Seq: 0x9}, Guarantee: srp.Safe, Payload: make([]byte, 12)}).AppendEncode(nil)
	path := pcapFile(t, "mixed.pcap",
		(&srp.ORFToken{Header: srp.Header{NodeID: 1}, Seq: 0x15, TokenSeq: 0xa2, ARU: 0x14, ARUAddr: 2,
			RingID: srp.RingID{Rep: 1, Seq: 0x9}, RetransFlg: 1, RTRList: []srp.RTRItem{{RingID: srp.RingID{Rep: 1, Seq: 0x9}, Seq: 0x15}}}).AppendEncode(nil),
		bigEndian((&srp.ORFToken{Header: srp.Header{NodeID: 2}, TokenSeq: 7, RingID: srp.RingID{Rep: 1, Seq: 0x23}}).AppendEncode(nil)),
		(&srp.Mcast{Header: srp.Header{Encapsulated: srp.Encapsulated, NodeID: 1}, SystemFrom: 1, Seq: 3,
			RingID: srp.RingID{Rep: 1, Seq: 0xd}, Payload: inner}).AppendEncode(nil),
		(&srp.Join{Header: srp.Header{NodeID: 0}, SystemFrom: 3, RingSeq: 9, ProcList: []srp.NodeID{1, 2}, FailedList: []srp.NodeID{3}}).AppendEncode(nil),
		(&srp.CommitToken{Header: srp.Header{NodeID: 2}, TokenSeq: 2, RingID: srp.RingID{Rep: 1, Seq: 0x23}, MembIndex: 2,
			Addr: []srp.NodeID{1, 2, 3}}).AppendEncode(nil),
		(&srp.MergeDetect{Header: srp.Header{NodeID: 3}, SystemFrom: 3, RingID: srp.RingID{Rep: 3, Seq: 0x1f}}).AppendEncode(nil),
		(&srp.TokenHoldCancel{Header: srp.Header{NodeID: 2}, RingID: srp.RingID{Rep: 1, Seq: 0x9}}).AppendEncode(nil),
		[]byte{0xff, 0xff, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
	)
	var out, errb bytes.Buffer
	if code := dispatch([]string{"pcap", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		"   0.000000 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=1 ring=1.9 seq=0x15 token_seq=0xa2 aru=0x14 aru_addr=2 rtr=1 retrans_flg=1",
		"   0.010000 10.77.0.1:5405        > 10.77.0.2:5405        orf          node=2 big-endian ring=1.23 seq=0x0 token_seq=0x7 aru=0x0 aru_addr=0 rtr=0",
		"   0.020000 10.77.0.1:5405        > 10.77.0.2:5405        mcast        node=1 ring=1.d seq=0x3 from=1 guarantee=agreed encapsulated=yes len=57" +
			" inner.node=3 inner.ring=1.9 inner.seq=0x20 inner.from=3 inner.guarantee=safe inner.encapsulated=no inner.len=12",
		"   0.030000 10.77.0.1:5405        > 10.77.0.2:5405        join         node=0 leave ring_seq=0x9 from=3 proc={1,2} failed={3}",
		"   0.040000 10.77.0.1:5405        > 10.77.0.2:5405        commit       node=2 ring=1.23 members={1,2,3} memb_index=2 token_seq=0x2",
		"   0.050000 10.77.0.1:5405        > 10.77.0.2:5405        merge_detect node=3 ring=3.1f from=3",
		"   0.060000 10.77.0.1:5405        > 10.77.0.2:5405        hold_cancel  node=2 ring=1.9",
		"   0.070000 10.77.0.1:5405        > 10.77.0.2:5405        undecodable  len=14 error=\"frame 8: srp: decode: bad magic: 0xffff (probably corosync 2.2)\"",
		"packets: 8 totem, 1 undecodable",
		"types: orf=2 mcast=1 merge_detect=1 join=1 commit=1 hold_cancel=1",
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, lines[i], want[i])
		}
	}
}

// TestPcapFilesAndErrors: several files get a header line each and one summary; a
// missing or broken file is reported on stderr with exit 1 after what could be read;
// no file is a usage error.
func TestPcapFilesAndErrors(t *testing.T) {
	join := (&srp.Join{Header: srp.Header{NodeID: 1}, SystemFrom: 1, ProcList: []srp.NodeID{1}}).AppendEncode(nil)
	a := pcapFile(t, "a.pcap", join, join)
	b := pcapFile(t, "b.pcap", join)
	data, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, data[:len(data)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		outHas []string
		errHas string
	}{
		{"two files", []string{a, b}, 0, []string{"# " + a + "\n", "# " + b + "\n", "packets: 3 totem, 0 undecodable\n", "join=3 "}, ""},
		{"missing file", []string{a, "/nonexistent.pcap"}, 1, []string{"packets: 2 totem, 0 undecodable\n"}, "nonexistent.pcap"},
		{"truncated file", []string{cut}, 1, []string{"packets: 0 totem, 0 undecodable\n"}, "cut.pcap"},
		{"no file", nil, 2, nil, "usage: gototem pcap FILE..."},
		{"bad flag", []string{"-x"}, 2, nil, "flag provided but not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := dispatch(append([]string{"pcap"}, tc.args...), &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			for _, s := range tc.outHas {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			if !strings.Contains(errb.String(), tc.errHas) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.errHas)
			}
		})
	}
}

// TestPcapExtensions: a field producer registered by another layer's file is appended to
// every packet line, after the srp fields.
func TestPcapExtensions(t *testing.T) {
	saved := pcapExtensions
	defer func() { pcapExtensions = saved }()
	pcapExtensions = append(pcapExtensions[:0:0], func(p *capture.Packet) []pcapField {
		if m, ok := p.Message().(*srp.Mcast); ok {
			return []pcapField{{"totempg.first", string(m.Payload[:2])}}
		}
		return nil
	})
	path := pcapFile(t, "ext.pcap",
		(&srp.Mcast{Header: srp.Header{Encapsulated: srp.NotEncapsulated, NodeID: 1}, SystemFrom: 1, Payload: []byte("hi!")}).AppendEncode(nil),
		(&srp.MergeDetect{Header: srp.Header{NodeID: 1}, SystemFrom: 1}).AppendEncode(nil))
	var out, errb bytes.Buffer
	if code := dispatch([]string{"pcap", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(out.String(), "\n")
	if !strings.HasSuffix(lines[0], " len=3 totempg.first=hi") || strings.Contains(lines[1], "totempg") {
		t.Errorf("extension fields misplaced:\n%s", out.String())
	}
}
