//go:build amd64 && !purego

#include "textflag.h"

// Constant vectors: 8 copies of each float32, for memory operands.
DATA fmk<>+0(SB)/4, $0x39506967
DATA fmk<>+4(SB)/4, $0x39506967
DATA fmk<>+8(SB)/4, $0x39506967
DATA fmk<>+12(SB)/4, $0x39506967
DATA fmk<>+16(SB)/4, $0x39506967
DATA fmk<>+20(SB)/4, $0x39506967
DATA fmk<>+24(SB)/4, $0x39506967
DATA fmk<>+28(SB)/4, $0x39506967
DATA fmk<>+32(SB)/4, $0x3ab743ce
DATA fmk<>+36(SB)/4, $0x3ab743ce
DATA fmk<>+40(SB)/4, $0x3ab743ce
DATA fmk<>+44(SB)/4, $0x3ab743ce
DATA fmk<>+48(SB)/4, $0x3ab743ce
DATA fmk<>+52(SB)/4, $0x3ab743ce
DATA fmk<>+56(SB)/4, $0x3ab743ce
DATA fmk<>+60(SB)/4, $0x3ab743ce
DATA fmk<>+64(SB)/4, $0x3c088908
DATA fmk<>+68(SB)/4, $0x3c088908
DATA fmk<>+72(SB)/4, $0x3c088908
DATA fmk<>+76(SB)/4, $0x3c088908
DATA fmk<>+80(SB)/4, $0x3c088908
DATA fmk<>+84(SB)/4, $0x3c088908
DATA fmk<>+88(SB)/4, $0x3c088908
DATA fmk<>+92(SB)/4, $0x3c088908
DATA fmk<>+96(SB)/4, $0x3d2aa9c1
DATA fmk<>+100(SB)/4, $0x3d2aa9c1
DATA fmk<>+104(SB)/4, $0x3d2aa9c1
DATA fmk<>+108(SB)/4, $0x3d2aa9c1
DATA fmk<>+112(SB)/4, $0x3d2aa9c1
DATA fmk<>+116(SB)/4, $0x3d2aa9c1
DATA fmk<>+120(SB)/4, $0x3d2aa9c1
DATA fmk<>+124(SB)/4, $0x3d2aa9c1
DATA fmk<>+128(SB)/4, $0x3e2aaaaa
DATA fmk<>+132(SB)/4, $0x3e2aaaaa
DATA fmk<>+136(SB)/4, $0x3e2aaaaa
DATA fmk<>+140(SB)/4, $0x3e2aaaaa
DATA fmk<>+144(SB)/4, $0x3e2aaaaa
DATA fmk<>+148(SB)/4, $0x3e2aaaaa
DATA fmk<>+152(SB)/4, $0x3e2aaaaa
DATA fmk<>+156(SB)/4, $0x3e2aaaaa
DATA fmk<>+160(SB)/4, $0x3f000000
DATA fmk<>+164(SB)/4, $0x3f000000
DATA fmk<>+168(SB)/4, $0x3f000000
DATA fmk<>+172(SB)/4, $0x3f000000
DATA fmk<>+176(SB)/4, $0x3f000000
DATA fmk<>+180(SB)/4, $0x3f000000
DATA fmk<>+184(SB)/4, $0x3f000000
DATA fmk<>+188(SB)/4, $0x3f000000
DATA fmk<>+192(SB)/4, $0x3dba2e8c
DATA fmk<>+196(SB)/4, $0x3dba2e8c
DATA fmk<>+200(SB)/4, $0x3dba2e8c
DATA fmk<>+204(SB)/4, $0x3dba2e8c
DATA fmk<>+208(SB)/4, $0x3dba2e8c
DATA fmk<>+212(SB)/4, $0x3dba2e8c
DATA fmk<>+216(SB)/4, $0x3dba2e8c
DATA fmk<>+220(SB)/4, $0x3dba2e8c
DATA fmk<>+224(SB)/4, $0x3de38e39
DATA fmk<>+228(SB)/4, $0x3de38e39
DATA fmk<>+232(SB)/4, $0x3de38e39
DATA fmk<>+236(SB)/4, $0x3de38e39
DATA fmk<>+240(SB)/4, $0x3de38e39
DATA fmk<>+244(SB)/4, $0x3de38e39
DATA fmk<>+248(SB)/4, $0x3de38e39
DATA fmk<>+252(SB)/4, $0x3de38e39
DATA fmk<>+256(SB)/4, $0x3e124925
DATA fmk<>+260(SB)/4, $0x3e124925
DATA fmk<>+264(SB)/4, $0x3e124925
DATA fmk<>+268(SB)/4, $0x3e124925
DATA fmk<>+272(SB)/4, $0x3e124925
DATA fmk<>+276(SB)/4, $0x3e124925
DATA fmk<>+280(SB)/4, $0x3e124925
DATA fmk<>+284(SB)/4, $0x3e124925
DATA fmk<>+288(SB)/4, $0x3e4ccccd
DATA fmk<>+292(SB)/4, $0x3e4ccccd
DATA fmk<>+296(SB)/4, $0x3e4ccccd
DATA fmk<>+300(SB)/4, $0x3e4ccccd
DATA fmk<>+304(SB)/4, $0x3e4ccccd
DATA fmk<>+308(SB)/4, $0x3e4ccccd
DATA fmk<>+312(SB)/4, $0x3e4ccccd
DATA fmk<>+316(SB)/4, $0x3e4ccccd
DATA fmk<>+320(SB)/4, $0x3eaaaaab
DATA fmk<>+324(SB)/4, $0x3eaaaaab
DATA fmk<>+328(SB)/4, $0x3eaaaaab
DATA fmk<>+332(SB)/4, $0x3eaaaaab
DATA fmk<>+336(SB)/4, $0x3eaaaaab
DATA fmk<>+340(SB)/4, $0x3eaaaaab
DATA fmk<>+344(SB)/4, $0x3eaaaaab
DATA fmk<>+348(SB)/4, $0x3eaaaaab
DATA fmk<>+352(SB)/4, $0x40000000
DATA fmk<>+356(SB)/4, $0x40000000
DATA fmk<>+360(SB)/4, $0x40000000
DATA fmk<>+364(SB)/4, $0x40000000
DATA fmk<>+368(SB)/4, $0x40000000
DATA fmk<>+372(SB)/4, $0x40000000
DATA fmk<>+376(SB)/4, $0x40000000
DATA fmk<>+380(SB)/4, $0x40000000
DATA fmk<>+384(SB)/4, $0x40400000
DATA fmk<>+388(SB)/4, $0x40400000
DATA fmk<>+392(SB)/4, $0x40400000
DATA fmk<>+396(SB)/4, $0x40400000
DATA fmk<>+400(SB)/4, $0x40400000
DATA fmk<>+404(SB)/4, $0x40400000
DATA fmk<>+408(SB)/4, $0x40400000
DATA fmk<>+412(SB)/4, $0x40400000
DATA fmk<>+416(SB)/4, $0x3f317218
DATA fmk<>+420(SB)/4, $0x3f317218
DATA fmk<>+424(SB)/4, $0x3f317218
DATA fmk<>+428(SB)/4, $0x3f317218
DATA fmk<>+432(SB)/4, $0x3f317218
DATA fmk<>+436(SB)/4, $0x3f317218
DATA fmk<>+440(SB)/4, $0x3f317218
DATA fmk<>+444(SB)/4, $0x3f317218
DATA fmk<>+448(SB)/4, $127
DATA fmk<>+452(SB)/4, $127
DATA fmk<>+456(SB)/4, $127
DATA fmk<>+460(SB)/4, $127
DATA fmk<>+464(SB)/4, $127
DATA fmk<>+468(SB)/4, $127
DATA fmk<>+472(SB)/4, $127
DATA fmk<>+476(SB)/4, $127
DATA fmk<>+480(SB)/4, $0x80000000
DATA fmk<>+484(SB)/4, $0xc2aeac4f
DATA fmk<>+488(SB)/4, $0x3fb8aa3b
DATA fmk<>+492(SB)/4, $0x4b400000
DATA fmk<>+496(SB)/4, $0x3f318000
DATA fmk<>+500(SB)/4, $0xb95e8083
DATA fmk<>+504(SB)/4, $0x3f800000
DATA fmk<>+508(SB)/4, $0x3ed413cd
GLOBL fmk<>(SB), RODATA|NOPTR, $512

// EXPNEGCONSTS loads the constants EXPNEG reads into Y9-Y15.
#define EXPNEGCONSTS \
	VBROADCASTSS fmk<>+480(SB), Y15; \
	VBROADCASTSS fmk<>+484(SB), Y14; \
	VBROADCASTSS fmk<>+488(SB), Y13; \
	VBROADCASTSS fmk<>+492(SB), Y12; \
	VBROADCASTSS fmk<>+496(SB), Y11; \
	VBROADCASTSS fmk<>+500(SB), Y10; \
	VBROADCASTSS fmk<>+504(SB), Y9

// EXPNEG sets Y6 = exp(-|l|) for l in Y1, step by step as ExpNeg (0 below
// expMin); it clobbers Y2-Y5 and Y7 and reads the constants in Y9-Y15.
#define EXPNEG \
	VORPS   Y15, Y1, Y2;  \
	VCMPPS  $0x11, Y14, Y2, Y3;  \
	VMULPS  Y13, Y2, Y4;  \
	VADDPS  Y12, Y4, Y4;  \
	VSUBPS  Y12, Y4, Y4;  \
	VMOVAPS Y2, Y5;  \
	VFNMADD231PS Y11, Y4, Y5;  \
	VFNMADD231PS Y10, Y4, Y5;  \
	VMOVUPS fmk<>+0(SB), Y6;  \
	VFMADD213PS fmk<>+32(SB), Y5, Y6;  \
	VFMADD213PS fmk<>+64(SB), Y5, Y6;  \
	VFMADD213PS fmk<>+96(SB), Y5, Y6;  \
	VFMADD213PS fmk<>+128(SB), Y5, Y6;  \
	VFMADD213PS fmk<>+160(SB), Y5, Y6;  \
	VMULPS  Y5, Y5, Y7;  \
	VADDPS  Y9, Y5, Y5;  \
	VFMADD213PS Y5, Y7, Y6;  \
	VCVTPS2DQ Y4, Y4;  \
	VPADDD  fmk<>+448(SB), Y4, Y4;  \
	VPSLLD  $23, Y4, Y4;  \
	VMULPS  Y4, Y6, Y6;  \
	VANDNPS Y6, Y3, Y6

// SIGMOID sets Y4 = sigmoid(l) for l in Y1, as Sigmoid: (l >= 0 ? 1 : e)/(1 + e),
// e = exp(-|l|); it clobbers what EXPNEG does and Y2-Y6.
#define SIGMOID \
	EXPNEG; \
	VXORPS  Y2, Y2, Y2; \
	VCMPPS  $0x1D, Y2, Y1, Y3; \
	VBLENDVPS Y3, Y9, Y6, Y4; \
	VADDPS  Y6, Y9, Y5; \
	VDIVPS  Y5, Y4, Y4

// The constants of fmk<>+480 onwards (sign, expMin, log2e, magic, ln2hi,
// ln2lo, sqrt2m1), 8 copies each, for memory operands: the two-stream loops
// below need every register for their temporaries.
DATA fmv<>+0(SB)/4, $0x80000000
DATA fmv<>+4(SB)/4, $0x80000000
DATA fmv<>+8(SB)/4, $0x80000000
DATA fmv<>+12(SB)/4, $0x80000000
DATA fmv<>+16(SB)/4, $0x80000000
DATA fmv<>+20(SB)/4, $0x80000000
DATA fmv<>+24(SB)/4, $0x80000000
DATA fmv<>+28(SB)/4, $0x80000000
DATA fmv<>+32(SB)/4, $0xc2aeac4f
DATA fmv<>+36(SB)/4, $0xc2aeac4f
DATA fmv<>+40(SB)/4, $0xc2aeac4f
DATA fmv<>+44(SB)/4, $0xc2aeac4f
DATA fmv<>+48(SB)/4, $0xc2aeac4f
DATA fmv<>+52(SB)/4, $0xc2aeac4f
DATA fmv<>+56(SB)/4, $0xc2aeac4f
DATA fmv<>+60(SB)/4, $0xc2aeac4f
DATA fmv<>+64(SB)/4, $0x3fb8aa3b
DATA fmv<>+68(SB)/4, $0x3fb8aa3b
DATA fmv<>+72(SB)/4, $0x3fb8aa3b
DATA fmv<>+76(SB)/4, $0x3fb8aa3b
DATA fmv<>+80(SB)/4, $0x3fb8aa3b
DATA fmv<>+84(SB)/4, $0x3fb8aa3b
DATA fmv<>+88(SB)/4, $0x3fb8aa3b
DATA fmv<>+92(SB)/4, $0x3fb8aa3b
DATA fmv<>+96(SB)/4, $0x4b400000
DATA fmv<>+100(SB)/4, $0x4b400000
DATA fmv<>+104(SB)/4, $0x4b400000
DATA fmv<>+108(SB)/4, $0x4b400000
DATA fmv<>+112(SB)/4, $0x4b400000
DATA fmv<>+116(SB)/4, $0x4b400000
DATA fmv<>+120(SB)/4, $0x4b400000
DATA fmv<>+124(SB)/4, $0x4b400000
DATA fmv<>+128(SB)/4, $0x3f318000
DATA fmv<>+132(SB)/4, $0x3f318000
DATA fmv<>+136(SB)/4, $0x3f318000
DATA fmv<>+140(SB)/4, $0x3f318000
DATA fmv<>+144(SB)/4, $0x3f318000
DATA fmv<>+148(SB)/4, $0x3f318000
DATA fmv<>+152(SB)/4, $0x3f318000
DATA fmv<>+156(SB)/4, $0x3f318000
DATA fmv<>+160(SB)/4, $0xb95e8083
DATA fmv<>+164(SB)/4, $0xb95e8083
DATA fmv<>+168(SB)/4, $0xb95e8083
DATA fmv<>+172(SB)/4, $0xb95e8083
DATA fmv<>+176(SB)/4, $0xb95e8083
DATA fmv<>+180(SB)/4, $0xb95e8083
DATA fmv<>+184(SB)/4, $0xb95e8083
DATA fmv<>+188(SB)/4, $0xb95e8083
DATA fmv<>+192(SB)/4, $0x3ed413cd
DATA fmv<>+196(SB)/4, $0x3ed413cd
DATA fmv<>+200(SB)/4, $0x3ed413cd
DATA fmv<>+204(SB)/4, $0x3ed413cd
DATA fmv<>+208(SB)/4, $0x3ed413cd
DATA fmv<>+212(SB)/4, $0x3ed413cd
DATA fmv<>+216(SB)/4, $0x3ed413cd
DATA fmv<>+220(SB)/4, $0x3ed413cd
GLOBL fmv<>(SB), RODATA|NOPTR, $224

// EXPLOG1P sets T6 = e = exp(-|a|) and T7 = log1p(e) for the 8 values in A,
// step by step as ExpNeg and Log1p (BTERM's first part), its constants
// from memory (1.0 in Y9); it clobbers T2-T5.
#define EXPLOG1P(A, T2, T3, T4, T5, T6, T7) \
	VORPS   fmv<>+0(SB), A, T2; \
	VCMPPS  $0x11, fmv<>+32(SB), T2, T3; \
	VMULPS  fmv<>+64(SB), T2, T4; \
	VADDPS  fmv<>+96(SB), T4, T4; \
	VSUBPS  fmv<>+96(SB), T4, T4; \
	VMOVAPS T2, T5; \
	VFNMADD231PS fmv<>+128(SB), T4, T5; \
	VFNMADD231PS fmv<>+160(SB), T4, T5; \
	VMOVUPS fmk<>+0(SB), T6; \
	VFMADD213PS fmk<>+32(SB), T5, T6; \
	VFMADD213PS fmk<>+64(SB), T5, T6; \
	VFMADD213PS fmk<>+96(SB), T5, T6; \
	VFMADD213PS fmk<>+128(SB), T5, T6; \
	VFMADD213PS fmk<>+160(SB), T5, T6; \
	VMULPS  T5, T5, T7; \
	VADDPS  Y9, T5, T5; \
	VFMADD213PS T5, T7, T6; \
	VCVTPS2DQ T4, T4; \
	VPADDD  fmk<>+448(SB), T4, T4; \
	VPSLLD  $23, T4, T4; \
	VMULPS  T4, T6, T6; \
	VANDNPS T6, T3, T6; \
	VCMPPS  $0x1E, fmv<>+192(SB), T6, T3; \
	VSUBPS  Y9, T6, T4; \
	VBLENDVPS T3, T4, T6, T4; \
	VADDPS  fmk<>+352(SB), T6, T5; \
	VADDPS  fmk<>+384(SB), T6, T2; \
	VBLENDVPS T3, T2, T5, T5; \
	VANDPS  fmk<>+416(SB), T3, T7; \
	VDIVPS  T5, T4, T4; \
	VMULPS  T4, T4, T5; \
	VMOVUPS fmk<>+192(SB), T2; \
	VFMADD213PS fmk<>+224(SB), T5, T2; \
	VFMADD213PS fmk<>+256(SB), T5, T2; \
	VFMADD213PS fmk<>+288(SB), T5, T2; \
	VFMADD213PS fmk<>+320(SB), T5, T2; \
	VFMADD213PS Y9, T5, T2; \
	VADDPS  T4, T4, T4; \
	VFMADD231PS T2, T4, T7

// BTERM sets T2 = x l - softplus(l) for the 8 logits in L and the memory
// operand X, softplus(l) = max(l, 0) + log1p(exp(-|l|)), from EXPLOG1P's
// e and log1p(e), its constants from memory (1.0 in Y9). It clobbers T3-T7. Two BTERMs on different registers are independent
// chains of about 110 cycles' latency each, which the out-of-order core
// overlaps: one chain per loop iteration left it waiting on them (45
// cycles per 8 logits, 2.2 ns per element).
#define BTERM(X, L, T2, T3, T4, T5, T6, T7) \
	EXPLOG1P(L, T2, T3, T4, T5, T6, T7); \
	VXORPS  T2, T2, T2; \
	VMAXPS  T2, L, T3; \
	VADDPS  T7, T3, T3; \
	VMULPS  X, L, T2; \
	VSUBPS  T3, T2, T2

// func bernoulliRowAVX2(x, l *float32, n int) float32
// Sum over the first n elements (a multiple of 8) of x l - softplus(l),
// softplus(l) = max(l, 0) + log1p(exp(-|l|)), step by step as Softplus;
// element j goes into lane j mod 8 of the accumulator, in order of j.
TEXT ·bernoulliRowAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ l+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS fmk<>+504(SB), Y9   // 1
	VXORPS  Y0, Y0, Y0               // accumulator

row16:
	CMPQ CX, $16
	JL   row8
	VMOVUPS (DI), Y1
	VMOVUPS 32(DI), Y8
	BTERM((SI), Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	BTERM(32(SI), Y8, Y10, Y11, Y12, Y13, Y14, Y15)
	VADDPS  Y2, Y0, Y0
	VADDPS  Y10, Y0, Y0
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  row16

row8:
	CMPQ CX, $8
	JL   rowdone
	VMOVUPS (DI), Y1
	BTERM((SI), Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	VADDPS  Y2, Y0, Y0

rowdone:
	VEXTRACTF128 $1, Y0, X1
	VADDPS  X1, X0, X0
	VMOVHLPS X0, X1, X1
	VADDPS  X1, X0, X0
	VPSHUFD $0x55, X0, X1
	VADDSS  X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func bernoulliBiasAccAVX2(x, l, b, acc *float32, n int)
// For the first n elements (a multiple of 8): l += b (stored back), and
// acc (8 lanes, loaded and stored) += x l - softplus(l), element j into
// lane j mod 8, in order of j: bernoulliRowAVX2's body on logits l + b
// (the addition as addAVX2's), its accumulator kept across calls.
TEXT ·bernoulliBiasAccAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ l+8(FP), DI
	MOVQ b+16(FP), BX
	MOVQ acc+24(FP), DX
	MOVQ n+32(FP), CX
	VBROADCASTSS fmk<>+504(SB), Y9   // 1
	VMOVUPS (DX), Y0                 // accumulator

acc16:
	CMPQ CX, $16
	JL   acc8
	VMOVUPS (DI), Y1
	VMOVUPS 32(DI), Y8
	VADDPS  (BX), Y1, Y1             // l = l + b
	VADDPS  32(BX), Y8, Y8
	VMOVUPS Y1, (DI)
	VMOVUPS Y8, 32(DI)
	BTERM((SI), Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	BTERM(32(SI), Y8, Y10, Y11, Y12, Y13, Y14, Y15)
	VADDPS  Y2, Y0, Y0
	VADDPS  Y10, Y0, Y0
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, BX
	SUBQ $16, CX
	JMP  acc16

acc8:
	CMPQ CX, $8
	JL   accdone
	VMOVUPS (DI), Y1
	VADDPS  (BX), Y1, Y1
	VMOVUPS Y1, (DI)
	BTERM((SI), Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	VADDPS  Y2, Y0, Y0

accdone:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET


// The AVX-512 kernels: BTERM's, EXPLOG1P's and SIGMOID's operations lane
// by lane (so the same values), 16 lanes a vector, the comparisons' masks
// in K registers, the constants as embedded-broadcast memory operands.
//
// Why 6 interleaved vectors: one vector's softplus is a single dependent
// chain of about 110 cycles (exp's polynomial, an 18-cycle division,
// log1p's polynomial) of only about 40 instructions, which the two vector
// ports issue in ~20 cycles, so the core needs ~5 chains in flight. Its
// scheduler (97 entries) held the waiting instructions of only about two
// chains written one after the other: the old loop (vector A's chain, then
// B's) ran at ~45 cycles a vector. Here an iteration takes 6 vectors and
// interleaves their chains stage by stage (ZE1 of vectors 0-5, then ZE2,
// ...), so that instructions enter the scheduler about when their inputs
// are ready. (4 vectors ran as fast, and staggering the chains by a stage
// or two gained nothing measurable; ~30 cycles a vector remain.) To fit 6
// chains in 32 registers the constants are read from memory, one load each
// (the load ports have them to spare), a chain's registers are reused as
// values die, and one mask per chain serves both of its comparisons.
//
// Register plan. Chain c (0-5) holds its logits L in Z(5c+1), and
// temporaries A = Z(5c+2), N = D = Z(5c+3) (n until e is made, then
// log1p's denominator), P = Z(5c+4), Q = Z(5c+5), and the mask K(c+1)
// (x >= expMin until e is made, then e > sqrt2m1). Z31 holds 0 (1 in
// bernoulliGradAVX512), Y0 the row sums' 8 lanes (g in the gradient).
// A row's last 8 to 88 elements go through the same code with masked loads
// and stores (ZTAILMASKS), the lanes past the end padded.
//
// Two exact rewrites of EXPNEG's steps: e = p 2^n is VSCALEFPS (p 2^n
// rounded once, as p times the float 2^n: n is an integer in [-126, 0]
// wherever e is not zeroed, so 2^n is a normal float), and the blends of
// log1p's numerator and denominator are merge-masked operations (each lane
// computes the operation the blend kept). TestExpLog1pAllFloats checks all
// 2^32 inputs against the AVX2 kernel.

// The tail's padding logit, -100: softplus(-100) is +0 exactly (e
// underflows), so with x = 0 a padded lane's term is 0 (-100) - 0 = -0,
// and adding -0 leaves every accumulator lane as it was.
DATA zk<>+0(SB)/4, $0xc2c80000
GLOBL zk<>(SB), RODATA|NOPTR, $4

// ZE1: A = x = -|l|, K = x >= expMin (or NaN), N = x log2e.
#define ZE1(L, A, N, K) \
	VPORD.BCST   fmk<>+480(SB), L, A; \
	VCMPPS.BCST  $0x15, fmk<>+484(SB), A, K; \
	VMULPS.BCST  fmk<>+488(SB), A, N

// ZE2: N = n, rounded to an integer by adding and subtracting magic.
#define ZE2(N) \
	VADDPS.BCST  fmk<>+492(SB), N, N; \
	VSUBPS.BCST  fmk<>+492(SB), N, N

// ZE3: A = r = x - n ln2hi - n ln2lo; P = the polynomial's first coefficient.
#define ZE3(A, N, P) \
	VFNMADD231PS.BCST fmk<>+496(SB), N, A; \
	VFNMADD231PS.BCST fmk<>+500(SB), N, A; \
	VBROADCASTSS fmk<>+0(SB), P

// ZE4, ZE5: two Horner steps each of exp's polynomial in r.
#define ZE4(A, P) \
	VFMADD213PS.BCST fmk<>+32(SB), A, P; \
	VFMADD213PS.BCST fmk<>+64(SB), A, P

#define ZE5(A, P) \
	VFMADD213PS.BCST fmk<>+96(SB), A, P; \
	VFMADD213PS.BCST fmk<>+128(SB), A, P

// ZE6: the last step; Q = r^2, A = r + 1.
#define ZE6(A, P, Q) \
	VFMADD213PS.BCST fmk<>+160(SB), A, P; \
	VMULPS       A, A, Q; \
	VADDPS.BCST  fmk<>+504(SB), A, A

// ZE7: P = e = (p r^2 + r + 1) 2^n, 0 where x < expMin.
#define ZE7(A, N, P, Q, K) \
	VFMADD213PS  A, Q, P; \
	VSCALEFPS.Z  N, P, K, P

// ZL0 starts log1p(e): K = e > sqrt2m1, D = e + 2 (e + 3 where K), P = e
// (e - 1 where K), Q = 0 (ln2 where K).
#define ZL0(D, P, Q, K) \
	VCMPPS.BCST  $0x1E, fmk<>+508(SB), P, K; \
	VADDPS.BCST  fmk<>+352(SB), P, D; \
	VADDPS.BCST  fmk<>+384(SB), P, K, D; \
	VSUBPS.BCST  fmk<>+504(SB), P, K, P; \
	VPXORD       Q, Q, Q; \
	VADDPS.BCST  fmk<>+416(SB), Q, K, Q

// ZL1: P = s = P/D, D = s^2, A = log1p's polynomial's first coefficient.
#define ZL1(A, D, P) \
	VDIVPS       D, P, P; \
	VMULPS       P, P, D; \
	VBROADCASTSS fmk<>+192(SB), A

// ZL2, ZL3: Horner steps in s^2.
#define ZL2(A, D) \
	VFMADD213PS.BCST fmk<>+224(SB), D, A; \
	VFMADD213PS.BCST fmk<>+256(SB), D, A

#define ZL3(A, D) \
	VFMADD213PS.BCST fmk<>+288(SB), D, A; \
	VFMADD213PS.BCST fmk<>+320(SB), D, A

// ZL4: Q = log1p(e) = 2s p + k.
#define ZL4(A, D, P, Q) \
	VFMADD213PS.BCST fmk<>+504(SB), D, A; \
	VADDPS       P, P, P; \
	VFMADD231PS  A, P, Q

// ZB: A = x l - (max(l, 0) + log1p(e)), x a memory operand. ZBT: the
// same with x loaded under the tail's mask K (0 past the end).
#define ZB(X, L, A, N, Q) \
	VMAXPS       Z31, L, N; \
	VADDPS       Q, N, N; \
	VMULPS       X, L, A; \
	VSUBPS       N, A, A

#define ZBT(X, L, A, N, Q, K) \
	VMOVUPS.Z    X, K, A; \
	VMAXPS       Z31, L, N; \
	VADDPS       Q, N, N; \
	VMULPS       A, L, A; \
	VSUBPS       N, A, A

// ZACC adds the 16 terms in T (a Z register, Y its low half) to the
// 8-lane accumulator Y0: the first 8, then the next 8 (E a scratch Y).
#define ZACC(T, Y, E) \
	VADDPS  Y, Y0, Y0; \
	VEXTRACTF64X4 $1, T, E; \
	VADDPS  E, Y0, Y0

// ZKT(c, K) sets K to the lanes of the tail's vector c (see ZTAILMASKS).
#define ZKT(C, K) KMOVW (20-4*C)(R8)(AX*2), K

// ZTERMS adds the 6 vectors' terms x l - softplus(l) (x at SI) to Y0 in
// order of the elements, stage by stage.
#define ZTERMS \
	ZE1(Z1, Z2, Z3, K1); ZE1(Z6, Z7, Z8, K2); ZE1(Z11, Z12, Z13, K3); ZE1(Z16, Z17, Z18, K4); ZE1(Z21, Z22, Z23, K5); ZE1(Z26, Z27, Z28, K6); \
	ZE2(Z3); ZE2(Z8); ZE2(Z13); ZE2(Z18); ZE2(Z23); ZE2(Z28); \
	ZE3(Z2, Z3, Z4); ZE3(Z7, Z8, Z9); ZE3(Z12, Z13, Z14); ZE3(Z17, Z18, Z19); ZE3(Z22, Z23, Z24); ZE3(Z27, Z28, Z29); \
	ZE4(Z2, Z4); ZE4(Z7, Z9); ZE4(Z12, Z14); ZE4(Z17, Z19); ZE4(Z22, Z24); ZE4(Z27, Z29); \
	ZE5(Z2, Z4); ZE5(Z7, Z9); ZE5(Z12, Z14); ZE5(Z17, Z19); ZE5(Z22, Z24); ZE5(Z27, Z29); \
	ZE6(Z2, Z4, Z5); ZE6(Z7, Z9, Z10); ZE6(Z12, Z14, Z15); ZE6(Z17, Z19, Z20); ZE6(Z22, Z24, Z25); ZE6(Z27, Z29, Z30); \
	ZE7(Z2, Z3, Z4, Z5, K1); ZE7(Z7, Z8, Z9, Z10, K2); ZE7(Z12, Z13, Z14, Z15, K3); ZE7(Z17, Z18, Z19, Z20, K4); ZE7(Z22, Z23, Z24, Z25, K5); ZE7(Z27, Z28, Z29, Z30, K6); \
	ZL0(Z3, Z4, Z5, K1); ZL0(Z8, Z9, Z10, K2); ZL0(Z13, Z14, Z15, K3); ZL0(Z18, Z19, Z20, K4); ZL0(Z23, Z24, Z25, K5); ZL0(Z28, Z29, Z30, K6); \
	ZL1(Z2, Z3, Z4); ZL1(Z7, Z8, Z9); ZL1(Z12, Z13, Z14); ZL1(Z17, Z18, Z19); ZL1(Z22, Z23, Z24); ZL1(Z27, Z28, Z29); \
	ZL2(Z2, Z3); ZL2(Z7, Z8); ZL2(Z12, Z13); ZL2(Z17, Z18); ZL2(Z22, Z23); ZL2(Z27, Z28); \
	ZL3(Z2, Z3); ZL3(Z7, Z8); ZL3(Z12, Z13); ZL3(Z17, Z18); ZL3(Z22, Z23); ZL3(Z27, Z28); \
	ZL4(Z2, Z3, Z4, Z5); ZL4(Z7, Z8, Z9, Z10); ZL4(Z12, Z13, Z14, Z15); ZL4(Z17, Z18, Z19, Z20); ZL4(Z22, Z23, Z24, Z25); ZL4(Z27, Z28, Z29, Z30); \
	ZB(0(SI), Z1, Z2, Z3, Z5); ZB(64(SI), Z6, Z7, Z8, Z10); ZB(128(SI), Z11, Z12, Z13, Z15); ZB(192(SI), Z16, Z17, Z18, Z20); ZB(256(SI), Z21, Z22, Z23, Z25); ZB(320(SI), Z26, Z27, Z28, Z30); \
	ZACC(Z2, Y2, Y3); ZACC(Z7, Y7, Y8); ZACC(Z12, Y12, Y13); ZACC(Z17, Y17, Y18); ZACC(Z22, Y22, Y23); ZACC(Z27, Y27, Y28)

// ZTERMST is ZTERMS for the tail, x loaded under its masks.
#define ZTERMST \
	ZE1(Z1, Z2, Z3, K1); ZE1(Z6, Z7, Z8, K2); ZE1(Z11, Z12, Z13, K3); ZE1(Z16, Z17, Z18, K4); ZE1(Z21, Z22, Z23, K5); ZE1(Z26, Z27, Z28, K6); \
	ZE2(Z3); ZE2(Z8); ZE2(Z13); ZE2(Z18); ZE2(Z23); ZE2(Z28); \
	ZE3(Z2, Z3, Z4); ZE3(Z7, Z8, Z9); ZE3(Z12, Z13, Z14); ZE3(Z17, Z18, Z19); ZE3(Z22, Z23, Z24); ZE3(Z27, Z28, Z29); \
	ZE4(Z2, Z4); ZE4(Z7, Z9); ZE4(Z12, Z14); ZE4(Z17, Z19); ZE4(Z22, Z24); ZE4(Z27, Z29); \
	ZE5(Z2, Z4); ZE5(Z7, Z9); ZE5(Z12, Z14); ZE5(Z17, Z19); ZE5(Z22, Z24); ZE5(Z27, Z29); \
	ZE6(Z2, Z4, Z5); ZE6(Z7, Z9, Z10); ZE6(Z12, Z14, Z15); ZE6(Z17, Z19, Z20); ZE6(Z22, Z24, Z25); ZE6(Z27, Z29, Z30); \
	ZE7(Z2, Z3, Z4, Z5, K1); ZE7(Z7, Z8, Z9, Z10, K2); ZE7(Z12, Z13, Z14, Z15, K3); ZE7(Z17, Z18, Z19, Z20, K4); ZE7(Z22, Z23, Z24, Z25, K5); ZE7(Z27, Z28, Z29, Z30, K6); \
	ZL0(Z3, Z4, Z5, K1); ZL0(Z8, Z9, Z10, K2); ZL0(Z13, Z14, Z15, K3); ZL0(Z18, Z19, Z20, K4); ZL0(Z23, Z24, Z25, K5); ZL0(Z28, Z29, Z30, K6); \
	ZL1(Z2, Z3, Z4); ZL1(Z7, Z8, Z9); ZL1(Z12, Z13, Z14); ZL1(Z17, Z18, Z19); ZL1(Z22, Z23, Z24); ZL1(Z27, Z28, Z29); \
	ZL2(Z2, Z3); ZL2(Z7, Z8); ZL2(Z12, Z13); ZL2(Z17, Z18); ZL2(Z22, Z23); ZL2(Z27, Z28); \
	ZL3(Z2, Z3); ZL3(Z7, Z8); ZL3(Z12, Z13); ZL3(Z17, Z18); ZL3(Z22, Z23); ZL3(Z27, Z28); \
	ZL4(Z2, Z3, Z4, Z5); ZL4(Z7, Z8, Z9, Z10); ZL4(Z12, Z13, Z14, Z15); ZL4(Z17, Z18, Z19, Z20); ZL4(Z22, Z23, Z24, Z25); ZL4(Z27, Z28, Z29, Z30); \
	ZKT(0, K1); ZKT(1, K2); ZKT(2, K3); ZKT(3, K4); ZKT(4, K5); ZKT(5, K6); \
	ZBT(0(SI), Z1, Z2, Z3, Z5, K1); ZBT(64(SI), Z6, Z7, Z8, Z10, K2); ZBT(128(SI), Z11, Z12, Z13, Z15, K3); ZBT(192(SI), Z16, Z17, Z18, Z20, K4); ZBT(256(SI), Z21, Z22, Z23, Z25, K5); ZBT(320(SI), Z26, Z27, Z28, Z30, K6); \
	ZACC(Z2, Y2, Y3); ZACC(Z7, Y7, Y8); ZACC(Z12, Y12, Y13); ZACC(Z17, Y17, Y18); ZACC(Z22, Y22, Y23); ZACC(Z27, Y27, Y28)

// ZEXPLOG stores e = exp(-|a|) at DI and log1p(e) at DX for the chains' a.
#define ZEXPLOG \
	ZE1(Z1, Z2, Z3, K1); ZE1(Z6, Z7, Z8, K2); ZE1(Z11, Z12, Z13, K3); ZE1(Z16, Z17, Z18, K4); ZE1(Z21, Z22, Z23, K5); ZE1(Z26, Z27, Z28, K6); \
	ZE2(Z3); ZE2(Z8); ZE2(Z13); ZE2(Z18); ZE2(Z23); ZE2(Z28); \
	ZE3(Z2, Z3, Z4); ZE3(Z7, Z8, Z9); ZE3(Z12, Z13, Z14); ZE3(Z17, Z18, Z19); ZE3(Z22, Z23, Z24); ZE3(Z27, Z28, Z29); \
	ZE4(Z2, Z4); ZE4(Z7, Z9); ZE4(Z12, Z14); ZE4(Z17, Z19); ZE4(Z22, Z24); ZE4(Z27, Z29); \
	ZE5(Z2, Z4); ZE5(Z7, Z9); ZE5(Z12, Z14); ZE5(Z17, Z19); ZE5(Z22, Z24); ZE5(Z27, Z29); \
	ZE6(Z2, Z4, Z5); ZE6(Z7, Z9, Z10); ZE6(Z12, Z14, Z15); ZE6(Z17, Z19, Z20); ZE6(Z22, Z24, Z25); ZE6(Z27, Z29, Z30); \
	ZE7(Z2, Z3, Z4, Z5, K1); ZE7(Z7, Z8, Z9, Z10, K2); ZE7(Z12, Z13, Z14, Z15, K3); ZE7(Z17, Z18, Z19, Z20, K4); ZE7(Z22, Z23, Z24, Z25, K5); ZE7(Z27, Z28, Z29, Z30, K6); \
	VMOVUPS Z4, 0(DI); VMOVUPS Z9, 64(DI); VMOVUPS Z14, 128(DI); VMOVUPS Z19, 192(DI); VMOVUPS Z24, 256(DI); VMOVUPS Z29, 320(DI); \
	ZL0(Z3, Z4, Z5, K1); ZL0(Z8, Z9, Z10, K2); ZL0(Z13, Z14, Z15, K3); ZL0(Z18, Z19, Z20, K4); ZL0(Z23, Z24, Z25, K5); ZL0(Z28, Z29, Z30, K6); \
	ZL1(Z2, Z3, Z4); ZL1(Z7, Z8, Z9); ZL1(Z12, Z13, Z14); ZL1(Z17, Z18, Z19); ZL1(Z22, Z23, Z24); ZL1(Z27, Z28, Z29); \
	ZL2(Z2, Z3); ZL2(Z7, Z8); ZL2(Z12, Z13); ZL2(Z17, Z18); ZL2(Z22, Z23); ZL2(Z27, Z28); \
	ZL3(Z2, Z3); ZL3(Z7, Z8); ZL3(Z12, Z13); ZL3(Z17, Z18); ZL3(Z22, Z23); ZL3(Z27, Z28); \
	ZL4(Z2, Z3, Z4, Z5); ZL4(Z7, Z8, Z9, Z10); ZL4(Z12, Z13, Z14, Z15); ZL4(Z17, Z18, Z19, Z20); ZL4(Z22, Z23, Z24, Z25); ZL4(Z27, Z28, Z29, Z30); \
	VMOVUPS Z5, 0(DX); VMOVUPS Z10, 64(DX); VMOVUPS Z15, 128(DX); VMOVUPS Z20, 192(DX); VMOVUPS Z25, 256(DX); VMOVUPS Z30, 320(DX)

// ZEXPLOGT is ZEXPLOG for the tail, storing under its masks.
#define ZEXPLOGT \
	ZE1(Z1, Z2, Z3, K1); ZE1(Z6, Z7, Z8, K2); ZE1(Z11, Z12, Z13, K3); ZE1(Z16, Z17, Z18, K4); ZE1(Z21, Z22, Z23, K5); ZE1(Z26, Z27, Z28, K6); \
	ZE2(Z3); ZE2(Z8); ZE2(Z13); ZE2(Z18); ZE2(Z23); ZE2(Z28); \
	ZE3(Z2, Z3, Z4); ZE3(Z7, Z8, Z9); ZE3(Z12, Z13, Z14); ZE3(Z17, Z18, Z19); ZE3(Z22, Z23, Z24); ZE3(Z27, Z28, Z29); \
	ZE4(Z2, Z4); ZE4(Z7, Z9); ZE4(Z12, Z14); ZE4(Z17, Z19); ZE4(Z22, Z24); ZE4(Z27, Z29); \
	ZE5(Z2, Z4); ZE5(Z7, Z9); ZE5(Z12, Z14); ZE5(Z17, Z19); ZE5(Z22, Z24); ZE5(Z27, Z29); \
	ZE6(Z2, Z4, Z5); ZE6(Z7, Z9, Z10); ZE6(Z12, Z14, Z15); ZE6(Z17, Z19, Z20); ZE6(Z22, Z24, Z25); ZE6(Z27, Z29, Z30); \
	ZE7(Z2, Z3, Z4, Z5, K1); ZE7(Z7, Z8, Z9, Z10, K2); ZE7(Z12, Z13, Z14, Z15, K3); ZE7(Z17, Z18, Z19, Z20, K4); ZE7(Z22, Z23, Z24, Z25, K5); ZE7(Z27, Z28, Z29, Z30, K6); \
	ZKT(0, K1); ZKT(1, K2); ZKT(2, K3); ZKT(3, K4); ZKT(4, K5); ZKT(5, K6); \
	VMOVUPS Z4, K1, 0(DI); VMOVUPS Z9, K2, 64(DI); VMOVUPS Z14, K3, 128(DI); VMOVUPS Z19, K4, 192(DI); VMOVUPS Z24, K5, 256(DI); VMOVUPS Z29, K6, 320(DI); \
	ZL0(Z3, Z4, Z5, K1); ZL0(Z8, Z9, Z10, K2); ZL0(Z13, Z14, Z15, K3); ZL0(Z18, Z19, Z20, K4); ZL0(Z23, Z24, Z25, K5); ZL0(Z28, Z29, Z30, K6); \
	ZL1(Z2, Z3, Z4); ZL1(Z7, Z8, Z9); ZL1(Z12, Z13, Z14); ZL1(Z17, Z18, Z19); ZL1(Z22, Z23, Z24); ZL1(Z27, Z28, Z29); \
	ZL2(Z2, Z3); ZL2(Z7, Z8); ZL2(Z12, Z13); ZL2(Z17, Z18); ZL2(Z22, Z23); ZL2(Z27, Z28); \
	ZL3(Z2, Z3); ZL3(Z7, Z8); ZL3(Z12, Z13); ZL3(Z17, Z18); ZL3(Z22, Z23); ZL3(Z27, Z28); \
	ZL4(Z2, Z3, Z4, Z5); ZL4(Z7, Z8, Z9, Z10); ZL4(Z12, Z13, Z14, Z15); ZL4(Z17, Z18, Z19, Z20); ZL4(Z22, Z23, Z24, Z25); ZL4(Z27, Z28, Z29, Z30); \
	ZKT(0, K1); ZKT(1, K2); ZKT(2, K3); ZKT(3, K4); ZKT(4, K5); ZKT(5, K6); \
	VMOVUPS Z5, K1, 0(DX); VMOVUPS Z10, K2, 64(DX); VMOVUPS Z15, K3, 128(DX); VMOVUPS Z20, K4, 192(DX); VMOVUPS Z25, K5, 256(DX); VMOVUPS Z30, K6, 320(DX)

// ZGRAD stores g (x - sigmoid(l)) at DX for the chains' l (x at SI).
#define ZGRAD \
	ZE1(Z1, Z2, Z3, K1); ZE1(Z6, Z7, Z8, K2); ZE1(Z11, Z12, Z13, K3); ZE1(Z16, Z17, Z18, K4); ZE1(Z21, Z22, Z23, K5); ZE1(Z26, Z27, Z28, K6); \
	ZE2(Z3); ZE2(Z8); ZE2(Z13); ZE2(Z18); ZE2(Z23); ZE2(Z28); \
	ZE3(Z2, Z3, Z4); ZE3(Z7, Z8, Z9); ZE3(Z12, Z13, Z14); ZE3(Z17, Z18, Z19); ZE3(Z22, Z23, Z24); ZE3(Z27, Z28, Z29); \
	ZE4(Z2, Z4); ZE4(Z7, Z9); ZE4(Z12, Z14); ZE4(Z17, Z19); ZE4(Z22, Z24); ZE4(Z27, Z29); \
	ZE5(Z2, Z4); ZE5(Z7, Z9); ZE5(Z12, Z14); ZE5(Z17, Z19); ZE5(Z22, Z24); ZE5(Z27, Z29); \
	ZE6(Z2, Z4, Z5); ZE6(Z7, Z9, Z10); ZE6(Z12, Z14, Z15); ZE6(Z17, Z19, Z20); ZE6(Z22, Z24, Z25); ZE6(Z27, Z29, Z30); \
	ZE7(Z2, Z3, Z4, Z5, K1); ZE7(Z7, Z8, Z9, Z10, K2); ZE7(Z12, Z13, Z14, Z15, K3); ZE7(Z17, Z18, Z19, Z20, K4); ZE7(Z22, Z23, Z24, Z25, K5); ZE7(Z27, Z28, Z29, Z30, K6); \
	ZG1(Z1, Z3, Z4, K1); ZG1(Z6, Z8, Z9, K2); ZG1(Z11, Z13, Z14, K3); ZG1(Z16, Z18, Z19, K4); ZG1(Z21, Z23, Z24, K5); ZG1(Z26, Z28, Z29, K6); \
	ZG2(Z3, Z4); ZG2(Z8, Z9); ZG2(Z13, Z14); ZG2(Z18, Z19); ZG2(Z23, Z24); ZG2(Z28, Z29); \
	ZG3(0(SI), Z2, Z4); ZG3(64(SI), Z7, Z9); ZG3(128(SI), Z12, Z14); ZG3(192(SI), Z17, Z19); ZG3(256(SI), Z22, Z24); ZG3(320(SI), Z27, Z29); \
	VMOVUPS Z2, 0(DX); VMOVUPS Z7, 64(DX); VMOVUPS Z12, 128(DX); VMOVUPS Z17, 192(DX); VMOVUPS Z22, 256(DX); VMOVUPS Z27, 320(DX)

// ZGRADT is ZGRAD for the tail, x loaded and d stored under its masks.
#define ZGRADT \
	ZE1(Z1, Z2, Z3, K1); ZE1(Z6, Z7, Z8, K2); ZE1(Z11, Z12, Z13, K3); ZE1(Z16, Z17, Z18, K4); ZE1(Z21, Z22, Z23, K5); ZE1(Z26, Z27, Z28, K6); \
	ZE2(Z3); ZE2(Z8); ZE2(Z13); ZE2(Z18); ZE2(Z23); ZE2(Z28); \
	ZE3(Z2, Z3, Z4); ZE3(Z7, Z8, Z9); ZE3(Z12, Z13, Z14); ZE3(Z17, Z18, Z19); ZE3(Z22, Z23, Z24); ZE3(Z27, Z28, Z29); \
	ZE4(Z2, Z4); ZE4(Z7, Z9); ZE4(Z12, Z14); ZE4(Z17, Z19); ZE4(Z22, Z24); ZE4(Z27, Z29); \
	ZE5(Z2, Z4); ZE5(Z7, Z9); ZE5(Z12, Z14); ZE5(Z17, Z19); ZE5(Z22, Z24); ZE5(Z27, Z29); \
	ZE6(Z2, Z4, Z5); ZE6(Z7, Z9, Z10); ZE6(Z12, Z14, Z15); ZE6(Z17, Z19, Z20); ZE6(Z22, Z24, Z25); ZE6(Z27, Z29, Z30); \
	ZE7(Z2, Z3, Z4, Z5, K1); ZE7(Z7, Z8, Z9, Z10, K2); ZE7(Z12, Z13, Z14, Z15, K3); ZE7(Z17, Z18, Z19, Z20, K4); ZE7(Z22, Z23, Z24, Z25, K5); ZE7(Z27, Z28, Z29, Z30, K6); \
	ZG1(Z1, Z3, Z4, K1); ZG1(Z6, Z8, Z9, K2); ZG1(Z11, Z13, Z14, K3); ZG1(Z16, Z18, Z19, K4); ZG1(Z21, Z23, Z24, K5); ZG1(Z26, Z28, Z29, K6); \
	ZG2(Z3, Z4); ZG2(Z8, Z9); ZG2(Z13, Z14); ZG2(Z18, Z19); ZG2(Z23, Z24); ZG2(Z28, Z29); \
	ZKT(0, K1); ZKT(1, K2); ZKT(2, K3); ZKT(3, K4); ZKT(4, K5); ZKT(5, K6); \
	ZG3T(0(SI), Z2, Z4, K1); ZG3T(64(SI), Z7, Z9, K2); ZG3T(128(SI), Z12, Z14, K3); ZG3T(192(SI), Z17, Z19, K4); ZG3T(256(SI), Z22, Z24, K5); ZG3T(320(SI), Z27, Z29, K6); \
	VMOVUPS Z2, K1, 0(DX); VMOVUPS Z7, K2, 64(DX); VMOVUPS Z12, K3, 128(DX); VMOVUPS Z17, K4, 192(DX); VMOVUPS Z22, K5, 256(DX); VMOVUPS Z27, K6, 320(DX)

// ZPREFETCH(OFF) asks for the 6 cache lines of x at OFF(SI). x is read once
// per call, from L3 when the batch outgrows L2, and the chains' x operands
// are loaded only when the out-of-order window reaches them, each miss
// late: with x in L3 (a 12 MB batch, the logits in L2) prefetching took a
// benchmark of the kernel from ~1.5 to ~1.25 ns an element. The loops ask
// for x two iterations ahead and the entry for the first two, not past the
// end (the next call's x is elsewhere) but for a short call's.
#define ZPREFETCH(OFF) \
	PREFETCHT0 (OFF+0)(SI); \
	PREFETCHT0 (OFF+64)(SI); \
	PREFETCHT0 (OFF+128)(SI); \
	PREFETCHT0 (OFF+192)(SI); \
	PREFETCHT0 (OFF+256)(SI); \
	PREFETCHT0 (OFF+320)(SI)

// ZLOAD loads the chains' logits (l at DI).
#define ZLOAD \
	VMOVUPS 0(DI), Z1; \
	VMOVUPS 64(DI), Z6; \
	VMOVUPS 128(DI), Z11; \
	VMOVUPS 192(DI), Z16; \
	VMOVUPS 256(DI), Z21; \
	VMOVUPS 320(DI), Z26

// ZBIAS: l += b (b at BX), stored back at DI.
#define ZBIAS \
	VADDPS 0(BX), Z1, Z1; \
	VADDPS 64(BX), Z6, Z6; \
	VADDPS 128(BX), Z11, Z11; \
	VADDPS 192(BX), Z16, Z16; \
	VADDPS 256(BX), Z21, Z21; \
	VADDPS 320(BX), Z26, Z26; \
	VMOVUPS Z1, 0(DI); \
	VMOVUPS Z6, 64(DI); \
	VMOVUPS Z11, 128(DI); \
	VMOVUPS Z16, 192(DI); \
	VMOVUPS Z21, 256(DI); \
	VMOVUPS Z26, 320(DI)

// zm<>: 11 masks of no lanes, one of the low 8, then 10 of all 16. Chain c
// of a tail of q blocks of 8 takes the one at index q - 2c + 10 (q - 2c
// of its blocks are in the tail).
DATA zm<>+0(SB)/2, $0x0
DATA zm<>+2(SB)/2, $0x0
DATA zm<>+4(SB)/2, $0x0
DATA zm<>+6(SB)/2, $0x0
DATA zm<>+8(SB)/2, $0x0
DATA zm<>+10(SB)/2, $0x0
DATA zm<>+12(SB)/2, $0x0
DATA zm<>+14(SB)/2, $0x0
DATA zm<>+16(SB)/2, $0x0
DATA zm<>+18(SB)/2, $0x0
DATA zm<>+20(SB)/2, $0x0
DATA zm<>+22(SB)/2, $0xff
DATA zm<>+24(SB)/2, $0xffff
DATA zm<>+26(SB)/2, $0xffff
DATA zm<>+28(SB)/2, $0xffff
DATA zm<>+30(SB)/2, $0xffff
DATA zm<>+32(SB)/2, $0xffff
DATA zm<>+34(SB)/2, $0xffff
DATA zm<>+36(SB)/2, $0xffff
DATA zm<>+38(SB)/2, $0xffff
DATA zm<>+40(SB)/2, $0xffff
DATA zm<>+42(SB)/2, $0xffff
GLOBL zm<>(SB), RODATA|NOPTR, $44

// ZTAILMASKS sets K1-K6 to the lanes of the tail's 6 vectors that hold
// its CX (< 96, a multiple of 8) elements, AX = CX/8 and R8 = zm<>.
#define ZTAILMASKS \
	MOVQ  CX, AX; \
	SHRQ  $3, AX; \
	LEAQ  zm<>(SB), R8; \
	ZKT(0, K1); \
	ZKT(1, K2); \
	ZKT(2, K3); \
	ZKT(3, K4); \
	ZKT(4, K5); \
	ZKT(5, K6)

// ZTAILL loads the tail's logits into the chains' L, the padding past the end.
#define ZTAILL \
	VBROADCASTSS zk<>+0(SB), Z1; \
	VBROADCASTSS zk<>+0(SB), Z6; \
	VBROADCASTSS zk<>+0(SB), Z11; \
	VBROADCASTSS zk<>+0(SB), Z16; \
	VBROADCASTSS zk<>+0(SB), Z21; \
	VBROADCASTSS zk<>+0(SB), Z26; \
	VMOVUPS 0(DI), K1, Z1; \
	VMOVUPS 64(DI), K2, Z6; \
	VMOVUPS 128(DI), K3, Z11; \
	VMOVUPS 192(DI), K4, Z16; \
	VMOVUPS 256(DI), K5, Z21; \
	VMOVUPS 320(DI), K6, Z26

// ZTAILBIAS: l += b under the tail's masks (the padding stays), stored back.
#define ZTAILBIAS \
	VADDPS 0(BX), Z1, K1, Z1; \
	VADDPS 64(BX), Z6, K2, Z6; \
	VADDPS 128(BX), Z11, K3, Z11; \
	VADDPS 192(BX), Z16, K4, Z16; \
	VADDPS 256(BX), Z21, K5, Z21; \
	VADDPS 320(BX), Z26, K6, Z26; \
	VMOVUPS Z1, K1, 0(DI); \
	VMOVUPS Z6, K2, 64(DI); \
	VMOVUPS Z11, K3, 128(DI); \
	VMOVUPS Z16, K4, 192(DI); \
	VMOVUPS Z21, K5, 256(DI); \
	VMOVUPS Z26, K6, 320(DI)

// ZREDUCE returns the sum of Y0's lanes as bernoulliRowAVX2 does.
#define ZREDUCE \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS  X1, X0, X0; \
	VMOVHLPS X0, X1, X1; \
	VADDPS  X1, X0, X0; \
	VPSHUFD $0x55, X0, X1; \
	VADDSS  X1, X0, X0

// func bernoulliRowAVX512(x, l *float32, n int) float32
// bernoulliRowAVX2 with AVX-512: 96 logits an iteration, the terms added
// to the same 8 lanes in the same order; the last 8 to 88 logits as 96
// with masked loads, the lanes past the end padded with terms of -0.
TEXT ·bernoulliRowAVX512(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ l+8(FP), DI
	MOVQ n+16(FP), CX
	VPXORD  Z31, Z31, Z31
	VXORPS  Y0, Y0, Y0               // accumulator
	ZPREFETCH(0)
	CMPQ CX, $96
	JLE  zrowloop
	ZPREFETCH(384)

zrowloop:
	CMPQ CX, $96
	JL   zrowtail
	CMPQ CX, $192
	JLE  zrowbody
	ZPREFETCH(768)

zrowbody:
	ZLOAD
	ZTERMS
	ADDQ $384, SI
	ADDQ $384, DI
	SUBQ $96, CX
	JMP  zrowloop

zrowtail:
	TESTQ CX, CX
	JZ    zrowdone
	ZTAILMASKS
	ZTAILL
	ZTERMST

zrowdone:
	ZREDUCE
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func bernoulliBiasAccAVX512(x, l, b, acc *float32, n int)
// bernoulliBiasAccAVX2 with AVX-512, as bernoulliRowAVX512.
TEXT ·bernoulliBiasAccAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ l+8(FP), DI
	MOVQ b+16(FP), BX
	MOVQ acc+24(FP), DX
	MOVQ n+32(FP), CX
	VPXORD  Z31, Z31, Z31
	VMOVUPS (DX), Y0                 // accumulator
	ZPREFETCH(0)
	CMPQ CX, $96
	JLE  zaccloop
	ZPREFETCH(384)

zaccloop:
	CMPQ CX, $96
	JL   zacctail
	CMPQ CX, $192
	JLE  zaccbody
	ZPREFETCH(768)

zaccbody:
	ZLOAD
	ZBIAS
	ZTERMS
	ADDQ $384, SI
	ADDQ $384, DI
	ADDQ $384, BX
	SUBQ $96, CX
	JMP  zaccloop

zacctail:
	TESTQ CX, CX
	JZ    zaccdone
	ZTAILMASKS
	ZTAILL
	ZTAILBIAS
	ZTERMST

zaccdone:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET

// func expLog1pAVX512(a, e, l *float32, n int)
// expLog1pAVX2 with AVX-512: 96 values an iteration as bernoulliRowAVX512,
// the last 8 to 88 with masked loads and stores.
TEXT ·expLog1pAVX512(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ e+8(FP), DI
	MOVQ l+16(FP), DX
	MOVQ n+24(FP), CX

zelloop:
	CMPQ CX, $96
	JL   zeltail
	VMOVUPS 0(SI), Z1
	VMOVUPS 64(SI), Z6
	VMOVUPS 128(SI), Z11
	VMOVUPS 192(SI), Z16
	VMOVUPS 256(SI), Z21
	VMOVUPS 320(SI), Z26
	ZEXPLOG
	ADDQ $384, SI
	ADDQ $384, DI
	ADDQ $384, DX
	SUBQ $96, CX
	JMP  zelloop

zeltail:
	TESTQ CX, CX
	JZ    zeldone
	ZTAILMASKS
	VMOVUPS.Z 0(SI), K1, Z1
	VMOVUPS.Z 64(SI), K2, Z6
	VMOVUPS.Z 128(SI), K3, Z11
	VMOVUPS.Z 192(SI), K4, Z16
	VMOVUPS.Z 256(SI), K5, Z21
	VMOVUPS.Z 320(SI), K6, Z26
	ZEXPLOGT

zeldone:
	VZEROUPPER
	RET

// ZG1 starts sigmoid(l) = (l >= 0 ? 1 : e)/(1 + e) from ZEXP's e in P:
// K = l >= 0, D = 1 + e, P = 1 where K (1 in Z31).
#define ZG1(L, D, P, K) \
	VCMPPS.BCST  $0x1D, fmk<>+480(SB), L, K; \
	VADDPS.BCST  fmk<>+504(SB), P, D; \
	VMOVAPS      Z31, K, P

// ZG2: P = sigmoid(l).
#define ZG2(D, P) \
	VDIVPS       D, P, P

// ZG3: A = g (x - sigmoid(l)), g in Z0. ZG3T: x loaded under the mask K.
#define ZG3(X, A, P) \
	VMOVUPS      X, A; \
	VSUBPS       P, A, A; \
	VMULPS       Z0, A, A

#define ZG3T(X, A, P, K) \
	VMOVUPS.Z    X, K, A; \
	VSUBPS       P, A, A; \
	VMULPS       Z0, A, A

// func bernoulliGradAVX512(d, x, l *float32, n int, scale float32)
// bernoulliGradAVX2 with AVX-512: 96 elements an iteration as
// bernoulliRowAVX512, the last 8 to 88 with masked loads and stores.
TEXT ·bernoulliGradAVX512(SB), NOSPLIT, $0-36
	MOVQ d+0(FP), DX
	MOVQ x+8(FP), SI
	MOVQ l+16(FP), DI
	MOVQ n+24(FP), CX
	VBROADCASTSS scale+32(FP), Z0
	VBROADCASTSS fmk<>+504(SB), Z31  // 1
	ZPREFETCH(0)
	CMPQ CX, $96
	JLE  zgradloop
	ZPREFETCH(384)

zgradloop:
	CMPQ CX, $96
	JL   zgradtail
	CMPQ CX, $192
	JLE  zgradbody
	ZPREFETCH(768)

zgradbody:
	ZLOAD
	ZGRAD
	ADDQ $384, DX
	ADDQ $384, SI
	ADDQ $384, DI
	SUBQ $96, CX
	JMP  zgradloop

zgradtail:
	TESTQ CX, CX
	JZ    zgraddone
	ZTAILMASKS
	VMOVUPS.Z 0(DI), K1, Z1
	VMOVUPS.Z 64(DI), K2, Z6
	VMOVUPS.Z 128(DI), K3, Z11
	VMOVUPS.Z 192(DI), K4, Z16
	VMOVUPS.Z 256(DI), K5, Z21
	VMOVUPS.Z 320(DI), K6, Z26
	ZGRADT

zgraddone:
	VZEROUPPER
	RET

// func bernoulliGradAVX2(d, x, l *float32, n int, scale float32)
// d = g (x - sigmoid(l)) on the first n elements (a multiple of 8), with
// sigmoid(l) = (l >= 0 ? 1 : e)/(1 + e), e = exp(-|l|), as Sigmoid.
TEXT ·bernoulliGradAVX2(SB), NOSPLIT, $0-36
	MOVQ d+0(FP), DX
	MOVQ x+8(FP), SI
	MOVQ l+16(FP), DI
	MOVQ n+24(FP), CX
	EXPNEGCONSTS
	VBROADCASTSS fmk<>+508(SB), Y8
	VBROADCASTSS scale+32(FP), Y0

gradloop:
	CMPQ CX, $8
	JL   graddone
	VMOVUPS (DI), Y1                 // l
	SIGMOID
	VMOVUPS (SI), Y5
	VSUBPS  Y4, Y5, Y5               // x - sigmoid
	VMULPS  Y5, Y0, Y5               // g (x - sigmoid)
	VMOVUPS Y5, (DX)
	ADDQ $32, DX
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  gradloop

graddone:
	VZEROUPPER
	RET

// func sigmoidAVX2(d, l *float32, n int)
// d = sigmoid(l) on the first n elements (a multiple of 8), as Sigmoid:
// (l >= 0 ? 1 : e)/(1 + e), e = exp(-|l|).
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ d+0(FP), DX
	MOVQ l+8(FP), DI
	MOVQ n+16(FP), CX
	EXPNEGCONSTS

sigloop:
	CMPQ CX, $8
	JL   sigdone
	VMOVUPS (DI), Y1                 // l
	SIGMOID
	VMOVUPS Y4, (DX)
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  sigloop

sigdone:
	VZEROUPPER
	RET

// func expLog1pAVX2(a, e, l *float32, n int)
// e = exp(-|a|) and l = log1p(e) on the first n elements (a multiple of
// 8), as ExpNeg and Log1p; two independent chains per iteration, as in
// bernoulliRowAVX2.
TEXT ·expLog1pAVX2(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ e+8(FP), DI
	MOVQ l+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS fmk<>+504(SB), Y9   // 1

el16:
	CMPQ CX, $16
	JL   el8
	VMOVUPS (SI), Y1
	VMOVUPS 32(SI), Y8
	EXPLOG1P(Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	EXPLOG1P(Y8, Y10, Y11, Y12, Y13, Y14, Y15)
	VMOVUPS Y6, (DI)
	VMOVUPS Y14, 32(DI)
	VMOVUPS Y7, (DX)
	VMOVUPS Y15, 32(DX)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $16, CX
	JMP  el16

el8:
	CMPQ CX, $8
	JL   eldone
	VMOVUPS (SI), Y1
	EXPLOG1P(Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, (DX)

eldone:
	VZEROUPPER
	RET
