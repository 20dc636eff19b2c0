//go:build amd64 && !purego

#include "textflag.h"
#include "kernel_amd64.h"

// Micro-kernels. Both compute an MR×NR tile of
//
//	acc[i][j] = Σ_{p<kc} Ã[p*MR+i] * B̃[p*NR+j]
//
// with one FMA chain per element (p ascending, starting from +0), and then
// update the row-major tile at c (row stride ldc elements):
//
//	mode 0: c = alpha*acc            (c is not read)
//	mode 1: c = c + alpha*acc
//	mode 2: c = beta*c + alpha*acc
//
// with every product and sum rounded separately (no FMA in the update), so
// that the Go edge-tile code in gemm.go produces bit-identical results.

// ---------------------------------------------------------------------------
// AVX-512: MR=12, NR=32. Accumulators Z8..Z31 (row r in Z(8+2r), Z(9+2r)),
// B̃ row in Z0,Z1, Ã entries used through embedded broadcasts.

#define K512(aoff, boff) \
	VMOVUPS boff(DI), Z0; \
	VMOVUPS boff+64(DI), Z1; \
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

// The row updates (ST512_*), prefetches and ALL512 are in kernel_amd64.h.

// The kernels run with the MXCSR's flush-to-zero (bit 15) and
// denormals-are-zero (bit 6) set by their Go caller for a whole block of
// tiles (flushOn and flushOff in flush_amd64.go): loading the MXCSR twice per
// tile, as they once did, cost about as much as a small tile's arithmetic.
// Subnormal operands cost a microcode assist per instruction on Intel cores:
// a third of A subnormal made a 3200×784×400 product 100 times slower, and
// IWAE's gradients reach them. Normal numbers give the same results; a
// subnormal operand counts as zero, a subnormal result becomes zero.

// func mxcsrFlushOn() (old uint32)
TEXT ·mxcsrFlushOn(SB), NOSPLIT, $8-4
	STMXCSR mxsave-4(SP)
	MOVL    mxsave-4(SP), AX
	MOVL    AX, old+0(FP)
	ORL     $0x8040, AX
	MOVL    AX, mxflush-8(SP)
	LDMXCSR mxflush-8(SP)
	RET

// func mxcsrSet(v uint32)
TEXT ·mxcsrSet(SB), NOSPLIT, $0-4
	LDMXCSR v+0(FP)
	RET

// func kernAVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
TEXT ·kernAVX512(SB), NOSPLIT, $0-56
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	MOVQ DX, R9
	ALL512(PF)

	ZERO512

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail512

loop512:
	K512(0, 0)
	K512(48, 128)
	K512(96, 256)
	K512(144, 384)
	ADDQ $192, SI
	ADDQ $512, DI
	DECQ BX
	JNZ  loop512

tail512:
	ANDQ $3, CX
	JZ   store512

tailloop512:
	K512(0, 0)
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  tailloop512

store512:
	VBROADCASTSS alpha+40(FP), Z2
	VBROADCASTSS beta+44(FP), Z3
	MOVQ DX, R9
	MOVQ mode+48(FP), AX
	CMPQ AX, $1
	JEQ  mode1_512
	CMPQ AX, $2
	JEQ  mode2_512
	ALL512(ST512_0)
	VZEROUPPER
	RET

mode1_512:
	ALL512(ST512_1)
	VZEROUPPER
	RET

mode2_512:
	ALL512(ST512_2)
	VZEROUPPER
	RET

// The same for the first 4 rows of a 12-row panel (edge tiles of m mod 12
// = 1..4, such as the last rows of a 64-row product): 8 accumulators
// Z8..Z15, the same packed layout and the same FMA chain per element, so
// the rows it computes are bit-identical to the full kernel's.

#define K512x4(aoff, boff) \
	VMOVUPS boff(DI), Z0; \
	VMOVUPS boff+64(DI), Z1; \
	VFMADD231PS.BCST aoff+0(SI), Z0, Z8; \
	VFMADD231PS.BCST aoff+0(SI), Z1, Z9; \
	VFMADD231PS.BCST aoff+4(SI), Z0, Z10; \
	VFMADD231PS.BCST aoff+4(SI), Z1, Z11; \
	VFMADD231PS.BCST aoff+8(SI), Z0, Z12; \
	VFMADD231PS.BCST aoff+8(SI), Z1, Z13; \
	VFMADD231PS.BCST aoff+12(SI), Z0, Z14; \
	VFMADD231PS.BCST aoff+12(SI), Z1, Z15

// func kernAVX512x4(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
TEXT ·kernAVX512x4(SB), NOSPLIT, $0-56
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	MOVQ DX, R9
	ALL512x4(PF)

	ZERO512x4

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail512x4

loop512x4:
	K512x4(0, 0)
	K512x4(48, 128)
	K512x4(96, 256)
	K512x4(144, 384)
	ADDQ $192, SI
	ADDQ $512, DI
	DECQ BX
	JNZ  loop512x4

tail512x4:
	ANDQ $3, CX
	JZ   store512x4

tailloop512x4:
	K512x4(0, 0)
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  tailloop512x4

store512x4:
	VBROADCASTSS alpha+40(FP), Z2
	VBROADCASTSS beta+44(FP), Z3
	MOVQ DX, R9
	MOVQ mode+48(FP), AX
	CMPQ AX, $1
	JEQ  mode1_512x4
	CMPQ AX, $2
	JEQ  mode2_512x4
	ALL512x4(ST512_0)
	VZEROUPPER
	RET

mode1_512x4:
	ALL512x4(ST512_1)
	VZEROUPPER
	RET

mode2_512x4:
	ALL512x4(ST512_2)
	VZEROUPPER
	RET

// And for the first 16 columns of the panel (edge tiles of n mod 32 =
// 1..16, such as the last columns of a 400-wide product): one accumulator
// per row, Z8, Z10, ..., Z30.

#define K512n16(aoff, boff) \
	VMOVUPS boff(DI), Z0; \
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

// func kernAVX512n16(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
TEXT ·kernAVX512n16(SB), NOSPLIT, $0-56
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	MOVQ DX, R9
	ALL512h(PFh)

	ZERO512h

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail512n16

loop512n16:
	K512n16(0, 0)
	K512n16(48, 128)
	K512n16(96, 256)
	K512n16(144, 384)
	ADDQ $192, SI
	ADDQ $512, DI
	DECQ BX
	JNZ  loop512n16

tail512n16:
	ANDQ $3, CX
	JZ   store512n16

tailloop512n16:
	K512n16(0, 0)
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  tailloop512n16

store512n16:
	VBROADCASTSS alpha+40(FP), Z2
	VBROADCASTSS beta+44(FP), Z3
	MOVQ DX, R9
	MOVQ mode+48(FP), AX
	CMPQ AX, $1
	JEQ  mode1_512n16
	CMPQ AX, $2
	JEQ  mode2_512n16
	ALL512h(ST512h_0)
	VZEROUPPER
	RET

mode1_512n16:
	ALL512h(ST512h_1)
	VZEROUPPER
	RET

mode2_512n16:
	ALL512h(ST512h_2)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// AVX2+FMA: MR=6, NR=16. Accumulators Y4..Y15 (row r in Y(4+2r), Y(5+2r)),
// B̃ row in Y0,Y1, broadcast Ã entries in Y2,Y3.

#define K256(aoff, boff) \
	VMOVUPS boff(DI), Y0; \
	VMOVUPS boff+32(DI), Y1; \
	VBROADCASTSS aoff+0(SI), Y2; \
	VBROADCASTSS aoff+4(SI), Y3; \
	VFMADD231PS Y2, Y0, Y4; \
	VFMADD231PS Y2, Y1, Y5; \
	VFMADD231PS Y3, Y0, Y6; \
	VFMADD231PS Y3, Y1, Y7; \
	VBROADCASTSS aoff+8(SI), Y2; \
	VBROADCASTSS aoff+12(SI), Y3; \
	VFMADD231PS Y2, Y0, Y8; \
	VFMADD231PS Y2, Y1, Y9; \
	VFMADD231PS Y3, Y0, Y10; \
	VFMADD231PS Y3, Y1, Y11; \
	VBROADCASTSS aoff+16(SI), Y2; \
	VBROADCASTSS aoff+20(SI), Y3; \
	VFMADD231PS Y2, Y0, Y12; \
	VFMADD231PS Y2, Y1, Y13; \
	VFMADD231PS Y3, Y0, Y14; \
	VFMADD231PS Y3, Y1, Y15

// Row updates; R9 points at the row, Y2 = alpha, Y3 = beta, Y0,Y1 scratch.
#define ST256_0(x, y) \
	VMULPS Y2, x, x; \
	VMULPS Y2, y, y; \
	VMOVUPS x, (R9); \
	VMOVUPS y, 32(R9); \
	ADDQ R8, R9

#define ST256_1(x, y) \
	VMULPS Y2, x, x; \
	VMULPS Y2, y, y; \
	VADDPS (R9), x, x; \
	VADDPS 32(R9), y, y; \
	VMOVUPS x, (R9); \
	VMOVUPS y, 32(R9); \
	ADDQ R8, R9

#define ST256_2(x, y) \
	VMULPS (R9), Y3, Y0; \
	VMULPS 32(R9), Y3, Y1; \
	VMULPS Y2, x, x; \
	VMULPS Y2, y, y; \
	VADDPS Y0, x, x; \
	VADDPS Y1, y, y; \
	VMOVUPS x, (R9); \
	VMOVUPS y, 32(R9); \
	ADDQ R8, R9

#define ALL256(M) \
	M(Y4, Y5); \
	M(Y6, Y7); \
	M(Y8, Y9); \
	M(Y10, Y11); \
	M(Y12, Y13); \
	M(Y14, Y15)

#define PF256(x, y) \
	PREFETCHT0 (R9); \
	PREFETCHT0 63(R9); \
	ADDQ R8, R9

// func kernAVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
TEXT ·kernAVX2(SB), NOSPLIT, $0-56
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	MOVQ DX, R9
	ALL256(PF256)

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail256

loop256:
	K256(0, 0)
	K256(24, 64)
	K256(48, 128)
	K256(72, 192)
	ADDQ $96, SI
	ADDQ $256, DI
	DECQ BX
	JNZ  loop256

tail256:
	ANDQ $3, CX
	JZ   store256

tailloop256:
	K256(0, 0)
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  tailloop256

store256:
	VBROADCASTSS alpha+40(FP), Y2
	VBROADCASTSS beta+44(FP), Y3
	MOVQ DX, R9
	MOVQ mode+48(FP), AX
	CMPQ AX, $1
	JEQ  mode1_256
	CMPQ AX, $2
	JEQ  mode2_256
	ALL256(ST256_0)
	VZEROUPPER
	RET

mode1_256:
	ALL256(ST256_1)
	VZEROUPPER
	RET

mode2_256:
	ALL256(ST256_2)
	VZEROUPPER
	RET
