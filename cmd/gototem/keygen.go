package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"

	"github.com/gototem/gototem/transport"
)

// keygen writes a totem authkey in corosync-keygen's format (raw random bytes, mode 0400),
// so one key file serves gototem and corosync alike. Unlike corosync-keygen it refuses to
// replace an existing key unless -f is given: a new key on one node silently cuts it off
// from the rest of the cluster.
func init() {
	register("keygen", command{
		summary: "write a random totem authkey (like corosync-keygen)",
		run:     runKeygen,
	})
}

func runKeygen(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fset.SetOutput(stderr)
	path := fset.String("k", transport.DefaultAuthKeyPath, "key file to write")
	length := fset.Int("l", transport.DefaultKeyLen,
		fmt.Sprintf("key length in bytes (%d..%d)", transport.MinKeyLen, transport.MaxKeyLen))
	force := fset.Bool("f", false, "replace an existing key file")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: gototem keygen [-k FILE] [-l LEN] [-f]")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() != 0 {
		fmt.Fprintf(stderr, "gototem keygen: unexpected argument %q\n", fset.Arg(0))
		return 2
	}
	key, err := transport.GenerateAuthKey(*length)
	if err != nil {
		fmt.Fprintf(stderr, "gototem keygen: %v\n", err)
		return 1
	}
	if err := transport.WriteAuthKey(*path, key, *force); err != nil {
		if errors.Is(err, fs.ErrExist) {
			fmt.Fprintf(stderr, "gototem keygen: %s already exists; use -f to replace it (every node needs the same key)\n", *path)
			return 1
		}
		fmt.Fprintf(stderr, "gototem keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote a %d-bit authkey to %s (mode 0400). Copy it to every node of the cluster.\n", 8*len(key), *path)
	return 0
}
