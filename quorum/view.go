package quorum

import (
	"fmt"
	"slices"
	"strings"
)

// View is the input of the corosync-quorumtool renderings. Everything that is not votequorum
// state (clock, names, cmap keys) is supplied by the caller, so the output is deterministic.
type View struct {
	// Date is the C ctime() text without newline, e.g. "Wed Mar  6 10:15:42 2024".
	Date string
	// Provider is quorum.provider ("" prints "Not configured").
	Provider string
	// NodeID is runtime.votequorum.this_node_id.
	NodeID NodeID
	Status Snapshot
	// Names maps a nodeid to what the Name column shows: the nodelist name, or the address(es)
	// already resolved and joined with ", " (-a, -i). The tool appends " (local)".
	Names map[NodeID]string
	// Hex prints nodeids as 0x%08x (-H).
	Hex bool
	// Parsable always prints the Qdevice column (-p).
	Parsable bool
	// Order is -o: 'a' or 'i' (ascending nodeid, the default) or 'n' (by name, strcmp).
	Order byte
}

// flagWords are quorumtool's Flags: words in print order.
var flagWords = []struct {
	f    InfoFlags
	word string
}{
	{InfoTwoNode, "2Node"},
	{InfoQuorate, "Quorate"},
	{InfoWaitForAll, "WaitForAll"},
	{InfoLastManStanding, "LastManStanding"},
	{InfoAutoTieBreaker, "AutoTieBreaker"},
	{InfoAllowDownscale, "AllowDownscale"},
	{InfoQdeviceRegistered, "Qdevice"},
}

func (v View) nodeID(id NodeID) string {
	if v.Hex {
		return fmt.Sprintf("0x%08x", uint32(id))
	}
	return fmt.Sprintf("%d", id)
}

// FormatStatus renders `corosync-quorumtool -s` (votequorum provider), membership included.
func FormatStatus(v View) string {
	var b strings.Builder
	s := v.Status
	provider := v.Provider
	if provider == "" {
		provider = "Not configured"
	}
	b.WriteString("Quorum information\n------------------\n")
	fmt.Fprintf(&b, "Date:             %s\n", v.Date)
	fmt.Fprintf(&b, "Quorum provider:  %s\n", provider)
	fmt.Fprintf(&b, "Nodes:            %d\n", len(s.Members))
	fmt.Fprintf(&b, "Node ID:          %s\n", v.nodeID(v.NodeID))
	fmt.Fprintf(&b, "Ring ID:          %x.%x\n", uint32(s.RingID.Rep), s.RingID.Seq)
	fmt.Fprintf(&b, "Quorate:          %s\n", map[bool]string{true: "Yes", false: "No"}[s.Quorate])
	b.WriteString("\nVotequorum information\n----------------------\n")
	l := s.Local
	fmt.Fprintf(&b, "Expected votes:   %d\n", l.ExpectedVotes)
	fmt.Fprintf(&b, "Highest expected: %d\n", l.HighestExpected)
	fmt.Fprintf(&b, "Total votes:      %d\n", l.TotalVotes)
	tail := " "
	if !s.Quorate {
		tail = "Activity blocked"
	}
	fmt.Fprintf(&b, "Quorum:           %d %s\n", l.Quorum, tail)
	b.WriteString("Flags:            ")
	for _, fw := range flagWords {
		if l.Flags&fw.f != 0 {
			b.WriteString(fw.word + " ")
		}
	}
	b.WriteString("\n")
	b.WriteString(FormatList(v))
	return b.String()
}

// FormatList renders `corosync-quorumtool -l`; FormatStatus ends with the same block.
func FormatList(v View) string {
	var b strings.Builder
	s := v.Status
	ids := slices.Clone(s.Members)
	slices.Sort(ids)
	if v.Order == 'n' {
		slices.SortStableFunc(ids, func(a, c NodeID) int { return strings.Compare(v.Names[a], v.Names[c]) })
	}
	showQdevice := v.Parsable
	anyRegistered := false
	for _, id := range ids {
		if info, ok := s.Nodes[id]; ok && info.Flags&InfoQdeviceRegistered != 0 {
			showQdevice, anyRegistered = true, true
		}
	}
	b.WriteString("\nMembership information\n----------------------\n")
	fmt.Fprintf(&b, "%10s %10s ", "Nodeid", "Votes")
	if showQdevice {
		fmt.Fprintf(&b, "%10s ", "Qdevice")
	}
	b.WriteString("Name\n")
	for _, id := range ids {
		info, ok := s.Nodes[id]
		if !ok {
			// getinfo fails for a member whose NODEINFO never arrived; the tool says so in place.
			fmt.Fprintf(&b, "Unable to get node %d info\n", id)
			continue
		}
		if v.Hex {
			fmt.Fprintf(&b, "0x%08x ", uint32(id))
		} else {
			fmt.Fprintf(&b, "%10d ", id)
		}
		fmt.Fprintf(&b, "%10d ", info.Votes)
		if showQdevice {
			fmt.Fprintf(&b, "%10s ", qdeviceCell(info.Flags))
		}
		name := v.Names[id]
		if id == v.NodeID {
			name += " (local)"
		}
		b.WriteString(name + "\n")
	}
	if anyRegistered {
		l := s.Local
		cast := l.Flags&InfoQdeviceCastVote != 0
		votes := uint32(0)
		if cast {
			votes = l.QdeviceVotes
		}
		if v.Hex {
			fmt.Fprintf(&b, "0x%08x ", 0)
		} else {
			fmt.Fprintf(&b, "%10d ", 0)
		}
		fmt.Fprintf(&b, "%10d %10s %s", votes, "", l.QdeviceName)
		if !cast {
			fmt.Fprintf(&b, " (votes %d)", l.QdeviceVotes)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func qdeviceCell(f InfoFlags) string {
	if f&InfoQdeviceRegistered == 0 {
		return "NR"
	}
	pick := func(on bool, yes, no string) string {
		if on {
			return yes
		}
		return no
	}
	return pick(f&InfoQdeviceAlive != 0, "A", "NA") + "," +
		pick(f&InfoQdeviceCastVote != 0, "V", "NV") + "," +
		pick(f&InfoQdeviceMasterWins != 0, "MW", "NMW")
}
