/* test_local_limits.c - when a sandbox limit kills the driver, the cell's error names the
 * limit and the option that sets it, not only the signal (issue 9, item 5). */
#include "local_test.h"

static void a_cpu_seconds_kill_names_the_limit(void **state)
{
	static const char *const settings[] = {"backends.local.cpu_seconds=1",
	                                       "limits.execute_timeout_s=120", NULL};
	rlm_interp *in;
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	in = lt_open(settings);
	assert_int_equal(rlm_interp_execute(in, "while True:\n    pass\n", NULL, &r, &err), 0);
	assert_non_null(r->error);
	printf("%s: %s\n", r->error->type, r->error->message);
	assert_true(r->state_lost);
	assert_non_null(strstr(r->error->message, "SIGKILL"));
	assert_non_null(strstr(r->error->message, "cpu_seconds"));
	rlm_result_free(r);
	/* The interpreter was restarted and works again. */
	char *out = lt_run(in, "print('back')");
	assert_string_equal(out, "back\n");
	free(out);
	rlm_interp_close(in);
}

/* A SIGKILL that is not the CPU limit is not blamed on it. */
static void another_sigkill_is_not_blamed_on_cpu_seconds(void **state)
{
	static const char *const settings[] = {"backends.local.cpu_seconds=100", NULL};
	rlm_interp *in;
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;

	(void)state;
	in = lt_open(settings);
	assert_int_equal(
	        rlm_interp_execute(in, "import os\nos.kill(os.getpid(), 9)", NULL, &r, &err), 0);
	assert_non_null(r->error);
	assert_non_null(strstr(r->error->message, "SIGKILL"));
	assert_null(strstr(r->error->message, "cpu_seconds"));
	rlm_result_free(r);
	rlm_interp_close(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(a_cpu_seconds_kill_names_the_limit),
	        cmocka_unit_test(another_sigkill_is_not_blamed_on_cpu_seconds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
