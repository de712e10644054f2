package stack

import (
	"encoding/binary"
	"fmt"
	"maps"

	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
)

// cmap's part of the service sync (services-sync.md §3.2): in its phase every corosync node
// multicasts CMAP_MCAST (reason SYNC) with one item, totem.config_version, and every receiver
// publishes the sender's value as runtime.members.<sender>.config_version. gototem sends the same
// message, so real peers list it too, and records what peers send. A reload that changes the
// version multicasts the same message with reason NEW_CONFIG_VERSION.
//
// The message is also corosync's guard against a node that was down while the cluster's
// configuration moved on (the Proxmox "Received config version (X) is different than my
// config version (Y)! Exiting"): at the end of a node's first sync with peers, a node whose
// own version is not 0 and lower than a peer's asks to shut down. Only the first sync counts
// (cmap.c's cmap_first_sync), and a sync with an empty transitional list (a node alone) is
// not one.

const (
	cmapMcastHeader = 48  // qb header, reason, no_items and two reserved bytes, each padded to 8
	cmapItemKey     = 8   // key bytes[256] after the u16 key length and its padding
	cmapItemType    = 264 // u8 value type (0: key absent, 8: UINT64)
	cmapItemLen     = 272 // u64 value length
	cmapItemValue   = 280
	cmapTypeUint64  = 8
	cmapConfigKey   = "totem.config_version"

	cmapReasonSync             = 0 // CMAP_MCAST_REASON_SYNC
	cmapReasonNewConfigVersion = 1 // CMAP_MCAST_REASON_NEW_CONFIG_VERSION
)

// encodeCmapSync builds the CMAP_MCAST of a sync: 328 bytes without a config_version, 336 with.
// The id stays 0 (service 0, function 0), as corosync leaves it in its zeroed buffer.
func encodeCmapSync(version *uint64) []byte { return encodeCmapMcast(cmapReasonSync, version) }

// encodeCmapMcast is CMAP_MCAST with its one totem.config_version item, for either reason.
func encodeCmapMcast(reason byte, version *uint64) []byte {
	size := cmapMcastHeader + cmapItemValue
	if version != nil {
		size += 8
	}
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b[4:], uint32(size))
	b[16] = reason
	b[24] = 1 // no_items
	it := b[cmapMcastHeader:]
	le.PutUint16(it, uint16(len(cmapConfigKey)))
	copy(it[cmapItemKey:], cmapConfigKey)
	if version != nil {
		it[cmapItemType] = cmapTypeUint64
		le.PutUint64(it[cmapItemLen:], 8)
		le.PutUint64(it[cmapItemValue:], *version)
	}
	return b
}

// decodeCmapConfigVersion reads the config_version item of a CMAP_MCAST: ok is false for a
// message without one or a malformed one. A key sent absent (type 0) reads as 0, which is what
// corosync then publishes.
func decodeCmapConfigVersion(body []byte, swapped bool) (v uint64, ok bool) {
	var bo binary.ByteOrder = binary.LittleEndian
	if swapped {
		bo = binary.BigEndian
	}
	if len(body) < cmapMcastHeader+cmapItemValue || body[24] < 1 {
		return 0, false
	}
	it := body[cmapMcastHeader:]
	klen := int(bo.Uint16(it))
	if klen != len(cmapConfigKey) || string(it[cmapItemKey:cmapItemKey+klen]) != cmapConfigKey {
		return 0, false
	}
	switch it[cmapItemType] {
	case 0:
		return 0, true
	case cmapTypeUint64:
		// corosync copies value length bytes into a u64: anything but 8 is not a message of
		// a sane node.
		if bo.Uint64(it[cmapItemLen:]) != 8 || len(it) < cmapItemValue+8 {
			return 0, false
		}
		return bo.Uint64(it[cmapItemValue:]), true
	}
	return 0, false
}

// cmapSync is cmap's sync state: the transitional list's size, this node's version and the
// highest a peer sent in this sync, and whether the first sync with peers was checked.
type cmapSync struct {
	trans         int
	mine, highest uint64
	checked       bool
}

// ShutdownRequest is a service asking this node to leave the ring and exit, as corosync's
// api->shutdown_request: cmap does on a config_version mismatch. Reason is corosync's log line.
type ShutdownRequest struct {
	Reason string
}

// cmapParticipant is cmap's sync participant: one CMAP_MCAST in its phase.
type cmapParticipant struct{ s *Stack }

func (c cmapParticipant) SyncInit(_ srp.RingID, _, trans []srp.NodeID) {
	cs := &c.s.cmap
	cs.trans = len(trans)
	cs.mine = 0
	if v := c.s.cfg.ConfigVersion; v != nil {
		cs.mine = *v
	}
	cs.highest = cs.mine
}

func (c cmapParticipant) SyncProcess() ([][]byte, bool) {
	return [][]byte{encodeCmapSync(c.s.cfg.ConfigVersion)}, true
}

// SyncActivate is cmap.c's check, in its order: a node alone, a sync after the first, and a
// node without a version take no action.
func (c cmapParticipant) SyncActivate() {
	cs := &c.s.cmap
	if cs.trans == 0 || cs.checked {
		return
	}
	cs.checked = true
	if cs.mine == 0 || cs.highest == cs.mine {
		return
	}
	c.s.counters.ConfigVersionMismatch++
	c.s.rd.Events = append(c.s.rd.Events, Event{ShutdownRequest: &ShutdownRequest{
		Reason: fmt.Sprintf("Received config version (%d) is different than my config version (%d)! Exiting", cs.highest, cs.mine),
	}})
}

func (c cmapParticipant) SyncAbort() {}

// deliverCmap records a peer's config_version; a malformed CMAP_MCAST is counted. Both
// reasons count towards the sync's highest version, as in corosync.
func (s *Stack) deliverCmap(sender srp.NodeID, body []byte, swapped bool) {
	v, ok := decodeCmapConfigVersion(body, swapped)
	if !ok {
		s.counters.CmapMalformed++
		return
	}
	if s.configVersions == nil {
		s.configVersions = map[srp.NodeID]uint64{}
	}
	s.configVersions[sender] = v
	if sender != s.self && v > s.cmap.highest {
		s.cmap.highest = v
	}
}

// setConfigVersion is a reload's new totem.config_version: when it changed, the ring hears it
// in a CMAP_MCAST with reason NEW_CONFIG_VERSION, as corosync's tracker on the key sends.
func (s *Stack) setConfigVersion(v *uint64) error {
	same := (v == nil) == (s.cfg.ConfigVersion == nil) && (v == nil || *v == *s.cfg.ConfigVersion)
	s.cfg.ConfigVersion = v
	if same {
		return nil
	}
	return s.sendApp(services.Outbound{Group: "a", Body: encodeCmapMcast(cmapReasonNewConfigVersion, v)}, srp.Agreed, true)
}

// ConfigVersions are the config_version values received in cmap's sync messages, by sender
// (runtime.members.<id>.config_version).
func (s *Stack) ConfigVersions() map[srp.NodeID]uint64 { return maps.Clone(s.configVersions) }

// serviceCount bounds the service ids counted (cmap 0 … wd 7).
const serviceCount = 8

// ServiceMessages counts exec messages per service and function id, as corosync publishes
// them under runtime.services.<service>.<function>.tx/rx.
type ServiceMessages struct {
	Tx, Rx [serviceCount][8]uint64
}

func (m *ServiceMessages) count(dir *[serviceCount][8]uint64, body []byte, swapped bool) {
	if len(body) < 4 {
		return
	}
	id := readU32(body, swapped)
	svc, fn := id>>16, id&0xffff
	if svc < serviceCount && fn < 8 {
		dir[svc][fn]++
	}
}

// ServiceMessages returns the exec message counters.
func (s *Stack) ServiceMessages() ServiceMessages { return s.svcMsgs }

// countTx counts a service body handed to totem (group "a").
func (s *Stack) countTx(group string, body []byte) {
	if group == "a" {
		s.svcMsgs.count(&s.svcMsgs.Tx, body, false)
	}
}

// cpgMcastFunction is MESSAGE_REQ_EXEC_CPG_MCAST's function id, counted on Send's fast path,
// which builds the message without a body to read it from.
const cpgMcastFunction = 3
