package srp

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// testSeed returns SRP_SEED when set (to replay a failure) or a fresh seed, and logs it.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SRP_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SRP_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with SRP_SEED=%d)", seed, seed)
	return seed
}
