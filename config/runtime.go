package config

import (
	"fmt"
	"math/bits"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Local describes the machine a configuration is resolved for; the caller gathers it
// (this package never looks at the host).
type Local struct {
	// Addrs are the local interface addresses, with their prefix length when known
	// (10.0.0.5/24). A bare address (full-length prefix) is matched exactly against the
	// nodelist; against a 2.x bindnetaddr network its mask is taken from bindnetaddr's
	// trailing zero bits (192.168.42.0 → /24), since corosync 2 used the interface mask.
	Addrs []netip.Prefix
	// Hostname is `uname -n`, compared with the nodes' name entries first, as corosync
	// does. Empty: match by address only.
	Hostname string
	// LookupHost resolves a host name written in the nodelist (ringX_addr or name). Nil:
	// only literal addresses are understood.
	LookupHost func(host string) ([]netip.Addr, error)
	// Fallback lets a tool on a machine that is not a cluster node still get a Runtime:
	// when no node matches, the first nodelist entry (or a host-like bindnetaddr) is used
	// and a warning says so, instead of corosync's "No valid name found for local host".
	Fallback bool
}

// LocalAddrs is a convenience for callers that only have addresses (for example from a
// --local-addr flag): each becomes a full-length prefix.
func LocalAddrs(addrs ...netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, len(addrs))
	for i, a := range addrs {
		out[i] = netip.PrefixFrom(a, a.BitLen())
	}
	return out
}

// Runtime is a Config resolved for one node: its node id, the nodelist with addresses and
// node ids, and per-ring socket parameters. The embedded Config holds the typed sections
// and the effective totem timers (rt.Totem, rt.Quorum, rt.Logging, rt.System …).
type Runtime struct {
	*Config
	// Nodes is the nodelist with resolved addresses and node ids (empty for a 2.x
	// multicast file without a nodelist).
	Nodes []ResolvedNode
	// LocalPos is the local node's position in Nodes, -1 without a nodelist (or when it
	// could not be determined under Local.Fallback).
	LocalPos int
	// NodeID is this node's id; 0 only when Local.Fallback could not determine it.
	NodeID uint32
	// LocalNote says how the local node was found, for tools to print.
	LocalNote string
	// Rings are the rings (links) this node runs, by link number: 1 ring, or 2 for a
	// redundant ring (Totem.RRPMode active or passive).
	Rings []Ring

	local Local // how the local node was found, for Reload
}

// ResolvedNode is a nodelist entry with addresses and node id settled.
type ResolvedNode struct {
	Node
	IPs [MaxLinks]netip.Addr // invalid where the node has no address on that link
	// NodeIDDerived is set when NodeID was generated from ring0_addr (udp/udpu).
	NodeIDDerived bool
}

// Ring is one ring's socket parameters for this node.
type Ring struct {
	Link int
	// BindNetAddr is the local address on this ring (corosync writes it back as
	// totem.interface.N.bindnetaddr).
	BindNetAddr netip.Addr
	// McastAddr is the multicast (udp) or broadcast group; invalid for udpu and knet.
	McastAddr netip.Addr
	Broadcast bool
	// McastPort is the receive port; udp sends from SendPort = McastPort − 1, the other
	// transports send from McastPort.
	McastPort uint16
	SendPort  uint16
	TTL       uint8
	// Knet link timers (derived from the token when not set), shown for completeness.
	KnetPingInterval time.Duration
	KnetPingTimeout  time.Duration
}

// Resolve settles everything that depends on which node this is, following corosync's
// totemconfig: the local node, generated node ids, duplicate ids, per-link address
// families, bind addresses, multicast addresses and ports.
func (c *Config) Resolve(local Local) (*Runtime, Warnings, error) {
	d := &diag{file: c.File}
	rt := &Runtime{Config: c, LocalPos: -1, local: local}
	rt.resolveNodes(d, local)
	if len(rt.Nodes) > 0 {
		rt.findLocalNode(d, local)
	} else {
		rt.localFromBindnet()
	}
	rt.buildRings(d, local)
	sortWarnings(d.warns)
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	if len(d.errs) > 0 {
		return nil, d.warns, d.errs
	}
	return rt, d.warns, nil
}

func (rt *Runtime) nodeLine(pos int, key string) int {
	return rt.lineOr("nodelist.node."+strconv.Itoa(pos)+"."+key, "nodelist.node."+strconv.Itoa(pos))
}

// lookup turns a ringX_addr into an address honouring ip_version's preference.
func (rt *Runtime) lookup(host string, local Local) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.WithZone(""), nil
	}
	if local.LookupHost == nil {
		return netip.Addr{}, fmt.Errorf("failed to parse node address '%s' (not an IP address, and host names are not resolved here)", host)
	}
	addrs, err := local.LookupHost(host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("failed to parse node address '%s' (lookup: %v)", host, err)
	}
	order := map[string][]bool{"ipv4": {true}, "ipv6": {false}, "ipv4-6": {true, false}, "ipv6-4": {false, true}}[rt.Totem.IPVersion]
	for _, want4 := range order {
		for _, a := range addrs {
			if a.Unmap().Is4() == want4 {
				return a.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("failed to parse node address '%s' (no %s address)", host, rt.Totem.IPVersion)
}

func (rt *Runtime) resolveNodes(d *diag, local Local) {
	t := rt.Totem
	seen := map[uint32]int{}
	linkFamily := map[int]netip.Addr{}
	type linkAddr struct {
		link int
		ip   netip.Addr
	}
	addrOwner := map[linkAddr]int{}
	var counts []int
	for _, n := range rt.Config.Nodes {
		rn := ResolvedNode{Node: n}
		for l, a := range n.Addrs {
			if a == "" {
				continue
			}
			ip, err := rt.lookup(a, local)
			if err != nil {
				d.errorf(rt.nodeLine(n.Pos, "ring"+strconv.Itoa(l)+"_addr"), "%v", err)
				continue
			}
			rn.IPs[l] = ip
			if prev, dup := addrOwner[linkAddr{l, ip}]; dup {
				// corosync does not check this, but two nodes cannot share a ring address.
				d.warnf(rt.nodeLine(n.Pos, "ring"+strconv.Itoa(l)+"_addr"), "address %s on link %d is listed for nodes %d and %d", ip, l, prev, n.Pos)
			} else {
				addrOwner[linkAddr{l, ip}] = n.Pos
			}
			if first, ok := linkFamily[l]; ok && first.Is4() != ip.Is4() {
				d.errorf(rt.nodeLine(n.Pos, "ring"+strconv.Itoa(l)+"_addr"), "Nodes for link %d have different IP families (compared %s with %s)", l, first, ip)
			} else if !ok {
				linkFamily[l] = ip
			}
		}
		counts = append(counts, len(n.Links()))
		switch {
		case n.NodeID != 0:
		case t.Transport == TransportKnet:
			d.errorf(n.Line, "Knet requires an explicit nodeid to be specified for address '%s'.", n.Addrs[0])
		case rn.IPs[0].Is4():
			b := rn.IPs[0].As4()
			id := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			if t.ClearNodeHighBit {
				id &= 0x7fffffff
			}
			rn.NodeID, rn.NodeIDDerived = id, true
			if id == 0 {
				d.errorf(n.Line, "nodeid generated from address '%s' is 0, which is reserved; set nodeid", n.Addrs[0])
			}
		case rn.IPs[0].Is6():
			d.errorf(n.Line, "An IPV6 network requires that a node ID be specified for address '%s'.", n.Addrs[0])
		}
		if t.Transport == TransportKnet && rn.NodeID >= 65536 {
			d.errorf(rt.nodeLine(n.Pos, "nodeid"), "Knet requires nodeid to be less than 65536 for address '%s'.", n.Addrs[0])
		}
		if rn.NodeID != 0 {
			if prev, dup := seen[rn.NodeID]; dup {
				how := ""
				if rn.NodeIDDerived {
					how = fmt.Sprintf(" (autogenerated from %s)", rn.IPs[0])
				}
				d.errorf(rt.nodeLine(n.Pos, "nodeid"), "Nodeid %d%s appears twice in corosync.conf (nodes %d and %d)", rn.NodeID, how, prev, n.Pos)
			} else {
				seen[rn.NodeID] = n.Pos
			}
		}
		rt.Nodes = append(rt.Nodes, rn)
	}
	if len(rt.Nodes) == 0 {
		return
	}
	for i, c := range counts {
		if c != counts[0] {
			d.errorf(rt.Nodes[i].Line, "Not all nodes have the same number of links (node %d has %d, node 0 has %d)", i, c, counts[0])
			break
		}
	}
	if counts[0] > 1 {
		for _, n := range rt.Nodes {
			if n.Name == "" && !n.FromMembers {
				if t.Transport == TransportKnet {
					d.errorf(n.Line, "for a multi-link configuration, all nodes must have a 'name' attribute")
				} else {
					d.warnf(n.Line, "node %d has no name; corosync requires one on every node of a multi-link configuration", n.Pos)
				}
				break
			}
		}
	}
}

// hostMatches follows corosync's name lookup order: exact uname, uname with domain parts
// stripped one at a time, then the short name against names with their domain stripped.
func hostMatches(hostname, name string) bool {
	if hostname == "" || name == "" {
		return false
	}
	for h := hostname; ; {
		if h == name {
			return true
		}
		i := strings.LastIndexByte(h, '.')
		if i < 0 {
			break
		}
		h = h[:i]
	}
	short, _, _ := strings.Cut(hostname, ".")
	nshort, _, _ := strings.Cut(name, ".")
	return short == nshort
}

func (rt *Runtime) findLocalNode(d *diag, local Local) {
	pos, note := -1, ""
	for i, n := range rt.Nodes {
		if hostMatches(local.Hostname, n.Name) {
			pos, note = i, fmt.Sprintf("node name %q matches host name %q", n.Name, local.Hostname)
			break
		}
	}
	// Then by address: ring0 first (corosync compares ring0_addr), then the other rings.
	for l := 0; pos < 0 && l < MaxLinks; l++ {
		for i, n := range rt.Nodes {
			if n.IPs[l].IsValid() && hasAddr(local.Addrs, n.IPs[l]) {
				pos, note = i, fmt.Sprintf("ring%d_addr %s is a local address", l, n.IPs[l])
				break
			}
		}
	}
	if pos < 0 {
		line := rt.sectionLine("nodelist")
		if !local.Fallback {
			d.errorf(line, "No valid name found for local host (no nodelist entry's name matches %q and no ring address is local)", local.Hostname)
			return
		}
		pos = 0
		note = "no nodelist entry is local; assuming the first node"
		d.warnf(line, "no nodelist entry matches this machine; values are shown for node 0 (%s), as if it were the local node", rt.Nodes[0].Addrs[0])
	}
	rt.LocalPos, rt.NodeID, rt.LocalNote = pos, rt.Nodes[pos].NodeID, note
}

func hasAddr(locals []netip.Prefix, a netip.Addr) bool {
	for _, p := range locals {
		if p.Addr().Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}

// bindnetMatch finds the local address corosync 2 would bind for a bindnetaddr: the
// interface address whose network, under that interface's mask, equals bindnetaddr's.
func bindnetMatch(locals []netip.Prefix, bindnet netip.Addr) (netip.Addr, bool) {
	for _, p := range locals {
		a := p.Addr().Unmap()
		if a == bindnet {
			return a, true
		}
	}
	for _, p := range locals {
		a := p.Addr().Unmap()
		if a.Is4() != bindnet.Is4() {
			continue
		}
		b := p.Bits()
		if b == a.BitLen() {
			b = a.BitLen() - trailingZeroBits(bindnet)
		}
		np := netip.PrefixFrom(a, b).Masked()
		if np.Contains(bindnet) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func trailingZeroBits(a netip.Addr) int {
	s := a.AsSlice()
	n := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == 0 {
			n += 8
			continue
		}
		n += bits.TrailingZeros8(s[i])
		break
	}
	return n
}

// localFromBindnet handles a 1.x/2.x file without a nodelist: the local address of each
// ring is the local interface address inside bindnetaddr's network, and the node id is
// totem.nodeid or the ring-0 address read big-endian (as corosync 2.x/3.x do; 1.x read it
// in host order).
func (rt *Runtime) localFromBindnet() {
	rt.LocalNote = "no nodelist: local address from bindnetaddr"
	if rt.Totem.NodeID != 0 {
		rt.NodeID = rt.Totem.NodeID
		rt.LocalNote = "no nodelist: nodeid from totem.nodeid"
	}
}

func (rt *Runtime) buildRings(d *diag, local Local) {
	t := rt.Totem
	links := map[int]bool{}
	ifaces := map[int]Interface{}
	for _, in := range rt.Interfaces {
		links[in.Link], ifaces[in.Link] = true, in
	}
	if rt.LocalPos >= 0 {
		for _, l := range rt.Nodes[rt.LocalPos].Links() {
			links[l] = true
		}
	}
	for l := 0; l < MaxLinks; l++ {
		if !links[l] {
			continue
		}
		in, ok := ifaces[l]
		if !ok {
			in = Interface{Link: l, McastPort: uint16(5405 + l), TTL: 1, KnetPongCount: 2}
		}
		line := in.Line
		if line == 0 {
			line = rt.sectionLine("totem")
		}
		r := Ring{Link: l, Broadcast: in.Broadcast, McastPort: in.McastPort, TTL: in.TTL}
		r.SendPort = r.McastPort
		if t.Transport == TransportUDP {
			r.SendPort = r.McastPort - 1
		}
		switch {
		case rt.LocalPos >= 0:
			r.BindNetAddr = rt.Nodes[rt.LocalPos].IPs[l]
		case in.BindNetAddr != "":
			bn, err := netip.ParseAddr(in.BindNetAddr)
			if err != nil {
				d.errorf(rt.keys.line("totem.interface."+strconv.Itoa(l)+".bindnetaddr"), "bindnetaddr %q of interface %d is not an IP address", in.BindNetAddr, l)
				break
			}
			bn = bn.WithZone("")
			if a, ok := bindnetMatch(local.Addrs, bn); ok {
				r.BindNetAddr = a
			} else if local.Fallback && trailingZeroBits(bn) < 8 {
				r.BindNetAddr = bn
				d.warnf(in.Line, "no local address is in bindnetaddr %s of interface %d; it looks like a host address, so it is used as the local address", bn, l)
			} else if local.Fallback {
				d.warnf(in.Line, "no local address is in bindnetaddr network %s of interface %d; the local address (and node id) cannot be shown without --local-addr", bn, l)
			} else {
				d.errorf(in.Line, "no local interface address is in bindnetaddr %s of interface %d", bn, l)
			}
		case len(rt.Nodes) == 0:
			d.errorf(line, "interface %d has no bindnetaddr and there is no nodelist to take the local address from", l)
		}
		if t.Transport == TransportUDP {
			rt.mcastFor(d, &r, in, line)
		} else if in.McastAddr != "" {
			d.warnf(rt.keys.line("totem.interface."+strconv.Itoa(l)+".mcastaddr"), "mcastaddr of interface %d is only used by the udp transport; ignored with %s", l, t.Transport)
		}
		// knet link timers: set both or neither; one missing is derived from the token.
		pong := int64(in.KnetPongCount)
		if pong == 0 {
			pong = 2
		}
		tokenMS := t.Token.Milliseconds()
		r.KnetPingTimeout, r.KnetPingInterval = in.KnetPingTimeout, in.KnetPingInterval
		if r.KnetPingTimeout == 0 {
			r.KnetPingTimeout = time.Duration(tokenMS/pong) * time.Millisecond
		}
		if r.KnetPingInterval == 0 {
			r.KnetPingInterval = time.Duration(tokenMS/(pong*2)) * time.Millisecond
		}
		rt.Rings = append(rt.Rings, r)
	}
	if rt.LocalPos < 0 && rt.NodeID == 0 && len(rt.Rings) > 0 {
		a := rt.Rings[0].BindNetAddr
		switch {
		case a.Is4():
			b := a.As4()
			rt.NodeID = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			if t.ClearNodeHighBit {
				rt.NodeID &= 0x7fffffff
			}
			rt.LocalNote = fmt.Sprintf("no nodelist: nodeid generated from local ring0 address %s", a)
		case a.Is6():
			d.errorf(rt.lineOr("totem.nodeid", "totem"), "An IPV6 network requires that a node ID be specified for interface 0")
		}
	}
}

// mcastFor settles the udp group: mcastaddr, broadcast, or the address corosync derives
// from cluster_name.
func (rt *Runtime) mcastFor(d *diag, r *Ring, in Interface, line int) {
	l := r.Link
	keyLine := rt.lineOr("totem.interface."+strconv.Itoa(l)+".mcastaddr", "totem")
	if in.Broadcast {
		if in.McastAddr != "" {
			d.warnf(keyLine, "interface %d sets both broadcast and mcastaddr; broadcast wins", l)
		}
		r.McastAddr = netip.AddrFrom4([4]byte{255, 255, 255, 255})
		return
	}
	if in.McastAddr == "" {
		if rt.Totem.ClusterName == "" {
			d.errorf(line, "No multicast address specified for interface %d (set mcastaddr or totem.cluster_name)", l)
			return
		}
		r.McastAddr = McastFromClusterName(rt.Totem.ClusterName, l, r.BindNetAddr.Is6())
		return
	}
	a, err := netip.ParseAddr(in.McastAddr)
	if err != nil {
		d.errorf(keyLine, "mcastaddr is not a correct multicast address for interface %d (%q is not an IP address)", l, in.McastAddr)
		return
	}
	a = a.WithZone("")
	if !a.IsMulticast() {
		d.errorf(keyLine, "mcastaddr is not a correct multicast address for interface %d (%s)", l, a)
		return
	}
	if r.BindNetAddr.IsValid() && r.BindNetAddr.Is4() != a.Is4() {
		d.errorf(keyLine, "Multicast address family does not match bind address family for interface %d", l)
	}
	r.McastAddr = a
}

// McastFromClusterName is corosync's udp group for a cluster name: a 16-bit sum of the
// name's bytes (shift left one, add byte) plus the link number, placed in 239.192.0.0/16
// (low byte taken mod 255, as corosync does) or ff15::/16 for IPv6.
func McastFromClusterName(name string, link int, ipv6 bool) netip.Addr {
	var id uint16
	for i := 0; i < len(name); i++ {
		id = id<<1 + uint16(name[i])
	}
	id += uint16(link)
	if ipv6 {
		var b [16]byte
		b[0], b[1] = 0xff, 0x15
		b[14], b[15] = byte(id>>8), byte(id)
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{239, 192, byte(id >> 8), byte(id % 255)})
}

// Keys returns the corosync-cmapctl picture of this node's configuration: the file's keys,
// what totemconfig writes back at startup (bind addresses, udp group and port, generated
// node ids, nodelist.local_node_pos) and the effective runtime.config.totem.* values,
// sorted byte-wise. Keys corosync does not have are gototem additions:
// runtime.config.totem.nodeid (this node's id, also for files without a nodelist) and,
// with a redundant ring, runtime.config.totem.rrp_*.
func (rt *Runtime) Keys() []KeyValue {
	m := keyMap{}
	for k, e := range rt.keys {
		m[k] = e
	}
	set := func(k string, t Type, v string) { m[k] = &entry{typ: t, value: v} }
	u32 := func(k string, v int64) { set(k, TypeU32, strconv.FormatInt(v, 10)) }
	for _, r := range rt.Rings {
		base := "totem.interface." + strconv.Itoa(r.Link)
		if r.BindNetAddr.IsValid() && (len(rt.Nodes) > 0 || !m.has(base+".bindnetaddr")) {
			set(base+".bindnetaddr", TypeStr, r.BindNetAddr.String())
		}
		if rt.Totem.Transport == TransportUDP && r.McastAddr.IsValid() {
			set(base+".mcastaddr", TypeStr, r.McastAddr.String())
			set(base+".mcastport", TypeU16, strconv.Itoa(int(r.McastPort)))
		}
		rb := "runtime.config.totem.interface." + strconv.Itoa(r.Link)
		u32(rb+".knet_ping_interval", r.KnetPingInterval.Milliseconds())
		u32(rb+".knet_ping_timeout", r.KnetPingTimeout.Milliseconds())
	}
	for _, n := range rt.Nodes {
		if n.NodeIDDerived && !n.FromMembers {
			u32("nodelist.node."+strconv.Itoa(n.Pos)+".nodeid", int64(n.NodeID))
		}
	}
	if rt.LocalPos >= 0 && !rt.Nodes[rt.LocalPos].FromMembers {
		u32("nodelist.local_node_pos", int64(rt.LocalPos))
	}
	t := rt.Totem
	r := "runtime.config.totem."
	b2i := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	for k, v := range map[string]int64{
		"block_unlisted_ips":                  b2i(t.BlockUnlistedIPs),
		"cancel_token_hold_on_retransmit":     b2i(t.CancelTokenHoldOnRetransmit),
		"consensus":                           t.Consensus.Milliseconds(),
		"downcheck":                           t.Downcheck.Milliseconds(),
		"fail_recv_const":                     int64(t.FailRecvConst),
		"heartbeat_failures_allowed":          int64(t.HeartbeatFailuresAllowed),
		"hold":                                t.Hold.Milliseconds(),
		"join":                                t.Join.Milliseconds(),
		"knet_compression_threshold":          int64(t.Knet.CompressionThreshold),
		"knet_mtu":                            int64(t.Knet.MTU),
		"knet_pmtud_interval":                 int64(t.Knet.PMTUDInterval / time.Second),
		"max_messages":                        int64(t.MaxMessages),
		"max_network_delay":                   t.MaxNetworkDelay.Milliseconds(),
		"merge":                               t.Merge.Milliseconds(),
		"miss_count_const":                    int64(t.MissCountConst),
		"send_join":                           t.SendJoin.Milliseconds(),
		"seqno_unchanged_const":               int64(t.SeqnoUnchangedConst),
		"token":                               t.Token.Milliseconds(),
		"token_retransmit":                    t.TokenRetransmit.Milliseconds(),
		"token_retransmits_before_loss_const": int64(t.TokenRetransmitsBeforeLossConst),
		"token_warning":                       int64(t.TokenWarning),
		"window_size":                         int64(t.WindowSize),
	} {
		u32(r+k, v)
	}
	set(r+"knet_compression_level", TypeI32, strconv.Itoa(int(t.Knet.CompressionLevel)))
	set(r+"knet_compression_model", TypeStr, t.Knet.CompressionModel)
	if rt.NodeID != 0 {
		u32(r+"nodeid", int64(rt.NodeID))
	}
	if t.RRPMode == "active" || t.RRPMode == "passive" {
		set(r+"rrp_mode", TypeStr, t.RRPMode)
		u32(r+"rrp_problem_count_timeout", t.RRP.ProblemCountTimeout.Milliseconds())
		u32(r+"rrp_problem_count_threshold", int64(t.RRP.ProblemCountThreshold))
		u32(r+"rrp_problem_count_mcast_threshold", int64(t.RRP.ProblemCountMcastThreshold))
		u32(r+"rrp_token_expired_timeout", t.RRP.TokenExpiredTimeout.Milliseconds())
		u32(r+"rrp_autorecovery_check_timeout", t.RRP.AutorecoveryCheckTimeout.Milliseconds())
	}
	return m.list()
}

// Local returns the local node, or nil without a nodelist.
func (rt *Runtime) Local() *ResolvedNode {
	if rt.LocalPos < 0 {
		return nil
	}
	return &rt.Nodes[rt.LocalPos]
}
