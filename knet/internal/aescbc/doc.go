// Package aescbc is AES-CBC for knet's wire (knet/crypto.go: the AES-128, -192 and -256-CBC
// of libknet's nss and openssl crypto models), with crypto/cipher's CBC contract and a much
// faster decrypter on amd64.
//
// Why it exists: on amd64, Go's crypto/cipher CBC modes (Go 1.25 and 1.26) run
// crypto/internal/fips140/aes's generic loop, one AES-NI block call and one XOR through
// memory per block, so that even decryption, which could run blocks side by side, waits on
// each block's rounds in turn. An encrypted knet flood spent about 35% of its CPU there. On
// amd64 with AES-NI this package's assembly (cbc_amd64.s) runs a whole CryptBlocks in one
// call: encryption's chain with the round keys held in registers, decryption eight blocks at
// a time through interleaved rounds (then four, then one). Measured on the development
// machine (AMD EPYC, Go 1.26, AES-256, in place, best of five runs of BenchmarkDecrypt and
// BenchmarkEncrypt): decryption 5.6x crypto/cipher's (1408 bytes 175 ns against 984 ns, 8 KiB
// 1.0 µs against 5.6 µs); encryption 1.35x (1408 bytes 1.39 µs against 1.87 µs, 8 KiB 8.1 µs
// against 11.0 µs), no more because CBC encryption is one serial chain, bound by AESENC's
// latency on either side: only the per-block overhead goes.
//
// What one chain cannot overlap, independent chains can: Mode.EncryptMulti encrypts up to
// four messages (knet's packets of one visit, each with its own salt as IV) side by side,
// block i of each through the rounds together (cbc_amd64.s's cbcEncrypt4), so that each
// AESENC's latency hides behind the other chains'. Measured on the same machine (AES-256,
// in place, BenchmarkEncryptMulti, three runs of 0.5 s with another load on the machine):
// four 1408-byte chains 1.49-1.55 µs against 5.6-6.2 µs one after the other on the
// assembly (3.8x) and 7.8-7.9 µs on crypto/cipher, that is, four packets for about the
// price of one.
//
// Elsewhere (another GOARCH, the purego build tag, a CPU without AES-NI) a Cipher is
// crypto/aes's and its modes are crypto/cipher's CBC: the same bytes behind the same API.
//
// It owns the key schedule (keys.go: FIPS-197's key expansion and the equivalent inverse
// cipher's decryption keys), the assembly, and the choice between the assembly and the
// fallback. It must stay interchangeable with crypto/cipher's CBC: TestAgainstCryptoCipher
// (random keys, IVs and lengths, in place and chained), TestKnownAnswers (SP 800-38A F.2,
// FIPS-197 appendix C) and TestEncryptMulti (one to four chains of random, unequal lengths
// against crypto/cipher and the single chain) hold both paths to that.
package aescbc
