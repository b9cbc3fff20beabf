/* fxq_simd.h -- the SIMD code written once, over a small per-ISA primitive set.
 *
 * gemmlowp style (fixedpoint.h over fixedpoint_avx.h): each ISA file (fxq_avx2.c, fxq_avx512.c)
 * defines, before including this file,
 *   FXQ_T              the target attribute of every function here
 *   VI, VF, VL         the int32 / float vector types and their lane count (8 or 16)
 *   FXQ_ISA(name)      name##_avx2 / name##_avx512 (the exported entry points)
 *   the primitives     vi_* / vf_* below (one line each: an intrinsic or two)
 * and gets: the per-channel parameter vectors (qv), the requantization epilogue rq_vec (the SIMD
 * twin of fxq_requant_scalar), the 16x16 byte transpose, NCHW packing and unpacking, the
 * standalone requantization and the convolution driver with its fused epilogue.  The ISA file
 * then only supplies the MAC register tile (isa_tile).
 *
 * Primitives (lanes are int32 unless the name says 64):
 *   vi_load(p) vi_set1(x) vi_load64(p) vi_set1_64(x) vi_zero()
 *   vi_add vi_sub vi_min vi_max vi_and            vi_sllv vi_srav (per-lane counts)
 *   vi_srai31(a) (sign mask)  vi_srai1(a)
 *   vi_mul_even(a, b)   64-bit products of the even int32 lanes (vpmuldq)
 *   vi_odd_to_even(a)   odd int32 lanes moved to the even ones (64-bit logical shift right 32)
 *   vi_add64            vi_even_hi31(p): bits 31..62 of each 64-bit lane, in its even half
 *   vi_blend_odd(e, o)  even lanes of e, odd lanes of o (o's odd lanes = 64-bit lane << 32)
 *   vi_odd_from_hi31(p) bits 31..62 of each 64-bit lane, into the odd int32 lane
 *   vi_odd_from_lo(p)   low 32 bits of each 64-bit lane, into the odd int32 lane
 *   vi_inc_gt(r, a, b)  r + (a > b ? 1 : 0)
 *   vi_sra64_clamp(p, n, lo, hi)  floor(p / 2^n) clamped to [lo, hi] (64-bit lanes)
 *   vf_load vf_set1 vf_mul vf_min vf_max vf_from_vi (RNE) vi_from_vf (RNE)
 *   vi_store(p, a) vi_xor
 *   vi_store_bytes(dst, r)        VL bytes: the low byte of each lane (values in range)
 *   byte vectors (VL*4 bytes, FXQ_PXB 128-bit lanes): vb_unpacklo8 / vb_unpackhi8 (in-lane),
 *   vb_loadu_n(p, n) (n <= VL*4 bytes, zero-filled, never reads past p + n), vb_storeu_n(p, v, n),
 *   vb_store_lane(p, v, L) (16 bytes of lane L), vb_load_lanes(p, stride) (lane L from p +
 * L*stride)
 */
#include <string.h>

#define FXQ_INL static inline __attribute__((always_inline))
#define FXQ_NV (16 / VL) /* vectors per 16-channel block */

/* ------------------------------------------------------------------------------------------------
 * Requantization parameters of VL channels, one per lane
 * ---------------------------------------------------------------------------------------------- */

typedef struct {
    VF scale, flo, fhi;
    VI a, b, c, d, e, f; /* scheme-specific, see qv_load */
    VI rnd_e, rnd_o, rsh_e, rsh_o;
    VI lo, hi, lo64, hi64, zp;
    int fits32; /* tflite_single: every result fits int32 */
    int sat;    /* the conv epilogue's saturating store (qv_epi): 0 off, 1 uint8, 2 int8 */
    int u8;     /* uint8 output */
} qv;

/* bcast == 0: channels k .. k+VL-1 (k a multiple of VL, arrays padded to kpad);
 * bcast == 1: channel k in every lane */
/* the members every channel shares, and zeros in the scheme members (qv_load = qv_common +
 * qv_channel; a loop over channels calls qv_common once) */
FXQ_T FXQ_INL void qv_common(const fxq_prepared *q, qv *v) {
    /* the members another scheme uses stay defined; member by member, not memset: a memset of
     * the whole struct becomes `rep stosq`, whose start-up cost dominates a per-vector load
     * (the fully connected epilogue) */
    v->scale = vf_set1(0.0f);
    v->a = v->b = v->c = v->d = v->e = v->f = vi_zero();
    v->rnd_e = v->rnd_o = v->rsh_e = v->rsh_o = vi_zero();
    v->flo = vf_set1((float)q->lo);
    v->fhi = vf_set1((float)q->hi);
    v->lo = vi_set1(q->lo);
    v->hi = vi_set1(q->hi);
    v->lo64 = vi_set1_64(q->lo);
    v->hi64 = vi_set1_64(q->hi);
    v->zp = vi_set1(q->zero_point);
    v->fits32 = 0;
    v->sat = 0;
    v->u8 = q->out_dtype == FXQ_DTYPE_UINT8;
}

/* the scheme members of channels k .. k+VL-1 (bcast == 0) or of channel k in every lane */
FXQ_T FXQ_INL void qv_channel(const fxq_prepared *q, int64_t k, int bcast, qv *v) {
#define LD32(arr) (bcast ? vi_set1((arr)[k]) : vi_load((arr) + k))
#define LD64(arr, half) \
    (bcast ? vi_set1_64(q->u.single.arr[k]) : vi_load64(q->u.single.half + k / 2))
/* tflite's split arrays: the even (odd = 0) or odd (odd = 1) channels */
#define LD64T(ev, od, odd)                                            \
    (bcast ? vi_set1_64(((k & 1) ? q->u.tfl.od : q->u.tfl.ev)[k / 2]) \
           : vi_load64(((odd) ? q->u.tfl.od : q->u.tfl.ev) + k / 2))
    switch (q->scheme) {
        case FXQ_SCHEME_FLOAT32_RNE:
            v->scale = bcast ? vf_set1(q->u.f32.scale[k]) : vf_load(q->u.f32.scale + k);
            break;
        case FXQ_SCHEME_POW2:
            v->a = LD32(q->u.pow2.lsh);
            v->b = LD32(q->u.pow2.rsh);
            v->c = LD32(q->u.pow2.rbsh);
            v->d = LD32(q->u.pow2.rbmask);
            v->e = LD32(q->u.pow2.clampv);
            break;
        case FXQ_SCHEME_TFLITE:
            v->a = LD32(q->u.tfl.mult);
            v->b = LD32(q->u.tfl.lsh);
            v->f = vi_odd_to_even(v->a);
#ifdef FXQ_VI_SRAV64
            v->rnd_e = LD64T(rnd_e, rnd_o, 0);
            v->rnd_o = LD64T(rnd_e, rnd_o, 1);
            v->c = LD64T(cor_e, cor_o, 0);
            v->d = LD64T(cor_e, cor_o, 1);
            v->rsh_e = LD64T(rsh_e, rsh_o, 0);
            v->rsh_o = LD64T(rsh_e, rsh_o, 1);
#else
            v->c = LD32(q->u.tfl.rsh);
            v->d = LD32(q->u.tfl.mask);
            v->e = vi_srai1(v->d);
#endif
            break;
        case FXQ_SCHEME_TFLITE_SINGLE:
            v->a = LD32(q->u.single.mult);
            v->f = vi_odd_to_even(v->a);
            v->rnd_e = LD64(rnd, rnd_e);
            v->rnd_o = LD64(rnd, rnd_o);
            v->rsh_e = LD64(rsh, rsh_e);
            v->rsh_o = LD64(rsh, rsh_o);
            v->fits32 = q->u.single.fits32;
            break;
        default:
            break;
    }
#undef LD32
#undef LD64
#undef LD64T
}

FXQ_T FXQ_INL void qv_load(const fxq_prepared *q, int64_t k, int bcast, qv *v) {
    qv_common(q, v);
    qv_channel(q, k, bcast, v);
}

#ifdef FXQ_VI_SRAV64
/* tflite's two roundings as one 64-bit shift, before the clamp: (x * M + rnd - (x < 0 ? cor : 0))
 * >> (31 + R) (SRDHM rounds half up, RDBPOT half away from zero; for R >= 1 the sign of x stands
 * in for the sign of the SRDHM result, which differs only where that result is 0) */
FXQ_T FXQ_INL VI rq_tflite64_x(VI x, const qv *v) {
    VI xo = vi_odd_to_even(x);
    VI pe = vi_add64(vi_mul_even(x, v->a), v->rnd_e);
    VI po = vi_add64(vi_mul_even(xo, v->f), v->rnd_o);
    return vi_lo32_pair(vi_sub_if_neg_srav64(pe, x, v->c, v->rsh_e),
                        vi_sub_if_neg_srav64(po, xo, v->d, v->rsh_o));
}

/* x = acc << lsh (lsh > 0 only where R = 0) */
FXQ_T FXQ_INL VI rq_tflite64(VI acc, const qv *v) {
    return rq_tflite64_x(vi_sllv(acc, v->b), v);
}

/* tflite_single when every result fits int32 (fits32), before the clamp */
FXQ_T FXQ_INL VI rq_single64(VI acc, const qv *v) {
    VI pe = vi_add64(vi_mul_even(acc, v->a), v->rnd_e);
    VI po = vi_add64(vi_mul_even(vi_odd_to_even(acc), v->f), v->rnd_o);
    return vi_lo32_pair(vi_srav64(pe, v->rsh_e), vi_srav64(po, v->rsh_o));
}
#endif

/* The requantization epilogue, written once: the SIMD twin of fxq_requant_scalar(); result in
 * [qmin, qmax] as int32 lanes. */
FXQ_T FXQ_INL VI rq_vec(VI acc, const int scheme, const qv *v) {
    VI r;
    switch (scheme) {
        case FXQ_SCHEME_FLOAT32_RNE: { /* f32(acc) * scale, clamp in float, round half to even */
            VF f = vf_mul(vf_from_vi(acc), v->scale);
            f = vf_min(vf_max(f, v->flo), v->fhi);
            return vi_add(vi_from_vf(f), v->zp);
        }
        case FXQ_SCHEME_POW2: { /* pre-clamp, shift left, then (a >> n) + bit n-1 of a */
            VI a = vi_min(vi_max(acc, vi_sub(vi_zero(), v->e)), v->e);
            a = vi_sllv(a, v->a);
            r = vi_add(vi_srav(a, v->b), vi_and(vi_srav(a, v->c), v->d));
            break;
        }
        case FXQ_SCHEME_TFLITE: { /* SRDHM (M >= 0: no saturation case), then RoundingDivideByPOT */
#ifdef FXQ_VI_SRAV64
            r = rq_tflite64(acc, v);
#else
            VI x = vi_sllv(acc, v->b);
            const VI half = vi_set1_64((int64_t)1 << 30);
            VI pe = vi_add64(vi_mul_even(x, v->a), half);
            VI po = vi_add64(vi_mul_even(vi_odd_to_even(x), v->f), half);
            VI y = vi_blend_odd(vi_even_hi31(pe), vi_odd_from_hi31(po));
            VI rem = vi_and(y, v->d);
            VI thr = vi_sub(v->e, vi_srai31(y)); /* + 1 where y < 0: ties away from zero */
            r = vi_inc_gt(vi_srav(y, v->c), rem, thr);
#endif
            break;
        }
        case FXQ_SCHEME_TFLITE_SINGLE: { /* (acc * M + 2^(30-shift)) >> (31-shift), 64-bit lanes */
#ifdef FXQ_VI_SRAV64
            if (v->fits32) { /* narrow first, clamp 16 lanes at once */
                r = rq_single64(acc, v);
                break;
            }
#endif
            VI pe = vi_add64(vi_mul_even(acc, v->a), v->rnd_e);
            VI po = vi_add64(vi_mul_even(vi_odd_to_even(acc), v->f), v->rnd_o);
            pe = vi_sra64_clamp(pe, v->rsh_e, v->lo64, v->hi64);
            po = vi_sra64_clamp(po, v->rsh_o, v->lo64, v->hi64);
            return vi_add(vi_blend_odd(pe, vi_odd_from_lo(po)), v->zp);
        }
        default:
            return acc;
    }
    r = vi_min(vi_max(r, v->lo), v->hi);
    return vi_add(r, v->zp);
}

#ifdef FXQ_VI_SRAV64
/* v->sat (qv_epi): the zero point (minus 128 for uint8) is already in the rounding constants, so
 * the shifted value is the output (minus 128), unclamped: a saturating narrow is the clamp, and
 * for uint8 flipping bit 7 of each byte adds the 128 back */
FXQ_T FXQ_INL int rq_sat(const int scheme, const qv *v) {
    return v->sat && (scheme == FXQ_SCHEME_TFLITE || scheme == FXQ_SCHEME_TFLITE_SINGLE);
}
/* that value (tflite: R >= 2 there, so no left shift) */
FXQ_T FXQ_INL VI rq_sat_vec(VI acc, const int scheme, const qv *v) {
    return scheme == FXQ_SCHEME_TFLITE ? rq_tflite64_x(acc, v) : rq_single64(acc, v);
}
#endif

/* The conv epilogue's store of one vector of results (dst: VL bytes): the saturating form where
 * rq_sat says so, else rq_vec and a truncating narrow. */
FXQ_T FXQ_INL void rq_store(uint8_t *dst, VI acc, const int scheme, const qv *v) {
#ifdef FXQ_VI_SRAV64
    if (rq_sat(scheme, v)) {
        vi_store_bytes_sat(dst, rq_sat_vec(acc, scheme, v), v->sat == 1);
        return;
    }
#endif
    vi_store_bytes(dst, rq_vec(acc, scheme, v));
}

#ifdef FXQ_VI_SRAV64
/* rq_store of four vectors whose outputs are contiguous (dst: 4 * VL bytes): the int32 results
 * narrowed by two saturating packs and one permute for all four, instead of one narrow each */
FXQ_T FXQ_INL void rq_store4(uint8_t *dst, const VI *acc, const int scheme, const qv *v) {
    const int sat = rq_sat(scheme, v);
    VI r[4];
    for (int k = 0; k < 4; ++k) /* rq_vec: in [qmin, qmax] */
        r[k] = sat ? rq_sat_vec(acc[k], scheme, v) : rq_vec(acc[k], scheme, v);
    vi_store_bytes4(
        dst, r,
        sat ? (v->sat == 1 ? FXQ_PACK_S8_FLIP : FXQ_PACK_S8) : (v->u8 ? FXQ_PACK_U8 : FXQ_PACK_S8));
}
#endif

/* Switch v (from qv_load, used only through rq_store) to the saturating store where that is
 * exact: tflite, or tflite_single with fits32; the clamp is the output type's whole range; and
 * every shift (31 + R, or 31 - shift) is in [33, 53]: then the shifted value plus the zero
 * point fits int32 (|x * M| < 2^62, so the value is below 2^29 + 129 in magnitude) and
 * z * 2^shift + rnd + x * M stays within int64 (|z| <= 128: below 2^62 + 2^61).  The bounds
 * that hold exactly are [32, 54]; one step inside each leaves a margin. */
FXQ_T FXQ_INL void qv_epi(const fxq_prepared *q, qv *v) {
#ifdef FXQ_VI_SRAV64
    int mode;
    int64_t z;
    if (q->scheme != FXQ_SCHEME_TFLITE && !(q->scheme == FXQ_SCHEME_TFLITE_SINGLE && v->fits32))
        return;
    if (q->out_dtype == FXQ_DTYPE_UINT8 && q->qmin == 0 && q->qmax == 255) {
        mode = 1;
        z = (int64_t)q->zero_point - 128;
    } else if (q->out_dtype == FXQ_DTYPE_INT8 && q->qmin == -128 && q->qmax == 127) {
        mode = 2;
        z = q->zero_point;
    } else {
        return;
    }
    if (z < -128 || z > 128 || !vi_all_in64(v->rsh_e, 33, 53) || !vi_all_in64(v->rsh_o, 33, 53))
        return;
    v->rnd_e = vi_add64(v->rnd_e, vi_sllv64(vi_set1_64(z), v->rsh_e));
    v->rnd_o = vi_add64(v->rnd_o, vi_sllv64(vi_set1_64(z), v->rsh_o));
    v->sat = mode;
#else
    (void)q;
    (void)v;
#endif
}

/* the parameters of channels k .. k+VL-1 for the conv epilogue (rq_store) */
FXQ_T FXQ_INL void qv_load_conv(const fxq_prepared *q, int64_t k, qv *v) {
    qv_load(q, k, 0, v);
    qv_epi(q, v);
}

/* n < VL accumulators (a row tail), through a zero-padded buffer */
FXQ_T FXQ_INL void rq_tail(const int32_t *acc, uint8_t *out, int64_t n, const int scheme,
                           const qv *v) {
    int32_t a[VL];
    uint8_t b[VL];
    memset(a, 0, sizeof(a));
    memcpy(a, acc, (size_t)n * 4);
    vi_store_bytes(b, rq_vec(vi_load(a), scheme, v));
    memcpy(out, b, (size_t)n);
}

/* ------------------------------------------------------------------------------------------------
 * The 16x16 byte transpose (written once): four rounds of the perfect shuffle
 * t[2i] = lo(r[i], r[i+8]), t[2i+1] = hi(r[i], r[i+8]), in every 128-bit lane at once.
 * Row i's byte j (of each lane) ends up as row j's byte i.
 * ---------------------------------------------------------------------------------------------- */

FXQ_T FXQ_INL void transpose16x16(VI r[16]) {
    VI t[16];
    for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < 8; ++i) {
            t[2 * i] = vb_unpacklo8(r[i], r[i + 8]);
            t[2 * i + 1] = vb_unpackhi8(r[i], r[i + 8]);
        }
        for (int i = 0; i < 16; ++i) r[i] = t[i];
    }
}

#define FXQ_PXB (VL / 4) /* 128-bit lanes per vector = 16-pixel groups per transpose */

/* NCHW input -> a channels-last buffer, 16*FXQ_PXB pixels x 16 channels at a time: one load per
 * channel (partial loads never read past the row), the in-lane transpose, then lane L of
 * register i is pixel 16L + i's 16 channels.  dst0 is where pixel (n 0, h 0, w 0) of channel
 * block 0 goes; the strides (bytes) say where the others go.  Channels >= C of the last block
 * get 0. */
FXQ_T static void pack_nchw_strided(const fxq_conv_dims *d, const uint8_t *x, uint8_t flip,
                                    uint8_t *dst0, int64_t ncb, int64_t nstride, int64_t cbstride,
                                    int64_t rowstride, int64_t pxstride) {
    const int64_t PXS = 16 * FXQ_PXB;
    const VI vflip = vi_set1((int32_t)(0x01010101u * flip));
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t cb = 0; cb < ncb; ++cb)
            for (int64_t h = 0; h < d->h; ++h) {
                uint8_t *dst = dst0 + n * nstride + cb * cbstride + h * rowstride;
                for (int64_t w = 0; w < d->w; w += PXS) {
                    const int64_t np = d->w - w < PXS ? d->w - w : PXS;
                    VI r[16];
                    for (int c16 = 0; c16 < 16; ++c16) {
                        const int64_t c = cb * 16 + c16;
                        r[c16] =
                            c < d->c
                                ? vi_xor(vb_loadu_n(x + ((n * d->c + c) * d->h + h) * d->w + w, np),
                                         vflip)
                                : vi_zero();
                    }
                    transpose16x16(r);
                    for (int i = 0; i < 16; ++i)
                        for (int L = 0; L < FXQ_PXB; ++L)
                            if (16 * L + i < np)
                                vb_store_lane(dst + (w + 16 * L + i) * pxstride, r[i], L);
                }
            }
}

/* NCHW input -> the interior of the padded NCHW16c buffer xpack */
FXQ_T void FXQ_ISA(fxq_pack_input_nchw)(const fxq_conv_dims *d, const uint8_t *x, uint8_t flip,
                                        uint8_t *xpack, int64_t ncb, int64_t hp, int64_t wpa) {
    pack_nchw_strided(d, x, flip, xpack + (d->pad_h * wpa + d->pad_w) * 16, ncb,
                      ncb * hp * wpa * 16, hp * wpa * 16, wpa * 16, 16);
}

/* rows[ow][16] (one output row of a 16-channel block, 8-bit) -> out[k16][ow] (NCHW): the same
 * transpose backwards, 16*FXQ_PXB pixels at a time. */
FXQ_T static void row_to_nchw(const uint8_t *rows, int64_t ow_total, uint8_t *out,
                              int64_t chan_stride, int64_t kvalid) {
    const int64_t PXS = 16 * FXQ_PXB;
    for (int64_t ow0 = 0; ow0 < ow_total; ow0 += PXS) {
        const int64_t np = ow_total - ow0 < PXS ? ow_total - ow0 : PXS;
        const uint8_t *src = rows + ow0 * 16;
        VI r[16];
        for (int i = 0; i < 16; ++i) r[i] = vb_load_lanes(src + i * 16, 256); /* pixel 16L + i */
        transpose16x16(r);
        for (int64_t c = 0; c < kvalid; ++c) vb_storeu_n(out + c * chan_stride + ow0, r[c], np);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Standalone requantization: acc viewed as (outer, channels, inner)
 * ---------------------------------------------------------------------------------------------- */

FXQ_T FXQ_INL void requantize_body(const int32_t *acc, uint8_t *out, int64_t outer,
                                   int64_t channels, int64_t inner, const int scheme,
                                   const fxq_prepared *q) {
    if (inner == 1 && channels > 1) { /* channels innermost: one lane per channel */
        for (int64_t o = 0; o < outer; ++o) {
            const int32_t *a = acc + o * channels;
            uint8_t *b = out + o * channels;
            for (int64_t c0 = 0; c0 < channels; c0 += VL) {
                qv v;
                qv_load(q, c0, 0, &v);
                if (channels - c0 >= VL)
                    vi_store_bytes(b + c0, rq_vec(vi_load(a + c0), scheme, &v));
                else
                    rq_tail(a + c0, b + c0, channels - c0, scheme, &v);
            }
        }
        return;
    }
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            qv v;
            const int64_t base = (o * channels + c) * inner;
            int64_t i = 0;
            qv_load(q, c, 1, &v);
            for (; i + 2 * VL <= inner; i += 2 * VL) {
                VI r0 = rq_vec(vi_load(acc + base + i), scheme, &v);
                VI r1 = rq_vec(vi_load(acc + base + i + VL), scheme, &v);
                vi_store_bytes(out + base + i, r0);
                vi_store_bytes(out + base + i + VL, r1);
            }
            for (; i + VL <= inner; i += VL)
                vi_store_bytes(out + base + i, rq_vec(vi_load(acc + base + i), scheme, &v));
            if (i < inner) rq_tail(acc + base + i, out + base + i, inner - i, scheme, &v);
        }
}

FXQ_T int FXQ_ISA(fxq_requantize)(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                                  int64_t inner, const fxq_prepared *q) {
    uint8_t *o = (uint8_t *)out;
    if (q->scheme < FXQ_SCHEME_FLOAT32_RNE || q->scheme > FXQ_SCHEME_TFLITE_SINGLE)
        return FXQ_ERR_ARG;
#define FXQ_RQ_BODY(S) requantize_body(acc, o, outer, channels, inner, S, q)
    FXQ_SCHEME_SWITCH(q->scheme, FXQ_RQ_BODY)
#undef FXQ_RQ_BODY
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Convolution: the driver and the fused epilogue.  The ISA file supplies
 *   isa_tile(p, g, xoff, kb, nkb, P, acc): acc[(j * FXQ_TILE + i) * FXQ_NV + h] = channels
 *   kb*16 + j*16 + h*VL ..  of output pixel i (at least P <= FXQ_TILE pixels from element offset
 *   xoff of the packed input, stride g->sw16), without the correction (with it where the ISA
 *   defines FXQ_TILE_HAS_CORR 1);
 *   dw_pair(x, w, acc): acc[h] += the depthwise products of two neighbouring taps (x: 32 bytes,
 *   the 16 channels of two pixels; w: int16 [16 channels][2 taps]), channel h*VL + lane.
 * ---------------------------------------------------------------------------------------------- */

typedef struct {
    int64_t cbs;  /* elements between input channel blocks: hp * wpa * 16 */
    int64_t rows; /* elements between input rows: wpa * 16 */
    int64_t sw16; /* elements between neighbouring output pixels: stride_w * 16 */
    int64_t ncb, R, S;
    int64_t wkb; /* weight bytes between blocks of 16 output channels: cb * R * S * 256 */
    const int32_t *corr;
} tile_geom;

FXQ_T static void isa_tile(const fxq_conv_plan *p, const tile_geom *g, int64_t xoff, int64_t kb,
                           int nkb, int P, VI *acc);

/* the most pixels one epilogue call takes: a register tile, or an AMX C tile's 16 rows */
#define FXQ_EPI_MAXP (FXQ_TILE > 16 ? FXQ_TILE : 16)
#ifndef FXQ_TILE_HAS_CORR
#define FXQ_TILE_HAS_CORR 0
#endif

/* requantize and store P <= FXQ_EPI_MAXP pixels of one 16-channel block (qv: FXQ_NV of them);
 * add_corr: the accumulators lack the correction g->corr yet (an ISA whose isa_tile starts its
 * accumulators from it defines FXQ_TILE_HAS_CORR 1) */
FXQ_T static void epilogue(const fxq_conv_plan *p, const tile_geom *g, VI *acc, int64_t n,
                           int64_t kb, int64_t oh, int64_t ow0, int P, const qv *qvs,
                           int add_corr) {
    const fxq_conv_dims *d = p->d;
    const int64_t OH = d->oh, OW = d->ow;
    const int64_t kvalid = d->k - kb * 16 < 16 ? d->k - kb * 16 : 16;
    for (int h = 0; add_corr && h < FXQ_NV; ++h) {
        const VI c = vi_load(g->corr + kb * 16 + h * VL);
        for (int i = 0; i < P; ++i) acc[i * FXQ_NV + h] = vi_add(acc[i * FXQ_NV + h], c);
    }
    if (p->scheme == FXQ_SCHEME_NONE) {
        int32_t *out = (int32_t *)p->out;
        if (p->layout == FXQ_LAYOUT_NCHW16C) {
            int32_t *o = out + (((n * p->kb + kb) * OH + oh) * OW + ow0) * 16;
            for (int i = 0; i < P * FXQ_NV; ++i) vi_store(o + i * VL, acc[i]);
        } else if (p->layout == FXQ_LAYOUT_NHWC) {
            int32_t tmp[16];
            for (int i = 0; i < P; ++i) {
                int32_t *o = out + ((n * OH + oh) * OW + ow0 + i) * d->k + kb * 16;
                for (int h = 0; h < FXQ_NV; ++h) vi_store(tmp + h * VL, acc[i * FXQ_NV + h]);
                memcpy(o, tmp, (size_t)kvalid * 4);
            }
        } else {
            int32_t tmp[FXQ_EPI_MAXP][16];
            for (int i = 0; i < P; ++i)
                for (int h = 0; h < FXQ_NV; ++h) vi_store(tmp[i] + h * VL, acc[i * FXQ_NV + h]);
            for (int64_t k16 = 0; k16 < kvalid; ++k16) {
                int32_t *o = out + ((n * d->k + kb * 16 + k16) * OH + oh) * OW + ow0;
                for (int i = 0; i < P; ++i) o[i] = tmp[i][k16];
            }
        }
        return;
    }
    {
        /* NCHW16c: straight to the output; NCHW: into the row buffer, transposed by
         * row_to_nchw once the row is complete; NHWC: straight to the output when the block has
         * 16 channels, else through tmp (a partial block must not touch the next pixel) */
        uint8_t tmp[FXQ_EPI_MAXP][16];
        uint8_t *o;
        int64_t ostride = 16;
        if (p->layout == FXQ_LAYOUT_NCHW16C) {
            o = (uint8_t *)p->out + (((n * p->kb + kb) * OH + oh) * OW + ow0) * 16;
        } else if (p->layout == FXQ_LAYOUT_NCHW) {
            o = p->rowbuf + (kb & 1) * p->rowbuf_stride + ow0 * 16;
        } else if (kvalid == 16) {
            o = (uint8_t *)p->out + ((n * OH + oh) * OW + ow0) * d->k + kb * 16;
            ostride = d->k;
        } else {
            o = &tmp[0][0];
        }
#ifdef FXQ_VI_SRAV64
/* AVX-512 (FXQ_NV 1): a local copy of the parameters (the byte stores may alias qvs, so through
 * the pointer every member would be loaded again for each vector; 32 registers hold the copy),
 * and four vectors per store where their bytes are contiguous */
#define FXQ_EPI_BODY(S)                                                        \
    {                                                                          \
        const qv vq = qvs[0];                                                  \
        int i = 0;                                                             \
        if (ostride == VL)                                                     \
            for (; i + 4 <= P; i += 4) rq_store4(o + i * VL, acc + i, S, &vq); \
        for (; i < P; ++i) rq_store(o + i * ostride, acc[i], S, &vq);          \
    }
#else
#define FXQ_EPI_BODY(S)                  \
    for (int i = 0; i < P; ++i)          \
        for (int h = 0; h < FXQ_NV; ++h) \
            rq_store(o + i * ostride + h * VL, acc[i * FXQ_NV + h], S, &qvs[h]);
#endif
        FXQ_SCHEME_SWITCH(p->scheme, FXQ_EPI_BODY)
#undef FXQ_EPI_BODY
        if (o == &tmp[0][0])
            for (int i = 0; i < P; ++i)
                memcpy((uint8_t *)p->out + ((n * OH + oh) * OW + ow0 + i) * d->k + kb * 16, tmp[i],
                       (size_t)kvalid);
    }
}

/* Blocks of FXQ_NKB 16-channel output blocks outside the rows: their weights (cb*R*S*256*FXQ_NKB
 * bytes, 18 KiB for the seed layer on AVX-512) stay in L1 while the input rows stream through. */
FXQ_T static int conv_driver(const fxq_conv_plan *p, const int32_t *corr) {
    const fxq_conv_dims *d = p->d;
    tile_geom g;
    VI acc[FXQ_NKB * FXQ_TILE * FXQ_NV];
    g.cbs = p->hp * p->wpa * 16;
    g.rows = p->wpa * 16;
    g.sw16 = d->stride_w * 16;
    g.ncb = p->cb;
    g.R = d->r;
    g.S = d->s;
    g.wkb = p->cb * d->r * d->s * 256;
    g.corr = corr;
    if (p->scheme != FXQ_SCHEME_NONE && p->layout == FXQ_LAYOUT_NCHW)
        memset(p->rowbuf, 0, (size_t)(2 * p->rowbuf_stride));
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t kb = 0; kb < p->kb;) {
            const int nkb = p->kb - kb >= FXQ_NKB ? FXQ_NKB : (int)(p->kb - kb);
            qv qvs[FXQ_NKB][FXQ_NV]; /* the blocks' requantization parameters, loaded once */
            if (p->scheme != FXQ_SCHEME_NONE)
                for (int j = 0; j < nkb; ++j)
                    for (int h = 0; h < FXQ_NV; ++h)
                        qv_load_conv(p->q, (kb + j) * 16 + h * VL, &qvs[j][h]);
            for (int64_t oh = 0; oh < d->oh; ++oh) {
                for (int64_t ow0 = 0; ow0 < d->ow; ow0 += FXQ_TILE) {
                    const int P = d->ow - ow0 < FXQ_TILE ? (int)(d->ow - ow0) : FXQ_TILE;
                    const int64_t xoff =
                        (n * p->cb * p->hp + oh * d->stride_h) * g.rows + ow0 * g.sw16;
                    isa_tile(p, &g, xoff, kb, nkb, P, acc);
                    for (int j = 0; j < nkb; ++j)
                        epilogue(p, &g, acc + j * FXQ_TILE * FXQ_NV, n, kb + j, oh, ow0, P, qvs[j],
                                 !FXQ_TILE_HAS_CORR);
                }
                if (p->scheme != FXQ_SCHEME_NONE && p->layout == FXQ_LAYOUT_NCHW)
                    for (int j = 0; j < nkb; ++j) {
                        const int64_t kvalid =
                            d->k - (kb + j) * 16 < 16 ? d->k - (kb + j) * 16 : 16;
                        row_to_nchw(
                            p->rowbuf + ((kb + j) & 1) * p->rowbuf_stride, d->ow,
                            (uint8_t *)p->out + ((n * d->k + (kb + j) * 16) * d->oh + oh) * d->ow,
                            d->oh * d->ow, kvalid);
                    }
            }
            kb += nkb;
        }
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Depthwise convolution (groups = C = K): lane = channel, taps in pairs (dw_pair), the same
 * epilogue and row transposes as the dense driver.
 * ---------------------------------------------------------------------------------------------- */

FXQ_T FXQ_INL void dw_pixels(const uint8_t *x0, int64_t sw16, int64_t rows, const int16_t *wk,
                             const int64_t R, const int64_t SP, int P, VI *acc) {
    for (int i = 0; i < P; ++i) {
        VI a[FXQ_NV];
        const uint8_t *xp = x0 + i * sw16;
        for (int h = 0; h < FXQ_NV; ++h) a[h] = vi_zero();
        for (int64_t r = 0; r < R; ++r)
            for (int64_t sp = 0; sp < SP; ++sp)
                dw_pair(xp + r * rows + sp * 32, wk + (r * SP + sp) * 32, a);
        for (int h = 0; h < FXQ_NV; ++h) acc[i * FXQ_NV + h] = a[h];
    }
}

FXQ_T int FXQ_ISA(fxq_dwconv)(const fxq_conv_plan *p) {
    const fxq_conv_dims *d = p->d;
    const int64_t R = d->r, SP = (d->s + 1) / 2, rows = p->wpa * 16, sw16 = d->stride_w * 16;
    const int16_t *w16 = (const int16_t *)(const void *)p->wpack;
    tile_geom g;
    VI acc[FXQ_TILE * FXQ_NV];
    memset(&g, 0, sizeof(g));
    g.corr = p->corr;
    if (p->scheme != FXQ_SCHEME_NONE && p->layout == FXQ_LAYOUT_NCHW)
        memset(p->rowbuf, 0, (size_t)(2 * p->rowbuf_stride));
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t kb = 0; kb < p->kb; ++kb) {
            qv qvs[FXQ_NV];
            const int16_t *wk = w16 + kb * R * SP * 32;
            if (p->scheme != FXQ_SCHEME_NONE)
                for (int h = 0; h < FXQ_NV; ++h) qv_load_conv(p->q, kb * 16 + h * VL, &qvs[h]);
            for (int64_t oh = 0; oh < d->oh; ++oh) {
                const uint8_t *xrow =
                    p->xpack + ((n * p->cb + kb) * p->hp + oh * d->stride_h) * rows;
                for (int64_t ow0 = 0; ow0 < d->ow; ow0 += FXQ_TILE) {
                    const int P = d->ow - ow0 < FXQ_TILE ? (int)(d->ow - ow0) : FXQ_TILE;
                    if (R == 3 && SP == 2) /* 3x3: the taps unrolled */
                        dw_pixels(xrow + ow0 * sw16, sw16, rows, wk, 3, 2, P, acc);
                    else
                        dw_pixels(xrow + ow0 * sw16, sw16, rows, wk, R, SP, P, acc);
                    epilogue(p, &g, acc, n, kb, oh, ow0, P, qvs, 1);
                }
                if (p->scheme != FXQ_SCHEME_NONE && p->layout == FXQ_LAYOUT_NCHW) {
                    const int64_t kvalid = d->k - kb * 16 < 16 ? d->k - kb * 16 : 16;
                    row_to_nchw(p->rowbuf + (kb & 1) * p->rowbuf_stride, d->ow,
                                (uint8_t *)p->out + ((n * d->k + kb * 16) * d->oh + oh) * d->ow,
                                d->oh * d->ow, kvalid);
                }
            }
        }
    return FXQ_OK;
}
