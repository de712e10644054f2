package services

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestAppendMcastHeaderIsMcast pins the send path that builds an MCAST as header + payload
// (stack.Send) to Mcast's single body, byte for byte: the wire must not change.
func TestAppendMcastHeaderIsMcast(t *testing.T) {
	c := NewCPG(3)
	if _, err := c.Join("grp", 42); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 1000, MaxMcastPayload} {
		payload := bytes.Repeat([]byte{0xa5}, n)
		bodies, err := c.Mcast("grp", 42, payload)
		if err != nil || len(bodies) != 1 {
			t.Fatalf("%d bytes: Mcast gave %d bodies, %v", n, len(bodies), err)
		}
		head, err := c.AppendMcastHeader([]byte("x"), "grp", 42, n)
		if err != nil {
			t.Fatal(err)
		}
		if got := append(head[1:], payload...); !bytes.Equal(got, bodies[0]) {
			t.Fatalf("%d bytes: header+payload differs from Mcast's body", n)
		}
		// Both are built by one function: check the fields against corosync's layout too
		// (qb_ipc_request_header id and size, mar_req_coroipcc_mcast's msglen, pid, nodeid).
		b := bodies[0]
		le := binary.LittleEndian
		if le.Uint32(b) != cpgMcast || int(le.Uint32(b[8:])) != len(b) || int(le.Uint32(b[152:])) != n ||
			le.Uint32(b[160:]) != 42 || le.Uint32(b[168:]) != 3 || le.Uint32(b[16:]) != 3 || string(b[24:27]) != "grp" {
			t.Fatalf("%d bytes: MCAST header fields wrong: % x", n, b[:cpgMcastHeader])
		}
	}
	if _, err := c.AppendMcastHeader(nil, "grp", 42, MaxMcastPayload+1); err == nil {
		t.Fatal("a payload that needs PARTIAL_MCAST was given an MCAST header")
	}
	if _, err := c.AppendMcastHeader(nil, "other", 42, 10); err != ErrNotJoined {
		t.Fatalf("header for a group not joined: %v", err)
	}
}

// TestReuseBuffers delivers with ReuseBuffers on: each message keeps its own payload until
// Recycle, however many follow (a slab block and the payload arena both overflow), and the
// messages after Recycle are right too.
func TestReuseBuffers(t *testing.T) {
	c := NewCPG(1)
	c.ReuseBuffers()
	body, _ := c.Join("g", 7)
	c.Deliver(1, body, false)
	c.Events()
	for round := range 2 {
		const n = slabBlock*2 + 10
		var got []*GroupMessage
		for i := range n {
			bodies, err := c.Mcast("g", 7, bytes.Repeat([]byte{byte(i + round)}, 1+i%300))
			if err != nil {
				t.Fatal(err)
			}
			c.Deliver(1, bodies[0], false)
			for _, ev := range c.Events() {
				got = append(got, ev.Message)
			}
		}
		if len(got) != n {
			t.Fatalf("round %d: %d messages delivered, want %d", round, len(got), n)
		}
		for i, m := range got {
			if want := bytes.Repeat([]byte{byte(i + round)}, 1+i%300); m.Group != "g" || m.PID != 7 || !bytes.Equal(m.Payload, want) {
				t.Fatalf("round %d: message %d changed before Recycle: %q %d %d bytes", round, i, m.Group, m.PID, len(m.Payload))
			}
		}
		c.Recycle()
	}
}

// TestLocalMembershipFollowsJoinAndLeave: the per-message paths keep their own view of the
// local members (the groups that deliver, the last (group, pid) allowed to send), and it must
// follow every join and leave: a local process's messages are refused once its leave is
// delivered, and a peer's messages to a group with no local member left are not delivered.
// It fails if a change to the local members does not reach that view.
func TestLocalMembershipFollowsJoinAndLeave(t *testing.T) {
	c := NewCPG(1)
	delivered := func() int {
		n := 0
		for _, ev := range c.Events() {
			if ev.Message != nil {
				n++
			}
		}
		return n
	}
	peerJoin := encodeProcMsg(cpgProcJoin, "g", 9, ReasonJoin)
	peerMsg := encodeMcast("g", 9, 2, []byte("from node 2"))
	join, _ := c.Join("g", 7)
	if _, err := c.AppendMcastHeader(nil, "g", 7, 10); err != nil {
		t.Fatalf("a joining process may send (corosync queues it): %v", err)
	}
	c.Deliver(2, peerJoin, false)
	c.Deliver(2, peerMsg, false)
	if n := delivered(); n != 0 {
		t.Fatalf("delivered %d messages before the local join completed", n)
	}
	c.Deliver(1, join, false)
	c.Deliver(2, peerMsg, false)
	if n := delivered(); n != 1 {
		t.Fatalf("delivered %d messages after the join, want 1", n)
	}
	leave, err := c.Leave("g", 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppendMcastHeader(nil, "g", 7, 10); err != nil {
		t.Fatalf("a leaving process may still send: %v", err)
	}
	c.Deliver(2, peerMsg, false)
	if n := delivered(); n != 1 {
		t.Fatalf("delivered %d messages while leaving, want 1", n)
	}
	c.Deliver(1, leave, false)
	if _, err := c.AppendMcastHeader(nil, "g", 7, 10); err != ErrNotJoined {
		t.Fatalf("header for a process whose leave was delivered: %v", err)
	}
	c.Deliver(2, peerMsg, false)
	if n := delivered(); n != 0 {
		t.Fatalf("delivered %d messages to a group with no local member", n)
	}
}
