package main

import (
	"bytes"
	"github.com/gototem/gototem/internal/testenv"
	"strings"
	"testing"
)

// The totempg view of real corosync traffic: every MCAST in the join capture parses as a
// totempg packet, and the sync exchange of services-sync.md §1.5 is visible in it (the
// SERVICE_BUILDs, cmap's item packed with a BARRIER, CPG's fragmented DOWNLIST, votequorum's
// NODEINFOs).
func TestPcapShowsTotempgFraming(t *testing.T) {
	file := testenv.Capture(t, "udpu-join.pcap")
	var out, errb bytes.Buffer
	if code := runPcap([]string{file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	text := out.String()
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, " mcast ") && (!strings.Contains(line, " pg=") || strings.Contains(line, "pg_error")) {
			t.Fatalf("MCAST without a clean totempg view: %s", line)
		}
	}
	for _, want := range []string{"msgs=sync.service_build", "msgs=cmap.mcast,sync.barrier", "msgs=cpg.downlist…", "msgs=cont(173)", "votequorum.nodeinfo,votequorum.nodeinfo,sync.barrier"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the decoded capture", want)
		}
	}
}
