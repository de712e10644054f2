package config

import (
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// ImportCMAN turns a CMAN cluster.conf (the XML of RHEL 6 era clusters, made by ccs or
// luci) into the corosync.conf that corosync 2 and later read for the same cluster, the file
// pcs would write: cluster name and config_version, the nodelist with names, ids and votes,
// the transport, votequorum with two_node, the totem timers and logging that cluster.conf set.
//
// What has no place in corosync.conf is reported in the warnings, one per element or attribute,
// never dropped silently: fencing and rgmanager resources belong to Pacemaker now, qdisk to
// corosync-qdevice, and CMAN's implied settings (its encryption key derived from the cluster
// name, its multicast address derived from the cluster id) differ from corosync's defaults.
// The text is checked by this package's own Parse before it is returned, so an import never
// yields a file that `config check` rejects.
func ImportCMAN(r io.Reader) (string, []string, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxClusterConfSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("cluster.conf: %w", err)
	}
	if len(raw) > maxClusterConfSize {
		return "", nil, fmt.Errorf("cluster.conf: larger than %d bytes", maxClusterConfSize)
	}
	// Comments go before decoding: XML forbids "--" inside one, Go's decoder enforces it, and
	// hand-edited files have it (the Abiquo guide's comment quotes "ccs --addnode").
	raw = xmlComment.ReplaceAll(raw, nil)
	var c cmanCluster
	if err := xml.Unmarshal(raw, &c); err != nil {
		return "", nil, fmt.Errorf("cluster.conf: not CMAN XML: %w", err)
	}
	if c.XMLName.Local != "cluster" {
		return "", nil, fmt.Errorf("cluster.conf: the top element is <%s>, CMAN's is <cluster>", c.XMLName.Local)
	}
	if c.Name == "" {
		return "", nil, fmt.Errorf("cluster.conf: <cluster> has no name attribute")
	}
	if len(c.Nodes) == 0 {
		return "", nil, fmt.Errorf("cluster.conf: no <clusternode> in <clusternodes>")
	}
	var warns []string
	warn := func(f string, a ...any) { warns = append(warns, fmt.Sprintf(f, a...)) }
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }

	// totem
	w("# Imported from a CMAN cluster.conf by gototem config import.\ntotem {\n\tversion: 2\n\tcluster_name: %s\n", c.Name)
	if c.ConfigVersion != "" {
		if _, err := strconv.ParseUint(c.ConfigVersion, 10, 64); err != nil {
			return "", nil, fmt.Errorf("cluster.conf: config_version %q is not a number", c.ConfigVersion)
		}
		w("\tconfig_version: %s\n", c.ConfigVersion)
	}
	transport := "udp"
	switch c.CMAN.Transport {
	case "", "udp":
		if c.CMAN.Broadcast == "yes" {
			transport = "udp"
		}
	case "udpb":
		c.CMAN.Broadcast = "yes"
	case "udpu":
		transport = "udpu"
	case "rdma":
		return "", nil, fmt.Errorf("cluster.conf: transport rdma has no corosync 3 equivalent (use udpu or knet)")
	default:
		return "", nil, fmt.Errorf("cluster.conf: unknown <cman transport=%q>", c.CMAN.Transport)
	}
	w("\ttransport: %s\n", transport)
	t := c.Totem
	for _, kv := range [][2]string{
		{"token", t.Token}, {"token_retransmits_before_loss_const", t.TokenRetransmits},
		{"join", t.Join}, {"consensus", t.Consensus}, {"fail_recv_const", t.FailRecvConst},
		{"miss_count_const", t.MissCount}, {"window_size", t.WindowSize},
		{"max_messages", t.MaxMessages}, {"netmtu", t.NetMTU}, {"rrp_mode", t.RRPMode},
	} {
		if kv[1] != "" {
			w("\t%s: %s\n", kv[0], kv[1])
		}
	}
	keyfile := c.CMAN.Keyfile
	if t.Keyfile != "" {
		keyfile = t.Keyfile
	}
	switch {
	case t.Secauth == "off":
	case keyfile != "":
		w("\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: %s\n", keyfile)
		warn("CMAN encrypted with the key in %s: the imported file keeps that key file (crypto_cipher aes256, crypto_hash sha256); corosync 3 reads it only if it is 128 to 4096 bytes", keyfile)
	default:
		warn("CMAN encrypted the ring with a key derived from the cluster name unless secauth was off; corosync has no such key: the imported file has encryption off (make a key with corosync-keygen and set crypto_cipher/crypto_hash to turn it on)")
	}
	if transport == "udp" {
		w("\tinterface {\n\t\tlinknumber: 0\n")
		if c.CMAN.Multicast.Addr != "" {
			w("\t\tmcastaddr: %s\n", c.CMAN.Multicast.Addr)
		} else if c.CMAN.Broadcast == "yes" {
			w("\t\tbroadcast: yes\n")
		} else {
			warn("CMAN derived the multicast address from its cluster id; corosync derives it from cluster_name: nodes still on CMAN would not hear these nodes (add mcastaddr to keep CMAN's)")
		}
		if c.CMAN.Port != "" {
			w("\t\tmcastport: %s\n", c.CMAN.Port)
		}
		if c.CMAN.Multicast.TTL != "" {
			w("\t\tttl: %s\n", c.CMAN.Multicast.TTL)
		}
		w("\t}\n")
	} else if c.CMAN.Port != "" {
		w("\tinterface {\n\t\tlinknumber: 0\n\t\tmcastport: %s\n\t}\n", c.CMAN.Port)
	}
	if c.CMAN.ClusterID != "" {
		warn("<cman cluster_id> has no corosync 3 key: dropped")
	}
	w("}\n\n")

	// nodelist
	rings := 1
	for _, n := range c.Nodes {
		if len(n.Altnames) > 0 {
			rings = 2
		}
	}
	seen := map[string]bool{}
	ids := map[uint64]string{}
	w("nodelist {\n")
	for _, n := range c.Nodes {
		if n.Name == "" {
			return "", nil, fmt.Errorf("cluster.conf: a <clusternode> has no name")
		}
		if seen[n.Name] {
			return "", nil, fmt.Errorf("cluster.conf: clusternode %s appears twice", n.Name)
		}
		seen[n.Name] = true
		w("\tnode {\n\t\tring0_addr: %s\n", n.Name)
		if len(n.Altnames) > 1 {
			warn("clusternode %s: only the first altname becomes ring1_addr (corosync's redundant ring over udp/udpu has two rings)", n.Name)
		}
		if len(n.Altnames) > 0 {
			w("\t\tring1_addr: %s\n", n.Altnames[0].Name)
		} else if rings == 2 {
			return "", nil, fmt.Errorf("cluster.conf: clusternode %s has no altname while others do: every node needs an address on the second ring", n.Name)
		}
		w("\t\tname: %s\n", n.Name)
		if n.NodeID != "" {
			id, err := strconv.ParseUint(n.NodeID, 10, 32)
			if err != nil || id == 0 {
				return "", nil, fmt.Errorf("cluster.conf: clusternode %s: nodeid %q is not a positive number", n.Name, n.NodeID)
			}
			if other, dup := ids[id]; dup {
				return "", nil, fmt.Errorf("cluster.conf: clusternodes %s and %s share nodeid %d", other, n.Name, id)
			}
			ids[id] = n.Name
			w("\t\tnodeid: %d\n", id)
		} else {
			warn("clusternode %s has no nodeid: corosync derives one from its IPv4 address (pcs assigns them; set one to keep ids stable)", n.Name)
		}
		if n.Votes != "" && n.Votes != "1" {
			w("\t\tquorum_votes: %s\n", n.Votes)
		}
		if len(n.Fence.Methods) > 0 {
			warn("clusternode %s: fencing (%s) is not carried over: fencing is Pacemaker's now (a stonith resource; fence_pcmk redirected to it)", n.Name, n.Fence.describe())
		}
		w("\t}\n")
	}
	w("}\n\n")

	// quorum
	w("quorum {\n\tprovider: corosync_votequorum\n")
	if c.CMAN.TwoNode == "1" {
		if len(c.Nodes) != 2 {
			return "", nil, fmt.Errorf("cluster.conf: two_node=\"1\" with %d clusternodes (CMAN and votequorum both need exactly 2)", len(c.Nodes))
		}
		w("\ttwo_node: 1\n")
		if c.CMAN.ExpectedVotes != "" && c.CMAN.ExpectedVotes != "1" {
			warn("<cman expected_votes=%q> with two_node: CMAN required 1; votequorum's two_node counts the nodelist's 2 votes: dropped", c.CMAN.ExpectedVotes)
		} else if c.CMAN.ExpectedVotes == "1" {
			warn("<cman expected_votes=\"1\"> is what CMAN's two_node required; votequorum's two_node takes the nodelist's 2 votes and quorum 1: dropped")
		}
	} else if c.CMAN.ExpectedVotes != "" {
		w("\texpected_votes: %s\n", c.CMAN.ExpectedVotes)
	}
	w("}\n\n")
	if c.Quorumd != nil {
		warn("<quorumd> (qdisk) has no votequorum equivalent: use corosync-qdevice with corosync-qnetd (quorum.device)")
	}

	// logging
	l := c.Logging
	w("logging {\n")
	w("\tto_syslog: %s\n", yesNo(l.ToSyslog, "yes"))
	w("\tto_logfile: %s\n", yesNo(l.ToLogfile, "yes"))
	logfile := l.Logfile
	if logfile == "" {
		logfile = "/var/log/cluster/corosync.log"
	}
	w("\tlogfile: %s\n", logfile)
	if l.Debug == "on" {
		w("\tdebug: on\n")
	}
	if l.SyslogFacility != "" {
		w("\tsyslog_facility: %s\n", l.SyslogFacility)
	}
	if l.SyslogPriority != "" {
		w("\tsyslog_priority: %s\n", l.SyslogPriority)
	}
	if l.LogfilePriority != "" {
		w("\tlogfile_priority: %s\n", l.LogfilePriority)
	}
	w("\ttimestamp: on\n}\n")
	for _, d := range l.Daemons {
		if !strings.EqualFold(d.Name, "corosync") {
			warn("<logging_daemon name=%q>: logging of a CMAN-era daemon: dropped", d.Name)
		}
	}

	for _, el := range c.Other {
		switch el.XMLName.Local {
		case "fencedevices":
			warn("<fencedevices> is not carried over: configure fencing as Pacemaker stonith resources")
		case "rm":
			if el.hasContent() {
				warn("<rm> (rgmanager services and resources) is not carried over: configure them as Pacemaker resources")
			}
		case "fence_daemon", "dlm", "gfs_controld", "fence_xvmd", "group":
			if el.hasContent() {
				warn("<%s> settings of a CMAN daemon are not carried over", el.XMLName.Local)
			}
		default:
			warn("<%s> is not a CMAN element gototem knows: ignored", el.XMLName.Local)
		}
	}
	out := b.String()
	if _, _, err := Parse("corosync.conf (imported)", strings.NewReader(out)); err != nil {
		return "", warns, fmt.Errorf("cluster.conf: the imported corosync.conf is not valid: %w", err)
	}
	return out, warns, nil
}

func yesNo(v, def string) string {
	switch v {
	case "":
		return def
	case "yes", "on", "1":
		return "yes"
	}
	return "no"
}

type cmanCluster struct {
	XMLName       xml.Name
	Name          string        `xml:"name,attr"`
	ConfigVersion string        `xml:"config_version,attr"`
	CMAN          cmanCMAN      `xml:"cman"`
	Totem         cmanTotem     `xml:"totem"`
	Nodes         []cmanNode    `xml:"clusternodes>clusternode"`
	Logging       cmanLogging   `xml:"logging"`
	Quorumd       *struct{}     `xml:"quorumd"`
	Other         []cmanElement `xml:",any"`
}

type cmanCMAN struct {
	TwoNode       string `xml:"two_node,attr"`
	ExpectedVotes string `xml:"expected_votes,attr"`
	Transport     string `xml:"transport,attr"`
	Port          string `xml:"port,attr"`
	ClusterID     string `xml:"cluster_id,attr"`
	Keyfile       string `xml:"keyfile,attr"`
	Broadcast     string `xml:"broadcast,attr"`
	Multicast     struct {
		Addr string `xml:"addr,attr"`
		TTL  string `xml:"ttl,attr"`
	} `xml:"multicast"`
}

type cmanTotem struct {
	Token            string `xml:"token,attr"`
	TokenRetransmits string `xml:"token_retransmits_before_loss_const,attr"`
	Join             string `xml:"join,attr"`
	Consensus        string `xml:"consensus,attr"`
	FailRecvConst    string `xml:"fail_recv_const,attr"`
	MissCount        string `xml:"miss_count_const,attr"`
	WindowSize       string `xml:"window_size,attr"`
	MaxMessages      string `xml:"max_messages,attr"`
	NetMTU           string `xml:"netmtu,attr"`
	RRPMode          string `xml:"rrp_mode,attr"`
	Secauth          string `xml:"secauth,attr"`
	Keyfile          string `xml:"keyfile,attr"`
}

type cmanNode struct {
	Name     string `xml:"name,attr"`
	NodeID   string `xml:"nodeid,attr"`
	Votes    string `xml:"votes,attr"`
	Altnames []struct {
		Name string `xml:"name,attr"`
	} `xml:"altname"`
	Fence cmanFence `xml:"fence"`
}

type cmanFence struct {
	Methods []struct {
		Name    string `xml:"name,attr"`
		Devices []struct {
			Name string `xml:"name,attr"`
		} `xml:"device"`
	} `xml:"method"`
}

func (f cmanFence) describe() string {
	var parts []string
	for _, m := range f.Methods {
		var devs []string
		for _, d := range m.Devices {
			devs = append(devs, d.Name)
		}
		parts = append(parts, fmt.Sprintf("method %s: %s", m.Name, strings.Join(devs, ", ")))
	}
	return strings.Join(parts, "; ")
}

type cmanLogging struct {
	Debug           string `xml:"debug,attr"`
	ToSyslog        string `xml:"to_syslog,attr"`
	ToLogfile       string `xml:"to_logfile,attr"`
	Logfile         string `xml:"logfile,attr"`
	SyslogFacility  string `xml:"syslog_facility,attr"`
	SyslogPriority  string `xml:"syslog_priority,attr"`
	LogfilePriority string `xml:"logfile_priority,attr"`
	Daemons         []struct {
		Name string `xml:"name,attr"`
	} `xml:"logging_daemon"`
}

// cmanElement is any other child of <cluster>, kept to be named in a warning.
type cmanElement struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   []byte     `xml:",innerxml"`
}

// hasContent reports whether the element says anything: attributes, or children other than
// empty ones (ccs writes <rm><failoverdomains/><resources/></rm> into every file it makes).
func (e cmanElement) hasContent() bool {
	return len(e.Attrs) > 0 || strings.TrimSpace(emptyTag.ReplaceAllString(string(e.Inner), "")) != ""
}

var emptyTag = regexp.MustCompile(`<[A-Za-z_][\w.-]*\s*/>|<([A-Za-z_][\w.-]*)\s*>\s*</[A-Za-z_][\w.-]*\s*>`)

var xmlComment = regexp.MustCompile(`(?s)<!--.*?-->`)

// maxClusterConfSize bounds what ImportCMAN reads: real cluster.conf files are a few KiB.
const maxClusterConfSize = 1 << 20
