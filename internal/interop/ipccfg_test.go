package interop

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// logCount counts the lines of node n's log (its logging.logfile) that contain s.
func logCount(n *Node, s string) int {
	b, _ := os.ReadFile(n.Log)
	return strings.Count(string(b), s)
}

// waitLog waits until node n's log has more than before lines containing s.
func waitLog(t *testing.T, n *Node, s string, before int) {
	t.Helper()
	waitLogWithin(t, n, s, before, 15*time.Second)
}

// waitLogWithin is waitLog with its own bound.
func waitLogWithin(t *testing.T, n *Node, s string, before int, d time.Duration) {
	t.Helper()
	waitMore(t, n, d, before, fmt.Sprintf("log lines with %q", s), func() (int, error) { return logCount(n, s), nil })
}

// waitMore waits up to d until count, a counter of node n's named what, passes before; a
// count that fails is tried again.
func waitMore(t *testing.T, n *Node, d time.Duration, before int, what string, count func() (int, error)) {
	t.Helper()
	err := Poll(context.Background(), d, 100*time.Millisecond, func() (bool, string) {
		got, err := count()
		if err != nil {
			return false, fmt.Sprintf("node %d: %s: %v", n.ID, what, err)
		}
		if got <= before {
			return false, fmt.Sprintf("node %d: %d %s, %d before", n.ID, got, what, before)
		}
		return true, ""
	}, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, n.LogTail(15))
	}
}

// reloadsDelivered is how many cfg RELOAD_CONFIG exec messages corosync node n delivered: its
// runtime.services.cfg.3.rx. The test counts deliveries there, not the "Config reload requested
// by node 3" line cfg logs first: a corosync node can apply the reload without that line in its
// logfile. Seen in CI, then in 1 of 20 rounds with a node paused during formation: node 1
// dumped the reloaded totem config and sent its nodeinfo, and the notice line was missing.
// libqb's log thread writes a queued line only to the targets its callsite is enabled for when
// the thread gets to it, and the reload re-applies corosync's logging filters meanwhile.
func reloadsDelivered(n *Node) (int, error) {
	v, err := n.Cmap(context.Background(), "runtime.services.cfg.3.rx")
	if err != nil {
		return 0, err
	}
	rx, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("runtime.services.cfg.3.rx = %q: %w", v, err)
	}
	return rx, nil
}

// waitReloadDelivered waits until corosync node n delivered more RELOAD_CONFIG messages than
// before.
func waitReloadDelivered(t *testing.T, n *Node, before int) {
	t.Helper()
	waitMore(t, n, 15*time.Second, before, "RELOAD_CONFIG delivered (runtime.services.cfg.3.rx)", func() (int, error) { return reloadsDelivered(n) })
}

// corosync-cfgtool -R and -k in a mixed ring (corosync nodes 1 and 2, gototem node 3), each
// run unchanged on one kind of node and acting on the other, through cfg's exec messages:
// -R on the gototem node makes the corosync nodes reload (they deliver its RELOAD_CONFIG), -R
// on a corosync node makes the gototem node reload; -k 3 on a corosync node makes the gototem
// daemon exit, -k 1 on the gototem node makes corosync node 1 exit, and the others form a ring
// without it.
func TestIPCCfgReloadAndKillMixed(t *testing.T) {
	c := mixedCluster(t, "udpu", Corosync, Corosync, Gototem)
	r := formRing(t, c)
	ctx := context.Background()
	real, ours := c.Node(1), c.Node(3)
	cfgtool := func(n *Node, args ...string) string {
		t.Helper()
		out, err := n.Tool(ctx, "corosync-cfgtool", args...)
		if err != nil {
			t.Fatalf("node %d corosync-cfgtool %s: %v\n%s", n.ID, strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	var before [2]int
	for i := range before {
		var err error
		if before[i], err = reloadsDelivered(c.Node(i + 1)); err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	if out := cfgtool(ours, "-R"); !strings.Contains(out, "Done") {
		t.Fatalf("corosync-cfgtool -R on the gototem node printed %q", out)
	}
	waitReloadDelivered(t, c.Node(1), before[0])
	waitReloadDelivered(t, c.Node(2), before[1])
	const applied = "reload: configuration applied"
	n := logCount(ours, applied)
	cfgtool(real, "-R")
	waitLog(t, ours, applied, n)
	t.Logf("-R on either kind of node reloaded the other kind")

	// An unknown node is refused as corosync refuses it.
	if out, err := ours.Tool(ctx, "corosync-cfgtool", "-k", "9"); err == nil || !strings.Contains(string(out), "CS_ERR_NOT_EXIST") {
		t.Errorf("corosync-cfgtool -k 9 on the gototem node: %v: %q", err, out)
	}
	cfgtool(c.Node(2), "-k", "3")
	if err := Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, string) { return !ours.Running(), "gototem node 3 still running" }, nil); err != nil {
		t.Fatal(err)
	}
	r = changeTo(t, c, r, []int{1, 2}, "gototem node 3 killed by corosync-cfgtool -k 3 on node 2")
	if err := ours.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r = changeTo(t, c, r, []int{1, 2, 3}, "node 3 back")
	cfgtool(ours, "-k", "1")
	if err := Poll(ctx, 10*time.Second, 100*time.Millisecond, func() (bool, string) { return !real.Running(), "corosync node 1 still running" }, nil); err != nil {
		t.Fatalf("%v\n%s", err, real.LogTail(10))
	}
	changeTo(t, c, r, []int{2, 3}, "corosync node 1 killed by corosync-cfgtool -k 1 on the gototem node")
}
