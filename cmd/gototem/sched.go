package main

import (
	"fmt"
	"io"
	"testing"

	"github.com/gototem/gototem/config"
)

// applySched applies system.sched_rr (default yes, as corosync's) to this process. A
// refusal is a warning, as in corosync ("Could not set SCHED_RR at priority 99"), not an
// exit. Not inside a test binary: a test calling run in-process must not make the whole
// test binary realtime.
func applySched(rt *config.Runtime, stderr io.Writer, cmd string) {
	if !rt.System.SchedRR || testing.Testing() {
		return
	}
	how, err := setSchedRR()
	if err != nil {
		fmt.Fprintf(stderr, "gototem: %s: warning: could not set SCHED_RR at priority 99 (%v)", cmd, err)
		if how == "nice" {
			fmt.Fprint(stderr, "; running at nice -20 instead")
		}
		fmt.Fprintln(stderr)
	}
}
