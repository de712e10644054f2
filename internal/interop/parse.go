package interop

import (
	"bufio"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// This file holds the pure readers of what the corosync tools print (and what gototem's client
// commands print in the same formats, see docs/reference/tool-outputs.md), of the
// corosync log lines the suite watches, and of the C CPG client's output. None of them runs a
// process, so they are tested without root.

// RingID is a ring as corosync prints it: the representative's nodeid and the ring sequence,
// both in lower-case hex ("1.1c").
type RingID struct {
	Rep uint32
	Seq uint64
}

func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.Rep, r.Seq) }

// IsZero reports whether r is the zero ring (no ring known).
func (r RingID) IsZero() bool { return r == RingID{} }

// ParseRingID reads "rep.seq" with both parts in hex, as corosync-quorumtool and the log print it.
func ParseRingID(s string) (RingID, error) {
	rep, seq, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok {
		return RingID{}, fmt.Errorf("ring id %q: want <rep>.<seq> in hex", s)
	}
	r, err := strconv.ParseUint(rep, 16, 32)
	if err != nil {
		return RingID{}, fmt.Errorf("ring id %q: representative: %v", s, err)
	}
	q, err := strconv.ParseUint(seq, 16, 64)
	if err != nil {
		return RingID{}, fmt.Errorf("ring id %q: sequence: %v", s, err)
	}
	return RingID{Rep: uint32(r), Seq: q}, nil
}

// ParseJoinedMembers returns, sorted, the nodeids whose runtime.members.<id>.status is "joined"
// in corosync-cmapctl output (or `gototem cmap runtime.members`). Entries are never deleted
// from that tree, so nodes that left show up with status "left" and are not returned.
func ParseJoinedMembers(out string) ([]int, error) {
	var ids []int
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, ok := strings.Cut(line, " (str) = ")
		if !ok || !strings.HasPrefix(key, "runtime.members.") || !strings.HasSuffix(key, ".status") {
			continue
		}
		idText := strings.TrimSuffix(strings.TrimPrefix(key, "runtime.members."), ".status")
		id, err := strconv.ParseUint(idText, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("cmap line %q: nodeid: %v", line, err)
		}
		if val == "joined" {
			ids = append(ids, int(id))
		}
	}
	sort.Ints(ids)
	return ids, nil
}

// ParseCmapValue returns the value of key in cmapctl "key (type) = value" output.
func ParseCmapValue(out, key string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), " (")
		if !ok || k != key {
			continue
		}
		if _, v, ok := strings.Cut(rest, ") = "); ok {
			return v, true
		}
		return "", true
	}
	return "", false
}

// QuorumMember is one row of the "Membership information" table.
type QuorumMember struct {
	NodeID int
	Votes  int
	Name   string
	Local  bool
}

// QuorumStatus is what corosync-quorumtool -s (and `gototem quorum`) prints.
type QuorumStatus struct {
	Provider        string
	Nodes           int
	NodeID          int
	Ring            RingID
	Quorate         bool
	ExpectedVotes   int
	HighestExpected int
	TotalVotes      int
	Quorum          int
	Flags           []string
	Members         []QuorumMember
}

// ParseQuorumStatus reads the -s layout: "Label: value" lines with an 18-column label, then the
// membership table. It insists on the fields a test compares (node id, ring id, quorate, the
// vote counts) so that a changed format fails loudly instead of comparing zeros.
func ParseQuorumStatus(out string) (QuorumStatus, error) {
	var q QuorumStatus
	seen := map[string]bool{}
	inTable := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if inTable {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			id, err1 := strconv.Atoi(f[0])
			votes, err2 := strconv.Atoi(f[1])
			if err1 != nil || err2 != nil {
				continue // the header row, or a row this parser does not know (Qdevice)
			}
			m := QuorumMember{NodeID: id, Votes: votes}
			if len(f) > 2 {
				name := strings.Join(f[2:], " ")
				m.Local = strings.HasSuffix(name, " (local)")
				m.Name = strings.TrimSuffix(name, " (local)")
			}
			q.Members = append(q.Members, m)
			continue
		}
		if strings.HasPrefix(line, "Membership information") {
			inTable = true
			continue
		}
		label, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch label {
		case "Quorum provider":
			q.Provider = val
		case "Nodes":
			q.Nodes, err = strconv.Atoi(val)
		case "Node ID":
			q.NodeID, err = parseNodeIDText(val)
		case "Ring ID":
			q.Ring, err = ParseRingID(val)
		case "Quorate":
			switch val {
			case "Yes":
				q.Quorate = true
			case "No":
			default:
				err = fmt.Errorf("want Yes or No")
			}
		case "Expected votes":
			q.ExpectedVotes, err = strconv.Atoi(val)
		case "Highest expected":
			q.HighestExpected, err = strconv.Atoi(val)
		case "Total votes":
			q.TotalVotes, err = strconv.Atoi(val)
		case "Quorum":
			// "2  " when quorate, "2 Activity blocked" when not
			f := strings.Fields(val)
			if len(f) == 0 {
				err = fmt.Errorf("empty")
			} else {
				q.Quorum, err = strconv.Atoi(f[0])
			}
		case "Flags":
			q.Flags = strings.Fields(val)
		default:
			continue
		}
		if err != nil {
			return q, fmt.Errorf("quorum status: line %d: %s: %v", ln, label, err)
		}
		seen[label] = true
	}
	for _, need := range []string{"Node ID", "Ring ID", "Quorate", "Expected votes", "Total votes", "Quorum"} {
		if !seen[need] {
			return q, fmt.Errorf("quorum status: no %q line in %q", need, firstLines(out, 4))
		}
	}
	return q, nil
}

func parseNodeIDText(s string) (int, error) {
	if strings.HasPrefix(s, "0x") {
		v, err := strconv.ParseUint(s[2:], 16, 32)
		return int(v), err
	}
	v, err := strconv.ParseUint(s, 10, 32)
	return int(v), err
}

// ParseLinkStatus reads corosync-cfgtool -s (and `gototem status`): the per-node cells
// "nodeid: <id>:<TAB><state>" of every link, keyed by link then nodeid.
func ParseLinkStatus(out string) (map[int]map[int]string, error) {
	links := map[int]map[int]string{}
	link := -1
	sc := bufio.NewScanner(strings.NewReader(out))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "LINK ID "):
			f := strings.Fields(t)
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fmt.Errorf("link status: line %d: link id: %v", ln, err)
			}
			link = n
			links[link] = map[int]string{}
		case strings.HasPrefix(t, "nodeid:"):
			if link < 0 {
				return nil, fmt.Errorf("link status: line %d: node cell before any LINK ID line", ln)
			}
			rest := strings.TrimSpace(strings.TrimPrefix(t, "nodeid:"))
			idText, state, ok := strings.Cut(rest, ":")
			if !ok {
				return nil, fmt.Errorf("link status: line %d: %q: no ':' after the nodeid", ln, t)
			}
			id, err := strconv.Atoi(strings.TrimSpace(idText))
			if err != nil {
				return nil, fmt.Errorf("link status: line %d: nodeid: %v", ln, err)
			}
			links[link][id] = strings.TrimSpace(state)
		}
	}
	if len(links) == 0 {
		return nil, fmt.Errorf("link status: no LINK ID line in %q", firstLines(out, 4))
	}
	return links, nil
}

// LogEventKind is what a watched corosync log line says.
type LogEventKind int

const (
	// LogMembership: "A new membership (R) was formed." — totem installed ring R.
	LogMembership LogEventKind = iota
	// LogSyncCompleted: "Completed service synchronization" — every service finished its sync
	// for the latest membership (the sync engine restarts on every REGULAR configuration, so a
	// completion belongs to the membership line before it).
	LogSyncCompleted
)

// LogEvent is one watched log line, in file order.
type LogEvent struct {
	Kind   LogEventKind
	Ring   RingID // the ring formed, or for LogSyncCompleted the ring whose sync completed
	Joined []int  // LogMembership: "Members joined: ..."
	Left   []int  // LogMembership: "Members left: ..."
	Line   string
}

// corosync (totemsrp.c) prints "Members" then " joined: 2 3" and " left: 4" when there are any:
// "A new membership (1.16) was formed. Members joined: 2 left: 3".
var membershipRE = regexp.MustCompile(`A new membership \(([0-9a-f]+\.[0-9a-f]+)\) was formed\. Members(?: joined:((?: [0-9]+)*))?(?: left:((?: [0-9]+)*))?`)

// ParseCorosyncLog extracts, in order, the memberships formed and the sync completions from a
// corosync log. A completion line is attributed to the last membership before it; one before
// any membership (impossible in a real log) is dropped rather than guessed.
func ParseCorosyncLog(text string) []LogEvent {
	var evs []LogEvent
	var cur RingID
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := membershipRE.FindStringSubmatch(line); m != nil {
			r, err := ParseRingID(m[1])
			if err != nil {
				continue
			}
			cur = r
			evs = append(evs, LogEvent{Kind: LogMembership, Ring: r, Joined: ints(m[2]), Left: ints(m[3]), Line: line})
			continue
		}
		if strings.Contains(line, "Completed service synchronization") && !cur.IsZero() {
			evs = append(evs, LogEvent{Kind: LogSyncCompleted, Ring: cur, Line: line})
		}
	}
	return evs
}

// SyncState summarises a log: the last ring formed and whether its sync completed.
func SyncState(evs []LogEvent) (last RingID, synced bool) {
	for _, e := range evs {
		switch e.Kind {
		case LogMembership:
			last, synced = e.Ring, false
		case LogSyncCompleted:
			if e.Ring == last {
				synced = true
			}
		}
	}
	return last, synced
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		if v, err := strconv.Atoi(f); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// McastAddrFor is the IPv4 multicast group corosync 3.1 derives from cluster_name for link
// `link` when the config gives no mcastaddr (totemconfig.c; corosync-conf.md §3.5): a 16-bit
// shift-and-add hash of the name plus the link number, spread as 239.192.<hi>.<lo mod 255>.
func McastAddrFor(clusterName string, link int) netip.Addr {
	var id uint16
	for i := 0; i < len(clusterName); i++ {
		id = id<<1 + uint16(clusterName[i])
	}
	id += uint16(link)
	return netip.AddrFrom4([4]byte{239, 192, byte(id >> 8), byte(id % 255)})
}

// Delivery is one message a CPG member received: the totem sender, the sending process and
// the payload.
type Delivery struct {
	NodeID  int
	PID     int
	Payload string
}

// Confchg is one CPG configuration change as the C client prints it.
type Confchg struct {
	Members []Process
	Joined  []Process
	Left    []Process
}

// Process is a CPG member: (nodeid, pid), with the reason of a join or leave (cpg.h
// CPG_REASON_*: 1 JOIN, 2 LEAVE, 3 NODEDOWN, 4 NODEUP, 5 PROCDOWN), 0 in a member list.
type Process struct {
	NodeID int
	PID    int
	Reason int
}

// ParseClientLine reads one line of testdata/cpgclient.c's output. Kinds: "DELIVER" (d set),
// "CONFCHG" (c set), anything else (READY, SENT, ERROR, BYE) is returned with its kind only.
func ParseClientLine(line string) (kind string, d Delivery, c Confchg, err error) {
	kind, rest, _ := strings.Cut(line, " ")
	switch kind {
	case "DELIVER":
		f := strings.SplitN(rest, " ", 3)
		if len(f) != 3 {
			return kind, d, c, fmt.Errorf("client line %q: want DELIVER <nodeid> <pid> <payload>", line)
		}
		if d.NodeID, err = strconv.Atoi(f[0]); err != nil {
			return kind, d, c, fmt.Errorf("client line %q: nodeid: %v", line, err)
		}
		if d.PID, err = strconv.Atoi(f[1]); err != nil {
			return kind, d, c, fmt.Errorf("client line %q: pid: %v", line, err)
		}
		d.Payload, err = Unescape(f[2])
		if err != nil {
			return kind, d, c, fmt.Errorf("client line %q: payload: %v", line, err)
		}
	case "CONFCHG":
		for _, field := range strings.Fields(rest) {
			name, list, ok := strings.Cut(field, "=")
			if !ok {
				return kind, d, c, fmt.Errorf("client line %q: field %q: want name=list", line, field)
			}
			ps, err := parseProcs(list)
			if err != nil {
				return kind, d, c, fmt.Errorf("client line %q: %s: %v", line, name, err)
			}
			switch name {
			case "members":
				c.Members = ps
			case "joined":
				c.Joined = ps
			case "left":
				c.Left = ps
			}
		}
	}
	return kind, d, c, nil
}

// parseProcs reads "1/123:4,2/456:0" (nodeid/pid:reason, comma separated, "-" for none).
func parseProcs(s string) ([]Process, error) {
	if s == "-" || s == "" {
		return nil, nil
	}
	var out []Process
	for _, e := range strings.Split(s, ",") {
		var p Process
		if _, err := fmt.Sscanf(e, "%d/%d:%d", &p.NodeID, &p.PID, &p.Reason); err != nil {
			return nil, fmt.Errorf("process %q: want nodeid/pid:reason", e)
		}
		out = append(out, p)
	}
	return out, nil
}

// Unescape undoes the client's payload escaping: printable ASCII as itself, backslash as "\\",
// every other byte as \xHH.
func Unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad escape %q at byte %d", s[i:i+4], i)
			}
			b.WriteByte(byte(v))
			i += 3
		default:
			return "", fmt.Errorf("dangling backslash at byte %d", i)
		}
	}
	return b.String(), nil
}

// PayloadOrder returns, in line order, the tokens of want that appear in lines, each line
// contributing at most one token. It reads any client's output whose message lines contain the
// payload as a whole word (quoted or not): the suite sends unique fixed-width tokens, so the
// order of deliveries can be compared across nodes without depending on one listener's format.
func PayloadOrder(lines []string, want map[string]bool) []string {
	var out []string
	for _, l := range lines {
		for _, w := range strings.FieldsFunc(l, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '"' || r == '\'' || r == '=' || r == ',' || r == ':'
		}) {
			if want[w] {
				out = append(out, w)
				break
			}
		}
	}
	return out
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
