package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/totem"
)

func init() {
	register("quorum", command{
		summary: "votequorum status of a running node, as corosync-quorumtool (quorum [--socket PATH] [-l | -e N | -v N [-n ID]])",
		run:     runQuorum,
	})
}

const quorumUsage = `usage: gototem quorum [--socket PATH] [-s | -l]
       gototem quorum [--socket PATH] -e N            set expected votes
       gototem quorum [--socket PATH] -v N [-n ID]    set votes of node ID (default: this node)
       gototem quorum [--socket PATH] --cancel-wfa    cancel wait_for_all
-s (default) exits 0 when quorate, 2 when not, 1 on error.
`

func runQuorum(args []string, stdout, stderr io.Writer) int {
	fs, sock := clientFlags("quorum", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, quorumUsage) }
	fs.Bool("s", false, "status (the default)")
	list := fs.Bool("l", false, "list members only")
	expected := fs.Int64("e", 0, "set expected votes")
	votes := fs.Int64("v", -1, "set votes")
	nodeid := fs.Int64("n", 0, "node for -v")
	cancel := fs.Bool("cancel-wfa", false, "cancel wait_for_all")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprint(stderr, quorumUsage)
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["e"]:
		if *expected <= 0 || *expected > 1<<31-1 {
			fmt.Fprintln(stderr, "New expected votes value was not valid, try a positive number")
			return 1
		}
		return clientSilent(*sock, fmt.Sprintf("setexpected %d", *expected), stderr)
	case set["v"]:
		if *votes < 0 || *votes > 1<<31-1 {
			fmt.Fprintln(stderr, "New votes value was not valid, try a positive number or zero")
			return 1
		}
		id := *nodeid
		if !set["n"] {
			st, err := controlCall(*sock, "cmap runtime.votequorum.this_node_id", 10*time.Second)
			if err != nil {
				fmt.Fprintf(stderr, "gototem: %v\n", err)
				return 1
			}
			_, v, _ := strings.Cut(strings.TrimSpace(st), " = ")
			if _, err := fmt.Sscan(v, &id); err != nil {
				fmt.Fprintln(stderr, "Unable to retrieve this_node_id")
				return 1
			}
		}
		if id <= 0 || id > 1<<32-1 {
			fmt.Fprintln(stderr, "The nodeid was not valid, try a positive number")
			return 1
		}
		return clientSilent(*sock, fmt.Sprintf("setvotes %d %d", id, *votes), stderr)
	case *cancel:
		return clientSilent(*sock, "cancelwfa", stderr)
	}
	req := "quorum"
	if *list {
		req += " -l"
	}
	out, err := controlCall(*sock, req, 10*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: %v\n", err)
		return 1
	}
	io.WriteString(stdout, out)
	if !*list && strings.Contains(out, "\nQuorate:          No\n") {
		return 2
	}
	return 0
}

func clientSilent(sock, req string, stderr io.Writer) int {
	if _, err := controlCall(sock, req, 10*time.Second); err != nil {
		fmt.Fprintf(stderr, "gototem: %v\n", err)
		return 1
	}
	return 0
}

// ctimeLayout is C ctime()'s text without the newline.
const ctimeLayout = "Mon Jan _2 15:04:05 2006"

// quorumView builds corosync-quorumtool's input from a node's status: the name column is
// the nodelist name, else the node's first address.
func quorumView(s totem.Status, now time.Time) quorum.View {
	v := quorum.View{
		Date:     now.Format(ctimeLayout),
		Provider: s.QuorumProvider,
		NodeID:   quorum.NodeID(s.NodeID),
		Status:   s.Quorum,
		Names:    map[quorum.NodeID]string{},
	}
	for _, ns := range s.Nodes {
		name := ns.Name
		if name == "" {
			for _, a := range ns.Addrs {
				if a != "" {
					name = a
					break
				}
			}
		}
		v.Names[quorum.NodeID(ns.NodeID)] = name
	}
	return v
}

// formatQuorum renders quorumtool -s, or -l with list.
func formatQuorum(s totem.Status, now time.Time, list bool) string {
	v := quorumView(s, now)
	if list {
		return quorum.FormatList(v)
	}
	return quorum.FormatStatus(v)
}
