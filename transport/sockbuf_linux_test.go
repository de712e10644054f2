//go:build linux

package transport

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gototem/gototem/internal/testenv"
	"golang.org/x/sys/unix"
)

// A socket's buffers are granted beyond net.core.rmem_max/wmem_max when the daemon may
// (CAP_NET_ADMIN, as root): the request of a wide window is not cut to the stock cap.
func TestSocketBuffersBeyondSysctlCap(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Need(t, "root (CAP_NET_ADMIN, for SO_RCVBUFFORCE)", errors.New("not running as root"))
	}
	capOf := func(name string) int {
		b, err := os.ReadFile("/proc/sys/net/core/" + name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	want := 2 * max(capOf("rmem_max"), capOf("wmem_max"))
	fd, err := newUDPSocket(unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := setSockOpts(uintptr(fd), sockOpts{rcvbuf: want, sndbuf: want}); err != nil {
		t.Fatal(err)
	}
	// Linux reports twice the usable size.
	if rcv, snd := bufferSizes(uintptr(fd)); rcv < 2*want || snd < 2*want {
		t.Fatalf("granted rcvbuf %d sndbuf %d for a request of %d each (sysctl caps rmem_max %d wmem_max %d)",
			rcv, snd, want, capOf("rmem_max"), capOf("wmem_max"))
	}
}
