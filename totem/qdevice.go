package totem

import (
	"fmt"
	"time"

	"github.com/gototem/gototem/quorum"
)

// The quorum-device calls of votequorum's IPC (corosync-qdevice's libvotequorum calls). They
// run on the node's stack like every other input; the errors wrap quorum's CS_ERR_* sentinels
// so that the IPC service answers what corosync answers.

// qdeviceRegisterWait bounds how long a registration waits for its QDEVICE_REG to come back
// through totem. corosync keeps the client waiting until then; a ring that cannot deliver
// for this long is not one a device should register on, and the client retries.
const qdeviceRegisterWait = 30 * time.Second

// QdeviceRegister is votequorum_qdevice_register: it returns once the registration came back
// through totem (nil), or was refused.
func (n *Node) QdeviceRegister(name string) error {
	wait := make(chan quorum.RegistrationResult, 1)
	var err error
	if derr := n.do(func() {
		if n.qdevReg != nil {
			err = fmt.Errorf("totem: qdevice %q: registration already in progress: %w", name, quorum.ErrTryAgain)
			return
		}
		n.qdevReg = wait
		err = n.st.QdeviceRegister(n.now(), name)
		if err != nil && n.qdevReg == wait {
			n.qdevReg = nil
		}
	}); derr != nil {
		return derr
	}
	if err != nil {
		return err
	}
	t := time.NewTimer(qdeviceRegisterWait)
	defer t.Stop()
	select {
	case r := <-wait:
		return r.Err
	case <-n.done:
		return ErrStopped
	case <-t.C:
		// The stack still completes the registration when the message comes back; a retry
		// then finds the device registered.
		_ = n.do(func() {
			if n.qdevReg == wait {
				n.qdevReg = nil
			}
		})
		return fmt.Errorf("totem: qdevice %q: registration not delivered within %v: %w", name, qdeviceRegisterWait, quorum.ErrTryAgain)
	}
}

// QdeviceUnregister is votequorum_qdevice_unregister (and corosync-quorumtool -f).
func (n *Node) QdeviceUnregister(name string) error {
	return n.qdeviceCall(func(now time.Duration) error { return n.st.QdeviceUnregister(now, name) })
}

// QdeviceUpdate is votequorum_qdevice_update, a rename.
func (n *Node) QdeviceUpdate(oldName, newName string) error {
	return n.qdeviceCall(func(now time.Duration) error { return n.st.QdeviceUpdate(now, oldName, newName) })
}

// QdevicePoll is votequorum_qdevice_poll: the device grants (castVote) or withholds its votes
// for the partition of ring, which must be the ring of the current sync.
func (n *Node) QdevicePoll(name string, castVote bool, ring quorum.RingID) error {
	return n.qdeviceCall(func(now time.Duration) error { return n.st.QdevicePoll(now, name, castVote, ring) })
}

// QdeviceMasterWins is votequorum_qdevice_master_wins.
func (n *Node) QdeviceMasterWins(name string, allow bool) error {
	return n.qdeviceCall(func(now time.Duration) error { return n.st.QdeviceMasterWins(now, name, allow) })
}

func (n *Node) qdeviceCall(f func(now time.Duration) error) error {
	var err error
	if derr := n.do(func() { err = f(n.now()) }); derr != nil {
		return derr
	}
	return err
}
