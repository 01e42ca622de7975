/* test_bounds.c - the Modal backend's waits end: cancel flags and frozen servers.
 *
 *     with_fake.py -- test_modal_bounds PLUGIN_DIR
 *
 * Runs against the fake Modal started by with_fake.py, which exports MODAL_FAKE_FREEZE (a path:
 * while a file exists there the fake answers nothing, the way a hung server does) and
 * MODAL_FAKE_STATE (its list of live sandboxes). Each test pins one behaviour:
 *  - a cancel flag set from another thread ends a running cell, a run_command and a start that
 *    waits on a frozen fake with RLM_ECANCELLED, in well under a second (the ABI says ~100 ms;
 *    the bound asserted is 2 s, for loaded machines), and the interpreter recovers once the
 *    flag is cleared;
 *  - with the fake frozen, a cell with a 5 s timeout comes back within its exchange deadline,
 *    the interrupt's budget and limits.start_timeout_s (the restart), and closing returns
 *    within backends.modal.shutdown_timeout_s; the sandbox it could not terminate ends at its
 *    lifetime (timeout_s), which the test waits for so that with_fake finds no leak.
 * Measured latencies are printed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "rlm/rlm.h"

#define CANCEL_BOUND_S    2.0 /* the ABI's ~100 ms, with room for a loaded machine */
#define START_TIMEOUT_S   "20"
#define SHUTDOWN_BUDGET_S "5"
#define LIFETIME_S        "45"

static const char *plugin_dir;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

static void set(rlm_config *cfg, const char *assignment)
{
	rlm_error err = RLM_ERROR_INIT;

	if (rlm_config_set_assignment(cfg, assignment, &err))
		fail_msg("%s: %s", assignment, err.message);
}

/* An interpreter on the fake, with a short start timeout, shutdown budget and lifetime. */
static rlm_interp *open_interp(void)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	rlm_interp *in = NULL;
	char path[4200];
	int rc;

	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	snprintf(path, sizeof(path), "plugin_path=[\"%s\"]", plugin_dir);
	set(cfg, "backend=modal");
	set(cfg, path);
	set(cfg, "limits.start_timeout_s=" START_TIMEOUT_S);
	set(cfg, "backends.modal.shutdown_timeout_s=" SHUTDOWN_BUDGET_S);
	set(cfg, "backends.modal.timeout_s=" LIFETIME_S);
	rc = rlm_interp_open(cfg, &in, &err);
	rlm_config_free(cfg);
	if (rc)
		fail_msg("rlm_interp_open: %s: %s", rlm_status_name(rc), err.message);
	return in;
}

static char *sandbox_id(rlm_interp *in)
{
	char *status = rlm_interp_status_json(in), *id = NULL;
	json_object *doc = json_tokener_parse(status), *bs, *v;

	if (doc && json_object_object_get_ex(doc, "backend_status", &bs) &&
	    json_object_object_get_ex(bs, "sandbox_id", &v) && json_object_get_string(v))
		id = strdup(json_object_get_string(v));
	json_object_put(doc);
	rlm_free(status);
	assert_non_null(id);
	return id;
}

/* Whether the fake still lists sandbox id as live. */
static int sandbox_live(const char *id)
{
	json_object *doc = json_object_from_file(getenv("MODAL_FAKE_STATE"));
	int live = 0;

	assert_non_null(doc);
	for (size_t i = 0; i < json_object_array_length(doc); i++) {
		json_object *v;
		if (json_object_object_get_ex(json_object_array_get_idx(doc, i), "id", &v) &&
		    strcmp(json_object_get_string(v), id) == 0)
			live = 1;
	}
	json_object_put(doc);
	return live;
}

static void freeze(void)
{
	FILE *f = fopen(getenv("MODAL_FAKE_FREEZE"), "w");

	assert_non_null(f);
	fputs("all\n", f);
	fclose(f);
}

static void thaw(void)
{
	unlink(getenv("MODAL_FAKE_FREEZE"));
}

/* Sets *flag after a delay, from another thread, and notes when. */
struct canceller {
	volatile int *flag;
	double delay_s;
	double set_at;
	pthread_t thread;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	nap(c->delay_s);
	c->set_at = now_s();
	*c->flag = 1;
	return NULL;
}

static void cancel_in(struct canceller *c, volatile int *flag, double delay_s)
{
	c->flag = flag;
	c->delay_s = delay_s;
	c->set_at = 0;
	assert_int_equal(pthread_create(&c->thread, NULL, cancel_later, c), 0);
}

/* Joins the canceller; returns how long after the flag was set the call came back. */
static double cancel_latency(struct canceller *c, double returned_at)
{
	pthread_join(c->thread, NULL);
	assert_true(c->set_at > 0);
	return returned_at - c->set_at;
}

static void run_ok(rlm_interp *in, const char *code, const char *want_stdout)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;
	int rc = rlm_interp_execute(in, code, NULL, &res, &err);

	if (rc)
		fail_msg("%s: %s: %s", code, rlm_status_name(rc), err.message);
	assert_null(res->error);
	if (want_stdout)
		assert_string_equal(res->stdout_text, want_stdout);
	rlm_result_free(res);
}

/* ---- cancel ---------------------------------------------------------------------------- */

static void test_cancel_ends_a_busy_cell_and_a_command_and_a_start(void **state)
{
	rlm_interp *in = open_interp();
	volatile int flag = 0;
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;
	rlm_command_output *out = NULL;
	const char *const sleep_argv[] = {"sleep", "60", NULL};
	struct canceller c;
	double lat;
	int rc;

	(void)state;
	rlm_interp_set_cancel_flag(in, &flag);
	run_ok(in, "x = 41", NULL);

	cancel_in(&c, &flag, 1.5);
	rc = rlm_interp_run_command(in, sleep_argv, NULL, 0, &out, &err);
	lat = cancel_latency(&c, now_s());
	printf("cancelled run_command returned %.3f s after the flag was set\n", lat);
	assert_int_equal(rc, RLM_ECANCELLED);
	assert_true(lat < CANCEL_BOUND_S);
	rlm_command_output_free(out);

	/* A cell that never yields: only the backend watching the flag can end it early. */
	flag = 0;
	opts.timeout_s = 120;
	cancel_in(&c, &flag, 1.5);
	rc = rlm_interp_execute_ex(in, "while True:\n    pass\n", &opts, &res, &err);
	lat = cancel_latency(&c, now_s());
	printf("cancelled cell returned %.3f s after the flag was set\n", lat);
	assert_int_equal(rc, RLM_ECANCELLED);
	assert_null(res);
	assert_true(lat < CANCEL_BOUND_S);

	/* The cancelled cell left the driver to be restarted: that start waits on a frozen
	 * fake until the flag is set. */
	flag = 0;
	freeze();
	cancel_in(&c, &flag, 1.5);
	rc = rlm_interp_execute(in, "1", NULL, &res, &err);
	lat = cancel_latency(&c, now_s());
	thaw();
	printf("cancelled restart returned %.3f s after the flag was set (%s: %s)\n", lat,
	       rlm_status_name(rc), err.message);
	assert_int_equal(rc, RLM_ECANCELLED);
	assert_true(lat < CANCEL_BOUND_S);

	/* Cleared, the interpreter works again (a fresh driver: the cell's state is gone). */
	flag = 0;
	run_ok(in, "print('back')", "back\n");
	rlm_interp_close(in);
}

/* ---- a frozen fake --------------------------------------------------------------------- */

static void test_frozen_fake_bounds_a_cell_and_close(void **state)
{
	rlm_interp *in = open_interp();
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;
	char *id;
	double t0, took, bound;
	int rc;

	(void)state;
	run_ok(in, "x = 1", NULL);
	id = sandbox_id(in);
	freeze();
	/* The exchange's deadline (5 s + the 5 s grace), the interrupt's budget (10 s), the
	 * restart's start timeout, and 30 s for a loaded machine. */
	bound = 5 + 5 + 10 + atof(START_TIMEOUT_S) + 30;
	opts.timeout_s = 5;
	t0 = now_s();
	rc = rlm_interp_execute_ex(in, "import time\ntime.sleep(60)\n", &opts, &res, &err);
	took = now_s() - t0;
	printf("frozen: the 5 s cell came back after %.1f s (%s%s%s)\n", took, rlm_status_name(rc),
	       rc ? ": " : "", rc ? err.message : "");
	assert_true(took < bound);
	/* It cannot have completed: either an error, or a result that says the cell did not. */
	assert_true(rc != 0 || (res && (res->timed_out || res->state_lost)));
	rlm_result_free(res);

	t0 = now_s();
	rlm_interp_close(in);
	took = now_s() - t0;
	printf("frozen: close returned after %.1f s (budget %s s)\n", took, SHUTDOWN_BUDGET_S);
	assert_true(took < atof(SHUTDOWN_BUDGET_S) + 10);
	thaw();

	/* What could not be terminated ends at its lifetime, which rlm set. */
	t0 = now_s();
	while (sandbox_live(id) && now_s() - t0 < atof(LIFETIME_S) + 120)
		nap(0.5);
	assert_false(sandbox_live(id));
	free(id);
}

/* A test that failed while the fake was frozen must not leave it frozen for the next. */
static int thawed(void **state)
{
	(void)state;
	thaw();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_cancel_ends_a_busy_cell_and_a_command_and_a_start, thawed, thawed),
	        cmocka_unit_test_setup_teardown(test_frozen_fake_bounds_a_cell_and_close, thawed,
	                                        thawed),
	};

	if (argc < 2 || !getenv("MODAL_FAKE_FREEZE") || !getenv("MODAL_FAKE_STATE")) {
		fprintf(stderr, "usage: with_fake.py -- %s PLUGIN_DIR\n", argv[0]);
		return 2;
	}
	plugin_dir = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
