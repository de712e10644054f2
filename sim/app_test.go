package sim

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
	"github.com/gototem/gototem/totem"
)

// tally is a totem.GroupHandler counting what it gets.
type tally struct {
	msgs    int
	changes []totem.GroupChange
	last    totem.Message
}

func (t *tally) Deliver(m totem.Message) {
	t.msgs++
	t.last = m
	t.last.Payload = append([]byte(nil), m.Payload...)
}
func (t *tally) ConfigChange(c totem.GroupChange) { t.changes = append(t.changes, c) }

// The application's invariants run after every step that ran its code, not only when RunFor
// returns: a state that holds for one step only (here, exactly four messages delivered at
// node 1; the rep sends its first message with its held token, srp/holdsend.go, so node 1's
// count runs 0, 1, 2, 4, 5, 7, 9) is caught at that step, although at every RunFor boundary
// the count is elsewhere.
// Shown failing: with the per-step check removed from Sim.run, RunFor returns nil here.
func TestAppInvariantsAfterEveryStep(t *testing.T) {
	apps := map[totem.NodeID]*tally{}
	var groups []*Group
	s, err := New(Options{Seed: 3, Nodes: 3, Token: time.Second,
		App: func(n *AppNode) error {
			h := &tally{}
			g, err := n.Join("app", h)
			if err != nil {
				return err
			}
			apps[n.ID()] = h
			groups = append(groups, g)
			return nil
		},
		Invariants: []Invariant{{Name: "never three", Check: func(*Sim) error {
			if h := apps[1]; h != nil && h.msgs == 4 {
				return fmt.Errorf("n1 delivered exactly 4")
			}
			return nil
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for i := 0; i < 3; i++ {
			if err := g.TrySend([]byte("x"), totem.Agreed); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = s.RunFor(5 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "never three") {
		t.Fatalf("RunFor = %v, want the per-step violation (n1 delivered %d in the end)", err, apps[1].msgs)
	}
	if apps[1].msgs != 4 {
		t.Fatalf("stopped with n1 at %d messages, not at the violating step", apps[1].msgs)
	}
	if got := apps[1].last; string(got.Payload) != "x" || got.Group != "app" || got.Sender.PID != appPID {
		t.Fatalf("last message %+v: the simulator's header must not reach the handler", got)
	}
}

// A handler's calls mirror totem's: a second Join of a group is ErrGroupJoined, a send after a
// crash is ErrStopped, a group of the simulator's own process is refused, and the handler
// sees its own leave confchg and nothing of the group after it.
func TestAppGroupCalls(t *testing.T) {
	var nodes []*AppNode
	var groups []*Group
	hs := map[totem.NodeID]*tally{}
	s, err := New(Options{Seed: 5, Nodes: 2, Token: time.Second, App: func(n *AppNode) error {
		h := &tally{}
		g, err := n.Join("app", h)
		if err != nil {
			return err
		}
		if _, err := n.Join("app", h); err != totem.ErrGroupJoined {
			return fmt.Errorf("second Join: %v, want ErrGroupJoined", err)
		}
		if _, err := n.Join(simGroup, h); err == nil {
			return fmt.Errorf("Join of the simulator's group accepted")
		}
		nodes, groups, hs[n.ID()] = append(nodes, n), append(groups, g), h
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if m := groups[0].Members(); len(m) != 2 {
		t.Fatalf("members %v, want both nodes' processes", m)
	}
	if err := groups[1].Leave(); err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	h2 := hs[2]
	last := h2.changes[len(h2.changes)-1]
	if len(last.Left) != 1 || last.Left[0].NodeID != 2 || last.Left[0].Reason != totem.ReasonLeave {
		t.Fatalf("n2's last confchg %+v, want its own leave", last)
	}
	if err := groups[0].TrySend([]byte("after"), totem.Safe); err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if hs[1].msgs != 1 || h2.msgs != 0 {
		t.Fatalf("n1 got %d, n2 (left) got %d messages; want 1 and 0", hs[1].msgs, h2.msgs)
	}
	s.Crash(1)
	if err := groups[0].TrySend([]byte("x"), totem.Agreed); err != totem.ErrStopped {
		t.Fatalf("TrySend after a crash: %v, want ErrStopped", err)
	}
}

// Every field of totem's event types is filled in by the simulator's conversion from the
// stack's events, so a field added to totem's types but not to the simulator's conversion
// fails here (totem's own conversion is checked by the totem tests).
func TestAppConversionFillsEveryField(t *testing.T) {
	s, err := New(Options{Seed: 1, Nodes: 1, App: func(*AppNode) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	n := s.nodes[0]
	a := &AppNode{n: n, groups: map[string]*Group{}, lastRegular: []totem.NodeID{7}}
	var got []any
	a.onMember = func(m totem.Membership) { got = append(got, m) }
	a.onQuorum = func(q totem.QuorumState) { got = append(got, q) }
	h := &tally{}
	a.groups["g"] = &Group{a: a, name: "g", h: h}
	p := services.Process{NodeID: 2, PID: 9, Group: "g"}
	a.deliver(stack.Event{Membership: &srp.Configuration{Kind: srp.Regular, RingID: srp.RingID{Rep: 1, Seq: 4}, Members: []srp.NodeID{1, 2}}})
	a.deliver(stack.Event{Quorum: &quorum.Change{RingID: quorum.RingID{Rep: 1, Seq: 4}, Members: []quorum.NodeID{1, 2}, Quorate: true, ExpectedVotes: 3, TotalVotes: 2, Quorum: 2}})
	a.deliver(stack.Event{Group: &services.Confchg{Group: "g", Members: []services.Process{p},
		Joined: []services.MemberChange{{Process: p, Reason: services.Reason(1)}}, Left: []services.MemberChange{{Process: p, Reason: services.Reason(3)}}}})
	a.deliver(stack.Event{Message: &services.GroupMessage{Group: "g", Sender: 2, PID: 9, Payload: []byte("p")}})
	got = append(got, h.changes[0], h.last)
	for _, v := range got {
		rv := reflect.ValueOf(v)
		for i := 0; i < rv.NumField(); i++ {
			if rv.Field(i).IsZero() {
				t.Errorf("%T.%s is zero after conversion: %+v", v, rv.Type().Field(i).Name, v)
			}
		}
	}
}
