package counter_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"time"

	"github.com/gototem/gototem/examples/counter"
	"github.com/gototem/gototem/totem"
)

// Three real nodes of one ring on 127.0.0.1-3, each with a Counter: the Counter is the
// group's handler and the node's OnMembership callback (the same two calls put it on a
// simulated node, see package sim's example). Each node adds its id ten times; every replica
// applies all thirty operations, in one order, in the majority ring of three.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes []totem.NodeConfig
	for id := 1; id <= 3; id++ {
		nodes = append(nodes, totem.NodeConfig{ID: totem.NodeID(id), Addrs: []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, byte(id)})}})
	}
	counters := make([]*counter.Counter, 3)
	groups := make([]*totem.Group, 3)
	for i := range counters {
		c := counter.New(3)
		cfg := totem.LANConfig()
		cfg.ClusterName, cfg.Port, cfg.NodeID, cfg.Nodes = "counter-example", 45145, totem.NodeID(i+1), nodes
		state, err := os.MkdirTemp("", "counter-example")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(state)
		node, err := totem.New(totem.Options{Config: cfg, StateDir: state, OnMembership: c.OnMembership})
		if err != nil {
			log.Fatal(err)
		}
		if err := node.Start(ctx); err != nil {
			log.Fatal(err)
		}
		defer node.Stop(context.Background())
		g, err := node.Join("counter", c)
		if err != nil {
			log.Fatal(err)
		}
		c.Attach(g.TrySend)
		counters[i], groups[i] = c, g
	}
	for _, g := range groups {
		if _, err := g.WaitMembers(ctx, 3); err != nil {
			log.Fatal(err)
		}
	}
	for i, c := range counters {
		for k := 0; k < 10; k++ {
			for c.Add(int64(i+1)) == totem.ErrBusy {
				time.Sleep(time.Millisecond)
			}
		}
	}
	chk := counter.NewChecker()
	for _, c := range counters {
		for {
			if err := chk.Check(counters...); err != nil {
				log.Fatal(err)
			}
			if _, n := c.Value(); n == 30 || ctx.Err() != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i, c := range counters {
		v, n := c.Value()
		fmt.Printf("node %d: value %d after %d operations\n", i+1, v, n)
	}
	// Output:
	// node 1: value 60 after 30 operations
	// node 2: value 60 after 30 operations
	// node 3: value 60 after 30 operations
}
