/* sgemm rates of the per-(sample, head) attention products against the body's large GEMM, each shape called
 * repeatedly on the same (cache-resident) operands with the strides the model uses (d = 144 at preset small, 576 at
 * ipt), one OpenBLAS thread. What a batched call could at most recover: the gap between these in-cache rates and
 * the in-model ones of `adaptir-dist bench model --profile`.
 *
 *   cc -O2 scripts/perf/gemm_shapes.c -o /tmp/gemm_shapes -lopenblas && /tmp/gemm_shapes
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/* Row-major C[m,n] = op(A) op(B) (+ beta C), `reps` calls per round, best of 7 rounds, in GFLOP/s. */
static double rate(int ta, int tb, int m, int n, int k, int lda, int ldb, int ldc, int reps, float beta) {
    size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = calloc(nc, 4);
    for (size_t i = 0; i < na; i++) a[i] = rand() / (float)RAND_MAX;
    for (size_t i = 0; i < nb; i++) b[i] = rand() / (float)RAND_MAX;
    double best = 1e30;
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++)
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                        m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * m * n * k * reps / best / 1e9;
}

int main(void) {
    openblas_set_num_threads(1);
    printf("reference NT 2048x576x576:                 %6.1f GFLOP/s\n", rate(0, 1, 2048, 576, 576, 576, 576, 576, 3, 0));
    int dh[2] = {36, 48}, d[2] = {144, 576};
    const char *name[2] = {"small", "ipt"};
    for (int p = 0; p < 2; p++) {
        int h = dh[p], ld = d[p];
        printf("%-5s S = Q K^T   NT 256x256x%d (lda %d):  %6.1f\n", name[p], h, ld, rate(0, 1, 256, 256, h, ld, ld, 256, 60, 0));
        printf("%-5s O = P V     NN 256x%dx256 (ldb %d):  %6.1f\n", name[p], h, ld, rate(0, 0, 256, h, 256, 256, ld, ld, 60, 0));
        printf("%-5s dV = P^T dO TN 256x%dx256, beta 1:    %6.1f\n", name[p], h, rate(1, 0, 256, h, 256, 256, ld, ld, 60, 1));
        printf("%-5s dQ = dS K   NN 256x%dx256, beta 1:    %6.1f\n", name[p], h, rate(0, 0, 256, h, 256, 256, ld, ld, 60, 1));
    }
    return 0;
}
