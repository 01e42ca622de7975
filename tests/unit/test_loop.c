/* test_loop.c - the RLM loop (rlm_run) end to end on the local backend with the replay LLM:
 * how turns end, what the model is told, host calls and their budget, child RLMs, the
 * trajectory and its redaction; plus the pure parts (code-block extraction, the output
 * policy, the LLM section check). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "interp_internal.h"
#include "prompt.h"
#include "rlm/rlm.h"
#include "util.h"
#include "trajectory.h"

/* One scripted answer: match (key mode) or NULL, response text, or an error to fail with. */
struct scripted {
	const char *match;
	const char *response;
	const char *error;
};

static char scratch[256];
/* Where trajectories go: $RLM_TEST_TRAJECTORIES/unit_loop when set (the trajectory_schema
 * test validates every file there afterwards), else the scratch directory. */
static char traj_dir[512];

static int make_scratch(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	snprintf(scratch, sizeof(scratch), "%s/rlm-test-loop-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch))
		return -1;
	const char *keep = getenv("RLM_TEST_TRAJECTORIES");
	if (!keep || !*keep) {
		snprintf(traj_dir, sizeof(traj_dir), "%s", scratch);
		return 0;
	}
	snprintf(traj_dir, sizeof(traj_dir), "%s/unit_loop", keep);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", traj_dir, traj_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int remove_scratch(void **state)
{
	(void)state;
	char cmd[320];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	return system(cmd) == 0 ? 0 : -1;
}

static void scratch_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", scratch, name);
}

static void traj_path(char *buf, size_t size, const char *name)
{
	if (snprintf(buf, size, "%s/%s", traj_dir, name) >= (int)size)
		fail_msg("trajectory path too long: %s/%s", traj_dir, name);
}

/* Writes a JSONL script (built with json-c, so the code in responses needs no escaping). */
static void write_script(const char *path, const struct scripted *s, size_t n)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		if (s[i].match)
			json_object_object_add(o, "match", json_object_new_string(s[i].match));
		if (s[i].response)
			json_object_object_add(o, "response",
			                       json_object_new_string(s[i].response));
		if (s[i].error)
			json_object_object_add(o, "error", json_object_new_string(s[i].error));
		fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	}
	fclose(f);
}

static void set(rlm_config *cfg, const char *key, const char *value)
{
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_set(cfg, key, value, &err))
		fail_msg("set %s=%s: %s", key, value, err.message);
}

/* A config for the local backend and the replay LLM answering from script (key mode when
 * by_key). */
static rlm_config *replay_config(const char *name, const struct scripted *s, size_t n, int by_key)
{
	char path[512], quoted[600];
	scratch_path(path, sizeof(path), name);
	write_script(path, s, n);
	rlm_config *cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	set(cfg, "backend", "local");
	set(cfg, "llm.provider", "replay");
	snprintf(quoted, sizeof(quoted), "\"%s\"", path);
	set(cfg, "llm.script", quoted);
	if (by_key)
		set(cfg, "llm.match", "key");
	set(cfg, "limits.execute_timeout_s", "60");
	return cfg;
}

static rlm_run_result *run_ok(rlm_config *cfg, rlm_run_options *o)
{
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_run(cfg, o, &res, &err))
		fail_msg("rlm_run: %s (%s)", err.message, rlm_status_name(err.code));
	assert_non_null(res);
	return res;
}

/* The trajectory's lines, parsed (every line must parse). */
static json_object *read_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	json_object *lines = json_object_new_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		json_object *o = json_tokener_parse(line);
		if (!o || !json_object_is_type(o, json_type_object))
			fail_msg("trajectory line does not parse: %.200s", line);
		json_object_array_add(lines, o);
	}
	free(line);
	fclose(f);
	return lines;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("missing field \"%s\" in %.300s", key,
		         json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	return v;
}

static void assert_type(json_object *o, const char *key, json_type t)
{
	json_object *v = get(o, key);
	if (!json_object_is_type(v, t))
		fail_msg("field \"%s\" is %s, expected %s", key,
		         json_type_to_name(json_object_get_type(v)), json_type_to_name(t));
}

static void assert_number(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	assert_true(json_object_is_type(v, json_type_double) ||
	            json_object_is_type(v, json_type_int));
}

#define CODE(text) "```repl\n" text "\n```"

/* ---- how a run ends ---- */

static void loop_ends_on_submit(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {NULL, "Let me answer.\n" CODE("x = 6 * 7\nSUBMIT(answer=str(x))"), NULL},
	        {NULL, CODE("SUBMIT(answer='never asked')"), NULL},
	};
	rlm_config *cfg = replay_config("submit.jsonl", s, 2, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "What is six times seven?";
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "42");
	assert_string_equal(res->submit_json, "{\"answer\":\"42\"}");
	assert_int_equal(res->iterations, 1);
	assert_int_equal(res->fallback, 0);
	assert_int_equal(res->usage.llm_calls, 1);
	assert_int_equal(res->usage.calls_by_depth[0], 1);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

/* The whole-run time limit cuts a cell that would run for a minute, and the run stops with
 * RLM_ETIMEOUT before asking the model again. */
static void run_time_limit_stops_the_run(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {NULL, CODE("import time\ntime.sleep(60)"), NULL},
	        {NULL, CODE("SUBMIT(answer='too late')"), NULL},
	};
	rlm_config *cfg = replay_config("deadline.jsonl", s, 2, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "wait";
	o.timeout_s = 2;
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	double t0 = rlm_now();
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_ETIMEOUT);
	assert_null(res);
	assert_non_null(strstr(err.message, "time limit"));
	assert_true(rlm_now() - t0 < 50); /* the 60 s sleep was cut */
	rlm_config_free(cfg);
}

struct cancel_later {
	volatile int *flag;
	double after_s;
};

static void *set_flag_later(void *arg)
{
	struct cancel_later *c = arg;
	struct timespec ts = {(time_t)c->after_s, (long)((c->after_s - (time_t)c->after_s) * 1e9)};
	nanosleep(&ts, NULL);
	*c->flag = 1;
	return NULL;
}

/* A cancel flag set from another thread stops a run whose cell would sleep a minute: rlm_run
 * returns RLM_ECANCELLED long before, without asking the model again. */
static void cancel_flag_stops_the_run(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {NULL, CODE("import time\ntime.sleep(60)"), NULL},
	        {NULL, CODE("SUBMIT(answer='too late')"), NULL},
	};
	rlm_config *cfg = replay_config("cancel.jsonl", s, 2, 0);
	volatile int flag = 0;
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "wait";
	o.cancel = &flag;
	struct cancel_later c = {&flag, 0.5};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, set_flag_later, &c), 0);
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	double t0 = rlm_now();
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_ECANCELLED);
	assert_true(rlm_now() - t0 < 50); /* the 60 s sleep was abandoned */
	pthread_join(t, NULL);
	assert_null(res);
	rlm_config_free(cfg);
}

/* A context that is not UTF-8 reaches the sandbox decoded with replacement instead of
 * failing the run (or going raw into the prompt). */
static void context_that_is_not_utf8_is_decoded_with_replacement(void **state)
{
	(void)state;
	const struct scripted s[] = {{NULL, CODE("SUBMIT(answer=context)"), NULL}};
	rlm_config *cfg = replay_config("latin1.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "echo";
	o.context = "caf\xe9 au lait";
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "caf\xef\xbf\xbd au lait");
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

/* A model answer that is not UTF-8 is repaired before it is run or kept in the history. */
static void model_answer_that_is_not_utf8_is_decoded_with_replacement(void **state)
{
	(void)state;
	const struct scripted s[] = {{NULL, CODE("SUBMIT(answer='caf\xe9')"), NULL}};
	rlm_config *cfg = replay_config("latin1-answer.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "answer";
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "caf\xef\xbf\xbd");
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

/* rlm_run never writes its trajectory over its context file. */
static void trajectory_over_the_context_file_is_refused(void **state)
{
	(void)state;
	const struct scripted s[] = {{NULL, CODE("SUBMIT(answer='x')"), NULL}};
	rlm_config *cfg = replay_config("same.jsonl", s, 1, 0);
	char path[512];
	scratch_path(path, sizeof(path), "precious-context.txt");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("precious", f);
	fclose(f);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "t";
	o.context_file = path;
	o.trajectory_path = path;
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_EINVAL);
	char buf[32] = "";
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "precious");
	rlm_config_free(cfg);
}

/* Options not stamped by RLM_RUN_OPTIONS_INIT (struct_size 0) are refused, not misread. */
static void unstamped_options_are_einval(void **state)
{
	(void)state;
	const struct scripted s[] = {{NULL, CODE("SUBMIT(answer='x')"), NULL}};
	rlm_config *cfg = replay_config("unstamped.jsonl", s, 1, 0);
	rlm_run_options o;
	memset(&o, 0, sizeof(o));
	o.task = "anything";
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_EINVAL);
	assert_non_null(strstr(err.message, "RLM_RUN_OPTIONS_INIT"));
	rlm_run_options_init(&o);
	assert_int_equal(o.struct_size, sizeof(o));
	assert_int_equal(o.max_depth, -1);
	rlm_config_free(cfg);
}

static void submit_with_several_fields_answers_json(void **state)
{
	(void)state;
	const struct scripted s[] = {{NULL, CODE("SUBMIT(count=3, kind='disk')"), NULL}};
	rlm_config *cfg = replay_config("fields.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "count";
	rlm_run_result *res = run_ok(cfg, &o);
	json_object *a = json_tokener_parse(res->answer);
	assert_non_null(a);
	assert_int_equal(json_object_get_int(get(a, "count")), 3);
	assert_string_equal(json_object_get_string(get(a, "kind")), "disk");
	json_object_put(a);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void answer_without_code_gets_a_nudge_and_counts(void **state)
{
	(void)state;
	/* Key mode: the second answer is only given if the nudge reached the model. */
	const struct scripted s[] = {
	        {"TASK:", "I think the answer is probably 4.", NULL},
	        {"nothing ran", CODE("SUBMIT(answer=str(2 + 2))"), NULL},
	};
	rlm_config *cfg = replay_config("nudge.jsonl", s, 2, 1);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "Add two and two.";
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "4");
	assert_int_equal(res->iterations, 2);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void several_blocks_run_in_order(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {NULL,
	         "First:\n```python\nx = 1\n```\nthen:\n```py\nx = x * 10 + 2\n```\nand:\n" CODE(
	                 "SUBMIT(answer=str(x * 10 + 3))") "\n```repl\nx = 'not run'\n```",
	         NULL},
	};
	rlm_config *cfg = replay_config("order.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "ordered";
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "123");
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void nested_fences_in_a_string_are_not_split(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {NULL,
	         "Here:\n```python\ndoc = "
	         "\"\"\"Example:\n```python\nprint('inner')\n```\ndone\"\"\"\n"
	         "SUBMIT(answer=doc)\n```\n",
	         NULL},
	};
	rlm_config *cfg = replay_config("nested.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "nested";
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "Example:\n```python\nprint('inner')\n```\ndone");
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void max_iterations_ends_with_a_marked_fallback(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {"TASK:", CODE("x = 1\nprint(x)"), NULL},
	        {"turn 1 of 2", CODE("x += 1\nprint(x)"), NULL},
	        {"used all 2 turns", "The answer is 2.\n", NULL},
	};
	rlm_config *cfg = replay_config("fallback.jsonl", s, 3, 1);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "count to two";
	o.max_iterations = 2;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "The answer is 2.");
	assert_int_equal(res->fallback, 1);
	assert_null(res->submit_json);
	assert_int_equal(res->iterations, 2);
	assert_int_equal(res->usage.llm_calls, 3);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void recorded_failed_call_replays_as_a_failure(void **state)
{
	(void)state;
	char traj[512], again[512], quoted[600];
	traj_path(traj, sizeof(traj), "record-failed.jsonl");
	traj_path(again, sizeof(again), "record-failed-again.jsonl");
	const struct scripted s[] = {
	        {NULL,
	         CODE("try:\n    h = llm_query('help')\nexcept RuntimeError as e:\n"
	              "    h = 'failed: ' + str(e)"),
	         NULL},
	        {NULL, NULL, "no capacity"},
	        {NULL, CODE("SUBMIT(answer=h)"), NULL},
	};
	rlm_config *cfg = replay_config("record-failed-script.jsonl", s, 3, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "record a failure";
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "failed: llm_query failed: no capacity");
	rlm_run_result_free(res);
	snprintf(quoted, sizeof(quoted), "\"%s\"", traj);
	set(cfg, "llm.script", quoted);
	o.trajectory_path = again;
	res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "failed: llm_query failed: no capacity");
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void replay_script_exhaustion_is_a_clear_error(void **state)
{
	(void)state;
	const struct scripted s[] = {{NULL, CODE("print('no submit')"), NULL}};
	rlm_config *cfg = replay_config("short.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "never ends";
	o.max_iterations = 3;
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_EBUDGET);
	assert_null(res);
	char want[512];
	snprintf(want, sizeof(want), "replay script exhausted after 1 responses (%s/short.jsonl)",
	         scratch);
	assert_string_equal(err.message, want);
	rlm_config_free(cfg);
}

/* ---- host calls ---- */

static void budget_exhaustion_raises_in_code_and_the_loop_goes_on(void **state)
{
	(void)state;
	char traj[512];
	traj_path(traj, sizeof(traj), "budget-trajectory.jsonl");
	const struct scripted s[] = {
	        {NULL, CODE("r = llm_query('first')\nr2 = llm_query('second')"), NULL},
	        {NULL, "sub answer", NULL},
	        {NULL, CODE("SUBMIT(answer=r)"), NULL},
	};
	rlm_config *cfg = replay_config("budget.jsonl", s, 3, 0);
	set(cfg, "limits.max_llm_calls", "1");
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "use the budget";
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "sub answer");
	assert_int_equal(res->iterations, 2);
	assert_int_equal(res->usage.budget_calls, 1);
	assert_int_equal(res->usage.calls_by_depth[1], 1);
	rlm_run_result_free(res);
	/* The second call raised RuntimeError in the code, with the budget message. */
	json_object *lines = read_lines(traj);
	json_object *it1 = json_object_array_get_idx(lines, 1);
	json_object *block = json_object_array_get_idx(get(it1, "code_blocks"), 0);
	const char *err = json_object_get_string(get(get(block, "result"), "stderr"));
	assert_non_null(strstr(err, "RuntimeError: LLM call budget exhausted: 1 of 1 calls used"));
	json_object_put(lines);
	rlm_config_free(cfg);
}

static void depth_limit_degrades_rlm_query_to_llm_query(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {"TASK:", CODE("SUBMIT(answer=rlm_query('what is up', context='ctx-text'))"), NULL},
	        {"what is up\n\nContext:\nctx-text", "plain answer", NULL},
	};
	rlm_config *cfg = replay_config("depth.jsonl", s, 2, 1);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "ask a child";
	o.max_depth = 0;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "plain answer");
	assert_int_equal(res->iterations, 1);
	assert_int_equal(res->usage.llm_calls, 2);
	assert_int_equal(res->usage.calls_by_depth[1], 1);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void batched_partial_failure_gives_error_items(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {"TASK:",
	         CODE("import json\nr = llm_query_batched(['p-one', 'p-bad', 'p-two'])\n"
	              "SUBMIT(answer=json.dumps(r))"),
	         NULL},
	        {"p-one", "one", NULL},
	        {"p-bad", NULL, "provider exploded"},
	        {"p-two", "two", NULL},
	};
	rlm_config *cfg = replay_config("batched.jsonl", s, 4, 1);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "fan out";
	rlm_run_result *res = run_ok(cfg, &o);
	json_object *a = json_tokener_parse(res->answer);
	assert_true(json_object_is_type(a, json_type_array));
	assert_int_equal(json_object_array_length(a), 3);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(a, 0)), "one");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(a, 1)),
	                    "[ERROR] provider exploded");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(a, 2)), "two");
	assert_int_equal(res->usage.calls_by_depth[1], 3);
	json_object_put(a);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void batched_over_budget_raises_before_any_call(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {NULL,
	         CODE("try:\n    llm_query_batched(['a', 'b', 'c'])\nexcept RuntimeError as e:\n"
	              "    SUBMIT(answer=str(e))"),
	         NULL},
	};
	rlm_config *cfg = replay_config("batched-budget.jsonl", s, 1, 0);
	set(cfg, "limits.max_llm_calls", "2");
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "too many";
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "LLM call budget exhausted: 0 of 2 calls used, and "
	                                 "llm_query_batched needs 3");
	assert_int_equal(res->usage.llm_calls, 1); /* the root's turn only */
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void child_rlm_shares_the_sandbox_but_not_the_namespace(void **state)
{
	(void)state;
	const struct scripted s[] = {
	        {"TASK:",
	         CODE("parent_only = 41\nr = rlm_query('child job', context='abc')\n"
	              "leak = 'child_var' in globals()\nSUBMIT(answer=r + '|' + str(leak) + '|' + "
	              "str(parent_only) + '|' + str(context))"),
	         NULL},
	        {"child job",
	         CODE("child_var = 1\nSUBMIT(answer=context + ':' + str('parent_only' in "
	              "globals()))"),
	         NULL},
	};
	rlm_config *cfg = replay_config("child.jsonl", s, 2, 1);
	char traj[512];
	traj_path(traj, sizeof(traj), "child-trajectory.jsonl");
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "delegate";
	o.max_depth = 1;
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "abc:False|False|41|None");
	assert_int_equal(res->usage.calls_by_depth[1], 1); /* the child's turn */
	assert_int_equal(res->usage.budget_calls, 1);
	rlm_run_result_free(res);
	/* The child's turns are recorded inside the parent's block, as an rlm_query call. */
	json_object *lines = read_lines(traj);
	json_object *block = json_object_array_get_idx(
	        get(json_object_array_get_idx(lines, 1), "code_blocks"), 0);
	json_object *call = json_object_array_get_idx(get(get(block, "result"), "rlm_calls"), 0);
	assert_string_equal(json_object_get_string(get(call, "type")), "rlm_query");
	assert_int_equal(json_object_get_int(get(call, "depth")), 1);
	assert_string_equal(json_object_get_string(get(call, "response")), "abc:False");
	json_object *child = get(call, "trajectory");
	assert_int_equal(json_object_array_length(child), 1);
	assert_string_equal(
	        json_object_get_string(get(json_object_array_get_idx(child, 0), "final_answer")),
	        "abc:False");
	json_object_put(lines);
	rlm_config_free(cfg);
}

/* ---- context ---- */

static void context_of_several_megabytes_reaches_the_repl(void **state)
{
	(void)state;
	size_t size = 6u << 20;
	char *ctx = malloc(size + 1);
	assert_non_null(ctx);
	for (size_t i = 0; i < size; i++)
		ctx[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
	memcpy(ctx + size - 12, "END-SENTINEL", 12);
	ctx[size] = '\0';
	char traj[512];
	traj_path(traj, sizeof(traj), "big-trajectory.jsonl");
	const struct scripted s[] = {
	        {NULL,
	         CODE("SUBMIT(answer=f'{type(context).__name__}:{len(context)}:{context[-12:]}')"),
	         NULL},
	};
	rlm_config *cfg = replay_config("big.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "measure";
	o.context = ctx;
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	char want[64];
	snprintf(want, sizeof(want), "str:%zu:END-SENTINEL", size);
	assert_string_equal(res->answer, want);
	rlm_run_result_free(res);
	/* Only a preview reached the prompt. */
	char *text = read_text(traj);
	assert_true(strlen(text) < 64 * 1024);
	free(text);
	free(ctx);
	rlm_config_free(cfg);
}

static void context_file_becomes_context(void **state)
{
	(void)state;
	char path[512];
	scratch_path(path, sizeof(path), "ctx.txt");
	FILE *f = fopen(path, "w");
	fputs("alpha\nbeta\n", f);
	fclose(f);
	const struct scripted s[] = {{NULL, CODE("SUBMIT(answer=context.split()[1])"), NULL}};
	rlm_config *cfg = replay_config("ctxfile.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "second word";
	o.context_file = path;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "beta");
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

/* ---- the trajectory ---- */

static void check_block(json_object *b)
{
	assert_type(b, "code", json_type_string);
	const char *code = json_object_get_string(get(b, "code"));
	assert_true(*code && code[strlen(code) - 1] != '\n'); /* no empty last line */
	json_object *r = get(b, "result");
	assert_type(r, "stdout", json_type_string);
	assert_type(r, "stderr", json_type_string);
	assert_type(r, "locals", json_type_object);
	assert_number(r, "execution_time");
	assert_type(r, "rlm_calls", json_type_array);
	json_object *calls = get(r, "rlm_calls");
	for (size_t i = 0; i < json_object_array_length(calls); i++) {
		json_object *c = json_object_array_get_idx(calls, i);
		assert_true(json_object_is_type(get(c, "prompt"), json_type_string));
		assert_true(json_object_is_type(get(c, "response"), json_type_string));
		assert_number(c, "execution_time");
	}
}

/* The summary sidecar beside a trajectory, parsed. */
static json_object *read_summary(const char *traj)
{
	char path[600];
	size_t n = strlen(traj) - strlen(".jsonl");
	assert_string_equal(traj + n, ".jsonl");
	snprintf(path, sizeof(path), "%.*s.summary.json", (int)n, traj);
	char *text = read_text(path);
	json_object *o = json_tokener_parse(text);
	free(text);
	assert_true(json_object_is_type(o, json_type_object));
	assert_string_equal(json_object_get_string(get(o, "type")), "summary");
	return o;
}

static void trajectory_has_the_visualizer_schema(void **state)
{
	(void)state;
	char traj[512];
	traj_path(traj, sizeof(traj), "schema.jsonl");
	const struct scripted s[] = {
	        {NULL, "Look first.\n" CODE("print(len(context))"), NULL},
	        {NULL, "No code this time.", NULL},
	        {NULL,
	         CODE("s = llm_query('summarise: ' + context)\nprint(s)") "\n" CODE(
	                 "SUBMIT(answer=s)"),
	         NULL},
	        {NULL, "a summary", NULL},
	};
	rlm_config *cfg = replay_config("schema-script.jsonl", s, 4, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "Summarise the context.";
	o.context = "some context";
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "a summary");
	assert_string_equal(res->trajectory_path, traj);
	char want_summary[600];
	snprintf(want_summary, sizeof(want_summary), "%.*s.summary.json",
	         (int)(strlen(traj) - strlen(".jsonl")), traj);
	assert_string_equal(res->summary_path, want_summary);
	char *printed = rlm_run_result_to_json(res);
	rlm_run_result_free(res);

	/* Only the metadata and the turns: the visualizer takes any other line for a turn. */
	json_object *lines = read_lines(traj);
	assert_int_equal(json_object_array_length(lines), 4);
	json_object *meta = json_object_array_get_idx(lines, 0);
	assert_string_equal(json_object_get_string(get(meta, "type")), "metadata");
	assert_type(meta, "timestamp", json_type_string);
	assert_type(meta, "root_model", json_type_string);
	assert_type(meta, "max_depth", json_type_int);
	assert_type(meta, "max_iterations", json_type_int);
	assert_string_equal(json_object_get_string(get(meta, "backend")), "replay");
	assert_type(meta, "backend_kwargs", json_type_object);
	assert_string_equal(json_object_get_string(get(meta, "environment_type")), "local");
	assert_type(meta, "environment_kwargs", json_type_object);
	get(meta, "other_backends");
	for (int i = 1; i <= 3; i++) {
		json_object *it = json_object_array_get_idx(lines, (size_t)i);
		assert_string_equal(json_object_get_string(get(it, "type")), "iteration");
		assert_int_equal(json_object_get_int(get(it, "iteration")), i);
		assert_type(it, "timestamp", json_type_string);
		assert_type(it, "prompt", json_type_array);
		json_object *p = get(it, "prompt");
		assert_true(json_object_array_length(p) >= 2);
		for (size_t k = 0; k < json_object_array_length(p); k++) {
			assert_type(json_object_array_get_idx(p, k), "role", json_type_string);
			assert_type(json_object_array_get_idx(p, k), "content", json_type_string);
		}
		assert_string_equal(
		        json_object_get_string(get(json_object_array_get_idx(p, 0), "role")),
		        "system");
		assert_type(it, "response", json_type_string);
		assert_type(it, "code_blocks", json_type_array);
		json_object *blocks = get(it, "code_blocks");
		for (size_t k = 0; k < json_object_array_length(blocks); k++)
			check_block(json_object_array_get_idx(blocks, k));
		assert_number(it, "iteration_time");
		json_object *fa = get(it, "final_answer");
		assert_true(i == 3 ? json_object_is_type(fa, json_type_string) : fa == NULL);
	}
	/* The nudged turn ran nothing; the last one ran two blocks and one sub-call. */
	assert_int_equal(
	        json_object_array_length(get(json_object_array_get_idx(lines, 2), "code_blocks")),
	        0);
	json_object *last = get(json_object_array_get_idx(lines, 3), "code_blocks");
	assert_int_equal(json_object_array_length(last), 2);
	json_object *calls = get(get(json_object_array_get_idx(last, 0), "result"), "rlm_calls");
	assert_int_equal(json_object_array_length(calls), 1);
	assert_string_equal(
	        json_object_get_string(get(json_object_array_get_idx(calls, 0), "response")),
	        "a summary");
	/* The variables after each block, as repr: the task's `context` and what the code set. */
	json_object *locals = get(get(json_object_array_get_idx(last, 0), "result"), "locals");
	assert_string_equal(json_object_get_string(get(locals, "context")), "'some context'");
	assert_string_equal(json_object_get_string(get(locals, "s")), "'a summary'");
	json_object *sum = read_summary(traj);
	assert_string_equal(json_object_get_string(get(sum, "answer")), "a summary");
	assert_null(get(sum, "error"));
	assert_string_equal(json_object_get_string(get(sum, "trajectory")), traj);
	/* --json prints the same fields, from the same builder. */
	json_object *p = json_tokener_parse(printed);
	json_object_object_foreach(p, key, v)
	{
		json_object *w = NULL;
		assert_true(json_object_object_get_ex(sum, key, &w));
		if (strcmp(key, "duration_s"))
			assert_true(json_object_equal(v, w));
	}
	json_object_put(p);
	free(printed);
	json_object *usage = get(sum, "usage");
	assert_int_equal(json_object_get_int(get(usage, "llm_calls")), 4);
	json_object *by_depth = get(usage, "calls_by_depth");
	assert_int_equal(json_object_get_int(json_object_array_get_idx(by_depth, 0)), 3);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(by_depth, 1)), 1);
	json_object_put(sum);
	json_object_put(lines);
	rlm_config_free(cfg);
}

static void failed_sub_call_has_an_empty_response_and_its_error(void **state)
{
	(void)state;
	char traj[512];
	traj_path(traj, sizeof(traj), "failed-call.jsonl");
	const struct scripted s[] = {
	        {NULL,
	         CODE("try:\n    llm_query('will fail')\nexcept RuntimeError as e:\n"
	              "    SUBMIT(answer='caught: ' + str(e))"),
	         NULL},
	        {NULL, NULL, "provider down"},
	};
	rlm_config *cfg = replay_config("failed-call-script.jsonl", s, 2, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "fail a call";
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "caught: llm_query failed: provider down");
	rlm_run_result_free(res);
	json_object *lines = read_lines(traj);
	json_object *block = json_object_array_get_idx(
	        get(json_object_array_get_idx(lines, 1), "code_blocks"), 0);
	json_object *call = json_object_array_get_idx(get(get(block, "result"), "rlm_calls"), 0);
	assert_type(call, "response", json_type_string);
	assert_string_equal(json_object_get_string(get(call, "response")), "");
	assert_non_null(strstr(json_object_get_string(get(call, "error")), "provider down"));
	assert_number(call, "execution_time");
	json_object_put(lines);
	rlm_config_free(cfg);
}

static void locals_are_capped_reprs_of_user_variables(void **state)
{
	(void)state;
	char traj[512];
	traj_path(traj, sizeof(traj), "locals.jsonl");
	const struct scripted s[] = {
	        {NULL,
	         CODE("import os\nbig = 'x' * 100000\nnums = list(range(1000))\n_hidden = 1\n"
	              "class Slow:\n    def __repr__(self):\n        while True: pass\n"
	              "slow = Slow()\nafter = 7\nSUBMIT(answer='ok')"),
	         NULL},
	};
	rlm_config *cfg = replay_config("locals-script.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "make variables";
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "ok");
	rlm_run_result_free(res);
	json_object *lines = read_lines(traj);
	json_object *block = json_object_array_get_idx(
	        get(json_object_array_get_idx(lines, 1), "code_blocks"), 0);
	json_object *locals = get(get(block, "result"), "locals");
	json_object_object_foreach(locals, key, v)
	{
		assert_true(key[0] != '_');
		assert_true(json_object_is_type(v, json_type_string));
		assert_true(json_object_get_string_len(v) <= 200);
	}
	/* The scaffold is not the user's. */
	assert_false(json_object_object_get_ex(locals, "SUBMIT", NULL));
	assert_false(json_object_object_get_ex(locals, "llm_query", NULL));
	assert_false(json_object_object_get_ex(locals, "_hidden", NULL));
	assert_string_equal(json_object_get_string(get(locals, "context")), "None");
	assert_non_null(strstr(json_object_get_string(get(locals, "os")), "<module 'os'"));
	assert_int_equal(strncmp(json_object_get_string(get(locals, "big")), "'xxxx", 5), 0);
	assert_int_equal(strncmp(json_object_get_string(get(locals, "nums")), "[0, 1, 2", 8), 0);
	/* A __repr__ that never returns costs a placeholder, not the run. */
	assert_non_null(strstr(json_object_get_string(get(locals, "slow")), "not shown"));
	assert_non_null(get(locals, "after"));
	json_object_put(lines);
	rlm_config_free(cfg);
}

static void failed_run_still_writes_its_summary(void **state)
{
	(void)state;
	char traj[512];
	traj_path(traj, sizeof(traj), "failed-run.jsonl");
	const struct scripted s[] = {{NULL, CODE("print('no submit')"), NULL}};
	rlm_config *cfg = replay_config("failed-run-script.jsonl", s, 1, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "runs out of script";
	o.max_iterations = 3;
	o.trajectory_path = traj;
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_EBUDGET);
	json_object *lines = read_lines(traj);
	assert_int_equal(json_object_array_length(lines), 2); /* metadata, the one turn */
	json_object *sum = read_summary(traj);
	assert_null(get(sum, "answer"));
	json_object *e = get(sum, "error");
	assert_string_equal(json_object_get_string(get(e, "code")), "RLM_EBUDGET");
	assert_non_null(strstr(json_object_get_string(get(e, "message")), "replay script"));
	assert_int_equal(json_object_get_int(get(sum, "iterations")), 1);
	json_object_put(sum);
	json_object_put(lines);
	rlm_config_free(cfg);
}

static void secrets_never_reach_the_trajectory(void **state)
{
	(void)state;
	const char *secret = "zq7-f3a9c1e5b2d4f60x";
	setenv("RLM_TEST_LLM_CRED", secret, 1);
	char traj[512];
	traj_path(traj, sizeof(traj), "secret.jsonl");
	const struct scripted s[] = {
	        {NULL,
	         "My key is zq7-f3a9c1e5b2d4f60x, header Authorization: Bearer "
	         "abcdef1234567890.\n" CODE("print('zq7-f3a9c1e5b2d4f60x')\nSUBMIT(answer='used "
	                                    "zq7-f3a9c1e5b2d4f60x')"),
	         NULL},
	};
	rlm_config *cfg = replay_config("secret-script.jsonl", s, 1, 0);
	set(cfg, "llm.api_key_env", "RLM_TEST_LLM_CRED");
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "echo the key";
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	rlm_run_result_free(res);
	char *text = read_text(traj);
	assert_null(strstr(text, secret));
	assert_null(strstr(text, "abcdef1234567890"));
	/* One rule (core/redact.c): the token is one "***", whatever its length. */
	assert_non_null(strstr(text, "Bearer ***"));
	assert_null(strstr(text, "Bearer ****"));
	json_object_put(read_lines(traj)); /* masking kept every line valid JSON */
	free(text);
	char summary[600];
	snprintf(summary, sizeof(summary), "%.*s.summary.json",
	         (int)(strlen(traj) - strlen(".jsonl")), traj);
	text = read_text(summary);
	assert_null(strstr(text, secret));
	assert_non_null(strstr(text, "used ***"));
	free(text);
	unsetenv("RLM_TEST_LLM_CRED");
	rlm_config_free(cfg);
}

/* Output may hold NUL bytes: the line keeps all of it (as \u0000), masked on both sides. */
static void trajectory_keeps_text_after_a_nul_and_masks_it(void **state)
{
	(void)state;
	char path[512];
	traj_path(path, sizeof(path), "nul.jsonl");
	const char *secrets[] = {"hunter2-secret-value", NULL};
	rlm_trajectory *t = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm__trajectory_open(path, secrets, &t, &err), 0);
	static const char out[] = "before\0hunter2-secret-value after\0";
	json_object *line = json_object_new_object();
	json_object_object_add(line, "type", json_object_new_string("metadata"));
	json_object_object_add(line, "stdout", json_object_new_string_len(out, sizeof(out) - 1));
	assert_int_equal(rlm__trajectory_write(t, line, &err), 0);
	json_object_put(line);
	rlm__trajectory_close(t);
	char *text = read_text(path);
	assert_non_null(strstr(text, "\"before\\u0000*** after\\u0000\""));
	free(text);
	json_object *lines = read_lines(path);
	json_object *got = get(json_object_array_get_idx(lines, 0), "stdout");
	/* All of it kept, the secret after the NUL masked: the mask is shorter than the secret. */
	static const char masked[] = "before\0*** after\0";
	assert_int_equal(json_object_get_string_len(got), sizeof(masked) - 1);
	assert_memory_equal(json_object_get_string(got), masked, sizeof(masked) - 1);
	json_object_put(lines);
	/* Not a run's trajectory: the validator is not to see it. */
	unlink(path);
}

static void summary_sidecar_is_named_after_the_trajectory(void **state)
{
	(void)state;
	char *p = rlm_trajectory_summary_path("/x/run.jsonl");
	assert_string_equal(p, "/x/run.summary.json");
	free(p);
	p = rlm_trajectory_summary_path("/x/run.log");
	assert_string_equal(p, "/x/run.log.summary.json");
	free(p);
	p = rlm_trajectory_summary_path(".jsonl");
	assert_string_equal(p, ".jsonl.summary.json");
	free(p);
}

/* ---- configuration of the LLM ---- */

static void missing_provider_says_how_to_configure_one(void **state)
{
	(void)state;
	rlm_config *cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "anything";
	rlm_run_result *res = NULL;
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_ECONFIG);
	assert_non_null(strstr(err.message, "no LLM configured: set llm.provider"));
	rlm_config_free(cfg);
}

static void key_the_provider_does_not_take_is_refused(void **state)
{
	(void)state;
	const struct scripted s[] = {{NULL, CODE("SUBMIT(answer='x')"), NULL}};
	rlm_config *cfg = replay_config("strict.jsonl", s, 1, 0);
	set(cfg, "llm.base_url", "\"http://localhost:1/v1\"");
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "anything";
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_ECONFIG);
	assert_non_null(strstr(err.message, "llm.base_url"));
	assert_non_null(strstr(err.message, "replay"));
	/* A key left at its default is fine: max_retries is 4 by default. */
	set(cfg, "llm.base_url", "null");
	set(cfg, "llm.max_retries", "4");
	res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "x");
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void inline_script_array_answers(void **state)
{
	(void)state;
	rlm_config *cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	assert_int_equal(rlm_config_apply_env(cfg, &err), 0);
	set(cfg, "llm.provider", "replay");
	set(cfg, "llm.script", "[{\"response\": \"```repl\\nSUBMIT(answer='inline')\\n```\"}]");
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "inline";
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "inline");
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void recorded_trajectory_replays_the_same_run(void **state)
{
	(void)state;
	char traj[512], again[512], quoted[600];
	traj_path(traj, sizeof(traj), "record.jsonl");
	traj_path(again, sizeof(again), "record-again.jsonl");
	const struct scripted s[] = {
	        {NULL, CODE("h = llm_query('help')"), NULL},
	        {NULL, "helped", NULL},
	        {NULL, CODE("SUBMIT(answer=h + '!')"), NULL},
	};
	rlm_config *cfg = replay_config("record-script.jsonl", s, 3, 0);
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "record me";
	o.trajectory_path = traj;
	rlm_run_result *res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "helped!");
	rlm_run_result_free(res);
	snprintf(quoted, sizeof(quoted), "\"%s\"", traj);
	set(cfg, "llm.script", quoted);
	o.trajectory_path = again;
	res = run_ok(cfg, &o);
	assert_string_equal(res->answer, "helped!");
	assert_int_equal(res->usage.llm_calls, 3);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

/* ---- pure parts: extraction and the output policy ---- */

static void extract(const char *text, int want_n, const char *const *want)
{
	char **blocks = NULL;
	int n = rlm__extract_code_blocks(text, &blocks);
	assert_int_equal(n, want_n);
	for (int i = 0; i < n; i++)
		assert_string_equal(blocks[i], want[i]);
	rlm__code_blocks_free(blocks, n);
}

static void extraction_takes_python_py_and_repl_fences(void **state)
{
	(void)state;
	const char *want[] = {"a = 1\n", "b = 2\n", "c = 3\n", "d = 4\n"};
	extract("```python\na = 1\n```\ntext\n```py\nb = 2\n```\n```repl\nc = 3\n```\n"
	        "```PYTHON3\nd = 4\n```\n",
	        4, want);
}

static void extraction_skips_other_languages_and_prose(void **state)
{
	(void)state;
	const char *want[] = {"x = 1\n"};
	extract("no code here", 0, NULL);
	extract("```bash\nls\n```\n```json\n{\"a\": 1}\n```\n```\nplain fence\n```\n"
	        "```python\nx = 1\n```",
	        1, want);
	/* A python fence shown inside another language's block is not code to run. */
	extract("```markdown\n```python\nprint('doc')\n```\n```\n", 0, NULL);
}

static void extraction_closes_only_on_a_bare_fence_line(void **state)
{
	(void)state;
	const char *want1[] = {"s = '```'\nt = \"``` not a fence\"\n"};
	extract("```python\ns = '```'\nt = \"``` not a fence\"\n```", 1, want1);
	const char *want2[] = {"doc = '''\n```python\nx()\n```\n'''\n"};
	extract("```repl\ndoc = '''\n```python\nx()\n```\n'''\n```\nafter", 1, want2);
}

static void extraction_handles_indentation_crlf_and_unclosed_blocks(void **state)
{
	(void)state;
	const char *want1[] = {"if x:\n    y = 1\n"};
	extract("1. step\n   ```python\n   if x:\n       y = 1\n   ```\n", 1, want1);
	const char *want2[] = {"a = 1\r\n"};
	extract("```python\r\na = 1\r\n```\r\n", 1, want2);
	const char *want3[] = {"print('cut off')\n"};
	extract("```repl\nprint('cut off')\n", 1, want3);
	/* An empty block is dropped. */
	extract("```python\n\n```", 0, NULL);
}

static void truncation_keeps_head_and_tail_with_counts(void **state)
{
	(void)state;
	char *t = rlm__truncate_middle("0123456789abcdefghij", 10);
	assert_string_equal(t, "01234\n... [10 of 20 characters omitted] ...\nfghij");
	free(t);
	t = rlm__truncate_middle("short", 10);
	assert_string_equal(t, "short");
	free(t);
	/* Characters, not bytes: é is two bytes and never split. */
	t = rlm__truncate_middle("éééééééééé", 4);
	assert_string_equal(t, "éé\n... [6 of 10 characters omitted] ...\néé");
	free(t);
}

static void empty_output_gets_a_hint(void **state)
{
	(void)state;
	json_object *f =
	        json_tokener_parse("{\"type\":\"result\",\"stdout\":\"\",\"stderr\":\"\"}");
	rlm_result *r = rlm__result_from_frame(f);
	json_object_put(f);
	char *s = rlm__format_result(r, 100);
	assert_non_null(strstr(s, "(no output"));
	assert_non_null(strstr(s, "print()"));
	free(s);
	rlm_result_free(r);
}

static void capped_output_reports_full_counts(void **state)
{
	(void)state;
	json_object *f = json_tokener_parse(
	        "{\"type\":\"result\",\"stdout\":\"head\\n... [90 characters omitted] ...\\ntail\","
	        "\"stderr\":\"\",\"stdout_chars\":100,\"stderr_chars\":0,\"truncated\":true}");
	rlm_result *r = rlm__result_from_frame(f);
	json_object_put(f);
	char *s = rlm__format_result(r, 1000);
	assert_non_null(strstr(s, "stdout had 100 characters"));
	free(s);
	rlm_result_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(loop_ends_on_submit),
	        cmocka_unit_test(submit_with_several_fields_answers_json),
	        cmocka_unit_test(unstamped_options_are_einval),
	        cmocka_unit_test(run_time_limit_stops_the_run),
	        cmocka_unit_test(cancel_flag_stops_the_run),
	        cmocka_unit_test(context_that_is_not_utf8_is_decoded_with_replacement),
	        cmocka_unit_test(trajectory_over_the_context_file_is_refused),
	        cmocka_unit_test(model_answer_that_is_not_utf8_is_decoded_with_replacement),
	        cmocka_unit_test(answer_without_code_gets_a_nudge_and_counts),
	        cmocka_unit_test(several_blocks_run_in_order),
	        cmocka_unit_test(nested_fences_in_a_string_are_not_split),
	        cmocka_unit_test(max_iterations_ends_with_a_marked_fallback),
	        cmocka_unit_test(replay_script_exhaustion_is_a_clear_error),
	        cmocka_unit_test(budget_exhaustion_raises_in_code_and_the_loop_goes_on),
	        cmocka_unit_test(depth_limit_degrades_rlm_query_to_llm_query),
	        cmocka_unit_test(batched_partial_failure_gives_error_items),
	        cmocka_unit_test(batched_over_budget_raises_before_any_call),
	        cmocka_unit_test(child_rlm_shares_the_sandbox_but_not_the_namespace),
	        cmocka_unit_test(context_of_several_megabytes_reaches_the_repl),
	        cmocka_unit_test(context_file_becomes_context),
	        cmocka_unit_test(trajectory_has_the_visualizer_schema),
	        cmocka_unit_test(secrets_never_reach_the_trajectory),
	        cmocka_unit_test(failed_sub_call_has_an_empty_response_and_its_error),
	        cmocka_unit_test(locals_are_capped_reprs_of_user_variables),
	        cmocka_unit_test(failed_run_still_writes_its_summary),
	        cmocka_unit_test(trajectory_keeps_text_after_a_nul_and_masks_it),
	        cmocka_unit_test(summary_sidecar_is_named_after_the_trajectory),
	        cmocka_unit_test(missing_provider_says_how_to_configure_one),
	        cmocka_unit_test(key_the_provider_does_not_take_is_refused),
	        cmocka_unit_test(inline_script_array_answers),
	        cmocka_unit_test(recorded_trajectory_replays_the_same_run),
	        cmocka_unit_test(recorded_failed_call_replays_as_a_failure),
	        cmocka_unit_test(extraction_takes_python_py_and_repl_fences),
	        cmocka_unit_test(extraction_skips_other_languages_and_prose),
	        cmocka_unit_test(extraction_closes_only_on_a_bare_fence_line),
	        cmocka_unit_test(extraction_handles_indentation_crlf_and_unclosed_blocks),
	        cmocka_unit_test(truncation_keeps_head_and_tail_with_counts),
	        cmocka_unit_test(empty_output_gets_a_hint),
	        cmocka_unit_test(capped_output_reports_full_counts),
	};
	return cmocka_run_group_tests(tests, make_scratch, remove_scratch);
}
