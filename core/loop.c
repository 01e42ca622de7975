/* loop.c - rlm_run: the RLM loop of DESIGN.md section 5.
 *
 * One run owns an interpreter, the LLM instances and the shared budget. A "frame" is one RLM:
 * the root, or a child started by rlm_query, which runs in the same sandbox in a namespace of
 * its own (rlm_exec_options.scope) on the same thread, inside the host call that asked for
 * it. Host calls from sandbox code land in on_host_call, which serves the frame running now.
 * Only llm_query_batched uses other threads, and they only call the LLM plugin: every counter
 * is updated on the run's thread after they are joined. */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"
#include "interp_internal.h"
#include "llm.h"
#include "prompt.h"
#include "protocol.h"
#include "rlm/rlm.h"
#include "trajectory.h"
#include "util.h"

/* Where the root's context is uploaded in the sandbox (relative: its work directory). */
#define CONTEXT_REMOTE_PATH "rlm_context.txt"
/* How much of the context the host keeps for the first message's preview. */
#define CONTEXT_HEAD_BYTES 4096

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A conversation: role strings are static, contents are malloc'ed. With a trajectory, each
 * message's masked {role, content} object is made once and reused by every later line's
 * "prompt" (masking is the costly part of writing a line). */
struct history {
	rlm_llm_message *m;
	json_object **masked;
	size_t n, cap;
};

struct frame {
	struct run *run;
	int depth;
	const char *scope; /* NULL: the interpreter's main namespace */
	char scope_name[32];
	struct history h;
	json_object *calls; /* rlm_calls of the block running now, for the trajectory */
	json_object *lines; /* a child's iteration records (the root writes its own to the file) */
	int iterations;
	char *answer;
	char *submit_json;
	int fallback;
};

struct run {
	const rlm_config *cfg;
	const rlm_run_options *opts;
	rlm_interp *interp;
	int own_interp;
	rlm_llm *llm;          /* the root's turns */
	rlm_llm *sub;          /* sub-calls and children's turns: sub_llm, or llm */
	const char *sub_model; /* sub_llm.model when sub_llm has no provider of its own */
	rlm_trajectory *traj;  /* NULL: no trajectory, and no records are built */
	long max_iterations;
	long max_calls;
	long max_depth;
	long max_output;
	double exec_timeout_s;
	double llm_timeout_s;
	double deadline; /* rlm_now() when the whole run must stop; 0: none */
	long concurrency;
	int nested_ok;   /* the backend can run a child's cells inside a host call */
	long calls_used; /* against max_calls */
	rlm_run_usage usage;
	int child_seq;
	struct frame *current; /* the RLM whose code is running */
	const char *ctx_data;  /* the root's context bytes (kept to reload after a restart) */
	size_t ctx_len;
	char *ctx_owned;  /* ctx_data when read from a file */
	char *tools_text; /* the interpreter's host tools, for the system prompt; NULL: none */
};

/* ---- small helpers ---- */

static char *json_dup_text(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);
	return s ? strdup(s) : NULL;
}

/* A malloc'ed JSON string literal holding s. */
static char *json_quote(const char *s)
{
	json_object *o = json_object_new_string(s ? s : "");
	char *q = json_dup_text(o);
	json_object_put(o);
	return q;
}

static char *printf_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *printf_dup(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (p) {
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return p;
}

static json_object *json_or_null_string(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/* Adds a token count the provider reported; an unknown one (< 0) is left out. */
static void add_tokens(json_object *o, const char *key, long n)
{
	if (n >= 0)
		json_object_object_add(o, key, json_object_new_int64(n));
}

static int history_push(struct history *h, const char *role, const char *content)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		rlm_llm_message *m = realloc(h->m, cap * sizeof(*m));
		if (m)
			h->m = m;
		json_object **j = m ? realloc(h->masked, cap * sizeof(*j)) : NULL;
		if (!j)
			return RLM_ENOMEM;
		h->masked = j;
		h->cap = cap;
	}
	h->masked[h->n] = NULL;
	char *copy = strdup(content ? content : "");
	if (!copy)
		return RLM_ENOMEM;
	h->m[h->n].role = role;
	h->m[h->n].content = copy;
	h->n++;
	return 0;
}

static void history_free(struct history *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free((char *)h->m[i].content);
		json_object_put(h->masked[i]);
	}
	free(h->m);
	free(h->masked);
	memset(h, 0, sizeof(*h));
}

/* The conversation as [{role, content}], as the visualizer reads "prompt". */
static json_object *history_json(struct history *h, const rlm_trajectory *t)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < h->n; i++) {
		if (!h->masked[i]) {
			json_object *m = json_object_new_object();
			json_object_object_add(m, "role", rlm__trajectory_string(t, h->m[i].role));
			json_object_object_add(m, "content",
			                       rlm__trajectory_string(t, h->m[i].content));
			h->masked[i] = m;
		}
		json_object_array_add(a, json_object_get(h->masked[i]));
	}
	return a;
}

static void frame_free(struct frame *f)
{
	history_free(&f->h);
	json_object_put(f->calls);
	json_object_put(f->lines);
	free(f->answer);
	free(f->submit_json);
}

/* ---- LLM calls, budget, usage ---- */

/* text[0..len) with U+FFFD in place of each byte that is not part of valid UTF-8, malloc'ed
 * and NUL-terminated, *out_len its length, *bad the number replaced, *first the offset of the
 * first; NULL when out of memory. */
static char *utf8_repaired(const char *text, size_t len, size_t *out_len, size_t *bad,
                           size_t *first)
{
	rlm_sb sb = {0};
	const char *p = text, *end = text + len;
	size_t at = rlm_utf8_invalid_at(p, len);
	*bad = 0;
	*first = at;
	while (at != RLM_UTF8_VALID) {
		if (rlm_sb_append(&sb, p, at) || rlm_sb_append(&sb, "\xef\xbf\xbd", 3))
			goto oom;
		(*bad)++;
		p += at + 1;
		at = rlm_utf8_invalid_at(p, (size_t)(end - p));
	}
	if (rlm_sb_append(&sb, p, (size_t)(end - p)) || rlm_sb_append(&sb, "", 0))
		goto oom;
	*out_len = sb.len;
	return rlm_sb_take(&sb);
oom:
	rlm_sb_free(&sb);
	return NULL;
}

/* A step's timeout cut to what is left of the run's deadline (a little at least, so the
 * step fails on its own timeout instead of being refused). */
static double within_deadline(const struct run *r, double timeout_s)
{
	if (r->deadline <= 0)
		return timeout_s;
	double left = r->deadline - rlm_now();
	if (left < 0.5)
		left = 0.5;
	return left < timeout_s ? left : timeout_s;
}

/* One completion with the run's per-call timeout; *secs is the time inside the plugin. */
static int ask(struct run *r, rlm_llm *llm, const char *model, const rlm_llm_message *msgs,
               size_t n, rlm_llm_response *resp, double *secs, rlm_error *err)
{
	rlm_llm_request req = {
	        .abi_version = RLM_ABI_VERSION,
	        .struct_size = sizeof(req),
	        .messages = msgs,
	        .n_messages = n,
	        .model = model,
	        .timeout_s = within_deadline(r, r->llm_timeout_s),
	        .temperature = -1,
	        .max_tokens = 0,
	        .cancel = r->opts->cancel,
	};
	double t0 = rlm_now();
	int rc = rlm__llm_complete(llm, &req, resp, err);
	*secs = rlm_now() - t0;
	if (rc == 0 && resp->text.data &&
	    rlm_utf8_invalid_at(resp->text.data, resp->text.len) != RLM_UTF8_VALID) {
		/* The answer goes back into the history, which a provider would refuse. */
		size_t len, bad, first;
		char *fixed = utf8_repaired(resp->text.data, resp->text.len, &len, &bad, &first);
		if (!fixed)
			return rlm_error_set(err, RLM_ENOMEM, "out of memory");
		rlm_log(RLM_LOG_WARN, "run",
		        "the model's answer is not UTF-8 (first bad byte at offset %zu, %zu in "
		        "all): "
		        "decoded with U+FFFD replacing each bad byte",
		        first, bad);
		rlm__host()->free(resp->text.data);
		resp->text.data = rlm__host()->alloc(len + 1);
		if (!resp->text.data) {
			free(fixed);
			resp->text.len = 0;
			return rlm_error_set(err, RLM_ENOMEM, "out of memory");
		}
		memcpy(resp->text.data, fixed, len + 1);
		resp->text.len = len;
		free(fixed);
	}
	return rc;
}

static void note_usage(struct run *r, int depth, const rlm_llm_response *resp)
{
	r->usage.llm_calls++;
	r->usage.calls_by_depth[depth < RLM_RUN_DEPTHS ? depth : RLM_RUN_DEPTHS - 1]++;
	if (resp && resp->prompt_tokens > 0)
		r->usage.prompt_tokens += resp->prompt_tokens;
	if (resp && resp->completion_tokens > 0)
		r->usage.completion_tokens += resp->completion_tokens;
}

/* Takes n calls from the shared budget, or explains why not (*why malloc'ed). */
static int budget_take(struct run *r, long n, const char *what, char **why)
{
	if (r->calls_used + n > r->max_calls) {
		if (n == 1)
			*why = printf_dup("LLM call budget exhausted: %ld of %ld calls used",
			                  r->calls_used, r->max_calls);
		else
			*why = printf_dup(
			        "LLM call budget exhausted: %ld of %ld calls used, and %s "
			        "needs %ld",
			        r->calls_used, r->max_calls, what, n);
		return RLM_EBUDGET;
	}
	r->calls_used += n;
	r->usage.budget_calls += n;
	return 0;
}

/* Adds a sub-call to the record of the block running now. A failed call has response ""
 * and the reason in "error" (the visualizer reads response as a string). */
static void record_call(struct frame *f, const char *type, const char *prompt,
                        const rlm_llm_response *resp, const char *error, double secs)
{
	if (!f->run->traj || !f->calls)
		return;
	const char *text = !error && resp && resp->text.data ? resp->text.data : "";
	json_object *c = json_object_new_object();
	json_object_object_add(c, "type", json_object_new_string(type));
	json_object_object_add(c, "depth", json_object_new_int(f->depth + 1));
	json_object_object_add(c, "prompt", json_object_new_string(prompt ? prompt : ""));
	json_object_object_add(c, "response", json_object_new_string(text));
	add_tokens(c, "prompt_tokens", resp ? resp->prompt_tokens : -1);
	add_tokens(c, "completion_tokens", resp ? resp->completion_tokens : -1);
	json_object_object_add(c, "execution_time", json_object_new_double(secs));
	if (resp && resp->model[0])
		json_object_object_add(c, "model", json_object_new_string(resp->model));
	if (error)
		json_object_object_add(c, "error", json_object_new_string(error));
	json_object_array_add(f->calls, c);
}

/* ---- host calls: llm_query, llm_query_batched, rlm_query ---- */

static int sub_query(struct run *r, struct frame *f, const char *type, const char *prompt,
                     const char *model, char **value, char **why)
{
	int rc = budget_take(r, 1, type, why);
	if (rc)
		return rc;
	rlm_llm_message m = {"user", prompt};
	rlm_llm_response resp;
	rlm_error err = RLM_ERROR_INIT;
	double secs = 0;
	rc = ask(r, r->sub, model ? model : r->sub_model, &m, 1, &resp, &secs, &err);
	note_usage(r, f->depth + 1, rc ? NULL : &resp);
	record_call(f, type, prompt, rc ? NULL : &resp, rc ? err.message : NULL, secs);
	if (rc)
		*why = printf_dup("%s failed: %s", type, err.message);
	else if (!(*value = json_quote(resp.text.data)))
		rc = RLM_ENOMEM;
	rlm__llm_response_clear(&resp);
	return rc;
}

struct batch_item {
	const char *prompt;
	rlm_llm_response resp;
	rlm_error err;
	int rc;
	double secs;
};

struct batch {
	struct run *run;
	const char *model;
	struct batch_item *items;
	size_t n;
	atomic_size_t next;
};

/* Takes items off the shared index until none is left. Touches nothing but its items. */
static void *batch_worker(void *arg)
{
	struct batch *b = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->n)
			break;
		struct batch_item *it = &b->items[i];
		rlm_llm_message m = {"user", it->prompt};
		it->rc = ask(b->run, b->run->sub, b->model, &m, 1, &it->resp, &it->secs, &it->err);
	}
	return NULL;
}

static void batch_run(struct batch *b, long concurrency)
{
	size_t nthreads = b->n < (size_t)concurrency ? b->n : (size_t)concurrency;
	pthread_t tids[64];
	size_t started = 0;
	if (nthreads > sizeof(tids) / sizeof(tids[0]))
		nthreads = sizeof(tids) / sizeof(tids[0]);
	/* This thread works too, so nthreads - 1 helpers; if one cannot start, fewer work. */
	for (size_t i = 1; i < nthreads; i++)
		if (pthread_create(&tids[started], NULL, batch_worker, b) == 0)
			started++;
	batch_worker(b);
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
}

static int batched_query(struct run *r, struct frame *f, json_object *prompts, const char *model,
                         char **value, char **why)
{
	size_t n = json_object_array_length(prompts);
	if (n == 0) {
		*value = strdup("[]");
		return *value ? 0 : RLM_ENOMEM;
	}
	/* The whole batch or nothing: checked before any call goes out. */
	int rc = budget_take(r, (long)n, "llm_query_batched", why);
	if (rc)
		return rc;
	struct batch b = {.run = r, .model = model ? model : r->sub_model, .n = n};
	atomic_init(&b.next, 0);
	b.items = calloc(n, sizeof(*b.items));
	if (!b.items)
		return RLM_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		b.items[i].prompt = json_object_get_string(json_object_array_get_idx(prompts, i));
		if (!b.items[i].prompt)
			b.items[i].prompt = "";
	}
	batch_run(&b, r->concurrency);
	json_object *out = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct batch_item *it = &b.items[i];
		note_usage(r, f->depth + 1, it->rc ? NULL : &it->resp);
		record_call(f, "llm_query_batched", it->prompt, it->rc ? NULL : &it->resp,
		            it->rc ? it->err.message : NULL, it->secs);
		if (it->rc) {
			char *text = printf_dup("[ERROR] %s", it->err.message);
			json_object_array_add(out, json_object_new_string(text ? text : "[ERROR]"));
			free(text);
		} else {
			json_object_array_add(out, json_object_new_string(it->resp.text.data));
		}
		rlm__llm_response_clear(&it->resp);
	}
	free(b.items);
	*value = json_dup_text(out);
	json_object_put(out);
	return *value ? 0 : RLM_ENOMEM;
}

static int frame_loop(struct run *r, struct frame *f, const char *task,
                      const struct rlm_context_info *ci, rlm_error *err);

/* What the model is told about a child's context, a JSON value from the parent's code. */
static void describe_value(json_object *v, struct rlm_context_info *ci, char **text)
{
	*text = NULL;
	memset(ci, 0, sizeof(*ci));
	switch (json_object_get_type(v)) {
	case json_type_null: return; /* no context */
	case json_type_string:
		ci->type = "str";
		ci->head = json_object_get_string(v);
		ci->head_len = (size_t)json_object_get_string_len(v);
		ci->length = rlm__utf8_chars(ci->head, ci->head_len);
		ci->lines = ci->head_len ? 1 : 0;
		for (size_t i = 0; i + 1 < ci->head_len; i++)
			ci->lines += ci->head[i] == '\n';
		return;
	case json_type_array:
		ci->type = "list";
		ci->length = json_object_array_length(v);
		break;
	case json_type_object:
		ci->type = "dict";
		ci->length = (size_t)json_object_object_length(v);
		break;
	case json_type_boolean: ci->type = "bool"; break;
	case json_type_int: ci->type = "int"; break;
	case json_type_double: ci->type = "float"; break;
	}
	*text = json_dup_text(v);
	ci->head = *text;
	ci->head_len = *text ? strlen(*text) : 0;
}

/* Puts a child's context into its namespace: the value travels as an exec variable. */
static int load_child_context(struct run *r, struct frame *c, json_object *context, rlm_error *err)
{
	json_object *vars = json_object_new_object();
	json_object_object_add(vars, "context", json_object_get(context));
	char *vars_json = json_dup_text(vars);
	json_object_put(vars);
	if (!vars_json)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	rlm_exec_options eo = RLM_EXEC_OPTIONS_INIT;
	eo.vars_json = vars_json;
	eo.scope = c->scope;
	eo.timeout_s = within_deadline(r, r->exec_timeout_s);
	rlm_result *res = NULL;
	int rc = rlm_interp_execute_ex(r->interp, "pass", &eo, &res, err);
	free(vars_json);
	if (!rc && res->error)
		rc = rlm_error_set(err, RLM_EBACKEND, "setting up the child's namespace failed: %s",
		                   res->error->line);
	rlm_result_free(res);
	return rc;
}

static int child_query(struct run *r, struct frame *parent, const char *prompt,
                       json_object *context, char **value, char **why)
{
	if (r->calls_used >= r->max_calls)
		return budget_take(r, 1, "rlm_query", why);
	struct frame c = {.run = r, .depth = parent->depth + 1};
	snprintf(c.scope_name, sizeof(c.scope_name), "child-%d", ++r->child_seq);
	c.scope = c.scope_name;
	if (r->traj)
		c.lines = json_object_new_array();
	rlm_run_usage before = r->usage;
	double t0 = rlm_now();
	rlm_error err = RLM_ERROR_INIT;
	int rc = load_child_context(r, &c, context, &err);
	if (!rc) {
		struct rlm_context_info ci;
		char *text = NULL;
		describe_value(context, &ci, &text);
		r->current = &c;
		rc = frame_loop(r, &c, prompt, &ci, &err);
		r->current = parent;
		free(text);
	}
	if (!rc && !c.answer)
		rc = rlm_error_set(&err, RLM_EINVAL, "the child RLM ended without an answer");
	/* The child's namespace goes with it (buffers and files stay, as documented). */
	rlm_error derr = RLM_ERROR_INIT;
	if (rlm_interp_drop_scope(r->interp, c.scope, &derr))
		rlm_log(RLM_LOG_WARN, "loop", "dropping %s: %s", c.scope, derr.message);
	if (r->traj && parent->calls) {
		json_object *rec = json_object_new_object();
		json_object_object_add(rec, "type", json_object_new_string("rlm_query"));
		json_object_object_add(rec, "depth", json_object_new_int(c.depth));
		json_object_object_add(rec, "prompt", json_object_new_string(prompt));
		json_object_object_add(rec, "response",
		                       json_object_new_string(rc || !c.answer ? "" : c.answer));
		json_object_object_add(
		        rec, "prompt_tokens",
		        json_object_new_int64(r->usage.prompt_tokens - before.prompt_tokens));
		json_object_object_add(rec, "completion_tokens",
		                       json_object_new_int64(r->usage.completion_tokens -
		                                             before.completion_tokens));
		json_object_object_add(rec, "execution_time",
		                       json_object_new_double(rlm_now() - t0));
		json_object_object_add(rec, "iterations", json_object_new_int(c.iterations));
		json_object_object_add(rec, "fallback", json_object_new_boolean(c.fallback));
		json_object_object_add(
		        rec, "llm_calls",
		        json_object_new_int64(r->usage.llm_calls - before.llm_calls));
		if (rc)
			json_object_object_add(rec, "error", json_object_new_string(err.message));
		json_object_object_add(rec, "trajectory", json_object_get(c.lines));
		json_object_array_add(parent->calls, rec);
	}
	if (rc)
		*why = printf_dup("rlm_query failed: %s", err.message);
	else if (!(*value = json_quote(c.answer)))
		rc = RLM_ENOMEM;
	frame_free(&c);
	return rc;
}

/* rlm_query at the depth limit (or on a backend that cannot nest): one sub-call that sees
 * the context appended to the prompt. */
static int degraded_query(struct run *r, struct frame *f, const char *prompt, json_object *context,
                          char **value, char **why)
{
	if (!context)
		return sub_query(r, f, "rlm_query", prompt, NULL, value, why);
	rlm_sb sb = {0};
	rlm_sb_printf(&sb, "%s\n\nContext:\n%s", prompt,
	              json_object_is_type(context, json_type_string)
	                      ? json_object_get_string(context)
	                      : json_object_to_json_string_ext(context, JSON_FLAGS));
	char *full = rlm_sb_take(&sb);
	int rc = full ? sub_query(r, f, "rlm_query", full, NULL, value, why) : RLM_ENOMEM;
	free(full);
	return rc;
}

/* The argument at position i, or the keyword name; NULL for absent or JSON null. */
static json_object *argument(json_object *args, json_object *kwargs, size_t i, const char *name)
{
	json_object *v = NULL;
	if (json_object_is_type(args, json_type_array) && json_object_array_length(args) > i)
		return json_object_array_get_idx(args, i);
	if (json_object_is_type(kwargs, json_type_object))
		json_object_object_get_ex(kwargs, name, &v);
	return v;
}

static int on_host_call(void *ctx, const char *name, const char *args_json, const char *kwargs_json,
                        char **value_json, char **error_message)
{
	struct run *r = ctx;
	struct frame *f = r->current;
	json_object *args = json_tokener_parse(args_json ? args_json : "[]");
	json_object *kwargs = json_tokener_parse(kwargs_json ? kwargs_json : "{}");
	json_object *prompt = argument(args, kwargs, 0,
	                               !strcmp(name, "llm_query_batched") ? "prompts" : "prompt");
	json_object *model_v = argument(args, kwargs, 1, "model");
	const char *model = json_object_is_type(model_v, json_type_string)
	                            ? json_object_get_string(model_v)
	                            : NULL;
	int rc;
	*value_json = NULL;
	*error_message = NULL;
	if (!strcmp(name, "llm_query") && json_object_is_type(prompt, json_type_string)) {
		rc = sub_query(r, f, "llm_query", json_object_get_string(prompt), model, value_json,
		               error_message);
	} else if (!strcmp(name, "llm_query_batched") &&
	           json_object_is_type(prompt, json_type_array)) {
		rc = batched_query(r, f, prompt, model, value_json, error_message);
	} else if (!strcmp(name, "rlm_query") && json_object_is_type(prompt, json_type_string)) {
		json_object *context = argument(args, kwargs, 1, "context");
		if (!r->nested_ok || f->depth >= r->max_depth)
			rc = degraded_query(r, f, json_object_get_string(prompt), context,
			                    value_json, error_message);
		else
			rc = child_query(r, f, json_object_get_string(prompt), context, value_json,
			                 error_message);
	} else {
		*error_message = printf_dup("%s: unknown host call or bad arguments", name);
		rc = RLM_EINVAL;
	}
	if (rc && !*error_message)
		*error_message = strdup(rlm_strerror(rc));
	json_object_put(args);
	json_object_put(kwargs);
	return rc;
}

/* ---- turns ---- */

/* The answer text of a SUBMIT: a single "answer" or "output" field is the answer itself;
 * anything else is the JSON object. */
static char *answer_from_submit(const char *submit_json)
{
	json_object *o = json_tokener_parse(submit_json);
	char *answer = NULL;
	if (json_object_is_type(o, json_type_object) && json_object_object_length(o) == 1) {
		json_object_object_foreach(o, key, v)
		{
			if (!strcmp(key, "answer") || !strcmp(key, "output"))
				answer = json_object_is_type(v, json_type_string)
				                 ? strdup(json_object_get_string(v))
				                 : json_dup_text(v);
		}
	}
	json_object_put(o);
	return answer ? answer : strdup(submit_json);
}

static int load_root_context(struct run *r, rlm_error *err);

static void report_progress(struct run *r, struct frame *f, const rlm_run_iteration *it)
{
	(void)f;
	if (r->opts->on_iteration)
		r->opts->on_iteration(r->opts->progress_ctx, it);
}

/* Bytes of a result's output text: its length field, or (from a result built before those
 * fields were filled) up to the first NUL. */
static size_t output_len(const char *text, size_t len)
{
	return len ? len : strlen(text ? text : "");
}

/* The result's locals_json as an object; {} when there is none or it does not parse. */
static json_object *locals_object(const rlm_result *res)
{
	json_object *o = res->locals_json ? json_tokener_parse(res->locals_json) : NULL;
	if (json_object_is_type(o, json_type_object))
		return o;
	json_object_put(o);
	return json_object_new_object();
}

/* The record of one block for the trajectory: the visualizer's {code, result{...}} and ours.
 * code goes without its trailing newlines (the visualizer numbers every line of it). */
static json_object *block_record(const char *code, const rlm_result *res, json_object *calls)
{
	json_object *result = json_object_new_object();
	json_object_object_add(
	        result, "stdout",
	        json_object_new_string_len(res->stdout_text,
	                                   (int)output_len(res->stdout_text, res->stdout_len)));
	rlm_sb err = {0};
	rlm_sb_append(&err, res->stderr_text, output_len(res->stderr_text, res->stderr_len));
	if (res->error && err.len && err.data[err.len - 1] != '\n')
		rlm_sb_puts(&err, "\n");
	if (res->error)
		rlm_sb_puts(&err,
		            res->error->traceback[0] ? res->error->traceback : res->error->line);
	json_object_object_add(result, "stderr",
	                       json_object_new_string_len(err.data ? err.data : "", (int)err.len));
	rlm_sb_free(&err);
	json_object_object_add(result, "locals", locals_object(res));
	json_object_object_add(result, "execution_time",
	                       json_object_new_double(res->duration_ms / 1000.0));
	json_object_object_add(result, "rlm_calls",
	                       calls ? json_object_get(calls) : json_object_new_array());
	json_object_object_add(result, "error",
	                       res->error ? json_object_new_string(res->error->line) : NULL);
	json_object_object_add(result, "submit",
	                       res->submit_json ? json_tokener_parse(res->submit_json) : NULL);
	json_object_object_add(result, "value", json_or_null_string(res->value));
	json_object_object_add(result, "timed_out", json_object_new_boolean(res->timed_out));
	json_object_object_add(result, "state_lost", json_object_new_boolean(res->state_lost));
	size_t code_len = strlen(code);
	while (code_len && (code[code_len - 1] == '\n' || code[code_len - 1] == '\r'))
		code_len--;
	json_object *b = json_object_new_object();
	json_object_object_add(b, "code", json_object_new_string_len(code, (int)code_len));
	json_object_object_add(b, "result", result);
	return b;
}

static int emit_iteration(struct run *r, struct frame *f, json_object *line, rlm_error *err)
{
	if (!line)
		return 0;
	if (f->lines) {
		json_object_array_add(f->lines, line);
		return 0;
	}
	int rc = r->traj ? rlm__trajectory_write(r->traj, line, err) : 0;
	json_object_put(line);
	return rc;
}

/* One turn as the visualizer reads it (type, iteration, timestamp, prompt, response,
 * code_blocks, final_answer, iteration_time), plus the depth and the turn's own call: its
 * model and, when the provider said, its tokens. */
static json_object *iteration_record(int iteration, json_object *prompt,
                                     const rlm_llm_response *resp, json_object *blocks,
                                     const char *final_answer, double secs, int depth)
{
	char ts[64];
	rlm__iso_timestamp(ts, sizeof(ts));
	json_object *o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string("iteration"));
	json_object_object_add(o, "iteration", json_object_new_int(iteration));
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	json_object_object_add(o, "prompt", prompt);
	json_object_object_add(o, "response", json_object_new_string(resp->text.data));
	json_object_object_add(o, "code_blocks", blocks ? blocks : json_object_new_array());
	json_object_object_add(o, "final_answer", json_or_null_string(final_answer));
	json_object_object_add(o, "iteration_time", json_object_new_double(secs));
	json_object_object_add(o, "depth", json_object_new_int(depth));
	if (resp->model[0])
		json_object_object_add(o, "model", json_object_new_string(resp->model));
	add_tokens(o, "prompt_tokens", resp->prompt_tokens);
	add_tokens(o, "completion_tokens", resp->completion_tokens);
	return o;
}

/* Runs the blocks of one answer in order; appends the model's view of their results to
 * feedback and their records to records. Stops at a SUBMIT. */
static int run_blocks(struct run *r, struct frame *f, char **blocks, int n, rlm_sb *feedback,
                      json_object *records, double *exec_s, int *ran, rlm_error *err)
{
	for (int i = 0; i < n; i++) {
		rlm_exec_options eo = RLM_EXEC_OPTIONS_INIT;
		eo.scope = f->scope;
		eo.timeout_s = within_deadline(r, r->exec_timeout_s);
		eo.max_output_chars = r->max_output;
		eo.locals = r->traj != NULL; /* the visualizer's Variables pane */
		json_object_put(f->calls);
		f->calls = r->traj ? json_object_new_array() : NULL;
		rlm_result *res = NULL;
		double t0 = rlm_now();
		int rc = rlm_interp_execute_ex(r->interp, blocks[i], &eo, &res, err);
		*exec_s += rlm_now() - t0;
		if (rc)
			return rc;
		(*ran)++;
		char *shown = rlm__format_result(res, r->max_output);
		if (n > 1)
			rlm_sb_printf(feedback, "%sREPL output (block %d of %d):\n",
			              i ? "\n\n" : "", i + 1, n);
		else
			rlm_sb_puts(feedback, "REPL output:\n");
		rlm_sb_puts(feedback, shown ? shown : "(out of memory formatting the output)");
		free(shown);
		while (feedback->len && feedback->data[feedback->len - 1] == '\n')
			feedback->data[--feedback->len] = '\0';
		if (res->state_lost && f->depth == 0) {
			rlm_error lerr = RLM_ERROR_INIT;
			if (load_root_context(r, &lerr) == 0)
				rlm_sb_puts(feedback, "\n[`context` was loaded again]");
			else
				rlm_sb_printf(feedback,
				              "\n[`context` could not be loaded again: %s]",
				              lerr.message);
		}
		if (records)
			json_object_array_add(records, block_record(blocks[i], res, f->calls));
		if (res->submit_json && !f->answer) {
			f->submit_json = strdup(res->submit_json);
			f->answer = answer_from_submit(res->submit_json);
			if (i + 1 < n)
				rlm_sb_printf(feedback,
				              "\n[SUBMIT ended the task: the %d block(s) after it "
				              "did not run]",
				              n - i - 1);
		}
		rlm_result_free(res);
		json_object_put(f->calls);
		f->calls = NULL;
		if (f->answer)
			break;
	}
	return 0;
}

/* A child's own LLM calls come out of the shared budget (the root's turns are bounded by
 * max_iterations instead). */
static int child_call_budget(struct run *r, struct frame *f, const char *what, rlm_error *err)
{
	char *why = NULL;
	if (f->depth == 0 || !budget_take(r, 1, what, &why))
		return 0;
	int rc = rlm_error_set(err, RLM_EBUDGET, "%s", why ? why : "LLM call budget exhausted");
	free(why);
	return rc;
}

static int turn(struct run *r, struct frame *f, int iteration, rlm_error *err)
{
	rlm_run_iteration info = {.depth = f->depth,
	                          .iteration = iteration,
	                          .max_iterations = (int)r->max_iterations};
	double t0 = rlm_now();
	int brc = child_call_budget(r, f, "a child RLM's turn", err);
	if (brc)
		return brc;
	json_object *prompt = r->traj ? history_json(&f->h, r->traj) : NULL;
	rlm_llm_response resp;
	int rc = ask(r, f->depth ? r->sub : r->llm, f->depth ? r->sub_model : NULL, f->h.m, f->h.n,
	             &resp, &info.llm_s, err);
	note_usage(r, f->depth, rc ? NULL : &resp);
	if (rc) {
		json_object_put(prompt);
		rlm__llm_response_clear(&resp);
		return rc;
	}
	f->iterations = iteration;
	info.prompt_tokens = resp.prompt_tokens;
	info.completion_tokens = resp.completion_tokens;
	char **blocks = NULL;
	int n = rlm__extract_code_blocks(resp.text.data, &blocks);
	rc = n < 0 ? rlm_error_set(err, RLM_ENOMEM, "out of memory") : 0;
	if (!rc)
		rc = history_push(&f->h, "assistant", resp.text.data);
	json_object *records = r->traj ? json_object_new_array() : NULL;
	rlm_sb feedback = {0};
	if (!rc && n == 0) {
		rc = history_push(&f->h, "user", rlm__nudge_message());
	} else if (!rc) {
		rc = run_blocks(r, f, blocks, n, &feedback, records, &info.exec_s, &info.blocks,
		                err);
		if (!rc && !f->answer)
			rlm_sb_printf(&feedback, "\n\n[turn %d of %ld done; %ld LLM calls left]",
			              iteration, r->max_iterations, r->max_calls - r->calls_used);
		if (!rc)
			rc = history_push(&f->h, "user", feedback.data ? feedback.data : "");
	}
	rlm_sb_free(&feedback);
	rlm__code_blocks_free(blocks, n > 0 ? n : 0);
	info.iteration_s = rlm_now() - t0;
	info.submitted = f->answer != NULL;
	json_object *line = NULL;
	if (r->traj)
		line = iteration_record(iteration, prompt, &resp, records, f->answer,
		                        info.iteration_s, f->depth);
	else
		json_object_put(records);
	rlm__llm_response_clear(&resp);
	if (!line)
		json_object_put(prompt);
	int wrc = emit_iteration(r, f, line, rc ? NULL : err);
	if (!rc)
		rc = wrc;
	info.iteration_s = rlm_now() - t0; /* the record's own writing included */
	info.llm_calls_used = r->calls_used;
	info.llm_calls_max = r->max_calls;
	report_progress(r, f, &info);
	return rc;
}

/* max_iterations ran out: one last call asks for the answer from the history. */
static int fallback_turn(struct run *r, struct frame *f, rlm_error *err)
{
	rlm_run_iteration info = {.depth = f->depth,
	                          .iteration = (int)r->max_iterations + 1,
	                          .max_iterations = (int)r->max_iterations,
	                          .fallback = 1};
	double t0 = rlm_now();
	int brc = child_call_budget(r, f, "a child RLM's last call", err);
	if (brc)
		return brc;
	char *ask_text = rlm__fallback_message(r->max_iterations);
	int rc = ask_text ? history_push(&f->h, "user", ask_text) : RLM_ENOMEM;
	free(ask_text);
	if (rc)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	json_object *prompt = r->traj ? history_json(&f->h, r->traj) : NULL;
	rlm_llm_response resp;
	rc = ask(r, f->depth ? r->sub : r->llm, f->depth ? r->sub_model : NULL, f->h.m, f->h.n,
	         &resp, &info.llm_s, err);
	note_usage(r, f->depth, rc ? NULL : &resp);
	if (rc) {
		json_object_put(prompt);
		rlm__llm_response_clear(&resp);
		return rc;
	}
	const char *text = resp.text.data;
	size_t len = strlen(text);
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
	               text[len - 1] == '\t'))
		len--;
	while (len && (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t'))
		text++, len--;
	f->fallback = 1;
	f->answer = len ? strndup(text, len) : NULL;
	info.iteration_s = rlm_now() - t0;
	info.prompt_tokens = resp.prompt_tokens;
	info.completion_tokens = resp.completion_tokens;
	json_object *line = NULL;
	if (r->traj) {
		line = iteration_record(info.iteration, prompt, &resp, NULL, f->answer,
		                        info.iteration_s, f->depth);
		json_object_object_add(line, "fallback", json_object_new_boolean(1));
	}
	rlm__llm_response_clear(&resp);
	rc = emit_iteration(r, f, line, err);
	info.iteration_s = rlm_now() - t0;
	info.llm_calls_used = r->calls_used;
	info.llm_calls_max = r->max_calls;
	report_progress(r, f, &info);
	return rc;
}

static int run_cancelled(const struct run *r)
{
	return r->opts->cancel && *r->opts->cancel;
}

/* Whether the run must stop before its next step: cancelled, or its deadline passed. */
static int run_stopped(const struct run *r, rlm_error *err)
{
	if (run_cancelled(r))
		return rlm_error_set(err, RLM_ECANCELLED, "the run was cancelled");
	if (r->deadline > 0 && rlm_now() >= r->deadline)
		return rlm_error_set(err, RLM_ETIMEOUT, "the run's time limit (%.3g s) ran out",
		                     r->opts->timeout_s);
	return 0;
}

static int frame_loop(struct run *r, struct frame *f, const char *task,
                      const struct rlm_context_info *ci, rlm_error *err)
{
	struct rlm_prompt_params pp = {
	        .max_output_chars = r->max_output,
	        .max_iterations = r->max_iterations,
	        .max_llm_calls = r->max_calls,
	        .depth = f->depth,
	        .can_recurse = r->nested_ok && f->depth < r->max_depth,
	        .tools = r->tools_text,
	};
	char *system = rlm__system_prompt(&pp);
	char *first = rlm__task_message(task, ci);
	int rc = system && first ? history_push(&f->h, "system", system) : RLM_ENOMEM;
	if (!rc)
		rc = history_push(&f->h, "user", first);
	free(system);
	free(first);
	if (rc)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	for (int it = 1; it <= r->max_iterations && !f->answer && !rc; it++)
		if (!(rc = run_stopped(r, err)))
			rc = turn(r, f, it, err);
	if (!rc && !f->answer)
		if (!(rc = run_stopped(r, err)))
			rc = fallback_turn(r, f, err);
	return rc;
}

/* ---- the root's context ---- */

static int read_host_file(const char *path, char **out, size_t *len, rlm_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return rlm_error_set(err, RLM_ENOTFOUND, "cannot open the context file %s: %s",
		                     path, strerror(errno));
	rlm_sb sb = {0};
	char buf[65536];
	size_t got;
	int rc = 0;
	while (!rc && (got = fread(buf, 1, sizeof(buf), f)) > 0)
		rc = rlm_sb_append(&sb, buf, got);
	int bad = ferror(f);
	fclose(f);
	if (rc || bad) {
		rlm_sb_free(&sb);
		return rc ? rlm_error_set(err, RLM_ENOMEM, "out of memory reading %s", path)
		          : rlm_error_set(err, RLM_EIO, "cannot read the context file %s", path);
	}
	*len = sb.len;
	*out = rlm_sb_take(&sb);
	return *out ? 0 : rlm_error_set(err, RLM_ENOMEM, "out of memory");
}

static int exec_setup(struct run *r, const char *code, rlm_error *err)
{
	rlm_exec_options eo = RLM_EXEC_OPTIONS_INIT;
	eo.timeout_s = within_deadline(r, r->exec_timeout_s);
	rlm_result *res = NULL;
	int rc = rlm_interp_execute_ex(r->interp, code, &eo, &res, err);
	if (!rc && res->error)
		rc = rlm_error_set(err, RLM_EBACKEND,
		                   "loading the context into the sandbox failed: %s",
		                   res->error->line);
	rlm_result_free(res);
	return rc;
}

/* Uploads the context as a file and reads it into `context` with a cell, so a context of
 * many megabytes costs one file write, not a giant frame or a prompt. */
static int load_root_context(struct run *r, rlm_error *err)
{
	if (!r->ctx_data)
		return exec_setup(r, "context = None", err);
	int rc = rlm_interp_upload(r->interp, r->ctx_data, r->ctx_len, CONTEXT_REMOTE_PATH, err);
	if (rc)
		return rc;
	return exec_setup(r,
	                  "with open('" CONTEXT_REMOTE_PATH "', 'rb') as _rlm_context_file:\n"
	                  "    context = _rlm_context_file.read().decode('utf-8', 'replace')\n"
	                  "del _rlm_context_file\n",
	                  err);
}

static void root_context_info(const struct run *r, struct rlm_context_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	if (!r->ctx_data)
		return;
	ci->type = "str";
	ci->length = rlm__utf8_chars(r->ctx_data, r->ctx_len);
	ci->lines = r->ctx_len ? 1 : 0;
	for (const char *p = r->ctx_data, *end = r->ctx_data + r->ctx_len;
	     (p = memchr(p, '\n', (size_t)(end - p))) && p + 1 < end; p++)
		ci->lines++;
	ci->head = r->ctx_data;
	ci->head_len = r->ctx_len < CONTEXT_HEAD_BYTES ? r->ctx_len : CONTEXT_HEAD_BYTES;
}

/* ---- setup and teardown ---- */

static void read_limits(struct run *r, const rlm_run_options *o)
{
	const rlm_config *c = r->cfg;
	r->max_iterations = o->max_iterations > 0
	                            ? o->max_iterations
	                            : (long)rlm_config_get_number(c, "limits.max_iterations", 20);
	r->max_calls = o->max_llm_calls > 0
	                       ? o->max_llm_calls
	                       : (long)rlm_config_get_number(c, "limits.max_llm_calls", 100);
	r->max_depth = o->max_depth >= 0 ? o->max_depth
	                                 : (long)rlm_config_get_number(c, "limits.max_depth", 1);
	r->max_output = o->max_output_chars > 0
	                        ? o->max_output_chars
	                        : (long)rlm_config_get_number(c, "limits.max_output_chars", 20000);
	r->exec_timeout_s = o->execute_timeout_s > 0
	                            ? o->execute_timeout_s
	                            : rlm_config_get_number(c, "limits.execute_timeout_s", 300);
	r->llm_timeout_s = o->llm_call_timeout_s > 0
	                           ? o->llm_call_timeout_s
	                           : rlm_config_get_number(c, "limits.llm_call_timeout_s", 60);
	r->concurrency = (long)rlm_config_get_number(c, "limits.llm_concurrency", 8);
	if (RLM_HAS_FIELD(o, timeout_s) && o->timeout_s > 0)
		r->deadline = rlm_now() + o->timeout_s;
	if (r->concurrency < 1)
		r->concurrency = 1;
	r->usage.budget_max = r->max_calls;
}

static int open_llms(struct run *r, rlm_error *err)
{
	const rlm_run_options *o = r->opts;
	if (RLM_HAS_FIELD(o, llm) && o->llm) {
		/* The caller's function answers everything; the sections' models are passed on. */
		int rc = rlm__llm_open_callback(r->cfg, "llm", o->llm,
		                                RLM_HAS_FIELD(o, llm_ctx) ? o->llm_ctx : NULL,
		                                &r->llm, err);
		r->sub = r->llm;
		r->sub_model = rlm_config_get_string(r->cfg, "sub_llm.model", NULL);
		return rc;
	}
	int rc = rlm__llm_open(r->cfg, "llm", &r->llm, err);
	if (rc)
		return rc;
	const char *sub = rlm_config_get_string(r->cfg, "sub_llm.provider", NULL);
	if (sub && *sub)
		return rlm__llm_open(r->cfg, "sub_llm", &r->sub, err);
	r->sub = r->llm;
	r->sub_model = rlm_config_get_string(r->cfg, "sub_llm.model", NULL);
	return 0;
}

/* Whether the backend runs a cell from inside a host call (a child RLM needs it). */
static int backend_nests(rlm_interp *in)
{
	char *status = rlm_interp_status_json(in);
	json_object *s = status ? json_tokener_parse(status) : NULL, *caps = NULL;
	int yes = 0;
	if (json_object_object_get_ex(s, "capabilities", &caps))
		for (size_t i = 0; i < json_object_array_length(caps); i++)
			yes |= !strcmp(json_object_get_string(json_object_array_get_idx(caps, i)),
			               "nested_execute");
	json_object_put(s);
	free(status);
	return yes;
}

static json_object *metadata_record(const struct run *r, const rlm_run_options *o,
                                    const struct rlm_context_info *ci)
{
	char ts[64];
	rlm__iso_timestamp(ts, sizeof(ts));
	const char *model = rlm__llm_model(r->llm);
	const char *backend = rlm_config_get_string(r->cfg, "backend", "local");
	char key[160];
	snprintf(key, sizeof(key), "backends.%s", backend);
	char *env_kwargs = rlm_config_get_json(r->cfg, key);
	json_object *m = json_object_new_object();
	json_object_object_add(m, "type", json_object_new_string("metadata"));
	json_object_object_add(m, "timestamp", json_object_new_string(ts));
	json_object_object_add(m, "root_model",
	                       json_object_new_string(model ? model : rlm__llm_provider(r->llm)));
	json_object_object_add(m, "max_depth", json_object_new_int64(r->max_depth));
	json_object_object_add(m, "max_iterations", json_object_new_int64(r->max_iterations));
	json_object_object_add(m, "backend", json_object_new_string(rlm__llm_provider(r->llm)));
	json_object *kw = NULL;
	json_object_deep_copy(rlm__llm_options(r->llm), &kw, NULL);
	json_object_object_add(m, "backend_kwargs", kw);
	json_object_object_add(m, "environment_type", json_object_new_string(backend));
	json_object *ek = env_kwargs ? json_tokener_parse(env_kwargs) : NULL;
	json_object_object_add(m, "environment_kwargs", ek ? ek : json_object_new_object());
	free(env_kwargs);
	json_object *others = NULL;
	if (r->sub != r->llm) {
		others = json_object_new_array();
		json_object_array_add(others, json_object_new_string(rlm__llm_provider(r->sub)));
	}
	json_object_object_add(m, "other_backends", others);
	json_object_object_add(
	        m, "sub_model",
	        json_or_null_string(r->sub != r->llm ? rlm__llm_model(r->sub) : r->sub_model));
	json_object_object_add(m, "max_llm_calls", json_object_new_int64(r->max_calls));
	json_object_object_add(m, "max_output_chars", json_object_new_int64(r->max_output));
	json_object_object_add(m, "task", json_object_new_string(o->task));
	json_object *c = NULL;
	if (ci->type) {
		c = json_object_new_object();
		json_object_object_add(c, "type", json_object_new_string(ci->type));
		json_object_object_add(c, "length", json_object_new_int64((int64_t)ci->length));
		json_object_object_add(c, "lines", json_object_new_int64((int64_t)ci->lines));
	}
	json_object_object_add(m, "context", c);
	json_object_object_add(m, "rlm_version", json_object_new_string(RLM_VERSION));
	return m;
}

static json_object *usage_json(const rlm_run_usage *u)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "llm_calls", json_object_new_int64(u->llm_calls));
	json_object_object_add(o, "budget_calls", json_object_new_int64(u->budget_calls));
	json_object_object_add(o, "budget_max", json_object_new_int64(u->budget_max));
	json_object_object_add(o, "prompt_tokens", json_object_new_int64(u->prompt_tokens));
	json_object_object_add(o, "completion_tokens", json_object_new_int64(u->completion_tokens));
	int last = 0;
	for (int d = 0; d < RLM_RUN_DEPTHS; d++)
		if (u->calls_by_depth[d])
			last = d;
	json_object *a = json_object_new_array();
	for (int d = 0; d <= last; d++)
		json_object_array_add(a, json_object_new_int64(u->calls_by_depth[d]));
	json_object_object_add(o, "calls_by_depth", a);
	return o;
}

/* What a run ended with, as the summary sidecar and rlm_run_result_to_json show it: res's
 * fields, the error (rc != 0) and where the trajectory and its summary went. */
static json_object *outcome_json(const rlm_run_result *res, int rc, const rlm_error *err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "answer", json_or_null_string(res->answer));
	json_object_object_add(o, "fallback", json_object_new_boolean(res->fallback));
	json_object_object_add(o, "submit",
	                       res->submit_json ? json_tokener_parse(res->submit_json) : NULL);
	json_object_object_add(o, "iterations", json_object_new_int(res->iterations));
	json_object_object_add(o, "duration_s", json_object_new_double(res->duration_s));
	json_object_object_add(o, "usage", usage_json(&res->usage));
	json_object *e = NULL;
	if (rc) {
		e = json_object_new_object();
		json_object_object_add(e, "code", json_object_new_string(rlm_status_name(rc)));
		json_object_object_add(e, "message",
		                       json_object_new_string(err && err->message[0]
		                                                      ? err->message
		                                                      : rlm_strerror(rc)));
	}
	json_object_object_add(o, "error", e);
	json_object_object_add(o, "trajectory", json_or_null_string(res->trajectory_path));
	json_object_object_add(o, "summary", json_or_null_string(res->summary_path));
	return o;
}

/* The summary sidecar: {type: "summary", timestamp} and outcome_json. Written at the end of
 * every run that has a trajectory, failed ones included. */
static void write_summary(struct run *r, struct frame *f, double secs, int rc, const rlm_error *err)
{
	char ts[64];
	rlm__iso_timestamp(ts, sizeof(ts));
	char *summary_path = rlm_trajectory_summary_path(rlm__trajectory_path(r->traj));
	/* A view of the run's state: every pointer is borrowed, nothing here is freed. */
	rlm_run_result view = {.answer = f->answer,
	                       .submit_json = f->submit_json,
	                       .fallback = f->fallback,
	                       .iterations = f->iterations,
	                       .duration_s = secs,
	                       .usage = r->usage,
	                       .trajectory_path = (char *)rlm__trajectory_path(r->traj),
	                       .summary_path = summary_path};
	json_object *s = json_object_new_object();
	json_object_object_add(s, "type", json_object_new_string("summary"));
	json_object_object_add(s, "timestamp", json_object_new_string(ts));
	json_object *o = outcome_json(&view, rc, err);
	json_object_object_foreach(o, key, v) json_object_object_add(s, key, json_object_get(v));
	json_object_put(o);
	rlm_error werr = RLM_ERROR_INIT;
	if (rlm__trajectory_write_summary(r->traj, s, &werr))
		rlm_log(RLM_LOG_WARN, "loop", "%s", werr.message);
	json_object_put(s);
	free(summary_path);
}

static int check_options(const rlm_config *cfg, const rlm_run_options *o, rlm_run_result **out,
                         rlm_error *err)
{
	if (!out)
		return rlm_error_set(err, RLM_EINVAL, "rlm_run: out is NULL");
	*out = NULL;
	if (!cfg || !o)
		return rlm_error_set(err, RLM_EINVAL, "rlm_run: no config or options");
	if (o->struct_size < offsetof(rlm_run_options, cancel) + sizeof(o->cancel))
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_run: struct_size %u is too small (start from "
		                     "RLM_RUN_OPTIONS_INIT or rlm_run_options_init)",
		                     o->struct_size);
	if (!o->task || !*o->task)
		return rlm_error_set(err, RLM_EINVAL, "rlm_run: the task is empty");
	if (o->context && o->context_file)
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm_run: give either a context or a context file, not both");
	return 0;
}

/* Whether two paths name one file (an existing one: a path that does not exist yet is no
 * file of anyone's). */
static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* A context that is not UTF-8 is decoded with replacement (U+FFFD for each bad byte), and the
 * run says so: its head goes into the model's prompt, which a provider would refuse. */
static int context_as_utf8(struct run *r, const char *file, rlm_error *err)
{
	size_t len, bad, first;
	if (rlm_utf8_invalid_at(r->ctx_data, r->ctx_len) == RLM_UTF8_VALID)
		return 0;
	char *fixed = utf8_repaired(r->ctx_data, r->ctx_len, &len, &bad, &first);
	if (!fixed)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	rlm_log(RLM_LOG_WARN, "run",
	        "the context%s%s is not UTF-8 (first bad byte at offset %zu, %zu in all): decoded "
	        "with U+FFFD replacing each bad byte",
	        file ? " file " : "", file ? file : "", first, bad);
	free(r->ctx_owned);
	r->ctx_owned = fixed;
	r->ctx_data = fixed;
	r->ctx_len = len;
	return 0;
}

static int open_run(struct run *r, rlm_error *err)
{
	const rlm_run_options *o = r->opts;
	int rc = open_llms(r, err);
	const char *secrets[3] = {r->llm ? rlm__llm_secret(r->llm) : NULL,
	                          r->sub ? rlm__llm_secret(r->sub) : NULL, NULL};
	if (!secrets[0]) {
		secrets[0] = secrets[1];
		secrets[1] = NULL;
	}
	/* Every input is read before any output is opened, and an output never replaces one. */
	if (!rc && o->context_file) {
		size_t len = 0;
		rc = read_host_file(o->context_file, &r->ctx_owned, &len, err);
		r->ctx_data = r->ctx_owned;
		r->ctx_len = len;
	} else if (!rc && o->context) {
		r->ctx_data = o->context;
		r->ctx_len = o->context_len ? o->context_len : strlen(o->context);
	}
	if (!rc && r->ctx_data)
		rc = context_as_utf8(r, o->context_file, err);
	if (!rc && o->trajectory_path && o->context_file &&
	    same_file(o->trajectory_path, o->context_file))
		rc = rlm_error_set(
		        err, RLM_EINVAL,
		        "the trajectory %s is the context file: writing it would destroy "
		        "the input",
		        o->trajectory_path);
	if (!rc && o->trajectory_path)
		rc = rlm__trajectory_open(o->trajectory_path, secrets, &r->traj, err);
	if (!rc && o->interp) {
		r->interp = o->interp;
	} else if (!rc) {
		rc = rlm_interp_open(r->cfg, &r->interp, err);
		r->own_interp = rc == 0;
	}
	if (!rc && o->cancel)
		rlm_interp_set_cancel_flag(r->interp, o->cancel);
	if (!rc && run_cancelled(r))
		rc = rlm_error_set(err, RLM_ECANCELLED, "the run was cancelled");
	if (!rc) {
		r->nested_ok = backend_nests(r->interp);
		r->tools_text = rlm__interp_tools_text(r->interp);
		rlm_interp_set_call_handler(r->interp, on_host_call, r);
		rc = load_root_context(r, err);
	}
	return rc;
}

static void close_run(struct run *r)
{
	if (r->interp) {
		rlm_interp_set_call_handler(r->interp, NULL, NULL);
		if (r->opts->cancel)
			rlm_interp_set_cancel_flag(r->interp, NULL);
		if (r->own_interp)
			rlm_interp_close(r->interp);
	}
	if (r->sub != r->llm)
		rlm__llm_close(r->sub);
	rlm__llm_close(r->llm);
	rlm__trajectory_close(r->traj);
	free(r->ctx_owned);
	free(r->tools_text);
}

static rlm_run_result *make_result(struct run *r, struct frame *f, double secs)
{
	rlm_run_result *res = calloc(1, sizeof(*res));
	if (!res)
		return NULL;
	res->answer = f->answer;
	res->submit_json = f->submit_json;
	f->answer = f->submit_json = NULL;
	res->fallback = f->fallback;
	res->iterations = f->iterations;
	res->duration_s = secs;
	res->usage = r->usage;
	if (r->traj) {
		res->trajectory_path = strdup(rlm__trajectory_path(r->traj));
		res->summary_path = rlm_trajectory_summary_path(rlm__trajectory_path(r->traj));
	}
	return res;
}

int rlm_run(const rlm_config *cfg, const rlm_run_options *opts, rlm_run_result **out,
            rlm_error *err)
{
	int rc = check_options(cfg, opts, out, err);
	if (rc)
		return rc;
	double t0 = rlm_now();
	struct run r = {.cfg = cfg, .opts = opts};
	struct frame root = {.run = &r, .depth = 0};
	read_limits(&r, opts);
	r.current = &root;
	rc = open_run(&r, err);
	struct rlm_context_info ci;
	root_context_info(&r, &ci);
	if (!rc && r.traj) {
		json_object *meta = metadata_record(&r, opts, &ci);
		rc = rlm__trajectory_write(r.traj, meta, err);
		json_object_put(meta);
	}
	if (!rc)
		rc = frame_loop(&r, &root, opts->task, &ci, err);
	double secs = rlm_now() - t0;
	if (r.traj)
		write_summary(&r, &root, secs, rc, err);
	if (!rc) {
		*out = make_result(&r, &root, secs);
		if (!*out)
			rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
	}
	frame_free(&root);
	close_run(&r);
	return rc;
}

void rlm_run_options_init(rlm_run_options *opts)
{
	if (!opts)
		return;
	rlm_run_options init = RLM_RUN_OPTIONS_INIT;
	*opts = init;
}

void rlm_run_result_free(rlm_run_result *res)
{
	if (!res)
		return;
	free(res->answer);
	free(res->submit_json);
	free(res->trajectory_path);
	free(res->summary_path);
	free(res);
}

char *rlm_run_result_to_json(const rlm_run_result *res)
{
	if (!res)
		return NULL;
	json_object *o = outcome_json(res, 0, NULL);
	char *s = json_dup_text(o);
	json_object_put(o);
	return s;
}
