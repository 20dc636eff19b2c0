//go:build amd64 && !purego

#include "textflag.h"

// Constants: 4 copies of each vector constant (memory operands), then the
// scalars broadcast into registers.
DATA mixk<>+0(SB)/8, $0x3e21eed8eff8d898  // 1/12!
DATA mixk<>+8(SB)/8, $0x3e21eed8eff8d898
DATA mixk<>+16(SB)/8, $0x3e21eed8eff8d898
DATA mixk<>+24(SB)/8, $0x3e21eed8eff8d898
DATA mixk<>+32(SB)/8, $0x3e5ae64567f544e4  // 1/11!
DATA mixk<>+40(SB)/8, $0x3e5ae64567f544e4
DATA mixk<>+48(SB)/8, $0x3e5ae64567f544e4
DATA mixk<>+56(SB)/8, $0x3e5ae64567f544e4
DATA mixk<>+64(SB)/8, $0x3e927e4fb7789f5c  // 1/10!
DATA mixk<>+72(SB)/8, $0x3e927e4fb7789f5c
DATA mixk<>+80(SB)/8, $0x3e927e4fb7789f5c
DATA mixk<>+88(SB)/8, $0x3e927e4fb7789f5c
DATA mixk<>+96(SB)/8, $0x3ec71de3a556c734  // 1/9!
DATA mixk<>+104(SB)/8, $0x3ec71de3a556c734
DATA mixk<>+112(SB)/8, $0x3ec71de3a556c734
DATA mixk<>+120(SB)/8, $0x3ec71de3a556c734
DATA mixk<>+128(SB)/8, $0x3efa01a01a01a01a  // 1/8!
DATA mixk<>+136(SB)/8, $0x3efa01a01a01a01a
DATA mixk<>+144(SB)/8, $0x3efa01a01a01a01a
DATA mixk<>+152(SB)/8, $0x3efa01a01a01a01a
DATA mixk<>+160(SB)/8, $0x3f2a01a01a01a01a  // 1/7!
DATA mixk<>+168(SB)/8, $0x3f2a01a01a01a01a
DATA mixk<>+176(SB)/8, $0x3f2a01a01a01a01a
DATA mixk<>+184(SB)/8, $0x3f2a01a01a01a01a
DATA mixk<>+192(SB)/8, $0x3f56c16c16c16c17  // 1/6!
DATA mixk<>+200(SB)/8, $0x3f56c16c16c16c17
DATA mixk<>+208(SB)/8, $0x3f56c16c16c16c17
DATA mixk<>+216(SB)/8, $0x3f56c16c16c16c17
DATA mixk<>+224(SB)/8, $0x3f81111111111111  // 1/5!
DATA mixk<>+232(SB)/8, $0x3f81111111111111
DATA mixk<>+240(SB)/8, $0x3f81111111111111
DATA mixk<>+248(SB)/8, $0x3f81111111111111
DATA mixk<>+256(SB)/8, $0x3fa5555555555555  // 1/4!
DATA mixk<>+264(SB)/8, $0x3fa5555555555555
DATA mixk<>+272(SB)/8, $0x3fa5555555555555
DATA mixk<>+280(SB)/8, $0x3fa5555555555555
DATA mixk<>+288(SB)/8, $0x3fc5555555555555  // 1/3!
DATA mixk<>+296(SB)/8, $0x3fc5555555555555
DATA mixk<>+304(SB)/8, $0x3fc5555555555555
DATA mixk<>+312(SB)/8, $0x3fc5555555555555
DATA mixk<>+320(SB)/8, $0x3fe0000000000000  // 1/2!
DATA mixk<>+328(SB)/8, $0x3fe0000000000000
DATA mixk<>+336(SB)/8, $0x3fe0000000000000
DATA mixk<>+344(SB)/8, $0x3fe0000000000000
DATA mixk<>+352(SB)/8, $0x000fffffffffffff  // mantissa mask
DATA mixk<>+360(SB)/8, $0x000fffffffffffff
DATA mixk<>+368(SB)/8, $0x000fffffffffffff
DATA mixk<>+376(SB)/8, $0x000fffffffffffff
DATA mixk<>+384(SB)/8, $0x3ff0000000000000  // bits of 1.0
DATA mixk<>+392(SB)/8, $0x3ff0000000000000
DATA mixk<>+400(SB)/8, $0x3ff0000000000000
DATA mixk<>+408(SB)/8, $0x3ff0000000000000
DATA mixk<>+416(SB)/8, $0x3ff0000000000000  // 1.0
DATA mixk<>+424(SB)/8, $0xc082c00000000000  // clamp
DATA mixk<>+432(SB)/8, $0x3ff71547652b82fe  // log2e
DATA mixk<>+440(SB)/8, $0x3fe62e42fee00000  // ln2hi
DATA mixk<>+448(SB)/8, $0x3dea39ef35793c76  // ln2lo
DATA mixk<>+456(SB)/8, $0x00000000000003ff  // 1023
GLOBL mixk<>(SB), RODATA|NOPTR, $464

// func mixSumsAVX2(x *float64, assign *int, n int, a, b *float64, k int, acc, e, h *float64)
//
// mixSums on the first n points (a multiple of 4), one point per lane, all
// in float64. Per 4 points and for j = 0..k-1:
//   pass 1: l_j = a_j x - b_j into e[4j:4j+4], running max and argmax;
//   pass 2: d = max(l_j - max, -600), e_j = exp(d) into e, z += e_j, zl += e_j d;
//   pass 3: p = e_j / z, N_j += p, S_j += p x into acc[8j:8j+4], acc[8j+4:8j+8].
// h[0:4] += zl / z per lane; h[4:8] (mantissa, in [1, 2)) and h[8:12] (int64
// exponent sums) hold prod z per lane. Every lane keeps its own sums; the
// caller adds the lanes in a fixed order.
//
// exp(d): n = round(d log2 e), r = d - n ln2 (ln2 in two parts, the high one
// with 21 trailing zero bits, so n ln2hi is exact), |r| <= ln2/2,
// exp(r) by Horner on its Taylor series to r^12/12! (truncation < 2.3e-16
// relative), times 2^n built in the exponent field (n >= -866: normal).
//
// Registers: Y0 x, Y1 max, Y2 argmax, Y3 j, Y6 z, Y7 zl, Y8 1.0, Y9 -600,
// Y10 log2 e, Y11 ln2hi, Y12 ln2lo, Y13 1023 (int64); Y4, Y5, Y14, Y15 scratch.
#define EXP \
	VMULPD  Y10, Y4, Y5  \
	VROUNDPD $0, Y5, Y5  \
	VMOVAPD Y4, Y14  \
	VFNMADD231PD Y11, Y5, Y14  \
	VFNMADD231PD Y12, Y5, Y14  \
	VMOVUPD mixk<>+0(SB), Y15  \
	VFMADD213PD mixk<>+32(SB), Y14, Y15  \
	VFMADD213PD mixk<>+64(SB), Y14, Y15  \
	VFMADD213PD mixk<>+96(SB), Y14, Y15  \
	VFMADD213PD mixk<>+128(SB), Y14, Y15  \
	VFMADD213PD mixk<>+160(SB), Y14, Y15  \
	VFMADD213PD mixk<>+192(SB), Y14, Y15  \
	VFMADD213PD mixk<>+224(SB), Y14, Y15  \
	VFMADD213PD mixk<>+256(SB), Y14, Y15  \
	VFMADD213PD mixk<>+288(SB), Y14, Y15  \
	VFMADD213PD mixk<>+320(SB), Y14, Y15  \
	VFMADD213PD Y8, Y14, Y15  \
	VFMADD213PD Y8, Y14, Y15  \
	VCVTPD2DQY Y5, X5  \
	VPMOVSXDQ X5, Y5  \
	VPADDQ  Y13, Y5, Y5  \
	VPSLLQ  $52, Y5, Y5  \
	VMULPD  Y5, Y15, Y15

TEXT ·mixSumsAVX2(SB), NOSPLIT, $0-72
	MOVQ x+0(FP), SI
	MOVQ assign+8(FP), DI
	MOVQ n+16(FP), DX
	VBROADCASTSD mixk<>+416(SB), Y8
	VBROADCASTSD mixk<>+424(SB), Y9
	VBROADCASTSD mixk<>+432(SB), Y10
	VBROADCASTSD mixk<>+440(SB), Y11
	VBROADCASTSD mixk<>+448(SB), Y12
	VBROADCASTSD mixk<>+456(SB), Y13
	TESTQ DX, DX
	JLE  done

point:
	VMOVUPD (SI), Y0
	MOVQ a+24(FP), R8
	MOVQ b+32(FP), R9
	MOVQ e+56(FP), R10
	MOVQ k+40(FP), CX

	// pass 1; j = 0 sets max and argmax
	VBROADCASTSD (R8), Y4
	VBROADCASTSD (R9), Y5
	VFMSUB213PD Y5, Y0, Y4
	VMOVUPD Y4, (R10)
	VMOVAPD Y4, Y1
	VXORPD  Y2, Y2, Y2
	VXORPD  Y3, Y3, Y3
	DECQ CX
	JZ   pass2

logits:
	ADDQ $8, R8
	ADDQ $8, R9
	ADDQ $32, R10
	VADDPD  Y8, Y3, Y3
	VBROADCASTSD (R8), Y4
	VBROADCASTSD (R9), Y5
	VFMSUB213PD Y5, Y0, Y4
	VMOVUPD Y4, (R10)
	VCMPPD  $0x1E, Y1, Y4, Y5  // l > max
	VBLENDVPD Y5, Y3, Y2, Y2
	VMAXPD  Y4, Y1, Y1
	DECQ CX
	JNZ  logits

pass2:
	MOVQ e+56(FP), R10
	MOVQ k+40(FP), CX
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7

exps:
	VMOVUPD (R10), Y4
	VSUBPD  Y1, Y4, Y4
	VMAXPD  Y9, Y4, Y4
	EXP
	VMOVUPD Y15, (R10)
	VADDPD  Y15, Y6, Y6
	VFMADD231PD Y15, Y4, Y7
	ADDQ $32, R10
	DECQ CX
	JNZ  exps

	// 1/z; the entropy term; prod z split into mantissa and exponent
	MOVQ h+64(FP), R11
	VDIVPD  Y6, Y8, Y5
	VMOVUPD (R11), Y4
	VFMADD231PD Y5, Y7, Y4
	VMOVUPD Y4, (R11)
	VMULPD  32(R11), Y6, Y4
	VPSRLQ  $52, Y4, Y14
	VPSUBQ  Y13, Y14, Y14
	VPADDQ  64(R11), Y14, Y14
	VMOVDQU Y14, 64(R11)
	VANDPD  mixk<>+352(SB), Y4, Y4
	VORPD   mixk<>+384(SB), Y4, Y4
	VMOVUPD Y4, 32(R11)

	// pass 3
	MOVQ e+56(FP), R10
	MOVQ acc+48(FP), R11
	MOVQ k+40(FP), CX

sums:
	VMULPD  (R10), Y5, Y4
	VADDPD  (R11), Y4, Y14
	VMOVUPD Y14, (R11)
	VMOVUPD 32(R11), Y14
	VFMADD231PD Y0, Y4, Y14
	VMOVUPD Y14, 32(R11)
	ADDQ $32, R10
	ADDQ $64, R11
	DECQ CX
	JNZ  sums

	VCVTTPD2DQY Y2, X2
	VPMOVSXDQ X2, Y2
	VMOVDQU Y2, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $4, DX
	JG   point

done:
	VZEROUPPER
	RET
