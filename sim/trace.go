package sim

import (
	"fmt"
	"strconv"

	"github.com/gototem/gototem/srp"
)

// The trace is one line per event:
//
//	<virtual time> #<step> <what happened> | <node>:<state> <ring> a<aru> d<delivered> | ...
//
// e.g. "   2.004113 #812 n2 recv TOKEN n1 seq=12 aru=12 | 1:OPER 1/8 a12 d12 | 2:OPER ...".
// A configuration delivery adds an indented line under the event that caused it. States
// are abbreviated OPER, GATH, COMM, RECO; a crashed node shows "down", a paused one
// "PAUSED". Nothing is formatted unless Options.Trace is set.

func fmtTime(t interface{ Nanoseconds() int64 }) string {
	ns := t.Nanoseconds()
	return fmt.Sprintf("%4d.%06d", ns/1e9, (ns%1e9)/1e3)
}

func stateAbbrev(st srp.State) string {
	switch st {
	case srp.Operational:
		return "OPER"
	case srp.Gather:
		return "GATH"
	case srp.Commit:
		return "COMM"
	case srp.Recovery:
		return "RECO"
	}
	return "????"
}

func (s *Sim) traceEvent(what string) {
	if s.opts.Trace == nil || what == "" {
		return
	}
	s.writeLine(what)
}

func (s *Sim) traceNode(n *Node, verb, detail string) {
	if s.opts.Trace == nil {
		return
	}
	what := "n" + strconv.Itoa(int(n.ID)) + " " + verb
	if detail != "" {
		what += " " + detail
	}
	s.writeLine(what)
}

func (s *Sim) writeLine(what string) {
	b := s.line[:0]
	b = append(b, fmtTime(s.now)...)
	b = append(b, " #"...)
	b = strconv.AppendUint(b, s.step, 10)
	b = append(b, ' ')
	b = append(b, what...)
	for len(b) < 60 {
		b = append(b, ' ')
	}
	for _, n := range s.nodes {
		b = append(b, " | "...)
		b = strconv.AppendUint(b, uint64(n.ID), 10)
		b = append(b, ':')
		switch {
		case !n.up:
			b = append(b, "down"...)
			continue
		case n.paused:
			b = append(b, "PAUSED"...)
			continue
		}
		st := n.proc.Status()
		b = append(b, stateAbbrev(st.State)...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(st.RingID.Rep), 10)
		b = append(b, '/')
		b = strconv.AppendUint(b, st.RingID.Seq, 10)
		b = append(b, " a"...)
		b = strconv.AppendUint(b, uint64(st.Aru), 10)
		b = append(b, " d"...)
		b = strconv.AppendUint(b, uint64(st.HighDelivered), 10)
	}
	b = append(b, '\n')
	s.line = b
	s.opts.Trace.Write(b)
}

func (s *Sim) traceConfig(n *Node, c *srp.Configuration) {
	line := fmt.Sprintf("%s #%d     n%d installs %s ring %s members %s", fmtTime(s.now), s.step, n.ID,
		c.Kind, ringStr(c.RingID), fmtIDs(c.Members))
	if len(c.Joined) > 0 {
		line += " joined " + fmtIDs(c.Joined)
	}
	if len(c.Left) > 0 {
		line += " left " + fmtIDs(c.Left)
	}
	fmt.Fprintln(s.opts.Trace, line)
}

// describe names a datagram for the trace: its type, sender and the fields that matter.
func describe(from srp.NodeID, data []byte) string {
	h, _, err := srp.PeekHeader(data)
	if err != nil {
		if d, ok := describeKnet(from, data); ok { // sim/knet.go
			return d
		}
		return fmt.Sprintf("from n%d: undecodable (%v)", from, err)
	}
	switch h.Type {
	case srp.TypeORFToken:
		var t srp.ORFToken
		if t.Decode(data) == nil {
			return fmt.Sprintf("TOKEN n%d ring %s seq=%d aru=%d rtr=%d", from, ringStr(t.RingID), t.Seq, t.ARU, len(t.RTRList))
		}
	case srp.TypeMcast:
		var m srp.Mcast
		if m.Decode(data) == nil {
			enc := ""
			if m.Header.Encapsulated == srp.Encapsulated {
				enc = " encap"
			}
			msg := ""
			p := m.Payload
			if enc != "" {
				var in srp.Mcast
				if in.Decode(p) == nil {
					p = in.Payload
				}
			}
			if id, ok := decodePayloadHeader(p); ok {
				msg = fmt.Sprintf(" n%d#%d", id.Sender, id.Counter)
			}
			return fmt.Sprintf("MCAST n%d ring %s seq=%d%s%s", from, ringStr(m.RingID), m.Seq, enc, msg)
		}
	case srp.TypeJoin:
		var j srp.Join
		if j.Decode(data) == nil {
			kind := "JOIN"
			if j.IsLeave() {
				kind = "LEAVE"
			}
			return fmt.Sprintf("%s n%d proc %s failed %s", kind, from, fmtIDs(j.ProcList), fmtIDs(j.FailedList))
		}
	case srp.TypeCommitToken:
		var c srp.CommitToken
		if c.Decode(data) == nil {
			return fmt.Sprintf("COMMIT n%d ring %s memb %s idx=%d", from, ringStr(c.RingID), fmtIDs(c.Addr), c.MembIndex)
		}
	case srp.TypeMergeDetect:
		var m srp.MergeDetect
		if m.Decode(data) == nil {
			return fmt.Sprintf("MERGE_DETECT n%d ring %s", from, ringStr(m.RingID))
		}
	case srp.TypeTokenHoldCancel:
		return fmt.Sprintf("HOLD_CANCEL n%d", from)
	}
	return fmt.Sprintf("type %d from n%d: undecodable", h.Type, from)
}
