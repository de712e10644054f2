package corosvc

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/gototem/gototem/ipc"
	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/totem"
)

// GroupNode is the node as the cpg service uses it: process groups joined per client
// process (totem.Node.JoinProcess), the group records, the ring.
type GroupNode interface {
	StatusSource
	JoinProcess(group string, pid uint32, h totem.GroupHandler) (*totem.ProcessGroup, error)
	GroupMembers(group string) []totem.Process
	ProcessRecords() []totem.GroupProcess
}

// cpg request ids (ipc_cpg.h) and response/callback ids.
const (
	cpgJoin          = 0
	cpgLeave         = 1
	cpgMcast         = 2
	cpgMembership    = 3
	cpgLocalGet      = 4
	cpgIterInit      = 5
	cpgIterNext      = 6
	cpgIterFinalize  = 7
	cpgFinalize      = 8
	cpgZcAlloc       = 9
	cpgZcFree        = 10
	cpgZcExecute     = 11
	cpgPartialMcast  = 12
	cpgResConfchg    = 4
	cpgResDeliver    = 5
	cpgResLocalGet   = 7
	cpgResIterInit   = 9
	cpgResIterNext   = 10
	cpgResIterFinal  = 11
	cpgResFinalize   = 12
	cpgResTotemConf  = 13
	cpgResZcAlloc    = 14
	cpgResPartialDlv = 17
	cpgResPartialSnd = 18

	cpgNameLen        = 128 // CPG_MAX_NAME_LENGTH
	cpgNameSize       = 136 // mar_cpg_name_t
	cpgAddrSize       = 24  // mar_cpg_address_t
	cpgMembershipSize = 9248
	cpgMembershipMax  = 384 // PROCESSOR_COUNT_MAX
	cpgDeliverHdr     = 184
	cpgPartialDlvHdr  = 200

	cpgIterNameOnly = 1 // CPG_ITERATION_NAME_ONLY
	cpgIterOneGroup = 2 // CPG_ITERATION_ONE_GROUP
	cpgIterAll      = 3 // CPG_ITERATION_ALL

	// mcastWait bounds how long a client's multicast waits for room in the ring while the
	// client is told to back off.
	mcastWait = 30 * time.Second
	// mcastBacklog is how many bytes of requests a client may queue in its request ring while
	// one of its multicasts waits for room, before it is flow-controlled: at 1 KiB about 60
	// messages, a little under a millisecond of a flood; mcastPeek is how often the wait
	// looks at the ring.
	mcastBacklog = 64 << 10
	mcastPeek    = 200 * time.Microsecond
)

// cpd states, as exec/cpg.c names them.
const (
	cpdUnjoined = iota
	cpdJoinStarted
	cpdJoinCompleted
	cpdLeaveStarted
)

// Cpg is the cpg service (exec/cpg.c, model v1): join, leave, mcast_joined (with partial
// messages both ways), membership_get, local_get, one-group iteration, and the confchg,
// deliver and totem confchg callbacks, over the node's process groups.
type Cpg struct {
	node GroupNode

	mu    sync.Mutex
	conns map[*ipc.Conn]*cpgConn
	nextH uint64
}

type cpgConn struct {
	c     *ipc.Conn
	mu    sync.Mutex
	state int
	group string
	pid   uint32
	pg    *totem.ProcessGroup
	iters map[uint64]cpgIter

	partial []byte // a PARTIAL_MCAST being reassembled
}

// NewCpg returns the cpg service.
func NewCpg(node GroupNode) *Cpg {
	return &Cpg{node: node, conns: map[*ipc.Conn]*cpgConn{}}
}

// Connect sends the current ring as a totem confchg, as corosync's cpg_lib_init_fn does
// (libcpg passes it on only to model v1 clients that asked for the initial one).
func (p *Cpg) Connect(c *ipc.Conn) error {
	p.mu.Lock()
	p.conns[c] = &cpgConn{c: c, iters: map[uint64]cpgIter{}}
	p.mu.Unlock()
	st := p.node.Status()
	c.SendEventRaw(totemConfchg(st.RingID, st.Members))
	return nil
}

// Disconnect leaves the group for a client that went away without leaving: its PROCLEAVE
// carries reason PROCDOWN, as corosync's cpg_lib_exit_fn sends it.
func (p *Cpg) Disconnect(c *ipc.Conn) {
	p.mu.Lock()
	cc := p.conns[c]
	delete(p.conns, c)
	p.mu.Unlock()
	if cc == nil {
		return
	}
	cc.mu.Lock()
	pg, state := cc.pg, cc.state
	cc.state = cpdUnjoined
	cc.mu.Unlock()
	if pg != nil && (state == cpdJoinStarted || state == cpdJoinCompleted) {
		_ = pg.LeaveDown()
	}
}

// Membership sends every client the new ring (MESSAGE_RES_CPG_TOTEM_CONFCHG_CALLBACK); the
// daemon calls it for each regular configuration.
func (p *Cpg) Membership(ring totem.RingID, members []totem.NodeID) {
	msg := totemConfchg(ring, members)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.SendEventRaw(msg)
	}
}

func totemConfchg(ring totem.RingID, members []totem.NodeID) []byte {
	le := binary.LittleEndian
	b := make([]byte, 44+4*len(members))
	le.PutUint32(b[24:], uint32(ring.Rep))
	le.PutUint64(b[32:], ring.Seq)
	le.PutUint32(b[40:], uint32(len(members)))
	for i, m := range members {
		le.PutUint32(b[44+4*i:], uint32(m))
	}
	ipc.PutResponseHeader(b, cpgResTotemConf, len(b), csOK)
	return b
}

// cpgName reads a mar_cpg_name_t at off; ok is false when it does not fit or is too long.
func cpgName(msg []byte, off int) (string, int32) {
	if len(msg) < off+cpgNameSize {
		return "", csErrInvalid
	}
	n := binary.LittleEndian.Uint32(msg[off:])
	if n > cpgNameLen {
		return "", csErrNameTooLong
	}
	return string(msg[off+8 : off+8+int(n)]), csOK
}

func putCpgName(b []byte, name string) {
	binary.LittleEndian.PutUint32(b, uint32(len(name)))
	copy(b[8:8+cpgNameLen], name)
}

func (p *Cpg) Request(c *ipc.Conn, id int32, msg []byte) {
	p.mu.Lock()
	cc := p.conns[c]
	p.mu.Unlock()
	if cc == nil {
		return
	}
	le := binary.LittleEndian
	switch id {
	case cpgJoin:
		c.RespondRaw(header(cpgJoin, p.join(cc, msg), 24))
	case cpgLeave:
		c.RespondRaw(header(cpgLeave, cc.leave(), 24))
	case cpgMcast:
		// Asynchronous in corosync: no response, errors only logged.
		if len(msg) < 40 {
			c.CountOverload()
			return
		}
		n := le.Uint32(msg[32:])
		if uint64(n) > uint64(len(msg)-40) {
			return
		}
		cc.mcast(msg[40 : 40+n])
	case cpgPartialMcast:
		c.RespondRaw(header(cpgResPartialSnd, cc.partialMcast(msg), 24))
	case cpgMembership:
		group, err := cpgName(msg, 16)
		b := header(cpgMembership, err, cpgMembershipSize)
		if err == csOK {
			ms := p.node.GroupMembers(group)
			n := min(len(ms), cpgMembershipMax)
			le.PutUint32(b[24:], uint32(n))
			for i := 0; i < n; i++ {
				le.PutUint32(b[32+cpgAddrSize*i:], uint32(ms[i].NodeID))
				le.PutUint32(b[40+cpgAddrSize*i:], ms[i].PID)
			}
		}
		c.RespondRaw(b)
	case cpgLocalGet:
		b := header(cpgResLocalGet, csOK, 32)
		le.PutUint32(b[24:], uint32(p.node.Status().NodeID))
		c.RespondRaw(b)
	case cpgIterInit:
		b := header(cpgResIterInit, csOK, 32)
		group, err := cpgName(msg, 16)
		if err == csOK && len(msg) < 156 {
			err = csErrInvalid
		}
		typ := uint32(0)
		if err == csOK {
			typ = le.Uint32(msg[152:])
			if typ < cpgIterNameOnly || typ > cpgIterAll {
				err = csErrInvalid
			}
		}
		if err == csOK && len(cc.iters) >= maxIterators {
			err = csErrNoResources
		}
		if err == csOK {
			p.mu.Lock()
			p.nextH++
			h := p.nextH
			p.mu.Unlock()
			cc.mu.Lock()
			cc.iters[h] = cpgIter{items: p.iterItems(typ, group)}
			cc.mu.Unlock()
			le.PutUint64(b[24:], h)
		}
		ipc.PutResponseHeader(b, cpgResIterInit, 32, err)
		c.RespondRaw(b)
	case cpgIterNext:
		b := header(cpgResIterNext, csOK, 168)
		if len(msg) < 24 {
			ipc.PutResponseHeader(b, cpgResIterNext, 168, csErrInvalid)
			c.RespondRaw(b)
			return
		}
		h := le.Uint64(msg[16:])
		cc.mu.Lock()
		it, ok := cc.iters[h]
		switch {
		case !ok:
			ipc.PutResponseHeader(b, cpgResIterNext, 168, csErrBadHandle)
		case len(it.items) == 0:
			ipc.PutResponseHeader(b, cpgResIterNext, 168, csErrNoSections)
		default:
			putCpgName(b[24:], it.items[0].Group)
			le.PutUint32(b[160:], uint32(it.items[0].NodeID))
			le.PutUint32(b[164:], it.items[0].PID)
			it.items = it.items[1:]
			cc.iters[h] = it
		}
		cc.mu.Unlock()
		c.RespondRaw(b)
	case cpgIterFinalize:
		err := int32(csOK)
		cc.mu.Lock()
		if len(msg) < 24 {
			err = csErrInvalid
		} else if h := le.Uint64(msg[16:]); !hasKey(cc.iters, h) {
			err = csErrBadHandle
		} else {
			delete(cc.iters, h)
		}
		cc.mu.Unlock()
		c.RespondRaw(header(cpgResIterFinal, err, 24))
	case cpgFinalize:
		c.RespondRaw(header(cpgResFinalize, csOK, 24))
	case cpgZcAlloc, cpgZcFree, cpgZcExecute:
		// Zero-copy buffers are shared-memory files of libcpg's own; not offered.
		c.RespondRaw(header(cpgResZcAlloc+id-cpgZcAlloc, csErrNotSupp, 24))
	default:
		c.RespondRaw(header(0, csErrInvalid, 24))
	}
}

// join is message_handler_req_lib_cpg_join.
func (p *Cpg) join(cc *cpgConn, msg []byte) int32 {
	group, err := cpgName(msg, 16)
	if err != csOK {
		return err
	}
	if len(msg) < 164 {
		return csErrInvalid
	}
	pid := binary.LittleEndian.Uint32(msg[152:])
	cc.mu.Lock()
	defer cc.mu.Unlock()
	switch cc.state {
	case cpdLeaveStarted:
		return csErrBusy
	case cpdJoinStarted, cpdJoinCompleted:
		return csErrExist
	}
	pg, jerr := p.node.JoinProcess(group, pid, cc)
	switch {
	case errors.Is(jerr, totem.ErrGroupJoined), errors.Is(jerr, totem.ErrGroupInUse):
		return csErrExist
	case errors.Is(jerr, services.ErrAlreadyJoined):
		// The process's previous membership has not left the ring's records yet.
		return csErrTryAgain
	case errors.Is(jerr, services.ErrBadGroupName):
		return csErrInvalid
	case jerr != nil:
		return csErrLibrary
	}
	cc.state, cc.group, cc.pid, cc.pg = cpdJoinStarted, group, pid, pg
	return csOK
}

// leave is message_handler_req_lib_cpg_leave.
func (cc *cpgConn) leave() int32 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	switch cc.state {
	case cpdUnjoined, cpdLeaveStarted:
		return csErrNotExist
	case cpdJoinStarted:
		return csErrBusy
	}
	if err := cc.pg.Leave(); err != nil {
		return csErrNotExist
	}
	cc.state = cpdLeaveStarted
	return csOK
}

// mcast sends one message of the process. When the ring has no room the client is
// flow-controlled (its next sends fail with CS_ERR_TRY_AGAIN in libqb) while this one waits.
func (cc *cpgConn) mcast(payload []byte) {
	cc.mu.Lock()
	pg, state := cc.pg, cc.state
	cc.mu.Unlock()
	if pg == nil || state == cpdUnjoined || state == cpdLeaveStarted {
		return // corosync drops it with a log line: CS_ERR_NOT_EXIST has no one to go to
	}
	// The request buffer is reused for the next request, but the stack copies the payload
	// into its packets (or its encoded message) before Send returns, and this call returns
	// only once the message is queued: no copy of ours is needed.
	data := payload
	if err := pg.TrySend(data, totem.Agreed); !errors.Is(err, totem.ErrBusy) {
		return
	}
	cc.c.CountOverload()
	ctx, cancel := context.WithTimeout(cc.c.DoneContext(), mcastWait)
	defer cancel()
	// Flow control only once the client's request ring holds mcastBacklog bytes: until then
	// the client keeps queueing there, and the moment the ring has room again the next
	// messages are at hand. Switched on at once, the client learnt of the room only when its
	// 1 ms poll after CS_ERR_TRY_AGAIN ended (cpgbench and Pacemaker wait that way), the
	// ring's queue drained meanwhile, and a 1 KiB flood of three libcpg senders carried half
	// of what the ring carries for gototem's own senders. corosync also lets its clients
	// queue: it stops reading only when totem's queue is critical.
	fc := false
	for {
		if backlog, ok := cc.c.RequestBacklog(); !fc && (!ok || backlog >= mcastBacklog) {
			cc.c.SetFlowControl(true)
			fc = true
		}
		wait := ctx
		var stop context.CancelFunc = func() {}
		if !fc {
			wait, stop = context.WithTimeout(ctx, mcastPeek)
		}
		err := pg.Send(wait, data, totem.Agreed)
		stop()
		if fc || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			break
		}
	}
	if fc {
		cc.c.SetFlowControl(false)
	}
}

// partialMcast is message_handler_req_lib_cpg_partial_mcast: the fragments of a message too
// big for one IPC request, reassembled here and sent as one (the ring cuts it again).
func (cc *cpgConn) partialMcast(msg []byte) int32 {
	le := binary.LittleEndian
	if len(msg) < 56 {
		return csErrInvalid
	}
	total, frag, typ := le.Uint32(msg[32:]), le.Uint32(msg[40:]), le.Uint32(msg[48:])
	if uint64(frag) > uint64(len(msg)-56) || total > services.MaxMessage {
		return csErrInvalid
	}
	cc.mu.Lock()
	state := cc.state
	cc.mu.Unlock()
	if state == cpdUnjoined || state == cpdLeaveStarted {
		return csErrNotExist
	}
	data := msg[56 : 56+frag]
	switch typ {
	case 1: // LIBCPG_PARTIAL_FIRST
		cc.partial = append(make([]byte, 0, total), data...)
	case 2, 3:
		if cc.partial == nil || len(cc.partial)+len(data) > int(total) {
			cc.partial = nil
			return csErrInvalid
		}
		cc.partial = append(cc.partial, data...)
	default:
		return csErrInvalid
	}
	if typ == 3 {
		whole := cc.partial
		cc.partial = nil
		if len(whole) != int(total) {
			return csErrInvalid
		}
		cc.mcast(whole)
	}
	return csOK
}

// ConfigChange implements totem.GroupHandler for the connection's process: the confchg
// callback (member, left and joined lists of mar_cpg_address_t).
func (cc *cpgConn) ConfigChange(g totem.GroupChange) {
	cc.mu.Lock()
	for _, j := range g.Joined {
		if j.PID == cc.pid && cc.state == cpdJoinStarted {
			cc.state = cpdJoinCompleted
		}
	}
	for _, l := range g.Left {
		if l.PID == cc.pid && cc.state == cpdLeaveStarted {
			cc.state, cc.pg = cpdUnjoined, nil
		}
	}
	cc.mu.Unlock()
	le := binary.LittleEndian
	n := len(g.Members) + len(g.Left) + len(g.Joined)
	b := make([]byte, 184+cpgAddrSize*n)
	putCpgName(b[24:], g.Group)
	le.PutUint32(b[160:], uint32(len(g.Members)))
	le.PutUint32(b[168:], uint32(len(g.Joined)))
	le.PutUint32(b[176:], uint32(len(g.Left)))
	off := 184
	put := func(nodeid totem.NodeID, pid uint32, reason totem.ChangeReason) {
		le.PutUint32(b[off:], uint32(nodeid))
		le.PutUint32(b[off+8:], pid)
		le.PutUint32(b[off+16:], uint32(reason))
		off += cpgAddrSize
	}
	for _, m := range g.Members {
		put(m.NodeID, m.PID, 0)
	}
	for _, m := range g.Left {
		put(m.NodeID, m.PID, m.Reason)
	}
	for _, m := range g.Joined {
		put(m.NodeID, m.PID, m.Reason)
	}
	ipc.PutResponseHeader(b, cpgResConfchg, len(b), csOK)
	cc.c.SendEventRaw(b)
}

// Deliver implements totem.GroupHandler: the deliver callback, or partial deliver callbacks
// for a message larger than the connection's buffer, as corosync cuts them.
func (cc *cpgConn) Deliver(m totem.Message) {
	le := binary.LittleEndian
	max := cc.c.MaxMsgSize()
	if cpgDeliverHdr+len(m.Payload) <= max {
		// The header is framed apart and the payload copied once, by the connection, from
		// the dispatcher's buffer into the client's event ring.
		var b [cpgDeliverHdr]byte
		putCpgName(b[24:], m.Group)
		le.PutUint32(b[160:], uint32(len(m.Payload)))
		le.PutUint32(b[168:], uint32(m.Sender.NodeID))
		le.PutUint32(b[176:], m.Sender.PID)
		ipc.PutResponseHeader(b[:], cpgResDeliver, cpgDeliverHdr+len(m.Payload), csOK)
		cc.c.SendEventHead(b[:], m.Payload)
		return
	}
	step := max - cpgPartialDlvHdr
	for off := 0; off < len(m.Payload); off += step {
		end := min(off+step, len(m.Payload))
		typ := uint32(2)
		switch {
		case off == 0:
			typ = 1
		case end == len(m.Payload):
			typ = 3
		}
		b := make([]byte, cpgPartialDlvHdr+end-off)
		putCpgName(b[24:], m.Group)
		le.PutUint32(b[160:], uint32(len(m.Payload)))
		le.PutUint32(b[168:], uint32(end-off))
		le.PutUint32(b[176:], uint32(m.Sender.NodeID))
		le.PutUint32(b[184:], m.Sender.PID)
		le.PutUint32(b[192:], typ)
		copy(b[cpgPartialDlvHdr:], m.Payload[off:end])
		ipc.PutResponseHeader(b, cpgResPartialDlv, len(b), csOK)
		if cc.c.SendEventRaw(b) != nil {
			return
		}
	}
}

// cpgIter is one cpg_iteration over a group's members.
type cpgIter struct {
	items []totem.GroupProcess
}

// iterItems is the copy of the process records an iteration walks (corosync copies them at
// initialisation): ONE_GROUP the records of group, ALL every record, NAME_ONLY the first
// record of each group (its nodeid and pid come with the name, as in corosync).
func (p *Cpg) iterItems(typ uint32, group string) []totem.GroupProcess {
	if typ == cpgIterOneGroup {
		var out []totem.GroupProcess
		for _, pr := range p.node.GroupMembers(group) {
			out = append(out, totem.GroupProcess{Group: group, Process: pr})
		}
		return out
	}
	all := p.node.ProcessRecords()
	if typ == cpgIterAll {
		return all
	}
	var out []totem.GroupProcess
	seen := map[string]bool{}
	for _, r := range all {
		if !seen[r.Group] {
			seen[r.Group] = true
			out = append(out, r)
		}
	}
	return out
}
