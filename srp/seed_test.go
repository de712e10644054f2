package srp

import (
	"hash/fnv"
	"testing"

	"github.com/gototem/gototem/internal/testenv"
)

// testSeed gives a randomized test its seed: by default a fixed one derived from the test's name,
// so CI runs the same schedules every time and a failure replays without a log; SRP_SEED=N
// replays seed N; SRP_SEED=random draws a fresh one from the clock to explore (it is logged).
func testSeed(t testing.TB) uint64 {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	return testenv.Seed(t, "SRP_SEED", h.Sum64())
}
