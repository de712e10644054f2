//go:build race

package transport

// The race detector instruments x/net's batch calls with allocations of its own.
const raceEnabled = true
