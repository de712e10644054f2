package sim_test

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gototem/gototem/sim"
	"github.com/gototem/gototem/srp"
)

// counter is a replicated counter: every node applies "add n" operations in the ring's
// total order, but only while its regular configuration holds a majority of the cluster
// (a partition's minority side refuses writes, as a quorum would). Its invariant, checked
// beside gototem's: nodes that applied the same number of operations hold the same value.
type counter struct {
	send    sim.Sender
	value   int64
	applied int
	members []srp.NodeID
}

func (c *counter) OnDeliver(sender srp.NodeID, payload []byte) {
	if len(payload) != 8 {
		return
	}
	if 2*len(c.members) <= 5 {
		return // minority: the operation is delivered but not applied
	}
	c.value += int64(binary.LittleEndian.Uint64(payload))
	c.applied++
}

func (c *counter) OnConfiguration(conf srp.Configuration) {
	if conf.Kind == srp.Regular {
		c.members = append(c.members[:0], conf.Members...)
	}
}

func (c *counter) Add(n int64) error {
	return c.send.Send(binary.LittleEndian.AppendUint64(nil, uint64(n)), srp.Agreed)
}

// Example runs a replicated counter on five simulated nodes through a partition into
// {1,2} and {3,4,5} and a heal, with its own invariant checked with gototem's EVS ones.
func Example() {
	apps := map[srp.NodeID]*counter{}
	opts := sim.Options{
		Seed:  1,
		Nodes: 5,
		Token: time.Second,
		App: func(id srp.NodeID, s sim.Sender) sim.Application {
			c := &counter{send: s}
			apps[id] = c
			return c
		},
	}
	// The application's invariant: nodes that applied the same number of operations agree
	// on the value (each started from zero: no restart in this run).
	opts.Invariants = []sim.Invariant{{
		Name: "counter agreement",
		Check: func(s *sim.Sim) error {
			byApplied := map[int]int64{}
			for id, c := range apps {
				if v, ok := byApplied[c.applied]; ok && v != c.value {
					return fmt.Errorf("n%d holds %d after %d operations, another node %d", id, c.value, c.applied, v)
				}
				byApplied[c.applied] = c.value
			}
			return nil
		},
	}}
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
	for id := srp.NodeID(1); id <= 5; id++ {
		apps[id].Add(int64(id))
	}
	step(2 * time.Second)
	s.Partition([]srp.NodeID{1, 2}, []srp.NodeID{3, 4, 5})
	step(5 * time.Second)
	apps[1].Add(100) // the minority {1,2} delivers it but does not apply it
	apps[3].Add(1000)
	step(5 * time.Second)
	s.Heal()
	step(10 * time.Second)
	// n1 and n2 missed the majority's operation: a real service would transfer state to
	// the Joined members of the merged ring.
	for id := srp.NodeID(1); id <= 5; id++ {
		c := apps[id]
		fmt.Printf("n%d: value %d after %d operations, ring of %d\n", id, c.value, c.applied, len(c.members))
	}
	fmt.Println("invariants:", s.Check())
	// Output:
	// n1: value 15 after 5 operations, ring of 5
	// n2: value 15 after 5 operations, ring of 5
	// n3: value 1015 after 6 operations, ring of 5
	// n4: value 1015 after 6 operations, ring of 5
	// n5: value 1015 after 6 operations, ring of 5
	// invariants: <nil>
}
