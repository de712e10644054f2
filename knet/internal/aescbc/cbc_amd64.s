//go:build amd64 && !purego

#include "textflag.h"

// AES-CBC on AES-NI. Round key r of a schedule is the 16 bytes at r*16(xk) (keys.go); all
// three functions take the number of rounds (10, 12 or 14), run rounds 1..9 always, 10..11
// when rounds >= 12 and 12..13 when rounds == 14, then the last round with the key at
// rounds*16(xk). Only unaligned loads and stores touch memory (MOVOU): legacy SSE
// instructions with a memory operand would want it 16-byte aligned.
//
// Registers of cbcEncrypt and cbcDecrypt: AX xk, CX rounds, DX iv, DI dst, SI src, BX bytes
// left, R8 the last round key (cbcEncrypt4 has its own, below).

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

// ENC4(k): one encryption round with the key in register k over the four chains in X0..X3.
#define ENC4(k) \
	AESENC	k, X0; \
	AESENC	k, X1; \
	AESENC	k, X2; \
	AESENC	k, X3

// ENC4M(off): the same with the key at off(AX), loaded into X4.
#define ENC4M(off) \
	MOVOU	off(AX), X4; \
	ENC4(X4)

// func cbcEncrypt4(rounds int, xk *schedule, lanes *[4]lane, n int)
//
// Four independent CBC chains side by side (lane: iv *[BlockSize]byte at 0, dst at 8, src
// at 16): the first n bytes (a nonzero multiple of BlockSize) of each, block i of all four
// going through the rounds together, so that each AESENC's latency is hidden behind the
// other chains' rounds instead of stalling one chain. Each lane's chain starts from and ends
// in its *iv. The round keys 0..9 stay in X5..X14 and the last one (10, 12 or 14) in X15;
// the middle keys of AES-192 and -256 (10..13) are loaded per block into X4, which also
// carries each plaintext block before it joins its chain. X0..X3 are the chains.
//
// An iteration loads all four lanes' plaintext blocks before it stores any ciphertext, so
// a lane may be in place (dst == src) and two lanes may be the same lane (the same iv, dst
// and src: they compute and store the same bytes), which is how fewer than four chains run.
//
// Registers: AX xk, CX rounds, BX n, DX the offset into every lane, DI/SI, R8/R9, R10/R11
// and R12/R13 lane 0..3's dst/src.
TEXT ·cbcEncrypt4(SB), NOSPLIT, $0-32
	MOVQ	rounds+0(FP), CX
	MOVQ	xk+8(FP), AX
	MOVQ	lanes+16(FP), DX
	MOVQ	CX, BX
	SHLQ	$4, BX
	MOVOU	(AX)(BX*1), X15
	MOVQ	0(DX), BX
	MOVOU	(BX), X0
	MOVQ	24(DX), BX
	MOVOU	(BX), X1
	MOVQ	48(DX), BX
	MOVOU	(BX), X2
	MOVQ	72(DX), BX
	MOVOU	(BX), X3
	MOVQ	8(DX), DI
	MOVQ	16(DX), SI
	MOVQ	32(DX), R8
	MOVQ	40(DX), R9
	MOVQ	56(DX), R10
	MOVQ	64(DX), R11
	MOVQ	80(DX), R12
	MOVQ	88(DX), R13
	MOVQ	n+24(FP), BX
	XORQ	DX, DX
	MOVOU	0(AX), X5
	MOVOU	16(AX), X6
	MOVOU	32(AX), X7
	MOVOU	48(AX), X8
	MOVOU	64(AX), X9
	MOVOU	80(AX), X10
	MOVOU	96(AX), X11
	MOVOU	112(AX), X12
	MOVOU	128(AX), X13
	MOVOU	144(AX), X14

enc4Loop:
	// each plaintext xor round key 0 first: off the chains' critical paths
	MOVOU	(SI)(DX*1), X4
	PXOR	X5, X4
	PXOR	X4, X0
	MOVOU	(R9)(DX*1), X4
	PXOR	X5, X4
	PXOR	X4, X1
	MOVOU	(R11)(DX*1), X4
	PXOR	X5, X4
	PXOR	X4, X2
	MOVOU	(R13)(DX*1), X4
	PXOR	X5, X4
	PXOR	X4, X3
	ENC4(X6)
	ENC4(X7)
	ENC4(X8)
	ENC4(X9)
	ENC4(X10)
	ENC4(X11)
	ENC4(X12)
	ENC4(X13)
	ENC4(X14)
	CMPQ	CX, $12
	JB	enc4Last
	ENC4M(160)
	ENC4M(176)
	JE	enc4Last
	ENC4M(192)
	ENC4M(208)

enc4Last:
	AESENCLAST	X15, X0
	AESENCLAST	X15, X1
	AESENCLAST	X15, X2
	AESENCLAST	X15, X3
	MOVOU	X0, (DI)(DX*1)
	MOVOU	X1, (R8)(DX*1)
	MOVOU	X2, (R10)(DX*1)
	MOVOU	X3, (R12)(DX*1)
	ADDQ	$16, DX
	CMPQ	DX, BX
	JB	enc4Loop
	MOVQ	lanes+16(FP), DX
	MOVQ	0(DX), BX
	MOVOU	X0, (BX)
	MOVQ	24(DX), BX
	MOVOU	X1, (BX)
	MOVQ	48(DX), BX
	MOVOU	X2, (BX)
	MOVQ	72(DX), BX
	MOVOU	X3, (BX)
	RET
