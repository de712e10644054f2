//go:build !linux

package main

import "errors"

// schedThread: realtime scheduling is set on Linux only (sched_linux.go).
func schedThread() (string, error) { return "", errors.New("SCHED_RR: Linux only") }

// unschedThread: nothing to undo off Linux.
func unschedThread() {}
