/* bench_exec.c - the C side of bench/bench_python.py, loaded into the Python process
 * (bench_exec.so): N rlm_interp_execute calls of one cell on an interpreter the binding
 * opened, as a C harness makes them (execute, read the result, free it), each one timed.
 * Same process, same interpreter, same sandbox as the Python loop it is compared with. */
#include <time.h>

#include "bench_util.h"
#include "rlm/rlm.h"

int bench_exec_loop(rlm_interp *in, const char *code, long n, double *us);

/* Fills us[0..n-1] with each call's microseconds. 0, or the first failure's rlm_status (1
 * when a cell raised). */
__attribute__((visibility("default"))) int bench_exec_loop(rlm_interp *in, const char *code, long n,
                                                           double *us)
{
	for (long i = 0; i < n; i++) {
		rlm_result *r;
		rlm_error err = RLM_ERROR_INIT;
		double t0 = now_s();
		int rc = rlm_interp_execute(in, code, NULL, &r, &err);
		if (rc)
			return rc;
		int raised = r->error != NULL;
		rlm_result_free(r);
		us[i] = (now_s() - t0) * 1e6;
		if (raised)
			return 1;
	}
	return 0;
}
