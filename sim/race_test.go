//go:build race

package sim

// raceEnabled: the race detector slows the simulator about tenfold; the largest tests
// step aside under it to keep CI within budget.
const raceEnabled = true
