/* test_llm_plugins.c - the openai and anthropic LLM plugins against their fake servers.
 *
 * The plugins are loaded through the loader from $RLM_LLM_PLUGIN_DIR, exactly as the core
 * loads them; their config goes through rlm__options_apply over the config's own llm section,
 * as the core's would. The fakes (tests/fakes/, $RLM_FAKES_DIR) check every request the way
 * the real APIs do and answer a wrong one with a 400, so a passing happy path proves the
 * request shape. Faults are injected per test through the fake's stdin control channel, and
 * the fake's request log shows how many attempts were made and what was sent. The API keys
 * are fake values, still never printed: comparisons of credentials use strcmp, not the
 * assert_string_* macros that print both sides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config_internal.h"
#include "host.h"
#include "loader.h"
#include "rlm/rlm.h"

#define OPENAI_KEY    "fake-openai-key-5f3a9c1e77"
#define ANTHROPIC_KEY "fake-anthropic-key-0b8d24e6aa"
#define WRONG_KEY     "wrong-key-9e1f07c3d2b4"
#define WRONG_KEY_ENV "RLM_TEST_WRONG_LLM_KEY"
#define UNSET_KEY_ENV "RLM_TEST_UNSET_LLM_KEY"
#define N_THREADS     8

/* A fake server process: its stdin takes control lines, its stdout answers them. */
typedef struct fake {
	pid_t pid;
	FILE *in;
	FILE *out;
	char base_url[64];
} fake;

/* One provider under test: its plugin, ops and fake. */
typedef struct provider {
	const char *name;
	rlm_plugin *plugin;
	const rlm_llm_ops *ops;
	fake fake;
} provider;

static provider openai_p = {.name = "openai"};
static provider anthropic_p = {.name = "anthropic"};

/* ---- The fakes ---- */

static void fake_start(fake *f, const char *script, const char *key)
{
	const char *dir = getenv("RLM_FAKES_DIR"), *py = getenv("RLM_PYTHON");
	char path[1024], line[64];
	int to_child[2], from_child[2];

	py = py && *py ? py : "python3";
	if (!dir)
		fail_msg("RLM_FAKES_DIR is not set (ctest sets it)");
	snprintf(path, sizeof(path), "%s/%s", dir, script);
	/* Close-on-exec, so a fake started later does not hold this one's stdin open. */
	assert_int_equal(pipe2(to_child, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from_child, O_CLOEXEC), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		dup2(to_child[0], 0);
		dup2(from_child[1], 1);
		close(to_child[0]);
		close(to_child[1]);
		close(from_child[0]);
		close(from_child[1]);
		execlp(py, py, path, "--key", key, (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	f->in = fdopen(to_child[1], "w");
	f->out = fdopen(from_child[0], "r");
	assert_non_null(f->in);
	assert_non_null(f->out);
	if (!fgets(line, sizeof(line), f->out))
		fail_msg("fake %s did not print its port", path);
	snprintf(f->base_url, sizeof(f->base_url), "http://127.0.0.1:%d", atoi(line));
}

/* Closing its stdin is the fake's signal to exit. */
static void fake_stop(fake *f)
{
	if (f->in)
		fclose(f->in);
	if (f->out)
		fclose(f->out);
	if (f->pid > 0)
		waitpid(f->pid, NULL, 0);
	memset(f, 0, sizeof(*f));
}

/* Sends one control object, returns the parsed answer (caller puts it). */
static json_object *fake_cmd(fake *f, const char *json)
{
	static char line[1 << 20];
	json_object *reply;

	fprintf(f->in, "%s\n", json);
	fflush(f->in);
	if (!fgets(line, sizeof(line), f->out))
		fail_msg("fake did not answer %s", json);
	reply = json_tokener_parse(line);
	if (!reply)
		fail_msg("fake answered %s with %s", json, line);
	return reply;
}

static void fake_control(fake *f, const char *json)
{
	json_object_put(fake_cmd(f, json));
}

/* The requests the fake saw: a new reference to the "requests" array. */
static json_object *fake_requests(fake *f)
{
	json_object *root = fake_cmd(f, "{\"log\": true}"), *reqs;

	assert_true(json_object_object_get_ex(root, "requests", &reqs));
	json_object_get(reqs);
	json_object_put(root);
	return reqs;
}

static size_t fake_request_count(fake *f)
{
	json_object *reqs = fake_requests(f);
	size_t n = json_object_array_length(reqs);

	json_object_put(reqs);
	return n;
}

/* The value at a dotted path ("body.messages.0.role"); NULL when absent. */
static json_object *jpath(json_object *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *part = strtok_r(buf, ".", &save); part && o; part = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(part));
		else if (!json_object_object_get_ex(o, part, &o))
			return NULL;
	}
	return o;
}

static const char *jstr(json_object *o, const char *path)
{
	json_object *v = jpath(o, path);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* ---- Plugins and instances ---- */

static rlm_config *plugin_config(void)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	char path[1100];
	const char *dir = getenv("RLM_LLM_PLUGIN_DIR");

	if (!dir)
		fail_msg("RLM_LLM_PLUGIN_DIR is not set (ctest sets it)");
	snprintf(path, sizeof(path), "[\"%s\"]", dir);
	assert_int_equal(rlm_config_new(&cfg, &err), 0);
	if (rlm_config_set(cfg, "plugin_path", path, &err) != 0)
		fail_msg("config: %s", err.message);
	return cfg;
}

static void provider_open(provider *p, const char *fake_script, const char *key)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = plugin_config();
	const rlm_plugin_desc *d;

	if (rlm__plugin_acquire(cfg, RLM_PLUGIN_LLM, p->name, &p->plugin, &err) != 0)
		fail_msg("acquire %s: %s", p->name, err.message);
	rlm_config_free(cfg);
	d = rlm__plugin_desc(p->plugin);
	assert_int_equal(d->kind, RLM_PLUGIN_LLM);
	assert_string_equal(d->name, p->name);
	p->ops = d->ops;
	fake_start(&p->fake, fake_script, key);
}

/* The section the core would hand the plugin: the config's llm section (all its defaults,
 * nulls included) with the overrides merged in, cut to the plugin's declared keys and
 * validated against its option specs. Returns JSON text (caller frees). */
static char *section_for(const provider *p, const char *overrides_json)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = plugin_config();
	const rlm_option_spec *specs = rlm__plugin_desc(p->plugin)->options;
	json_object *llm = rlm__config_lookup(cfg, "llm"), *over, *section, *applied;
	char *text;

	assert_non_null(llm);
	over = json_tokener_parse(overrides_json);
	assert_non_null(over);
	section = json_object_new_object();
	for (const rlm_option_spec *s = specs; s->name; s++) {
		json_object *v;

		if (json_object_object_get_ex(over, s->name, &v) ||
		    json_object_object_get_ex(llm, s->name, &v))
			json_object_object_add(section, s->name, json_object_get(v));
	}
	if (rlm__options_apply(specs, section, "llm", &applied, &err) != 0)
		fail_msg("options: %s", err.message);
	text = strdup(json_object_to_json_string_ext(applied, JSON_C_TO_STRING_PLAIN));
	json_object_put(applied);
	json_object_put(section);
	json_object_put(over);
	rlm_config_free(cfg);
	return text;
}

/* An instance pointed at the provider's fake, with more options as a JSON object's members
 * (without braces, may be ""). */
static void *instance_with(provider *p, const char *more)
{
	rlm_error err = RLM_ERROR_INIT;
	char json[2048], *section;
	void *inst = NULL;
	int rc;

	snprintf(json, sizeof(json), "{\"base_url\": \"%s%s\", \"model\": \"%s\"%s%s}",
	         p->fake.base_url, p == &openai_p ? "/v1" : "",
	         p == &openai_p ? "gpt-test" : "claude-test", *more ? ", " : "", more);
	section = section_for(p, json);
	rc = p->ops->create(rlm__host(), section, &inst, &err);
	if (rc != 0)
		fail_msg("create %s %s: %s: %s", p->name, section, rlm_status_name(rc),
		         err.message);
	free(section);
	return inst;
}

static void *instance(provider *p)
{
	return instance_with(p, "");
}

static void response_init(rlm_llm_response *r)
{
	memset(r, 0, sizeof(*r));
	r->abi_version = RLM_ABI_VERSION;
	r->struct_size = sizeof(*r);
}

static void request_init(rlm_llm_request *r, const rlm_llm_message *msgs, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->abi_version = RLM_ABI_VERSION;
	r->struct_size = sizeof(*r);
	r->messages = msgs;
	r->n_messages = n;
	r->temperature = -1;
}

static int ask(provider *p, void *inst, const char *prompt, double timeout_s,
               rlm_llm_response *resp, rlm_error *err)
{
	rlm_llm_message msg = {"user", prompt};
	rlm_llm_request req;

	request_init(&req, &msg, 1);
	req.timeout_s = timeout_s;
	response_init(resp);
	return p->ops->complete(inst, &req, resp, err);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!haystack || !strstr(haystack, needle))
		fail_msg("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

static void expect_code(int rc, const rlm_error *err, int code)
{
	if (rc != code)
		fail_msg("expected %s, got %s: %s", rlm_status_name(code), rlm_status_name(rc),
		         err->message);
	assert_int_equal(err->code, code);
}

/* Asks once and expects success with the echo of prompt. */
static void expect_echo(provider *p, void *inst, const char *prompt, double timeout_s)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	char want[256];
	int rc = ask(p, inst, prompt, timeout_s, &resp, &err);

	if (rc != 0)
		fail_msg("complete: %s: %s", rlm_status_name(rc), err.message);
	snprintf(want, sizeof(want), "echo: %s", prompt);
	assert_string_equal(resp.text.data, want);
	assert_int_equal(resp.text.len, strlen(want));
	rlm__host()->free(resp.text.data);
}

static int reset_fakes(void **state)
{
	(void)state;
	fake_control(&openai_p.fake, "{\"reset\": true}");
	fake_control(&anthropic_p.fake, "{\"reset\": true}");
	return 0;
}

/* ---- Both providers: the behaviours they share, run once per provider ---- */

static void retry_after_429_then_success(provider *p)
{
	void *inst = instance(p);
	double start;

	fake_control(&p->fake, "{\"fail_next\": [429], \"retry_after\": 1}");
	start = rlm__host()->now();
	expect_echo(p, inst, "after a rate limit", 30);
	assert_true(rlm__host()->now() - start >= 1.0);
	assert_int_equal(fake_request_count(&p->fake), 2);
	p->ops->destroy(inst);
}

static void server_error_then_success(provider *p, const char *faults)
{
	void *inst = instance(p);

	fake_control(&p->fake, faults);
	expect_echo(p, inst, "after server errors", 30);
	assert_int_equal(fake_request_count(&p->fake), 3);
	p->ops->destroy(inst);
}

static void dropped_connection_then_success(provider *p)
{
	void *inst = instance(p);

	fake_control(&p->fake, "{\"fail_next\": [\"drop\"]}");
	expect_echo(p, inst, "after a dropped connection", 30);
	assert_int_equal(fake_request_count(&p->fake), 2);
	p->ops->destroy(inst);
}

static void slow_answer_times_out(provider *p)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst = instance(p);
	double start, elapsed;
	int rc;

	fake_control(&p->fake, "{\"fail_next\": [\"slow\"], \"slow_s\": 4}");
	start = rlm__host()->now();
	rc = ask(p, inst, "too slow", 1.0, &resp, &err);
	elapsed = rlm__host()->now() - start;
	if (rc != RLM_ETIMEOUT && rc != RLM_ETRANSIENT)
		fail_msg("expected a timeout, got %s: %s", rlm_status_name(rc), err.message);
	assert_null(resp.text.data);
	assert_true(elapsed >= 0.9);
	assert_true(elapsed < 3.0);
	assert_contains(err.message, p->name);
	p->ops->destroy(inst);
}

static void wrong_key_fails_fast(provider *p)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst;
	double start;
	int rc;

	setenv(WRONG_KEY_ENV, WRONG_KEY, 1);
	inst = instance_with(p, "\"api_key_env\": \"" WRONG_KEY_ENV "\"");
	start = rlm__host()->now();
	rc = ask(p, inst, "who am I", 30, &resp, &err);
	expect_code(rc, &err, RLM_EAUTH);
	assert_true(rlm__host()->now() - start < 1.0);
	assert_int_equal(fake_request_count(&p->fake), 1);
	assert_int_equal(err.http_status, 401);
	assert_true(strncmp(err.request_id, "req_", 4) == 0);
	assert_contains(err.message, WRONG_KEY_ENV);
	/* The fake echoes the key in its message; the plugin must not. */
	if (strstr(err.message, WRONG_KEY))
		fail_msg("the API key leaked into the error message");
	p->ops->destroy(inst);
	unsetenv(WRONG_KEY_ENV);
}

static void missing_key_names_the_env_var(provider *p, const char *auth_header)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	json_object *reqs;
	void *inst;
	char path[64];
	int rc;

	unsetenv(UNSET_KEY_ENV);
	inst = instance_with(p, "\"api_key_env\": \"" UNSET_KEY_ENV "\"");
	rc = ask(p, inst, "anyone there", 30, &resp, &err);
	expect_code(rc, &err, RLM_EAUTH);
	assert_contains(err.message, UNSET_KEY_ENV);
	assert_contains(err.message, "not set");
	reqs = fake_requests(&p->fake);
	assert_int_equal(json_object_array_length(reqs), 1);
	snprintf(path, sizeof(path), "0.headers.%s", auth_header);
	assert_null(jpath(reqs, path));
	json_object_put(reqs);
	p->ops->destroy(inst);
}

static void rate_limit_after_retries_is_transient(provider *p)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst = instance_with(p, "\"max_retries\": 1");
	int rc;

	fake_control(&p->fake, "{\"fail_next\": [429, 429], \"retry_after\": 0}");
	rc = ask(p, inst, "busy", 30, &resp, &err);
	expect_code(rc, &err, RLM_ETRANSIENT);
	assert_int_equal(err.http_status, 429);
	assert_int_equal(fake_request_count(&p->fake), 2);
	p->ops->destroy(inst);
}

static void server_error_after_retries_is_transient(provider *p)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst = instance_with(p, "\"max_retries\": 1");
	int rc;

	fake_control(&p->fake, "{\"fail_next\": [500, 500]}");
	rc = ask(p, inst, "broken", 30, &resp, &err);
	expect_code(rc, &err, RLM_ETRANSIENT);
	assert_int_equal(err.http_status, 500);
	assert_int_equal(fake_request_count(&p->fake), 2);
	p->ops->destroy(inst);
}

static void broken_answers_are_eproto(provider *p, const char *missing_what)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst = instance(p);
	int rc;

	fake_control(&p->fake, "{\"fail_next\": [\"malformed\", \"missing\"]}");
	rc = ask(p, inst, "garbled", 30, &resp, &err);
	expect_code(rc, &err, RLM_EPROTO);
	assert_contains(err.message, "not a JSON object");
	assert_null(resp.text.data);
	rlm_error_clear(&err);
	rc = ask(p, inst, "incomplete", 30, &resp, &err);
	expect_code(rc, &err, RLM_EPROTO);
	assert_contains(err.message, missing_what);
	p->ops->destroy(inst);
}

static void concurrent_calls_on_one_instance(provider *p);

/* ---- openai ---- */

static void test_openai_answers_with_content_usage_and_model(void **state)
{
	rlm_llm_message msgs[] = {{"system", "You are terse."}, {"user", "Say hi"}};
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_request req;
	rlm_llm_response resp;
	json_object *reqs, *r;
	void *inst = instance_with(&openai_p, "\"temperature\": 0.3, \"max_tokens\": 50");
	int rc;

	(void)state;
	fake_control(&openai_p.fake,
	             "{\"script\": [{\"content\": \"Hi.\", \"model\": \"gpt-test-2024-01-01\", "
	             "\"usage\": {\"prompt_tokens\": 11, \"completion_tokens\": 7}}]}");
	request_init(&req, msgs, 2);
	response_init(&resp);
	rc = openai_p.ops->complete(inst, &req, &resp, &err);
	if (rc != 0)
		fail_msg("complete: %s: %s", rlm_status_name(rc), err.message);
	assert_string_equal(resp.text.data, "Hi.");
	assert_int_equal(resp.text.len, 3);
	assert_int_equal(resp.prompt_tokens, 11);
	assert_int_equal(resp.completion_tokens, 7);
	assert_string_equal(resp.model, "gpt-test-2024-01-01");
	assert_string_equal(resp.finish_reason, "stop");
	rlm__host()->free(resp.text.data);

	reqs = fake_requests(&openai_p.fake);
	assert_int_equal(json_object_array_length(reqs), 1);
	r = json_object_array_get_idx(reqs, 0);
	assert_string_equal(jstr(r, "path"), "/v1/chat/completions");
	assert_string_equal(jstr(r, "method"), "POST");
	assert_true(jstr(r, "headers.authorization") &&
	            strcmp(jstr(r, "headers.authorization"), "Bearer " OPENAI_KEY) == 0);
	assert_string_equal(jstr(r, "body.model"), "gpt-test");
	assert_string_equal(jstr(r, "body.messages.0.role"), "system");
	assert_string_equal(jstr(r, "body.messages.0.content"), "You are terse.");
	assert_string_equal(jstr(r, "body.messages.1.role"), "user");
	assert_true(json_object_get_double(jpath(r, "body.temperature")) == 0.3);
	assert_int_equal(json_object_get_int(jpath(r, "body.max_tokens")), 50);
	json_object_put(reqs);
	openai_p.ops->destroy(inst);
}

static void test_openai_sends_extra_headers_and_the_requested_model(void **state)
{
	rlm_llm_message msg = {"user", "ping"};
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_request req;
	rlm_llm_response resp;
	json_object *reqs;
	void *inst = instance_with(&openai_p, "\"headers\": {\"X-Title\": \"rlm tests\"}");

	(void)state;
	request_init(&req, &msg, 1);
	req.model = "other-model";
	response_init(&resp);
	assert_int_equal(openai_p.ops->complete(inst, &req, &resp, &err), 0);
	assert_string_equal(resp.model, "other-model");
	rlm__host()->free(resp.text.data);
	reqs = fake_requests(&openai_p.fake);
	assert_string_equal(jstr(reqs, "0.headers.x-title"), "rlm tests");
	assert_string_equal(jstr(reqs, "0.body.model"), "other-model");
	assert_null(jpath(reqs, "0.body.temperature"));
	assert_null(jpath(reqs, "0.body.max_tokens"));
	json_object_put(reqs);
	openai_p.ops->destroy(inst);
}

static void test_openai_retries_429_honouring_retry_after(void **state)
{
	(void)state;
	retry_after_429_then_success(&openai_p);
}

static void test_openai_retries_500_then_succeeds(void **state)
{
	(void)state;
	server_error_then_success(&openai_p, "{\"fail_next\": [500, 503]}");
}

static void test_openai_retries_a_dropped_connection(void **state)
{
	(void)state;
	dropped_connection_then_success(&openai_p);
}

static void test_openai_slow_answer_beyond_timeout_fails(void **state)
{
	(void)state;
	slow_answer_times_out(&openai_p);
}

static void test_openai_wrong_key_is_eauth_after_one_attempt(void **state)
{
	(void)state;
	wrong_key_fails_fast(&openai_p);
}

static void test_openai_missing_key_says_which_env_var(void **state)
{
	(void)state;
	missing_key_names_the_env_var(&openai_p, "authorization");
}

static void test_openai_quota_429_is_equota(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst = instance(&openai_p);
	int rc;

	(void)state;
	/* insufficient_quota is final: the retries a passing rate limit gets would not help. */
	fake_control(&openai_p.fake,
	             "{\"fail_next\": [\"quota\", \"quota\", \"quota\", \"quota\", \"quota\"]}");
	rc = ask(&openai_p, inst, "spend", 30, &resp, &err);
	expect_code(rc, &err, RLM_EQUOTA);
	assert_int_equal(err.http_status, 429);
	assert_contains(err.message, "quota");
	assert_int_equal(fake_request_count(&openai_p.fake), 1);
	openai_p.ops->destroy(inst);
}

static void test_openai_rate_limit_after_retries_is_etransient(void **state)
{
	(void)state;
	rate_limit_after_retries_is_transient(&openai_p);
}

static void test_openai_server_error_after_retries_is_etransient(void **state)
{
	(void)state;
	server_error_after_retries_is_transient(&openai_p);
}

static void test_openai_malformed_200_is_eproto(void **state)
{
	(void)state;
	broken_answers_are_eproto(&openai_p, "choices");
}

static void test_openai_bad_request_is_einval_with_provider_message(void **state)
{
	rlm_llm_message msg = {"user", "too hot"};
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_request req;
	rlm_llm_response resp;
	void *inst = instance(&openai_p);
	int rc;

	(void)state;
	request_init(&req, &msg, 1);
	req.temperature = 5; /* the API takes 0..2 */
	response_init(&resp);
	rc = openai_p.ops->complete(inst, &req, &resp, &err);
	expect_code(rc, &err, RLM_EINVAL);
	assert_int_equal(err.http_status, 400);
	assert_contains(err.message, "Invalid 'temperature'");
	assert_int_equal(fake_request_count(&openai_p.fake), 1);
	openai_p.ops->destroy(inst);
}

static void test_openai_without_model_fails_before_sending(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst = instance_with(&openai_p, "\"model\": null");
	int rc;

	(void)state;
	rc = ask(&openai_p, inst, "which model", 30, &resp, &err);
	expect_code(rc, &err, RLM_ECONFIG);
	assert_contains(err.message, "llm.model");
	assert_int_equal(fake_request_count(&openai_p.fake), 0);
	openai_p.ops->destroy(inst);
}

static void test_openai_concurrent_calls_on_one_instance(void **state)
{
	(void)state;
	concurrent_calls_on_one_instance(&openai_p);
}

/* ---- anthropic ---- */

static void test_anthropic_answers_with_content_usage_and_model(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst = instance(&anthropic_p);
	int rc;

	(void)state;
	fake_control(&anthropic_p.fake,
	             "{\"script\": [{\"content\": [\"Hello, \", \"world\"], \"model\": "
	             "\"claude-test-20250101\", \"stop_reason\": \"max_tokens\", "
	             "\"usage\": {\"input_tokens\": 12, \"output_tokens\": 5}}]}");
	rc = ask(&anthropic_p, inst, "greet", 30, &resp, &err);
	if (rc != 0)
		fail_msg("complete: %s: %s", rlm_status_name(rc), err.message);
	assert_string_equal(resp.text.data, "Hello, world");
	assert_int_equal(resp.prompt_tokens, 12);
	assert_int_equal(resp.completion_tokens, 5);
	assert_string_equal(resp.model, "claude-test-20250101");
	assert_string_equal(resp.finish_reason, "max_tokens");
	rlm__host()->free(resp.text.data);
	anthropic_p.ops->destroy(inst);
}

static void test_anthropic_hoists_system_and_merges_same_role_turns(void **state)
{
	rlm_llm_message msgs[] = {{"system", "S1"}, {"user", "U1"},      {"system", "S2"},
	                          {"user", "U2"},   {"assistant", "A1"}, {"assistant", "A2"},
	                          {"user", "U3"}};
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_request req;
	rlm_llm_response resp;
	json_object *reqs, *r;
	void *inst = instance(&anthropic_p);
	int rc;

	(void)state;
	request_init(&req, msgs, sizeof(msgs) / sizeof(msgs[0]));
	response_init(&resp);
	rc = anthropic_p.ops->complete(inst, &req, &resp, &err);
	if (rc != 0)
		fail_msg("complete: %s: %s", rlm_status_name(rc), err.message);
	assert_string_equal(resp.text.data, "echo: U3");
	assert_string_equal(resp.finish_reason, "end_turn");
	rlm__host()->free(resp.text.data);

	reqs = fake_requests(&anthropic_p.fake);
	r = json_object_array_get_idx(reqs, 0);
	assert_string_equal(jstr(r, "path"), "/v1/messages");
	assert_true(jstr(r, "headers.x-api-key") &&
	            strcmp(jstr(r, "headers.x-api-key"), ANTHROPIC_KEY) == 0);
	assert_null(jpath(r, "headers.authorization"));
	assert_string_equal(jstr(r, "headers.anthropic-version"), "2023-06-01");
	assert_string_equal(jstr(r, "body.system"), "S1\n\nS2");
	assert_int_equal(json_object_get_int(jpath(r, "body.max_tokens")), 4096);
	assert_int_equal(json_object_array_length(jpath(r, "body.messages")), 3);
	assert_string_equal(jstr(r, "body.messages.0.role"), "user");
	assert_string_equal(jstr(r, "body.messages.0.content"), "U1\n\nU2");
	assert_string_equal(jstr(r, "body.messages.1.role"), "assistant");
	assert_string_equal(jstr(r, "body.messages.1.content"), "A1\n\nA2");
	assert_string_equal(jstr(r, "body.messages.2.content"), "U3");
	json_object_put(reqs);
	anthropic_p.ops->destroy(inst);
}

static void test_anthropic_takes_api_version_and_max_tokens_from_config(void **state)
{
	json_object *reqs;
	void *inst = instance_with(&anthropic_p, "\"api_version\": \"2023-01-01\", "
	                                         "\"max_tokens\": 77, \"temperature\": 0.5");

	(void)state;
	expect_echo(&anthropic_p, inst, "configured", 30);
	reqs = fake_requests(&anthropic_p.fake);
	assert_string_equal(jstr(reqs, "0.headers.anthropic-version"), "2023-01-01");
	assert_int_equal(json_object_get_int(jpath(reqs, "0.body.max_tokens")), 77);
	assert_true(json_object_get_double(jpath(reqs, "0.body.temperature")) == 0.5);
	assert_null(jpath(reqs, "0.body.system"));
	json_object_put(reqs);
	anthropic_p.ops->destroy(inst);
}

static void test_anthropic_retries_429_honouring_retry_after(void **state)
{
	(void)state;
	retry_after_429_then_success(&anthropic_p);
}

static void test_anthropic_retries_5xx_then_succeeds(void **state)
{
	(void)state;
	server_error_then_success(&anthropic_p, "{\"fail_next\": [500, 529]}");
}

static void test_anthropic_retries_a_dropped_connection(void **state)
{
	(void)state;
	dropped_connection_then_success(&anthropic_p);
}

static void test_anthropic_slow_answer_beyond_timeout_fails(void **state)
{
	(void)state;
	slow_answer_times_out(&anthropic_p);
}

static void test_anthropic_wrong_key_is_eauth_after_one_attempt(void **state)
{
	(void)state;
	wrong_key_fails_fast(&anthropic_p);
}

static void test_anthropic_missing_key_says_which_env_var(void **state)
{
	(void)state;
	missing_key_names_the_env_var(&anthropic_p, "x-api-key");
}

static void test_anthropic_low_credit_is_equota(void **state)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	void *inst = instance(&anthropic_p);
	int rc;

	(void)state;
	fake_control(&anthropic_p.fake, "{\"fail_next\": [\"quota\"]}");
	rc = ask(&anthropic_p, inst, "spend", 30, &resp, &err);
	expect_code(rc, &err, RLM_EQUOTA);
	assert_contains(err.message, "credit balance");
	assert_int_equal(fake_request_count(&anthropic_p.fake), 1);
	anthropic_p.ops->destroy(inst);
}

static void test_anthropic_rate_limit_after_retries_is_etransient(void **state)
{
	(void)state;
	rate_limit_after_retries_is_transient(&anthropic_p);
}

static void test_anthropic_server_error_after_retries_is_etransient(void **state)
{
	(void)state;
	server_error_after_retries_is_transient(&anthropic_p);
}

static void test_anthropic_malformed_200_is_eproto(void **state)
{
	(void)state;
	broken_answers_are_eproto(&anthropic_p, "content");
}

static void test_anthropic_refuses_a_conversation_starting_with_assistant(void **state)
{
	rlm_llm_message msgs[] = {{"system", "S"}, {"assistant", "I start"}, {"user", "U"}};
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_request req;
	rlm_llm_response resp;
	void *inst = instance(&anthropic_p);
	int rc;

	(void)state;
	request_init(&req, msgs, 3);
	response_init(&resp);
	rc = anthropic_p.ops->complete(inst, &req, &resp, &err);
	expect_code(rc, &err, RLM_EINVAL);
	assert_contains(err.message, "user");
	assert_int_equal(fake_request_count(&anthropic_p.fake), 0);
	anthropic_p.ops->destroy(inst);
}

static void test_anthropic_concurrent_calls_on_one_instance(void **state)
{
	(void)state;
	concurrent_calls_on_one_instance(&anthropic_p);
}

/* ---- Both: option names and concurrency ---- */

/* The core hands a plugin only the llm keys it declares: a name outside the llm section's
 * schema could never be set. */
static void test_option_names_are_llm_section_keys(void **state)
{
	rlm_config *cfg = plugin_config();
	json_object *llm = rlm__config_lookup(cfg, "llm");
	const provider *ps[] = {&openai_p, &anthropic_p};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		const rlm_option_spec *s = rlm__plugin_desc(ps[i]->plugin)->options;

		for (; s->name; s++)
			if (!json_object_object_get_ex(llm, s->name, NULL))
				fail_msg("%s option %s is not an llm key", ps[i]->name, s->name);
	}
	rlm_config_free(cfg);
}

struct thread_job {
	provider *p;
	void *inst;
	int index;
	int rc;
	char text[128];
	char message[RLM_ERROR_MESSAGE_MAX];
};

static void *thread_main(void *arg)
{
	struct thread_job *job = arg;
	rlm_error err = RLM_ERROR_INIT;
	rlm_llm_response resp;
	char prompt[64];

	snprintf(prompt, sizeof(prompt), "thread %d", job->index);
	job->rc = ask(job->p, job->inst, prompt, 30, &resp, &err);
	if (job->rc == 0) {
		snprintf(job->text, sizeof(job->text), "%s", resp.text.data);
		rlm__host()->free(resp.text.data);
	}
	snprintf(job->message, sizeof(job->message), "%s", err.message);
	return NULL;
}

/* N_THREADS calls at once on one instance, each answered after 300 ms: every one gets its
 * own answer, and together they take far less than one after another would. */
static void concurrent_calls_on_one_instance(provider *p)
{
	struct thread_job jobs[N_THREADS];
	pthread_t threads[N_THREADS];
	void *inst = instance(p);
	double start, elapsed;

	fake_control(&p->fake, "{\"delay_s\": 0.3}");
	start = rlm__host()->now();
	for (int i = 0; i < N_THREADS; i++) {
		jobs[i] = (struct thread_job){.p = p, .inst = inst, .index = i};
		assert_int_equal(pthread_create(&threads[i], NULL, thread_main, &jobs[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(threads[i], NULL);
	elapsed = rlm__host()->now() - start;
	for (int i = 0; i < N_THREADS; i++) {
		char want[64];

		if (jobs[i].rc != 0)
			fail_msg("thread %d: %s: %s", i, rlm_status_name(jobs[i].rc),
			         jobs[i].message);
		snprintf(want, sizeof(want), "echo: thread %d", i);
		assert_string_equal(jobs[i].text, want);
	}
	assert_int_equal(fake_request_count(&p->fake), N_THREADS);
	if (elapsed >= N_THREADS * 0.3 / 2)
		fail_msg("%d concurrent calls took %.2f s: they ran one after another", N_THREADS,
		         elapsed);
	p->ops->destroy(inst);
}

/* ---- Setup ---- */

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	setenv("OPENAI_API_KEY", OPENAI_KEY, 1);
	setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY, 1);
	provider_open(&openai_p, "openai_server.py", OPENAI_KEY);
	provider_open(&anthropic_p, "anthropic_server.py", ANTHROPIC_KEY);
	return 0;
}

static int group_teardown(void **state)
{
	provider *ps[] = {&openai_p, &anthropic_p};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		fake_stop(&ps[i]->fake);
		if (ps[i]->plugin)
			rlm__plugin_release(ps[i]->plugin);
	}
	return 0;
}

#define LLM_TEST(f) cmocka_unit_test_setup(f, reset_fakes)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        LLM_TEST(test_option_names_are_llm_section_keys),
	        LLM_TEST(test_openai_answers_with_content_usage_and_model),
	        LLM_TEST(test_openai_sends_extra_headers_and_the_requested_model),
	        LLM_TEST(test_openai_retries_429_honouring_retry_after),
	        LLM_TEST(test_openai_retries_500_then_succeeds),
	        LLM_TEST(test_openai_retries_a_dropped_connection),
	        LLM_TEST(test_openai_slow_answer_beyond_timeout_fails),
	        LLM_TEST(test_openai_wrong_key_is_eauth_after_one_attempt),
	        LLM_TEST(test_openai_missing_key_says_which_env_var),
	        LLM_TEST(test_openai_quota_429_is_equota),
	        LLM_TEST(test_openai_rate_limit_after_retries_is_etransient),
	        LLM_TEST(test_openai_server_error_after_retries_is_etransient),
	        LLM_TEST(test_openai_malformed_200_is_eproto),
	        LLM_TEST(test_openai_bad_request_is_einval_with_provider_message),
	        LLM_TEST(test_openai_without_model_fails_before_sending),
	        LLM_TEST(test_openai_concurrent_calls_on_one_instance),
	        LLM_TEST(test_anthropic_answers_with_content_usage_and_model),
	        LLM_TEST(test_anthropic_hoists_system_and_merges_same_role_turns),
	        LLM_TEST(test_anthropic_takes_api_version_and_max_tokens_from_config),
	        LLM_TEST(test_anthropic_retries_429_honouring_retry_after),
	        LLM_TEST(test_anthropic_retries_5xx_then_succeeds),
	        LLM_TEST(test_anthropic_retries_a_dropped_connection),
	        LLM_TEST(test_anthropic_slow_answer_beyond_timeout_fails),
	        LLM_TEST(test_anthropic_wrong_key_is_eauth_after_one_attempt),
	        LLM_TEST(test_anthropic_missing_key_says_which_env_var),
	        LLM_TEST(test_anthropic_low_credit_is_equota),
	        LLM_TEST(test_anthropic_rate_limit_after_retries_is_etransient),
	        LLM_TEST(test_anthropic_server_error_after_retries_is_etransient),
	        LLM_TEST(test_anthropic_malformed_200_is_eproto),
	        LLM_TEST(test_anthropic_refuses_a_conversation_starting_with_assistant),
	        LLM_TEST(test_anthropic_concurrent_calls_on_one_instance),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
