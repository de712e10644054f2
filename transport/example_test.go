package transport_test

import (
	"log"
	"net/netip"
	"time"

	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/transport"
)

// This is the shape the integrator (totem/) runs: one goroutine per Receiver feeding one
// channel with Batches, and the owner goroutine that steps the srp.Processor, sends its
// output with Link.Send and hands each Batch back to the pool when done with it.
func Example() {
	cfg := transport.DefaultConfig(transport.UDPU)
	cfg.NodeID = 1
	cfg.LocalAddr = netip.MustParseAddr("127.0.0.1")
	cfg.Port = 25405
	cfg.Members = map[srp.NodeID]netip.Addr{1: cfg.LocalAddr}
	link, err := transport.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer link.Close()

	in := make(chan *transport.Batch, 16)
	for _, r := range link.Receivers() {
		go func() {
			for {
				b := link.GetBatch()
				if _, err := r.Read(b); err != nil {
					link.PutBatch(b)
					return // closed
				}
				in <- b
			}
		}()
	}

	// Owner goroutine: what srp.Ready.Messages would hold.
	join := srp.Join{Header: srp.Header{NodeID: 1}, SystemFrom: 1, ProcList: []srp.NodeID{1}}
	if err := link.Send([]srp.Outgoing{{Dest: srp.ToAll, Type: srp.TypeJoin, Data: join.AppendEncode(nil)}}); err != nil {
		log.Print(err)
	}
	select {
	case b := <-in:
		for _, p := range b.Packets {
			_ = p.Data // feed to p.Step(now, p.Data) here; copy it if kept past PutBatch
		}
		link.PutBatch(b)
	case <-time.After(time.Second):
	}
}
