// Package capture reads pcap files of corosync 3 traffic and decodes every Totem datagram
// with srp's codec: bare Totem (udp/udpu transports) and Totem inside knet packets (the
// knet transport, corosync 3's default), opened with the authkey when encrypted.
//
// It owns the gopacket side of gototem: a registered gopacket layer type for Totem on the
// corosync UDP ports and an iterator over the datagrams of a capture file. It keeps
// gopacket out of srp and knet, and must not grow protocol logic of its own: decoding is
// srp's and knet's codecs (knet's receive state de-duplicates and reassembles as a
// receiving node would), interpretation is left to the callers (cmd/gototem pcap, tests).
package capture

import (
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/gototem/gototem/srp"
)

// Message is the decoded form of a Totem datagram: one of *srp.ORFToken, *srp.Mcast,
// *srp.MergeDetect, *srp.Join, *srp.CommitToken, *srp.TokenHoldCancel.
type Message interface {
	Decode(b []byte) error
	AppendEncode(dst []byte) []byte
	EncodedLen() int
}

// DefaultPorts are corosync's: mcastport 5405 receives everything; with transport udp the
// sender's socket is bound to mcastport-1, so 5404 appears as a source port.
var DefaultPorts = []uint16{5404, 5405}

// LayerTypeTotem is the gopacket layer of one Totem datagram (the whole UDP payload). An
// encapsulated MCAST (recovery re-send) is followed by a second Totem layer holding the
// old-ring MCAST it carries; a normal MCAST by a gopacket Payload layer (its totempg packet).
// 5405 is in gopacket's application-specific range (>= 2000).
const LayerTypeTotem = gopacket.LayerType(5405)

func init() {
	gopacket.RegisterLayerType(int(LayerTypeTotem), gopacket.LayerTypeMetadata{
		Name:    "Totem",
		Decoder: gopacket.DecodeFunc(decodeTotem),
	})
	for _, p := range DefaultPorts {
		RegisterPort(p)
	}
}

// RegisterPort makes gopacket decode UDP datagrams to or from port as Totem, for clusters
// with a non-default mcastport. It changes gopacket's global port table: call it before
// decoding, not concurrently with it.
func RegisterPort(port uint16) {
	layers.RegisterUDPPortLayerType(layers.UDPPort(port), LayerTypeTotem)
}

// Totem is the decoded layer. Contents is the whole datagram; Payload is an MCAST's
// payload (nil for the other types).
type Totem struct {
	layers.BaseLayer
	Header  srp.Header
	Swapped bool // the sender wrote big-endian
	Message Message
}

func (t *Totem) LayerType() gopacket.LayerType { return LayerTypeTotem }

// CanDecode and NextLayerType make Totem a gopacket.DecodingLayer, so it also works with
// a DecodingLayerParser.
func (t *Totem) CanDecode() gopacket.LayerClass { return LayerTypeTotem }

func (t *Totem) NextLayerType() gopacket.LayerType {
	m, ok := t.Message.(*srp.Mcast)
	switch {
	case !ok || len(m.Payload) == 0:
		return gopacket.LayerTypeZero
	case t.Header.Encapsulated == srp.Encapsulated:
		return LayerTypeTotem
	default:
		return gopacket.LayerTypePayload
	}
}

// Payload makes Totem a gopacket.ApplicationLayer.
func (t *Totem) Payload() []byte { return t.BaseLayer.Payload }

// DecodeFromBytes decodes one datagram with srp's codec; failures are the codec's
// *srp.DecodeError. A Message of the right type already in t is reused.
func (t *Totem) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	h, swapped, err := srp.PeekHeader(data)
	if err != nil {
		return err
	}
	m := t.Message
	if m == nil || messageType(m) != h.Type {
		m = newMessage(h.Type)
	}
	if err := m.Decode(data); err != nil {
		return err
	}
	t.Header, t.Swapped, t.Message = h, swapped, m
	t.Contents, t.BaseLayer.Payload = data, nil
	if mc, ok := m.(*srp.Mcast); ok {
		t.BaseLayer.Payload = mc.Payload
	}
	return nil
}

func (t *Totem) String() string {
	return fmt.Sprintf("Totem %s from %d (%d bytes)", t.Header.Type, t.Header.NodeID, len(t.Contents))
}

func decodeTotem(data []byte, p gopacket.PacketBuilder) error {
	t := &Totem{}
	if err := t.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(t)
	p.SetApplicationLayer(t)
	next := t.NextLayerType()
	if next == gopacket.LayerTypeZero {
		return nil
	}
	return p.NextDecoder(next)
}

// newMessage returns an empty message for a type PeekHeader accepted.
func newMessage(t srp.MessageType) Message {
	switch t {
	case srp.TypeORFToken:
		return new(srp.ORFToken)
	case srp.TypeMcast:
		return new(srp.Mcast)
	case srp.TypeMergeDetect:
		return new(srp.MergeDetect)
	case srp.TypeJoin:
		return new(srp.Join)
	case srp.TypeCommitToken:
		return new(srp.CommitToken)
	default:
		return new(srp.TokenHoldCancel)
	}
}

// messageType is the wire type of a decoded message.
func messageType(m Message) srp.MessageType {
	switch m.(type) {
	case *srp.ORFToken:
		return srp.TypeORFToken
	case *srp.Mcast:
		return srp.TypeMcast
	case *srp.MergeDetect:
		return srp.TypeMergeDetect
	case *srp.Join:
		return srp.TypeJoin
	case *srp.CommitToken:
		return srp.TypeCommitToken
	default:
		return srp.TypeTokenHoldCancel
	}
}
