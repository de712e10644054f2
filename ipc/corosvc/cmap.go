package corosvc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gototem/gototem/config"
	"github.com/gototem/gototem/ipc"
)

// CS errors of corotypes.h used by the services.
const (
	csOK              = 1
	csErrLibrary      = 2
	csErrTryAgain     = 6
	csErrInvalid      = 7
	csErrNoMemory     = 8
	csErrBadHandle    = 9
	csErrBusy         = 10
	csErrAccess       = 11
	csErrNotExist     = 12
	csErrNameTooLong  = 13
	csErrExist        = 14
	csErrNoSections   = 27
	csErrNoResources  = 18
	csErrNotSupp      = 19
	csErrTooBig       = 26
	csErrNameNotFound = 17
	csErrMessage      = 22
)

// cmap request and response ids (ipc_cmap.h).
const (
	cmapSet = iota
	cmapDelete
	cmapGet
	cmapAdjustInt
	cmapIterInit
	cmapIterNext
	cmapIterFinalize
	cmapTrackAdd
	cmapTrackDelete
	cmapSetCurrentMap

	cmapResNotify        = 9
	cmapResSetCurrentMap = 10
)

// cmap value types (cmap.h CMAP_VALUETYPE_*).
const (
	vtInt8   = 1
	vtUint8  = 2
	vtInt16  = 3
	vtUint16 = 4
	vtInt32  = 5
	vtUint32 = 6
	vtInt64  = 7
	vtUint64 = 8
	vtFloat  = 9
	vtDouble = 10
	vtString = 11
	vtBinary = 12
)

// Track flags (cmap.h CMAP_TRACK_*).
const (
	trackDelete = 1
	trackModify = 2
	trackAdd    = 4
	trackPrefix = 8
)

// Sizes and offsets of ipc_cmap.h's structs (mar_name_t is {u16 length; u8 value[256]},
// both aligned(8): 264 bytes).
const (
	nameOff       = ipc.RequestHeaderSize // key_name in every request that has one
	nameValueOff  = nameOff + 8
	nameLen       = 256
	afterName     = nameOff + 264 // 280: the field after a request's key_name
	maxKeyName    = 255           // ICMAP_KEYNAME_MAXLEN
	minKeyName    = 3             // ICMAP_KEYNAME_MINLEN
	maxValueLen   = 16 << 10      // ICMAP_MAX_VALUE_LEN
	maxIterators  = 256           // per connection: corosync has no limit, a bound is ours
	maxTracks     = 256           // per connection
	notifyHdrSize = 336           // sizeof(struct res_lib_cmap_notify_callback)
)

// Value is a typed cmap value: the type and its bytes as corosync stores them (strings
// with their NUL).
type Value struct {
	Type uint8
	Data []byte
}

func (v Value) equal(o Value) bool { return v.Type == o.Type && bytes.Equal(v.Data, o.Data) }

// valueOf converts gototem's key view (config.KeyValue) to cmap's typed bytes.
func valueOf(kv config.KeyValue) Value {
	le := binary.LittleEndian
	switch kv.Type {
	case config.TypeU8:
		n, _ := strconv.ParseUint(kv.Value, 10, 8)
		return Value{vtUint8, []byte{byte(n)}}
	case config.TypeU16:
		n, _ := strconv.ParseUint(kv.Value, 10, 16)
		return Value{vtUint16, le.AppendUint16(nil, uint16(n))}
	case config.TypeU32:
		n, _ := strconv.ParseUint(kv.Value, 10, 32)
		return Value{vtUint32, le.AppendUint32(nil, uint32(n))}
	case config.TypeI32:
		n, _ := strconv.ParseInt(kv.Value, 10, 32)
		return Value{vtInt32, le.AppendUint32(nil, uint32(int32(n)))}
	case config.TypeU64:
		n, _ := strconv.ParseUint(kv.Value, 10, 64)
		return Value{vtUint64, le.AppendUint64(nil, n)}
	}
	return Value{vtString, append([]byte(kv.Value), 0)}
}

// typeLen is icmap_get_valuetype_len: the fixed size of a type, 0 for string and binary.
func typeLen(t uint8) int {
	switch t {
	case vtInt8, vtUint8:
		return 1
	case vtInt16, vtUint16:
		return 2
	case vtInt32, vtUint32, vtFloat:
		return 4
	case vtInt64, vtUint64, vtDouble:
		return 8
	}
	return 0
}

// validKeyName is icmap_check_key_name.
func validKeyName(k string) bool {
	if len(k) < minKeyName || len(k) > maxKeyName {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/' || c == ':') {
			return false
		}
	}
	return true
}

// roPrefixes and roKeys are the keys corosync 3.1.7 makes read-only (main.c
// set_icmap_ro_keys_flag): a client's set, delete or adjust of them is CS_ERR_ACCESS.
var (
	roPrefixes = []string{"internal_configuration.", "runtime.services.", "runtime.config.", "runtime.totem.", "uidgid.config.", "system.", "nodelist."}
	roKeys     = []string{"totem.crypto_cipher", "totem.crypto_hash", "totem.crypto_model", "totem.keyfile", "totem.key",
		"totem.secauth", "totem.ip_version", "totem.rrp_mode", "totem.transport", "totem.cluster_name", "totem.netmtu",
		"totem.threads", "totem.version", "totem.nodeid", "totem.clear_node_high_bit", "config.reload_in_progress",
		"config.totemconfig_reload_in_progress"}
)

func keyRO(k string) bool {
	for _, p := range roPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return slices.Contains(roKeys, k)
}

// KeySource is the node state the cmap maps are views of.
type KeySource interface {
	// CmapKeys is the default map as the node derives it (configuration and runtime keys).
	CmapKeys() []config.KeyValue
}

// StatsSource gives the stats map (corosync-cmapctl -m stats); nil serves an empty one.
type StatsSource func() []config.KeyValue

// Cmap is the cmap service.
type Cmap struct {
	node  KeySource
	stats StatsSource

	mu sync.Mutex
	// What clients changed in the default map: set keys win over the node's, deleted
	// node keys are hidden until the node's own value changes again.
	set     map[string]Value
	deleted map[string]Value // the node value that was deleted
	last    map[string]Value // the effective default map the tracks last saw
	conns   map[*ipc.Conn]*cmapConn
	nextH   uint64
}

type cmapConn struct {
	stats  bool // the connection switched to the stats map
	iters  map[uint64][]string
	tracks map[uint64]*cmapTrack
}

type cmapTrack struct {
	key   string
	flags int32
	inst  uint64
}

// NewCmap returns the cmap service over the node's keys.
func NewCmap(node KeySource, stats StatsSource) *Cmap {
	return &Cmap{node: node, stats: stats, set: map[string]Value{}, deleted: map[string]Value{}, conns: map[*ipc.Conn]*cmapConn{}}
}

// Connect implements ipc.Service.
func (m *Cmap) Connect(c *ipc.Conn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns[c] = &cmapConn{iters: map[uint64][]string{}, tracks: map[uint64]*cmapTrack{}}
	return nil
}

// Disconnect implements ipc.Service.
func (m *Cmap) Disconnect(c *ipc.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.conns, c)
}

// current is the effective default map. Caller holds mu. The node's stats.* keys belong to
// the stats map (corosync-cmapctl -m stats), as corosync keeps them apart from icmap.
func (m *Cmap) current() map[string]Value {
	out := map[string]Value{}
	for _, kv := range m.node.CmapKeys() {
		if strings.HasPrefix(kv.Key, "stats.") {
			continue
		}
		v := valueOf(kv)
		if d, ok := m.deleted[kv.Key]; ok {
			if d.equal(v) {
				continue
			}
			delete(m.deleted, kv.Key) // the node changed it since: it is back
		}
		out[kv.Key] = v
	}
	for k, v := range m.set {
		out[k] = v
	}
	return out
}

func (m *Cmap) statsMap() map[string]Value {
	out := map[string]Value{}
	for _, kv := range m.node.CmapKeys() {
		if strings.HasPrefix(kv.Key, "stats.") {
			out[kv.Key] = valueOf(kv)
		}
	}
	if m.stats != nil {
		for _, kv := range m.stats() {
			out[kv.Key] = valueOf(kv)
		}
	}
	return out
}

// Refresh tells the tracks what changed in the node's keys: the daemon calls it on every
// membership and quorum change.
func (m *Cmap) Refresh() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notifyLocked()
}

// notifyLocked diffs the map against what tracks last saw and sends the notifications.
func (m *Cmap) notifyLocked() {
	cur := m.current()
	if m.last == nil {
		m.last = cur
		return
	}
	keys := make([]string, 0, len(cur)+len(m.last))
	for k := range cur {
		keys = append(keys, k)
	}
	for k := range m.last {
		if _, ok := cur[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		nv, nok := cur[k]
		ov, ook := m.last[k]
		var ev int32
		switch {
		case nok && !ook:
			ev = trackAdd
		case !nok && ook:
			ev = trackDelete
		case nok && ook && !nv.equal(ov):
			ev = trackModify
		default:
			continue
		}
		for c, cc := range m.conns {
			if cc.stats {
				continue
			}
			for _, t := range cc.tracks {
				if t.flags&ev == 0 {
					continue
				}
				if t.flags&trackPrefix != 0 {
					if !strings.HasPrefix(k, t.key) {
						continue
					}
				} else if k != t.key {
					continue
				}
				c.SendEventRaw(notifyMsg(t.inst, k, ev, nv, ov))
			}
		}
	}
	m.last = cur
}

// notifyMsg is a res_lib_cmap_notify_callback followed by the new and the old value.
func notifyMsg(inst uint64, key string, ev int32, nv, ov Value) []byte {
	b := make([]byte, notifyHdrSize, notifyHdrSize+len(nv.Data)+len(ov.Data))
	le := binary.LittleEndian
	le.PutUint64(b[24:], inst)
	putName(b[32:], key)
	le.PutUint32(b[296:], uint32(ev))
	b[304] = nv.Type
	b[312] = ov.Type
	le.PutUint64(b[320:], uint64(len(nv.Data)))
	le.PutUint64(b[328:], uint64(len(ov.Data)))
	b = append(b, nv.Data...)
	b = append(b, ov.Data...)
	ipc.PutResponseHeader(b, cmapResNotify, len(b), csOK)
	return b
}

// putName writes a mar_name_t.
func putName(b []byte, s string) {
	binary.LittleEndian.PutUint16(b, uint16(len(s)))
	copy(b[8:8+nameLen], s)
}

// name reads a request's key_name as corosync does: the C string in value.
func name(msg []byte) (string, bool) {
	if len(msg) < afterName {
		return "", false
	}
	v := msg[nameValueOff : nameValueOff+nameLen]
	if i := bytes.IndexByte(v, 0); i >= 0 {
		return string(v[:i]), true
	}
	return string(v), true // no NUL: corosync would read past it; the check rejects it
}

func header(id int32, csErr int32, size int) []byte {
	b := make([]byte, size)
	ipc.PutResponseHeader(b, id, size, csErr)
	return b
}

// Request implements ipc.Service.
func (m *Cmap) Request(c *ipc.Conn, id int32, msg []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cc := m.conns[c]
	if cc == nil {
		return
	}
	le := binary.LittleEndian
	switch id {
	case cmapSet:
		key, ok := name(msg)
		if !ok || len(msg) < 296 {
			c.RespondRaw(header(cmapSet, csErrInvalid, 24))
			return
		}
		vlen := le.Uint64(msg[280:])
		typ := msg[288]
		var err int32
		switch {
		case cc.stats:
			err = csErrNotSupp
		case keyRO(key):
			err = csErrAccess
		case !validKeyName(key):
			err = csErrNameTooLong
		case vlen > maxValueLen || vlen > uint64(len(msg)-296):
			err = csErrInvalid
		default:
			err = m.setLocked(key, typ, msg[296:296+vlen])
		}
		c.RespondRaw(header(cmapSet, err, 24))
	case cmapDelete:
		key, ok := name(msg)
		var err int32 = csOK
		switch {
		case !ok:
			err = csErrInvalid
		case cc.stats:
			err = csErrNotSupp
		case keyRO(key):
			err = csErrAccess
		case !validKeyName(key):
			err = csErrNameTooLong
		default:
			if _, exists := m.current()[key]; !exists {
				err = csErrNotExist
				break
			}
			delete(m.set, key)
			// If the node has the key too, hide its present value.
			for _, kv := range m.node.CmapKeys() {
				if kv.Key == key {
					m.deleted[key] = valueOf(kv)
				}
			}
			m.notifyLocked()
		}
		c.RespondRaw(header(cmapDelete, err, 24))
	case cmapGet:
		key, ok := name(msg)
		if !ok || len(msg) < 288 {
			c.RespondRaw(header(cmapGet, csErrInvalid, 40))
			return
		}
		want := le.Uint64(msg[280:])
		if want > uint64(c.MaxMsgSize()-40) {
			c.RespondRaw(header(cmapGet, csErrInvalid, 40))
			return
		}
		v, ok := m.mapOf(cc)[key]
		switch {
		case !ok:
			c.RespondRaw(header(cmapGet, csErrNotExist, 40))
		case want > 0 && want < uint64(len(v.Data)):
			// icmap_get: a buffer shorter than the value is an invalid parameter.
			c.RespondRaw(header(cmapGet, csErrInvalid, 40))
		default:
			b := header(cmapGet, csOK, 40+int(want))
			le.PutUint64(b[24:], uint64(len(v.Data)))
			b[32] = v.Type
			if want > 0 {
				copy(b[40:], v.Data)
			}
			c.RespondRaw(b)
		}
	case cmapAdjustInt:
		key, ok := name(msg)
		if !ok || len(msg) < 284 {
			c.RespondRaw(header(cmapAdjustInt, csErrInvalid, 24))
			return
		}
		step := int32(le.Uint32(msg[280:]))
		var err int32
		switch {
		case cc.stats:
			err = csErrNotSupp
		case keyRO(key):
			err = csErrAccess
		default:
			err = m.adjustLocked(key, step)
		}
		c.RespondRaw(header(cmapAdjustInt, err, 24))
	case cmapIterInit:
		b := header(cmapIterInit, csOK, 32)
		prefix, ok := name(msg)
		if !ok {
			ipc.PutResponseHeader(b, cmapIterInit, 32, csErrInvalid)
			c.RespondRaw(b)
			return
		}
		if le.Uint16(msg[nameOff:]) == 0 {
			prefix = ""
		}
		if len(cc.iters) >= maxIterators {
			ipc.PutResponseHeader(b, cmapIterInit, 32, csErrNoResources)
			c.RespondRaw(b)
			return
		}
		var keys []string
		for k := range m.mapOf(cc) {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys) // icmap's trie iterates in byte order
		m.nextH++
		cc.iters[m.nextH] = keys
		le.PutUint64(b[24:], m.nextH)
		c.RespondRaw(b)
	case cmapIterNext:
		b := header(cmapIterNext, csOK, 304)
		if len(msg) < 24 {
			ipc.PutResponseHeader(b, cmapIterNext, 304, csErrInvalid)
			c.RespondRaw(b)
			return
		}
		h := le.Uint64(msg[16:])
		keys, ok := cc.iters[h]
		if !ok {
			ipc.PutResponseHeader(b, cmapIterNext, 304, csErrBadHandle)
			c.RespondRaw(b)
			return
		}
		cur := m.mapOf(cc)
		for len(keys) > 0 {
			k := keys[0]
			keys = keys[1:]
			v, ok := cur[k]
			if !ok {
				continue // deleted since the iteration began
			}
			cc.iters[h] = keys
			putName(b[24:], k)
			le.PutUint64(b[288:], uint64(len(v.Data)))
			b[296] = v.Type
			c.RespondRaw(b)
			return
		}
		cc.iters[h] = keys
		ipc.PutResponseHeader(b, cmapIterNext, 304, csErrNoSections)
		c.RespondRaw(b)
	case cmapIterFinalize:
		err := int32(csOK)
		if len(msg) < 24 {
			err = csErrInvalid
		} else if h := le.Uint64(msg[16:]); !hasKey(cc.iters, h) {
			err = csErrBadHandle
		} else {
			delete(cc.iters, h)
		}
		c.RespondRaw(header(cmapIterFinalize, err, 24))
	case cmapTrackAdd:
		b := header(cmapTrackAdd, csOK, 32)
		key, ok := name(msg)
		if !ok || len(msg) < 296 {
			ipc.PutResponseHeader(b, cmapTrackAdd, 32, csErrInvalid)
			c.RespondRaw(b)
			return
		}
		if len(cc.tracks) >= maxTracks {
			ipc.PutResponseHeader(b, cmapTrackAdd, 32, csErrNoResources)
			c.RespondRaw(b)
			return
		}
		if m.last == nil {
			m.last = m.current()
		}
		m.nextH++
		cc.tracks[m.nextH] = &cmapTrack{key: key, flags: int32(le.Uint32(msg[280:])), inst: le.Uint64(msg[288:])}
		le.PutUint64(b[24:], m.nextH)
		c.RespondRaw(b)
	case cmapTrackDelete:
		b := header(cmapTrackDelete, csOK, 32)
		if len(msg) < 24 {
			ipc.PutResponseHeader(b, cmapTrackDelete, 32, csErrInvalid)
			c.RespondRaw(b)
			return
		}
		h := le.Uint64(msg[16:])
		t, ok := cc.tracks[h]
		if !ok {
			ipc.PutResponseHeader(b, cmapTrackDelete, 32, csErrBadHandle)
		} else {
			le.PutUint64(b[24:], t.inst)
			delete(cc.tracks, h)
		}
		c.RespondRaw(b)
	case cmapSetCurrentMap:
		err := int32(csOK)
		if len(msg) < 20 {
			err = csErrInvalid
		} else {
			switch le.Uint32(msg[16:]) {
			case 0:
				cc.stats = false
			case 1:
				cc.stats = true
			default:
				err = csErrInvalid
			}
		}
		c.RespondRaw(header(cmapResSetCurrentMap, err, 24))
	default:
		// corosync answers an id past its handler table with CS_ERR_INVALID_PARAM, id 0.
		c.RespondRaw(header(0, csErrInvalid, 24))
	}
}

func hasKey[K comparable, V any](m map[K]V, k K) bool { _, ok := m[k]; return ok }

func (m *Cmap) mapOf(cc *cmapConn) map[string]Value {
	if cc.stats {
		return m.statsMap()
	}
	return m.current()
}

// setLocked is icmap_set: checks the value against its type, stores it, notifies.
func (m *Cmap) setLocked(key string, typ uint8, data []byte) int32 {
	switch {
	case typ < vtInt8 || typ > vtBinary:
		return csErrInvalid
	case typ == vtString:
		// icmap keeps strings with their NUL; value_len may be shorter than the string
		// but never longer than it plus the NUL.
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			data = append(slices.Clone(data), 0)
		} else {
			data = slices.Clone(data[:i+1])
		}
	case typ == vtBinary:
		data = slices.Clone(data)
	default:
		if len(data) != typeLen(typ) {
			return csErrInvalid
		}
		data = slices.Clone(data)
	}
	m.set[key] = Value{typ, data}
	delete(m.deleted, key)
	m.notifyLocked()
	return csOK
}

// adjustLocked is icmap_adjust_int: integers only, wrapping as C does.
func (m *Cmap) adjustLocked(key string, step int32) int32 {
	v, ok := m.current()[key]
	if !ok {
		return csErrNotExist
	}
	le := binary.LittleEndian
	d := slices.Clone(v.Data)
	switch v.Type {
	case vtInt8, vtUint8:
		d[0] = byte(int32(d[0]) + step)
	case vtInt16, vtUint16:
		le.PutUint16(d, uint16(int32(le.Uint16(d))+step))
	case vtInt32, vtUint32:
		le.PutUint32(d, uint32(int32(le.Uint32(d))+step))
	case vtInt64, vtUint64:
		le.PutUint64(d, uint64(int64(le.Uint64(d))+int64(step)))
	default:
		return csErrInvalid
	}
	m.set[key] = Value{v.Type, d}
	m.notifyLocked()
	return csOK
}

// Allowed is corosync's IPC access rule for a client that is not root
// (cs_ipcs_connection_accept): a u8 1 under uidgid.uid.<uid>, uidgid.config.uid.<uid>,
// uidgid.gid.<gid> or uidgid.config.gid.<gid>, in the map as it is now (a key set with
// corosync-cmapctl counts, as in corosync).
func (m *Cmap) Allowed(uid, gid uint32) bool {
	m.mu.Lock()
	cur := m.current()
	m.mu.Unlock()
	for _, k := range []string{
		"uidgid.uid." + strconv.FormatUint(uint64(uid), 10),
		"uidgid.config.uid." + strconv.FormatUint(uint64(uid), 10),
		"uidgid.gid." + strconv.FormatUint(uint64(gid), 10),
		"uidgid.config.gid." + strconv.FormatUint(uint64(gid), 10),
	} {
		if v, ok := cur[k]; ok && v.Type == vtUint8 && len(v.Data) == 1 && v.Data[0] == 1 {
			return true
		}
	}
	return false
}

// cmapTypeNames are corosync-cmapctl's names of the value types.
var cmapTypeNames = map[uint8]string{vtInt8: "i8", vtUint8: "u8", vtInt16: "i16", vtUint16: "u16", vtInt32: "i32",
	vtUint32: "u32", vtInt64: "i64", vtUint64: "u64", vtFloat: "flt", vtDouble: "dbl", vtString: "str", vtBinary: "bin"}

// line is one key as corosync-cmapctl prints it: "key (type) = value".
func (v Value) line(key string) string {
	le := binary.LittleEndian
	d := v.Data
	var s string
	switch {
	case v.Type == vtString:
		s = string(bytes.TrimRight(d, "\x00"))
	case v.Type == vtBinary:
		s = fmt.Sprintf("%x", d)
	case typeLen(v.Type) != len(d):
		s = "?"
	case v.Type == vtInt8:
		s = strconv.Itoa(int(int8(d[0])))
	case v.Type == vtUint8:
		s = strconv.Itoa(int(d[0]))
	case v.Type == vtInt16:
		s = strconv.Itoa(int(int16(le.Uint16(d))))
	case v.Type == vtUint16:
		s = strconv.Itoa(int(le.Uint16(d)))
	case v.Type == vtInt32:
		s = strconv.Itoa(int(int32(le.Uint32(d))))
	case v.Type == vtUint32:
		s = strconv.FormatUint(uint64(le.Uint32(d)), 10)
	case v.Type == vtInt64:
		s = strconv.FormatInt(int64(le.Uint64(d)), 10)
	case v.Type == vtUint64:
		s = strconv.FormatUint(le.Uint64(d), 10)
	case v.Type == vtFloat:
		s = fmt.Sprintf("%f", math.Float32frombits(le.Uint32(d)))
	case v.Type == vtDouble:
		s = fmt.Sprintf("%f", math.Float64frombits(le.Uint64(d)))
	}
	return key + " (" + cmapTypeNames[v.Type] + ") = " + s
}

// Dump is everything the service serves, as corosync-cmapctl prints it: the default map
// (the node's keys with clients' writes and deletes applied) and the stats map, one line per
// key, sorted. gototem's control socket shows this same view, so the daemon keeps one.
func (m *Cmap) Dump() []string {
	m.mu.Lock()
	cur, st := m.current(), m.statsMap()
	m.mu.Unlock()
	out := make([]string, 0, len(cur)+len(st))
	for _, mp := range []map[string]Value{cur, st} {
		for k, v := range mp {
			out = append(out, v.line(k))
		}
	}
	slices.Sort(out)
	return out
}
