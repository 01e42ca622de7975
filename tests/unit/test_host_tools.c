/* test_host_tools.c - the two ways a harness plugs its own code into rlm, on the local
 * backend: host tools sandbox code calls by name (rlm_interp_register_tool), and an LLM
 * that is a function in the caller's process (rlm_run_options.llm). */
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

#include "rlm/rlm.h"

static rlm_config *local_config(void)
{
	rlm_config *cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) || rlm_config_set(cfg, "backend", "local", &err))
		fail_msg("config: %s", err.message);
	return cfg;
}

static rlm_interp *open_local(void)
{
	rlm_config *cfg = local_config();
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(cfg, &in, &err))
		fail_msg("rlm_interp_open: %s", err.message);
	rlm_config_free(cfg);
	return in;
}

static rlm_result *run_cell(rlm_interp *in, const char *code, const char *vars)
{
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_execute(in, code, vars, &r, &err))
		fail_msg("execute: %s", err.message);
	return r;
}

/* add(a, b) -> a + b; records the name and the arguments it was called with. */
struct calls {
	int n;
	char name[64];
	char args[256];
	char kwargs[256];
};

static int add_tool(void *ctx, const char *name, const char *args_json, const char *kwargs_json,
                    char **value_json, char **error_message)
{
	struct calls *c = ctx;
	c->n++;
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->args, sizeof(c->args), "%s", args_json);
	snprintf(c->kwargs, sizeof(c->kwargs), "%s", kwargs_json);
	json_object *a = json_tokener_parse(args_json);
	json_object *k = json_tokener_parse(kwargs_json);
	json_object *b = NULL;
	long sum = 0;
	for (size_t i = 0; i < json_object_array_length(a); i++)
		sum += json_object_get_int64(json_object_array_get_idx(a, i));
	if (json_object_object_get_ex(k, "b", &b))
		sum += json_object_get_int64(b);
	json_object_put(a);
	json_object_put(k);
	char text[64];
	snprintf(text, sizeof(text), "%ld", sum);
	/* What a binding without malloc does: memory from rlm_alloc. */
	*value_json = rlm_alloc(strlen(text) + 1);
	strcpy(*value_json, text);
	(void)error_message;
	return 0;
}

static int failing_tool(void *ctx, const char *name, const char *args_json, const char *kwargs_json,
                        char **value_json, char **error_message)
{
	(void)ctx;
	(void)args_json;
	(void)kwargs_json;
	(void)value_json;
	char msg[128];
	snprintf(msg, sizeof(msg), "%s: the database is down", name);
	*error_message = strdup(msg);
	return RLM_EBACKEND;
}

static void register_ok(rlm_interp *in, const char *name, const char *doc, rlm_call_handler fn,
                        void *ctx)
{
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_register_tool(in, name, doc, fn, ctx, &err))
		fail_msg("register %s: %s", name, err.message);
}

static void tool_call_round_trips_arguments_and_result(void **state)
{
	(void)state;
	rlm_interp *in = open_local();
	struct calls c = {0};
	register_ok(in, "add", "add(a, b): the sum", add_tool, &c);
	rlm_result *r =
	        run_cell(in, "SUBMIT(total=add(2, b=40), kind=type(add(1)).__name__)", NULL);
	assert_null(r->error);
	assert_string_equal(r->submit_json, "{\"total\":42,\"kind\":\"int\"}");
	assert_int_equal(c.n, 2);
	assert_int_equal(r->host_calls, 2);
	rlm_result_free(r);
	r = run_cell(in, "add('x', b=1) if False else add(5)", NULL);
	assert_string_equal(r->value, "5");
	assert_string_equal(c.name, "add");
	assert_string_equal(c.args, "[5]");
	assert_string_equal(c.kwargs, "{}");
	rlm_result_free(r);
	rlm_interp_close(in);
}

static void failing_tool_raises_runtime_error_in_the_cell(void **state)
{
	(void)state;
	rlm_interp *in = open_local();
	register_ok(in, "lookup", NULL, failing_tool, NULL);
	rlm_result *r = run_cell(in,
	                         "try:\n    lookup('k')\nexcept RuntimeError as e:\n"
	                         "    SUBMIT(caught=str(e))",
	                         NULL);
	assert_null(r->error);
	assert_string_equal(r->submit_json, "{\"caught\":\"lookup: the database is down\"}");
	rlm_result_free(r);
	/* The interpreter keeps serving. */
	r = run_cell(in, "1 + 1", NULL);
	assert_string_equal(r->value, "2");
	rlm_result_free(r);
	rlm_interp_close(in);
}

static void tools_survive_rebinding_and_refuse_variables(void **state)
{
	(void)state;
	rlm_interp *in = open_local();
	struct calls c = {0};
	register_ok(in, "add", NULL, add_tool, &c);
	rlm_result *r = run_cell(in, "add = 5\ndel add", NULL);
	assert_null(r->error);
	rlm_result_free(r);
	r = run_cell(in, "add(1, 2)", NULL);
	assert_null(r->error);
	assert_string_equal(r->value, "3");
	rlm_result_free(r);
	r = run_cell(in, "1", "{\"add\": 1}");
	assert_non_null(r->error);
	assert_string_equal(r->error->type, "ValueError");
	assert_non_null(strstr(r->error->message, "host tool"));
	rlm_result_free(r);
	rlm_interp_close(in);
}

static void removed_tool_is_gone_from_the_next_cell(void **state)
{
	(void)state;
	rlm_interp *in = open_local();
	struct calls c = {0};
	register_ok(in, "add", NULL, add_tool, &c);
	rlm_result *r = run_cell(in, "keep = add\nkeep(1)", NULL);
	assert_string_equal(r->value, "1");
	rlm_result_free(r);
	register_ok(in, "add", NULL, NULL, NULL);
	r = run_cell(in, "add(1)", NULL);
	assert_non_null(r->error);
	assert_string_equal(r->error->type, "NameError");
	rlm_result_free(r);
	/* A copy kept by the code cannot reach the host any more either. */
	r = run_cell(in, "keep(1)", NULL);
	assert_non_null(r->error);
	assert_string_equal(r->error->type, "RuntimeError");
	assert_non_null(strstr(r->error->message, "no host tool named add"));
	assert_int_equal(c.n, 1);
	rlm_result_free(r);
	rlm_interp_close(in);
}

static void tools_reach_child_scopes(void **state)
{
	(void)state;
	rlm_interp *in = open_local();
	struct calls c = {0};
	register_ok(in, "add", NULL, add_tool, &c);
	rlm_exec_options o = RLM_EXEC_OPTIONS_INIT;
	o.scope = "child-1";
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_interp_execute_ex(in, "add(20, 22)", &o, &r, &err), 0);
	assert_null(r->error);
	assert_string_equal(r->value, "42");
	rlm_result_free(r);
	rlm_interp_close(in);
}

static void bad_tool_names_are_refused(void **state)
{
	(void)state;
	rlm_interp *in = open_local();
	const char *bad[] = {"",         "1x",    "a-b",    "class",       "SUBMIT", "llm_query",
	                     "__init__", "print", "VOLUME", "caf\xc3\xa9", NULL};
	for (const char **n = bad; *n; n++) {
		rlm_error err = RLM_ERROR_INIT;
		assert_int_equal(rlm_interp_register_tool(in, *n, NULL, add_tool, NULL, &err),
		                 RLM_EINVAL);
		assert_true(err.message[0] != '\0');
	}
	char long_name[80];
	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_interp_register_tool(in, long_name, NULL, add_tool, NULL, &err),
	                 RLM_EINVAL);
	/* Nothing was registered: a cell sees no tool. */
	rlm_result *r = run_cell(in, "'add' in globals()", NULL);
	assert_string_equal(r->value, "False");
	rlm_result_free(r);
	rlm_interp_close(in);
}

/* ---- an LLM in the caller's process ---- */

struct policy {
	pthread_mutex_t lock;
	int turns;       /* calls with more than one message (the model's own turns) */
	int subcalls;    /* calls with one user message (llm_query) */
	char model[64];  /* the model of the last call */
	int saw_tools;   /* the system prompt listed the host tool */
	int fail;        /* fail every call with RLM_EAUTH */
	const char *say; /* the root's first answer */
};

static int policy_llm(void *ctx, const rlm_llm_message *msgs, size_t n, const char *model,
                      char **text, rlm_error *err)
{
	struct policy *p = ctx;
	pthread_mutex_lock(&p->lock);
	snprintf(p->model, sizeof(p->model), "%s", model ? model : "(none)");
	if (p->fail) {
		pthread_mutex_unlock(&p->lock);
		err->http_status = 401;
		snprintf(err->message, sizeof(err->message), "policy server refused the key");
		return RLM_EAUTH;
	}
	const char *answer;
	if (n == 1 && !strcmp(msgs[0].role, "user")) {
		p->subcalls++;
		answer = "pong";
	} else {
		p->turns++;
		p->saw_tools |= !strcmp(msgs[0].role, "system") &&
		                strstr(msgs[0].content, "`add`: add(a, b): the sum") != NULL;
		answer = p->say;
	}
	pthread_mutex_unlock(&p->lock);
	*text = strdup(answer);
	return 0;
}

static void run_with_llm_callback_answers_turns_and_subcalls(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_config_set(cfg, "llm.model", "policy-7b", &err), 0);
	struct policy p = {.lock = PTHREAD_MUTEX_INITIALIZER,
	                   .say = "```repl\nr = llm_query('ping')\nSUBMIT(answer=r + '!')\n```"};
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "say pong";
	o.llm = policy_llm;
	o.llm_ctx = &p;
	rlm_run_result *res = NULL;
	int rc = rlm_run(cfg, &o, &res, &err);
	if (rc)
		fail_msg("rlm_run: %s", err.message);
	assert_string_equal(res->answer, "pong!");
	assert_int_equal(p.turns, 1);
	assert_int_equal(p.subcalls, 1);
	assert_string_equal(p.model, "policy-7b");
	assert_int_equal(res->usage.llm_calls, 2);
	assert_int_equal(res->usage.calls_by_depth[0], 1);
	assert_int_equal(res->usage.calls_by_depth[1], 1);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
}

static void run_with_llm_callback_failure_returns_its_error(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	struct policy p = {.lock = PTHREAD_MUTEX_INITIALIZER, .fail = 1};
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "anything";
	o.llm = policy_llm;
	o.llm_ctx = &p;
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	assert_int_equal(rlm_run(cfg, &o, &res, &err), RLM_EAUTH);
	assert_null(res);
	assert_int_equal(err.code, RLM_EAUTH);
	assert_int_equal(err.http_status, 401);
	assert_non_null(strstr(err.message, "policy server refused the key"));
	rlm_config_free(cfg);
}

static void run_tells_the_model_about_the_interpreters_tools(void **state)
{
	(void)state;
	rlm_config *cfg = local_config();
	rlm_interp *in = open_local();
	struct calls c = {0};
	register_ok(in, "add", "add(a, b): the sum", add_tool, &c);
	struct policy p = {.lock = PTHREAD_MUTEX_INITIALIZER,
	                   .say = "```repl\nSUBMIT(answer=str(add(40, 2)))\n```"};
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = "add";
	o.llm = policy_llm;
	o.llm_ctx = &p;
	o.interp = in;
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_run(cfg, &o, &res, &err))
		fail_msg("rlm_run: %s", err.message);
	assert_string_equal(res->answer, "42");
	assert_true(p.saw_tools);
	assert_int_equal(c.n, 1);
	assert_string_equal(p.model, "(none)");
	rlm_run_result_free(res);
	rlm_interp_close(in);
	rlm_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(tool_call_round_trips_arguments_and_result),
	        cmocka_unit_test(failing_tool_raises_runtime_error_in_the_cell),
	        cmocka_unit_test(tools_survive_rebinding_and_refuse_variables),
	        cmocka_unit_test(removed_tool_is_gone_from_the_next_cell),
	        cmocka_unit_test(tools_reach_child_scopes),
	        cmocka_unit_test(bad_tool_names_are_refused),
	        cmocka_unit_test(run_with_llm_callback_answers_turns_and_subcalls),
	        cmocka_unit_test(run_with_llm_callback_failure_returns_its_error),
	        cmocka_unit_test(run_tells_the_model_about_the_interpreters_tools),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
