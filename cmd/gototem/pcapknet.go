package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/gototem/gototem/capture"
	"github.com/gototem/gototem/knet"
)

// The knet view of a packet for `gototem pcap`: knet's own fields first, prefixed k., in
// the units libknet logs them (host ids, seq numbers and sizes in decimal), so a line can
// be held against the [KNET] lines of corosync's debug log.

// pcapKnetCrypto builds the crypto of an encrypted knet capture from the authkey file, as
// corosync hands the key to libknet: the file's bytes, unchanged (at most 4096 read).
func pcapKnetCrypto(path, cipherName, hashName string) (*knet.Crypto, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(key) > knet.MaxKeyLen {
		key = key[:knet.MaxKeyLen]
	}
	ci, err := knet.ParseCipher(cipherName)
	if err != nil {
		return nil, err
	}
	h, err := knet.ParseHash(hashName)
	if err != nil {
		return nil, err
	}
	return knet.NewCrypto(knet.CryptoConfig{Model: "nss", Cipher: ci, Hash: h, Key: key})
}

// pcapKnetType names a knet packet that carries no complete Totem message.
func pcapKnetType(k *capture.Knet) string {
	if k.Packet.Type != knet.TypeData {
		return "knet_" + k.Packet.Type.String()
	}
	switch k.Rx {
	case knet.RxHeld:
		return "knet_frag"
	case knet.RxDuplicate:
		return "knet_dup"
	}
	return "knet_" + k.Rx.String()
}

func pcapKnetFields(p *capture.Packet) []pcapField {
	k := p.Knet
	if k == nil || (k.Plain == nil && p.Err != nil) {
		return nil
	}
	kp := &k.Packet
	f := []pcapField{{"k.host", strconv.Itoa(int(kp.Host))}}
	if k.Encrypted {
		f = append(f, pcapField{"k.enc", ""})
	}
	switch kp.Type {
	case knet.TypeData:
		f = append(f, pcapField{"k.seq", strconv.Itoa(int(kp.Seq))})
		if kp.Bcast != 0 {
			f = append(f, pcapField{"k.bcast", ""})
		}
		if kp.Fragmented() {
			f = append(f, pcapField{"k.frag", fmt.Sprintf("%d/%d", kp.FragSeq, kp.FragNum)},
				pcapField{"k.len", strconv.Itoa(len(kp.Data))})
		}
		if kp.Channel != 0 {
			f = append(f, pcapField{"k.channel", strconv.Itoa(int(kp.Channel))})
		}
		if kp.Compress != 0 {
			f = append(f, pcapField{"k.compress", strconv.Itoa(int(kp.Compress))})
		}
		if k.Message != nil && kp.Fragmented() {
			f = append(f, pcapField{"k.msg", strconv.Itoa(len(k.Message))})
		}
	case knet.TypePing, knet.TypePong:
		f = append(f,
			pcapField{"k.link", strconv.Itoa(int(kp.Link))},
			pcapField{"k.seq", strconv.Itoa(int(kp.Seq))},
			pcapField{"k.time", fmt.Sprintf("%d.%09d", kp.TimeSec, kp.TimeNsec)})
		if kp.Timed == 0 {
			f = append(f, pcapField{"k.untimed", ""})
		}
	case knet.TypePMTUD, knet.TypePMTUDReply:
		f = append(f, pcapField{"k.link", strconv.Itoa(int(kp.Link))}, pcapField{"k.size", strconv.Itoa(int(kp.Size))})
	}
	return f
}

// pcapKnetCounts is the summary line of the knet packets of a run.
type pcapKnetCounts struct {
	packets, encrypted, messages, fragments int
	types                                   map[knet.PacketType]int
}

func (c *pcapKnetCounts) add(p *capture.Packet) {
	if p.Knet == nil {
		return
	}
	c.packets++
	if p.Knet.Encrypted {
		c.encrypted++
	}
	if p.Knet.Plain == nil {
		return
	}
	if c.types == nil {
		c.types = map[knet.PacketType]int{}
	}
	c.types[p.Knet.Packet.Type]++
	if p.Knet.Packet.Fragmented() {
		c.fragments++
	}
	if p.Knet.Message != nil {
		c.messages++
	}
}

func (c *pcapKnetCounts) String() string {
	s := fmt.Sprintf("knet: %d packets (%d encrypted)", c.packets, c.encrypted)
	for _, t := range []knet.PacketType{knet.TypeData, knet.TypePing, knet.TypePong, knet.TypePMTUD, knet.TypePMTUDReply} {
		s += fmt.Sprintf(" %s=%d", t, c.types[t])
	}
	return s + fmt.Sprintf(" fragments=%d messages=%d", c.fragments, c.messages)
}
