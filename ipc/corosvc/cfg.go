package corosvc

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"

	"github.com/gototem/gototem/ipc"
	"github.com/gototem/gototem/srp"
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
)

// CfgOptions are the daemon-side hooks of the cfg service.
type CfgOptions struct {
	// NetMTU is totem.netmtu, which corosync reports as the link MTU of udp/udpu links.
	NetMTU uint32
	// Reload is corosync-cfgtool -R; nil answers CS_ERR_NOT_SUPPORTED.
	Reload func() error
	// ReopenLogs is corosync-cfgtool -L; nil answers CS_OK (nothing to reopen).
	ReopenLogs func() error
}

// Cfg is the cfg service (exec/cfg.c): local node id, node addresses and link status,
// reload. Shutdown tracking and kill node are answered CS_ERR_NOT_SUPPORTED for now.
type Cfg struct {
	node StatusSource
	opts CfgOptions

	mu    sync.Mutex
	conns map[*ipc.Conn]bool
}

// NewCfg returns the cfg service.
func NewCfg(node StatusSource, opts CfgOptions) *Cfg {
	if opts.NetMTU == 0 {
		opts.NetMTU = 1500
	}
	return &Cfg{node: node, opts: opts, conns: map[*ipc.Conn]bool{}}
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
		nodeid := srp.NodeID(le.Uint32(msg[16:]))
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
		c.RespondRaw(header(cfgResTrackStart, csErrNotSupp, 24))
	case cfgTrackStop:
		c.RespondRaw(header(cfgResTrackStop, csErrNotSupp, 24))
	case cfgKillNode:
		c.RespondRaw(header(cfgResKillNode, csErrNotSupp, 24))
	case cfgTryShutdown:
		c.RespondRaw(header(cfgResTryShutdown, csErrNotSupp, 24))
	case cfgReplyToShutdown:
		c.RespondRaw(header(cfgResReplyToShutdown, csErrNotSupp, 24))
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
	nodeid := srp.NodeID(le.Uint32(msg[16:]))
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
			ls := ns + 16 + 520*i
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
