// Accumulator zeroing, tile updates and prefetches of the AVX-512
// micro-kernels, shared by kernel_amd64.s and kernel_strided_amd64.s. In
// the updates R9 points at the row of C, R8 is its stride in bytes,
// Z2 = alpha, Z3 = beta, Z4,Z5 scratch.

// Zero the accumulators: all 24, the 4-row kernel's 8, the half kernel's 12.
#define ZERO512 \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15; \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z17, Z17, Z17; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z21, Z21, Z21; \
	VPXORD Z22, Z22, Z22; \
	VPXORD Z23, Z23, Z23; \
	VPXORD Z24, Z24, Z24; \
	VPXORD Z25, Z25, Z25; \
	VPXORD Z26, Z26, Z26; \
	VPXORD Z27, Z27, Z27; \
	VPXORD Z28, Z28, Z28; \
	VPXORD Z29, Z29, Z29; \
	VPXORD Z30, Z30, Z30; \
	VPXORD Z31, Z31, Z31

#define ZERO512x4 \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15

#define ZERO512h \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z20, Z20, Z20; \
	VPXORD Z22, Z22, Z22; \
	VPXORD Z24, Z24, Z24; \
	VPXORD Z26, Z26, Z26; \
	VPXORD Z28, Z28, Z28; \
	VPXORD Z30, Z30, Z30

#define ST512_0(x, y) \
	VMULPS Z2, x, x; \
	VMULPS Z2, y, y; \
	VMOVUPS x, (R9); \
	VMOVUPS y, 64(R9); \
	ADDQ R8, R9

#define ST512_1(x, y) \
	VMULPS Z2, x, x; \
	VMULPS Z2, y, y; \
	VADDPS (R9), x, x; \
	VADDPS 64(R9), y, y; \
	VMOVUPS x, (R9); \
	VMOVUPS y, 64(R9); \
	ADDQ R8, R9

#define ST512_2(x, y) \
	VMULPS (R9), Z3, Z4; \
	VMULPS 64(R9), Z3, Z5; \
	VMULPS Z2, x, x; \
	VMULPS Z2, y, y; \
	VADDPS Z4, x, x; \
	VADDPS Z5, y, y; \
	VMOVUPS x, (R9); \
	VMOVUPS y, 64(R9); \
	ADDQ R8, R9

#define ALL512(M) \
	M(Z8, Z9); \
	M(Z10, Z11); \
	M(Z12, Z13); \
	M(Z14, Z15); \
	M(Z16, Z17); \
	M(Z18, Z19); \
	M(Z20, Z21); \
	M(Z22, Z23); \
	M(Z24, Z25); \
	M(Z26, Z27); \
	M(Z28, Z29); \
	M(Z30, Z31)

#define PF(x, y) \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ R8, R9

#define ALL512x4(M) \
	M(Z8, Z9); \
	M(Z10, Z11); \
	M(Z12, Z13); \
	M(Z14, Z15)

#define ST512h_0(x) \
	VMULPS Z2, x, x; \
	VMOVUPS x, (R9); \
	ADDQ R8, R9

#define ST512h_1(x) \
	VMULPS Z2, x, x; \
	VADDPS (R9), x, x; \
	VMOVUPS x, (R9); \
	ADDQ R8, R9

#define ST512h_2(x) \
	VMULPS (R9), Z3, Z4; \
	VMULPS Z2, x, x; \
	VADDPS Z4, x, x; \
	VMOVUPS x, (R9); \
	ADDQ R8, R9

#define PFh(x) \
	PREFETCHT0 (R9); \
	ADDQ R8, R9

#define ALL512h(M) \
	M(Z8); \
	M(Z10); \
	M(Z12); \
	M(Z14); \
	M(Z16); \
	M(Z18); \
	M(Z20); \
	M(Z22); \
	M(Z24); \
	M(Z26); \
	M(Z28); \
	M(Z30)
