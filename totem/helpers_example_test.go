package totem_test

import (
	"net/netip"
	"os"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func tempDir() (string, func()) {
	d, err := os.MkdirTemp("", "gototem-example")
	if err != nil {
		panic(err)
	}
	return d, func() { os.RemoveAll(d) }
}
