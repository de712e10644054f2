package transport

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/gototem/gototem/knet"
)

// Path MTU discovery of the knet transport (libknet's threads_pmtud.c). A search
// (knet.PMTUD) runs per host and link when the link comes up and again every
// KnetConfig.PMTUDInterval (knet_pmtud_interval, corosync's default 30 s). Its probes
// leave with IP_PMTUDISC_DO: a probe larger than the path is refused by the kernel
// (EMSGSIZE) and the search continues at the interface's MTU; a probe that passes is
// answered by the peer's PMTUD_REPLY, handled as it arrives; a probe left unanswered for
// the link's ping timeout counts as lost. Every search that settles sets the Endpoint's data
// MTU to the smallest result of all links (libknet's handle-wide data MTU), so totem's
// packets are cut into as few knet fragments as the path allows. knet_mtu set in
// corosync.conf replaces the search altogether.

type pmtudKey struct {
	host knet.HostID
	link uint8
}

type pmtudRun struct {
	s      *knet.PMTUD
	sentAt time.Duration
	wait   time.Duration // the link's ping timeout
	done   bool
	mtu    int
}

// pmtudStart begins (or restarts) the search of host's link. ks.mu held.
func (l *Link) pmtudStart(now time.Duration, host knet.HostID, link uint8) {
	ks := l.knet
	if ks.fixedMTU || ks.socks[link] == nil {
		return
	}
	c := ks.ep.Crypto()
	ping := knet.PingSize
	if c != nil {
		ping += c.Overhead(knet.PingSize)
	}
	wait := 2 * time.Second
	for _, kl := range ks.links {
		if kl.Number == link && kl.Link.PingTimeout > 0 {
			wait = kl.Link.PingTimeout
		}
	}
	r := &pmtudRun{s: knet.NewPMTUD(c, !ks.socks[link].local.Addr().Is4(), ping), wait: wait}
	ks.pmtud[pmtudKey{host, link}] = r
	l.pmtudProbe(now, pmtudKey{host, link}, r)
}

// pmtudProbe sends the search's next probe, or finishes it. ks.mu held.
func (l *Link) pmtudProbe(now time.Duration, k pmtudKey, r *pmtudRun) {
	ks := l.knet
	for !r.done {
		p, err := r.s.Next(knet.HostID(ks.self), k.link)
		if r.s.Done() {
			r.done = true
			if err == nil {
				r.mtu = r.s.DataMTU()
			}
			l.pmtudSettle()
			if err != nil {
				l.log.Warn("knet PMTUd gave up", "host", k.host, "link", k.link, "err", err)
			}
			return
		}
		if err != nil {
			r.done = true
			return
		}
		d, ok := ks.ep.SealProbe(k.host, &p)
		if !ok {
			r.done = true
			return
		}
		_, err = ks.socks[k.link].conn.WriteToUDPAddrPort(d.Data, d.To)
		if errors.Is(err, syscall.EMSGSIZE) {
			r.s.SendFailed(ks.ifMTU[k.link])
			continue
		}
		if err != nil {
			l.ctr.sendErrors.Add(1)
		} else {
			l.ctr.sent(len(d.Data))
		}
		r.sentAt = now
		return
	}
}

// pmtudReplies feeds the replies the last Receive got to their searches. ks.mu held.
func (l *Link) pmtudReplies(now time.Duration) {
	ks := l.knet
	for _, rep := range ks.ep.PMTUDReplies() {
		r := ks.pmtud[pmtudKey{rep.Host, rep.Link}]
		if r == nil || r.done {
			continue
		}
		r.s.Reply(rep.Size)
		l.pmtudProbe(now, pmtudKey{rep.Host, rep.Link}, r)
	}
}

// pmtudTick times out unanswered probes and restarts the searches every interval, for the
// links that are up. ks.mu held.
func (l *Link) pmtudTick(now time.Duration) {
	ks := l.knet
	for k, r := range ks.pmtud {
		if !r.done && now-r.sentAt >= r.wait {
			r.s.Timeout()
			l.pmtudProbe(now, k, r)
		}
	}
	if ks.pmtudRestart || ks.interval > 0 && now-ks.lastRun >= ks.interval {
		ks.pmtudRestart = false
		ks.lastRun = now
		for _, st := range ks.ep.LinkStatus() {
			if st.Connected {
				l.pmtudStart(now, st.Host, st.Link)
			}
		}
	}
}

// pmtudSettle sets the data MTU to the smallest settled result. ks.mu held.
func (l *Link) pmtudSettle() {
	ks := l.knet
	best := 0
	for _, r := range ks.pmtud {
		if r.done && r.mtu > 0 && (best == 0 || r.mtu < best) {
			best = r.mtu
		}
	}
	if best > 0 && best != ks.ep.DataMTU() {
		l.log.Info("knet PMTUd: data MTU changed", "from", ks.ep.DataMTU(), "to", best)
		ks.ep.SetDataMTU(best)
	}
}

// interfaceMTU is the MTU of the interface that holds a (0: unknown): what the kernel
// refuses a DF datagram above on a directly attached network.
func interfaceMTU(a netip.Addr) int {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0
	}
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if pn, ok := ad.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(pn.IP); ok && ip.Unmap() == a.Unmap() {
					return ifi.MTU
				}
			}
		}
	}
	return 0
}
