package transport

import (
	"fmt"
	"net"
	"net/netip"
)

// Interface is one address of a local network interface.
type Interface struct {
	Name   string
	Index  int
	Addr   netip.Addr   // the interface's own address
	Prefix netip.Prefix // Addr with the interface's netmask
}

// LocalInterfaces lists every address of every interface that is up.
func LocalInterfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("transport: listing interfaces: %w", err)
	}
	var out []Interface
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("transport: addresses of %s: %w", ifi.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			ones, _ := ipn.Mask.Size()
			out = append(out, Interface{Name: ifi.Name, Index: ifi.Index, Addr: ip,
				Prefix: netip.PrefixFrom(ip, ones)})
		}
	}
	return out, nil
}

// ResolveBindNetAddr finds the local interface address a corosync bindnetaddr designates.
// As corosync does (totemip_iface_check), bindnetaddr may be the interface's own address or
// any address of its network, typically the network address itself (192.168.1.0 for
// 192.168.1.17/24): an exact address match wins, otherwise the first interface whose
// network contains bindnetaddr. A Link must then bind the returned Addr.
func ResolveBindNetAddr(bindnet netip.Addr) (Interface, error) {
	ifs, err := LocalInterfaces()
	if err != nil {
		return Interface{}, err
	}
	return matchBindNet(bindnet, ifs)
}

func matchBindNet(bindnet netip.Addr, ifs []Interface) (Interface, error) {
	bindnet = bindnet.Unmap()
	if !bindnet.IsValid() {
		return Interface{}, fmt.Errorf("transport: bindnetaddr: invalid address")
	}
	for _, ifi := range ifs {
		if ifi.Addr.WithZone("") == bindnet.WithZone("") {
			return ifi, nil
		}
	}
	for _, ifi := range ifs {
		if ifi.Prefix.IsValid() && ifi.Addr.Is4() == bindnet.Is4() && ifi.Prefix.Masked().Contains(bindnet.WithZone("")) {
			return ifi, nil
		}
	}
	return Interface{}, fmt.Errorf("transport: bindnetaddr %s matches no local interface address or network", bindnet)
}
