package totem

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gototem/gototem/srp"
)

// ErrNotMember is a cfg call naming a node that is not in the current ring.
var ErrNotMember = errors.New("totem: not a member of the ring")

// cfg's cluster-wide calls: corosync-cfgtool -k (kill a node) and -R (every node reloads its
// configuration) travel as cfg exec messages, so they act on corosync peers as well.

// cfgReloadWait bounds how long CfgReload waits for its own RELOAD_CONFIG to come back.
const cfgReloadWait = 30 * time.Second

// cfgWait is the pending CfgReload of this node (corosync answers one client at a time).
type cfgWait struct {
	mu sync.Mutex
	ch chan error
}

// CfgKillNode is corosync-cfgtool -k: the node target (a member) exits, whatever it runs.
func (n *Node) CfgKillNode(target NodeID, reason string) error {
	var err error
	if derr := n.do(func() {
		// corosync's cfg answers CS_ERR_NOT_EXIST unless runtime.members.<id>.status is
		// "joined".
		if m := n.members[srp.NodeID(target)]; m == nil || !m.member {
			err = fmt.Errorf("totem: kill node %d: %w", target, ErrNotMember)
			return
		}
		err = n.st.CfgKillNode(n.now(), srp.NodeID(target), reason)
	}); derr != nil {
		return derr
	}
	return err
}

// CfgReload is corosync-cfgtool -R: every node of the ring reloads its configuration
// (Options.OnCfgReload). It returns this node's own reload result, once its message came back.
func (n *Node) CfgReload() error {
	ch := make(chan error, 1)
	n.cfgWait.mu.Lock()
	if n.cfgWait.ch != nil {
		n.cfgWait.mu.Unlock()
		return fmt.Errorf("totem: a reload is already in progress: %w", ErrBusy)
	}
	n.cfgWait.ch = ch
	n.cfgWait.mu.Unlock()
	defer func() {
		n.cfgWait.mu.Lock()
		n.cfgWait.ch = nil
		n.cfgWait.mu.Unlock()
	}()
	var err error
	if derr := n.do(func() { err = n.st.CfgReload(n.now()) }); derr != nil {
		return derr
	}
	if err != nil {
		return err
	}
	t := time.NewTimer(cfgReloadWait)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-n.done:
		return ErrStopped
	case <-t.C:
		return fmt.Errorf("totem: reload not delivered within %v: %w", cfgReloadWait, ErrBusy)
	}
}

// cfgReloadDone hands the result of this node's own reload to the waiting CfgReload.
func (n *Node) cfgReloadDone(err error) {
	n.cfgWait.mu.Lock()
	defer n.cfgWait.mu.Unlock()
	if n.cfgWait.ch != nil {
		n.cfgWait.ch <- err
		n.cfgWait.ch = nil
	}
}
