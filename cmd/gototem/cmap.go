package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gototem/gototem/config"
)

func init() {
	register("cmap", command{
		summary: "keys of a running node, as corosync-cmapctl (cmap [--socket PATH] [PREFIX...])",
		run:     runCmap,
	})
}

func runCmap(args []string, stdout, stderr io.Writer) int {
	fs, sock := clientFlags("cmap", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, p := range fs.Args() {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			fmt.Fprintf(stderr, "gototem: cmap: invalid prefix %q\n", p)
			return 1
		}
	}
	req := strings.TrimSpace("cmap " + strings.Join(fs.Args(), " "))
	out, err := controlCall(*sock, req, 10*time.Second)
	if err != nil {
		// "no key matched" is cmapctl's silent exit 1.
		if err.Error() != "no key matched" {
			fmt.Fprintf(stderr, "gototem: %v\n", err)
		}
		return 1
	}
	io.WriteString(stdout, out)
	return 0
}

// formatCmap renders corosync-cmapctl's `key (type) = value` lines for the keys under any
// of prefixes (all keys when there is none), in bytewise order, and counts them. A key
// under two prefixes is printed once.
func formatCmap(keys []config.KeyValue, prefixes []string) (string, int) {
	sorted := make([]config.KeyValue, len(keys))
	copy(sorted, keys)
	sortKeys(sorted)
	var b strings.Builder
	n := 0
	for _, kv := range sorted {
		match := len(prefixes) == 0
		for _, p := range prefixes {
			if strings.HasPrefix(kv.Key, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		n++
		b.WriteString(kv.String() + "\n")
	}
	return b.String(), n
}

// filterLines keeps the "key (type) = value" lines whose key has one of the prefixes (all
// with none).
func filterLines(lines []string, prefixes []string) (string, int) {
	var b strings.Builder
	n := 0
	for _, l := range lines {
		if len(prefixes) > 0 && !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(l, p) }) {
			continue
		}
		n++
		b.WriteString(l + "\n")
	}
	return b.String(), n
}

func sortKeys(kvs []config.KeyValue) {
	slices.SortStableFunc(kvs, func(a, b config.KeyValue) int { return strings.Compare(a.Key, b.Key) })
}
