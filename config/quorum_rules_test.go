package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gototem/gototem/quorum"
)

// TestQuorumRulesAreVotequorums: over every combination of two_node, wait_for_all (absent, 0,
// 1), auto_tie_breaker with its node list, last_man_standing, allow_downscale, expected_votes,
// a quorum device and 2–5 nodes, the corosync.conf reader accepts exactly the files votequorum
// starts with (quorum.New on Runtime.Votequorum, or on the same settings when the reader
// refuses), and the wait_for_all it reports is the one the running votequorum has (two_node is passed
// on as written: votequorum derives from it again at every start and reload). Shown failing: with config's old rule (two_node switched off
// and an absent wait_for_all with it when auto_tie_breaker is on) the reader says wait_for_all
// false where votequorum runs with true (it follows two_node before auto_tie_breaker switches
// it off), from the first two_node + auto_tie_breaker combination on.
func TestQuorumRulesAreVotequorums(t *testing.T) {
	type combo struct {
		twoNode, wfa, atbNode, ev, device string // "" absent
		atb, lms, ad                      bool
		nodes                             int
	}
	var combos []combo
	for _, twoNode := range []string{"", "1"} {
		for _, wfa := range []string{"", "0", "1"} {
			for _, atb := range []bool{false, true} {
				for _, atbNode := range []string{"", "lowest", "2 3", "first"} {
					for _, lms := range []bool{false, true} {
						for _, ad := range []bool{false, true} {
							for _, ev := range []string{"", "3"} {
								for _, device := range []string{"", "net"} {
									for nodes := 2; nodes <= 5; nodes++ {
										combos = append(combos, combo{twoNode, wfa, atbNode, ev, device, atb, lms, ad, nodes})
									}
								}
							}
						}
					}
				}
			}
		}
	}
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	bad := 0
	for _, c := range combos {
		var qs strings.Builder
		qs.WriteString("quorum {\n provider: corosync_votequorum\n")
		add := func(k, v string) {
			if v != "" {
				fmt.Fprintf(&qs, " %s: %s\n", k, v)
			}
		}
		add("two_node", c.twoNode)
		add("wait_for_all", c.wfa)
		add("auto_tie_breaker", flag(c.atb))
		add("auto_tie_breaker_node", c.atbNode)
		add("last_man_standing", flag(c.lms))
		add("allow_downscale", flag(c.ad))
		add("expected_votes", c.ev)
		if c.device != "" {
			fmt.Fprintf(&qs, " device {\n  model: %s\n }\n", c.device)
		}
		qs.WriteString("}\n")
		text := nodelistOf(c.nodes, "") + qs.String()
		rt, _, cerr := check(text, local1)
		var qc quorum.Config
		if cerr == nil {
			qc = rt.Votequorum()
		} else {
			// The reader refused the file: build votequorum's input by hand to see whether
			// votequorum refuses it too.
			qc = quorum.Config{NodeID: 1, TwoNode: c.twoNode == "1", AutoTieBreaker: c.atb, AutoTieBreakerNode: c.atbNode,
				LastManStanding: c.lms, AllowDownscale: c.ad, ExpectedVotesTracking: c.ad}
			for i := 1; i <= c.nodes; i++ {
				qc.Nodelist = append(qc.Nodelist, quorum.NodeEntry{NodeID: quorum.NodeID(i), Votes: 1})
			}
			if c.wfa != "" {
				w := c.wfa == "1"
				qc.WaitForAll = &w
			}
			if c.ev != "" {
				qc.ExpectedVotes = 3
			}
			qc.Device.Model = c.device
		}
		m, qerr := quorum.New(qc, &quorum.MemoryEVStore{}, nil)
		name := strings.ReplaceAll(strings.TrimSpace(qs.String()), "\n", ";") + fmt.Sprintf(" (%d nodes)", c.nodes)
		switch {
		case cerr != nil && qerr == nil:
			t.Errorf("%s: the reader refuses it (%v), votequorum starts", name, cerr)
		case cerr == nil && qerr != nil:
			t.Errorf("%s: the reader accepts it, votequorum refuses: %v", name, qerr)
		case cerr != nil && !errors.Is(qerr, quorum.ErrConfig):
			t.Errorf("%s: votequorum refuses it with %v, not a configuration error", name, qerr)
		case cerr == nil:
			m.Start(0)
			if rt.Quorum.WaitForAll != m.WaitingForAll() {
				t.Errorf("%s: the reader says wait_for_all %v, votequorum runs with %v", name, rt.Quorum.WaitForAll, m.WaitingForAll())
				bad++
			}
			if rt.Quorum.TwoNode != (c.twoNode == "1") {
				t.Errorf("%s: the reader turned two_node into %v: votequorum must get it as written", name, rt.Quorum.TwoNode)
			}
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
	t.Logf("%d combinations", len(combos))
}

// TestOneCopyOfQuorumRules: votequorum's startup rules (their messages) live in quorum/ only;
// a second copy elsewhere in the code is a rule that can drift.
func TestOneCopyOfQuorumRules(t *testing.T) {
	rules := []string{"not compatible with", "not available in odd sized cluster", "cannot be configured at the same time",
		"must be specified when", "two_node has been disabled", "auto_tie_breaker has been disabled"}
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "docs" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if strings.HasPrefix(filepath.ToSlash(rel), "quorum/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if strings.Contains(string(b), r) {
				t.Errorf("%s holds votequorum's rule %q: use quorum.Resolve", rel, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
