package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gototem/gototem/internal/netlab"
	"github.com/gototem/gototem/internal/testenv"
)

// qdeviceConfig turns a generated 3-node configuration into the two-node cluster with a quorum
// device of the corosync-qdevice man page: node 3 leaves the nodelist (its namespace hosts
// corosync-qnetd) and votequorum gets quorum.device (model net, ffsplit). two_node stays off:
// corosync refuses two_node with a device.
func qdeviceConfig(conf, qnetd, tls string) string {
	var out []string
	lines := strings.Split(conf, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "node {" {
			end := i
			for strings.TrimSpace(lines[end]) != "}" {
				end++
			}
			if slices.Contains(lines[i:end], "        nodeid: 3") {
				i = end
				continue
			}
		}
		out = append(out, lines[i])
		if strings.TrimSpace(lines[i]) == "provider: corosync_votequorum" {
			out = append(out,
				"    device {",
				"        model: net",
				"        votes: 1",
				"        net {",
				"            host: "+qnetd,
				"            algorithm: ffsplit",
				"            tls: "+tls,
				"        }",
				"    }")
		}
	}
	return strings.Join(out, "\n")
}

// quorumtool runs the real corosync-quorumtool -s on node n (against gototem's votequorum
// IPC) and parses it.
func quorumtool(ctx context.Context, n *Node) (QuorumStatus, string, error) {
	out, err := n.Tool(ctx, "corosync-quorumtool", "-s")
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 2 {
		err = nil // not quorate: printed all the same
	}
	if err != nil {
		return QuorumStatus{}, string(out), fmt.Errorf("node %d corosync-quorumtool -s: %v: %s", n.ID, err, out)
	}
	q, err := ParseQuorumStatus(string(out))
	return q, string(out), err
}

// blackhole cuts (or with del restores) the path between nodes a and b only: both keep
// reaching the arbiter in the third namespace, which a bridge partition would cut too.
func blackhole(c *Cluster, op string, a, b int) error {
	for _, p := range [][2]int{{a, b}, {b, a}} {
		addr := c.Lab().Addr(p[1], 0).String()
		if out, err := exec.Command("ip", "-n", c.Lab().NS(p[0]), "route", op, "blackhole", addr+"/32").CombinedOutput(); err != nil {
			return fmt.Errorf("ip route %s blackhole %s in node %d: %v: %s", op, addr, p[0], err, out)
		}
	}
	return nil
}

// inEtc runs a command with dir bind-mounted over /etc/corosync in a private mount namespace:
// Debian's certutil scripts hard-code their databases there (/etc/corosync/qnetd/nssdb,
// /etc/corosync/qdevice/net/nssdb), and the host's /etc must stay untouched.
func inEtc(dir string, name string, args ...string) error {
	full := append([]string{"-m", "--propagation", "private", "sh", "-c", `mount --bind "$1" /etc/corosync && shift && exec "$@"`, "sh", dir, name}, args...)
	if out, err := exec.Command("unshare", full...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// qdeviceCerts runs the TLS set-up of the corosync-qdevice man page with Debian's scripts,
// each host's /etc/corosync being a directory of its own under dir: qnetd's CA and server
// certificate (corosync-qnetd-certutil -i); each node imports the CA (corosync-qdevice-net-
// certutil -i -c); node 1 makes the cluster's certificate request (-r), qnetd signs it (-s),
// node 1 turns it into a PKCS#12 bundle (-M) that node 2 imports (-m). It returns the NSS
// database directories of qnetd and of each node.
func qdeviceCerts(t *testing.T, dir, cluster string) (qnetdDB string, nodeDB map[int]string) {
	t.Helper()
	etc := func(h string) string {
		d := filepath.Join(dir, "etc-"+h)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	arb, n1, n2 := etc("qnetd"), etc("n1"), etc("n2")
	steps := []struct {
		etc  string
		name string
		args []string
	}{
		{arb, "corosync-qnetd-certutil", []string{"-i"}},
		{n1, "corosync-qdevice-net-certutil", []string{"-i", "-c", filepath.Join(arb, "qnetd/nssdb/qnetd-cacert.crt")}},
		{n2, "corosync-qdevice-net-certutil", []string{"-i", "-c", filepath.Join(arb, "qnetd/nssdb/qnetd-cacert.crt")}},
		{n1, "corosync-qdevice-net-certutil", []string{"-r", "-n", cluster}},
		{arb, "corosync-qnetd-certutil", []string{"-s", "-c", filepath.Join(n1, "qdevice/net/nssdb/qdevice-net-node.crq"), "-n", cluster}},
		{n1, "corosync-qdevice-net-certutil", []string{"-M", "-c", filepath.Join(arb, "qnetd/nssdb/cluster-"+cluster+".crt")}},
		{n2, "corosync-qdevice-net-certutil", []string{"-m", "-c", filepath.Join(n1, "qdevice/net/nssdb/qdevice-net-node.p12")}},
	}
	for _, s := range steps {
		if err := inEtc(s.etc, s.name, s.args...); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(arb, "qnetd/nssdb"), map[int]string{1: filepath.Join(n1, "qdevice/net/nssdb"), 2: filepath.Join(n2, "qdevice/net/nssdb")}
}

// corosync-qdevice on each node of a two-node gototem cluster, Debian's corosync-qnetd as the
// arbiter in a third namespace, algorithm ffsplit. Whole: each node counts 3 votes (2 nodes +
// the device) and its getinfo flags show the device alive and voting. Cut the link between
// the nodes (both still reach qnetd): exactly one side stays quorate, node 1 (ffsplit's
// default tie_breaker: lowest), as with corosync; heal: both quorate again. Everything is
// read with the real corosync-quorumtool through gototem's IPC.
func TestIPCQdeviceFFSplit(t *testing.T) {
	for _, b := range []string{"corosync-qdevice", "corosync-qnetd", "corosync-qnetd-certutil", "corosync-qdevice-net-certutil", "certutil", "pk12util"} {
		if _, err := exec.LookPath(b); err != nil {
			testenv.Need(t, "corosync-qdevice, corosync-qnetd and NSS's certutil (.ci/install-interop.sh)", err)
		}
	}
	c := mixedCluster(t, "udpu", Gototem, Gototem, Gototem)
	ctx := context.Background()
	arbiter := c.Lab().Addr(3, 0).String()
	for _, id := range []int{1, 2} {
		n := c.Node(id)
		if err := os.WriteFile(n.Conf, []byte(qdeviceConfig(c.Config(id), arbiter, "required")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// TLS required on both sides, with the NSS databases made as the man pages say; qnetd's
	// and qdevice's databases, lock files and local sockets are in the test's directory
	// (their -S options) instead of /etc and /var/run.
	qnetdDB, nodeDB := qdeviceCerts(t, c.Dir(), c.ClusterName())
	qdir := filepath.Join(c.Dir(), "qnetd")
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		t.Fatal(err)
	}
	qnetd, err := c.Lab().Start(3, netlab.Spec{Path: "corosync-qnetd", Args: []string{"-f", "-d", "-s", "req", "-l", arbiter,
		"-S", "lock_file=" + filepath.Join(qdir, "qnetd.pid") + ",local_socket_file=" + filepath.Join(qdir, "qnetd.sock") + ",nss_db_dir=" + qnetdDB},
		Log: filepath.Join(qdir, "qnetd.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = qnetd.Kill() })
	for _, id := range []int{1, 2} {
		if err := c.Node(id).Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitRing(ctx, []int{1, 2}, []int{1, 2}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	qdevs := map[int]*netlab.Proc{}
	for _, id := range []int{1, 2} {
		d := filepath.Join(c.Node(id).Dir, "qdevice")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		p, err := c.Lab().Start(id, netlab.Spec{Path: "corosync-qdevice", Args: []string{"-f", "-d",
			"-S", "lock_file=" + filepath.Join(d, "qdevice.pid") + ",local_socket_file=" + filepath.Join(d, "qdevice.sock") + ",net_nss_db_dir=" + nodeDB[id]},
			Log: filepath.Join(d, "qdevice.log")})
		if err != nil {
			t.Fatal(err)
		}
		qdevs[id] = p
		t.Cleanup(func() { _ = p.Kill() })
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{filepath.Join(qdir, "qnetd.log"), filepath.Join(c.Node(1).Dir, "qdevice", "qdevice.log"), filepath.Join(c.Node(2).Dir, "qdevice", "qdevice.log")} {
				b, _ := os.ReadFile(f)
				lines := strings.Split(string(b), "\n")
				t.Logf("%s (last 30 lines):\n%s", f, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	})
	// want waits until each node's quorumtool view satisfies its condition.
	want := func(what string, d time.Duration, cond map[int]func(QuorumStatus) bool) {
		t.Helper()
		var last string
		t0 := time.Now()
		err := Poll(ctx, d, 250*time.Millisecond, func() (bool, string) {
			for id, ok := range cond {
				q, out, err := quorumtool(ctx, c.Node(id))
				if err != nil || !ok(q) {
					last = fmt.Sprintf("node %d: %v\n%s", id, err, out)
					return false, last
				}
			}
			return true, ""
		}, func() bool { return qnetd.Exited() || qdevs[1].Exited() || qdevs[2].Exited() })
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, last)
		}
		t.Logf("MEASURED: %s after %v", what, time.Since(t0).Round(time.Millisecond))
	}
	voting := func(q QuorumStatus) bool {
		return q.Quorate && q.TotalVotes == 3 && q.ExpectedVotes == 3 && slices.Contains(q.Flags, "Qdevice")
	}
	want("both nodes quorate with the device's vote (3 of 3)", 60*time.Second, map[int]func(QuorumStatus) bool{1: voting, 2: voting})

	if err := blackhole(c, "add", 1, 2); err != nil {
		t.Fatal(err)
	}
	want("cut: node 1 quorate on 2 votes, node 2 not", 60*time.Second, map[int]func(QuorumStatus) bool{
		1: func(q QuorumStatus) bool { return q.Quorate && q.TotalVotes == 2 && q.Nodes == 1 },
		2: func(q QuorumStatus) bool { return !q.Quorate && q.TotalVotes == 1 && q.Nodes == 1 },
	})
	// Exactly one side, and it stays so: a few more device polls change nothing.
	time.Sleep(5 * time.Second)
	q1, _, err1 := quorumtool(ctx, c.Node(1))
	q2, _, err2 := quorumtool(ctx, c.Node(2))
	if err1 != nil || err2 != nil || !q1.Quorate || q2.Quorate {
		t.Fatalf("cut, 5 s later: node 1 quorate %v (%v), node 2 quorate %v (%v)", q1.Quorate, err1, q2.Quorate, err2)
	}

	if err := blackhole(c, "del", 1, 2); err != nil {
		t.Fatal(err)
	}
	want("healed: both quorate with the device's vote again", 60*time.Second, map[int]func(QuorumStatus) bool{1: voting, 2: voting})
}
