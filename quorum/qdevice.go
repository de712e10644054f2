package quorum

import (
	"fmt"
	"time"
)

// The quorum device hook. In corosync a separate daemon (corosync-qdevice, talking to qnetd)
// registers with votequorum over IPC and polls it regularly, each poll saying whether the device
// grants its vote to this node's partition. The methods below are those IPC calls; Device and
// DeviceRunner let a Go program play the daemon's part without a goroutine.
//
// Vote arithmetic: the device has quorum.device.votes (or N-1 for N one-vote nodes, which makes
// expected 2N-1); its votes count in this node's total only while this node's own flags carry
// QDEVICE_CAST_VOTE, i.e. while the device's last poll within the timeout granted the vote.

func (m *Machine) checkDeviceName(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("quorum: qdevice: %w: %w", ErrInvalidParam, err)
	}
	return nil
}

// QdeviceRegister registers a device name. nil means the request went out: the outcome arrives
// in Ready.Registrations once the QDEVICE_REG has come back through totem (or at once with
// nil when the same name is already registered).
func (m *Machine) QdeviceRegister(now time.Duration, name string) error {
	m.now = now
	if err := m.checkDeviceName(name); err != nil {
		return err
	}
	if !m.d.qdeviceCanOperate {
		return fmt.Errorf("quorum: qdevice %q: registration disabled by the configuration: %w", name, ErrAccess)
	}
	if m.us.flags&FlagQdeviceRegistered != 0 {
		if name == m.qdeviceName {
			m.rd.Registrations = append(m.rd.Registrations, RegistrationResult{Name: name})
			return nil
		}
		return fmt.Errorf("quorum: qdevice %q: %q is registered: %w", name, m.qdeviceName, ErrExist)
	}
	if m.qdeviceRegPending {
		return fmt.Errorf("quorum: qdevice %q: registration already in progress: %w", name, ErrTryAgain)
	}
	b, _ := EncodeQdeviceReg(QdeviceReg{Operation: QdeviceRegister, Name: name})
	m.qdeviceRegPending = true
	m.rd.Messages = append(m.rd.Messages, b)
	return nil
}

// QdeviceUnregister withdraws the device (also corosync-quorumtool -f).
func (m *Machine) QdeviceUnregister(now time.Duration, name string) error {
	m.now = now
	if m.us.flags&FlagQdeviceRegistered == 0 {
		return fmt.Errorf("quorum: qdevice %q: not registered: %w", name, ErrNotExist)
	}
	if name != m.qdeviceName {
		return fmt.Errorf("quorum: qdevice %q: registered device is %q: %w", name, m.qdeviceName, ErrInvalidParam)
	}
	if m.qdevSet {
		m.qdevSet = false
		m.syncWaitForPoll = false
	}
	m.us.flags &^= FlagQdeviceRegistered | FlagQdeviceAlive | FlagQdeviceCastVote | FlagQdeviceMasterWins
	m.sendNodeInfo(m.us.id)
	b, _ := EncodeQdeviceReg(QdeviceReg{Operation: QdeviceUnregister, Name: name})
	m.rd.Messages = append(m.rd.Messages, b)
	return nil
}

// QdeviceUpdate renames the registered device cluster-wide.
func (m *Machine) QdeviceUpdate(now time.Duration, oldName, newName string) error {
	m.now = now
	if m.us.flags&FlagQdeviceRegistered == 0 {
		return fmt.Errorf("quorum: qdevice rename %q: not registered: %w", oldName, ErrNotExist)
	}
	if oldName != m.qdeviceName {
		return fmt.Errorf("quorum: qdevice rename %q: registered device is %q: %w", oldName, m.qdeviceName, ErrInvalidParam)
	}
	b, err := EncodeQdeviceReconfigure(QdeviceReconfigure{OldName: oldName, NewName: newName})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidParam, err)
	}
	m.rd.Messages = append(m.rd.Messages, b)
	return nil
}

// QdevicePoll is the device's periodic vote for the partition of ring: castVote grants its
// votes. It must name the ring of the current sync (a poll for an older ring is refused with
// ErrMessage, since the device decided on a membership that no longer exists). It re-arms the
// device timeout; if no poll arrives within it, the vote is withdrawn.
func (m *Machine) QdevicePoll(now time.Duration, name string, castVote bool, ring RingID) error {
	m.now = now
	if !m.d.qdeviceCanOperate {
		return fmt.Errorf("quorum: qdevice poll: %w", ErrAccess)
	}
	if m.us.flags&FlagQdeviceRegistered == 0 {
		return fmt.Errorf("quorum: qdevice poll %q: not registered: %w", name, ErrNotExist)
	}
	if ring != m.ringID {
		return fmt.Errorf("quorum: qdevice poll for ring %d.%d, current ring %d.%d: %w", ring.Rep, ring.Seq, m.ringID.Rep, m.ringID.Seq, ErrMessage)
	}
	if name != m.qdeviceName {
		return fmt.Errorf("quorum: qdevice poll %q: registered device is %q: %w", name, m.qdeviceName, ErrInvalidParam)
	}
	old := m.us.flags
	m.us.flags |= FlagQdeviceAlive
	if castVote {
		m.us.flags |= FlagQdeviceCastVote
	} else {
		m.us.flags &^= FlagQdeviceCastVote
	}
	if m.us.flags != old {
		// The new flags take effect when this NODEINFO comes back (our own NODEINFO always
		// triggers a recalculation), so every node sees the change in the same order.
		m.sendNodeInfo(m.us.id)
	}
	m.qdevSet, m.qdevAt = true, now+m.d.qdeviceTimeout
	m.syncWaitForPoll = false
	return nil
}

// QdeviceMasterWins sets the device's master_wins mode: a partition holding a node whose device
// has both MASTER_WINS and CAST_VOTE is quorate.
func (m *Machine) QdeviceMasterWins(now time.Duration, name string, allow bool) error {
	m.now = now
	if !m.d.qdeviceCanOperate {
		return fmt.Errorf("quorum: qdevice master_wins: %w", ErrAccess)
	}
	if m.us.flags&FlagQdeviceRegistered == 0 {
		return fmt.Errorf("quorum: qdevice master_wins %q: not registered: %w", name, ErrNotExist)
	}
	if name != m.qdeviceName {
		return fmt.Errorf("quorum: qdevice master_wins %q: registered device is %q: %w", name, m.qdeviceName, ErrInvalidParam)
	}
	old := m.us.flags
	if allow {
		m.us.flags |= FlagQdeviceMasterWins
	} else {
		m.us.flags &^= FlagQdeviceMasterWins
	}
	if m.us.flags != old {
		m.sendNodeInfo(m.us.id)
	}
	m.qdeviceMasterWins = allow
	return nil
}

// QdeviceTimeout is the configured poll timeout (0 without a device).
func (m *Machine) QdeviceTimeout() time.Duration { return m.d.qdeviceTimeout }

// CurrentRing is the ring of the last Sync, the one a poll must name.
func (m *Machine) CurrentRing() RingID { return m.ringID }

// Device is a quorum device provider: a Go stand-in for corosync-qdevice and its arbiter.
type Device interface {
	// Name is the name the device registers under.
	Name() string
	// Vote decides whether the device grants its vote to the partition formed by members on
	// ring. An error counts as "no poll": after the timeout the vote is withdrawn.
	Vote(ring RingID, members []NodeID) (castVote bool, err error)
}

// DeviceRunner drives a Device against a Machine as the qdevice daemon would: register once,
// then poll every Interval (default: half the configured timeout, as corosync-qdevice does well
// within it). It is pure: the driver calls Step at or after Next and then handles the Machine's
// Ready as usual.
type DeviceRunner struct {
	Dev      Device
	Interval time.Duration

	requested bool
	next      time.Duration
	Polls     uint64
	Failures  uint64
}

// Step registers or polls as due. members is the current ring's membership.
func (r *DeviceRunner) Step(now time.Duration, m *Machine, members []NodeID) error {
	if now < r.next {
		return nil
	}
	interval := r.Interval
	if interval <= 0 {
		interval = m.QdeviceTimeout() / 2
	}
	if interval <= 0 {
		interval = DefaultQdeviceTimeout / 2
	}
	r.next = now + interval
	if m.us.flags&FlagQdeviceRegistered == 0 {
		if r.requested && m.qdeviceRegPending {
			return nil
		}
		r.requested = true
		if err := m.QdeviceRegister(now, r.Dev.Name()); err != nil {
			r.Failures++
			return err
		}
		// Registration completes when the QDEVICE_REG comes back; poll right after.
		r.next = now
		return nil
	}
	ring := m.CurrentRing()
	cast, err := r.Dev.Vote(ring, members)
	if err != nil {
		r.Failures++
		return fmt.Errorf("quorum: qdevice %q vote: %w", r.Dev.Name(), err)
	}
	r.Polls++
	return m.QdevicePoll(now, r.Dev.Name(), cast, ring)
}

// Next is when Step wants to run again.
func (r *DeviceRunner) Next() time.Duration { return r.next }
