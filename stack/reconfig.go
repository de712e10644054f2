package stack

import (
	"errors"
	"fmt"
	"time"
)

// Reconfigure applies a reloaded configuration to the running stack, as corosync applies
// corosync-cfgtool -R on each node: srp takes the new timers and nodelist, votequorum
// re-reads its reloadable options (nodelist votes, expected_votes, two_node, the device)
// and announces what changed to the ring. cfg.SRP.Nodelist is the new nodelist; cfg.Quorum
// must be set exactly when votequorum runs (quorum.provider cannot change at run time).
// Nothing is applied unless all of it validates.
func (s *Stack) Reconfigure(now time.Duration, cfg Config) error {
	if (cfg.Quorum == nil) != (s.vq == nil) {
		return errors.New("stack: reconfigure: quorum.provider cannot be changed at run time")
	}
	if cfg.SRP.NodeID != s.self {
		return fmt.Errorf("stack: reconfigure: nodeid changed from %d to %d", s.self, cfg.SRP.NodeID)
	}
	s.now = now
	// srp validates before it changes anything; votequorum's Reload keeps its running data
	// on a configuration it cannot use (and says so in its log), as corosync does.
	if err := s.srp.SetTimers(cfg.SRP); err != nil {
		return fmt.Errorf("stack: reconfigure: %w", err)
	}
	s.srp.SetNodelist(cfg.SRP.Nodelist)
	s.cfg.SRP.MaxMessages, s.cfg.SRP.Nodelist = cfg.SRP.MaxMessages, cfg.SRP.Nodelist
	var err error
	if s.vq != nil {
		err = s.vq.Reload(now, *cfg.Quorum)
		q := *cfg.Quorum
		s.cfg.Quorum = &q
	}
	if verr := s.setConfigVersion(cfg.ConfigVersion); verr != nil && err == nil {
		err = fmt.Errorf("stack: reconfigure: announcing config_version: %w", verr)
	}
	s.pump()
	return err
}
