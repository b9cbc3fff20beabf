/* fxq_internal.h -- shared between the portable file and the ISA-specific files; not part of the
 * API.
 *
 * All kernels work on the same packed operands, built by fxq_common.c:
 *   xpack  uint8 [N][Cb][Hp][Wpa][16]  input, zero-point padded, int8 input shifted by +128 so it
 * is unsigned (vpdpbusd multiplies unsigned x signed); channels >= C hold 0 (their weights are 0).
 * Wpa >= Wp covers whole tiles. wpack  int8  [Kb][Cb][R][S][4][16][4] weights (OIHW4i16o4i), padded
 * channels 0. wsum   int32 [FXQ_WSUM_LEN(kpad)]  the weight summary (see below) so acc[k] = sum w *
 * xpack + corr[k] equals sum w * (x - x_zp) + bias exactly (mod 2^32, and the caller has bounded
 * the true value inside int32).
 *
 * The weight summary: wsum[0 .. kpad)        corr[k] = bias[k] - xzp_u * sum_{c,r,s} w[k,c,r,s]
 *                     wsum[kpad .. 2 kpad)   sum_{c,r,s} w[k,c,r,s]
 *                     wsum[2 kpad]           1 if some weight is -128 (the AVX2 vpmaddubsw kernel
 *                                            is exact only for weights in [-127, 127])
 */
#ifndef FXQ_INTERNAL_H
#define FXQ_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "fxq_kernels.h"

#define FXQ_TILE_AVX512 14 /* output pixels per register tile */
#define FXQ_TILE_AVX2 5    /* the vpmaddubsw tile (the int16 fallback uses it too) */
#define FXQ_ALIGN 64
#define FXQ_WSUM_LEN(kpad) (2 * (kpad) + 16)

/* kinds of convolution (from the groups): each has its own weight packing and kernels
 *   DENSE      groups = 1: wpack OIHW4i16o4i, the register-tiled kernels
 *   DEPTHWISE  groups = C = K: wpack int16 [Kb][R][ceil(S/2)][16 channels][2 taps], taps in pairs
 *              (vpmaddwd on (x_u, x_u) pairs of neighbouring taps), an odd S padded with 0
 *   GROUPED    other groups: wpack = the OIHW weights; NCHW on a SIMD path: the dense kernels once
 *              per (image, group) on the group's slices (fxq_common.c grouped_by_dense), else a
 *              portable loop */
#define FXQ_KIND_DENSE 0
#define FXQ_KIND_DEPTHWISE 1
#define FXQ_KIND_GROUPED 2

/* Per-channel requantization parameters expanded for the kernels: a tagged union, one struct per
 * scheme (fxq_prepared.scheme says which member is valid).  Every array has kpad entries (a
 * multiple of 16); channel k uses entry k; padded channels copy channel 0 (their output is
 * dropped).  The 64-bit arrays of tflite_single also come split into even / odd channels (the
 * layout of _mm*_mul_epi32's 64-bit products). */
typedef struct {
    const float *scale; /* binary32 scale, finite and > 0 */
} fxq_prep_float32_rne;

typedef struct {
    const int32_t *lsh;    /* min(max(e,0),20) */
    const int32_t *rsh;    /* min(max(-e,0),31) */
    const int32_t *rbsh;   /* min(max(-e-1,0),31): the rounding bit */
    const int32_t *rbmask; /* 1 if e < 0 else 0 */
    const int32_t *clampv; /* 512 if e > 0 else INT32_MAX (pre-shift clamp, exact) */
} fxq_prep_pow2;

typedef struct {
    const int32_t *mult; /* {0} U [2^30, 2^31) */
    const int32_t *lsh;  /* max(shift, 0) */
    const int32_t *rsh;  /* max(-shift, 0) = R */
    const int32_t *mask; /* 2^R - 1 */
    /* the 64-bit form (AVX-512): for x = acc << lsh, both roundings are one shift,
     *     (x * M + rnd - (x < 0 ? cor : 0)) >> rsh64,
     * rnd = 2^30 + (R ? 2^(30+R) : 0), cor = R ? 2^31 : 0, rsh64 = 31 + R; kpad/2 each */
    const int64_t *rnd_e, *rnd_o, *cor_e, *cor_o, *rsh_e, *rsh_o;
} fxq_prep_tflite;

typedef struct {
    const int32_t *mult;                          /* {0} U [2^30, 2^31) */
    const int64_t *rnd, *rsh;                     /* 2^(30-shift), 31-shift */
    const int64_t *rnd_e, *rnd_o, *rsh_e, *rsh_o; /* kpad/2 each */
    int32_t fits32; /* every shift <= 0: each result fits int32 (clamp after narrowing) */
} fxq_prep_tflite_single;

typedef struct {
    int32_t scheme, out_dtype, zero_point, qmin, qmax, lo, hi; /* lo = qmin - zp, hi = qmax - zp */
    int64_t kpad;
    union {
        fxq_prep_float32_rne f32;
        fxq_prep_pow2 pow2;
        fxq_prep_tflite tfl;
        fxq_prep_tflite_single single;
    } u;
} fxq_prepared;

/* One switch over the fused schemes, shared by every path: BODY(S) is instantiated with S a
 * compile-time constant, so each kernel is specialised per scheme. */
#define FXQ_SCHEME_SWITCH(scheme, BODY)     \
    switch (scheme) {                       \
        case FXQ_SCHEME_FLOAT32_RNE:        \
            BODY(FXQ_SCHEME_FLOAT32_RNE);   \
            break;                          \
        case FXQ_SCHEME_POW2:               \
            BODY(FXQ_SCHEME_POW2);          \
            break;                          \
        case FXQ_SCHEME_TFLITE:             \
            BODY(FXQ_SCHEME_TFLITE);        \
            break;                          \
        case FXQ_SCHEME_TFLITE_SINGLE:      \
            BODY(FXQ_SCHEME_TFLITE_SINGLE); \
            break;                          \
        default:                            \
            break;                          \
    }

typedef struct {
    const fxq_conv_dims *d;
    int64_t cb, kb, kpad, hp, wp, wpa, groups;
    int kind;
    int32_t layout, out_dtype, scheme;
    const uint8_t *xpack;
    const int8_t *wpack;
    const int32_t *corr; /* wsum[0 .. kpad) */
    const int32_t *wsum; /* the whole weight summary */
    const fxq_prepared *q;
    void *out;
    /* AVX2 path scratch: 2 * xpack bytes (vpmaddubsw: x' = xpack - 128 and |x'|; int16
     * fallback: int16 copy of xpack), and the fallback's int16 weights */
    uint8_t *xscratch;
    int64_t xpack_bytes;
    int16_t *wpack16; /* [Kb][Cb][R][S][8 pairs][16 o][2] */
    int32_t *corr2;   /* kpad entries: corr + 128 * sum(w) (vpmaddubsw kernel) */
    /* NCHW epilogue: requantized rows [2][ceil(OW/64)*64][16] before the transpose */
    uint8_t *rowbuf;
    int64_t rowbuf_stride;
} fxq_conv_plan;

/* The fully connected plan (fxq_fc_plan_init), at the 64-byte aligned start of the caller's
 * buffer.  Weights padded to kpad output channels and cq = ceil(C/4) quads of inputs, in groups of
 * up to FXQ_FC_GROUP 16-channel blocks: group g (gk = min(4, kb - 4g) blocks) starts at byte
 * g * 4 * cq * 64 and holds, for each quad q, gk blocks of [16 channels][4 inputs]:
 *   w8[g * 4 * cq * 64 + (q * gk + j) * 64 + o * 4 + i] = w[(4g + j) * 16 + o, 4q + i]
 * (AVX-512: one 64-byte block = 16 channels x 4 inputs, the vpdpbusd zmm operand, exact for every
 * weight; AVX2: one 32-byte load = 8 channels x 4 inputs, the vpmaddubsw operand).  When a weight
 * is -128 (has_m128) the AVX2 kernel uses w16 instead, int16 in pairs (cp = ceil(C/2)):
 *   w16[g * 4 * cp * 32 + (p * gk + j) * 32 + o * 2 + i] = w[(4g + j) * 16 + o, 2p + i]. */
#define FXQ_FC_GROUP 4
#define FXQ_FC_MAGIC 0x667871666370ull
typedef struct {
    uint64_t magic;
    const void *self; /* the address given to fxq_fc_plan_init */
    int64_t c, k, kb, kpad, cq, cp;
    int32_t flip;     /* 0x80 for int8 input (x_u = x + 128 = x ^ 0x80), else 0 */
    int32_t path;     /* as resolved: SCALAR, AVX2, or AVX512 and up (the AVX-512 VNNI GEMV) */
    int32_t has_m128; /* some weight is -128 */
    int32_t scheme, out_dtype;
    const int8_t *w8;
    const int16_t *w16;   /* NULL unless has_m128 (AVX2 only) */
    const int32_t *corr;  /* kpad: bias - zp_u * sum w (acc over x_u: scalar, AVX-512) */
    const int32_t *corr2; /* kpad: corr + 128 * sum w (acc over x' = x_u - 128: AVX2) */
    fxq_prepared q;
} fxq_fc_plan;

int fxq_fc_scalar(const fxq_fc_plan *h, const uint8_t *x, void *out, int64_t n);

int32_t fxq_requant_scalar(int32_t acc, const fxq_prepared *q, int64_t k);
void fxq_store_scalar(void *out, int32_t out_dtype, int64_t index, int32_t v);

int fxq_conv2d_scalar(const fxq_conv_plan *p);
int fxq_dwconv_scalar(const fxq_conv_plan *p);
int fxq_grouped_scalar(const fxq_conv_plan *p);
int64_t fxq_out_index(const fxq_conv_plan *p, int64_t n, int64_t k, int64_t oh, int64_t ow);
int fxq_requantize_scalar(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                          int64_t inner, const fxq_prepared *q);

#if defined(__x86_64__) || defined(__i386__)
#define FXQ_HAVE_X86 1
/* AMX (fxq_avx512.c): fxq_amx_enable() checks CPUID and XCR0 and asks the kernel for the tile
 * state (once per process); 1 when the tiles can be used. */
typedef struct {
    int64_t m, cpad, kc, wpa; /* pixels per tile, padded channels, bytes per tile row, row width */
    uint8_t flip, zp_u;       /* 0x80 for int8 input; the input zero point + 128 * (int8) */
} fxq_amx_geom;
int fxq_amx_enable(void);
int fxq_conv2d_amx(const fxq_conv_plan *p, const fxq_amx_geom *g, const uint8_t *x, uint8_t *xa,
                   int8_t *wa);
int fxq_conv2d_avx512(const fxq_conv_plan *p);
int fxq_dwconv_avx512(const fxq_conv_plan *p);
int fxq_dwconv_avx2(const fxq_conv_plan *p);
int fxq_dwconv_nchw_avx512(const fxq_conv_plan *p, const uint8_t *x, uint8_t flip, int32_t zp_u,
                           void *scratch, int64_t scratch_bytes);
int fxq_dwconv3x3_nchw_avx2(const fxq_conv_plan *p, const uint8_t *x, uint8_t flip, int32_t zp_u,
                            void *scratch, int64_t scratch_bytes);
int64_t fxq_probe_avx2(int kind, int64_t iters);
int fxq_requantize_avx512(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                          int64_t inner, const fxq_prepared *q);
int fxq_conv2d_avx2(const fxq_conv_plan *p);
int fxq_fc_avx2(const fxq_fc_plan *h, const uint8_t *x, void *out, int64_t n);
int fxq_fc_avx512(const fxq_fc_plan *h, const uint8_t *x, void *out, int64_t n);
int fxq_requantize_avx2(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                        int64_t inner, const fxq_prepared *q);
void fxq_pack_input_nchw_avx512(const fxq_conv_dims *d, const uint8_t *x, uint8_t flip,
                                uint8_t *xpack, int64_t cb, int64_t hp, int64_t wpa);
void fxq_pack_input_nchw_avx2(const fxq_conv_dims *d, const uint8_t *x, uint8_t flip,
                              uint8_t *xpack, int64_t cb, int64_t hp, int64_t wpa);
#endif

#endif /* FXQ_INTERNAL_H */
