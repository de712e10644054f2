package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/srp"
)

// TestTimersAreSRPs: the timers and protocol constants config derives from a corosync.conf
// are the ones srp derives for the same settings (srp.Config.Derive, the one copy
// that srp.DefaultConfig, the simulator and the tests use). Every time.Duration and int field of
// srp.Config is compared with config's Totem field of the same name, over default files of 1
// to 16 nodes (against srp.DefaultConfig itself) and over files that set each key (against
// srp.Config.Derive with the same values). TestTimerDerivation pins corosync's own numbers, so the
// two cannot drift together either. Shown failing: with config's hold computed as
// retransmit·0.8 − 1 instead of srp's formula, every default row differs in Hold.
func TestTimersAreSRPs(t *testing.T) {
	type row struct {
		nodes int
		keys  map[string]uint32
	}
	var rows []row
	for n := 1; n <= 16; n++ {
		rows = append(rows, row{nodes: n})
	}
	set := map[string]uint32{
		"token": 1000, "token_coefficient": 0, "token_retransmit": 500, "hold": 100, "consensus": 5000,
		"join": 100, "send_join": 20, "merge": 300, "downcheck": 500, "fail_recv_const": 100,
		"seqno_unchanged_const": 10, "miss_count_const": 3, "window_size": 100, "max_messages": 20,
		"token_retransmits_before_loss_const": 10,
	}
	for key, v := range set {
		for _, n := range []int{2, 3, 7} {
			rows = append(rows, row{nodes: n, keys: map[string]uint32{key: v}})
		}
	}
	rows = append(rows, row{nodes: 5, keys: map[string]uint32{"token": 1000, "token_coefficient": 100}},
		row{nodes: 4, keys: map[string]uint32{"token": 5000, "token_retransmits_before_loss_const": 2}})

	for _, r := range rows {
		var extra strings.Builder
		for k, v := range r.keys {
			fmt.Fprintf(&extra, " %s: %d\n", k, v)
		}
		rt := mustResolve(t, nodelistOf(r.nodes, extra.String()), local1)
		want := srp.DefaultConfig(1, r.nodes)
		if len(r.keys) > 0 {
			c := srp.DefaultConfig(1, 2)
			c.TokenRetransmit, c.Hold, c.Consensus = 0, 0, 0 // derived unless set
			coefficient := srp.DefaultTokenCoefficient
			ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
			for k, v := range r.keys {
				switch k {
				case "token":
					c.Token = ms(v)
				case "token_coefficient":
					coefficient = ms(v)
				case "token_retransmit":
					c.TokenRetransmit = ms(v)
				case "hold":
					c.Hold = ms(v)
				case "consensus":
					c.Consensus = ms(v)
				case "join":
					c.Join = ms(v)
				case "send_join":
					c.SendJoin = ms(v)
				case "merge":
					c.Merge = ms(v)
				case "downcheck":
					c.Downcheck = ms(v)
				case "fail_recv_const":
					c.FailRecvConst = int(v)
				case "seqno_unchanged_const":
					c.SeqnoUnchangedConst = int(v)
				case "miss_count_const":
					c.MissCountConst = int(v)
				case "window_size":
					c.WindowSize = int(v)
				case "max_messages":
					c.MaxMessages = int(v)
				case "token_retransmits_before_loss_const":
					c.TokenRetransmitsBeforeLossConst = int(v)
				default:
					t.Fatalf("no srp field for %s", k)
				}
			}
			want = c.Derive(r.nodes, coefficient)
		}
		got := reflect.ValueOf(rt.Totem)
		wv := reflect.ValueOf(want)
		for i := 0; i < wv.NumField(); i++ {
			f := wv.Type().Field(i)
			if f.Name == "NodeID" || (f.Type != reflect.TypeOf(time.Duration(0)) && f.Type.Kind() != reflect.Int) {
				continue
			}
			g := got.FieldByName(f.Name)
			if !g.IsValid() {
				t.Errorf("srp.Config.%s has no counterpart in config's Totem: corosync.conf cannot set it", f.Name)
				continue
			}
			if g.Int() != wv.Field(i).Int() {
				t.Errorf("%d nodes %v: %s: config derives %v, srp %v", r.nodes, r.keys, f.Name, g.Interface(), wv.Field(i).Interface())
			}
		}
	}
}

// TestOneTimerDerivation: corosync's derivation formulas (token / (retransmits + 0.2),
// retransmit·0.8 − 10, 1.2·token) appear in srp/config.go and nowhere else in the
// repository's code: a second copy is a rule that can drift.
func TestOneTimerDerivation(t *testing.T) {
	formula := regexp.MustCompile(`\+ ?0\.2\)|1\.2 ?\* ?float64|\) ?\* ?0\.8 ?-`)
	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(line, "//")
			if formula.MatchString(code) && filepath.ToSlash(rel) != "srp/config.go" {
				t.Errorf("%s:%d: a copy of corosync's timer derivation: %s (use srp.Config.Derive)", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
