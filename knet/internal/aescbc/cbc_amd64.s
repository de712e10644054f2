//go:build amd64 && !purego

#include "textflag.h"

// AES-CBC on AES-NI. Round key r of a schedule is the 16 bytes at r*16(xk) (keys.go); both
// functions take the number of rounds (10, 12 or 14), run rounds 1..9 always, 10..11 when
// rounds >= 12 and 12..13 when rounds == 14, then the last round with the key at
// rounds*16(xk). Only unaligned loads and stores touch memory (MOVOU): legacy SSE
// instructions with a memory operand would want it 16-byte aligned.
//
// Registers: AX xk, CX rounds, DX iv, DI dst, SI src, BX bytes left, R8 the last round key.

// func cbcEncrypt(rounds int, xk *schedule, iv *[BlockSize]byte, dst, src *byte, n int)
//
// Serial: each block is the previous ciphertext block xor the plaintext, encrypted. The round
// keys 0..13 stay in X2..X15 for the whole call; the last one (10, 12 or 14) is loaded again
// for each block into X1, which carries the plaintext before it. X0 is the chain.
TEXT ·cbcEncrypt(SB), NOSPLIT, $0-48
	MOVQ	rounds+0(FP), CX
	MOVQ	xk+8(FP), AX
	MOVQ	iv+16(FP), DX
	MOVQ	dst+24(FP), DI
	MOVQ	src+32(FP), SI
	MOVQ	n+40(FP), BX
	MOVQ	CX, R8
	SHLQ	$4, R8
	ADDQ	AX, R8
	MOVOU	0(AX), X2
	MOVOU	16(AX), X3
	MOVOU	32(AX), X4
	MOVOU	48(AX), X5
	MOVOU	64(AX), X6
	MOVOU	80(AX), X7
	MOVOU	96(AX), X8
	MOVOU	112(AX), X9
	MOVOU	128(AX), X10
	MOVOU	144(AX), X11
	MOVOU	160(AX), X12
	MOVOU	176(AX), X13
	MOVOU	192(AX), X14
	MOVOU	208(AX), X15
	MOVOU	(DX), X0

encLoop:
	// plaintext xor round key 0 first: off the chain's critical path
	MOVOU	(SI), X1
	PXOR	X2, X1
	PXOR	X1, X0
	AESENC	X3, X0
	AESENC	X4, X0
	AESENC	X5, X0
	AESENC	X6, X0
	AESENC	X7, X0
	AESENC	X8, X0
	AESENC	X9, X0
	AESENC	X10, X0
	AESENC	X11, X0
	MOVOU	(R8), X1
	CMPQ	CX, $12
	JB	encLast
	AESENC	X12, X0
	AESENC	X13, X0
	JE	encLast
	AESENC	X14, X0
	AESENC	X15, X0

encLast:
	AESENCLAST	X1, X0
	MOVOU	X0, (DI)
	ADDQ	$16, SI
	ADDQ	$16, DI
	SUBQ	$16, BX
	JNZ	encLoop
	MOVOU	X0, (DX)
	RET

// DECn(off): one decryption round with the key at off(AX) over the blocks in X0..X(n-1).
#define DEC8(off) \
	MOVOU	off(AX), X8; \
	AESDEC	X8, X0; \
	AESDEC	X8, X1; \
	AESDEC	X8, X2; \
	AESDEC	X8, X3; \
	AESDEC	X8, X4; \
	AESDEC	X8, X5; \
	AESDEC	X8, X6; \
	AESDEC	X8, X7

#define DEC4(off) \
	MOVOU	off(AX), X8; \
	AESDEC	X8, X0; \
	AESDEC	X8, X1; \
	AESDEC	X8, X2; \
	AESDEC	X8, X3

#define DEC1(off) \
	MOVOU	off(AX), X8; \
	AESDEC	X8, X0

// func cbcDecrypt(rounds int, xk *schedule, iv *[BlockSize]byte, dst, src *byte, n int)
//
// Parallel: each plaintext block is its ciphertext block decrypted, xor the ciphertext block
// before it. Eight blocks at a time go through the rounds together in X0..X7 (the round key
// loaded once per round into X8), then four, then one at a time. X9 holds the ciphertext block
// before the group. In place (dst == src) a group reads all of its ciphertext, including
// the block that becomes the next X9, before it stores any plaintext.
TEXT ·cbcDecrypt(SB), NOSPLIT, $0-48
	MOVQ	rounds+0(FP), CX
	MOVQ	xk+8(FP), AX
	MOVQ	iv+16(FP), DX
	MOVQ	dst+24(FP), DI
	MOVQ	src+32(FP), SI
	MOVQ	n+40(FP), BX
	MOVQ	CX, R8
	SHLQ	$4, R8
	ADDQ	AX, R8
	MOVOU	(DX), X9
	CMPQ	BX, $128
	JB	dec4

dec8Loop:
	MOVOU	0(SI), X0
	MOVOU	16(SI), X1
	MOVOU	32(SI), X2
	MOVOU	48(SI), X3
	MOVOU	64(SI), X4
	MOVOU	80(SI), X5
	MOVOU	96(SI), X6
	MOVOU	112(SI), X7
	MOVOU	(AX), X8
	PXOR	X8, X0
	PXOR	X8, X1
	PXOR	X8, X2
	PXOR	X8, X3
	PXOR	X8, X4
	PXOR	X8, X5
	PXOR	X8, X6
	PXOR	X8, X7
	DEC8(16)
	DEC8(32)
	DEC8(48)
	DEC8(64)
	DEC8(80)
	DEC8(96)
	DEC8(112)
	DEC8(128)
	DEC8(144)
	CMPQ	CX, $12
	JB	dec8Last
	DEC8(160)
	DEC8(176)
	JE	dec8Last
	DEC8(192)
	DEC8(208)

dec8Last:
	MOVOU	(R8), X8
	AESDECLAST	X8, X0
	AESDECLAST	X8, X1
	AESDECLAST	X8, X2
	AESDECLAST	X8, X3
	AESDECLAST	X8, X4
	AESDECLAST	X8, X5
	AESDECLAST	X8, X6
	AESDECLAST	X8, X7
	PXOR	X9, X0
	MOVOU	0(SI), X8
	PXOR	X8, X1
	MOVOU	16(SI), X8
	PXOR	X8, X2
	MOVOU	32(SI), X8
	PXOR	X8, X3
	MOVOU	48(SI), X8
	PXOR	X8, X4
	MOVOU	64(SI), X8
	PXOR	X8, X5
	MOVOU	80(SI), X8
	PXOR	X8, X6
	MOVOU	96(SI), X8
	PXOR	X8, X7
	MOVOU	112(SI), X9
	MOVOU	X0, 0(DI)
	MOVOU	X1, 16(DI)
	MOVOU	X2, 32(DI)
	MOVOU	X3, 48(DI)
	MOVOU	X4, 64(DI)
	MOVOU	X5, 80(DI)
	MOVOU	X6, 96(DI)
	MOVOU	X7, 112(DI)
	ADDQ	$128, SI
	ADDQ	$128, DI
	SUBQ	$128, BX
	CMPQ	BX, $128
	JAE	dec8Loop

dec4:
	CMPQ	BX, $64
	JB	dec1
	MOVOU	0(SI), X0
	MOVOU	16(SI), X1
	MOVOU	32(SI), X2
	MOVOU	48(SI), X3
	MOVOU	(AX), X8
	PXOR	X8, X0
	PXOR	X8, X1
	PXOR	X8, X2
	PXOR	X8, X3
	DEC4(16)
	DEC4(32)
	DEC4(48)
	DEC4(64)
	DEC4(80)
	DEC4(96)
	DEC4(112)
	DEC4(128)
	DEC4(144)
	CMPQ	CX, $12
	JB	dec4Last
	DEC4(160)
	DEC4(176)
	JE	dec4Last
	DEC4(192)
	DEC4(208)

dec4Last:
	MOVOU	(R8), X8
	AESDECLAST	X8, X0
	AESDECLAST	X8, X1
	AESDECLAST	X8, X2
	AESDECLAST	X8, X3
	PXOR	X9, X0
	MOVOU	0(SI), X8
	PXOR	X8, X1
	MOVOU	16(SI), X8
	PXOR	X8, X2
	MOVOU	32(SI), X8
	PXOR	X8, X3
	MOVOU	48(SI), X9
	MOVOU	X0, 0(DI)
	MOVOU	X1, 16(DI)
	MOVOU	X2, 32(DI)
	MOVOU	X3, 48(DI)
	ADDQ	$64, SI
	ADDQ	$64, DI
	SUBQ	$64, BX

dec1:
	TESTQ	BX, BX
	JZ	decDone

dec1Loop:
	MOVOU	0(SI), X0
	MOVOU	X0, X10
	MOVOU	(AX), X8
	PXOR	X8, X0
	DEC1(16)
	DEC1(32)
	DEC1(48)
	DEC1(64)
	DEC1(80)
	DEC1(96)
	DEC1(112)
	DEC1(128)
	DEC1(144)
	CMPQ	CX, $12
	JB	dec1Last
	DEC1(160)
	DEC1(176)
	JE	dec1Last
	DEC1(192)
	DEC1(208)

dec1Last:
	MOVOU	(R8), X8
	AESDECLAST	X8, X0
	PXOR	X9, X0
	MOVOU	X10, X9
	MOVOU	X0, 0(DI)
	ADDQ	$16, SI
	ADDQ	$16, DI
	SUBQ	$16, BX
	JNZ	dec1Loop

decDone:
	MOVOU	X9, (DX)
	RET
