package transport

import (
	"fmt"

	"github.com/gototem/gototem/knet"
)

// Runtime crypto reconfiguration of the knet transport: corosync-cfgtool -R after a changed
// crypto_cipher, crypto_hash, crypto_model or authkey, as corosync 3.1.7's totemknet drives
// libknet's two crypto configuration slots (totemknet_reconfigure,
// totemknet_crypto_reconfigure_phase):
//
//  1. KnetCryptoStage, on every node as it reloads: the new configuration goes into the slot
//     not in use (corosync flips crypto_index between 1 and 2); packets sealed under either
//     slot now open, and clear packets too when the new configuration is none. Packets
//     still leave sealed as before.
//  2. KnetCryptoActivate, when this node's SAFE CRYPTO_RECONFIG(ACTIVATE) comes back (every
//     node has staged): seal with the new slot (clear when it is none). The data MTU follows
//     the new overhead at once and PMTUd searches again, as libknet does when the
//     configuration in use changes.
//  3. KnetCryptoCleanup, when its CLEANUP comes back (every node has activated): the old
//     slot is cleared and, when crypto is on, clear packets are refused again.
//
// No membership change: at every step each node opens what every other node sends.

// KnetCryptoTarget is the crypto configuration this node runs or is moving to (the last one
// staged); nil when that is none or for other kinds.
func (l *Link) KnetCryptoTarget() *knet.Crypto {
	ks := l.knet
	if ks == nil {
		return nil
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.cryptoTarget
}

// KnetCryptoIndex is the slot (1 or 2) of the last configuration staged: corosync's
// totem_config->crypto_index. 0 for other kinds.
func (l *Link) KnetCryptoIndex() int {
	ks := l.knet
	if ks == nil {
		return 0
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.cryptoIndex
}

// KnetCryptoStage installs c (nil or disabled: none) in the other slot and returns that slot.
func (l *Link) KnetCryptoStage(c *knet.Crypto) (int, error) {
	ks := l.knet
	if ks == nil {
		return 0, fmt.Errorf("transport: %s has no knet crypto", l.cfg.Kind)
	}
	if c != nil && !c.Enabled() {
		c = nil
	}
	if c != nil {
		c = c.Clone() // scratch state: this Link's own
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	kr := ks.ep.Keyring()
	idx := 3 - ks.cryptoIndex
	if idx == kr.InUse() {
		// A second change before the first one's ACTIVATE came back: the slot in use is
		// the one the flip lands on. Keep sealing with it; the new one goes beside.
		idx = 3 - idx
	}
	if c == nil {
		kr.AllowClear(true) // corosync: knet_handle_crypto_rx_clear_traffic(ALLOW)
	}
	if err := kr.Set(idx, c); err != nil {
		return 0, fmt.Errorf("transport: %w", err)
	}
	ks.cryptoIndex, ks.cryptoTarget = idx, c
	return idx, nil
}

// KnetCryptoActivate seals with the staged configuration from now on.
func (l *Link) KnetCryptoActivate() error {
	ks := l.knet
	if ks == nil {
		return nil
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	use := ks.cryptoIndex
	if ks.cryptoTarget == nil {
		use = 0 // crypto turned off: send clear
	}
	kr := ks.ep.Keyring()
	if kr.InUse() == use {
		return nil
	}
	if err := kr.Use(use); err != nil {
		return fmt.Errorf("transport: %w", err)
	}
	// Fragments sized for the old overhead could now exceed the path: start again from
	// knet's minimum (or knet_mtu) at once, and search again from the next heartbeat on.
	// Not at once: a probe is the first packet sealed with the new configuration, and a
	// peer whose reload is still on its way (its dispatcher runs it after delivery) would
	// count it as an authentication failure; a heartbeat later every peer has staged.
	c := ks.ep.Crypto()
	if ks.fixedMTU {
		ks.ep.SetDataMTU(knet.UDPDataMTU(c, ks.mtu, !ks.links[0].LocalAddr.Is4()))
	} else {
		ks.ep.SetDataMTU(knet.MinDataMTU(c))
		clear(ks.pmtud)
		ks.pmtudRestart = true
	}
	return nil
}

// KnetCryptoCleanup drops the old configuration and, when crypto is on, refuses clear
// packets again.
func (l *Link) KnetCryptoCleanup() {
	ks := l.knet
	if ks == nil {
		return
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	kr := ks.ep.Keyring()
	other := 3 - ks.cryptoIndex
	if kr.InUse() != other {
		_ = kr.Set(other, nil) // index 1 or 2: cannot fail
	}
	if ks.cryptoTarget != nil {
		kr.AllowClear(false)
	}
}
