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


// The AVX-512 kernels: BTERM's and EXPLOG1P's operations lane by lane (so
// the same values), 16 lanes a vector, the comparisons' masks in K
// registers, the constants as embedded-broadcast memory operands (.BCST).
//
// Why 4 interleaved vectors: one vector's softplus is a single dependent
// chain of about 110 cycles (exp's polynomial, a division, log1p's
// polynomial) but only about 36 instructions, which two vector ports issue
// in ~18 cycles, so the core wants ~6 chains in flight. The scheduler
// (97 entries on Golden Cove) only holds the waiting instructions of about
// two chains written one after the other, and the old loop (vector A's
// chain, then B's) ran at ~60 cycles a vector. Here an iteration takes 4
// vectors and interleaves their chains a few instructions at a time (stage
// 1 of A, B, C, D, then stage 2, ...), so that instructions enter the
// scheduler about when their inputs are ready. To fit 4 chains' temporaries
// in 32 registers the constants are read from memory (one load each, which
// the load ports have to spare), and one mask per chain serves both
// comparisons (x >= expMin is dead before e > sqrt2m1 is made).
//
// Register plan. Chain c holds L (the logits), A, N, D, P, Q (temporaries)
// and the mask K:
//	chain 0: Z1-Z6, K1    chain 1: Z7-Z12, K2
//	chain 2: Z13-Z18, K3  chain 3: Z19-Z24, K4
// Z25-Z28: x in the masked tail; Z29: ln2 (1 in the sigmoid kernels);
// Z30: 0; Z31: the tail's padding (logit -100, or g); Y0: the 8 lanes of
// the row sums.
//
// Two exact rewrites of EXPNEG's steps: e = p 2^n is VSCALEFPS (p 2^n
// rounded once, as p times the float 2^n: n is an integer in [-126, 0]
// wherever e is not zeroed, so 2^n is a normal float), and the blends
// of log1p's numerator and denominator are merge-masked additions (each
// lane computes the operation the blend kept). Exhaustive test:
// TestExpLog1pAllFloats.

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
	VMOVAPS.Z    Z29, K, Q

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

// ZEXP4 sets P = e = exp(-|l|) in the 4 chains, leaving K free.
#define ZEXP4 \
	ZE1(Z1, Z2, Z3, K1); ZE1(Z7, Z8, Z9, K2); ZE1(Z13, Z14, Z15, K3); ZE1(Z19, Z20, Z21, K4); \
	ZE2(Z3); ZE2(Z9); ZE2(Z15); ZE2(Z21); \
	ZE3(Z2, Z3, Z5); ZE3(Z8, Z9, Z11); ZE3(Z14, Z15, Z17); ZE3(Z20, Z21, Z23); \
	ZE4(Z2, Z5); ZE4(Z8, Z11); ZE4(Z14, Z17); ZE4(Z20, Z23); \
	ZE5(Z2, Z5); ZE5(Z8, Z11); ZE5(Z14, Z17); ZE5(Z20, Z23); \
	ZE6(Z2, Z5, Z6); ZE6(Z8, Z11, Z12); ZE6(Z14, Z17, Z18); ZE6(Z20, Z23, Z24); \
	ZE7(Z2, Z3, Z5, Z6, K1); ZE7(Z8, Z9, Z11, Z12, K2); ZE7(Z14, Z15, Z17, Z18, K3); ZE7(Z20, Z21, Z23, Z24, K4)

// ZLOG4 sets Q = log1p(e) in the 4 chains from ZEXP4's P (clobbered).
#define ZLOG4 \
	ZL0(Z4, Z5, Z6, K1); ZL0(Z10, Z11, Z12, K2); ZL0(Z16, Z17, Z18, K3); ZL0(Z22, Z23, Z24, K4); \
	ZL1(Z2, Z4, Z5); ZL1(Z8, Z10, Z11); ZL1(Z14, Z16, Z17); ZL1(Z20, Z22, Z23); \
	ZL2(Z2, Z4); ZL2(Z8, Z10); ZL2(Z14, Z16); ZL2(Z20, Z22); \
	ZL3(Z2, Z4); ZL3(Z8, Z10); ZL3(Z14, Z16); ZL3(Z20, Z22); \
	ZL4(Z2, Z4, Z5, Z6); ZL4(Z8, Z10, Z11, Z12); ZL4(Z14, Z16, Z17, Z18); ZL4(Z20, Z22, Z23, Z24)

// ZB: A = x l - (max(l, 0) + log1p(e)), x a register or memory operand.
#define ZB(X, L, A, N, Q) \
	VMAXPS       Z30, L, N; \
	VADDPS       Q, N, N; \
	VMULPS       X, L, A; \
	VSUBPS       N, A, A

// ZACC adds the 16 terms in T (a Z register, Y its low half) to the
// 8-lane accumulator Y0: the first 8, then the next 8 (E a scratch Y).
#define ZACC(T, Y, E) \
	VADDPS  Y, Y0, Y0; \
	VEXTRACTF64X4 $1, T, E; \
	VADDPS  E, Y0, Y0

// ZTERMS4 sets the chains' A to their 16 terms x l - softplus(l), x at
// X0-X3, and adds them to Y0 in order of the elements.
#define ZTERMS4(X0, X1, X2, X3) \
	ZEXP4; \
	ZLOG4; \
	ZB(X0, Z1, Z2, Z3, Z6); ZB(X1, Z7, Z8, Z9, Z12); ZB(X2, Z13, Z14, Z15, Z18); ZB(X3, Z19, Z20, Z21, Z24); \
	ZACC(Z2, Y2, Y3); ZACC(Z8, Y8, Y9); ZACC(Z14, Y14, Y15); ZACC(Z20, Y20, Y21)

// ZCONSTS loads the registers the kernels read: ln2, 0, the padding.
#define ZCONSTS \
	VBROADCASTSS fmk<>+416(SB), Z29; \
	VPXORD       Z30, Z30, Z30; \
	VBROADCASTSS zk<>+0(SB), Z31

// ZTAILMASKS sets K1-K4 to the lanes of the tail's 4 vectors that hold
// its CX (< 64) elements; clobbers AX.
#define ZTAILMASKS \
	MOVQ  $-1, AX; \
	SHLQ  CX, AX; \
	NOTQ  AX; \
	KMOVW AX, K1; \
	SHRQ  $16, AX; \
	KMOVW AX, K2; \
	SHRQ  $16, AX; \
	KMOVW AX, K3; \
	SHRQ  $16, AX; \
	KMOVW AX, K4

// ZTAILX loads the tail's x into Z25-Z28, 0 past the end.
#define ZTAILX \
	VMOVUPS.Z (SI), K1, Z25; \
	VMOVUPS.Z 64(SI), K2, Z26; \
	VMOVUPS.Z 128(SI), K3, Z27; \
	VMOVUPS.Z 192(SI), K4, Z28

// ZTAILL loads the tail's logits into the chains' L, the padding past the end.
#define ZTAILL \
	VMOVAPS Z31, Z1; \
	VMOVAPS Z31, Z7; \
	VMOVAPS Z31, Z13; \
	VMOVAPS Z31, Z19; \
	VMOVUPS (DI), K1, Z1; \
	VMOVUPS 64(DI), K2, Z7; \
	VMOVUPS 128(DI), K3, Z13; \
	VMOVUPS 192(DI), K4, Z19

// ZREDUCE returns the sum of Y0's lanes as bernoulliRowAVX2 does.
#define ZREDUCE \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS  X1, X0, X0; \
	VMOVHLPS X0, X1, X1; \
	VADDPS  X1, X0, X0; \
	VPSHUFD $0x55, X0, X1; \
	VADDSS  X1, X0, X0

// func bernoulliRowAVX512(x, l *float32, n int) float32
// bernoulliRowAVX2 with AVX-512: 64 logits an iteration, the terms added
// to the same 8 lanes in the same order; the last 8 to 56 logits as 64
// with masked loads, the lanes past the end padded with terms of -0.
TEXT ·bernoulliRowAVX512(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ l+8(FP), DI
	MOVQ n+16(FP), CX
	ZCONSTS
	VXORPS  Y0, Y0, Y0               // accumulator

zrow64:
	CMPQ CX, $64
	JL   zrowtail
	VMOVUPS (DI), Z1
	VMOVUPS 64(DI), Z7
	VMOVUPS 128(DI), Z13
	VMOVUPS 192(DI), Z19
	ZTERMS4((SI), 64(SI), 128(SI), 192(SI))
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP  zrow64

zrowtail:
	TESTQ CX, CX
	JZ    zrowdone
	ZTAILMASKS
	ZTAILX
	ZTAILL
	ZTERMS4(Z25, Z26, Z27, Z28)

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
	ZCONSTS
	VMOVUPS (DX), Y0                 // accumulator

zacc64:
	CMPQ CX, $64
	JL   zacctail
	VMOVUPS (DI), Z1
	VMOVUPS 64(DI), Z7
	VMOVUPS 128(DI), Z13
	VMOVUPS 192(DI), Z19
	VADDPS  (BX), Z1, Z1             // l = l + b
	VADDPS  64(BX), Z7, Z7
	VADDPS  128(BX), Z13, Z13
	VADDPS  192(BX), Z19, Z19
	VMOVUPS Z1, (DI)
	VMOVUPS Z7, 64(DI)
	VMOVUPS Z13, 128(DI)
	VMOVUPS Z19, 192(DI)
	ZTERMS4((SI), 64(SI), 128(SI), 192(SI))
	ADDQ $256, SI
	ADDQ $256, DI
	ADDQ $256, BX
	SUBQ $64, CX
	JMP  zacc64

zacctail:
	TESTQ CX, CX
	JZ    zaccdone
	ZTAILMASKS
	ZTAILX
	ZTAILL
	VADDPS  (BX), Z1, K1, Z1         // l = l + b; the padding stays
	VADDPS  64(BX), Z7, K2, Z7
	VADDPS  128(BX), Z13, K3, Z13
	VADDPS  192(BX), Z19, K4, Z19
	VMOVUPS Z1, K1, (DI)
	VMOVUPS Z7, K2, 64(DI)
	VMOVUPS Z13, K3, 128(DI)
	VMOVUPS Z19, K4, 192(DI)
	ZTERMS4(Z25, Z26, Z27, Z28)

zaccdone:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET

// func expLog1pAVX512(a, e, l *float32, n int)
// expLog1pAVX2 with AVX-512: 64 values an iteration as bernoulliRowAVX512,
// the last 8 to 56 with masked loads and stores.
TEXT ·expLog1pAVX512(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ e+8(FP), DI
	MOVQ l+16(FP), DX
	MOVQ n+24(FP), CX
	ZCONSTS

zel64:
	CMPQ CX, $64
	JL   zeltail
	VMOVUPS (SI), Z1
	VMOVUPS 64(SI), Z7
	VMOVUPS 128(SI), Z13
	VMOVUPS 192(SI), Z19
	ZEXP4
	VMOVUPS Z5, (DI)
	VMOVUPS Z11, 64(DI)
	VMOVUPS Z17, 128(DI)
	VMOVUPS Z23, 192(DI)
	ZLOG4
	VMOVUPS Z6, (DX)
	VMOVUPS Z12, 64(DX)
	VMOVUPS Z18, 128(DX)
	VMOVUPS Z24, 192(DX)
	ADDQ $256, SI
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, CX
	JMP  zel64

zeltail:
	TESTQ CX, CX
	JZ    zeldone
	ZTAILMASKS
	VMOVUPS.Z (SI), K1, Z1
	VMOVUPS.Z 64(SI), K2, Z7
	VMOVUPS.Z 128(SI), K3, Z13
	VMOVUPS.Z 192(SI), K4, Z19
	ZEXP4
	ZTAILMASKS                       // ZEXP4 used K1-K4
	VMOVUPS Z5, K1, (DI)
	VMOVUPS Z11, K2, 64(DI)
	VMOVUPS Z17, K3, 128(DI)
	VMOVUPS Z23, K4, 192(DI)
	ZLOG4
	ZTAILMASKS
	VMOVUPS Z6, K1, (DX)
	VMOVUPS Z12, K2, 64(DX)
	VMOVUPS Z18, K3, 128(DX)
	VMOVUPS Z24, K4, 192(DX)

zeldone:
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
