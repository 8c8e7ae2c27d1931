#include "textflag.h"

// func rdtsc() uint64
TEXT ·rdtsc(SB),NOSPLIT,$0-8
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, ret+0(FP)
	RET

#include "go_asm.h"

// func readJiffiesFast(c *Ctx) uint64
// Ctx.Jiffies in real time: while the counter is below c.tscNext (the
// first counter value of the next jiffy) it returns c.tscJ and records it
// in c.seen; otherwise (a new jiffy, or not on the TSC clock, where
// tscNext stays 0) it tail-calls readJiffies.
TEXT ·readJiffiesFast(SB),NOSPLIT,$0-16
	MOVQ	c+0(FP), BX
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	CMPQ	AX, Ctx_tscNext(BX)
	JAE	slow
	MOVQ	Ctx_tscJ(BX), AX
	MOVQ	AX, CX
	BTSQ	$63, CX
	MOVQ	CX, Ctx_seen(BX)
	MOVQ	AX, ret+8(FP)
	RET
slow:
	JMP	·readJiffies(SB)
