package interop

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// These tests need no root: they prove the readers of the tool outputs, logs and client lines
// on texts in corosync's formats (tool-outputs.md) and on lines of the shared captures' logs.

func TestParseRingID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RingID
		err  bool
	}{
		{in: "1.1c", want: RingID{1, 0x1c}},
		{in: " 3.ffffffffffffffff ", want: RingID{3, ^uint64(0)}},
		{in: "a.0", want: RingID{10, 0}},
		{in: "1c", err: true},
		{in: "1.", err: true},
		{in: "x.1", err: true},
		{in: "100000000.1", err: true}, // the representative is a 32-bit nodeid
	} {
		got, err := ParseRingID(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseRingID(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if !tc.err && got.String() != strings.TrimSpace(tc.in) {
			t.Errorf("%q round-trips as %q", tc.in, got.String())
		}
	}
}

const quorumSample = `Quorum information
------------------
Date:             Wed Mar  6 10:15:42 2024
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          1
Ring ID:          1.1c
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate 

Membership information
----------------------
    Nodeid      Votes Name
         1          1 node1 (local)
         2          1 node2
         3          1 node3
`

func TestParseQuorumStatus(t *testing.T) {
	q, err := ParseQuorumStatus(quorumSample)
	if err != nil {
		t.Fatal(err)
	}
	want := QuorumStatus{Provider: "corosync_votequorum", Nodes: 3, NodeID: 1, Ring: RingID{1, 0x1c}, Quorate: true,
		ExpectedVotes: 3, HighestExpected: 3, TotalVotes: 3, Quorum: 2, Flags: []string{"Quorate"},
		Members: []QuorumMember{{1, 1, "node1", true}, {2, 1, "node2", false}, {3, 1, "node3", false}}}
	if fmt.Sprintf("%+v", q) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", q, want)
	}

	inquorate := strings.NewReplacer("Quorate:          Yes", "Quorate:          No",
		"Quorum:           2  ", "Quorum:           2 Activity blocked", "Total votes:      3", "Total votes:      1",
		"Node ID:          1", "Node ID:          0x00000001").Replace(quorumSample)
	q, err = ParseQuorumStatus(inquorate)
	if err != nil {
		t.Fatal(err)
	}
	if q.Quorate || q.Quorum != 2 || q.TotalVotes != 1 || q.NodeID != 1 {
		t.Errorf("inquorate variant read as %+v", q)
	}

	for name, broken := range map[string]string{
		"no ring id":     strings.Replace(quorumSample, "Ring ID:          1.1c\n", "", 1),
		"bad quorate":    strings.Replace(quorumSample, "Quorate:          Yes", "Quorate:          Maybe", 1),
		"bad votes":      strings.Replace(quorumSample, "Total votes:      3", "Total votes:      three", 1),
		"an error reply": "Cannot initialize QUORUM service\n",
	} {
		if _, err := ParseQuorumStatus(broken); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseJoinedMembers(t *testing.T) {
	out := `runtime.members.1.config_version (u64) = 0
runtime.members.1.ip (str) = r(0) ip(10.77.0.1) 
runtime.members.1.join_count (u32) = 1
runtime.members.1.status (str) = joined
runtime.members.10.status (str) = joined
runtime.members.2.status (str) = joined
runtime.members.3.join_count (u32) = 2
runtime.members.3.status (str) = left
`
	got, err := ParseJoinedMembers(out)
	if err != nil || !slices.Equal(got, []int{1, 2, 10}) {
		t.Errorf("got %v, %v; want [1 2 10] (left members excluded, numeric order)", got, err)
	}
	if _, err := ParseJoinedMembers("runtime.members.x.status (str) = joined\n"); err == nil {
		t.Error("a non-numeric nodeid was accepted")
	}
	if v, ok := ParseCmapValue(out, "runtime.members.3.join_count"); !ok || v != "2" {
		t.Errorf("ParseCmapValue = %q, %v", v, ok)
	}
	if _, ok := ParseCmapValue(out, "runtime.members.3"); ok {
		t.Error("ParseCmapValue matched a prefix of a key")
	}
}

func TestParseLinkStatus(t *testing.T) {
	out := "Local node ID 2, transport udpu\nLINK ID 0 \n\taddr\t= 10.77.0.1\n\tstatus:\n" +
		"\t\tnodeid:          1:\tconnected\n\t\tnodeid:          2:\tlocalhost\n\t\tnodeid:          3:\tdisconnected\n"
	got, err := ParseLinkStatus(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]string{1: "connected", 2: "localhost", 3: "disconnected"}; fmt.Sprint(got[0]) != fmt.Sprint(want) || len(got) != 1 {
		t.Errorf("got %v, want link 0 = %v", got, want)
	}
	for _, bad := range []string{"", "\t\tnodeid:          1:\tconnected\n", "LINK ID x \n", "LINK ID 0 \n\t\tnodeid: one:\tconnected\n"} {
		if _, err := ParseLinkStatus(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Lines as corosync 3.1.7 wrote them (shared/captures/udpu-leave-kill.events.txt), plus a
// join and an aborted sync: the completion belongs to the ring formed last. A membership with
// both lists is printed as totemsrp.c does: "Members joined: 3 4 left: 5".
const logSample = `Nov 21 20:30:05.100 [14426] vm corosync notice  [TOTEM ] A new membership (1.12) was formed. Members joined: 2 3
Nov 21 20:30:05.101 [14426] vm corosync notice  [MAIN  ] Completed service synchronization, ready to provide service.
Nov 21 20:30:16.852 [14426] vm corosync notice  [TOTEM ] A processor failed, forming new configuration: token timed out (3650ms), waiting 4380ms for consensus.
Nov 21 20:30:21.236 [14426] vm corosync notice  [TOTEM ] A new membership (1.16) was formed. Members left: 3
Nov 21 20:30:21.236 [14426] vm corosync debug   [SYNC  ] enter sync process
Nov 21 20:30:21.236 [14426] vm corosync notice  [MAIN  ] Completed service synchronization, ready to provide service.
Nov 21 20:31:00.000 [14426] vm corosync notice  [TOTEM ] A new membership (1.1a) was formed. Members joined: 3 4 left: 5
`

func TestParseCorosyncLog(t *testing.T) {
	evs := ParseCorosyncLog(logSample)
	var got []string
	for _, e := range evs {
		if e.Kind == LogMembership {
			got = append(got, fmt.Sprintf("ring %v +%v -%v", e.Ring, e.Joined, e.Left))
		} else {
			got = append(got, fmt.Sprintf("synced %v", e.Ring))
		}
	}
	want := []string{"ring 1.12 +[2 3] -[]", "synced 1.12", "ring 1.16 +[] -[3]", "synced 1.16", "ring 1.1a +[3 4] -[5]"}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
	if last, synced := SyncState(evs); last != (RingID{1, 0x1a}) || synced {
		t.Errorf("SyncState = %v, %v; want 1.1a not yet synced", last, synced)
	}
	if last, synced := SyncState(evs[:4]); last != (RingID{1, 0x16}) || !synced {
		t.Errorf("SyncState up to the second completion = %v, %v; want 1.16 synced", last, synced)
	}
	if evs := ParseCorosyncLog("[MAIN  ] Completed service synchronization, ready to provide service.\n"); len(evs) != 0 {
		t.Errorf("a completion before any membership was attributed: %+v", evs)
	}
}

func TestMcastAddrFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		link int
		want string
	}{
		{"ExampleCluster", 0, "239.192.134.59"}, // corosync-conf.md §3.5
		{"ExampleCluster", 1, "239.192.134.60"},
		{"hacluster", 0, "239.192.204.129"},
		{"testcluster", 0, "239.192.123.175"},
		{"gototem-lab", 0, "239.192.90.134"}, // the shared captures' udp group
	} {
		if got := McastAddrFor(tc.name, tc.link).String(); got != tc.want {
			t.Errorf("McastAddrFor(%q, %d) = %s, want %s", tc.name, tc.link, got, tc.want)
		}
	}
}

func TestParseClientLine(t *testing.T) {
	kind, d, _, err := ParseClientLine(`DELIVER 3 1234 a b\\c\x00\xFF`)
	if err != nil || kind != "DELIVER" || d != (Delivery{3, 1234, "a b\\c\x00\xff"}) {
		t.Errorf("DELIVER line read as %q %+v %v", kind, d, err)
	}
	kind, _, c, err := ParseClientLine("CONFCHG members=1/10:0,2/20:0 joined=2/20:1 left=-")
	want := Confchg{Members: []Process{{1, 10, 0}, {2, 20, 0}}, Joined: []Process{{2, 20, 1}}}
	if err != nil || kind != "CONFCHG" || fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("CONFCHG line read as %q %+v %v", kind, c, err)
	}
	for _, bad := range []string{"DELIVER 3 x y", "DELIVER 3", `DELIVER 1 2 \x4`, `DELIVER 1 2 \q`, "CONFCHG members=1-10", "CONFCHG joined"} {
		if _, _, _, err := ParseClientLine(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if kind, _, _, err := ParseClientLine("SENT 4"); kind != "SENT" || err != nil {
		t.Errorf("SENT line: %q %v", kind, err)
	}
}

func TestPayloadOrder(t *testing.T) {
	want := map[string]bool{"m-c1-0001": true, "m-g3-0001": true, "m-c1-0002": true}
	lines := []string{
		`message from 3/77: "m-g3-0001"`,
		"DELIVER 1 10 m-c1-0001",
		"confchg joined 3/77",
		"DELIVER 1 10 m-c1-00012", // not a whole word of the set
		"from=1 pid=10 payload=m-c1-0002",
	}
	if got := PayloadOrder(lines, want); !slices.Equal(got, []string{"m-g3-0001", "m-c1-0001", "m-c1-0002"}) {
		t.Errorf("got %v", got)
	}
}

// New refuses options it cannot honour before it creates anything (no root needed).
func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no nodes":             {Prefix: "x"},
		"21 nodes":             {Prefix: "x", Engines: make([]Engine, 21)},
		"negative token":       {Prefix: "x", Engines: engines(Corosync), TokenMS: -1},
		"gototem without path": {Prefix: "x", Engines: engines(Corosync, Gototem)},
		"unknown engine":       {Prefix: "x", Engines: []Engine{Corosync, Engine(7)}},
		"mcastaddr with udpu":  {Prefix: "x", Engines: engines(Corosync), McastAddr: "239.1.1.1"},
		"unicast mcastaddr":    {Prefix: "x", Engines: engines(Corosync), Transport: "udp", McastAddr: "10.0.0.1"},
		"socket path too long": {Prefix: "x", Engines: engines(Corosync), Dir: "/tmp/" + strings.Repeat("d", 100)},
	} {
		if c, err := New(o); err == nil {
			c.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
