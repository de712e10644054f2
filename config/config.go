package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxLinks is corosync's link (ring) limit: linknumber and ringX_addr take 0..7.
const MaxLinks = 8

// Transport is totem.transport.
type Transport string

const (
	TransportKnet Transport = "knet" // corosync 3's default (libknet 1.x protocol v1)
	TransportUDPU Transport = "udpu" // unicast to every nodelist member
	TransportUDP  Transport = "udp"  // IP multicast (2.x's default)
)

// Cipher and hash names of totem.crypto_cipher / crypto_hash.
const (
	CipherNone   = "none"
	CipherAES256 = "aes256"
	HashNone     = "none"
)

// Path defaults of corosync 3.1 (totem.keyfile, system.state_dir).
const (
	DefaultKeyfile  = "/etc/corosync/authkey"
	DefaultStateDir = "/var/lib/corosync"
)

// Config is a parsed corosync.conf: every section typed, corosync 3.1's defaults filled
// in, and the totem timers already derived (they depend on the nodelist size only).
// Values that depend on which node this is (node ids, bind addresses) come from Resolve.
type Config struct {
	File       string
	Totem      Totem
	Interfaces []Interface // sorted by Link; the links that have an interface block
	// Nodes is the nodelist in file order. For a 1.x/2.x udpu file without a nodelist the
	// nodes come from the interface member sections (FromMembers is set).
	Nodes     []Node
	Quorum    Quorum
	Logging   Logging
	System    System
	Resources Resources
	Nozzle    Nozzle
	UIDGID    UIDGID
	// Legacy names the top-level sections corosync 3 ignores (amf, aisexec, service, …).
	Legacy []string

	keys     keyMap
	sections map[string]int
}

// Totem holds totem's settings and the effective (derived) protocol timers: what
// corosync publishes under runtime.config.totem.* and what srp, rrp and the transport
// need. Durations are whole milliseconds, as in corosync.
type Totem struct {
	Version       uint32
	ClusterName   string
	ConfigVersion uint64
	Transport     Transport
	// LinkMode is corosync 3's knet link_mode (passive, active, rr).
	LinkMode string
	// RRPMode is the redundant ring mode gototem runs: "none", "active" or "passive". It
	// comes from rrp_mode (2.x) or, with several links and no rrp_mode, from link_mode.
	RRPMode          string
	IPVersion        string // ipv4, ipv6, ipv4-6, ipv6-4
	IPDSCP           uint8
	ClearNodeHighBit bool
	Threads          uint32
	NetMTU           int
	Crypto           Crypto
	// NodeID is the 2.x totem.nodeid, used only when there is no nodelist (3.x ignores it).
	NodeID uint32

	// Token is the effective token timeout: token + (N−2)·token_coefficient for a link-0
	// nodelist of N > 2 nodes. TokenBase is the configured (or default) token.
	Token                           time.Duration
	TokenBase                       time.Duration
	TokenCoefficient                time.Duration
	TokenWarning                    int // percent of Token, 0 = off
	TokenRetransmit                 time.Duration
	Hold                            time.Duration
	Join                            time.Duration
	SendJoin                        time.Duration
	Consensus                       time.Duration
	Merge                           time.Duration
	Downcheck                       time.Duration
	MaxNetworkDelay                 time.Duration
	TokenRetransmitsBeforeLossConst int
	FailRecvConst                   int
	SeqnoUnchangedConst             int
	MissCountConst                  int
	WindowSize                      int
	MaxMessages                     int
	HeartbeatFailuresAllowed        int
	BlockUnlistedIPs                bool
	CancelTokenHoldOnRetransmit     bool
	// AcceleratedWindow > 0: gototem's accelerated ring (gototem.go), that many of a visit's
	// messages after the token; 0 the standard ring.
	AcceleratedWindow int
	// GototemRing: every nodelist node says gototem_node: yes, the operator's promise that no
	// corosync node is in the ring (gototem.go).
	GototemRing bool

	RRP  RRP
	Knet Knet
}

// RRP is the redundant ring timing of corosync 2.x (totemrrp), which gototem's rrp uses.
type RRP struct {
	ProblemCountTimeout        time.Duration // default 2000 ms
	ProblemCountThreshold      int           // default 10
	ProblemCountMcastThreshold int           // default 10 × ProblemCountThreshold
	TokenExpiredTimeout        time.Duration // default (Token − 50 ms) / ProblemCountThreshold
	AutorecoveryCheckTimeout   time.Duration // default 1000 ms
}

// Knet holds the knet-only totem keys beyond links and crypto (compression is refused).
type Knet struct {
	PMTUDInterval        time.Duration
	MTU                  uint32
	CompressionModel     string
	CompressionThreshold uint32
	CompressionLevel     int32
}

// Crypto is the totem crypto selection after secauth has been applied.
type Crypto struct {
	Model   string // knet crypto library, default nss
	Cipher  string // none, aes256, aes192, aes128 (gototem on udp/udpu: AES-GCM of that size)
	Hash    string // none, md5, sha1, sha256, sha384, sha512
	Keyfile string // default /etc/corosync/authkey
	// Key is an inline totem.key, used only when keyfile is not set.
	Key string
}

// Enabled says whether packets are encrypted.
func (c Crypto) Enabled() bool { return c.Cipher != "" && c.Cipher != CipherNone }

// Interface is one totem { interface { } } block, with its defaults applied.
type Interface struct {
	Link        int
	Line        int
	BindNetAddr string
	McastAddr   string // empty: derived from cluster_name (udp)
	Broadcast   bool
	McastPort   uint16 // 5405 + link (broadcast: 5405 + 2·link) when not set
	TTL         uint8
	Members     []string // deprecated 1.x/2.x udpu member addresses

	KnetLinkPriority  uint8
	KnetPingInterval  time.Duration // 0: derived from the token
	KnetPingTimeout   time.Duration
	KnetPingPrecision uint32
	KnetPongCount     uint32
	KnetTransport     string
}

// Node is one nodelist entry. NodeID is 0 when the file leaves it to be derived (Resolve
// fills it in).
type Node struct {
	Pos         int
	Line        int
	NodeID      uint32
	Name        string
	Addrs       [MaxLinks]string // ringX_addr; "" = not on link X
	QuorumVotes uint32
	FromMembers bool
	Gototem     bool // gototem_node: yes (gototem.go)
}

// Links lists the link numbers the node has an address on.
func (n Node) Links() []int {
	var out []int
	for i, a := range n.Addrs {
		if a != "" {
			out = append(out, i)
		}
	}
	return out
}

// Quorum is the quorum section (votequorum's inputs, votequorum.md §2).
type Quorum struct {
	Provider      string // "" (no quorum: always quorate) or corosync_votequorum
	ExpectedVotes uint32 // 0 = from the nodelist
	Votes         uint32 // this node's votes without a nodelist (default 1)
	VotesSet      bool   // quorum.votes is in the file
	TwoNode       bool
	WaitForAll    bool // effective: follows TwoNode when the key is absent
	// WaitForAllSet says the key is in the file; votequorum re-derives an absent
	// wait_for_all from two_node on reload, so quorum/ needs to know.
	WaitForAllSet         bool
	LastManStanding       bool
	LastManStandingWindow time.Duration
	AutoTieBreaker        bool
	AutoTieBreakerNode    string // lowest, highest or node ids; empty when absent (votequorum then takes lowest)
	AllowDownscale        bool
	// ExpectedVotesTracking is forced on by AllowDownscale, as votequorum does.
	ExpectedVotesTracking bool
	Device                *QuorumDevice
}

// QuorumDevice is quorum.device (qdevice), present when model is set.
type QuorumDevice struct {
	Model       string
	Votes       uint32
	VotesSet    bool
	Timeout     time.Duration
	SyncTimeout time.Duration
	MasterWins  bool
}

// Logging is the logging section; Subsys holds logger_subsys overrides.
type Logging struct {
	Timestamp    string // on, off, hires
	Fileline     bool
	FunctionName bool
	Blackbox     bool
	LogTarget
	Subsys []LoggerSubsys
}

// LogTarget are the keys valid both at the top of logging and in logger_subsys.
type LogTarget struct {
	ToStderr        bool
	ToSyslog        bool
	ToLogfile       bool
	Logfile         string
	LogfilePriority string
	SyslogPriority  string
	SyslogFacility  string
	Debug           string // on, off, trace
}

// LoggerSubsys is one logger_subsys block after inheriting the top-level values.
type LoggerSubsys struct {
	Subsys string
	LogTarget
}

// System is the system section.
type System struct {
	QBIPCType               string
	SchedRR                 bool
	Priority                string
	MoveToRootCgroup        string
	AllowKnetHandleFallback bool
	StateDir                string
}

// Resources is the resources section (watchdog).
type Resources struct {
	WatchdogDevice  string
	WatchdogTimeout time.Duration
}

// Nozzle is the knet nozzle (tap device) section.
type Nozzle struct {
	Name, IPAddr, IPPrefix, MACAddr string
}

// UIDGID lists the users and groups granted IPC access.
type UIDGID struct {
	UIDs, GIDs []string
}

// Parse reads a corosync.conf from r; name is used in messages. It checks the grammar,
// the key types and every rule that does not depend on which node this is. On error the
// Config is nil and the error is an *Error or ErrorList; warnings are returned either way.
func Parse(name string, r io.Reader) (*Config, Warnings, error) {
	d := &diag{file: name}
	p, err := parseKeys(d, r)
	if err != nil {
		if len(d.errs) > 0 {
			return nil, d.warns, d.errs
		}
		return nil, d.warns, err
	}
	if len(d.errs) > 0 {
		return nil, d.warns, d.errs
	}
	c := build(d, p)
	sortWarnings(d.warns)
	if len(d.errs) > 0 {
		return nil, d.warns, d.errs
	}
	return c, d.warns, nil
}

// Load parses the file at path and, as corosync does, the uidgid-only files in
// <dir of path>/uidgid.d/.
func Load(path string) (*Config, Warnings, error) {
	// Streamed, not read whole: the grammar's line limit then bounds memory even for a
	// hostile path such as /dev/zero.
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &Error{File: path, Msg: "cannot read configuration: " + err.Error()}
	}
	defer f.Close()
	c, warns, err := Parse(path, f)
	if err != nil {
		return nil, warns, err
	}
	dir := filepath.Join(filepath.Dir(path), "uidgid.d")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return c, warns, nil // the directory is optional
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		u, w, err := parseUIDGIDFile(name)
		warns = append(warns, w...)
		if err != nil {
			return nil, warns, err
		}
		for k, v := range u.keys {
			c.keys[k] = v
		}
		c.UIDGID.UIDs = mergeSorted(c.UIDGID.UIDs, u.UIDGID.UIDs)
		c.UIDGID.GIDs = mergeSorted(c.UIDGID.GIDs, u.UIDGID.GIDs)
	}
	return c, warns, nil
}

// parseUIDGIDFile parses one uidgid.d file: same grammar, only uidgid sections.
func parseUIDGIDFile(name string) (*Config, Warnings, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, &Error{File: name, Msg: "cannot read: " + err.Error()}
	}
	defer f.Close()
	d := &diag{file: name}
	p, err := parseKeys(d, f)
	if err != nil || len(d.errs) > 0 {
		if len(d.errs) > 0 {
			return nil, d.warns, d.errs
		}
		return nil, d.warns, err
	}
	for sec, line := range p.topLevel {
		if sec != "uidgid" {
			d.errorf(line, "only uidgid sections are allowed in uidgid.d files (found %q)", sec)
		}
	}
	for k, e := range p.keys {
		if !strings.HasPrefix(k, "uidgid.config.") {
			d.errorf(e.line, "only uidgid sections are allowed in uidgid.d files (key %s)", k)
		}
	}
	if len(d.errs) > 0 {
		sort.Slice(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		return nil, d.warns, d.errs
	}
	c := &Config{keys: p.keys}
	c.UIDGID = readUIDGID(p.keys)
	return c, d.warns, nil
}

// sortWarnings orders warnings by line so a reader can follow the file; the order among
// warnings of one line stays as found.
func sortWarnings(w Warnings) {
	sort.SliceStable(w, func(i, j int) bool { return w[i].Line < w[j].Line })
}

func mergeSorted(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// Keys returns the keys the file itself defines, as corosync's parser stores them, sorted.
// Resolve's Runtime.Keys adds what corosync derives at startup.
func (c *Config) Keys() []KeyValue { return c.keys.list() }

// sectionLine is where a section started, 0 if it is absent.
func (c *Config) sectionLine(path string) int { return c.sections[path] }

// knownTop are the top-level sections corosync 3.1 (or gototem) reads.
var knownTop = map[string]bool{
	"totem": true, "nodelist": true, "quorum": true, "logging": true, "system": true,
	"resources": true, "nozzle": true, "uidgid": true, "pload": true,
}

// legacyTop explains the 1.x/2.x top-level sections that are ignored.
var legacyTop = map[string]string{
	"amf":     "the openais AMF service does not exist in corosync 2 or later",
	"aisexec": "openais's process user/group; corosync runs as root and grants IPC access through uidgid",
	"service": "plugins were removed in corosync 2; pacemaker is started on its own",
	"qb":      "corosync 3 reads the IPC type from system.qb_ipc_type",
	"event":   "the 1.x event service was removed",
}

func build(d *diag, p *parsed) *Config {
	c := &Config{File: d.file, keys: p.keys, sections: p.sections}
	var tops []string
	for s := range p.topLevel {
		tops = append(tops, s)
	}
	sort.Slice(tops, func(i, j int) bool { return p.topLevel[tops[i]] < p.topLevel[tops[j]] })
	for _, s := range tops {
		if knownTop[s] {
			continue
		}
		c.Legacy = append(c.Legacy, s)
		if why, ok := legacyTop[s]; ok {
			d.warnf(p.topLevel[s], "section %q is ignored: %s", s, why)
		} else {
			d.warnf(p.topLevel[s], "unknown section %q is ignored (corosync stores it and nothing reads it)", s)
		}
	}
	c.warnUnknownKeys(d)
	c.readNodes(d)
	c.readTotem(d)
	c.readInterfaces(d)
	c.deriveTimers(d)
	c.readGototem(d)
	c.readQuorum(d)
	c.readLogging(d)
	c.readSystem(d)
	c.readResources(d)
	c.readNozzle(d)
	c.UIDGID = readUIDGID(c.keys)
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	return c
}

// lineOr is the line of key, or of the section when the key is absent.
func (c *Config) lineOr(key, section string) int {
	if l := c.keys.line(key); l > 0 {
		return l
	}
	return c.sectionLine(section)
}

// enum reads a string key restricted to allowed values; anything else is an error with
// msg (corosync's text) and the default is kept.
func (c *Config) enum(d *diag, key string, def string, allowed []string, msg string) string {
	v, ok := c.keys.str(key)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	d.errorf(c.keys.line(key), "%s (%s: %q)", msg, key, v)
	return def
}

func (c *Config) readNodes(d *diag) {
	// One pass over the keys, so a huge nodelist costs linear time.
	ringKeys := map[int][]string{}
	for k := range c.keys {
		rest, ok := strings.CutPrefix(k, "nodelist.node.")
		if !ok {
			continue
		}
		pos, key, _ := strings.Cut(rest, ".")
		num, isRing := strings.CutPrefix(key, "ring")
		num, isAddr := strings.CutSuffix(num, "_addr")
		if !isRing || !isAddr || !isDigits(num) || !isDigits(pos) || len(pos) > 9 {
			continue
		}
		i, _ := strconv.Atoi(pos)
		ringKeys[i] = append(ringKeys[i], k)
	}
	for _, ks := range ringKeys {
		sort.Strings(ks)
	}
	for i := 0; ; i++ {
		base := "nodelist.node." + strconv.Itoa(i)
		line, ok := c.sections[base]
		if !ok {
			break
		}
		n := Node{Pos: i, Line: line, QuorumVotes: 1}
		if v, ok := c.keys.uint(base + ".nodeid"); ok {
			n.NodeID = uint32(v)
			if v == 0 {
				d.errorf(c.keys.line(base+".nodeid"), "nodeid 0 is reserved (node %d)", i)
			}
		}
		if v, ok := c.keys.uint(base + ".quorum_votes"); ok {
			n.QuorumVotes = uint32(v)
		}
		n.Name, _ = c.keys.str(base + ".name")
		for _, k := range ringKeys[i] {
			num := strings.TrimSuffix(strings.TrimPrefix(k, base+".ring"), "_addr")
			x, err := strconv.Atoi(num)
			if err != nil || x >= MaxLinks {
				d.errorf(c.keys.line(k), "interface ring number %s is bigger than allowed maximum %d", num, MaxLinks-1)
				continue
			}
			n.Addrs[x], _ = c.keys.str(k)
			if n.Addrs[x] == "" {
				d.errorf(c.keys.line(k), "failed to parse node address '' (%s is empty)", k)
			}
		}
		if n.Addrs[0] == "" && len(n.Links()) == 0 {
			d.errorf(line, "node %d has no ring0_addr (or any ringX_addr)", i)
		}
		c.Nodes = append(c.Nodes, n)
	}
	if _, ok := c.sections["nodelist"]; ok && len(c.Nodes) == 0 {
		d.warnf(c.sections["nodelist"], "nodelist section has no node entries")
	}
}

// String gives a short summary, handy in logs.
func (c *Config) String() string {
	return fmt.Sprintf("%s: transport %s, %d link(s), %d node(s), token %v", c.File, c.Totem.Transport, len(c.Interfaces), len(c.Nodes), c.Totem.Token)
}

// Key-length limits corosync applies to the authkey (libknet 1.x's KNET_MIN_KEY_LEN and
// corosync's read buffer); corosync-keygen writes 256 bytes.
const (
	MinKeyLen = 128
	MaxKeyLen = 4096
)

// ReadKey returns the shared key: the inline totem.key when no keyfile was configured,
// else the keyfile's bytes (ReadKeyFile's checks). It enforces corosync's length limits.
func (c Crypto) ReadKey() ([]byte, error) {
	if c.Key == "" || (c.Keyfile != "" && c.Keyfile != DefaultKeyfile) {
		return ReadKeyFile(c.Keyfile)
	}
	return checkKeyLen([]byte(c.Key), "totem.key")
}

// ReadKeyFile is the one authkey reader: the daemon (through ReadKey), `gototem config
// check` and transport.ReadAuthKey all use it. The file must be a regular file that group
// and others cannot access (corosync-keygen writes it 0400; anyone who can read it can
// join and decrypt the ring), of corosync's MinKeyLen..MaxKeyLen bytes.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: cannot open keyfile: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: keyfile %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("config: keyfile %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("config: keyfile %s: mode %04o lets group or others read it; want 0400 or 0600 (chmod 0400 %s)", path, uint32(perm), path)
	}
	key, err := io.ReadAll(io.LimitReader(f, MaxKeyLen+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading keyfile %s: %w", path, err)
	}
	return checkKeyLen(key, path)
}

func checkKeyLen(key []byte, src string) ([]byte, error) {
	switch {
	case len(key) < MinKeyLen:
		//lint:ignore ST1005 corosync's own message, which operators search for
		return nil, fmt.Errorf("config: Could only read %d bits of minimum %d bits from %s.", len(key)*8, MinKeyLen*8, src)
	case len(key) > MaxKeyLen:
		return nil, fmt.Errorf("config: key in %s is too long (more than %d bytes)", src, MaxKeyLen)
	}
	return key, nil
}
