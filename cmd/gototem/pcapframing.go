package main

import (
	"fmt"
	"strings"

	"github.com/gototem/gototem/capture"
	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
)

// The totempg view of an MCAST: its packing (fragment tags, piece count) and, for each piece,
// the group and the service message it carries, e.g. pg=0/0/2 msgs=a:cpg.mcast,sync:barrier.
func init() {
	pcapExtensions = append(pcapExtensions, pcapTotempg)
}

func pcapTotempg(p *capture.Packet) []pcapField {
	t := p.Totem
	if p.Inner != nil {
		t = p.Inner
	}
	if t == nil {
		return nil
	}
	m, ok := t.Message.(*srp.Mcast)
	if !ok {
		return nil
	}
	frag, cont, pieces, err := stack.DescribePacket(m.Payload, p.Totem.Swapped)
	fields := []pcapField{{"pg", fmt.Sprintf("%d/%d/%d", frag, cont, len(pieces))}}
	var msgs []string
	for _, pc := range pieces {
		switch {
		case pc.Continues:
			msgs = append(msgs, fmt.Sprintf("cont(%d)", pc.Len))
		case pc.Service != "":
			s := pc.Service
			if pc.Partial {
				s += "…"
			}
			msgs = append(msgs, s)
		default:
			msgs = append(msgs, fmt.Sprintf("?(%d)", pc.Len))
		}
	}
	if len(msgs) > 0 {
		fields = append(fields, pcapField{"msgs", strings.Join(msgs, ",")})
	}
	if err != nil {
		fields = append(fields, pcapField{"pg_error", strings.ReplaceAll(err.Error(), " ", "_")})
	}
	return fields
}
