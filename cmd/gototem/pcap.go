package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gototem/gototem/capture"
	"github.com/gototem/gototem/srp"
)

// pcap prints the Totem traffic of tcpdump captures one packet per line, because tshark's
// corosync dissectors only know the corosync 1/2 wire format and show corosync 3 packets as
// raw data. The line is what a person needs to follow a membership change or a token
// rotation against corosync's debug log: ring ids are printed rep.seq with seq in hex, and
// sequence numbers in hex, as corosync logs them.
func init() {
	register("pcap", command{
		summary: "decode the Totem packets of pcap captures (udp/udpu, and knet with --authkey for encrypted ones)",
		run:     runPcap,
	})
}

// pcapField is one key=value item of a packet line.
type pcapField struct{ Key, Value string }

// pcapExtensions add fields at the end of a packet's line, in order. A decoder for a layer
// above srp (the totempg framing of an MCAST payload, say) registers one from its own
// file's init; it gets every decoded packet and returns nothing for those it has no view of.
var pcapExtensions []func(p *capture.Packet) []pcapField

// pcapTypeOrder fixes the order of the summary's type counts.
var pcapTypeOrder = []srp.MessageType{
	srp.TypeORFToken, srp.TypeMcast, srp.TypeMergeDetect, srp.TypeJoin, srp.TypeCommitToken, srp.TypeTokenHoldCancel,
}

func runPcap(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("pcap", flag.ContinueOnError)
	fset.SetOutput(stderr)
	authkey := fset.String("authkey", "", "corosync authkey `FILE` to open encrypted knet packets")
	cipherName := fset.String("crypto-cipher", "aes256", "knet crypto_cipher of the capture (with --authkey)")
	hashName := fset.String("crypto-hash", "sha256", "knet crypto_hash of the capture (with --authkey)")
	var ports portList
	fset.Var(&ports, "port", "read exactly the UDP datagrams to or from `PORT` (repeatable, or comma-separated) instead of recognising Totem by content")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: gototem pcap [--port PORT]... [--authkey FILE [--crypto-cipher C] [--crypto-hash H]] FILE...")
		fmt.Fprintln(stderr, "Prints one line per Totem datagram (time since the file's first packet, source,")
		fmt.Fprintln(stderr, "type, header nodeid, ring id, key fields), then the packet and per-type counts.")
		fmt.Fprintln(stderr, "Totem is recognised by content on any UDP port (its magic number, or a well-formed")
		fmt.Fprintf(stderr, "knet packet); datagrams on ports %v and %d-%d (knet links 1-7) are always read.\n",
			capture.DefaultPorts, capture.KnetLinkPorts[0], capture.KnetLinkPorts[1])
		fmt.Fprintln(stderr, "--port reads exactly the given ports instead, whatever they carry.")
		fmt.Fprintln(stderr, "knet packets (corosync 3's default transport) are told apart by content: their")
		fmt.Fprintln(stderr, "fields come first with a k. prefix, then the fields of the Totem packet a DATA")
		fmt.Fprintln(stderr, "message carries (reassembled from its fragments as the receiver does).")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() == 0 {
		fset.Usage()
		return 2
	}
	opts := capture.Options{Ports: ports}
	if *authkey != "" {
		c, err := pcapKnetCrypto(*authkey, *cipherName, *hashName)
		if err != nil {
			fmt.Fprintf(stderr, "gototem pcap: %v\n", err)
			return 2
		}
		opts.KnetCrypto = c
	}
	var (
		total, bad int
		counts     [srp.TypeTokenHoldCancel + 1]int
		kn         pcapKnetCounts
		code       int
	)
	for _, path := range fset.Args() {
		if fset.NArg() > 1 {
			fmt.Fprintf(stdout, "# %s\n", path)
		}
		pkts, _, err := capture.ReadFileOptions(path, opts)
		var start time.Time
		for i := range pkts {
			p := &pkts[i]
			if i == 0 {
				start = p.Time
			}
			total++
			kn.add(p)
			if p.Err != nil {
				bad++
			} else if p.Totem != nil {
				counts[p.Totem.Header.Type]++
			}
			fmt.Fprintln(stdout, pcapLine(p, p.Time.Sub(start)))
		}
		if err != nil {
			fmt.Fprintf(stderr, "gototem pcap: %v\n", err)
			code = 1
		}
	}
	fmt.Fprintf(stdout, "packets: %d totem, %d undecodable\n", total, bad)
	var sb strings.Builder
	sb.WriteString("types:")
	for _, t := range pcapTypeOrder {
		fmt.Fprintf(&sb, " %s=%d", t, counts[t])
	}
	fmt.Fprintln(stdout, sb.String())
	if kn.packets > 0 {
		fmt.Fprintln(stdout, kn.String())
	}
	return code
}

// pcapLine formats one packet: fixed columns (time, source > destination, type), then
// space-separated key=value fields (a bare key is a flag such as "leave").
func pcapLine(p *capture.Packet, rel time.Duration) string {
	var sb strings.Builder
	typ := "undecodable"
	switch {
	case p.Totem != nil:
		typ = p.Totem.Header.Type.String()
	case p.Err == nil && p.Knet != nil:
		typ = pcapKnetType(p.Knet)
	}
	fmt.Fprintf(&sb, "%11.6f %-21s > %-21s %-12s", rel.Seconds(), p.Src, p.Dst, typ)
	fields := pcapKnetFields(p)
	if p.Totem != nil || p.Err != nil {
		fields = append(fields, pcapFields(p)...)
	}
	for _, ext := range pcapExtensions {
		fields = append(fields, ext(p)...)
	}
	for _, f := range fields {
		sb.WriteByte(' ')
		sb.WriteString(f.Key)
		if f.Value != "" {
			sb.WriteByte('=')
			sb.WriteString(f.Value)
		}
	}
	return sb.String()
}

func pcapHex(v uint32) string { return "0x" + strconv.FormatUint(uint64(v), 16) }
func pcapDec(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
func pcapRing(r srp.RingID) string {
	return strconv.FormatUint(uint64(r.Rep), 10) + "." + strconv.FormatUint(r.Seq, 16)
}

func pcapNodeSet(ids []srp.NodeID) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(pcapDec(uint32(id)))
	}
	sb.WriteByte('}')
	return sb.String()
}

// pcapFields are the srp-level fields of a packet: header nodeid and ring id first, then
// what identifies the message's role in the protocol.
func pcapFields(p *capture.Packet) []pcapField {
	if p.Err != nil {
		return []pcapField{{"len", strconv.Itoa(len(p.Data))}, {"error", strconv.Quote(p.Err.Error())}}
	}
	f := []pcapField{{"node", pcapDec(uint32(p.Totem.Header.NodeID))}}
	if p.Totem.Swapped {
		f = append(f, pcapField{"big-endian", ""})
	}
	switch m := p.Totem.Message.(type) {
	case *srp.ORFToken:
		f = append(f,
			pcapField{"ring", pcapRing(m.RingID)},
			pcapField{"seq", pcapHex(m.Seq)},
			pcapField{"token_seq", pcapHex(m.TokenSeq)},
			pcapField{"aru", pcapHex(m.ARU)},
			pcapField{"aru_addr", pcapDec(uint32(m.ARUAddr))},
			pcapField{"rtr", strconv.Itoa(len(m.RTRList))})
		// Flow-control and recovery fields only when they say something.
		if m.Backlog != 0 {
			f = append(f, pcapField{"backlog", pcapDec(m.Backlog)})
		}
		if m.FCC != 0 {
			f = append(f, pcapField{"fcc", pcapDec(m.FCC)})
		}
		if m.RetransFlg != 0 {
			f = append(f, pcapField{"retrans_flg", strconv.Itoa(int(m.RetransFlg))})
		}
	case *srp.Mcast:
		f = append(f, pcapMcastFields(m, p.Totem.Header.Encapsulated)...)
		if p.Inner != nil {
			// The re-sent old-ring message, as its originator sent it.
			if im, ok := p.Inner.Message.(*srp.Mcast); ok {
				inner := append([]pcapField{{"node", pcapDec(uint32(im.Header.NodeID))}},
					pcapMcastFields(im, im.Header.Encapsulated)...)
				for _, x := range inner {
					f = append(f, pcapField{"inner." + x.Key, x.Value})
				}
			}
		} else if p.InnerErr != nil {
			f = append(f, pcapField{"inner.error", strconv.Quote(p.InnerErr.Error())})
		}
	case *srp.MergeDetect:
		f = append(f, pcapField{"ring", pcapRing(m.RingID)}, pcapField{"from", pcapDec(uint32(m.SystemFrom))})
	case *srp.Join:
		if m.IsLeave() {
			f = append(f, pcapField{"leave", ""})
		}
		f = append(f,
			pcapField{"ring_seq", "0x" + strconv.FormatUint(m.RingSeq, 16)},
			pcapField{"from", pcapDec(uint32(m.SystemFrom))},
			pcapField{"proc", pcapNodeSet(m.ProcList)},
			pcapField{"failed", pcapNodeSet(m.FailedList)})
	case *srp.CommitToken:
		f = append(f,
			pcapField{"ring", pcapRing(m.RingID)},
			pcapField{"members", pcapNodeSet(m.Addr)},
			pcapField{"memb_index", strconv.Itoa(int(m.MembIndex))},
			pcapField{"token_seq", pcapHex(m.TokenSeq)})
	case *srp.TokenHoldCancel:
		f = append(f, pcapField{"ring", pcapRing(m.RingID)})
	}
	return f
}

func pcapMcastFields(m *srp.Mcast, encapsulated uint8) []pcapField {
	g := strconv.Itoa(int(m.Guarantee))
	switch m.Guarantee {
	case srp.Agreed:
		g = "agreed"
	case srp.Safe:
		g = "safe"
	}
	enc := strconv.Itoa(int(encapsulated))
	switch encapsulated {
	case srp.Encapsulated:
		enc = "yes"
	case srp.NotEncapsulated:
		enc = "no"
	}
	return []pcapField{
		{"ring", pcapRing(m.RingID)},
		{"seq", pcapHex(m.Seq)},
		{"from", pcapDec(uint32(m.SystemFrom))},
		{"guarantee", g},
		{"encapsulated", enc},
		{"len", strconv.Itoa(len(m.Payload))},
	}
}

// portList is a repeatable --port flag that also takes a comma-separated list.
type portList []uint16

func (p *portList) String() string { return fmt.Sprint([]uint16(*p)) }

func (p *portList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("%q is not a UDP port", f)
		}
		*p = append(*p, uint16(n))
	}
	return nil
}
