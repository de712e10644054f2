package config_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gototem/gototem/config"
)

// A three-node udpu cluster as pcs writes it, with an explicit token.
const threeNodes = `totem {
	version: 2
	cluster_name: demo
	transport: udpu
	token: 1000
}

nodelist {
	node {
		ring0_addr: 10.0.0.1
		name: alpha
		nodeid: 1
	}
	node {
		ring0_addr: 10.0.0.2
		name: beta
		nodeid: 2
	}
	node {
		ring0_addr: 10.0.0.3
		name: gamma
		nodeid: 3
	}
}

quorum {
	provider: corosync_votequorum
}
`

// Example follows corosync's startup: parse the file, resolve it for this machine (the
// node whose ring0_addr is one of its addresses), then read the effective totem timers.
// With three nodes the token grows by one token_coefficient (650 ms) over the configured
// 1000 ms, and consensus is 1.2 × token, as totemconfig derives them.
func Example() {
	cfg, warns, err := config.Parse("corosync.conf", strings.NewReader(threeNodes))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("warnings:", len(warns))

	rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(netip.MustParseAddr("10.0.0.2"))})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("local node:", rt.Local().Name, "nodeid", rt.NodeID)
	fmt.Println("token base:", rt.Totem.TokenBase)
	fmt.Println("token:", rt.Totem.Token)
	fmt.Println("consensus:", rt.Totem.Consensus)
	fmt.Println("ring 0:", rt.Rings[0].BindNetAddr, "port", rt.Rings[0].McastPort)
	// Output:
	// warnings: 0
	// local node: beta nodeid 2
	// token base: 1s
	// token: 1.65s
	// consensus: 1.98s
	// ring 0: 10.0.0.2 port 5405
}

// ExampleRuntime_Keys prints part of the corosync-cmapctl picture of a resolved
// configuration: the file's own keys plus what corosync derives at startup.
func ExampleRuntime_Keys() {
	cfg, _, err := config.Parse("corosync.conf", strings.NewReader(threeNodes))
	if err != nil {
		fmt.Println(err)
		return
	}
	rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(netip.MustParseAddr("10.0.0.2"))})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, kv := range rt.Keys() {
		switch kv.Key {
		case "nodelist.local_node_pos", "nodelist.node.1.ring0_addr",
			"runtime.config.totem.token", "runtime.config.totem.consensus",
			"totem.cluster_name", "quorum.provider":
			fmt.Println(kv)
		}
	}
	// Output:
	// nodelist.local_node_pos (u32) = 1
	// nodelist.node.1.ring0_addr (str) = 10.0.0.2
	// quorum.provider (str) = corosync_votequorum
	// runtime.config.totem.consensus (u32) = 1980
	// runtime.config.totem.token (u32) = 1650
	// totem.cluster_name (str) = demo
}

// ExampleParse_warnings shows the two ways Parse reports trouble: a key corosync 3 ignores
// comes back as a warning while the file is still accepted, and a bad value is an *Error
// naming FILE:LINE.
func ExampleParse_warnings() {
	_, warns, err := config.Parse("old.conf", strings.NewReader(`totem {
	version: 2
	transport: udpu
	threads: 4
}
nodelist {
	node {
		ring0_addr: 10.0.0.1
		nodeid: 1
	}
}
`))
	fmt.Println("accepted:", err == nil)
	for _, w := range warns {
		fmt.Println("warning:", w)
	}

	_, _, err = config.Parse("bad.conf", strings.NewReader(`totem {
	version: 2
	token: soon
}
`))
	var e *config.Error
	if errors.As(err, &e) {
		fmt.Printf("error at %s:%d\n", e.File, e.Line)
	}
	fmt.Println(err)
	// Output:
	// accepted: true
	// warning: old.conf:4: warning: totem.threads is ignored: corosync 3 and gototem do not use encryption threads
	// error at bad.conf:3
	// bad.conf:3: Value of key "totem.token" is expected to be integer in range (0..4294967295), but "soon" was given
}
