/* conformance.c - the cases of rlm-conformance: one set of behaviours every backend must show.
 *
 * They talk to the backend through the public API only, so they pin what an embedder sees: the
 * driver's semantics (PROTOCOL.md) end to end, whatever carries the bytes. The backend is
 * whatever the config says (`--set backend=local`, `--plugin ./rlm-backend-mine.so`); main.c
 * reads the command line. Short timeouts are set unless given, so a broken backend fails a
 * test instead of hanging the suite.
 *
 * Cases in the "shared" group run on one interpreter opened by the group setup; those that
 * kill, exhaust or pollute their interpreter get a fresh one each ("fresh" group), and after
 * each of those, and after the shared group, no process of the sandbox may be left running
 * (leftovers.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "conformance.h"

#define DEFAULT_EXECUTE_TIMEOUT_S "5"
#define DEFAULT_GRACE_S           "2"

struct conformance_suite suite;

/* How long a closed sandbox's processes get to end before the check calls them left over. */
#define LEFTOVER_TIMEOUT_S 30

/* ---- helpers --------------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads the backend's capabilities from an open interpreter's status, once. */
static void note_capabilities(rlm_interp *interp)
{
	char *status;
	json_object *doc, *caps;

	if (suite.caps_known)
		return;
	status = rlm_interp_status_json(interp);
	doc = status ? json_tokener_parse(status) : NULL;
	if (doc && json_object_object_get_ex(doc, "capabilities", &caps) &&
	    json_object_is_type(caps, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(caps); i++) {
			const char *c = json_object_get_string(json_object_array_get_idx(caps, i));

			suite.remote |= strcmp(c, "remote") == 0;
			suite.contains_bombs |= strcmp(c, "contains_bombs") == 0;
		}
		suite.caps_known = true;
	}
	json_object_put(doc);
	rlm_free(status);
}

static rlm_interp *open_interp(const rlm_config *cfg)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_interp *interp = NULL;
	int rc = rlm_interp_open(cfg, &interp, &err);

	if (rc != 0)
		fail_msg("rlm_interp_open: %s: %s", rlm_status_name(rc), err.message);
	note_capabilities(interp);
	return interp;
}

/* Runs a cell that must complete as an exchange (the code itself may still fail). */
static rlm_result *run_ex(rlm_interp *interp, const char *code, const rlm_exec_options *opts)
{
	rlm_exec_options defaults = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;
	int rc = rlm_interp_execute_ex(interp, code, opts ? opts : &defaults, &res, &err);

	if (rc != 0)
		fail_msg("execute failed: %s: %s\n--- code:\n%s", rlm_status_name(rc), err.message,
		         code);
	assert_non_null(res);
	return res;
}

static rlm_result *run(rlm_interp *interp, const char *code)
{
	return run_ex(interp, code, NULL);
}

static rlm_result *run_vars(rlm_interp *interp, const char *code, const char *vars_json)
{
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;

	opts.vars_json = vars_json;
	return run_ex(interp, code, &opts);
}

static rlm_result *run_timeout(rlm_interp *interp, const char *code, double timeout_s)
{
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;

	opts.timeout_s = timeout_s;
	return run_ex(interp, code, &opts);
}

static void assert_no_error(const rlm_result *res)
{
	if (res->error)
		fail_msg("unexpected error: %s\n%s", res->error->line ? res->error->line : "?",
		         res->error->traceback ? res->error->traceback : "");
}

static void assert_error_type(const rlm_result *res, const char *type)
{
	if (!res->error)
		fail_msg("expected %s, got no error (stdout: %.200s)", type,
		         res->stdout_text ? res->stdout_text : "");
	assert_non_null(res->error->type);
	assert_string_equal(res->error->type, type);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!haystack || !strstr(haystack, needle))
		fail_msg("expected \"%s\" in \"%.500s\"", needle, haystack ? haystack : "(null)");
}

/* Runs code and checks its trailing expression's repr. */
static void expect_repr(rlm_interp *interp, const char *code, const char *value)
{
	rlm_result *res = run(interp, code);

	assert_no_error(res);
	if (!res->value)
		fail_msg("expected value %s from \"%s\", got none", value, code);
	assert_string_equal(res->value, value);
	rlm_result_free(res);
}

/* Checks that a JSON text equals the expected JSON text, as values. */
static void assert_json_equal(const char *actual, const char *expected)
{
	json_object *a, *e;

	if (!actual)
		fail_msg("expected JSON %s, got NULL", expected);
	a = json_tokener_parse(actual);
	e = json_tokener_parse(expected);
	assert_non_null(e);
	if (!a || !json_object_equal(a, e))
		fail_msg("expected JSON %s, got %s", expected, actual);
	json_object_put(a);
	json_object_put(e);
}

static size_t utf8_chars(const char *s, int *valid)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	*valid = 1;
	while (*p) {
		int len = *p < 0x80         ? 1
		          : (*p >> 5) == 6  ? 2
		          : (*p >> 4) == 14 ? 3
		          : (*p >> 3) == 30 ? 4
		                            : 0;

		if (len == 0) {
			*valid = 0;
			return n;
		}
		for (int i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80) {
				*valid = 0;
				return n;
			}
		}
		p += len;
		n++;
	}
	return n;
}

/* ---- fixtures -------------------------------------------------------------------------- */

int conformance_open_shared(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_interp *interp = NULL;
	int rc = rlm_interp_open(suite.cfg, &interp, &err);
	char *status;

	if (rc != 0) {
		fprintf(stderr, "conformance: cannot open backend %s: %s: %s\n", suite.backend,
		        rlm_status_name(rc), err.message);
		return -1;
	}
	status = rlm_interp_status_json(interp);
	printf("conformance: backend %s, status %s\n", suite.backend, status ? status : "null");
	rlm_free(status);
	note_capabilities(interp);
	*state = interp;
	return 0;
}

/* No process of a closed sandbox may be left running. Skipped for remote backends: their
 * sandboxes' processes are not on this machine (their own leak checks are the providers'). */
/* The sandboxes a backend keeps started ahead (the local backend's prestart): control op
 * "spares" answers {"spares": [pid, ...]}; a backend without it has none. Up to max pids. */
static size_t backend_spares(pid_t *pids, size_t max)
{
	rlm_error err = RLM_ERROR_INIT;
	char *out = NULL;
	size_t n = 0;

	if (rlm_backend_control(suite.cfg, suite.backend, "spares", NULL, &out, &err) != 0)
		return 0;
	json_object *doc = json_tokener_parse(out), *list;
	if (doc && json_object_object_get_ex(doc, "spares", &list) &&
	    json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list) && n < max; i++)
			pids[n++] = (pid_t)json_object_get_int(json_object_array_get_idx(list, i));
	json_object_put(doc);
	rlm_free(out);
	return n;
}

static int check_leftovers(void **state)
{
	char report[1024];
	pid_t spares[64];
	int live;

	(void)state;
	if (suite.remote)
		return 0;
	size_t nspares = backend_spares(spares, sizeof(spares) / sizeof(spares[0]));
	live = leftovers_check(LEFTOVER_TIMEOUT_S, report, sizeof(report), spares, nspares);
	if (live == 0)
		return 0;
	suite.leftover_failures++;
	fprintf(stderr,
	        "conformance: %d process(es) of a closed sandbox still alive %d s after its close "
	        "(killed now):%s\n",
	        live, LEFTOVER_TIMEOUT_S, report);
	return -1;
}

static int close_interp(void **state)
{
	rlm_interp_close(*state);
	*state = NULL;
	return check_leftovers(state);
}

int conformance_close_shared(void **state)
{
	return close_interp(state);
}

static int open_fresh(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_interp *interp = NULL;
	int rc = rlm_interp_open(suite.cfg, &interp, &err);

	if (rc != 0) {
		fprintf(stderr, "conformance: cannot open backend %s: %s: %s\n", suite.backend,
		        rlm_status_name(rc), err.message);
		return -1;
	}
	note_capabilities(interp);
	*state = interp;
	return 0;
}

/* ---- state and vars -------------------------------------------------------------------- */

static void test_exec_keeps_state_between_cells(void **state)
{
	rlm_interp *interp = *state;
	rlm_result *res = run(interp, "x = 1");

	assert_no_error(res);
	assert_null(res->value);
	rlm_result_free(res);
	expect_repr(interp, "x + 1", "2");
}

static void test_vars_accept_every_json_type(void **state)
{
	const char *vars = "{\"s\": \"h\\u00e9\", \"i\": 42, \"f\": 1.5, \"t\": true, \"n\": null,"
	                   " \"l\": [1, \"a\", [2]], \"o\": {\"k\": {\"deep\": false}}}";
	const char *code = "assert s == 'h\\u00e9' and type(s) is str\n"
	                   "assert i == 42 and type(i) is int\n"
	                   "assert f == 1.5 and type(f) is float\n"
	                   "assert t is True and n is None\n"
	                   "assert l == [1, 'a', [2]]\n"
	                   "assert o == {'k': {'deep': False}}\n"
	                   "'ok'";
	rlm_result *res = run_vars(*state, code, vars);

	assert_no_error(res);
	assert_string_equal(res->value, "'ok'");
	rlm_result_free(res);
}

static void test_vars_bad_name_is_exec_error(void **state)
{
	rlm_result *res = run_vars(*state, "ran = True", "{\"not-a-name\": 1}");

	assert_non_null(res->error);
	assert_string_equal(res->error->type, "ValueError");
	rlm_result_free(res);
}

/* ---- SUBMIT ---------------------------------------------------------------------------- */

static void test_submit_keyword_fields(void **state)
{
	rlm_result *res = run(*state, "SUBMIT(answer=42, why='because')");

	assert_no_error(res);
	assert_json_equal(res->submit_json, "{\"answer\": 42, \"why\": \"because\"}");
	rlm_result_free(res);
}

static void test_submit_positional_uses_output_names(void **state)
{
	const char *const names[] = {"a", "b", NULL};
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	rlm_result *res;

	opts.output_names = names;
	res = run_ex(*state, "SUBMIT(1, 'two')", &opts);
	assert_no_error(res);
	assert_json_equal(res->submit_json, "{\"a\": 1, \"b\": \"two\"}");
	rlm_result_free(res);
}

static void test_submit_single_positional_is_output(void **state)
{
	rlm_result *res = run(*state, "SUBMIT([1, 2])");

	assert_no_error(res);
	assert_json_equal(res->submit_json, "{\"output\": [1, 2]}");
	rlm_result_free(res);
}

static void test_submit_escapes_except_exception(void **state)
{
	rlm_result *res = run(*state, "try:\n"
	                              "    SUBMIT(done=True)\n"
	                              "except Exception:\n"
	                              "    print('swallowed')\n"
	                              "print('after')\n");

	assert_no_error(res);
	assert_json_equal(res->submit_json, "{\"done\": true}");
	assert_null(strstr(res->stdout_text, "swallowed"));
	assert_null(strstr(res->stdout_text, "after"));
	rlm_result_free(res);
}

static void test_submit_unserializable_field_is_named(void **state)
{
	rlm_result *res = run(*state, "import socket\nSUBMIT(ok=1, conn=socket.socket())");

	assert_non_null(res->error);
	assert_contains(res->error->message, "conn");
	assert_null(res->submit_json);
	rlm_result_free(res);
}

static void test_submit_keeps_output_printed_before(void **state)
{
	rlm_result *res = run(*state, "print('before')\nSUBMIT(x=1)");

	assert_no_error(res);
	assert_string_equal(res->stdout_text, "before\n");
	assert_json_equal(res->submit_json, "{\"x\": 1}");
	rlm_result_free(res);
}

static void test_rebinding_submit_and_print_is_undone(void **state)
{
	rlm_interp *interp = *state;
	rlm_result *res = run(interp, "SUBMIT = None\nprint = None\nllm_query = 3");

	assert_no_error(res);
	rlm_result_free(res);
	res = run(interp, "print('still here')\nSUBMIT(ok=True)");
	assert_no_error(res);
	assert_string_equal(res->stdout_text, "still here\n");
	assert_json_equal(res->submit_json, "{\"ok\": true}");
	rlm_result_free(res);
}

/* ---- buffers, errors, values ----------------------------------------------------------- */

static void test_buffers_persist_across_cells(void **state)
{
	rlm_interp *interp = *state;
	rlm_result *res = run(interp, "clear_buffer('conf')\nadd_buffer('conf', 1)");

	assert_no_error(res);
	rlm_result_free(res);
	res = run(interp, "add_buffer('conf', 'b')");
	assert_no_error(res);
	rlm_result_free(res);
	expect_repr(interp, "get_buffer('conf')", "[1, 'b']");
	res = run(interp, "clear_buffer('conf')");
	assert_no_error(res);
	rlm_result_free(res);
	expect_repr(interp, "get_buffer('conf')", "[]");
}

static void test_error_has_type_message_line_traceback(void **state)
{
	rlm_result *res = run(*state, "x = 1\ny = x / 0\n");

	assert_error_type(res, "ZeroDivisionError");
	assert_string_equal(res->error->message, "division by zero");
	assert_string_equal(res->error->line, "ZeroDivisionError: division by zero");
	assert_contains(res->error->traceback, "line 2");
	assert_contains(res->error->traceback, "y = x / 0");
	assert_null(strstr(res->error->traceback, "driver.py")); /* user frames only */
	rlm_result_free(res);
}

static void test_syntax_error_is_result(void **state)
{
	rlm_result *res = run(*state, "def f(:\n    pass\n");

	assert_error_type(res, "SyntaxError");
	rlm_result_free(res);
	expect_repr(*state, "'alive'", "'alive'");
}

static void test_keyboard_interrupt_is_result(void **state)
{
	rlm_result *res = run(*state, "kept_ki = 5\nraise KeyboardInterrupt");

	assert_error_type(res, "KeyboardInterrupt");
	rlm_result_free(res);
	expect_repr(*state, "kept_ki", "5");
}

static void test_system_exit_is_result(void **state)
{
	rlm_result *res = run(*state, "kept_se = 6\nraise SystemExit(3)");

	assert_error_type(res, "SystemExit");
	assert_int_equal(res->state_lost, 0);
	rlm_result_free(res);
	expect_repr(*state, "kept_se", "6");
}

static void test_trailing_expression_value(void **state)
{
	rlm_result *res;

	expect_repr(*state, "a = 6\na * 7", "42");
	expect_repr(*state, "'text'", "'text'");
	res = run(*state, "None");
	assert_no_error(res);
	assert_null(res->value);
	rlm_result_free(res);
}

static void test_input_raises_eof_error(void **state)
{
	rlm_result *res = run(*state, "input()");

	assert_error_type(res, "EOFError");
	rlm_result_free(res);
}

static void test_large_var_value(void **state)
{
	size_t n = 10 * 1000 * 1000;
	char *vars = malloc(n + 32);
	rlm_result *res;

	assert_non_null(vars);
	memcpy(vars, "{\"big\": \"", 9);
	memset(vars + 9, 'a', n);
	memcpy(vars + 9 + n, "\"}", 3);
	res = run_vars(*state, "len(big)", vars);
	free(vars);
	assert_no_error(res);
	assert_string_equal(res->value, "10000000");
	rlm_result_free(res);
}

/* ---- output ---------------------------------------------------------------------------- */

static void test_output_cap_counts_characters(void **state)
{
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	rlm_result *res;
	int valid;

	opts.max_output_chars = 1000;
	res = run_ex(*state, "print('\\u00e9' * 100000)", &opts);
	assert_no_error(res);
	assert_int_equal(res->stdout_chars, 100001);
	assert_int_equal(res->truncated, 1);
	assert_true(utf8_chars(res->stdout_text, &valid) < 1100);
	assert_true(valid);
	rlm_result_free(res);
}

static void test_output_of_200mb_is_capped(void **state)
{
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	double start = now_s();
	rlm_result *res;

	opts.timeout_s = 120;
	res = run_ex(*state, "import sys\nfor _ in range(200): sys.stdout.write('x' * 1000000)",
	             &opts);
	assert_no_error(res);
	assert_int_equal(res->truncated, 1);
	assert_int_equal(res->stdout_chars, 200000000);
	assert_true(strlen(res->stdout_text) < 100000);
	assert_true(now_s() - start < 120);
	rlm_result_free(res);
}

static void test_invalid_utf8_and_rs_on_fd1_are_harmless(void **state)
{
	rlm_result *res = run(*state, "import os\nos.write(1, b'\\xff\\x1e{bad\\n')");
	int valid;

	assert_no_error(res);
	assert_contains(res->stdout_text, "{bad");
	utf8_chars(res->stdout_text, &valid);
	assert_true(valid);
	rlm_result_free(res);
	expect_repr(*state, "'next'", "'next'");
}

static void test_closed_stdout_and_stderr_are_restored(void **state)
{
	rlm_result *res = run(*state, "import os\nos.close(1)\nos.close(2)");

	rlm_result_free(res);
	res = run(*state, "import sys\nprint('back')\nprint('err', file=sys.stderr)");
	assert_no_error(res);
	assert_string_equal(res->stdout_text, "back\n");
	assert_string_equal(res->stderr_text, "err\n");
	rlm_result_free(res);
}

/* ---- timeouts -------------------------------------------------------------------------- */

static void expect_timeout_keeps_state(rlm_interp *interp, const char *code)
{
	rlm_result *res = run(interp, "kept_to = 'still'");
	double start;

	rlm_result_free(res);
	start = now_s();
	res = run_timeout(interp, code, 1);
	assert_int_equal(res->timed_out, 1);
	assert_error_type(res, "TimeoutError");
	assert_int_equal(res->state_lost, 0);
	assert_true(now_s() - start < 10);
	rlm_result_free(res);
	expect_repr(interp, "kept_to", "'still'");
}

static void test_infinite_loop_times_out_and_keeps_state(void **state)
{
	expect_timeout_keeps_state(*state, "while True:\n    pass\n");
}

static void test_sleep_times_out_and_keeps_state(void **state)
{
	expect_timeout_keeps_state(*state, "import time\ntime.sleep(10**9)");
}

/* Interrupts the interpreter every half second until the cell is back (20 s at most): on a
 * remote backend under load the cell may reach the driver after the first interrupt, which
 * the driver ignores between cells. Static: a failed assertion leaves the test early. */
static struct interrupter {
	rlm_interp *interp;
	atomic_int done;
	int rc;
} it;

static void *interrupt_until_done(void *arg)
{
	(void)arg;
	for (int i = 0; i < 40 && !atomic_load(&it.done) && it.rc != RLM_ENOTSUP; i++) {
		rlm_error err = RLM_ERROR_INIT;

		usleep(500 * 1000);
		if (!atomic_load(&it.done))
			it.rc = rlm_interp_interrupt(it.interp, &err);
	}
	return NULL;
}

static void test_interrupt_stops_running_cell(void **state)
{
	double start = now_s();
	pthread_t thread;
	rlm_result *res;

	it.interp = *state;
	it.rc = 0;
	atomic_store(&it.done, 0);
	assert_int_equal(pthread_create(&thread, NULL, interrupt_until_done, NULL), 0);
	res = run_timeout(*state, "import time\ntime.sleep(30)", 60);
	atomic_store(&it.done, 1);
	pthread_join(thread, NULL);
	if (it.rc == RLM_ENOTSUP) {
		rlm_result_free(res);
		skip();
	}
	assert_int_equal(it.rc, 0);
	assert_error_type(res, "KeyboardInterrupt");
	assert_int_equal(res->state_lost, 0);
	assert_true(now_s() - start < 20);
	rlm_result_free(res);
	expect_repr(*state, "'alive'", "'alive'");
}

/* ---- files ----------------------------------------------------------------------------- */

static void test_upload_download_binary_round_trip(void **state)
{
	unsigned char bytes[256];
	rlm_error err = RLM_ERROR_INIT;
	void *data = NULL;
	size_t len = 0;
	int rc;

	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	rc = rlm_interp_upload(*state, bytes, sizeof(bytes), "conformance.bin", &err);
	if (rc != 0)
		fail_msg("upload: %s: %s", rlm_status_name(rc), err.message);
	expect_repr(*state, "open('conformance.bin', 'rb').read() == bytes(range(256))", "True");
	rc = rlm_interp_download(*state, "conformance.bin", &data, &len, &err);
	if (rc != 0)
		fail_msg("download: %s: %s", rlm_status_name(rc), err.message);
	assert_int_equal(len, 256);
	assert_memory_equal(data, bytes, 256);
	assert_int_equal(((char *)data)[256], '\0');
	rlm_free(data);
}

/* ---- host calls ------------------------------------------------------------------------ */

/* Answers llm_query(prompt) with the prompt uppercased, and fails on "fail". */
static int upper_handler(void *ctx, const char *name, const char *args_json,
                         const char *kwargs_json, char **value_json, char **error_message)
{
	json_object *args = json_tokener_parse(args_json);
	json_object *first = args ? json_object_array_get_idx(args, 0) : NULL;
	const char *prompt = first ? json_object_get_string(first) : NULL;
	char *upper;

	(void)kwargs_json;
	(*(unsigned *)ctx)++;
	if (!prompt || strcmp(name, "llm_query") != 0 || strcmp(prompt, "fail") == 0) {
		*error_message = strdup("handler refused the prompt");
		json_object_put(args);
		return RLM_EINVAL;
	}
	upper = strdup(prompt);
	for (char *p = upper; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	json_object_put(args);
	args = json_object_new_string(upper);
	*value_json = strdup(json_object_to_json_string(args));
	json_object_put(args);
	free(upper);
	return 0;
}

/* 20 MiB into a directory that does not exist yet: more than one 16 MiB write for backends
 * that chunk, parents made, every byte back. */
static void test_upload_download_large_file_into_new_dir(void **state)
{
	size_t n = 20u << 20;
	unsigned char *bytes = malloc(n);
	uint32_t x = 2463534242u;
	rlm_error err = RLM_ERROR_INIT;
	void *data = NULL;
	size_t len = 0;
	int rc;

	assert_non_null(bytes);
	for (size_t i = 0; i < n; i++) { /* xorshift: incompressible, every byte value */
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		bytes[i] = (unsigned char)x;
	}
	rc = rlm_interp_upload(*state, bytes, n, "big/new/dir/blob.bin", &err);
	if (rc != 0)
		fail_msg("upload: %s: %s", rlm_status_name(rc), err.message);
	expect_repr(*state, "import os\nos.path.getsize('big/new/dir/blob.bin')", "20971520");
	rc = rlm_interp_download(*state, "big/new/dir/blob.bin", &data, &len, &err);
	if (rc != 0)
		fail_msg("download: %s: %s", rlm_status_name(rc), err.message);
	assert_int_equal(len, n);
	assert_memory_equal(data, bytes, n);
	rlm_free(data);
	free(bytes);
	rlm_result_free(run(*state, "import shutil\nshutil.rmtree('big')"));
}

static void test_llm_query_without_handler_raises(void **state)
{
	rlm_result *res = run(*state, "llm_query('hi')");

	assert_error_type(res, "RuntimeError");
	assert_contains(res->error->message, "no LLM configured");
	rlm_result_free(res);
}

static void test_host_calls_return_handler_values(void **state)
{
	static unsigned calls;
	rlm_result *res;

	calls = 0;
	rlm_interp_set_call_handler(*state, upper_handler, &calls);
	res = run(*state, "r = [llm_query(p) for p in ('a', 'b', 'hi')]\nr");
	rlm_interp_set_call_handler(*state, NULL, NULL);
	assert_no_error(res);
	assert_string_equal(res->value, "['A', 'B', 'HI']");
	assert_int_equal(res->host_calls, 3);
	assert_int_equal(calls, 3);
	rlm_result_free(res);
}

static void test_host_call_handler_error_raises(void **state)
{
	static unsigned calls;
	rlm_result *res;

	rlm_interp_set_call_handler(*state, upper_handler, &calls);
	res = run(*state, "llm_query('fail')");
	rlm_interp_set_call_handler(*state, NULL, NULL);
	assert_error_type(res, "RuntimeError");
	assert_contains(res->error->message, "handler refused the prompt");
	rlm_result_free(res);
	expect_repr(*state, "'alive'", "'alive'");
}

/* ---- interpreter operations ------------------------------------------------------------ */

static void test_reset_clears_variables(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = run(*state, "gone = 1");
	int rc;

	rlm_result_free(res);
	rc = rlm_interp_reset(*state, &err);
	if (rc != 0)
		fail_msg("reset: %s: %s", rlm_status_name(rc), err.message);
	res = run(*state, "gone");
	assert_error_type(res, "NameError");
	rlm_result_free(res);
}

static void test_reset_keeps_buffers(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = run(*state, "clear_buffer('kept')\nadd_buffer('kept', 'v')");

	rlm_result_free(res);
	assert_int_equal(rlm_interp_reset(*state, &err), 0);
	expect_repr(*state, "get_buffer('kept')", "['v']");
}

static void test_run_command_echo(void **state)
{
	const char *const argv[] = {"echo", "hi", NULL};
	rlm_command_output *out = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_interp_run_command(*state, argv, NULL, 10, &out, &err);

	if (rc == RLM_ENOTSUP) {
		printf("conformance: run_command not supported by %s\n", suite.backend);
		skip();
	}
	if (rc != 0)
		fail_msg("run_command: %s: %s", rlm_status_name(rc), err.message);
	assert_int_equal(out->exit_code, 0);
	assert_int_equal(out->timed_out, 0);
	assert_int_equal(out->stdout_len, 3);
	assert_memory_equal(out->stdout_data, "hi\n", 3);
	rlm_command_output_free(out);
}

static void test_run_command_timeout_is_reported(void **state)
{
	const char *const argv[] = {"sleep", "30", NULL};
	rlm_command_output *out = NULL;
	rlm_error err = RLM_ERROR_INIT;
	double start = now_s();
	int rc = rlm_interp_run_command(*state, argv, NULL, 2, &out, &err);

	if (rc == RLM_ENOTSUP)
		skip();
	if (rc != 0)
		fail_msg("run_command: %s: %s", rlm_status_name(rc), err.message);
	assert_int_equal(out->timed_out, 1);
	assert_true(out->exit_code != 0);
	assert_true(now_s() - start < 20);
	rlm_command_output_free(out);
	expect_repr(*state, "'after'", "'after'");
}

static void test_result_to_json_has_every_key(void **state)
{
	static const char *const keys[] = {
	        "stdout", "stderr", "stdout_chars", "stderr_chars", "truncated",   "error",
	        "submit", "value",  "timed_out",    "state_lost",   "duration_ms", "host_calls",
	        NULL};
	rlm_result *res = run(*state, "print('j')\n1/0");
	char *text = rlm_result_to_json(res);
	json_object *doc = text ? json_tokener_parse(text) : NULL, *error;

	assert_non_null(doc);
	for (int i = 0; keys[i]; i++) {
		if (!json_object_object_get_ex(doc, keys[i], NULL))
			fail_msg("key %s missing from %s", keys[i], text);
	}
	assert_true(json_object_object_get_ex(doc, "error", &error));
	assert_true(json_object_object_get_ex(error, "line", NULL));
	json_object_put(doc);
	rlm_free(text);
	rlm_result_free(res);
}

static void test_tool_output_maps_result(void **state)
{
	static const char *const keys[] = {"name",   "output", "error", "metadata",
	                                   "stdout", "stderr", NULL};
	rlm_result *res = run(*state, "print('tool out')\n1/0");
	rlm_tool_output *tool = rlm_tool_output_from_result(res, NULL);
	char *text, *json;
	json_object *doc, *meta;

	assert_non_null(tool);
	assert_contains(tool->stdout_text, "tool out");
	assert_contains(tool->error, "ZeroDivisionError");
	text = rlm_tool_output_to_string(tool);
	assert_contains(text, "tool out");
	assert_contains(text, "[error]");
	json = rlm_tool_output_to_json(tool);
	doc = json ? json_tokener_parse(json) : NULL;
	assert_non_null(doc);
	for (int i = 0; keys[i]; i++) {
		if (!json_object_object_get_ex(doc, keys[i], NULL))
			fail_msg("key %s missing from %s", keys[i], json);
	}
	assert_true(json_object_object_get_ex(doc, "metadata", &meta));
	assert_true(json_object_is_type(meta, json_type_object));
	json_object_put(doc);
	rlm_free(json);
	rlm_free(text);
	rlm_tool_output_free(tool);
	rlm_result_free(res);
}

static void test_tool_output_without_error_has_no_error_line(void **state)
{
	rlm_result *res = run(*state, "print('fine')");
	rlm_tool_output *tool = rlm_tool_output_from_result(res, "python");
	char *text;

	assert_non_null(tool);
	assert_null(tool->error);
	text = rlm_tool_output_to_string(tool);
	assert_contains(text, "fine");
	assert_null(strstr(text, "[error]"));
	rlm_free(text);
	rlm_tool_output_free(tool);
	rlm_result_free(res);
}

/* ---- nested cells: rlm_query's child RLM in a scope of the same interpreter ------------ */

/* What the nesting call handler does: on rlm_query(prompt) it runs cells in scope
 * "child-<depth>" of the same interpreter (the first with prompt and depth as vars) and answers
 * with the last cell's SUBMIT (its "answer" field). */
struct nest {
	rlm_interp *interp;
	const char *const *cells; /* NULL-terminated */
	double child_timeout_s;   /* 0: the default */
	int depth;
	char child_stdout[1024]; /* what the children printed, all depths */
	int child_rc;            /* the last failing execute's status, 0 if none */
	char child_error[RLM_ERROR_MESSAGE_MAX];
	unsigned calls;
};

static void nest_init(struct nest *n, rlm_interp *interp, const char *const *cells)
{
	memset(n, 0, sizeof(*n));
	n->interp = interp;
	n->cells = cells;
}

static char *json_string_value(const char *s)
{
	json_object *o = json_object_new_string(s);
	char *text = strdup(json_object_to_json_string(o));

	json_object_put(o);
	return text;
}

/* The value the handler answers with: submit["answer"], or the whole submit. */
static char *submitted_answer(const char *submit_json)
{
	json_object *doc = json_tokener_parse(submit_json), *answer;
	char *text;

	if (doc && json_object_object_get_ex(doc, "answer", &answer))
		text = strdup(json_object_to_json_string(answer));
	else
		text = strdup(submit_json);
	json_object_put(doc);
	return text;
}

/* Runs n->cells in the child's scope; on the first failure sets *error_message. */
static int run_child(struct nest *n, const char *prompt, char **value_json, char **error_message)
{
	char scope[32], *vars;
	rlm_result *res = NULL;
	int rc = 0;
	json_object *v = json_object_new_object();

	snprintf(scope, sizeof(scope), "child-%d", n->depth);
	json_object_object_add(v, "prompt", json_object_new_string(prompt));
	json_object_object_add(v, "depth", json_object_new_int(n->depth));
	vars = strdup(json_object_to_json_string(v));
	json_object_put(v);
	for (int i = 0; n->cells[i] && rc == 0; i++) {
		rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
		rlm_error err = RLM_ERROR_INIT;

		opts.scope = scope;
		opts.vars_json = i == 0 ? vars : NULL;
		opts.timeout_s = n->child_timeout_s;
		rlm_result_free(res);
		res = NULL;
		rc = rlm_interp_execute_ex(n->interp, n->cells[i], &opts, &res, &err);
		if (rc != 0) {
			n->child_rc = rc;
			snprintf(n->child_error, sizeof(n->child_error), "%s", err.message);
			*error_message = strdup(err.message);
			break;
		}
		strncat(n->child_stdout, res->stdout_text,
		        sizeof(n->child_stdout) - strlen(n->child_stdout) - 1);
		if (res->error) {
			*error_message = strdup(res->error->line);
			rc = RLM_EINVAL;
		}
	}
	if (rc == 0)
		*value_json =
		        res->submit_json ? submitted_answer(res->submit_json) : strdup("null");
	rlm_result_free(res);
	free(vars);
	return rc;
}

static int nest_handler(void *ctx, const char *name, const char *args_json, const char *kwargs_json,
                        char **value_json, char **error_message)
{
	struct nest *n = ctx;
	json_object *args = json_tokener_parse(args_json);
	json_object *first = args ? json_object_array_get_idx(args, 0) : NULL;
	int rc;

	(void)kwargs_json;
	n->calls++;
	if (strcmp(name, "rlm_query") != 0 || !first) {
		json_object_put(args);
		*value_json = json_string_value("not an rlm_query");
		return 0;
	}
	n->depth++;
	rc = run_child(n, json_object_get_string(first), value_json, error_message);
	n->depth--;
	json_object_put(args);
	return rc;
}

static int has_capability(rlm_interp *interp, const char *cap)
{
	char *status = rlm_interp_status_json(interp);
	json_object *doc = status ? json_tokener_parse(status) : NULL, *caps;
	int found = 0;

	if (doc && json_object_object_get_ex(doc, "capabilities", &caps)) {
		for (size_t i = 0; i < json_object_array_length(caps); i++)
			if (!strcmp(json_object_get_string(json_object_array_get_idx(caps, i)),
			            cap))
				found = 1;
	}
	json_object_put(doc);
	rlm_free(status);
	return found;
}

/* Runs code in the main namespace with the nesting handler installed. */
static rlm_result *run_nested(struct nest *n, const char *code)
{
	rlm_result *res;

	rlm_interp_set_call_handler(n->interp, nest_handler, n);
	res = run_timeout(n->interp, code, 30);
	rlm_interp_set_call_handler(n->interp, NULL, NULL);
	return res;
}

/* Skips unless the backend can nest exchanges: it says so in its capabilities, and this
 * instance does not refuse a trivial nested cell with RLM_ENOTSUP (a backend may nest on one
 * transport and not on another, e.g. Daytona's session fallback). */
static void require_nested(rlm_interp *interp)
{
	static const char *const probe[] = {"SUBMIT(answer=1)", NULL};
	struct nest n;

	if (!has_capability(interp, "nested_execute")) {
		printf("conformance: %s cannot nest exchanges\n", suite.backend);
		skip();
	}
	nest_init(&n, interp, probe);
	rlm_result_free(run_nested(&n, "rlm_query('probe')"));
	if (n.child_rc == RLM_ENOTSUP) {
		printf("conformance: this %s instance refuses nested exchanges: %s\n",
		       suite.backend, n.child_error);
		skip();
	}
}

static void test_nested_rlm_query_returns_child_submit(void **state)
{
	static const char *const cells[] = {"words = prompt.split()", "SUBMIT(answer=len(words))",
	                                    NULL};
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	res = run_nested(&n, "n_words = rlm_query('three little words')\nn_words");
	assert_no_error(res);
	assert_string_equal(res->value, "3");
	assert_int_equal(res->host_calls, 1);
	assert_int_equal(n.child_rc, 0);
	rlm_result_free(res);
}

static void test_nested_child_and_parent_namespaces_are_separate(void **state)
{
	static const char *const cells[] = {"leak = 'from child'",
	                                    "SUBMIT(answer='secret' in globals())", NULL};
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	rlm_result_free(run(*state, "secret = 'parent'"));
	res = run_nested(&n, "r = rlm_query('x')\n(r, 'leak' in globals(), secret)");
	assert_no_error(res);
	assert_string_equal(res->value, "(False, False, 'parent')");
	rlm_result_free(res);
	expect_repr(*state, "'leak' in globals()", "False");
}

static void test_nested_child_prints_stay_out_of_parent_stdout(void **state)
{
	static const char *const cells[] = {"print('child line')", "SUBMIT(answer='ok')", NULL};
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	res = run_nested(&n, "print('before')\nrlm_query('x')\nprint('after')");
	assert_no_error(res);
	assert_string_equal(res->stdout_text, "before\nafter\n");
	assert_string_equal(n.child_stdout, "child line\n");
	rlm_result_free(res);
}

static void test_nested_child_error_reaches_handler_not_parent(void **state)
{
	static const char *const cells[] = {"x = 1 / 0", NULL};
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	res = run_nested(&n, "try:\n"
	                     "    rlm_query('x')\n"
	                     "except RuntimeError as e:\n"
	                     "    print('caught:', e)\n"
	                     "'parent alive'");
	assert_no_error(res);
	assert_int_equal(n.child_rc, 0); /* an exception is a result, not an execute failure */
	assert_string_equal(res->stdout_text, "caught: ZeroDivisionError: division by zero\n");
	assert_string_equal(res->value, "'parent alive'");
	assert_int_equal(res->state_lost, 0);
	rlm_result_free(res);
	expect_repr(*state, "'next cell'", "'next cell'");
}

static void test_nested_two_levels_deep(void **state)
{
	static const char *const cells[] = {
	        "r = rlm_query('deeper') if depth < 2 else 'leaf'\nprint('depth', depth)",
	        "SUBMIT(answer=r + '@' + str(depth))", NULL};
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	res = run_nested(&n, "rlm_query('top')");
	assert_no_error(res);
	assert_string_equal(res->value, "'leaf@2@1'");
	assert_string_equal(n.child_stdout, "depth 2\ndepth 1\n");
	assert_string_equal(res->stdout_text, "");
	rlm_result_free(res);
}

static void test_nested_parent_state_intact_afterwards(void **state)
{
	static const char *const cells[] = {"x = 'child'\nprint = None\nSUBMIT = None",
	                                    "import sys\nSUBMIT(answer=sys.modules['__main__']."
	                                    "__dict__ is globals())",
	                                    NULL};
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	rlm_result_free(run(*state, "x = 'parent'\ndef f():\n    return x"));
	res = run_nested(&n, "r = rlm_query('x')\nr");
	assert_no_error(res);
	assert_non_null(res->value);
	assert_string_equal(res->value, "False");
	rlm_result_free(res);
	res = run(*state, "import sys\n"
	                  "print('printing works')\n"
	                  "(x, f(), sys.modules['__main__'].__dict__ is globals())");
	assert_no_error(res);
	assert_string_equal(res->stdout_text, "printing works\n");
	assert_string_equal(res->value, "('parent', 'parent', True)");
	rlm_result_free(res);
	res = run(*state, "SUBMIT(done=True)");
	assert_json_equal(res->submit_json, "{\"done\": true}");
	rlm_result_free(res);
}

static void test_nested_scope_persists_and_drop_scope_empties_it(void **state)
{
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res;
	int rc;

	opts.scope = "side-scope";
	rlm_result_free(run_ex(*state, "kept = 'in scope'", &opts));
	res = run_ex(*state, "kept", &opts);
	assert_no_error(res);
	assert_string_equal(res->value, "'in scope'");
	rlm_result_free(res);
	expect_repr(*state, "'kept' in globals()", "False");
	rc = rlm_interp_drop_scope(*state, "side-scope", &err);
	if (rc != 0)
		fail_msg("drop_scope: %s: %s", rlm_status_name(rc), err.message);
	res = run_ex(*state, "kept", &opts);
	assert_error_type(res, "NameError");
	rlm_result_free(res);
	assert_int_equal(rlm_interp_drop_scope(*state, "never-used", &err), 0);
}

static void test_bad_scope_name_is_einval(void **state)
{
	static const char *const bad[] = {"", "has space", "caf\xc3\xa9", "slash/no", NULL};
	char too_long[80];
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;

	for (int i = 0; bad[i]; i++) {
		opts.scope = bad[i];
		assert_int_equal(rlm_interp_execute_ex(*state, "1", &opts, &res, &err), RLM_EINVAL);
		assert_null(res);
		assert_int_equal(rlm_interp_drop_scope(*state, bad[i], &err), RLM_EINVAL);
	}
	memset(too_long, 'a', 65);
	too_long[65] = '\0';
	opts.scope = too_long;
	assert_int_equal(rlm_interp_execute_ex(*state, "1", &opts, &res, &err), RLM_EINVAL);
	too_long[64] = '\0';
	res = run_ex(*state, "'ok'", &opts);
	assert_string_equal(res->value, "'ok'");
	rlm_result_free(res);
	assert_int_equal(rlm_interp_drop_scope(*state, too_long, &err), 0);
}

/* Tries what a handler must not do while the main namespace waits. */
static int misuse_handler(void *ctx, const char *name, const char *args_json,
                          const char *kwargs_json, char **value_json, char **error_message)
{
	rlm_interp *interp = ctx;
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;
	char text[128];
	int no_scope = rlm_interp_execute_ex(interp, "main_ran = True", &opts, &res, &err);
	int reset = rlm_interp_reset(interp, &err);

	(void)name;
	(void)args_json;
	(void)kwargs_json;
	(void)error_message;
	rlm_result_free(res);
	snprintf(text, sizeof(text), "\"%s %s\"", rlm_status_name(no_scope),
	         rlm_status_name(reset));
	*value_json = strdup(text);
	return 0;
}

static void test_nested_main_namespace_is_busy(void **state)
{
	rlm_result *res;

	require_nested(*state);
	rlm_interp_set_call_handler(*state, misuse_handler, *state);
	res = run(*state, "kept_busy = 1\nrlm_query('x')");
	rlm_interp_set_call_handler(*state, NULL, NULL);
	assert_no_error(res);
	assert_string_equal(res->value, "'RLM_EINVAL RLM_EINVAL'");
	rlm_result_free(res);
	expect_repr(*state, "(kept_busy, 'main_ran' in globals())", "(1, False)");
}

static void test_nested_call_from_thread_is_refused(void **state)
{
	static const char *const cells[] = {"SUBMIT(answer='ran')", NULL};
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	res = run_nested(&n, "import threading\n"
	                     "out = []\n"
	                     "def ask():\n"
	                     "    try:\n"
	                     "        out.append(rlm_query('x'))\n"
	                     "    except RuntimeError as e:\n"
	                     "        out.append(str(e))\n"
	                     "t = threading.Thread(target=ask)\n"
	                     "t.start(); t.join(20)\n"
	                     "print(out[0])");
	assert_no_error(res);
	assert_int_equal(n.child_rc, RLM_ENOTSUP);
	assert_contains(res->stdout_text, "main thread");
	rlm_result_free(res);
	expect_repr(*state, "'alive'", "'alive'");
}

/* Runs a child cell that outlives the parent's time, then more cells until refused. */
struct late_child {
	rlm_interp *interp;
	rlm_result *first;
	int refused_rc;
	char refused[RLM_ERROR_MESSAGE_MAX];
};

static int late_child_handler(void *ctx, const char *name, const char *args_json,
                              const char *kwargs_json, char **value_json, char **error_message)
{
	struct late_child *lc = ctx;
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *res = NULL;
	int rc;

	(void)name;
	(void)args_json;
	(void)kwargs_json;
	(void)error_message;
	opts.scope = "late";
	opts.timeout_s = 20;
	rc = rlm_interp_execute_ex(lc->interp, "import time\ntime.sleep(10)", &opts, &lc->first,
	                           &err);
	for (int i = 0; rc == 0 && i < 5; i++) {
		rlm_result_free(res);
		res = NULL;
		rc = rlm_interp_execute_ex(lc->interp, "1", &opts, &res, &err);
	}
	rlm_result_free(res);
	lc->refused_rc = rc;
	snprintf(lc->refused, sizeof(lc->refused), "%s", err.message);
	*value_json = strdup("\"too late\"");
	return 0;
}

/* The parent's own timeout covers the whole time it waits in rlm_query: a child cell is cut
 * at what the parent has left, the parent then times out (state kept), and the handler's
 * further nested cells are refused. */
static void test_nested_child_is_cut_at_parent_timeout(void **state)
{
	struct late_child lc = {*state, NULL, 0, {0}};
	double start = now_s();
	rlm_result *res;

	require_nested(*state);
	rlm_result_free(run(*state, "kept_late = 1"));
	rlm_interp_set_call_handler(*state, late_child_handler, &lc);
	res = run_timeout(*state, "rlm_query('x')\nprint('not reached')", 1);
	rlm_interp_set_call_handler(*state, NULL, NULL);
	assert_true(now_s() - start < 8);
	assert_non_null(lc.first);
	assert_int_equal(lc.first->timed_out, 1);
	assert_contains(lc.first->error->message, "calling cell");
	rlm_result_free(lc.first);
	if (lc.refused_rc != RLM_ETIMEOUT)
		fail_msg("expected RLM_ETIMEOUT for a cell after the parent ended, got %s: %s",
		         rlm_status_name(lc.refused_rc), lc.refused);
	assert_int_equal(res->timed_out, 1);
	assert_int_equal(res->state_lost, 0);
	assert_error_type(res, "TimeoutError");
	assert_string_equal(res->stdout_text, "");
	rlm_result_free(res);
	expect_repr(*state, "kept_late", "1");
}

/* ---- faults (each on a fresh interpreter) ---------------------------------------------- */

/* A bomb runs only where it cannot hurt this machine: the backend says it contains bombs
 * (RLM_CAP_CONTAINS_BOMBS), or the author asked for it (--bombs, --with NAME). */
static void require_bomb_allowed(rlm_interp *interp, const char *name, bool asked)
{
	note_capabilities(interp);
	if (asked || suite.contains_bombs)
		return;
	printf("conformance: %s skipped: backend %s does not declare RLM_CAP_CONTAINS_BOMBS "
	       "(run it with --with %s or --bombs)\n",
	       name, suite.backend, name);
	skip();
}

static void test_memory_bomb_is_memory_error_or_state_lost(void **state)
{
	rlm_result *res;

	require_bomb_allowed(*state, "memory-bomb", suite.want_memory_bomb);
	res = run_timeout(*state, "x = bytearray(50 * 1024**3)", 60);

	if (!res->state_lost)
		assert_error_type(res, "MemoryError");
	rlm_result_free(res);
	expect_repr(*state, "1 + 1", "2");
}

static void test_fork_bomb_is_contained(void **state)
{
	double start = now_s();
	rlm_result *res;

	require_bomb_allowed(*state, "fork-bomb", suite.want_fork_bomb);
	res = run_timeout(*state, "import os\nwhile True:\n    os.fork()\n", 5);
	assert_true(res->error != NULL || res->state_lost);
	assert_true(now_s() - start < 30);
	rlm_result_free(res);
	expect_repr(*state, "1 + 1", "2");
}

static void expect_death_loses_state(rlm_interp *interp, const char *code)
{
	rlm_result *res = run(interp, "x = 1");

	rlm_result_free(res);
	res = run(interp, code);
	assert_int_equal(res->state_lost, 1);
	assert_non_null(res->error);
	rlm_result_free(res);
	res = run(interp, "x");
	assert_error_type(res, "NameError");
	rlm_result_free(res);
}

static void test_os_exit_loses_state_and_recovers(void **state)
{
	rlm_result *res;

	expect_death_loses_state(*state, "import os\nos._exit(3)");
	res = run(*state, "import os\nos._exit(3)");
	assert_non_null(res->error);
	if (!strcasestr(res->error->message, "exit"))
		fail_msg("state-loss message does not mention the exit: %s", res->error->message);
	rlm_result_free(res);
}

static void test_sigkill_loses_state_and_recovers(void **state)
{
	rlm_result *res;

	expect_death_loses_state(*state, "import os\nos.kill(os.getpid(), 9)");
	res = run(*state, "import os\nos.kill(os.getpid(), 9)");
	assert_non_null(res->error);
	if (!strcasestr(res->error->message, "kill") && !strcasestr(res->error->message, "signal"))
		fail_msg("state-loss message does not mention the kill: %s", res->error->message);
	rlm_result_free(res);
}

/* User code that ignores both the driver's timer and the host's interrupt: only the host's
 * hard deadline (timeout + grace) can stop it, by restarting the driver. */
static void test_stuck_cell_hits_hard_deadline(void **state)
{
	double grace = rlm_config_get_number(suite.cfg, "limits.hard_deadline_grace_s", 2);
	double start = now_s();
	rlm_result *res = run_timeout(*state,
	                              "import signal\n"
	                              "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
	                              "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
	                              "while True:\n"
	                              "    pass\n",
	                              1);

	assert_int_equal(res->timed_out, 1);
	assert_int_equal(res->state_lost, 1);
	assert_non_null(res->error);
	assert_true(now_s() - start < 1 + grace + 15);
	rlm_result_free(res);
	expect_repr(*state, "1 + 1", "2");
}

/* A child that ignores its timeout and the interrupt: the nested execute cannot restart the
 * driver under the waiting parent, so it fails; the parent's cell then ends with state_lost
 * and the interpreter works again afterwards. */
static void test_nested_stuck_child_ends_parent_with_state_lost(void **state)
{
	static const char *const cells[] = {"import signal\n"
	                                    "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
	                                    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
	                                    "while True:\n"
	                                    "    pass\n",
	                                    NULL};
	double grace = rlm_config_get_number(suite.cfg, "limits.hard_deadline_grace_s", 2);
	double start = now_s();
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	n.child_timeout_s = 1;
	rlm_result_free(run(*state, "x = 'parent'"));
	res = run_nested(&n, "rlm_query('x')\nprint('not reached')");
	assert_int_equal(n.child_rc, RLM_ESTATE_LOST);
	assert_int_equal(res->state_lost, 1);
	assert_non_null(res->error);
	assert_contains(res->error->message, "nested cell");
	assert_null(strstr(res->stdout_text ? res->stdout_text : "", "not reached"));
	assert_true(now_s() - start < 1 + 2 * grace + 15);
	rlm_result_free(res);
	res = run(*state, "x");
	assert_error_type(res, "NameError");
	assert_int_equal(res->state_lost, 0);
	rlm_result_free(res);
	expect_repr(*state, "1 + 1", "2");
}

static void test_nested_child_killing_the_driver_ends_parent_with_state_lost(void **state)
{
	static const char *const cells[] = {"import os\nos._exit(3)", NULL};
	struct nest n;
	rlm_result *res;

	require_nested(*state);
	nest_init(&n, *state, cells);
	rlm_result_free(run(*state, "x = 'parent'"));
	res = run_nested(&n, "rlm_query('x')");
	assert_int_equal(n.child_rc, RLM_ESTATE_LOST);
	assert_int_equal(res->state_lost, 1);
	assert_non_null(res->error);
	rlm_result_free(res);
	res = run(*state, "x");
	assert_error_type(res, "NameError");
	rlm_result_free(res);
	expect_repr(*state, "1 + 1", "2");
}

static void test_state_persists_again_after_state_lost(void **state)
{
	rlm_result *res = run(*state, "import os\nos._exit(1)");

	assert_int_equal(res->state_lost, 1);
	rlm_result_free(res);
	res = run(*state, "y = 5");
	assert_no_error(res);
	assert_int_equal(res->state_lost, 0);
	rlm_result_free(res);
	expect_repr(*state, "y * 2", "10");
}

static void test_thread_left_running_does_not_break_next_cell(void **state)
{
	rlm_result *res = run(*state, "import threading, time\n"
	                              "def spam():\n"
	                              "    while True:\n"
	                              "        print('tick', flush=True)\n"
	                              "        time.sleep(0.01)\n"
	                              "threading.Thread(target=spam, daemon=True).start()\n");

	assert_no_error(res);
	rlm_result_free(res);
	usleep(100 * 1000);
	res = run(*state, "print('mine')\n1 + 1");
	assert_no_error(res);
	assert_contains(res->stdout_text, "mine");
	assert_string_equal(res->value, "2");
	rlm_result_free(res);
}

/* ---- lifecycle (own interpreters) ------------------------------------------------------ */

static void test_close_then_open_new_interpreter(void **state)
{
	rlm_interp *interp = open_interp(suite.cfg);

	(void)state;
	expect_repr(interp, "v = 3\nv", "3");
	rlm_interp_close(interp);
	interp = open_interp(suite.cfg);
	expect_repr(interp, "'second'", "'second'");
	rlm_interp_close(interp);
}

/* The sandbox's uid from the backend status, or -1 when the backend does not report one. */
static long sandbox_uid(rlm_interp *interp)
{
	char *status = rlm_interp_status_json(interp);
	json_object *doc = status ? json_tokener_parse(status) : NULL, *bs, *uid;
	long v = -1;

	if (doc && json_object_object_get_ex(doc, "backend_status", &bs) &&
	    json_object_object_get_ex(bs, "uid", &uid))
		v = (long)json_object_get_int64(uid);
	json_object_put(doc);
	rlm_free(status);
	return v;
}

/* Sandboxes one after another never share an identity: a uid reused right after a fork bomb
 * would inherit its process count (the local backend's plugin .so is unloaded between
 * interpreters, so this also catches state that resets with it). */
static void test_reopened_sandbox_gets_a_new_identity(void **state)
{
	rlm_interp *interp = open_interp(suite.cfg);
	long first = sandbox_uid(interp), second;

	(void)state;
	rlm_interp_close(interp);
	interp = open_interp(suite.cfg);
	second = sandbox_uid(interp);
	rlm_interp_close(interp);
	if (first < 0 || first == 0 || getuid() != 0)
		skip(); /* no per-sandbox uid here (not root, or not reported) */
	assert_int_not_equal(first, second);
}

/* The suite's config, plus a volume of its own on the local backend when none is set, so
 * the volume test runs there by default. */
static rlm_config *volume_config(void)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	char *have = rlm_config_get_json(suite.cfg, "backends.local.volume_name");
	char assignment[64];

	assert_int_equal(rlm_config_clone(suite.cfg, &cfg, &err), 0);
	if (strcmp(suite.backend, "local") == 0 && (!have || strcmp(have, "null") == 0)) {
		snprintf(assignment, sizeof(assignment),
		         "backends.local.volume_name=conformance-%ld", (long)getpid());
		if (rlm_config_set_assignment(cfg, assignment, &err) != 0)
			fail_msg("%s: %s", assignment, err.message);
	}
	rlm_free(have);
	return cfg;
}

static void test_volume_persists_across_interpreters(void **state)
{
	rlm_config *cfg = volume_config();
	rlm_interp *first = open_interp(cfg), *second;
	rlm_result *res = run(first, "VOLUME is None");

	(void)state;
	if (res->value && strcmp(res->value, "True") == 0) {
		rlm_result_free(res);
		rlm_interp_close(first);
		rlm_config_free(cfg);
		printf("conformance: no volume configured for %s\n", suite.backend);
		skip();
	}
	rlm_result_free(res);
	res = run(first, "import os\n"
	                 "with open(os.path.join(VOLUME, 'conformance.txt'), 'w') as f:\n"
	                 "    f.write('persisted')\n");
	assert_no_error(res);
	rlm_result_free(res);
	rlm_interp_close(first);
	second = open_interp(cfg);
	rlm_config_free(cfg);
	expect_repr(second, "import os\nopen(os.path.join(VOLUME, 'conformance.txt')).read()",
	            "'persisted'");
	rlm_result_free(run(second, "os.remove(os.path.join(VOLUME, 'conformance.txt'))"));
	rlm_interp_close(second);
}

static void test_unknown_backend_is_not_found(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	rlm_interp *interp = NULL;
	int rc;

	(void)state;
	assert_int_equal(rlm_config_clone(suite.cfg, &cfg, &err), 0);
	rc = rlm_config_set(cfg, "backend", "no-such-backend", &err);
	if (rc != 0)
		fail_msg("config_set backend: %s", err.message);
	rc = rlm_interp_open(cfg, &interp, &err);
	rlm_config_free(cfg);
	assert_null(interp);
	if (rc != RLM_ENOTFOUND && rc != RLM_EPLUGIN)
		fail_msg("expected RLM_ENOTFOUND, got %s: %s", rlm_status_name(rc), err.message);
	assert_contains(err.message, "no-such-backend");
	assert_contains(err.message, "/"); /* the searched paths */
}

/* ---- the case tables ----------------------------------------------------------------- */

const struct CMUnitTest conformance_shared[] = {
        cmocka_unit_test(test_exec_keeps_state_between_cells),
        cmocka_unit_test(test_vars_accept_every_json_type),
        cmocka_unit_test(test_vars_bad_name_is_exec_error),
        cmocka_unit_test(test_submit_keyword_fields),
        cmocka_unit_test(test_submit_positional_uses_output_names),
        cmocka_unit_test(test_submit_single_positional_is_output),
        cmocka_unit_test(test_submit_escapes_except_exception),
        cmocka_unit_test(test_submit_unserializable_field_is_named),
        cmocka_unit_test(test_submit_keeps_output_printed_before),
        cmocka_unit_test(test_rebinding_submit_and_print_is_undone),
        cmocka_unit_test(test_buffers_persist_across_cells),
        cmocka_unit_test(test_error_has_type_message_line_traceback),
        cmocka_unit_test(test_syntax_error_is_result),
        cmocka_unit_test(test_keyboard_interrupt_is_result),
        cmocka_unit_test(test_system_exit_is_result),
        cmocka_unit_test(test_trailing_expression_value),
        cmocka_unit_test(test_input_raises_eof_error),
        cmocka_unit_test(test_large_var_value),
        cmocka_unit_test(test_output_cap_counts_characters),
        cmocka_unit_test(test_output_of_200mb_is_capped),
        cmocka_unit_test(test_invalid_utf8_and_rs_on_fd1_are_harmless),
        cmocka_unit_test(test_closed_stdout_and_stderr_are_restored),
        cmocka_unit_test(test_infinite_loop_times_out_and_keeps_state),
        cmocka_unit_test(test_sleep_times_out_and_keeps_state),
        cmocka_unit_test(test_interrupt_stops_running_cell),
        cmocka_unit_test(test_upload_download_binary_round_trip),
        cmocka_unit_test(test_upload_download_large_file_into_new_dir),
        cmocka_unit_test(test_llm_query_without_handler_raises),
        cmocka_unit_test(test_host_calls_return_handler_values),
        cmocka_unit_test(test_host_call_handler_error_raises),
        cmocka_unit_test(test_reset_clears_variables),
        cmocka_unit_test(test_reset_keeps_buffers),
        cmocka_unit_test(test_run_command_echo),
        cmocka_unit_test(test_run_command_timeout_is_reported),
        cmocka_unit_test(test_result_to_json_has_every_key),
        cmocka_unit_test(test_tool_output_maps_result),
        cmocka_unit_test(test_tool_output_without_error_has_no_error_line),
        cmocka_unit_test(test_nested_rlm_query_returns_child_submit),
        cmocka_unit_test(test_nested_child_and_parent_namespaces_are_separate),
        cmocka_unit_test(test_nested_child_prints_stay_out_of_parent_stdout),
        cmocka_unit_test(test_nested_child_error_reaches_handler_not_parent),
        cmocka_unit_test(test_nested_two_levels_deep),
        cmocka_unit_test(test_nested_parent_state_intact_afterwards),
        cmocka_unit_test(test_nested_scope_persists_and_drop_scope_empties_it),
        cmocka_unit_test(test_bad_scope_name_is_einval),
        cmocka_unit_test(test_nested_main_namespace_is_busy),
        cmocka_unit_test(test_nested_call_from_thread_is_refused),
        cmocka_unit_test(test_nested_child_is_cut_at_parent_timeout),
};
const size_t conformance_shared_count = sizeof(conformance_shared) / sizeof(conformance_shared[0]);

const struct CMUnitTest conformance_fresh[] = {
        cmocka_unit_test_setup_teardown(test_memory_bomb_is_memory_error_or_state_lost, open_fresh,
                                        close_interp),
        cmocka_unit_test_teardown(test_reopened_sandbox_gets_a_new_identity, check_leftovers),
        cmocka_unit_test_setup_teardown(test_fork_bomb_is_contained, open_fresh, close_interp),
        cmocka_unit_test_setup_teardown(test_os_exit_loses_state_and_recovers, open_fresh,
                                        close_interp),
        cmocka_unit_test_setup_teardown(test_sigkill_loses_state_and_recovers, open_fresh,
                                        close_interp),
        cmocka_unit_test_setup_teardown(test_stuck_cell_hits_hard_deadline, open_fresh,
                                        close_interp),
        cmocka_unit_test_setup_teardown(test_nested_stuck_child_ends_parent_with_state_lost,
                                        open_fresh, close_interp),
        cmocka_unit_test_setup_teardown(
                test_nested_child_killing_the_driver_ends_parent_with_state_lost, open_fresh,
                close_interp),
        cmocka_unit_test_setup_teardown(test_state_persists_again_after_state_lost, open_fresh,
                                        close_interp),
        cmocka_unit_test_setup_teardown(test_thread_left_running_does_not_break_next_cell,
                                        open_fresh, close_interp),
        cmocka_unit_test_teardown(test_close_then_open_new_interpreter, check_leftovers),
        cmocka_unit_test_teardown(test_volume_persists_across_interpreters, check_leftovers),
        cmocka_unit_test_teardown(test_unknown_backend_is_not_found, check_leftovers),
};
const size_t conformance_fresh_count = sizeof(conformance_fresh) / sizeof(conformance_fresh[0]);
