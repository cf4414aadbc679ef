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

/* One activation F over the m values of slab q of z (+ add), into slab q of gates: a loop with
 * one function in it keeps the registers free (measured 20 % faster than all five activations
 * of a unit in one loop). */
#define ACT_PASS(T, F, Q)                                                                         \
    {                                                                                             \
        const T *restrict zq = z + (Q) * zs;                                                      \
        T *restrict gq = gates + (Q) * gs;                                                        \
        if (add) {                                                                                \
            const T *restrict aq = add + (Q) * zs;                                                \
            for (j = 0; j < m; j++) { T v = zq[j] + aq[j]; gq[j] = F(v); bad |= NOT_FINITE(v); } \
        } else {                                                                                  \
            for (j = 0; j < m; j++) { T v = zq[j]; gq[j] = F(v); bad |= NOT_FINITE(v); }         \
        }                                                                                         \
    }

/* The elementwise step of m units (x batch) whose pre-activations are the slabs g, o, f, i of
 * z, zs apart (+ add, same layout), and whose gates go to four slabs of gates, gs apart.
 * gates is required (a scratch buffer when the caller keeps no gates). fc and ig are used
 * twice (the sum and the check), so they are never fused into c: NumPy's rounding. Returns
 * nonzero when a pre-activation, a product or c_next is not finite. */
#define CELL_PART(NAME, T, TANH, SIG)                                                             \
    INLINE unsigned NAME(long m, const T *restrict z, const T *restrict add, long zs,             \
                         const T *restrict c_prev, T *restrict c_next, T *restrict h_next,        \
                         T *restrict gates, long gs)                                              \
    {                                                                                             \
        long j;                                                                                   \
        unsigned bad = 0;                                                                         \
        ACT_PASS(T, TANH, 0)                                                                      \
        ACT_PASS(T, SIG, 1)                                                                       \
        ACT_PASS(T, SIG, 2)                                                                       \
        ACT_PASS(T, SIG, 3)                                                                       \
        for (j = 0; j < m; j++) {                                                                 \
            T fc = gates[2 * gs + j] * c_prev[j], ig = gates[3 * gs + j] * gates[j];              \
            T c = fc + ig;                                                                        \
            c_next[j] = c;                                                                        \
            h_next[j] = gates[gs + j] * TANH(c);                                                  \
            bad |= NOT_FINITE(c) | NOT_FINITE(fc) | NOT_FINITE(ig);                               \
        }                                                                                         \
        return bad;                                                                               \
    }

CELL_PART(cell_part_f64, double, tanh_d, sigmoid2_d)
CELL_PART(cell_part_f32, float, tanh_f, sigmoid2_f)

/* The whole cell: z, add and gates (4HB), slabs HB apart. */
#define CELL(NAME, T, PART)                                                                       \
    EXPORT CLONES int NAME(long HB, const T *restrict z, const T *restrict add,                   \
                           const T *restrict c_prev, T *restrict c_next, T *restrict h_next,      \
                           T *restrict gates)                                                     \
    {                                                                                             \
        return PART(HB, z, add, HB, c_prev, c_next, h_next, gates, HB) != 0;                      \
    }

CELL(lstm_cell_f64, double, cell_part_f64)
CELL(lstm_cell_f32, float, cell_part_f32)

/* ------------------------------------------------------------------------------------------
 * The whole stacked step loop of a batch, on several threads (lstm_threads_f64/f32): each
 * step's product W_u [h; x_t; 1] by a small GEMM of our own on weights packed once per run,
 * then the fused elementwise step above, both split by hidden unit across the threads (a
 * barrier per step: step t + 1 reads every unit's h). Same arguments as compiled.py's
 * stacked_fused: U (n + 1, K, B) with K = H + F + 1, U[t] = [h_prev; x_t; 1], step t writing
 * its h_next into U[t + 1, :H]; per step t, the addresses of c_prev, c_next (H, B) and of
 * the gates (4H, B, slabs g, o, f, i).
 *
 * The product: z[r, :] = sum over k of W_u[r, k] U[t][k, :], k in order 0 .. K-1, one fused
 * multiply-add per term into the row's running sum, vectorized over the batch (as OpenBLAS's
 * kernels sum when K fits one of their blocks: measured bit-identical on these shapes). The
 * weights of thread p's units u0 .. u1-1 are packed in blocks of MR units, four panels a
 * block (its rows of g, o, f, i), each panel k-major (panel[k * MR + r]), zero rows past the
 * last unit (see panels_of and PACK).
 * Returns the number of steps done: n, or the first step t with a value that is not finite
 * (its outputs are then not to be trusted, its inputs are intact: the caller redoes it). */
#if defined(__GNUC__) && !defined(_WIN32)
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define MR 12 /* rows per packed panel */
#define MAX_THREADS 64

INLINE void unit_range(long H, long nthreads, long p, long *u0, long *u1)
{
    *u0 = H * p / nthreads;
    *u1 = H * (p + 1) / nthreads;
}

/* A thread's units go in blocks of MR (the last one may be short): block b's four panels
 * hold the rows of gates g, o, f, i of its units, so that a block's product and its
 * elementwise step follow each other while its pre-activations are in cache. */
INLINE long panels_of(long H, long nthreads, long p)
{
    long u0, u1;
    unit_range(H, nthreads, p, &u0, &u1);
    return 4 * ((u1 - u0 + MR - 1) / MR);
}

/* Elements of the packed weights, all threads' panels one after the other. */
EXPORT long lstm_packed_len(long H, long K, long nthreads)
{
    long p, total = 0;
    for (p = 0; p < nthreads; p++) total += panels_of(H, nthreads, p) * K * MR;
    return total;
}

/* Elements of scratch per thread: z of one block of units (4 MR rows), X's padded tail
 * columns and their product, for up to MAX_LANES lanes. */
#define MAX_LANES 16
INLINE long per_thread(long K, long B) { return 4 * MR * B + (K + MR) * MAX_LANES; }

EXPORT long lstm_threads_scratch_len(long H, long K, long B, long nthreads)
{
    (void)H;
    return nthreads * per_thread(K, B);
}

/* W_u = [W | b] (4H rows of K: W's K - 1 columns, then b) packed: panel by panel, k by k,
 * the panel's MR rows side by side (each written once, in order). */
#define PACK(NAME, T)                                                                             \
    EXPORT void NAME(long H, long K, long nthreads, const T *W, const T *b, T *packed)            \
    {                                                                                             \
        long p, i, k, r;                                                                          \
        const T *rows[MR];                                                                        \
        for (p = 0; p < nthreads; p++) {                                                          \
            long u0, u1, nu, P = panels_of(H, nthreads, p);                                       \
            unit_range(H, nthreads, p, &u0, &u1);                                                 \
            nu = u1 - u0;                                                                         \
            for (i = 0; i < P; i++, packed += K * MR) {                                           \
                for (r = 0; r < MR; r++) { /* panel i: gate i % 4 of block i / 4's units */       \
                    long u = (i / 4) * MR + r;                                                    \
                    rows[r] = u < nu ? W + ((i % 4) * H + u0 + u) * (K - 1) : NULL;               \
                }                                                                                 \
                for (k = 0; k < K - 1; k++)                                                       \
                    for (r = 0; r < MR; r++) packed[k * MR + r] = rows[r] ? rows[r][k] : (T)0;    \
                for (r = 0; r < MR; r++) /* the bias: b's row, as W_u's last column */            \
                    packed[(K - 1) * MR + r] = rows[r] ? b[(rows[r] - W) / (K - 1)] : (T)0;        \
            }                                                                                     \
        }                                                                                         \
    }

PACK(lstm_pack_f64, double)
PACK(lstm_pack_f32, float)

/* A barrier for a few threads that spin (a step is tens of microseconds), then yield. */
typedef struct {
    atomic_long count, phase;
    long n;
} barrier_t;

__attribute__((unused)) static void barrier_wait(barrier_t *b)
{
    long phase = atomic_load_explicit(&b->phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == b->n - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store_explicit(&b->phase, phase + 1, memory_order_release);
        return;
    }
    for (long spins = 0; atomic_load_explicit(&b->phase, memory_order_acquire) == phase; spins++)
        if (spins > 4000) sched_yield();
}

typedef struct {
    long n, H, K, B, nthreads;
    const void *packed;
    void *U;
    void *const *c_prev, *const *c_next, *const *gates;
    void *scratch; /* each thread's z and tail buffers, per_thread elements apart */
    long per_thread;
    barrier_t barrier;
    atomic_long bad_at; /* the first step with a value not finite; n when none */
} job_t;

typedef struct {
    job_t *job;
    long p;
} worker_t;

/* One tile of the product: rows r0 .. r0 + NR - 1 of a panel by NV vectors of the batch. */
#define TILE(NAME, T, VT, VTU, L, ATTR, NR, NV)                                                   \
    ATTR static inline __attribute__((always_inline)) void NAME(                                 \
        long K, const T *restrict panel, const T *restrict X, long ldx, T *restrict Z, long ldz) \
    {                                                                                             \
        VT acc[NR][NV];                                                                           \
        int r, v;                                                                                 \
        for (r = 0; r < NR; r++)                                                                  \
            for (v = 0; v < NV; v++) acc[r][v] = (VT){0};                                         \
        for (long k = 0; k < K; k++) {                                                            \
            VT x[NV];                                                                             \
            for (v = 0; v < NV; v++) x[v] = *(const VTU *)(X + k * ldx + v * L);                  \
            for (r = 0; r < NR; r++) {                                                            \
                T w = panel[k * MR + r];                                                          \
                for (v = 0; v < NV; v++) acc[r][v] += w * x[v];                                   \
            }                                                                                     \
        }                                                                                         \
        for (r = 0; r < NR; r++)                                                                  \
            for (v = 0; v < NV; v++) *(VTU *)(Z + r * ldz + v * L) = acc[r][v];                   \
    }

/* The worker of one instruction set: vector type VT of L lanes. Tiles of NR rows by NV
 * vectors of the batch, as wide as the vector registers allow: WIDE by 6 rows, then (where
 * there are 32 registers, MID = 2) 2 by 12, then 1 by ONE rows. */
#define THREADS(SFX, T, VT, VTU, L, ATTR, WIDE, MID, ONE, PART)                                   \
    TILE(tile_w_##SFX, T, VT, VTU, L, ATTR, 6, WIDE)                                              \
    TILE(tile_m_##SFX, T, VT, VTU, L, ATTR, 12, 2)                                                \
    TILE(tile_1_##SFX, T, VT, VTU, L, ATTR, ONE, 1)                                               \
    /* X's last B % L columns (K rows), zero-padded to L: the product's last vector */           \
    ATTR static void pad_tail_##SFX(long K, long B, const T *restrict X, T *restrict tail)        \
    {                                                                                             \
        long j, k, full = B - B % L;                                                              \
        for (k = 0; full < B && k < K; k++)                                                       \
            for (j = 0; j < L; j++) tail[k * L + j] = full + j < B ? X[k * B + full + j] : 0;     \
    }                                                                                             \
    /* z (P MR, B) = P panels times X (K, B), X's last B % L columns from pad_tail's copy */      \
    ATTR static void product_##SFX(long P, long K, long B, const T *restrict panels,              \
                                   const T *restrict X, T *restrict z, const T *restrict tail,    \
                                   T *restrict ztail)                                             \
    {                                                                                             \
        long p, j, r, full = B - B % L;                                                           \
        for (p = 0; p < P; p++) {                                                                 \
            const T *panel = panels + p * K * MR;                                                 \
            T *zp = z + p * MR * B;                                                               \
            for (j = 0; j + WIDE * L <= full; j += WIDE * L)                                      \
                for (r = 0; r < MR; r += 6) tile_w_##SFX(K, panel + r, X + j, B, zp + r * B + j, B); \
            for (; MID && j + 2 * L <= full; j += 2 * L)                                          \
                tile_m_##SFX(K, panel, X + j, B, zp + j, B);                                      \
            for (; j < full; j += L)                                                              \
                for (r = 0; r < MR; r += ONE) tile_1_##SFX(K, panel + r, X + j, B, zp + r * B + j, B); \
            if (full < B) {                                                                       \
                for (r = 0; r < MR; r += ONE) tile_1_##SFX(K, panel + r, tail, L, ztail + r * L, L); \
                for (r = 0; r < MR; r++)                                                          \
                    for (j = full; j < B; j++) zp[r * B + j] = ztail[r * L + j - full];           \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    ATTR static void *work_##SFX(void *arg)                                                       \
    {                                                                                             \
        worker_t *w = arg;                                                                        \
        job_t *jb = w->job;                                                                       \
        long H = jb->H, K = jb->K, B = jb->B, HB = H * B, n = jb->n, t, q, u0, u1, nu, off = 0;  \
        for (q = 0; q < w->p; q++) off += panels_of(H, jb->nthreads, q) * K * MR;                 \
        unit_range(H, jb->nthreads, w->p, &u0, &u1);                                              \
        nu = u1 - u0;                                                                             \
        const T *panels = (const T *)jb->packed + off;                                            \
        T *U = jb->U;                                                                             \
        T *z = (T *)jb->scratch + w->p * jb->per_thread;                                          \
        T *tail = z + 4 * MR * B, *ztail = tail + K * L;                                          \
        for (t = 0; t < n; t++) {                                                                 \
            const T *X = U + t * K * B;                                                           \
            unsigned bad = 0;                                                                     \
            pad_tail_##SFX(K, B, X, tail);                                                        \
            for (long u = 0; u < nu; u += MR) { /* a block of units: product, then its step */    \
                long m = (nu - u < MR ? nu - u : MR) * B, at = (u0 + u) * B;                      \
                product_##SFX(4, K, B, panels + u * 4 * K, X, z, tail, ztail);                    \
                bad |= PART(m, z, NULL, MR * B, (const T *)jb->c_prev[t] + at,                    \
                            (T *)jb->c_next[t] + at, U + (t + 1) * K * B + at,                    \
                            (T *)jb->gates[t] + at, HB);                                          \
            }                                                                                     \
            if (bad) atomic_store(&jb->bad_at, t);                                                \
            barrier_wait(&jb->barrier);                                                           \
            if (atomic_load(&jb->bad_at) <= t) break;                                             \
        }                                                                                         \
        return NULL;                                                                              \
    }

/* The instruction sets: on x86-64 (GCC) AVX-512 and AVX2 + FMA, picked when the library
 * loads; elsewhere the baseline build, where the compiler fuses a multiply and an add on its
 * own (the product's sums are then rounded once per term, as OpenBLAS's). Not on x86-64's
 * baseline (SSE2, no fused multiply-add: float32 went to 5 ulp): there the fused kernel runs.
 * -DLSTM_BASELINE_ONLY builds the baseline alone (the tests build it with -mfma and without). */
#if defined(__x86_64__) && !defined(__clang__) && !defined(LSTM_BASELINE_ONLY)
#define HAVE_X86 1
typedef float v16f __attribute__((vector_size(64)));
typedef float v16fu __attribute__((vector_size(64), aligned(4)));
typedef double v8d __attribute__((vector_size(64)));
typedef double v8du __attribute__((vector_size(64), aligned(8)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));
typedef double v4d __attribute__((vector_size(32)));
typedef double v4du __attribute__((vector_size(32), aligned(8)));
#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#define AVX2 __attribute__((target("avx2,fma")))
THREADS(f32_avx512, float, v16f, v16fu, 16, AVX512, 4, 1, 12, cell_part_f32)
THREADS(f64_avx512, double, v8d, v8du, 8, AVX512, 4, 1, 12, cell_part_f64)
THREADS(f32_avx2, float, v8f, v8fu, 8, AVX2, 2, 0, 6, cell_part_f32)
THREADS(f64_avx2, double, v4d, v4du, 4, AVX2, 2, 0, 6, cell_part_f64)
#else
#define HAVE_X86 0
#endif
#if !HAVE_X86 && defined(__FP_FAST_FMAF) && defined(__FP_FAST_FMA)
#define HAVE_BASE 1
typedef float v4f __attribute__((vector_size(16)));
typedef float v4fu __attribute__((vector_size(16), aligned(4)));
typedef double v2d __attribute__((vector_size(16)));
typedef double v2du __attribute__((vector_size(16), aligned(8)));
THREADS(f32_base, float, v4f, v4fu, 4, , 2, 0, 6, cell_part_f32)
THREADS(f64_base, double, v2d, v2du, 2, , 2, 0, 6, cell_part_f64)
#else
#define HAVE_BASE 0
#endif

typedef void *(*worker_fn)(void *);

typedef struct {
    worker_t *w;
    worker_fn fn;
    atomic_int *go; /* 0: wait; 1: run; -1: stop (not every thread could be started) */
} start_t;

static void *started(void *arg)
{
    start_t *s = arg;
    int go;
    while ((go = atomic_load_explicit(s->go, memory_order_acquire)) == 0) sched_yield();
    return go > 0 ? s->fn(s->w) : NULL;
}

static long run_threads(worker_fn fn, long n, long H, long K, long B, long nthreads,
                        const void *packed, void *U, void *const *c_prev, void *const *c_next,
                        void *const *gates, void *scratch)
{
    job_t job = {.n = n, .H = H, .K = K, .B = B, .nthreads = nthreads, .packed = packed, .U = U,
                 .c_prev = c_prev, .c_next = c_next, .gates = gates, .scratch = scratch,
                 .per_thread = per_thread(K, B)};
    pthread_t ids[MAX_THREADS];
    worker_t ws[MAX_THREADS];
    start_t st[MAX_THREADS];
    atomic_int go;
    long p, made;
    if (fn == NULL || nthreads < 1 || nthreads > MAX_THREADS) return 0;
    atomic_init(&go, 0);
    atomic_init(&job.barrier.count, 0);
    atomic_init(&job.barrier.phase, 0);
    atomic_init(&job.bad_at, n);
    job.barrier.n = nthreads;
    for (made = 1; made < nthreads; made++) {
        ws[made] = (worker_t){&job, made};
        st[made] = (start_t){&ws[made], fn, &go};
        if (pthread_create(&ids[made], NULL, started, &st[made]) != 0) break;
    }
    atomic_store_explicit(&go, made == nthreads ? 1 : -1, memory_order_release);
    if (made == nthreads) {
        ws[0] = (worker_t){&job, 0};
        fn(&ws[0]);
    }
    for (p = 1; p < made; p++) pthread_join(ids[p], NULL);
    return made == nthreads ? atomic_load(&job.bad_at) : 0; /* 0: none done, run elsewhere */
}

/* The instruction sets of the threaded loop: 2 AVX-512, 1 AVX2 + FMA, 0 the baseline build
 * (not on x86-64), -1 none: the loop is not there. */
static int isa_supported(void)
{
#if HAVE_X86
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("fma"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return -1;
#else
    return HAVE_BASE ? 0 : -1;
#endif
}

static int isa_cap = 2; /* lstm_threads_isa(level) lowers it: the tests run every path */

/* The instruction set in use (as isa_supported), after capping it at ``level`` when level >=
 * 0 (a cap below every set this build has: -1, the loop is then not used). */
EXPORT int lstm_threads_isa(int level)
{
    int have = isa_supported();
    if (level >= 0) isa_cap = level;
    if (have > isa_cap) have = isa_cap;
    return (have == 0 && !HAVE_BASE) ? -1 : have;
}

static worker_fn pick(worker_fn avx512, worker_fn avx2, worker_fn base)
{
    switch (lstm_threads_isa(-1)) {
    case 2: return avx512;
    case 1: return avx2;
    case 0: return base;
    default: return NULL;
    }
}

#if HAVE_X86
#define PICK(T) pick(work_##T##_avx512, work_##T##_avx2, NULL)
#elif HAVE_BASE
#define PICK(T) pick(NULL, NULL, work_##T##_base)
#else
#define PICK(T) pick(NULL, NULL, NULL)
#endif

#define RUN(NAME, T)                                                                              \
    EXPORT long NAME(long n, long H, long K, long B, long nthreads, const void *packed, void *U,  \
                     void *const *c_prev, void *const *c_next, void *const *gates, void *scratch) \
    {                                                                                             \
        return run_threads(PICK(T), n, H, K, B, nthreads, packed, U, c_prev, c_next, gates,      \
                           scratch);                                                              \
    }

RUN(lstm_threads_f64, f64)
RUN(lstm_threads_f32, f32)
#endif

/* An empty module: setuptools builds the file as a CPython extension (its suffix, its
 * compiler flags); lstm_cli.compiled loads it with ctypes and calls the two functions. */
static struct PyModuleDef kernel_module = {PyModuleDef_HEAD_INIT, "_kernel", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&kernel_module); }
