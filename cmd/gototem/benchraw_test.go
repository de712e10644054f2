package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestBenchRaw runs bench --raw as three nodes on loopback addresses: node 1 blasts for half a
// second, nodes 2 and 3 must count full-size MCAST datagrams (netmtu 1500 − 45 bytes) and
// report a rate. It fails if the receivers count nothing or another size.
func TestBenchRaw(t *testing.T) {
	if testing.Short() {
		t.Skip("blasts loopback for half a second")
	}
	port := 20000 + rand.IntN(20000)
	base := fmt.Sprintf("127.%d.%d.", 10+rand.IntN(200), rand.IntN(250))
	conf := fmt.Sprintf("totem {\n\tversion: 2\n\tcluster_name: raw\n\ttransport: udpu\n\tinterface {\n\t\tlinknumber: 0\n\t\tmcastport: %d\n\t}\n}\nnodelist {\n", port)
	for i := 1; i <= 3; i++ {
		conf += fmt.Sprintf("\tnode {\n\t\tring0_addr: %s%d\n\t\tnodeid: %d\n\t}\n", base, i, i)
	}
	conf += "}\n"
	file := filepath.Join(t.TempDir(), "corosync.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	outs := make([]bytes.Buffer, 3)
	errs := make([]bytes.Buffer, 3)
	codes := make([]int, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = runBench([]string{"--raw", "-c", file, "--local-addr", fmt.Sprintf("%s%d", base, i+1),
				"--seconds", "0.5", "--senders", "one"}, &outs[i], &errs[i])
		}()
	}
	wg.Wait()
	for i := range 3 {
		line := strings.TrimSpace(outs[i].String())
		t.Logf("node %d: %s %s", i+1, line, errs[i].String())
		if codes[i] != 0 || !strings.HasPrefix(line, "raw: ") {
			t.Fatalf("node %d: exit %d, output %q", i+1, codes[i], line)
		}
		f := benchLineFields(line)
		if f["datagram"] != "1455" {
			t.Errorf("node %d: datagram size %s, want 1455 (netmtu 1500 − 45)", i+1, f["datagram"])
		}
		key := "received"
		if i == 0 {
			key = "sent"
		}
		if n, _ := strconv.Atoi(f[key]); n == 0 {
			t.Errorf("node %d: %s=0", i+1, key)
		}
		if r, _ := strconv.ParseFloat(f["MB/s"], 64); r <= 0 {
			t.Errorf("node %d: no rate: %q", i+1, line)
		}
	}
}

func benchLineFields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}
