package knet

// PMTUDReplyInfo is a PMTUD_REPLY the Endpoint received: the driver hands Size to the
// link's PMTUD search (PMTUD.Reply).
type PMTUDReplyInfo struct {
	Host HostID
	Link uint8
	Size int
}

// PMTUDReplies returns and clears the PMTUD replies received since the last call.
func (e *Endpoint) PMTUDReplies() []PMTUDReplyInfo {
	r := e.replies
	e.replies = e.replies[:0]
	return r
}

// Crypto is the crypto configuration packets are sealed with (nil: clear), for PMTUD's
// size arithmetic.
func (e *Endpoint) Crypto() *Crypto { return e.keyring.slots[e.keyring.InUse()] }

// SealProbe returns the datagram that carries the PMTUD probe p to host's link address,
// sealed like every other packet; false if host has no such link. Valid until the next
// call.
func (e *Endpoint) SealProbe(host HostID, p *Packet) (Datagram, bool) {
	pl := e.peers[host][p.Link%MaxLink]
	if pl == nil {
		return Datagram{}, false
	}
	e.out, e.wire = e.out[:0], e.wire[:0]
	e.plain = p.AppendEncode(e.plain[:0])
	e.emit(pl.Link, pl.Addr, e.seal(e.plain))
	return e.out[0], true
}

// Keyring is the endpoint's crypto configurations: a driver changes them at run time
// (corosync's crypto reconfiguration) through it. Not safe for use concurrent with the
// endpoint's other methods.
func (e *Endpoint) Keyring() *Keyring { return e.keyring }
