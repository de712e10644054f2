package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Reload is corosync-cfgtool -R (or SIGHUP) on a running node: next is the re-read file and
// the result is the configuration the node runs from now on, as corosync 3.1.7's cfg reload
// computes it. Keys that cannot change at run time keep their running value (absent keys
// stay absent) and are listed in kept, once each, for the caller to log as corosync does
// ("Modified entry '<key>' in corosync.conf cannot be changed at run-time"): the transport,
// crypto (except on knet: fixedAtRunTime), cluster name, netmtu, ip version, the interface sections, quorum.provider, the
// system section, and votequorum's startup-only options. Everything else (timers, the
// nodelist, logging, votequorum's reloadable options, resources, uidgid) follows the file.
//
// A reload is refused with an error, and nothing changes, when next is not usable or would
// move this node: the local node must keep its node id, and a node present before and
// after must keep its addresses ("To reconfigure an interface it must be deleted and
// recreated" in corosync).
func (rt *Runtime) Reload(next *Config) (*Runtime, []string, error) {
	keys := keyMap{}
	for k, e := range next.keys {
		keys[k] = e
	}
	var kept []string
	for _, k := range unionKeys(rt.keys, next.keys) {
		if !fixedAtRunTime(k, rt.Totem.Transport) {
			continue
		}
		old, had := rt.keys[k]
		nw, has := next.keys[k]
		switch {
		case had && has && old.typ == nw.typ && old.value == nw.value:
		case had:
			keys[k] = old
			kept = append(kept, k)
		default:
			delete(keys, k)
			kept = append(kept, k)
		}
	}
	d := &diag{file: next.File}
	merged := build(d, &parsed{keys: keys, sections: next.sections})
	merged.Legacy = next.Legacy
	if len(d.errs) > 0 {
		return nil, nil, fmt.Errorf("reload: %w", d.errs)
	}
	local := rt.local
	local.Fallback = false
	nrt, _, err := merged.Resolve(local)
	if err != nil {
		return nil, nil, fmt.Errorf("reload: %w", err)
	}
	if nrt.NodeID != rt.NodeID {
		return nil, nil, fmt.Errorf("reload: this node would become node %d (it runs as %d); a node id cannot change at run time", nrt.NodeID, rt.NodeID)
	}
	for _, o := range rt.Nodes {
		for _, n := range nrt.Nodes {
			if n.NodeID == o.NodeID && n.IPs != o.IPs {
				return nil, nil, fmt.Errorf("reload: node %d's addresses changed (%s → %s): to reconfigure an interface it must be deleted and recreated", o.NodeID, ipList(o.IPs), ipList(n.IPs))
			}
		}
	}
	return nrt, kept, nil
}

// fixedAtRunTime is corosync's list of keys a reload leaves alone (cfg.c's reload and the
// keys votequorum marks read-only at startup) on a node running transport. corosync 3.1.7
// built with a libknet that has crypto reconfiguration (Debian's 1.25) changes knet's
// crypto at run time: secauth, crypto_cipher, crypto_hash, crypto_model, keyfile and key
// follow the file there (the knet transport re-keys the ring in phases, see
// transport.Link.KnetCryptoStage). udp and udpu have no such mechanism (corosync 3 has no
// crypto for them at all; gototem's udpu crypto keeps its start-up keys).
func fixedAtRunTime(key string, transport Transport) bool {
	switch key {
	case "totem.secauth", "totem.crypto_hash", "totem.crypto_cipher", "totem.crypto_model",
		"totem.keyfile", "totem.key":
		return transport != TransportKnet
	case "totem.version", "totem.threads", "totem.ip_version",
		"totem.rrp_mode", "totem.netmtu", "totem.transport", "totem.cluster_name",
		"quorum.provider", "quorum.wait_for_all", "quorum.last_man_standing",
		"quorum.last_man_standing_window", "quorum.auto_tie_breaker",
		"quorum.auto_tie_breaker_node", "quorum.allow_downscale", "quorum.expected_votes_tracking":
		return true
	}
	return strings.HasPrefix(key, "system.") || strings.HasPrefix(key, "totem.interface.")
}

func unionKeys(a, b keyMap) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func ipList(ips [MaxLinks]netip.Addr) string {
	var s []string
	for l, a := range ips {
		if a.IsValid() {
			s = append(s, fmt.Sprintf("link %d %s", l, a))
		}
	}
	return strings.Join(s, ", ")
}
