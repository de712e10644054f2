package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gototem/gototem/totem"
)

func init() {
	register("status", command{
		summary: "link status of a running node, as corosync-cfgtool -s (status [--socket PATH] [-b])",
		run:     runStatus,
	})
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs, sock := clientFlags("status", stderr)
	fs.Bool("s", false, "link status (the default; accepted as corosync-cfgtool -s)")
	brief := fs.Bool("b", false, "brief: one status character per node")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: gototem status [--socket PATH] [-s] [-b]")
		return 2
	}
	req := "status"
	if *brief {
		req += " -b"
	}
	return clientPrint(*sock, req, stdout, stderr)
}

// clientPrint runs a one-shot request and prints its reply; exit 1 on any error.
func clientPrint(sock, req string, stdout, stderr io.Writer) int {
	out, err := controlCall(sock, req, 10*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: %v\n", err)
		return 1
	}
	io.WriteString(stdout, out)
	return 0
}

// formatCfgtoolStatus renders corosync-cfgtool -s (3.1.5+ layout) from a node's status.
// The udp/udpu transports have no per-link transport word, so each "LINK ID n " line ends
// with a space. The addr cell is, as corosync's udp/udpu code fills it, the address of
// "the other node" (the last non-local node by nodeid) on that link; a single-node cluster
// shows its own address.
func formatCfgtoolStatus(s totem.Status, brief bool) string {
	if (s.RRPMode == "active" || s.RRPMode == "passive") && !brief {
		return formatRingStatus(s)
	}
	var b strings.Builder
	transport := s.Transport
	if transport == "" {
		transport = "knet"
	}
	fmt.Fprintf(&b, "Local node ID %d, transport %s\n", s.NodeID, transport)
	if len(s.Nodes) == 0 {
		b.WriteString("No nodes found in nodelist\n")
		return b.String()
	}
	other := -1
	for i, ns := range s.Nodes {
		if ns.NodeID != s.NodeID {
			other = i
		}
	}
	for i, l := range s.Links {
		addr := l.LocalAddr
		if other >= 0 && i < len(s.Nodes[other].Addrs) && s.Nodes[other].Addrs[i] != "" {
			addr = s.Nodes[other].Addrs[i]
		}
		if l.Peers != nil {
			fmt.Fprintf(&b, "LINK ID %d udp\n", l.Link) // knet names the link's transport
		} else {
			fmt.Fprintf(&b, "LINK ID %d \n", l.Link)
		}
		fmt.Fprintf(&b, "\taddr\t= %s\n", addr)
		if brief {
			b.WriteString("\tstatus\t= ")
			for _, ns := range s.Nodes {
				switch {
				case ns.NodeID == s.NodeID:
					b.WriteByte('n')
				case l.Peers != nil:
					b.WriteByte(map[bool]byte{true: '3', false: '1'}[l.Peers[ns.NodeID]])
				case ns.Member && !l.Faulty && !s.Stuck:
					b.WriteByte('3') // enabled + 2×connected
				default:
					b.WriteByte('1') // enabled, not connected
				}
			}
			b.WriteString("\n")
			continue
		}
		b.WriteString("\tstatus:\n")
		for _, ns := range s.Nodes {
			state := "disconnected"
			switch {
			case ns.NodeID == s.NodeID:
				state = "localhost"
			case l.Peers != nil:
				// knet: the link's own ping/pong state, whatever the membership says.
				if l.Peers[ns.NodeID] {
					state = "connected"
				}
			case ns.Member && !l.Faulty && !s.Stuck:
				// A node stuck out of OPERATIONAL is connected to nobody, whatever its
				// last ring said (issue 12: status said healthy during a livelock).
				state = "connected"
			}
			fmt.Fprintf(&b, "\t\tnodeid: %10d:\t%s\n", ns.NodeID, state)
		}
	}
	return b.String()
}

// formatRingStatus renders a redundant ring the way corosync 2.x's corosync-cfgtool -s did:
// operators of rrp_mode clusters read "ring N active with no faults" or the FAULTY marking,
// which the 3.x link layout has no place for.
func formatRingStatus(s totem.Status) string {
	var b strings.Builder
	b.WriteString("Printing ring status.\n")
	fmt.Fprintf(&b, "Local node ID %d\n", s.NodeID)
	for _, l := range s.Links {
		fmt.Fprintf(&b, "RING ID %d\n", l.Link)
		fmt.Fprintf(&b, "\tid\t= %s\n", l.LocalAddr)
		fmt.Fprintf(&b, "\tstatus\t= %s\n", l.Text)
	}
	return b.String()
}

// stuckNote follows the quorumtool layout when the node cannot form a ring: the membership
// and votes above are then those of the last ring, not a live verdict (issue 12: quorum said
// the ring was healthy during a livelock). Empty otherwise, so scripts see corosync's output.
func stuckNote(s totem.Status) string {
	if !s.Stuck {
		return ""
	}
	return fmt.Sprintf("\nWARNING: %s; the information above is from the last ring\n", s.Health)
}

// formatHealth is gototem's addition after the cfgtool layout: the ring's health, the drop
// counters per reason and the protocol counters, one "name = value" per line so scripts
// can grep them.
func formatHealth(s totem.Status) string {
	var b strings.Builder
	state := s.Health
	if state == "" {
		state = "unknown (node stopped)"
	}
	fmt.Fprintf(&b, "HEALTH\n\tstate\t= %s\n", state)
	fmt.Fprintf(&b, "\tring\t= %x.%x %s for %v\n", uint32(s.RingID.Rep), s.RingID.Seq, s.State, s.StateFor.Round(time.Millisecond))
	d := s.Drops
	b.WriteString("DROPS\n")
	for _, kv := range []struct {
		k string
		v uint64
	}{
		{"unlisted_sender", d.UnlistedSender}, {"decode_error", d.DecodeError}, {"auth_failure", d.AuthFailure},
		{"replay", d.Replay}, {"oversize", d.Oversize}, {"queue_full", d.QueueFull}, {"invalid", d.Invalid},
	} {
		fmt.Fprintf(&b, "\t%s\t= %d\n", kv.k, kv.v)
	}
	p := s.Protocol
	b.WriteString("PROTOCOL\n")
	fmt.Fprintf(&b, "\tretransmits\t= %d\n\ttoken_losses\t= %d\n\tgathers\t= %d\n\trings_formed\t= %d\n", p.Retransmits, p.TokenLosses, p.Gathers, p.RingsFormed)
	fmt.Fprintf(&b, "\tsyncs\t= %d\n\tlast_sync_ms\t= %d\n", p.Syncs, p.LastSync.Milliseconds())
	return b.String()
}
