package corosvc

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/gototem/gototem/totem"
)

// corosync-cfgtool -k: req_lib_cfg_killnode's nodeid and cs_name_t reason reach the node; a
// node outside the ring is CS_ERR_NOT_EXIST, as corosync answers from runtime.members.
func TestCfgKillNodeRequest(t *testing.T) {
	var got string
	g := NewCfg(&fakeVQ{}, CfgOptions{KillNode: func(id totem.NodeID, reason string) error {
		got = fmt.Sprintf("%d %q", id, reason)
		if id == 9 {
			return fmt.Errorf("kill node 9: %w", totem.ErrNotMember)
		}
		return nil
	}})
	req := func(id uint32, reason string) []byte {
		b := make([]byte, 16+4+2+256+2)
		binary.LittleEndian.PutUint32(b[16:], id)
		binary.LittleEndian.PutUint16(b[20:], uint16(len(reason)))
		copy(b[22:], reason)
		return b
	}
	if e := g.killNode(req(2, "Killed by corosync-cfgtool")); e != csOK || got != `2 "Killed by corosync-cfgtool"` {
		t.Fatalf("kill node 2: cs_error %d, node got %s", e, got)
	}
	if e := g.killNode(req(9, "x")); e != csErrNotExist {
		t.Fatalf("kill node 9 (not a member): cs_error %d", e)
	}
	if e := g.killNode(make([]byte, 20)); e != csErrInvalid {
		t.Fatalf("short request: cs_error %d", e)
	}
	if e := NewCfg(&fakeVQ{}, CfgOptions{}).killNode(req(2, "x")); e != csErrNotSupp {
		t.Fatalf("without KillNode: cs_error %d", e)
	}
}
