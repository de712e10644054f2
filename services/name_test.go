package services

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gototem/gototem/srp"
)

// CPG group names are 1..128 bytes, as corosync's CPG_MAX_NAME_LENGTH: exec/cpg.c refuses a
// join only past 128 (CS_ERR_NAME_TOO_LONG) and compares names by length and bytes
// (mar_name_compare), never as C strings. A 128-byte name fills mar_cpg_name_t's value whole:
// it is joined, announced, and its messages delivered on every node; 129 bytes is refused.
func TestGroupNameOf128Bytes(t *testing.T) {
	cl := newCluster(t, 1, 2)
	all := []srp.NodeID{1, 2}
	cl.configure(srp.RingID{Rep: 1, Seq: 4}, all)
	cl.run(t, all)
	long := strings.Repeat("n", 127) + "z"
	j, err := cl.nodes[1].cpg.Join(long, 100)
	if err != nil {
		t.Fatalf("join with a 128-byte name: %v", err)
	}
	cl.send(1, "a", j)
	cl.run(t, all)
	m, err := cl.nodes[1].cpg.Mcast(long, 100, []byte("x"))
	if err != nil {
		t.Fatalf("mcast to a 128-byte name: %v", err)
	}
	cl.send(1, "a", m...)
	cl.run(t, all)
	for _, id := range all {
		if got, want := cl.nodes[id].cpg.Members(long), []Process{{1, 100, long}}; !slices.Equal(got, want) {
			t.Fatalf("node %d members %v, want %v", id, got, want)
		}
	}
	if n := countMessages(cl.nodes[1].log); n != 1 {
		t.Fatalf("node 1 delivered %d messages, want 1", n)
	}
	// The name's last byte counts: a 127-byte prefix is another group.
	if got := cl.nodes[2].cpg.Members(long[:127]); len(got) != 0 {
		t.Fatalf("the 127-byte prefix has members %v", got)
	}
	if _, err := cl.nodes[1].cpg.Join(long+"!", 101); !errors.Is(err, ErrBadGroupName) {
		t.Fatalf("join with a 129-byte name: %v, want ErrBadGroupName", err)
	}
	if _, err := cl.nodes[1].cpg.Join("", 102); !errors.Is(err, ErrBadGroupName) {
		t.Fatalf("join with an empty name: %v, want ErrBadGroupName", err)
	}
}
