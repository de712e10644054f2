package transport

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// bindGroupSocket creates a UDP socket bound to a multicast (or broadcast) address itself.
// The standard library cannot do this: net.ListenPacket silently binds the wildcard when
// given a multicast address, which would both collide with the token socket on the same
// port and let unicast datagrams in. corosync binds the group address, so the receive socket
// only ever sees this ring's multicasts.
func bindGroupSocket(addr netip.AddrPort, zoneIndex int, o sockOpts) (*net.UDPConn, error) {
	family := unix.AF_INET6
	var sa unix.Sockaddr
	if addr.Addr().Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16(), ZoneId: uint32(zoneIndex)}
	}
	fd, err := newUDPSocket(family)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := setSockOpts(uintptr(fd), o); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "totem-group-"+addr.String())
	defer f.Close() // FilePacketConn works on a duplicate
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("socket is a %T, not UDP", pc)
	}
	return conn, nil
}
