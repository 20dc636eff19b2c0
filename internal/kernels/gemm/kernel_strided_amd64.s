//go:build amd64 && !purego

#include "textflag.h"
#include "kernel_amd64.h"

// Strided-B variants of the AVX-512 micro-kernels of kernel_amd64.s: the
// same code and FMA chains, with row p of the B panel read at b + p*ldb
// (an unpacked row-major B, used in place) instead of b + p*NR, for
// products whose B would be packed for few rows of A (see directMaxRows
// in gemm.go). R10 = ldb in bytes, R11 = 3*R10, R12 = 4*R10; the full
// kernel prefetches B 8 rows ahead through R13 (without it, it ran about
// 14% slower than the packed kernel; the edge kernels do not). K512n16S
// ignores b64.

#define K512S(aoff, b0, b64) \
	VMOVUPS b0, Z0; \
	VMOVUPS b64, Z1; \
	VFMADD231PS.BCST aoff+0(SI), Z0, Z8; \
	VFMADD231PS.BCST aoff+0(SI), Z1, Z9; \
	VFMADD231PS.BCST aoff+4(SI), Z0, Z10; \
	VFMADD231PS.BCST aoff+4(SI), Z1, Z11; \
	VFMADD231PS.BCST aoff+8(SI), Z0, Z12; \
	VFMADD231PS.BCST aoff+8(SI), Z1, Z13; \
	VFMADD231PS.BCST aoff+12(SI), Z0, Z14; \
	VFMADD231PS.BCST aoff+12(SI), Z1, Z15; \
	VFMADD231PS.BCST aoff+16(SI), Z0, Z16; \
	VFMADD231PS.BCST aoff+16(SI), Z1, Z17; \
	VFMADD231PS.BCST aoff+20(SI), Z0, Z18; \
	VFMADD231PS.BCST aoff+20(SI), Z1, Z19; \
	VFMADD231PS.BCST aoff+24(SI), Z0, Z20; \
	VFMADD231PS.BCST aoff+24(SI), Z1, Z21; \
	VFMADD231PS.BCST aoff+28(SI), Z0, Z22; \
	VFMADD231PS.BCST aoff+28(SI), Z1, Z23; \
	VFMADD231PS.BCST aoff+32(SI), Z0, Z24; \
	VFMADD231PS.BCST aoff+32(SI), Z1, Z25; \
	VFMADD231PS.BCST aoff+36(SI), Z0, Z26; \
	VFMADD231PS.BCST aoff+36(SI), Z1, Z27; \
	VFMADD231PS.BCST aoff+40(SI), Z0, Z28; \
	VFMADD231PS.BCST aoff+40(SI), Z1, Z29; \
	VFMADD231PS.BCST aoff+44(SI), Z0, Z30; \
	VFMADD231PS.BCST aoff+44(SI), Z1, Z31

#define K512x4S(aoff, b0, b64) \
	VMOVUPS b0, Z0; \
	VMOVUPS b64, Z1; \
	VFMADD231PS.BCST aoff+0(SI), Z0, Z8; \
	VFMADD231PS.BCST aoff+0(SI), Z1, Z9; \
	VFMADD231PS.BCST aoff+4(SI), Z0, Z10; \
	VFMADD231PS.BCST aoff+4(SI), Z1, Z11; \
	VFMADD231PS.BCST aoff+8(SI), Z0, Z12; \
	VFMADD231PS.BCST aoff+8(SI), Z1, Z13; \
	VFMADD231PS.BCST aoff+12(SI), Z0, Z14; \
	VFMADD231PS.BCST aoff+12(SI), Z1, Z15

#define K512n16S(aoff, b0, b64) \
	VMOVUPS b0, Z0; \
	VFMADD231PS.BCST aoff+0(SI), Z0, Z8; \
	VFMADD231PS.BCST aoff+4(SI), Z0, Z10; \
	VFMADD231PS.BCST aoff+8(SI), Z0, Z12; \
	VFMADD231PS.BCST aoff+12(SI), Z0, Z14; \
	VFMADD231PS.BCST aoff+16(SI), Z0, Z16; \
	VFMADD231PS.BCST aoff+20(SI), Z0, Z18; \
	VFMADD231PS.BCST aoff+24(SI), Z0, Z20; \
	VFMADD231PS.BCST aoff+28(SI), Z0, Z22; \
	VFMADD231PS.BCST aoff+32(SI), Z0, Z24; \
	VFMADD231PS.BCST aoff+36(SI), Z0, Z26; \
	VFMADD231PS.BCST aoff+40(SI), Z0, Z28; \
	VFMADD231PS.BCST aoff+44(SI), Z0, Z30

// func kernAVX512S(kc int, a, b, c *float32, ldc, ldb int, alpha, beta float32, mode int)
TEXT ·kernAVX512S(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8
	MOVQ ldb+40(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R11
	MOVQ R10, R12
	SHLQ $2, R12
	LEAQ (DI)(R12*2), R13 // B rows 8 ahead, prefetched

	MOVQ DX, R9
	ALL512(PF)

	ZERO512

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail512S

loop512S:
	PREFETCHT0 (R13)
	PREFETCHT0 64(R13)
	K512S(0, (DI), 64(DI))
	PREFETCHT0 (R13)(R10*1)
	PREFETCHT0 64(R13)(R10*1)
	K512S(48, (DI)(R10*1), 64(DI)(R10*1))
	PREFETCHT0 (R13)(R10*2)
	PREFETCHT0 64(R13)(R10*2)
	K512S(96, (DI)(R10*2), 64(DI)(R10*2))
	PREFETCHT0 (R13)(R11*1)
	PREFETCHT0 64(R13)(R11*1)
	K512S(144, (DI)(R11*1), 64(DI)(R11*1))
	ADDQ $192, SI
	ADDQ R12, DI
	ADDQ R12, R13
	DECQ BX
	JNZ  loop512S

tail512S:
	ANDQ $3, CX
	JZ   store512S

tailloop512S:
	K512S(0, (DI), 64(DI))
	ADDQ $48, SI
	ADDQ R10, DI
	DECQ CX
	JNZ  tailloop512S

store512S:
	VBROADCASTSS alpha+48(FP), Z2
	VBROADCASTSS beta+52(FP), Z3
	MOVQ DX, R9
	MOVQ mode+56(FP), AX
	CMPQ AX, $1
	JEQ  mode1_512S
	CMPQ AX, $2
	JEQ  mode2_512S
	ALL512(ST512_0)
	VZEROUPPER
	RET

mode1_512S:
	ALL512(ST512_1)
	VZEROUPPER
	RET

mode2_512S:
	ALL512(ST512_2)
	VZEROUPPER
	RET

// func kernAVX512x4S(kc int, a, b, c *float32, ldc, ldb int, alpha, beta float32, mode int)
TEXT ·kernAVX512x4S(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8
	MOVQ ldb+40(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R11
	MOVQ R10, R12
	SHLQ $2, R12

	MOVQ DX, R9
	ALL512x4(PF)

	ZERO512x4

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail512x4S

loop512x4S:
	K512x4S(0, (DI), 64(DI))
	K512x4S(48, (DI)(R10*1), 64(DI)(R10*1))
	K512x4S(96, (DI)(R10*2), 64(DI)(R10*2))
	K512x4S(144, (DI)(R11*1), 64(DI)(R11*1))
	ADDQ $192, SI
	ADDQ R12, DI
	DECQ BX
	JNZ  loop512x4S

tail512x4S:
	ANDQ $3, CX
	JZ   store512x4S

tailloop512x4S:
	K512x4S(0, (DI), 64(DI))
	ADDQ $48, SI
	ADDQ R10, DI
	DECQ CX
	JNZ  tailloop512x4S

store512x4S:
	VBROADCASTSS alpha+48(FP), Z2
	VBROADCASTSS beta+52(FP), Z3
	MOVQ DX, R9
	MOVQ mode+56(FP), AX
	CMPQ AX, $1
	JEQ  mode1_512x4S
	CMPQ AX, $2
	JEQ  mode2_512x4S
	ALL512x4(ST512_0)
	VZEROUPPER
	RET

mode1_512x4S:
	ALL512x4(ST512_1)
	VZEROUPPER
	RET

mode2_512x4S:
	ALL512x4(ST512_2)
	VZEROUPPER
	RET

// func kernAVX512n16S(kc int, a, b, c *float32, ldc, ldb int, alpha, beta float32, mode int)
TEXT ·kernAVX512n16S(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8
	MOVQ ldb+40(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R11
	MOVQ R10, R12
	SHLQ $2, R12

	MOVQ DX, R9
	ALL512h(PFh)

	ZERO512h

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail512n16S

loop512n16S:
	K512n16S(0, (DI), 64(DI))
	K512n16S(48, (DI)(R10*1), 64(DI)(R10*1))
	K512n16S(96, (DI)(R10*2), 64(DI)(R10*2))
	K512n16S(144, (DI)(R11*1), 64(DI)(R11*1))
	ADDQ $192, SI
	ADDQ R12, DI
	DECQ BX
	JNZ  loop512n16S

tail512n16S:
	ANDQ $3, CX
	JZ   store512n16S

tailloop512n16S:
	K512n16S(0, (DI), 64(DI))
	ADDQ $48, SI
	ADDQ R10, DI
	DECQ CX
	JNZ  tailloop512n16S

store512n16S:
	VBROADCASTSS alpha+48(FP), Z2
	VBROADCASTSS beta+52(FP), Z3
	MOVQ DX, R9
	MOVQ mode+56(FP), AX
	CMPQ AX, $1
	JEQ  mode1_512n16S
	CMPQ AX, $2
	JEQ  mode2_512n16S
	ALL512h(ST512h_0)
	VZEROUPPER
	RET

mode1_512n16S:
	ALL512h(ST512h_1)
	VZEROUPPER
	RET

mode2_512n16S:
	ALL512h(ST512h_2)
	VZEROUPPER
	RET
