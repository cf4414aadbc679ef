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

/* An empty module: setuptools builds the file as a CPython extension (its suffix, its
 * compiler flags); lstm_cli.compiled loads it with ctypes and calls the two functions. */
static struct PyModuleDef kernel_module = {PyModuleDef_HEAD_INIT, "_kernel", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&kernel_module); }
