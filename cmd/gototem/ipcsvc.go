package main

// corosync's client IPC in the daemon: `gototem run` serves cmap (and the services that
// follow) on libqb's abstract sockets, so corosync's tools and libraries find it where they
// find corosync: cmap, quorum, votequorum, cfg and cpg. This file only wires package ipc and ipc/corosvc to the node.

import (
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/ipc"
	"github.com/gototem/gototem/ipc/corosvc"
	"github.com/gototem/gototem/totem"
)

// coroIPC is the daemon's IPC server and its services.
type coroIPC struct {
	srv        *ipc.Server
	cmap       *corosvc.Cmap
	quorum     *corosvc.Quorum
	votequorum *corosvc.Votequorum
	cpg        *corosvc.Cpg
	profile    *os.File // GOTOTEM_IPC_CPUPROFILE's file, while the profile runs
}

// startCoroIPC publishes the services. An abstract socket already taken (a corosync, or
// another gototem, in this network namespace) is an error: the caller decides whether the
// daemon runs without them.
func startCoroIPC(node *totem.Node, rt *config.Runtime, log *slog.Logger) (*coroIPC, error) {
	x := &coroIPC{}
	x.startProfile(log)
	x.cmap = corosvc.NewCmap(node, func() []config.KeyValue { return x.statsKeys(node) })
	x.quorum = corosvc.NewQuorum(node)
	x.votequorum = corosvc.NewVotequorum(node, node)
	x.cpg = corosvc.NewCpg(node)
	// An agreed cfg shutdown (corosync-cfgtool -H, Pacemaker) is SIGTERM: the daemon leaves
	// the ring cleanly as on any other stop.
	shutdown := func() { _ = syscall.Kill(os.Getpid(), syscall.SIGTERM) }
	// -R and -k go to the whole ring as cfg's exec messages (totem.Node.CfgReload,
	// CfgKillNode); the daemon's OnCfgReload and OnCfgKill act on them.
	cfg := corosvc.NewCfg(node, corosvc.CfgOptions{NetMTU: uint32(rt.Totem.NetMTU), Reload: node.CfgReload,
		KillNode: node.CfgKillNode, Shutdown: shutdown})
	uidgid := rt.UIDGID
	x.srv = ipc.NewServer(ipc.Options{
		Allow: func(uid, gid uint32) bool {
			return x.cmap.Allowed(uid, gid) || uidgidByName(uidgid, uid, gid)
		},
		// system.qb_ipc_type as corosync's cs_get_ipc_type reads it: native (the default)
		// and shm are libqb's shared memory, socket its socket mode.
		SocketMode: rt.System.QBIPCType == "socket",
		Logger:     log,
	})
	for _, s := range []struct {
		name string
		svc  ipc.Service
	}{{"cmap", x.cmap}, {"quorum", x.quorum}, {"votequorum", x.votequorum}, {"cfg", cfg}, {"cpg", x.cpg}} {
		if err := x.srv.Listen(s.name, s.svc); err != nil {
			x.srv.Close()
			x.stopProfile()
			return nil, err
		}
	}
	return x, nil
}

// membership is called for every ring configuration: cpg clients get the regular ones as
// their totem confchg, and the other services refresh.
func (x *coroIPC) membership(m totem.Membership) {
	if x == nil {
		return
	}
	if m.Kind == totem.Regular {
		x.cpg.Membership(m.RingID, m.Members)
	}
	x.changed()
}

// changed is called on membership and quorum changes: cmap's tracks see the new keys.
func (x *coroIPC) changed() {
	if x != nil {
		x.cmap.Refresh()
		x.quorum.Refresh()
		x.votequorum.Refresh()
	}
}

// expectedVotes is votequorum's expected-votes notification, for its trackers.
func (x *coroIPC) expectedVotes(v uint32) {
	if x != nil {
		x.votequorum.ExpectedVotes(v)
	}
}

func (x *coroIPC) close() {
	if x != nil {
		x.srv.Close()
		x.stopProfile()
	}
}

// startProfile runs a CPU profile of the whole daemon while it serves its clients when
// GOTOTEM_IPC_CPUPROFILE names a directory: gototem-ipc-<pid>.prof there, written when the
// daemon stops (the libcpg benches of internal/interop stop it with SIGTERM). It is how the
// IPC path's cost under a libcpg flood is seen; a failure is logged, never fatal.
func (x *coroIPC) startProfile(log *slog.Logger) {
	dir := os.Getenv("GOTOTEM_IPC_CPUPROFILE")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("gototem-ipc-%d.prof", os.Getpid())))
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		log.Warn("GOTOTEM_IPC_CPUPROFILE: no profile", "err", err)
		return
	}
	x.profile = f
}

func (x *coroIPC) stopProfile() {
	if x.profile != nil {
		pprof.StopCPUProfile()
		x.profile.Close()
		x.profile = nil
	}
}

// statsKeys is the stats map (corosync-cmapctl -m stats): the IPC server's counters under
// corosync's stats.ipcs.global.* names plus gototem's own per-failure counters, and the
// SRP counters under stats.srp.*.
func (x *coroIPC) statsKeys(node *totem.Node) []config.KeyValue {
	st := x.srv.Stats()
	u64 := func(k string, v uint64) config.KeyValue {
		return config.KeyValue{Key: k, Type: config.TypeU64, Value: strconv.FormatUint(v, 10)}
	}
	u32 := func(k string, v uint64) config.KeyValue {
		return config.KeyValue{Key: k, Type: config.TypeU32, Value: strconv.FormatUint(v, 10)}
	}
	keys := []config.KeyValue{
		u64("stats.ipcs.global.active", st.Active),
		u64("stats.ipcs.global.closed", st.Closed),
		u64("stats.ipcs.global.refused_access", st.RefusedAccess),
		u64("stats.ipcs.global.refused_limit", st.RefusedLimit),
		u64("stats.ipcs.global.refused_by_service", st.RefusedByService),
		u64("stats.ipcs.global.setup_failed", st.SetupFailed),
		u64("stats.ipcs.global.invalid_request", st.InvalidRequest),
		u64("stats.ipcs.global.oversized_request", st.Oversized),
		u64("stats.ipcs.global.event_overflow", st.EventOverflow),
		u64("stats.ipcs.global.write_failed", st.WriteFailed),
		u64("stats.ipcs.global.died_in_call", st.DiedInCall),
	}
	for _, c := range x.srv.Conns() {
		pid, _, _ := c.Cred()
		cs := c.Stats()
		p := fmt.Sprintf("stats.ipcs.service.%s.%d.%d.", c.Service(), pid, c.ID())
		fc := uint64(0)
		if cs.FlowControl {
			fc = 1
		}
		keys = append(keys,
			u64(p+"requests", cs.Requests), u64(p+"responses", cs.Responses),
			u64(p+"dispatched", cs.Events), u64(p+"send_retries", cs.SendRetries),
			u32(p+"flow_control", fc), u64(p+"flow_control_count", cs.FlowControlCount),
			u32(p+"queue_size", uint64(cs.QueueSize)), u64(p+"invalid_request", cs.InvalidRequest),
			u64(p+"overload", cs.Overload))
	}
	srp := node.Status().SRP
	keys = append(keys,
		u64("stats.srp.orf_token_tx", srp.TokensSent),
		u64("stats.srp.orf_token_rx", srp.TokensReceived),
		u64("stats.srp.memb_merge_detect_tx", srp.MergeDetectsSent),
		u64("stats.srp.memb_merge_detect_rx", srp.MergeDetectsReceived),
		u64("stats.srp.memb_join_tx", srp.JoinsSent),
		u64("stats.srp.memb_join_rx", srp.JoinsReceived),
		u64("stats.srp.mcast_tx", srp.McastSent),
		u64("stats.srp.mcast_retx", srp.McastRetransmitted),
		u64("stats.srp.mcast_rx", srp.McastReceived),
		u64("stats.srp.memb_commit_token_tx", srp.CommitTokensSent),
		u64("stats.srp.token_hold_cancel_tx", srp.HoldCancelsSent),
		u64("stats.srp.operational_entered", srp.RingsFormed),
		u64("stats.srp.consensus_timeouts", srp.ConsensusTimeouts),
		u64("stats.srp.rx_msg_dropped", srp.DropForeignRing+srp.DropWindow),
	)
	return keys
}

// uidgidByName grants the users and groups that corosync.conf and uidgid.d name rather than
// number ("uid: hacluster", "gid: haclient", as Debian's pacemaker package writes them).
// corosync resolves such names when it reads the file (coroparse's uid_determine and
// gid_determine) and keys uidgid.config.uid.<number>; gototem's key view keeps the names,
// so the daemon resolves them when a client connects. Numeric entries are cmap's to match.
func uidgidByName(u config.UIDGID, uid, gid uint32) bool {
	for _, name := range u.UIDs {
		if _, err := strconv.ParseUint(name, 10, 32); err == nil {
			continue
		}
		if pw, err := user.Lookup(name); err == nil && pw.Uid == strconv.FormatUint(uint64(uid), 10) {
			return true
		}
	}
	for _, name := range u.GIDs {
		if _, err := strconv.ParseUint(name, 10, 32); err == nil {
			continue
		}
		if gr, err := user.LookupGroup(name); err == nil && gr.Gid == strconv.FormatUint(uint64(gid), 10) {
			return true
		}
	}
	return false
}
