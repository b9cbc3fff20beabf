/* fxq_kernels.h -- public C API of the fxq_explore int8 convolution and requantization kernels.
 *
 * This file is also the cffi cdef source: csrc/build_ffi.py drops the preprocessor lines and
 * hands the rest to ffibuilder.cdef(), so keep declarations here plain C (no macros in them).
 *
 * Conventions
 * -----------
 * - Every symbol has the fxq_ prefix, every function returns an int status (FXQ_OK == 0) or a size.
 * - Shift convention is TFLite's: `shift` is signed, positive means left,
 *   real scale ~= multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) or 0 (flushed).
 * - The C code trusts the Python wrapper (fxq_explore/kernels.py) for the value ranges documented
 *   below, but it re-checks every size and pointer it needs to stay inside its buffers and returns
 *   FXQ_ERR_ARG otherwise.  It never allocates: the caller passes a workspace of at least
 *   fxq_*_workspace_size() bytes.
 */
#ifndef FXQ_KERNELS_H
#define FXQ_KERNELS_H
#include <stdint.h>

enum fxq_status {
    FXQ_OK = 0,
    FXQ_ERR_ARG = -1,      /* a size, pointer or enum is invalid */
    FXQ_ERR_PATH = -2,     /* the requested SIMD path is not compiled in or the CPU lacks it */
    FXQ_ERR_WORKSPACE = -3 /* workspace too small */
};

enum fxq_scheme {
    FXQ_SCHEME_NONE = 0,        /* int32 accumulators, no requantization */
    FXQ_SCHEME_FLOAT32_RNE = 1, /* f32(f32(acc) * scale_f32), round half to even */
    FXQ_SCHEME_POW2 = 2,        /* acc * 2^exponent, round half up (int64 semantics) */
    FXQ_SCHEME_TFLITE = 3, /* TFLite/gemmlowp double rounding: SRDHM then RoundingDivideByPOT */
    FXQ_SCHEME_TFLITE_SINGLE = 4 /* TFLITE_SINGLE_ROUNDING: (acc*M + 2^(30-shift)) >> (31-shift) */
};

enum fxq_dtype { FXQ_DTYPE_INT32 = 0, FXQ_DTYPE_UINT8 = 1, FXQ_DTYPE_INT8 = 2 };

enum fxq_layout {
    FXQ_LAYOUT_NCHW = 0,    /* x (N,C,H,W), w (K,C/groups,R,S), out (N,K,OH,OW) */
    FXQ_LAYOUT_NCHW16C = 1, /* x (N,C/16,H,W,16), w (K/16,C/16,R,S,4,16,4), out (N,K/16,OH,OW,16);
                             * groups = 1 only */
    FXQ_LAYOUT_NHWC = 2     /* x (N,H,W,C), w (K,C/groups,R,S), out (N,OH,OW,K); a fully connected
                             * layer is NHWC with H = 1, W = batch, R = S = 1 */
};

enum fxq_path {
    FXQ_PATH_AUTO = 0,
    FXQ_PATH_SCALAR = 1,
    FXQ_PATH_AVX2 = 2,   /* AVX2 (+FMA): exact vpmaddubsw(|x-128|, sign(x-128)*w) MACs */
    FXQ_PATH_AVX512 = 3, /* AVX-512 F/BW/VL + VNNI: vpdpbusd zmm */
    FXQ_PATH_AMX = 4     /* the AVX-512 path with dense convolutions on AMX tiles (tdpbusd) */
};

enum fxq_cpu_feature {
    FXQ_CPU_SSE2 = 1,
    FXQ_CPU_AVX2 = 2,
    FXQ_CPU_FMA = 4,
    FXQ_CPU_AVX512F = 8,
    FXQ_CPU_AVX512BW = 16,
    FXQ_CPU_AVX512VL = 32,
    FXQ_CPU_AVX512VNNI = 64,
    FXQ_CPU_AMX_INT8 = 128 /* AMX-TILE + AMX-INT8, enabled by the kernel for this process */
};

/* Convolution geometry.  Dilation 1.  groups divides c and k (0 means 1); groups == c == k is a
 * depthwise convolution (its own SIMD kernels; NCHW straight from the input where the geometry
 * allows); other groups > 1 run the dense SIMD kernels once
 * per image and group (NCHW; a portable grouped loop on the scalar path and for NHWC).
 * oh = (h + 2*pad_h - r) / stride_h + 1, ow likewise; both must be >= 1. */
typedef struct {
    int64_t n, c, h, w;         /* input batch, channels, height, width */
    int64_t k, r, s;            /* output channels, kernel height, kernel width */
    int64_t stride_h, stride_w; /* >= 1 */
    int64_t pad_h, pad_w;       /* >= 0; padded pixels hold the input zero point */
    int64_t oh, ow;             /* output height, width (checked against the formula) */
    int64_t groups;             /* >= 1 (0: 1) */
} fxq_conv_dims;

/* Requantization parameters, one entry per channel (n_channels == 1: per-tensor).
 * Only the arrays of the selected scheme are read; the others may be NULL.
 *   FLOAT32_RNE:   scale_f32[i] finite and > 0
 *   POW2:          exponent[i], any int32 (scale = 2^exponent)
 *   TFLITE:        multiplier[i] in {0} U [2^30, 2^31), shift[i] in [-31, 31]
 *                  (the caller has checked that acc * 2^max(shift,0) does not overflow int32)
 *   TFLITE_SINGLE: multiplier[i] in {0} U [2^30, 2^31), shift[i] in [-31, 30]
 * out = clamp(q(acc) + zero_point, qmin, qmax) with [qmin, qmax] the range of out_dtype. */
typedef struct {
    int32_t scheme;     /* enum fxq_scheme */
    int32_t out_dtype;  /* FXQ_DTYPE_UINT8 or FXQ_DTYPE_INT8 (INT32 only with SCHEME_NONE) */
    int32_t zero_point; /* in the range of out_dtype */
    int32_t n_channels; /* 1 or the channel count */
    const int32_t *multiplier;
    const int32_t *shift;
    const int32_t *exponent;
    const float *scale_f32;
} fxq_quant_params;

/* Tensors of one convolution call.  All arrays C-contiguous in the layout given. */
typedef struct {
    int32_t layout;       /* enum fxq_layout */
    int32_t x_dtype;      /* FXQ_DTYPE_UINT8 or FXQ_DTYPE_INT8 */
    int32_t x_zero_point; /* in the range of x_dtype */
    const void *x;
    const int8_t *w;
    const int32_t *bias; /* K entries or NULL */
    void *out;           /* int32 (SCHEME_NONE) or out_dtype */
} fxq_conv_tensors;

/* Bytes of workspace fxq_conv2d needs for these dims (negative: invalid dims). */
int64_t fxq_conv2d_workspace_size(const fxq_conv_dims *d);

/* out = requant(sum_{c,r,s} (xpad - x_zp) * w + bias).  Returns enum fxq_status. */
int fxq_conv2d(const fxq_conv_dims *d, const fxq_conv_tensors *t, const fxq_quant_params *q,
               void *workspace, int64_t workspace_bytes, int path);

/* Pre-packing for repeated calls with the same weights (what an inference session does once):
 * fills wpack (fxq_conv2d_packed_weight_size(d) bytes, 64-byte aligned) with the OIHW4i16o4i
 * weights padded to multiples of 16 channels and corr (fxq_conv2d_weight_summary_len(d) int32)
 * with the weight summary: bias[k] - x_zp_u * sum(w[k]), sum(w[k]) and whether a weight is -128.
 * Reads t->layout, t->x_dtype, t->x_zero_point, t->w, t->bias. */
int64_t fxq_conv2d_packed_weight_size(const fxq_conv_dims *d);
int64_t fxq_conv2d_weight_summary_len(const fxq_conv_dims *d);
int fxq_conv2d_pack_weights(const fxq_conv_dims *d, const fxq_conv_tensors *t, void *wpack,
                            int64_t wpack_bytes, int32_t *corr, int64_t corr_len);

/* fxq_conv2d with weights from fxq_conv2d_pack_weights (t->w and t->bias are not read; the
 * dims, x dtype, x zero point and layout must be those used for packing). */
int fxq_conv2d_prepacked(const fxq_conv_dims *d, const fxq_conv_tensors *t,
                         const fxq_quant_params *q, const void *wpack, int64_t wpack_bytes,
                         const int32_t *corr, int64_t corr_len, void *workspace,
                         int64_t workspace_bytes, int path);

/* A pre-packed convolution made once (what a session keeps per layer and input shape): the
 * geometry, the tensors' layout, dtype and zero point, the requantization parameters and the
 * packed weights; only the input and output buffers change per call.  fxq_conv2d_call checks
 * that x_bytes and out_bytes are exactly what the geometry gives (n*c*h*w input bytes,
 * n*k*oh*ow output elements of 4 bytes for SCHEME_NONE, else 1) and runs fxq_conv2d_prepacked;
 * the struct is only read, so threads may share it (each with its own workspace).
 * Optionally the requantization parameters are expanded once, not per call:
 *   fxq_conv_call_prep_size(c)             bytes it needs (negative: invalid geometry)
 *   fxq_conv_call_prepare(c, mem, bytes)   expands c->q into mem and sets c->prep; mem must
 *                                          stay where it is (checked) and c->q must not change
 * (prep = NULL: expanded into the workspace on every call). */
typedef struct {
    fxq_conv_dims d;
    fxq_conv_tensors t; /* t.x and t.out are ignored */
    fxq_quant_params q;
    const void *wpack;
    int64_t wpack_bytes;
    const int32_t *corr;
    int64_t corr_len;
    int32_t path;
    const void *prep; /* NULL, or set by fxq_conv_call_prepare */
} fxq_conv_call;
int fxq_conv2d_call(const fxq_conv_call *c, const void *x, int64_t x_bytes, void *out,
                    int64_t out_bytes, void *workspace, int64_t workspace_bytes);
int64_t fxq_conv_call_prep_size(const fxq_conv_call *c);
int fxq_conv_call_prepare(fxq_conv_call *c, void *mem, int64_t mem_bytes);

/* Fully connected layer, out[n, k] = requant(sum_c (x[n, c] - x_zp) * w[k, c] + bias[k]), x (N, C)
 * uint8/int8, w (K, C) int8, out (N, K) int32 (SCHEME_NONE) or 8-bit.  A plan, made once per
 * weights, input dtype, zero point, requantization and path, holds the packed weights, the
 * zero-point correction and the expanded requantization parameters, so a call does no set-up:
 *   fxq_fc_plan_size(c, k, w)  bytes the plan needs (negative: invalid sizes)
 *   fxq_fc_plan_init(...)      fills it for a path: FXQ_PATH_SCALAR, FXQ_PATH_AVX2 (vpmaddubsw),
 *                              FXQ_PATH_AVX512 (vpdpbusd zmm) or any later path the CPU has
 *                              (they run the AVX-512 kernel); FXQ_PATH_AUTO: fxq_best_path().
 *                              A path the CPU lacks gives FXQ_ERR_PATH, an unknown number
 *                              FXQ_ERR_ARG
 *   fxq_fc_run(plan, ...)      one call on n rows; x_bytes = n * c, out_bytes = n * k * (4 or 1)
 * The plan must stay where it was initialised (it checks its own address) and is read-only
 * during a run, so concurrent runs of one plan are safe. */
int64_t fxq_fc_plan_size(int64_t c, int64_t k, const int8_t *w);
int fxq_fc_plan_init(void *plan, int64_t plan_bytes, int64_t c, int64_t k, const int8_t *w,
                     const int32_t *bias, int32_t x_dtype, int32_t x_zero_point,
                     const fxq_quant_params *q, int path);
int fxq_fc_run(const void *plan, const void *x, int64_t x_bytes, void *out, int64_t out_bytes,
               int64_t n);

/* Bytes of workspace fxq_requantize needs for this many channels. */
int64_t fxq_requantize_workspace_size(int64_t channels);

/* acc viewed as (outer, channels, inner) int32, channel parameters indexed by the middle axis
 * (per-tensor: n_channels == 1 and any split).  out has the same element count, 1 byte each. */
int fxq_requantize(const int32_t *acc, void *out, int64_t outer, int64_t channels, int64_t inner,
                   const fxq_quant_params *q, void *workspace, int64_t workspace_bytes, int path);

/* Plain byte copy with the same loop structure, the bandwidth baseline of the benchmark. */
void fxq_copy_bytes(void *dst, const void *src, int64_t nbytes);

/* Diagnostic for the benchmark: runs iters x 20 independent vpdpbusd zmm (AVX-512 VNNI), so the
 * caller can time this machine's MAC peak.  Returns FXQ_ERR_PATH without AVX-512 VNNI. */
int fxq_probe_vpdpbusd_zmm(int64_t iters);

/* MAC throughput probes (register operands only, independent chains): each instruction mix a
 * kernel can be built on.  fxq_probe_macs(kind, iters) runs it and returns the number of
 * multiply-accumulates executed, or FXQ_ERR_PATH where the CPU lacks the instructions. */
enum fxq_probe {
    FXQ_PROBE_VPMADDWD_YMM = 1, /* vpmaddwd + vpaddd: int16 x int16 pairs, exact (AVX2) */
    FXQ_PROBE_VPMADDUBSW_TRIPLE =
        2, /* vpmaddubsw + vpmaddwd(1) + vpaddd: u8 x s8, int16-saturating (AVX2) */
    FXQ_PROBE_VPSIGNB_QUAD = 3, /* vpsignb + the triple: the exact AVX2 form fxq used before */
    FXQ_PROBE_VPDPBUSD_YMM = 4, /* vpdpbusd ymm (AVX-512 VL + VNNI, EVEX) */
    FXQ_PROBE_VPDPBUSD_ZMM = 5, /* vpdpbusd zmm (AVX-512 VNNI) */
    FXQ_PROBE_TDPBUSD = 6,      /* tdpbusd on 16x64-byte tiles (AMX-INT8) */
    FXQ_PROBE_VPXOR_QUAD = 7,   /* vpxor + the triple: fxq's exact AVX2 kernel today */
    FXQ_PROBE_VPDPBUSD_BCAST =
        8 /* fxq's AVX-512 tile form: per 28 vpdpbusd zmm, 2 weight loads and 14 vpbroadcastd
             from memory (L1), as the 14-pixel x 32-channel register tile issues them */
};
int64_t fxq_probe_macs(int kind, int64_t iters);

int fxq_cpu_features(void);       /* bitmask of enum fxq_cpu_feature */
int fxq_path_available(int path); /* 1 if compiled in and supported by this CPU */
int fxq_best_path(void);          /* what FXQ_PATH_AUTO resolves to */
const char *fxq_path_name(int path);
const char *fxq_compile_flags(void);

/* ------------------------------------------------------------------------------------------------
 * int16 pair-saturating u8 x s8 accumulation (csrc/fxq_pairsat.c): what ONNX Runtime (MLAS),
 * FBGEMM and oneDNN compute with vpmaddubsw on x86 CPUs without VNNI.  x uint8 NCHW, w int8 OIHW,
 * out int32 NHWC (N, OH, OW, K) accumulators without bias.  Paths: FXQ_PATH_SCALAR (any CPU),
 * FXQ_PATH_AVX2 (vpmaddubsw + vpmaddwd, ymm), FXQ_PATH_AVX512 (the same on zmm; needs AVX-512
 * F + BW only, not VNNI), FXQ_PATH_AUTO (the widest the CPU has).
 * The caller bounds the true accumulators inside int32 (the Python wrapper checks it).
 * ---------------------------------------------------------------------------------------------- */
enum fxq_pairsat_pad {
    FXQ_PAIRSAT_PAD_ZERO_POINT = 0, /* padded pixels hold x_zero_point; correction over all taps */
    FXQ_PAIRSAT_PAD_ZERO = 1        /* padded taps contribute nothing (oneDNN) */
};

typedef struct {
    int64_t kp;            /* packed reduction length of one group, a multiple of 4 */
    int32_t pad_mode;      /* enum fxq_pairsat_pad */
    int32_t x_zero_point;  /* 0 .. 255 */
    const int32_t *layout; /* kp slots: index into the flat (r, s, c) order of a group, or -1;
                            * slots 2j and 2j+1 form pair j */
} fxq_pairsat_spec;

int64_t fxq_pairsat_packed_weight_size(const fxq_conv_dims *d, const fxq_pairsat_spec *sp);
int64_t fxq_pairsat_corr_len(const fxq_conv_dims *d, const fxq_pairsat_spec *sp);
int64_t fxq_pairsat_workspace_size(const fxq_conv_dims *d, const fxq_pairsat_spec *sp);
/* Packs w (OIHW int8) into the pair order and fills the zero-point correction table
 * (w_zero_point: K int32). */
int fxq_pairsat_pack_weights(const fxq_conv_dims *d, const fxq_pairsat_spec *sp, const int8_t *w,
                             const int32_t *w_zero_point, void *wpack, int64_t wpack_bytes,
                             int32_t *corr, int64_t corr_len);
int fxq_pairsat_conv2d(const fxq_conv_dims *d, const fxq_pairsat_spec *sp, const uint8_t *x,
                       const void *wpack, int64_t wpack_bytes, const int32_t *corr,
                       int64_t corr_len, int32_t *out, int64_t out_len, void *workspace,
                       int64_t workspace_bytes, int path);
int fxq_pairsat_path_available(int path); /* 1 if this path runs the pair-saturating kernel */

#endif /* FXQ_KERNELS_H */
