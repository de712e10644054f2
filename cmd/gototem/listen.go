package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func init() {
	register("listen", command{
		summary: "print a process group's ordered messages (listen [--socket PATH] [-n N] [-t SECONDS] GROUP)",
		run:     runListen,
	})
}

const listenUsage = `usage: gototem listen [--socket PATH] [--rings] [-n N] [-t SECONDS] GROUP
Prints GROUP's events in total order, one line each, until interrupted:
  MSG <nodeid> <pid> "<payload, quoted>"
  CONFCHG members=<nodeid:pid,...> joined=<nodeid:pid:reason,...> left=<...>
--rings adds the ring configurations (EVS transitional and regular), in total order with the
messages, starting with the regular configuration in force:
  RING <regular|transitional> ring=<rep>.<seq> members=<nodeid,...> joined=<...> left=<...>
-n N exits 0 after N messages; -t SECONDS exits 3 when the time runs out first.
`

func runListen(args []string, stdout, stderr io.Writer) int {
	fs, sock := clientFlags("listen", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, listenUsage) }
	count := fs.Int("n", 0, "exit after N messages")
	secs := fs.Float64("t", 0, "exit after SECONDS")
	rings := fs.Bool("rings", false, "also print ring configurations")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *count < 0 || *secs < 0 {
		fmt.Fprint(stderr, listenUsage)
		return 2
	}
	group := fs.Arg(0)
	if err := checkGroup("listen", group); err != nil {
		fmt.Fprintf(stderr, "gototem: %v\n", err)
		return 1
	}
	c, err := dialControl(*sock)
	if err != nil {
		fmt.Fprintf(stderr, "gototem: %v\n", err)
		return 1
	}
	defer c.Close()
	if *secs > 0 {
		_ = c.SetDeadline(time.Now().Add(time.Duration(*secs * float64(time.Second))))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-sig:
			c.Close()
		case <-finished:
		}
	}()
	req := "listen " + group + "\n"
	if *rings {
		req = "listen --rings " + group + "\n"
	}
	if _, err := io.WriteString(c, req); err != nil {
		fmt.Fprintf(stderr, "gototem: gototem at %s: %v\n", *sock, unwrapOp(err))
		return 1
	}
	code, err := streamListen(bufio.NewReader(c), stdout, *count)
	if err != nil {
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			fmt.Fprintf(stderr, "gototem: listen: timed out after %gs\n", *secs)
			return 3
		}
		if code != 0 {
			fmt.Fprintf(stderr, "gototem: %v\n", err)
		}
	}
	return code
}

// streamListen copies event lines to out until count messages were seen (0: forever).
// A closed stream after the OK line is an interruption, exit 0.
func streamListen(r *bufio.Reader, out io.Writer, count int) (int, error) {
	first, err := r.ReadString('\n')
	if err != nil {
		return 1, fmt.Errorf("listen: no reply: %w", err)
	}
	first = strings.TrimSuffix(first, "\n")
	if strings.HasPrefix(first, "ERR ") {
		return 1, errors.New(strings.TrimPrefix(first, "ERR "))
	}
	if !strings.HasPrefix(first, "OK") {
		return 1, fmt.Errorf("listen: malformed reply %q", truncate(first, 80))
	}
	seen := 0
	for count == 0 || seen < count {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "use of closed") {
				return 0, nil
			}
			return 1, err
		}
		if strings.HasPrefix(line, "ERR ") {
			return 1, errors.New(strings.TrimSpace(strings.TrimPrefix(line, "ERR ")))
		}
		if _, err := io.WriteString(out, line); err != nil {
			return 1, err
		}
		if strings.HasPrefix(line, "MSG ") {
			seen++
		}
	}
	return 0, nil
}
