package config

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestGrammarRoundTrip is a property test of the grammar: any tree of ordinary sections
// and keys, written with random indentation, brace styles, comments and blank lines,
// parses to exactly the keys a model computes (dotted paths, the later duplicate wins).
// rapid prints the failing seed; rerun with -rapid.seed=N to replay it.
func TestGrammarRoundTrip(t *testing.T) {
	name := rapid.StringMatching(`x[a-z0-9_]{2,6}`)
	value := rapid.StringMatching(`[A-Za-z0-9:./ }#"_-]{0,20}`)
	rapid.Check(t, func(t *rapid.T) {
		var b strings.Builder
		model := map[string]string{}
		blank := func() string { return rapid.SampledFrom([]string{"", " ", "\t", "  \t", "\xa0"}).Draw(t, "blank") }
		var section func(path string, depth int)
		section = func(path string, depth int) {
			n := rapid.IntRange(0, 4).Draw(t, "items")
			for i := 0; i < n; i++ {
				switch rapid.IntRange(0, 3).Draw(t, "kind") {
				case 0:
					fmt.Fprintf(&b, "%s# comment { : }\n\n", blank())
				case 1:
					if depth < 3 {
						s := name.Draw(t, "section")
						open := rapid.SampledFrom([]string{" {", "{", ": {", " :{"}).Draw(t, "open")
						fmt.Fprintf(&b, "%s%s%s%s\n", blank(), s, open, blank())
						section(path+"."+s, depth+1)
						fmt.Fprintf(&b, "%s}%s\n", blank(), blank())
						continue
					}
					fallthrough
				default:
					k, v := name.Draw(t, "key"), strings.Trim(value.Draw(t, "value"), " ")
					fmt.Fprintf(&b, "%s%s:%s%s%s\n", blank(), k, blank(), v, blank())
					model[path+"."+k] = v
				}
			}
		}
		for i, n := 0, rapid.IntRange(1, 3).Draw(t, "top"); i < n; i++ {
			s := name.Draw(t, "top section")
			fmt.Fprintf(&b, "%s {\n", s)
			section(s, 1)
			b.WriteString("}\n")
		}
		d := &diag{file: "p.conf"}
		p, err := parseKeys(d, strings.NewReader(b.String()))
		if err != nil || len(d.errs) > 0 {
			t.Fatalf("rejected: %v %v\n%s", err, d.errs, b.String())
		}
		for k, v := range model {
			e, ok := p.keys[k]
			if !ok || e.value != v || e.typ != TypeStr {
				t.Fatalf("key %s: got %+v, want %q\n%s", k, e, v, b.String())
			}
		}
		if len(p.keys) != len(model) {
			t.Fatalf("parsed %d keys, model has %d\n%s", len(p.keys), len(model), b.String())
		}
	})
}
