package config

import "strconv"

// checkKnet refuses what corosync 3.1.7 accepts with transport knet but gototem's knet
// (package knet: libknet 1.25's protocol over UDP) cannot do, so that `gototem config
// check` fails exactly the files `gototem run` would refuse:
//   - crypto_model gcrypt: libknet's gcrypt module is not one gototem speaks (nss and
//     openssl share the wire format package knet implements);
//   - knet_compression_model other than none: a compressed DATA packet could not be read;
//   - knet_transport sctp: knet links are UDP only here.
//
// (A nodeid above 65535 is refused elsewhere, with corosync's own message.)
//
// Everything else knet-specific (link_mode, the per-link ping timers, pong count,
// precision and priority, knet_mtu, knet_pmtud_interval, crypto_cipher and crypto_hash) is
// read by readTotem and readInterfaces and used by the knet transport.
func (c *Config) checkKnet(d *diag) {
	k, t := c.keys, &c.Totem
	if t.Crypto.Model == "gcrypt" {
		d.errorf(k.line("totem.crypto_model"), "crypto_model gcrypt is not supported by gototem's knet (use nss, corosync's default, or openssl: they share one wire format)")
	}
	if m := t.Knet.CompressionModel; m != "" && m != "none" {
		d.errorf(k.line("totem.knet_compression_model"), "knet_compression_model %s is not supported by gototem (it cannot read compressed knet packets); use none, corosync's default", m)
	}
	for _, in := range c.Interfaces {
		if in.KnetTransport == "sctp" {
			d.errorf(k.line("totem.interface."+strconv.Itoa(in.Link)+".knet_transport"), "knet_transport sctp on link %d is not supported by gototem (knet links are udp only)", in.Link)
		}
	}
}
