/* fxq_avx2.c -- AVX2 path for CPUs without AVX-512 VNNI (e.g. AMD Zen 3).
 *
 * The dense MAC tile is exact at vpmaddubsw speed for every int8 weight: with x' = x_u - 128 as
 * int8, u = |x'| (uint8, <= 128) and m = (x' < 0 ? 0xFF : 0) per byte,
 *     vpmaddubsw(u, w ^ m)                (vpxor per product pair, u and m made at packing)
 * multiplies u <= 128 by w ^ m in [-128, 127], so each product is within [-16384, 16256] and
 * each int16 pair sum within [-32768, 32512]: it never saturates.  For x' < 0, w ^ m = -w - 1,
 * so u * (w ^ m) = x' * w - u: the tile sums sum x' * w - N with N = sum of |x'| over the
 * window's negative x', a term that does not depend on the output channel.  N is computed once
 * per output pixel (prepare_u8s8) and starts the accumulators.  vpmaddwd with ones widens the
 * pairs to int32.  Since
 *     sum (x_u - zp_u) * w = sum x' * w + (128 - zp_u) * sum w,
 * the accumulators get corr2 = bias - zp_u * sum w + 128 * sum w.  vpxor runs on every vector
 * pipe (vpsignb, the earlier form, shares the multiplier pipes on Zen 3), and the identity holds
 * for w = -128 too, so there is no int16 fallback.  Tiles: 3 + 2 pixels x 32 output channels
 * (two 16-channel blocks, weights straight from memory as vpxor operands), and 5 pixels x 16
 * channels for a last odd block; the weight layout is the VNNI one (OIHW4i16o4i: one 32-byte
 * load = 8 output channels x 4 inputs).
 *
 * The requantization epilogue, transposes, packing and the driver come from fxq_simd.h,
 * instantiated with the AVX2 primitives below (8 int32 lanes).  AVX2 has no 64-bit arithmetic
 * shift or 64-bit min/max: vi_sra64_clamp builds them from logical shifts, xor and compares. */
#include "fxq_internal.h"

#ifdef FXQ_HAVE_X86
#include <immintrin.h>
#include <string.h>

#define T256 __attribute__((target("avx2,fma")))
#define INL static inline __attribute__((always_inline))
#define TILE FXQ_TILE_AVX2

/* ------------------------------------------------------------------------------------------------
 * The primitive set of fxq_simd.h
 * ---------------------------------------------------------------------------------------------- */
#define FXQ_T T256
#define VI __m256i
#define VF __m256
#define VL 8
#define FXQ_TILE TILE
#define FXQ_NKB 2
#define FXQ_ISA(name) name##_avx2

T256 INL VI vi_load(const int32_t *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}
T256 INL void vi_store(int32_t *p, VI a) {
    _mm256_storeu_si256((__m256i *)p, a);
}
T256 INL VI vi_load64(const int64_t *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}
T256 INL VI vi_set1(int32_t x) {
    return _mm256_set1_epi32(x);
}
T256 INL VI vi_set1_64(int64_t x) {
    return _mm256_set1_epi64x(x);
}
T256 INL VI vi_zero(void) {
    return _mm256_setzero_si256();
}
T256 INL VI vi_add(VI a, VI b) {
    return _mm256_add_epi32(a, b);
}
T256 INL VI vi_sub(VI a, VI b) {
    return _mm256_sub_epi32(a, b);
}
T256 INL VI vi_min(VI a, VI b) {
    return _mm256_min_epi32(a, b);
}
T256 INL VI vi_max(VI a, VI b) {
    return _mm256_max_epi32(a, b);
}
T256 INL VI vi_and(VI a, VI b) {
    return _mm256_and_si256(a, b);
}
T256 INL VI vi_xor(VI a, VI b) {
    return _mm256_xor_si256(a, b);
}
T256 INL VI vi_sllv(VI a, VI n) {
    return _mm256_sllv_epi32(a, n);
}
T256 INL VI vi_srav(VI a, VI n) {
    return _mm256_srav_epi32(a, n);
}
T256 INL VI vi_srai31(VI a) {
    return _mm256_srai_epi32(a, 31);
}
T256 INL VI vi_srai1(VI a) {
    return _mm256_srai_epi32(a, 1);
}
T256 INL VI vi_mul_even(VI a, VI b) {
    return _mm256_mul_epi32(a, b);
}
T256 INL VI vi_odd_to_even(VI a) {
    return _mm256_srli_epi64(a, 32);
}
T256 INL VI vi_add64(VI a, VI b) {
    return _mm256_add_epi64(a, b);
}
T256 INL VI vi_even_hi31(VI p) {
    return _mm256_srli_epi64(p, 31);
}
T256 INL VI vi_odd_from_hi31(VI p) {
    return _mm256_slli_epi64(p, 1);
}
T256 INL VI vi_odd_from_lo(VI p) {
    return _mm256_slli_epi64(p, 32);
}
T256 INL VI vi_blend_odd(VI e, VI o) {
    return _mm256_blend_epi32(e, o, 0xAA);
}
T256 INL VI vi_inc_gt(VI r, VI a, VI b) {
    return _mm256_sub_epi32(r, _mm256_cmpgt_epi32(a, b));
}
/* floor(p / 2^n) for int64 lanes (xor with the sign, logical shift, xor back), clamped */
T256 INL VI vi_sra64_clamp(VI p, VI n, VI lo, VI hi) {
    VI sgn = _mm256_cmpgt_epi64(_mm256_setzero_si256(), p);
    VI r = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(p, sgn), n), sgn);
    r = _mm256_blendv_epi8(r, hi, _mm256_cmpgt_epi64(r, hi));
    return _mm256_blendv_epi8(r, lo, _mm256_cmpgt_epi64(lo, r));
}
T256 INL VF vf_load(const float *p) {
    return _mm256_loadu_ps(p);
}
T256 INL VF vf_set1(float x) {
    return _mm256_set1_ps(x);
}
/* the default MXCSR rounds to nearest even (Python never changes it) */
T256 INL VF vf_mul(VF a, VF b) {
    return _mm256_mul_ps(a, b);
}
T256 INL VF vf_min(VF a, VF b) {
    return _mm256_min_ps(a, b);
}
T256 INL VF vf_max(VF a, VF b) {
    return _mm256_max_ps(a, b);
}
T256 INL VF vf_from_vi(VI a) {
    return _mm256_cvtepi32_ps(a);
}
T256 INL VI vi_from_vf(VF a) {
    return _mm256_cvtps_epi32(a);
}
T256 INL void vi_store_bytes(uint8_t *dst, VI r) {
    const __m256i pick =
        _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i b = _mm256_shuffle_epi8(r, pick);
    __m128i lo = _mm256_castsi256_si128(b), hi = _mm256_extracti128_si256(b, 1);
    _mm_storel_epi64((__m128i *)dst, _mm_unpacklo_epi32(lo, hi));
}
T256 INL VI vb_unpacklo8(VI a, VI b) {
    return _mm256_unpacklo_epi8(a, b);
}
T256 INL VI vb_unpackhi8(VI a, VI b) {
    return _mm256_unpackhi_epi8(a, b);
}
/* shuffle masks for the partial loads and stores: with m = fxq_shift_mask + 16 + k, byte j of
 * a vpshufb by m is byte j + k (zero past 15); with m = fxq_shift_mask + k, byte j is byte
 * j + k - 16 (zero below 0) */
static const int8_t fxq_shift_mask[48] = {
    -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128,
    0,    1,    2,    3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,   15,
    -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128};
/* n < 32 bytes: 16 <= n by two overlapping 16-byte loads (the second ends at p + n, shifted
 * into place), fewer through a zero-filled copy */
T256 INL VI vb_loadu_n(const uint8_t *p, int64_t n) {
    uint8_t tmp[32] = {0};
    if (n >= 32) return _mm256_loadu_si256((const __m256i *)p);
    if (n >= 16) {
        const __m128i lo = _mm_loadu_si128((const __m128i *)p);
        const __m128i hi =
            _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + n - 16)),
                             _mm_loadu_si128((const __m128i *)(fxq_shift_mask + 48 - n)));
        return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    }
    memcpy(tmp, p, (size_t)n);
    return _mm256_loadu_si256((const __m256i *)tmp);
}
T256 INL void vb_storeu_n(uint8_t *p, VI v, int64_t n) {
    uint8_t tmp[32];
    if (n >= 32) {
        _mm256_storeu_si256((__m256i *)p, v);
        return;
    }
    if (n >= 16) { /* bytes 0..15, then bytes n-16 .. n-1 (overlapping, the same values) */
        const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
        const int64_t k = n - 16; /* 0 .. 15: byte j of the tail = lo[j + k] or hi[j + k - 16] */
        const __m128i t = _mm_or_si128(
            _mm_shuffle_epi8(lo, _mm_loadu_si128((const __m128i *)(fxq_shift_mask + 16 + k))),
            _mm_shuffle_epi8(hi, _mm_loadu_si128((const __m128i *)(fxq_shift_mask + k))));
        _mm_storeu_si128((__m128i *)p, lo);
        _mm_storeu_si128((__m128i *)(p + k), t);
        return;
    }
    _mm256_storeu_si256((__m256i *)tmp, v);
    memcpy(p, tmp, (size_t)n);
}
T256 INL void vb_store_lane(uint8_t *p, VI v, int L) {
    _mm_storeu_si128((__m128i *)p, L ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v));
}
T256 INL VI vb_load_lanes(const uint8_t *p, int64_t stride) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                   _mm_loadu_si128((const __m128i *)(p + stride)), 1);
}

/* acc[h] += pairs (x tap a, x tap b) . (w tap a, w tap b) for channels 8h .. 8h+7: the bytes of
 * the two pixels interleaved (punpck{l,h}bw), widened to int16, then vpmaddwd */
T256 INL void dw_pair(const uint8_t *x, const int16_t *w, VI *acc) {
    const __m128i xa = _mm_loadu_si128((const __m128i *)x),
                  xb = _mm_loadu_si128((const __m128i *)(x + 16));
    const __m256i lo = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(xa, xb));
    const __m256i hi = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(xa, xb));
    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(lo, _mm256_load_si256((const __m256i *)w)));
    acc[1] = _mm256_add_epi32(acc[1],
                              _mm256_madd_epi16(hi, _mm256_load_si256((const __m256i *)(w + 16))));
}

#include "fxq_simd.h"

/* ------------------------------------------------------------------------------------------------
 * The MAC tiles
 * ---------------------------------------------------------------------------------------------- */

typedef int32_t __attribute__((may_alias, aligned(1))) i32u;
#define NOPC __attribute__((noinline, optimize("no-predictive-commoning")))

/* The exact vpmaddubsw tile over NB (1 or 2) 16-channel blocks and PX pixels: m (sign masks) and
 * u = |x'| in the xpack layout, the correction N of each pixel in the first 4 bytes of its slot
 * in nc (see prepare_u8s8).  Weights of block j at w + j * g->wkb. */
T256 INL void tile_u8s8_body(const uint8_t *m, const uint8_t *u, const uint8_t *nc, const int8_t *w,
                             const tile_geom *g, const int ST1, const int NB, const int PX,
                             __m256i *out0, __m256i *out1) {
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t sw = ST1 ? 16 : g->sw16;
    __m256i a[TILE][4];
#pragma GCC unroll 8
    for (int i = 0; i < PX; ++i) {
        const __m256i n0 = _mm256_set1_epi32(*(const i32u *)(nc + i * sw));
#pragma GCC unroll 4
        for (int h = 0; h < 2 * NB; ++h) a[i][h] = n0;
    }
    for (int64_t cb = 0; cb < g->ncb; ++cb)
        for (int64_t r = 0; r < g->R; ++r) {
            const int64_t xo = cb * g->cbs + r * g->rows;
            const int8_t *wr = w + (cb * g->R + r) * g->S * 256;
            for (int64_t s = 0; s < g->S; ++s) {
                const uint8_t *mp = m + xo + s * 16;
                const uint8_t *up = u + xo + s * 16;
                const int8_t *ws = wr + s * 256;
#pragma GCC unroll 4
                for (int c4 = 0; c4 < 4; ++c4) {
                    __m256i wv[2];
                    if (NB == 1) {
                        wv[0] = _mm256_load_si256((const __m256i *)(ws + c4 * 64));
                        wv[1] = _mm256_load_si256((const __m256i *)(ws + c4 * 64 + 32));
                    }
#pragma GCC unroll 8
                    for (int i = 0; i < PX; ++i) {
                        const int64_t o = i * sw + c4 * 4;
                        const __m256i mb = _mm256_set1_epi32(*(const i32u *)(mp + o));
                        const __m256i ub = _mm256_set1_epi32(*(const i32u *)(up + o));
#pragma GCC unroll 4
                        for (int h = 0; h < 2 * NB; ++h) {
                            /* NB == 2: the weights as memory operands of vpxor (12 accumulators
                             * leave no registers for them) */
                            const __m256i wh =
                                NB == 1
                                    ? wv[h]
                                    : _mm256_load_si256((const __m256i *)(ws + (h >> 1) * g->wkb +
                                                                          c4 * 64 + (h & 1) * 32));
                            const __m256i t = _mm256_maddubs_epi16(ub, _mm256_xor_si256(wh, mb));
                            a[i][h] = _mm256_add_epi32(a[i][h], _mm256_madd_epi16(t, ones));
                            /* keep gcc from re-associating the sums over c4 into long-lived
                             * temporaries (it spills them): the accumulators stay in registers */
                            __asm__("" : "+x"(a[i][h]));
                        }
                    }
                }
            }
        }
#pragma GCC unroll 8
    for (int i = 0; i < PX; ++i) {
        _mm256_storeu_si256(out0 + 2 * i, a[i][0]);
        _mm256_storeu_si256(out0 + 2 * i + 1, a[i][1]);
        if (NB == 2) {
            _mm256_storeu_si256(out1 + 2 * i, a[i][2]);
            _mm256_storeu_si256(out1 + 2 * i + 1, a[i][3]);
        }
    }
}

#define TILE_FN(name, ST1, NB, PX)                                                    \
    T256 NOPC static void name(const uint8_t *m, const uint8_t *u, const uint8_t *nc, \
                               const int8_t *w, const tile_geom *g, __m256i *out0,    \
                               __m256i *out1) {                                       \
        tile_u8s8_body(m, u, nc, w, g, ST1, NB, PX, out0, out1);                      \
    }
TILE_FN(tile_k2_p3, 0, 2, 3)
TILE_FN(tile_k2_p2, 0, 2, 2)
TILE_FN(tile_k2_p1, 0, 2, 1)
TILE_FN(tile_k1_s1, 1, 1, TILE)
TILE_FN(tile_k1_sn, 0, 1, TILE)
TILE_FN(tile_k1_p1, 1, 1, 1)

FXQ_T static void isa_tile(const fxq_conv_plan *p, const tile_geom *g, int64_t xoff, int64_t kb,
                           int nkb, int P, VI *acc) {
    const uint8_t *m = p->xscratch + xoff, *u = p->xscratch + p->xpack_bytes + xoff;
    const uint8_t *nc = p->xpack + xoff;
    const int8_t *w = p->wpack + kb * g->wkb;
    if (nkb == 2) { /* 32 channels: the pixels 3 + 2 (or 2 + 2, 3, 2, 1) at a time */
        for (int i = 0; i < P;) {
            const int64_t o = i * g->sw16;
            const int n = P - i == 4 ? 2 : (P - i >= 3 ? 3 : P - i);
            VI *o0 = acc + i * FXQ_NV, *o1 = acc + (TILE + i) * FXQ_NV;
            if (n == 3)
                tile_k2_p3(m + o, u + o, nc + o, w, g, o0, o1);
            else if (n == 2)
                tile_k2_p2(m + o, u + o, nc + o, w, g, o0, o1);
            else
                tile_k2_p1(m + o, u + o, nc + o, w, g, o0, o1);
            i += n;
        }
    } else if (P == 1) {
        tile_k1_p1(m, u, nc, w, g, acc, acc);
    } else if (p->d->stride_w == 1) {
        tile_k1_s1(m, u, nc, w, g, acc, acc);
    } else {
        tile_k1_sn(m, u, nc, w, g, acc, acc);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Operand preparation and the entry point
 * ---------------------------------------------------------------------------------------------- */

/* From xpack: m = (x' < 0 ? 0xFF : 0) and u = |x'| (vpabsb; |-128| reads as 128 unsigned) with
 * x' = xpack - 128, in the xpack layout in xscratch; then the tile's correction for each window
 * position (y, x) of the padded input,
 *     N(y, x) = sum over r < R, s < S and all packed channels of (x' < 0 ? -x' : 0),
 * as int32 in the first 4 bytes of pixel (y, x)'s cb = 0 slot of xpack (the kernel reads only
 * xscratch after this, so the packed input's slots are free: a pixel's slot is overwritten once
 * all its channel blocks are read).  Per pixel: vpsadbw of u & m over the channel blocks, then
 * the R x S box sum in place (along the row, then down the rows: each sum reads only positions
 * at or after its own). */
T256 static void prepare_u8s8(const fxq_conv_plan *p) {
    const fxq_conv_dims *d = p->d;
    const __m256i f = _mm256_set1_epi8((char)0x80), z = _mm256_setzero_si256();
    const int64_t wpa = p->wpa, hp = p->hp, plane = hp * wpa * 16, R = d->r, S = d->s;
    uint8_t *xp = (uint8_t *)(uintptr_t)p->xpack; /* workspace: writable */
    uint8_t *mm = p->xscratch, *ua = p->xscratch + p->xpack_bytes;
    for (int64_t n = 0; n < d->n; ++n) {
        const int64_t base = n * p->cb * plane;
        for (int64_t y = 0; y < hp; ++y) {
            const int64_t row = base + y * wpa * 16;
            int32_t *nr = (int32_t *)(void *)(xp + row); /* N of pixel x at nr[4 x] */
            int64_t x = 0;
            for (; x + 2 <= wpa; x += 2) {
                __m256i sad = z;
                for (int64_t cb = 0; cb < p->cb; ++cb) {
                    const int64_t o = row + cb * plane + x * 16;
                    const __m256i v =
                        _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(xp + o)), f);
                    const __m256i mk = _mm256_cmpgt_epi8(z, v), a = _mm256_abs_epi8(v);
                    _mm256_storeu_si256((__m256i *)(mm + o), mk);
                    _mm256_storeu_si256((__m256i *)(ua + o), a);
                    sad = _mm256_add_epi64(sad, _mm256_sad_epu8(_mm256_and_si256(a, mk), z));
                }
                nr[4 * x] = _mm256_extract_epi32(sad, 0) + _mm256_extract_epi32(sad, 2);
                nr[4 * x + 4] = _mm256_extract_epi32(sad, 4) + _mm256_extract_epi32(sad, 6);
            }
            for (; x < wpa; ++x) {
                __m128i sad = _mm_setzero_si128();
                for (int64_t cb = 0; cb < p->cb; ++cb) {
                    const int64_t o = row + cb * plane + x * 16;
                    const __m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(xp + o)),
                                                    _mm256_castsi256_si128(f));
                    const __m128i mk = _mm_cmpgt_epi8(_mm_setzero_si128(), v), a = _mm_abs_epi8(v);
                    _mm_storeu_si128((__m128i *)(mm + o), mk);
                    _mm_storeu_si128((__m128i *)(ua + o), a);
                    sad =
                        _mm_add_epi64(sad, _mm_sad_epu8(_mm_and_si128(a, mk), _mm_setzero_si128()));
                }
                nr[4 * x] = _mm_extract_epi32(sad, 0) + _mm_extract_epi32(sad, 2);
            }
            for (x = 0; x + S <= wpa; ++x) { /* along the row */
                int32_t t = 0;
                for (int64_t s = 0; s < S; ++s) t += nr[4 * (x + s)];
                nr[4 * x] = t;
            }
            if (y + 1 >= R) { /* down the rows: window row y - R + 1 is complete */
                int32_t *top = (int32_t *)(void *)(xp + base + (y + 1 - R) * wpa * 16);
                for (x = 0; x + S <= wpa; ++x) {
                    int32_t t = 0;
                    for (int64_t r = 0; r < R; ++r) t += top[4 * (x + r * wpa)];
                    top[4 * x] = t;
                }
            }
        }
    }
}

T256 int fxq_conv2d_avx2(const fxq_conv_plan *p) {
    prepare_u8s8(p);
    for (int64_t k = 0; k < p->kpad; ++k) /* + 128 * sum(w), mod 2^32 like the accumulators */
        p->corr2[k] = (int32_t)((uint32_t)p->corr[k] + ((uint32_t)p->wsum[p->kpad + k] << 7));
    return conv_driver(p, p->corr2);
}

/* ------------------------------------------------------------------------------------------------
 * Depthwise 3x3, stride 1, NCHW in and out, fused requantization: straight from the NCHW input,
 * lanes = output pixels (no NCHW16c packing, no output transposes).  Per channel the input plane
 * is widened once to int16 x_u with the zero-point padding (hp x wrow int16, ~8 KB: L1).  A 32-byte
 * load Lj at column ow0 + j holds the pairs (P[ow0+j+2i], P[ow0+j+2i+1]), i = 0..7, so per kernel
 * row r, with A = (w[r][0], w[r][1]) and B = (w[r][2], 0), vpmaddwd gives for the even output
 * pixels ow0 + 2i and for the odd ones ow0 + 2i + 1
 *     E += L0 . A + L2 . B,      O += L1 . A + L3 . B:
 * 16 outputs per 12 loads and 12 vpmaddwd, no shuffles, and only the six weight pairs A, B of
 * the three rows live (with two blocks in flight, everything fits the 16 ymm registers).  Exact for
 * any int8 weight (int16 x int16 pairs into int32).  E and O are requantized (rq_vec, per-channel
 * parameters broadcast) and interleaved back into pixel order by one 16-bit blend and a pack.
 * ---------------------------------------------------------------------------------------------- */

T256 INL __m256i dw3_pair(int16_t a, int16_t b) {
    return _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)a | ((uint32_t)(uint16_t)b << 16)));
}

/* 16 output bytes in pixel order from the even (e) and odd (o) pixels' int32 lanes */
T256 INL void dw3_store(uint8_t *out, __m256i e, __m256i o, int64_t nvalid, int is_u8) {
    const __m256i t = _mm256_blend_epi16(e, _mm256_slli_epi32(o, 16), 0xAA);
    const __m256i b = is_u8 ? _mm256_packus_epi16(t, t) : _mm256_packs_epi16(t, t);
    __m128i r = _mm_unpacklo_epi64(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    if (nvalid >= 16) {
        _mm_storeu_si128((__m128i *)out, r);
    } else {
        uint8_t tmp[8];
        if (nvalid >= 8) {
            _mm_storel_epi64((__m128i *)out, r);
            r = _mm_srli_si128(r, 8);
            out += 8;
            nvalid -= 8;
        }
        _mm_storel_epi64((__m128i *)tmp, r);
        for (int64_t i = 0; i < nvalid; ++i) out[i] = tmp[i];
    }
}

/* the input plane of one channel: rows of wrow int16 (a multiple of 16), zero point around */
T256 INL void dw3_plane(const fxq_conv_dims *d, const uint8_t *xc, uint8_t flip, int32_t zp_u,
                        int16_t *P, int64_t wrow) {
    const __m256i zpv = _mm256_set1_epi16((int16_t)zp_u);
    const __m128i fl = _mm_set1_epi8((char)flip);
    for (int64_t r = 0; r < d->h + 2 * d->pad_h; ++r) {
        int16_t *row = P + r * wrow;
        const int64_t h = r - d->pad_h;
        for (int64_t i = 0; i < wrow; i += 16) _mm256_storeu_si256((__m256i *)(row + i), zpv);
        if (h < 0 || h >= d->h) continue;
        for (int64_t w0 = 0; w0 < d->w; w0 += 16) {
            __m128i v;
            int64_t at = w0;
            if (d->w - w0 >= 16) {
                v = _mm_loadu_si128((const __m128i *)(xc + h * d->w + w0));
            } else if (d->w >= 16) { /* the row's tail: the last 16 pixels again (no tail copy:
                                      * a 16-byte load of bytes just stored one by one stalls) */
                at = d->w - 16;
                v = _mm_loadu_si128((const __m128i *)(xc + h * d->w + at));
            } else if (d->w >= 8) { /* 8 <= w < 16: the first and the last 8 pixels */
                const uint8_t *src = xc + h * d->w;
                _mm_storeu_si128(
                    (__m128i *)(row + d->pad_w),
                    _mm_cvtepu8_epi16(_mm_xor_si128(_mm_loadl_epi64((const __m128i *)src), fl)));
                _mm_storeu_si128((__m128i *)(row + d->pad_w + d->w - 8),
                                 _mm_cvtepu8_epi16(_mm_xor_si128(
                                     _mm_loadl_epi64((const __m128i *)(src + d->w - 8)), fl)));
                break;
            } else {
                for (int64_t i = 0; i < d->w; ++i)
                    row[d->pad_w + i] = (int16_t)(xc[h * d->w + i] ^ flip);
                break;
            }
            _mm256_storeu_si256((__m256i *)(row + d->pad_w + at),
                                _mm256_cvtepu8_epi16(_mm_xor_si128(v, fl)));
        }
    }
}

/* 16 outputs of one row from the plane at src (the block's first input column, kernel row 0) */
T256 INL void dw3_block(const int16_t *src, int64_t wrow, const __m256i *A, const __m256i *B,
                        __m256i corr, __m256i *e_out, __m256i *o_out) {
    __m256i e = corr, o = corr;
#pragma GCC unroll 3
    for (int r = 0; r < 3; ++r) {
        const int16_t *sr = src + r * wrow;
        e = _mm256_add_epi32(e, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)sr), A[r]));
        o = _mm256_add_epi32(
            o, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sr + 1)), A[r]));
        e = _mm256_add_epi32(
            e, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sr + 2)), B[r]));
        o = _mm256_add_epi32(
            o, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sr + 3)), B[r]));
    }
    *e_out = e;
    *o_out = o;
}

/* Small planes (ow <= 8, padded rows <= 16 pixels): two output rows per block, row oh in the low
 * 128-bit half of E and O and row oh+1 in the high half, on a plane of 16-int16 rows, so each
 * load is two 16-byte halves, one per row; half the vpmaddwd and epilogue vectors of one row per
 * block.  Two planes, the next channel's made first (a load of stores not yet in the cache waits
 * for them). */
#define DW3_PAIR_PITCH 16

T256 INL __m256i dw3_load2(const int16_t *a) { /* a and the same column one row down */
    return _mm256_loadu2_m128i((const __m128i *)(const void *)(a + DW3_PAIR_PITCH),
                               (const __m128i *)(const void *)a);
}

/* the padded plane in 16-int16 rows, and 2 rows of zero point after it */
T256 INL void dw3_plane16(const fxq_conv_dims *d, const uint8_t *xc, uint8_t flip, int32_t zp_u,
                          int16_t *P) {
    const int64_t h = d->h, w = d->w, rows = d->h + 2 * d->pad_h + 2;
    const __m256i zpv = _mm256_set1_epi16((int16_t)zp_u);
    const __m128i fl = _mm_set1_epi8((char)flip);
    int16_t *first = P + d->pad_h * DW3_PAIR_PITCH + d->pad_w;
    for (int64_t r = 0; r < rows; ++r)
        _mm256_storeu_si256((__m256i *)(void *)(P + r * DW3_PAIR_PITCH), zpv);
    for (int64_t i = 0; i < h; ++i) {
        const uint8_t *src = xc + i * w;
        int16_t *row = first + i * DW3_PAIR_PITCH;
        if (w >= 8) { /* the first and the last 8 pixels (no read past the row) */
            _mm_storeu_si128((__m128i *)(void *)row,
                             _mm_cvtepu8_epi16(_mm_xor_si128(
                                 _mm_loadl_epi64((const __m128i *)(const void *)src), fl)));
            _mm_storeu_si128(
                (__m128i *)(void *)(row + w - 8),
                _mm_cvtepu8_epi16(_mm_xor_si128(
                    _mm_loadl_epi64((const __m128i *)(const void *)(src + w - 8)), fl)));
        } else {
            for (int64_t j = 0; j < w; ++j) row[j] = (int16_t)(src[j] ^ flip);
        }
    }
}

T256 INL void dw3_pairs(const fxq_conv_dims *d, const int16_t *P, const __m256i *A,
                        const __m256i *B, __m256i corr, uint8_t *oc, int is_u8, const int scheme,
                        const qv *v) {
    const int64_t ow = d->ow, oh_n = d->oh;
    for (int64_t oh = 0; oh < oh_n; oh += 2) {
        const int both = oh + 1 < oh_n;
        const int16_t *src = P + oh * DW3_PAIR_PITCH;
        __m256i e = corr, o = corr, t, b;
        __m128i r16;
        uint8_t *out = oc + oh * ow;
#pragma GCC unroll 3
        for (int r = 0; r < 3; ++r) {
            const int16_t *sr = src + r * DW3_PAIR_PITCH;
            e = _mm256_add_epi32(e, _mm256_madd_epi16(dw3_load2(sr), A[r]));
            o = _mm256_add_epi32(o, _mm256_madd_epi16(dw3_load2(sr + 1), A[r]));
            e = _mm256_add_epi32(e, _mm256_madd_epi16(dw3_load2(sr + 2), B[r]));
            o = _mm256_add_epi32(o, _mm256_madd_epi16(dw3_load2(sr + 3), B[r]));
        }
        /* pixel order within each half, then the halves' 8 bytes side by side: row oh, row oh+1 */
        t = _mm256_blend_epi16(rq_vec(e, scheme, v), _mm256_slli_epi32(rq_vec(o, scheme, v), 16),
                               0xAA);
        b = is_u8 ? _mm256_packus_epi16(t, t) : _mm256_packs_epi16(t, t);
        r16 = _mm_unpacklo_epi64(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
        if (ow == 8 && both) {
            _mm_storeu_si128((__m128i *)(void *)out, r16);
        } else {
            uint8_t tmp[16];
            _mm_storeu_si128((__m128i *)(void *)tmp, r16);
            memcpy(out, tmp, (size_t)ow);
            if (both) memcpy(out + ow, tmp + 8, (size_t)ow);
        }
    }
}

T256 INL void dw3_body(const fxq_conv_plan *p, const uint8_t *x, uint8_t flip, int32_t zp_u,
                       int16_t *P, int64_t wrow, const int scheme) {
    const fxq_conv_dims *d = p->d;
    const int16_t *w16 = (const int16_t *)(const void *)p->wpack; /* [kb][r][2][16][2] */
    const int is_u8 = p->out_dtype == FXQ_DTYPE_UINT8;
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t k = 0; k < d->k; ++k) {
            __m256i A[3], B[3];
            const __m256i corr = _mm256_set1_epi32(p->corr[k]);
            uint8_t *oc = (uint8_t *)p->out + (n * d->k + k) * d->oh * d->ow;
            qv v;
            for (int r = 0; r < 3; ++r) {
                const int16_t *wr = w16 + ((k / 16 * 3 + r) * 2) * 32 + (k % 16) * 2;
                const int16_t w0 = wr[0], w1 = wr[1], w2 = wr[32];
                A[r] = dw3_pair(w0, w1);
                B[r] = dw3_pair(w2, 0);
            }
            qv_load(p->q, k, 1, &v);
            if (wrow == 0) { /* dw3_pairs' geometry (fxq_dwconv3x3_nchw_avx2) */
                const int64_t pb = (d->h + 2 * d->pad_h + 2) * DW3_PAIR_PITCH, nk = n * d->k + k;
                if (nk == 0) dw3_plane16(d, x, flip, zp_u, P);
                if (nk + 1 < d->n * d->k)
                    dw3_plane16(d, x + (nk + 1) * d->h * d->w, flip, zp_u, P + ((nk + 1) & 1) * pb);
                dw3_pairs(d, P + (nk & 1) * pb, A, B, corr, oc, is_u8, scheme, &v);
                continue;
            }
            dw3_plane(d, x + (n * d->c + k) * d->h * d->w, flip, zp_u, P, wrow);
            for (int64_t oh = 0; oh < d->oh; ++oh) {
                const int16_t *src = P + oh * wrow;
                uint8_t *orow = oc + oh * d->ow;
                int64_t ow0 = 0;
                for (; d->ow - ow0 > 16; ow0 += 32) { /* two blocks of 16: more ILP */
                    __m256i e0, o0, e1, o1;
                    dw3_block(src + ow0, wrow, A, B, corr, &e0, &o0);
                    dw3_block(src + ow0 + 16, wrow, A, B, corr, &e1, &o1);
                    dw3_store(orow + ow0, rq_vec(e0, scheme, &v), rq_vec(o0, scheme, &v),
                              d->ow - ow0, is_u8);
                    dw3_store(orow + ow0 + 16, rq_vec(e1, scheme, &v), rq_vec(o1, scheme, &v),
                              d->ow - ow0 - 16, is_u8);
                }
                if (ow0 < d->ow) { /* 1 .. 16 left */
                    __m256i e0, o0;
                    dw3_block(src + ow0, wrow, A, B, corr, &e0, &o0);
                    dw3_store(orow + ow0, rq_vec(e0, scheme, &v), rq_vec(o0, scheme, &v),
                              d->ow - ow0, is_u8);
                }
            }
        }
}

/* FXQ_OK, or 1 when the geometry is not this kernel's (the caller runs the general one) */
T256 int fxq_dwconv3x3_nchw_avx2(const fxq_conv_plan *p, const uint8_t *x, uint8_t flip,
                                 int32_t zp_u, void *scratch, int64_t scratch_bytes) {
    const fxq_conv_dims *d = p->d;
    int64_t wrow;
    if (d->r != 3 || d->s != 3 || d->stride_h != 1 || d->stride_w != 1 ||
        p->layout != FXQ_LAYOUT_NCHW || p->scheme == FXQ_SCHEME_NONE || ((uintptr_t)scratch) % 32)
        return 1;
    /* reads reach column ceil32(ow) + 2 (blocks of 32 outputs, loads at +0..+3); the plane's
     * rows hold pad_w + ceil16(w) + pad_w */
    wrow = (d->ow + 31) / 32 * 32 + 3;
    if (d->pad_w + (d->w + 15) / 16 * 16 + d->pad_w > wrow)
        wrow = d->pad_w + (d->w + 15) / 16 * 16 + d->pad_w;
    wrow = (wrow + 15) / 16 * 16;
    if ((d->h + 2 * d->pad_h) * wrow * 2 > scratch_bytes) return 1;
    if (d->ow <= 8 && d->pad_w + d->w + d->pad_w <= DW3_PAIR_PITCH &&
        2 * (d->h + 2 * d->pad_h + 2) * DW3_PAIR_PITCH * 2 <= scratch_bytes)
        wrow = 0; /* two output rows per block (two planes) */
#define FXQ_DW3_BODY(S) dw3_body(p, x, flip, zp_u, (int16_t *)scratch, wrow, S)
    FXQ_SCHEME_SWITCH(p->scheme, FXQ_DW3_BODY)
#undef FXQ_DW3_BODY
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Fully connected (GEMV per row): one pass over a group of NKB <= 4 blocks of 16 output channels
 * (2 * NKB accumulators) per row, the input quad broadcast once and shared by the group's weight
 * vectors; x' = x_u - 128 and |x'| are made on the fly (xor 0x80 .. and vpabsb), so a call needs
 * no workspace.  Same exactness argument as the conv tile: |x'| <= 128, |w| <= 127.
 * ---------------------------------------------------------------------------------------------- */

/* 4 input bytes from xr + 4q (zero-filled past c: their weights are 0) */
INL uint32_t fc_quad(const uint8_t *xr, int64_t q, int64_t c) {
    uint32_t v = 0;
    if (4 * q + 4 <= c)
        memcpy(&v, xr + 4 * q, 4);
    else
        memcpy(&v, xr + 4 * q, (size_t)(c - 4 * q));
    return v;
}

/* acc[2j + h] = sum over the row of x' * w, channels (block j) * 16 + 8h .. +7 */
T256 INL void fc_u8s8_quad(uint32_t v, const int8_t *wq, const int NKB, __m256i *a) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i xs = _mm256_set1_epi32((int32_t)v);
    const __m256i xa = _mm256_abs_epi8(xs);
#pragma GCC unroll 8
    for (int j = 0; j < 2 * NKB; ++j) {
        const __m256i w = _mm256_load_si256((const __m256i *)(wq + j * 32));
        const __m256i t = _mm256_maddubs_epi16(xa, _mm256_sign_epi8(w, xs));
        a[j] = _mm256_add_epi32(a[j], _mm256_madd_epi16(t, ones));
    }
}

T256 INL void fc_u8s8(const uint8_t *xr, const int8_t *wg, int64_t c, int64_t cq, int64_t qstride,
                      uint32_t flip4, const int NKB, __m256i *acc) {
    const int64_t qfull = c / 4;
    __m256i a[2 * FXQ_FC_GROUP];
    int64_t q = 0;
#pragma GCC unroll 8
    for (int j = 0; j < 2 * NKB; ++j) a[j] = _mm256_setzero_si256();
    for (; q < qfull; ++q) {
        uint32_t v;
        memcpy(&v, xr + 4 * q, 4);
        fc_u8s8_quad(v ^ flip4, wg + q * qstride, NKB, a);
#pragma GCC unroll 8
        for (int j = 0; j < 2 * NKB; ++j) __asm__("" : "+x"(a[j])); /* keep them in registers */
    }
    if (q < cq) fc_u8s8_quad(fc_quad(xr, q, c) ^ flip4, wg + q * qstride, NKB, a);
#pragma GCC unroll 8
    for (int j = 0; j < 2 * NKB; ++j) acc[j] = a[j];
}

/* the exact int16 fallback (a weight is -128): vpmaddwd on (x_u[2p], x_u[2p+1]) pairs */
T256 INL void fc_i16(const uint8_t *xr, const int16_t *wg, int64_t c, int64_t cp, int64_t pstride,
                     uint32_t flip, const int NKB, __m256i *acc) {
    __m256i a[2 * FXQ_FC_GROUP];
    for (int j = 0; j < 2 * NKB; ++j) a[j] = _mm256_setzero_si256();
    for (int64_t p = 0; p < cp; ++p) {
        const uint32_t x0 = (uint32_t)(xr[2 * p] ^ flip);
        const uint32_t x1 = 2 * p + 1 < c ? (uint32_t)(xr[2 * p + 1] ^ flip) : 0;
        const __m256i xb = _mm256_set1_epi32((int32_t)(x0 | (x1 << 16)));
        const int16_t *wp = wg + p * pstride;
#pragma GCC unroll 8
        for (int j = 0; j < 2 * NKB; ++j) {
            a[j] = _mm256_add_epi32(
                a[j], _mm256_madd_epi16(xb, _mm256_load_si256((const __m256i *)(wp + j * 16))));
            __asm__("" : "+x"(a[j]));
        }
    }
    for (int j = 0; j < 2 * NKB; ++j) acc[j] = a[j];
}

/* a whole group (4 blocks), or one block of a short group (gk < 4 blocks per quad) */
T256 NOPC static void fc_u8s8_4(const uint8_t *xr, const int8_t *wg, int64_t c, int64_t cq,
                                uint32_t flip4, __m256i *acc) {
    fc_u8s8(xr, wg, c, cq, 4 * 64, flip4, 4, acc);
}
T256 NOPC static void fc_u8s8_1(const uint8_t *xr, const int8_t *wg, int64_t c, int64_t cq,
                                int64_t gk, uint32_t flip4, __m256i *acc) {
    fc_u8s8(xr, wg, c, cq, gk * 64, flip4, 1, acc);
}
T256 NOPC static void fc_i16_4(const uint8_t *xr, const int16_t *wg, int64_t c, int64_t cp,
                               uint32_t flip, __m256i *acc) {
    fc_i16(xr, wg, c, cp, 4 * 32, flip, 4, acc);
}
T256 NOPC static void fc_i16_1(const uint8_t *xr, const int16_t *wg, int64_t c, int64_t cp,
                               int64_t gk, uint32_t flip, __m256i *acc) {
    fc_i16(xr, wg, c, cp, gk * 32, flip, 1, acc);
}

/* correction, requantization (qvs: one per vector) and store of nv (<= 8) vectors of 8 channels
 * from channel k0 */
T256 INL void fc_store(const fxq_fc_plan *h, const int32_t *corr, __m256i *acc, int nv, int64_t k0,
                       void *out_row, const int scheme, const qv *qvs) {
    for (int j = 0; j < nv; ++j) {
        const int64_t k = k0 + 8 * j;
        const int64_t kv = h->k - k < 8 ? h->k - k : 8;
        __m256i a;
        if (kv <= 0) break; /* padded channels */
        a = _mm256_add_epi32(acc[j], _mm256_loadu_si256((const __m256i *)(corr + k)));
        if (scheme == FXQ_SCHEME_NONE) {
            int32_t *o = (int32_t *)out_row + k;
            if (kv == 8) {
                _mm256_storeu_si256((__m256i *)o, a);
            } else {
                int32_t tmp[8];
                _mm256_storeu_si256((__m256i *)tmp, a);
                memcpy(o, tmp, (size_t)kv * 4);
            }
        } else {
            uint8_t *o = (uint8_t *)out_row + k;
            if (kv == 8) {
                vi_store_bytes(o, rq_vec(a, scheme, &qvs[j]));
            } else {
                uint8_t tmp[8];
                vi_store_bytes(tmp, rq_vec(a, scheme, &qvs[j]));
                memcpy(o, tmp, (size_t)kv);
            }
        }
    }
}

/* groups of output channels outside, rows inside: a group's weights (64 * C bytes) stay in
 * L1/L2 across the rows of a batch, its requantization parameters are loaded once */
T256 INL void fc_rows(const fxq_fc_plan *h, const uint8_t *x, void *out, int64_t n,
                      const int scheme) {
    const int64_t esz = scheme == FXQ_SCHEME_NONE ? 4 : 1;
    const uint32_t flip4 = 0x80808080u ^ (0x01010101u * (uint32_t)h->flip);
    for (int64_t kb = 0; kb < h->kb; kb += FXQ_FC_GROUP) {
        const int gk = h->kb - kb < FXQ_FC_GROUP ? (int)(h->kb - kb) : FXQ_FC_GROUP;
        qv qvs[2 * FXQ_FC_GROUP];
        if (scheme != FXQ_SCHEME_NONE)
            for (int j = 0; j < 2 * gk; ++j) qv_load(&h->q, kb * 16 + 8 * j, 0, &qvs[j]);
        for (int64_t r = 0; r < n; ++r) {
            const uint8_t *xr = x + r * h->c;
            uint8_t *orow = (uint8_t *)out + r * h->k * esz;
            __m256i acc[2 * FXQ_FC_GROUP];
            if (h->has_m128) {
                const int16_t *wg = h->w16 + kb * h->cp * 32;
                if (gk == FXQ_FC_GROUP)
                    fc_i16_4(xr, wg, h->c, h->cp, (uint32_t)h->flip, acc);
                else
                    for (int j = 0; j < gk; ++j) /* a short group: its blocks in turn */
                        fc_i16_1(xr, wg + j * 32, h->c, h->cp, gk, (uint32_t)h->flip, acc + 2 * j);
                fc_store(h, h->corr, acc, 2 * gk, kb * 16, orow, scheme, qvs);
            } else {
                const int8_t *wg = h->w8 + kb * h->cq * 64;
                if (gk == FXQ_FC_GROUP)
                    fc_u8s8_4(xr, wg, h->c, h->cq, flip4, acc);
                else
                    for (int j = 0; j < gk; ++j)
                        fc_u8s8_1(xr, wg + j * 64, h->c, h->cq, gk, flip4, acc + 2 * j);
                fc_store(h, h->corr2, acc, 2 * gk, kb * 16, orow, scheme, qvs);
            }
        }
    }
}

T256 int fxq_fc_avx2(const fxq_fc_plan *h, const uint8_t *x, void *out, int64_t n) {
    if (h->scheme == FXQ_SCHEME_NONE) {
        fc_rows(h, x, out, n, FXQ_SCHEME_NONE);
        return FXQ_OK;
    }
#define FXQ_FC_BODY(S) fc_rows(h, x, out, n, S)
    FXQ_SCHEME_SWITCH(h->scheme, FXQ_FC_BODY)
#undef FXQ_FC_BODY
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Throughput probes (AVX2): ymm12/ymm13 operands, ymm14 = ones, 6 independent chains
 * ---------------------------------------------------------------------------------------------- */
#define FXQ_MW(t, a) \
    "vpmaddwd %%ymm12, %%ymm13, %%ymm" #t "\n\tvpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define FXQ_TR(t, a)                                                                      \
    "vpmaddubsw %%ymm13, %%ymm12, %%ymm" #t "\n\tvpmaddwd %%ymm14, %%ymm" #t ", %%ymm" #t \
    "\n\tvpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define FXQ_QU(t, a)                                                                              \
    "vpsignb %%ymm12, %%ymm13, %%ymm" #t "\n\tvpmaddubsw %%ymm" #t ", %%ymm12, %%ymm" #t          \
    "\n\tvpmaddwd %%ymm14, %%ymm" #t ", %%ymm" #t "\n\tvpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a \
    "\n\t"
#define FXQ_XQ(t, a)                                                                              \
    "vpxor %%ymm12, %%ymm13, %%ymm" #t "\n\tvpmaddubsw %%ymm" #t ", %%ymm12, %%ymm" #t            \
    "\n\tvpmaddwd %%ymm14, %%ymm" #t ", %%ymm" #t "\n\tvpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a \
    "\n\t"
#define FXQ_CLOB                                                                             \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
        "xmm11", "xmm12", "xmm13", "xmm14", "cc"
#define FXQ_PROBE_LOOP(BODY)                                                                    \
    __asm__ volatile(                                                                           \
        "vpxor %%ymm12, %%ymm12, %%ymm12\n\tvpxor %%ymm13, %%ymm13, %%ymm13\n\t"                \
        "vpxor %%ymm14, %%ymm14, %%ymm14\n\t1:\n\t" BODY(0, 6) BODY(1, 7) BODY(2, 8) BODY(3, 9) \
            BODY(4, 10) BODY(5, 11) "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"                        \
        : "+r"(iters)                                                                           \
        :                                                                                       \
        : FXQ_CLOB)

T256 int64_t fxq_probe_avx2(int kind, int64_t iters) {
    const int64_t n = iters;
    if (iters <= 0) return 0;
    switch (kind) {
        case FXQ_PROBE_VPMADDWD_YMM:
            FXQ_PROBE_LOOP(FXQ_MW);
            return n * 6 * 16;
        case FXQ_PROBE_VPMADDUBSW_TRIPLE:
            FXQ_PROBE_LOOP(FXQ_TR);
            return n * 6 * 32;
        case FXQ_PROBE_VPSIGNB_QUAD:
            FXQ_PROBE_LOOP(FXQ_QU);
            return n * 6 * 32;
        case FXQ_PROBE_VPXOR_QUAD:
            FXQ_PROBE_LOOP(FXQ_XQ);
            return n * 6 * 32;
        default:
            return FXQ_ERR_ARG;
    }
}

#endif /* FXQ_HAVE_X86 */
