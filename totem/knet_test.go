package totem

import "testing"

// Three gototem nodes over knet on loopback: links come up by ping/pong, then the same
// ring, group and total-order checks as over udpu, and a LEAVE re-forms quickly.
func TestNodesOverKnet(t *testing.T) {
	testCluster(t, "knet")
}
