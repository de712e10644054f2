package capture_test

import (
	"encoding/hex"
	"fmt"

	"github.com/gopacket/gopacket"

	"github.com/gototem/gototem/capture"
	"github.com/gototem/gototem/srp"
)

// Example reads a capture of an idle three-node corosync 3.1.7 ring on udpu (ring 1.9) and
// counts its Totem datagrams by type: the ORF token going round 1→2→3→1 once per hold
// period, and the representative's MERGE_DETECT sent to each of the two other nodes.
// An idle ring has no JOIN and no MCAST. Following the token, token_seq grows by one per
// hop while seq and aru stay put: nobody sends messages.
func Example() {
	pkts, st, err := capture.ReadFile("../testdata/captures/udpu-steady.pcap")
	if err != nil {
		fmt.Println(err)
		return
	}
	count := map[srp.MessageType]int{}
	var tokens []*srp.ORFToken
	for _, p := range pkts {
		if p.Err != nil {
			fmt.Println("frame", p.Frame, p.Err)
			continue
		}
		count[p.Totem.Header.Type]++
		if t, ok := p.Message().(*srp.ORFToken); ok {
			tokens = append(tokens, t)
		}
	}
	fmt.Println("frames", st.Frames, "totem", st.Totem, "undecodable", st.Undecodable)
	for _, typ := range []srp.MessageType{srp.TypeORFToken, srp.TypeMergeDetect, srp.TypeJoin, srp.TypeMcast} {
		fmt.Println(typ, count[typ])
	}
	for _, t := range tokens[:3] {
		fmt.Printf("token ring %v token_seq %d seq %d aru %d\n", t.RingID, t.TokenSeq, t.Seq, t.ARU)
	}
	// Output:
	// frames 37 totem 37 undecodable 0
	// orf 21
	// merge_detect 16
	// join 0
	// mcast 0
	// token ring 1.9 token_seq 162 seq 21 aru 21
	// token ring 1.9 token_seq 163 seq 21 aru 21
	// token ring 1.9 token_seq 164 seq 21 aru 21
}

// ExampleTotem decodes one Totem datagram from bytes through gopacket: the ORF token node 1
// sent to node 2 in the udpu-steady capture, 57 bytes with the stale target_nodeid bytes
// udp/udpu leave in the header.
func ExampleTotem() {
	data, _ := hex.DecodeString("70c00300000100000000000002" +
		"15000000" + "a2000000" + "15000000" + "00000000" + // seq, token_seq, aru, aru_addr
		"01000000" + "0900000000000000" + // ring_id {rep 1, seq 9}
		"00000000" + "00000000" + "00000000" + "00000000") // backlog, fcc, retrans_flg, rtr_list_entries
	pkt := gopacket.NewPacket(data, capture.LayerTypeTotem, gopacket.Default)
	if err := pkt.ErrorLayer(); err != nil {
		fmt.Println(err.Error())
		return
	}
	tl := pkt.Layer(capture.LayerTypeTotem).(*capture.Totem)
	t := tl.Message.(*srp.ORFToken)
	fmt.Println(len(data), "bytes,", tl.Header.Type, "from node", tl.Header.NodeID)
	fmt.Printf("ring %v seq %#x token_seq %#x aru %#x rtr %d\n", t.RingID, t.Seq, t.TokenSeq, t.ARU, len(t.RTRList))
	// Output:
	// 57 bytes, orf from node 1
	// ring 1.9 seq 0x15 token_seq 0xa2 aru 0x15 rtr 0
}
