/* replay.c - the `replay` LLM plugin: answers from a script instead of a model, for offline
 * tests, `make demo` and replaying a recorded run.
 *
 * The script (option `script`) is a JSONL file, a file holding one JSON array, or inline JSON
 * array text. Each entry is {"response": "..."} with optional "match" (used when option
 * `match` is "key"), "error" (the call fails with that message), "delay_ms", "repeat" (a
 * matched entry that is never used up), "prompt_tokens" and "completion_tokens"; a bare
 * string is a response. A recorded trajectory (lines of type "metadata", "iteration",
 * "summary") replays the response of each iteration followed by the responses of the
 * sub-calls its code made, children's turns included, in the order they happened.
 *
 * By default entries answer in order. With match "key" a call takes the first unused entry
 * whose "match" is a substring of the last user message, else the first unused entry with no
 * "match". complete() is thread-safe (llm_query_batched calls it from several threads).
 *
 * Built as rlm-llm-replay.so and also compiled with -DRLM_BUILTIN_REPLAY into librlm's
 * built-in table as rlm_builtin_replay_entry. It uses only the host table, libc, pthreads and
 * json-c, never librlm. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlm/plugin.h"

#ifdef RLM_BUILTIN_REPLAY
#define REPLAY_ENTRY            rlm_builtin_replay_entry
#define REPLAY_ENTRY_VISIBILITY __attribute__((visibility("hidden")))
#else
#define REPLAY_ENTRY            rlm_plugin_entry
#define REPLAY_ENTRY_VISIBILITY RLM_PLUGIN_EXPORT
#endif

#define REPLAY_NAME       "replay"
#define REPLAY_SCRIPT_MAX (256u << 20) /* a script larger than this is a mistake */

struct entry {
	char *response;
	char *match; /* NULL: answers any call (in key mode: only when nothing matches) */
	char *error; /* the call fails with this message */
	long delay_ms;
	long prompt_tokens, completion_tokens; /* -1: estimated */
	int repeat;
	int used;
};

struct replay {
	const rlm_host_api *host;
	pthread_mutex_t lock;
	struct entry *entries;
	size_t n, cap;
	size_t next;   /* in-order mode: the next entry */
	size_t served; /* responses handed out so far */
	int by_key;
	char *source; /* the script's path, or "inline script" */
	char *model;  /* reported as the answering model */
};

static const char *const replay_matches[] = {"order", "key", NULL};

static const rlm_option_def replay_option_defs[] = {
        RLM_OPTION_DEF(.name = "script", .type = RLM_OPT_STRING,
                       .flags = RLM_OPTF_REQUIRED | RLM_OPTF_NONEMPTY,
                       .doc = "JSONL file of {\"response\": ...} lines (rlm run --script FILE), "
                              "a recorded trajectory, or inline JSON array text"),
        RLM_OPTION_DEF(.name = "match", .type = RLM_OPT_STRING, .default_json = "null",
                       .choices = replay_matches,
                       .doc = "null or \"order\": answer in order; \"key\": pick the entry "
                              "whose \"match\" is in the last user message"),
        RLM_OPTION_DEF(.name = "model", .type = RLM_OPT_STRING, .default_json = "\"replay\"",
                       .doc = "model name reported in answers"),
        RLM_OPTION_DEF(.name = "api_key_env", .type = RLM_OPT_STRING, .default_json = "null",
                       .doc = "accepted and ignored, so a real provider's config replays "
                              "unchanged"),
        {0},
};

static void replay_free(struct replay *r)
{
	for (size_t i = 0; i < r->n; i++) {
		r->host->free(r->entries[i].response);
		r->host->free(r->entries[i].match);
		r->host->free(r->entries[i].error);
	}
	r->host->free(r->entries);
	r->host->free(r->source);
	r->host->free(r->model);
	pthread_mutex_destroy(&r->lock);
	r->host->free(r);
}

/* ---- loading the script ---------------------------------------------------------------- */

static const char *member_str(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

static long member_long(json_object *o, const char *key, long fallback)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return fallback;
	return (long)json_object_get_int64(v);
}

static int add_entry(struct replay *r, const char *response, const char *match, const char *error,
                     json_object *o)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct entry *e = r->host->realloc(r->entries, cap * sizeof(*e));
		if (!e)
			return RLM_ENOMEM;
		r->entries = e;
		r->cap = cap;
	}
	struct entry *e = &r->entries[r->n];
	memset(e, 0, sizeof(*e));
	e->response = r->host->str_dup(response ? response : "");
	e->match = r->host->str_dup(match);
	e->error = r->host->str_dup(error);
	e->delay_ms = o ? member_long(o, "delay_ms", 0) : 0;
	e->prompt_tokens = o ? member_long(o, "prompt_tokens", -1) : -1;
	e->completion_tokens = o ? member_long(o, "completion_tokens", -1) : -1;
	json_object *rep = NULL;
	e->repeat =
	        o && json_object_object_get_ex(o, "repeat", &rep) && json_object_get_boolean(rep);
	if (!e->response || (match && !e->match) || (error && !e->error)) {
		r->host->free(e->response);
		r->host->free(e->match);
		r->host->free(e->error);
		return RLM_ENOMEM;
	}
	r->n++;
	return 0;
}

static int add_trajectory_calls(struct replay *r, json_object *calls);

/* The responses of one recorded iteration, then those of the sub-calls its blocks made. */
static int add_trajectory_iteration(struct replay *r, json_object *it)
{
	const char *response = member_str(it, "response");
	int rc = response ? add_entry(r, response, NULL, NULL, NULL) : 0;
	json_object *blocks = NULL;
	if (rc || !json_object_object_get_ex(it, "code_blocks", &blocks) ||
	    !json_object_is_type(blocks, json_type_array))
		return rc;
	for (size_t i = 0; !rc && i < json_object_array_length(blocks); i++) {
		json_object *res = NULL, *calls = NULL;
		if (json_object_object_get_ex(json_object_array_get_idx(blocks, i), "result",
		                              &res) &&
		    json_object_object_get_ex(res, "rlm_calls", &calls))
			rc = add_trajectory_calls(r, calls);
	}
	return rc;
}

static int add_trajectory_calls(struct replay *r, json_object *calls)
{
	if (!json_object_is_type(calls, json_type_array))
		return 0;
	int rc = 0;
	for (size_t i = 0; !rc && i < json_object_array_length(calls); i++) {
		json_object *c = json_object_array_get_idx(calls, i), *child = NULL;
		if (json_object_object_get_ex(c, "trajectory", &child) &&
		    json_object_is_type(child, json_type_array)) {
			for (size_t j = 0; !rc && j < json_object_array_length(child); j++)
				rc = add_trajectory_iteration(r,
				                              json_object_array_get_idx(child, j));
		} else if (member_str(c, "error")) { /* a failed call fails again */
			rc = add_entry(r, "", NULL, member_str(c, "error"), NULL);
		} else if (member_str(c, "response")) {
			rc = add_entry(r, member_str(c, "response"), NULL, NULL, NULL);
		}
	}
	return rc;
}

/* One script item: an entry object, a bare string, or a trajectory line. */
static int add_item(struct replay *r, json_object *item, const char *where, size_t index,
                    rlm_error *err)
{
	if (json_object_is_type(item, json_type_string))
		return add_entry(r, json_object_get_string(item), NULL, NULL, NULL);
	if (!json_object_is_type(item, json_type_object))
		return r->host->error_set(err, RLM_ECONFIG,
		                          "replay script %s, item %zu: expected an object "
		                          "{\"response\": ...} or a string",
		                          where, index);
	const char *type = member_str(item, "type");
	if (type && !strcmp(type, "iteration"))
		return add_trajectory_iteration(r, item);
	if (type)
		return 0; /* metadata, summary and other trajectory lines carry no response */
	json_object *resp = NULL;
	int has = json_object_object_get_ex(item, "response", &resp);
	const char *error = member_str(item, "error");
	if (!has && !error)
		return r->host->error_set(
		        err, RLM_ECONFIG,
		        "replay script %s, item %zu: no \"response\" (or \"error\")", where, index);
	const char *text = !resp ? ""
	                   : json_object_is_type(resp, json_type_string)
	                           ? json_object_get_string(resp)
	                           : json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
	return add_entry(r, text, member_str(item, "match"), error, item);
}

static int parse_array(struct replay *r, const char *text, rlm_error *err)
{
	enum json_tokener_error jerr = json_tokener_success;
	json_object *arr = json_tokener_parse_verbose(text, &jerr);
	if (!arr || !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return r->host->error_set(err, RLM_ECONFIG,
		                          "replay script %s: not a JSON array (%s)", r->source,
		                          json_tokener_error_desc(jerr));
	}
	int rc = 0;
	for (size_t i = 0; !rc && i < json_object_array_length(arr); i++) {
		rc = add_item(r, json_object_array_get_idx(arr, i), r->source, i + 1, err);
		if (rc == RLM_ENOMEM)
			r->host->error_set(err, rc, "out of memory loading the replay script");
	}
	json_object_put(arr);
	return rc;
}

static int parse_lines(struct replay *r, char *text, rlm_error *err)
{
	size_t line_no = 0;
	int rc = 0;
	for (char *line = text; !rc && line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		line_no++;
		const char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (*p) {
			enum json_tokener_error jerr = json_tokener_success;
			json_object *item = json_tokener_parse_verbose(p, &jerr);
			if (jerr != json_tokener_success) {
				rc = r->host->error_set(
				        err, RLM_ECONFIG,
				        "replay script %s, line %zu: invalid JSON (%s)", r->source,
				        line_no, json_tokener_error_desc(jerr));
			} else {
				char where[64];
				snprintf(where, sizeof(where), "line %zu", line_no);
				rc = add_item(r, item, r->source, line_no, err);
				if (rc == RLM_ENOMEM)
					r->host->error_set(err, rc, "out of memory loading %s",
					                   where);
			}
			json_object_put(item);
		}
		line = nl ? nl + 1 : NULL;
	}
	return rc;
}

static int read_file(struct replay *r, const char *path, char **out, rlm_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return r->host->error_set(err, errno == ENOENT ? RLM_ENOTFOUND : RLM_EIO,
		                          "replay script %s: cannot open: %s", path,
		                          strerror(errno));
	size_t len = 0, cap = 65536;
	char *buf = r->host->alloc(cap);
	while (buf) {
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0 || len > REPLAY_SCRIPT_MAX)
			break;
		if (len + 1 == cap) {
			char *g = r->host->realloc(buf, cap * 2);
			if (!g) {
				r->host->free(buf);
				buf = NULL;
				break;
			}
			buf = g;
			cap *= 2;
		}
	}
	int bad = ferror(f) || len > REPLAY_SCRIPT_MAX;
	fclose(f);
	if (!buf)
		return r->host->error_set(err, RLM_ENOMEM, "out of memory reading %s", path);
	if (bad) {
		r->host->free(buf);
		return r->host->error_set(err, RLM_EIO, "replay script %s: cannot read it", path);
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static int load_script(struct replay *r, const char *script, rlm_error *err)
{
	const char *p = script;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '[') {
		r->source = r->host->str_dup("inline script");
		return r->source ? parse_array(r, p, err)
		                 : r->host->error_set(err, RLM_ENOMEM, "out of memory");
	}
	r->source = r->host->str_dup(script);
	if (!r->source)
		return r->host->error_set(err, RLM_ENOMEM, "out of memory");
	char *text = NULL;
	int rc = read_file(r, script, &text, err);
	if (rc)
		return rc;
	p = text;
	while (isspace((unsigned char)*p))
		p++;
	rc = *p == '[' ? parse_array(r, p, err) : parse_lines(r, text, err);
	r->host->free(text);
	return rc;
}

/* ---- the ops --------------------------------------------------------------------------- */

/* The core checked the options: script is set and not empty, match is null, order or key. */
static int replay_create_opts(const rlm_host_api *host, const rlm_options *opts, void **instance,
                              rlm_error *err)
{
	const char *match = host->opt_string(opts, "match");
	const char *model = host->opt_string(opts, "model");
	struct replay *r = host->alloc(sizeof(*r));
	int rc;

	*instance = NULL;
	if (!r)
		return host->error_set(err, RLM_ENOMEM, "out of memory");
	memset(r, 0, sizeof(*r));
	r->host = host;
	pthread_mutex_init(&r->lock, NULL);
	r->by_key = match && !strcmp(match, "key");
	r->model = host->str_dup(model ? model : "replay"); /* the config's null wins the default */
	rc = r->model ? load_script(r, host->opt_string(opts, "script"), err)
	              : host->error_set(err, RLM_ENOMEM, "out of memory");
	if (rc) {
		replay_free(r);
		return rc;
	}
	*instance = r;
	return 0;
}

static const char *last_user_message(const rlm_llm_request *req)
{
	for (size_t i = req->n_messages; i > 0; i--)
		if (req->messages[i - 1].role && !strcmp(req->messages[i - 1].role, "user"))
			return req->messages[i - 1].content ? req->messages[i - 1].content : "";
	return "";
}

/* Picks the entry for this call under the lock; NULL when none is left. */
static struct entry *pick(struct replay *r, const rlm_llm_request *req)
{
	if (!r->by_key) {
		while (r->next < r->n && r->entries[r->next].used)
			r->next++;
		return r->next < r->n ? &r->entries[r->next++] : NULL;
	}
	const char *text = last_user_message(req);
	struct entry *fallback = NULL;
	for (size_t i = 0; i < r->n; i++) {
		struct entry *e = &r->entries[i];
		if (e->used)
			continue;
		if (e->match && strstr(text, e->match))
			return e;
		if (!e->match && !fallback)
			fallback = e;
	}
	return fallback;
}

static long estimate_tokens(const char *s)
{
	return (long)((strlen(s) + 3) / 4);
}

static int replay_complete(void *instance, const rlm_llm_request *req, rlm_llm_response *resp,
                           rlm_error *err)
{
	struct replay *r = instance;
	const rlm_host_api *h = r->host;
	pthread_mutex_lock(&r->lock);
	struct entry *e = pick(r, req);
	size_t served = r->served;
	if (e) {
		e->used = !e->repeat;
		r->served++;
	}
	pthread_mutex_unlock(&r->lock);
	if (!e) {
		if (r->by_key) {
			const char *text = last_user_message(req);
			return h->error_set(
			        err, RLM_EBUDGET,
			        "replay script exhausted after %zu responses (%s): no entry "
			        "left whose \"match\" is in the last user message \"%.80s%s\"",
			        served, r->source, text, strlen(text) > 80 ? "..." : "");
		}
		return h->error_set(err, RLM_EBUDGET,
		                    "replay script exhausted after %zu responses (%s)", served,
		                    r->source);
	}
	if (e->delay_ms > 0) {
		double limit_s = req->timeout_s > 0 ? req->timeout_s : 0;
		const volatile int *cancel = RLM_HAS_FIELD(req, cancel) ? req->cancel : NULL;
		int late = limit_s > 0 && (double)e->delay_ms / 1000 > limit_s;

		if (h->sleep(late ? limit_s : (double)e->delay_ms / 1000, cancel) == RLM_ECANCELLED)
			return h->error_set(err, RLM_ECANCELLED, "replay: cancelled");
		if (late)
			return h->error_set(err, RLM_ETIMEOUT,
			                    "replay: no answer within the call timeout of %.3g s "
			                    "(scripted delay %ld ms)",
			                    req->timeout_s, e->delay_ms);
	}
	if (e->error)
		return h->error_set(err, RLM_ETRANSIENT, "%s", e->error);
	resp->text.data = h->str_dup(e->response);
	if (!resp->text.data)
		return h->error_set(err, RLM_ENOMEM, "out of memory");
	resp->text.len = strlen(e->response);
	long prompt = 0;
	for (size_t i = 0; i < req->n_messages; i++)
		prompt += estimate_tokens(req->messages[i].content ? req->messages[i].content : "");
	resp->prompt_tokens = e->prompt_tokens >= 0 ? e->prompt_tokens : prompt;
	resp->completion_tokens =
	        e->completion_tokens >= 0 ? e->completion_tokens : estimate_tokens(e->response);
	snprintf(resp->model, sizeof(resp->model), "%s", req->model ? req->model : r->model);
	snprintf(resp->finish_reason, sizeof(resp->finish_reason), "stop");
	return 0;
}

static void replay_destroy(void *instance)
{
	if (instance)
		replay_free(instance);
}

static const rlm_llm_ops replay_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_llm_ops),
        .complete = replay_complete,
        .destroy = replay_destroy,
        .create_opts = replay_create_opts,
};

static const rlm_plugin_desc replay_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_LLM,
        .name = REPLAY_NAME,
        .summary = "answers from a JSONL script or a recorded trajectory, in order or by key "
                   "(offline tests, demos, replays)",
        .version = "1.0.0",
        .capabilities = 0,
        .option_defs = replay_option_defs,
        .ops = &replay_ops,
};

REPLAY_ENTRY_VISIBILITY int REPLAY_ENTRY(const rlm_host_api *host, uint32_t host_abi,
                                         const rlm_plugin_desc **out);

REPLAY_ENTRY_VISIBILITY int REPLAY_ENTRY(const rlm_host_api *host, uint32_t host_abi,
                                         const rlm_plugin_desc **out)
{
	if (!out)
		return RLM_EINVAL;
	*out = NULL;
	if (!host || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR ||
	    RLM_ABI_MAJOR_OF(host->abi_version) != RLM_ABI_MAJOR ||
	    !RLM_HAS_FIELD(host, opt_object_json) || !host->alloc || !host->realloc ||
	    !host->free || !host->error_set)
		return RLM_EPLUGIN;
	*out = &replay_desc;
	return 0;
}
