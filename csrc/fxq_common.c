/* fxq_common.c -- portable part: workspace planning, packing, parameter expansion, the scalar
 * kernels (the portable path, also the model the SIMD files follow) and the run-time dispatch. */
#include <math.h>
#include <string.h>
#include "fxq_internal.h"

#ifndef FXQ_COMPILE_FLAGS
#define FXQ_COMPILE_FLAGS "unknown"
#endif

#ifdef FXQ_HAVE_X86
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------------------------------
 * Sizes and workspace layout
 * ---------------------------------------------------------------------------------------------- */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t align_up(int64_t a) { return (a + FXQ_ALIGN - 1) / FXQ_ALIGN * FXQ_ALIGN; }

/* a*b with overflow check; returns -1 on overflow (all our sizes are non-negative). */
static int64_t mul_chk(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return -1;
    return r;
}

static int64_t mul_chk4(int64_t a, int64_t b, int64_t c, int64_t e)
{
    int64_t r = mul_chk(a, b);
    if (r >= 0) r = mul_chk(r, c);
    if (r >= 0) r = mul_chk(r, e);
    return r;
}

typedef struct {
    int64_t cb, kb, kpad, hp, wp, wpa;
    int64_t off_xpack, off_wpack, off_corr, off_prep, off_xpack16, off_wpack16, off_rowbuf, total;
    int64_t xpack_bytes, wpack_bytes;
} conv_layout;

static int64_t prepared_bytes(int64_t kpad)
{
    /* scale + 7 int32 arrays + 2 int64 arrays + 4 half-length int64 arrays, each aligned */
    return 8 * align_up(kpad * 4) + 2 * align_up(kpad * 8) + 4 * align_up(kpad / 2 * 8);
}

static int plan_layout(const fxq_conv_dims *d, conv_layout *L)
{
    const int64_t lim = (int64_t)1 << 31;
    if (!d) return FXQ_ERR_ARG;
    if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1 || d->k < 1 || d->r < 1 || d->s < 1)
        return FXQ_ERR_ARG;
    if (d->n >= lim || d->c >= lim || d->h >= lim || d->w >= lim || d->k >= lim || d->r >= lim ||
        d->s >= lim)
        return FXQ_ERR_ARG;
    if (d->stride_h < 1 || d->stride_w < 1 || d->stride_h >= lim || d->stride_w >= lim)
        return FXQ_ERR_ARG;
    if (d->pad_h < 0 || d->pad_w < 0 || d->pad_h >= lim || d->pad_w >= lim) return FXQ_ERR_ARG;
    L->hp = d->h + 2 * d->pad_h;
    L->wp = d->w + 2 * d->pad_w;
    if (L->hp < d->r || L->wp < d->s) return FXQ_ERR_ARG;
    if (d->oh != (L->hp - d->r) / d->stride_h + 1 || d->ow != (L->wp - d->s) / d->stride_w + 1)
        return FXQ_ERR_ARG;
    L->cb = ceil_div(d->c, 16);
    L->kb = ceil_div(d->k, 16);
    L->kpad = L->kb * 16;
    /* the SIMD kernels always compute whole tiles along ow: make those reads land in the buffer */
    L->wpa = L->wp;
    {
        const int64_t tiles[2] = {FXQ_TILE_AVX512, FXQ_TILE_AVX2};
        for (int i = 0; i < 2; ++i) {
            int64_t need = (ceil_div(d->ow, tiles[i]) * tiles[i] - 1) * d->stride_w + d->s;
            if (need > L->wpa) L->wpa = need;
        }
    }
    L->xpack_bytes = mul_chk4(d->n, L->cb, L->hp, mul_chk(L->wpa, 16));
    L->wpack_bytes = mul_chk4(L->kb, L->cb, mul_chk(d->r, d->s), 256);
    if (L->xpack_bytes < 0 || L->wpack_bytes < 0) return FXQ_ERR_ARG;
    if (L->xpack_bytes > ((int64_t)1 << 40) || L->wpack_bytes > ((int64_t)1 << 40)) return FXQ_ERR_ARG;
    L->off_xpack = 0;
    L->off_wpack = L->off_xpack + align_up(L->xpack_bytes);
    L->off_corr = L->off_wpack + align_up(L->wpack_bytes);
    L->off_prep = L->off_corr + align_up(L->kpad * 4);
    L->off_xpack16 = L->off_prep + prepared_bytes(L->kpad);
    L->off_wpack16 = L->off_xpack16 + align_up(2 * L->xpack_bytes);
    L->off_rowbuf = L->off_wpack16 + align_up(2 * L->wpack_bytes);
    /* two output-channel blocks of one output row, 8-bit, padded to 64 pixels (NCHW epilogue) */
    L->total = L->off_rowbuf + 2 * (ceil_div(d->ow, 64) * 64 * 16) + FXQ_ALIGN; /* + align slack */
    return FXQ_OK;
}

int64_t fxq_conv2d_workspace_size(const fxq_conv_dims *d)
{
    conv_layout L;
    int st = plan_layout(d, &L);
    return st == FXQ_OK ? L.total : (int64_t)st;
}

int64_t fxq_requantize_workspace_size(int64_t channels)
{
    if (channels < 1 || channels >= ((int64_t)1 << 31)) return FXQ_ERR_ARG;
    return prepared_bytes(ceil_div(channels, 16) * 16) + FXQ_ALIGN;
}

static uint8_t *align_ptr(void *p)
{
    uintptr_t u = (uintptr_t)p;
    return (uint8_t *)((u + FXQ_ALIGN - 1) / FXQ_ALIGN * FXQ_ALIGN);
}

/* ------------------------------------------------------------------------------------------------
 * Requantization parameters
 * ---------------------------------------------------------------------------------------------- */

static int dtype_range(int32_t dt, int32_t *qmin, int32_t *qmax)
{
    if (dt == FXQ_DTYPE_UINT8) { *qmin = 0; *qmax = 255; return FXQ_OK; }
    if (dt == FXQ_DTYPE_INT8) { *qmin = -128; *qmax = 127; return FXQ_OK; }
    return FXQ_ERR_ARG;
}

static int prepare_params(const fxq_quant_params *q, int64_t channels, int64_t kpad, uint8_t *mem,
                          fxq_prepared *P)
{
    if (!q) return FXQ_ERR_ARG;
    memset(P, 0, sizeof(*P));
    P->scheme = q->scheme;
    P->out_dtype = q->out_dtype;
    P->kpad = kpad;
    if (q->scheme == FXQ_SCHEME_NONE) return q->out_dtype == FXQ_DTYPE_INT32 ? FXQ_OK : FXQ_ERR_ARG;
    if (q->scheme < FXQ_SCHEME_FLOAT32_RNE || q->scheme > FXQ_SCHEME_TFLITE_SINGLE) return FXQ_ERR_ARG;
    if (dtype_range(q->out_dtype, &P->qmin, &P->qmax) != FXQ_OK) return FXQ_ERR_ARG;
    if (q->zero_point < P->qmin || q->zero_point > P->qmax) return FXQ_ERR_ARG;
    if (q->n_channels != 1 && q->n_channels != channels) return FXQ_ERR_ARG;
    P->zero_point = q->zero_point;
    P->lo = P->qmin - q->zero_point;
    P->hi = P->qmax - q->zero_point;

    {
        int64_t a4 = align_up(kpad * 4), a8 = align_up(kpad * 8), h8 = align_up(kpad / 2 * 8);
        P->scale = (float *)mem; mem += a4;
        P->mult = (int32_t *)mem; mem += a4;
        P->lsh = (int32_t *)mem; mem += a4;
        P->rsh = (int32_t *)mem; mem += a4;
        P->rbsh = (int32_t *)mem; mem += a4;
        P->rbmask = (int32_t *)mem; mem += a4;
        P->clampv = (int32_t *)mem; mem += a4;
        P->mask = (int32_t *)mem; mem += a4;
        P->rnd64 = (int64_t *)mem; mem += a8;
        P->rsh64 = (int64_t *)mem; mem += a8;
        P->rnd64_e = (int64_t *)mem; mem += h8;
        P->rnd64_o = (int64_t *)mem; mem += h8;
        P->rsh64_e = (int64_t *)mem; mem += h8;
        P->rsh64_o = (int64_t *)mem; mem += h8;
    }
    for (int64_t k = 0; k < kpad; ++k) {
        int64_t src = (q->n_channels == 1 || k >= q->n_channels) ? 0 : k;
        P->scale[k] = 1.0f; P->mult[k] = 0; P->lsh[k] = 0; P->rsh[k] = 0; P->rbsh[k] = 0;
        P->rbmask[k] = 0; P->clampv[k] = INT32_MAX; P->mask[k] = 0; P->rnd64[k] = 0; P->rsh64[k] = 1;
        switch (q->scheme) {
        case FXQ_SCHEME_FLOAT32_RNE: {
            float s;
            if (!q->scale_f32) return FXQ_ERR_ARG;
            s = q->scale_f32[src];
            if (!(s > 0.0f) || !isfinite(s)) return FXQ_ERR_ARG;
            P->scale[k] = s;
            break;
        }
        case FXQ_SCHEME_POW2: {
            int64_t e;
            if (!q->exponent) return FXQ_ERR_ARG;
            e = q->exponent[src];
            if (e >= 0) {
                /* acc * 2^e saturates outside [-512, 512] * 2^e for e > 0: pre-clamp, then shift */
                P->lsh[k] = (int32_t)(e < 20 ? e : 20);
                P->clampv[k] = e > 0 ? 512 : INT32_MAX;
            } else {
                int64_t n = -e;
                P->rsh[k] = (int32_t)(n < 31 ? n : 31);
                P->rbsh[k] = (int32_t)(n - 1 < 31 ? n - 1 : 31);
                P->rbmask[k] = 1;
            }
            break;
        }
        case FXQ_SCHEME_TFLITE: {
            int32_t m, sh;
            if (!q->multiplier || !q->shift) return FXQ_ERR_ARG;
            m = q->multiplier[src];
            sh = q->shift[src];
            if (m < 0 || (m != 0 && m < (1 << 30)) || sh < -31 || sh > 31) return FXQ_ERR_ARG;
            P->mult[k] = m;
            P->lsh[k] = sh > 0 ? sh : 0;
            P->rsh[k] = sh < 0 ? -sh : 0;
            P->mask[k] = (int32_t)(((int64_t)1 << P->rsh[k]) - 1);
            break;
        }
        case FXQ_SCHEME_TFLITE_SINGLE: {
            int32_t m, sh;
            if (!q->multiplier || !q->shift) return FXQ_ERR_ARG;
            m = q->multiplier[src];
            sh = q->shift[src];
            if (m < 0 || (m != 0 && m < (1 << 30)) || sh < -31 || sh > 30) return FXQ_ERR_ARG;
            P->mult[k] = m;
            P->rnd64[k] = (int64_t)1 << (30 - sh);
            P->rsh64[k] = 31 - sh;
            break;
        }
        default:
            return FXQ_ERR_ARG;
        }
    }
    for (int64_t k = 0; k < kpad / 2; ++k) {
        P->rnd64_e[k] = P->rnd64[2 * k];
        P->rnd64_o[k] = P->rnd64[2 * k + 1];
        P->rsh64_e[k] = P->rsh64[2 * k];
        P->rsh64_o[k] = P->rsh64[2 * k + 1];
    }
    return FXQ_OK;
}

static int32_t clamp32(int64_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : (int32_t)v); }

/* The scalar requantization of one accumulator: the definition every SIMD path must reproduce. */
int32_t fxq_requant_scalar(int32_t acc, const fxq_prepared *q, int64_t k)
{
    int32_t r;
    switch (q->scheme) {
    case FXQ_SCHEME_FLOAT32_RNE: {
        float v = (float)acc * q->scale[k];         /* binary32 convert (RNE) and multiply */
        if (v < (float)q->lo) v = (float)q->lo;     /* clamping first keeps nearbyintf in range */
        if (v > (float)q->hi) v = (float)q->hi;
        r = (int32_t)nearbyintf(v);                  /* default rounding mode: half to even */
        break;
    }
    case FXQ_SCHEME_POW2: {
        int32_t c = q->clampv[k];
        int32_t a = acc < -c ? -c : (acc > c ? c : acc);
        a = (int32_t)((uint32_t)a << q->lsh[k]);
        /* floor((a + 2^(n-1)) / 2^n) == (a >> n) + bit n-1 of a: no int64 needed */
        r = (a >> q->rsh[k]) + ((a >> q->rbsh[k]) & q->rbmask[k]);
        break;
    }
    case FXQ_SCHEME_TFLITE: {
        int32_t x = (int32_t)((uint32_t)acc << q->lsh[k]);  /* caller guarantees no overflow */
        int32_t y = (int32_t)(((int64_t)x * q->mult[k] + ((int64_t)1 << 30)) >> 31); /* SRDHM, M >= 0 */
        int32_t R = q->rsh[k], mask = q->mask[k];
        int32_t rem = y & mask, thr = (mask >> 1) + (y < 0);
        r = (y >> R) + (rem > thr);                  /* RoundingDivideByPOT: ties away from zero */
        break;
    }
    case FXQ_SCHEME_TFLITE_SINGLE: {
        int64_t p = ((int64_t)acc * q->mult[k] + q->rnd64[k]) >> q->rsh64[k];
        r = clamp32(p, q->lo, q->hi);                /* saturating to int32 first gives the same */
        break;
    }
    default:
        r = acc;
        break;
    }
    r = r < q->lo ? q->lo : (r > q->hi ? q->hi : r);
    return r + q->zero_point;
}

void fxq_store_scalar(void *out, int32_t out_dtype, int64_t index, int32_t v)
{
    if (out_dtype == FXQ_DTYPE_INT32) ((int32_t *)out)[index] = v;
    else if (out_dtype == FXQ_DTYPE_UINT8) ((uint8_t *)out)[index] = (uint8_t)v;
    else ((int8_t *)out)[index] = (int8_t)v;
}

/* ------------------------------------------------------------------------------------------------
 * Packing
 * ---------------------------------------------------------------------------------------------- */

static void pack_input(const fxq_conv_dims *d, const fxq_conv_tensors *t, const conv_layout *L,
                       uint8_t *xpack, int path)
{
    const uint8_t flip = t->x_dtype == FXQ_DTYPE_INT8 ? 0x80 : 0x00;
    const uint8_t zp_u = (uint8_t)(t->x_zero_point ^ flip);  /* int8 zp + 128 == zp ^ 0x80 */
    const uint8_t *x = (const uint8_t *)t->x;
    const int64_t rowb = L->wpa * 16;
    const int use_simd = path != FXQ_PATH_SCALAR;
    (void)use_simd;
    for (int64_t n = 0; n < d->n; ++n) {
        for (int64_t cb = 0; cb < L->cb; ++cb) {
            for (int64_t hp = 0; hp < L->hp; ++hp) {
                uint8_t *dst = xpack + ((n * L->cb + cb) * L->hp + hp) * rowb;
                int64_t h = hp - d->pad_h;
                if (h < 0 || h >= d->h) {
                    memset(dst, zp_u, (size_t)rowb);
                    continue;
                }
                memset(dst, zp_u, (size_t)(d->pad_w * 16));
                memset(dst + (d->pad_w + d->w) * 16, zp_u, (size_t)((L->wpa - d->pad_w - d->w) * 16));
                dst += d->pad_w * 16;
                if (t->layout == FXQ_LAYOUT_NCHW16C) {
                    const uint8_t *src = x + ((n * L->cb + cb) * d->h + h) * d->w * 16;
                    if (flip) {
                        for (int64_t i = 0; i < d->w * 16; ++i) dst[i] = src[i] ^ flip;
                    } else {
                        memcpy(dst, src, (size_t)(d->w * 16));
                    }
                } else {
#ifdef FXQ_HAVE_X86
                    if (use_simd) continue;  /* done below, row by row, with 16x16 transposes */
#endif
                    for (int64_t c16 = 0; c16 < 16; ++c16) {
                        int64_t c = cb * 16 + c16;
                        if (c < d->c) {
                            const uint8_t *src = x + ((n * d->c + c) * d->h + h) * d->w;
                            for (int64_t w = 0; w < d->w; ++w) dst[w * 16 + c16] = src[w] ^ flip;
                        } else {
                            for (int64_t w = 0; w < d->w; ++w) dst[w * 16 + c16] = 0;
                        }
                    }
                }
            }
        }
    }
#ifdef FXQ_HAVE_X86
    if (use_simd && t->layout == FXQ_LAYOUT_NCHW) {
        if (path == FXQ_PATH_AVX512)
            fxq_pack_input_nchw_avx512(d, x, flip, xpack, L->cb, L->hp, L->wpa);
        else
            fxq_pack_input_nchw_sse2(d, x, flip, zp_u, xpack, L->cb, L->hp, L->wpa);
    }
#endif
}

#ifdef FXQ_HAVE_X86
/* NCHW -> padded NCHW16c interior, 16 channels x 16 pixels at a time (SSE2 is baseline x86-64). */
__attribute__((target("sse2"))) void fxq_pack_input_nchw_sse2(const fxq_conv_dims *d, const uint8_t *x,
                                                              uint8_t flip, uint8_t zp_u,
                                                              uint8_t *xpack, int64_t ncb, int64_t hp,
                                                              int64_t wpa)
{
    const __m128i vflip = _mm_set1_epi8((char)flip);
    (void)zp_u;
    for (int64_t n = 0; n < d->n; ++n) {
        for (int64_t cb = 0; cb < ncb; ++cb) {
            for (int64_t h = 0; h < d->h; ++h) {
                uint8_t *dst = xpack + ((n * ncb + cb) * hp + h + d->pad_h) * wpa * 16 + d->pad_w * 16;
                const uint8_t *src[16];
                int64_t w = 0;
                for (int c16 = 0; c16 < 16; ++c16) {
                    int64_t c = cb * 16 + c16;
                    src[c16] = c < d->c ? x + ((n * d->c + c) * d->h + h) * d->w : NULL;
                }
                for (; w < d->w; w += 16) {
                    __m128i r[16], t[16];
                    int64_t np;
                    if (d->w - w < 16 && d->w >= 16) w = d->w - 16;  /* overlap the last block */
                    np = d->w - w < 16 ? d->w - w : 16;  /* pixels in this block */
                    if (np == 16) {
                        for (int c16 = 0; c16 < 16; ++c16)
                            r[c16] = src[c16] ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src[c16] + w)), vflip)
                                              : _mm_setzero_si128();
                    } else {  /* row tail: go through a zeroed buffer, never read past the row */
                        for (int c16 = 0; c16 < 16; ++c16) {
                            uint8_t tmp[16] = {0};
                            if (src[c16]) memcpy(tmp, src[c16] + w, (size_t)np);
                            r[c16] = src[c16] ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)tmp), vflip)
                                              : _mm_setzero_si128();
                        }
                    }
                    /* 16x16 byte transpose: four rounds of the perfect shuffle
                     * t[2i] = lo(r[i], r[i+8]), t[2i+1] = hi(r[i], r[i+8]) */
                    for (int round = 0; round < 4; ++round) {
                        for (int i = 0; i < 8; ++i) {
                            t[2 * i] = _mm_unpacklo_epi8(r[i], r[i + 8]);
                            t[2 * i + 1] = _mm_unpackhi_epi8(r[i], r[i + 8]);
                        }
                        for (int i = 0; i < 16; ++i) r[i] = t[i];
                    }
                    for (int px = 0; px < np; ++px) _mm_storeu_si128((__m128i *)(dst + (w + px) * 16), r[px]);
                }
            }
        }
    }
}
#endif

static void pack_weights(const fxq_conv_dims *d, const fxq_conv_tensors *t, const conv_layout *L,
                         int8_t *wpack, int32_t *corr)
{
    const int64_t R = d->r, S = d->s;
    const uint8_t flip = t->x_dtype == FXQ_DTYPE_INT8 ? 0x80 : 0x00;
    const int64_t zp_u = (uint8_t)(t->x_zero_point ^ flip);
    if (t->layout == FXQ_LAYOUT_NCHW16C) {
        memcpy(wpack, t->w, (size_t)L->wpack_bytes);
    } else {
        /* OIHW -> OIHW4i16o4i: sequential writes, reads gathered from the (L1-resident) OIHW
         * array; padded channels are 0 */
        const int64_t RS = R * S, CRS = d->c * RS;
        int8_t *dst = wpack;
        for (int64_t kb = 0; kb < L->kb; ++kb)
            for (int64_t cb = 0; cb < L->cb; ++cb)
                for (int64_t rs = 0; rs < RS; ++rs) {
                    const int full = (kb + 1) * 16 <= d->k && (cb + 1) * 16 <= d->c;
                    const int64_t base = kb * 16 * CRS + cb * 16 * RS + rs;
                    for (int c4 = 0; c4 < 4; ++c4)
                        for (int k16 = 0; k16 < 16; ++k16)
                            for (int c4i = 0; c4i < 4; ++c4i) {
                                const int64_t k = kb * 16 + k16, c = cb * 16 + c4 * 4 + c4i;
                                *dst++ = (full || (k < d->k && c < d->c))
                                             ? t->w[base + k16 * CRS + (c4 * 4 + c4i) * RS] : 0;
                            }
                }
    }
    /* sum of the weights per output channel, for the zero-point correction.  Within a 256-byte
     * (c4, k16, c4i) block, byte i belongs to output channel (i / 4) % 16: accumulate the 64
     * positions i % 64 separately (a loop gcc vectorizes), then fold.  int32 cannot overflow:
     * |sum| <= C*R*S*128 < 2^31 by the caller's accumulator bound. */
    for (int64_t kb = 0; kb < L->kb; ++kb) {
        int32_t acc64[64] = {0};
        const int8_t *src = wpack + kb * L->cb * R * S * 256;
        for (int64_t blk = 0; blk < L->cb * R * S * 4; ++blk, src += 64)
            for (int i = 0; i < 64; ++i) acc64[i] += src[i];
        for (int k16 = 0; k16 < 16; ++k16) {
            int64_t k = kb * 16 + k16;
            int64_t sum = (int64_t)acc64[k16 * 4] + acc64[k16 * 4 + 1] + acc64[k16 * 4 + 2] +
                          acc64[k16 * 4 + 3];
            int64_t b = (k < d->k && t->bias) ? t->bias[k] : 0;
            corr[k] = k < d->k ? (int32_t)(b - zp_u * sum) : 0;
        }
    }
}

/* AVX2 path operands: int16 input (same layout) and weights as [kb][cb][r][s][pair j][16 o][2]. */
static void pack_int16(const fxq_conv_dims *d, const conv_layout *L, const uint8_t *xpack,
                       const int8_t *wpack, int16_t *xpack16, int16_t *wpack16)
{
    for (int64_t i = 0; i < L->xpack_bytes; ++i) xpack16[i] = xpack[i];
    for (int64_t blk = 0; blk < L->kb * L->cb * d->r * d->s; ++blk) {
        const int8_t *src = wpack + blk * 256;
        int16_t *dst = wpack16 + blk * 256;
        for (int j = 0; j < 8; ++j)
            for (int o = 0; o < 16; ++o)
                for (int e = 0; e < 2; ++e) {
                    int c = 2 * j + e;  /* input channel within the block = c4*4 + c4i */
                    dst[(j * 16 + o) * 2 + e] = src[((c / 4) * 16 + o) * 4 + (c % 4)];
                }
    }
}

/* ------------------------------------------------------------------------------------------------
 * Scalar kernels
 * ---------------------------------------------------------------------------------------------- */

int fxq_conv2d_scalar(const fxq_conv_plan *p)
{
    const fxq_conv_dims *d = p->d;
    const int64_t R = d->r, S = d->s, OH = d->oh, OW = d->ow;
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t kb = 0; kb < p->kb; ++kb)
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow) {
                    int32_t acc[16] = {0};
                    for (int64_t cb = 0; cb < p->cb; ++cb)
                        for (int64_t r = 0; r < R; ++r)
                            for (int64_t s = 0; s < S; ++s) {
                                const uint8_t *xp = p->xpack +
                                    (((n * p->cb + cb) * p->hp + oh * d->stride_h + r) * p->wpa +
                                     ow * d->stride_w + s) * 16;
                                const int8_t *wp = p->wpack + (((kb * p->cb + cb) * R + r) * S + s) * 256;
                                for (int c4 = 0; c4 < 4; ++c4)
                                    for (int k16 = 0; k16 < 16; ++k16)
                                        for (int c4i = 0; c4i < 4; ++c4i)
                                            acc[k16] += (int32_t)xp[c4 * 4 + c4i] * wp[(c4 * 16 + k16) * 4 + c4i];
                            }
                    for (int k16 = 0; k16 < 16; ++k16) {
                        int64_t k = kb * 16 + k16, idx;
                        int32_t v;
                        if (k >= d->k) break;
                        v = (int32_t)((uint32_t)acc[k16] + (uint32_t)p->corr[k]);
                        if (p->scheme != FXQ_SCHEME_NONE) v = fxq_requant_scalar(v, p->q, k);
                        if (p->layout == FXQ_LAYOUT_NCHW) idx = ((n * d->k + k) * OH + oh) * OW + ow;
                        else idx = (((n * p->kb + kb) * OH + oh) * OW + ow) * 16 + k16;
                        fxq_store_scalar(p->out, p->out_dtype, idx, v);
                    }
                }
    return FXQ_OK;
}

int fxq_requantize_scalar(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                          int64_t inner, const fxq_prepared *q)
{
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            int64_t base = (o * channels + c) * inner;
            for (int64_t i = 0; i < inner; ++i)
                fxq_store_scalar(out, q->out_dtype, base + i, fxq_requant_scalar(acc[base + i], q, c));
        }
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * CPU features and dispatch
 * ---------------------------------------------------------------------------------------------- */

int fxq_cpu_features(void)
{
    int f = 0;
#ifdef FXQ_HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse2")) f |= FXQ_CPU_SSE2;
    if (__builtin_cpu_supports("avx2")) f |= FXQ_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= FXQ_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= FXQ_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= FXQ_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) f |= FXQ_CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512vnni")) f |= FXQ_CPU_AVX512VNNI;
#endif
    return f;
}

int fxq_path_available(int path)
{
    int f = fxq_cpu_features();
    const int need512 = FXQ_CPU_AVX512F | FXQ_CPU_AVX512BW | FXQ_CPU_AVX512VL | FXQ_CPU_AVX512VNNI;
    switch (path) {
    case FXQ_PATH_SCALAR: return 1;
#ifdef FXQ_HAVE_X86
    case FXQ_PATH_AVX2: return (f & (FXQ_CPU_AVX2 | FXQ_CPU_FMA)) == (FXQ_CPU_AVX2 | FXQ_CPU_FMA);
    case FXQ_PATH_AVX512: return (f & need512) == need512;
#endif
    default: (void)f; (void)need512; return 0;
    }
}

int fxq_best_path(void)
{
    if (fxq_path_available(FXQ_PATH_AVX512)) return FXQ_PATH_AVX512;
    if (fxq_path_available(FXQ_PATH_AVX2)) return FXQ_PATH_AVX2;
    return FXQ_PATH_SCALAR;
}

const char *fxq_path_name(int path)
{
    switch (path) {
    case FXQ_PATH_AUTO: return "auto";
    case FXQ_PATH_SCALAR: return "scalar";
    case FXQ_PATH_AVX2: return "avx2";
    case FXQ_PATH_AVX512: return "avx512";
    default: return "invalid";
    }
}

const char *fxq_compile_flags(void) { return FXQ_COMPILE_FLAGS; }

static int resolve_path(int path)
{
    if (path == FXQ_PATH_AUTO) return fxq_best_path();
    if (path < FXQ_PATH_SCALAR || path > FXQ_PATH_AVX512) return FXQ_ERR_ARG;
    return fxq_path_available(path) ? path : FXQ_ERR_PATH;
}

static int check_tensors(const fxq_conv_dims *d, const fxq_conv_tensors *t)
{
    if (t->layout != FXQ_LAYOUT_NCHW && t->layout != FXQ_LAYOUT_NCHW16C) return FXQ_ERR_ARG;
    if (t->layout == FXQ_LAYOUT_NCHW16C && (d->c % 16 != 0 || d->k % 16 != 0)) return FXQ_ERR_ARG;
    if (t->x_dtype == FXQ_DTYPE_UINT8) {
        if (t->x_zero_point < 0 || t->x_zero_point > 255) return FXQ_ERR_ARG;
    } else if (t->x_dtype == FXQ_DTYPE_INT8) {
        if (t->x_zero_point < -128 || t->x_zero_point > 127) return FXQ_ERR_ARG;
    } else {
        return FXQ_ERR_ARG;
    }
    return FXQ_OK;
}

int64_t fxq_conv2d_packed_weight_size(const fxq_conv_dims *d)
{
    conv_layout L;
    int st = plan_layout(d, &L);
    return st == FXQ_OK ? L.wpack_bytes : (int64_t)st;
}

int fxq_conv2d_pack_weights(const fxq_conv_dims *d, const fxq_conv_tensors *t, void *wpack,
                            int64_t wpack_bytes, int32_t *corr, int64_t corr_len)
{
    conv_layout L;
    int st;
    if (!d || !t || !t->w || !wpack || !corr) return FXQ_ERR_ARG;
    if (((uintptr_t)wpack) % FXQ_ALIGN) return FXQ_ERR_ARG;
    st = plan_layout(d, &L);
    if (st != FXQ_OK) return st;
    st = check_tensors(d, t);
    if (st != FXQ_OK) return st;
    if (wpack_bytes < L.wpack_bytes || corr_len < L.kpad) return FXQ_ERR_WORKSPACE;
    pack_weights(d, t, &L, (int8_t *)wpack, corr);
    return FXQ_OK;
}

static int conv2d_core(const fxq_conv_dims *d, const fxq_conv_tensors *t, const fxq_quant_params *q,
                       const void *wpack_in, int64_t wpack_bytes, const int32_t *corr_in,
                       int64_t corr_len, void *workspace, int64_t workspace_bytes, int path)
{
    conv_layout L;
    fxq_conv_plan p;
    fxq_prepared P;
    uint8_t *base;
    int st;

    if (!d || !t || !q || !workspace || !t->x || !t->out) return FXQ_ERR_ARG;
    if (!wpack_in && !t->w) return FXQ_ERR_ARG;
    path = resolve_path(path);
    if (path < 0) return path;
    st = plan_layout(d, &L);
    if (st != FXQ_OK) return st;
    if (workspace_bytes < L.total) return FXQ_ERR_WORKSPACE;
    st = check_tensors(d, t);
    if (st != FXQ_OK) return st;
    if ((q->scheme == FXQ_SCHEME_NONE) != (q->out_dtype == FXQ_DTYPE_INT32)) return FXQ_ERR_ARG;
    if (wpack_in) {
        if (wpack_bytes < L.wpack_bytes || !corr_in || corr_len < L.kpad) return FXQ_ERR_WORKSPACE;
        if (((uintptr_t)wpack_in) % FXQ_ALIGN) return FXQ_ERR_ARG;
    }

    base = align_ptr(workspace);
    st = prepare_params(q, d->k, L.kpad, base + L.off_prep, &P);
    if (st != FXQ_OK) return st;

    memset(&p, 0, sizeof(p));
    p.d = d;
    p.cb = L.cb; p.kb = L.kb; p.kpad = L.kpad; p.hp = L.hp; p.wp = L.wp; p.wpa = L.wpa;
    p.layout = t->layout; p.out_dtype = q->out_dtype; p.scheme = q->scheme;
    p.xpack = base + L.off_xpack;
    p.q = &P;
    p.out = t->out;
    p.xpack16 = (int16_t *)(base + L.off_xpack16);
    p.wpack16 = (int16_t *)(base + L.off_wpack16);
    p.rowbuf = base + L.off_rowbuf;
    p.rowbuf_stride = ceil_div(d->ow, 64) * 64 * 16;

    pack_input(d, t, &L, base + L.off_xpack, path);
    if (wpack_in) {
        p.wpack = (const int8_t *)wpack_in;
        p.corr = corr_in;
    } else {
        pack_weights(d, t, &L, (int8_t *)(base + L.off_wpack), (int32_t *)(base + L.off_corr));
        p.wpack = (const int8_t *)(base + L.off_wpack);
        p.corr = (const int32_t *)(base + L.off_corr);
    }

    switch (path) {
#ifdef FXQ_HAVE_X86
    case FXQ_PATH_AVX512: return fxq_conv2d_avx512(&p);
    case FXQ_PATH_AVX2:
        pack_int16(d, &L, p.xpack, p.wpack, p.xpack16, p.wpack16);
        return fxq_conv2d_avx2(&p);
#endif
    default: return fxq_conv2d_scalar(&p);
    }
}

int fxq_conv2d(const fxq_conv_dims *d, const fxq_conv_tensors *t, const fxq_quant_params *q,
               void *workspace, int64_t workspace_bytes, int path)
{
    if (!t || !t->w) return FXQ_ERR_ARG;
    return conv2d_core(d, t, q, NULL, 0, NULL, 0, workspace, workspace_bytes, path);
}

int fxq_conv2d_prepacked(const fxq_conv_dims *d, const fxq_conv_tensors *t,
                         const fxq_quant_params *q, const void *wpack, int64_t wpack_bytes,
                         const int32_t *corr, int64_t corr_len, void *workspace,
                         int64_t workspace_bytes, int path)
{
    if (!wpack || !corr) return FXQ_ERR_ARG;
    return conv2d_core(d, t, q, wpack, wpack_bytes, corr, corr_len, workspace, workspace_bytes,
                       path);
}

int fxq_requantize(const int32_t *acc, void *out, int64_t outer, int64_t channels, int64_t inner,
                   const fxq_quant_params *q, void *workspace, int64_t workspace_bytes, int path)
{
    fxq_prepared P;
    int64_t need, kpad;
    int st;
    if (!acc || !out || !q || !workspace) return FXQ_ERR_ARG;
    if (outer < 0 || inner < 0 || channels < 1) return FXQ_ERR_ARG;
    if (q->scheme == FXQ_SCHEME_NONE) return FXQ_ERR_ARG;
    if (q->n_channels != 1 && q->n_channels != channels) return FXQ_ERR_ARG;
    path = resolve_path(path);
    if (path < 0) return path;
    if (q->n_channels == 1 && channels > 1) {  /* per-tensor: one long run */
        if (__builtin_mul_overflow(inner, channels, &inner)) return FXQ_ERR_ARG;
        channels = 1;
    }
    need = fxq_requantize_workspace_size(channels);
    if (need < 0) return (int)need;
    if (workspace_bytes < need) return FXQ_ERR_WORKSPACE;
    kpad = ceil_div(channels, 16) * 16;
    st = prepare_params(q, channels, kpad, align_ptr(workspace), &P);
    if (st != FXQ_OK) return st;
    if (outer == 0 || inner == 0) return FXQ_OK;
    switch (path) {
#ifdef FXQ_HAVE_X86
    case FXQ_PATH_AVX512: return fxq_requantize_avx512(acc, out, outer, channels, inner, &P);
    case FXQ_PATH_AVX2: return fxq_requantize_avx2(acc, out, outer, channels, inner, &P);
#endif
    default: return fxq_requantize_scalar(acc, out, outer, channels, inner, &P);
    }
}

void fxq_copy_bytes(void *dst, const void *src, int64_t nbytes)
{
    if (nbytes > 0) memcpy(dst, src, (size_t)nbytes);
}
