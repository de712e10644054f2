package totem

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/gototem/gototem/config"
)

// LoadConfig reads a corosync.conf and resolves it for this host, as corosync does when it
// starts: the local node is the nodelist entry whose name is this host's name or whose address is
// one of this host's interface addresses. Warnings (ignored or deprecated keys) come back beside
// the configuration; they never make it fail.
func LoadConfig(path string) (*config.Runtime, config.Warnings, error) {
	cfg, warns, err := config.Load(path)
	if err != nil {
		return nil, warns, err
	}
	rt, more, err := cfg.Resolve(HostLocal())
	return rt, append(warns, more...), err
}

// HostLocal gathers what corosync looks at to find the local node: the host name and every
// interface address, with a resolver for host names in the nodelist that gives up after a few
// seconds (a dead resolver must not hang a start). It never falls back to another node: a
// process must not guess which node it is.
func HostLocal() config.Local {
	l := config.Local{LookupHost: lookupHost}
	l.Hostname, _ = os.Hostname()
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return l
	}
	for _, a := range ifaddrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, bits := n.Mask.Size()
		ip = ip.Unmap()
		if ip.Is4() && bits == 128 {
			ones -= 96
		}
		l.Addrs = append(l.Addrs, netip.PrefixFrom(ip, ones))
	}
	return l
}

func lookupHost(host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsTimeout {
			return nil, errors.New("resolving " + host + ": no answer within 3s")
		}
	}
	return addrs, err
}
