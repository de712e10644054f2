package interop

import (
	"context"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// labSeq makes every cluster of one test binary use its own namespace prefix and subnet, so a
// cluster whose Close failed cannot collide with the next.
var labSeq atomic.Int32

// needCorosync stops the test when this machine cannot run real corosync: a skip with the
// reason on a developer's machine, a failure under CI=true (testenv.Need).
func needCorosync(t *testing.T) {
	t.Helper()
	testenv.Need(t, "real corosync 3.1 with root and network namespaces (.ci/install-interop.sh)", Check())
}

// newCluster builds a cluster for the test and closes it at the end; when the test failed it
// first prints the tail of every node's log.
func newCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	seq := int(labSeq.Add(1))
	opts.Prefix = fmt.Sprintf("i%03d%02d", os.Getpid()%1000, seq%100)
	opts.Subnet = 10 + seq%200
	opts.Logf = t.Logf
	opts.KeepDir = os.Getenv("GOTOTEM_INTEROP_KEEP") == "1"
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if opts.KeepDir {
		t.Logf("cluster directory kept: %s", c.Dir())
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes() {
				t.Logf("node %d (%s) pid %d running %v\n%s", n.ID, n.Engine, n.PID(), n.Running(), n.LogTail(25))
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func engines(es ...Engine) []Engine { return es }

func ids(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// buildGototem builds ./cmd/gototem from the repository root into a temporary directory.
func buildGototem(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "gototem")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/gototem")
	cmd.Dir = testenv.Root()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gototem: %v\n%s", err, b)
	}
	return out
}

// timed runs f and returns how long it took.
func timed(f func() error) (time.Duration, error) {
	t0 := time.Now()
	err := f()
	return time.Since(t0), err
}

// standInGototem writes a shell script that honours the gototem CLI contract the suite uses
// (shared/lab/README.md) with real corosync behind it: `run -c CONF --socket S` execs corosync,
// status/quorum/cmap run the corosync tools, send/listen run the C CPG client. With it the
// mixed scenarios' gototem code paths (launch, --socket placement, client commands, listen and
// send) are exercised before the gototem daemon exists; GOTOTEM_INTEROP_STANDIN=1 runs the
// whole mixed suite that way.
func standInGototem(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	client, err := BuildCPGClient(dir)
	if err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
# stand-in for gototem (interop harness self-test): real corosync behind the gototem CLI
sub=$1; shift
if [ "$sub" = run ]; then
	[ "$1" = -c ] && [ "$3" = --socket ] || { echo "stand-in: want run -c CONF --socket PATH" >&2; exit 2; }
	exec corosync -f -c "$2"
fi
[ "$1" = --socket ] && [ -n "$2" ] || { echo "stand-in: --socket PATH must follow the subcommand" >&2; exit 2; }
shift 2
case $sub in
status) exec corosync-cfgtool -s ;;
quorum) exec corosync-quorumtool -s ;;
cmap) exec corosync-cmapctl "$@" ;;
send) printf '%s\n' "$2" | exec CLIENT -g "$1" -x -T 20 >/dev/null ;;
listen)
	secs=120
	if [ "$1" = -t ]; then secs=$2; shift 2; fi
	exec CLIENT -g "$1" -T "$secs" ;;
*) echo "stand-in: unknown subcommand $sub" >&2; exit 2 ;;
esac
`
	path := filepath.Join(dir, "gototem-standin")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(script, "CLIENT", client)), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// needGate skips unless the environment variable is 1: for benchmarks too slow for the
// default run. An opt-in, not a missing dependency: CI=true does not turn it into a failure.
func needGate(t *testing.T, name, why string) {
	t.Helper()
	if os.Getenv(name) != "1" {
		t.Skipf("set %s=1 to run: %s", name, why)
	}
}
