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

static int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}
static int64_t align_up(int64_t a) {
    return (a + FXQ_ALIGN - 1) / FXQ_ALIGN * FXQ_ALIGN;
}

/* a*b with overflow check; returns -1 on overflow (all our sizes are non-negative). */
static int64_t mul_chk(int64_t a, int64_t b) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return -1;
    return r;
}

static int64_t mul_chk4(int64_t a, int64_t b, int64_t c, int64_t e) {
    int64_t r = mul_chk(a, b);
    if (r >= 0) r = mul_chk(r, c);
    if (r >= 0) r = mul_chk(r, e);
    return r;
}

typedef struct {
    int64_t cb, kb, kpad, hp, wp, wpa, groups;
    int kind; /* FXQ_KIND_* */
    int64_t off_xpack, off_wpack, off_corr, off_corr2, off_prep, off_xscratch, off_wpack16,
        off_rowbuf, total;
    int64_t xpack_bytes, wpack_bytes;
    /* the AMX operands (dense convolutions; they reuse the AVX2 scratch regions): input
     * [N][Hp][amx_wpa][amx_cpad] (a pixel's channels contiguous, a tile row = amx_kc of them),
     * weights [Kb][R][S][amx_cpad / amx_kc][amx_kc / 4][16][4] (one B tile each) */
    int64_t amx_m, amx_cpad, amx_kc, amx_wpa, amx_xbytes, amx_wbytes;
    /* grouped convolutions on the SIMD paths: one dense convolution per (image, group), with
     * its own workspace (grp_ws bytes) after the group's bias (grp_bias bytes) */
    int64_t grp_bias, grp_ws;
} conv_layout;

/* fxq_conv_call_prepare's block: this header, then the arrays P points into */
#define CONV_PREP_MAGIC 0x66787170726570ULL /* "fxqprep" */
typedef struct {
    uint64_t magic;
    const void *self; /* where it was made: a moved copy is refused */
    fxq_prepared P;
} conv_prep;

static int64_t prepared_bytes(int64_t kpad) {
    /* the largest member of the union: pow2's 5 int32 arrays, tflite's 4 int32 arrays and 6
     * half-length int64 arrays, or tflite_single's int32 array, 2 int64 arrays and 4 half-length
     * int64 arrays (each aligned) */
    const int64_t pow2 = 5 * align_up(kpad * 4);
    const int64_t tfl = 4 * align_up(kpad * 4) + 6 * align_up(kpad / 2 * 8);
    const int64_t single = align_up(kpad * 4) + 2 * align_up(kpad * 8) + 4 * align_up(kpad / 2 * 8);
    const int64_t m = pow2 > tfl ? pow2 : tfl;
    return m > single ? m : single;
}

static int plan_layout(const fxq_conv_dims *d, conv_layout *L);

/* the dense convolution of one (image, group) of a grouped convolution */
static void group_dims(const fxq_conv_dims *d, int64_t groups, fxq_conv_dims *g) {
    *g = *d;
    g->n = 1;
    g->c = d->c / groups;
    g->k = d->k / groups;
    g->groups = 1;
}

static int plan_layout(const fxq_conv_dims *d, conv_layout *L) {
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
    L->groups = d->groups == 0 ? 1 : d->groups;
    if (L->groups < 1 || d->c % L->groups != 0 || d->k % L->groups != 0) return FXQ_ERR_ARG;
    L->kind = L->groups == 1                             ? FXQ_KIND_DENSE
              : (L->groups == d->c && L->groups == d->k) ? FXQ_KIND_DEPTHWISE
                                                         : FXQ_KIND_GROUPED;
    L->cb = ceil_div(d->c, 16);
    L->kb = ceil_div(d->k, 16);
    L->kpad = L->kb * 16;
    /* the SIMD kernels always compute whole tiles along ow: make those reads land in the buffer */
    L->wpa = L->wp;
    {
        const int64_t tiles[2] = {FXQ_TILE_AVX512, FXQ_TILE_AVX2};
        for (int i = 0; i < 2; ++i) {
            /* + 1: the depthwise kernel reads taps in pairs (an odd S reads one dummy pixel) */
            int64_t need = (ceil_div(d->ow, tiles[i]) * tiles[i] - 1) * d->stride_w + d->s + 1;
            if (need > L->wpa) L->wpa = need;
        }
    }
    L->xpack_bytes = mul_chk4(d->n, L->cb, L->hp, mul_chk(L->wpa, 16));
    if (L->kind == FXQ_KIND_DENSE)
        L->wpack_bytes = mul_chk4(L->kb, L->cb, mul_chk(d->r, d->s), 256);
    else if (L->kind == FXQ_KIND_DEPTHWISE) /* int16 [kb][r][ceil(s/2)][16][2] */
        L->wpack_bytes = mul_chk4(L->kb, d->r, ceil_div(d->s, 2), 64);
    else /* the OIHW weights as they are */
        L->wpack_bytes = mul_chk4(d->k, d->c / L->groups, d->r, d->s);
    if (L->xpack_bytes < 0 || L->wpack_bytes < 0) return FXQ_ERR_ARG;
    if (L->xpack_bytes > ((int64_t)1 << 40) || L->wpack_bytes > ((int64_t)1 << 40))
        return FXQ_ERR_ARG;
    /* AMX: pixel tiles of amx_m <= 16 pixels of one output row, as even as possible; channels
     * padded to 16, 32, 48, 64 or a multiple of 64 (a tile row is at most 64 bytes) */
    L->amx_m = ceil_div(d->ow, ceil_div(d->ow, 16));
    L->amx_cpad = L->cb <= 4 ? L->cb * 16 : ceil_div(d->c, 64) * 64;
    L->amx_kc = L->amx_cpad < 64 ? L->amx_cpad : 64;
    L->amx_wpa = L->wp;
    {
        /* the pixel tiles come in pairs: reads cover 2 * ceil(tiles / 2) whole tiles */
        const int64_t tiles = ceil_div(d->ow, L->amx_m);
        const int64_t need = (ceil_div(tiles, 2) * 2 * L->amx_m - 1) * d->stride_w + d->s;
        if (need > L->amx_wpa) L->amx_wpa = need;
    }
    L->amx_xbytes = mul_chk4(d->n, L->hp, L->amx_wpa, L->amx_cpad);
    L->amx_wbytes = mul_chk4(L->kb, mul_chk(d->r, d->s), L->amx_cpad, 16);
    if (L->amx_xbytes < 0 || L->amx_wbytes < 0) return FXQ_ERR_ARG;
    if (L->amx_xbytes > ((int64_t)1 << 40) || L->amx_wbytes > ((int64_t)1 << 40))
        return FXQ_ERR_ARG;
    L->off_xpack = 0;
    L->off_wpack = L->off_xpack + align_up(L->xpack_bytes);
    L->off_corr = L->off_wpack + align_up(L->wpack_bytes);
    L->off_corr2 = L->off_corr + align_up(FXQ_WSUM_LEN(L->kpad) * 4);
    L->off_prep = L->off_corr2 + align_up(L->kpad * 4);
    L->off_xscratch = L->off_prep + prepared_bytes(L->kpad);
    {
        const int64_t xs = 2 * L->xpack_bytes, ws = 2 * L->wpack_bytes;
        const int64_t amx = L->kind == FXQ_KIND_DENSE;
        L->off_wpack16 = L->off_xscratch + align_up(amx && L->amx_xbytes > xs ? L->amx_xbytes : xs);
        L->off_rowbuf = L->off_wpack16 + align_up(amx && L->amx_wbytes > ws ? L->amx_wbytes : ws);
    }
    /* two output-channel blocks of one output row, 8-bit, padded to 64 pixels (NCHW epilogue) */
    L->total = L->off_rowbuf + 2 * (ceil_div(d->ow, 64) * 64 * 16) + FXQ_ALIGN; /* + align slack */
    L->grp_bias = L->grp_ws = 0;
    if (L->kind == FXQ_KIND_GROUPED) {
        fxq_conv_dims gd;
        conv_layout G;
        int st;
        group_dims(d, L->groups, &gd);
        st = plan_layout(&gd, &G); /* dense: no further recursion */
        if (st != FXQ_OK) return st;
        L->grp_bias = align_up(gd.k * 4);
        L->grp_ws = G.total;
        if (L->grp_bias + L->grp_ws + FXQ_ALIGN > L->total)
            L->total = L->grp_bias + L->grp_ws + FXQ_ALIGN;
    }
    return FXQ_OK;
}

int64_t fxq_conv2d_workspace_size(const fxq_conv_dims *d) {
    conv_layout L;
    int st = plan_layout(d, &L);
    return st == FXQ_OK ? L.total : (int64_t)st;
}

int64_t fxq_requantize_workspace_size(int64_t channels) {
    if (channels < 1 || channels >= ((int64_t)1 << 31)) return FXQ_ERR_ARG;
    return prepared_bytes(ceil_div(channels, 16) * 16) + FXQ_ALIGN;
}

static uint8_t *align_ptr(void *p) {
    uintptr_t u = (uintptr_t)p;
    return (uint8_t *)((u + FXQ_ALIGN - 1) / FXQ_ALIGN * FXQ_ALIGN);
}

/* ------------------------------------------------------------------------------------------------
 * Requantization parameters
 * ---------------------------------------------------------------------------------------------- */

static int dtype_range(int32_t dt, int32_t *qmin, int32_t *qmax) {
    if (dt == FXQ_DTYPE_UINT8) {
        *qmin = 0;
        *qmax = 255;
        return FXQ_OK;
    }
    if (dt == FXQ_DTYPE_INT8) {
        *qmin = -128;
        *qmax = 127;
        return FXQ_OK;
    }
    return FXQ_ERR_ARG;
}

static int prepare_params(const fxq_quant_params *q, int64_t channels, int64_t kpad, uint8_t *mem,
                          fxq_prepared *P) {
    const int64_t a4 = align_up(kpad * 4), a8 = align_up(kpad * 8), h8 = align_up(kpad / 2 * 8);
    if (!q) return FXQ_ERR_ARG;
    memset(P, 0, sizeof(*P));
    P->scheme = q->scheme;
    P->out_dtype = q->out_dtype;
    P->kpad = kpad;
    if (q->scheme == FXQ_SCHEME_NONE) return q->out_dtype == FXQ_DTYPE_INT32 ? FXQ_OK : FXQ_ERR_ARG;
    if (q->scheme < FXQ_SCHEME_FLOAT32_RNE || q->scheme > FXQ_SCHEME_TFLITE_SINGLE)
        return FXQ_ERR_ARG;
    if (dtype_range(q->out_dtype, &P->qmin, &P->qmax) != FXQ_OK) return FXQ_ERR_ARG;
    if (q->zero_point < P->qmin || q->zero_point > P->qmax) return FXQ_ERR_ARG;
    if (q->n_channels != 1 && q->n_channels != channels) return FXQ_ERR_ARG;
    P->zero_point = q->zero_point;
    P->lo = P->qmin - q->zero_point;
    P->hi = P->qmax - q->zero_point;

    switch (q->scheme) {
        case FXQ_SCHEME_FLOAT32_RNE: {
            float *scale = (float *)mem;
            if (!q->scale_f32) return FXQ_ERR_ARG;
            for (int64_t k = 0; k < kpad; ++k) {
                const float s = q->scale_f32[(q->n_channels == 1 || k >= q->n_channels) ? 0 : k];
                if (!(s > 0.0f) || !isfinite(s)) return FXQ_ERR_ARG;
                scale[k] = s;
            }
            P->u.f32.scale = scale;
            return FXQ_OK;
        }
        case FXQ_SCHEME_POW2: {
            int32_t *lsh = (int32_t *)mem, *rsh = (int32_t *)(mem + a4),
                    *rbsh = (int32_t *)(mem + 2 * a4);
            int32_t *rbmask = (int32_t *)(mem + 3 * a4), *clampv = (int32_t *)(mem + 4 * a4);
            if (!q->exponent) return FXQ_ERR_ARG;
            for (int64_t k = 0; k < kpad; ++k) {
                const int64_t e = q->exponent[(q->n_channels == 1 || k >= q->n_channels) ? 0 : k];
                lsh[k] = rsh[k] = rbsh[k] = rbmask[k] = 0;
                clampv[k] = INT32_MAX;
                if (e >= 0) {
                    /* acc * 2^e saturates outside [-512, 512] * 2^e for e > 0: pre-clamp, then
                     * shift */
                    lsh[k] = (int32_t)(e < 20 ? e : 20);
                    clampv[k] = e > 0 ? 512 : INT32_MAX;
                } else {
                    const int64_t n = -e;
                    rsh[k] = (int32_t)(n < 31 ? n : 31);
                    rbsh[k] = (int32_t)(n - 1 < 31 ? n - 1 : 31);
                    rbmask[k] = 1;
                }
            }
            P->u.pow2.lsh = lsh;
            P->u.pow2.rsh = rsh;
            P->u.pow2.rbsh = rbsh;
            P->u.pow2.rbmask = rbmask;
            P->u.pow2.clampv = clampv;
            return FXQ_OK;
        }
        case FXQ_SCHEME_TFLITE: {
            int32_t *mult = (int32_t *)mem, *lsh = (int32_t *)(mem + a4),
                    *rsh = (int32_t *)(mem + 2 * a4);
            int32_t *mask = (int32_t *)(mem + 3 * a4);
            if (!q->multiplier || !q->shift) return FXQ_ERR_ARG;
            for (int64_t k = 0; k < kpad; ++k) {
                const int64_t src = (q->n_channels == 1 || k >= q->n_channels) ? 0 : k;
                const int32_t m = q->multiplier[src], sh = q->shift[src];
                if (m < 0 || (m != 0 && m < (1 << 30)) || sh < -31 || sh > 31) return FXQ_ERR_ARG;
                mult[k] = m;
                lsh[k] = sh > 0 ? sh : 0;
                rsh[k] = sh < 0 ? -sh : 0;
                mask[k] = (int32_t)(((int64_t)1 << rsh[k]) - 1);
            }
            for (int64_t k = 0; k < kpad; ++k) {
                const int64_t R = rsh[k], i = k / 2;
                int64_t *rnd = (int64_t *)(mem + 4 * a4 + (k & 1) * h8);
                int64_t *cor = (int64_t *)(mem + 4 * a4 + (2 + (k & 1)) * h8);
                int64_t *r64 = (int64_t *)(mem + 4 * a4 + (4 + (k & 1)) * h8);
                rnd[i] = ((int64_t)1 << 30) + (R ? (int64_t)1 << (30 + R) : 0);
                cor[i] = R ? (int64_t)1 << 31 : 0;
                r64[i] = 31 + R;
            }
            P->u.tfl.rnd_e = (const int64_t *)(mem + 4 * a4);
            P->u.tfl.rnd_o = (const int64_t *)(mem + 4 * a4 + h8);
            P->u.tfl.cor_e = (const int64_t *)(mem + 4 * a4 + 2 * h8);
            P->u.tfl.cor_o = (const int64_t *)(mem + 4 * a4 + 3 * h8);
            P->u.tfl.rsh_e = (const int64_t *)(mem + 4 * a4 + 4 * h8);
            P->u.tfl.rsh_o = (const int64_t *)(mem + 4 * a4 + 5 * h8);
            P->u.tfl.mult = mult;
            P->u.tfl.lsh = lsh;
            P->u.tfl.rsh = rsh;
            P->u.tfl.mask = mask;
            return FXQ_OK;
        }
        default: { /* FXQ_SCHEME_TFLITE_SINGLE */
            int32_t *mult = (int32_t *)mem;
            int64_t *rnd = (int64_t *)(mem + a4), *rsh = (int64_t *)(mem + a4 + a8);
            int64_t *rnd_e = (int64_t *)(mem + a4 + 2 * a8),
                    *rnd_o = (int64_t *)(mem + a4 + 2 * a8 + h8);
            int64_t *rsh_e = (int64_t *)(mem + a4 + 2 * a8 + 2 * h8);
            int64_t *rsh_o = (int64_t *)(mem + a4 + 2 * a8 + 3 * h8);
            if (!q->multiplier || !q->shift) return FXQ_ERR_ARG;
            P->u.single.fits32 = 1;
            for (int64_t k = 0; k < kpad; ++k) {
                const int64_t src = (q->n_channels == 1 || k >= q->n_channels) ? 0 : k;
                const int32_t m = q->multiplier[src], sh = q->shift[src];
                if (m < 0 || (m != 0 && m < (1 << 30)) || sh < -31 || sh > 30) return FXQ_ERR_ARG;
                /* |acc * M| < 2^62 and a right shift >= 31: the result is in [-2^31, 2^31) */
                if (sh > 0) P->u.single.fits32 = 0;
                mult[k] = m;
                rnd[k] = (int64_t)1 << (30 - sh);
                rsh[k] = 31 - sh;
            }
            for (int64_t k = 0; k < kpad / 2; ++k) {
                rnd_e[k] = rnd[2 * k];
                rnd_o[k] = rnd[2 * k + 1];
                rsh_e[k] = rsh[2 * k];
                rsh_o[k] = rsh[2 * k + 1];
            }
            P->u.single.mult = mult;
            P->u.single.rnd = rnd;
            P->u.single.rsh = rsh;
            P->u.single.rnd_e = rnd_e;
            P->u.single.rnd_o = rnd_o;
            P->u.single.rsh_e = rsh_e;
            P->u.single.rsh_o = rsh_o;
            return FXQ_OK;
        }
    }
}

static int32_t clamp32(int64_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

/* The scalar requantization of one accumulator: the definition every SIMD path must reproduce. */
int32_t fxq_requant_scalar(int32_t acc, const fxq_prepared *q, int64_t k) {
    int32_t r;
    switch (q->scheme) {
        case FXQ_SCHEME_FLOAT32_RNE: {
            float v = (float)acc * q->u.f32.scale[k]; /* binary32 convert (RNE) and multiply */
            if (v < (float)q->lo) v = (float)q->lo;   /* clamping first keeps nearbyintf in range */
            if (v > (float)q->hi) v = (float)q->hi;
            r = (int32_t)nearbyintf(v); /* default rounding mode: half to even */
            break;
        }
        case FXQ_SCHEME_POW2: {
            const fxq_prep_pow2 *p = &q->u.pow2;
            int32_t c = p->clampv[k];
            int32_t a = acc < -c ? -c : (acc > c ? c : acc);
            a = (int32_t)((uint32_t)a << p->lsh[k]);
            /* floor((a + 2^(n-1)) / 2^n) == (a >> n) + bit n-1 of a: no int64 needed */
            r = (a >> p->rsh[k]) + ((a >> p->rbsh[k]) & p->rbmask[k]);
            break;
        }
        case FXQ_SCHEME_TFLITE: {
            const fxq_prep_tflite *p = &q->u.tfl;
            int32_t x = (int32_t)((uint32_t)acc << p->lsh[k]); /* caller guarantees no overflow */
            int32_t y =
                (int32_t)(((int64_t)x * p->mult[k] + ((int64_t)1 << 30)) >> 31); /* SRDHM, M >= 0 */
            int32_t R = p->rsh[k], mask = p->mask[k];
            int32_t rem = y & mask, thr = (mask >> 1) + (y < 0);
            r = (y >> R) + (rem > thr); /* RoundingDivideByPOT: ties away from zero */
            break;
        }
        case FXQ_SCHEME_TFLITE_SINGLE: {
            const fxq_prep_tflite_single *p = &q->u.single;
            int64_t v = ((int64_t)acc * p->mult[k] + p->rnd[k]) >> p->rsh[k];
            r = clamp32(v, q->lo, q->hi); /* saturating to int32 first gives the same */
            break;
        }
        default:
            r = acc;
            break;
    }
    r = r < q->lo ? q->lo : (r > q->hi ? q->hi : r);
    return r + q->zero_point;
}

void fxq_store_scalar(void *out, int32_t out_dtype, int64_t index, int32_t v) {
    if (out_dtype == FXQ_DTYPE_INT32)
        ((int32_t *)out)[index] = v;
    else if (out_dtype == FXQ_DTYPE_UINT8)
        ((uint8_t *)out)[index] = (uint8_t)v;
    else
        ((int8_t *)out)[index] = (int8_t)v;
}

/* ------------------------------------------------------------------------------------------------
 * Packing
 * ---------------------------------------------------------------------------------------------- */

static void pack_input(const fxq_conv_dims *d, const fxq_conv_tensors *t, const conv_layout *L,
                       uint8_t *xpack, int path) {
    const uint8_t flip = t->x_dtype == FXQ_DTYPE_INT8 ? 0x80 : 0x00;
    const uint8_t zp_u = (uint8_t)(t->x_zero_point ^ flip); /* int8 zp + 128 == zp ^ 0x80 */
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
                memset(dst + (d->pad_w + d->w) * 16, zp_u,
                       (size_t)((L->wpa - d->pad_w - d->w) * 16));
                dst += d->pad_w * 16;
                if (t->layout == FXQ_LAYOUT_NCHW16C) {
                    const uint8_t *src = x + ((n * L->cb + cb) * d->h + h) * d->w * 16;
                    if (flip) {
                        for (int64_t i = 0; i < d->w * 16; ++i) dst[i] = src[i] ^ flip;
                    } else {
                        memcpy(dst, src, (size_t)(d->w * 16));
                    }
                } else if (t->layout == FXQ_LAYOUT_NHWC) {
                    const int64_t nc = d->c - cb * 16 < 16 ? d->c - cb * 16 : 16;
                    const uint8_t *src = x + (n * d->h + h) * d->w * d->c + cb * 16;
                    for (int64_t w = 0; w < d->w; ++w) {
                        uint8_t *o = dst + w * 16;
                        const uint8_t *sp = src + w * d->c;
                        for (int64_t c16 = 0; c16 < nc; ++c16) o[c16] = sp[c16] ^ flip;
                        for (int64_t c16 = nc; c16 < 16; ++c16) o[c16] = 0;
                    }
                } else {
#ifdef FXQ_HAVE_X86
                    if (use_simd) continue; /* done below, row by row, with 16x16 transposes */
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
        if (path >= FXQ_PATH_AVX512)
            fxq_pack_input_nchw_avx512(d, x, flip, xpack, L->cb, L->hp, L->wpa);
        else
            fxq_pack_input_nchw_avx2(d, x, flip, xpack, L->cb, L->hp, L->wpa);
    }
#endif
}

static void pack_weights(const fxq_conv_dims *d, const fxq_conv_tensors *t, const conv_layout *L,
                         int8_t *wpack, int32_t *wsum) {
    const int64_t R = d->r, S = d->s;
    const uint8_t flip = t->x_dtype == FXQ_DTYPE_INT8 ? 0x80 : 0x00;
    const int64_t zp_u = (uint8_t)(t->x_zero_point ^ flip);
    if (L->kind != FXQ_KIND_DENSE) {
        /* sums over the group's inputs, then the layout of the kind */
        const int64_t per_k = d->c / L->groups * R * S;
        memset(wsum, 0, (size_t)FXQ_WSUM_LEN(L->kpad) * 4);
        for (int64_t k = 0; k < d->k; ++k) {
            int64_t sum = 0;
            for (int64_t i = 0; i < per_k; ++i) sum += t->w[k * per_k + i];
            wsum[k] = (int32_t)((t->bias ? (int64_t)t->bias[k] : 0) - zp_u * sum);
            wsum[L->kpad + k] = (int32_t)sum;
        }
        if (L->kind == FXQ_KIND_GROUPED) {
            memcpy(wpack, t->w, (size_t)L->wpack_bytes);
        } else {
            const int64_t SP = ceil_div(S, 2);
            int16_t *w16 = (int16_t *)(void *)wpack;
            for (int64_t kb = 0; kb < L->kb; ++kb)
                for (int64_t r = 0; r < R; ++r)
                    for (int64_t sp = 0; sp < SP; ++sp)
                        for (int64_t c16 = 0; c16 < 16; ++c16)
                            for (int64_t e = 0; e < 2; ++e) {
                                const int64_t k = kb * 16 + c16, s2 = 2 * sp + e;
                                *w16++ = (k < d->k && s2 < S) ? t->w[(k * R + r) * S + s2] : 0;
                            }
        }
        return;
    }
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
                                             ? t->w[base + k16 * CRS + (c4 * 4 + c4i) * RS]
                                             : 0;
                            }
                }
    }
    /* sum of the weights per output channel, for the zero-point correction.  Within a 256-byte
     * (c4, k16, c4i) block, byte i belongs to output channel (i / 4) % 16: accumulate the 64
     * positions i % 64 separately (a loop gcc vectorizes), then fold.  int32 cannot overflow:
     * |sum| <= C*R*S*128 < 2^31 by the caller's accumulator bound. */
    int8_t minw = 0;
    for (int64_t i = 0; i < L->wpack_bytes; ++i) minw = wpack[i] < minw ? wpack[i] : minw;
    memset(wsum, 0, (size_t)FXQ_WSUM_LEN(L->kpad) * 4);
    wsum[2 * L->kpad] = minw == -128;
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
            wsum[k] = k < d->k ? (int32_t)(b - zp_u * sum) : 0;
            wsum[L->kpad + k] = k < d->k ? (int32_t)sum : 0;
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * Scalar kernels
 * ---------------------------------------------------------------------------------------------- */

int fxq_conv2d_scalar(const fxq_conv_plan *p) {
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
                                const uint8_t *xp =
                                    p->xpack +
                                    (((n * p->cb + cb) * p->hp + oh * d->stride_h + r) * p->wpa +
                                     ow * d->stride_w + s) *
                                        16;
                                const int8_t *wp =
                                    p->wpack + (((kb * p->cb + cb) * R + r) * S + s) * 256;
                                for (int c4 = 0; c4 < 4; ++c4)
                                    for (int k16 = 0; k16 < 16; ++k16)
                                        for (int c4i = 0; c4i < 4; ++c4i)
                                            acc[k16] += (int32_t)xp[c4 * 4 + c4i] *
                                                        wp[(c4 * 16 + k16) * 4 + c4i];
                            }
                    for (int k16 = 0; k16 < 16; ++k16) {
                        int64_t k = kb * 16 + k16, idx;
                        int32_t v;
                        if (k >= d->k) break;
                        v = (int32_t)((uint32_t)acc[k16] + (uint32_t)p->corr[k]);
                        if (p->scheme != FXQ_SCHEME_NONE) v = fxq_requant_scalar(v, p->q, k);
                        (void)kb;
                        idx = fxq_out_index(p, n, k, oh, ow);
                        fxq_store_scalar(p->out, p->out_dtype, idx, v);
                    }
                }
    return FXQ_OK;
}

int64_t fxq_out_index(const fxq_conv_plan *p, int64_t n, int64_t k, int64_t oh, int64_t ow) {
    const fxq_conv_dims *d = p->d;
    if (p->layout == FXQ_LAYOUT_NCHW) return ((n * d->k + k) * d->oh + oh) * d->ow + ow;
    if (p->layout == FXQ_LAYOUT_NHWC) return ((n * d->oh + oh) * d->ow + ow) * d->k + k;
    return (((n * p->kb + k / 16) * d->oh + oh) * d->ow + ow) * 16 + k % 16;
}

static void finish_scalar(const fxq_conv_plan *p, int64_t n, int64_t k, int64_t oh, int64_t ow,
                          int32_t acc) {
    int32_t v = (int32_t)((uint32_t)acc + (uint32_t)p->corr[k]);
    if (p->scheme != FXQ_SCHEME_NONE) v = fxq_requant_scalar(v, p->q, k);
    fxq_store_scalar(p->out, p->out_dtype, fxq_out_index(p, n, k, oh, ow), v);
}

/* depthwise: wpack int16 [kb][r][ceil(S/2)][16][2] */
int fxq_dwconv_scalar(const fxq_conv_plan *p) {
    const fxq_conv_dims *d = p->d;
    const int64_t R = d->r, S = d->s, SP = ceil_div(S, 2);
    const int16_t *w16 = (const int16_t *)(const void *)p->wpack;
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t kb = 0; kb < p->kb; ++kb)
            for (int64_t oh = 0; oh < d->oh; ++oh)
                for (int64_t ow = 0; ow < d->ow; ++ow) {
                    int32_t acc[16] = {0};
                    for (int64_t r = 0; r < R; ++r)
                        for (int64_t s = 0; s < S; ++s) {
                            const uint8_t *xp =
                                p->xpack +
                                (((n * p->cb + kb) * p->hp + oh * d->stride_h + r) * p->wpa +
                                 ow * d->stride_w + s) *
                                    16;
                            const int16_t *wp = w16 + ((kb * R + r) * SP + s / 2) * 32 + (s & 1);
                            for (int c16 = 0; c16 < 16; ++c16)
                                acc[c16] += (int32_t)xp[c16] * wp[2 * c16];
                        }
                    for (int64_t c16 = 0; c16 < 16 && kb * 16 + c16 < d->k; ++c16)
                        finish_scalar(p, n, kb * 16 + c16, oh, ow, acc[c16]);
                }
    return FXQ_OK;
}

/* any groups: wpack = OIHW (K, C/groups, R, S) */
int fxq_grouped_scalar(const fxq_conv_plan *p) {
    const fxq_conv_dims *d = p->d;
    const int64_t R = d->r, S = d->s, CG = d->c / p->groups, KG = d->k / p->groups;
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t k = 0; k < d->k; ++k) {
            const int64_t c0 = k / KG * CG;
            const int8_t *wk = p->wpack + k * CG * R * S;
            for (int64_t oh = 0; oh < d->oh; ++oh)
                for (int64_t ow = 0; ow < d->ow; ++ow) {
                    int32_t acc = 0;
                    for (int64_t cl = 0; cl < CG; ++cl) {
                        const int64_t c = c0 + cl;
                        const uint8_t *xc =
                            p->xpack + ((n * p->cb + c / 16) * p->hp) * p->wpa * 16 + c % 16;
                        for (int64_t r = 0; r < R; ++r)
                            for (int64_t s = 0; s < S; ++s)
                                acc += (int32_t)xc[((oh * d->stride_h + r) * p->wpa +
                                                    ow * d->stride_w + s) *
                                                   16] *
                                       wk[(cl * R + r) * S + s];
                    }
                    finish_scalar(p, n, k, oh, ow, acc);
                }
        }
    return FXQ_OK;
}

int fxq_requantize_scalar(const int32_t *acc, void *out, int64_t outer, int64_t channels,
                          int64_t inner, const fxq_prepared *q) {
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            int64_t base = (o * channels + c) * inner;
            for (int64_t i = 0; i < inner; ++i)
                fxq_store_scalar(out, q->out_dtype, base + i,
                                 fxq_requant_scalar(acc[base + i], q, c));
        }
    return FXQ_OK;
}

/* ------------------------------------------------------------------------------------------------
 * CPU features and dispatch
 * ---------------------------------------------------------------------------------------------- */

static int cpu_features_cache = -1; /* idempotent: a race writes the same value */

int fxq_cpu_features(void) {
    int f = 0;
    if (cpu_features_cache >= 0) return cpu_features_cache;
#ifdef FXQ_HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse2")) f |= FXQ_CPU_SSE2;
    if (__builtin_cpu_supports("avx2")) f |= FXQ_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= FXQ_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= FXQ_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= FXQ_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) f |= FXQ_CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512vnni")) f |= FXQ_CPU_AVX512VNNI;
    if (fxq_amx_enable()) f |= FXQ_CPU_AMX_INT8;
#endif
    cpu_features_cache = f;
    return f;
}

int fxq_path_available(int path) {
    int f = fxq_cpu_features();
    const int need512 = FXQ_CPU_AVX512F | FXQ_CPU_AVX512BW | FXQ_CPU_AVX512VL | FXQ_CPU_AVX512VNNI;
    switch (path) {
        case FXQ_PATH_SCALAR:
            return 1;
#ifdef FXQ_HAVE_X86
        case FXQ_PATH_AVX2:
            return (f & (FXQ_CPU_AVX2 | FXQ_CPU_FMA)) == (FXQ_CPU_AVX2 | FXQ_CPU_FMA);
        case FXQ_PATH_AVX512:
            return (f & need512) == need512;
        case FXQ_PATH_AMX:
            return (f & (need512 | FXQ_CPU_AMX_INT8)) == (need512 | FXQ_CPU_AMX_INT8);
#endif
        default:
            (void)f;
            (void)need512;
            return 0;
    }
}

int fxq_best_path(void) {
    if (fxq_path_available(FXQ_PATH_AMX)) return FXQ_PATH_AMX;
    if (fxq_path_available(FXQ_PATH_AVX512)) return FXQ_PATH_AVX512;
    if (fxq_path_available(FXQ_PATH_AVX2)) return FXQ_PATH_AVX2;
    return FXQ_PATH_SCALAR;
}

const char *fxq_path_name(int path) {
    switch (path) {
        case FXQ_PATH_AUTO:
            return "auto";
        case FXQ_PATH_SCALAR:
            return "scalar";
        case FXQ_PATH_AVX2:
            return "avx2";
        case FXQ_PATH_AVX512:
            return "avx512";
        case FXQ_PATH_AMX:
            return "amx";
        default:
            return "invalid";
    }
}

const char *fxq_compile_flags(void) {
    return FXQ_COMPILE_FLAGS;
}

static int resolve_path(int path) {
    if (path == FXQ_PATH_AUTO) return fxq_best_path();
    if (path < FXQ_PATH_SCALAR || path > FXQ_PATH_AMX) return FXQ_ERR_ARG;
    return fxq_path_available(path) ? path : FXQ_ERR_PATH;
}

static int check_tensors(const fxq_conv_dims *d, const fxq_conv_tensors *t) {
    if (t->layout != FXQ_LAYOUT_NCHW && t->layout != FXQ_LAYOUT_NCHW16C &&
        t->layout != FXQ_LAYOUT_NHWC)
        return FXQ_ERR_ARG;
    if (t->layout == FXQ_LAYOUT_NCHW16C &&
        (d->c % 16 != 0 || d->k % 16 != 0 || (d->groups != 0 && d->groups != 1)))
        return FXQ_ERR_ARG;
    if (t->x_dtype == FXQ_DTYPE_UINT8) {
        if (t->x_zero_point < 0 || t->x_zero_point > 255) return FXQ_ERR_ARG;
    } else if (t->x_dtype == FXQ_DTYPE_INT8) {
        if (t->x_zero_point < -128 || t->x_zero_point > 127) return FXQ_ERR_ARG;
    } else {
        return FXQ_ERR_ARG;
    }
    return FXQ_OK;
}

int64_t fxq_conv2d_weight_summary_len(const fxq_conv_dims *d) {
    conv_layout L;
    int st = plan_layout(d, &L);
    return st == FXQ_OK ? FXQ_WSUM_LEN(L.kpad) : (int64_t)st;
}

int64_t fxq_conv2d_packed_weight_size(const fxq_conv_dims *d) {
    conv_layout L;
    int st = plan_layout(d, &L);
    return st == FXQ_OK ? L.wpack_bytes : (int64_t)st;
}

int fxq_conv2d_pack_weights(const fxq_conv_dims *d, const fxq_conv_tensors *t, void *wpack,
                            int64_t wpack_bytes, int32_t *corr, int64_t corr_len) {
    conv_layout L;
    int st;
    if (!d || !t || !t->w || !wpack || !corr) return FXQ_ERR_ARG;
    if (((uintptr_t)wpack) % FXQ_ALIGN) return FXQ_ERR_ARG;
    st = plan_layout(d, &L);
    if (st != FXQ_OK) return st;
    st = check_tensors(d, t);
    if (st != FXQ_OK) return st;
    if (wpack_bytes < L.wpack_bytes || corr_len < FXQ_WSUM_LEN(L.kpad)) return FXQ_ERR_WORKSPACE;
    pack_weights(d, t, &L, (int8_t *)wpack, corr);
    return FXQ_OK;
}

static int conv2d_core(const fxq_conv_dims *d, const fxq_conv_tensors *t, const fxq_quant_params *q,
                       const void *wpack_in, int64_t wpack_bytes, const int32_t *corr_in,
                       int64_t corr_len, void *workspace, int64_t workspace_bytes, int path,
                       const fxq_prepared *pre);

/* A grouped convolution (NCHW) on a SIMD path: the dense kernels, once per image and group, on
 * the group's slices of x, w, bias, the requantization parameters and out (all contiguous in
 * NCHW / OIHW).  Pre-packed weights are the OIHW weights as they are; the group's bias comes
 * back from the weight summary: bias = corr + zp_u * sum(w) (mod 2^32, exact). */
static int grouped_by_dense(const fxq_conv_dims *d, const fxq_conv_tensors *t,
                            const fxq_quant_params *q, const conv_layout *L, const int8_t *wpack_in,
                            const int32_t *corr_in, uint8_t *base, int path) {
    const int64_t G = L->groups, CG = d->c / G, KG = d->k / G;
    const int64_t wg = KG * CG * d->r * d->s, xg = CG * d->h * d->w, og = KG * d->oh * d->ow;
    const int64_t esize = q->out_dtype == FXQ_DTYPE_INT32 ? 4 : 1;
    const uint8_t flip = t->x_dtype == FXQ_DTYPE_INT8 ? 0x80 : 0x00;
    const uint32_t zp_u = (uint8_t)(t->x_zero_point ^ flip);
    int32_t *gbias = (int32_t *)(void *)base;
    fxq_conv_dims gd;
    if (q->n_channels != 1 && q->n_channels != d->k) return FXQ_ERR_ARG;
    group_dims(d, G, &gd);
    for (int64_t n = 0; n < d->n; ++n)
        for (int64_t g = 0; g < G; ++g) {
            fxq_conv_tensors tg = *t;
            fxq_quant_params qg = *q;
            int st;
            tg.x = (const uint8_t *)t->x + (n * G + g) * xg;
            tg.out = (uint8_t *)t->out + (n * G + g) * og * esize;
            if (wpack_in) {
                tg.w = wpack_in + g * wg;
                for (int64_t k = 0; k < KG; ++k)
                    gbias[k] = (int32_t)((uint32_t)corr_in[g * KG + k] +
                                         zp_u * (uint32_t)corr_in[L->kpad + g * KG + k]);
                tg.bias = gbias;
            } else {
                tg.w = t->w + g * wg;
                tg.bias = t->bias ? t->bias + g * KG : NULL;
            }
            if (q->n_channels != 1) {
                qg.n_channels = (int32_t)KG;
                if (q->multiplier) qg.multiplier = q->multiplier + g * KG;
                if (q->shift) qg.shift = q->shift + g * KG;
                if (q->exponent) qg.exponent = q->exponent + g * KG;
                if (q->scale_f32) qg.scale_f32 = q->scale_f32 + g * KG;
            }
            st = conv2d_core(&gd, &tg, &qg, NULL, 0, NULL, 0, base + L->grp_bias, L->grp_ws, path,
                             NULL);
            if (st != FXQ_OK) return st;
        }
    return FXQ_OK;
}

static int conv2d_core(const fxq_conv_dims *d, const fxq_conv_tensors *t, const fxq_quant_params *q,
                       const void *wpack_in, int64_t wpack_bytes, const int32_t *corr_in,
                       int64_t corr_len, void *workspace, int64_t workspace_bytes, int path,
                       const fxq_prepared *pre) {
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
        if (wpack_bytes < L.wpack_bytes || !corr_in || corr_len < FXQ_WSUM_LEN(L.kpad))
            return FXQ_ERR_WORKSPACE;
        if (((uintptr_t)wpack_in) % FXQ_ALIGN) return FXQ_ERR_ARG;
    }

    base = align_ptr(workspace);
    if (L.kind == FXQ_KIND_GROUPED && path != FXQ_PATH_SCALAR && t->layout == FXQ_LAYOUT_NCHW)
        return grouped_by_dense(d, t, q, &L, (const int8_t *)wpack_in, corr_in, base, path);
    if (pre) { /* fxq_conv_call_prepare: made from this q once */
        P = *pre;
    } else {
        st = prepare_params(q, d->k, L.kpad, base + L.off_prep, &P);
        if (st != FXQ_OK) return st;
    }

    memset(&p, 0, sizeof(p));
    p.d = d;
    p.cb = L.cb;
    p.kb = L.kb;
    p.kpad = L.kpad;
    p.hp = L.hp;
    p.wp = L.wp;
    p.wpa = L.wpa;
    p.groups = L.groups;
    p.kind = L.kind;
    p.layout = t->layout;
    p.out_dtype = q->out_dtype;
    p.scheme = q->scheme;
    p.xpack = base + L.off_xpack;
    p.q = &P;
    p.out = t->out;
    p.xpack_bytes = L.xpack_bytes;
    p.xscratch = base + L.off_xscratch;
    p.wpack16 = (int16_t *)(base + L.off_wpack16);
    p.corr2 = (int32_t *)(base + L.off_corr2);
    p.rowbuf = base + L.off_rowbuf;
    p.rowbuf_stride = ceil_div(d->ow, 64) * 64 * 16;

    if (wpack_in) {
        p.wpack = (const int8_t *)wpack_in;
        p.corr = p.wsum = corr_in;
    } else {
        pack_weights(d, t, &L, (int8_t *)(base + L.off_wpack), (int32_t *)(base + L.off_corr));
        p.wpack = (const int8_t *)(base + L.off_wpack);
        p.corr = p.wsum = (const int32_t *)(base + L.off_corr);
    }
#ifdef FXQ_HAVE_X86
    /* AMX: the operands in its own layout (in the scratch regions), not NCHW16c */
    if (L.kind == FXQ_KIND_DENSE && path == FXQ_PATH_AMX) {
        fxq_amx_geom g;
        g.m = L.amx_m;
        g.cpad = L.amx_cpad;
        g.kc = L.amx_kc;
        g.wpa = L.amx_wpa;
        g.flip = t->x_dtype == FXQ_DTYPE_INT8 ? 0x80 : 0x00;
        g.zp_u = (uint8_t)(t->x_zero_point ^ g.flip);
        return fxq_conv2d_amx(&p, &g, (const uint8_t *)t->x, base + L.off_xscratch,
                              (int8_t *)(base + L.off_wpack16));
    }
    if (path == FXQ_PATH_AMX) path = FXQ_PATH_AVX512; /* everything else: the AVX-512 kernels */
    /* depthwise NCHW: straight from the NCHW input, lane = output pixel, no NCHW16c packing
     * (AVX2: 3x3 stride 1; AVX-512: stride_w 1, r, s <= 8); 1: not this geometry */
    if (L.kind == FXQ_KIND_DEPTHWISE && (path == FXQ_PATH_AVX2 || path == FXQ_PATH_AVX512)) {
        const uint8_t flip = t->x_dtype == FXQ_DTYPE_INT8 ? 0x80 : 0x00;
        const uint8_t zp_u = (uint8_t)(t->x_zero_point ^ flip);
        st = path == FXQ_PATH_AVX2 ? fxq_dwconv3x3_nchw_avx2(&p, (const uint8_t *)t->x, flip, zp_u,
                                                             base + L.off_xpack, L.xpack_bytes)
                                   : fxq_dwconv_nchw_avx512(&p, (const uint8_t *)t->x, flip, zp_u,
                                                            base + L.off_xpack, L.xpack_bytes);
        if (st <= 0) return st;
    }
#endif
    pack_input(d, t, &L, base + L.off_xpack, path);

    if (L.kind == FXQ_KIND_GROUPED) return fxq_grouped_scalar(&p);
    if (L.kind == FXQ_KIND_DEPTHWISE) {
        switch (path) {
#ifdef FXQ_HAVE_X86
            case FXQ_PATH_AVX512:
                return fxq_dwconv_avx512(&p);
            case FXQ_PATH_AVX2:
                return fxq_dwconv_avx2(&p);
#endif
            default:
                return fxq_dwconv_scalar(&p);
        }
    }
    switch (path) {
#ifdef FXQ_HAVE_X86
        case FXQ_PATH_AVX512:
            return fxq_conv2d_avx512(&p);
        case FXQ_PATH_AVX2:
            return fxq_conv2d_avx2(&p);
#endif
        default:
            return fxq_conv2d_scalar(&p);
    }
}

int fxq_conv2d(const fxq_conv_dims *d, const fxq_conv_tensors *t, const fxq_quant_params *q,
               void *workspace, int64_t workspace_bytes, int path) {
    if (!t || !t->w) return FXQ_ERR_ARG;
    return conv2d_core(d, t, q, NULL, 0, NULL, 0, workspace, workspace_bytes, path, NULL);
}

int fxq_conv2d_prepacked(const fxq_conv_dims *d, const fxq_conv_tensors *t,
                         const fxq_quant_params *q, const void *wpack, int64_t wpack_bytes,
                         const int32_t *corr, int64_t corr_len, void *workspace,
                         int64_t workspace_bytes, int path) {
    if (!wpack || !corr) return FXQ_ERR_ARG;
    return conv2d_core(d, t, q, wpack, wpack_bytes, corr, corr_len, workspace, workspace_bytes,
                       path, NULL);
}

int fxq_conv2d_call(const fxq_conv_call *c, const void *x, int64_t x_bytes, void *out,
                    int64_t out_bytes, void *workspace, int64_t workspace_bytes) {
    fxq_conv_tensors t;
    const fxq_prepared *pre = NULL;
    int64_t nx, no;
    if (!c || !x || !out) return FXQ_ERR_ARG;
    nx = mul_chk4(c->d.n, c->d.c, c->d.h, c->d.w);
    no =
        mul_chk4(c->d.n, c->d.k, c->d.oh, mul_chk(c->d.ow, c->q.scheme == FXQ_SCHEME_NONE ? 4 : 1));
    if (nx < 0 || no < 0 || x_bytes != nx || out_bytes != no) return FXQ_ERR_ARG;
    t = c->t;
    t.x = x;
    t.out = out;
    if (!c->wpack || !c->corr) return FXQ_ERR_ARG;
    if (c->prep) {
        const conv_prep *h = (const conv_prep *)c->prep;
        if (h->magic != CONV_PREP_MAGIC || h->self != (const void *)h) return FXQ_ERR_ARG;
        pre = &h->P;
    }
    return conv2d_core(&c->d, &t, &c->q, c->wpack, c->wpack_bytes, c->corr, c->corr_len, workspace,
                       workspace_bytes, c->path, pre);
}

int64_t fxq_conv_call_prep_size(const fxq_conv_call *c) {
    conv_layout L;
    if (!c || plan_layout(&c->d, &L) != FXQ_OK) return FXQ_ERR_ARG;
    return align_up((int64_t)sizeof(conv_prep)) + prepared_bytes(L.kpad) + FXQ_ALIGN;
}

int fxq_conv_call_prepare(fxq_conv_call *c, void *mem, int64_t mem_bytes) {
    conv_layout L;
    conv_prep *h;
    int st;
    if (!c || !mem) return FXQ_ERR_ARG;
    if (plan_layout(&c->d, &L) != FXQ_OK) return FXQ_ERR_ARG;
    if (mem_bytes < fxq_conv_call_prep_size(c)) return FXQ_ERR_WORKSPACE;
    h = (conv_prep *)(void *)align_ptr(mem);
    memset(h, 0, sizeof(*h));
    st = prepare_params(&c->q, c->d.k, L.kpad, (uint8_t *)h + align_up((int64_t)sizeof(*h)), &h->P);
    if (st != FXQ_OK) return st;
    h->self = h;
    h->magic = CONV_PREP_MAGIC;
    c->prep = h;
    return FXQ_OK;
}

int fxq_requantize(const int32_t *acc, void *out, int64_t outer, int64_t channels, int64_t inner,
                   const fxq_quant_params *q, void *workspace, int64_t workspace_bytes, int path) {
    fxq_prepared P;
    int64_t need, kpad;
    int st;
    if (!acc || !out || !q || !workspace) return FXQ_ERR_ARG;
    if (outer < 0 || inner < 0 || channels < 1) return FXQ_ERR_ARG;
    if (q->scheme == FXQ_SCHEME_NONE) return FXQ_ERR_ARG;
    if (q->n_channels != 1 && q->n_channels != channels) return FXQ_ERR_ARG;
    path = resolve_path(path);
    if (path < 0) return path;
    if (q->n_channels == 1 && channels > 1) { /* per-tensor: one long run */
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
        case FXQ_PATH_AMX:
        case FXQ_PATH_AVX512:
            return fxq_requantize_avx512(acc, out, outer, channels, inner, &P);
        case FXQ_PATH_AVX2:
            return fxq_requantize_avx2(acc, out, outer, channels, inner, &P);
#endif
        default:
            return fxq_requantize_scalar(acc, out, outer, channels, inner, &P);
    }
}

void fxq_copy_bytes(void *dst, const void *src, int64_t nbytes) {
    if (nbytes > 0) memcpy(dst, src, (size_t)nbytes);
}

/* ------------------------------------------------------------------------------------------------
 * Fully connected: the plan (packed weights, correction, requantization parameters) made once,
 * then a GEMV per row with no set-up per call.
 * ---------------------------------------------------------------------------------------------- */

typedef struct {
    int64_t kb, kpad, cq, cp, hdr, w8, w16, corr, corr2, prep, total;
} fc_layout;

static int fc_plan_layout(int64_t c, int64_t k, int has_m128, fc_layout *L) {
    const int64_t lim = (int64_t)1 << 31;
    if (c < 1 || k < 1 || c >= lim || k >= lim) return FXQ_ERR_ARG;
    L->kb = ceil_div(k, 16);
    L->kpad = L->kb * 16;
    L->cq = ceil_div(c, 4);
    L->cp = ceil_div(c, 2);
    L->hdr = align_up((int64_t)sizeof(fxq_fc_plan));
    L->w8 = align_up(L->kpad * L->cq * 4); /* < 2^31 * 2^30: no overflow in int64 */
    L->w16 = has_m128 ? align_up(L->kpad * L->cp * 4) : 0;
    L->corr = L->corr2 = align_up(L->kpad * 4);
    L->prep = prepared_bytes(L->kpad);
    L->total = L->hdr + L->w8 + L->w16 + L->corr + L->corr2 + L->prep + FXQ_ALIGN;
    return FXQ_OK;
}

static int fc_has_m128(int64_t c, int64_t k, const int8_t *w) {
    int8_t m = 0;
    for (int64_t i = 0; i < c * k; ++i) m = w[i] < m ? w[i] : m;
    return m == -128;
}

int64_t fxq_fc_plan_size(int64_t c, int64_t k, const int8_t *w) {
    fc_layout L;
    int st = fc_plan_layout(c, k, 0, &L);
    if (st != FXQ_OK) return st;
    if (!w) return FXQ_ERR_ARG;
    st = fc_plan_layout(c, k, fc_has_m128(c, k, w), &L);
    return st == FXQ_OK ? L.total : (int64_t)st;
}

/* the path of a plan: resolve_path's (FXQ_ERR_ARG out of range, FXQ_ERR_PATH where the CPU lacks
 * it, AUTO the best), and a path above AVX-512 (a later AMX path) wherever fxq_path_available()
 * has it: every path from AVX-512 up runs the AVX-512 VNNI GEMV (fxq_fc_run) */
static int fc_resolve_path(int path) {
    if (path == FXQ_PATH_AUTO) path = fxq_best_path();
    if (path > FXQ_PATH_AVX512 && fxq_path_available(path)) return path;
    return resolve_path(path);
}

int fxq_fc_plan_init(void *plan, int64_t plan_bytes, int64_t c, int64_t k, const int8_t *w,
                     const int32_t *bias, int32_t x_dtype, int32_t x_zero_point,
                     const fxq_quant_params *q, int path) {
    fc_layout L;
    fxq_fc_plan *h;
    uint8_t *base;
    int8_t *w8;
    int16_t *w16 = NULL;
    int32_t *corr, *corr2;
    int32_t zp_u;
    int st, has_m128;
    if (!plan || !w || !q) return FXQ_ERR_ARG;
    if (x_dtype == FXQ_DTYPE_UINT8) {
        if (x_zero_point < 0 || x_zero_point > 255) return FXQ_ERR_ARG;
        zp_u = x_zero_point;
    } else if (x_dtype == FXQ_DTYPE_INT8) {
        if (x_zero_point < -128 || x_zero_point > 127) return FXQ_ERR_ARG;
        zp_u = x_zero_point + 128;
    } else {
        return FXQ_ERR_ARG;
    }
    if ((q->scheme == FXQ_SCHEME_NONE) != (q->out_dtype == FXQ_DTYPE_INT32)) return FXQ_ERR_ARG;
    path = fc_resolve_path(path);
    if (path < 0) return path;
    st = fc_plan_layout(c, k, 0, &L);
    if (st != FXQ_OK) return st;
    has_m128 = fc_has_m128(c, k, w);
    st = fc_plan_layout(c, k, has_m128, &L);
    if (st != FXQ_OK) return st;
    if (plan_bytes < L.total) return FXQ_ERR_WORKSPACE;
    base = align_ptr(plan);
    memset(base, 0, (size_t)(L.total - FXQ_ALIGN));
    h = (fxq_fc_plan *)(void *)base;
    w8 = (int8_t *)(base + L.hdr);
    if (has_m128) w16 = (int16_t *)(void *)(base + L.hdr + L.w8);
    corr = (int32_t *)(void *)(base + L.hdr + L.w8 + L.w16);
    corr2 = (int32_t *)(void *)(base + L.hdr + L.w8 + L.w16 + L.corr);
    st = prepare_params(q, k, L.kpad, base + L.hdr + L.w8 + L.w16 + L.corr + L.corr2, &h->q);
    if (st != FXQ_OK) return st;
    for (int64_t kk = 0; kk < k; ++kk) {
        const int64_t kb = kk / 16, o = kk % 16, g = kb / FXQ_FC_GROUP, j = kb % FXQ_FC_GROUP;
        const int64_t gk =
            L.kb - g * FXQ_FC_GROUP < FXQ_FC_GROUP ? L.kb - g * FXQ_FC_GROUP : FXQ_FC_GROUP;
        int64_t sum = 0;
        for (int64_t cc = 0; cc < c; ++cc) {
            const int8_t v = w[kk * c + cc];
            sum += v;
            w8[g * FXQ_FC_GROUP * L.cq * 64 + ((cc / 4) * gk + j) * 64 + o * 4 + cc % 4] = v;
            if (w16)
                w16[g * FXQ_FC_GROUP * L.cp * 32 + ((cc / 2) * gk + j) * 32 + o * 2 + cc % 2] = v;
        }
        /* mod 2^32 like the accumulators; the caller bounds the true sums inside int32 */
        corr[kk] = (int32_t)(uint32_t)((uint64_t)(bias ? (int64_t)bias[kk] : 0) -
                                       (uint64_t)((int64_t)zp_u * sum));
        corr2[kk] = (int32_t)((uint32_t)corr[kk] + ((uint32_t)(int32_t)sum << 7));
    }
    h->magic = FXQ_FC_MAGIC;
    h->self = plan;
    h->c = c;
    h->k = k;
    h->kb = L.kb;
    h->kpad = L.kpad;
    h->cq = L.cq;
    h->cp = L.cp;
    h->flip = x_dtype == FXQ_DTYPE_INT8 ? 0x80 : 0;
    h->path = path;
    h->has_m128 = has_m128;
    h->scheme = q->scheme;
    h->out_dtype = q->out_dtype;
    h->w8 = w8;
    h->w16 = w16;
    h->corr = corr;
    h->corr2 = corr2;
    return FXQ_OK;
}

/* the definition the AVX2 and AVX-512 kernels reproduce: acc over x_u, a group of blocks per pass
 * (the w8 layout read in order) */
int fxq_fc_scalar(const fxq_fc_plan *h, const uint8_t *x, void *out, int64_t n) {
    for (int64_t r = 0; r < n; ++r) {
        const uint8_t *xr = x + r * h->c;
        for (int64_t kb0 = 0; kb0 < h->kb; kb0 += FXQ_FC_GROUP) {
            const int64_t gk = h->kb - kb0 < FXQ_FC_GROUP ? h->kb - kb0 : FXQ_FC_GROUP;
            const int8_t *wg = h->w8 + kb0 * h->cq * 64;
            int32_t acc[FXQ_FC_GROUP * 16] = {0};
            for (int64_t q = 0; q < h->cq; ++q) {
                const int8_t *wq = wg + q * gk * 64;
                int32_t xq[4];
                for (int i = 0; i < 4; ++i)
                    xq[i] = 4 * q + i < h->c ? (int32_t)(uint8_t)(xr[4 * q + i] ^ h->flip) : 0;
                for (int64_t jo = 0; jo < gk * 16; ++jo)
                    acc[jo] += xq[0] * wq[jo * 4] + xq[1] * wq[jo * 4 + 1] +
                               xq[2] * wq[jo * 4 + 2] + xq[3] * wq[jo * 4 + 3];
            }
            for (int64_t jo = 0; jo < gk * 16 && kb0 * 16 + jo < h->k; ++jo) {
                const int64_t kk = kb0 * 16 + jo;
                int32_t v = (int32_t)((uint32_t)acc[jo] + (uint32_t)h->corr[kk]);
                if (h->scheme != FXQ_SCHEME_NONE) v = fxq_requant_scalar(v, &h->q, kk);
                fxq_store_scalar(out, h->out_dtype, r * h->k + kk, v);
            }
        }
    }
    return FXQ_OK;
}

int fxq_fc_run(const void *plan, const void *x, int64_t x_bytes, void *out, int64_t out_bytes,
               int64_t n) {
    const fxq_fc_plan *h;
    int64_t need;
    if (!plan || !x || !out || n < 1) return FXQ_ERR_ARG;
    h = (const fxq_fc_plan *)(const void *)align_ptr((void *)(uintptr_t)plan);
    if (h->magic != FXQ_FC_MAGIC || h->self != plan) return FXQ_ERR_ARG;
    if (mul_chk(n, h->c) != x_bytes || x_bytes < 0) return FXQ_ERR_ARG;
    need = mul_chk(mul_chk(n, h->k), h->out_dtype == FXQ_DTYPE_INT32 ? 4 : 1);
    if (need < 0 || need != out_bytes) return FXQ_ERR_ARG;
#ifdef FXQ_HAVE_X86
    if (h->path >= FXQ_PATH_AVX512) return fxq_fc_avx512(h, (const uint8_t *)x, out, n);
    if (h->path == FXQ_PATH_AVX2) return fxq_fc_avx2(h, (const uint8_t *)x, out, n);
#endif
    return fxq_fc_scalar(h, (const uint8_t *)x, out, n);
}
