package corosvc

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gototem/gototem/totem"
)

// fakeGroups is a GroupNode with fixed process records.
type fakeGroups struct{ recs []totem.GroupProcess }

func (f *fakeGroups) Status() totem.Status { return totem.Status{} }
func (f *fakeGroups) JoinProcess(string, uint32, totem.GroupHandler) (*totem.ProcessGroup, error) {
	return nil, fmt.Errorf("not in this test")
}
func (f *fakeGroups) GroupMembers(group string) []totem.Process {
	var out []totem.Process
	for _, r := range f.recs {
		if r.Group == group {
			out = append(out, r.Process)
		}
	}
	return out
}
func (f *fakeGroups) ProcessRecords() []totem.GroupProcess { return slices.Clone(f.recs) }

// cpg_iteration_initialize's three kinds walk what corosync's do: ALL every record, ONE_GROUP
// one group's, NAME_ONLY each group once (with its first record's nodeid and pid).
func TestCpgIterationKinds(t *testing.T) {
	rec := func(g string, n, pid uint32) totem.GroupProcess {
		return totem.GroupProcess{Group: g, Process: totem.Process{NodeID: totem.NodeID(n), PID: pid}}
	}
	f := &fakeGroups{recs: []totem.GroupProcess{rec("a", 1, 10), rec("b", 1, 11), rec("a", 2, 20), rec("c", 3, 30), rec("b", 2, 21)}}
	p := NewCpg(f)
	str := func(items []totem.GroupProcess) string {
		s := ""
		for _, it := range items {
			s += fmt.Sprintf("%s/%d:%d ", it.Group, it.NodeID, it.PID)
		}
		return s
	}
	for _, c := range []struct {
		typ   uint32
		group string
		want  string
	}{
		{cpgIterAll, "", "a/1:10 b/1:11 a/2:20 c/3:30 b/2:21 "},
		{cpgIterOneGroup, "b", "b/1:11 b/2:21 "},
		{cpgIterOneGroup, "none", ""},
		{cpgIterNameOnly, "", "a/1:10 b/1:11 c/3:30 "},
	} {
		if got := str(p.iterItems(c.typ, c.group)); got != c.want {
			t.Errorf("iteration %d %q: %q, want %q", c.typ, c.group, got, c.want)
		}
	}
}
