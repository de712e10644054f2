package config

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
)

// The grammar is corosync 3.1's coroparse: one construct per line, no quoting, whole-line
// comments, `name {` opens a section, `key: value` stores a key, `}` closes. Special
// sections re-home their keys (interface, node, logger_subsys, logging_daemon, uidgid);
// see corosync-conf.md §1.

// isBlank is corosync's blank set; 3.1.8 added byte 0xA0 (Latin-1 no-break space).
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == 0xA0 }

func trimBlanks(s string) string {
	i, j := 0, len(s)
	for i < j && isBlank(s[i]) {
		i++
	}
	for j > i && isBlank(s[j-1]) {
		j--
	}
	return s[i:j]
}

func trimLeftBlanks(s string) string {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return s[i:]
}

func trimRightBlanks(s string) string {
	j := len(s)
	for j > 0 && isBlank(s[j-1]) {
		j--
	}
	return s[:j]
}

// trimName strips what corosync strips from a section or key name: surrounding blanks
// and trailing ':' and '{' (so `totem: {` names the section "totem").
func trimName(s string) string {
	for {
		t := trimBlanks(s)
		t = strings.TrimRight(t, ":{")
		if t == s {
			return t
		}
		s = t
	}
}

type frameKind uint8

const (
	kindPlain     frameKind = iota
	kindInterface           // totem.interface: keys collected, emitted at '}' under the link number
	kindMember              // totem.interface.member: only memberaddr
	kindNode                // nodelist.node: numbered by position
	kindSubsys              // logging.logger_subsys: needs subsys
	kindDaemon              // logging.logging_daemon: needs name
	kindUIDGID              // uidgid: only uid and gid
	kindNested              // a sub-section inside a collecting section
)

type item struct {
	key, value string
	line       int
}

type frame struct {
	kind frameKind
	name string
	path string
	line int
	// collecting sections (interface, logger_subsys, logging_daemon)
	items   []item
	members []item
	// kindNested: the collecting ancestor and the path relative to it
	collector *frame
	rel       string
}

// parsed is the parser's result: the keys and where sections started.
type parsed struct {
	keys keyMap
	// sections maps a section path to the line of its first opening, e.g. "totem",
	// "nodelist.node.2", "totem.interface.1", "quorum.device".
	sections map[string]int
	// legacy lists top-level sections corosync 3 does not know, with their first line.
	topLevel map[string]int
}

type parser struct {
	d         *diag
	keys      keyMap
	stack     []*frame
	nodeCount int
	sections  map[string]int
	topLevel  map[string]int
	members   [MaxLinks]int // member addresses stored so far per link
}

// MaxConfigSize bounds a configuration file: 1 MiB holds a 384-node nodelist with room to
// spare many times over.
const MaxConfigSize = 1 << 20

// errSyntax stops the parse: like corosync, a grammar error aborts at the first one.
var errSyntax = errors.New("syntax error")

func parseKeys(d *diag, r io.Reader) (*parsed, error) {
	p := &parser{d: d, keys: keyMap{}, sections: map[string]int{}, topLevel: map[string]int{}}
	br := bufio.NewReaderSize(r, 4096)
	lineNo, size := 0, 0
	for {
		raw, err := br.ReadSlice('\n')
		if len(raw) == 0 && err == io.EOF {
			break
		}
		lineNo++
		if size += len(raw); size > MaxConfigSize {
			// The line limit bounds one line, not their number: a generated or hostile file
			// (a path such as /dev/urandom piped through a filter) would grow the key map
			// without end. corosync has no limit; real files are a few KB.
			d.errorf(lineNo, "Configuration larger than %d bytes: refused", MaxConfigSize)
			return nil, errSyntax
		}
		if err == bufio.ErrBufferFull {
			d.errorf(lineNo, "Line too long (corosync reads at most %d characters per line)", maxLine)
			return nil, errSyntax
		}
		if err != nil && err != io.EOF {
			return nil, &Error{File: d.file, Line: lineNo, Msg: "read error: " + err.Error()}
		}
		raw = bytes.TrimSuffix(raw, []byte("\n"))
		if len(raw) > maxLine {
			d.errorf(lineNo, "Line too long (%d characters; corosync reads at most %d)", len(raw), maxLine)
			return nil, errSyntax
		}
		if bytes.IndexByte(raw, 0) >= 0 {
			d.errorf(lineNo, "Line contains a NUL byte (corosync would silently cut the line there)")
			return nil, errSyntax
		}
		line := strings.TrimSuffix(string(raw), "\r")
		if perr := p.line(trimRightBlanks(line), lineNo); perr != nil {
			return nil, perr
		}
		if err == io.EOF {
			break
		}
	}
	if len(p.stack) > 0 {
		f := p.stack[len(p.stack)-1]
		d.errorf(lineNo, "Missing closing brace (section %q opened at line %d is not closed)", f.name, f.line)
		return nil, errSyntax
	}
	return &parsed{keys: p.keys, sections: p.sections, topLevel: p.topLevel}, nil
}

func (p *parser) top() *frame {
	if len(p.stack) == 0 {
		return nil
	}
	return p.stack[len(p.stack)-1]
}

// line classifies one line in corosync's order: comment, section start, key, section end.
func (p *parser) line(s string, n int) error {
	t := trimLeftBlanks(s)
	if t == "" || t[0] == '#' {
		return nil
	}
	if i := strings.IndexByte(s, '{'); i >= 0 {
		name := trimName(s[:i])
		if name == "" {
			p.d.errorf(n, "Missing section name before opening bracket '{'")
			return errSyntax
		}
		if trimBlanks(s[i+1:]) != "" {
			p.d.errorf(n, "Extra characters after opening bracket '{'")
			return errSyntax
		}
		return p.open(name, n)
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		key := trimName(s[:i])
		if key == "" {
			p.d.errorf(n, "Key name can't be empty")
			return errSyntax
		}
		p.key(key, trimLeftBlanks(s[i+1:]), n)
		return nil
	}
	if strings.IndexByte(s, '}') >= 0 {
		if trimBlanks(s) != "}" {
			p.d.errorf(n, "Extra characters before or after closing bracket '}'")
			return errSyntax
		}
		return p.close(n)
	}
	p.d.errorf(n, "Line is not opening or closing section or key value")
	return errSyntax
}

func (p *parser) open(name string, n int) error {
	f := &frame{name: name, line: n}
	top := p.top()
	switch {
	case top == nil:
		f.path = name
		if name == "uidgid" {
			f.kind = kindUIDGID
		}
		if _, ok := p.topLevel[name]; !ok {
			p.topLevel[name] = n
		}
	case top.kind == kindPlain || top.kind == kindNode:
		f.path = top.path + "." + name
		switch f.path {
		case "totem.interface":
			f.kind = kindInterface
		case "nodelist.node":
			f.kind = kindNode
			f.path = "nodelist.node." + strconv.Itoa(p.nodeCount)
			p.nodeCount++
		case "logging.logger_subsys":
			f.kind = kindSubsys
		case "logging.logging_daemon":
			f.kind = kindDaemon
		}
	case top.kind == kindInterface && name == "member":
		f.kind = kindMember
		f.path = top.path + ".member"
		f.collector = top
	case top.kind == kindInterface || top.kind == kindSubsys || top.kind == kindDaemon:
		// 3.1.10 keeps a sub-section's path (3.1.7 flattened it into the parent).
		f.kind, f.collector, f.rel = kindNested, top, name
		f.path = top.path + "." + name
	case top.kind == kindNested:
		f.kind, f.collector, f.rel = kindNested, top.collector, top.rel+"."+name
		f.path = top.path + "." + name
	default: // member, uidgid
		p.d.errorf(n, "Sub-section %q is not allowed inside section %q", name, top.name)
		return errSyntax
	}
	if len(f.path) > maxKeyPath {
		p.d.errorf(n, "Start of section makes total cmap path too long (%d characters, at most %d)", len(f.path), maxKeyPath)
		return errSyntax
	}
	if _, ok := p.sections[f.path]; !ok && f.kind != kindInterface {
		p.sections[f.path] = n
	}
	p.stack = append(p.stack, f)
	return nil
}

func (p *parser) key(key, value string, n int) {
	top := p.top()
	switch {
	case top == nil:
		p.d.warnf(n, "key %q is outside of any section; nothing reads it", key)
		p.store(key, value, n)
	case top.kind == kindPlain || top.kind == kindNode:
		p.store(top.path+"."+key, value, n)
	case top.kind == kindInterface || top.kind == kindSubsys || top.kind == kindDaemon:
		top.items = append(top.items, item{key, value, n})
	case top.kind == kindNested:
		top.collector.items = append(top.collector.items, item{top.rel + "." + key, value, n})
	case top.kind == kindMember:
		if key != "memberaddr" {
			p.d.errorf(n, "Only memberaddr is allowed in member section (got %q)", key)
			return
		}
		top.collector.members = append(top.collector.members, item{key, value, n})
	case top.kind == kindUIDGID:
		if key != "uid" && key != "gid" {
			p.d.errorf(n, "uidgid: Only uid and gid are allowed items (got %q)", key)
			return
		}
		p.storeTyped("uidgid.config."+key+"."+value, TypeU8, "1", n)
	}
}

func (p *parser) close(n int) error {
	f := p.top()
	if f == nil {
		p.d.errorf(n, "Unexpected closing brace")
		return errSyntax
	}
	p.stack = p.stack[:len(p.stack)-1]
	switch f.kind {
	case kindInterface:
		p.emitInterface(f)
	case kindSubsys:
		p.emitSubsys(f)
	case kindDaemon:
		p.emitDaemon(f)
	}
	return nil
}

// interfaceKeys are the keys corosync re-homes under totem.interface.<link>.
var interfaceKeys = map[string]bool{
	"bindnetaddr": true, "mcastaddr": true, "broadcast": true, "mcastport": true, "ttl": true,
	"knet_link_priority": true, "knet_ping_interval": true, "knet_ping_timeout": true,
	"knet_ping_precision": true, "knet_pong_count": true, "knet_transport": true,
}

func (p *parser) emitInterface(f *frame) {
	// corosync 3 ignores the 2.x ringnumber, so two 2.x blocks would both become link 0
	// and merge. gototem reads ringnumber as 2.x did, because it runs those configs as a
	// redundant ring; linknumber wins when both are present.
	link, linkLine, have := 0, f.line, false
	for _, name := range []string{"linknumber", "ringnumber"} {
		for _, it := range f.items {
			if it.key != name {
				continue
			}
			v, ok := parseTyped(TypeU8, it.value)
			if !ok {
				p.d.errorf(it.line, "%s", typeError("totem.interface."+name, TypeU8, it.value))
				return
			}
			if !have {
				link, _ = strconv.Atoi(v)
				linkLine = it.line
			}
		}
		if hasItem(f.items, name) {
			have = true
		}
	}
	if link >= MaxLinks {
		p.d.errorf(linkLine, "interface ring number %d is bigger than allowed maximum %d", link, MaxLinks-1)
		return
	}
	base := "totem.interface." + strconv.Itoa(link)
	if _, ok := p.sections[base]; !ok {
		p.sections[base] = f.line
	}
	for _, it := range f.items {
		switch {
		case it.key == "linknumber" || it.key == "ringnumber":
		case interfaceKeys[it.key]:
			p.store(base+"."+it.key, it.value, it.line)
		default:
			// corosync stores unknown interface keys unindexed, where nothing reads them.
			p.d.warnf(it.line, "unknown interface key %q is ignored (stored as totem.interface.%s)", it.key, it.key)
			p.store("totem.interface."+it.key, it.value, it.line)
		}
	}
	for _, m := range f.members {
		p.store(base+".member."+strconv.Itoa(p.members[link]), m.value, m.line)
		p.members[link]++
	}
}

func hasItem(items []item, key string) bool {
	for _, it := range items {
		if it.key == key {
			return true
		}
	}
	return false
}

func lastItem(items []item, key string) (item, bool) {
	var out item
	found := false
	for _, it := range items {
		if it.key == key {
			out, found = it, true
		}
	}
	return out, found
}

func (p *parser) emitSubsys(f *frame) {
	sub, ok := lastItem(f.items, "subsys")
	if !ok {
		p.d.errorf(f.line, "No subsys key in logger_subsys directive")
		return
	}
	base := "logging.logger_subsys." + sub.value
	for _, it := range f.items {
		p.store(base+"."+it.key, it.value, it.line)
	}
}

func (p *parser) emitDaemon(f *frame) {
	name, ok := lastItem(f.items, "name")
	if !ok {
		p.d.errorf(f.line, "No name key in logging_daemon directive")
		return
	}
	sub, hasSub := lastItem(f.items, "subsys")
	var base string
	switch {
	case name.value == "corosync" && hasSub:
		base = "logging.logger_subsys." + sub.value
	case name.value == "corosync":
		base = "logging"
	case hasSub:
		base = "logging.logging_daemon." + name.value + "." + sub.value
	default:
		base = "logging.logging_daemon." + name.value
	}
	for _, it := range f.items {
		if it.key == "name" || (it.key == "subsys" && !hasSub) {
			continue
		}
		p.store(base+"."+it.key, it.value, it.line)
	}
}

// store type-checks and stores one key, the later value replacing the earlier as in
// corosync; the replacement is warned about because it is almost always an editing slip.
func (p *parser) store(path, value string, n int) {
	t := keyType(path)
	canon := value
	if len(path) > maxKeyPath {
		p.d.errorf(n, "New key makes total cmap path too long (%d characters, at most %d)", len(path), maxKeyPath)
		return
	}
	if !validKeyName(path) {
		p.d.errorf(n, "Can't store key %q: key names use only A-Z a-z 0-9 . _ - / : and are %d..%d characters long (corosync: CS_ERR_NAME_TOO_LONG)", path, minKeyPath, maxKeyPath)
		return
	}
	if t != TypeStr {
		v, ok := parseTyped(t, value)
		if !ok {
			p.d.errorf(n, "%s", typeError(path, t, value))
			return
		}
		canon = v
	}
	p.storeTyped(path, t, canon, n)
}

func (p *parser) storeTyped(path string, t Type, value string, n int) {
	if !validKeyName(path) {
		p.d.errorf(n, "Can't store key %q: key names use only A-Z a-z 0-9 . _ - / : and are %d..%d characters long (corosync: CS_ERR_NAME_TOO_LONG)", path, minKeyPath, maxKeyPath)
		return
	}
	if old, ok := p.keys[path]; ok && old.line != n {
		p.d.warnf(n, "key %s is set again; this value replaces the one from line %d", path, old.line)
	}
	p.keys[path] = &entry{typ: t, value: value, line: n}
}
