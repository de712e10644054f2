package totem_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/totem"
)

type printer struct{ got chan string }

func (p printer) Deliver(m totem.Message) {
	p.got <- fmt.Sprintf("from node %d: %s", m.Sender, m.Payload)
}
func (p printer) ConfigChange(c totem.GroupChange) {}

// A one-node ring on loopback: join a group, send a message, receive it back in total order.
func Example() {
	const conf = `
totem {
	version: 2
	cluster_name: example
	transport: udpu
	token: 1000
	interface {
		mcastport: 45405
	}
}
nodelist {
	node {
		nodeid: 1
		ring0_addr: 127.0.0.1
	}
}
quorum {
	provider: corosync_votequorum
}
`
	cfg, _, err := config.Parse("corosync.conf", strings.NewReader(conf))
	if err != nil {
		log.Fatal(err)
	}
	rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(mustAddr("127.0.0.1"))})
	if err != nil {
		log.Fatal(err)
	}
	state, cleanup := tempDir()
	defer cleanup()
	node, err := totem.New(totem.Options{Config: rt, StateDir: state})
	if err != nil {
		log.Fatal(err)
	}
	if err := node.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer node.Stop(context.Background())

	p := printer{got: make(chan string, 1)}
	group, err := node.Join("example", p)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := group.Send(ctx, []byte("hello, ring"), totem.Agreed); err != nil {
		log.Fatal(err)
	}
	select {
	case line := <-p.got:
		fmt.Println(line)
	case <-ctx.Done():
		fmt.Println("no delivery")
	}
	// Output: from node 1: hello, ring
}
