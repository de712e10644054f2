package transport

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// rawMsg is what a socket read produced for one buffer, before any filtering.
type rawMsg struct {
	n     int
	from  netip.AddrPort
	trunc bool
	seg   int // UDP_GRO: the message holds datagrams of this size (the last may be shorter)
}

// reader fills bufs (each a full-size buffer) with up to len(bufs) datagrams.
type reader interface {
	read(bufs [][]byte, out []rawMsg) (int, error)
	// setIdle registers f to run whenever the socket is found empty and the reading
	// goroutine is about to wait for it; false when this reader cannot tell.
	setIdle(f func()) bool
}

func (r *stdReader) setIdle(func()) bool { return false }

// stdReader reads one datagram per system call with the standard library; it is the
// unbatched path (BatchSize 1) and the only one off Linux.
type stdReader struct {
	udp  *net.UDPConn
	unix *net.UnixConn
}

func (r *stdReader) read(bufs [][]byte, out []rawMsg) (int, error) {
	if len(bufs) == 0 || len(out) == 0 {
		return 0, nil
	}
	var n, flags int
	var from netip.AddrPort
	var err error
	if r.udp != nil {
		n, _, flags, from, err = r.udp.ReadMsgUDPAddrPort(bufs[0], nil)
	} else {
		n, _, flags, _, err = r.unix.ReadMsgUnix(bufs[0], nil)
	}
	if err != nil {
		return 0, err
	}
	out[0] = rawMsg{n: n, from: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()),
		trunc: flags&syscall.MSG_TRUNC != 0}
	return 1, nil
}

func rawConnOf(c syscall.Conn) (syscall.RawConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("transport: raw socket: %w", err)
	}
	return rc, nil
}
