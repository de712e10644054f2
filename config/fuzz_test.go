package config

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes through both stages and the key view. It proves that
// hostile input yields an error value, never a panic or a hang, and that every error
// points at a line that exists. The committed corpus (testdata/fuzz/FuzzParse) holds the
// real configs and the grammar's edge cases.
func FuzzParse(f *testing.F) {
	f.Add([]byte(udpu("", "quorum {\n provider: corosync_votequorum\n}\n")))
	f.Add([]byte(udp2("  rrp_mode: active\n", "", "")))
	f.Add([]byte("totem {\ninterface {\nmember {\nmemberaddr: 1.2.3.4\n}\n}\n}\nlogging {\nlogger_subsys {\nsubsys: X\n}\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		c, _, err := Parse("f.conf", bytes.NewReader(data))
		checkErrLines(t, err, lines)
		if err != nil {
			return
		}
		for _, local := range []Local{
			{Fallback: true},
			{Addrs: LocalAddrs(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1"))},
		} {
			rt, _, err := c.Resolve(local)
			checkErrLines(t, err, lines)
			if err == nil {
				for _, kv := range rt.Keys() {
					if strings.ContainsAny(kv.Key, " \n") {
						t.Fatalf("key view has a malformed key %q", kv.Key)
					}
				}
			}
		}
	})
}

func checkErrLines(t *testing.T, err error, lines int) {
	t.Helper()
	if err == nil {
		return
	}
	var list ErrorList
	var one *Error
	switch {
	case errors.As(err, &list):
		if len(list) == 0 {
			t.Fatal("empty ErrorList returned as an error")
		}
		for _, e := range list {
			if e.Line < 0 || e.Line > lines {
				t.Fatalf("error line %d outside the %d-line input: %v", e.Line, lines, e)
			}
		}
	case errors.As(err, &one):
		if one.Line < 0 || one.Line > lines {
			t.Fatalf("error line %d outside the %d-line input: %v", one.Line, lines, one)
		}
	default:
		t.Fatalf("error of unexpected type %T: %v", err, err)
	}
}
