package config

// corosync stores every key it is given and reads only those it knows, so a misspelt key
// (tokn: 5000) silently leaves the default in force. gototem warns about keys no
// corosync 3.1 consumer reads in the sections it owns.

import (
	"strings"
)

func keySet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

var (
	knownTotem = keySet("version", "cluster_name", "config_version", "transport", "link_mode",
		"ip_version", "ip_dscp", "nodeid", "clear_node_high_bit", "threads", "netmtu", "secauth",
		"crypto_model", "crypto_cipher", "crypto_hash", "keyfile", "key", "block_unlisted_ips",
		"cancel_token_hold_on_retransmit", "vsftype", "rrp_mode", "rrp_token_expired_timeout",
		"rrp_problem_count_timeout", "rrp_problem_count_threshold",
		"rrp_problem_count_mcast_threshold", "rrp_autorecovery_check_timeout", "token",
		"token_coefficient", "token_warning", "token_retransmits_before_loss_const",
		"token_retransmit", "hold", "join", "send_join", "consensus", "merge", "downcheck",
		"fail_recv_const", "seqno_unchanged_const", "heartbeat_failures_allowed",
		"max_network_delay", "window_size", "max_messages", "miss_count_const",
		"knet_pmtud_interval", "knet_mtu", "knet_compression_model",
		"knet_compression_threshold", "knet_compression_level",
		keyAccelerated, keyAcceleratedWindow) // the last two gototem's own (gototem.go)
	knownQuorum = keySet("provider", "expected_votes", "votes", "two_node", "wait_for_all",
		"last_man_standing", "last_man_standing_window", "auto_tie_breaker",
		"auto_tie_breaker_node", "allow_downscale", "expected_votes_tracking", "leaving_timeout",
		"cancel_wait_for_all")
	knownLogTarget = keySet("to_stderr", "to_syslog", "to_logfile", "to_file", "logfile",
		"logfile_priority", "syslog_priority", "syslog_level", "syslog_facility", "debug")
	knownLogTop = keySet("timestamp", "fileline", "function_name", "blackbox")
	knownSystem = keySet("qb_ipc_type", "sched_rr", "priority", "move_to_root_cgroup",
		"allow_knet_handle_fallback", "state_dir")
	knownNode   = keySet("nodeid", "name", "quorum_votes", keyGototemNode)
	knownNozzle = keySet("name", "ipaddr", "ipprefix", "macaddr")
	// Keys of older releases that are recognisable and harmless.
	oldKeys = map[string]string{
		"totem.fail_to_recv_const": "the Augeas lens's spelling; corosync reads fail_recv_const",
		"logging.tags":             "1.x trace tags; corosync 2 and later ignore them",
		"logging.mode":             "1.x logging mode; ignored",
		"logging.logfile_level":    "never read; use logfile_priority",
	}
)

// warnUnknownKeys runs once over the parsed keys.
func (c *Config) warnUnknownKeys(d *diag) {
	for _, kv := range c.keys.list() {
		if why := c.unknownKey(kv.Key); why != "" {
			d.warnf(kv.Line, "%s", why)
		}
	}
}

// unknownKey returns a warning text for a key nothing reads, or "".
func (c *Config) unknownKey(key string) string {
	p := strings.Split(key, ".")
	generic := "unknown key " + key + " is ignored (no corosync 3.1 consumer reads it; a typo?)"
	old := func(k string) string {
		if why, ok := oldKeys[k]; ok {
			return "key " + key + " is ignored: " + why
		}
		return generic
	}
	switch p[0] {
	case "totem":
		if len(p) == 2 && !knownTotem[p[1]] {
			return old(key)
		}
	case "quorum":
		if len(p) == 2 && !knownQuorum[p[1]] {
			return generic
		}
	case "logging":
		switch {
		case len(p) == 2 && !knownLogTarget[p[1]] && !knownLogTop[p[1]]:
			return old(key)
		case len(p) == 4 && p[1] == "logger_subsys" && p[3] != "subsys" && !knownLogTarget[p[3]] && !knownLogTop[p[3]]:
			return old("logging." + p[3])
		}
	case "system":
		if len(p) == 2 && !knownSystem[p[1]] {
			return generic
		}
	case "nozzle":
		if len(p) == 2 && !knownNozzle[p[1]] {
			return generic
		}
	case "nodelist":
		if len(p) == 4 && p[1] == "node" && !knownNode[p[3]] && !isRingAddr(p[3]) {
			return generic
		}
		if len(p) == 2 {
			return generic
		}
	}
	return ""
}

func isRingAddr(k string) bool {
	num, ok := strings.CutPrefix(k, "ring")
	if !ok {
		return false
	}
	num, ok = strings.CutSuffix(num, "_addr")
	return ok && isDigits(num)
}
