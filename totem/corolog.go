package totem

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gototem/gototem/config"
)

// LevelNotice is corosync's notice level, between slog's Info and Warn. corosync writes its key
// lines (a membership formed, quorum gained or lost, synchronization done) at notice, so an
// operator's "notice and above" shows them and nothing chattier.
const LevelNotice = slog.LevelInfo + 2

// SubsysKey is the log attribute that names corosync's subsystem of a line (TOTEM, QUORUM, MAIN,
// CPG, ...): a handler that writes corosync's format puts it in the "[TOTEM ]" column.
const SubsysKey = "subsys"

// eventLog writes corosync's key log lines for the events of the ring, on the dispatch goroutine
// and so in total order, with corosync's wording, so that a gototem log greps like corosync.log
// ("A new membership (1.16) was formed. Members left: 3"). Messages are not logged.
type eventLog struct {
	log     *slog.Logger
	quorate bool // the last verdict logged: corosync logs the primary-component lines on change
}

func (e *eventLog) notice(subsys, msg string, args ...any) {
	e.log.Log(context.Background(), LevelNotice, msg, append([]any{SubsysKey, subsys}, args...)...)
}

func (e *eventLog) membership(m Membership) {
	if m.Kind != Regular {
		e.log.Debug("transitional membership "+nodeList(m.Members), SubsysKey, "TOTEM")
		return
	}
	msg := fmt.Sprintf("A new membership (%s) was formed. Members", m.RingID)
	if len(m.Joined) > 0 {
		msg += " joined: " + nodeList(m.Joined)
	}
	if len(m.Left) > 0 {
		msg += " left: " + nodeList(m.Left)
	}
	e.notice("TOTEM", msg)
	e.notice("QUORUM", fmt.Sprintf("Sync members[%d]: %s", len(m.Members), nodeList(m.Members)))
	if len(m.Joined) > 0 {
		e.notice("QUORUM", fmt.Sprintf("Sync joined[%d]: %s", len(m.Joined), nodeList(m.Joined)))
	}
	if len(m.Left) > 0 {
		e.notice("QUORUM", fmt.Sprintf("Sync left[%d]: %s", len(m.Left), nodeList(m.Left)))
	}
}

func (e *eventLog) quorum(q QuorumState) {
	switch {
	case q.Quorate && !e.quorate:
		e.notice("QUORUM", "This node is within the primary component and will provide service.")
	case !q.Quorate && e.quorate:
		e.notice("QUORUM", "This node is within the non-primary component and will NOT provide any services.")
	}
	e.quorate = q.Quorate
	e.notice("QUORUM", fmt.Sprintf("Members[%d]: %s", len(q.Members), nodeList(q.Members)))
}

func (e *eventLog) synced() {
	e.notice("MAIN", "Completed service synchronization, ready to provide service.")
}

func (e *eventLog) fault(link int, faulty bool, text string) {
	lv := slog.LevelWarn
	if !faulty {
		lv = LevelNotice
	}
	e.log.Log(context.Background(), lv, text, SubsysKey, "TOTEM", "link", link)
}

// mcastHeaderOverhead is what corosync 3.1.7's totempg takes off totem.netmtu before
// totemsrp starts (totemsrp_net_mtu_adjust: two of its packed struct mcast, 45 bytes each),
// so its "Maximum network MTU" line says 1410 for udp and udpu and 65446 for knet.
const mcastHeaderOverhead = 2 * 45

// logTotemConfig writes the lines corosync 3.1.7's totemsrp_initialize writes at startup
// under TOTEM at debug, word for word and with the effective timers (as in
// testdata/captures/udpu-formation.events.txt: "Token Timeout (3650 ms) retransmit timeout
// (869 ms)" for 3 nodes at the default token), then totemnet's notice naming the transport.
func logTotemConfig(log *slog.Logger, t config.Totem) {
	ms := time.Duration.Milliseconds
	debug := func(format string, args ...any) {
		log.Debug(fmt.Sprintf(format, args...), SubsysKey, "TOTEM")
	}
	debug("Token Timeout (%d ms) retransmit timeout (%d ms)", ms(t.Token), ms(t.TokenRetransmit))
	if t.TokenWarning != 0 {
		// corosync's integer arithmetic, as srp's token warning timer (srp/timers.go)
		warning := int64(t.TokenWarning) * ms(t.Token) / 100
		debug("Token warning every %d ms (%d%% of Token Timeout)", warning, t.TokenWarning)
		if warning < ms(t.TokenRetransmit) {
			debug("The token warning interval (%d ms) is less than the token retransmit timeout (%d ms) "+
				"which can lead to spurious token warnings. Consider increasing the token_warning parameter.",
				warning, ms(t.TokenRetransmit))
		}
	} else {
		debug("Token warnings disabled")
	}
	debug("token hold (%d ms) retransmits before loss (%d retrans)", ms(t.Hold), t.TokenRetransmitsBeforeLossConst)
	debug("join (%d ms) send_join (%d ms) consensus (%d ms) merge (%d ms)", ms(t.Join), ms(t.SendJoin), ms(t.Consensus), ms(t.Merge))
	debug("downcheck (%d ms) fail to recv const (%d msgs)", ms(t.Downcheck), t.FailRecvConst)
	debug("seqno unchanged const (%d rotations) Maximum network MTU %d", t.SeqnoUnchangedConst, t.NetMTU-mcastHeaderOverhead)
	debug("window size per rotation (%d messages) maximum messages per rotation (%d messages)", t.WindowSize, t.MaxMessages)
	debug("missed count const (%d messages)", t.MissCountConst)
	debug("send threads (%d threads)", t.Threads)
	debug("heartbeat_failures_allowed (%d)", t.HeartbeatFailuresAllowed)
	debug("max_network_delay (%d ms)", ms(t.MaxNetworkDelay))
	if t.HeartbeatFailuresAllowed == 0 {
		debug("HeartBeat is Disabled. To enable set heartbeat_failures_allowed > 0")
	} else {
		// corosync would arm its heartbeat timer here; srp has none (srp/doc.go).
		debug("HeartBeat is Disabled: gototem has no heartbeat timer (heartbeat_failures_allowed %d is not used)", t.HeartbeatFailuresAllowed)
	}
	name := map[config.Transport]string{
		config.TransportUDP: "UDP/IP Multicast", config.TransportUDPU: "UDP/IP Unicast", config.TransportKnet: "Kronosnet",
	}[t.Transport]
	log.Log(context.Background(), LevelNotice, fmt.Sprintf("Initializing transport (%s).", name), SubsysKey, "TOTEM")
}

// nodeList is corosync's " 1 2 3" list, without the leading space.
func nodeList(ids []NodeID) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10))
	}
	return b.String()
}
