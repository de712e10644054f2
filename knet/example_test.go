package knet_test

import (
	"bytes"
	"fmt"

	"github.com/gototem/gototem/knet"
)

// A message larger than the data MTU leaves host 1 as knet fragments (Tx.Send), crosses the
// wire as bytes (AppendEncode, Decode), and host 2's receive side (HostRx.Data) reassembles
// it once; a second copy of a fragment, as another link in active mode would bring, is a
// duplicate.
func Example() {
	tx := &knet.Tx{Self: 1}
	msg := bytes.Repeat([]byte("totem"), 300) // 1500 bytes
	pkts, _, err := tx.Send(nil, msg, 1000, true, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("fragments:", len(pkts))
	rx := knet.NewHostRx(knet.DefragBuffers)
	var wire [][]byte
	for i := range pkts {
		wire = append(wire, pkts[i].AppendEncode(nil))
	}
	for _, b := range append(wire, wire[0]) {
		var p knet.Packet
		if err := p.Decode(b); err != nil {
			fmt.Println(err)
			return
		}
		got, res := rx.Data(&p)
		fmt.Printf("fragment %d/%d from host %d: %v", p.FragSeq, p.FragNum, p.Host, res)
		if got != nil {
			fmt.Printf(", message of %d bytes intact: %v", len(got), bytes.Equal(got, msg))
		}
		fmt.Println()
	}
	// Output:
	// fragments: 2
	// fragment 1/2 from host 1: held
	// fragment 2/2 from host 1: deliver, message of 1500 bytes intact: true
	// fragment 1/2 from host 1: duplicate
}
