// Command gototem runs a Totem node from an unchanged corosync.conf and offers the tools
// around it (config check/dump, pcap decoding, the simulator, status queries).
//
// `gototem run` serves a local control socket; CONTROL.md in this directory specifies its line
// protocol, which shell tools (socat, nc -U) and non-Go programs can speak directly. The
// client subcommands (status, quorum, cmap, send, listen) use it and print corosync-cfgtool,
// corosync-quorumtool and corosync-cmapctl formats.
//
// Subcommands live one per file and register themselves in commands from an init function,
// so each concern stays in its own file.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one gototem subcommand.
type command struct {
	summary string
	// run gets the arguments after the subcommand name and returns the exit code.
	run func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(name string, c command) {
	if _, dup := commands[name]; dup {
		panic("gototem: subcommand registered twice: " + name)
	}
	commands[name] = c
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || isHelp(args[0]) {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gototem: unknown command %q (try gototem help)\n", args[0])
		return 2
	}
	if len(args) > 1 && isHelp(args[1]) {
		// Every subcommand answers -h/--help the same way: its usage on stdout, exit 0.
		// Each prints its usage on its error stream when asked for -h (the flag package's
		// ErrHelp, or an unknown first argument), so that stream is stdout here.
		c.run([]string{"-h"}, stdout, stdout)
		return 0
	}
	return c.run(args[1:], stdout, stderr)
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help"
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gototem COMMAND [ARGS]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}
