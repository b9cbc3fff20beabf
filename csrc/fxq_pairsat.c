/* fxq_pairsat.c -- the int16 pair-saturating u8 x s8 accumulation of x86 engines without VNNI.
 *
 * ONNX Runtime (MLAS), FBGEMM and oneDNN multiply u8 activations by s8 weights with vpmaddubsw,
 * which adds two adjacent products and saturates the pair sum to int16, then widen with vpmaddwd
 * by ones and add in int32.  This file computes those accumulators for any pairing, given as a
 * packed reduction layout (fxq_pairsat_spec.layout: for each slot of the packed reduction vector
 * of one group, an index into the flat (r, s, c) order or -1 for a zero slot; slots 2j and 2j+1
 * form pair j), the model of fxq_explore.kernels.accumulate.
 *
 *   acc[n, oh, ow, k] = sum_j clamp16(a[2j] w[2j] + a[2j+1] w[2j+1])          (raw operands)
 *                       - zw[k] * sum_i a[i]  +  sum_{taps t in T} zx (zw[k] cg - sum_c w[k, c, t])
 *
 * a = the raw activations the engine multiplies: padded pixels hold the zero point
 * (FXQ_PAIRSAT_PAD_ZERO_POINT, T = every tap: MLAS, FBGEMM) or 0 (FXQ_PAIRSAT_PAD_ZERO, T = the
 * taps inside the image: oneDNN skips padded taps).  The second line is the exact zero-point
 * correction the engines apply in int32, so acc equals the exact sum (x - zx)(w - zw) plus the
 * saturation error.
 *
 * Structure (what MLAS's im2col + QGEMM path does): the input is copied once per image into a
 * padded NHWC buffer; per group, blocks of FXQ_PS_MB output pixels are gathered into packed rows
 * (runs of consecutive source bytes, precomputed from the layout: memcpy per run); the weights are
 * packed at layer construction as [group][16-channel block][kp/4][16][4] int8; the kernel
 * broadcasts 4 activation bytes and multiplies them by 16 channels x 4 weight bytes:
 *   scalar: the definition, clamp16 per pair in C;
 *   AVX2:   vpbroadcastd, vpmaddubsw (the saturation), vpmaddwd by ones, vpaddd -- the engines'
 *           own instruction sequence (FXQ_PS_MR pixels x 16 channels per register tile);
 *   AVX-512 (BW, no VNNI needed): the same on zmm, what MLAS/FBGEMM/oneDNN run on AVX-512 CPUs
 *           without VNNI (FXQ_PS_MR512 pixels x 32 channels; 4-byte groups, hence the pairs,
 *           are the same on every vector width).
 * int32 lanes wrap; the caller has bounded the true accumulator inside int32, so the wrapped sums
 * give it exactly.  The correction is added at the store; pixels with padded taps under
 * FXQ_PAIRSAT_PAD_ZERO get a scalar fix-up.  Never allocates; every size is checked. */
#include <stdint.h>
#include <string.h>
#include "fxq_internal.h"

#define FXQ_PS_MB 96   /* output pixels per gathered block (a multiple of FXQ_PS_MR*) */
#define FXQ_PS_MR 4    /* output pixels per AVX2 register tile */
#define FXQ_PS_MR512 8 /* output pixels per AVX-512 register tile (x 32 channels) */
#define FXQ_PS_MROW 8  /* gathered rows are padded (with zeros) to a multiple of this */
#define FXQ_PS_LIMIT ((int64_t)1 << 40)
/* the gathered block holds whole register tiles: rows are padded up to FXQ_PS_MROW */
typedef char ps_tiles_fit[(FXQ_PS_MB % FXQ_PS_MROW == 0 && FXQ_PS_MROW % FXQ_PS_MR == 0 &&
                           FXQ_PS_MROW % FXQ_PS_MR512 == 0)
                              ? 1
                              : -1];

/* the correction table: corr[0 .. K) zw, [K .. 2K) sum over all taps of tapcorr, then
 * tapcorr[k][t] = zx (zw[k] cg - sum_c w[k, c, t]), K * r * s entries */

static int64_t ps_mul(int64_t a, int64_t b) {
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > FXQ_PS_LIMIT / a) return -1;
    return a * b;
}

static int64_t ps_align(int64_t v) {
    return (v + 63) & ~(int64_t)63;
}

static int ps_check_dims(const fxq_conv_dims *d, const fxq_pairsat_spec *sp) {
    int64_t g, cg, kg, i, taps;
    if (!d || !sp || !sp->layout) return FXQ_ERR_ARG;
    g = d->groups == 0 ? 1 : d->groups;
    if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1 || d->k < 1 || d->r < 1 || d->s < 1)
        return FXQ_ERR_ARG;
    if (d->n > FXQ_PS_LIMIT || d->c > FXQ_PS_LIMIT || d->h > FXQ_PS_LIMIT || d->w > FXQ_PS_LIMIT ||
        d->k > FXQ_PS_LIMIT || d->r > FXQ_PS_LIMIT || d->s > FXQ_PS_LIMIT)
        return FXQ_ERR_ARG;
    if (d->stride_h < 1 || d->stride_w < 1 || d->pad_h < 0 || d->pad_w < 0) return FXQ_ERR_ARG;
    if (d->pad_h > FXQ_PS_LIMIT || d->pad_w > FXQ_PS_LIMIT) return FXQ_ERR_ARG;
    if (g < 1 || d->c % g || d->k % g) return FXQ_ERR_ARG;
    if (d->h + 2 * d->pad_h < d->r || d->w + 2 * d->pad_w < d->s) return FXQ_ERR_ARG;
    if (d->oh != (d->h + 2 * d->pad_h - d->r) / d->stride_h + 1) return FXQ_ERR_ARG;
    if (d->ow != (d->w + 2 * d->pad_w - d->s) / d->stride_w + 1) return FXQ_ERR_ARG;
    if (sp->pad_mode != FXQ_PAIRSAT_PAD_ZERO_POINT && sp->pad_mode != FXQ_PAIRSAT_PAD_ZERO)
        return FXQ_ERR_ARG;
    if (sp->x_zero_point < 0 || sp->x_zero_point > 255) return FXQ_ERR_ARG;
    cg = d->c / g;
    kg = d->k / g;
    (void)kg;
    taps = ps_mul(d->r, d->s);
    if (taps < 0 || ps_mul(taps, cg) < 0) return FXQ_ERR_ARG;
    if (sp->kp < 4 || sp->kp % 4 || sp->kp > FXQ_PS_LIMIT) return FXQ_ERR_ARG;
    for (i = 0; i < sp->kp; i++)
        if (sp->layout[i] < -1 || sp->layout[i] >= taps * cg) return FXQ_ERR_ARG;
    return FXQ_OK;
}

static int64_t ps_groups(const fxq_conv_dims *d) {
    return d->groups == 0 ? 1 : d->groups;
}

int64_t fxq_pairsat_packed_weight_size(const fxq_conv_dims *d, const fxq_pairsat_spec *sp) {
    int64_t g, kbg;
    if (ps_check_dims(d, sp) != FXQ_OK) return -1;
    g = ps_groups(d);
    kbg = (d->k / g + 15) / 16;
    return ps_mul(ps_mul(g, kbg), ps_mul(sp->kp, 16));
}

int64_t fxq_pairsat_corr_len(const fxq_conv_dims *d, const fxq_pairsat_spec *sp) {
    if (ps_check_dims(d, sp) != FXQ_OK) return -1;
    return ps_mul(d->k, d->r * d->s + 2);
}

int fxq_pairsat_pack_weights(const fxq_conv_dims *d, const fxq_pairsat_spec *sp, const int8_t *w,
                             const int32_t *w_zero_point, void *wpack, int64_t wpack_bytes,
                             int32_t *corr, int64_t corr_len) {
    int64_t g, cg, kg, kbg, taps, kq, gi, kk, i, t, c;
    int8_t *wp = (int8_t *)wpack;
    const int64_t zx = sp ? sp->x_zero_point : 0;
    if (ps_check_dims(d, sp) != FXQ_OK || !w || !w_zero_point || !wpack || !corr)
        return FXQ_ERR_ARG;
    if (wpack_bytes < fxq_pairsat_packed_weight_size(d, sp)) return FXQ_ERR_ARG;
    if (corr_len < fxq_pairsat_corr_len(d, sp)) return FXQ_ERR_ARG;
    g = ps_groups(d);
    cg = d->c / g;
    kg = d->k / g;
    kbg = (kg + 15) / 16;
    taps = d->r * d->s;
    kq = sp->kp / 4;
    memset(wp, 0, (size_t)fxq_pairsat_packed_weight_size(d, sp));
    for (gi = 0; gi < g; gi++) {
        for (kk = 0; kk < kg; kk++) {
            const int64_t k = gi * kg + kk;
            const int8_t *wk = w + k * cg * taps; /* OIHW: [c][r][s] */
            int8_t *dst = wp + ((gi * kbg + kk / 16) * kq * 16) * 4;
            for (i = 0; i < sp->kp; i++) {
                const int64_t idx = sp->layout[i];
                if (idx < 0) continue;
                t = idx / cg;
                c = idx % cg;
                dst[((i / 4) * 16 + kk % 16) * 4 + i % 4] = wk[c * taps + t];
            }
        }
    }
    for (kk = 0; kk < d->k; kk++) {
        const int8_t *wk = w + kk * cg * taps;
        const int64_t zw = w_zero_point[kk];
        int64_t full = 0;
        for (t = 0; t < taps; t++) {
            int64_t ws = 0, v;
            for (c = 0; c < cg; c++) ws += wk[c * taps + t];
            v = zx * (zw * cg - ws);
            corr[2 * d->k + kk * taps + t] = (int32_t)(uint32_t)(uint64_t)v;
            full += v;
        }
        corr[kk] = (int32_t)zw;
        corr[d->k + kk] = (int32_t)(uint32_t)(uint64_t)full;
    }
    return FXQ_OK;
}

/* workspace: padded NHWC image | gathered block | runs (2 int64 per slot) | row sums */
typedef struct {
    int64_t hp, wp, xp_bytes, a_bytes, runs_bytes, rs_bytes, total;
} ps_ws;

static int ps_plan(const fxq_conv_dims *d, const fxq_pairsat_spec *sp, ps_ws *L) {
    L->hp = d->h + 2 * d->pad_h;
    L->wp = d->w + 2 * d->pad_w;
    L->xp_bytes = ps_mul(ps_mul(L->hp, L->wp), d->c);
    L->a_bytes = ps_mul(FXQ_PS_MB, sp->kp);
    L->runs_bytes = ps_mul(sp->kp, 2 * (int64_t)sizeof(int64_t));
    L->rs_bytes = FXQ_PS_MB * (int64_t)sizeof(int32_t);
    if (L->xp_bytes < 0 || L->a_bytes < 0 || L->runs_bytes < 0) return FXQ_ERR_ARG;
    L->total = ps_align(L->xp_bytes) + ps_align(L->a_bytes) + ps_align(L->runs_bytes) +
               ps_align(L->rs_bytes) + 64;
    if (L->total > FXQ_PS_LIMIT) return FXQ_ERR_ARG;
    return FXQ_OK;
}

int64_t fxq_pairsat_workspace_size(const fxq_conv_dims *d, const fxq_pairsat_spec *sp) {
    ps_ws L;
    if (ps_check_dims(d, sp) != FXQ_OK || ps_plan(d, sp, &L) != FXQ_OK) return -1;
    return L.total;
}

/* arguments of one block kernel call */
typedef struct {
    const uint8_t *a;    /* [mbpad][kp] gathered rows */
    const int8_t *wp;    /* this group's packed weights [kbg][kp/4][16][4] */
    const int32_t *rsum; /* [mb] row sums (has_zw only) */
    const int32_t *zw;   /* this group's zw (corr + g kg) */
    const int32_t *full; /* this group's full corrections */
    int32_t *out;        /* row 0, channel g kg of the block in the NHWC output */
    int64_t mb, kp, kg, ldo;
    int has_zw;
} ps_block;

static int32_t ps_clamp16(int32_t v) {
    return v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
}

static void ps_block_scalar(const ps_block *b) {
    const int64_t kq = b->kp / 4, kbg = (b->kg + 15) / 16;
    int64_t m, kk, j;
    for (m = 0; m < b->mb; m++) {
        const uint8_t *a = b->a + m * b->kp;
        for (kk = 0; kk < b->kg; kk++) {
            const int8_t *w = b->wp + (kk / 16) * kq * 64 + (kk % 16) * 4;
            int64_t acc = 0;
            (void)kbg;
            for (j = 0; j < b->kp; j += 2) {
                const int8_t *wj = w + (j / 4) * 64 + j % 4;
                acc += ps_clamp16((int32_t)a[j] * wj[0] + (int32_t)a[j + 1] * wj[1]);
            }
            acc += b->full[kk];
            if (b->has_zw) acc -= (int64_t)b->zw[kk] * b->rsum[m];
            b->out[m * b->ldo + kk] = (int32_t)(uint32_t)(uint64_t)acc;
        }
    }
}

#ifdef FXQ_HAVE_X86
#include <immintrin.h>
#define PS_AVX2 __attribute__((target("avx2")))

PS_AVX2 static void ps_store_avx2(const ps_block *b, int64_t m, int64_t k0, int64_t nk, __m256i lo,
                                  __m256i hi) {
    int32_t tmp[16];
    int32_t *dst = b->out + m * b->ldo + k0;
    if (nk == 16) {
        lo = _mm256_add_epi32(lo, _mm256_loadu_si256((const __m256i *)(b->full + k0)));
        hi = _mm256_add_epi32(hi, _mm256_loadu_si256((const __m256i *)(b->full + k0 + 8)));
        if (b->has_zw) {
            const __m256i rs = _mm256_set1_epi32(b->rsum[m]);
            lo = _mm256_sub_epi32(
                lo, _mm256_mullo_epi32(rs, _mm256_loadu_si256((const __m256i *)(b->zw + k0))));
            hi = _mm256_sub_epi32(
                hi, _mm256_mullo_epi32(rs, _mm256_loadu_si256((const __m256i *)(b->zw + k0 + 8))));
        }
        _mm256_storeu_si256((__m256i *)dst, lo);
        _mm256_storeu_si256((__m256i *)(dst + 8), hi);
        return;
    }
    _mm256_storeu_si256((__m256i *)tmp, lo);
    _mm256_storeu_si256((__m256i *)(tmp + 8), hi);
    for (int64_t i = 0; i < nk; i++) {
        uint32_t v = (uint32_t)tmp[i] + (uint32_t)b->full[k0 + i];
        if (b->has_zw) v -= (uint32_t)b->zw[k0 + i] * (uint32_t)b->rsum[m];
        dst[i] = (int32_t)v;
    }
}

/* FXQ_PS_MR pixels x 16 channels: per 4 reduction bytes, one vpbroadcastd per pixel and two
 * vpmaddubsw + vpmaddwd + vpaddd per pixel (8 channels each) */
PS_AVX2 static void ps_block_avx2(const ps_block *b) {
    const int64_t kq = b->kp / 4, kbg = (b->kg + 15) / 16;
    const __m256i ones = _mm256_set1_epi16(1);
    int64_t kb, m, q;
    for (kb = 0; kb < kbg; kb++) {
        const int8_t *wb = b->wp + kb * kq * 64;
        const int64_t nk = b->kg - kb * 16 < 16 ? b->kg - kb * 16 : 16;
        for (m = 0; m < b->mb; m += FXQ_PS_MR) {
            const uint8_t *a0 = b->a + m * b->kp;
            const uint8_t *a1 = a0 + b->kp, *a2 = a1 + b->kp, *a3 = a2 + b->kp;
            __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
            __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            for (q = 0; q < kq; q++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + q * 64));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + q * 64 + 32));
                int32_t v;
                __m256i x;
#define PS_ROW(ap, lo, hi)                                                           \
    memcpy(&v, (ap) + 4 * q, 4);                                                     \
    x = _mm256_set1_epi32(v);                                                        \
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), ones)); \
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), ones));
                PS_ROW(a0, c00, c01)
                PS_ROW(a1, c10, c11)
                PS_ROW(a2, c20, c21)
                PS_ROW(a3, c30, c31)
#undef PS_ROW
            }
            ps_store_avx2(b, m, kb * 16, nk, c00, c01);
            if (m + 1 < b->mb) ps_store_avx2(b, m + 1, kb * 16, nk, c10, c11);
            if (m + 2 < b->mb) ps_store_avx2(b, m + 2, kb * 16, nk, c20, c21);
            if (m + 3 < b->mb) ps_store_avx2(b, m + 3, kb * 16, nk, c30, c31);
        }
    }
}

#define PS_AVX512 __attribute__((target("avx512f,avx512bw")))
#define PS_INL static inline __attribute__((always_inline))

PS_AVX512 PS_INL void ps_store_avx512(const ps_block *b, int64_t m, int64_t k0, int64_t nk,
                                      __m512i v) {
    const __mmask16 mask = (__mmask16)(nk >= 16 ? 0xFFFF : ((1u << nk) - 1));
    v = _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(mask, b->full + k0));
    if (b->has_zw)
        v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(b->rsum[m]),
                                                   _mm512_maskz_loadu_epi32(mask, b->zw + k0)));
    _mm512_mask_storeu_epi32(b->out + m * b->ldo + k0, mask, v);
}

/* FXQ_PS_MR512 pixels x NB (1 or 2) blocks of 16 channels */
PS_AVX512 PS_INL void ps_tile_avx512(const ps_block *b, int64_t kb, int64_t m, const int NB) {
    const int64_t kq = b->kp / 4;
    const __m512i ones = _mm512_set1_epi16(1);
    const int8_t *w0p = b->wp + kb * kq * 64, *w1p = w0p + kq * 64;
    const uint8_t *a = b->a + m * b->kp;
    __m512i acc[FXQ_PS_MR512][2];
    int i, j;
    int64_t q;
    for (i = 0; i < FXQ_PS_MR512; i++)
        for (j = 0; j < 2; j++) acc[i][j] = _mm512_setzero_si512();
    for (q = 0; q < kq; q++) {
        const __m512i w0 = _mm512_loadu_si512((const void *)(w0p + q * 64));
        const __m512i w1 = NB == 2 ? _mm512_loadu_si512((const void *)(w1p + q * 64)) : w0;
        for (i = 0; i < FXQ_PS_MR512; i++) {
            int32_t v;
            __m512i x;
            memcpy(&v, a + i * b->kp + 4 * q, 4);
            x = _mm512_set1_epi32(v);
            acc[i][0] =
                _mm512_add_epi32(acc[i][0], _mm512_madd_epi16(_mm512_maddubs_epi16(x, w0), ones));
            if (NB == 2)
                acc[i][1] = _mm512_add_epi32(acc[i][1],
                                             _mm512_madd_epi16(_mm512_maddubs_epi16(x, w1), ones));
        }
    }
    for (i = 0; i < FXQ_PS_MR512 && m + i < b->mb; i++)
        for (j = 0; j < NB; j++) {
            const int64_t k0 = (kb + j) * 16;
            ps_store_avx512(b, m + i, k0, b->kg - k0, acc[i][j]);
        }
}

PS_AVX512 static void ps_block_avx512(const ps_block *b) {
    const int64_t kbg = (b->kg + 15) / 16;
    int64_t kb, m;
    for (kb = 0; kb < kbg; kb += 2)
        for (m = 0; m < b->mb; m += FXQ_PS_MR512) {
            if (kb + 1 < kbg)
                ps_tile_avx512(b, kb, m, 2);
            else
                ps_tile_avx512(b, kb, m, 1);
        }
}
#endif

static int ps_resolve_path(int path) {
    const int f = fxq_cpu_features();
    const int avx2 = (f & FXQ_CPU_AVX2) != 0;
    const int avx512 =
        (f & (FXQ_CPU_AVX512F | FXQ_CPU_AVX512BW)) == (FXQ_CPU_AVX512F | FXQ_CPU_AVX512BW);
    if (path == FXQ_PATH_AUTO)
        return avx512 ? FXQ_PATH_AVX512 : (avx2 ? FXQ_PATH_AVX2 : FXQ_PATH_SCALAR);
    if (path == FXQ_PATH_SCALAR) return path;
#ifdef FXQ_HAVE_X86
    if (path == FXQ_PATH_AVX2) return avx2 ? path : FXQ_ERR_PATH;
    if (path == FXQ_PATH_AVX512) return avx512 ? path : FXQ_ERR_PATH;
#endif
    return path == FXQ_PATH_AVX2 || path == FXQ_PATH_AVX512 ? FXQ_ERR_PATH : FXQ_ERR_ARG;
}

int fxq_pairsat_path_available(int path) {
    return path != FXQ_PATH_AUTO && ps_resolve_path(path) == path;
}

int fxq_pairsat_conv2d(const fxq_conv_dims *d, const fxq_pairsat_spec *sp, const uint8_t *x,
                       const void *wpack, int64_t wpack_bytes, const int32_t *corr,
                       int64_t corr_len, int32_t *out, int64_t out_len, void *workspace,
                       int64_t workspace_bytes, int path) {
    ps_ws L;
    int64_t g, cg, kg, kbg, taps, mtot, nruns, i, n, gi, m0, c, ih, iw;
    uint8_t *base, *xp, *abuf;
    int64_t *runs;
    int32_t *rsum;
    int has_zw = 0, st;
    const uint8_t padv =
        sp && sp->pad_mode == FXQ_PAIRSAT_PAD_ZERO_POINT ? (uint8_t)sp->x_zero_point : 0;
    if (ps_check_dims(d, sp) != FXQ_OK || !x || !wpack || !corr || !out || !workspace)
        return FXQ_ERR_ARG;
    st = ps_resolve_path(path);
    if (st < 0) return st;
    path = st;
    if (ps_plan(d, sp, &L) != FXQ_OK || workspace_bytes < L.total) return FXQ_ERR_WORKSPACE;
    if (wpack_bytes < fxq_pairsat_packed_weight_size(d, sp)) return FXQ_ERR_ARG;
    if (corr_len < fxq_pairsat_corr_len(d, sp)) return FXQ_ERR_ARG;
    mtot = ps_mul(d->oh, d->ow);
    if (mtot < 0 || out_len < ps_mul(ps_mul(d->n, mtot), d->k) || ps_mul(d->n, mtot) < 0)
        return FXQ_ERR_ARG;
    g = ps_groups(d);
    cg = d->c / g;
    kg = d->k / g;
    kbg = (kg + 15) / 16;
    taps = d->r * d->s;
    for (i = 0; i < d->k; i++) has_zw |= corr[i] != 0;

    base = (uint8_t *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    xp = base;
    abuf = xp + ps_align(L.xp_bytes);
    runs = (int64_t *)(abuf + ps_align(L.a_bytes));
    rsum = (int32_t *)((uint8_t *)runs + ps_align(L.runs_bytes));

    /* runs of the gather: (source offset relative to the pixel's window in the padded NHWC
     * image, or -1 for zeros; length), merged while consecutive */
    nruns = 0;
    for (i = 0; i < sp->kp; i++) {
        const int64_t idx = sp->layout[i];
        int64_t off = -1;
        if (idx >= 0) {
            const int64_t t = idx / cg, ci = idx % cg;
            off = ((t / d->s) * L.wp + t % d->s) * d->c + ci;
        }
        if (nruns > 0) {
            int64_t *r = runs + 2 * (nruns - 1);
            if ((off < 0 && r[0] < 0) || (off >= 0 && r[0] >= 0 && off == r[0] + r[1])) {
                r[1]++;
                continue;
            }
        }
        runs[2 * nruns] = off;
        runs[2 * nruns + 1] = 1;
        nruns++;
    }

    for (n = 0; n < d->n; n++) {
        const uint8_t *xn = x + n * d->c * d->h * d->w;
        memset(xp, padv, (size_t)L.xp_bytes);
        for (ih = 0; ih < d->h; ih++)
            for (iw = 0; iw < d->w; iw++) {
                uint8_t *dst = xp + ((ih + d->pad_h) * L.wp + iw + d->pad_w) * d->c;
                const uint8_t *src = xn + ih * d->w + iw;
                for (c = 0; c < d->c; c++) dst[c] = src[c * d->h * d->w];
            }
        for (gi = 0; gi < g; gi++) {
            for (m0 = 0; m0 < mtot; m0 += FXQ_PS_MB) {
                const int64_t mb = mtot - m0 < FXQ_PS_MB ? mtot - m0 : FXQ_PS_MB;
                const int64_t mbpad = (mb + FXQ_PS_MROW - 1) / FXQ_PS_MROW * FXQ_PS_MROW;
                ps_block b;
                int64_t m;
                for (m = 0; m < mb; m++) {
                    const int64_t oh = (m0 + m) / d->ow, ow = (m0 + m) % d->ow;
                    const uint8_t *win =
                        xp + (oh * d->stride_h * L.wp + ow * d->stride_w) * d->c + gi * cg;
                    uint8_t *arow = abuf + m * sp->kp;
                    int64_t ri, pos = 0;
                    for (ri = 0; ri < nruns; ri++) {
                        const int64_t off = runs[2 * ri], len = runs[2 * ri + 1];
                        if (off < 0)
                            memset(arow + pos, 0, (size_t)len);
                        else
                            memcpy(arow + pos, win + off, (size_t)len);
                        pos += len;
                    }
                    if (has_zw) {
                        uint32_t sum = 0;
                        for (i = 0; i < sp->kp; i++) sum += arow[i];
                        rsum[m] = (int32_t)sum;
                    }
                }
                if (mbpad > mb) memset(abuf + mb * sp->kp, 0, (size_t)((mbpad - mb) * sp->kp));
                b.a = abuf;
                b.wp = (const int8_t *)wpack + gi * kbg * sp->kp * 16;
                b.rsum = rsum;
                b.zw = corr + gi * kg;
                b.full = corr + d->k + gi * kg;
                b.out = out + (n * mtot + m0) * d->k + gi * kg;
                b.mb = mb;
                b.kp = sp->kp;
                b.kg = kg;
                b.ldo = d->k;
                b.has_zw = has_zw;
#ifdef FXQ_HAVE_X86
                if (path == FXQ_PATH_AVX512)
                    ps_block_avx512(&b);
                else if (path == FXQ_PATH_AVX2)
                    ps_block_avx2(&b);
                else
#endif
                    ps_block_scalar(&b);
                /* padded taps skipped: replace the all-taps correction on border pixels */
                if (sp->pad_mode != FXQ_PAIRSAT_PAD_ZERO) continue;
                for (m = 0; m < mb; m++) {
                    const int64_t oh = (m0 + m) / d->ow, ow = (m0 + m) % d->ow;
                    const int64_t y0 = oh * d->stride_h - d->pad_h,
                                  x0 = ow * d->stride_w - d->pad_w;
                    int64_t kk, t;
                    if (y0 >= 0 && y0 + d->r <= d->h && x0 >= 0 && x0 + d->s <= d->w) continue;
                    for (kk = 0; kk < kg; kk++) {
                        const int64_t k = gi * kg + kk;
                        const int32_t *tc = corr + 2 * d->k + k * taps;
                        uint32_t v = (uint32_t)b.out[m * d->k + kk] - (uint32_t)corr[d->k + k];
                        for (t = 0; t < taps; t++) {
                            const int64_t yy = y0 + t / d->s, xx = x0 + t % d->s;
                            if (yy >= 0 && yy < d->h && xx >= 0 && xx < d->w) v += (uint32_t)tc[t];
                        }
                        b.out[m * d->k + kk] = (int32_t)v;
                    }
                }
            }
        }
    }
    return FXQ_OK;
}
