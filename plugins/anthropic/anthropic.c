/* anthropic.c - the `anthropic` LLM plugin (rlm-llm-anthropic.so): Anthropic's Messages API.
 *
 * One completion is one POST {base_url}/v1/messages with x-api-key, anthropic-version and
 * {model, max_tokens, system?, messages, temperature?}. The Messages API differs from chat
 * completions in ways this file absorbs: system prompts go in their own top-level field,
 * max_tokens is required, and messages must alternate user/assistant starting with user, so
 * consecutive messages of one role are merged. Retries, backoff and Retry-After are the host's
 * HTTP helper's job; this file builds the request, maps the final status to an rlm_status
 * with the provider's own message, and parses the answer. The instance is immutable after
 * create(), so complete() is thread-safe. The API key is read from the environment once, at
 * create(), and handed to the helper as a secret so that it never reaches a log line or an
 * error message. Only host->*, libc and json-c are used. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../common/plugin_util.h"
#include "rlm/plugin.h"

#define ANTHROPIC_NAME             "anthropic"
#define ANTHROPIC_VERSION          "0.1.0"
#define ANTHROPIC_DEFAULT_BASE_URL "https://api.anthropic.com"
#define ANTHROPIC_DEFAULT_KEY_ENV  "ANTHROPIC_API_KEY"
#define ANTHROPIC_DEFAULT_VERSION  "2023-06-01"
/* The API requires max_tokens; this is sent when neither config nor request says. */
#define ANTHROPIC_DEFAULT_MAX_TOKENS 4096
/* Between merged messages and between system prompts. */
#define ANTHROPIC_JOIN "\n\n"
/* The whole call, retries included, when the request does not say. */
#define ANTHROPIC_DEFAULT_TIMEOUT_S 60.0
#define ANTHROPIC_CONNECT_TIMEOUT_S 10.0
/* More retries than this only delay the inevitable; a config asking for more is capped. */
#define ANTHROPIC_MAX_RETRIES_CAP 20
/* How much of a provider's message or of an odd body an error message quotes. */
#define ANTHROPIC_QUOTE_MAX  300
#define ANTHROPIC_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Whether a caller's struct (sized by struct_size) has the field. */
#define HAS_FIELD(ptr, type, field)                                                                \
	((ptr)->struct_size >= offsetof(type, field) + sizeof((ptr)->field))

typedef struct anthropic {
	const rlm_host_api *host;
	char *model;        /* configured model, NULL when none */
	char *url;          /* {base_url}/v1/messages */
	char *key_env;      /* the env var the key came from (for messages) */
	char *auth_line;    /* "x-api-key: <key>", NULL when the env var was unset */
	char *version_line; /* "anthropic-version: <api_version>" */
	char *key;          /* the key itself, NULL when unset; listed in secrets */
	double temperature; /* < 0: not sent */
	long max_tokens;    /* always sent */
	int max_retries;
	char **extra_headers; /* "Name: value" lines from the config's headers object */
	size_t n_extra;
	const char **secrets;  /* key and secret-looking header values, NULL-terminated */
	int user_sets_auth;    /* the config's headers carry their own x-api-key */
	int user_sets_ctype;   /* ... their own content-type */
	int user_sets_version; /* ... their own anthropic-version */
} anthropic;

static const rlm_option_spec anthropic_options[] = {
        {"model", RLM_OPT_STRING, "null",
         "model name (e.g. claude-sonnet-4-5); required unless each request names one"},
        {"base_url", RLM_OPT_STRING, "\"" ANTHROPIC_DEFAULT_BASE_URL "\"",
         "API root; the plugin POSTs to {base_url}/v1/messages"},
        {"api_key_env", RLM_OPT_STRING, "\"" ANTHROPIC_DEFAULT_KEY_ENV "\"",
         "env var holding the key sent as x-api-key (unset: no x-api-key header)"},
        {"temperature", RLM_OPT_NUMBER, "null", "sampling temperature (null: API default)"},
        {"max_tokens", RLM_OPT_INT, "4096", "answer length cap (the API requires one)"},
        {"headers", RLM_OPT_OBJECT, "{}", "extra HTTP headers, name -> value"},
        {"api_version", RLM_OPT_STRING, "\"" ANTHROPIC_DEFAULT_VERSION "\"",
         "value of the anthropic-version header"},
        {"max_retries", RLM_OPT_INT, "4", "retries of 429, 5xx and dropped connections"},
        {NULL, 0, NULL, NULL},
};

/* ---- create / destroy ---- */

static void anthropic_destroy(void *instance)
{
	anthropic *o = instance;
	const rlm_host_api *h;

	if (!o)
		return;
	h = o->host;
	for (size_t i = 0; i < o->n_extra; i++)
		h->free(o->extra_headers[i]);
	h->free(o->extra_headers);
	h->free(o->secrets);
	if (o->key) /* the key should not outlive the instance in freed memory */
		memset(o->key, 0, strlen(o->key));
	if (o->auth_line)
		memset(o->auth_line, 0, strlen(o->auth_line));
	h->free(o->key);
	h->free(o->auth_line);
	h->free(o->version_line);
	h->free(o->model);
	h->free(o->url);
	h->free(o->key_env);
	h->free(o);
}

/* Turns the config's headers object into "Name: value" lines and notes which of ours they
 * replace. */
static int parse_headers(anthropic *o, json_object *cfg, rlm_error *err)
{
	const rlm_host_api *h = o->host;
	json_object *obj;
	size_t n;

	if (!json_object_object_get_ex(cfg, "headers", &obj) ||
	    !json_object_is_type(obj, json_type_object))
		return 0;
	n = (size_t)json_object_object_length(obj);
	if (n == 0)
		return 0;
	if (!(o->extra_headers = h->alloc(n * sizeof(*o->extra_headers))))
		return h->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
	json_object_object_foreach(obj, name, val)
	{
		const char *v;

		if (!json_object_is_type(val, json_type_string))
			return h->error_set(err, RLM_ECONFIG,
			                    "anthropic: headers.%s must be a string", name);
		v = json_object_get_string(val);
		if (!pu_header_name_ok(name) || pu_value_has_newline(v))
			return h->error_set(
			        err, RLM_ECONFIG,
			        "anthropic: headers: \"%s\" is not a valid header name, or "
			        "its value has a line break",
			        name);
		if (!(o->extra_headers[o->n_extra] = pu_format_str(h, "%s: %s", name, v)))
			return h->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
		o->n_extra++;
		o->user_sets_auth |= !strcasecmp(name, "x-api-key");
		o->user_sets_ctype |= !strcasecmp(name, "content-type");
		o->user_sets_version |= !strcasecmp(name, "anthropic-version");
	}
	return 0;
}

/* The secrets list: the key, and the value part of every credential-looking extra header. */
static int collect_secrets(anthropic *o, rlm_error *err)
{
	o->secrets = pu_collect_secrets(o->host, o->key, (const char *const *)o->extra_headers,
	                                o->n_extra);
	return o->secrets ? 0 : o->host->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
}

static int read_config(anthropic *o, json_object *cfg, rlm_error *err)
{
	const rlm_host_api *h = o->host;
	const char *model = pu_opt_string(cfg, "model");
	const char *base = pu_opt_string(cfg, "base_url");
	const char *env = pu_opt_string(cfg, "api_key_env");
	const char *version = pu_opt_string(cfg, "api_version");
	const char *key;
	double num;
	size_t blen, klen;

	base = base ? base : ANTHROPIC_DEFAULT_BASE_URL;
	env = env ? env : ANTHROPIC_DEFAULT_KEY_ENV;
	version = version ? version : ANTHROPIC_DEFAULT_VERSION;
	if (pu_value_has_newline(version))
		return h->error_set(err, RLM_ECONFIG, "anthropic: api_version has a line break");
	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
		return h->error_set(
		        err, RLM_ECONFIG,
		        "anthropic: base_url \"%s\" must start with http:// or https://", base);
	blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	/* Anthropic's SDKs take the root without /v1; a root given with it works too. */
	if (blen >= 3 && !strncmp(base + blen - 3, "/v1", 3))
		blen -= 3;
	if (!(o->url = pu_format_str(h, "%.*s/v1/messages", (int)blen, base)) ||
	    !(o->key_env = pu_dup_str(h, env)) || (model && !(o->model = pu_dup_str(h, model))) ||
	    !(o->version_line = pu_format_str(h, "anthropic-version: %s", version)))
		return h->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
	if (pu_opt_number(cfg, "temperature", &num)) {
		if (num < 0)
			return h->error_set(err, RLM_ECONFIG,
			                    "anthropic: temperature must be >= 0");
		o->temperature = num;
	}
	o->max_tokens = pu_opt_number(cfg, "max_tokens", &num) && num > 0
	                        ? (long)num
	                        : ANTHROPIC_DEFAULT_MAX_TOKENS;
	o->max_retries = pu_opt_number(cfg, "max_retries", &num) ? (int)(num < 0 ? 0 : num) : 4;
	if (o->max_retries > ANTHROPIC_MAX_RETRIES_CAP)
		o->max_retries = ANTHROPIC_MAX_RETRIES_CAP;
	/* A key pasted from a file often drags its newline along: that is not the key. */
	key = getenv(env);
	klen = key ? strlen(key) : 0;
	while (klen > 0 && isspace((unsigned char)key[klen - 1]))
		klen--;
	if (klen == 0) {
		h->log(RLM_LOG_DEBUG, ANTHROPIC_NAME,
		       "env var %s is not set: requests go without an x-api-key header", env);
		return 0;
	}
	if (memchr(key, '\r', klen) || memchr(key, '\n', klen))
		return h->error_set(err, RLM_ECONFIG, "anthropic: env var %s holds a line break",
		                    env);
	if (!(o->key = pu_format_str(h, "%.*s", (int)klen, key)) ||
	    !(o->auth_line = pu_format_str(h, "x-api-key: %s", o->key)))
		return h->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
	return 0;
}

static int anthropic_create(const rlm_host_api *host, const char *config_json, void **instance,
                            rlm_error *err)
{
	json_object *cfg = NULL;
	anthropic *o;
	int rc;

	*instance = NULL;
	if (host->struct_size < offsetof(rlm_host_api, http_header) + sizeof(host->http_header) ||
	    !host->http_request || !host->http_response_free || !host->http_header)
		return host->error_set(
		        err, RLM_EPLUGIN,
		        "anthropic: this rlm's host has no HTTP helper (needs plugin "
		        "ABI 1.1 or later)");
	if (config_json && *config_json) {
		cfg = json_tokener_parse(config_json);
		if (!cfg || !json_object_is_type(cfg, json_type_object)) {
			json_object_put(cfg);
			return host->error_set(
			        err, RLM_ECONFIG,
			        "anthropic: the config section is not a JSON object");
		}
	}
	if (!(o = host->alloc(sizeof(*o)))) {
		json_object_put(cfg);
		return host->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
	}
	memset(o, 0, sizeof(*o));
	o->host = host;
	o->temperature = -1;
	if (cfg) {
		rc = read_config(o, cfg, err);
		if (rc == 0)
			rc = parse_headers(o, cfg, err);
	} else {
		json_object *empty = json_object_new_object();
		rc = empty ? read_config(o, empty, err)
		           : host->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
		json_object_put(empty);
	}
	if (rc == 0)
		rc = collect_secrets(o, err);
	json_object_put(cfg);
	if (rc) {
		anthropic_destroy(o);
		return rc;
	}
	*instance = o;
	return 0;
}

/* ---- The request ---- */

/* What one call sends, after the request's overrides. */
typedef struct call {
	const char *model;
	double temperature; /* < 0: not sent */
	long max_tokens;
	double timeout_s;
} call;

static int is_role(const rlm_llm_message *m, const char *role)
{
	return !strcmp(m->role, role);
}

/* The Messages API takes user and assistant turns only, starting with user; system prompts
 * are hoisted into their own field, so only the first other message must be a user's. */
static int check_roles(const anthropic *o, const rlm_llm_request *req, rlm_error *err)
{
	const rlm_llm_message *first = NULL;

	for (size_t i = 0; i < req->n_messages; i++) {
		const rlm_llm_message *m = &req->messages[i];

		if (!is_role(m, "system") && !is_role(m, "user") && !is_role(m, "assistant"))
			return o->host->error_set(err, RLM_EINVAL,
			                          "anthropic: message %zu has role \"%s\"; the "
			                          "Messages API takes system, user and assistant",
			                          i, m->role);
		if (!first && !is_role(m, "system"))
			first = m;
	}
	if (!first)
		return o->host->error_set(err, RLM_EINVAL,
		                          "anthropic: the request has only system messages; the "
		                          "Messages API needs a user message");
	if (!is_role(first, "user"))
		return o->host->error_set(
		        err, RLM_EINVAL,
		        "anthropic: the first non-system message is from the "
		        "assistant; the Messages API must start with a user turn");
	return 0;
}

static int resolve_call(const anthropic *o, const rlm_llm_request *req, call *c, rlm_error *err)
{
	const rlm_host_api *h = o->host;
	int rc;

	if (!req || req->struct_size < offsetof(rlm_llm_request, n_messages) + sizeof(size_t))
		return h->error_set(err, RLM_EINVAL,
		                    "anthropic: no request, or a request too small");
	if (req->n_messages == 0 || !req->messages)
		return h->error_set(err, RLM_EINVAL, "anthropic: the request has no messages");
	for (size_t i = 0; i < req->n_messages; i++)
		if (!req->messages[i].role || !*req->messages[i].role || !req->messages[i].content)
			return h->error_set(err, RLM_EINVAL,
			                    "anthropic: message %zu has no role or no content", i);
	if ((rc = check_roles(o, req, err)) != 0)
		return rc;
	c->model = HAS_FIELD(req, rlm_llm_request, model) && req->model && *req->model ? req->model
	                                                                               : o->model;
	if (!c->model)
		return h->error_set(err, RLM_ECONFIG,
		                    "anthropic: no model: set llm.model (or sub_llm.model) in the "
		                    "config, or name one in the call");
	c->temperature = HAS_FIELD(req, rlm_llm_request, temperature) && req->temperature >= 0
	                         ? req->temperature
	                         : o->temperature;
	c->max_tokens = HAS_FIELD(req, rlm_llm_request, max_tokens) && req->max_tokens > 0
	                        ? req->max_tokens
	                        : o->max_tokens;
	c->timeout_s = HAS_FIELD(req, rlm_llm_request, timeout_s) && req->timeout_s > 0
	                       ? req->timeout_s
	                       : ANTHROPIC_DEFAULT_TIMEOUT_S;
	return 0;
}

/* Adds val under key; on failure val is released. 0 or -1. */
static int add_field(json_object *obj, const char *key, json_object *val)
{
	if (!val)
		return -1;
	if (json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

/* A JSON number that prints as written ("0.7", not "0.69999999999999996"), whatever the
 * locale's decimal separator. */
static json_object *new_number(double d)
{
	char text[32];

	snprintf(text, sizeof(text), "%.6g", d);
	for (char *p = text; *p; p++)
		if (*p == ',')
			*p = '.';
	return json_object_new_double_s(d, text);
}

/* The contents of the messages in [from, to) that have the given role, joined with
 * ANTHROPIC_JOIN, as a new JSON string; NULL when out of memory. */
static json_object *joined(const anthropic *o, const rlm_llm_request *req, size_t from, size_t to,
                           const char *role)
{
	size_t len = 0, sep = strlen(ANTHROPIC_JOIN), i;
	json_object *out;
	char *buf, *p;

	for (i = from; i < to; i++)
		if (is_role(&req->messages[i], role))
			len += strlen(req->messages[i].content) + sep;
	if (!(buf = o->host->alloc(len + 1)))
		return NULL;
	for (p = buf, i = from; i < to; i++) {
		size_t n;

		if (!is_role(&req->messages[i], role))
			continue;
		if (p != buf) {
			memcpy(p, ANTHROPIC_JOIN, sep);
			p += sep;
		}
		n = strlen(req->messages[i].content);
		memcpy(p, req->messages[i].content, n);
		p += n;
	}
	*p = '\0';
	out = json_object_new_string_len(buf, (int)(p - buf));
	o->host->free(buf);
	return out;
}

/* The messages array: every run of one role (system messages hoisted out of the way) becomes
 * one turn, so turns alternate as the API requires. */
static json_object *build_turns(const anthropic *o, const rlm_llm_request *req)
{
	json_object *turns = json_object_new_array();
	size_t i = 0, j, n = req->n_messages;

	while (turns && i < n) {
		const char *role = req->messages[i].role;
		json_object *m;

		if (!strcmp(role, "system")) {
			i++;
			continue;
		}
		for (j = i + 1; j < n && (is_role(&req->messages[j], "system") ||
		                          is_role(&req->messages[j], role));
		     j++)
			;
		m = json_object_new_object();
		if (!m || add_field(m, "role", json_object_new_string(role)) ||
		    add_field(m, "content", joined(o, req, i, j, role)) ||
		    json_object_array_add(turns, m) != 0) {
			json_object_put(m);
			json_object_put(turns);
			return NULL;
		}
		i = j;
	}
	return turns;
}

static int has_system(const rlm_llm_request *req)
{
	for (size_t i = 0; i < req->n_messages; i++)
		if (is_role(&req->messages[i], "system"))
			return 1;
	return 0;
}

/* The request body as JSON text, host->alloc'ed; NULL when out of memory. */
static char *build_body(const anthropic *o, const rlm_llm_request *req, const call *c, size_t *len)
{
	json_object *root = json_object_new_object();
	const char *text;
	char *out = NULL;
	int bad = !root || add_field(root, "model", json_object_new_string(c->model)) ||
	          add_field(root, "max_tokens", json_object_new_int64(c->max_tokens));

	if (!bad && has_system(req))
		bad = add_field(root, "system", joined(o, req, 0, req->n_messages, "system"));
	if (!bad)
		bad = add_field(root, "messages", build_turns(o, req));
	if (!bad && c->temperature >= 0)
		bad = add_field(root, "temperature", new_number(c->temperature));
	if (!bad && (text = json_object_to_json_string_length(root, ANTHROPIC_JSON_FLAGS, len)) &&
	    (out = o->host->alloc(*len + 1)))
		memcpy(out, text, *len + 1);
	json_object_put(root);
	return out;
}

/* ---- The answer ---- */

static json_object *get_path(json_object *obj, const char *key, json_type type)
{
	json_object *v;

	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* The provider's error message and type from an error body: the Messages API says
 * {"type": "error", "error": {"type", "message"}}; proxies in front of it may say
 * {"error": "text"} or {"message"}. Falls back to the raw body. */
static void provider_error(const anthropic *o, const rlm_buf *body, char *msg, size_t msize,
                           char *type, size_t tsize)
{
	json_object *root = NULL, *e = NULL, *v = NULL;
	const char *m = NULL, *t = NULL;

	type[0] = '\0';
	if (body->data && body->len > 0)
		root = json_tokener_parse(body->data);
	if (json_object_is_type(root, json_type_object)) {
		if (json_object_object_get_ex(root, "error", &e) &&
		    json_object_is_type(e, json_type_object)) {
			if ((v = get_path(e, "message", json_type_string)))
				m = json_object_get_string(v);
			if ((v = get_path(e, "type", json_type_string)))
				t = json_object_get_string(v);
		} else if (json_object_is_type(e, json_type_string)) {
			m = json_object_get_string(e);
		} else if ((v = get_path(root, "message", json_type_string))) {
			m = json_object_get_string(v);
		}
	}
	if (m)
		pu_quote_text(o->secrets, m, strlen(m), msg, msize);
	else if (body->data && body->len > 0)
		pu_quote_text(o->secrets, body->data, body->len, msg, msize);
	else
		snprintf(msg, msize, "(empty body)");
	if (t)
		pu_quote_text(o->secrets, t, strlen(t), type, tsize);
	json_object_put(root);
}

/* The request id of the answer: the helper's, else the usual headers. */
static const char *request_id(const anthropic *o, const rlm_http_response *r, char *buf,
                              size_t size)
{
	if (r->request_id[0])
		return r->request_id;
	if (o->host->http_header(r, "x-request-id", buf, size) ||
	    o->host->http_header(r, "request-id", buf, size))
		return buf;
	return "";
}

/* Maps a non-2xx final status to an error with the provider's message. */
static int status_error(const anthropic *o, const rlm_http_response *r, rlm_error *err)
{
	const rlm_host_api *h = o->host;
	char msg[ANTHROPIC_QUOTE_MAX + 4], type[64], idbuf[RLM_ERROR_REQUEST_ID_MAX];
	const char *rid = request_id(o, r, idbuf, sizeof(idbuf));
	char tail[RLM_ERROR_REQUEST_ID_MAX + 32] = "";
	long st = r->status;
	int code;

	provider_error(o, &r->body, msg, sizeof(msg), type, sizeof(type));
	if (rid[0])
		snprintf(tail, sizeof(tail), " [request id %s]", rid);
	if ((st == 401 || st == 403) && !o->key && !o->user_sets_auth)
		return h->error_set_http(
		        err, RLM_EAUTH, st, rid,
		        "anthropic: %s refused the request (HTTP %ld%s%s): %s%s; no "
		        "API key was sent because env var %s is not set (export it, "
		        "or point llm.api_key_env at the variable that holds the key)",
		        o->url, st, type[0] ? ", " : "", type, msg, tail, o->key_env);
	if (st == 401 || st == 403)
		return h->error_set_http(err, RLM_EAUTH, st, rid,
		                         "anthropic: %s refused %s%s (HTTP %ld%s%s): %s%s", o->url,
		                         o->user_sets_auth ? "the credentials in llm.headers"
		                                           : "the API key from env var ",
		                         o->user_sets_auth ? "" : o->key_env, st,
		                         type[0] ? ", " : "", type, msg, tail);
	if (st == 429 || st == 402) {
		code = (st == 402 || pu_says_quota(r->body.data, r->body.len)) ? RLM_EQUOTA
		                                                               : RLM_ETRANSIENT;
		return h->error_set_http(
		        err, code, st, rid, "anthropic: %s (HTTP %ld%s%s after %d attempt%s): %s%s",
		        code == RLM_EQUOTA ? "quota or credit exhausted" : "rate limited", st,
		        type[0] ? ", " : "", type, r->attempts, r->attempts == 1 ? "" : "s", msg,
		        tail);
	}
	if (st >= 500)
		return h->error_set_http(
		        err, RLM_ETRANSIENT, st, rid,
		        "anthropic: server error (HTTP %ld%s%s after %d attempt%s): "
		        "%s%s",
		        st, type[0] ? ", " : "", type, r->attempts, r->attempts == 1 ? "" : "s",
		        msg, tail);
	if (st >= 400 && strcasestr(msg, "credit balance"))
		return h->error_set_http(err, RLM_EQUOTA, st, rid,
		                         "anthropic: credit exhausted (HTTP %ld%s%s): %s%s", st,
		                         type[0] ? ", " : "", type, msg, tail);
	if (st >= 400)
		return h->error_set_http(err, RLM_EINVAL, st, rid,
		                         "anthropic: %s rejected the request (HTTP %ld%s%s): %s%s",
		                         o->url, st, type[0] ? ", " : "", type, msg, tail);
	return h->error_set_http(err, RLM_EPROTO, st, rid,
	                         "anthropic: unexpected HTTP status %ld from %s: %s%s", st, o->url,
	                         msg, tail);
}

static int proto_error(const anthropic *o, const rlm_http_response *r, const char *what,
                       rlm_error *err)
{
	char quote[121], idbuf[RLM_ERROR_REQUEST_ID_MAX];
	const char *rid = request_id(o, r, idbuf, sizeof(idbuf));

	if (r->body.data && r->body.len > 0)
		pu_quote_text(o->secrets, r->body.data, r->body.len, quote, sizeof(quote));
	else
		snprintf(quote, sizeof(quote), "(empty)");
	return o->host->error_set_http(err, RLM_EPROTO, r->status, rid,
	                               "anthropic: HTTP %ld answer from %s %s (body: %s)",
	                               r->status, o->url, what, quote);
}

static long usage_field(json_object *usage, const char *key)
{
	json_object *v = get_path(usage, key, json_type_int);

	return v ? (long)json_object_get_int64(v) : -1;
}

/* The text blocks of content[] joined (other block types, e.g. thinking or tool_use, are
 * skipped); RLM_EPROTO when content is not an array. */
static int answer_text(const anthropic *o, json_object *content, rlm_buf *out)
{
	size_t len = 0, n, i;

	if (!json_object_is_type(content, json_type_array))
		return RLM_EPROTO;
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(content, i), *t, *type;

		type = get_path(b, "type", json_type_string);
		t = get_path(b, "text", json_type_string);
		if (type && t && !strcmp(json_object_get_string(type), "text"))
			len += (size_t)json_object_get_string_len(t);
	}
	if (!(out->data = o->host->alloc(len + 1)))
		return RLM_ENOMEM;
	out->len = 0;
	for (i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(content, i), *t, *type;

		type = get_path(b, "type", json_type_string);
		t = get_path(b, "text", json_type_string);
		if (type && t && !strcmp(json_object_get_string(type), "text")) {
			size_t tl = (size_t)json_object_get_string_len(t);
			memcpy(out->data + out->len, json_object_get_string(t), tl);
			out->len += tl;
		}
	}
	out->data[out->len] = '\0';
	return 0;
}

static int parse_answer(const anthropic *o, const rlm_http_response *r, rlm_llm_response *resp,
                        rlm_error *err)
{
	json_object *root, *content, *v, *usage;
	rlm_buf text = {NULL, 0};
	int rc;

	if (!r->body.data || r->body.len == 0)
		return proto_error(o, r, "has an empty body", err);
	root = json_tokener_parse(r->body.data);
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return proto_error(o, r, "is not a JSON object", err);
	}
	content = get_path(root, "content", json_type_array);
	if (!content)
		rc = proto_error(o, r, "has no content array", err);
	else if ((rc = answer_text(o, content, &text)) == RLM_ENOMEM)
		rc = o->host->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
	if (rc) {
		json_object_put(root);
		return rc;
	}
	resp->text = text;
	usage = get_path(root, "usage", json_type_object);
	if (HAS_FIELD(resp, rlm_llm_response, prompt_tokens))
		resp->prompt_tokens = usage_field(usage, "input_tokens");
	if (HAS_FIELD(resp, rlm_llm_response, completion_tokens))
		resp->completion_tokens = usage_field(usage, "output_tokens");
	if (HAS_FIELD(resp, rlm_llm_response, model) &&
	    (v = get_path(root, "model", json_type_string)))
		snprintf(resp->model, sizeof(resp->model), "%s", json_object_get_string(v));
	if (HAS_FIELD(resp, rlm_llm_response, finish_reason) &&
	    (v = get_path(root, "stop_reason", json_type_string)))
		snprintf(resp->finish_reason, sizeof(resp->finish_reason), "%s",
		         json_object_get_string(v));
	json_object_put(root);
	return 0;
}

/* ---- complete ---- */

/* The header lines of one call: ours (unless the config's replace them), then the config's. */
static const char **build_headers(const anthropic *o)
{
	const char **lines = o->host->alloc((o->n_extra + 5) * sizeof(*lines));
	size_t n = 0;

	if (!lines)
		return NULL;
	if (!o->user_sets_ctype)
		lines[n++] = "content-type: application/json";
	lines[n++] = "accept: application/json";
	if (!o->user_sets_version)
		lines[n++] = o->version_line;
	if (o->auth_line && !o->user_sets_auth)
		lines[n++] = o->auth_line;
	for (size_t i = 0; i < o->n_extra; i++)
		lines[n++] = o->extra_headers[i];
	lines[n] = NULL;
	return lines;
}

/* The helper got no answer (timeout, connection failures): its message, with our context. */
static int transport_error(const anthropic *o, int rc, const rlm_error *herr, double timeout_s,
                           rlm_error *err)
{
	char msg[RLM_ERROR_MESSAGE_MAX - 96];

	pu_quote_text(o->secrets, herr->message, strlen(herr->message), msg, sizeof(msg));
	if (rc == RLM_ETIMEOUT)
		return o->host->error_set_http(err, rc, herr->http_status, herr->request_id,
		                               "anthropic: no answer within %.3g s: %s", timeout_s,
		                               msg);
	return o->host->error_set_http(err, rc, herr->http_status, herr->request_id,
	                               "anthropic: %s", msg);
}

static int anthropic_complete(void *instance, const rlm_llm_request *req, rlm_llm_response *resp,
                              rlm_error *err)
{
	const anthropic *o = instance;
	const rlm_host_api *h = o->host;
	rlm_error local = RLM_ERROR_INIT;
	rlm_http_request hr;
	rlm_http_response hresp;
	rlm_error herr = RLM_ERROR_INIT;
	const char **headers;
	call c = {NULL, -1, 0, 0};
	char *body;
	size_t body_len = 0;
	double start = h->now();
	int rc;

	if (!err)
		err = &local; /* the debug line below quotes the message */
	if (!resp || resp->struct_size < offsetof(rlm_llm_response, text) + sizeof(rlm_buf))
		return h->error_set(err, RLM_EINVAL,
		                    "anthropic: no response struct, or one too small");
	pu_reset_response(resp);
	if ((rc = resolve_call(o, req, &c, err)) != 0)
		return rc;
	body = build_body(o, req, &c, &body_len);
	headers = build_headers(o);
	if (!body || !headers) {
		h->free(body);
		h->free(headers);
		return h->error_set(err, RLM_ENOMEM, "anthropic: out of memory");
	}
	memset(&hr, 0, sizeof(hr));
	hr.abi_version = RLM_ABI_VERSION;
	hr.struct_size = sizeof(hr);
	hr.method = "POST";
	hr.url = o->url;
	hr.headers = headers;
	hr.body = body;
	hr.body_len = body_len;
	hr.connect_timeout_s = c.timeout_s < ANTHROPIC_CONNECT_TIMEOUT_S
	                               ? c.timeout_s
	                               : ANTHROPIC_CONNECT_TIMEOUT_S;
	hr.timeout_s = c.timeout_s;
	hr.deadline = start + c.timeout_s;
	hr.max_retries = o->max_retries;
	hr.secrets = o->secrets;
	hr.is_final = pu_quota_is_final;
	hr.cancel = RLM_HAS_FIELD(req, cancel) ? req->cancel : NULL;
	memset(&hresp, 0, sizeof(hresp));
	hresp.abi_version = RLM_ABI_VERSION;
	hresp.struct_size = sizeof(hresp);
	rc = h->http_request(&hr, &hresp, &herr);
	h->free(body);
	h->free(headers);
	if (rc != 0)
		rc = transport_error(o, rc, &herr, c.timeout_s, err);
	else if (hresp.status >= 200 && hresp.status < 300)
		rc = parse_answer(o, &hresp, resp, err);
	else
		rc = status_error(o, &hresp, err);
	h->log(RLM_LOG_DEBUG, ANTHROPIC_NAME,
	       "POST %s model=%s: HTTP %ld, %d attempt(s), %.3f s%s%s", o->url, c.model,
	       hresp.status, hresp.attempts, h->now() - start, rc ? ": " : "",
	       rc ? err->message : "");
	h->http_response_free(&hresp);
	return rc;
}

/* ---- The descriptor ---- */

static const rlm_llm_ops anthropic_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_llm_ops),
        .create = anthropic_create,
        .complete = anthropic_complete,
        .destroy = anthropic_destroy,
};

static const rlm_plugin_desc anthropic_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_LLM,
        .name = ANTHROPIC_NAME,
        .summary = "Anthropic's Messages API (Claude models)",
        .version = ANTHROPIC_VERSION,
        .capabilities = 0,
        .options = anthropic_options,
        .ops = &anthropic_ops,
};

RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	if (!host || !out || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR)
		return RLM_EPLUGIN;
	*out = &anthropic_desc;
	return 0;
}
