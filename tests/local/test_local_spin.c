/* test_local_spin.c - backends.local.spin_us: the host polls for a short cell's answer before
 * it sleeps, and only that long: a long cell costs the waiting thread no more CPU than the
 * spin, and every answer is the same as without it. */
#include "local_test.h"

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void answers_are_the_same_with_and_without_the_spin(void **state)
{
	static const char *const spin[] = {"backends.local.spin_us=10000", NULL};
	static const char *const none[] = {"backends.local.spin_us=0", NULL};
	const char *const *settings[] = {spin, none};

	(void)state;
	for (int s = 0; s < 2; s++) {
		rlm_interp *in = lt_open(settings[s]);
		for (int i = 0; i < 50; i++) {
			char code[64], want[32];
			rlm_result *r = NULL;
			rlm_error err = RLM_ERROR_INIT;

			snprintf(code, sizeof(code), "print('x' * %d)\n%d * 2", i * 100, i);
			snprintf(want, sizeof(want), "%d", i * 2);
			assert_int_equal(rlm_interp_execute(in, code, NULL, &r, &err), 0);
			assert_null(r->error);
			assert_int_equal(r->stdout_len, (size_t)i * 100 + 1);
			assert_string_equal(r->value, want);
			rlm_result_free(r);
		}
		rlm_interp_close(in);
	}
}

/* The spin is at most spin_us per wait (10 ms here), then the thread sleeps: a cell of a
 * second costs it a few milliseconds of CPU, not a second. CPU time, not wall time, so load
 * cannot make this flaky (a spin that comes up empty turns spinning off until a cell is short). */
static void a_long_cell_costs_the_waiting_thread_no_more_than_the_spin(void **state)
{
	static const char *const settings[] = {"backends.local.spin_us=10000", NULL};
	rlm_interp *in = lt_open(settings);
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	double cpu;

	(void)state;
	free(lt_run(in, "x = 1"));
	cpu = thread_cpu_s();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		        rlm_interp_execute(in, "import time\ntime.sleep(0.4)", NULL, &r, &err), 0);
		assert_null(r->error);
		rlm_result_free(r);
	}
	cpu = thread_cpu_s() - cpu;
	fprintf(stderr, "host thread CPU over 3 x 0.4 s cells with a 10 ms spin: %.3f s\n", cpu);
	assert_true(cpu < 0.3);
	rlm_interp_close(in);
}

static void spin_us_is_checked(void **state)
{
	static const char *const too_big[] = {"backends.local.spin_us=20000", NULL};
	static const char *const negative[] = {"backends.local.spin_us=-1", NULL};
	const char *const *bad[] = {too_big, negative};

	(void)state;
	for (int i = 0; i < 2; i++) {
		rlm_interp *in = NULL;
		rlm_error err = RLM_ERROR_INIT;

		assert_int_not_equal(lt_try_open(bad[i], &in, &err), 0);
		assert_null(in);
		assert_non_null(strstr(err.message, "spin_us"));
		rlm_error_clear(&err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(answers_are_the_same_with_and_without_the_spin),
	        cmocka_unit_test(a_long_cell_costs_the_waiting_thread_no_more_than_the_spin),
	        cmocka_unit_test(spin_us_is_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
