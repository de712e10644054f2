//go:build amd64 && !purego

package aescbc

import "golang.org/x/sys/cpu"

// haveAsm: the assembly uses AES-NI and SSE2 (amd64's baseline) only.
var haveAsm = cpu.X86.HasAES

// cbcEncrypt encrypts the n bytes (a nonzero multiple of BlockSize) at src into dst in CBC
// mode with the rounds+1 round keys of xk, chaining from *iv, and leaves the last
// ciphertext block in *iv. dst and src are the same memory or disjoint.
//
//go:noescape
func cbcEncrypt(rounds int, xk *schedule, iv *[BlockSize]byte, dst, src *byte, n int)

// cbcDecrypt is cbcEncrypt's inverse with the equivalent inverse cipher's round keys xk:
// it leaves the last block of ciphertext (read before any of dst is written) in *iv.
//
//go:noescape
func cbcDecrypt(rounds int, xk *schedule, iv *[BlockSize]byte, dst, src *byte, n int)

// cbcEncrypt4 is cbcEncrypt on four lanes at once, with the round keys loaded once: the
// first n bytes (a nonzero multiple of BlockSize) of each lane's src are encrypted into its
// dst, chaining from and leaving the last ciphertext block in its *iv. Each lane's dst and
// src are the same memory or disjoint; two lanes may be the very same lane (both compute
// the same bytes), and distinct lanes do not overlap.
//
//go:noescape
func cbcEncrypt4(rounds int, xk *schedule, lanes *[MaxChains]lane, n int)
