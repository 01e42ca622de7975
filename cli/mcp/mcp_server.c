/* mcp_server.c - the protocol: JSON-RPC checking, the revision each request is served in, and
 * the methods (server/discover, initialize, ping, the tools and prompts methods).
 *
 * A dual-era server (basic/versioning in the 2026-07-28 spec): a request whose _meta carries
 * io.modelcontextprotocol/protocolVersion is served statelessly in 2026-07-28; `initialize`
 * selects 2025-11-25 (or an older 2025 revision the client asks for) for the stdio process,
 * or for the HTTP session it mints (Mcp-Session-Id). Nothing but protocol bookkeeping lives
 * in sessions: sandbox state is in handles, which work the same in both revisions. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp.h"

#define META_VERSION      "io.modelcontextprotocol/protocolVersion"
#define META_CAPABILITIES "io.modelcontextprotocol/clientCapabilities"
#define META_SERVER_INFO  "io.modelcontextprotocol/serverInfo"
#define MAX_SESSIONS      1024
#define LIST_TTL_MS       3600000

static const char *const legacy_versions[] = {MCP_LEGACY_VERSION, "2025-06-18", "2025-03-26", NULL};

static const char instructions[] =
        "rlm runs Recursive Language Models and persistent Python sandboxes. rlm_run answers a "
        "query over a context (the context stays in a sandboxed REPL as the variable `context`, "
        "never in the prompt). sandbox_create returns a handle; pass it to sandbox_exec, "
        "sandbox_upload, sandbox_download and sandbox_files: variables persist across calls "
        "on one handle. Destroy handles with sandbox_destroy; idle ones expire.";

struct session {
	char id[40];
	char version[16];
	double created;
	struct session *next;
};

struct mcp_server {
	rlm_config *cfg;
	struct mcp_options opts;
	struct mcp_handles *handles;
	struct mcp_tools_env env;
	pthread_mutex_t mu;
	char stdio_version[16]; /* negotiated by `initialize` on stdio, "" before */
	struct session *sessions;
	int nsessions;
};

/* ---- calls ---- */

void mcp_call_init(struct mcp_call *c)
{
	memset(c, 0, sizeof(*c));
	c->http_status = 200;
	c->progress = -1; /* the first notification may report 0 */
	pthread_mutex_init(&c->mu, NULL);
}

void mcp_call_destroy(struct mcp_call *c)
{
	pthread_mutex_destroy(&c->mu);
}

void mcp_call_cancel(struct mcp_call *c)
{
	pthread_mutex_lock(&c->mu);
	c->cancelled = 1;
	if (c->on_cancel)
		c->on_cancel(c->on_cancel_ctx);
	pthread_mutex_unlock(&c->mu);
}

void mcp_call_set_cancel_hook(struct mcp_call *c, void (*fn)(void *), void *ctx)
{
	pthread_mutex_lock(&c->mu);
	c->on_cancel = fn;
	c->on_cancel_ctx = ctx;
	/* Cancelled before the hook was set: poke at once. */
	if (fn && c->cancelled)
		fn(ctx);
	pthread_mutex_unlock(&c->mu);
}

void mcp_call_progress(struct mcp_call *c, double progress, double total, const char *message)
{
	if (!c->progress_token || !c->emit || c->cancelled)
		return;
	c->progress = progress > c->progress ? progress : c->progress + 0.001;
	json_object *params = json_object_new_object();
	json_object_object_add(params, "progressToken", json_object_get(c->progress_token));
	json_object_object_add(params, "progress", json_object_new_double(c->progress));
	if (total > 0)
		json_object_object_add(params, "total", json_object_new_double(total));
	if (message)
		json_object_object_add(params, "message", json_object_new_string(message));
	json_object *n = json_object_new_object();
	json_object_object_add(n, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(n, "method", json_object_new_string("notifications/progress"));
	json_object_object_add(n, "params", params);
	c->emit(c->emit_ctx, n);
	json_object_put(n);
}

/* ---- messages ---- */

char *mcp_to_text(json_object *msg, size_t *len)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(
	        msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	char *copy = s ? malloc(n + 1) : NULL;
	if (copy) {
		memcpy(copy, s, n + 1);
		if (len)
			*len = n;
	}
	return copy;
}

json_object *mcp_error_response(json_object *id, int code, const char *message, json_object *data)
{
	json_object *e = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	if (data)
		json_object_object_add(e, "data", data);
	json_object *r = json_object_new_object();
	json_object_object_add(r, "jsonrpc", json_object_new_string("2.0"));
	if (id)
		json_object_object_add(r, "id", json_object_get(id));
	json_object_object_add(r, "error", e);
	return r;
}

static json_object *errorf(json_object *id, struct mcp_call *call, int http_status, int code,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static json_object *errorf(json_object *id, struct mcp_call *call, int http_status, int code,
                           const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call->http_status = http_status;
	return mcp_error_response(id, code, msg, NULL);
}

static json_object *supported_versions(void)
{
	json_object *a = json_object_new_array();
	json_object_array_add(a, json_object_new_string(MCP_MODERN_VERSION));
	for (const char *const *v = legacy_versions; *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

static json_object *unsupported_version(json_object *id, struct mcp_call *call,
                                        const char *requested)
{
	json_object *data = json_object_new_object();
	json_object_object_add(data, "supported", supported_versions());
	json_object_object_add(data, "requested", json_object_new_string(requested));
	call->http_status = 400;
	return mcp_error_response(id, MCP_UNSUPPORTED_VERSION, "Unsupported protocol version",
	                          data);
}

static int is_legacy_version(const char *v)
{
	for (const char *const *l = legacy_versions; *l; l++)
		if (!strcmp(v, *l))
			return 1;
	return 0;
}

static json_object *server_info(void)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string("rlm"));
	json_object_object_add(o, "title", json_object_new_string("rlm: RLMs and sandboxes"));
	json_object_object_add(o, "version", json_object_new_string(rlm_version()));
	return o;
}

static json_object *capabilities(void)
{
	json_object *c = json_object_new_object(), *t = json_object_new_object();
	json_object *p = json_object_new_object();
	json_object_object_add(t, "listChanged", json_object_new_boolean(0));
	json_object_object_add(p, "listChanged", json_object_new_boolean(0));
	json_object_object_add(c, "tools", t);
	json_object_object_add(c, "prompts", p);
	return c;
}

static json_object *result_response(json_object *id, json_object *result, const struct mcp_call *c)
{
	if (c->modern) {
		json_object *meta = NULL;
		if (!json_object_object_get_ex(result, "_meta", &meta)) {
			meta = json_object_new_object();
			json_object_object_add(result, "_meta", meta);
		}
		json_object_object_add(meta, META_SERVER_INFO, server_info());
		if (!json_object_object_get_ex(result, "resultType", NULL))
			json_object_object_add(result, "resultType",
			                       json_object_new_string("complete"));
	}
	json_object *r = json_object_new_object();
	json_object_object_add(r, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(r, "id", json_object_get(id));
	json_object_object_add(r, "result", result);
	return r;
}

/* ---- sessions (HTTP, 2025-11-25) ---- */

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int session_new(struct mcp_server *s, const char *version, char *id, size_t size)
{
	unsigned char raw[16];
	if (mcp_random_bytes(raw, sizeof(raw)))
		return -1;
	struct session *x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(x->id + 2 * i, sizeof(x->id) - 2 * i, "%02x", raw[i]);
	snprintf(x->version, sizeof(x->version), "%s", version);
	x->created = wall_s();
	pthread_mutex_lock(&s->mu);
	if (s->nsessions >= MAX_SESSIONS) { /* drop the oldest: sessions hold no state */
		struct session **link = &s->sessions;
		while ((*link)->next)
			link = &(*link)->next;
		free(*link);
		*link = NULL;
		s->nsessions--;
	}
	x->next = s->sessions;
	s->sessions = x;
	s->nsessions++;
	pthread_mutex_unlock(&s->mu);
	snprintf(id, size, "%s", x->id);
	return 0;
}

/* Copies the session's version to out; 0 when it exists. */
static int session_version(struct mcp_server *s, const char *id, char *out, size_t size)
{
	int rc = -1;
	pthread_mutex_lock(&s->mu);
	for (struct session *x = s->sessions; x; x = x->next) {
		if (mcp_secret_equal(x->id, id)) {
			snprintf(out, size, "%s", x->version);
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int mcp_server_has_session(struct mcp_server *s, const char *session)
{
	char v[16];
	return session && session_version(s, session, v, sizeof(v)) == 0;
}

int mcp_server_end_session(struct mcp_server *s, const char *id)
{
	int rc = -1;
	pthread_mutex_lock(&s->mu);
	for (struct session **link = &s->sessions; *link; link = &(*link)->next) {
		if (mcp_secret_equal((*link)->id, id)) {
			struct session *x = *link;
			*link = x->next;
			free(x);
			s->nsessions--;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- the server ---- */

int mcp_server_new(const rlm_config *cfg, const struct mcp_options *opts, struct mcp_server **out,
                   rlm_error *err)
{
	struct mcp_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return err->code = RLM_ENOMEM;
	}
	s->opts = *opts;
	pthread_mutex_init(&s->mu, NULL);
	int rc = rlm_config_clone(cfg, &s->cfg, err);
	if (!rc)
		rc = mcp_handles_open(cfg, opts, &s->handles, err);
	if (rc) {
		mcp_server_free(s);
		return rc;
	}
	s->env = (struct mcp_tools_env){s->cfg, &s->opts, s->handles};
	*out = s;
	return 0;
}

void mcp_server_free(struct mcp_server *s)
{
	if (!s)
		return;
	mcp_handles_close(s->handles);
	while (s->sessions) {
		struct session *x = s->sessions;
		s->sessions = x->next;
		free(x);
	}
	rlm_config_free(s->cfg);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

const struct mcp_options *mcp_server_options(const struct mcp_server *s)
{
	return &s->opts;
}

static const char *method_of(json_object *msg)
{
	json_object *m;
	if (!json_object_object_get_ex(msg, "method", &m) ||
	    !json_object_is_type(m, json_type_string))
		return NULL;
	return json_object_get_string(m);
}

int mcp_server_is_long(json_object *msg)
{
	const char *m = method_of(msg);
	return m && !strcmp(m, "tools/call") && json_object_object_get_ex(msg, "id", NULL);
}

json_object *mcp_cancelled_request_id(json_object *msg)
{
	const char *m = method_of(msg);
	json_object *params, *id;
	if (!m || strcmp(m, "notifications/cancelled") ||
	    !json_object_object_get_ex(msg, "params", &params) ||
	    !json_object_object_get_ex(params, "requestId", &id))
		return NULL;
	return id;
}

/* A header value without the optional whitespace around it (RFC 9110 5.5), decoded when
 * it has the Base64 sentinel form =?base64?...?=; a malloc'ed copy. */
static char *header_value(const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= 11 && !strncmp(v, "=?base64?", 9) && !strcmp(v + n - 2, "?=")) {
		size_t len = 0;
		unsigned char *d = mcp_base64_decode(v + 9, n - 11, &len);
		char *s = d ? malloc(len + 1) : NULL;
		if (s) {
			memcpy(s, d, len);
			s[len] = 0;
		}
		free(d);
		return s;
	}
	return strndup(v, n);
}

/* 2026-07-28 over HTTP: the headers must mirror the body (Server Validation). */
static json_object *check_headers(json_object *id, struct mcp_call *call, const char *version,
                                  const char *method, json_object *params)
{
	const struct mcp_http_headers *h = call->http;
	char *hv = h->protocol_version ? header_value(h->protocol_version) : NULL;
	char *hm = h->method ? header_value(h->method) : NULL;
	int version_ok = hv && !strcmp(hv, version), method_ok = hm && !strcmp(hm, method);
	free(hv);
	free(hm);
	if (!version_ok)
		return errorf(id, call, 400, MCP_HEADER_MISMATCH,
		              "Header mismatch: MCP-Protocol-Version header %s%s%s does not match "
		              "the body's %s",
		              h->protocol_version ? "'" : "",
		              h->protocol_version ? h->protocol_version : "missing",
		              h->protocol_version ? "'" : "", version);
	if (!method_ok)
		return errorf(id, call, 400, MCP_HEADER_MISMATCH,
		              "Header mismatch: Mcp-Method header %s does not match the body's "
		              "method '%s'",
		              h->method ? h->method : "missing", method);
	const char *key = !strcmp(method, "resources/read") ? "uri" : "name";
	json_object *name;
	if ((!strcmp(method, "tools/call") || !strcmp(method, "prompts/get") ||
	     !strcmp(method, "resources/read")) &&
	    json_object_object_get_ex(params, key, &name)) {
		char *hv = h->name ? header_value(h->name) : NULL;
		int ok = hv && !strcmp(hv, json_object_get_string(name));
		free(hv);
		if (!ok)
			return errorf(
			        id, call, 400, MCP_HEADER_MISMATCH,
			        "Header mismatch: Mcp-Name header %s does not match the body's "
			        "%s",
			        h->name ? "value" : "missing", key);
	}
	return NULL;
}

/* 1 when a request carries a 2026-07-28-style protocol version in its _meta. */
static int is_modern(json_object *params)
{
	json_object *meta, *pv;
	return json_object_object_get_ex(params, "_meta", &meta) &&
	       json_object_object_get_ex(meta, META_VERSION, &pv) &&
	       !(json_object_is_type(pv, json_type_string) &&
	         is_legacy_version(json_object_get_string(pv)));
}

/* Picks the revision of a request: fills call->version and call->modern, or returns the
 * error response. */
static json_object *negotiate(struct mcp_server *s, json_object *id, const char *method,
                              json_object *params, struct mcp_call *call)
{
	json_object *meta = NULL, *pv = NULL;
	if (params)
		json_object_object_get_ex(params, "_meta", &meta);
	if (meta)
		json_object_object_get_ex(meta, META_VERSION, &pv);
	const char *version =
	        json_object_is_type(pv, json_type_string) ? json_object_get_string(pv) : NULL;
	if (pv && !version)
		return errorf(id, call, 400, MCP_INVALID_PARAMS,
		              "_meta " META_VERSION " must be a string");
	call->meta = meta;
	if (version && !is_legacy_version(version)) {
		/* A header that disagrees with the body is refused before the version is
		 * judged: intermediaries may have routed on the header. */
		char *hv = call->http && call->http->protocol_version
		                   ? header_value(call->http->protocol_version)
		                   : NULL;
		int mismatch = hv && strcmp(hv, version);
		free(hv);
		if (mismatch)
			return errorf(id, call, 400, MCP_HEADER_MISMATCH,
			              "Header mismatch: MCP-Protocol-Version header does not match "
			              "the body's %s",
			              version);
		if (strcmp(version, MCP_MODERN_VERSION))
			return unsupported_version(id, call, version);
		json_object *caps;
		if (!json_object_object_get_ex(meta, META_CAPABILITIES, &caps) ||
		    !json_object_is_type(caps, json_type_object))
			return errorf(id, call, 400, MCP_INVALID_PARAMS,
			              "_meta " META_CAPABILITIES " (an object) is required");
		if (call->http) {
			json_object *bad = check_headers(id, call, version, method, params);
			if (bad)
				return bad;
		}
		snprintf(call->version, sizeof(call->version), "%s", version);
		call->modern = 1;
		return NULL;
	}
	/* Legacy: the revision `initialize` chose for this process or session. */
	if (!strcmp(method, "initialize"))
		return NULL;
	const struct mcp_http_headers *h = call->http;
	if (h && h->session && *h->session) {
		if (session_version(s, h->session, call->version, sizeof(call->version)))
			return errorf(id, call, 404, MCP_INVALID_REQUEST,
			              "Session not found (it ended, or the server restarted): "
			              "initialize again");
	} else if (h) {
		const char *hv = h->protocol_version ? h->protocol_version : "2025-03-26";
		if (!strcmp(hv, MCP_MODERN_VERSION))
			return errorf(id, call, 400, MCP_INVALID_PARAMS,
			              "_meta " META_VERSION " is required in %s",
			              MCP_MODERN_VERSION);
		if (!is_legacy_version(hv))
			return unsupported_version(id, call, hv);
		snprintf(call->version, sizeof(call->version), "%s", hv);
	} else {
		pthread_mutex_lock(&s->mu);
		snprintf(call->version, sizeof(call->version), "%s", s->stdio_version);
		pthread_mutex_unlock(&s->mu);
		if (!call->version[0] && strcmp(method, "ping"))
			return errorf(id, call, 400, MCP_INVALID_PARAMS,
			              "no protocol version: send initialize first (%s), or put "
			              "_meta " META_VERSION " in every request (%s)",
			              MCP_LEGACY_VERSION, MCP_MODERN_VERSION);
	}
	return NULL;
}

static json_object *do_initialize(struct mcp_server *s, json_object *id, json_object *params,
                                  struct mcp_call *call)
{
	json_object *pv = NULL;
	if (params)
		json_object_object_get_ex(params, "protocolVersion", &pv);
	const char *asked = json_object_get_string(pv);
	const char *v = asked && is_legacy_version(asked) ? asked : MCP_LEGACY_VERSION;
	snprintf(call->version, sizeof(call->version), "%s", v);
	if (call->http) {
		if (session_new(s, v, call->session_out, sizeof(call->session_out)))
			return errorf(id, call, 500, MCP_INTERNAL_ERROR, "cannot mint a session");
	} else {
		pthread_mutex_lock(&s->mu);
		snprintf(s->stdio_version, sizeof(s->stdio_version), "%s", v);
		pthread_mutex_unlock(&s->mu);
	}
	json_object *r = json_object_new_object();
	json_object_object_add(r, "protocolVersion", json_object_new_string(v));
	json_object_object_add(r, "capabilities", capabilities());
	json_object_object_add(r, "serverInfo", server_info());
	json_object_object_add(r, "instructions", json_object_new_string(instructions));
	return result_response(id, r, call);
}

static json_object *do_discover(json_object *id, struct mcp_call *call)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "supportedVersions", supported_versions());
	json_object_object_add(r, "capabilities", capabilities());
	json_object_object_add(r, "instructions", json_object_new_string(instructions));
	json_object_object_add(r, "ttlMs", json_object_new_int(LIST_TTL_MS));
	json_object_object_add(r, "cacheScope", json_object_new_string("private"));
	return result_response(id, r, call);
}

static json_object *cacheable(json_object *r, const struct mcp_call *call)
{
	if (call->modern) {
		json_object_object_add(r, "ttlMs", json_object_new_int(LIST_TTL_MS));
		json_object_object_add(r, "cacheScope", json_object_new_string("private"));
	}
	return r;
}

static json_object *do_tools_call(struct mcp_server *s, json_object *id, json_object *params,
                                  struct mcp_call *call)
{
	json_object *name = NULL, *args = NULL, *meta = NULL, *token = NULL;
	if (params)
		json_object_object_get_ex(params, "name", &name);
	if (!json_object_is_type(name, json_type_string))
		return errorf(id, call, 200, MCP_INVALID_PARAMS,
		              "tools/call needs params.name (a string)");
	if (json_object_object_get_ex(params, "arguments", &args) && args &&
	    !json_object_is_type(args, json_type_object))
		return errorf(id, call, 200, MCP_INVALID_PARAMS,
		              "tools/call params.arguments must be an object");
	if (json_object_object_get_ex(params, "_meta", &meta) &&
	    json_object_object_get_ex(meta, "progressToken", &token) &&
	    (json_object_is_type(token, json_type_string) ||
	     json_object_is_type(token, json_type_int)))
		call->progress_token = token;
	json_object *empty = args ? NULL : json_object_new_object();
	int code = 0;
	char message[512] = "";
	json_object *result =
	        mcp_tools_call(&s->env, json_object_get_string(name), args ? args : empty, call,
	                       &code, message, sizeof(message));
	json_object_put(empty);
	if (!result)
		return errorf(id, call, 200, code ? code : MCP_INTERNAL_ERROR, "%s", message);
	return result_response(id, result, call);
}

static json_object *do_prompts_get(struct mcp_server *s, json_object *id, json_object *params,
                                   struct mcp_call *call)
{
	json_object *name = NULL, *args = NULL;
	if (params)
		json_object_object_get_ex(params, "name", &name);
	if (!json_object_is_type(name, json_type_string))
		return errorf(id, call, 200, MCP_INVALID_PARAMS,
		              "prompts/get needs params.name (a string)");
	json_object_object_get_ex(params, "arguments", &args);
	if (args && !json_object_is_type(args, json_type_object))
		return errorf(id, call, 200, MCP_INVALID_PARAMS,
		              "prompts/get params.arguments must be an object");
	int code = 0;
	char message[512] = "";
	json_object *r = mcp_prompts_get(json_object_get_string(name), args, s->opts.fixtures,
	                                 &code, message, sizeof(message));
	if (!r)
		return errorf(id, call, 200, code, "%s", message);
	return result_response(id, r, call);
}

static json_object *check_capability(struct mcp_server *s, json_object *id, const char *method,
                                     json_object *params, struct mcp_call *call);

static json_object *dispatch(struct mcp_server *s, json_object *id, const char *method,
                             json_object *params, struct mcp_call *call)
{
	/* initialize selects the 2025 revisions; in 2026-07-28 it no longer exists. */
	if (!strcmp(method, "initialize") && !is_modern(params))
		return do_initialize(s, id, params, call);
	json_object *bad = negotiate(s, id, method, params, call);
	if (!bad)
		bad = check_capability(s, id, method, params, call);
	if (bad)
		return bad;
	if (!strcmp(method, "server/discover") && call->modern)
		return do_discover(id, call);
	if (!strcmp(method, "ping") && !call->modern)
		return result_response(id, json_object_new_object(), call);
	if (!strcmp(method, "tools/list")) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "tools", mcp_tools_list(&s->env));
		return result_response(id, cacheable(r, call), call);
	}
	if (!strcmp(method, "tools/call"))
		return do_tools_call(s, id, params, call);
	if (!strcmp(method, "prompts/list")) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "prompts", mcp_prompts_list(s->opts.fixtures));
		return result_response(id, cacheable(r, call), call);
	}
	if (!strcmp(method, "prompts/get"))
		return do_prompts_get(s, id, params, call);
	return errorf(id, call, call->modern ? 404 : 200, MCP_METHOD_NOT_FOUND,
	              "Method not found: %s", method);
}

/* The JSON-RPC shape of msg. Returns an error response, or NULL with *method set (NULL for
 * a response from the client) and *id / *params (NULL when absent). */
static json_object *check_shape(json_object *msg, struct mcp_call *call, json_object **id,
                                const char **method, json_object **params)
{
	json_object *jsonrpc = NULL;
	*id = *params = NULL;
	*method = NULL;
	if (!json_object_is_type(msg, json_type_object))
		return errorf(NULL, call, 400, MCP_INVALID_REQUEST,
		              "Invalid Request: a JSON-RPC message is an object (batches are not "
		              "part of MCP)");
	int has_id = json_object_object_get_ex(msg, "id", id);
	*method = method_of(msg);
	if (!*method && (json_object_object_get_ex(msg, "result", NULL) ||
	                 json_object_object_get_ex(msg, "error", NULL)))
		return NULL; /* a response: this server sends no requests, nothing to match */
	if (has_id && !json_object_is_type(*id, json_type_string) &&
	    !json_object_is_type(*id, json_type_int)) {
		*id = NULL;
		return errorf(NULL, call, 400, MCP_INVALID_REQUEST,
		              "Invalid Request: id must be a string or an integer");
	}
	if (!json_object_object_get_ex(msg, "jsonrpc", &jsonrpc) ||
	    strcmp(json_object_get_string(jsonrpc), "2.0") || !*method)
		return errorf(*id, call, 400, MCP_INVALID_REQUEST,
		              "Invalid Request: jsonrpc must be \"2.0\" and method a string");
	if (json_object_object_get_ex(msg, "params", params) && *params &&
	    !json_object_is_type(*params, json_type_object))
		return errorf(*id, call, 400, MCP_INVALID_REQUEST,
		              "Invalid Request: params must be an object");
	if (!has_id)
		*id = NULL;
	return NULL;
}

/* A tool that needs a client capability the request did not declare (2026-07-28: every
 * request declares its capabilities in _meta): MissingRequiredClientCapabilityError. */
static json_object *check_capability(struct mcp_server *s, json_object *id, const char *method,
                                     json_object *params, struct mcp_call *call)
{
	json_object *name = NULL, *caps = NULL;
	if (!call->modern || strcmp(method, "tools/call") ||
	    !json_object_object_get_ex(params, "name", &name))
		return NULL;
	const char *need = mcp_tools_required_capability(&s->env, json_object_get_string(name));
	json_object_object_get_ex(call->meta, META_CAPABILITIES, &caps);
	if (!need || json_object_object_get_ex(caps, need, NULL))
		return NULL;
	json_object *data = json_object_new_object(), *req = json_object_new_object();
	json_object_object_add(req, need, json_object_new_object());
	json_object_object_add(data, "requiredCapabilities", req);
	call->http_status = 400;
	char msg[160];
	snprintf(msg, sizeof(msg), "Missing required client capability: %s", need);
	return mcp_error_response(id, MCP_MISSING_CLIENT_CAPABILITY, msg, data);
}

json_object *mcp_server_check(struct mcp_server *s, json_object *msg, struct mcp_call *call)
{
	json_object *id, *params;
	const char *method;
	json_object *bad = check_shape(msg, call, &id, &method, &params);
	if (bad || !method || !id || (!strcmp(method, "initialize") && !is_modern(params)))
		return bad;
	bad = negotiate(s, id, method, params, call);
	return bad ? bad : check_capability(s, id, method, params, call);
}

json_object *mcp_server_handle(struct mcp_server *s, json_object *msg, struct mcp_call *call)
{
	json_object *id, *params;
	const char *method;
	json_object *bad = check_shape(msg, call, &id, &method, &params);
	if (bad || !method || !id)
		return bad; /* notifications: initialized, cancelled (the transport's) */
	return dispatch(s, id, method, params, call);
}
