package interop

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/gototem/gototem/sim"
	"github.com/gototem/gototem/srp"
)

// labSend is one message a lab test sent: its sender and its text, which names it uniquely.
type labSend struct {
	sender srp.NodeID
	text   string
}

// evsHistory turns `gototem listen --rings` streams into a sim.History, so the lab's
// deliveries go through exactly the checkers the simulator runs (total order, no creation, no
// duplication, self delivery, configuration agreement, virtual synchrony). sent lists the
// messages in each sender's send order; logs maps a node to its listener's lines. Messages
// are named by their index in sent, so a delivered text that was never sent is a creation.
// Only AGREED messages are supported: a listen line does not carry the guarantee.
func evsHistory(sent []labSend, logs map[srp.NodeID][]string) (*sim.History, error) {
	nodes := make([]srp.NodeID, 0, len(logs))
	for id := range logs {
		nodes = append(nodes, id)
	}
	h := sim.NewHistory(nodes)
	step := uint64(0)
	next := func() uint64 { step++; return step }
	for _, id := range h.Nodes {
		h.AddStart(id, next(), 0)
	}
	byText := map[string]sim.MsgID{}
	for i, s := range sent {
		id := sim.MsgID{Sender: s.sender, Counter: uint64(i)}
		byText[s.text] = id
		h.AddSent(id, srp.Agreed, sim.TaggedPayload(id, []byte(s.text)), next(), 0)
	}
	for _, node := range h.Nodes {
		for n, line := range logs[node] {
			switch {
			case strings.HasPrefix(line, "RING "):
				c, err := parseRingLine(line)
				if err != nil {
					return nil, fmt.Errorf("node %d line %d: %v", node, n+1, err)
				}
				h.AddConfig(node, c, next(), 0)
			case strings.HasPrefix(line, "MSG "):
				f := strings.SplitN(line, " ", 4)
				if len(f) != 4 {
					return nil, fmt.Errorf("node %d line %d: malformed %q", node, n+1, line)
				}
				sender, err := strconv.ParseUint(f[1], 10, 32)
				if err != nil {
					return nil, fmt.Errorf("node %d line %d: sender %q", node, n+1, f[1])
				}
				text, err := strconv.Unquote(f[3])
				if err != nil {
					return nil, fmt.Errorf("node %d line %d: payload %s: %v", node, n+1, f[3], err)
				}
				// An unknown text keeps an id no send has, which the checker reports as created.
				id, ok := byText[text]
				if !ok {
					id = sim.MsgID{Sender: srp.NodeID(sender), Counter: 1 << 62}
				}
				m := srp.Message{Sender: srp.NodeID(sender), Guarantee: srp.Agreed, Payload: sim.TaggedPayload(id, []byte(text))}
				h.AddDelivery(node, m, next(), 0)
			}
		}
	}
	return h, nil
}

// parseRingLine reads `RING <kind> ring=<rep>.<seq> members=.. joined=.. left=..`.
func parseRingLine(line string) (srp.Configuration, error) {
	var c srp.Configuration
	f := strings.Fields(line)
	if len(f) != 6 {
		return c, fmt.Errorf("malformed ring line %q", line)
	}
	switch f[1] {
	case "regular":
		c.Kind = srp.Regular
	case "transitional":
		c.Kind = srp.Transitional
	default:
		return c, fmt.Errorf("ring line %q: unknown kind", line)
	}
	rep, seq, ok := strings.Cut(strings.TrimPrefix(f[2], "ring="), ".")
	r, err1 := strconv.ParseUint(rep, 10, 32)
	s, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return c, fmt.Errorf("ring line %q: bad ring id", line)
	}
	c.RingID = srp.RingID{Rep: srp.NodeID(r), Seq: s}
	lists := []*[]srp.NodeID{&c.Members, &c.Joined, &c.Left}
	for i, key := range []string{"members=", "joined=", "left="} {
		v, found := strings.CutPrefix(f[3+i], key)
		if !found {
			return c, fmt.Errorf("ring line %q: want %s", line, key)
		}
		if v == "-" {
			continue
		}
		for _, x := range strings.Split(v, ",") {
			id, err := strconv.ParseUint(x, 10, 32)
			if err != nil {
				return c, fmt.Errorf("ring line %q: bad node id %q", line, x)
			}
			*lists[i] = append(*lists[i], srp.NodeID(id))
		}
	}
	return c, nil
}

// checkLabEVS runs the simulator's checkers over the lab's listener streams.
func checkLabEVS(t *testing.T, sent []labSend, logs map[srp.NodeID][]string) {
	t.Helper()
	h, err := evsHistory(sent, logs)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range h.Check() {
		t.Errorf("EVS: %s: %s", v.Invariant, v.Detail)
	}
}

// TestLabEVSCheckerCatches shows the lab's EVS check can fail: the same translation, fed
// streams broken the ways a faulty node could break them, reports the matching invariant,
// and a clean pair of streams passes.
func TestLabEVSCheckerCatches(t *testing.T) {
	sent := []labSend{{1, "a"}, {1, "b"}, {2, "c"}}
	r1 := "RING regular ring=1.4 members=1,2,3 joined=- left=-"
	tr := "RING transitional ring=1.8 members=1,2 joined=- left=3"
	r2 := "RING regular ring=1.8 members=1,2 joined=- left=-"
	msg := func(sender int, text string) string { return fmt.Sprintf("MSG %d 77 %q", sender, text) }
	clean := []string{r1, msg(1, "a"), msg(2, "c"), tr, msg(1, "b"), r2}
	cases := []struct {
		name string
		two  []string // node 2's stream; node 1's is always clean
		want string   // invariant, "" for none
	}{
		{"clean", clean, ""},
		{"order swapped", []string{r1, msg(2, "c"), msg(1, "a"), tr, msg(1, "b"), r2}, sim.InvTotalOrder},
		{"duplicate", []string{r1, msg(1, "a"), msg(1, "a"), msg(2, "c"), tr, msg(1, "b"), r2}, sim.InvNoDuplication},
		{"created", []string{r1, msg(1, "a"), msg(2, "zzz"), msg(2, "c"), tr, msg(1, "b"), r2}, sim.InvNoCreation},
		{"message moved across the change", []string{r1, msg(1, "a"), msg(2, "c"), msg(1, "b"), tr, r2}, sim.InvVirtualSynchron},
		// Issue 12's stream: node 1 delivered its own message right after the ring was
		// installed, node 2 skipped it and delivered the next one in the same ring, which
		// carried on (no configuration change closes it, so virtual synchrony never looks).
		{"own message delivered by its sender alone", []string{r1, msg(2, "c")}, sim.InvSenderAlone},
		{"different members for one ring", []string{r1, msg(1, "a"), msg(2, "c"), tr, msg(1, "b"),
			"RING regular ring=1.8 members=1,2,3 joined=- left=-"}, sim.InvConfigAgreement},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := evsHistory(sent, map[srp.NodeID][]string{1: clean, 2: tc.two})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range h.Check() {
				got = append(got, v.Invariant)
			}
			if tc.want == "" && len(got) > 0 {
				t.Fatalf("clean streams reported %v", got)
			}
			if tc.want != "" && !strings.Contains(strings.Join(got, ";"), tc.want) {
				t.Fatalf("want %q reported, got %v", tc.want, got)
			}
		})
	}
	if _, err := evsHistory(sent, map[srp.NodeID][]string{1: {"RING odd ring=1.1 members=1 joined=- left=-"}}); err == nil {
		t.Fatal("a malformed RING line was accepted")
	}
}
