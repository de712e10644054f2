package knet

import (
	"errors"
	"fmt"
)

// Keyring is libknet's set of crypto configurations (KNET_MAX_CRYPTO_INSTANCES = 2, indexes
// 1 and 2) with the one in use for sending, and the clear-traffic policy: what corosync's
// runtime crypto reconfiguration (a changed authkey or crypto_* on reload) works with.
//
// corosync starts with its configuration at index 1 in use and, when crypto is on, refuses
// clear packets. On a change it installs the new configuration at the other index (packets
// under either now open), then, once every node has it, makes it the one in use (ACTIVATE),
// and finally clears the old index and refuses clear traffic again (CLEANUP). Open tries the
// configuration in use first, then the other, as libknet does.
//
// Not safe for concurrent use (its Cryptos keep scratch state).
type Keyring struct {
	slots      [3]*Crypto // index 0 unused: libknet numbers configurations from 1
	inUse      int
	allowClear bool
}

// ErrClearRefused is Open's error for a packet no configuration opens while clear traffic
// is refused (or when there is no configuration and clear traffic is refused).
var ErrClearRefused = errors.New("knet: packet does not open with any crypto configuration and clear traffic is refused")

// NewKeyring holds c at index 1, in use, and refuses clear traffic when c encrypts or
// signs: corosync's start-up. A nil or disabled c gives a clear-only keyring.
func NewKeyring(c *Crypto) *Keyring {
	k := &Keyring{allowClear: true}
	if c != nil && c.Enabled() {
		k.slots[1], k.inUse, k.allowClear = c, 1, false
	}
	return k
}

// Set installs c at index (1 or 2); nil or a disabled Crypto clears the index (and if it
// was in use, packets go out clear from now on).
func (k *Keyring) Set(index int, c *Crypto) error {
	if index != 1 && index != 2 {
		return fmt.Errorf("knet: crypto config index %d, want 1 or 2", index)
	}
	if c != nil && !c.Enabled() {
		c = nil
	}
	k.slots[index] = c
	if c == nil && k.inUse == index {
		k.inUse = 0
	}
	return nil
}

// Use makes index the configuration packets are sealed with (0: send clear).
func (k *Keyring) Use(index int) error {
	if index < 0 || index > 2 || (index != 0 && k.slots[index] == nil) {
		return fmt.Errorf("knet: no crypto config at index %d", index)
	}
	k.inUse = index
	return nil
}

// InUse is the index packets are sealed with (0: clear).
func (k *Keyring) InUse() int { return k.inUse }

// AllowClear sets whether packets that open with no configuration are taken as clear
// (corosync allows it while crypto is being turned on or off).
func (k *Keyring) AllowClear(allow bool) { k.allowClear = allow }

// sealing is the configuration packets are sealed with (nil: clear).
func (k *Keyring) sealing() *Crypto {
	if k.inUse == 0 {
		return nil
	}
	return k.slots[k.inUse]
}

// Seal appends the wire form of plain: sealed with the configuration in use, or clear.
func (k *Keyring) Seal(dst, plain []byte, salt *[SaltSize]byte) []byte {
	if c := k.slots[k.inUse]; k.inUse != 0 && c != nil {
		return c.Seal(dst, plain, salt)
	}
	return append(dst, plain...)
}

// Open appends the knet packet that wire carries to dst and says which index opened it (0:
// taken as clear). Errors: ErrClearRefused, wrapping the in-use configuration's reason.
func (k *Keyring) Open(dst, wire []byte) ([]byte, int, error) {
	return k.open(nil, dst, wire)
}

// open is Open with o's scratch (nil: each Crypto's own).
func (k *Keyring) open(o *Opener, dst, wire []byte) ([]byte, int, error) {
	var first error
	order := [2]int{1, 2}
	if k.inUse != 0 {
		order = [2]int{k.inUse, 3 - k.inUse}
	}
	for _, i := range order {
		if k.slots[i] == nil {
			continue
		}
		var out []byte
		var err error
		if o != nil {
			out, err = o.open(i, k.slots[i], dst, wire)
		} else {
			out, err = k.slots[i].Open(dst, wire)
		}
		if err == nil {
			return out, i, nil
		}
		if first == nil {
			first = err
		}
	}
	if k.allowClear {
		return append(dst, wire...), 0, nil
	}
	if first == nil {
		return dst, 0, ErrClearRefused
	}
	return dst, 0, fmt.Errorf("%w: %w", ErrClearRefused, first)
}
