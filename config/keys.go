package config

import (
	"sort"
	"strconv"
	"strings"
)

// Type is the cmap type of a key, as corosync-cmapctl names it.
type Type uint8

const (
	TypeStr Type = iota
	TypeU8
	TypeU16
	TypeU32
	TypeI32
	TypeU64
)

func (t Type) String() string {
	switch t {
	case TypeU8:
		return "u8"
	case TypeU16:
		return "u16"
	case TypeU32:
		return "u32"
	case TypeI32:
		return "i32"
	case TypeU64:
		return "u64"
	}
	return "str"
}

// KeyValue is one line of the key view: `Key (Type) = Value`. Line is the file line the
// key came from, 0 for keys corosync derives at startup (runtime.config.*, generated node
// ids, derived interface addresses).
type KeyValue struct {
	Key   string
	Type  Type
	Value string
	Line  int
}

// String formats the pair as corosync-cmapctl prints it.
func (kv KeyValue) String() string {
	return kv.Key + " (" + kv.Type.String() + ") = " + kv.Value
}

// Key-path limits from corosync's icmap: a path is at most 254 characters (the store's
// name buffer is 256 with the NUL and the check is "< 255"), at least 3, and uses a small
// alphabet. corosync reports all violations with the misleading CS_ERR_NAME_TOO_LONG.
const (
	maxKeyPath = 254
	minKeyPath = 3
	// maxLine is the longest line corosync's 512-byte read buffer holds next to the
	// newline and the terminating NUL.
	maxLine = 510
)

func validKeyName(path string) bool {
	if len(path) < minKeyPath || len(path) > maxKeyPath {
		return false
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-', c == '/', c == ':':
		default:
			return false
		}
	}
	return true
}

// Typed keys of corosync 3.1.7's parser (corosync-conf.md §1.5); everything else is a
// string. The 3.1.7-only rrp_* timers stay typed because gototem gives them meaning.
var totemU32 = map[string]bool{
	"version": true, "nodeid": true, "threads": true, "token": true, "token_coefficient": true,
	"token_retransmit": true, "token_warning": true, "hold": true,
	"token_retransmits_before_loss_const": true, "join": true, "send_join": true,
	"consensus": true, "merge": true, "downcheck": true, "fail_recv_const": true,
	"seqno_unchanged_const": true, "heartbeat_failures_allowed": true,
	"max_network_delay": true, "window_size": true, "max_messages": true,
	"miss_count_const": true, "knet_pmtud_interval": true, "knet_mtu": true,
	"knet_compression_threshold": true, "netmtu": true,
	"rrp_token_expired_timeout": true, "rrp_problem_count_timeout": true,
	"rrp_problem_count_threshold": true, "rrp_problem_count_mcast_threshold": true,
	"rrp_autorecovery_check_timeout": true,
}

var interfaceTyped = map[string]Type{
	"mcastport": TypeU16, "ttl": TypeU8, "knet_link_priority": TypeU8,
	"knet_ping_interval": TypeU32, "knet_ping_timeout": TypeU32,
	"knet_ping_precision": TypeU32, "knet_pong_count": TypeU32,
}

var quorumTyped = map[string]Type{
	"expected_votes": TypeU32, "votes": TypeU32, "last_man_standing_window": TypeU32,
	"leaving_timeout": TypeU32, "two_node": TypeU8, "expected_votes_tracking": TypeU8,
	"allow_downscale": TypeU8, "wait_for_all": TypeU8, "auto_tie_breaker": TypeU8,
	"last_man_standing": TypeU8,
}

var quorumDeviceTyped = map[string]Type{
	"timeout": TypeU32, "sync_timeout": TypeU32, "votes": TypeU32, "master_wins": TypeU8,
}

// keyType says which type corosync's parser stores path with.
func keyType(path string) Type {
	p := strings.Split(path, ".")
	switch p[0] {
	case "totem":
		if len(p) == 2 {
			switch {
			case totemU32[p[1]]:
				return TypeU32
			case p[1] == "knet_compression_level":
				return TypeI32
			case p[1] == "config_version":
				return TypeU64
			}
		}
		if len(p) == 4 && p[1] == "interface" && isDigits(p[2]) {
			return interfaceTyped[p[3]]
		}
	case "quorum":
		if len(p) == 2 {
			return quorumTyped[p[1]]
		}
		if len(p) == 3 && p[1] == "device" {
			return quorumDeviceTyped[p[2]]
		}
	case "nodelist":
		if len(p) == 4 && p[1] == "node" && (p[3] == "nodeid" || p[3] == "quorum_votes") {
			return TypeU32
		}
	case "pload":
		if len(p) == 2 && (p[1] == "count" || p[1] == "size") {
			return TypeU32
		}
	case "resources":
		if len(p) == 2 && p[1] == "watchdog_timeout" {
			return TypeU32
		}
		if len(p) >= 3 && (p[1] == "system" || p[1] == "process") && p[len(p)-1] == "poll_period" {
			return TypeU64
		}
	case "uidgid":
		if len(p) >= 3 && p[1] == "config" {
			return TypeU8
		}
	}
	return TypeStr
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseTyped checks value the way corosync's safe_atoq does: optional sign, decimal
// digits, nothing else, then the type's range. It returns the canonical decimal text.
func parseTyped(t Type, value string) (string, bool) {
	s := value
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if !isDigits(s) {
		return "", false
	}
	if t == TypeU64 {
		if value[0] == '-' {
			// "-0" is zero for strtoll; anything else is out of range.
			if strings.Trim(s, "0") != "" {
				return "", false
			}
			return "0", true
		}
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return "", false
		}
		return strconv.FormatUint(u, 10), true
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return "", false
	}
	lo, hi := typeRange(t)
	if n < lo || n > hi {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

func typeRange(t Type) (int64, int64) {
	switch t {
	case TypeU8:
		return 0, 255
	case TypeU16:
		return 0, 65535
	case TypeU32:
		return 0, 4294967295
	case TypeI32:
		return -2147483648, 2147483647
	}
	return 0, 0
}

func typeError(path string, t Type, value string) string {
	if t == TypeU64 {
		// corosync 3.1.10's wording; 3.1.7 aborts on an assertion here.
		return `Value of key "` + path + `" is expected to be unsigned integer, but "` + value + `" was given`
	}
	lo, hi := typeRange(t)
	return `Value of key "` + path + `" is expected to be integer in range (` +
		strconv.FormatInt(lo, 10) + ".." + strconv.FormatInt(hi, 10) + `), but "` + value + `" was given`
}

// entry is one stored key.
type entry struct {
	typ   Type
	value string // canonical text; decimal for integers
	line  int
}

// keyMap is the parser's output: the icmap picture of the file.
type keyMap map[string]*entry

func (m keyMap) has(path string) bool { _, ok := m[path]; return ok }

func (m keyMap) line(path string) int {
	if e, ok := m[path]; ok {
		return e.line
	}
	return 0
}

// str reads a string key. Like corosync's typed reads it ignores a key of another type.
func (m keyMap) str(path string) (string, bool) {
	e, ok := m[path]
	if !ok || e.typ != TypeStr {
		return "", false
	}
	return e.value, true
}

func (m keyMap) strDefault(path, def string) string {
	if v, ok := m.str(path); ok {
		return v
	}
	return def
}

// uint reads an unsigned integer key of any width.
func (m keyMap) uint(path string) (uint64, bool) {
	e, ok := m[path]
	if !ok || e.typ == TypeStr || e.typ == TypeI32 {
		return 0, false
	}
	v, err := strconv.ParseUint(e.value, 10, 64)
	return v, err == nil
}

func (m keyMap) int32(path string) (int32, bool) {
	e, ok := m[path]
	if !ok || e.typ != TypeI32 {
		return 0, false
	}
	v, err := strconv.ParseInt(e.value, 10, 32)
	return int32(v), err == nil
}

// under returns the sorted keys starting with prefix.
func (m keyMap) under(prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// list returns every key as a KeyValue, sorted byte-wise as corosync-cmapctl prints them.
func (m keyMap) list() []KeyValue {
	out := make([]KeyValue, 0, len(m))
	for k, e := range m {
		out = append(out, KeyValue{Key: k, Type: e.typ, Value: e.value, Line: e.line})
	}
	sortKeys(out)
	return out
}

func sortKeys(kv []KeyValue) {
	sort.Slice(kv, func(i, j int) bool { return kv[i].Key < kv[j].Key })
}
