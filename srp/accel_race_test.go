//go:build race

package srp

// accelRace: the race detector slows the random schedules about fivefold; the accelerated
// ones run fewer under it.
const accelRace = true
