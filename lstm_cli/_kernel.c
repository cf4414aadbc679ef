/* The plain LSTM cell's step loop over a chunk, compiled: the optional fast path of
 * lstm_cli.compiled (loaded with ctypes; the NumPy loop in lstm_cli/fused.py stays the
 * reference). Same layout and the same exact rewrites as fused._steps_plain:
 *
 *   W_h (4H, H), rows g, o, f, i, the sigmoid rows halved; xproj (n, 4H, B) = W_x x_t + b;
 *   h (H, B); work (5H, B) = [c | g o f i]; h_seq (n, H, B) or NULL; record (n, 5H, B) or NULL.
 *
 * Per step: z = W_h h + xproj[t]; g = tanh(z_g); o, f, i = 0.5 * tanh(z) + 0.5;
 * c = f * c + i * g; h = o * tanh(c). Built with -ffp-contract=off where the compiler
 * knows it, so that no product and sum are fused (the NumPy path rounds each one).
 * float32: the recurrent product is accumulated and the activations computed in double,
 * each rounded once to float32.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#define STEPS(NAME, T, ACC, TANH)                                                              \
    void NAME(long n, long H, long B, const T *W_h, const T *xproj, T *h, T *work,        \
              T *h_seq, T *record)                                                        \
    {                                                                                     \
        T *c = work, *z = work + H * B, *g = z, *o = z + H * B, *f = z + 2 * H * B,       \
          *in = z + 3 * H * B;                                                            \
        long t, j, k, b, HB = H * B;                                                      \
        for (t = 0; t < n; t++) {                                                         \
            const T *xp = xproj + t * 4 * HB;                                             \
            for (j = 0; j < 4 * H; j++) {                                                 \
                const T *w = W_h + j * H;                                                 \
                for (b = 0; b < B; b++) {                                                 \
                    ACC acc = 0;                                                          \
                    for (k = 0; k < H; k++) acc += (ACC)w[k] * h[k * B + b];                \
                    z[j * B + b] = (T)acc + xp[j * B + b];                                \
                }                                                                         \
            }                                                                             \
            for (j = 0; j < HB; j++) g[j] = (T)TANH(z[j]);                                \
            for (j = HB; j < 4 * HB; j++) z[j] = (T)TANH(z[j]) * (T)0.5 + (T)0.5;          \
            for (j = 0; j < HB; j++) {                                                    \
                T fc = f[j] * c[j], ig = in[j] * g[j];                                    \
                c[j] = fc + ig;                                                           \
                h[j] = o[j] * (T)TANH(c[j]);                                              \
            }                                                                             \
            if (h_seq) memcpy(h_seq + t * HB, h, sizeof(T) * HB);                         \
            if (record) memcpy(record + t * 5 * HB, work, sizeof(T) * 5 * HB);            \
        }                                                                                 \
    }

#define TANH_F64(x) tanh(x)
#define TANH_F32(x) tanh((double)(x))

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

EXPORT STEPS(lstm_steps_f64, double, double, TANH_F64)
EXPORT STEPS(lstm_steps_f32, float, double, TANH_F32)

/* ------------------------------------------------------------------------------------------
 * The fused elementwise step for any cell size (lstm_cell_f64, lstm_cell_f32): everything of a
 * step but its matrix product, which stays NumPy's (BLAS). With HB = H * B and the fused
 * unit-major layout of lstm_cli/fused.py:
 *
 *   z (4HB) the step's pre-activations, slabs g, o, f, i (o, f, i halved, as in FusedCell);
 *   add (4HB) or NULL: added to z first (the chunk's input projection with the bias);
 *   c_prev (HB) -> c_next (HB), h_next (HB): distinct buffers (h_next may be where the next
 *   product reads h); gates (4HB): receives the activations g, o, f, i (required).
 *
 * g = tanh(z_g); o, f, i = sigmoid(2 z); c_next = f * c_prev + i * g; h_next = o * tanh(c_next).
 * The cell update is NumPy's: each product and the sum rounded (never fused). The activations
 * are branch-free polynomials that the compiler vectorizes: float64 in double (tanh within 2
 * ulp, sigmoid = 1 / (1 + exp(-2 zh)) within 3), float32 in float, twice the lanes (tanh within
 * 1.3 ulp; sigmoid as NumPy's loop computes it, 0.5 tanh(zh) + 0.5). No division: reciprocals
 * by Newton's iteration. Returns 0, or 1 when a pre-activation, a product or c_next is not
 * finite: what was written is then not to be trusted and the caller redoes the step with
 * NumPy (z and c_prev are left untouched). Compiled for several instruction sets (AVX-512,
 * AVX2 + FMA, the baseline), one picked when the library loads (GCC's target_clones, on
 * x86-64 Linux); elsewhere the baseline build with the same code. */
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__)
/* Here (not in the step loop above) the polynomials may use fused multiply-add where the CPU
 * has it; the cell update stays unfused (see CELL). */
#pragma GCC optimize("fp-contract=fast")
#endif
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static __inline
#endif
#if defined(_MSC_VER)
#define restrict __restrict
#endif

INLINE uint64_t bits_of(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
INLINE double double_of(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }
INLINE uint32_t bits_of_f(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
INLINE float float_of(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* 1 / d for d in [1, 2^120], no division (a vector division costs as much as all the rest):
 * a first guess from the bits of d (relative error below 0.051), then Newton's iterations
 * y = y + y (1 - d y), each squaring the error: 4 for double (0.051^16 < 2e-21), 3 for
 * float (0.051^8 < 5e-11), then only the last iteration's rounding is left. */
INLINE double recip_d(double d)
{
    double y = double_of(0x7FDE623822FC16E6ull - bits_of(d));
    for (int k = 0; k < 4; k++) y = y + y * (1.0 - d * y);
    return y;
}

INLINE float recip_f(float d)
{
    float y = float_of(0x7EF311C3u - bits_of_f(d));
    for (int k = 0; k < 3; k++) y = y + y * (1.0f - d * y);
    return y;
}

/* exp(y), y clamped to [-708, 80] (NaN stays NaN): y = n ln2 + r, |r| <= ln2 / 2; exp(r)
 * by its Taylor polynomial to degree 13 (truncation below 1e-17 relative); 2^n is built in
 * the exponent bits (the n of kd = y / ln2 + 1.5 * 2^52, in its low bits). */
INLINE double exp_d(double y)
{
    const double shift = 0x1.8p52, inv_ln2 = 0x1.71547652b82fep0;
    const double ln2_hi = 6.93145751953125E-1, ln2_lo = 1.42860682030941723212E-6;
    y = y < -708.0 ? -708.0 : y;
    y = y > 80.0 ? 80.0 : y; /* keeps 1 / (1 + exp(y)) normal: an error below 2e-35 */
    double kd = y * inv_ln2 + shift;
    uint64_t ki = bits_of(kd);
    kd -= shift; /* n, exactly; kd * ln2_hi is exact */
    double r = (y - kd * ln2_hi) - kd * ln2_lo;
    double p = 1.0 / 6227020800.0; /* 1 / 13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return p * double_of((ki + 1023) << 52);
}

/* tanh(x), branch-free: |x| < 0.625: Cephes' rational x + x s P(s) / Q(s), s = x^2; else
 * 1 - 2 e / (1 + e) with e = exp(-2 |x|); one division for both. +-inf: +-1; NaN: NaN.
 * Within 2 ulp of the correctly rounded tanh (measured on 2e5 points). */
INLINE double tanh_d(double x)
{
    double a = fabs(x), s = a * a;
    double pn = a * s * ((-9.64399179425052238628E-1 * s - 9.92877231001918586564E1) * s
                         - 1.61468768441708447952E3);
    double pd = ((s + 1.12811678491632931402E2) * s + 2.23548839060100448583E3) * s
                + 4.84406305325125486048E3;
    double e = exp_d(-2.0 * a);
    int small = a < 0.625;
    double num = small ? pn : -2.0 * e, den = small ? pd : 1.0 + e, base = small ? a : 1.0;
    return copysign(base + num * recip_d(den), x);
}

/* The logistic sigmoid of 2 zh (zh: a halved pre-activation, see FusedCell): 1 / (1 + e),
 * e = exp(-2 zh); 0 below 2 zh = -80 (where it is below 2e-35), as 0.5 + 0.5 tanh(zh) is. */
INLINE double sigmoid2_d(double zh)
{
    double y = -2.0 * zh;
    return y > 80.0 ? 0.0 : recip_d(1.0 + exp_d(y));
}

/* float32, computed in float (twice the lanes of double): Cephes' expf (degree 5 polynomial
 * on |r| <= ln2 / 2, about 1 ulp), for y >= 0 (tanh_f's only use) clamped to 80. */
INLINE float exp_f(float y)
{
    const float shift = 0x1.8p23f;
    y = y > 80.0f ? 80.0f : y; /* as exp_d: 1 / (1 + exp(y)) stays normal */
    float kf = y * 1.44269504088896341f + shift;
    uint32_t ki = bits_of_f(kf);
    kf -= shift;
    float r = (y - kf * 0.693359375f) - kf * -2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = (p * r) * r + r + 1.0f;
    return p * float_of((ki + 127) << 23);
}

/* Cephes' tanhf: |x| < 0.625: x + x s P(s); else 1 - 2 / (exp(2 |x|) + 1). */
INLINE float tanh_f(float x)
{
    float a = fabsf(x), s = a * a;
    float ps = ((((-5.70498872745E-3f * s + 2.06390887954E-2f) * s - 5.37397155531E-2f) * s
                 + 1.33314422036E-1f) * s - 3.33332819422E-1f) * s * a + a;
    float pl = 1.0f - 2.0f * recip_f(exp_f(2.0f * a) + 1.0f);
    return copysignf(a < 0.625f ? ps : pl, x);
}

/* float32's sigmoid as NumPy's loop computes it, 0.5 tanh(zh) + 0.5 (the product by 0.5 is
 * exact, so fused or not it rounds once): the two then differ only by their tanh. */
INLINE float sigmoid2_f(float zh) { return tanh_f(zh) * 0.5f + 0.5f; }

/* An exponent of all ones: inf or NaN (x - x != 0 would need no trapping either; this is exact) */
#define NOT_FINITE(x) (sizeof(x) == 8 ? (bits_of(x) & 0x7ff0000000000000ull) == 0x7ff0000000000000ull \
                                      : (bits_of_f(x) & 0x7f800000u) == 0x7f800000u)

/* One activation F over z[LO:HI] (+ add), into gates: a loop with one function in it keeps
 * the registers free (measured 20 % faster than all five activations of a unit in one loop). */
#define ACT_PASS(T, F, LO, HI)                                                                    \
    if (add) {                                                                                    \
        for (j = LO; j < HI; j++) { T v = z[j] + add[j]; gates[j] = F(v); bad |= NOT_FINITE(v); } \
    } else {                                                                                      \
        for (j = LO; j < HI; j++) { T v = z[j]; gates[j] = F(v); bad |= NOT_FINITE(v); }          \
    }

/* gates is required (a scratch buffer when the caller keeps no gates). fc and ig are used
 * twice (the sum and the check), so they are never fused into c: NumPy's rounding. */
#define CELL(NAME, T, TANH, SIG)                                                                  \
    EXPORT CLONES int NAME(long HB, const T *restrict z, const T *restrict add,                   \
                           const T *restrict c_prev, T *restrict c_next, T *restrict h_next,      \
                           T *restrict gates)                                                     \
    {                                                                                             \
        long j;                                                                                   \
        unsigned bad = 0;                                                                         \
        ACT_PASS(T, TANH, 0, HB)                                                                  \
        ACT_PASS(T, SIG, HB, 4 * HB)                                                              \
        for (j = 0; j < HB; j++) {                                                                \
            T fc = gates[2 * HB + j] * c_prev[j], ig = gates[3 * HB + j] * gates[j];              \
            T c = fc + ig;                                                                        \
            c_next[j] = c;                                                                        \
            h_next[j] = gates[HB + j] * TANH(c);                                                  \
            bad |= NOT_FINITE(c) | NOT_FINITE(fc) | NOT_FINITE(ig);                               \
        }                                                                                         \
        return bad != 0;                                                                          \
    }

CELL(lstm_cell_f64, double, tanh_d, sigmoid2_d)
CELL(lstm_cell_f32, float, tanh_f, sigmoid2_f)

/* An empty module: setuptools builds the file as a CPython extension (its suffix, its
 * compiler flags); lstm_cli.compiled loads it with ctypes and calls the two functions. */
static struct PyModuleDef kernel_module = {PyModuleDef_HEAD_INIT, "_kernel", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&kernel_module); }
