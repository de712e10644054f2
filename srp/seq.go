package srp

// Rollover-tolerant comparison of 32-bit message sequence numbers, token_seq and aru, exactly
// as corosync's sq_lt_compare/sq_lte_compare (§1.1): when either value is above 0x80000000
// both are shifted down by 0x10000 (mod 2^32) before an unsigned compare. The odd-looking
// consequence lte(0, 0xFFFFFFFF) == false is what lets a node that reset its token_seq to
// 0xFFFFFFFF on RECOVERY entry accept the new ring's first token (token_seq 0).

const seqShiftThreshold = 0x80000000

func seqLT(a, b uint32) bool {
	if a > seqShiftThreshold || b > seqShiftThreshold {
		return a-0x10000 < b-0x10000
	}
	return a < b
}

func seqLTE(a, b uint32) bool {
	if a > seqShiftThreshold || b > seqShiftThreshold {
		return a-0x10000 <= b-0x10000
	}
	return a <= b
}

// seqMin returns the lower of a and b under seqLT.
func seqMin(a, b uint32) uint32 {
	if seqLT(b, a) {
		return b
	}
	return a
}
