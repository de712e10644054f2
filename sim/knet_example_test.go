package sim_test

import (
	"fmt"
	"time"

	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/sim"
)

// Three nodes run the full stack over knet with two links in passive mode, on corosync's
// default timers. Once the links are up and settled, link 0 is cut alone: knet takes it
// down and moves the traffic to link 1 before the token timeout, so the membership stays.
func ExampleSim_KnetLinkCut() {
	ko := sim.KnetOptions{Nodes: 3, Links: 2, Mode: knet.Passive}
	s, err := sim.New(sim.Options{Seed: 1, Nodes: 3, NewProtocol: sim.NewKnetProtocol(sim.StackOptions{}, ko)})
	if err != nil {
		panic(err)
	}
	// Links up (three pongs a second apart) and libknet's pong timeout backoff settled.
	if err := s.RunFor(15 * time.Second); err != nil {
		panic(err)
	}
	if err := s.StartWorkload(sim.Workload{Rate: 20, MinSize: 8, MaxSize: 256}); err != nil {
		panic(err)
	}
	if err := s.RunFor(2 * time.Second); err != nil {
		panic(err)
	}
	rep, err := s.KnetLinkCut(ko, 0)
	if err != nil {
		panic(err) // a *sim.Violation names the broken expectation
	}
	b := rep.Bounds
	fmt.Printf("token %v, knet_ping_timeout %v, knet_ping_interval %v\n", b.Token, b.PingTimeout, b.PingInterval)
	fmt.Printf("link 0 down within %v: %v\n", b.Down, rep.DownAfter <= b.Down)
	fmt.Printf("traffic on link 1 before the token timeout: %v\n", rep.SwitchedAfter < b.Token)
	// Output:
	// token 3.65s, knet_ping_timeout 1.825s, knet_ping_interval 912ms
	// link 0 down within 2.035s: true
	// traffic on link 1 before the token timeout: true
}
