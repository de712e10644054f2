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
	// MESSAGE_REQ_EXEC_CFG_CRYPTO_RECONFIG): each node multicasts it SAFE for itself, ACTIVATE
	// once it has staged the new configuration, CLEANUP once it seals with it. A node acts on
	// a phase once its own message came back and every member that was in the ring then has
	// sent its own too, or left. corosync acts on its own message alone; that is safe there
	// because it stages the new key while delivering RELOAD_CONFIG, before anything after it.
	// gototem's reload runs in the dispatcher after delivery (Options.OnCfgReload), so a peer
	// may not have staged when this node's ACTIVATE comes back: sealing with the new key then
	// cost 3 authentication failures on node 1 in a CI run of TestKnetCryptoReloadKeepsRing.
	// Dropping the old key on its own CLEANUP likewise refused a member whose ACTIVATE was
	// ordered later (1 to 3 failures in half the runs). In a mixed ring gototem then seals
	// with the new key and drops the old one no earlier than corosync does.
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
		if phase := int(bo.Uint32(body[16:])); phase == CryptoPhaseActivate || phase == CryptoPhaseCleanup {
			s.cryptoPhase(phase, sender)
		}
	case cfgExecShutdown:
		s.log.Info(fmt.Sprintf("cfg: node %d was shut down by sysadmin", sender))
	}
	// Ring re-enable (0) is a no-op in corosync 3.
}

// phaseWait is one phase of a crypto reconfiguration (ACTIVATE or CLEANUP): the members
// this node waits for (the ring when its own message for the phase came back) and who sent
// theirs.
type phaseWait struct {
	own  bool
	wait []srp.NodeID
	sent map[srp.NodeID]bool
}

// record takes the phase's message from a member (0: a membership change, nobody's) and
// reports whether the phase is due: this node's own came back and every member it waits
// for sent its own or left. A due phase starts over.
func (w *phaseWait) record(from, self srp.NodeID, members []srp.NodeID) bool {
	if from != 0 {
		if w.sent == nil {
			w.sent = map[srp.NodeID]bool{}
		}
		w.sent[from] = true
		if from == self && !w.own {
			w.own, w.wait = true, members
		}
	}
	if !w.own {
		return false
	}
	for _, id := range w.wait {
		if !w.sent[id] && slices.Contains(members, id) {
			return false
		}
	}
	*w = phaseWait{}
	return true
}

// cryptoPhase records a CRYPTO_RECONFIG for phase (from is its sender, 0 for a membership
// change: both phases) and hands the driver each phase that is due.
func (s *Stack) cryptoPhase(phase int, from srp.NodeID) {
	members := s.srp.Members()
	if (from == 0 || phase == CryptoPhaseActivate) && s.activate.record(from, s.self, members) {
		s.rd.Events = append(s.rd.Events, Event{CfgCrypto: &CfgCrypto{Phase: CryptoPhaseActivate}})
	}
	if (from == 0 || phase == CryptoPhaseCleanup) && s.cleanup.record(from, s.self, members) {
		s.rd.Events = append(s.rd.Events, Event{CfgCrypto: &CfgCrypto{Phase: CryptoPhaseCleanup}})
	}
}
