//go:build amd64 && !purego

#include "textflag.h"

// func adamAVX2(w, grad, m, v *float32, n int, c *AdamConsts)
// Per lane, exactly as adamGo:
//   m = fma(1-b1, g, b1*m); v = fma(1-b2, g*g, b2*v)
//   m = 0 where |m| < flush; v = 0 where v < flush
//   w = w - (step*m) / (sqrt(v)*invSqrtBC2 + eps)
TEXT ·adamAVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS 0(AX), Y8   // b1
	VBROADCASTSS 4(AX), Y9   // 1-b1
	VBROADCASTSS 8(AX), Y10  // b2
	VBROADCASTSS 12(AX), Y11 // 1-b2
	VBROADCASTSS 16(AX), Y12 // step
	VBROADCASTSS 20(AX), Y13 // invSqrtBC2
	VBROADCASTSS 24(AX), Y14 // eps
	VBROADCASTSS 28(AX), Y15 // flush
	MOVL $0x7fffffff, DX
	MOVL DX, X7
	VPBROADCASTD X7, Y7      // abs mask

loop:
	CMPQ CX, $8
	JL   done
	VMOVUPS (SI), Y0         // g
	VMULPS  (R8), Y8, Y1     // b1*m
	VFMADD231PS Y0, Y9, Y1   // m = (1-b1)*g + b1*m
	VMULPS  Y0, Y0, Y2       // g*g
	VMULPS  (R9), Y10, Y3    // b2*v
	VFMADD231PS Y2, Y11, Y3  // v = (1-b2)*g*g + b2*v
	VANDPS  Y7, Y1, Y4       // |m|
	VCMPPS  $0x11, Y15, Y4, Y5 // |m| < flush (ordered: NaN stays)
	VANDNPS Y1, Y5, Y1       // m = 0 there
	VCMPPS  $0x11, Y15, Y3, Y5 // v < flush
	VANDNPS Y3, Y5, Y3
	VMOVUPS Y1, (R8)
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y4
	VMULPS  Y13, Y4, Y4      // sqrt(v)*invSqrtBC2
	VADDPS  Y14, Y4, Y4      // + eps
	VMULPS  Y12, Y1, Y5      // step*m
	VDIVPS  Y4, Y5, Y5       // / denominator
	VMOVUPS (DI), Y6
	VSUBPS  Y5, Y6, Y6
	VMOVUPS Y6, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	SUBQ $8, CX
	JMP  loop

done:
	VZEROUPPER
	RET

// func addFiniteAVX2(dst, src *float32, n int) bool
// dst += src; the result is whether every sum is finite: s - s is +0 for
// finite s and NaN otherwise, and the OR of those stays zero only if all are.
TEXT ·addFiniteAVX2(SB), NOSPLIT, $0-25
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

add16:
	CMPQ CX, $16
	JL   add8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VADDPS  (SI), Y0, Y0
	VADDPS  32(SI), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VSUBPS  Y0, Y0, Y4
	VSUBPS  Y1, Y1, Y5
	VORPS   Y4, Y2, Y2
	VORPS   Y5, Y3, Y3
	ADDQ $64, DI
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  add16

add8:
	CMPQ CX, $8
	JL   addDone
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	VSUBPS  Y0, Y0, Y4
	VORPS   Y4, Y2, Y2

addDone:
	VORPS  Y3, Y2, Y2
	VPTEST Y2, Y2
	SETEQ  ret+24(FP)
	VZEROUPPER
	RET

// func finiteAVX2(x *float32, n int) bool
TEXT ·finiteAVX2(SB), NOSPLIT, $0-17
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

fin16:
	CMPQ CX, $16
	JL   fin8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VSUBPS  Y0, Y0, Y4
	VSUBPS  Y1, Y1, Y5
	VORPS   Y4, Y2, Y2
	VORPS   Y5, Y3, Y3
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  fin16

fin8:
	CMPQ CX, $8
	JL   finDone
	VMOVUPS (SI), Y0
	VSUBPS  Y0, Y0, Y4
	VORPS   Y4, Y2, Y2

finDone:
	VORPS  Y3, Y2, Y2
	VPTEST Y2, Y2
	SETEQ  ret+16(FP)
	VZEROUPPER
	RET
