package stack

import (
	"errors"
	"fmt"
	"strings"
)

// Piece is one packed message (or fragment of one) inside a totempg packet, as a capture
// decoder shows it.
type Piece struct {
	Len int
	// Continues is set for a first piece that continues a message from the sender's previous
	// packet; such a piece starts mid-message and is not parsed.
	Continues bool
	// Partial is set for a last piece that the next packet completes.
	Partial bool
	Groups  []string
	// Service names the service message: "cpg.mcast", "votequorum.nodeinfo", "sync.barrier"...
	Service string
}

// DescribePacket takes a totempg packet (an MCAST payload) apart for display. It checks the
// same length rules the receiver applies.
func DescribePacket(payload []byte, swapped bool) (fragmented, continuation uint8, pieces []Piece, err error) {
	bo := order(swapped)
	if len(payload) < pgHeaderSize {
		return 0, 0, nil, errors.New("totempg packet shorter than its header")
	}
	fragmented, continuation = payload[4], payload[5]
	count := int(bo.Uint16(payload[6:]))
	if len(payload) < pgHeaderSize+2*count {
		return fragmented, continuation, nil, errors.New("totempg length array truncated")
	}
	off := pgHeaderSize + 2*count
	for i := 0; i < count; i++ {
		l := int(bo.Uint16(payload[pgHeaderSize+2*i:]))
		if off+l > len(payload) {
			return fragmented, continuation, pieces, errors.New("totempg lengths exceed the packet")
		}
		p := Piece{Len: l, Continues: i == 0 && continuation != 0, Partial: i == count-1 && fragmented != 0}
		if !p.Continues {
			if groups, body, gerr := parseGroups(payload[off:off+l], swapped); gerr == nil {
				p.Groups = groups
				p.Service = serviceName(groups, body, swapped)
			}
		}
		pieces = append(pieces, p)
		off += l
	}
	if off != len(payload) {
		return fragmented, continuation, pieces, fmt.Errorf("totempg lengths cover %d of %d bytes", off, len(payload))
	}
	return fragmented, continuation, pieces, nil
}

var serviceNames = map[uint32][]string{
	0: {"mcast"},
	1: {"ringreenable", "killnode", "shutdown", "reload", "crypto_reconfig"},
	2: {"procjoin", "procleave", "joinlist", "mcast", "downlist_old", "downlist", "partial_mcast"},
	3: {},
	4: {"start", "mcast"},
	5: {"nodeinfo", "reconfigure", "qdevice_reg", "qdevice_reconfigure"},
}

var serviceLabels = []string{"cmap", "cfg", "cpg", "quorum", "pload", "votequorum", "mon", "wd"}

func serviceName(groups []string, body []byte, swapped bool) string {
	if len(body) < 4 {
		return ""
	}
	id := readU32(body, swapped)
	for _, g := range groups {
		switch g {
		case "sync":
			// sync.c never byte-swaps its ids.
			switch readU32(body, false) {
			case 0:
				return "sync.barrier"
			case 1:
				return "sync.service_build"
			}
			return fmt.Sprintf("sync.%d", readU32(body, false))
		case "a":
			svc, fn := id>>16, id&0xffff
			label := fmt.Sprintf("service%d", svc)
			if int(svc) < len(serviceLabels) {
				label = serviceLabels[svc]
			}
			if names := serviceNames[svc]; int(fn) < len(names) {
				return label + "." + names[fn]
			}
			return fmt.Sprintf("%s.%d", label, fn)
		}
	}
	return strings.Join(groups, ",")
}
