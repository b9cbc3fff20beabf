/* fxq_avx512.c -- AVX-512 VNNI path: direct convolution on the packed NCHW16c operands with a
 * register tile of 14 output pixels x 32 output channels (28 zmm accumulators, vpdpbusd), and the
 * four requantization schemes on 16 int32 lanes (lane = output channel), fused in the epilogue.
 *
 * Every function carries the target attribute, so the file builds with the default (SSE2) flags and
 * only runs after fxq_path_available(FXQ_PATH_AVX512) said yes. */
#include "fxq_internal.h"

#ifdef FXQ_HAVE_X86
#include <immintrin.h>
#include <string.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define INL static inline __attribute__((always_inline))
#define TILE FXQ_TILE_AVX512

/* unaligned, aliasing-safe int32 load: lets gcc fold the broadcast into vpdpbusd's {1to16} operand */
typedef int32_t __attribute__((may_alias, aligned(1))) i32u;
/* gcc's predictive commoning sees that pixel i at kernel column s+1 reads what pixel i+1 read at s,
 * keeps those scalars alive across iterations and spills them: switch it off for the tiles. */
#define NOPC __attribute__((noinline, optimize("no-predictive-commoning")))

/* Requantization parameters of 16 channels, one per lane. */
typedef struct {
    __m512 scale, flo, fhi;
    __m512i mult, mult_o, lsh, rsh, rbsh, rbmask, clampv, mask, thr;
    __m512i rnd_e, rnd_o, rsh_e, rsh_o, lo64, hi64, lo, hi, zp;
} qv512;

T512 INL void qv512_common(const fxq_prepared *q, qv512 *v)
{
    v->flo = _mm512_set1_ps((float)q->lo);
    v->fhi = _mm512_set1_ps((float)q->hi);
    v->lo = _mm512_set1_epi32(q->lo);
    v->hi = _mm512_set1_epi32(q->hi);
    v->lo64 = _mm512_set1_epi64(q->lo);
    v->hi64 = _mm512_set1_epi64(q->hi);
    v->zp = _mm512_set1_epi32(q->zero_point);
}

/* channels k0 .. k0+15 (k0 a multiple of 16, arrays padded to kpad) */
T512 INL void qv512_block(const fxq_prepared *q, int64_t k0, qv512 *v)
{
    qv512_common(q, v);
    v->scale = _mm512_loadu_ps(q->scale + k0);
    v->mult = _mm512_loadu_si512(q->mult + k0);
    v->mult_o = _mm512_srli_epi64(v->mult, 32);
    v->lsh = _mm512_loadu_si512(q->lsh + k0);
    v->rsh = _mm512_loadu_si512(q->rsh + k0);
    v->rbsh = _mm512_loadu_si512(q->rbsh + k0);
    v->rbmask = _mm512_loadu_si512(q->rbmask + k0);
    v->clampv = _mm512_loadu_si512(q->clampv + k0);
    v->mask = _mm512_loadu_si512(q->mask + k0);
    v->thr = _mm512_srai_epi32(v->mask, 1);
    v->rnd_e = _mm512_loadu_si512(q->rnd64_e + k0 / 2);
    v->rnd_o = _mm512_loadu_si512(q->rnd64_o + k0 / 2);
    v->rsh_e = _mm512_loadu_si512(q->rsh64_e + k0 / 2);
    v->rsh_o = _mm512_loadu_si512(q->rsh64_o + k0 / 2);
}

/* channel c in every lane */
T512 INL void qv512_bcast(const fxq_prepared *q, int64_t c, qv512 *v)
{
    qv512_common(q, v);
    v->scale = _mm512_set1_ps(q->scale[c]);
    v->mult = _mm512_set1_epi32(q->mult[c]);
    v->mult_o = v->mult;
    v->lsh = _mm512_set1_epi32(q->lsh[c]);
    v->rsh = _mm512_set1_epi32(q->rsh[c]);
    v->rbsh = _mm512_set1_epi32(q->rbsh[c]);
    v->rbmask = _mm512_set1_epi32(q->rbmask[c]);
    v->clampv = _mm512_set1_epi32(q->clampv[c]);
    v->mask = _mm512_set1_epi32(q->mask[c]);
    v->thr = _mm512_srai_epi32(v->mask, 1);
    v->rnd_e = v->rnd_o = _mm512_set1_epi64(q->rnd64[c]);
    v->rsh_e = v->rsh_o = _mm512_set1_epi64(q->rsh64[c]);
}

/* The SIMD twin of fxq_requant_scalar(): result in [qmin, qmax], as int32 lanes. */
T512 INL __m512i rq512(__m512i acc, const int scheme, const qv512 *v)
{
    __m512i r;
    switch (scheme) {
    case FXQ_SCHEME_FLOAT32_RNE: {
        const int rm = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        __m512 f = _mm512_mul_round_ps(_mm512_cvt_roundepi32_ps(acc, rm), v->scale, rm);
        f = _mm512_min_ps(_mm512_max_ps(f, v->flo), v->fhi);
        return _mm512_add_epi32(_mm512_cvt_roundps_epi32(f, rm), v->zp);
    }
    case FXQ_SCHEME_POW2: {
        __m512i a = _mm512_max_epi32(acc, _mm512_sub_epi32(_mm512_setzero_si512(), v->clampv));
        a = _mm512_min_epi32(a, v->clampv);
        a = _mm512_sllv_epi32(a, v->lsh);
        r = _mm512_add_epi32(_mm512_srav_epi32(a, v->rsh),
                             _mm512_and_si512(_mm512_srav_epi32(a, v->rbsh), v->rbmask));
        break;
    }
    case FXQ_SCHEME_TFLITE: {
        const __m512i half = _mm512_set1_epi64((int64_t)1 << 30);
        __m512i x = _mm512_sllv_epi32(acc, v->lsh);
        __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(x, v->mult), half);
        __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), v->mult_o), half);
        /* bits 31..62 of each product are y: logical shifts are enough, y fits int32 */
        __m512i y = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 31), _mm512_slli_epi64(po, 1));
        __m512i rem = _mm512_and_si512(y, v->mask);
        __m512i thr = _mm512_sub_epi32(v->thr, _mm512_srai_epi32(y, 31)); /* + 1 where y < 0 */
        __mmask16 up = _mm512_cmpgt_epi32_mask(rem, thr);
        r = _mm512_srav_epi32(y, v->rsh);
        r = _mm512_mask_add_epi32(r, up, r, _mm512_set1_epi32(1));
        break;
    }
    case FXQ_SCHEME_TFLITE_SINGLE: {
        __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(acc, v->mult), v->rnd_e);
        __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(acc, 32), v->mult_o), v->rnd_o);
        pe = _mm512_srav_epi64(pe, v->rsh_e);
        po = _mm512_srav_epi64(po, v->rsh_o);
        pe = _mm512_min_epi64(_mm512_max_epi64(pe, v->lo64), v->hi64);
        po = _mm512_min_epi64(_mm512_max_epi64(po, v->lo64), v->hi64);
        return _mm512_add_epi32(_mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32)), v->zp);
    }
    default:
        return acc;
    }
    r = _mm512_min_epi32(_mm512_max_epi32(r, v->lo), v->hi);
    return _mm512_add_epi32(r, v->zp);
}

/* ------------------------------------------------------------------------------------------------
 * Convolution
 * ---------------------------------------------------------------------------------------------- */

typedef struct {
    int64_t cbs;   /* bytes between input channel blocks: hp * wpa * 16 */
    int64_t rows;  /* bytes between input rows: wpa * 16 */
    int64_t sw16;  /* bytes between neighbouring output pixels: stride_w * 16 */
    int64_t ncb, R, S;
    int64_t wkb;   /* bytes between weight blocks of 16 output channels: cb * R * S * 256 */
} tile_geom;

/* out[j*PX + i] = sum over (cb, r, s, c) of x(pixel i) * w(block j), for NKB blocks of 16 output
 * channels and PX output pixels: NKB*PX zmm accumulators, each broadcast input feeds NKB vpdpbusd */
T512 INL void tile_body(const uint8_t *x, const int8_t *w, const tile_geom *g, const int NKB,
                        const int PX, const int ST1, __m512i *out)
{
    __m512i a[2][TILE];
#pragma GCC unroll 4
    for (int j = 0; j < NKB; ++j)
#pragma GCC unroll 16
        for (int i = 0; i < PX; ++i) a[j][i] = _mm512_setzero_si512();
    for (int64_t cb = 0; cb < g->ncb; ++cb) {
        for (int64_t r = 0; r < g->R; ++r) {
            const uint8_t *xr = x + cb * g->cbs + r * g->rows;
            const int8_t *wr = w + (cb * g->R + r) * g->S * 256;
            for (int64_t s = 0; s < g->S; ++s) {
                const uint8_t *xs = xr + s * 16;
                const int8_t *ws = wr + s * 256;
#pragma GCC unroll 4
                for (int c4 = 0; c4 < 4; ++c4) {
                    __m512i wv[2];
#pragma GCC unroll 4
                    for (int j = 0; j < NKB; ++j)
                        wv[j] = _mm512_load_si512((const void *)(ws + j * g->wkb + c4 * 64));
#pragma GCC unroll 16
                    for (int i = 0; i < PX; ++i) {
                        __m512i b = _mm512_set1_epi32(*(const i32u *)(xs + (ST1 ? i * 16 : i * g->sw16) + c4 * 4));
#pragma GCC unroll 4
                        for (int j = 0; j < NKB; ++j) a[j][i] = _mm512_dpbusd_epi32(a[j][i], b, wv[j]);
                    }
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NKB; ++j)
#pragma GCC unroll 16
        for (int i = 0; i < PX; ++i) _mm512_storeu_si512(out + j * PX + i, a[j][i]);
}

#define TILE_FN(name, NKB, PX, ST1)                                                              \
    T512 NOPC static void name(const uint8_t *x, const int8_t *w, const tile_geom *g, __m512i *out) \
    { tile_body(x, w, g, NKB, PX, ST1, out); }
TILE_FN(tile_k2_s1, 2, 14, 1)
TILE_FN(tile_k1_s1, 1, 14, 1)
TILE_FN(tile_k2_sn, 2, 14, 0)
TILE_FN(tile_k1_sn, 1, 14, 0)

T512 INL void requant_tile(const __m512i *acc, int P, const int scheme, const qv512 *v, __m128i *b)
{
    for (int i = 0; i < P; ++i) b[i] = _mm512_cvtepi32_epi8(rq512(acc[i], scheme, v));
}

/* rows[ow][16] (one output row of a 16-channel block, 8-bit) -> out[k16][ow] (NCHW), 64 pixels
 * at a time: zmm lane L of row register i holds pixel 16L + i, so the in-lane 16x16 transpose
 * leaves channel c's 64 pixels, in order, in register c. */
T512 static void row_to_nchw(const uint8_t *rows, int64_t ow_total, uint8_t *out, int64_t chan_stride,
                             int64_t kvalid)
{
    for (int64_t ow0 = 0; ow0 < ow_total; ow0 += 64) {
        const int64_t np = ow_total - ow0 < 64 ? ow_total - ow0 : 64;
        const __mmask64 m = np == 64 ? ~(__mmask64)0 : (((__mmask64)1 << np) - 1);
        const uint8_t *src = rows + ow0 * 16;
        __m512i r[16], t[16];
        for (int i = 0; i < 16; ++i) {
            __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(src + i * 16)));
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(src + (16 + i) * 16)), 1);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(src + (32 + i) * 16)), 2);
            r[i] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(src + (48 + i) * 16)), 3);
        }
        for (int round = 0; round < 4; ++round) {
            for (int i = 0; i < 8; ++i) {
                t[2 * i] = _mm512_unpacklo_epi8(r[i], r[i + 8]);
                t[2 * i + 1] = _mm512_unpackhi_epi8(r[i], r[i + 8]);
            }
            for (int i = 0; i < 16; ++i) r[i] = t[i];
        }
        for (int64_t c = 0; c < kvalid; ++c) _mm512_mask_storeu_epi8(out + c * chan_stride + ow0, m, r[c]);
    }
}

/* NCHW input -> the interior of the padded NCHW16c buffer, 64 pixels x 16 channels at a time:
 * one (masked, so never past the row) 64-byte load per channel, the in-lane 16x16 transpose,
 * then lane L of register i is pixel 16L + i's 16 channels. */
T512 void fxq_pack_input_nchw_avx512(const fxq_conv_dims *d, const uint8_t *x, uint8_t flip,
                                     uint8_t *xpack, int64_t ncb, int64_t hp, int64_t wpa)
{
    const __m512i vflip = _mm512_set1_epi8((char)flip);
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t cb = 0; cb < ncb; ++cb)
            for (int64_t h = 0; h < d->h; ++h) {
                uint8_t *dst = xpack + ((n * ncb + cb) * hp + h + d->pad_h) * wpa * 16 + d->pad_w * 16;
                for (int64_t w = 0; w < d->w; w += 64) {
                    const int64_t np = d->w - w < 64 ? d->w - w : 64;
                    const __mmask64 m = np == 64 ? ~(__mmask64)0 : (((__mmask64)1 << np) - 1);
                    __m512i r[16], t[16];
                    for (int c16 = 0; c16 < 16; ++c16) {
                        const int64_t c = cb * 16 + c16;
                        r[c16] = c < d->c
                            ? _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + ((n * d->c + c) * d->h + h) * d->w + w), vflip)
                            : _mm512_setzero_si512();
                    }
                    for (int round = 0; round < 4; ++round) {
                        for (int i = 0; i < 8; ++i) {
                            t[2 * i] = _mm512_unpacklo_epi8(r[i], r[i + 8]);
                            t[2 * i + 1] = _mm512_unpackhi_epi8(r[i], r[i + 8]);
                        }
                        for (int i = 0; i < 16; ++i) r[i] = t[i];
                    }
                    if (np == 64) {
                        for (int i = 0; i < 16; ++i) {
                            _mm_storeu_si128((__m128i *)(dst + (w + i) * 16), _mm512_castsi512_si128(r[i]));
                            _mm_storeu_si128((__m128i *)(dst + (w + 16 + i) * 16), _mm512_extracti32x4_epi32(r[i], 1));
                            _mm_storeu_si128((__m128i *)(dst + (w + 32 + i) * 16), _mm512_extracti32x4_epi32(r[i], 2));
                            _mm_storeu_si128((__m128i *)(dst + (w + 48 + i) * 16), _mm512_extracti32x4_epi32(r[i], 3));
                        }
                    } else {
                        for (int i = 0; i < 16; ++i) {
                            __m128i lane[4];
                            lane[0] = _mm512_castsi512_si128(r[i]);
                            lane[1] = _mm512_extracti32x4_epi32(r[i], 1);
                            lane[2] = _mm512_extracti32x4_epi32(r[i], 2);
                            lane[3] = _mm512_extracti32x4_epi32(r[i], 3);
                            for (int L = 0; L < 4; ++L)
                                if (16 * L + i < np)
                                    _mm_storeu_si128((__m128i *)(dst + (w + 16 * L + i) * 16), lane[L]);
                        }
                    }
                }
            }
}

/* add the correction, requantize and store P <= TILE pixels of one 16-channel block */
T512 static void epilogue(const fxq_conv_plan *p, __m512i *acc, int64_t n, int64_t kb, int64_t oh,
                          int64_t ow0, int P, const qv512 *qv)
{
    const fxq_conv_dims *d = p->d;
    const int64_t OH = d->oh, OW = d->ow;
    const __m512i corr = _mm512_loadu_si512(p->corr + kb * 16);
    const int64_t kvalid = d->k - kb * 16 < 16 ? d->k - kb * 16 : 16;
    for (int i = 0; i < P; ++i) acc[i] = _mm512_add_epi32(acc[i], corr);

    if (p->scheme == FXQ_SCHEME_NONE) {
        int32_t *out = (int32_t *)p->out;
        if (p->layout == FXQ_LAYOUT_NCHW16C) {
            int32_t *o = out + (((n * p->kb + kb) * OH + oh) * OW + ow0) * 16;
            for (int i = 0; i < P; ++i) _mm512_storeu_si512(o + i * 16, acc[i]);
        } else {
            int32_t tmp[TILE][16];
            for (int i = 0; i < P; ++i) _mm512_storeu_si512(tmp[i], acc[i]);
            for (int64_t k16 = 0; k16 < kvalid; ++k16) {
                int32_t *o = out + ((n * d->k + kb * 16 + k16) * OH + oh) * OW + ow0;
                for (int i = 0; i < P; ++i) o[i] = tmp[i][k16];
            }
        }
        return;
    }
    {
        __m128i b[16];
        uint8_t *out = (uint8_t *)p->out;
        switch (p->scheme) {
        case FXQ_SCHEME_FLOAT32_RNE: requant_tile(acc, P, FXQ_SCHEME_FLOAT32_RNE, qv, b); break;
        case FXQ_SCHEME_POW2: requant_tile(acc, P, FXQ_SCHEME_POW2, qv, b); break;
        case FXQ_SCHEME_TFLITE: requant_tile(acc, P, FXQ_SCHEME_TFLITE, qv, b); break;
        default: requant_tile(acc, P, FXQ_SCHEME_TFLITE_SINGLE, qv, b); break;
        }
        if (p->layout == FXQ_LAYOUT_NCHW16C) {
            uint8_t *o = out + (((n * p->kb + kb) * OH + oh) * OW + ow0) * 16;
            for (int i = 0; i < P; ++i) _mm_storeu_si128((__m128i *)(o + i * 16), b[i]);
        } else {  /* NCHW: collect the row, transposed by row_to_nchw once it is complete */
            uint8_t *o = p->rowbuf + (kb & 1) * p->rowbuf_stride + ow0 * 16;
            for (int i = 0; i < P; ++i) _mm_storeu_si128((__m128i *)(o + i * 16), b[i]);
        }
    }
}

T512 int fxq_conv2d_avx512(const fxq_conv_plan *p)
{
    const fxq_conv_dims *d = p->d;
    const int st1 = d->stride_w == 1;
    tile_geom g;
    __m512i acc[2 * TILE];
    g.cbs = p->hp * p->wpa * 16;
    g.rows = p->wpa * 16;
    g.sw16 = d->stride_w * 16;
    g.ncb = p->cb;
    g.R = d->r;
    g.S = d->s;
    g.wkb = p->cb * d->r * d->s * 256;
    if (p->scheme != FXQ_SCHEME_NONE && p->layout == FXQ_LAYOUT_NCHW)
        memset(p->rowbuf, 0, (size_t)(2 * p->rowbuf_stride));
    /* pairs of output-channel blocks outside the rows: the pair's weights (cb*R*S*512 bytes,
     * 18 KiB for the seed layer) stay in L1 while the input rows stream through */
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t kb = 0; kb < p->kb;) {
            const int nkb = p->kb - kb >= 2 ? 2 : 1;
            const int px = TILE;
            const int8_t *w = p->wpack + kb * g.wkb;
            qv512 qv[2];   /* the pair's requantization parameters, loaded once */
            if (p->scheme != FXQ_SCHEME_NONE)
                for (int j = 0; j < nkb; ++j) qv512_block(p->q, (kb + j) * 16, &qv[j]);
            for (int64_t oh = 0; oh < d->oh; ++oh) {
                for (int64_t ow0 = 0; ow0 < d->ow; ow0 += px) {
                    const int P = d->ow - ow0 < px ? (int)(d->ow - ow0) : px;
                    const uint8_t *x = p->xpack + (n * p->cb * p->hp + oh * d->stride_h) * g.rows +
                                       ow0 * g.sw16;
                    if (nkb == 2) {
                        if (st1) tile_k2_s1(x, w, &g, acc); else tile_k2_sn(x, w, &g, acc);
                    } else {
                        if (st1) tile_k1_s1(x, w, &g, acc); else tile_k1_sn(x, w, &g, acc);
                    }
                    for (int j = 0; j < nkb; ++j)
                        epilogue(p, acc + j * px, n, kb + j, oh, ow0, P, &qv[j]);
                }
                if (p->scheme != FXQ_SCHEME_NONE && p->layout == FXQ_LAYOUT_NCHW)
                    for (int j = 0; j < nkb; ++j) {
                        const int64_t kvalid = d->k - (kb + j) * 16 < 16 ? d->k - (kb + j) * 16 : 16;
                        row_to_nchw(p->rowbuf + ((kb + j) & 1) * p->rowbuf_stride, d->ow,
                                    (uint8_t *)p->out + ((n * d->k + (kb + j) * 16) * d->oh + oh) * d->ow,
                                    d->oh * d->ow, kvalid);
                    }
            }
            kb += nkb;
        }
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Standalone requantization
 * ---------------------------------------------------------------------------------------------- */

T512 INL void rq_run(const int32_t *acc, uint8_t *out, int64_t len, const int scheme, const qv512 *v)
{
    int64_t i = 0;
    for (; i + 16 <= len; i += 16) {
        __m512i a = _mm512_loadu_si512(acc + i);
        _mm_storeu_si128((__m128i *)(out + i), _mm512_cvtepi32_epi8(rq512(a, scheme, v)));
    }
    if (i < len) {
        __mmask16 m = (__mmask16)((1u << (len - i)) - 1u);
        __m512i a = _mm512_maskz_loadu_epi32(m, acc + i);
        _mm_mask_storeu_epi8(out + i, m, _mm512_cvtepi32_epi8(rq512(a, scheme, v)));
    }
}

T512 INL void rq_lanes(const int32_t *acc, uint8_t *out, int64_t channels, const int scheme,
                       const fxq_prepared *q)
{
    for (int64_t c0 = 0; c0 < channels; c0 += 16) {
        qv512 v;
        int64_t len = channels - c0 < 16 ? channels - c0 : 16;
        __mmask16 m = (__mmask16)((1u << len) - 1u);
        __m512i a = _mm512_maskz_loadu_epi32(m, acc + c0);
        qv512_block(q, c0, &v);
        _mm_mask_storeu_epi8(out + c0, m, _mm512_cvtepi32_epi8(rq512(a, scheme, &v)));
    }
}

T512 INL void requantize_body(const int32_t *acc, uint8_t *out, int64_t outer, int64_t channels,
                              int64_t inner, const int scheme, const fxq_prepared *q)
{
    if (inner == 1 && channels > 1) {  /* channels innermost: one lane per channel */
        for (int64_t o = 0; o < outer; ++o) rq_lanes(acc + o * channels, out + o * channels, channels, scheme, q);
        return;
    }
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            qv512 v;
            int64_t base = (o * channels + c) * inner;
            qv512_bcast(q, c, &v);
            rq_run(acc + base, out + base, inner, scheme, &v);
        }
}

T512 int fxq_requantize_avx512(const int32_t *acc, void *out, int64_t outer, int64_t channels,
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

/* ------------------------------------------------------------------------------------------------
 * Peak probe: 20 independent accumulator chains (latency 5 would allow 4 per cycle), register
 * operands only -- the ceiling any AVX-512 VNNI kernel can reach on this core.
 * ---------------------------------------------------------------------------------------------- */
#define FXQ_DP(i) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #i "\n\t"
T512 int fxq_probe_vpdpbusd_zmm(int64_t iters)
{
    if (!fxq_path_available(FXQ_PATH_AVX512)) return FXQ_ERR_PATH;
    if (iters <= 0) return FXQ_OK;
    __asm__ volatile(
        "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
        "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
        "1:\n\t"
        FXQ_DP(0) FXQ_DP(1) FXQ_DP(2) FXQ_DP(3) FXQ_DP(4) FXQ_DP(5) FXQ_DP(6) FXQ_DP(7) FXQ_DP(8)
        FXQ_DP(9) FXQ_DP(10) FXQ_DP(11) FXQ_DP(12) FXQ_DP(13) FXQ_DP(14) FXQ_DP(15) FXQ_DP(16)
        FXQ_DP(17) FXQ_DP(18) FXQ_DP(19)
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",
          "xmm30", "xmm31", "cc");
    return FXQ_OK;
}

#else
int fxq_probe_vpdpbusd_zmm(int64_t iters)
{
    (void)iters;
    return FXQ_ERR_PATH;
}
#endif /* FXQ_HAVE_X86 */
