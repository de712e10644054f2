package srp

import (
	"fmt"
	"testing"
)

func TestRingIDPrintsAsCorosync(t *testing.T) {
	for _, c := range []struct {
		id   RingID
		want string
	}{
		{RingID{Rep: 1, Seq: 0x16}, "1.16"},
		{RingID{Rep: 1, Seq: 13}, "1.d"},
		{RingID{Rep: 0xa, Seq: 0}, "a.0"},
		{RingID{Rep: 0xffffffff, Seq: 1<<64 - 1}, "ffffffff.ffffffffffffffff"},
	} {
		if got := fmt.Sprint(c.id); got != c.want {
			t.Errorf("%#v prints %q, corosync prints %q", c.id, got, c.want)
		}
	}
}
