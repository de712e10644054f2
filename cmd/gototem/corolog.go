package main

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gototem/gototem/totem"
)

// corosyncLine formats one record as corosync 3.1 writes its logfile, so that what operators grep
// for in corosync.log finds the same lines in gototem's:
//
//	Nov 21 20:30:21.236 [14426] vm gototem notice  [TOTEM ] A new membership (1.16) was formed. Members left: 3
//
// timestamp on drops the milliseconds and off drops the time; the level is padded to 8 columns and
// the subsystem (the record's "subsys" attribute, MAIN when it has none) to 6, as libqb does.
// Attributes other than the subsystem follow the message as key=value pairs.
func corosyncLine(b []byte, r slog.Record, bound []slog.Attr, groups []string, timeMode, host string, pid int) []byte {
	switch timeMode {
	case "off":
	case "on":
		b = r.Time.AppendFormat(b, time.Stamp)
		b = append(b, ' ')
	default: // hires, corosync's default where libqb has it
		b = r.Time.AppendFormat(b, time.StampMilli)
		b = append(b, ' ')
	}
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, "] "...)
	b = append(b, host...)
	b = append(b, " gototem "...)
	b = appendPadded(b, levelName(r.Level), 8)
	subsys := "MAIN"
	var rest []slog.Attr
	collect := func(a slog.Attr) bool {
		if a.Key == totem.SubsysKey {
			subsys = strings.ToUpper(a.Value.String())
		} else {
			rest = append(rest, a)
		}
		return true
	}
	for _, a := range bound {
		collect(a)
	}
	r.Attrs(collect)
	if len(subsys) > 6 {
		subsys = subsys[:6]
	}
	b = append(b, '[')
	b = appendPadded(b, subsys, 6)
	b = append(b, "] "...)
	b = append(b, r.Message...)
	prefix := ""
	if len(groups) > 0 {
		prefix = strings.Join(groups, ".") + "."
	}
	for _, a := range rest {
		b = appendAttr(b, prefix, a)
	}
	return append(b, '\n')
}

func appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			b = appendAttr(b, prefix+a.Key+".", g)
		}
		return b
	}
	b = append(b, ' ')
	b = append(b, prefix...)
	b = append(b, a.Key...)
	b = append(b, '=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		return strconv.AppendQuote(b, v)
	}
	return append(b, v...)
}

func levelName(lv slog.Level) string {
	switch {
	case lv < slog.LevelInfo:
		return "debug"
	case lv < totem.LevelNotice:
		return "info"
	case lv < slog.LevelWarn:
		return "notice"
	case lv < slog.LevelError:
		return "warning"
	default:
		return "error"
	}
}

func appendPadded(b []byte, s string, width int) []byte {
	b = append(b, s...)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return b
}
