package totem

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/gototem/gototem/srp"
	"github.com/gototem/gototem/stack"
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
	quorate bool         // the last verdict logged: corosync logs the primary-component lines on change
	members []srp.NodeID // the last regular configuration's members (none before the first)
}

func (e *eventLog) event(ev stack.Event) {
	if e.log == nil || ev.Message != nil || ev.Group != nil {
		return
	}
	ctx := context.Background()
	switch {
	case ev.Membership != nil:
		c := ev.Membership
		if c.Kind != srp.Regular {
			e.log.Debug("transitional membership "+nodeList(c.Members), SubsysKey, "TOTEM")
			return
		}
		// corosync counts joined and left against the previous regular configuration, the
		// node's own first singleton included ("Members joined: 1"); srp's Left is reported in
		// the transitional configuration, so both are derived here.
		joined, left := diff(c.Members, e.members), diff(e.members, c.Members)
		e.members = append(e.members[:0], c.Members...)
		msg := fmt.Sprintf("A new membership (%s) was formed. Members", c.RingID)
		if len(joined) > 0 {
			msg += " joined: " + nodeList(joined)
		}
		if len(left) > 0 {
			msg += " left: " + nodeList(left)
		}
		e.log.Log(ctx, LevelNotice, msg, SubsysKey, "TOTEM")
		e.log.Log(ctx, LevelNotice, fmt.Sprintf("Sync members[%d]: %s", len(c.Members), nodeList(c.Members)), SubsysKey, "QUORUM")
		if len(joined) > 0 {
			e.log.Log(ctx, LevelNotice, fmt.Sprintf("Sync joined[%d]: %s", len(joined), nodeList(joined)), SubsysKey, "QUORUM")
		}
		if len(left) > 0 {
			e.log.Log(ctx, LevelNotice, fmt.Sprintf("Sync left[%d]: %s", len(left), nodeList(left)), SubsysKey, "QUORUM")
		}
	case ev.Quorum != nil:
		q := ev.Quorum
		switch {
		case q.Quorate && !e.quorate:
			e.log.Log(ctx, LevelNotice, "This node is within the primary component and will provide service.", SubsysKey, "QUORUM")
		case !q.Quorate && e.quorate:
			e.log.Log(ctx, LevelNotice, "This node is within the non-primary component and will NOT provide any services.", SubsysKey, "QUORUM")
		}
		e.quorate = q.Quorate
		ids := make([]srp.NodeID, len(q.Members))
		for i, m := range q.Members {
			ids[i] = srp.NodeID(m)
		}
		e.log.Log(ctx, LevelNotice, fmt.Sprintf("Members[%d]: %s", len(ids), nodeList(ids)), SubsysKey, "QUORUM")
	case ev.Synced != nil:
		e.log.Log(ctx, LevelNotice, "Completed service synchronization, ready to provide service.", SubsysKey, "MAIN")
	case ev.Fault != nil:
		lv := slog.LevelWarn
		if !ev.Fault.Faulty {
			lv = LevelNotice
		}
		e.log.Log(ctx, lv, ev.Fault.Text, SubsysKey, "TOTEM", "link", ev.Fault.Link)
	}
}

// diff is a minus b, both sorted ascending.
func diff(a, b []srp.NodeID) []srp.NodeID {
	var out []srp.NodeID
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// nodeList is corosync's " 1 2 3" list, without the leading space.
func nodeList(ids []srp.NodeID) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10))
	}
	return b.String()
}
