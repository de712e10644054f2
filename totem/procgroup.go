package totem

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/gototem/gototem/services"
)

// Process groups for other local processes: corosync's IPC clients (libcpg programs) are
// processes of their own, each a CPG member under its own pid, several of them possibly in
// one group. Join makes the daemon itself the member; JoinProcess makes the client's pid the
// member and hands the group's events to a handler per process, as corosync's cpg service
// does for each connection. A group is used through Join or through JoinProcess, not both.

// ErrGroupInUse is returned by JoinProcess for a group this node joined with Join.
var ErrGroupInUse = errors.New("totem: group joined by the node itself")

// ProcessGroup is one local process's membership in a process group.
type ProcessGroup struct {
	g   *Group // name, pid and the send path
	fan *procFanout
}

// procFanout is the dispatcher's handler of a group joined with JoinProcess: it passes each
// event to the processes it concerns, in the dispatcher's total order.
type procFanout struct {
	self  NodeID
	mu    sync.Mutex
	procs map[uint32]*fanProc
}

type fanProc struct {
	h      GroupHandler
	active bool // its own join confchg has been delivered
}

func (f *procFanout) ConfigChange(c GroupChange) {
	f.mu.Lock()
	targets := make([]*fanProc, 0, len(f.procs))
	for pid, p := range f.procs {
		joined := slices.ContainsFunc(c.Joined, func(m MemberChange) bool { return m.NodeID == f.self && m.PID == pid })
		left := slices.ContainsFunc(c.Left, func(m MemberChange) bool { return m.NodeID == f.self && m.PID == pid })
		if joined {
			p.active = true
		}
		if p.active {
			targets = append(targets, p)
		}
		if left {
			// The leaving process sees its own leave, then nothing more.
			delete(f.procs, pid)
		}
	}
	f.mu.Unlock()
	for _, p := range targets {
		p.h.ConfigChange(c)
	}
}

func (f *procFanout) Deliver(m Message) {
	f.mu.Lock()
	targets := make([]*fanProc, 0, len(f.procs))
	for _, p := range f.procs {
		if p.active {
			targets = append(targets, p)
		}
	}
	f.mu.Unlock()
	for i, p := range targets {
		if i > 0 {
			m.Payload = slices.Clone(m.Payload) // each handler keeps its own
		}
		p.h.Deliver(m)
	}
}

// JoinProcess joins group as the local process pid; h receives the group's events from
// that process's own join confchg up to its own leave confchg.
func (n *Node) JoinProcess(group string, pid uint32, h GroupHandler) (*ProcessGroup, error) {
	if h == nil {
		return nil, errors.New("totem: JoinProcess needs a handler")
	}
	var pg *ProcessGroup
	var err error
	if derr := n.do(func() {
		if _, ok := n.groups[group]; ok {
			err = ErrGroupInUse
			return
		}
		fan, _ := n.disp.handler(group).(*procFanout)
		if fan == nil {
			fan = &procFanout{self: NodeID(n.self), procs: map[uint32]*fanProc{}}
		}
		fan.mu.Lock()
		_, dup := fan.procs[pid]
		fan.mu.Unlock()
		if dup {
			err = ErrGroupJoined
			return
		}
		if err = n.st.Join(n.now(), group, pid); err != nil {
			return
		}
		fan.mu.Lock()
		fan.procs[pid] = &fanProc{h: h}
		fan.mu.Unlock()
		n.disp.setHandler(group, fan)
		pg = &ProcessGroup{g: &Group{n: n, name: group, pid: pid, handler: h}, fan: fan}
	}); derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	return pg, nil
}

// Name is the group's name.
func (p *ProcessGroup) Name() string { return p.g.name }

// PID is the member process's pid.
func (p *ProcessGroup) PID() uint32 { return p.g.pid }

// TrySend multicasts payload from the process, or returns ErrBusy when the ring cannot take
// it now.
func (p *ProcessGroup) TrySend(payload []byte, gu Guarantee) error { return p.g.TrySend(payload, gu) }

// Send multicasts payload from the process, waiting for room until ctx is done.
func (p *ProcessGroup) Send(ctx context.Context, payload []byte, gu Guarantee) error {
	return p.g.Send(ctx, payload, gu)
}

// Leave starts the process's leave; its handler still receives the leave confchg.
func (p *ProcessGroup) Leave() error { return p.leave(services.ReasonLeave) }

// LeaveDown is the leave of a process that went away without leaving (a killed libcpg client):
// every node reports it with reason PROCDOWN, as corosync does.
func (p *ProcessGroup) LeaveDown() error { return p.leave(services.ReasonProcDown) }

func (p *ProcessGroup) leave(reason services.Reason) error {
	n := p.g.n
	var err error
	if derr := n.do(func() { err = n.st.LeaveFor(n.now(), p.g.name, p.g.pid, reason) }); derr != nil {
		return derr
	}
	return err
}

// GroupProcess is one process record with its group.
type GroupProcess struct {
	Group string
	Process
}

// ProcessRecords returns every process record of every group as this node sees them now.
func (n *Node) ProcessRecords() []GroupProcess {
	var out []GroupProcess
	_ = n.do(func() {
		for _, r := range n.st.CPG().Records() {
			out = append(out, GroupProcess{Group: r.Group, Process: Process{NodeID: NodeID(r.NodeID), PID: r.PID}})
		}
	})
	return out
}

// Members returns the group's members as this node sees them now.
func (p *ProcessGroup) Members() []Process { return p.g.Members() }

// GroupMembers returns the members of any group as this node sees them now.
func (n *Node) GroupMembers(group string) []Process {
	var out []Process
	_ = n.do(func() { out = processes(n.st.CPG().Members(group)) })
	return out
}
