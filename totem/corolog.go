package totem

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
