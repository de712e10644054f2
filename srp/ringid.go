package srp

import "strconv"

// String prints the ring id as corosync's logs and tools do (CS_PRI_RING_ID: the representative
// and the sequence in hex, "1.d"), so a ring id in gototem's output greps like corosync's.
func (r RingID) String() string {
	b := strconv.AppendUint(make([]byte, 0, 24), uint64(r.Rep), 16)
	b = append(b, '.')
	return string(strconv.AppendUint(b, r.Seq, 16))
}
