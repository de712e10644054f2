package totem

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/knet"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
	"github.com/gototem/gototem/transport"
)

// openKnet opens the knet transport as corosync's totemknet sets libknet up: one totem
// "link" for totemsrp (knet, not rrp, handles the redundancy), and under it one knet link
// per configured link, each to every other node's ringN_addr on port 5405+N, with the
// link's ping timers, pong count, precision and priority, the link_mode for every host, and
// knet crypto keyed with the authkey's bytes.
func (n *Node) openKnet() (*transport.Link, error) {
	t := n.rt.Totem
	kc, err := KnetConfig(n.rt)
	if err != nil {
		return nil, err
	}
	kc.Clock = n.now
	tc := transport.DefaultConfig(transport.Knet)
	tc.NodeID = n.self
	tc.NetMTU = t.NetMTU
	tc.LoopInProcess = true // flush feeds our own broadcasts back into the stack
	tc.Logger = n.log
	tc.Knet = kc
	l, err := transport.Open(tc)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// KnetConfig maps a resolved corosync.conf onto the knet transport's configuration (without
// the clock, which is the caller's). It reads the authkey when crypto is on. `gototem
// config check` calls it too, so that its verdict is what `run` does.
func KnetConfig(rt *config.Runtime) (*transport.KnetConfig, error) {
	t := rt.Totem
	mode, err := knet.ParseLinkMode(t.LinkMode)
	if err != nil {
		return nil, fmt.Errorf("totem: %w", err)
	}
	kc := &transport.KnetConfig{Mode: mode, MTU: int(t.Knet.MTU), PMTUDInterval: t.Knet.PMTUDInterval}
	if t.Crypto.Enabled() || (t.Crypto.Hash != "" && t.Crypto.Hash != config.HashNone) {
		ci, err := knet.ParseCipher(t.Crypto.Cipher)
		if err != nil {
			return nil, fmt.Errorf("totem: %w", err)
		}
		h, err := knet.ParseHash(t.Crypto.Hash)
		if err != nil {
			return nil, fmt.Errorf("totem: %w", err)
		}
		key, err := t.Crypto.ReadKey()
		if err != nil {
			return nil, fmt.Errorf("totem: %w", err)
		}
		c, err := knet.NewCrypto(knet.CryptoConfig{Model: t.Crypto.Model, Cipher: ci, Hash: h, Key: key})
		if err != nil {
			return nil, fmt.Errorf("totem: %w", err)
		}
		kc.Crypto = c
	}
	ifaces := map[int]config.Interface{}
	for _, in := range rt.Interfaces {
		ifaces[in.Link] = in
	}
	for _, ring := range rt.Rings {
		if !ring.BindNetAddr.IsValid() {
			continue
		}
		lc := knet.LinkConfig{PingInterval: ring.KnetPingInterval, PingTimeout: ring.KnetPingTimeout,
			PingPrecision: 2048, PongCount: 2, Priority: 1}
		if in, ok := ifaces[ring.Link]; ok {
			lc.Priority = in.KnetLinkPriority
			if in.KnetPingPrecision != 0 {
				lc.PingPrecision = int(in.KnetPingPrecision)
			}
			if in.KnetPongCount != 0 {
				lc.PongCount = int(in.KnetPongCount)
			}
		}
		kl := transport.KnetLink{Number: uint8(ring.Link), LocalAddr: ring.BindNetAddr, Port: int(ring.McastPort),
			Peers: map[srp.NodeID]netip.Addr{}, Link: lc}
		for _, node := range rt.Nodes {
			if a := node.IPs[ring.Link]; a.IsValid() && node.NodeID != rt.NodeID {
				kl.Peers[srp.NodeID(node.NodeID)] = a
			}
		}
		kc.Links = append(kc.Links, kl)
	}
	if len(kc.Links) == 0 {
		return nil, fmt.Errorf("totem: the configuration gives this node no knet link")
	}
	return kc, nil
}

// knetHeartbeat drives the knet transport's heartbeat (pings, pong timeouts) at the times it
// asks for, with the node's clock: the transport never reads the wall clock itself. Its own
// timer rather than the stack's: the heartbeat touches only the transport, never the
// protocol stack, so it needs neither mu nor a flush.
func (n *Node) knetHeartbeat(l *transport.Link) {
	defer n.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		now := n.now()
		if now >= l.KnetNextTick() {
			for _, ev := range l.KnetTick(now) {
				n.log.Info("knet link", "host", ev.Host, "link", ev.Link, "up", ev.Up, "reachable", ev.Reachable)
			}
		}
		t.Reset(max(l.KnetNextTick()-n.now(), time.Millisecond))
	}
}

// knetLinkStatus is Status.Links for knet: one entry per knet link (totemsrp sees one
// transport link), each with every peer's connected state.
func knetLinkStatus(rt *config.Runtime, st []knet.LinkStatus, mtu int) []LinkStatus {
	var out []LinkStatus
	for _, ring := range rt.Rings {
		ls := LinkStatus{Link: ring.Link, LocalAddr: ring.BindNetAddr.String(), Peers: map[NodeID]bool{}, MTU: mtu}
		up := 0
		for _, node := range rt.Nodes {
			if node.IPs[ring.Link].IsValid() && node.NodeID != rt.NodeID {
				ls.Peers[NodeID(node.NodeID)] = false
			}
		}
		for _, s := range st {
			if int(s.Link) == ring.Link {
				ls.Peers[NodeID(s.Host)] = s.Connected
				if s.Connected {
					up++
				}
			}
		}
		ls.Faulty = up == 0 && len(ls.Peers) > 0
		ls.Text = fmt.Sprintf("link %d: %d of %d peers connected", ring.Link, up, len(ls.Peers))
		out = append(out, ls)
	}
	return out
}

// knetCryptoReload is the crypto part of a reload on a knet node (mu held), after the rest
// applied: when the crypto configuration the new file gives (cipher, hash, model, or the
// authkey's bytes, re-read as corosync re-reads them on every reload) differs from the one
// this node runs or is moving to, it is staged beside the running one and this node's
// CRYPTO_RECONFIG(ACTIVATE) goes out SAFE (cfg.c). next is that configuration, from
// knetCryptoNext.
func (n *Node) knetCryptoReload(next *knet.Crypto) {
	l := n.links[0]
	if sameKnetCrypto(l.KnetCryptoTarget(), next) {
		return
	}
	idx, err := l.KnetCryptoStage(next)
	if err != nil {
		n.log.Error("knet crypto reconfiguration failed", "err", err)
		return
	}
	model, ci, h := "none", knet.CipherNone, knet.HashNone
	if next != nil {
		c := next.Config()
		model, ci, h = c.Model, c.Cipher, c.Hash
	}
	n.log.Info(fmt.Sprintf("kronosnet crypto reconfigured on index %d: %s/%s/%s", idx, model, ci, h), SubsysKey, "KNET")
	if err := n.st.CfgCryptoReconfig(n.now(), stack.CryptoPhaseActivate); err != nil {
		n.log.Error("knet crypto reconfiguration: cannot send phase ACTIVATE", "err", err)
	}
}

// knetCryptoNext is the knet crypto configuration rt gives (nil: none), with its key read;
// nil and no error for other transports. An error refuses the reload, as corosync refuses
// one whose crypto configuration is not valid.
func knetCryptoNext(rt *config.Runtime) (*knet.Crypto, error) {
	if rt.Totem.Transport != config.TransportKnet {
		return nil, nil
	}
	kc, err := KnetConfig(rt)
	if err != nil {
		return nil, err
	}
	return kc.Crypto, nil
}

// knetCryptoPhases takes the phases observe collected (mu held, after the stack's Advance)
// and reports whether there were any.
func (n *Node) knetCryptoPhases() bool {
	if len(n.knetPhases) == 0 {
		return false
	}
	for _, p := range n.knetPhases {
		n.knetCryptoPhase(p)
	}
	n.knetPhases = n.knetPhases[:0]
	return true
}

// knetCryptoPhase takes this node's own CRYPTO_RECONFIG phase come back SAFE (mu held):
// ACTIVATE seals with the new configuration and sends CLEANUP; CLEANUP drops the old one.
func (n *Node) knetCryptoPhase(phase int) {
	if len(n.links) == 0 || n.links[0].KnetLinks() == nil {
		return
	}
	l := n.links[0]
	n.log.Debug(fmt.Sprintf("Crypto reconfiguration phase %d", phase), SubsysKey, "CFG")
	switch phase {
	case stack.CryptoPhaseActivate:
		if err := l.KnetCryptoActivate(); err != nil {
			n.log.Error("knet crypto reconfiguration: activate", "err", err)
		}
		if err := n.st.CfgCryptoReconfig(n.now(), stack.CryptoPhaseCleanup); err != nil {
			n.log.Error("knet crypto reconfiguration: cannot send phase CLEANUP", "err", err)
		}
	case stack.CryptoPhaseCleanup:
		l.KnetCryptoCleanup()
	}
}

// sameKnetCrypto reports whether a and b seal alike (nil: none).
func sameKnetCrypto(a, b *knet.Crypto) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, y := a.Config(), b.Config()
	return x.Model == y.Model && x.Cipher == y.Cipher && x.Hash == y.Hash && string(x.Key) == string(y.Key)
}
