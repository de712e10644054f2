package main

import (
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/gototem/gototem/config"
)

// schedHook is system.sched_rr (default yes, as corosync's) for totem.Options.ProtocolThread:
// nil when it is off, or inside a test binary (a test calling run in-process must not make
// the test binary's threads realtime). A refusal is a warning on stderr, once, as in corosync
// ("Could not set SCHED_RR at priority 99"), not an exit; the nice -20 fallback counts as
// applied, so the node does not log it again. release is totem.Options.ProtocolThreadRelease:
// it puts a thread the node gives back to the runtime at SCHED_OTHER, nice 0.
func schedHook(rt *config.Runtime, stderr io.Writer, cmd string) (hook func() error, release func()) {
	if !rt.System.SchedRR || testing.Testing() {
		return nil, nil
	}
	var once sync.Once
	return func() error {
		how, err := schedThread()
		if err != nil {
			once.Do(func() {
				fmt.Fprintf(stderr, "gototem: %s: warning: could not set SCHED_RR at priority 99 (%v)", cmd, err)
				if how == "nice" {
					fmt.Fprint(stderr, "; running at nice -20 instead")
				}
				fmt.Fprintln(stderr)
			})
		}
		if how == "nice" {
			return nil
		}
		return err
	}, unschedThread
}
