//go:build !race

package srp

const accelRace = false
