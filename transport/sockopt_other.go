//go:build !linux

package transport

import (
	"golang.org/x/sys/unix"
)

func setSockOpts(fd uintptr, o sockOpts) error {
	s := int(fd)
	if o.reuseAddr {
		if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
	}
	if o.broadcast {
		if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return err
		}
	}
	if o.rcvbuf > 0 {
		_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, o.rcvbuf)
	}
	if o.sndbuf > 0 {
		_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, o.sndbuf)
	}
	return nil // no SO_PRIORITY outside Linux
}

func bufferSizes(fd uintptr) (rcv, snd int) {
	rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	return rcv, snd
}

func newLoopPair() (fds [2]int, err error) {
	fds, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		return fds, err
	}
	for _, fd := range fds {
		unix.CloseOnExec(fd)
		if err := unix.SetNonblock(fd, true); err != nil {
			return fds, err
		}
	}
	return fds, nil
}

func newUDPSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
