package corosvc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gototem/gototem/ipc"
	"github.com/gototem/gototem/totem"
)

// cfg request ids (ipc_cfg.h) and their responses' ids (which are numbered apart).
const (
	cfgRingStatusGet   = 0
	cfgRingReenable    = 1
	cfgKillNode        = 2
	cfgTryShutdown     = 3
	cfgReplyToShutdown = 4
	cfgGetNodeAddrs    = 5
	cfgLocalGet        = 6
	cfgReloadConfig    = 7
	cfgReopenLogFiles  = 8
	cfgNodeStatusGet   = 9
	cfgTrackStart      = 10
	cfgTrackStop       = 11

	cfgResRingStatusGet   = 0
	cfgResRingReenable    = 1
	cfgResTrackStart      = 2
	cfgResTrackStop       = 3
	cfgResKillNode        = 8
	cfgResTryShutdown     = 9
	cfgResGetNodeAddrs    = 11
	cfgResLocalGet        = 12
	cfgResReplyToShutdown = 13
	cfgResReloadConfig    = 14
	cfgResReopenLogFiles  = 15
	cfgResNodeStatusGet   = 16

	csErrFailedOperation = 21
	csErrTimeout         = 5
)

// CfgOptions are the daemon-side hooks of the cfg service.
type CfgOptions struct {
	// NetMTU is totem.netmtu, which corosync reports as the link MTU of udp/udpu links.
	NetMTU uint32
	// Reload is corosync-cfgtool -R, applied on every node of the ring; nil answers
	// CS_ERR_NOT_SUPPORTED.
	Reload func() error
	// KillNode is corosync-cfgtool -k: the node (a member, else CS_ERR_NOT_EXIST) exits;
	// nil answers CS_ERR_NOT_SUPPORTED.
	KillNode func(nodeid totem.NodeID, reason string) error
	// ReopenLogs is corosync-cfgtool -L; nil answers CS_OK (nothing to reopen).
	ReopenLogs func() error
	// Shutdown stops the daemon once a shutdown is agreed (corosync-cfgtool -H, or
	// Pacemaker's clean stop); nil refuses shutdown requests with CS_ERR_NOT_SUPPORTED.
	Shutdown func()
	// ShutdownTimeout is how long trackers have to answer (cfg.shutdown_timeout, 5 s).
	ShutdownTimeout time.Duration
}

// Cfg is the cfg service (exec/cfg.c): local node id, node addresses and link status,
// reload, and shutdown tracking (trackstart, try_shutdown, replyto_shutdown: Pacemaker's
// pacemakerd tracks and answers), kill node.
type Cfg struct {
	node StatusSource
	opts CfgOptions

	mu       sync.Mutex
	conns    map[*ipc.Conn]bool
	trackers map[*ipc.Conn]int // shutdown reply: replyUnknown, replyYes, replyNo
	// The shutdown being decided: who asked, with which flags, the replies so far.
	shutdownConn      *ipc.Conn
	shutdownFlags     uint32
	yes, no, expected int
	shutdownTimer     *time.Timer
}

const (
	replyUnknown = iota
	replyYes
	replyNo

	shutdownRegardless = 1 // CFG_SHUTDOWN_FLAG_REGARDLESS
	shutdownImmediate  = 2 // CFG_SHUTDOWN_FLAG_IMMEDIATE
	cfgResTestShutdown = 10
)

// NewCfg returns the cfg service.
func NewCfg(node StatusSource, opts CfgOptions) *Cfg {
	if opts.NetMTU == 0 {
		opts.NetMTU = 1500
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	return &Cfg{node: node, opts: opts, conns: map[*ipc.Conn]bool{}, trackers: map[*ipc.Conn]int{}}
}

func (g *Cfg) Connect(c *ipc.Conn) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns[c] = false
	return nil
}

func (g *Cfg) Disconnect(c *ipc.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.conns, c)
	g.untrackLocked(c)
	if g.shutdownConn == c {
		g.shutdownConn = nil
		if g.shutdownTimer != nil {
			g.shutdownTimer.Stop()
		}
	}
}

// untrackLocked is remove_ci_from_shutdown: a tracker that goes away during a shutdown
// no longer holds it up.
func (g *Cfg) untrackLocked(c *ipc.Conn) {
	r, ok := g.trackers[c]
	if !ok {
		return
	}
	delete(g.trackers, c)
	if g.shutdownConn != nil && r == replyUnknown {
		g.expected--
		g.checkShutdownLocked()
	}
}

func testShutdown(flags uint32, status int32) []byte {
	b := header(cfgResTestShutdown, status, 32)
	binary.LittleEndian.PutUint32(b[24:], flags)
	return b
}

// checkShutdownLocked is check_shutdown_status: with every reply in, the requester learns
// the verdict and, if it is yes, the daemon stops.
func (g *Cfg) checkShutdownLocked() {
	if g.shutdownConn == nil || g.yes+g.no < g.expected {
		return
	}
	if g.shutdownTimer != nil {
		g.shutdownTimer.Stop()
	}
	c := g.shutdownConn
	g.shutdownConn = nil
	if g.yes >= g.expected || g.shutdownFlags == shutdownRegardless {
		c.RespondRaw(header(cfgResTryShutdown, csOK, 24))
		go g.opts.Shutdown()
		return
	}
	c.RespondRaw(header(cfgResTryShutdown, csErrBusy, 24))
}

// tryShutdown is message_handler_req_lib_cfg_tryshutdown; the answer waits for the
// trackers' replies (or their timeout) unless nobody tracks.
func (g *Cfg) tryShutdown(c *ipc.Conn, msg []byte) {
	if g.opts.Shutdown == nil {
		c.RespondRaw(header(cfgResTryShutdown, csErrNotSupp, 24))
		return
	}
	if len(msg) < 20 {
		c.RespondRaw(header(cfgResTryShutdown, csErrInvalid, 24))
		return
	}
	flags := binary.LittleEndian.Uint32(msg[16:])
	g.mu.Lock()
	defer g.mu.Unlock()
	if flags == shutdownImmediate {
		c.RespondRaw(header(cfgResTryShutdown, csOK, 24))
		go g.opts.Shutdown()
		return
	}
	if g.shutdownConn != nil {
		c.RespondRaw(header(cfgResTryShutdown, csErrExist, 24))
		return
	}
	g.shutdownConn, g.shutdownFlags, g.yes, g.no, g.expected = c, flags, 0, 0, 0
	for t := range g.trackers {
		if t != c {
			g.trackers[t] = replyUnknown
			g.expected++
		}
	}
	if g.expected == 0 {
		g.checkShutdownLocked()
		return
	}
	g.shutdownTimer = time.AfterFunc(g.opts.ShutdownTimeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.shutdownConn != c {
			return
		}
		g.no = g.expected - g.yes // undecided counts as no
		g.checkShutdownLocked()
		for t := range g.trackers {
			t.SendEventRaw(testShutdown(g.shutdownFlags, csErrTimeout))
		}
	})
	for t := range g.trackers {
		if t != c {
			t.SendEventRaw(testShutdown(flags, csOK))
		}
	}
}

func (g *Cfg) Request(c *ipc.Conn, id int32, msg []byte) {
	le := binary.LittleEndian
	st := g.node.Status()
	switch id {
	case cfgLocalGet:
		b := header(cfgResLocalGet, csOK, 32)
		le.PutUint32(b[24:], uint32(st.NodeID))
		c.RespondRaw(b)
	case cfgGetNodeAddrs:
		if len(msg) < 20 {
			c.RespondRaw(header(cfgResGetNodeAddrs, csErrInvalid, 32))
			return
		}
		nodeid := totem.NodeID(le.Uint32(msg[16:]))
		if nodeid == 0 {
			nodeid = st.NodeID
		}
		var addrs []netip.Addr
		for _, n := range st.Nodes {
			if n.NodeID != nodeid {
				continue
			}
			for _, a := range n.Addrs {
				if ip, err := netip.ParseAddr(a); err == nil {
					addrs = append(addrs, ip)
				}
			}
		}
		if len(addrs) == 0 {
			c.RespondRaw(header(cfgResGetNodeAddrs, csErrNotExist, 32))
			return
		}
		// Each address is TOTEMIP_ADDRLEN (sizeof(struct in6_addr)) bytes; the family is
		// the first address's.
		b := header(cfgResGetNodeAddrs, csOK, 32+16*len(addrs))
		family := uint32(2) // AF_INET
		if addrs[0].Is6() {
			family = 10 // AF_INET6
		}
		le.PutUint32(b[24:], family)
		le.PutUint32(b[28:], uint32(len(addrs)))
		for i, a := range addrs {
			raw := a.AsSlice()
			copy(b[32+16*i:], raw)
		}
		c.RespondRaw(b)
	case cfgNodeStatusGet:
		g.nodeStatus(c, msg)
	case cfgRingStatusGet:
		b := header(cfgResRingStatusGet, csOK, 10272)
		n := min(len(st.Links), 16)
		le.PutUint32(b[24:], uint32(n))
		for i := 0; i < n; i++ {
			copy(b[32+128*i:32+128*i+127], st.Links[i].LocalAddr)
			copy(b[2080+512*i:2080+512*i+511], st.Links[i].Text)
		}
		c.RespondRaw(b)
	case cfgReloadConfig:
		err := int32(csOK)
		if g.opts.Reload == nil {
			err = csErrNotSupp
		} else if g.opts.Reload() != nil {
			err = csErrFailedOperation
		}
		c.RespondRaw(header(cfgResReloadConfig, err, 24))
	case cfgKillNode:
		c.RespondRaw(header(cfgResKillNode, g.killNode(msg), 24))
	case cfgReopenLogFiles:
		err := int32(csOK)
		if g.opts.ReopenLogs != nil && g.opts.ReopenLogs() != nil {
			err = csErrFailedOperation
		}
		c.RespondRaw(header(cfgResReopenLogFiles, err, 24))
	case cfgRingReenable:
		// corosync 3 has nothing to re-enable: links recover by themselves.
		c.RespondRaw(header(cfgResRingReenable, csOK, 24))
	case cfgTrackStart:
		g.mu.Lock()
		if _, ok := g.trackers[c]; !ok {
			g.trackers[c] = replyUnknown
			if g.shutdownConn != nil {
				// A shutdown is being decided: ask the newcomer too.
				g.expected++
				c.SendEventRaw(testShutdown(g.shutdownFlags, csOK))
			}
		}
		g.mu.Unlock()
		c.RespondRaw(header(cfgResTrackStart, csOK, 24))
	case cfgTrackStop:
		g.mu.Lock()
		g.untrackLocked(c)
		g.mu.Unlock()
		c.RespondRaw(header(cfgResTrackStop, csOK, 24))
	case cfgTryShutdown:
		g.tryShutdown(c, msg)
	case cfgReplyToShutdown:
		err := int32(csOK)
		g.mu.Lock()
		switch {
		case g.shutdownConn == nil:
			err = csErrAccess
		case len(msg) < 20:
			err = csErrInvalid
		default:
			if binary.LittleEndian.Uint32(msg[16:]) != 0 {
				g.yes++
				g.trackers[c] = replyYes
			} else {
				g.no++
				g.trackers[c] = replyNo
			}
		}
		c.RespondRaw(header(cfgResReplyToShutdown, err, 24))
		g.checkShutdownLocked()
		g.mu.Unlock()
	default:
		c.RespondRaw(header(0, csErrInvalid, 24))
	}
}

// nodeStatus is corosync_cfg_node_status_get for a udp/udpu ring, as totemsrp and
// totemudpu fill it: reachable when the node is in the membership, link 0 enabled, connected
// when reachable, the node's address as src_ipaddr and totem.netmtu as the MTU.
func (g *Cfg) nodeStatus(c *ipc.Conn, msg []byte) {
	le := binary.LittleEndian
	if len(msg) < 28 {
		c.RespondRaw(header(cfgResNodeStatusGet, csErrInvalid, 32))
		return
	}
	nodeid := totem.NodeID(le.Uint32(msg[16:]))
	version := le.Uint32(msg[24:])
	if version != 1 {
		c.RespondRaw(header(cfgResNodeStatusGet, csErrNotSupp, 32))
		return
	}
	st := g.node.Status()
	b := header(cfgResNodeStatusGet, csOK, 4200)
	const ns = 24 // node_status in the response
	le.PutUint32(b[ns:], 1)
	le.PutUint32(b[ns+4:], uint32(nodeid))
	reachable := slices.Contains(st.Members, nodeid)
	if reachable {
		b[ns+8] = 1
	}
	for _, n := range st.Nodes {
		if n.NodeID != nodeid {
			continue
		}
		for i, a := range n.Addrs {
			if i >= 8 || a == "" {
				continue
			}
			ls := ns + 16 + 520*i // corosync_knet_link_status_v1: enabled, connected, dynconnected, mtu, src, dst
			if i < len(st.Links) && st.Links[i].Peers != nil {
				// knet, as totemknet fills it from knet_link_get_status: the link's own
				// state towards that node, its MTU, our address on it as the source (what
				// corosync-cfgtool -s prints as addr) and the node's as the destination.
				l := st.Links[i]
				b[ls] = 1
				if l.Peers[nodeid] || nodeid == st.NodeID {
					b[ls+1] = 1
				}
				le.PutUint32(b[ls+4:], uint32(l.MTU))
				copy(b[ls+8:ls+8+255], l.LocalAddr)
				copy(b[ls+264:ls+264+255], a)
				continue
			}
			b[ls] = 1 // enabled: the socket is bound
			if reachable {
				b[ls+1] = 1
			}
			le.PutUint32(b[ls+4:], g.opts.NetMTU)
			copy(b[ls+8:ls+8+255], a)
		}
	}
	c.RespondRaw(b)
}

// killNode is message_handler_req_lib_cfg_killnode: req_lib_cfg_killnode carries the nodeid
// at 16 and a cs_name_t reason (u16 length at 20, 256 bytes at 22).
func (g *Cfg) killNode(msg []byte) int32 {
	if g.opts.KillNode == nil {
		return csErrNotSupp
	}
	if len(msg) < 22 {
		return csErrInvalid
	}
	le := binary.LittleEndian
	n := min(int(le.Uint16(msg[20:])), 256, len(msg)-22)
	reason := msg[22 : 22+n]
	if i := bytes.IndexByte(reason, 0); i >= 0 {
		reason = reason[:i]
	}
	err := g.opts.KillNode(totem.NodeID(le.Uint32(msg[16:])), string(reason))
	switch {
	case err == nil:
		return csOK
	case errors.Is(err, totem.ErrNotMember):
		return csErrNotExist
	case errors.Is(err, totem.ErrStopped):
		return csErrLibrary
	}
	return csErrTryAgain
}
