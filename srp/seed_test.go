package srp

import (
	"hash/fnv"
	"os"
	"strconv"
	"testing"
	"time"
)

// testSeed gives a randomized test its seed: by default a fixed one derived from the test's name,
// so CI runs the same schedules every time and a failure replays without a log; SRP_SEED=N
// replays seed N; SRP_SEED=random draws a fresh one from the clock to explore (it is logged).
func testSeed(t testing.TB) uint64 {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	seed := h.Sum64()
	switch s := os.Getenv("SRP_SEED"); s {
	case "":
	case "random":
		seed = uint64(time.Now().UnixNano())
	default:
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SRP_SEED: %v (a number, or random)", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with SRP_SEED=%d)", seed, seed)
	return seed
}
