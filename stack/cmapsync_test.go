package stack

import (
	"testing"
	"time"

	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
)

// CMAP_MCAST has corosync's sizes (services-sync.md §3.2: 328 bytes without config_version, 336
// with) and reads back; anything but a config_version item of 8 bytes is refused.
func TestCmapSyncMessage(t *testing.T) {
	if b := encodeCmapSync(nil); len(b) != 328 {
		t.Fatalf("absent config_version: %d bytes, want 328", len(b))
	}
	v := uint64(42)
	b := encodeCmapSync(&v)
	if len(b) != 336 {
		t.Fatalf("config_version 42: %d bytes, want 336", len(b))
	}
	if got, ok := decodeCmapConfigVersion(b, false); !ok || got != 42 {
		t.Fatalf("decoded %d, %v", got, ok)
	}
	if got, ok := decodeCmapConfigVersion(encodeCmapSync(nil), false); !ok || got != 0 {
		t.Fatalf("absent decoded %d, %v", got, ok)
	}
	bad := encodeCmapSync(&v)
	bad[cmapMcastHeader+cmapItemLen] = 4 // a value length corosync would overrun with
	if _, ok := decodeCmapConfigVersion(bad, false); ok {
		t.Fatal("value length 4 accepted")
	}
	if _, ok := decodeCmapConfigVersion(b[:300], false); ok {
		t.Fatal("truncated message accepted")
	}
}

// Every node sends cmap's sync message in each sync and publishes each member's config_version;
// the exec message counters (runtime.services.*) count what went out and came in.
func TestCmapSyncAndServiceCounters(t *testing.T) {
	nw := newNet(t, 3, true)
	for id := srp.NodeID(1); id <= 3; id++ {
		v := uint64(id) * 10
		if id == 3 {
			nw.nodes[id].cfg.ConfigVersion = nil // absent: published as 0
		} else {
			nw.nodes[id].cfg.ConfigVersion = &v
		}
	}
	nw.run(3 * time.Second)
	for id, s := range nw.nodes {
		got := s.ConfigVersions()
		if got[1] != 10 || got[2] != 20 || len(got) != 3 {
			t.Fatalf("node %d config versions %v", id, got)
		}
		if _, ok := got[3]; !ok {
			t.Fatalf("node %d: no config_version from node 3: %v", id, got)
		}
		m := s.ServiceMessages()
		syncs := s.sync.Completed()
		if m.Tx[services.ServiceCMAP][0] != syncs {
			t.Fatalf("node %d sent %d CMAP_MCASTs in %d syncs", id, m.Tx[services.ServiceCMAP][0], syncs)
		}
		if m.Rx[services.ServiceCMAP][0] < 3 || m.Rx[services.ServiceVoteQuorum][0] < 3 {
			t.Fatalf("node %d received %+v", id, m.Rx)
		}
	}
	if err := nw.nodes[1].Join(nw.now, "g", 7); err != nil {
		t.Fatal(err)
	}
	nw.collect(1)
	nw.run(time.Second)
	for i := 0; i < 4; i++ {
		if err := nw.nodes[1].Send(nw.now, "g", 7, []byte("x"), srp.Agreed); err != nil {
			t.Fatal(err)
		}
		nw.collect(1)
	}
	nw.run(time.Second)
	if m := nw.nodes[1].ServiceMessages(); m.Tx[services.ServiceCPG][cpgMcastFunction] != 4 {
		t.Fatalf("node 1 counted %d CPG mcasts sent, want 4", m.Tx[services.ServiceCPG][cpgMcastFunction])
	}
	for id, s := range nw.nodes {
		if m := s.ServiceMessages(); m.Rx[services.ServiceCPG][cpgMcastFunction] != 4 {
			t.Fatalf("node %d counted %d CPG mcasts received, want 4", id, m.Rx[services.ServiceCPG][cpgMcastFunction])
		}
	}
}
