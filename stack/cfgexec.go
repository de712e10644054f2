package stack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gototem/gototem/services"
	"github.com/gototem/gototem/srp"
)

// cfg's exec messages (services-sync.md §3.4): corosync-cfgtool -k multicasts KILLNODE and the
// node it names exits; -R multicasts RELOAD_CONFIG and every node reloads corosync.conf. gototem
// sends and honours both, so the tools act on mixed rings as on corosync's.

const (
	cfgExecKillNode     = services.ServiceCFG<<16 | 1
	cfgExecShutdown     = services.ServiceCFG<<16 | 2
	cfgExecReloadConfig = services.ServiceCFG<<16 | 3
	// cfgExecCryptoReconfig drives knet's runtime crypto change (cfg.c's
	// MESSAGE_REQ_EXEC_CFG_CRYPTO_RECONFIG): each node multicasts it SAFE for itself. A node
	// activates the new configuration on its own ACTIVATE, as corosync does. It drops the old
	// one once its own CLEANUP came back and every member that was in the ring then has sent
	// its CLEANUP too (a member sends it only after it seals with the new configuration), or
	// left: corosync drops it on its own CLEANUP, and a member whose ACTIVATE was ordered
	// after that CLEANUP still sealed with the old key, which the others then refused
	// (TestKnetCryptoReloadKeepsRing saw 1 to 3 authentication failures in half its runs).
	cfgExecCryptoReconfig = services.ServiceCFG<<16 | 4

	cfgKillNodeSize  = 288 // qbreq · u32 nodeid · cs_name_t reason (u16 length, 256 bytes) · pad
	cfgReloadSize    = 32  // qbreq · mar_message_source_t (nodeid, pad, conn)
	cfgCryptoSize    = 24  // qbreq · u32 phase (aligned 8) · pad
	cfgReasonMax     = 256
	cfgKillNodeField = 16
	cfgReasonField   = 24
)

// CfgKill is a KILLNODE that named this node: corosync logs "Killed by node <From>: <Reason>"
// and exits.
type CfgKill struct {
	From   srp.NodeID
	Reason string
}

// CfgReload is a RELOAD_CONFIG: every node reloads its configuration. Own reports that this
// node sent it (corosync answers the requesting client after its own reload).
type CfgReload struct {
	From srp.NodeID
	Own  bool
}

// Phases of a knet crypto reconfiguration (corosync's cfg_message_crypto_reconfig_phase_t).
const (
	// CryptoPhaseActivate: every node has the new configuration installed beside the old
	// one; start sealing with it.
	CryptoPhaseActivate = 1
	// CryptoPhaseCleanup: every node seals with the new one; drop the old configuration
	// (and refuse clear packets again if crypto is on).
	CryptoPhaseCleanup = 2
)

// CfgCrypto is this node's own CRYPTO_RECONFIG message come back SAFE: every node has
// received it, so this node may take the phase.
type CfgCrypto struct {
	Phase int
}

// ErrCfgReason is a kill reason longer than cs_name_t holds.
var ErrCfgReason = errors.New("stack: cfg kill reason longer than 256 bytes")

func encodeCfgKill(target srp.NodeID, reason string) ([]byte, error) {
	if len(reason) > cfgReasonMax {
		return nil, ErrCfgReason
	}
	b := make([]byte, cfgKillNodeSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], cfgExecKillNode)
	le.PutUint32(b[8:], cfgKillNodeSize)
	le.PutUint32(b[cfgKillNodeField:], uint32(target))
	le.PutUint16(b[cfgReasonField:], uint16(len(reason)))
	copy(b[cfgReasonField+8:], reason)
	return b, nil
}

func encodeCfgReload(self srp.NodeID) []byte {
	b := make([]byte, cfgReloadSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], cfgExecReloadConfig)
	le.PutUint32(b[8:], cfgReloadSize) // qbreq: i32 id @0, i32 size @8
	le.PutUint32(b[16:], uint32(self))
	return b
}

func encodeCfgCrypto(phase int) []byte {
	b := make([]byte, cfgCryptoSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], cfgExecCryptoReconfig)
	le.PutUint32(b[8:], cfgCryptoSize)
	le.PutUint32(b[16:], uint32(phase))
	return b
}

// CfgKillNode is corosync-cfgtool -k: KILLNODE for target goes to every node.
func (s *Stack) CfgKillNode(now time.Duration, target srp.NodeID, reason string) error {
	b, err := encodeCfgKill(target, reason)
	if err != nil {
		return err
	}
	s.now = now
	return s.sendApp(services.Outbound{Group: "a", Body: b}, srp.Agreed, true)
}

// CfgReload is corosync-cfgtool -R: RELOAD_CONFIG goes to every node, this one included.
func (s *Stack) CfgReload(now time.Duration) error {
	s.now = now
	return s.sendApp(services.Outbound{Group: "a", Body: encodeCfgReload(s.self)}, srp.Agreed, true)
}

// CfgCryptoReconfig multicasts this node's CRYPTO_RECONFIG for phase, SAFE, as corosync's
// cfg does after a reload changed the knet crypto configuration (phase ACTIVATE) and when
// its own ACTIVATE came back (phase CLEANUP).
func (s *Stack) CfgCryptoReconfig(now time.Duration, phase int) error {
	s.now = now
	return s.sendApp(services.Outbound{Group: "a", Body: encodeCfgCrypto(phase)}, srp.Safe, true)
}

// deliverCfg acts on cfg's exec messages; a malformed one is counted.
func (s *Stack) deliverCfg(sender srp.NodeID, body []byte, swapped bool) {
	var bo binary.ByteOrder = binary.LittleEndian
	if swapped {
		bo = binary.BigEndian
	}
	switch readU32(body, swapped) {
	case cfgExecKillNode:
		if len(body) < cfgReasonField+8+cfgReasonMax {
			s.counters.CfgMalformed++
			return
		}
		if srp.NodeID(bo.Uint32(body[cfgKillNodeField:])) != s.self {
			return
		}
		n := min(int(bo.Uint16(body[cfgReasonField:])), cfgReasonMax)
		reason := body[cfgReasonField+8 : cfgReasonField+8+n]
		if i := bytes.IndexByte(reason, 0); i >= 0 {
			reason = reason[:i]
		}
		s.rd.Events = append(s.rd.Events, Event{CfgKill: &CfgKill{From: sender, Reason: string(reason)}})
	case cfgExecReloadConfig:
		s.rd.Events = append(s.rd.Events, Event{CfgReload: &CfgReload{From: sender, Own: sender == s.self}})
	case cfgExecCryptoReconfig:
		if len(body) < 20 {
			s.counters.CfgMalformed++
			return
		}
		switch phase := int(bo.Uint32(body[16:])); {
		case phase == CryptoPhaseCleanup:
			s.cryptoCleanup(sender)
		case sender == s.self:
			s.rd.Events = append(s.rd.Events, Event{CfgCrypto: &CfgCrypto{Phase: phase}})
		}
	case cfgExecShutdown:
		s.log.Info(fmt.Sprintf("cfg: node %d was shut down by sysadmin", sender))
	}
	// Ring re-enable (0) is a no-op in corosync 3.
}

// cleanupWait is a crypto reconfiguration's CLEANUP phase: the members this node waits for
// (the ring when its own CLEANUP came back) and who sent theirs.
type cleanupWait struct {
	own  bool
	wait []srp.NodeID
	sent map[srp.NodeID]bool
}

// cryptoCleanup records a CLEANUP (from is its sender, 0 for a membership change) and hands
// the driver the phase when nobody it waits for may still seal with the old configuration.
func (s *Stack) cryptoCleanup(from srp.NodeID) {
	c := &s.cleanup
	if from != 0 {
		if c.sent == nil {
			c.sent = map[srp.NodeID]bool{}
		}
		c.sent[from] = true
		if from == s.self && !c.own {
			c.own, c.wait = true, s.srp.Members()
		}
	}
	if !c.own {
		return
	}
	members := s.srp.Members()
	for _, id := range c.wait {
		if !c.sent[id] && slices.Contains(members, id) {
			return
		}
	}
	*c = cleanupWait{}
	s.rd.Events = append(s.rd.Events, Event{CfgCrypto: &CfgCrypto{Phase: CryptoPhaseCleanup}})
}
