package sim

import (
	"io"
	"time"

	"github.com/gototem/gototem/rrp"
	"github.com/gototem/gototem/srp"
)

// Scenario is a named reproduction of a problem corosync users report, run on corosync's
// default timers. Every scenario ends by healing and checking liveness.
type Scenario struct {
	Name        string
	Description string
	Nodes       int
	// stack, when set, runs the full stack (StackProtocol) instead of bare srp.
	stack *StackOptions
	// knet, with stack, runs the stack over knet (NewKnetProtocol; Nodes filled in).
	knet *KnetOptions
	run  func(s *Sim, tok time.Duration) error
}

// Scenarios lists the named scenarios.
var Scenarios = []Scenario{
	{
		Name:        "pause-token-loss",
		Description: "a node's process is paused (VM stall) for three token timeouts and resumes with stale timers",
		Nodes:       3,
		run: func(s *Sim, tok time.Duration) error {
			// Longer than token + consensus, so the others form a ring without it; a pause
			// shorter than that is absorbed (the stalled node rejoins the gather in time).
			s.PauseFor(2, 3*tok)
			return s.RunFor(5 * tok)
		},
	},
	{
		Name:        "flapping-link",
		Description: "the link between two nodes goes down for three token timeouts and up for one, six times",
		Nodes:       4,
		run: func(s *Sim, tok time.Duration) error {
			s.Flap(1, 2, 3*tok, tok, 6)
			return s.RunFor(25 * tok)
		},
	},
	{
		Name:        "split-50-50",
		Description: "an even cluster of four splits into two halves of two for a while, then heals",
		Nodes:       4,
		run: func(s *Sim, tok time.Duration) error {
			s.Partition([]srp.NodeID{1, 2}, []srp.NodeID{3, 4})
			return s.RunFor(5 * tok)
		},
	},
	{
		Name:        "send-no-receive",
		Description: "one node can send but receives nothing (a broken receive path), then recovers",
		Nodes:       3,
		run: func(s *Sim, tok time.Duration) error {
			s.Deafen(3)
			return s.RunFor(5 * tok)
		},
	},
	{
		Name:        "mtu-under-loss",
		Description: "every message is netmtu-sized while every link loses 10% of datagrams",
		Nodes:       3,
		run: func(s *Sim, tok time.Duration) error {
			max := MaxPayload(s.nodes[0].cfg.NetMTU)
			if err := s.StartWorkload(Workload{Rate: 20, SafeFraction: 0.5, MinSize: max, MaxSize: max}); err != nil {
				return err
			}
			for _, a := range s.nodes {
				for _, b := range s.nodes {
					if a != b {
						p := DefaultLink
						p.Loss = 0.1
						if err := s.SetLink(a.ID, b.ID, p); err != nil {
							return err
						}
					}
				}
			}
			return s.RunFor(5 * tok)
		},
	},
	{
		Name:        "fast-restart",
		Description: "a node crashes and restarts within a third of the token timeout, before anyone noticed it left",
		Nodes:       3,
		run: func(s *Sim, tok time.Duration) error {
			s.Crash(2)
			if err := s.RunFor(tok / 3); err != nil {
				return err
			}
			if err := s.Restart(2); err != nil {
				return err
			}
			return s.RunFor(3 * tok)
		},
	},
	ringCutScenario(rrp.Active),
	ringCutScenario(rrp.Passive),
}

// FindScenario returns the scenario called name.
func FindScenario(name string) (Scenario, bool) {
	for _, sc := range Scenarios {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scenario{}, false
}

// Run plays the scenario with seed: the ring forms, a workload of AGREED and SAFE messages
// starts, the fault is applied, then the network heals and liveness is checked.
func (sc Scenario) Run(seed uint64, trace io.Writer) (Result, error) {
	return sc.RunApp(seed, nil, nil, trace)
}

// RunApp is Run with an application on every node and its invariants, checked after every
// step that ran application code and at the end. With an application every node runs the
// full stack (StackProtocol). Application timers (AppNode.After) stop when the network heals,
// as the workload does, so the liveness check sees a quiet ring.
func (sc Scenario) RunApp(seed uint64, app App, invariants []Invariant, trace io.Writer) (Result, error) {
	opts := Options{Seed: seed, Nodes: sc.Nodes, Trace: trace, StartSpread: 100 * time.Millisecond, App: app, Invariants: invariants}
	safe := 0.3
	if sc.stack != nil || app != nil {
		so := StackOptions{}
		if sc.stack != nil {
			so = *sc.stack
		}
		opts.NewProtocol = NewStackProtocol(so)
		safe = 0 // see ErrStackSafe
		if sc.knet != nil {
			ko := *sc.knet
			ko.Nodes = sc.Nodes
			opts.NewProtocol = NewKnetProtocol(*sc.stack, ko)
		}
	}
	s, err := New(opts)
	if err != nil {
		return Result{}, err
	}
	res := Result{Seed: seed, Nodes: sc.Nodes}
	tok := s.nodes[0].cfg.Token
	err = func() error {
		if err := s.RunFor(2 * tok); err != nil {
			return err
		}
		if err := s.StartWorkload(Workload{Rate: 20, SafeFraction: safe, MinSize: 8, MaxSize: 128}); err != nil {
			return err
		}
		if err := s.RunFor(tok); err != nil {
			return err
		}
		if err := sc.run(s, tok); err != nil {
			return err
		}
		s.StopWorkload()
		s.quiet = true
		s.Heal()
		for _, n := range s.nodes {
			if n.paused {
				if err := s.Resume(n.ID); err != nil {
					return err
				}
			}
			if !n.up {
				if err := s.Restart(n.ID); err != nil {
					return err
				}
			}
		}
		return s.CheckLiveness()
	}()
	return finishResult(s, res, err)
}
