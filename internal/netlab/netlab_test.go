package netlab

import (
	"context"
	"fmt"
	"github.com/gototem/gototem/internal/testenv"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as a tiny UDP peer inside a namespace: the lab is tested
// with real datagrams, without depending on ping being installed.
func TestMain(m *testing.M) {
	switch os.Getenv("NETLAB_HELPER") {
	case "echo":
		c, err := net.ListenPacket("udp4", os.Getenv("NETLAB_ADDR"))
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		buf := make([]byte, 1500)
		for i := 0; i < 100; i++ { // bounded: the test kills us long before
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			c.WriteTo(buf[:n], from)
		}
		os.Exit(0)
	case "probe":
		os.Exit(probe(os.Getenv("NETLAB_ADDR")))
	}
	os.Exit(m.Run())
}

func probe(addr string) int {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return 2
	}
	for i := 0; i < 20; i++ {
		c.Write([]byte("hello"))
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 16)
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "hello" {
			return 0
		}
	}
	return 1
}

func reach(t *testing.T, l *Lab, from, to, ring int) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	self, _ := os.Executable()
	cmd := l.Command(ctx, from, self)
	cmd.Env = append(os.Environ(), "NETLAB_HELPER=probe", fmt.Sprintf("NETLAB_ADDR=%s:7000", l.Addr(to, ring)))
	return cmd.Run() == nil
}

// Two rings of three hosts: every host reaches the others on both rings; a cut link isolates a
// host on that ring only, and healing restores it; Close removes every namespace.
func TestLabLinksCutAndHeal(t *testing.T) {
	testenv.Need(t, "root and network namespaces (ip netns)", Check())
	l, err := New(Options{Prefix: fmt.Sprintf("nl%d", os.Getpid()%1000), Hosts: 3, Rings: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		out, _ := l.Command(context.Background(), 1, "true").CombinedOutput()
		if !strings.Contains(string(out), "Cannot open network namespace") {
			t.Errorf("namespace still present after Close: %q", out)
		}
	}()
	self, _ := os.Executable()
	for r := 0; r < 2; r++ {
		env := append(os.Environ(), "NETLAB_HELPER=echo", fmt.Sprintf("NETLAB_ADDR=%s:7000", l.Addr(2, r)))
		if _, err := l.Start(2, Spec{Path: self, Env: env}); err != nil {
			t.Fatal(err)
		}
	}
	for r := 0; r < 2; r++ {
		if !reach(t, l, 1, 2, r) {
			t.Fatalf("host 1 cannot reach host 2 on ring %d", r)
		}
	}
	if err := l.CutLink(2, 1); err != nil {
		t.Fatal(err)
	}
	if reach(t, l, 1, 2, 1) {
		t.Fatal("host 2 still reachable on ring 1 after CutLink")
	}
	if !reach(t, l, 1, 2, 0) {
		t.Fatal("cutting ring 1 cut ring 0 too")
	}
	if err := l.HealLink(2, 1); err != nil {
		t.Fatal(err)
	}
	if !reach(t, l, 3, 2, 1) {
		t.Fatal("host 2 unreachable on ring 1 after HealLink")
	}
}

// Partition {1,2} | {3} on one ring: the two hosts of the larger side still reach each other,
// neither reaches host 3, and Heal restores host 3. Needs nft (skips without it).
func TestLabPartitionAndHeal(t *testing.T) {
	testenv.Need(t, "root and network namespaces (ip netns)", Check())
	_, err := exec.LookPath("nft")
	testenv.Need(t, "nft (nftables)", err)
	l, err := New(Options{Prefix: fmt.Sprintf("np%d", os.Getpid()%1000), Hosts: 3, Subnet: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	self, _ := os.Executable()
	for _, h := range []int{2, 3} {
		env := append(os.Environ(), "NETLAB_HELPER=echo", fmt.Sprintf("NETLAB_ADDR=%s:7000", l.Addr(h, 0)))
		if _, err := l.Start(h, Spec{Path: self, Env: env}); err != nil {
			t.Fatal(err)
		}
	}
	if !reach(t, l, 1, 3, 0) {
		t.Fatal("host 1 cannot reach host 3 before the partition")
	}
	if err := l.Partition(0, []int{1, 2}, []int{3}); err != nil {
		t.Fatal(err)
	}
	if !reach(t, l, 1, 2, 0) {
		t.Fatal("hosts 1 and 2 are on the same side but cannot talk")
	}
	if reach(t, l, 1, 3, 0) {
		t.Fatal("host 3 still reachable from host 1 across the partition")
	}
	if err := l.Partition(0, []int{1}, []int{1}); err == nil {
		t.Fatal("a host named in two groups was accepted")
	}
	if err := l.Heal(0); err != nil {
		t.Fatal(err)
	}
	if !reach(t, l, 1, 3, 0) {
		t.Fatal("host 3 unreachable after Heal")
	}
	if err := l.Heal(0); err != nil {
		t.Errorf("second Heal: %v", err)
	}
}
