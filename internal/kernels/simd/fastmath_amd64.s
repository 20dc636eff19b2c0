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

// func bernoulliRowAVX2(x, l *float32, n int) float32
// Sum over the first n elements (a multiple of 8) of x l - softplus(l),
// softplus(l) = max(l, 0) + log1p(exp(-|l|)), step by step as Softplus.
TEXT ·bernoulliRowAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ l+8(FP), DI
	MOVQ n+16(FP), CX
	EXPNEGCONSTS
	VBROADCASTSS fmk<>+508(SB), Y8
	VXORPS  Y0, Y0, Y0               // accumulator

rowloop:
	CMPQ CX, $8
	JL   rowdone
	VMOVUPS (DI), Y1                 // l
	EXPNEG
	VCMPPS  $0x1E, Y8, Y6, Y3        // t > sqrt2 - 1
	VSUBPS  Y9, Y6, Y4               // t - 1
	VBLENDVPS Y3, Y4, Y6, Y4         // num
	VADDPS  fmk<>+352(SB), Y6, Y5     // 2 + t
	VADDPS  fmk<>+384(SB), Y6, Y2   // t + 3
	VBLENDVPS Y3, Y2, Y5, Y5         // den
	VANDPS  fmk<>+416(SB), Y3, Y7     // k
	VDIVPS  Y5, Y4, Y4               // s
	VMULPS  Y4, Y4, Y5               // s^2
	VMOVUPS fmk<>+192(SB), Y2
	VFMADD213PS fmk<>+224(SB), Y5, Y2
	VFMADD213PS fmk<>+256(SB), Y5, Y2
	VFMADD213PS fmk<>+288(SB), Y5, Y2
	VFMADD213PS fmk<>+320(SB), Y5, Y2
	VFMADD213PS Y9, Y5, Y2           // p
	VADDPS  Y4, Y4, Y4               // 2s
	VFMADD231PS Y2, Y4, Y7           // log1p = 2s p + k
	VXORPS  Y2, Y2, Y2
	VMAXPS  Y2, Y1, Y3               // max(l, 0)
	VADDPS  Y7, Y3, Y3               // softplus
	VMULPS  (SI), Y1, Y2             // x l
	VSUBPS  Y3, Y2, Y2
	VADDPS  Y2, Y0, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  rowloop

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
