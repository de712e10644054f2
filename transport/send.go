package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/gototem/gototem/srp"
)

// Send transmits out in order, as srp.Ready asks: runs of consecutive messages with the same
// destination kind go out together, one sendmmsg per socket per run (a token after a burst
// of MCASTs therefore still leaves after them). ToNode goes to the member's address
// (nodelist first, then learned); ToAll goes to the group (udp) or to every member (udpu),
// and comes back to this node through the local loop (udp, or a udpu nodelist that lacks
// our own address) or as a real datagram to our own address (udpu, as corosync does), or,
// with LoopInProcess, not at all: the caller loops it back.
//
// out[i].Data is only read during the call. A message that cannot be sent (unknown
// destination, larger than a UDP datagram) is counted and skipped; the returned error
// reports socket failures, after every other message has still been attempted.
// Owner goroutine only.
func (l *Link) Send(out []srp.Outgoing) error {
	if l.knet != nil {
		return l.sendKnet(out)
	}
	t := l.members.Load()
	var errs error
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].Dest == out[i].Dest {
			j++
		}
		var err error
		if out[i].Dest == srp.ToNode {
			err = l.sendTokens(t, out[i:j])
		} else {
			err = l.sendMcasts(t, out[i:j])
		}
		errs = errors.Join(errs, err)
		i = j
	}
	return errs
}

// prepare seals (when encryption is on) and size-checks the run's payloads into
// l.payloads; skipped entries are nil.
func (l *Link) prepare(run []srp.Outgoing) {
	l.payloads = l.payloads[:0]
	for len(l.sealed) < len(run) {
		l.sealed = append(l.sealed, make([]byte, 0, 2048))
	}
	for i, o := range run {
		size := len(o.Data)
		if l.crypto != nil {
			size += CryptoOverhead
		}
		if size > MaxDatagram {
			l.ctr.droppedTooBig.Add(1)
			l.log.Warn("datagram too big for UDP, not sent", "type", o.Type, "size", size)
			l.payloads = append(l.payloads, nil)
			continue
		}
		if l.crypto == nil {
			l.payloads = append(l.payloads, o.Data)
			continue
		}
		l.sealed[i] = l.crypto.sealInto(l.sealed[i], o.Data)
		l.payloads = append(l.payloads, l.sealed[i])
	}
}

func (l *Link) sendTokens(t *memberTable, run []srp.Outgoing) error {
	l.prepare(run)
	l.msgs = l.msgs[:0]
	for i, o := range run {
		if l.payloads[i] == nil {
			continue
		}
		a, ok := l.lookup(t, o.To)
		if !ok {
			// corosync sends nothing either when the token target is not in its member
			// list; the ring then fails to form, which the log line explains.
			l.ctr.droppedNoRoute.Add(1)
			l.log.Debug("no address for token target", "nodeid", o.To, "type", o.Type)
			continue
		}
		l.queue(l.payloads[i], netip.AddrPortFrom(a, uint16(l.cfg.Port)))
	}
	return l.flush(l.tokenOut)
}

func (l *Link) sendMcasts(t *memberTable, run []srp.Outgoing) error {
	l.prepare(run)
	var errs error
	loopLocally := !l.cfg.LoopInProcess
	if l.cfg.Kind == UDP {
		l.msgs = l.msgs[:0]
		for _, p := range l.payloads {
			if p != nil {
				l.queue(p, l.group)
			}
		}
		errs = l.flush(l.mcastOut)
	} else {
		self := l.cfg.LocalAddr.WithZone("")
		for _, a := range t.addrs {
			if a.WithZone("") == self {
				if l.cfg.LoopInProcess {
					continue // the caller hands its own copy back itself
				}
				loopLocally = false // our own nodelist entry gets a real copy
			}
			s := l.memberOut[a]
			if s == nil {
				continue
			}
			l.msgs = l.msgs[:0]
			dst := netip.AddrPortFrom(a, uint16(l.cfg.Port))
			for _, p := range l.payloads {
				if p != nil {
					l.queue(p, dst)
				}
			}
			errs = errors.Join(errs, l.flush(s))
		}
	}
	if loopLocally {
		for i, o := range run {
			if l.payloads[i] == nil {
				continue
			}
			if err := l.loop.send(o.Data); err != nil {
				if errors.Is(err, unix.EAGAIN) {
					l.ctr.droppedLoopFull.Add(1)
					continue
				}
				l.ctr.sendErrors.Add(1)
				errs = errors.Join(errs, fmt.Errorf("transport: local loop: %w", err))
			}
		}
	}
	return errs
}

func (l *Link) queue(p []byte, dst netip.AddrPort) {
	ua := l.udpAddrs[dst]
	if ua == nil {
		ua = net.UDPAddrFromAddrPort(dst)
		l.udpAddrs[dst] = ua
	}
	n := len(l.msgs)
	for len(l.bufs) <= n {
		l.bufs = append(l.bufs, nil)
	}
	l.bufs[n] = p
	l.msgs = append(l.msgs, ipv4.Message{Buffers: l.bufs[n : n+1 : n+1], Addr: ua})
	l.dsts = append(l.dsts[:n], dst)
}

// flush sends l.msgs on s, BatchSize datagrams per system call. A datagram the kernel
// refuses is counted and skipped, so one unreachable member cannot stall the rest.
func (l *Link) flush(s *udpSock) error {
	msgs := l.msgs
	var first error
	fail := func(err error) {
		l.ctr.sendErrors.Add(1)
		if first == nil {
			first = fmt.Errorf("transport: send from %s: %w", s.local, err)
		}
	}
	if l.gso != nil && len(msgs) > 1 {
		msgs = msgs[l.sendGSO(s, fail):]
	}
	for len(msgs) > 0 {
		if l.cfg.BatchSize == 1 {
			m := msgs[0]
			ap := m.Addr.(*net.UDPAddr).AddrPort()
			if _, err := s.conn.WriteToUDPAddrPort(m.Buffers[0], ap); err != nil {
				fail(err)
			} else {
				l.ctr.sent(len(m.Buffers[0]))
			}
			msgs = msgs[1:]
			continue
		}
		chunk := msgs[:min(len(msgs), l.cfg.BatchSize)]
		n, err := s.batch.WriteBatch(chunk, 0)
		for _, m := range chunk[:max(n, 0)] {
			l.ctr.sent(len(m.Buffers[0]))
		}
		if n < 0 {
			n = 0
		}
		if err != nil || n == 0 {
			if err == nil {
				err = errors.New("sendmmsg sent nothing")
			}
			fail(err)
			n++ // skip the datagram the kernel refused
		}
		msgs = msgs[min(n, len(msgs)):]
	}
	l.msgs = l.msgs[:0]
	l.dsts = l.dsts[:0]
	return first
}

// Counters are a Link's totals since Open. A datagram handed to Send ends up sent, as a
// send error or as a send-side drop; one arriving ends up received or in one drop reason.
// Copies through the local loop are not counted as sent, only as received.
type Counters struct {
	SentPackets, SentBytes         uint64 // datagrams handed to the kernel (each udpu copy counts)
	SendErrors                     uint64 // datagrams the kernel refused
	ReceivedPackets, ReceivedBytes uint64 // datagrams delivered by Read (wire size)

	SegmentedSends   uint64 // GSO messages that carried several of the sent datagrams
	CoalescedRecvs   uint64 // UDP_GRO messages that carried several received datagrams
	DroppedTooBig    uint64 // truncated on receive, or larger than a UDP datagram on send
	DroppedLoopFull  uint64 // own multicast not looped back: nobody drained the loop receiver
	DroppedNoRoute   uint64 // token for a nodeid with no known address
	DroppedOwnEcho   uint64 // our own multicast echoed back by a looping interface
	DroppedUnlisted  uint64 // udpu block_unlisted_ips: source not in the nodelist
	DroppedMalformed uint64 // encryption on: not a sealed datagram of our version/cipher
	DroppedAuth      uint64 // encryption on: tag did not verify (wrong key, tampering)
	DroppedReplay    uint64 // encryption on: counter already seen or epoch superseded

	LearnedAddresses uint64 // nodeid → address entries learned or changed
	// DroppedNotForUs (knet): a totem packet whose target_nodeid names another node, which
	// corosync's knet filter drops on receive.
	DroppedNotForUs uint64
}

type counters struct {
	sentPackets, sentBytes, sendErrors                             atomic.Uint64
	receivedPackets, receivedBytes                                 atomic.Uint64
	droppedTooBig, droppedNoRoute, droppedOwnEcho, droppedUnlisted atomic.Uint64
	droppedMalformed, droppedAuth, droppedReplay, learned          atomic.Uint64
	droppedLoopFull, segmented, coalesced                          atomic.Uint64
	droppedNotForUs                                                atomic.Uint64
}

func (c *counters) sent(n int) {
	c.sentPackets.Add(1)
	c.sentBytes.Add(uint64(n))
}

// Counters returns a snapshot of the Link's counters.
func (l *Link) Counters() Counters {
	c := &l.ctr
	return Counters{
		SentPackets: c.sentPackets.Load(), SentBytes: c.sentBytes.Load(), SendErrors: c.sendErrors.Load(),
		ReceivedPackets: c.receivedPackets.Load(), ReceivedBytes: c.receivedBytes.Load(),
		DroppedTooBig: c.droppedTooBig.Load(), DroppedNoRoute: c.droppedNoRoute.Load(),
		DroppedOwnEcho: c.droppedOwnEcho.Load(), DroppedUnlisted: c.droppedUnlisted.Load(),
		DroppedMalformed: c.droppedMalformed.Load(), DroppedAuth: c.droppedAuth.Load(),
		DroppedReplay: c.droppedReplay.Load(), LearnedAddresses: c.learned.Load(),
		DroppedLoopFull: c.droppedLoopFull.Load(), SegmentedSends: c.segmented.Load(),
		CoalescedRecvs: c.coalesced.Load(), DroppedNotForUs: c.droppedNotForUs.Load(),
	}
}

// loopWriter writes own multicasts into the local loop without ever waiting: if the loop
// receiver is not being drained the datagram is dropped and counted, like a full UDP
// receive queue, instead of stalling the owner goroutine. (A socketpair's peer is exempt
// from net.unix.max_dgram_qlen, so only the loop's SO_SNDBUF bounds the queue.)
type loopWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // write bound once: no closure allocation per datagram
	buf []byte
	err error
}

func (w *loopWriter) write(fd uintptr) bool {
	for range 16 { // EINTR only
		_, err := unix.Write(int(fd), w.buf)
		if err != unix.EINTR {
			w.err = err
			return true
		}
	}
	w.err = unix.EINTR
	return true
}

func (w *loopWriter) send(p []byte) error {
	w.buf = p
	err := w.rc.Write(w.fn)
	w.buf = nil
	if err != nil {
		return err
	}
	return w.err
}
