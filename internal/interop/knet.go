package interop

import (
	"fmt"
	"os"
	"path/filepath"
)

// KnetOptions are the knet settings of a cluster (Options.Transport "knet").
type KnetOptions struct {
	// LinkMode is totem.link_mode (default: not written, corosync's passive).
	LinkMode string
	// Cipher and Hash are crypto_cipher and crypto_hash (default none/none).
	Cipher, Hash string
	// Key is the authkey every node reads (written 0400 into the cluster directory);
	// required with a cipher or hash. KeyOf, when set, gives node id its own key instead
	// (a node with a wrong key).
	Key   []byte
	KeyOf func(id int) []byte
	// LinkExtra lines go into every interface section (one per link), e.g.
	// "knet_ping_interval: 200".
	LinkExtra []string
}

func (o KnetOptions) crypto() bool {
	return (o.Cipher != "" && o.Cipher != "none") || (o.Hash != "" && o.Hash != "none")
}

// keyPath is node id's authkey.
func (c *Cluster) keyPath(id int) string {
	return filepath.Join(c.nodes[id-1].Dir, "authkey")
}

// writeKnetKey writes every node's authkey (knet with crypto only).
func (c *Cluster) writeKnetKey() error {
	k := c.opts.Knet
	if c.opts.Transport != "knet" || !k.crypto() {
		return nil
	}
	for _, n := range c.nodes {
		key := k.Key
		if k.KeyOf != nil {
			key = k.KeyOf(n.ID)
		}
		if len(key) == 0 {
			return fmt.Errorf("interop: knet crypto %s/%s needs Options.Knet.Key", k.Cipher, k.Hash)
		}
		if err := os.WriteFile(c.keyPath(n.ID), key, 0o400); err != nil {
			return fmt.Errorf("interop: %v", err)
		}
	}
	return nil
}

// knetTotem writes the totem keys of a knet cluster: crypto, link_mode, and one interface
// section per link.
func (c *Cluster) knetTotem(id int, p func(format string, args ...any)) {
	k := c.opts.Knet
	cipher, hash := k.Cipher, k.Hash
	if cipher == "" {
		cipher = "none"
	}
	if hash == "" {
		hash = "none"
	}
	p("    crypto_cipher: %s", cipher)
	p("    crypto_hash: %s", hash)
	if k.crypto() {
		// Each node reads its own copy (KeyOf may give one node another key).
		p("    keyfile: %s", c.keyPath(id))
	}
	if k.LinkMode != "" {
		p("    link_mode: %s", k.LinkMode)
	}
	for r := 0; r < max(c.opts.Rings, 1); r++ {
		if len(k.LinkExtra) == 0 && r == 0 {
			continue
		}
		p("    interface {")
		p("        linknumber: %d", r)
		for _, l := range k.LinkExtra {
			p("        %s", l)
		}
		p("    }")
	}
}
