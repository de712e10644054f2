package quorum

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func names(n int) map[NodeID]string {
	m := map[NodeID]string{}
	for i := 1; i <= n; i++ {
		m[NodeID(i)] = fmt.Sprintf("node%d", i)
	}
	return m
}

func view(c *cluster, local NodeID, n int) View {
	return View{
		Date:     "Wed Mar  6 10:15:42 2024",
		Provider: "corosync_votequorum",
		NodeID:   local,
		Status:   c.nodes[local].Snapshot(),
		Names:    names(n),
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// The golden files are corosync-quorumtool's -s and -l layouts (tool-outputs.md §1.2–1.4), for
// states produced by running the clusters, not typed in.
func TestQuorumtoolGolden(t *testing.T) {
	five := newCluster(t)
	bootAll(five, 5, Config{})
	five.split(span(1, 5))

	split := newCluster(t)
	bootAll(split, 5, Config{})
	split.split(span(1, 5))
	split.split(span(1, 3), span(4, 5))

	two := newCluster(t)
	bootAll(two, 2, Config{TwoNode: true})
	two.split(span(1, 2))

	qd := newCluster(t)
	bootAll(qd, 2, Config{Device: DeviceConfig{Model: "net"}})
	qd.split(span(1, 2))
	for _, id := range []NodeID{1, 2} {
		if err := qd.nodes[id].QdeviceRegister(qd.now, "Qdevice"); err != nil {
			t.Fatal(err)
		}
		qd.drain()
		qd.device[id] = id == 1
		if err := qd.nodes[id].QdevicePoll(qd.now, "Qdevice", id == 1, qd.nodes[id].CurrentRing()); err != nil {
			t.Fatal(err)
		}
		qd.drain()
	}

	cases := []struct {
		file string
		v    View
	}{
		{"five-node", view(five, 1, 5)},
		{"split-3-side", view(split, 2, 5)},
		{"split-2-side", view(split, 4, 5)},
		{"two-node", view(two, 1, 2)},
		{"qdevice-no-vote", view(qd, 2, 2)},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			golden(t, tc.file+".s.txt", FormatStatus(tc.v))
			golden(t, tc.file+".l.txt", FormatList(tc.v))
		})
	}

	// Layout details that the goldens hold but a reader could miss.
	s := FormatStatus(view(five, 1, 5))
	for _, line := range []string{"Quorum:           3  \n", "Flags:            Quorate \n", "Ring ID:          1.18\n", "         1          1 node1 (local)\n"} {
		if !strings.Contains(s, line) {
			t.Errorf("missing %q in\n%s", line, s)
		}
	}
	if s := FormatStatus(view(split, 4, 5)); !strings.Contains(s, "Quorum:           3 Activity blocked\n") {
		t.Errorf("inquorate side lacks Activity blocked:\n%s", s)
	}
	if s := FormatStatus(view(two, 1, 2)); !strings.Contains(s, "Flags:            2Node Quorate WaitForAll \n") || !strings.Contains(s, "Quorum:           1  \n") {
		t.Errorf("two_node flags/quorum wrong:\n%s", s)
	}
}

func TestQuorumtoolOptions(t *testing.T) {
	c := newCluster(t)
	bootAll(c, 3, Config{})
	c.split(span(1, 3))
	v := view(c, 2, 3)
	v.Hex = true
	v.Names = map[NodeID]string{1: "zeta", 2: "alpha", 3: "mid"}
	v.Order = 'n'
	got := FormatList(v)
	want := "\nMembership information\n----------------------\n" +
		"    Nodeid      Votes Name\n" +
		"0x00000002          1 alpha (local)\n" +
		"0x00000003          1 mid\n" +
		"0x00000001          1 zeta\n"
	if got != want {
		t.Fatalf("-H -o n:\n%q\nwant\n%q", got, want)
	}
	v.Parsable, v.Hex, v.Order = true, false, 'a'
	if got := FormatList(v); !strings.Contains(got, "    Nodeid      Votes    Qdevice Name\n         1          1         NR zeta\n") {
		t.Fatalf("-p:\n%s", got)
	}
	// A member whose NODEINFO has not arrived has no record: the tool reports it in place.
	v.Status.Members = append(v.Status.Members, 9)
	if got := FormatList(v); !strings.Contains(got, "Unable to get node 9 info\n") {
		t.Fatalf("missing record:\n%s", got)
	}
}
