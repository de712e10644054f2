package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

func init() {
	register("send", command{
		summary: "send a message to a process group and wait for its ordered delivery (send [--socket PATH] [--safe] [--hex] GROUP MSG)",
		run:     runSend,
	})
}

const sendUsage = `usage: gototem send [--socket PATH] [--safe] [--hex] GROUP MSG...
Sends MSG (the arguments joined by spaces; with --hex, MSG is hex bytes) to GROUP and
returns once this node delivered it in total order: a script that sends twice sees its
messages delivered in that order on every node. --safe asks for safe delivery.
`

func runSend(args []string, stdout, stderr io.Writer) int {
	fs, sock := clientFlags("send", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sendUsage) }
	safe := fs.Bool("safe", false, "safe delivery")
	isHex := fs.Bool("hex", false, "MSG is hex")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 2 {
		fmt.Fprint(stderr, sendUsage)
		return 2
	}
	group, msg := fs.Arg(0), strings.Join(fs.Args()[1:], " ")
	if err := checkGroup("send", group); err != nil {
		fmt.Fprintf(stderr, "gototem: %v\n", err)
		return 1
	}
	var req string
	switch {
	case *isHex:
		if _, err := hex.DecodeString(msg); err != nil {
			fmt.Fprintf(stderr, "gototem: send: MSG is not hex: %v\n", err)
			return 1
		}
		req = "sendhex " + group + " " + msg
	case strings.ContainsAny(msg, "\r\n"):
		// The protocol is line based; a multi-line text travels as hex.
		req = "sendhex " + group + " " + hex.EncodeToString([]byte(msg))
	default:
		req = "send " + group + " " + msg
	}
	if *safe {
		req = strings.Replace(req, " "+group+" ", " "+group+" --safe ", 1)
	}
	if _, err := controlCall(*sock, req, sendTimeout+5*time.Second); err != nil {
		fmt.Fprintf(stderr, "gototem: %v\n", err)
		return 1
	}
	return 0
}
