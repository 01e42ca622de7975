/* chat_http.c - the provider-independent half of an LLM plugin (see chat_http.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif

#include "chat_http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugin_util.h"

/* The whole call, retries included, when the request does not say. */
#define CHAT_DEFAULT_TIMEOUT_S 60.0
#define CHAT_CONNECT_TIMEOUT_S 10.0

struct pu_chat {
	const rlm_host_api *host;
	const pu_chat_dialect *d;
	char *model;        /* configured model, NULL when none */
	char *url;          /* {base_url}{path} */
	char *key_env;      /* the env var the key came from (for messages) */
	char *key;          /* the key itself, NULL when unset; listed in secrets */
	double temperature; /* < 0: not sent */
	long max_tokens;    /* <= 0: not sent */
	int max_retries;
	char **extra_headers; /* "Name: value" lines from the config's headers object */
	size_t n_extra;
	/* Content-Type, Accept, the key's header and the dialect's, each left out when the
	 * config's headers set the same name. */
	char *defaults[3 + PU_CHAT_EXTRA_DEFAULTS]; /* "Name: value" lines */
	size_t n_defaults;
	const char **secrets; /* key and secret-looking header values, NULL-terminated */
	int user_sets_auth;   /* the config's headers carry their own key header */
};

/* Whether a caller's struct (sized by struct_size) has the field. */
#define HAS(ptr, type, field) ((ptr)->struct_size >= offsetof(type, field) + sizeof((ptr)->field))

const rlm_host_api *pu_chat_host(const pu_chat *c)
{
	return c->host;
}

/* ---- JSON helpers for dialects ---- */

int pu_json_add(json_object *obj, const char *key, json_object *val)
{
	if (!val)
		return -1;
	if (json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

json_object *pu_json_number(double d)
{
	char text[32];

	snprintf(text, sizeof(text), "%.6g", d);
	for (char *p = text; *p; p++)
		if (*p == ',')
			*p = '.';
	return json_object_new_double_s(d, text);
}

json_object *pu_json_get(json_object *obj, const char *key, json_type type)
{
	json_object *v;

	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

char *pu_json_text(const rlm_host_api *h, json_object *root, size_t *len)
{
	const char *text = json_object_to_json_string_length(root, PU_CHAT_JSON_FLAGS, len);
	char *out = text ? h->alloc(*len + 1) : NULL;

	if (out)
		memcpy(out, text, *len + 1);
	return out;
}

/* ---- create / destroy ---- */

void pu_chat_destroy(pu_chat *c)
{
	const rlm_host_api *h;

	if (!c)
		return;
	h = c->host;
	for (size_t i = 0; i < c->n_extra; i++)
		h->free(c->extra_headers[i]);
	h->free(c->extra_headers);
	for (size_t i = 0; i < c->n_defaults; i++) {
		/* the key's line holds the key: it should not outlive the instance in freed memory
		 */
		memset(c->defaults[i], 0, strlen(c->defaults[i]));
		h->free(c->defaults[i]);
	}
	h->free(c->secrets);
	if (c->key)
		memset(c->key, 0, strlen(c->key));
	h->free(c->key);
	h->free(c->model);
	h->free(c->url);
	h->free(c->key_env);
	h->free(c);
}

static int user_sets(const pu_chat *c, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < c->n_extra; i++)
		if (!strncasecmp(c->extra_headers[i], name, n) && c->extra_headers[i][n] == ':')
			return 1;
	return 0;
}

int pu_chat_add_default_header(pu_chat *c, const char *name, const char *value, rlm_error *err)
{
	const rlm_host_api *h = c->host;

	if (c->n_defaults >= sizeof(c->defaults) / sizeof(c->defaults[0]))
		return h->error_set(err, RLM_EPLUGIN, "%s: too many default headers", c->d->name);
	if (pu_value_has_newline(value))
		return h->error_set(err, RLM_ECONFIG, "%s: the value of %s has a line break",
		                    c->d->name, name);
	if (user_sets(c, name))
		return 0;
	char *line = h->str_printf("%s: %s", name, value);
	if (!line)
		return h->error_set(err, RLM_ENOMEM, "%s: out of memory", c->d->name);
	c->defaults[c->n_defaults++] = line;
	return 0;
}

/* Turns the config's headers object into "Name: value" lines. */
static int parse_headers(pu_chat *c, const pu_opts *o, rlm_error *err)
{
	const rlm_host_api *h = c->host;
	const char *pn = c->d->name;
	json_object *obj = pu_opt_object(o, "headers");
	size_t n = obj ? (size_t)json_object_object_length(obj) : 0;
	int rc = 0;

	if (n > 0 && !(c->extra_headers = h->alloc(n * sizeof(*c->extra_headers))))
		rc = h->error_set(err, RLM_ENOMEM, "%s: out of memory", pn);
	if (n > 0 && !rc) {
		json_object_object_foreach(obj, name, val)
		{
			const char *v = json_object_get_string(val);

			if (!json_object_is_type(val, json_type_string))
				rc = h->error_set(err, RLM_ECONFIG,
				                  "%s: headers.%s must be a string", pn, name);
			else if (!pu_header_name_ok(name) || pu_value_has_newline(v))
				rc = h->error_set(
				        err, RLM_ECONFIG,
				        "%s: headers: \"%s\" is not a valid header name, or "
				        "its value has a line break",
				        pn, name);
			else if (!(c->extra_headers[c->n_extra] = h->str_printf("%s: %s", name, v)))
				rc = h->error_set(err, RLM_ENOMEM, "%s: out of memory", pn);
			if (rc)
				break;
			c->n_extra++;
		}
	}
	json_object_put(obj);
	c->user_sets_auth = user_sets(c, c->d->key_header);
	return rc;
}

/* The key from the environment: a key pasted from a file often drags its newline along, and
 * that is not the key. */
static int read_key(pu_chat *c, rlm_error *err)
{
	const rlm_host_api *h = c->host;
	const char *key = getenv(c->key_env);
	size_t klen = key ? strlen(key) : 0;

	while (klen > 0 && isspace((unsigned char)key[klen - 1]))
		klen--;
	if (klen == 0) {
		h->log(RLM_LOG_DEBUG, c->d->name,
		       "env var %s is not set: requests go without a %s header", c->key_env,
		       c->d->key_header);
		return 0;
	}
	if (memchr(key, '\r', klen) || memchr(key, '\n', klen))
		return h->error_set(err, RLM_ECONFIG, "%s: env var %s holds a line break",
		                    c->d->name, c->key_env);
	if (!(c->key = h->str_printf("%.*s", (int)klen, key)))
		return h->error_set(err, RLM_ENOMEM, "%s: out of memory", c->d->name);
	char *value = h->str_printf("%s%s", c->d->key_prefix, c->key);
	if (!value)
		return h->error_set(err, RLM_ENOMEM, "%s: out of memory", c->d->name);
	int rc = pu_chat_add_default_header(c, c->d->key_header, value, err);
	memset(value, 0, strlen(value));
	h->free(value);
	return rc;
}

static int read_config(pu_chat *c, const pu_opts *cfg, rlm_error *err)
{
	const rlm_host_api *h = c->host;
	const char *pn = c->d->name;
	const char *model = pu_opt_string(cfg, "model");
	const char *base = pu_opt_string(cfg, "base_url");
	const char *env = pu_opt_string(cfg, "api_key_env");
	double num;
	size_t blen, slen;

	base = base ? base : c->d->default_base_url;
	env = env ? env : c->d->default_key_env;
	if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
		return h->error_set(err, RLM_ECONFIG,
		                    "%s: base_url \"%s\" must start with http:// or https://", pn,
		                    base);
	blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	slen = c->d->strip_suffix ? strlen(c->d->strip_suffix) : 0;
	if (slen && blen >= slen && !strncmp(base + blen - slen, c->d->strip_suffix, slen))
		blen -= slen;
	if (!(c->url = h->str_printf("%.*s%s", (int)blen, base, c->d->path)) ||
	    !(c->key_env = h->str_dup(env)) || (model && !(c->model = h->str_dup(model))))
		return h->error_set(err, RLM_ENOMEM, "%s: out of memory", pn);
	if (pu_opt_number(cfg, "temperature", &num)) /* >= 0: PU_CHAT_OPTION_DEFS */
		c->temperature = num;
	c->max_tokens = pu_opt_number(cfg, "max_tokens", &num) && num > 0
	                        ? (long)num
	                        : c->d->default_max_tokens;
	c->max_retries = pu_opt_number(cfg, "max_retries", &num) ? (int)num : 4; /* [0, 20] */
	return 0;
}

/* The header lines every call sends before the key and the dialect's. */
static int add_standard_headers(pu_chat *c, rlm_error *err)
{
	int rc = pu_chat_add_default_header(c, "Content-Type", "application/json", err);
	return rc ? rc : pu_chat_add_default_header(c, "Accept", "application/json", err);
}

/* The instance from the options, read alike from the view or the JSON section. */
static int chat_create(const rlm_host_api *host, const pu_chat_dialect *d, const pu_opts *o,
                       pu_chat **out, rlm_error *err)
{
	pu_chat *c;
	int rc;

	*out = NULL;
	if (!(c = host->alloc(sizeof(*c))))
		return host->error_set(err, RLM_ENOMEM, "%s: out of memory", d->name);
	memset(c, 0, sizeof(*c));
	c->host = host;
	c->d = d;
	c->temperature = -1;
	rc = read_config(c, o, err);
	if (!rc)
		rc = parse_headers(c, o, err);
	if (!rc)
		rc = add_standard_headers(c, err);
	if (!rc)
		rc = read_key(c, err);
	if (!rc && d->configure)
		rc = d->configure(c, o, err);
	if (!rc && !(c->secrets = pu_collect_secrets(
	                     host, c->key, (const char *const *)c->extra_headers, c->n_extra)))
		rc = host->error_set(err, RLM_ENOMEM, "%s: out of memory", d->name);
	if (rc) {
		pu_chat_destroy(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* The HTTP helper came with ABI 1.1; the string, redaction and option readers with 1.2. */
static int host_ok(const rlm_host_api *host, const pu_chat_dialect *d, rlm_error *err)
{
	if (RLM_HAS_FIELD(host, opt_object_json) && host->http_request && host->str_printf &&
	    host->redact && host->opt_object_json)
		return 0;
	return host->error_set(err, RLM_EPLUGIN,
	                       "%s: this rlm's host is too old (needs plugin ABI 1.2 or later)",
	                       d->name);
}

int pu_chat_create_opts(const rlm_host_api *host, const pu_chat_dialect *d, const rlm_options *opts,
                        pu_chat **out, rlm_error *err)
{
	pu_opts o = {host, opts, NULL};

	*out = NULL;
	return host_ok(host, d, err) ? RLM_EPLUGIN : chat_create(host, d, &o, out, err);
}

int pu_chat_create(const rlm_host_api *host, const pu_chat_dialect *d, const char *config_json,
                   pu_chat **out, rlm_error *err)
{
	pu_opts o = {host, NULL, NULL};
	int rc;

	*out = NULL;
	if (host_ok(host, d, err))
		return RLM_EPLUGIN;
	o.json = config_json && *config_json ? json_tokener_parse(config_json)
	                                     : json_object_new_object();
	if (!json_object_is_type(o.json, json_type_object))
		rc = host->error_set(err, RLM_ECONFIG,
		                     "%s: the config section is not a JSON object", d->name);
	else
		rc = chat_create(host, d, &o, out, err);
	json_object_put(o.json);
	return rc;
}

/* ---- the request ---- */

static int resolve_call(const pu_chat *c, const rlm_llm_request *req, pu_chat_call *call,
                        rlm_error *err)
{
	const rlm_host_api *h = c->host;
	const char *pn = c->d->name;

	if (!req || req->struct_size < offsetof(rlm_llm_request, n_messages) + sizeof(size_t))
		return h->error_set(err, RLM_EINVAL, "%s: no request, or a request too small", pn);
	if (req->n_messages == 0 || !req->messages)
		return h->error_set(err, RLM_EINVAL, "%s: the request has no messages", pn);
	for (size_t i = 0; i < req->n_messages; i++)
		if (!req->messages[i].role || !*req->messages[i].role || !req->messages[i].content)
			return h->error_set(err, RLM_EINVAL,
			                    "%s: message %zu has no role or no content", pn, i);
	if (c->d->check) {
		int rc = c->d->check(c, req, err);
		if (rc)
			return rc;
	}
	call->model = HAS(req, rlm_llm_request, model) && req->model && *req->model ? req->model
	                                                                            : c->model;
	if (!call->model)
		return h->error_set(
		        err, RLM_ECONFIG,
		        "%s: no model: set llm.model (or sub_llm.model) in the config, or "
		        "name one in the call",
		        pn);
	call->temperature = HAS(req, rlm_llm_request, temperature) && req->temperature >= 0
	                            ? req->temperature
	                            : c->temperature;
	call->max_tokens = HAS(req, rlm_llm_request, max_tokens) && req->max_tokens > 0
	                           ? req->max_tokens
	                           : c->max_tokens;
	call->timeout_s = HAS(req, rlm_llm_request, timeout_s) && req->timeout_s > 0
	                          ? req->timeout_s
	                          : CHAT_DEFAULT_TIMEOUT_S;
	return 0;
}

/* The header lines of one call: the defaults the config did not replace, then the config's. */
static const char **build_headers(const pu_chat *c)
{
	const char **lines = c->host->alloc((c->n_defaults + c->n_extra + 1) * sizeof(*lines));
	size_t n = 0;

	if (!lines)
		return NULL;
	for (size_t i = 0; i < c->n_defaults; i++)
		lines[n++] = c->defaults[i];
	for (size_t i = 0; i < c->n_extra; i++)
		lines[n++] = c->extra_headers[i];
	lines[n] = NULL;
	return lines;
}

/* ---- the answer ---- */

/* The provider's error message and type from an error body: {"error": {"message", "code" or
 * "type"}} (OpenAI, Anthropic and most compatible servers), {"error": "text"}, {"message"}
 * (vLLM, proxies), {"detail": ...} (FastAPI-based servers); else the raw body. */
static void provider_error(const pu_chat *c, const rlm_buf *body, char *msg, size_t msize,
                           char *type, size_t tsize)
{
	json_object *root = NULL, *e = NULL, *v = NULL;
	const char *m = NULL, *t = NULL;

	type[0] = '\0';
	if (body->data && body->len > 0)
		root = json_tokener_parse(body->data);
	if (json_object_is_type(root, json_type_object)) {
		if ((e = pu_json_get(root, "error", json_type_object))) {
			if ((v = pu_json_get(e, "message", json_type_string)))
				m = json_object_get_string(v);
			if ((v = pu_json_get(e, "code", json_type_string)) ||
			    (v = pu_json_get(e, "type", json_type_string)))
				t = json_object_get_string(v);
		} else if ((v = pu_json_get(root, "error", json_type_string)) ||
		           (v = pu_json_get(root, "message", json_type_string))) {
			m = json_object_get_string(v);
		} else if (json_object_object_get_ex(root, "detail", &v)) {
			m = json_object_to_json_string_ext(v, PU_CHAT_JSON_FLAGS);
		}
	}
	if (m)
		pu_quote_text(c->host, c->secrets, m, strlen(m), msg, msize);
	else if (body->data && body->len > 0)
		pu_quote_text(c->host, c->secrets, body->data, body->len, msg, msize);
	else
		snprintf(msg, msize, "(empty body)");
	if (t)
		pu_quote_text(c->host, c->secrets, t, strlen(t), type, tsize);
	json_object_put(root);
}

/* The request id of the answer: the helper's, else the usual headers. */
static const char *request_id(const pu_chat *c, const rlm_http_response *r, char *buf, size_t size)
{
	if (r->request_id[0])
		return r->request_id;
	if (c->host->http_header(r, "x-request-id", buf, size) ||
	    c->host->http_header(r, "request-id", buf, size))
		return buf;
	return "";
}

/* Maps a non-2xx final status to an error with the provider's message. */
static int status_error(const pu_chat *c, const rlm_http_response *r, rlm_error *err)
{
	const rlm_host_api *h = c->host;
	const char *pn = c->d->name;
	char msg[PU_CHAT_QUOTE_MAX + 4], type[64], idbuf[RLM_ERROR_REQUEST_ID_MAX];
	const char *rid = request_id(c, r, idbuf, sizeof(idbuf));
	char tail[RLM_ERROR_REQUEST_ID_MAX + 32] = "";
	const char *sep = "";
	long st = r->status;
	int code;

	provider_error(c, &r->body, msg, sizeof(msg), type, sizeof(type));
	if (type[0])
		sep = ", ";
	if (rid[0])
		snprintf(tail, sizeof(tail), " [request id %s]", rid);
	if ((st == 401 || st == 403) && !c->key && !c->user_sets_auth)
		return h->error_set_http(
		        err, RLM_EAUTH, st, rid,
		        "%s: %s refused the request (HTTP %ld%s%s): %s%s; no API key "
		        "was sent because env var %s is not set (export it, or point "
		        "llm.api_key_env at the variable that holds the key)",
		        pn, c->url, st, sep, type, msg, tail, c->key_env);
	if (st == 401 || st == 403)
		return h->error_set_http(err, RLM_EAUTH, st, rid,
		                         "%s: %s refused %s%s (HTTP %ld%s%s): %s%s", pn, c->url,
		                         c->user_sets_auth ? "the credentials in llm.headers"
		                                           : "the API key from env var ",
		                         c->user_sets_auth ? "" : c->key_env, st, sep, type, msg,
		                         tail);
	if (st == 429 || st == 402) {
		code = (st == 402 || pu_says_quota(r->body.data, r->body.len)) ? RLM_EQUOTA
		                                                               : RLM_ETRANSIENT;
		return h->error_set_http(
		        err, code, st, rid, "%s: %s (HTTP %ld%s%s after %d attempt%s): %s%s", pn,
		        code == RLM_EQUOTA ? "quota or credit exhausted" : "rate limited", st, sep,
		        type, r->attempts, r->attempts == 1 ? "" : "s", msg, tail);
	}
	if (st >= 500)
		return h->error_set_http(err, RLM_ETRANSIENT, st, rid,
		                         "%s: server error (HTTP %ld%s%s after %d attempt%s): %s%s",
		                         pn, st, sep, type, r->attempts,
		                         r->attempts == 1 ? "" : "s", msg, tail);
	/* A refusal that says the account has no credit is a quota error, not a bad request. */
	if (st >= 400 && pu_says_quota(msg, strlen(msg)))
		return h->error_set_http(err, RLM_EQUOTA, st, rid,
		                         "%s: quota or credit exhausted (HTTP %ld%s%s): %s%s", pn,
		                         st, sep, type, msg, tail);
	if (st >= 400)
		return h->error_set_http(err, RLM_EINVAL, st, rid,
		                         "%s: %s rejected the request (HTTP %ld%s%s): %s%s", pn,
		                         c->url, st, sep, type, msg, tail);
	return h->error_set_http(err, RLM_EPROTO, st, rid,
	                         "%s: unexpected HTTP status %ld from %s: %s%s", pn, st, c->url,
	                         msg, tail);
}

static int proto_error(const pu_chat *c, const rlm_http_response *r, const char *what,
                       rlm_error *err)
{
	char quote[121], idbuf[RLM_ERROR_REQUEST_ID_MAX];
	const char *rid = request_id(c, r, idbuf, sizeof(idbuf));

	if (r->body.data && r->body.len > 0)
		pu_quote_text(c->host, c->secrets, r->body.data, r->body.len, quote, sizeof(quote));
	else
		snprintf(quote, sizeof(quote), "(empty)");
	return c->host->error_set_http(err, RLM_EPROTO, r->status, rid,
	                               "%s: HTTP %ld answer from %s %s (body: %s)", c->d->name,
	                               r->status, c->url, what, quote);
}

static int parse_answer(const pu_chat *c, const rlm_http_response *r, rlm_llm_response *resp,
                        rlm_error *err)
{
	pu_chat_answer a = {{NULL, 0}, -1, -1, NULL, NULL};
	const char *missing = "has no answer";
	json_object *root;
	int rc;

	if (!r->body.data || r->body.len == 0)
		return proto_error(c, r, "has an empty body", err);
	root = json_tokener_parse(r->body.data);
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return proto_error(c, r, "is not a JSON object", err);
	}
	rc = c->d->read_answer(c, root, &a, &missing);
	if (rc == RLM_ENOMEM)
		rc = c->host->error_set(err, RLM_ENOMEM, "%s: out of memory", c->d->name);
	else if (rc)
		rc = proto_error(c, r, missing, err);
	if (rc) {
		c->host->free(a.text.data);
		json_object_put(root);
		return rc;
	}
	resp->text = a.text;
	if (HAS(resp, rlm_llm_response, prompt_tokens))
		resp->prompt_tokens = a.prompt_tokens;
	if (HAS(resp, rlm_llm_response, completion_tokens))
		resp->completion_tokens = a.completion_tokens;
	if (HAS(resp, rlm_llm_response, model) && a.model)
		snprintf(resp->model, sizeof(resp->model), "%s", a.model);
	if (HAS(resp, rlm_llm_response, finish_reason) && a.finish_reason)
		snprintf(resp->finish_reason, sizeof(resp->finish_reason), "%s", a.finish_reason);
	json_object_put(root);
	return 0;
}

/* ---- complete ---- */

/* The helper got no answer (timeout, connection failures): its message, with our context. */
static int transport_error(const pu_chat *c, int rc, const rlm_error *herr, double timeout_s,
                           rlm_error *err)
{
	char msg[RLM_ERROR_MESSAGE_MAX - 96];

	pu_quote_text(c->host, c->secrets, herr->message, strlen(herr->message), msg, sizeof(msg));
	if (rc == RLM_ETIMEOUT)
		return c->host->error_set_http(err, rc, herr->http_status, herr->request_id,
		                               "%s: no answer within %.3g s: %s", c->d->name,
		                               timeout_s, msg);
	return c->host->error_set_http(err, rc, herr->http_status, herr->request_id, "%s: %s",
	                               c->d->name, msg);
}

int pu_chat_complete(const pu_chat *c, const rlm_llm_request *req, rlm_llm_response *resp,
                     rlm_error *err)
{
	const rlm_host_api *h = c->host;
	rlm_error local = RLM_ERROR_INIT;
	rlm_http_request hr;
	rlm_http_response hresp;
	rlm_error herr = RLM_ERROR_INIT;
	const char **headers;
	pu_chat_call call = {NULL, -1, 0, 0};
	char *body;
	size_t body_len = 0;
	double start = h->now();
	int rc;

	if (!err)
		err = &local; /* the debug line below quotes the message */
	if (!resp || resp->struct_size < offsetof(rlm_llm_response, text) + sizeof(rlm_buf))
		return h->error_set(err, RLM_EINVAL, "%s: no response struct, or one too small",
		                    c->d->name);
	pu_reset_response(resp);
	if ((rc = resolve_call(c, req, &call, err)) != 0)
		return rc;
	body = c->d->build_body(c, req, &call, &body_len);
	headers = build_headers(c);
	if (!body || !headers) {
		h->free(body);
		h->free(headers);
		return h->error_set(err, RLM_ENOMEM, "%s: out of memory", c->d->name);
	}
	memset(&hr, 0, sizeof(hr));
	hr.abi_version = RLM_ABI_VERSION;
	hr.struct_size = sizeof(hr);
	hr.method = "POST";
	hr.url = c->url;
	hr.headers = headers;
	hr.body = body;
	hr.body_len = body_len;
	hr.connect_timeout_s =
	        call.timeout_s < CHAT_CONNECT_TIMEOUT_S ? call.timeout_s : CHAT_CONNECT_TIMEOUT_S;
	hr.timeout_s = call.timeout_s;
	hr.deadline = start + call.timeout_s;
	hr.max_retries = c->max_retries;
	hr.secrets = c->secrets;
	hr.is_final = pu_quota_is_final;
	hr.cancel = RLM_HAS_FIELD(req, cancel) ? req->cancel : NULL;
	memset(&hresp, 0, sizeof(hresp));
	hresp.abi_version = RLM_ABI_VERSION;
	hresp.struct_size = sizeof(hresp);
	rc = h->http_request(&hr, &hresp, &herr);
	h->free(body);
	h->free(headers);
	if (rc != 0)
		rc = transport_error(c, rc, &herr, call.timeout_s, err);
	else if (hresp.status >= 200 && hresp.status < 300)
		rc = parse_answer(c, &hresp, resp, err);
	else
		rc = status_error(c, &hresp, err);
	h->log(RLM_LOG_DEBUG, c->d->name, "POST %s model=%s: HTTP %ld, %d attempt(s), %.3f s%s%s",
	       c->url, call.model, hresp.status, hresp.attempts, h->now() - start, rc ? ": " : "",
	       rc ? err->message : "");
	h->http_response_free(&hresp);
	return rc;
}
