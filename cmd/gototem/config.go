package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/totem"
)

func init() {
	register("config", command{
		summary: "check or dump a corosync.conf, or import a CMAN cluster.conf (config check|dump|import)",
		run:     runConfig,
	})
}

const configUsage = `usage: gototem config check [--local-addr IP[/LEN]]... FILE
       gototem config dump  [--local-addr IP[/LEN]]... FILE
       gototem config import [-o FILE] cluster.conf

check  validates FILE as corosync 3.1 would (plus gototem's udp/udpu extensions:
       redundant ring, encryption). Exit 0 when valid, 1 when not; errors are printed
       as FILE:LINE: message, warnings as FILE:LINE: warning: message (stderr).
dump   prints the corosync-cmapctl view of FILE for the local node, including the
       derived runtime.config.totem.* values, sorted. gototem adds
       runtime.config.totem.nodeid and, with a redundant ring, runtime.config.totem.rrp_*.

import prints the corosync.conf that corosync 2 and later (and pcs) use for a CMAN
       cluster.conf: name, config_version, nodelist, transport, votequorum two_node,
       totem timers, logging. What does not carry over (fencing, rgmanager, qdisk,
       CMAN's implied key and multicast address) is printed as warnings (stderr).
       -o FILE writes it to FILE instead of stdout.

--local-addr  this node's address (repeatable; IP or IP/prefix). Needed for 2.x files
              whose bindnetaddr is a network, or on a machine that is not a node.
              Without it the local node is found as corosync does (host name, then the
              machine's interface addresses); if none matches, the first node is shown
              and a warning says so.
`

type addrList []netip.Prefix

func (a *addrList) String() string {
	s := make([]string, len(*a))
	for i, p := range *a {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (a *addrList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if p, err := netip.ParsePrefix(f); err == nil {
			*a = append(*a, p)
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return fmt.Errorf("%q is not an IP address or IP/prefix", f)
		}
		*a = append(*a, config.LocalAddrs(ip)...)
	}
	return nil
}

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "import" {
		return runConfigImport(args[1:], stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "check" && args[0] != "dump") {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("config "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, configUsage) }
	var addrs addrList
	fs.Var(&addrs, "local-addr", "this node's address (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	file := fs.Arg(0)

	cfg, warns, err := config.Load(file)
	printWarnings(stderr, warns)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	local := config.Local{Addrs: addrs, LookupHost: totem.HostLocal().LookupHost}
	if len(addrs) == 0 {
		local = hostLocal()
	}
	rt, warns, err := cfg.Resolve(local)
	printWarnings(stderr, warns)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	if cr := rt.Totem.Crypto; cr.Enabled() {
		// corosync -t reads the key too; here a missing key is only a warning, because
		// the check may run on a machine that is not (yet) a node.
		if _, err := cr.ReadKey(); err != nil {
			fmt.Fprintf(stderr, "%s: warning: encryption is on but the key is not usable here: %v\n", file, err)
		}
	}
	switch sub {
	case "check":
		if rt.Totem.Transport == config.TransportKnet {
			// The verdict must be what `gototem run` does with the file (issue 15): the knet
			// transport's own mapping of the file, the one run uses. An unreadable key was
			// warned about above and is not a verdict here (the check may run off-node).
			if _, err := totem.KnetConfig(rt); err != nil {
				if _, kerr := rt.Totem.Crypto.ReadKey(); !rt.Totem.Crypto.Enabled() || kerr == nil {
					fmt.Fprintf(stderr, "%s: %v\n", file, err)
					return 1
				}
			}
		}
		fmt.Fprintf(stdout, "%s: valid: transport %s, %d ring(s) (rrp_mode %s), %d node(s), nodeid %d, token %d ms\n",
			file, rt.Totem.Transport, len(rt.Rings), rt.Totem.RRPMode, len(rt.Nodes), rt.NodeID, rt.Totem.Token.Milliseconds())
	case "dump":
		if rt.LocalNote != "" {
			fmt.Fprintf(stderr, "gototem: local node: %s\n", rt.LocalNote)
		}
		for _, kv := range rt.Keys() {
			fmt.Fprintln(stdout, kv.String())
		}
	}
	return 0
}

// runConfigImport is `config import`: CMAN's cluster.conf in, corosync.conf out.
func runConfigImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, configUsage) }
	out := fs.String("o", "", "write the corosync.conf to FILE")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	file := fs.Arg(0)
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: config import: %v\n", err)
		return 1
	}
	defer f.Close()
	text, warns, err := config.ImportCMAN(f)
	for _, w := range warns {
		fmt.Fprintf(stderr, "%s: warning: %s\n", file, w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 1
	}
	if *out == "" {
		fmt.Fprint(stdout, text)
		return 0
	}
	if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
		fmt.Fprintf(stderr, "gototem: config import: %v\n", err)
		return 1
	}
	return 0
}

// hostLocal is totem.HostLocal for tools: a machine that is not a node (an admin's
// workstation checking a file) falls back to the first node instead of failing.
func hostLocal() config.Local {
	l := totem.HostLocal()
	l.Fallback = true
	return l
}

func printWarnings(w io.Writer, warns config.Warnings) {
	for _, x := range warns {
		fmt.Fprintln(w, x.String())
	}
}

func printErrors(w io.Writer, err error) {
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err.Error())
}
