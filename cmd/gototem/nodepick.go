package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"

	"github.com/gototem/gototem/config"
)

// pickFreeNode is for several daemons on one host, each started without --local-addr (a lab
// on 127.0.0.x, the demo's layout). corosync takes the first nodelist entry whose address is
// local and fails if another process holds its port; gototem takes the next local entry whose
// port is free instead, and says so. An address is local when it is an interface address, or
// lies in a prefix of a loopback interface (Linux delivers all of 127.0.0.0/8 locally).
// Nothing changes when the chosen node's port is free, or when only one entry is local.
func pickFreeNode(cfg *config.Config, rt *config.Runtime, stderr io.Writer) *config.Runtime {
	if rt.LocalPos < 0 || len(rt.Rings) == 0 || portFree(rt.Nodes[rt.LocalPos].IPs[0], rt.Rings[0].McastPort) {
		return rt
	}
	loopbacks := loopbackPrefixes()
	for i, n := range rt.Nodes {
		a := n.IPs[0]
		if i == rt.LocalPos || !a.IsValid() || !isLocal(a, loopbacks) || !portFree(a, rt.Rings[0].McastPort) {
			continue
		}
		other, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(a), LookupHost: lookupHostOf(rt)})
		if err != nil || other.NodeID != n.NodeID {
			continue
		}
		fmt.Fprintf(stderr, "gototem: node %d's address %s:%d is in use on this host (another daemon?): running as node %d (%s)\n",
			rt.NodeID, rt.Nodes[rt.LocalPos].IPs[0], rt.Rings[0].McastPort, n.NodeID, a)
		return other
	}
	return rt
}

// lookupHostOf resolves the nodelist's host names to the addresses rt already resolved them to,
// so a second Resolve does not ask the resolver again.
func lookupHostOf(rt *config.Runtime) func(string) ([]netip.Addr, error) {
	return func(host string) ([]netip.Addr, error) {
		for _, n := range rt.Nodes {
			for l, name := range n.Addrs {
				if name == host && n.IPs[l].IsValid() {
					return []netip.Addr{n.IPs[l]}, nil
				}
			}
		}
		return nil, fmt.Errorf("%s: not in the nodelist", host)
	}
}

func portFree(a netip.Addr, port uint16) bool {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)))
	if err != nil {
		return !errors.Is(err, syscall.EADDRINUSE)
	}
	c.Close()
	return true
}

func loopbackPrefixes() []netip.Prefix {
	var out []netip.Prefix
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if p, ok := netip.AddrFromSlice(n.IP); ok {
					ones, _ := n.Mask.Size()
					if p.Unmap().Is4() && ones > 32 {
						ones -= 96
					}
					out = append(out, netip.PrefixFrom(p.Unmap(), ones).Masked())
				}
			}
		}
	}
	return out
}

func isLocal(a netip.Addr, loopbacks []netip.Prefix) bool {
	for _, p := range loopbacks {
		if p.Contains(a) {
			return true
		}
	}
	for _, p := range hostLocal().Addrs {
		if p.Addr().Unmap() == a.Unmap() {
			return true
		}
	}
	return false
}
