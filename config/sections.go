package config

// The remaining sections: logging (exec/logconfig.c), system, resources (watchdog),
// nozzle and uidgid.

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

func readUIDGID(k keyMap) UIDGID {
	var u UIDGID
	for _, key := range k.under("uidgid.config.uid.") {
		u.UIDs = append(u.UIDs, strings.TrimPrefix(key, "uidgid.config.uid."))
	}
	for _, key := range k.under("uidgid.config.gid.") {
		u.GIDs = append(u.GIDs, strings.TrimPrefix(key, "uidgid.config.gid."))
	}
	return u
}

var (
	onOff    = []string{"on", "off"}
	yesNoAll = []string{"yes", "no", "on", "off"}
	logPrio  = []string{"alert", "crit", "debug", "emerg", "err", "error", "info", "notice", "warning"}
	facility = []string{"daemon", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
		"auth", "authpriv", "cron", "ftp", "kern", "lpr", "mail", "news", "syslog", "user", "uucp"}
)

func (c *Config) readLogging(d *diag) {
	k := c.keys
	l := &c.Logging
	l.Timestamp = c.enum(d, "logging.timestamp", "hires", []string{"on", "off", "hires"}, "unknown value for timestamp")
	l.Fileline = c.enum(d, "logging.fileline", "off", onOff, "unknown value for fileline") == "on"
	l.FunctionName = c.enum(d, "logging.function_name", "off", onOff, "unknown value for function_name") == "on"
	l.Blackbox = c.enum(d, "logging.blackbox", "on", onOff, "unknown value for blackbox") == "on"
	def := LogTarget{ToStderr: true, ToSyslog: true, LogfilePriority: "info", SyslogPriority: "info", SyslogFacility: "daemon", Debug: "off"}
	l.LogTarget = c.logTarget(d, "logging.", def)
	subs := map[string]bool{}
	for _, key := range k.under("logging.logger_subsys.") {
		name, _, _ := strings.Cut(strings.TrimPrefix(key, "logging.logger_subsys."), ".")
		if subs[name] {
			continue
		}
		subs[name] = true
		prefix := "logging.logger_subsys." + name + "."
		for _, top := range []string{"timestamp", "fileline", "function_name", "blackbox"} {
			if k.has(prefix + top) {
				d.warnf(k.line(prefix+top), "%s is only read at the top of the logging section; ignored in logger_subsys", top)
			}
		}
		l.Subsys = append(l.Subsys, LoggerSubsys{Subsys: name, LogTarget: c.logTarget(d, prefix, l.LogTarget)})
	}
	if l.ToLogfile && l.Logfile == "" {
		d.warnf(c.lineOr("logging.to_logfile", "logging"), "to_logfile is on but no logfile is set")
	}
	for _, key := range k.under("logging.logging_daemon.") {
		d.warnf(k.line(key), "logging_daemon for a daemon other than corosync is ignored (%s)", key)
		break
	}
}

func (c *Config) logTarget(d *diag, prefix string, def LogTarget) LogTarget {
	k := c.keys
	lt := def
	yes := func(v string) bool { return v == "yes" || v == "on" }
	if k.has(prefix + "to_file") {
		d.warnf(k.line(prefix+"to_file"), "to_file is obsolete; use to_logfile")
		if !k.has(prefix + "to_logfile") {
			v := c.enum(d, prefix+"to_file", "no", yesNoAll, "unknown value for to_file")
			lt.ToLogfile = yes(v)
		}
	}
	if k.has(prefix + "syslog_level") {
		d.warnf(k.line(prefix+"syslog_level"), "syslog_level is obsolete; use syslog_priority")
		if !k.has(prefix + "syslog_priority") {
			lt.SyslogPriority = strings.ToLower(c.enum(d, prefix+"syslog_level", lt.SyslogPriority, logPrio, "unknown syslog priority specified"))
		}
	}
	b := func(key string, cur bool) bool {
		if !k.has(prefix + key) {
			return cur
		}
		return yes(c.enum(d, prefix+key, "no", yesNoAll, "unknown value for "+key))
	}
	lt.ToStderr = b("to_stderr", lt.ToStderr)
	lt.ToSyslog = b("to_syslog", lt.ToSyslog)
	lt.ToLogfile = b("to_logfile", lt.ToLogfile)
	lt.Logfile = k.strDefault(prefix+"logfile", lt.Logfile)
	prio := func(key, cur, msg string) string {
		v, ok := k.str(prefix + key)
		if !ok {
			return cur
		}
		for _, p := range logPrio {
			if strings.EqualFold(v, p) {
				return p
			}
		}
		d.errorf(k.line(prefix+key), "%s (%s%s: %q)", msg, prefix, key, v)
		return cur
	}
	lt.LogfilePriority = prio("logfile_priority", lt.LogfilePriority, "unknown logfile priority specified")
	lt.SyslogPriority = prio("syslog_priority", lt.SyslogPriority, "unknown syslog priority specified")
	lt.SyslogFacility = c.enum(d, prefix+"syslog_facility", lt.SyslogFacility, facility, "unknown syslog facility specified")
	lt.Debug = c.enum(d, prefix+"debug", lt.Debug, []string{"on", "off", "trace"}, "unknown value for debug")
	return lt
}

func (c *Config) readSystem(d *diag) {
	k, s := c.keys, &c.System
	s.QBIPCType = c.enum(d, "system.qb_ipc_type", "native", []string{"native", "shm", "socket"}, "Invalid system.qb_ipc_type")
	s.SchedRR = c.enum(d, "system.sched_rr", "yes", []string{"yes", "no"}, "Invalid system.sched_rr value") == "yes"
	s.MoveToRootCgroup = c.enum(d, "system.move_to_root_cgroup", "auto", []string{"yes", "no", "auto"}, "Invalid system.move_to_root_cgroup")
	s.AllowKnetHandleFallback = c.enum(d, "system.allow_knet_handle_fallback", "no", []string{"yes", "no"}, "Invalid system.allow_knet_handle_fallback") == "yes"
	s.StateDir = k.strDefault("system.state_dir", DefaultStateDir)
	if v, ok := k.str("system.priority"); ok {
		s.Priority = v
		if v != "max" && v != "min" {
			n, err := strconv.Atoi(v)
			if err != nil || n < -20 || n > 19 {
				d.errorf(k.line("system.priority"), "Priority value %s is invalid (max, min or a nice value -20..19)", v)
			}
		}
	}
}

func (c *Config) readResources(d *diag) {
	k, r := c.keys, &c.Resources
	r.WatchdogDevice, _ = k.str("resources.watchdog_device")
	r.WatchdogTimeout = 6 * time.Second
	if v, ok := k.uint("resources.watchdog_timeout"); ok {
		if v < 2 || v > 120 {
			d.warnf(k.line("resources.watchdog_timeout"), "watchdog_timeout %d s is outside 2..120; corosync uses the default 6 s", v)
		} else {
			r.WatchdogTimeout = time.Duration(v) * time.Second
		}
	}
	for _, key := range k.under("resources.") {
		if strings.HasSuffix(key, ".poll_period") {
			if v, _ := k.uint(key); v < 500 || v > 120000 {
				d.warnf(k.line(key), "%s %d ms is outside 500..120000", key, v)
			}
		}
	}
}

func (c *Config) readNozzle(d *diag) {
	k, z := c.keys, &c.Nozzle
	z.Name, _ = k.str("nozzle.name")
	z.IPAddr, _ = k.str("nozzle.ipaddr")
	z.IPPrefix, _ = k.str("nozzle.ipprefix")
	z.MACAddr = k.strDefault("nozzle.macaddr", "54:54:01:00:00:00")
	if z.Name == "" {
		return
	}
	line := c.lineOr("nozzle.name", "nozzle")
	if c.Totem.Transport != TransportKnet {
		d.warnf(line, "nozzle needs the knet transport; ignored with %s", c.Totem.Transport)
	}
	addr, err := netip.ParseAddr(z.IPAddr)
	if err != nil {
		d.errorf(c.lineOr("nozzle.ipaddr", "nozzle"), "nozzle: ipaddr %q is not an IP address", z.IPAddr)
		return
	}
	lo, hi := 8, 30
	if addr.Is6() {
		lo, hi = 8, 64
		if !strings.HasSuffix(z.IPAddr, "::") {
			d.errorf(c.lineOr("nozzle.ipaddr", "nozzle"), "nozzle: IPv6 ipaddr must end with '::'")
		}
	}
	if n, err := strconv.Atoi(z.IPPrefix); err != nil || n < lo || n > hi {
		d.errorf(c.lineOr("nozzle.ipprefix", "nozzle"), "nozzle: ipprefix %q must be a number in %d..%d", z.IPPrefix, lo, hi)
	}
	if len(z.MACAddr) != 17 {
		d.errorf(c.lineOr("nozzle.macaddr", "nozzle"), "nozzle: macaddr %q must be 17 characters (xx:xx:xx:xx:xx:xx)", z.MACAddr)
	}
}
