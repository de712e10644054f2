package totem

import (
	"fmt"
	"net/netip"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/srp"
)

// Reload applies a re-read configuration to the running node, as corosync applies
// corosync-cfgtool -R on each node: the totem timers, the nodelist (nodes added to or
// removed from a running ring: the transport's member list, who may take part, votequorum's
// expected votes) and votequorum's reloadable options take effect; keys that cannot change
// at run time keep their running value and are returned in kept, for the caller to report
// (see config.Runtime.Reload for the list). cfg is the whole new configuration, from the same
// kind of source as the running one (LoadConfig for a file, or a Config in code).
//
// A reload that would change this node's id or an existing node's addresses, or that does
// not validate, is refused with an error and changes nothing.
func (n *Node) Reload(cfg Config) (kept []string, err error) {
	next, err := cfg.Runtime()
	if err != nil {
		return nil, err
	}
	if derr := n.do(func() { kept, err = n.reloadLocked(next.Config) }); derr != nil {
		return nil, derr
	}
	return kept, err
}

// reloadLocked is Reload with mu held.
func (n *Node) reloadLocked(next *config.Config) ([]string, error) {
	rt, kept, err := n.rt.Reload(next)
	if err != nil {
		return nil, fmt.Errorf("totem: %w", err)
	}
	crypto, err := knetCryptoNext(rt)
	if err != nil {
		return nil, fmt.Errorf("totem: reload: crypto configuration is not valid: %w", err)
	}
	old := n.rt
	n.rt = rt
	sc, err := n.stackConfig()
	if err != nil {
		n.rt = old
		return nil, fmt.Errorf("totem: reload: %w", err)
	}
	// The transport first: a udpu member added needs its send socket before srp may let it
	// in. On a failure the links go back to the running member list.
	for i, l := range n.links {
		if err := l.SetMembers(n.linkMembers(n.rt.Rings[i].Link)); err != nil {
			n.rt = old
			n.restoreMembers(i + 1)
			return nil, fmt.Errorf("totem: reload: link %d: %w", old.Rings[i].Link, err)
		}
	}
	if err := n.st.Reconfigure(n.now(), sc); err != nil {
		// srp refused the timers before changing anything; votequorum keeps its running
		// data on a configuration it cannot use. Either way the ring runs as before.
		n.rt = old
		n.restoreMembers(len(n.links))
		return nil, fmt.Errorf("totem: reload: %w", err)
	}
	if rt.Totem.Transport == config.TransportKnet {
		n.knetCryptoReload(crypto)
	}
	for _, k := range kept {
		n.log.Warn(fmt.Sprintf("Modified entry '%s' in corosync.conf cannot be changed at run-time", k), "subsys", "CFG")
	}
	n.log.Debug("reload: configuration applied", "nodes", len(rt.Nodes), "token", rt.Totem.Token)
	return kept, nil
}

// restoreMembers puts the running member list back on the first k links (a refused reload).
func (n *Node) restoreMembers(k int) {
	for i, l := range n.links[:k] {
		if err := l.SetMembers(n.linkMembers(n.rt.Rings[i].Link)); err != nil {
			n.log.Error("reload: restoring the member list failed", "link", n.rt.Rings[i].Link, "err", err)
		}
	}
}

// linkMembers is the nodelist's addresses on one link of the running configuration.
func (n *Node) linkMembers(link int) map[srp.NodeID]netip.Addr { return membersOn(n.rt, link) }

func membersOn(rt *config.Runtime, link int) map[srp.NodeID]netip.Addr {
	m := map[srp.NodeID]netip.Addr{}
	for _, node := range rt.Nodes {
		if a := node.IPs[link]; a.IsValid() {
			m[srp.NodeID(node.NodeID)] = a
		}
	}
	return m
}
