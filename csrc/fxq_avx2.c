/* fxq_avx2.c -- AVX2 path for CPUs without AVX-512 VNNI: int16 multiply-adds (vpmaddwd) on int16
 * copies of the packed operands, 6 output pixels x 16 output channels per register tile, and the
 * four requantization schemes on 8 int32 lanes.  AVX2 has no 64-bit arithmetic shift or 64-bit
 * min/max: they are built from logical shifts, xor and compares (see rq256). */
#include "fxq_internal.h"

#ifdef FXQ_HAVE_X86
#include <immintrin.h>
#include <string.h>

#define T256 __attribute__((target("avx2,fma")))
#define INL static inline __attribute__((always_inline))
#define TILE FXQ_TILE_AVX2

typedef int32_t __attribute__((may_alias, aligned(1))) i32u;

typedef struct {
    __m256 scale, flo, fhi;
    __m256i mult, mult_o, lsh, rsh, rbsh, rbmask, clampv, mask, thr;
    __m256i rnd_e, rnd_o, rsh_e, rsh_o, lo64, hi64, lo, hi, zp;
} qv256;

T256 INL void qv256_common(const fxq_prepared *q, qv256 *v)
{
    v->flo = _mm256_set1_ps((float)q->lo);
    v->fhi = _mm256_set1_ps((float)q->hi);
    v->lo = _mm256_set1_epi32(q->lo);
    v->hi = _mm256_set1_epi32(q->hi);
    v->lo64 = _mm256_set1_epi64x(q->lo);
    v->hi64 = _mm256_set1_epi64x(q->hi);
    v->zp = _mm256_set1_epi32(q->zero_point);
}

/* channels k0 .. k0+7, k0 a multiple of 8 */
T256 INL void qv256_block(const fxq_prepared *q, int64_t k0, qv256 *v)
{
    qv256_common(q, v);
    v->scale = _mm256_loadu_ps(q->scale + k0);
    v->mult = _mm256_loadu_si256((const __m256i *)(q->mult + k0));
    v->mult_o = _mm256_srli_epi64(v->mult, 32);
    v->lsh = _mm256_loadu_si256((const __m256i *)(q->lsh + k0));
    v->rsh = _mm256_loadu_si256((const __m256i *)(q->rsh + k0));
    v->rbsh = _mm256_loadu_si256((const __m256i *)(q->rbsh + k0));
    v->rbmask = _mm256_loadu_si256((const __m256i *)(q->rbmask + k0));
    v->clampv = _mm256_loadu_si256((const __m256i *)(q->clampv + k0));
    v->mask = _mm256_loadu_si256((const __m256i *)(q->mask + k0));
    v->thr = _mm256_srai_epi32(v->mask, 1);
    v->rnd_e = _mm256_loadu_si256((const __m256i *)(q->rnd64_e + k0 / 2));
    v->rnd_o = _mm256_loadu_si256((const __m256i *)(q->rnd64_o + k0 / 2));
    v->rsh_e = _mm256_loadu_si256((const __m256i *)(q->rsh64_e + k0 / 2));
    v->rsh_o = _mm256_loadu_si256((const __m256i *)(q->rsh64_o + k0 / 2));
}

T256 INL void qv256_bcast(const fxq_prepared *q, int64_t c, qv256 *v)
{
    qv256_common(q, v);
    v->scale = _mm256_set1_ps(q->scale[c]);
    v->mult = v->mult_o = _mm256_set1_epi32(q->mult[c]);
    v->lsh = _mm256_set1_epi32(q->lsh[c]);
    v->rsh = _mm256_set1_epi32(q->rsh[c]);
    v->rbsh = _mm256_set1_epi32(q->rbsh[c]);
    v->rbmask = _mm256_set1_epi32(q->rbmask[c]);
    v->clampv = _mm256_set1_epi32(q->clampv[c]);
    v->mask = _mm256_set1_epi32(q->mask[c]);
    v->thr = _mm256_srai_epi32(v->mask, 1);
    v->rnd_e = v->rnd_o = _mm256_set1_epi64x(q->rnd64[c]);
    v->rsh_e = v->rsh_o = _mm256_set1_epi64x(q->rsh64[c]);
}

/* floor(p / 2^n) for int64 lanes, then clamp to [lo, hi] (both fit int32) */
T256 INL __m256i sra64_clamp(__m256i p, __m256i n, const qv256 *v)
{
    __m256i sgn = _mm256_cmpgt_epi64(_mm256_setzero_si256(), p);
    __m256i r = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(p, sgn), n), sgn);
    r = _mm256_blendv_epi8(r, v->hi64, _mm256_cmpgt_epi64(r, v->hi64));
    r = _mm256_blendv_epi8(r, v->lo64, _mm256_cmpgt_epi64(v->lo64, r));
    return r;
}

T256 INL __m256i rq256(__m256i acc, const int scheme, const qv256 *v)
{
    __m256i r;
    switch (scheme) {
    case FXQ_SCHEME_FLOAT32_RNE: {  /* default MXCSR: round to nearest even */
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), v->scale);
        f = _mm256_min_ps(_mm256_max_ps(f, v->flo), v->fhi);
        return _mm256_add_epi32(_mm256_cvtps_epi32(f), v->zp);
    }
    case FXQ_SCHEME_POW2: {
        __m256i a = _mm256_max_epi32(acc, _mm256_sub_epi32(_mm256_setzero_si256(), v->clampv));
        a = _mm256_min_epi32(a, v->clampv);
        a = _mm256_sllv_epi32(a, v->lsh);
        r = _mm256_add_epi32(_mm256_srav_epi32(a, v->rsh),
                             _mm256_and_si256(_mm256_srav_epi32(a, v->rbsh), v->rbmask));
        break;
    }
    case FXQ_SCHEME_TFLITE: {
        const __m256i half = _mm256_set1_epi64x((int64_t)1 << 30);
        __m256i x = _mm256_sllv_epi32(acc, v->lsh);
        __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(x, v->mult), half);
        __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), v->mult_o), half);
        __m256i y = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
        __m256i rem = _mm256_and_si256(y, v->mask);
        __m256i thr = _mm256_sub_epi32(v->thr, _mm256_srai_epi32(y, 31));
        __m256i up = _mm256_cmpgt_epi32(rem, thr);  /* -1 where rounding up */
        r = _mm256_sub_epi32(_mm256_srav_epi32(y, v->rsh), up);
        break;
    }
    case FXQ_SCHEME_TFLITE_SINGLE: {
        __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(acc, v->mult), v->rnd_e);
        __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), v->mult_o), v->rnd_o);
        pe = sra64_clamp(pe, v->rsh_e, v);
        po = sra64_clamp(po, v->rsh_o, v);
        return _mm256_add_epi32(_mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA), v->zp);
    }
    default:
        return acc;
    }
    r = _mm256_min_epi32(_mm256_max_epi32(r, v->lo), v->hi);
    return _mm256_add_epi32(r, v->zp);
}

/* 8 int32 lanes already in the output range -> 8 bytes in the low half */
T256 INL __m128i narrow8(__m256i r, int32_t out_dtype)
{
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    return out_dtype == FXQ_DTYPE_UINT8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
}

/* ------------------------------------------------------------------------------------------------
 * Convolution
 * ---------------------------------------------------------------------------------------------- */

T256 __attribute__((noinline, optimize("no-predictive-commoning"))) static void tile(const int16_t *x, const int16_t *w, int64_t cbs, int64_t rows, int64_t sw16,
                      int64_t ncb, int64_t R, int64_t S, __m256i *out)
{
    __m256i a[TILE][2];
    for (int i = 0; i < TILE; ++i) a[i][0] = a[i][1] = _mm256_setzero_si256();
    for (int64_t cb = 0; cb < ncb; ++cb)
        for (int64_t r = 0; r < R; ++r)
            for (int64_t s = 0; s < S; ++s) {
                const int16_t *xs = x + cb * cbs + r * rows + s * 16;
                const int16_t *ws = w + ((cb * R + r) * S + s) * 256;
                for (int j = 0; j < 8; ++j) {
                    __m256i w0 = _mm256_load_si256((const __m256i *)(ws + j * 32));
                    __m256i w1 = _mm256_load_si256((const __m256i *)(ws + j * 32 + 16));
#pragma GCC unroll 8
                    for (int i = 0; i < TILE; ++i) {
                        __m256i b = _mm256_set1_epi32(*(const i32u *)(xs + i * sw16 + 2 * j));
                        a[i][0] = _mm256_add_epi32(a[i][0], _mm256_madd_epi16(b, w0));
                        a[i][1] = _mm256_add_epi32(a[i][1], _mm256_madd_epi16(b, w1));
                    }
                }
            }
    for (int i = 0; i < TILE; ++i) {
        _mm256_storeu_si256(out + 2 * i, a[i][0]);
        _mm256_storeu_si256(out + 2 * i + 1, a[i][1]);
    }
}

T256 static void epilogue(const fxq_conv_plan *p, __m256i *acc, int64_t n, int64_t kb, int64_t oh,
                          int64_t ow0, int P)
{
    const fxq_conv_dims *d = p->d;
    const int64_t OH = d->oh, OW = d->ow;
    const int64_t kvalid = d->k - kb * 16 < 16 ? d->k - kb * 16 : 16;
    const __m256i c0 = _mm256_loadu_si256((const __m256i *)(p->corr + kb * 16));
    const __m256i c1 = _mm256_loadu_si256((const __m256i *)(p->corr + kb * 16 + 8));
    for (int i = 0; i < P; ++i) {
        acc[2 * i] = _mm256_add_epi32(acc[2 * i], c0);
        acc[2 * i + 1] = _mm256_add_epi32(acc[2 * i + 1], c1);
    }
    if (p->scheme == FXQ_SCHEME_NONE) {
        int32_t *out = (int32_t *)p->out;
        int32_t tmp[TILE][16];
        for (int i = 0; i < P; ++i) {
            _mm256_storeu_si256((__m256i *)tmp[i], acc[2 * i]);
            _mm256_storeu_si256((__m256i *)(tmp[i] + 8), acc[2 * i + 1]);
        }
        for (int i = 0; i < P; ++i)
            for (int64_t k16 = 0; k16 < kvalid; ++k16) {
                int64_t idx = p->layout == FXQ_LAYOUT_NCHW16C
                                  ? (((n * p->kb + kb) * OH + oh) * OW + ow0 + i) * 16 + k16
                                  : ((n * d->k + kb * 16 + k16) * OH + oh) * OW + ow0 + i;
                out[idx] = tmp[i][k16];
            }
        return;
    }
    {
        qv256 v0, v1;
        uint8_t tmp[TILE][16];
        uint8_t *out = (uint8_t *)p->out;
        qv256_block(p->q, kb * 16, &v0);
        qv256_block(p->q, kb * 16 + 8, &v1);
        for (int i = 0; i < P; ++i) {
            __m256i r0, r1;
            switch (p->scheme) {
            case FXQ_SCHEME_FLOAT32_RNE:
                r0 = rq256(acc[2 * i], FXQ_SCHEME_FLOAT32_RNE, &v0);
                r1 = rq256(acc[2 * i + 1], FXQ_SCHEME_FLOAT32_RNE, &v1);
                break;
            case FXQ_SCHEME_POW2:
                r0 = rq256(acc[2 * i], FXQ_SCHEME_POW2, &v0);
                r1 = rq256(acc[2 * i + 1], FXQ_SCHEME_POW2, &v1);
                break;
            case FXQ_SCHEME_TFLITE:
                r0 = rq256(acc[2 * i], FXQ_SCHEME_TFLITE, &v0);
                r1 = rq256(acc[2 * i + 1], FXQ_SCHEME_TFLITE, &v1);
                break;
            default:
                r0 = rq256(acc[2 * i], FXQ_SCHEME_TFLITE_SINGLE, &v0);
                r1 = rq256(acc[2 * i + 1], FXQ_SCHEME_TFLITE_SINGLE, &v1);
                break;
            }
            _mm_storel_epi64((__m128i *)tmp[i], narrow8(r0, p->out_dtype));
            _mm_storel_epi64((__m128i *)(tmp[i] + 8), narrow8(r1, p->out_dtype));
        }
        if (p->layout == FXQ_LAYOUT_NCHW16C) {
            uint8_t *o = out + (((n * p->kb + kb) * OH + oh) * OW + ow0) * 16;
            memcpy(o, tmp, (size_t)P * 16);
        } else {
            for (int64_t k16 = 0; k16 < kvalid; ++k16) {
                uint8_t *o = out + ((n * d->k + kb * 16 + k16) * OH + oh) * OW + ow0;
                for (int i = 0; i < P; ++i) o[i] = tmp[i][k16];
            }
        }
    }
}

T256 int fxq_conv2d_avx2(const fxq_conv_plan *p)
{
    const fxq_conv_dims *d = p->d;
    const int64_t rows = p->wpa * 16, cbs = p->hp * rows, sw16 = d->stride_w * 16;
    const int64_t wkb = p->cb * d->r * d->s * 256;
    __m256i acc[2 * TILE];
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t oh = 0; oh < d->oh; ++oh)
            for (int64_t kb = 0; kb < p->kb; ++kb)
                for (int64_t ow0 = 0; ow0 < d->ow; ow0 += TILE) {
                    const int P = d->ow - ow0 < TILE ? (int)(d->ow - ow0) : TILE;
                    const int16_t *x = p->xpack16 + (n * p->cb * p->hp + oh * d->stride_h) * rows + ow0 * sw16;
                    tile(x, p->wpack16 + kb * wkb, cbs, rows, sw16, p->cb, d->r, d->s, acc);
                    epilogue(p, acc, n, kb, oh, ow0, P);
                }
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Standalone requantization
 * ---------------------------------------------------------------------------------------------- */

T256 INL void requantize_body(const int32_t *acc, uint8_t *out, int64_t outer, int64_t channels,
                              int64_t inner, const int scheme, const fxq_prepared *q)
{
    if (inner == 1 && channels > 1) {
        for (int64_t o = 0; o < outer; ++o) {
            const int32_t *a = acc + o * channels;
            uint8_t *b = out + o * channels;
            int64_t c0 = 0;
            for (; c0 + 8 <= channels; c0 += 8) {
                qv256 v;
                qv256_block(q, c0, &v);
                _mm_storel_epi64((__m128i *)(b + c0),
                                 narrow8(rq256(_mm256_loadu_si256((const __m256i *)(a + c0)), scheme, &v),
                                         q->out_dtype));
            }
            for (; c0 < channels; ++c0) fxq_store_scalar(b, q->out_dtype, c0, fxq_requant_scalar(a[c0], q, c0));
        }
        return;
    }
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            qv256 v;
            int64_t base = (o * channels + c) * inner, i = 0;
            qv256_bcast(q, c, &v);
            for (; i + 8 <= inner; i += 8) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(acc + base + i));
                _mm_storel_epi64((__m128i *)(out + base + i), narrow8(rq256(a, scheme, &v), q->out_dtype));
            }
            for (; i < inner; ++i)
                fxq_store_scalar(out, q->out_dtype, base + i, fxq_requant_scalar(acc[base + i], q, c));
        }
}

T256 int fxq_requantize_avx2(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                             int64_t inner, const fxq_prepared *q)
{
    uint8_t *o = (uint8_t *)out;
    switch (q->scheme) {
    case FXQ_SCHEME_FLOAT32_RNE: requantize_body(acc, o, outer, channels, inner, FXQ_SCHEME_FLOAT32_RNE, q); break;
    case FXQ_SCHEME_POW2: requantize_body(acc, o, outer, channels, inner, FXQ_SCHEME_POW2, q); break;
    case FXQ_SCHEME_TFLITE: requantize_body(acc, o, outer, channels, inner, FXQ_SCHEME_TFLITE, q); break;
    case FXQ_SCHEME_TFLITE_SINGLE: requantize_body(acc, o, outer, channels, inner, FXQ_SCHEME_TFLITE_SINGLE, q); break;
    default: return FXQ_ERR_ARG;
    }
    return FXQ_OK;
}

#endif /* FXQ_HAVE_X86 */
