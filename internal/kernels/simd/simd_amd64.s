//go:build amd64 && !purego

#include "textflag.h"

// ADAM_CONSTS loads the AdamConsts at AX into Y8-Y15 (b1, 1-b1, b2, 1-b2,
// step, invSqrtBC2, eps, flush) and the abs mask into Y7; clobbers BX.
#define ADAM_CONSTS \
	VBROADCASTSS 0(AX), Y8;  \
	VBROADCASTSS 4(AX), Y9;  \
	VBROADCASTSS 8(AX), Y10;  \
	VBROADCASTSS 12(AX), Y11;  \
	VBROADCASTSS 16(AX), Y12;  \
	VBROADCASTSS 20(AX), Y13;  \
	VBROADCASTSS 24(AX), Y14;  \
	VBROADCASTSS 28(AX), Y15;  \
	MOVL $0x7fffffff, BX;  \
	MOVL BX, X7;  \
	VPBROADCASTD X7, Y7

// ADAM_STEP updates 8 lanes given the gradient g in Y0, exactly as adamGo:
//   m = fma(1-b1, g, b1*m) at R8; v = fma(1-b2, g*g, b2*v) at R9
//   m = 0 where |m| < flush, v = 0 where v < flush (ordered: NaN stays)
//   w = w - (step*m) / (sqrt(v)*invSqrtBC2 + eps) at DI, also left in Y6
#define ADAM_STEP \
	VMULPS  (R8), Y8, Y1;  \
	VFMADD231PS Y0, Y9, Y1;  \
	VMULPS  Y0, Y0, Y2;  \
	VMULPS  (R9), Y10, Y3;  \
	VFMADD231PS Y2, Y11, Y3;  \
	VANDPS  Y7, Y1, Y4;  \
	VCMPPS  $0x11, Y15, Y4, Y5;  \
	VANDNPS Y1, Y5, Y1;  \
	VCMPPS  $0x11, Y15, Y3, Y5;  \
	VANDNPS Y3, Y5, Y3;  \
	VMOVUPS Y1, (R8);  \
	VMOVUPS Y3, (R9);  \
	VSQRTPS Y3, Y4;  \
	VMULPS  Y13, Y4, Y4;  \
	VADDPS  Y14, Y4, Y4;  \
	VMULPS  Y12, Y1, Y5;  \
	VDIVPS  Y4, Y5, Y5;  \
	VMOVUPS (DI), Y6;  \
	VSUBPS  Y5, Y6, Y6;  \
	VMOVUPS Y6, (DI)

// func adamAVX2(w, grad, m, v *float32, n int, c *AdamConsts): ADAM_STEP
// over n elements.
TEXT ·adamAVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	ADAM_CONSTS

loop:
	CMPQ CX, $8
	JL   done
	VMOVUPS (SI), Y0         // g
	ADAM_STEP
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	SUBQ $8, CX
	JMP  loop

done:
	VZEROUPPER
	RET

// func addAVX2(dst, src *float32, n int)
// dst += src.
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

add32:
	CMPQ CX, $32
	JL   add8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VADDPS  (SI), Y0, Y0
	VADDPS  32(SI), Y1, Y1
	VADDPS  64(SI), Y2, Y2
	VADDPS  96(SI), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  add32

add8:
	CMPQ CX, $8
	JL   addDone
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  add8

addDone:
	VZEROUPPER
	RET

// func allBelowAVX2(x *float32, n int, limit float32) bool
// Whether |x| < limit everywhere: the compare "not less than, or
// unordered" is all zeros only if every element passes (NaN fails).
TEXT ·allBelowAVX2(SB), NOSPLIT, $0-25
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS limit+16(FP), Y6
	MOVL $0x7fffffff, DX
	MOVL DX, X7
	VPBROADCASTD X7, Y7      // abs mask
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

below16:
	CMPQ CX, $16
	JL   below8
	VANDPS  (SI), Y7, Y0
	VANDPS  32(SI), Y7, Y1
	VCMPPS  $0x15, Y6, Y0, Y0
	VCMPPS  $0x15, Y6, Y1, Y1
	VORPS   Y0, Y2, Y2
	VORPS   Y1, Y3, Y3
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  below16

below8:
	CMPQ CX, $8
	JL   belowDone
	VANDPS  (SI), Y7, Y0
	VCMPPS  $0x15, Y6, Y0, Y0
	VORPS   Y0, Y2, Y2

belowDone:
	VORPS  Y3, Y2, Y2
	VPTEST Y2, Y2
	SETEQ  ret+24(FP)
	VZEROUPPER
	RET

// func reluGradAVX2(d, y, grad *float32, n int)
// d = g where y > 0, else 0 (y NaN: 0).
TEXT ·reluGradAVX2(SB), NOSPLIT, $0-32
	MOVQ d+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ grad+16(FP), DX
	MOVQ n+24(FP), CX
	VXORPS Y7, Y7, Y7

rg16:
	CMPQ CX, $16
	JL   rg8
	VCMPPS $0x11, (SI), Y7, Y0    // 0 < y (ordered: NaN gives 0)
	VCMPPS $0x11, 32(SI), Y7, Y1
	VANDPS (DX), Y0, Y0
	VANDPS 32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, DI
	ADDQ $64, SI
	ADDQ $64, DX
	SUBQ $16, CX
	JMP  rg16

rg8:
	CMPQ CX, $8
	JL   rgDone
	VCMPPS $0x11, (SI), Y7, Y0
	VANDPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)

rgDone:
	VZEROUPPER
	RET

// func biasReluAVX2(r, b *float32, n int)
// r = max(r + b, 0); r + b NaN stays NaN (VMAXPS returns its second
// source, r + b, when either is NaN).
TEXT ·biasReluAVX2(SB), NOSPLIT, $0-24
	MOVQ r+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Y7, Y7, Y7

br16:
	CMPQ CX, $16
	JL   br8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VADDPS  (SI), Y0, Y0
	VADDPS  32(SI), Y1, Y1
	VMAXPS  Y0, Y7, Y0
	VMAXPS  Y1, Y7, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, DI
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  br16

br8:
	CMPQ CX, $8
	JL   brDone
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMAXPS  Y0, Y7, Y0
	VMOVUPS Y0, (DI)

brDone:
	VZEROUPPER
	RET

// func adam2AVX2(w, g0, g1, m, v, wcopy *float32, n int, c *AdamConsts)
// adamAVX2 with the gradient g0 + g1 (one float32 addition, as Add) and the
// new weights also stored into wcopy.
TEXT ·adam2AVX2(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), DI
	MOVQ g0+8(FP), SI
	MOVQ g1+16(FP), DX
	MOVQ m+24(FP), R8
	MOVQ v+32(FP), R9
	MOVQ wcopy+40(FP), R10
	MOVQ n+48(FP), CX
	MOVQ c+56(FP), AX
	ADAM_CONSTS

loop2:
	CMPQ CX, $8
	JL   done2
	VMOVUPS (SI), Y0
	VADDPS  (DX), Y0, Y0     // g = g0 + g1
	ADAM_STEP
	VMOVUPS Y6, (R10)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $32, R10
	SUBQ $8, CX
	JMP  loop2

done2:
	VZEROUPPER
	RET
