/* test_threads.c - interpreters used from several threads at once share nothing: each thread
 * opens its own, runs cells with its own values and sees only its own state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlm/rlm.h"

#define THREADS 4
#define CELLS   40

struct job {
	int id;
	int failures;
	char message[1200];
};

static void job_fail(struct job *j, const char *what)
{
	j->failures++;
	snprintf(j->message, sizeof(j->message), "thread %d: %s", j->id, what);
}

static void run_cells(struct job *j, rlm_interp *in)
{
	char code[128], want[64];
	for (int i = 0; i < CELLS; i++) {
		rlm_result *r = NULL;
		rlm_error err = RLM_ERROR_INIT;
		snprintf(code, sizeof(code), "acc = globals().get('acc', 0) + %d\nprint(tid, acc)",
		         i);
		char vars[32];
		snprintf(vars, sizeof(vars), "{\"tid\": %d}", j->id);
		if (rlm_interp_execute(in, code, vars, &r, &err)) {
			job_fail(j, err.message);
			return;
		}
		snprintf(want, sizeof(want), "%d %d\n", j->id, i * (i + 1) / 2);
		if (r->error || strcmp(r->stdout_text, want))
			job_fail(j, r->error ? r->error->line : r->stdout_text);
		rlm_result_free(r);
	}
}

static void *worker(void *arg)
{
	struct job *j = arg;
	rlm_config *cfg = NULL;
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) || rlm_config_apply_env(cfg, &err) ||
	    rlm_interp_open(cfg, &in, &err)) {
		job_fail(j, err.message);
	} else {
		run_cells(j, in);
	}
	rlm_interp_close(in);
	rlm_config_free(cfg);
	return NULL;
}

static void interpreters_in_parallel_threads_keep_their_own_state(void **state)
{
	(void)state;
	pthread_t t[THREADS];
	struct job jobs[THREADS];
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < THREADS; i++) {
		jobs[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, worker, &jobs[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		if (jobs[i].failures)
			print_error("%s\n", jobs[i].message);
		assert_int_equal(jobs[i].failures, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(interpreters_in_parallel_threads_keep_their_own_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
