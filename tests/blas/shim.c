/* A stand-in BLAS library for the discovery tests: it exports the CBLAS names of another
 * vendor's library and forwards every call to numpy's own OpenBLAS (ILP64), which it is
 * linked against. Built by tests/blas/conftest.py with one of:
 *
 *   -DSTYLE_MKL         cblas_sgemm / cblas_dgemm with 32-bit ints (MKL's LP64 interface)
 *                       and MKL's thread API (MKL_Get_Max_Threads, MKL_Set_Num_Threads, ...)
 *   -DSTYLE_ACCELERATE  cblas_sgemm$NEWLAPACK$ILP64 (64-bit ints) and the LP64 cblas_sgemm,
 *                       as Accelerate on macOS 13.3+ exports them
 */
#include <stdint.h>

void scipy_cblas_sgemm64_(int, int, int, int64_t, int64_t, int64_t, float, const float *,
                          int64_t, const float *, int64_t, float, float *, int64_t);
void scipy_cblas_dgemm64_(int, int, int, int64_t, int64_t, int64_t, double, const double *,
                          int64_t, const double *, int64_t, double, double *, int64_t);

/* Counts how often each entry point ran, so a test can tell which one was bound. */
int64_t shim_calls_lp64 = 0, shim_calls_ilp64 = 0;

void cblas_sgemm(int o, int ta, int tb, int m, int n, int k, float al, const float *a, int lda,
                 const float *b, int ldb, float be, float *c, int ldc) {
    shim_calls_lp64++;
    scipy_cblas_sgemm64_(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
}

void cblas_dgemm(int o, int ta, int tb, int m, int n, int k, double al, const double *a,
                 int lda, const double *b, int ldb, double be, double *c, int ldc) {
    shim_calls_lp64++;
    scipy_cblas_dgemm64_(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
}

#ifdef STYLE_ACCELERATE
void accelerate_sgemm(int o, int ta, int tb, int64_t m, int64_t n, int64_t k, float al,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float be,
                      float *c, int64_t ldc) __asm__("cblas_sgemm$NEWLAPACK$ILP64");
void accelerate_sgemm(int o, int ta, int tb, int64_t m, int64_t n, int64_t k, float al,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float be,
                      float *c, int64_t ldc) {
    shim_calls_ilp64++;
    scipy_cblas_sgemm64_(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
}
void accelerate_dgemm(int o, int ta, int tb, int64_t m, int64_t n, int64_t k, double al,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double be,
                      double *c, int64_t ldc) __asm__("cblas_dgemm$NEWLAPACK$ILP64");
void accelerate_dgemm(int o, int ta, int tb, int64_t m, int64_t n, int64_t k, double al,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double be,
                      double *c, int64_t ldc) {
    shim_calls_ilp64++;
    scipy_cblas_dgemm64_(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
}
#endif

#ifdef STYLE_MKL
static int mkl_threads = 4;
int MKL_Get_Max_Threads(void) { return mkl_threads; }
void MKL_Set_Num_Threads(int n) { mkl_threads = n; }
int MKL_Set_Num_Threads_Local(int n) { int old = mkl_threads; mkl_threads = n; return old; }
void MKL_Get_Version_String(char *buf, int len) {
    const char *v = "Intel(R) oneAPI Math Kernel Library Version 2099.0 stand-in";
    int i = 0;
    for (; v[i] && i < len - 1; i++) buf[i] = v[i];
    buf[i] = 0;
}
int MKL_Set_Threading_Layer(int layer) { return 0; }
#endif
