//go:build linux

package transport

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgReader receives a batch with one recvmmsg(2). It is written against x/sys rather than
// x/net's ReadBatch because ReadBatch allocates a *net.UDPAddr (two allocations) for every
// datagram's source address; here the source is decoded from a reused sockaddr array into
// a netip.AddrPort, so a steady-state receive allocates nothing.
type mmsgReader struct {
	rc        syscall.RawConn
	hdrs      []mmsghdr
	iovs      []unix.Iovec
	names     []unix.RawSockaddrInet6 // large enough for either family
	withNames bool
	// gro: the socket has UDP_GRO on, so one message may carry several datagrams of one
	// size (a sender's GSO run, or packets the NIC coalesced); oob receives that size.
	gro   bool
	oob   []byte
	vlen  int
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // r.recv bound once, so rc.Read does not allocate a closure
	idle  func()
}

func (r *mmsgReader) setIdle(f func()) bool {
	r.idle = f
	return true
}

var groCmsgSpace = unix.CmsgSpace(4)

// newReader picks the receive path. gro asks for UDP_GRO on a UDP socket (batched path only);
// a kernel that refuses it keeps receiving one datagram per message.
func newReader(c syscall.Conn, udp *net.UDPConn, uc *net.UnixConn, batch int, gro bool) (reader, error) {
	if batch <= 1 {
		return &stdReader{udp: udp, unix: uc}, nil
	}
	rc, err := rawConnOf(c)
	if err != nil {
		return nil, err
	}
	r := &mmsgReader{rc: rc, hdrs: make([]mmsghdr, batch), iovs: make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrInet6, batch), withNames: udp != nil}
	if gro && udp != nil {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1)
		}); err == nil && serr == nil {
			r.gro = true
			r.oob = make([]byte, batch*groCmsgSpace)
		}
	}
	r.fn = r.recv
	return r, nil
}

func (r *mmsgReader) recv(fd uintptr) bool {
	// EINTR is retried here: returning false would wait for a new readiness edge while data
	// may still be queued. The bound only guards against a pathological signal storm.
	for range 16 {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
			uintptr(r.vlen), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			if r.idle != nil {
				r.idle()
			}
			return false // nothing queued: let the poller park us
		}
		r.n, r.errno = int(n), e
		return true
	}
	r.n, r.errno = 0, unix.EINTR
	return true
}

func (r *mmsgReader) read(bufs [][]byte, out []rawMsg) (int, error) {
	vlen := min(len(bufs), len(r.hdrs), len(out))
	if vlen == 0 {
		return 0, nil
	}
	for i := range vlen {
		r.iovs[i].Base = &bufs[i][0]
		r.iovs[i].SetLen(len(bufs[i]))
		h := &r.hdrs[i]
		h.Len = 0
		h.Hdr.Iov = &r.iovs[i]
		h.Hdr.SetIovlen(1)
		h.Hdr.Flags = 0
		if r.withNames {
			h.Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
			h.Hdr.Namelen = unix.SizeofSockaddrInet6
		}
		if r.gro {
			h.Hdr.Control = &r.oob[i*groCmsgSpace]
			h.Hdr.SetControllen(groCmsgSpace)
		}
	}
	r.vlen = vlen
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	for i := range r.n {
		h := &r.hdrs[i]
		m := rawMsg{n: int(h.Len), trunc: h.Hdr.Flags&unix.MSG_TRUNC != 0}
		if r.withNames {
			m.from = sockaddrToAddrPort(&r.names[i])
		}
		if r.gro && h.Hdr.Controllen > 0 {
			m.seg = groSegment(r.oob[i*groCmsgSpace : i*groCmsgSpace+int(h.Hdr.Controllen)])
		}
		out[i] = m
	}
	return r.n, nil
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	pb := (*[2]byte)(unsafe.Pointer(&sa.Port))
	port := uint16(pb[0])<<8 | uint16(pb[1])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// groSegment reads the UDP_GRO control message: the size of each datagram in a coalesced
// message (0: none, one datagram).
func groSegment(oob []byte) int {
	if len(oob) < unix.CmsgLen(2) {
		return 0
	}
	cm := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	if cm.Level != unix.SOL_UDP || cm.Type != unix.UDP_GRO {
		return 0
	}
	data := oob[unix.CmsgLen(0):]
	if int(cm.Len) >= unix.CmsgLen(4) && len(data) >= 4 {
		return int(*(*int32)(unsafe.Pointer(&data[0])))
	}
	return int(*(*uint16)(unsafe.Pointer(&data[0])))
}
