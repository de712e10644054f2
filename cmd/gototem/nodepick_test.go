package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Three daemons on one host from one corosync.conf with nodes on 127.0.0.1-3 and no
// --local-addr: corosync's rule picks 127.0.0.1 (the only interface address), so every daemon
// would be node 1. With node 1's port taken, the next one becomes node 2, then node 3.
func TestPickFreeNodeOnOneHost(t *testing.T) {
	port := 31000 + 2*(os.Getpid()%4000)
	conf := filepath.Join(t.TempDir(), "corosync.conf")
	var nodes strings.Builder
	for id := 1; id <= 3; id++ {
		fmt.Fprintf(&nodes, "\tnode {\n\t\tring0_addr: 127.0.0.%d\n\t\tnodeid: %d\n\t}\n", id, id)
	}
	os.WriteFile(conf, []byte(fmt.Sprintf("totem {\n\tversion: 2\n\tcluster_name: pick\n\ttransport: udpu\n\tinterface {\n\t\tmcastport: %d\n\t}\n}\nnodelist {\n%s}\nquorum {\n\tprovider: corosync_votequorum\n}\n", port, nodes.String())), 0o600)
	var stderr bytes.Buffer
	for want := 1; want <= 3; want++ {
		rt, err := loadRuntime(conf, nil, true, &stderr)
		if err != nil {
			t.Fatal(err)
		}
		if rt.NodeID != uint32(want) {
			t.Fatalf("daemon %d runs as node %d (stderr %q)", want, rt.NodeID, stderr.String())
		}
		// This daemon now holds its port.
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(rt.Nodes[rt.LocalPos].IPs[0], uint16(port))))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if !strings.Contains(stderr.String(), "running as node 2 (127.0.0.2)") || !strings.Contains(stderr.String(), "running as node 3") {
		t.Errorf("the choice is not explained: %q", stderr.String())
	}
	// A fourth finds every local node busy: it keeps corosync's choice (and will fail to bind).
	rt, err := loadRuntime(conf, nil, true, &stderr)
	if err != nil || rt.NodeID != 1 {
		t.Errorf("with every node busy: node %d, %v", rt.NodeID, err)
	}
	// A reload keeps the node even though its port is (by itself) taken.
	if rt, err := loadRuntime(conf, nil, false, &stderr); err != nil || rt.NodeID != 1 {
		t.Errorf("reload: node %d, %v", rt.NodeID, err)
	}
}
