//go:build amd64 && !purego

#include "textflag.h"

// Transposing pack helpers (AVX). For nblk blocks of 8 columns p, they read
// 8 (or 4) rows of src (row stride ld elements) and write the transposed
// block: dst[(8b+i)*dstStride + r] = src[r*ld + 8b + i].

// func transPack8(dst, src *float32, ld, dstStride, nblk int)
TEXT ·transPack8(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), AX
	SHLQ $2, AX                   // row stride, bytes
	MOVQ dstStride+24(FP), DX
	SHLQ $2, DX                   // dst stride, bytes
	MOVQ nblk+32(FP), CX
	TESTQ CX, CX
	JZ   done8
	LEAQ (AX)(AX*2), BX           // 3*ld
	LEAQ (DX)(DX*2), R9           // 3*dstStride

loop8:
	// R8 = src + 4*ld
	LEAQ (SI)(AX*4), R8
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(AX*1), Y1
	VMOVUPS (SI)(AX*2), Y2
	VMOVUPS (SI)(BX*1), Y3
	VMOVUPS (R8), Y4
	VMOVUPS (R8)(AX*1), Y5
	VMOVUPS (R8)(AX*2), Y6
	VMOVUPS (R8)(BX*1), Y7

	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	VSHUFPS $0x44, Y10, Y8, Y0    // rows 0-3: p0 | p4
	VSHUFPS $0xEE, Y10, Y8, Y1    // p1 | p5
	VSHUFPS $0x44, Y11, Y9, Y2    // p2 | p6
	VSHUFPS $0xEE, Y11, Y9, Y3    // p3 | p7
	VSHUFPS $0x44, Y14, Y12, Y4   // rows 4-7
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7

	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15

	LEAQ (DI)(DX*4), R8           // dst + 4 rows
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(DX*1)
	VMOVUPS Y10, (DI)(DX*2)
	VMOVUPS Y11, (DI)(R9*1)
	VMOVUPS Y12, (R8)
	VMOVUPS Y13, (R8)(DX*1)
	VMOVUPS Y14, (R8)(DX*2)
	VMOVUPS Y15, (R8)(R9*1)

	ADDQ $32, SI
	LEAQ (DI)(DX*8), DI
	DECQ CX
	JNZ  loop8

done8:
	VZEROUPPER
	RET

// func transPack4(dst, src *float32, ld, dstStride, nblk int)
TEXT ·transPack4(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), AX
	SHLQ $2, AX
	MOVQ dstStride+24(FP), DX
	SHLQ $2, DX
	MOVQ nblk+32(FP), CX
	TESTQ CX, CX
	JZ   done4
	LEAQ (AX)(AX*2), BX
	LEAQ (DX)(DX*2), R9

loop4:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(AX*1), Y1
	VMOVUPS (SI)(AX*2), Y2
	VMOVUPS (SI)(BX*1), Y3

	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11

	VSHUFPS $0x44, Y10, Y8, Y0    // p0 | p4
	VSHUFPS $0xEE, Y10, Y8, Y1    // p1 | p5
	VSHUFPS $0x44, Y11, Y9, Y2    // p2 | p6
	VSHUFPS $0xEE, Y11, Y9, Y3    // p3 | p7

	LEAQ (DI)(DX*4), R8
	VMOVUPS X0, (DI)
	VMOVUPS X1, (DI)(DX*1)
	VMOVUPS X2, (DI)(DX*2)
	VMOVUPS X3, (DI)(R9*1)
	VEXTRACTF128 $1, Y0, (R8)
	VEXTRACTF128 $1, Y1, (R8)(DX*1)
	VEXTRACTF128 $1, Y2, (R8)(DX*2)
	VEXTRACTF128 $1, Y3, (R8)(R9*1)

	ADDQ $32, SI
	LEAQ (DI)(DX*8), DI
	DECQ CX
	JNZ  loop4

done4:
	VZEROUPPER
	RET

// func copyPack(dst, src *float32, ld, w, kb int)
//
// dst[p*w + r] = src[p*ld + r] for p < kb, r < w, with w one of 6, 12, 16
// or 32 (full-width panels of the A-transposed / B-not-transposed packs).
TEXT ·copyPack(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), AX
	SHLQ $2, AX
	MOVQ w+24(FP), DX
	MOVQ kb+32(FP), CX
	TESTQ CX, CX
	JZ   cdone
	CMPQ DX, $32
	JEQ  c32
	CMPQ DX, $16
	JEQ  c16
	CMPQ DX, $12
	JEQ  c12

c6:
	VMOVUPS (SI), X0
	MOVQ    16(SI), BX
	VMOVUPS X0, (DI)
	MOVQ    BX, 16(DI)
	ADDQ AX, SI
	ADDQ $24, DI
	DECQ CX
	JNZ  c6
	JMP  cdone

c12:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), X1
	VMOVUPS Y0, (DI)
	VMOVUPS X1, 32(DI)
	ADDQ AX, SI
	ADDQ $48, DI
	DECQ CX
	JNZ  c12
	JMP  cdone

c16:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ AX, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  c16
	JMP  cdone

c32:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ AX, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  c32

cdone:
	VZEROUPPER
	RET
