package totem_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/gototem/gototem/totem"
)

// collector is an application: it records what its group delivers.
type collector struct {
	mu   sync.Mutex
	got  []string
	done chan struct{}
	want int
}

func (c *collector) Deliver(m totem.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, fmt.Sprintf("%s from node %d", m.Payload, m.Sender.NodeID))
	if len(c.got) == c.want {
		close(c.done)
	}
}

func (c *collector) ConfigChange(totem.GroupChange) {}

// Three nodes of one ring in one process, on 127.0.0.1-3, configured in code: each joins the
// group "chat", waits for all three members, and sends one message. Every node delivers the
// three messages in the same order: the ring's total order.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var nodes []totem.NodeConfig
	for id := 1; id <= 3; id++ {
		nodes = append(nodes, totem.NodeConfig{ID: totem.NodeID(id), Addrs: []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, byte(id)})}})
	}
	apps := make([]*collector, 3)
	groups := make([]*totem.Group, 3)
	for i := range apps {
		cfg := totem.LANConfig()
		cfg.ClusterName = "example"
		cfg.Port = 45123
		cfg.NodeID = totem.NodeID(i + 1)
		cfg.Nodes = nodes
		state, err := os.MkdirTemp("", "totem-example")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(state)
		node, err := totem.New(totem.Options{Config: cfg, StateDir: state})
		if err != nil {
			log.Fatal(err)
		}
		if err := node.Start(ctx); err != nil {
			log.Fatal(err)
		}
		defer node.Stop(context.Background())
		apps[i] = &collector{done: make(chan struct{}), want: 3}
		if groups[i], err = node.Join("chat", apps[i]); err != nil {
			log.Fatal(err)
		}
	}
	for i, g := range groups {
		if _, err := g.WaitMembers(ctx, 3); err != nil {
			log.Fatal(err)
		}
		if err := g.Send(ctx, []byte(fmt.Sprintf("hello %d", i+1)), totem.Agreed); err != nil {
			log.Fatal(err)
		}
	}
	orders := map[string]bool{}
	for _, a := range apps {
		select {
		case <-a.done:
		case <-ctx.Done():
			log.Fatal("not every message was delivered")
		}
		orders[fmt.Sprint(a.got)] = true
	}
	fmt.Println("nodes agreeing on one order:", len(orders) == 1)
	got := apps[0].got
	sort.Strings(got)
	for _, line := range got {
		fmt.Println(line)
	}
	// Output:
	// nodes agreeing on one order: true
	// hello 1 from node 1
	// hello 2 from node 2
	// hello 3 from node 3
}
