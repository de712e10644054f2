package sim_test

import (
	"fmt"
	"time"

	"github.com/gototem/gototem/examples/counter"
	"github.com/gototem/gototem/sim"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/totem"
)

// Example runs an application written for totem, the replicated counter of package
// examples/counter (a totem.GroupHandler and a membership callback), unchanged on five
// simulated nodes: the App joins its group and registers its callback exactly as an embedder
// does on a totem.Node. The cluster splits into {1,2} and {3,4,5} and heals; the counter's
// invariant (one history) is checked after every step that ran its code.
func Example() {
	apps := map[totem.NodeID]*counter.Counter{}
	var all []*counter.Counter
	chk := counter.NewChecker()
	opts := sim.Options{
		Seed:  1,
		Nodes: 5,
		Token: time.Second,
		App: func(n *sim.AppNode) error {
			c := counter.New(5)
			n.OnMembership(c.OnMembership) // totem.Options.OnMembership on a real node
			g, err := n.Join("counter", c) // (*totem.Node).Join
			if err != nil {
				return err
			}
			c.Attach(g.TrySend) // (*totem.Group).TrySend
			apps[n.ID()] = c
			all = append(all, c)
			return nil
		},
		Invariants: []sim.Invariant{{Name: "counter: one history", Check: func(*sim.Sim) error { return chk.Check(all...) }}},
	}
	s, err := sim.New(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	step := func(d time.Duration) {
		if err := s.RunFor(d); err != nil {
			fmt.Println(err)
		}
	}
	step(5 * time.Second)
	for id := totem.NodeID(1); id <= 5; id++ {
		_ = apps[id].Add(int64(id))
	}
	step(2 * time.Second)
	s.Partition([]srp.NodeID{1, 2}, []srp.NodeID{3, 4, 5})
	step(5 * time.Second)
	_ = apps[1].Add(100) // the minority {1,2} delivers it but does not apply it
	_ = apps[3].Add(1000)
	step(5 * time.Second)
	s.Heal()
	step(10 * time.Second)
	// n1 and n2 missed the majority's operation: a real service would transfer its state to
	// the Joined members of the merged ring.
	for id := totem.NodeID(1); id <= 5; id++ {
		v, n := apps[id].Value()
		fmt.Printf("n%d: value %d after %d operations\n", id, v, n)
	}
	fmt.Println("invariants:", s.Check())
	// Output:
	// n1: value 15 after 5 operations
	// n2: value 15 after 5 operations
	// n3: value 1015 after 6 operations
	// n4: value 1015 after 6 operations
	// n5: value 1015 after 6 operations
	// invariants: <nil>
}
