package interop

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestConfigVersionStaleNodeExits is corosync's guard against a node that was down while the
// cluster's corosync.conf moved on (cmap's first-sync check, the Proxmox "Received config
// version (10) is different than my config version (5)! Exiting"), across engines: a gototem
// node with config_version 5 joining two corosync nodes at 10 exits with corosync's line, and a
// corosync node at 5 joining two gototem nodes at 10 exits too, so each engine reads the other's
// cmap sync message and applies the same rule. The running nodes keep their ring.
func TestConfigVersionStaleNodeExits(t *testing.T) {
	for _, stale := range []Engine{Gototem, Corosync} {
		t.Run(stale.String()+" behind", func(t *testing.T) {
			running := Corosync
			if stale == Corosync {
				running = Gototem
			}
			c := mixedCluster(t, "udpu", running, running, stale)
			for _, n := range c.Nodes() {
				v := "10"
				if n.ID == 3 {
					v = "5"
				}
				conf := strings.Replace(c.Config(n.ID), "    version: 2\n", "    version: 2\n    config_version: "+v+"\n", 1)
				if err := os.WriteFile(n.Conf, []byte(conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			for _, id := range []int{1, 2} {
				if err := c.Node(id).Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			ring, err := c.WaitRing(ctx, []int{1, 2}, []int{1, 2}, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			n3 := c.Node(3)
			if err := n3.launch(); err != nil {
				t.Fatal(err)
			}
			const line = "Received config version (10) is different than my config version (5)! Exiting"
			err = Poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
				if n3.Running() {
					return false, "node 3 still running"
				}
				return true, ""
			}, nil)
			if err != nil {
				t.Fatalf("node 3 (%s, config_version 5): %v\n%s", stale, err, n3.LogTail(20))
			}
			if tail := n3.LogTail(200); !strings.Contains(tail, line) {
				t.Fatalf("node 3 (%s) exited without corosync's line %q:\n%s", stale, line, tail)
			}
			if _, err := c.WaitRing(ctx, []int{1, 2}, []int{1, 2}, 30*time.Second); err != nil {
				t.Fatalf("the running nodes lost their ring (was %v): %v", ring, err)
			}
			for _, id := range []int{1, 2} {
				if strings.Contains(c.Node(id).LogTail(200), line) {
					t.Fatalf("node %d (config_version 10) logged %q", id, line)
				}
			}
		})
	}
}
