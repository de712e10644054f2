//go:build !linux

package main

import "errors"

// setSchedRR: realtime scheduling is set on Linux only (sched_linux.go).
func setSchedRR() (string, error) { return "", errors.New("SCHED_RR: Linux only") }
