package corosvc

import (
	"slices"
	"testing"

	"github.com/gototem/gototem/config"
)

// Dump is the whole view a corosync-cmapctl user sees: the node's keys with clients' writes
// and deletes applied, then the stats map, printed as corosync-cmapctl prints them. The
// daemon's control socket shows this same view.
func TestCmapDumpIsTheServedView(t *testing.T) {
	node := &fakeNode{keys: []config.KeyValue{
		{Key: "totem.cluster_name", Type: config.TypeStr, Value: "lab"},
		{Key: "runtime.votequorum.ev_barrier", Type: config.TypeU32, Value: "3"},
		{Key: "quorum.expected_votes", Type: config.TypeU32, Value: "3"},
		{Key: "stats.srp.orf_token_rx", Type: config.TypeU64, Value: "85"},
	}}
	m := NewCmap(node, func() []config.KeyValue {
		return []config.KeyValue{{Key: "stats.ipcs.global.active", Type: config.TypeU64, Value: "2"}}
	})
	m.mu.Lock()
	for _, w := range []struct {
		key  string
		typ  uint8
		data []byte
	}{
		{"test.i8", vtInt8, []byte{0xff}},
		{"test.i64", vtInt64, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"test.flt", vtFloat, []byte{0, 0, 0xc0, 0x3f}},
		{"test.str", vtString, []byte("hello\x00")},
	} {
		if e := m.setLocked(w.key, w.typ, w.data); e != csOK {
			t.Fatalf("set %s: cs_error %d", w.key, e)
		}
	}
	m.mu.Unlock()
	want := []string{
		"quorum.expected_votes (u32) = 3",
		"runtime.votequorum.ev_barrier (u32) = 3",
		"stats.ipcs.global.active (u64) = 2",
		"stats.srp.orf_token_rx (u64) = 85",
		"test.flt (flt) = 1.500000",
		"test.i64 (i64) = -2",
		"test.i8 (i8) = -1",
		"test.str (str) = hello",
		"totem.cluster_name (str) = lab",
	}
	if got := m.Dump(); !slices.Equal(got, want) {
		t.Fatalf("dump:\n%q\nwant:\n%q", got, want)
	}
}
