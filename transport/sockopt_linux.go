//go:build linux

package transport

import (
	"golang.org/x/sys/unix"
)

// setSockOpts runs before bind (from net.ListenConfig.Control). Buffer sizes are asked with
// SO_RCVBUFFORCE/SO_SNDBUFFORCE first, which a daemon with CAP_NET_ADMIN (root, as corosync
// runs) is granted beyond net.core.[rw]mem_max; without the capability the plain request
// follows, capped as the kernel caps corosync's. Stock kernels cap at 208 KiB, less than one
// send window of a ring declared gototem-only (300 datagrams): a receiver would drop bursts
// and the ring would live on retransmissions. What was granted is logged by the caller.
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
		if err := setBuffer(s, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, o.rcvbuf); err != nil {
			return err
		}
	}
	if o.sndbuf > 0 {
		if err := setBuffer(s, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, o.sndbuf); err != nil {
			return err
		}
	}
	if o.pmtuDiscDo {
		dom, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			return err
		}
		if dom == unix.AF_INET6 {
			err = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO)
		} else {
			err = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
		}
		if err != nil {
			return err
		}
	}
	if o.priority > 0 {
		// Best effort, as in corosync: a kernel refusing the priority costs latency only.
		_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_PRIORITY, o.priority)
	}
	return nil
}

// setBuffer asks for size with the FORCE option and falls back to the capped one (EPERM
// without CAP_NET_ADMIN).
func setBuffer(s, force, plain, size int) error {
	if unix.SetsockoptInt(s, unix.SOL_SOCKET, force, size) == nil {
		return nil
	}
	return unix.SetsockoptInt(s, unix.SOL_SOCKET, plain, size)
}

// bufferSizes reports the granted SO_RCVBUF and SO_SNDBUF (Linux reports twice the usable
// size, to account for its bookkeeping overhead).
func bufferSizes(fd uintptr) (rcv, snd int) {
	rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	return rcv, snd
}

// newLoopPair creates the AF_UNIX datagram pair carrying own multicasts back to the
// receive path (corosync's totemudp uses a socketpair for the same purpose).
func newLoopPair() (fds [2]int, err error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
}

func newUDPSocket(family int) (int, error) {
	return unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
}
