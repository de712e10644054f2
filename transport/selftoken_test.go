package transport

import (
	"bytes"
	"testing"

	"github.com/gototem/gototem/srp"
)

// A singleton udp ring sends its commit token and ORF token to itself. That unicast leaves
// from mcastport-1, the same source as our multicasts, so the own-echo filter must only apply
// to the group socket: found when a real 3-node udp ring stayed in COMMIT forever.
func TestUDPTokenToSelf(t *testing.T) {
	nodes, _ := openRetrying(t, func(tn testNet) []Config {
		return []Config{cfgFor(UDP, tn, 1, members(tn, 1))}
	})
	tok := tokenMsg(1, 1)
	if err := nodes[0].link.Send([]srp.Outgoing{toNode(1, tok)}); err != nil {
		t.Fatal(err)
	}
	g := nodes[0].expect(t, 1)[0]
	if g.recv != "token" || !bytes.Equal(g.data, tok) {
		t.Fatalf("token to self arrived as %s", describe([]got{g}))
	}
}
