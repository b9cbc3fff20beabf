/* fxq_avx512.c -- AVX-512 VNNI path: direct convolution on the packed NCHW16c operands with a
 * register tile of 14 output pixels x 32 output channels (28 zmm accumulators, vpdpbusd).  The
 * requantization epilogue, transposes, packing and the driver come from fxq_simd.h, instantiated
 * here with the AVX-512 primitives (16 int32 lanes, lane = output channel).
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

/* ------------------------------------------------------------------------------------------------
 * The primitive set of fxq_simd.h
 * ---------------------------------------------------------------------------------------------- */
#define FXQ_T T512
#define VI __m512i
#define VF __m512
#define VL 16
#define FXQ_TILE TILE
#define FXQ_NKB 2
#define FXQ_ISA(name) name##_avx512
#define RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

T512 INL VI vi_load(const int32_t *p) {
    return _mm512_loadu_si512(p);
}
T512 INL void vi_store(int32_t *p, VI a) {
    _mm512_storeu_si512(p, a);
}
T512 INL VI vi_load64(const int64_t *p) {
    return _mm512_loadu_si512(p);
}
T512 INL VI vi_set1(int32_t x) {
    return _mm512_set1_epi32(x);
}
T512 INL VI vi_set1_64(int64_t x) {
    return _mm512_set1_epi64(x);
}
T512 INL VI vi_zero(void) {
    return _mm512_setzero_si512();
}
T512 INL VI vi_add(VI a, VI b) {
    return _mm512_add_epi32(a, b);
}
T512 INL VI vi_sub(VI a, VI b) {
    return _mm512_sub_epi32(a, b);
}
T512 INL VI vi_min(VI a, VI b) {
    return _mm512_min_epi32(a, b);
}
T512 INL VI vi_max(VI a, VI b) {
    return _mm512_max_epi32(a, b);
}
T512 INL VI vi_and(VI a, VI b) {
    return _mm512_and_si512(a, b);
}
T512 INL VI vi_xor(VI a, VI b) {
    return _mm512_xor_si512(a, b);
}
T512 INL VI vi_sllv(VI a, VI n) {
    return _mm512_sllv_epi32(a, n);
}
T512 INL VI vi_srav(VI a, VI n) {
    return _mm512_srav_epi32(a, n);
}
T512 INL VI vi_srai31(VI a) {
    return _mm512_srai_epi32(a, 31);
}
T512 INL VI vi_srai1(VI a) {
    return _mm512_srai_epi32(a, 1);
}
T512 INL VI vi_mul_even(VI a, VI b) {
    return _mm512_mul_epi32(a, b);
}
T512 INL VI vi_odd_to_even(VI a) {
    return _mm512_srli_epi64(a, 32);
}
T512 INL VI vi_add64(VI a, VI b) {
    return _mm512_add_epi64(a, b);
}
T512 INL VI vi_even_hi31(VI p) {
    return _mm512_srli_epi64(p, 31);
}
T512 INL VI vi_odd_from_hi31(VI p) {
    return _mm512_slli_epi64(p, 1);
}
T512 INL VI vi_odd_from_lo(VI p) {
    return _mm512_slli_epi64(p, 32);
}
T512 INL VI vi_blend_odd(VI e, VI o) {
    return _mm512_mask_blend_epi32(0xAAAA, e, o);
}
T512 INL VI vi_inc_gt(VI r, VI a, VI b) {
    return _mm512_mask_add_epi32(r, _mm512_cmpgt_epi32_mask(a, b), r, _mm512_set1_epi32(1));
}
/* the 64-bit forms of tflite and tflite_single in fxq_simd.h */
#define FXQ_VI_SRAV64 1
T512 INL VI vi_srav64(VI p, VI n) {
    return _mm512_srav_epi64(p, n);
}
/* (t - (bit 31 of s ? c : 0)) >> n in int64 lanes (s: the int32 operand in each low half) */
T512 INL VI vi_sub_if_neg_srav64(VI t, VI s, VI c, VI n) {
    const __mmask8 neg = _mm512_test_epi64_mask(s, _mm512_set1_epi64(0x80000000LL));
    return _mm512_srav_epi64(_mm512_mask_sub_epi64(t, neg, t, c), n);
}
/* the low int32 of each int64 lane of e (to the even lanes) and of o (to the odd lanes) */
T512 INL VI vi_lo32_pair(VI e, VI o) {
    const __m512i idx =
        _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    return _mm512_permutex2var_epi32(e, idx, o);
}
T512 INL VI vi_sllv64(VI a, VI n) {
    return _mm512_sllv_epi64(a, n);
}
/* 1 if every int64 lane of a is in [lo, hi] */
T512 INL int vi_all_in64(VI a, int64_t lo, int64_t hi) {
    return (_mm512_cmplt_epi64_mask(a, _mm512_set1_epi64(lo)) |
            _mm512_cmpgt_epi64_mask(a, _mm512_set1_epi64(hi))) == 0;
}
/* the int32 lanes narrowed with signed saturation (vpmovsdb); flip: bit 7 of each byte flipped */
T512 INL void vi_store_bytes_sat(uint8_t *dst, VI r, int flip) {
    __m128i b = _mm512_cvtsepi32_epi8(r);
    if (flip) b = _mm_xor_si128(b, _mm_set1_epi8((char)0x80));
    _mm_storeu_si128((__m128i *)dst, b);
}
/* four vectors of int32 results -> 64 bytes, vector k's 16 lanes at bytes 16k ..: packs work in
 * 128-bit lanes, so after them dword 4L + k holds lanes 4L .. 4L+3 of vector k; one permute puts
 * them in order.  U8: unsigned saturation of the last pack; S8: signed; S8_FLIP: signed, then bit
 * 7 of each byte flipped */
enum { FXQ_PACK_U8 = 0, FXQ_PACK_S8 = 1, FXQ_PACK_S8_FLIP = 2 };
T512 INL void vi_store_bytes4(uint8_t *dst, const VI *r, int mode) {
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i a = _mm512_packs_epi32(r[0], r[1]);
    const __m512i b = _mm512_packs_epi32(r[2], r[3]);
    __m512i c = mode == FXQ_PACK_U8 ? _mm512_packus_epi16(a, b) : _mm512_packs_epi16(a, b);
    c = _mm512_permutexvar_epi32(idx, c);
    if (mode == FXQ_PACK_S8_FLIP) c = _mm512_xor_si512(c, _mm512_set1_epi8((char)0x80));
    _mm512_storeu_si512(dst, c);
}
T512 INL VI vi_sra64_clamp(VI p, VI n, VI lo, VI hi) {
    return _mm512_min_epi64(_mm512_max_epi64(_mm512_srav_epi64(p, n), lo), hi);
}
T512 INL VF vf_load(const float *p) {
    return _mm512_loadu_ps(p);
}
T512 INL VF vf_set1(float x) {
    return _mm512_set1_ps(x);
}
T512 INL VF vf_mul(VF a, VF b) {
    return _mm512_mul_round_ps(a, b, RNE);
}
T512 INL VF vf_min(VF a, VF b) {
    return _mm512_min_ps(a, b);
}
T512 INL VF vf_max(VF a, VF b) {
    return _mm512_max_ps(a, b);
}
T512 INL VF vf_from_vi(VI a) {
    return _mm512_cvt_roundepi32_ps(a, RNE);
}
T512 INL VI vi_from_vf(VF a) {
    return _mm512_cvt_roundps_epi32(a, RNE);
}
T512 INL void vi_store_bytes(uint8_t *dst, VI r) {
    _mm_storeu_si128((__m128i *)dst, _mm512_cvtepi32_epi8(r));
}
/* the low bytes of the first n lanes (mask m): vpmovdb to a register, then a masked store (gcc
 * would fuse the two into vpmovdb m128{k}, which Zen 4 runs about 10x slower) */
T512 INL void store_bytes_masked(uint8_t *dst, __mmask16 m, VI r) {
    __m128i b = _mm512_cvtepi32_epi8(r);
    __asm__("" : "+x"(b));
    _mm_mask_storeu_epi8(dst, m, b);
}
T512 INL VI vb_unpacklo8(VI a, VI b) {
    return _mm512_unpacklo_epi8(a, b);
}
T512 INL VI vb_unpackhi8(VI a, VI b) {
    return _mm512_unpackhi_epi8(a, b);
}
T512 INL __mmask64 bmask(int64_t n) {
    return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
}
T512 INL VI vb_loadu_n(const uint8_t *p, int64_t n) {
    return _mm512_maskz_loadu_epi8(bmask(n), p);
}
T512 INL void vb_storeu_n(uint8_t *p, VI v, int64_t n) {
    _mm512_mask_storeu_epi8(p, bmask(n), v);
}
T512 INL void vb_store_lane(uint8_t *p, VI v, int L) {
    __m128i x;
    switch (L) {
        case 0:
            x = _mm512_castsi512_si128(v);
            break;
        case 1:
            x = _mm512_extracti32x4_epi32(v, 1);
            break;
        case 2:
            x = _mm512_extracti32x4_epi32(v, 2);
            break;
        default:
            x = _mm512_extracti32x4_epi32(v, 3);
            break;
    }
    _mm_storeu_si128((__m128i *)p, x);
}
T512 INL VI vb_load_lanes(const uint8_t *p, int64_t stride) {
    VI v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + stride)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 2 * stride)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 3 * stride)), 3);
}

/* acc[0] += pairs (x tap a, x tap b) . (w tap a, w tap b) per channel: the 32 bytes are pixel
 * a's 16 channels then pixel b's; vpermw interleaves them to (a0, b0, a1, b1, ...) */
T512 INL void dw_pair(const uint8_t *x, const int16_t *w, VI *acc) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512i z = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)x));
    z = _mm512_permutexvar_epi16(idx, z);
    acc[0] = _mm512_add_epi32(acc[0], _mm512_madd_epi16(z, _mm512_load_si512(w)));
}

#define FXQ_TILE_HAS_CORR 1 /* tile_body starts from the correction */
#include "fxq_simd.h"

/* ------------------------------------------------------------------------------------------------
 * The MAC tile
 * ---------------------------------------------------------------------------------------------- */

/* unaligned, aliasing-safe int32 load: lets gcc fold the broadcast into vpdpbusd's {1to16} operand
 */
typedef int32_t __attribute__((may_alias, aligned(1))) i32u;
/* gcc's predictive commoning sees that pixel i at kernel column s+1 reads what pixel i+1 read at s,
 * keeps those scalars alive across iterations and spills them: switch it off for the tiles. */
#define NOPC __attribute__((noinline, optimize("no-predictive-commoning")))

/* out[j*PX + i] = sum over (cb, r, s, c) of x(pixel i) * w(block j), for NKB blocks of 16 output
 * channels and PX output pixels: NKB*PX zmm accumulators, each broadcast input feeds NKB vpdpbusd
 */
T512 INL void tile_body(const uint8_t *x, const int8_t *w, const tile_geom *g, const int32_t *corr,
                        const int NKB, const int PX, const int ST1, __m512i *out) {
    __m512i a[2][TILE];
#pragma GCC unroll 4
    for (int j = 0; j < NKB; ++j) {
        const __m512i c = _mm512_loadu_si512(corr + j * 16); /* the correction of block j */
#pragma GCC unroll 16
        for (int i = 0; i < PX; ++i) a[j][i] = c;
    }
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
                        __m512i b = _mm512_set1_epi32(
                            *(const i32u *)(xs + (ST1 ? i * 16 : i * g->sw16) + c4 * 4));
#pragma GCC unroll 4
                        for (int j = 0; j < NKB; ++j)
                            a[j][i] = _mm512_dpbusd_epi32(a[j][i], b, wv[j]);
                    }
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NKB; ++j)
#pragma GCC unroll 16
        for (int i = 0; i < PX; ++i) _mm512_storeu_si512(out + j * TILE + i, a[j][i]);
}

#define TILE_FN(name, NKB, PX, ST1)                                                   \
    T512 NOPC static void name(const uint8_t *x, const int8_t *w, const tile_geom *g, \
                               const int32_t *corr, __m512i *out) {                   \
        tile_body(x, w, g, corr, NKB, PX, ST1, out);                                  \
    }
TILE_FN(tile_k2_s1, 2, 14, 1)
TILE_FN(tile_k1_s1, 1, 14, 1)
TILE_FN(tile_k2_sn, 2, 14, 0)
TILE_FN(tile_k1_sn, 1, 14, 0)
/* few pixels (fully connected layers with a small batch, narrow rows): 1 or 4 pixels */
TILE_FN(tile_k2_p1, 2, 1, 1)
TILE_FN(tile_k1_p1, 1, 1, 1)
TILE_FN(tile_k2_p4, 2, 4, 0)
TILE_FN(tile_k1_p4, 1, 4, 0)

FXQ_T static void isa_tile(const fxq_conv_plan *p, const tile_geom *g, int64_t xoff, int64_t kb,
                           int nkb, int P, VI *acc) {
    const uint8_t *x = p->xpack + xoff;
    const int8_t *w = p->wpack + kb * g->wkb;
    const int32_t *c = g->corr + kb * 16;
    const int st1 = p->d->stride_w == 1;
    if (P == 1) {
        if (nkb == 2)
            tile_k2_p1(x, w, g, c, acc);
        else
            tile_k1_p1(x, w, g, c, acc);
    } else if (P <= 4) {
        if (nkb == 2)
            tile_k2_p4(x, w, g, c, acc);
        else
            tile_k1_p4(x, w, g, c, acc);
    } else if (nkb == 2) {
        if (st1)
            tile_k2_s1(x, w, g, c, acc);
        else
            tile_k2_sn(x, w, g, c, acc);
    } else {
        if (st1)
            tile_k1_s1(x, w, g, c, acc);
        else
            tile_k1_sn(x, w, g, c, acc);
    }
}

T512 int fxq_conv2d_avx512(const fxq_conv_plan *p) {
    return conv_driver(p, p->corr);
}

/* ------------------------------------------------------------------------------------------------
 * AMX (the "amx" path): dense convolutions on tiles.  tdpbusd multiplies a tile A of M <= 16 rows
 * of kc <= 64 unsigned bytes by a tile B of kc/4 rows of [16 channels][4 signed bytes] into a
 * 16 x 16 int32 tile C: C[m][o] += sum_c A[m][c] * w[o][c], exact (no int16 step), so the same
 * correction as vpdpbusd's applies.  The input goes to a channels-last buffer xa
 * [N][Hp][wpa][cpad] (zero point at the borders): A for output pixels ow0 .. ow0+M-1, tap (r, s)
 * and channel chunk ch is one tile load from xa with a row stride of stride_w * cpad bytes, no
 * im2col.  The weights go to wa [Kb][R][S][cpad/kc][kc/4][16][4] (each B tile contiguous).
 * Tiles: tmm0-1 A (two pixel tiles), tmm2-3 B (two 16-channel blocks), tmm4-7 C; the C tiles go
 * through a 4 KiB buffer to the shared epilogue of fxq_simd.h.
 * ---------------------------------------------------------------------------------------------- */
#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define FXQ_AMX_OS 1
#endif

#define TAMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8")))
#define FXQ_BARRIER() __asm__ volatile("" ::: "memory")

static int amx_state = -1; /* idempotent: a race computes the same value */

int fxq_amx_enable(void) {
    int ok = 0;
    if (amx_state >= 0) return amx_state;
#ifdef FXQ_AMX_OS
    {
        unsigned a, b, c, d;
        /* CPUID.7.0:EDX bit 24 AMX-TILE, bit 25 AMX-INT8; CPUID.1:ECX bit 27 OSXSAVE */
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 25 & 1) &&
            __get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1)) {
            uint32_t lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            (void)hi;
            /* XCR0 bits 17-18: the OS saves the tile state; then ask for it (ARCH_REQ_XCOMP_PERM,
             * XFEATURE_XTILEDATA): without this permission the first tile instruction faults */
            if ((lo >> 17 & 3) == 3 && syscall(SYS_arch_prctl, 0x1023, 18) == 0) ok = 1;
        }
    }
#endif
    amx_state = ok;
    return ok;
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((aligned(64))) amx_tilecfg;

/* A tiles m x kc bytes, B tiles kc/4 x 64, C tiles m x 64 (16 int32) */
TAMX static void amx_config(int64_t m, int64_t kc) {
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = (uint8_t)(t < 2 ? m : t < 4 ? kc / 4 : m);
        cfg.colsb[t] = (uint16_t)(t < 2 ? kc : 64);
    }
    /* the address as a register operand with a memory clobber: every store above happens first
     * (the intrinsic's "m" operand covers 8 bytes only, and gcc dropped the other stores) */
    __asm__ volatile("ldtilecfg (%0)" ::"r"(&cfg) : "memory");
}

/* x (NCHW, NHWC or NCHW16c) -> xa [N][Hp][wpa][cpad]: borders hold zp_u, channels >= C hold 0 */
TAMX static void amx_pack_input(const fxq_conv_plan *p, const fxq_amx_geom *g, const uint8_t *x,
                                uint8_t *xa) {
    const fxq_conv_dims *d = p->d;
    const int64_t cp = g->cpad, rowb = g->wpa * cp, H = d->h, W = d->w, C = d->c;
    const __m512i vflip = _mm512_set1_epi8((char)g->flip);
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t hp = 0; hp < p->hp; ++hp) {
            uint8_t *row = xa + (n * p->hp + hp) * rowb;
            const int64_t h = hp - d->pad_h;
            if (h < 0 || h >= H) {
                memset(row, g->zp_u, (size_t)rowb);
                continue;
            }
            memset(row, g->zp_u, (size_t)(d->pad_w * cp));
            memset(row + (d->pad_w + W) * cp, g->zp_u, (size_t)((g->wpa - d->pad_w - W) * cp));
            if (p->layout == FXQ_LAYOUT_NHWC) {
                const uint8_t *src = x + (n * H + h) * W * C;
                for (int64_t w = 0; w < W; ++w) {
                    uint8_t *o = row + (d->pad_w + w) * cp;
                    for (int64_t c0 = 0; c0 < cp; c0 += 64) {
                        const int64_t nc = C - c0 <= 0 ? 0 : C - c0 < 64 ? C - c0 : 64;
                        const int64_t no = cp - c0 < 64 ? cp - c0 : 64;
                        __m512i v = _mm512_maskz_loadu_epi8(bmask(nc), src + w * C + c0);
                        v = _mm512_maskz_mov_epi8(bmask(nc), _mm512_xor_si512(v, vflip));
                        _mm512_mask_storeu_epi8(o + c0, bmask(no), v);
                    }
                }
            } else {
                /* NCHW16c here; NCHW rows are transposed below. Channels >= cb*16: 0 */
                for (int64_t w = 0; w < W; ++w) {
                    uint8_t *o = row + (d->pad_w + w) * cp;
                    if (p->layout == FXQ_LAYOUT_NCHW16C)
                        for (int64_t cb = 0; cb < p->cb; ++cb) {
                            const __m128i v = _mm_loadu_si128(
                                (const __m128i *)(x + (((n * p->cb + cb) * H + h) * W + w) * 16));
                            _mm_storeu_si128((__m128i *)(o + cb * 16),
                                             _mm_xor_si128(v, _mm512_castsi512_si128(vflip)));
                        }
                    if (cp > p->cb * 16) memset(o + p->cb * 16, 0, (size_t)(cp - p->cb * 16));
                }
            }
        }
    if (p->layout == FXQ_LAYOUT_NCHW)
        pack_nchw_strided(d, x, g->flip, xa + (d->pad_h * g->wpa + d->pad_w) * cp, p->cb,
                          p->hp * rowb, 16, rowb, cp);
}

/* wpack (OIHW4i16o4i) -> wa [Kb][R][S][cpad/kc][kc/4][64]: B row q of chunk ch holds input
 * channels ch*kc + 4q .. +3 of 16 output channels, one 64-byte row of wpack */
TAMX static void amx_pack_weights(const fxq_conv_plan *p, const fxq_amx_geom *g, int8_t *wa) {
    const fxq_conv_dims *d = p->d;
    const int64_t R = d->r, S = d->s, nq = g->cpad / 4;
    for (int64_t kb = 0; kb < p->kb; ++kb)
        for (int64_t r = 0; r < R; ++r)
            for (int64_t s = 0; s < S; ++s) {
                int8_t *dst = wa + ((kb * R + r) * S + s) * nq * 64;
                for (int64_t q = 0; q < nq; ++q) {
                    const int64_t c = 4 * q;
                    __m512i v = _mm512_setzero_si512();
                    if (c < p->cb * 16)
                        v = _mm512_load_si512(
                            (const void *)(p->wpack +
                                           (((kb * p->cb + c / 16) * R + r) * S + s) * 256 +
                                           (c % 16) / 4 * 64));
                    _mm512_store_si512((void *)(dst + q * 64), v);
                }
            }
}

/* the C tile of one pixel tile and one 16-channel block (rows = pixels, P <= 16, the correction
 * included) -> the epilogue, which reads the rows where they are */
TAMX static void amx_finish(const fxq_conv_plan *p, const tile_geom *tg, int32_t *cbuf, int64_t n,
                            int64_t kb, int64_t oh, int64_t ow0, int64_t P, const qv *qvs) {
    epilogue(p, tg, (__m512i *)(void *)cbuf, n, kb, oh, ow0, (int)P, qvs, 0);
}

/* The MACs of one job (TWO pixel tiles, 1 or 2, x NKB channel blocks, 1 or 2): tdpbusd over
 * every tap and chunk into the C tiles tmm4 (tile 0, block 0), tmm5 (0, 1), tmm6 (1, 0),
 * tmm7 (1, 1) */
typedef struct {
    const int8_t *wt;  /* the B tiles of the first channel block */
    const int32_t *ct; /* [2][16][16]: each block's correction in every row, the C tiles' start */
    int64_t R, S, nch, kc, rows, pxs, astride, anext, wkb;
} amx_geom;

TAMX static inline __attribute__((always_inline)) void amx_macs(const amx_geom *a,
                                                                const uint8_t *xt, const int TWO,
                                                                const int NKB) {
    _tile_loadd(4, a->ct, 64);
    if (NKB == 2) _tile_loadd(5, a->ct + 256, 64);
    if (TWO) _tile_loadd(6, a->ct, 64);
    if (TWO && NKB == 2) _tile_loadd(7, a->ct + 256, 64);
    for (int64_t r = 0; r < a->R; ++r)
        for (int64_t s = 0; s < a->S; ++s)
            for (int64_t ch = 0; ch < a->nch; ++ch) {
                const uint8_t *a0 = xt + r * a->rows + s * a->pxs + ch * a->kc;
                const int8_t *b0 = a->wt + ((r * a->S + s) * a->nch + ch) * a->kc * 16;
                _tile_loadd(0, a0, a->astride);
                _tile_loadd(2, b0, 64);
                if (NKB == 2) _tile_loadd(3, b0 + a->wkb, 64);
                if (TWO) _tile_loadd(1, a0 + a->anext, a->astride);
                _tile_dpbusd(4, 0, 2);
                if (NKB == 2) _tile_dpbusd(5, 0, 3);
                if (TWO) _tile_dpbusd(6, 1, 2);
                if (TWO && NKB == 2) _tile_dpbusd(7, 1, 3);
            }
}

TAMX static void amx_macs_any(const amx_geom *a, const uint8_t *xt, int two, int nkb) {
    if (two && nkb == 2)
        amx_macs(a, xt, 1, 2);
    else if (two)
        amx_macs(a, xt, 1, 1);
    else if (nkb == 2)
        amx_macs(a, xt, 0, 2);
    else
        amx_macs(a, xt, 0, 1);
}

/* the C tiles -> cbuf[tile * 2 + block] */
TAMX static void amx_store(int32_t (*cbuf)[256], int two, int nkb) {
    _tile_stored(4, cbuf[0], 64);
    if (nkb == 2) _tile_stored(5, cbuf[1], 64);
    if (two) _tile_stored(6, cbuf[2], 64);
    if (two && nkb == 2) _tile_stored(7, cbuf[3], 64);
    FXQ_BARRIER();
}

/* A software pipeline over the jobs (output row, pair of pixel tiles) of one channel-block pair:
 * the MACs of job j are issued, then the epilogue of job j-1 runs on the vector units while the
 * tile unit works, then job j's C tiles are stored (two 4 KiB buffers, alternating). */
TAMX int fxq_conv2d_amx(const fxq_conv_plan *p, const fxq_amx_geom *g, const uint8_t *x,
                        uint8_t *xa, int8_t *wa) {
    const fxq_conv_dims *d = p->d;
    const int64_t M = g->m, tiles = (d->ow + M - 1) / M, pairs = (tiles + 1) / 2;
    const int64_t njobs = d->oh * pairs;
    const int nchw = p->scheme != FXQ_SCHEME_NONE && p->layout == FXQ_LAYOUT_NCHW;
    int32_t cbuf[2][4][256] __attribute__((aligned(64)));
    int32_t ct[2][16][16] __attribute__((aligned(64)));
    amx_geom a;
    tile_geom tg;
    memset(&tg, 0, sizeof(tg));
    tg.corr = p->corr;
    a.R = d->r;
    a.S = d->s;
    a.kc = g->kc;
    a.nch = g->cpad / g->kc;
    a.pxs = g->cpad;
    a.rows = g->wpa * g->cpad;
    a.astride = d->stride_w * g->cpad;
    a.anext = M * a.astride;
    a.wkb = d->r * d->s * g->cpad * 16;
    a.ct = &ct[0][0][0];
    amx_pack_input(p, g, x, xa);
    amx_pack_weights(p, g, wa);
    if (nchw) memset(p->rowbuf, 0, (size_t)(2 * p->rowbuf_stride));
    amx_config(M, g->kc);
    FXQ_BARRIER();
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t kb = 0; kb < p->kb;) {
            const int nkb = p->kb - kb >= 2 ? 2 : 1;
            qv qvs[2];
            a.wt = wa + kb * a.wkb;
            for (int j = 0; j < nkb; ++j) /* corr is padded to whole blocks */
                for (int row = 0; row < 16; ++row)
                    memcpy(ct[j][row], p->corr + (kb + j) * 16, sizeof(ct[j][row]));
            if (p->scheme != FXQ_SCHEME_NONE)
                for (int j = 0; j < nkb; ++j) qv_load_conv(p->q, (kb + j) * 16, &qvs[j]);
            for (int64_t job = 0; job <= njobs; ++job) {
                if (job < njobs) {
                    const int64_t oh = job / pairs, t0 = job % pairs * 2;
                    amx_macs_any(&a,
                                 xa + (n * p->hp + oh * d->stride_h) * a.rows + t0 * M * a.astride,
                                 t0 + 1 < tiles, nkb);
                }
                if (job > 0) { /* the epilogue of the previous job */
                    const int64_t pj = job - 1, oh = pj / pairs, t0 = pj % pairs * 2;
                    const int two = t0 + 1 < tiles;
                    for (int tt = 0; tt <= two; ++tt) {
                        const int64_t ow0 = (t0 + tt) * M;
                        const int64_t P = d->ow - ow0 < M ? d->ow - ow0 : M;
                        for (int j = 0; j < nkb; ++j)
                            amx_finish(p, &tg, cbuf[pj & 1][tt * 2 + j], n, kb + j, oh, ow0, P,
                                       &qvs[j]);
                    }
                    if (nchw && pj % pairs == pairs - 1) /* the row is complete */
                        for (int j = 0; j < nkb; ++j) {
                            const int64_t kvalid =
                                d->k - (kb + j) * 16 < 16 ? d->k - (kb + j) * 16 : 16;
                            row_to_nchw(p->rowbuf + ((kb + j) & 1) * p->rowbuf_stride, d->ow,
                                        (uint8_t *)p->out +
                                            ((n * d->k + (kb + j) * 16) * d->oh + oh) * d->ow,
                                        d->oh * d->ow, kvalid);
                        }
                }
                if (job < njobs) amx_store(cbuf[job & 1], job % pairs * 2 + 1 < tiles, nkb);
            }
            kb += nkb;
        }
    _tile_release();
    return FXQ_OK;
}

/* peak probe: 4 independent C tiles (tmm0-3) from two A and two B tiles, 16 x 64 bytes each */
#define FXQ_TDP(c, a, b) "tdpbusd %%tmm" #b ", %%tmm" #a ", %%tmm" #c "\n\t"
TAMX static int64_t amx_probe(int64_t iters) {
    const int64_t n = iters;
    amx_tilecfg cfg;
    if (iters <= 0) return 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    __asm__ volatile("ldtilecfg (%0)" ::"r"(&cfg) : "memory");
    __asm__ volatile(
        "tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3\n\t"
        "tilezero %%tmm4\n\ttilezero %%tmm5\n\ttilezero %%tmm6\n\ttilezero %%tmm7\n\t"
        "1:\n\t" FXQ_TDP(0, 4, 6) FXQ_TDP(1, 4, 7) FXQ_TDP(2, 5, 6) FXQ_TDP(3, 5, 7)
        "dec %0\n\tjnz 1b\n\t"
        "tilerelease\n\t"
        : "+r"(iters)
        :
        : "cc");
    return n * 4 * 16 * 16 * 64;
}

/* ------------------------------------------------------------------------------------------------
 * Fully connected (GEMV): the plan's w8 group layout read as it lies.  For quad q (inputs 4q ..
 * 4q+3) block j of a group is 64 bytes [16 channels][4 inputs], exactly one vpdpbusd zmm operand:
 *   acc[row][j] += vpdpbusd(broadcast of the 4 bytes x_u[row][4q .. 4q+3], block j)
 * vpdpbusd sums the four u8 x s8 products in int32 (no int16 intermediate), so every weight,
 * -128 included, is exact here: the AVX2 path's w16 fallback and corr2 are not read.  A pass
 * covers up to 4 rows x the group's gk <= 4 blocks, each weight load shared by the rows and each
 * broadcast by the blocks; with few rows or blocks the quads are split over NS accumulator sets
 * (summed at the end), so 8 or more independent vpdpbusd chains (4 for a single row and block)
 * cover its latency of 5 cycles at up to 2 per cycle.
 * ---------------------------------------------------------------------------------------------- */

#define FC512_ROWS 4 /* rows per pass */

/* 4 input bytes of row xr from input 4q, zero-filled past c: the row is never read past its end
 * (and the padded weights there are 0) */
INL uint32_t fc512_quad(const uint8_t *xr, int64_t q, int64_t c) {
    uint32_t v = 0;
    memcpy(&v, xr + 4 * q, (size_t)(c - 4 * q < 4 ? c - 4 * q : 4));
    return v;
}

/* acc[i * GK + j] = sum over the row of x_u[row i] * w[block j] (no correction), rows x + i * c */
T512 INL void fc512_mac(const uint8_t *x, int64_t c, int64_t cq, const int8_t *wg, const int RB,
                        const int GK, const int FLIP, __m512i *acc) {
    const int NS = RB * GK >= 8 ? 1 : (RB * GK >= 4 ? 2 : 4); /* accumulator sets */
    const int64_t qstride = GK * 64, qfull = c / 4;
    const __m512i vflip = _mm512_set1_epi32((int32_t)0x80808080u);
    __m512i a[4][FC512_ROWS][FXQ_FC_GROUP];
    int64_t q = 0;
#pragma GCC unroll 4
    for (int s = 0; s < NS; ++s)
#pragma GCC unroll 4
        for (int i = 0; i < RB; ++i)
#pragma GCC unroll 4
            for (int j = 0; j < GK; ++j) a[s][i][j] = _mm512_setzero_si512();
    for (; q + NS <= qfull; q += NS)
#pragma GCC unroll 4
        for (int s = 0; s < NS; ++s) {
            const int8_t *wq = wg + (q + s) * qstride;
            __m512i wv[FXQ_FC_GROUP];
#pragma GCC unroll 4
            for (int j = 0; j < GK; ++j) wv[j] = _mm512_load_si512((const void *)(wq + j * 64));
#pragma GCC unroll 4
            for (int i = 0; i < RB; ++i) {
                __m512i b = _mm512_set1_epi32(*(const i32u *)(x + i * c + 4 * (q + s)));
                if (FLIP) b = _mm512_xor_si512(b, vflip);
#pragma GCC unroll 4
                for (int j = 0; j < GK; ++j) a[s][i][j] = _mm512_dpbusd_epi32(a[s][i][j], b, wv[j]);
            }
        }
    for (; q < cq; ++q) { /* the last full quads, then a partial one, into set 0 */
        const int8_t *wq = wg + q * qstride;
#pragma GCC unroll 4
        for (int i = 0; i < RB; ++i) {
            __m512i b = _mm512_set1_epi32((int32_t)fc512_quad(x + i * c, q, c));
            if (FLIP) b = _mm512_xor_si512(b, vflip);
#pragma GCC unroll 4
            for (int j = 0; j < GK; ++j)
                a[0][i][j] = _mm512_dpbusd_epi32(a[0][i][j], b,
                                                 _mm512_load_si512((const void *)(wq + j * 64)));
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < RB; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < GK; ++j) {
            __m512i t = a[0][i][j];
#pragma GCC unroll 4
            for (int s = 1; s < NS; ++s) t = _mm512_add_epi32(t, a[s][i][j]);
            acc[i * GK + j] = t;
        }
}

typedef void (*fc512_fn)(const uint8_t *x, int64_t c, int64_t cq, const int8_t *wg, __m512i *acc);
#define FC512_FN(RB, GK)                                                                  \
    T512 NOPC static void fc512_mac_##RB##GK##_u(const uint8_t *x, int64_t c, int64_t cq, \
                                                 const int8_t *wg, __m512i *acc) {        \
        fc512_mac(x, c, cq, wg, RB, GK, 0, acc);                                          \
    }                                                                                     \
    T512 NOPC static void fc512_mac_##RB##GK##_s(const uint8_t *x, int64_t c, int64_t cq, \
                                                 const int8_t *wg, __m512i *acc) {        \
        fc512_mac(x, c, cq, wg, RB, GK, 1, acc);                                          \
    }
#define FC512_FN_ROWS(RB) FC512_FN(RB, 1) FC512_FN(RB, 2) FC512_FN(RB, 3) FC512_FN(RB, 4)
FC512_FN_ROWS(1)
FC512_FN_ROWS(2)
FC512_FN_ROWS(3)
FC512_FN_ROWS(4)
#define FC512_TAB_ROWS(RB, T) \
    {fc512_mac_##RB##1_##T, fc512_mac_##RB##2_##T, fc512_mac_##RB##3_##T, fc512_mac_##RB##4_##T}
#define FC512_TAB(T) \
    {FC512_TAB_ROWS(1, T), FC512_TAB_ROWS(2, T), FC512_TAB_ROWS(3, T), FC512_TAB_ROWS(4, T)}
/* [int8 input][rows - 1][blocks - 1] */
static const fc512_fn fc512_tab[2][FC512_ROWS][FXQ_FC_GROUP] = {FC512_TAB(u), FC512_TAB(s)};

/* correction, requantization and store of rb rows x gk blocks from channel k0; a partial last
 * block (k not a multiple of 16) by masked stores, never past the row.  The parameters of a block
 * are loaded here into a local qv: the compiler keeps in registers only the members that
 * rq_vec(S) reads (a qv array kept across the passes costs ~17 zmm stores per block). */
T512 INL void fc512_store(const fxq_fc_plan *h, const __m512i *acc, int rb, int gk, int64_t k0,
                          uint8_t *orow, int64_t row_bytes, const int scheme) {
    for (int j = 0; j < gk; ++j) {
        const int64_t k = k0 + 16 * j;
        const int kv = h->k - k < 16 ? (int)(h->k - k) : 16; /* >= 1: kb = ceil(k / 16) */
        const __mmask16 m = (__mmask16)((1u << kv) - 1);
        const __m512i corr = _mm512_loadu_si512(h->corr + k);
        qv v;
        if (scheme != FXQ_SCHEME_NONE) qv_load(&h->q, k, 0, &v);
        for (int i = 0; i < rb; ++i) {
            const __m512i a = _mm512_add_epi32(acc[i * gk + j], corr);
            uint8_t *o = orow + i * row_bytes;
            if (scheme == FXQ_SCHEME_NONE) {
                _mm512_mask_storeu_epi32((int32_t *)(void *)o + k, m, a);
            } else {
                const __m512i r = rq_vec(a, scheme, &v);
                if (kv == 16)
                    vi_store_bytes(o + k, r);
                else
                    store_bytes_masked(o + k, m, r);
            }
        }
    }
}

/* groups of output channels outside, passes of rows inside: a group's weights (256 * cq bytes)
 * stay in L1/L2 across the rows of a batch */
T512 INL void fc512_rows(const fxq_fc_plan *h, const uint8_t *x, void *out, int64_t n,
                         const int scheme) {
    const int64_t row_bytes = h->k * (scheme == FXQ_SCHEME_NONE ? 4 : 1);
    const int flip = h->flip != 0;
    for (int64_t kb = 0; kb < h->kb; kb += FXQ_FC_GROUP) {
        const int gk = h->kb - kb < FXQ_FC_GROUP ? (int)(h->kb - kb) : FXQ_FC_GROUP;
        const int8_t *wg = h->w8 + kb * h->cq * 64;
        for (int64_t r = 0; r < n; r += FC512_ROWS) {
            const int rb = n - r < FC512_ROWS ? (int)(n - r) : FC512_ROWS;
            __m512i acc[FC512_ROWS * FXQ_FC_GROUP];
            fc512_tab[flip][rb - 1][gk - 1](x + r * h->c, h->c, h->cq, wg, acc);
            fc512_store(h, acc, rb, gk, kb * 16, (uint8_t *)out + r * row_bytes, row_bytes, scheme);
        }
    }
}

T512 int fxq_fc_avx512(const fxq_fc_plan *h, const uint8_t *x, void *out, int64_t n) {
    if (h->scheme == FXQ_SCHEME_NONE) {
        fc512_rows(h, x, out, n, FXQ_SCHEME_NONE);
        return FXQ_OK;
    }
#define FXQ_FC_BODY(S) fc512_rows(h, x, out, n, S)
    FXQ_SCHEME_SWITCH(h->scheme, FXQ_FC_BODY)
#undef FXQ_FC_BODY
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Depthwise convolution straight from NCHW (stride_w 1, r <= 8, s <= 8): lane = output pixel.
 * One channel at a time: its input plane is copied once, padded with the zero point, into the
 * scratch (int8 input flipped to uint8); a zmm of 16 output pixels of one row gets, per kernel row
 * and quad of taps, one vpdpbusd of the windows x(p .. p+3) (vpermd + vpshufb of a 32-byte load)
 * with the broadcast weights (w(r, 4q) .. w(r, 4q+3), 0 past s).  uint8 x int8 products summed in
 * int32: exact.  With stride_h 1 each input row's windows feed the r output rows that read it (a
 * rolling set of r accumulators), so the shuffles are made once per input row.  No NCHW16c
 * packing, no transposes: the result rows are stored straight into the NCHW output.
 * ---------------------------------------------------------------------------------------------- */
#define DWN_MAXR 8
#define DWN_MAXQ 2

/* int32 lane e = bytes src[e .. e+3] */
T512 INL __m512i dwn_window(const uint8_t *src) {
    const __m512i perm = _mm512_set_epi32(6, 5, 4, 3, 5, 4, 3, 2, 4, 3, 2, 1, 3, 2, 1, 0);
    const __m512i shuf =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6));
    const __m512i v = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)src));
    return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(perm, v), shuf);
}

/* 16 (or, masked, fewer) results of one output row */
T512 INL void dwn_store(void *o, __m512i a, __mmask16 m, const int scheme, const qv *v) {
    if (scheme == FXQ_SCHEME_NONE) {
        _mm512_mask_storeu_epi32(o, m, a);
    } else {
        const __m512i r = rq_vec(a, scheme, v);
        if (m == 0xFFFF)
            vi_store_bytes((uint8_t *)o, r);
        else
            store_bytes_masked((uint8_t *)o, m, r);
    }
}

/* one channel's padded input plane: rows of wrow bytes (a multiple of 64), zero point around */
T512 INL void dwn_plane(const fxq_conv_dims *d, const uint8_t *xc, uint8_t flip, uint8_t zp_u,
                        uint8_t *plane, int64_t wrow) {
    const __m512i zpv = _mm512_set1_epi8((char)zp_u), fl = _mm512_set1_epi8((char)flip);
    for (int64_t r = 0; r < d->h + 2 * d->pad_h; ++r) {
        uint8_t *row = plane + r * wrow;
        const int64_t h = r - d->pad_h;
        for (int64_t i = 0; i < wrow; i += 64) _mm512_storeu_si512(row + i, zpv);
        if (h < 0 || h >= d->h) continue;
        for (int64_t i = 0; i < d->w; i += 64) {
            const int64_t nv = d->w - i < 64 ? d->w - i : 64;
            const __mmask64 m = nv == 64 ? ~(__mmask64)0 : (((__mmask64)1 << nv) - 1);
            const __m512i v = _mm512_maskz_loadu_epi8(m, xc + h * d->w + i);
            _mm512_mask_storeu_epi8(row + d->pad_w + i, m, _mm512_xor_si512(v, fl));
        }
    }
}

/* stride_h 1, R rows and NQ quads known at compile time: block columns outside, input rows
 * inside; a[j] holds output row h - j */
T512 INL void dwn_rolling(const fxq_conv_dims *d, const uint8_t *plane, int64_t wrow,
                          const __m512i (*wq)[DWN_MAXQ], __m512i corr, uint8_t *oc, int64_t esz,
                          const int R, const int NQ, const int scheme, const qv *v) {
    const int64_t nb = (d->ow + 15) / 16;
    for (int64_t b = 0; b < nb; ++b) {
        const int64_t valid = d->ow - b * 16;
        const __mmask16 m = valid >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1);
        __m512i a[DWN_MAXR];
#pragma GCC unroll 8
        for (int j = 0; j < R; ++j) a[j] = corr;
        for (int64_t h = 0; h < d->oh + R - 1; ++h) {
            const uint8_t *src = plane + h * wrow + b * 16;
#pragma GCC unroll 2
            for (int q = 0; q < NQ; ++q) {
                const __m512i w = dwn_window(src + 4 * q);
#pragma GCC unroll 8
                for (int j = 0; j < R; ++j) a[j] = _mm512_dpbusd_epi32(a[j], w, wq[j][q]);
            }
            if (h >= R - 1)
                dwn_store(oc + ((h - (R - 1)) * d->ow + b * 16) * esz, a[R - 1], m, scheme, v);
#pragma GCC unroll 8
            for (int j = R - 1; j > 0; --j) a[j] = a[j - 1];
            a[0] = corr;
        }
    }
}

/* any stride_h, r <= DWN_MAXR, s <= 4 * DWN_MAXQ */
T512 INL void dwn_direct(const fxq_conv_dims *d, const uint8_t *plane, int64_t wrow,
                         const __m512i (*wq)[DWN_MAXQ], __m512i corr, uint8_t *oc, int64_t esz,
                         const int scheme, const qv *v) {
    const int64_t nb = (d->ow + 15) / 16, nq = (d->s + 3) / 4;
    for (int64_t oh = 0; oh < d->oh; ++oh)
        for (int64_t b = 0; b < nb; ++b) {
            const int64_t valid = d->ow - b * 16;
            const __mmask16 m = valid >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1);
            __m512i a = corr;
            for (int64_t r = 0; r < d->r; ++r) {
                const uint8_t *src = plane + (oh * d->stride_h + r) * wrow + b * 16;
                for (int64_t q = 0; q < nq; ++q)
                    a = _mm512_dpbusd_epi32(a, dwn_window(src + 4 * q), wq[r][q]);
            }
            dwn_store(oc + (oh * d->ow + b * 16) * esz, a, m, scheme, v);
        }
}

/* Small planes (stride_h 1, ow <= 8, padded rows <= 16 bytes): two output rows per zmm, lanes
 * 0-7 row oh and 8-15 row oh+1, on a plane of 16-byte rows, so rows oh + r and oh + r + 1 are
 * one 64-byte load; half the vpdpbusd and epilogue vectors of one row per zmm. */
#define DWN_PAIR_PITCH 16

/* int32 lane e = bytes src[b .. b+3], b = e for e < 8, e + 8 (the next 16-byte row) above */
T512 INL __m512i dwn_window2(const uint8_t *src) {
    const __m512i perm = _mm512_set_epi32(8, 7, 6, 5, 7, 6, 5, 4, 4, 3, 2, 1, 3, 2, 1, 0);
    const __m512i shuf =
        _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6));
    return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(perm, _mm512_loadu_si512(src)), shuf);
}

/* the padded plane in 16-byte rows, and 4 rows of zero point after it (a window load reads 64
 * bytes from the last row) */
T512 INL void dwn_plane16(const fxq_conv_dims *d, const uint8_t *xc, uint8_t flip, uint8_t zp_u,
                          uint8_t *plane) {
    /* the dimensions in locals: the byte stores may alias *d, so gcc would reload them */
    const int64_t h = d->h, w = d->w, rows = d->h + 2 * d->pad_h + 4;
    uint8_t *first = plane + d->pad_h * DWN_PAIR_PITCH + d->pad_w;
    const __m128i zpv = _mm_set1_epi8((char)zp_u), fl = _mm_set1_epi8((char)flip);
    const __mmask16 m = (__mmask16)((1u << w) - 1);
    for (int64_t r = 0; r < rows; ++r)
        _mm_storeu_si128((__m128i *)(void *)(plane + r * DWN_PAIR_PITCH), zpv);
    for (int64_t i = 0; i < h; ++i)
        _mm_mask_storeu_epi8(first + i * DWN_PAIR_PITCH, m,
                             _mm_xor_si128(_mm_maskz_loadu_epi8(m, xc + i * w), fl));
}

/* R rows and NQ quads: compile-time constants (3, 1) or runtime (0, 0: d->r, (d->s + 3) / 4) */
T512 INL void dwn_pairs(const fxq_conv_dims *d, const uint8_t *plane, const __m512i (*wq)[DWN_MAXQ],
                        __m512i corr, uint8_t *oc, int64_t esz, const int R0, const int NQ0,
                        const int scheme, const qv *v) {
    const int64_t ow = d->ow, oh_n = d->oh, R = R0 ? R0 : d->r, NQ = NQ0 ? NQ0 : (d->s + 3) / 4;
    const __mmask16 row = (__mmask16)((1u << ow) - 1), two = (__mmask16)((1u << (2 * ow)) - 1);
    for (int64_t oh = 0; oh < oh_n; oh += 2) {
        const int both = oh + 1 < oh_n;
        const uint8_t *src = plane + oh * DWN_PAIR_PITCH;
        __m512i a = corr;
#pragma GCC unroll 8
        for (int64_t r = 0; r < R; ++r)
#pragma GCC unroll 2
            for (int64_t q = 0; q < NQ; ++q)
                a = _mm512_dpbusd_epi32(a, dwn_window2(src + r * DWN_PAIR_PITCH + 4 * q), wq[r][q]);
        if (ow < 8 && both) /* rows oh and oh+1 are contiguous in the output: close the gap */
            a = _mm512_maskz_compress_epi32((__mmask16)(row | row << 8), a);
        dwn_store(oc + oh * ow * esz, a, both ? two : row, scheme, v);
    }
}

T512 INL void dwn_body(const fxq_conv_plan *p, const uint8_t *x, uint8_t flip, uint8_t zp_u,
                       uint8_t *plane, int64_t wrow, const int scheme) {
    const fxq_conv_dims *d = p->d;
    const int64_t R = d->r, S = d->s, SP = (S + 1) / 2, NQ = (S + 3) / 4;
    const int64_t esz = scheme == FXQ_SCHEME_NONE ? 4 : 1;
    const int16_t *w16 = (const int16_t *)(const void *)p->wpack; /* [kb][r][sp][16][2] */
    qv v;
    if (scheme != FXQ_SCHEME_NONE) qv_common(p->q, &v);
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t k = 0; k < d->k; ++k) {
            __m512i wq[DWN_MAXR][DWN_MAXQ];
            const __m512i corr = _mm512_set1_epi32(p->corr[k]);
            uint8_t *oc = (uint8_t *)p->out + (n * d->k + k) * d->oh * d->ow * esz;
            for (int64_t r = 0; r < R; ++r)
                for (int64_t q = 0; q < NQ; ++q) { /* the variants read q < (s + 3) / 4 */
                    uint32_t dw = 0;
                    for (int64_t t = 0; t < 4; ++t) {
                        const int64_t s = 4 * q + t;
                        const int16_t wv =
                            s < S ? w16[((k / 16 * R + r) * SP + s / 2) * 32 + (k % 16) * 2 + s % 2]
                                  : 0;
                        dw |= (uint32_t)(uint8_t)(int8_t)wv << (8 * t);
                    }
                    wq[r][q] = _mm512_set1_epi32((int32_t)dw);
                }
            if (scheme != FXQ_SCHEME_NONE) qv_channel(p->q, k, 1, &v);
            if (wrow == 0) { /* dwn_pairs' geometry (fxq_dwconv_nchw_avx512) */
                /* two planes, the next channel's made before this one's windows are loaded: a
                 * 64-byte load of 16-byte stores cannot be forwarded and waits for them to
                 * reach the cache */
                const int64_t pb = (d->h + 2 * d->pad_h + 4) * DWN_PAIR_PITCH, nk = n * d->k + k;
                if (nk == 0) dwn_plane16(d, x, flip, zp_u, plane);
                if (nk + 1 < d->n * d->k)
                    dwn_plane16(d, x + (nk + 1) * d->h * d->w, flip, zp_u,
                                plane + ((nk + 1) & 1) * pb);
                if (R == 3 && NQ == 1)
                    dwn_pairs(d, plane + (nk & 1) * pb, (const __m512i(*)[DWN_MAXQ])wq, corr, oc,
                              esz, 3, 1, scheme, &v);
                else
                    dwn_pairs(d, plane + (nk & 1) * pb, (const __m512i(*)[DWN_MAXQ])wq, corr, oc,
                              esz, 0, 0, scheme, &v);
                continue;
            }
            dwn_plane(d, x + (n * d->c + k) * d->h * d->w, flip, zp_u, plane, wrow);
            if (d->stride_h == 1 && R == 3 && NQ == 1)
                dwn_rolling(d, plane, wrow, (const __m512i(*)[DWN_MAXQ])wq, corr, oc, esz, 3, 1,
                            scheme, &v);
            else if (d->stride_h == 1 && R == 5 && NQ == 1)
                dwn_rolling(d, plane, wrow, (const __m512i(*)[DWN_MAXQ])wq, corr, oc, esz, 5, 1,
                            scheme, &v);
            else if (d->stride_h == 1 && R == 5 && NQ == 2)
                dwn_rolling(d, plane, wrow, (const __m512i(*)[DWN_MAXQ])wq, corr, oc, esz, 5, 2,
                            scheme, &v);
            else
                dwn_direct(d, plane, wrow, (const __m512i(*)[DWN_MAXQ])wq, corr, oc, esz, scheme,
                           &v);
        }
}

/* FXQ_OK, or 1 when the geometry is not this kernel's (the caller runs the NCHW16c one) */
T512 int fxq_dwconv_nchw_avx512(const fxq_conv_plan *p, const uint8_t *x, uint8_t flip,
                                int32_t zp_u, void *scratch, int64_t scratch_bytes) {
    const fxq_conv_dims *d = p->d;
    int64_t wrow, reach;
    if (p->layout != FXQ_LAYOUT_NCHW || d->stride_w != 1 || d->r > DWN_MAXR || d->s > 4 * DWN_MAXQ)
        return 1;
    /* a window load reads 32 bytes from column 16 b + 4 q */
    reach = ((d->ow + 15) / 16 - 1) * 16 + 4 * ((d->s + 3) / 4 - 1) + 32;
    wrow = d->pad_w + d->w + d->pad_w;
    if (reach > wrow) wrow = reach;
    wrow = (wrow + 63) / 64 * 64;
    if ((d->h + 2 * d->pad_h) * wrow > scratch_bytes) return 1;
    if (d->stride_h == 1 && d->ow <= 8 && d->pad_w + d->w + d->pad_w <= DWN_PAIR_PITCH &&
        2 * (d->h + 2 * d->pad_h + 4) * DWN_PAIR_PITCH <= scratch_bytes)
        wrow = 0; /* two output rows per zmm (two planes) */
    if (p->scheme == FXQ_SCHEME_NONE) {
        dwn_body(p, x, flip, (uint8_t)zp_u, (uint8_t *)scratch, wrow, FXQ_SCHEME_NONE);
        return FXQ_OK;
    }
#define FXQ_DWN_BODY(S) dwn_body(p, x, flip, (uint8_t)zp_u, (uint8_t *)scratch, wrow, S)
    FXQ_SCHEME_SWITCH(p->scheme, FXQ_DWN_BODY)
#undef FXQ_DWN_BODY
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Peak probe: 20 independent accumulator chains (latency 5 would allow 4 per cycle), register
 * operands only -- the ceiling any AVX-512 VNNI kernel can reach on this core.
 * ---------------------------------------------------------------------------------------------- */
#define FXQ_DP(i) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #i "\n\t"
T512 int fxq_probe_vpdpbusd_zmm(int64_t iters) {
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

#define FXQ_DPY(i) "vpdpbusd %%ymm30, %%ymm31, %%ymm" #i "\n\t"
T512 int64_t fxq_probe_vpdpbusd_ymm_avx512(int64_t iters) {
    const int64_t n = iters;
    if (iters <= 0) return 0;
    __asm__ volatile(
        "vpxord %%ymm30, %%ymm30, %%ymm30\n\t"
        "vpxord %%ymm31, %%ymm31, %%ymm31\n\t"
        "1:\n\t"
        FXQ_DPY(0) FXQ_DPY(1) FXQ_DPY(2) FXQ_DPY(3) FXQ_DPY(4) FXQ_DPY(5) FXQ_DPY(6) FXQ_DPY(7)
        FXQ_DPY(8) FXQ_DPY(9) FXQ_DPY(10) FXQ_DPY(11) FXQ_DPY(12) FXQ_DPY(13) FXQ_DPY(14) FXQ_DPY(15)
        FXQ_DPY(16) FXQ_DPY(17) FXQ_DPY(18) FXQ_DPY(19)
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(iters)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",
          "xmm30", "xmm31", "cc");
    return n * 20 * 32;
}

/* The tile's own instruction mix (tile_body for NKB 2, PX 14, one c4 step per group): two 64-byte
 * weight loads, then for each of 14 pixels one vpbroadcastd from memory feeding two vpdpbusd, 28
 * accumulators; four groups (c4 = 0..3) per iteration over small stack buffers of non-zero bytes.
 * The rate this mix reaches is the floor of the AVX-512 conv tile without its loop and epilogue. */
#define FXQ_BC_PX(i, i2, b, c4)                      \
    "vpbroadcastd " #i "*16+" #c4 "*4(%1), %%zmm" #b \
    "\n\t"                                           \
    "vpdpbusd %%zmm28, %%zmm" #b ", %%zmm" #i        \
    "\n\t"                                           \
    "vpdpbusd %%zmm29, %%zmm" #b ", %%zmm" #i2 "\n\t"
#define FXQ_BC_GROUP(c4)                                                                          \
    "vmovdqa64 " #c4                                                                              \
    "*64(%2), %%zmm28\n\t"                                                                        \
    "vmovdqa64 256+" #c4 "*64(%2), %%zmm29\n\t" FXQ_BC_PX(0, 14, 30, c4) FXQ_BC_PX(1, 15, 31, c4) \
        FXQ_BC_PX(2, 16, 30, c4) FXQ_BC_PX(3, 17, 31, c4) FXQ_BC_PX(4, 18, 30, c4)                \
            FXQ_BC_PX(5, 19, 31, c4) FXQ_BC_PX(6, 20, 30, c4) FXQ_BC_PX(7, 21, 31, c4)            \
                FXQ_BC_PX(8, 22, 30, c4) FXQ_BC_PX(9, 23, 31, c4) FXQ_BC_PX(10, 24, 30, c4)       \
                    FXQ_BC_PX(11, 25, 31, c4) FXQ_BC_PX(12, 26, 30, c4) FXQ_BC_PX(13, 27, 31, c4)
T512 static int64_t probe_vpdpbusd_bcast(int64_t iters) {
    __attribute__((aligned(64))) uint8_t xb[256], wb[512];
    const int64_t n = iters;
    if (iters <= 0) return 0;
    for (int i = 0; i < 256; ++i) xb[i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < 512; ++i) wb[i] = (uint8_t)(i * 53 + 7);
    __asm__ volatile(
        "1:\n\t" /* the accumulators' start values do not matter */
        FXQ_BC_GROUP(0) FXQ_BC_GROUP(1) FXQ_BC_GROUP(2) FXQ_BC_GROUP(3)
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : "+r"(iters)
        : "r"(xb), "r"(wb)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
          "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",
          "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",
          "xmm29", "xmm30", "xmm31", "cc", "memory");
    return n * 4 * 28 * 64;
}

int64_t fxq_probe_macs(int kind, int64_t iters) {
    switch (kind) {
        case FXQ_PROBE_VPDPBUSD_BCAST:
            if (!fxq_path_available(FXQ_PATH_AVX512)) return FXQ_ERR_PATH;
            return probe_vpdpbusd_bcast(iters);
        case FXQ_PROBE_VPMADDWD_YMM:
        case FXQ_PROBE_VPMADDUBSW_TRIPLE:
        case FXQ_PROBE_VPSIGNB_QUAD:
        case FXQ_PROBE_VPXOR_QUAD:
            if (!fxq_path_available(FXQ_PATH_AVX2)) return FXQ_ERR_PATH;
            return fxq_probe_avx2(kind, iters);
        case FXQ_PROBE_VPDPBUSD_YMM:
            if (!fxq_path_available(FXQ_PATH_AVX512)) return FXQ_ERR_PATH;
            return fxq_probe_vpdpbusd_ymm_avx512(iters);
        case FXQ_PROBE_VPDPBUSD_ZMM: {
            int st = fxq_probe_vpdpbusd_zmm(iters);
            return st < 0 ? st : (iters > 0 ? iters * 20 * 64 : 0);
        }
        case FXQ_PROBE_TDPBUSD:
            if (!fxq_path_available(FXQ_PATH_AMX)) return FXQ_ERR_PATH;
            return amx_probe(iters);
        default:
            return FXQ_ERR_ARG;
    }
}

#else
int64_t fxq_probe_macs(int kind, int64_t iters) {
    (void)kind;
    (void)iters;
    return FXQ_ERR_PATH;
}

int fxq_probe_vpdpbusd_zmm(int64_t iters) {
    (void)iters;
    return FXQ_ERR_PATH;
}
#endif /* FXQ_HAVE_X86 */
