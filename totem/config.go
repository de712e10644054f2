package totem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gototem/gototem/config"
)

// Config is a node's configuration. Build one in code from LANConfig, or read a corosync.conf
// with LoadConfig. Either way it goes through the same parser, validation and derivation that
// corosync.conf files go through (package config): a Config built in code is written out as the
// corosync.conf it stands for and read back, so there is one rule for every default and derived
// timer, whichever way a node is configured.
type Config struct {
	// ClusterName is totem.cluster_name: nodes of one ring must agree on it (udp derives the
	// multicast address from it).
	ClusterName string
	// NodeID is this node: one of Nodes.
	NodeID NodeID
	// Nodes is the nodelist: every node that may be a member, with one address per ring.
	Nodes []NodeConfig
	// Transport is "udpu" (unicast to every node of the nodelist; LANConfig's choice: it needs
	// no multicast routing) or "udp" (IP multicast).
	Transport string
	// Port is the UDP port of ring 0 (corosync's mcastport, 5405); ring 1 uses Port+1.
	Port uint16
	// McastAddr is the multicast group of udp; the zero Addr derives it from ClusterName, as
	// corosync does.
	McastAddr netip.Addr
	// Token is how long a node waits for the token before it declares a failure. Zero takes
	// corosync 3.1's default: 3 s, plus 650 ms per node above two (token_coefficient).
	Token time.Duration
	// Consensus is how long a membership round may take; zero takes 1.2 × the token timeout.
	Consensus time.Duration
	// WindowSize and MaxMessages bound how many messages the ring and one token holder carry
	// per rotation; zero takes corosync's 50 and 17.
	WindowSize, MaxMessages int
	// RRPMode is "active" or "passive" with two addresses per node (a redundant ring); empty
	// for one ring.
	RRPMode string
	// Quorum is votequorum's configuration.
	Quorum QuorumConfig
	// CryptoCipher (aes256, aes192, aes128, chacha20 or empty) and CryptoHash encrypt and
	// authenticate every packet with the key in KeyFile (corosync-keygen's authkey, mode 0400).
	CryptoCipher, CryptoHash, KeyFile string

	file *config.Runtime // set by LoadConfig and FromRuntime: the file is the configuration
}

// NodeConfig is one entry of the nodelist.
type NodeConfig struct {
	ID    NodeID
	Name  string       // optional: the host name corosync matches to find the local node
	Addrs []netip.Addr // one per ring
}

// QuorumConfig is votequorum's configuration. The zero value has votequorum on with its
// defaults: quorum is a majority of the nodelist's votes.
type QuorumConfig struct {
	// Disabled runs without votequorum: the node is always quorate.
	Disabled bool
	// TwoNode lets a two-node cluster keep quorum with one node (and turns WaitForAll on).
	TwoNode bool
	// WaitForAll keeps the cluster inquorate at start until every node has been seen once.
	WaitForAll bool
	// LastManStanding recalculates expected votes downwards after LastManStandingWindow (10 s
	// when zero) of a stable smaller membership.
	LastManStanding       bool
	LastManStandingWindow time.Duration
	// ExpectedVotes overrides the nodelist's sum of votes.
	ExpectedVotes uint32
}

// LANConfig returns a configuration with corosync 3.1's defaults for a local network, over
// udpu: set ClusterName, NodeID and Nodes, and it is complete.
func LANConfig() Config {
	return Config{Transport: "udpu", Port: 5405}
}

// LoadConfig reads a corosync.conf and resolves it for this host, as corosync does when it
// starts: the local node is the nodelist entry whose name is this host's name or whose address
// is one of this host's interface addresses. Warnings (ignored or deprecated keys) come back
// beside the configuration; they never make it fail.
func LoadConfig(path string) (Config, config.Warnings, error) {
	cfg, warns, err := config.Load(path)
	if err != nil {
		return Config{}, warns, err
	}
	rt, more, err := cfg.Resolve(HostLocal())
	if err != nil {
		return Config{}, append(warns, more...), err
	}
	return FromRuntime(rt), append(warns, more...), nil
}

// FromRuntime is the configuration of an already resolved corosync.conf (config.Load, then
// Resolve with the local node of the caller's choosing, as `gototem run --local-addr` does).
// Its fields are filled in for reading; the file, not the fields, configures the node.
func FromRuntime(rt *config.Runtime) Config {
	c := Config{
		ClusterName:  rt.Totem.ClusterName,
		NodeID:       NodeID(rt.NodeID),
		Transport:    string(rt.Totem.Transport),
		Token:        rt.Totem.Token,
		Consensus:    rt.Totem.Consensus,
		RRPMode:      rt.Totem.RRPMode,
		CryptoCipher: rt.Totem.Crypto.Cipher,
		CryptoHash:   rt.Totem.Crypto.Hash,
		KeyFile:      rt.Totem.Crypto.Keyfile,
		file:         rt,
	}
	if len(rt.Rings) > 0 {
		c.Port = rt.Rings[0].McastPort
		c.McastAddr = rt.Rings[0].McastAddr
	}
	for _, n := range rt.Nodes {
		node := NodeConfig{ID: NodeID(n.NodeID), Name: n.Name}
		for _, a := range n.IPs {
			if a.IsValid() {
				node.Addrs = append(node.Addrs, a)
			}
		}
		c.Nodes = append(c.Nodes, node)
	}
	q := rt.Quorum
	c.Quorum = QuorumConfig{Disabled: q.Provider == "", TwoNode: q.TwoNode, WaitForAll: q.WaitForAll,
		LastManStanding: q.LastManStanding, LastManStandingWindow: q.LastManStandingWindow, ExpectedVotes: q.ExpectedVotes}
	return c
}

// Runtime is the resolved configuration the node runs with: the file's, or the corosync.conf
// this Config stands for, parsed, validated and derived as a file would be. Errors name the
// setting (as its corosync.conf key) and what is wrong with it.
func (c Config) Runtime() (*config.Runtime, error) {
	if c.file != nil {
		return c.file, nil
	}
	text, local, err := c.corosyncConf()
	if err != nil {
		return nil, err
	}
	cfg, _, err := config.Parse("totem.Config", strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("totem: invalid Config: %w", err)
	}
	rt, _, err := cfg.Resolve(config.Local{Addrs: config.LocalAddrs(local...)})
	if err != nil {
		return nil, fmt.Errorf("totem: invalid Config: %w", err)
	}
	return rt, nil
}

// CorosyncConf is the corosync.conf this Config stands for: what a real corosync node of the
// same ring would be given.
func (c Config) CorosyncConf() (string, error) {
	if c.file != nil {
		return "", errors.New("totem: a Config read from a file is that file")
	}
	text, _, err := c.corosyncConf()
	return text, err
}

func (c Config) corosyncConf() (string, []netip.Addr, error) {
	if c.ClusterName == "" || strings.ContainsAny(c.ClusterName, " \t\n{}:#") {
		return "", nil, fmt.Errorf("totem: Config.ClusterName %q: want a name without spaces, braces, colons or #", c.ClusterName)
	}
	if c.NodeID == 0 {
		return "", nil, errors.New("totem: Config.NodeID is not set")
	}
	if len(c.Nodes) == 0 {
		return "", nil, errors.New("totem: Config.Nodes is empty")
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("totem {")
	w("\tversion: 2")
	w("\tcluster_name: %s", c.ClusterName)
	if c.Transport != "" {
		w("\ttransport: %s", c.Transport)
	}
	if c.Token > 0 {
		w("\ttoken: %d", c.Token.Milliseconds())
	}
	if c.Consensus > 0 {
		w("\tconsensus: %d", c.Consensus.Milliseconds())
	}
	if c.WindowSize > 0 {
		w("\twindow_size: %d", c.WindowSize)
	}
	if c.MaxMessages > 0 {
		w("\tmax_messages: %d", c.MaxMessages)
	}
	if c.RRPMode != "" {
		w("\trrp_mode: %s", c.RRPMode)
	}
	if c.CryptoCipher != "" {
		w("\tcrypto_cipher: %s", c.CryptoCipher)
		w("\tcrypto_hash: %s", c.CryptoHash)
		if c.KeyFile != "" {
			w("\tkeyfile: %s", c.KeyFile)
		}
	} else {
		w("\tcrypto_cipher: none")
		w("\tcrypto_hash: none")
	}
	rings := 1
	if c.RRPMode != "" {
		rings = 2
	}
	for r := 0; r < rings; r++ {
		if c.Port == 0 && !c.McastAddr.IsValid() {
			break
		}
		w("\tinterface {")
		w("\t\tlinknumber: %d", r)
		if c.Port != 0 {
			w("\t\tmcastport: %d", int(c.Port)+r)
		}
		if r == 0 && c.McastAddr.IsValid() {
			w("\t\tmcastaddr: %s", c.McastAddr)
		}
		w("\t}")
	}
	w("}")
	var local []netip.Addr
	w("nodelist {")
	for _, n := range c.Nodes {
		if n.ID == 0 {
			return "", nil, fmt.Errorf("totem: Config.Nodes: a node has no ID")
		}
		if len(n.Addrs) != rings {
			return "", nil, fmt.Errorf("totem: Config.Nodes: node %d has %d addresses, want %d (one per ring)", n.ID, len(n.Addrs), rings)
		}
		w("\tnode {")
		w("\t\tnodeid: %d", n.ID)
		if n.Name != "" {
			w("\t\tname: %s", n.Name)
		}
		for r, a := range n.Addrs {
			if !a.IsValid() {
				return "", nil, fmt.Errorf("totem: Config.Nodes: node %d: address %d is not set", n.ID, r)
			}
			w("\t\tring%d_addr: %s", r, a)
		}
		w("\t}")
		if n.ID == c.NodeID {
			local = n.Addrs
		}
	}
	w("}")
	if local == nil {
		return "", nil, fmt.Errorf("totem: Config.NodeID %d is not in Config.Nodes", c.NodeID)
	}
	if !c.Quorum.Disabled {
		q := c.Quorum
		w("quorum {")
		w("\tprovider: corosync_votequorum")
		if q.TwoNode {
			w("\ttwo_node: 1")
		}
		if q.WaitForAll {
			w("\twait_for_all: 1")
		}
		if q.LastManStanding {
			w("\tlast_man_standing: 1")
			if q.LastManStandingWindow > 0 {
				w("\tlast_man_standing_window: %d", q.LastManStandingWindow.Milliseconds())
			}
		}
		if q.ExpectedVotes > 0 {
			w("\texpected_votes: %d", q.ExpectedVotes)
		}
		w("}")
	}
	w("logging {")
	w("\tto_stderr: no")
	w("\tto_syslog: no")
	w("}")
	return b.String(), local, nil
}

// HostLocal gathers what corosync looks at to find the local node: the host name and every
// interface address, with a resolver for host names in the nodelist that gives up after a few
// seconds (a dead resolver must not hang a start). It never falls back to another node: a
// process must not guess which node it is.
func HostLocal() config.Local {
	l := config.Local{LookupHost: lookupHost}
	l.Hostname, _ = os.Hostname()
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return l
	}
	for _, a := range ifaddrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, bits := n.Mask.Size()
		ip = ip.Unmap()
		if ip.Is4() && bits == 128 {
			ones -= 96
		}
		l.Addrs = append(l.Addrs, netip.PrefixFrom(ip, ones))
	}
	return l
}

func lookupHost(host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
