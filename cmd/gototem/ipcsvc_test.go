package main

import (
	"github.com/gototem/gototem/internal/testenv"
	"os/user"
	"strconv"
	"testing"

	"github.com/gototem/gototem/config"
)

// TestUIDGIDByName: "uid: <name>" and "gid: <name>" entries (Pacemaker's uidgid.d file says
// hacluster/haclient) grant the user and group they name, and nobody else.
func TestUIDGIDByName(t *testing.T) {
	pw, err := user.Lookup("nobody")
	testenv.Need(t, "user nobody", err)
	uid64, _ := strconv.ParseUint(pw.Uid, 10, 32)
	gr, err := user.LookupGroup("nogroup")
	testenv.Need(t, "group nogroup", err)
	gid64, _ := strconv.ParseUint(gr.Gid, 10, 32)
	uid, gid := uint32(uid64), uint32(gid64)
	byUser := config.UIDGID{UIDs: []string{"nobody"}}
	byGroup := config.UIDGID{GIDs: []string{"nogroup"}}
	numeric := config.UIDGID{UIDs: []string{pw.Uid}}
	for _, c := range []struct {
		u        config.UIDGID
		uid, gid uint32
		want     bool
	}{
		{byUser, uid, 12345, true},
		{byUser, uid + 1, gid, false},
		{byGroup, 12345, gid, true},
		{byGroup, 12345, gid + 1, false},
		{numeric, uid, gid, false}, // numbers are cmap's uidgid.config.uid.<n> keys to match
		{config.UIDGID{UIDs: []string{"no-such-user-gototem"}}, uid, gid, false},
	} {
		if got := uidgidByName(c.u, c.uid, c.gid); got != c.want {
			t.Errorf("uidgidByName(%+v, %d, %d) = %v, want %v", c.u, c.uid, c.gid, got, c.want)
		}
	}
}
