package stack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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
	// MESSAGE_REQ_EXEC_CFG_CRYPTO_RECONFIG): each node multicasts it SAFE for itself and acts
	// only on its own, so no node depends on another surviving the change.
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
		if sender == s.self { // another node's phases are its own business (cfg.c)
			s.rd.Events = append(s.rd.Events, Event{CfgCrypto: &CfgCrypto{Phase: int(bo.Uint32(body[16:]))}})
		}
	case cfgExecShutdown:
		s.log.Info(fmt.Sprintf("cfg: node %d was shut down by sysadmin", sender))
	}
	// Ring re-enable (0) is a no-op in corosync 3.
}
