package config

// The totem section: settings, crypto, interfaces and links, and the derived protocol
// timers, as corosync's exec/totemconfig.c reads and validates them.

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gototem/gototem/srp"
)

var totemIgnored = map[string]string{
	"vsftype": "the virtual synchrony filter was removed in corosync 2",
	"threads": "corosync 3 and gototem do not use encryption threads",
}

// yesNoWarn reads a yes/no key that corosync compares with "yes" (or "no") only, silently
// treating anything else as the default: gototem does the same but warns.
func (c *Config) yesNoWarn(d *diag, key string, def bool) bool {
	v, ok := c.keys.str(key)
	switch {
	case !ok:
		return def
	case v == "yes":
		return true
	case v == "no":
		return false
	}
	word := map[bool]string{true: "yes", false: "no"}[def]
	d.warnf(c.keys.line(key), "%s %q is neither yes nor no; corosync silently uses %s", key, v, word)
	return def
}

func (c *Config) readTotem(d *diag) {
	k := c.keys
	t := &c.Totem
	if _, ok := c.sections["totem"]; !ok {
		d.errorf(0, "no totem section (corosync: This totem parser can only parse version 2 configurations.)")
	}
	if v, ok := k.uint("totem.version"); !ok || v != 2 {
		d.errorf(c.lineOr("totem.version", "totem"), "This totem parser can only parse version 2 configurations. (totem.version must be 2)")
	} else {
		t.Version = 2
	}
	t.ClusterName, _ = k.str("totem.cluster_name")
	if v, ok := k.uint("totem.config_version"); ok {
		t.ConfigVersion = v
	}

	// corosync 3 defaults to knet; a file without transport and without a nodelist is a
	// 2.x multicast file (knet needs a nodelist), so gototem keeps 2.x's udp default.
	tr, ok := k.str("totem.transport")
	switch {
	case ok && (tr == "udp" || tr == "udpu" || tr == "knet"):
		t.Transport = Transport(tr)
	case ok:
		d.errorf(k.line("totem.transport"), "Invalid transport type. Should be udpu, udp or knet (got %q)", tr)
		t.Transport = TransportKnet
	case len(c.Nodes) == 0:
		t.Transport = TransportUDP
		d.warnf(c.sectionLine("totem"), "totem.transport is not set and there is no nodelist: running as udp (multicast), the corosync 2 default; corosync 3 would choose knet and require a nodelist")
	default:
		t.Transport = TransportKnet
	}

	t.LinkMode = "passive"
	if v, ok := k.str("totem.link_mode"); ok {
		switch {
		case len(v) >= 64:
			d.errorf(k.line("totem.link_mode"), "totem.link_mode is too long")
		case v == "active" || v == "passive" || v == "rr":
			t.LinkMode = v
		default:
			d.errorf(k.line("totem.link_mode"), "The Knet link mode %q specified is invalid. It must be active, passive or rr.", v)
		}
	}
	t.RRPMode = c.enum(d, "totem.rrp_mode", "", []string{"none", "active", "passive"},
		"Invalid rrp_mode. Should be none, active or passive")

	def := "ipv6-4"
	if t.Transport == TransportUDP {
		def = "ipv4"
	}
	t.IPVersion = c.enum(d, "totem.ip_version", def, []string{"ipv4", "ipv6", "ipv4-6", "ipv6-4"}, "Invalid ip_version type")
	if v, ok := k.str("totem.ip_dscp"); ok {
		if n, ok := parseDSCP(v); ok {
			t.IPDSCP = n
		} else {
			d.errorf(k.line("totem.ip_dscp"), `Value of key "totem.ip_dscp" is expected to be number (0..63) or symbolical dscp value, but %q was given`, v)
		}
	}
	if v, ok := k.uint("totem.nodeid"); ok {
		if len(c.Nodes) > 0 {
			d.warnf(k.line("totem.nodeid"), "nodeid in totem section is deprecated and ignored. The value set in nodelist has higher priority.")
		} else {
			t.NodeID = uint32(v)
		}
	}
	t.ClearNodeHighBit = c.yesNoWarn(d, "totem.clear_node_high_bit", false)
	if v, ok := k.uint("totem.threads"); ok {
		t.Threads = uint32(v)
	}
	for _, key := range []string{"threads", "vsftype"} {
		if k.has("totem." + key) {
			d.warnf(k.line("totem."+key), "totem.%s is ignored: %s", key, totemIgnored[key])
		}
	}

	t.NetMTU = srp.DefaultConfig(0, 2).NetMTU // 1500
	if t.Transport == TransportKnet {
		t.NetMTU = 65536
	}
	if v, ok := k.uint("totem.netmtu"); ok && v > 0 {
		t.NetMTU = int(v)
		if v < 576 {
			d.warnf(k.line("totem.netmtu"), "netmtu %d is below the IPv4 minimum datagram size 576; totem packets will hardly fit", v)
		}
	}
	c.readCrypto(d)
	if len(c.Nodes) == 0 && c.sectionLine("totem") > 0 {
		// A file without a nodelist was written for corosync 1.x/2.x, whose defaults differ
		// from 3.x's in ways that change behaviour silently.
		if !k.has("totem.secauth") && !k.has("totem.crypto_cipher") {
			d.warnf(c.sectionLine("totem"), "secauth is not set: corosync 1.x/2.x defaulted to on, corosync 3 and gototem to off (no encryption)")
		}
		if !k.has("totem.token") {
			d.warnf(c.sectionLine("totem"), "token is not set: corosync 1.x/2.x defaulted to 1000 ms, corosync 3 and gototem to 3000 ms; all members need the same value")
		}
	}

	t.BlockUnlistedIPs = c.yesNoWarn(d, "totem.block_unlisted_ips", true)
	t.CancelTokenHoldOnRetransmit = c.yesNoWarn(d, "totem.cancel_token_hold_on_retransmit", false)

	t.Knet.PMTUDInterval = 30 * time.Second
	if v, ok := k.uint("totem.knet_pmtud_interval"); ok && v > 0 {
		t.Knet.PMTUDInterval = time.Duration(v) * time.Second
	}
	if v, ok := k.uint("totem.knet_mtu"); ok {
		t.Knet.MTU = uint32(v)
	}
	t.Knet.CompressionModel = c.enum(d, "totem.knet_compression_model", "none",
		[]string{"none", "zlib", "lz4", "lz4hc", "lzo2", "lzma", "bzip2", "zstd"},
		"Invalid compression model. Should be none, zlib, lz4, lz4hc, lzo2, lzma, bzip2 or zstd")
	if v, ok := k.uint("totem.knet_compression_threshold"); ok {
		t.Knet.CompressionThreshold = uint32(v)
	}
	if v, ok := k.int32("totem.knet_compression_level"); ok {
		t.Knet.CompressionLevel = v
	}
	if t.Transport != TransportKnet {
		for _, key := range k.under("totem.knet_") {
			d.warnf(k.line(key), "%s only applies to the knet transport; ignored with %s", key, t.Transport)
		}
	}
}

// parseDSCP accepts 3.1.10's ip_dscp forms: 0..63 (decimal, 0x hex, 0 octal) or a name.
func parseDSCP(v string) (uint8, bool) {
	names := map[string]uint8{"ef": 46, "af11": 10, "af12": 12, "af13": 14, "af21": 18, "af22": 20,
		"af23": 22, "af31": 26, "af32": 28, "af33": 30, "af41": 34, "af42": 36, "af43": 38}
	for i := 0; i < 8; i++ {
		names["cs"+strconv.Itoa(i)] = uint8(i * 8)
	}
	if n, ok := names[strings.ToLower(v)]; ok {
		return n, true
	}
	n, err := strconv.ParseUint(v, 0, 8)
	if err != nil || n > 63 {
		return 0, false
	}
	return uint8(n), true
}

func (c *Config) readCrypto(d *diag) {
	k, t := c.keys, &c.Totem
	cr := &t.Crypto
	cr.Model = c.enum(d, "totem.crypto_model", "nss", []string{"nss", "openssl", "gcrypt"},
		"Invalid crypto model. Should be nss, openssl or gcrypt")
	secauth := false
	if v, ok := k.str("totem.secauth"); ok {
		switch v {
		case "on":
			secauth = true
		case "off":
		default:
			d.warnf(k.line("totem.secauth"), "totem.secauth %q is neither on nor off; corosync treats it as off", v)
		}
	}
	cr.Cipher, cr.Hash = CipherNone, HashNone
	if secauth {
		// secauth: on selects corosync 3's pair unless the keys say otherwise.
		cr.Cipher, cr.Hash = CipherAES256, "sha256"
	}
	ciphers, cipherMsg := []string{"none", "aes256", "aes192", "aes128"}, "Invalid cipher type. Should be none, aes256, aes192 or aes128"
	if t.Transport != TransportKnet {
		// ChaCha20-Poly1305 is gototem's option for udp/udpu, for CPUs without AES instructions.
		ciphers, cipherMsg = append(ciphers, "chacha20"), cipherMsg+" (or chacha20 on udp/udpu)"
	}
	cr.Cipher = c.enum(d, "totem.crypto_cipher", cr.Cipher, ciphers, cipherMsg)
	cr.Hash = c.enum(d, "totem.crypto_hash", cr.Hash,
		[]string{"none", "md5", "sha1", "sha256", "sha384", "sha512"},
		"Invalid hash type. Should be none, md5, sha1, sha256, sha384 or sha512")
	cr.Keyfile = k.strDefault("totem.keyfile", DefaultKeyfile)
	cr.Key, _ = k.str("totem.key")
	line := c.lineOr("totem.crypto_cipher", "totem")
	if !k.has("totem.crypto_cipher") {
		line = c.lineOr("totem.secauth", "totem")
	}
	if cr.Cipher != CipherNone && cr.Hash == HashNone {
		d.errorf(line, "crypto_cipher requires crypto_hash with value other than none")
	}
	if t.Transport == TransportKnet {
		return
	}
	// corosync 3 refuses crypto on udp/udpu ("crypto_cipher & crypto_hash are only valid
	// for the Knet transport."); gototem's transport encrypts them itself with AES-GCM of
	// the configured key size, whose tag also authenticates, so the hash only has to be
	// set (as corosync demands) and authentication without a cipher has no mode.
	switch {
	case cr.Cipher == CipherNone && cr.Hash != HashNone:
		d.errorf(c.lineOr("totem.crypto_hash", "totem"), "crypto_hash %s without a cipher (authentication only) is not supported by gototem on udp/udpu; set crypto_cipher too or crypto_hash: none", cr.Hash)
	case cr.Enabled():
		d.warnf(line, "encryption on %s (%s) is a gototem extension: corosync 3 rejects crypto on udp/udpu (\"crypto_cipher & crypto_hash are only valid for the Knet transport.\") and corosync 2 uses another format, so only gototem nodes can be members", t.Transport, cr.Cipher)
	}
	if k.has("totem.crypto_model") {
		d.warnf(k.line("totem.crypto_model"), "totem.crypto_model only applies to knet; gototem uses Go's crypto on %s", t.Transport)
	}
}

// readInterfaces types the interface blocks; link numbers come from the parser.
func (c *Config) readInterfaces(d *diag) {
	k, t := c.keys, &c.Totem
	links, bad := map[int]bool{}, map[string]bool{}
	for key := range k {
		rest, ok := strings.CutPrefix(key, "totem.interface.")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if !isDigits(num) {
			continue
		}
		// Only the parser's re-homing writes these paths, with a checked link number, but
		// a section literally named "interface.9" produces them too.
		if n, err := strconv.Atoi(num); err == nil && n < MaxLinks {
			links[n] = true
		} else if !bad[num] {
			bad[num] = true
			d.errorf(k.line(key), "interface ring number %s is bigger than allowed maximum %d", num, MaxLinks-1)
		}
	}
	var sorted []int
	for l := range links {
		sorted = append(sorted, l)
	}
	sort.Ints(sorted)
	for _, l := range sorted {
		base := "totem.interface." + strconv.Itoa(l)
		in := Interface{Link: l, Line: c.sectionLine(base), TTL: 1, KnetLinkPriority: 1, KnetPingPrecision: 2048, KnetPongCount: 2}
		in.BindNetAddr, _ = k.str(base + ".bindnetaddr")
		in.McastAddr, _ = k.str(base + ".mcastaddr")
		if v, ok := k.str(base + ".broadcast"); ok {
			switch v {
			case "yes":
				in.Broadcast = true
			case "no":
			default:
				d.warnf(k.line(base+".broadcast"), "%s.broadcast %q is not yes; treated as no", base, v)
			}
		}
		if v, ok := k.uint(base + ".mcastport"); ok {
			in.McastPort = uint16(v)
			if v == 0 {
				d.errorf(k.line(base+".mcastport"), "No multicast port specified for interface %d (mcastport is 0)", l)
			}
		}
		if in.McastPort == 0 {
			in.McastPort = uint16(5405 + l)
			if in.Broadcast {
				in.McastPort = uint16(5405 + 2*l)
			}
		}
		if v, ok := k.uint(base + ".ttl"); ok {
			in.TTL = uint8(v)
			if v != 1 && t.Transport != TransportUDP {
				d.errorf(k.line(base+".ttl"), "Can only set ttl on multicast transport types for interface %d", l)
			}
		}
		if v, ok := k.uint(base + ".knet_link_priority"); ok {
			in.KnetLinkPriority = uint8(v)
			if v != 1 && t.Transport != TransportKnet {
				d.errorf(k.line(base+".knet_link_priority"), "Can only set link priority on knet transport type for interface %d", l)
			}
		}
		if v, ok := k.uint(base + ".knet_ping_interval"); ok {
			in.KnetPingInterval = time.Duration(v) * time.Millisecond
		}
		if v, ok := k.uint(base + ".knet_ping_timeout"); ok {
			in.KnetPingTimeout = time.Duration(v) * time.Millisecond
		}
		if v, ok := k.uint(base + ".knet_ping_precision"); ok {
			in.KnetPingPrecision = uint32(v)
		}
		if v, ok := k.uint(base + ".knet_pong_count"); ok {
			in.KnetPongCount = uint32(v)
		}
		in.KnetTransport = c.enum(d, base+".knet_transport", "udp", []string{"udp", "sctp"},
			"Unrecognised knet_transport. expected 'udp' or 'sctp'")
		if in.KnetTransport == "sctp" {
			d.warnf(k.line(base+".knet_transport"), "knet_transport sctp is deprecated (corosync 3.1.10) and refused where libknet lacks SCTP")
		}
		// The parser numbers members 0, 1, 2 …; numeric order is file order.
		for i := 0; ; i++ {
			v, ok := k.str(base + ".member." + strconv.Itoa(i))
			if !ok {
				break
			}
			in.Members = append(in.Members, v)
		}
		if len(in.Members) > 0 {
			first := k.line(base + ".member.0")
			if len(c.Nodes) > 0 {
				d.warnf(first, "member section is used together with nodelist. Members ignored.")
			} else {
				d.warnf(first, "member section is deprecated. Please migrate config file to nodelist.")
			}
		}
		if in.BindNetAddr != "" && len(c.Nodes) > 0 {
			d.warnf(k.line(base+".bindnetaddr"), "interface section bindnetaddr is used together with nodelist. Nodelist one is going to be used.")
		}
		c.Interfaces = append(c.Interfaces, in)
	}
	// 1.x/2.x udpu without a nodelist listed the members per interface; they become nodes.
	if len(c.Nodes) == 0 {
		for _, in := range c.Interfaces {
			for i, m := range in.Members {
				for len(c.Nodes) <= i {
					c.Nodes = append(c.Nodes, Node{Pos: len(c.Nodes), QuorumVotes: 1, FromMembers: true, Line: in.Line})
				}
				c.Nodes[i].Addrs[in.Link] = m
			}
		}
	}
	c.checkLinks(d)
}

// checkLinks applies the per-transport link rules. corosync 3 allows several links only
// on knet; gototem runs up to two rings on udp/udpu as corosync 2's redundant ring did.
func (c *Config) checkLinks(d *diag) {
	t := &c.Totem
	links := map[int]int{} // link -> first line it appears
	for _, in := range c.Interfaces {
		links[in.Link] = in.Line
	}
	for _, n := range c.Nodes {
		for _, l := range n.Links() {
			if _, ok := links[l]; !ok {
				links[l] = c.lineOr("nodelist.node."+strconv.Itoa(n.Pos)+".ring"+strconv.Itoa(l)+"_addr", "nodelist")
			}
		}
	}
	if len(links) == 0 {
		d.errorf(c.sectionLine("totem"), "No interfaces defined (no interface section and no nodelist)")
		return
	}
	if _, ok := links[0]; !ok {
		d.errorf(c.sectionLine("totem"), "No interface 0 defined (links present, but not link 0)")
	}
	count := len(links)
	nodelist := false
	for _, n := range c.Nodes {
		nodelist = nodelist || !n.FromMembers
	}
	if nodelist {
		for _, in := range c.Interfaces {
			used := false
			for _, n := range c.Nodes {
				used = used || n.Addrs[in.Link] != ""
			}
			if used {
				continue
			}
			if t.Transport == TransportKnet {
				d.warnf(in.Line, "interface section for link %d, but no node has a ring%d_addr: the section is ignored", in.Link, in.Link)
			} else {
				d.errorf(in.Line, "interface section for link %d, but no node has a ring%d_addr, so ring %d would have no members", in.Link, in.Link, in.Link)
			}
		}
	}
	rrpLine := c.lineOr("totem.rrp_mode", "totem")
	if t.Transport == TransportKnet {
		if t.RRPMode != "" {
			d.warnf(rrpLine, "totem.rrp_mode is ignored by corosync 3 (knet uses link_mode)")
		}
		t.RRPMode = "none"
		c.checkKnet(d)
		return
	}
	switch {
	case count > 2:
		d.errorf(c.sectionLine("totem"), "%d is too many configured interfaces for non-Knet transport (gototem runs at most 2 rings on %s)", count, t.Transport)
	case count == 2:
		if _, ok := links[1]; !ok {
			d.errorf(c.sectionLine("totem"), "a redundant ring on %s uses links 0 and 1", t.Transport)
		}
		switch t.RRPMode {
		case "active", "passive":
		case "":
			if c.keys.has("totem.link_mode") && t.LinkMode != "rr" {
				t.RRPMode = t.LinkMode
				d.warnf(c.keys.line("totem.link_mode"), "two links on %s: gototem runs a redundant ring in %s mode from link_mode (corosync 3 allows only one link on %s)", t.Transport, t.RRPMode, t.Transport)
			} else {
				d.errorf(c.sectionLine("totem"), "2 interfaces are configured on %s but neither rrp_mode (active or passive) nor link_mode (active or passive) says how to use them (corosync 3: 2 is too many configured interfaces for non-Knet transport.)", t.Transport)
			}
		default:
			d.errorf(rrpLine, "rrp_mode none with 2 interfaces: set rrp_mode to active or passive, or remove the second interface")
		}
		if t.RRPMode == "active" || t.RRPMode == "passive" {
			d.warnf(rrpLine, "redundant ring (rrp_mode %s) on %s is run by gototem as corosync 2 did; corosync 3 does not support it, so corosync 3 nodes cannot be members", t.RRPMode, t.Transport)
		}
	default:
		if t.RRPMode == "active" || t.RRPMode == "passive" {
			d.warnf(rrpLine, "rrp_mode %s with a single interface: there is no second ring, so the mode has no effect", t.RRPMode)
		}
		t.RRPMode = "none"
	}
	if t.RRPMode == "" {
		t.RRPMode = "none"
	}
}

// Protocol minimums from corosync's totemconfig with HZ = 100: three ticks, and the hold
// formula applied to that (0.8·30 − 10).
const (
	minimumTimeout     = 30
	minimumTimeoutHold = 14
)

// deriveTimers computes the effective totem timers as corosync's totem_volatile_config_read
// does, through srp's derivation and defaults (srp.Config.Derive and srp.DefaultConfig: the
// one copy, which the simulator and the tests use too), and validates them as
// totem_volatile_config_validate does.
func (c *Config) deriveTimers(d *diag) {
	k, t := c.keys, &c.Totem
	get := func(key string, def uint32) uint32 { // missing or 0 means default
		if v, ok := k.uint("totem." + key); ok && v != 0 {
			return uint32(v)
		}
		return def
	}
	getZero := func(key string, def uint32) uint32 { // 0 is a real value
		if v, ok := k.uint("totem." + key); ok {
			return uint32(v)
		}
		return def
	}
	ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	in := func(v time.Duration) uint32 { return uint32(v / time.Millisecond) }
	in32 := func(v int) uint32 { return uint32(v) }

	def := srp.DefaultConfig(0, 2) // corosync's defaults; a two-node token is the configured one
	set := srp.Config{
		Token:                           ms(get("token", in(def.Token))),
		TokenRetransmit:                 ms(get("token_retransmit", 0)), // 0: derived
		Hold:                            ms(get("hold", 0)),
		Consensus:                       ms(get("consensus", 0)),
		Join:                            ms(get("join", in(def.Join))),
		SendJoin:                        ms(getZero("send_join", in(def.SendJoin))),
		Merge:                           ms(get("merge", in(def.Merge))),
		Downcheck:                       ms(get("downcheck", in(def.Downcheck))),
		TokenRetransmitsBeforeLossConst: int(get("token_retransmits_before_loss_const", in32(def.TokenRetransmitsBeforeLossConst))),
		FailRecvConst:                   int(get("fail_recv_const", in32(def.FailRecvConst))),
		SeqnoUnchangedConst:             int(get("seqno_unchanged_const", in32(def.SeqnoUnchangedConst))),
		MissCountConst:                  int(get("miss_count_const", in32(def.MissCountConst))),
		WindowSize:                      int(get("window_size", in32(def.WindowSize))),
		MaxMessages:                     int(get("max_messages", in32(def.MaxMessages))),
	}
	coefficient := ms(getZero("token_coefficient", in(srp.DefaultTokenCoefficient)))
	eff := set.Derive(c.link0Members(), coefficient)
	base, token, coeff := in(set.Token), in(eff.Token), in(coefficient)
	explicitRetransmit := set.TokenRetransmit != 0
	retransmit, hold, consensus, join := in(eff.TokenRetransmit), in(eff.Hold), in(eff.Consensus), in(eff.Join)
	warning := getZero("token_warning", in32(def.TokenWarning))
	maxDelay := get("max_network_delay", 50)

	t.TokenBase, t.Token, t.TokenCoefficient = ms(base), ms(token), ms(coeff)
	t.TokenWarning = int(warning)
	t.TokenRetransmitsBeforeLossConst = eff.TokenRetransmitsBeforeLossConst
	t.TokenRetransmit, t.Hold, t.Join, t.Consensus = ms(retransmit), ms(hold), ms(join), ms(consensus)
	t.Merge, t.Downcheck = eff.Merge, eff.Downcheck
	t.SendJoin = eff.SendJoin
	t.MaxNetworkDelay = ms(maxDelay)
	t.FailRecvConst = eff.FailRecvConst
	t.SeqnoUnchangedConst = eff.SeqnoUnchangedConst
	t.MissCountConst = eff.MissCountConst
	t.WindowSize = eff.WindowSize
	t.MaxMessages = eff.MaxMessages
	t.HeartbeatFailuresAllowed = int(getZero("heartbeat_failures_allowed", 0))

	line := func(key string) int { return c.lineOr("totem."+key, "totem") }
	if maxDelay < minimumTimeout {
		d.errorf(line("max_network_delay"), "The max_network_delay parameter (%d ms) may not be less than (%d ms).", maxDelay, minimumTimeout)
	}
	if token < minimumTimeout {
		d.errorf(line("token"), "The token timeout parameter (%d ms) may not be less than (%d ms).", token, minimumTimeout)
	}
	if warning > 100 {
		d.errorf(line("token_warning"), "The token warning parameter (%d%%) must be between 0 (disabled) and 100.", warning)
	}
	if retransmit < minimumTimeout {
		if explicitRetransmit {
			d.errorf(line("token_retransmit"), "The token retransmit timeout parameter (%d ms) may not be less than (%d ms).", retransmit, minimumTimeout)
		} else {
			d.errorf(line("token"), "Not appropriate token or token_retransmits_before_loss_const value set (derived token_retransmit %d ms is below %d ms)", retransmit, minimumTimeout)
		}
	}
	if hold < minimumTimeoutHold {
		d.errorf(line("hold"), "The token hold timeout parameter (%d ms) may not be less than (%d ms).", hold, minimumTimeoutHold)
	}
	if join < minimumTimeout {
		d.errorf(line("join"), "The join timeout parameter (%d ms) may not be less than (%d ms).", join, minimumTimeout)
	}
	if consensus < minimumTimeout {
		d.errorf(line("consensus"), "The consensus timeout parameter (%d ms) may not be less than (%d ms).", consensus, minimumTimeout)
	} else if consensus < join {
		d.errorf(line("consensus"), "The consensus timeout parameter (%d ms) may not be less than join timeout (%d ms).", consensus, join)
	}
	if v := in(eff.Merge); v < minimumTimeout {
		d.errorf(line("merge"), "The merge timeout parameter (%d ms) may not be less than (%d ms).", v, minimumTimeout)
	}
	if v := in(eff.Downcheck); v < minimumTimeout {
		d.errorf(line("downcheck"), "The downcheck timeout parameter (%d ms) may not be less than (%d ms).", v, minimumTimeout)
	}

	// What corosync accepts but is almost certainly wrong: warn.
	derived := set
	derived.Consensus = 0
	if least := in(derived.Derive(c.link0Members(), coefficient).Consensus); consensus < least && k.has("totem.consensus") {
		d.warnf(line("consensus"), "consensus %d ms is less than 1.2 × token (%d ms); corosync.conf(5) says it must be at least that, though corosync does not enforce it", consensus, least)
	}
	if retransmit >= token && explicitRetransmit {
		d.warnf(line("token_retransmit"), "token_retransmit %d ms is not below the token timeout %d ms: the token is declared lost before it is ever retransmitted", retransmit, token)
	}
	if hold >= retransmit && k.has("totem.hold") {
		d.warnf(line("hold"), "hold %d ms is not below token_retransmit %d ms", hold, retransmit)
	}
	if t.MaxMessages > t.WindowSize {
		d.warnf(line("max_messages"), "max_messages %d is larger than window_size %d; one node may never send that many per rotation", t.MaxMessages, t.WindowSize)
	}
	if t.WindowSize+t.MaxMessages > 16384 {
		d.errorf(line("window_size"), "window_size + max_messages (%d) exceeds the sort queue of 16384 messages (corosync aborts on an assertion at run time)", t.WindowSize+t.MaxMessages)
	}

	// corosync 2.x's redundant ring timers, kept for gototem's rrp.
	r := &t.RRP
	r.ProblemCountTimeout = ms(get("rrp_problem_count_timeout", 2000))
	r.ProblemCountThreshold = int(get("rrp_problem_count_threshold", 10))
	r.ProblemCountMcastThreshold = int(get("rrp_problem_count_mcast_threshold", uint32(10*r.ProblemCountThreshold)))
	// corosync 2.x derives the token-expired timeout so that threshold consecutive late
	// tokens mark a ring faulty 50 ms before the token timeout would end the ring: active
	// mode holds the token back up to this long while a ring is silent.
	expiredDefault := uint32(10)
	if r.ProblemCountThreshold > 0 && token > 50 {
		expiredDefault = (token - 50) / uint32(r.ProblemCountThreshold)
	}
	r.TokenExpiredTimeout = ms(get("rrp_token_expired_timeout", expiredDefault))
	// The rrp timers matter only to a redundant ring: corosync 3 has none on udp/udpu and does
	// not check them, so a single-ring file with a sub-second token (derived rrp timers below
	// the 30 ms minimum) must not be refused for timers it never runs.
	redundant := t.RRPMode == "active" || t.RRPMode == "passive"
	if redundant && r.ProblemCountThreshold > 0 && token > 50 && uint64(r.ProblemCountThreshold)*uint64(r.TokenExpiredTimeout.Milliseconds()) > uint64(token-50) {
		d.errorf(line("rrp_token_expired_timeout"), "rrp_problem_count_threshold (%d) * rrp_token_expired_timeout (%d ms) must not exceed token - 50 ms (%d ms): the ring would be declared lost before a faulty link is detected", r.ProblemCountThreshold, r.TokenExpiredTimeout.Milliseconds(), token-50)
	}
	r.AutorecoveryCheckTimeout = ms(get("rrp_autorecovery_check_timeout", 1000))
	for _, x := range []struct {
		key string
		v   time.Duration
	}{{"rrp_problem_count_timeout", r.ProblemCountTimeout}, {"rrp_token_expired_timeout", r.TokenExpiredTimeout},
		{"rrp_autorecovery_check_timeout", r.AutorecoveryCheckTimeout}} {
		if redundant && x.v < minimumTimeout*time.Millisecond {
			d.errorf(line(x.key), "The %s parameter (%d ms) may not be less than (%d ms).", x.key, x.v.Milliseconds(), minimumTimeout)
		}
	}
	if t.Transport == TransportKnet {
		for _, key := range k.under("totem.rrp_") {
			if key != "totem.rrp_mode" {
				d.warnf(k.line(key), "%s is a corosync 2 redundant ring key; ignored with knet", key)
			}
		}
	}
}

// link0Members is the node count corosync scales the token by: nodelist entries with a
// ring0_addr.
func (c *Config) link0Members() int {
	n := 0
	for _, node := range c.Nodes {
		if node.Addrs[0] != "" && !node.FromMembers {
			n++
		}
	}
	return n
}
