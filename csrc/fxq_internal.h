/* fxq_internal.h -- shared between the portable file and the ISA-specific files; not part of the API.
 *
 * All kernels work on the same packed operands, built by fxq_common.c:
 *   xpack  uint8 [N][Cb][Hp][Wpa][16]  input, zero-point padded, int8 input shifted by +128 so it is
 *                                      unsigned (vpdpbusd multiplies unsigned x signed); channels >= C
 *                                      hold 0 (their weights are 0).  Wpa >= Wp covers whole tiles.
 *   wpack  int8  [Kb][Cb][R][S][4][16][4] weights (OIHW4i16o4i), padded channels 0.
 *   corr   int32 [Kpad]  bias[k] - xzp_u * sum_{c,r,s} w[k,c,r,s]  (the zero-point correction)
 * so acc[k] = sum w * xpack + corr[k] equals sum w * (x - x_zp) + bias exactly (mod 2^32, and the
 * caller has bounded the true value inside int32).
 */
#ifndef FXQ_INTERNAL_H
#define FXQ_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "fxq_kernels.h"

#define FXQ_TILE_AVX512 14   /* output pixels per register tile */
#define FXQ_TILE_AVX2 6
#define FXQ_ALIGN 64

/* Per-channel requantization parameters expanded for the kernels (length kpad, multiple of 16).
 * Channel k of the tensor uses entry k; padded channels copy channel 0 (their output is dropped). */
typedef struct {
    int32_t scheme, out_dtype, zero_point, qmin, qmax, lo, hi;  /* lo = qmin - zp, hi = qmax - zp */
    int64_t kpad;
    float *scale;        /* FLOAT32_RNE */
    int32_t *mult;       /* TFLITE, TFLITE_SINGLE */
    int32_t *lsh;        /* POW2: min(max(e,0),20); TFLITE: max(shift,0) */
    int32_t *rsh;        /* POW2: min(max(-e,0),31); TFLITE: max(-shift,0) */
    int32_t *rbsh;       /* POW2: min(max(-e-1,0),31) */
    int32_t *rbmask;     /* POW2: 1 if e < 0 else 0 */
    int32_t *clampv;     /* POW2: 512 if e > 0 else INT32_MAX (pre-shift clamp, exact) */
    int32_t *mask;       /* TFLITE: 2^R - 1 */
    int64_t *rnd64;      /* TFLITE_SINGLE: 2^(30-shift), per channel */
    int64_t *rsh64;      /* TFLITE_SINGLE: 31-shift, per channel */
    int64_t *rnd64_e, *rnd64_o, *rsh64_e, *rsh64_o; /* the same split into even / odd channels */
} fxq_prepared;

typedef struct {
    const fxq_conv_dims *d;
    int64_t cb, kb, kpad, hp, wp, wpa;
    int32_t layout, out_dtype, scheme;
    const uint8_t *xpack;
    const int8_t *wpack;
    const int32_t *corr;
    const fxq_prepared *q;
    void *out;
    /* AVX2 path only: int16 copies */
    int16_t *xpack16;    /* [N][Cb][Hp][Wpa][16] */
    int16_t *wpack16;    /* [Kb][Cb][R][S][8 pairs][16 o][2] */
    /* AVX-512 NCHW epilogue: requantized rows [2][ceil(OW/64)*64][16] before the transpose */
    uint8_t *rowbuf;
    int64_t rowbuf_stride;
} fxq_conv_plan;

int32_t fxq_requant_scalar(int32_t acc, const fxq_prepared *q, int64_t k);
void fxq_store_scalar(void *out, int32_t out_dtype, int64_t index, int32_t v);

int fxq_conv2d_scalar(const fxq_conv_plan *p);
int fxq_requantize_scalar(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                          int64_t inner, const fxq_prepared *q);

#if defined(__x86_64__) || defined(__i386__)
#define FXQ_HAVE_X86 1
int fxq_conv2d_avx512(const fxq_conv_plan *p);
int fxq_requantize_avx512(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                          int64_t inner, const fxq_prepared *q);
int fxq_conv2d_avx2(const fxq_conv_plan *p);
int fxq_requantize_avx2(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                        int64_t inner, const fxq_prepared *q);
void fxq_pack_input_nchw_avx512(const fxq_conv_dims *d, const uint8_t *x, uint8_t flip,
                                uint8_t *xpack, int64_t cb, int64_t hp, int64_t wpa);
void fxq_pack_input_nchw_sse2(const fxq_conv_dims *d, const uint8_t *x, uint8_t flip,
                              uint8_t zp_u, uint8_t *xpack, int64_t cb, int64_t hp, int64_t wpa);
#endif

#endif /* FXQ_INTERNAL_H */
