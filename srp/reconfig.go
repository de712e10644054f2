package srp

// SetTimers applies changed totem timers and flow-control limits to a running processor, as
// corosync's reload does (totemconfig's commit of the new parameters): a timer already armed
// keeps its deadline and the next one armed uses the new value, so a reload never fires a
// token loss by itself. Only the timer, retransmit-constant and window fields of c are used;
// the node id, netmtu, nodelist, stores and logger of the running processor stay (the
// nodelist has SetNodelist; the rest cannot change at run time, as in corosync). c is
// validated as NewProcessor validates it and an invalid c changes nothing.
func (p *Processor) SetTimers(c Config) error {
	n := p.cfg
	n.Token, n.TokenRetransmit, n.Hold = c.Token, c.TokenRetransmit, c.Hold
	n.Join, n.SendJoin, n.Consensus, n.Merge, n.Downcheck = c.Join, c.SendJoin, c.Consensus, c.Merge, c.Downcheck
	n.TokenRetransmitsBeforeLossConst = c.TokenRetransmitsBeforeLossConst
	n.FailRecvConst, n.SeqnoUnchangedConst, n.MissCountConst = c.FailRecvConst, c.SeqnoUnchangedConst, c.MissCountConst
	n.WindowSize, n.MaxMessages = c.WindowSize, c.MaxMessages
	if err := n.validate(); err != nil {
		return err
	}
	p.cfg = n
	return nil
}
