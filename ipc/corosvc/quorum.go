package corosvc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"github.com/gototem/gototem/ipc"
	"github.com/gototem/gototem/quorum"
	"github.com/gototem/gototem/totem"
)

// StatusSource is the running node as the quorum, votequorum and cfg services see it.
type StatusSource interface {
	Status() totem.Status
}

// VoteSetter is what votequorum's administrative calls change (corosync-quorumtool -e, -v).
type VoteSetter interface {
	SetExpectedVotes(v uint32) error
	SetVotes(nodeid totem.NodeID, votes uint32) error
}

// QdeviceCalls are votequorum's quorum-device calls (corosync-qdevice's libvotequorum calls),
// answered by the node's votequorum. Errors wrap quorum's CS_ERR_* sentinels.
type QdeviceCalls interface {
	QdeviceRegister(name string) error
	QdeviceUnregister(name string) error
	QdeviceUpdate(oldName, newName string) error
	QdevicePoll(name string, castVote bool, ring quorum.RingID) error
	QdeviceMasterWins(name string, allow bool) error
}

// Track flags of corotypes.h.
const (
	csTrackCurrent     = 1
	csTrackChanges     = 2
	csTrackChangesOnly = 4
)

// quorum service ids (ipc_quorum.h).
const (
	qGetQuorate  = 0
	qTrackStart  = 1
	qTrackStop   = 2
	qGetType     = 3
	qModelGetTyp = 4

	qResNotification   = 3
	qResModelGetType   = 5
	qResV1Notification = 6
	qResV1Nodelist     = 7
)

// quorumView is what a quorum notification carries.
type quorumView struct {
	quorate bool
	ring    quorum.RingID
	members []quorum.NodeID
}

func (a quorumView) equal(b quorumView) bool {
	return a.quorate == b.quorate && a.ring == b.ring && slices.Equal(a.members, b.members)
}

func viewOf(st totem.Status) quorumView {
	q := st.Quorum
	return quorumView{quorate: q.Quorate, ring: q.RingID, members: slices.Clone(q.Members)}
}

// Quorum is the quorum service (exec/vsf_quorum.c): the quorate verdict and the member
// list of the quorum provider, for libquorum's models v0 and v1.
type Quorum struct {
	node StatusSource

	mu    sync.Mutex
	conns map[*ipc.Conn]*quorumConn
	last  *quorumView
}

type quorumConn struct {
	model    uint32
	tracking bool
}

// NewQuorum returns the quorum service.
func NewQuorum(node StatusSource) *Quorum {
	return &Quorum{node: node, conns: map[*ipc.Conn]*quorumConn{}}
}

func (q *Quorum) Connect(c *ipc.Conn) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.conns[c] = &quorumConn{}
	return nil
}

func (q *Quorum) Disconnect(c *ipc.Conn) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.conns, c)
}

// quorumType is vsf_quorum's quorum_type: 1 when a provider (votequorum) is loaded.
func quorumType(st totem.Status) uint32 {
	if st.QuorumProvider != "" {
		return 1
	}
	return 0
}

func (q *Quorum) Request(c *ipc.Conn, id int32, msg []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qc := q.conns[c]
	if qc == nil {
		return
	}
	le := binary.LittleEndian
	st := q.node.Status()
	switch id {
	case qGetQuorate:
		b := header(qGetQuorate, csOK, 32)
		if st.Quorum.Quorate {
			le.PutUint32(b[24:], 1)
		}
		c.RespondRaw(b)
	case qTrackStart:
		if len(msg) < 20 {
			c.RespondRaw(header(qTrackStart, csErrInvalid, 24))
			return
		}
		flags := le.Uint32(msg[16:])
		if flags&(csTrackCurrent|csTrackChanges) != 0 {
			v := viewOf(st)
			if qc.model == 1 {
				c.SendEventRaw(nodelistV1(v))
			}
			c.SendEventRaw(quorumNotification(qc.model, v))
		}
		err := int32(csOK)
		if qc.tracking {
			err = csErrExist
		} else if flags&(csTrackChanges|csTrackChangesOnly) != 0 {
			qc.tracking = true
			if q.last == nil {
				v := viewOf(st)
				q.last = &v
			}
		}
		c.RespondRaw(header(qTrackStart, err, 24))
	case qTrackStop:
		// corosync answers CS_OK even when nothing was tracked.
		qc.tracking = false
		c.RespondRaw(header(qTrackStop, csOK, 24))
	case qGetType:
		b := header(4, csOK, 32) // MESSAGE_RES_QUORUM_GETTYPE
		le.PutUint32(b[24:], quorumType(st))
		c.RespondRaw(b)
	case qModelGetTyp:
		b := header(qResModelGetType, csOK, 32)
		if len(msg) < 20 {
			ipc.PutResponseHeader(b, qResModelGetType, 32, csErrInvalid)
		} else if m := le.Uint32(msg[16:]); m > 1 {
			ipc.PutResponseHeader(b, qResModelGetType, 32, csErrInvalid)
		} else {
			qc.model = m
		}
		le.PutUint32(b[24:], quorumType(st))
		c.RespondRaw(b)
	default:
		c.RespondRaw(header(0, csErrInvalid, 24))
	}
}

// Refresh sends the trackers the new view when it changed.
func (q *Quorum) Refresh() {
	q.mu.Lock()
	defer q.mu.Unlock()
	v := viewOf(q.node.Status())
	if q.last != nil && q.last.equal(v) {
		return
	}
	old := q.last
	q.last = &v
	if old == nil {
		return
	}
	for c, qc := range q.conns {
		if !qc.tracking {
			continue
		}
		if qc.model == 1 {
			c.SendEventRaw(nodelistV1(v))
		}
		c.SendEventRaw(quorumNotification(qc.model, v))
	}
}

// quorumNotification is res_lib_quorum_notification (v0) or its v1 form.
func quorumNotification(model uint32, v quorumView) []byte {
	le := binary.LittleEndian
	q := uint32(0)
	if v.quorate {
		q = 1
	}
	if model == 1 {
		b := make([]byte, 52+4*len(v.members))
		le.PutUint32(b[24:], q)
		le.PutUint32(b[32:], uint32(v.ring.Rep))
		le.PutUint64(b[40:], v.ring.Seq)
		le.PutUint32(b[48:], uint32(len(v.members)))
		for i, m := range v.members {
			le.PutUint32(b[52+4*i:], uint32(m))
		}
		ipc.PutResponseHeader(b, qResV1Notification, len(b), csOK)
		return b
	}
	b := make([]byte, 44+4*len(v.members))
	le.PutUint32(b[24:], q)
	le.PutUint64(b[32:], v.ring.Seq)
	le.PutUint32(b[40:], uint32(len(v.members)))
	for i, m := range v.members {
		le.PutUint32(b[44+4*i:], uint32(m))
	}
	ipc.PutResponseHeader(b, qResNotification, len(b), csOK)
	return b
}

// nodelistV1 is res_lib_quorum_v1_nodelist_notification without joined and left lists, as
// corosync sends it on trackstart.
func nodelistV1(v quorumView) []byte {
	le := binary.LittleEndian
	b := make([]byte, 60+4*len(v.members))
	le.PutUint32(b[24:], uint32(v.ring.Rep))
	le.PutUint64(b[32:], v.ring.Seq)
	le.PutUint32(b[40:], uint32(len(v.members)))
	for i, m := range v.members {
		le.PutUint32(b[60+4*i:], uint32(m))
	}
	ipc.PutResponseHeader(b, qResV1Nodelist, len(b), csOK)
	return b
}

// votequorum ids (ipc_votequorum.h).
const (
	vqGetInfo     = 0
	vqSetExpected = 1
	vqSetVotes    = 2
	vqTrackStart  = 3
	vqTrackStop   = 4

	vqQdeviceRegister   = 5
	vqQdeviceUnregister = 6
	vqQdeviceUpdate     = 7
	vqQdevicePoll       = 8
	vqQdeviceMasterWins = 9

	vqResStatus        = 0
	vqResGetInfo       = 1
	vqResQuorumNotify  = 3
	vqResExpectedVotes = 4
	vqResNodelist      = 5
)

// Votequorum is the votequorum service (exec/votequorum.c): getinfo, expected votes and
// votes, tracking, and the quorum-device calls when the node answers them (QdeviceCalls).
type Votequorum struct {
	node StatusSource
	set  VoteSetter
	qd   QdeviceCalls // nil: the device calls are answered CS_ERR_NOT_SUPPORTED

	mu    sync.Mutex
	conns map[*ipc.Conn]*vqConn
	last  *quorumView
	// syncRing is the ring of the last nodelist notification: corosync sends one to the
	// trackers when a sync starts (votequorum_sync_process), and corosync-qdevice polls with
	// that ring; the sync waits for the poll.
	syncRing *quorum.RingID
}

type vqConn struct {
	tracking bool
	context  uint64
}

// NewVotequorum returns the votequorum service.
func NewVotequorum(node StatusSource, set VoteSetter) *Votequorum {
	v := &Votequorum{node: node, set: set, conns: map[*ipc.Conn]*vqConn{}}
	v.qd, _ = set.(QdeviceCalls)
	return v
}

func (v *Votequorum) Connect(c *ipc.Conn) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.conns[c] = &vqConn{}
	return nil
}

func (v *Votequorum) Disconnect(c *ipc.Conn) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.conns, c)
}

func (v *Votequorum) Request(c *ipc.Conn, id int32, msg []byte) {
	if id >= vqQdeviceRegister && id <= vqQdeviceMasterWins {
		// Outside the lock: a registration waits for its message to come back through
		// totem, and trackers must get their notifications meanwhile.
		v.mu.Lock()
		known := v.conns[c] != nil
		v.mu.Unlock()
		if known {
			c.RespondRaw(header(vqResStatus, v.qdeviceCall(id, msg), 24))
		}
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	vc := v.conns[c]
	if vc == nil {
		return
	}
	le := binary.LittleEndian
	st := v.node.Status()
	if st.QuorumProvider == "" {
		// No votequorum: corosync does not even publish the service; a client that found
		// the socket gets what corosync gives a call to a missing service.
		c.RespondRaw(header(int32(vqResStatus), csErrNotExist, 24))
		return
	}
	switch id {
	case vqGetInfo:
		b := header(vqResGetInfo, csOK, 320)
		if len(msg) < 20 {
			ipc.PutResponseHeader(b, vqResGetInfo, 320, csErrInvalid)
			c.RespondRaw(b)
			return
		}
		nodeid := quorum.NodeID(le.Uint32(msg[16:]))
		q := st.Quorum
		if nodeid == 0 { // VOTEQUORUM_QDEVICE_NODEID asks for this node
			nodeid = q.NodeID
		}
		info, ok := q.Nodes[nodeid]
		if nodeid == q.NodeID {
			info, ok = q.Local, true
		}
		if !ok {
			ipc.PutResponseHeader(b, vqResGetInfo, 320, csErrNotExist)
			c.RespondRaw(b)
			return
		}
		le.PutUint32(b[24:], uint32(info.NodeID))
		le.PutUint32(b[28:], uint32(info.State))
		le.PutUint32(b[32:], info.Votes)
		le.PutUint32(b[36:], info.ExpectedVotes)
		le.PutUint32(b[40:], info.HighestExpected)
		le.PutUint32(b[44:], info.TotalVotes)
		le.PutUint32(b[48:], info.Quorum)
		le.PutUint32(b[52:], uint32(info.Flags))
		le.PutUint32(b[56:], info.QdeviceVotes)
		copy(b[60:60+254], info.QdeviceName)
		c.RespondRaw(b)
	case vqSetExpected:
		err := int32(csOK)
		if len(msg) < 20 {
			err = csErrInvalid
		} else if e := v.set.SetExpectedVotes(le.Uint32(msg[16:])); e != nil {
			err = csErrInvalid
		}
		c.RespondRaw(header(vqResStatus, err, 24))
	case vqSetVotes:
		err := int32(csOK)
		if len(msg) < 24 {
			err = csErrInvalid
		} else {
			nodeid := totem.NodeID(le.Uint32(msg[20:]))
			if nodeid == 0 {
				nodeid = totem.NodeID(st.Quorum.NodeID)
			}
			if e := v.set.SetVotes(nodeid, le.Uint32(msg[16:])); e != nil {
				err = csErrInvalid
			}
		}
		c.RespondRaw(header(vqResStatus, err, 24))
	case vqTrackStart:
		if len(msg) < 28 {
			c.RespondRaw(header(vqResStatus, csErrInvalid, 24))
			return
		}
		ctx := le.Uint64(msg[16:])
		flags := le.Uint32(msg[24:])
		if flags&(csTrackCurrent|csTrackChanges) != 0 {
			c.SendEventRaw(vqNodelist(ctx, st.Quorum.SyncRing, st.Quorum.SyncMembers))
			c.SendEventRaw(vqQuorum(ctx, st))
		}
		err := int32(csOK)
		if vc.tracking {
			err = csErrExist
		} else if flags&(csTrackChanges|csTrackChangesOnly) != 0 {
			vc.tracking, vc.context = true, ctx
			if v.last == nil {
				w := viewOf(st)
				v.last = &w
			}
		}
		c.RespondRaw(header(vqResStatus, err, 24))
	case vqTrackStop:
		err := int32(csOK)
		if !vc.tracking {
			err = csErrNotExist
		}
		vc.tracking = false
		c.RespondRaw(header(vqResStatus, err, 24))
	default:
		c.RespondRaw(header(0, csErrInvalid, 24))
	}
}

// Refresh sends trackers the node list of a sync that started, and the verdict when it
// changed: corosync sends the nodelist notification from votequorum's sync_process (before the
// verdict, which waits for the quorum device's poll) and the quorum notification from
// sync_activate or a recalculation.
func (v *Votequorum) Refresh() {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.node.Status()
	q := st.Quorum
	if q.SyncRing != (quorum.RingID{}) && (v.syncRing == nil || *v.syncRing != q.SyncRing) {
		first := v.syncRing == nil
		r := q.SyncRing
		v.syncRing = &r
		for c, vc := range v.conns {
			if vc.tracking && !first {
				c.SendEventRaw(vqNodelist(vc.context, q.SyncRing, q.SyncMembers))
			}
		}
	}
	w := viewOf(st)
	if v.last != nil && v.last.equal(w) {
		return
	}
	old := v.last
	v.last = &w
	if old == nil {
		return
	}
	for c, vc := range v.conns {
		if vc.tracking {
			c.SendEventRaw(vqQuorum(vc.context, st))
		}
	}
}

// ExpectedVotes sends the trackers votequorum's expected-votes notification
// (totem.Options.OnExpectedVotes): corosync sends it to every tracker when an EXPECTED_VOTES
// change is delivered and when the votes present raise expected votes.
func (v *Votequorum) ExpectedVotes(expected uint32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for c, vc := range v.conns {
		if vc.tracking {
			c.SendEventRaw(vqExpected(vc.context, expected))
		}
	}
}

// vqExpected is res_lib_votequorum_expectedvotes_notification: header, context (u64 at 24),
// expected_votes (u32 at 32), 40 bytes.
func vqExpected(ctx uint64, expected uint32) []byte {
	b := make([]byte, 40)
	binary.LittleEndian.PutUint64(b[24:], ctx)
	binary.LittleEndian.PutUint32(b[32:], expected)
	ipc.PutResponseHeader(b, vqResExpectedVotes, len(b), csOK)
	return b
}

// qdeviceNameField is VOTEQUORUM_QDEVICE_MAX_NAME_LEN, the size of a name field.
const qdeviceNameField = 255

// qdeviceName reads a char[255] name field at off: NUL-terminated, compared as strncmp does.
func qdeviceName(msg []byte, off int) (string, bool) {
	if len(msg) < off+qdeviceNameField {
		return "", false
	}
	f := msg[off : off+qdeviceNameField]
	if i := bytes.IndexByte(f, 0); i >= 0 {
		f = f[:i]
	}
	return string(f), true
}

// qdeviceCall runs one quorum-device request (the req_lib_votequorum_qdevice_* layouts of
// ipc_votequorum.h: the name at 16; update's new name at 271; poll's cast_vote at 272 and
// ring id at 280 (nodeid) and 288 (seq); master_wins' allow at 272) and returns the cs_error
// corosync answers.
func (v *Votequorum) qdeviceCall(id int32, msg []byte) int32 {
	if v.qd == nil {
		return csErrNotSupp
	}
	if v.node.Status().QuorumProvider == "" {
		return csErrNotExist
	}
	le := binary.LittleEndian
	name, ok := qdeviceName(msg, 16)
	if !ok {
		return csErrInvalid
	}
	var err error
	switch id {
	case vqQdeviceRegister:
		err = v.qd.QdeviceRegister(name)
	case vqQdeviceUnregister:
		err = v.qd.QdeviceUnregister(name)
	case vqQdeviceUpdate:
		newName, ok := qdeviceName(msg, 16+qdeviceNameField)
		if !ok {
			return csErrInvalid
		}
		err = v.qd.QdeviceUpdate(name, newName)
	case vqQdevicePoll:
		if len(msg) < 296 {
			return csErrInvalid
		}
		ring := quorum.RingID{Rep: quorum.NodeID(le.Uint32(msg[280:])), Seq: le.Uint64(msg[288:])}
		err = v.qd.QdevicePoll(name, le.Uint32(msg[272:]) != 0, ring)
	case vqQdeviceMasterWins:
		if len(msg) < 276 {
			return csErrInvalid
		}
		err = v.qd.QdeviceMasterWins(name, le.Uint32(msg[272:]) != 0)
	}
	return csErrorOf(err)
}

// csErrorOf maps votequorum's errors onto the cs_error_t corosync returns for them.
func csErrorOf(err error) int32 {
	switch {
	case err == nil:
		return csOK
	case errors.Is(err, quorum.ErrAccess):
		return csErrAccess
	case errors.Is(err, quorum.ErrExist):
		return csErrExist
	case errors.Is(err, quorum.ErrNotExist):
		return csErrNotExist
	case errors.Is(err, quorum.ErrTryAgain):
		return csErrTryAgain
	case errors.Is(err, quorum.ErrMessage):
		return csErrMessage
	case errors.Is(err, quorum.ErrNameNotFound):
		return csErrNameNotFound
	case errors.Is(err, quorum.ErrInvalidParam):
		return csErrInvalid
	}
	return csErrLibrary
}

// vqQuorum is res_lib_votequorum_quorum_notification: the verdict and each member's state.
func vqQuorum(ctx uint64, st totem.Status) []byte {
	le := binary.LittleEndian
	q := st.Quorum
	b := make([]byte, 48+8*len(q.Members))
	if q.Quorate {
		le.PutUint32(b[24:], 1)
	}
	le.PutUint64(b[32:], ctx)
	le.PutUint32(b[40:], uint32(len(q.Members)))
	for i, m := range q.Members {
		le.PutUint32(b[48+8*i:], uint32(m))
		le.PutUint32(b[52+8*i:], uint32(quorum.StateMember))
	}
	ipc.PutResponseHeader(b, vqResQuorumNotify, len(b), csOK)
	return b
}

// vqNodelist is res_lib_votequorum_nodelist_notification.
func vqNodelist(ctx uint64, ring quorum.RingID, members []quorum.NodeID) []byte {
	le := binary.LittleEndian
	b := make([]byte, 56+4*len(members))
	le.PutUint64(b[24:], ctx)
	le.PutUint32(b[32:], uint32(ring.Rep))
	le.PutUint64(b[40:], ring.Seq)
	le.PutUint32(b[48:], uint32(len(members)))
	for i, m := range members {
		le.PutUint32(b[56+4*i:], uint32(m))
	}
	ipc.PutResponseHeader(b, vqResNodelist, len(b), csOK)
	return b
}
