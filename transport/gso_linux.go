//go:build linux

package transport

import (
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

const (
	// gsoMaxSegments stays under the kernel's UDP_MAX_SEGMENTS (64 before Linux 6.x).
	gsoMaxSegments = 64
	// gsoMaxBytes keeps a GSO message under the 64 KiB an IP datagram may carry.
	gsoMaxBytes = 65000
)

var gsoCmsgSpace = unix.CmsgSpace(2)

// gsoWriter sends a socket's queued datagrams with UDP generic segmentation offload: each run
// of consecutive datagrams to one destination that share one size (the run's last may be
// shorter) goes to the kernel as one message, which it cuts back into exactly those
// datagrams (UDP_SEGMENT). A visit's MCASTs to one member then cost the IP stack one
// traversal instead of one each; the datagrams on the wire are the same. Owner goroutine
// only, like Send.
type gsoWriter struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	oob   []byte
	first []int // index of hdrs[i]'s first datagram in the queue
	segs  []int // datagrams in hdrs[i]

	off, vlen int
	n         int
	errno     syscall.Errno
	fn        func(fd uintptr) bool
}

func newGSOWriter() *gsoWriter {
	w := &gsoWriter{}
	w.fn = w.write
	return w
}

func (w *gsoWriter) write(fd uintptr) bool {
	for range 16 { // EINTR only
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.off])),
			uintptr(w.vlen), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			return false // socket buffer full: wait until writable
		}
		w.n, w.errno = int(n), e
		return true
	}
	w.n, w.errno = 0, unix.EINTR
	return true
}

// gsoUnsupported are the errors with which a kernel, device or route refuses segmentation
// offload itself (no checksum offload, gso_size over the path MTU, an old kernel).
func gsoUnsupported(e syscall.Errno) bool {
	return e == unix.EIO || e == unix.EINVAL || e == unix.EOPNOTSUPP || e == unix.ENOPROTOOPT
}

// build lays msgs out as GSO messages; false when a destination needs the standard path
// (an IPv6 zone, whose scope id the standard library resolves).
func (w *gsoWriter) build(msgs []ipv4.Message, dsts []netip.AddrPort, v6 bool) bool {
	n := len(msgs)
	if cap(w.iovs) < n {
		w.iovs = make([]unix.Iovec, n)
		w.hdrs = make([]mmsghdr, n)
		w.names = make([]unix.RawSockaddrInet6, n)
		w.oob = make([]byte, n*gsoCmsgSpace)
		w.first = make([]int, n)
		w.segs = make([]int, n)
	}
	w.hdrs, w.first, w.segs = w.hdrs[:0], w.first[:0], w.segs[:0]
	for i := 0; i < n; {
		dst := dsts[i]
		if dst.Addr().Zone() != "" {
			return false
		}
		size := len(msgs[i].Buffers[0])
		j, total := i+1, size
		for size > 0 && j < n && j-i < gsoMaxSegments && dsts[j] == dst {
			q := len(msgs[j].Buffers[0])
			if q == 0 || q > size || total+q > gsoMaxBytes {
				break
			}
			total += q
			j++
			if q < size {
				break // a shorter datagram can only end a run
			}
		}
		k := len(w.hdrs)
		for m := i; m < j; m++ {
			p := msgs[m].Buffers[0]
			iov := &w.iovs[m]
			if len(p) > 0 {
				iov.Base = &p[0]
			} else {
				iov.Base = nil
			}
			iov.SetLen(len(p))
		}
		var h mmsghdr
		h.Hdr.Iov = &w.iovs[i]
		h.Hdr.SetIovlen(j - i)
		name := &w.names[k]
		if v6 {
			*name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.Addr().As16()}
			putPort(&name.Port, dst.Port())
			h.Hdr.Namelen = unix.SizeofSockaddrInet6
		} else {
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
			*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Addr().Unmap().As4()}
			putPort(&sa.Port, dst.Port())
			h.Hdr.Namelen = unix.SizeofSockaddrInet4
		}
		h.Hdr.Name = (*byte)(unsafe.Pointer(name))
		if j-i > 1 {
			c := w.oob[k*gsoCmsgSpace : (k+1)*gsoCmsgSpace]
			clear(c)
			cm := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			cm.Level = unix.SOL_UDP
			cm.Type = unix.UDP_SEGMENT
			cm.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(size)
			h.Hdr.Control = &c[0]
			h.Hdr.SetControllen(gsoCmsgSpace)
		}
		w.hdrs = append(w.hdrs, h)
		w.first = append(w.first, i)
		w.segs = append(w.segs, j-i)
		i = j
	}
	return true
}

func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// sendGSO sends l.msgs on s through the GSO writer and returns how many of them it dealt
// with (sent, or refused and reported through fail); the standard path sends the rest.
// GSO is switched off for the Link when the kernel refuses it.
func (l *Link) sendGSO(s *udpSock, fail func(error)) int {
	w := l.gso
	msgs := l.msgs
	if s.rc == nil || !w.build(msgs, l.dsts, l.v6) {
		return 0
	}
	for off := 0; off < len(w.hdrs); {
		w.off, w.vlen = off, len(w.hdrs)-off
		if err := s.rc.Write(w.fn); err != nil {
			return w.first[off] // the socket is closed: let the standard path report it
		}
		if w.errno != 0 {
			if w.segs[off] > 1 {
				if gsoUnsupported(w.errno) {
					l.log.Info("UDP segmentation offload refused, sending datagrams one by one", "err", w.errno)
					l.gso = nil
				}
				return w.first[off]
			}
			fail(os.NewSyscallError("sendmmsg", w.errno))
			off++
			continue
		}
		for k := off; k < off+w.n; k++ {
			if w.segs[k] > 1 {
				l.ctr.segmented.Add(1)
			}
			for m := w.first[k]; m < w.first[k]+w.segs[k]; m++ {
				l.ctr.sent(len(msgs[m].Buffers[0]))
			}
		}
		if w.n <= 0 {
			return w.first[off] // cannot happen with vlen > 0; never spin
		}
		off += w.n
	}
	return len(msgs)
}
