/* mcp_tools.c - the tools `rlm mcp` serves, their JSON Schemas, and the prompts.
 *
 * Every tool is one row of `tools` below: its input schema (the only rule arguments are
 * checked against, see mcp_schema.c), its output schema (what structuredContent holds), and
 * the function. Every result carries structuredContent and a text rendering of it; failures a
 * model can act on (a bad argument, an unknown handle, a sandbox error) are tool execution
 * errors (isError) with {error: {code, message}}; only an unknown tool is a protocol error. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mcp.h"

#define MAX_FILE_BYTES   (32L * 1024 * 1024) /* sandbox_download's largest file */
#define MAX_LIST_ENTRIES 1000
#define HELPER_SCOPE     "rlm_mcp" /* namespace of the server's own cells */
#define PROGRESS_PRINTED 200       /* characters of printed output in a progress message */
#define TRAJ_LINE_MAX    (8L * 1024 * 1024)
#define PREVIEW_CHARS    4000 /* of stdout/stderr in a sandbox_exec text rendering */

/* ---- results ---- */

json_object *mcp_tool_result(json_object *structured, const char *text, int is_error)
{
	json_object *r = json_object_new_object(), *content = json_object_new_array();
	json_object *t = json_object_new_object();
	json_object_object_add(t, "type", json_object_new_string("text"));
	json_object_object_add(t, "text", json_object_new_string(text ? text : ""));
	json_object_array_add(content, t);
	json_object_object_add(r, "content", content);
	json_object_object_add(r, "structuredContent", structured);
	json_object_object_add(r, "isError", json_object_new_boolean(is_error));
	return r;
}

json_object *mcp_tool_error(const char *code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *e = json_object_new_object(), *s = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(s, "error", e);
	char text[2200];
	snprintf(text, sizeof(text), "error (%s): %s", code, msg);
	return mcp_tool_result(s, text, 1);
}

static json_object *rlm_failure(const char *what, const rlm_error *err)
{
	return mcp_tool_error(rlm_status_name(err->code), "%s: %s", what, err->message);
}

static const char *arg_string(json_object *args, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(args, key, &v) && json_object_is_type(v, json_type_string)
	               ? json_object_get_string(v)
	               : NULL;
}

static json_object *parse_or_null(const char *text)
{
	return text ? json_tokener_parse(text) : NULL;
}

/* ---- sandbox calls: lease a handle, poke it on cancel ---- */

static void interrupt_interp(void *ctx)
{
	rlm_interp_interrupt(ctx, NULL);
}

struct leased {
	const char *id;
	rlm_interp *in;
};

static json_object *lease(const struct mcp_tools_env *env, json_object *args, struct mcp_call *call,
                          struct leased *l)
{
	rlm_error err = RLM_ERROR_INIT;
	l->id = arg_string(args, "sandbox");
	if (mcp_handle_lease(env->handles, l->id, &call->cancelled, &l->in, &err))
		return mcp_tool_error(err.code == RLM_ENOTFOUND ? "unknown_sandbox"
		                                                : rlm_status_name(err.code),
		                      "%s", err.message);
	mcp_call_set_cancel_hook(call, interrupt_interp, l->in);
	return NULL;
}

static void unlease(const struct mcp_tools_env *env, struct mcp_call *call, struct leased *l)
{
	mcp_call_set_cancel_hook(call, NULL, NULL);
	mcp_handle_unlease(env->handles, l->id);
}

/* Runs one of the server's own cells in its own namespace (the user's stays untouched) and
 * returns what it SUBMITted, or a tool error. */
static json_object *helper_cell(rlm_interp *in, const char *code, json_object *vars,
                                json_object **submitted)
{
	rlm_exec_options o = RLM_EXEC_OPTIONS_INIT;
	o.scope = HELPER_SCOPE;
	o.timeout_s = 60;
	o.vars_json = json_object_to_json_string_ext(vars, JSON_C_TO_STRING_PLAIN);
	rlm_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	json_object *fail = NULL;
	if (rlm_interp_execute_ex(in, code, &o, &res, &err))
		fail = rlm_failure("sandbox", &err);
	else if (res->error)
		fail = mcp_tool_error("sandbox_error", "%s",
		                      res->error->line ? res->error->line
		                                       : "the helper cell failed");
	else if (!res->submit_json || !(*submitted = json_tokener_parse(res->submit_json)))
		fail = mcp_tool_error("sandbox_error", "the helper cell returned nothing");
	rlm_result_free(res);
	return fail;
}

/* ---- sandbox_create ---- */

/* Backend options a client may set: resources and the image. Everything that could reach a
 * host path, a credential or the network (pass_env, env, api_url, python, workdir_root,
 * isolation, network, sandbox_uid, context_paths...) only comes from the server's config. */
static const char create_options_schema[] =
        "{\"type\":\"object\",\"additionalProperties\":false,\"description\":\"backend options "
        "a client may set (others come from the server's config only)\",\"properties\":{"
        "\"memory_mb\":{\"type\":\"integer\",\"minimum\":0},"
        "\"cpu_seconds\":{\"type\":\"integer\",\"minimum\":0},"
        "\"max_processes\":{\"type\":\"integer\",\"minimum\":0},"
        "\"max_file_size_mb\":{\"type\":\"integer\",\"minimum\":0},"
        "\"max_open_files\":{\"type\":\"integer\",\"minimum\":0},"
        "\"cpu\":{\"type\":\"integer\",\"minimum\":1},"
        "\"memory\":{\"type\":\"integer\",\"minimum\":1},"
        "\"disk\":{\"type\":\"integer\",\"minimum\":1},"
        "\"auto_stop_minutes\":{\"type\":\"integer\",\"minimum\":0},"
        "\"timeout_s\":{\"type\":\"number\",\"minimum\":0},"
        "\"image\":{\"type\":\"string\",\"maxLength\":512},"
        "\"snapshot\":{\"type\":\"string\",\"maxLength\":512},"
        "\"target\":{\"type\":\"string\",\"maxLength\":64},"
        "\"repo_url\":{\"type\":\"string\",\"maxLength\":2048},"
        "\"repo_ref\":{\"type\":\"string\",\"maxLength\":256}}}";

static int name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (const char *p = s; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && !strchr("._-", *p))
			return 0;
	return 1;
}

static json_object *tool_sandbox_create(const struct mcp_tools_env *env, json_object *args,
                                        struct mcp_call *call)
{
	const char *backend = arg_string(args, "backend");
	const char *volume = arg_string(args, "volume_name");
	json_object *opts = NULL;
	json_object_object_get_ex(args, "options", &opts);
	if (backend && !name_ok(backend, 64))
		return mcp_tool_error("invalid_arguments", "backend: not a plugin name");
	json_object *o = json_object_new_object();
	if (opts) {
		json_object_object_foreach(opts, k, v)
		{
			json_object_object_add(o, k, json_object_get(v));
		}
	}
	if (volume)
		json_object_object_add(o, "volume_name", json_object_new_string(volume));
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	const rlm_config *cfg = NULL;
	int rc = mcp_sandbox_acquire(env->handles, backend, o, &call->cancelled, &in, &cfg, &err);
	json_object_put(o);
	if (rc)
		return rlm_failure("sandbox_create", &err);
	const char *name = rlm_config_get_string(cfg, "backend", "local");
	char id[64];
	if (mcp_handle_add(env->handles, in, name, id, sizeof(id), &err)) {
		mcp_sandbox_release(env->handles, in);
		return rlm_failure("sandbox_create", &err);
	}
	json_object *s = json_object_new_object();
	json_object_object_add(s, "sandbox", json_object_new_string(id));
	json_object_object_add(s, "backend", json_object_new_string(name));
	json_object_object_add(s, "idle_expiry_s",
	                       json_object_new_double(env->opts->handle_idle_s));
	char *status = rlm_interp_status_json(in);
	json_object *st = parse_or_null(status);
	rlm_free(status);
	json_object_object_add(s, "status", st ? st : json_object_new_object());
	char text[512];
	snprintf(text, sizeof(text),
	         "sandbox %s created on %s; pass it as `sandbox` to sandbox_exec and the other "
	         "sandbox tools. It expires after %.0f s without a call.",
	         id, name, env->opts->handle_idle_s);
	return mcp_tool_result(s, text, 0);
}

/* ---- sandbox_exec ---- */

/* The REPL's view of a cell: output, error line, value, SUBMIT. */
static char *render_exec(const rlm_result *r)
{
	size_t cap = 3 * PREVIEW_CHARS + 2048, n = 0;
	char *t = malloc(cap);
	if (!t)
		return NULL;
	t[0] = 0;
#define PUT(...) n += (size_t)snprintf(t + n, n < cap ? cap - n : 0, __VA_ARGS__)
	if (r->stdout_text && r->stdout_text[0])
		PUT("%.*s", PREVIEW_CHARS, r->stdout_text);
	if (r->stderr_text && r->stderr_text[0])
		PUT("%s[stderr]\n%.*s", n ? "\n" : "", PREVIEW_CHARS, r->stderr_text);
	if (r->error)
		PUT("%s%s", n ? "\n" : "", r->error->line ? r->error->line : "error");
	if (r->value)
		PUT("%s%.*s", n ? "\n" : "", PREVIEW_CHARS, r->value);
	if (r->submit_json)
		PUT("%sSUBMIT %.*s", n ? "\n" : "", PREVIEW_CHARS, r->submit_json);
	if (r->timed_out)
		PUT("%s(the cell timed out)", n ? "\n" : "");
	if (r->state_lost)
		PUT("%s(the REPL was restarted: earlier variables are gone)", n ? "\n" : "");
	if (r->truncated)
		PUT("%s(output was cut: %zu stdout / %zu stderr characters)", n ? "\n" : "",
		    r->stdout_chars, r->stderr_chars);
	if (!n)
		PUT("(no output)");
#undef PUT
	return t;
}

static json_object *tool_sandbox_exec(const struct mcp_tools_env *env, json_object *args,
                                      struct mcp_call *call)
{
	struct leased l;
	json_object *fail = lease(env, args, call, &l);
	if (fail)
		return fail;
	json_object *vars = NULL, *timeout = NULL;
	json_object_object_get_ex(args, "variables", &vars);
	rlm_exec_options o = RLM_EXEC_OPTIONS_INIT;
	if (vars)
		o.vars_json = json_object_to_json_string_ext(vars, JSON_C_TO_STRING_PLAIN);
	if (json_object_object_get_ex(args, "timeout_s", &timeout))
		o.timeout_s = json_object_get_double(timeout);
	rlm_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_interp_execute_ex(l.in, arg_string(args, "code"), &o, &res, &err);
	unlease(env, call, &l);
	if (rc)
		return rlm_failure("sandbox_exec", &err);
	char *json = rlm_result_to_json(res);
	char *text = render_exec(res);
	json_object *s = parse_or_null(json);
	json_object *out = s ? mcp_tool_result(s, text, 0)
	                     : mcp_tool_error("internal", "cannot encode the result");
	rlm_free(json);
	free(text);
	rlm_result_free(res);
	return out;
}

/* ---- files ---- */

static int under(const char *path, const char *dir)
{
	size_t n = dir ? strlen(dir) : 0;
	return n > 1 && !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

/* Where a host-side file transfer may go. A remote sandbox's absolute paths are inside it; a
 * local sandbox's are host paths, which the server (not the sandbox's own uid) would read or
 * write: there only paths inside its work directory or volume are allowed (relative paths are
 * kept inside the work directory by the backend). */
static json_object *check_transfer_path(rlm_interp *in, const char *path)
{
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && !strncmp(p, "..", 2) && path[0] == '/')
			return mcp_tool_error("forbidden",
			                      "%s: an absolute path may not contain ..", path);
		p += n + (p[n] == '/');
	}
	if (path[0] != '/')
		return NULL;
	char *text = rlm_interp_status_json(in);
	json_object *st = parse_or_null(text), *caps = json_object_object_get(st, "capabilities");
	rlm_free(text);
	int ok = 0;
	for (size_t i = 0; i < mcp_array_len(caps); i++)
		ok |= !strcmp(json_object_get_string(json_object_array_get_idx(caps, i)), "remote");
	json_object *bs = json_object_object_get(st, "backend_status");
	ok = ok || under(path, json_object_get_string(json_object_object_get(bs, "workdir"))) ||
	     under(path, json_object_get_string(json_object_object_get(bs, "volume")));
	json_object_put(st);
	if (ok)
		return NULL;
	return mcp_tool_error("forbidden",
	                      "%s: on this backend an absolute path is a path on the server's "
	                      "host; use a path relative to the sandbox's work directory (or "
	                      "inside its VOLUME)",
	                      path);
}

static json_object *tool_sandbox_upload(const struct mcp_tools_env *env, json_object *args,
                                        struct mcp_call *call)
{
	const char *path = arg_string(args, "path"), *enc = arg_string(args, "encoding");
	json_object *content = json_object_object_get(args, "content");
	const char *text = json_object_get_string(content);
	size_t len = (size_t)json_object_get_string_len(content);
	unsigned char *decoded = NULL;
	if (enc && !strcmp(enc, "base64")) {
		decoded = mcp_base64_decode(text, len, &len);
		if (!decoded)
			return mcp_tool_error("invalid_arguments", "content: not valid base64");
	}
	if (len > (size_t)MAX_FILE_BYTES) {
		free(decoded);
		return mcp_tool_error("too_large", "content is %zu bytes; the limit is %ld", len,
		                      MAX_FILE_BYTES);
	}
	struct leased l;
	json_object *fail = lease(env, args, call, &l);
	if (!fail && (fail = check_transfer_path(l.in, path)) != NULL)
		unlease(env, call, &l);
	if (fail) {
		free(decoded);
		return fail;
	}
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_interp_upload(l.in, decoded ? (const void *)decoded : text, len, path, &err);
	unlease(env, call, &l);
	free(decoded);
	if (rc)
		return rlm_failure("sandbox_upload", &err);
	json_object *s = json_object_new_object();
	json_object_object_add(s, "path", json_object_new_string(path));
	json_object_object_add(s, "bytes", json_object_new_int64((int64_t)len));
	char msg[4200];
	snprintf(msg, sizeof(msg), "wrote %zu bytes to %s", len, path);
	return mcp_tool_result(s, msg, 0);
}

static const char stat_code[] =
        "import os\n"
        "_k = 'missing'\n"
        "if os.path.isdir(_p): _k = 'dir'\n"
        "elif os.path.isfile(_p): _k = 'file'\n"
        "elif os.path.exists(_p): _k = 'other'\n"
        "SUBMIT(kind=_k, size=os.path.getsize(_p) if _k == 'file' else 0)\n";

static json_object *tool_sandbox_download(const struct mcp_tools_env *env, json_object *args,
                                          struct mcp_call *call)
{
	const char *path = arg_string(args, "path");
	struct leased l;
	json_object *fail = lease(env, args, call, &l);
	if (!fail && (fail = check_transfer_path(l.in, path)) != NULL)
		unlease(env, call, &l);
	if (fail)
		return fail;
	json_object *vars = json_object_new_object(), *st = NULL;
	json_object_object_add(vars, "_p", json_object_new_string(path));
	fail = helper_cell(l.in, stat_code, vars, &st);
	json_object_put(vars);
	const char *kind = json_object_get_string(json_object_object_get(st, "kind"));
	int64_t size = json_object_get_int64(json_object_object_get(st, "size"));
	if (!fail && kind && strcmp(kind, "file"))
		fail = mcp_tool_error(
		        !strcmp(kind, "missing") ? "not_found" : "not_a_file", "%s: %s", path,
		        !strcmp(kind, "missing") ? "no such file" : "not a regular file");
	else if (!fail && size > MAX_FILE_BYTES)
		fail = mcp_tool_error(
		        "too_large",
		        "%s is %lld bytes; sandbox_download returns at most %ld (read it "
		        "in parts with sandbox_exec)",
		        path, (long long)size, MAX_FILE_BYTES);
	json_object_put(st);
	void *data = NULL;
	size_t len = 0;
	rlm_error err = RLM_ERROR_INIT;
	if (!fail && rlm_interp_download(l.in, path, &data, &len, &err))
		fail = rlm_failure("sandbox_download", &err);
	unlease(env, call, &l);
	if (fail)
		return fail;
	int utf8 = mcp_utf8_valid(data, len);
	char *b64 = utf8 ? NULL : mcp_base64_encode(data, len);
	json_object *s = json_object_new_object();
	json_object_object_add(s, "path", json_object_new_string(path));
	json_object_object_add(s, "encoding", json_object_new_string(utf8 ? "utf-8" : "base64"));
	json_object_object_add(s, "bytes", json_object_new_int64((int64_t)len));
	json_object_object_add(s, "content",
	                       utf8 ? json_object_new_string_len(data, (int)len)
	                            : json_object_new_string(b64 ? b64 : ""));
	char head[256];
	snprintf(head, sizeof(head), "%s: %zu bytes (%s)\n", path, len,
	         utf8 ? "utf-8" : "binary, base64 in structuredContent.content");
	size_t tlen = strlen(head) + (utf8 ? len : 0) + 1;
	char *text = malloc(tlen);
	if (text)
		snprintf(text, tlen, "%s%s", head, utf8 ? (const char *)data : "");
	json_object *out = mcp_tool_result(s, text ? text : head, 0);
	free(text);
	free(b64);
	rlm_free(data);
	return out;
}

static const char list_code[] =
        "import os\n"
        "def _name(n):\n"
        "    return n.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')\n"
        "_out = []\n"
        "_more = False\n"
        "with os.scandir(_p) as _it:\n"
        "    _all = sorted(_it, key=lambda e: e.name)\n"
        "_more = len(_all) > _max\n"
        "for _e in _all[:_max]:\n"
        "    try:\n"
        "        _st = _e.stat(follow_symlinks=False)\n"
        "        if _e.is_symlink(): _t = 'symlink'\n"
        "        elif _e.is_dir(follow_symlinks=False): _t = 'dir'\n"
        "        elif _e.is_file(follow_symlinks=False): _t = 'file'\n"
        "        else: _t = 'other'\n"
        "        _out.append({'name': _name(_e.name), 'type': _t, 'size': _st.st_size})\n"
        "    except OSError:\n"
        "        _out.append({'name': _name(_e.name), 'type': 'other', 'size': 0})\n"
        "SUBMIT(path=_name(os.path.abspath(_p)), entries=_out, truncated=_more)\n";

static json_object *tool_sandbox_files(const struct mcp_tools_env *env, json_object *args,
                                       struct mcp_call *call)
{
	const char *path = arg_string(args, "path");
	struct leased l;
	json_object *fail = lease(env, args, call, &l);
	if (fail)
		return fail;
	json_object *vars = json_object_new_object(), *listing = NULL;
	json_object_object_add(vars, "_p", json_object_new_string(path ? path : "."));
	json_object_object_add(vars, "_max", json_object_new_int(MAX_LIST_ENTRIES));
	fail = helper_cell(l.in, list_code, vars, &listing);
	json_object_put(vars);
	unlease(env, call, &l);
	if (fail)
		return fail;
	size_t cap = 256, n = 0;
	json_object *entries = json_object_object_get(listing, "entries");
	size_t count = mcp_array_len(entries);
	for (size_t i = 0; i < count; i++)
		cap += strlen(json_object_get_string(json_object_object_get(
		               json_object_array_get_idx(entries, i), "name"))) +
		       40;
	char *text = malloc(cap);
	if (!text) {
		json_object_put(listing);
		return mcp_tool_error("internal", "out of memory");
	}
	n += (size_t)snprintf(text, cap, "%s: %zu entr%s\n",
	                      json_object_get_string(json_object_object_get(listing, "path")),
	                      count, count == 1 ? "y" : "ies");
	for (size_t i = 0; i < count; i++) {
		json_object *e = json_object_array_get_idx(entries, i);
		const char *type = json_object_get_string(json_object_object_get(e, "type"));
		n += (size_t)snprintf(
		        text + n, cap - n, "%-7s %12lld  %s%s\n", type,
		        (long long)json_object_get_int64(json_object_object_get(e, "size")),
		        json_object_get_string(json_object_object_get(e, "name")),
		        !strcmp(type, "dir") ? "/" : "");
	}
	json_object *out = mcp_tool_result(listing, text, 0);
	free(text);
	return out;
}

static json_object *tool_sandbox_destroy(const struct mcp_tools_env *env, json_object *args,
                                         struct mcp_call *call)
{
	(void)call;
	const char *id = arg_string(args, "sandbox");
	if (mcp_handle_destroy(env->handles, id))
		return mcp_tool_error("unknown_sandbox",
		                      "no sandbox has the handle \"%.60s\" (already destroyed or "
		                      "expired?)",
		                      id);
	json_object *s = json_object_new_object();
	json_object_object_add(s, "sandbox", json_object_new_string(id));
	json_object_object_add(s, "destroyed", json_object_new_boolean(1));
	return mcp_tool_result(s, "sandbox destroyed", 0);
}

/* ---- rlm_status ---- */

static json_object *backends_found(const rlm_config *cfg)
{
	rlm_error err = RLM_ERROR_INIT;
	char *text = rlm_plugins_json(cfg, &err);
	json_object *all = parse_or_null(text), *out = json_object_new_array();
	rlm_free(text);
	for (size_t i = 0; i < mcp_array_len(all); i++) {
		json_object *p = json_object_array_get_idx(all, i);
		const char *kind = json_object_get_string(json_object_object_get(p, "kind"));
		if (kind && !strcmp(kind, "backend"))
			json_object_array_add(out,
			                      json_object_get(json_object_object_get(p, "name")));
	}
	json_object_put(all);
	return out;
}

static json_object *tool_rlm_status(const struct mcp_tools_env *env, json_object *args,
                                    struct mcp_call *call)
{
	(void)args;
	const rlm_config *cfg = env->cfg;
	json_object *s = json_object_new_object(), *llm = json_object_new_object();
	json_object_object_add(s, "version", json_object_new_string(rlm_version()));
	json_object_object_add(s, "protocol_version", json_object_new_string(call->version));
	json_object_object_add(s, "transport",
	                       json_object_new_string(env->opts->http ? "http" : "stdio"));
	json_object_object_add(
	        s, "default_backend",
	        json_object_new_string(rlm_config_get_string(cfg, "backend", "local")));
	json_object_object_add(s, "backends", backends_found(cfg));
	const char *provider = rlm_config_get_string(cfg, "llm.provider", NULL);
	const char *model = rlm_config_get_string(cfg, "llm.model", NULL);
	json_object_object_add(llm, "configured", json_object_new_boolean(provider != NULL));
	json_object_object_add(llm, "provider", provider ? json_object_new_string(provider) : NULL);
	json_object_object_add(llm, "model", model ? json_object_new_string(model) : NULL);
	json_object_object_add(s, "llm", llm);
	json_object_object_add(s, "sandboxes", mcp_handles_status(env->handles));
	char *limits_text = rlm_config_get_json(cfg, "limits");
	json_object *limits = parse_or_null(limits_text);
	rlm_free(limits_text);
	if (!limits)
		limits = json_object_new_object();
	json_object_object_add(limits, "max_body_bytes",
	                       json_object_new_int64((int64_t)env->opts->max_body));
	json_object_object_add(limits, "max_inflight",
	                       json_object_new_int(env->opts->max_inflight));
	json_object_object_add(limits, "max_file_bytes", json_object_new_int64(MAX_FILE_BYTES));
	json_object_object_add(s, "limits", limits);
	json_object *sb = json_object_object_get(s, "sandboxes");
	char text[1024];
	snprintf(text, sizeof(text),
	         "rlm %s over %s (%s); backends: %s; default backend %s; LLM %s%s%s; %d sandbox "
	         "handle%s live (expire after %.0f s idle, at most %d)",
	         rlm_version(), env->opts->http ? "HTTP" : "stdio", call->version,
	         json_object_to_json_string_ext(json_object_object_get(s, "backends"),
	                                        JSON_C_TO_STRING_PLAIN),
	         rlm_config_get_string(cfg, "backend", "local"),
	         provider ? provider : "not configured (rlm_run needs llm.provider)",
	         model ? " " : "", model ? model : "",
	         json_object_get_int(json_object_object_get(sb, "handles")),
	         json_object_get_int(json_object_object_get(sb, "handles")) == 1 ? "" : "s",
	         env->opts->handle_idle_s, env->opts->max_handles);
	return mcp_tool_result(s, text, 0);
}

/* ---- rlm_run ---- */

/* The last line of a file (at most TRAJ_LINE_MAX bytes), parsed; NULL when none. */
static json_object *last_json_line(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	json_object *o = NULL;
	if (fseek(f, 0, SEEK_END) == 0) {
		long end = ftell(f), start = end > TRAJ_LINE_MAX ? end - TRAJ_LINE_MAX : 0;
		char *buf = end > 0 ? malloc((size_t)(end - start) + 1) : NULL;
		if (buf && fseek(f, start, SEEK_SET) == 0 &&
		    fread(buf, 1, (size_t)(end - start), f) == (size_t)(end - start)) {
			long n = end - start;
			buf[n] = 0;
			while (n > 0 && buf[n - 1] == '\n')
				buf[--n] = 0;
			char *line = strrchr(buf, '\n');
			o = json_tokener_parse(line ? line + 1 : buf);
		}
		free(buf);
	}
	fclose(f);
	return o;
}

/* What the turn's code printed, cut to PROGRESS_PRINTED characters, from the trajectory. */
static void printed_by_turn(const char *trajectory, char *out, size_t size)
{
	out[0] = 0;
	json_object *line = last_json_line(trajectory);
	json_object *blocks = json_object_object_get(line, "code_blocks");
	size_t n = 0, chars = 0;
	for (size_t i = 0; i < mcp_array_len(blocks) && n + 1 < size; i++) {
		json_object *r =
		        json_object_object_get(json_object_array_get_idx(blocks, i), "result");
		const char *s = json_object_get_string(json_object_object_get(r, "stdout"));
		for (; s && *s && n + 5 < size; s++) {
			int lead = ((unsigned char)*s & 0xC0) != 0x80;
			if (lead && chars == PROGRESS_PRINTED) {
				n += (size_t)snprintf(out + n, size - n, "...");
				goto done;
			}
			chars += lead;
			out[n++] = *s == '\n' ? ' ' : *s;
		}
	}
done:
	while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0xC0) /* an unfinished sequence */
		n--;
	out[n < size ? n : size - 1] = 0;
	json_object_put(line);
}

struct run_progress {
	struct mcp_call *call;
	const char *trajectory;
};

static void on_iteration(void *ctx, const rlm_run_iteration *it)
{
	struct run_progress *p = ctx;
	char msg[600], printed[PROGRESS_PRINTED * 4 + 8] = "";
	int n = 0;
	if (it->depth)
		n = snprintf(msg, sizeof(msg), "child@%d ", it->depth);
	if (it->fallback)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n,
		              "iterations ran out: last call for "
		              "the answer");
	else
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, "iteration %d/%d: %d block%s",
		              it->iteration, it->max_iterations, it->blocks,
		              it->blocks == 1 ? "" : "s");
	if (it->prompt_tokens >= 0 || it->completion_tokens >= 0)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ", tokens %ld in / %ld out",
		              it->prompt_tokens < 0 ? 0 : it->prompt_tokens,
		              it->completion_tokens < 0 ? 0 : it->completion_tokens);
	if (it->submitted)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ", SUBMIT");
	if (it->depth == 0 && !it->fallback)
		printed_by_turn(p->trajectory, printed, sizeof(printed));
	if (printed[0])
		snprintf(msg + n, sizeof(msg) - (size_t)n, "; printed: %s", printed);
	/* Children's turns happen inside a root turn: they move the bar a little. */
	double at = it->depth == 0 ? it->iteration
	                           : (p->call->progress > 0 ? p->call->progress : 0) + 0.001;
	mcp_call_progress(p->call, at, it->depth == 0 ? it->max_iterations : 0, msg);
}

static int mkdirs(const char *dir)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0700) && errno != EEXIST ? -1 : 0;
}

/* A fresh trajectory file name in the server's trajectory directory. */
static int trajectory_path(const struct mcp_options *o, char *out, size_t size)
{
	char dir[PATH_MAX];
	const char *data = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	if (o->trajectory_dir)
		snprintf(dir, sizeof(dir), "%s", o->trajectory_dir);
	else if (data && *data)
		snprintf(dir, sizeof(dir), "%s/rlm/trajectories", data);
	else
		snprintf(dir, sizeof(dir), "%s/.local/share/rlm/trajectories",
		         home ? home : "/tmp");
	if (mkdirs(dir))
		return -1;
	unsigned char raw[4];
	if (mcp_random_bytes(raw, sizeof(raw)))
		return -1;
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	int n = snprintf(out, size, "%s/mcp_%04d-%02d-%02d_%02d-%02d-%02d_%02x%02x%02x%02x.jsonl",
	                 dir, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, raw[0], raw[1], raw[2], raw[3]);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

/* context_path must name a regular file inside one of the --context-dir directories (the
 * working directory by default): a client must not read the host's files at large. */
static json_object *check_context_path(const struct mcp_options *o, const char *path,
                                       char *resolved)
{
	if (!realpath(path, resolved))
		return mcp_tool_error("not_found", "context_path %s: %s", path, strerror(errno));
	struct stat st;
	if (stat(resolved, &st) || !S_ISREG(st.st_mode))
		return mcp_tool_error("invalid_arguments", "context_path %s: not a regular file",
		                      path);
	char cwd[PATH_MAX];
	const char *fallback[1] = {getcwd(cwd, sizeof(cwd)) ? cwd : "/nonexistent"};
	const char **dirs = o->ncontext_dirs ? o->context_dirs : fallback;
	int n = o->ncontext_dirs ? o->ncontext_dirs : 1;
	for (int i = 0; i < n; i++) {
		char root[PATH_MAX];
		if (!realpath(dirs[i], root))
			continue;
		size_t len = strlen(root);
		if (!strncmp(resolved, root, len) &&
		    (resolved[len] == '/' || (len == 1 && root[0] == '/')))
			return NULL;
	}
	return mcp_tool_error("forbidden",
	                      "context_path %s is outside the directories this server reads "
	                      "contexts from (--context-dir; default: its working directory)",
	                      path);
}

static json_object *run_result(rlm_run_result *res, const char *backend)
{
	char *json = rlm_run_result_to_json(res);
	json_object *s = parse_or_null(json);
	rlm_free(json);
	if (!s)
		return mcp_tool_error("internal", "cannot encode the result");
	json_object_object_del(s, "error");
	json_object_object_add(s, "backend", json_object_new_string(backend));
	size_t alen = res->answer ? strlen(res->answer) : 0;
	size_t cap = alen + 1024;
	char *text = malloc(cap);
	if (text)
		snprintf(text, cap, "%s\n\n(%s after %d iteration%s, %ld LLM call%s, %.2f s%s%s)",
		         res->answer ? res->answer : "(no answer)",
		         !res->answer    ? "no answer"
		         : res->fallback ? "fallback answer"
		                         : "SUBMIT",
		         res->iterations, res->iterations == 1 ? "" : "s", res->usage.llm_calls,
		         res->usage.llm_calls == 1 ? "" : "s", res->duration_s,
		         res->trajectory_path ? "; trajectory " : "",
		         res->trajectory_path ? res->trajectory_path : "");
	json_object *out = mcp_tool_result(s, text ? text : "", 0);
	free(text);
	return out;
}

static json_object *tool_rlm_run(const struct mcp_tools_env *env, json_object *args,
                                 struct mcp_call *call)
{
	const char *query = arg_string(args, "query"), *context = arg_string(args, "context");
	const char *context_path = arg_string(args, "context_path");
	const char *backend = arg_string(args, "backend"), *model = arg_string(args, "model");
	json_object *max_it = json_object_object_get(args, "max_iterations");
	if (context && context_path)
		return mcp_tool_error("invalid_arguments",
		                      "give context or context_path, not both");
	if (backend && !name_ok(backend, 64))
		return mcp_tool_error("invalid_arguments", "backend: not a plugin name");
	char resolved[PATH_MAX];
	json_object *fail =
	        context_path ? check_context_path(env->opts, context_path, resolved) : NULL;
	if (fail)
		return fail;
	if (!rlm_config_get_string(env->cfg, "llm.provider", NULL))
		return mcp_tool_error("no_llm", "no LLM is configured: start rlm mcp with "
		                                "--set llm.provider=... (and llm.model, the key's "
		                                "env var) or a config file");
	char traj[PATH_MAX];
	if (trajectory_path(env->opts, traj, sizeof(traj)))
		return mcp_tool_error("io_error", "cannot make the trajectory directory: %s",
		                      strerror(errno));
	rlm_interp *in = NULL;
	const rlm_config *pool_cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (mcp_sandbox_acquire(env->handles, backend, NULL, &call->cancelled, &in, &pool_cfg,
	                        &err))
		return rlm_failure("rlm_run", &err);
	rlm_config *cfg = NULL;
	int rc = rlm_config_clone(pool_cfg, &cfg, &err);
	if (!rc && model)
		rc = rlm_config_set(
		        cfg, "llm.model",
		        json_object_to_json_string(json_object_object_get(args, "model")), &err);
	rlm_run_result *res = NULL;
	if (!rc) {
		struct run_progress progress = {call, traj};
		rlm_run_options o = RLM_RUN_OPTIONS_INIT;
		o.task = query;
		o.context = context;
		o.context_len = context ? (size_t)json_object_get_string_len(
		                                  json_object_object_get(args, "context"))
		                        : 0;
		o.context_file = context_path ? resolved : NULL;
		o.trajectory_path = traj;
		o.max_iterations = max_it ? json_object_get_int64(max_it) : 0;
		o.interp = in;
		o.on_iteration = on_iteration;
		o.progress_ctx = &progress;
		o.cancel = &call->cancelled;
		mcp_call_set_cancel_hook(call, interrupt_interp, in);
		rc = rlm_run(cfg, &o, &res, &err);
		mcp_call_set_cancel_hook(call, NULL, NULL);
	}
	mcp_sandbox_release(env->handles, in);
	const char *name = rlm_config_get_string(pool_cfg, "backend", "local");
	json_object *out = rc ? mcp_tool_error(rlm_status_name(rc), "rlm_run: %s (trajectory %s)",
	                                       err.message, traj)
	                      : run_result(res, name);
	rlm_run_result_free(res);
	rlm_config_free(cfg);
	return out;
}

/* ---- the table ---- */

#define SANDBOX_ARG                                                                                \
	"\"sandbox\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"description\":"       \
	"\"a handle from sandbox_create\"}"
#define PATH_ARG(what)                                                                             \
	"\"path\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096,\"description\":\"" what \
	"\"}"
#define ERROR_OBJ                                                                                  \
	"{\"type\":[\"object\",\"null\"],\"properties\":{\"type\":{\"type\":[\"string\",\"null\"]" \
	"},"                                                                                       \
	"\"message\":{\"type\":[\"string\",\"null\"]},\"traceback\":{\"type\":[\"string\","        \
	"\"null\"]},\"line\":{\"type\":[\"string\",\"null\"]}}}"

struct tool {
	const char *name;
	const char *title;
	const char *description;
	const char *input;  /* JSON Schema text */
	const char *output; /* JSON Schema text */
	json_object *(*fn)(const struct mcp_tools_env *, json_object *, struct mcp_call *);
	int read_only;
};

static const struct tool tools[] = {
        {"rlm_run", "Run an RLM",
         "Answers a query with a Recursive Language Model: the model writes Python into a "
         "sandboxed REPL where the context is the variable `context` (never in the prompt), "
         "may call sub-LLMs from that code, and ends with SUBMIT. Sends one progress "
         "notification per iteration when the request has a progress token; cancelling stops "
         "the run and frees its sandbox. Returns the answer, the SUBMIT fields, iterations, "
         "usage and the trajectory file.",
         "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"query\"],"
         "\"properties\":{"
         "\"query\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1000000,\"description\":"
         "\"the task\"},"
         "\"context\":{\"type\":\"string\",\"maxLength\":67108864,\"description\":\"the context "
         "as text: it becomes the REPL variable `context`\"},"
         "\"context_path\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096,"
         "\"description\":\"or a file on the server (inside its --context-dir directories) "
         "whose text is the context\"},"
         "\"backend\":{\"type\":\"string\",\"maxLength\":64,\"description\":\"sandbox backend "
         "(default: the server's)\"},"
         "\"model\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":256,\"description\":"
         "\"model name for the configured LLM provider\"},"
         "\"max_iterations\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000}}}",
         "{\"type\":\"object\",\"required\":[\"answer\",\"fallback\",\"submit\",\"iterations\","
         "\"usage\",\"trajectory\",\"backend\"],\"properties\":{"
         "\"answer\":{\"type\":[\"string\",\"null\"]},"
         "\"fallback\":{\"type\":\"boolean\",\"description\":\"iterations ran out; a last call "
         "produced the answer\"},"
         "\"submit\":{\"type\":[\"object\",\"null\"],\"description\":\"the SUBMIT fields\"},"
         "\"iterations\":{\"type\":\"integer\"},\"duration_s\":{\"type\":\"number\"},"
         "\"usage\":{\"type\":\"object\",\"properties\":{\"llm_calls\":{\"type\":\"integer\"},"
         "\"budget_calls\":{\"type\":\"integer\"},\"budget_max\":{\"type\":\"integer\"},"
         "\"prompt_tokens\":{\"type\":\"integer\"},\"completion_tokens\":{\"type\":\"integer\"},"
         "\"calls_by_depth\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}}},"
         "\"trajectory\":{\"type\":[\"string\",\"null\"]},"
         "\"summary\":{\"type\":[\"string\",\"null\"]},"
         "\"backend\":{\"type\":\"string\"}}}",
         tool_rlm_run, 0},
        {"sandbox_create", "Create a sandbox",
         "Creates a persistent Python sandbox and returns its handle (`sandbox`). Variables, "
         "files and imports persist across sandbox_exec calls on one handle. The handle "
         "expires after the server's idle time without a call (see idle_expiry_s; rlm_status "
         "shows it) and dies with the server; destroy it with sandbox_destroy when done.",
         "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
         "\"backend\":{\"type\":\"string\",\"maxLength\":64,\"description\":\"local, daytona, "
         "modal... (default: the server's)\"},"
         "\"volume_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"description\":"
         "\"a durable volume mounted in the sandbox as VOLUME\"},"
         "\"options\":@OPTIONS@}}",
         "{\"type\":\"object\",\"required\":[\"sandbox\",\"backend\",\"idle_expiry_s\"],"
         "\"properties\":{\"sandbox\":{\"type\":\"string\"},\"backend\":{\"type\":\"string\"},"
         "\"idle_expiry_s\":{\"type\":\"number\"},\"status\":{\"type\":\"object\"}}}",
         tool_sandbox_create, 0},
        {"sandbox_exec", "Run Python in a sandbox",
         "Runs Python code as one REPL cell in a sandbox: state persists across calls on the "
         "handle. Returns stdout, stderr, the exception (error.line is the last traceback "
         "line), the value of a trailing expression, and the fields of SUBMIT(...) if the "
         "code called it. `variables` are set in the namespace first (from JSON). A cancelled "
         "call interrupts the cell (KeyboardInterrupt) and keeps the state.",
         "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"sandbox\","
         "\"code\"],\"properties\":{" SANDBOX_ARG ","
         "\"code\":{\"type\":\"string\",\"maxLength\":1000000},"
         "\"variables\":{\"type\":\"object\",\"description\":\"name -> JSON value, set before "
         "the code runs\"},"
         "\"timeout_s\":{\"type\":\"number\",\"minimum\":0.001,\"maximum\":86400}}}",
         "{\"type\":\"object\",\"required\":[\"stdout\",\"stderr\",\"error\",\"submit\","
         "\"value\",\"timed_out\",\"state_lost\"],\"properties\":{"
         "\"stdout\":{\"type\":\"string\"},\"stderr\":{\"type\":\"string\"},"
         "\"stdout_chars\":{\"type\":\"integer\"},\"stderr_chars\":{\"type\":\"integer\"},"
         "\"truncated\":{\"type\":\"boolean\"},\"error\":" ERROR_OBJ ","
         "\"submit\":{\"type\":[\"object\",\"null\"]},\"value\":{\"type\":[\"string\",\"null\"]},"
         "\"timed_out\":{\"type\":\"boolean\"},\"state_lost\":{\"type\":\"boolean\"},"
         "\"duration_ms\":{\"type\":\"number\"},\"host_calls\":{\"type\":\"integer\"}}}",
         tool_sandbox_exec, 0},
        {"sandbox_upload", "Write a file into a sandbox",
         "Writes content to a file in the sandbox (relative paths: its work directory; parent "
         "directories are made). encoding base64 for binary data.",
         "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"sandbox\","
         "\"path\",\"content\"],\"properties\":{" SANDBOX_ARG
         "," PATH_ARG("file to write") ","
                                       "\"content\":{\"type\":\"string\",\"maxLength\":50331648},"
                                       "\"encoding\":{\"type\":\"string\",\"enum\":[\"utf-8\","
                                       "\"base64\"],\"default\":"
                                       "\"utf-8\"}}}",
         "{\"type\":\"object\",\"required\":[\"path\",\"bytes\"],\"properties\":{"
         "\"path\":{\"type\":\"string\"},\"bytes\":{\"type\":\"integer\"}}}",
         tool_sandbox_upload, 0},
        {"sandbox_download", "Read a file from a sandbox",
         "Reads a file from the sandbox: content as text when the bytes are valid UTF-8 "
         "(encoding utf-8), else base64 (encoding base64). At most 32 MiB.",
         "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"sandbox\","
         "\"path\"],\"properties\":{" SANDBOX_ARG "," PATH_ARG("file to read") "}}",
         "{\"type\":\"object\",\"required\":[\"path\",\"content\",\"encoding\",\"bytes\"],"
         "\"properties\":{\"path\":{\"type\":\"string\"},\"content\":{\"type\":\"string\"},"
         "\"encoding\":{\"type\":\"string\",\"enum\":[\"utf-8\",\"base64\"]},"
         "\"bytes\":{\"type\":\"integer\"}}}",
         tool_sandbox_download, 1},
        {"sandbox_files", "List a sandbox directory",
         "Lists a directory in the sandbox (default: its work directory): name, type (file, "
         "dir, symlink, other) and size of each entry, sorted by name, at most 1000.",
         "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"sandbox\"],"
         "\"properties\":{" SANDBOX_ARG "," PATH_ARG("directory (default .)") "}}",
         "{\"type\":\"object\",\"required\":[\"path\",\"entries\",\"truncated\"],\"properties\":{"
         "\"path\":{\"type\":\"string\"},\"truncated\":{\"type\":\"boolean\"},"
         "\"entries\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"name\","
         "\"type\",\"size\"],\"properties\":{\"name\":{\"type\":\"string\"},\"type\":{\"type\":"
         "\"string\",\"enum\":[\"file\",\"dir\",\"symlink\",\"other\"]},\"size\":{\"type\":"
         "\"integer\"}}}}}}",
         tool_sandbox_files, 1},
        {"sandbox_destroy", "Destroy a sandbox",
         "Shuts a sandbox down and forgets its handle (a call still running on it is "
         "cancelled).",
         "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"sandbox\"],"
         "\"properties\":{" SANDBOX_ARG "}}",
         "{\"type\":\"object\",\"required\":[\"sandbox\",\"destroyed\"],\"properties\":{"
         "\"sandbox\":{\"type\":\"string\"},\"destroyed\":{\"type\":\"boolean\"}}}",
         tool_sandbox_destroy, 0},
        {"rlm_status", "Server status",
         "The server's version, the sandbox backends it found, live sandbox handles and "
         "pools, its limits, and whether an LLM is configured for rlm_run.",
         "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{}}",
         "{\"type\":\"object\",\"required\":[\"version\",\"backends\",\"llm\",\"sandboxes\","
         "\"limits\"],\"properties\":{\"version\":{\"type\":\"string\"},"
         "\"protocol_version\":{\"type\":\"string\"},\"transport\":{\"type\":\"string\"},"
         "\"default_backend\":{\"type\":\"string\"},"
         "\"backends\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
         "\"llm\":{\"type\":\"object\",\"properties\":{\"configured\":{\"type\":\"boolean\"},"
         "\"provider\":{\"type\":[\"string\",\"null\"]},\"model\":{\"type\":[\"string\","
         "\"null\"]}}},"
         "\"sandboxes\":{\"type\":\"object\",\"properties\":{\"handles\":{\"type\":\"integer\"},"
         "\"runs\":{\"type\":\"integer\"},\"handle_idle_s\":{\"type\":\"number\"},"
         "\"max_handles\":{\"type\":\"integer\"},\"pools\":{\"type\":\"array\"}}},"
         "\"limits\":{\"type\":\"object\"}}}",
         tool_rlm_status, 1},
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

/* A tool's output schema as listed: its success shape, or the tool-error shape
 * {error: {code, message}} that every tool may return with isError (clients validate
 * structuredContent against outputSchema even then). The success fields stay listed at the
 * top; only which ones are required depends on the branch. */
static json_object *output_schema(const char *text)
{
	json_object *o = json_tokener_parse(text), *req = NULL, *props = NULL;
	if (!o || !json_object_object_get_ex(o, "properties", &props))
		return o;
	if (json_object_object_get_ex(o, "required", &req))
		json_object_get(req);
	json_object_object_del(o, "required");
	if (!json_object_object_get_ex(props, "error", NULL))
		json_object_object_add(
		        props, "error",
		        json_tokener_parse(
		                "{\"type\":\"object\",\"description\":\"set when the tool "
		                "failed (isError)\",\"required\":[\"code\",\"message\"],"
		                "\"properties\":{\"code\":{\"type\":\"string\"},"
		                "\"message\":{\"type\":\"string\"}}}"));
	json_object *ok = json_object_new_object(), *failed = json_object_new_object();
	json_object *any = json_object_new_array(), *err_req = json_object_new_array();
	json_object_object_add(ok, "required", req ? req : json_object_new_array());
	json_object_array_add(err_req, json_object_new_string("error"));
	json_object_object_add(failed, "required", err_req);
	json_object_array_add(any, ok);
	json_object_array_add(any, failed);
	json_object_object_add(o, "anyOf", any);
	return o;
}

/* The schemas, parsed once. */
static json_object *inputs[NTOOLS], *outputs[NTOOLS];
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;

static void parse_schemas(void)
{
	for (size_t i = 0; i < NTOOLS; i++) {
		const char *in = tools[i].input, *at = strstr(in, "@OPTIONS@");
		if (at) {
			size_t len = strlen(in) + sizeof(create_options_schema);
			char *text = malloc(len);
			if (text)
				snprintf(text, len, "%.*s%s%s", (int)(at - in), in,
				         create_options_schema, at + strlen("@OPTIONS@"));
			inputs[i] = text ? json_tokener_parse(text) : NULL;
			free(text);
		} else {
			inputs[i] = json_tokener_parse(in);
		}
		outputs[i] = output_schema(tools[i].output);
		if (!inputs[i] || !outputs[i]) {
			fprintf(stderr,
			        "rlm mcp: internal error: the schema of %s does not parse\n",
			        tools[i].name);
			abort();
		}
	}
}

json_object *mcp_tools_list(const struct mcp_tools_env *env)
{
	pthread_once(&schemas_once, parse_schemas);
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < NTOOLS; i++) {
		json_object *t = json_object_new_object(), *ann = json_object_new_object();
		json_object_object_add(t, "name", json_object_new_string(tools[i].name));
		json_object_object_add(t, "title", json_object_new_string(tools[i].title));
		json_object_object_add(t, "description",
		                       json_object_new_string(tools[i].description));
		json_object_object_add(t, "inputSchema", json_object_get(inputs[i]));
		json_object_object_add(t, "outputSchema", json_object_get(outputs[i]));
		json_object_object_add(ann, "title", json_object_new_string(tools[i].title));
		json_object_object_add(ann, "readOnlyHint",
		                       json_object_new_boolean(tools[i].read_only));
		json_object_object_add(
		        ann, "destructiveHint",
		        json_object_new_boolean(!strcmp(tools[i].name, "sandbox_destroy")));
		json_object_object_add(ann, "openWorldHint", json_object_new_boolean(0));
		json_object_object_add(t, "annotations", ann);
		json_object_array_add(list, t);
	}
	if (env->opts->fixtures) {
		json_object *f = mcp_fixtures_list();
		for (size_t i = 0; i < mcp_array_len(f); i++)
			json_object_array_add(list,
			                      json_object_get(json_object_array_get_idx(f, i)));
		json_object_put(f);
	}
	return list;
}

const char *mcp_tools_required_capability(const struct mcp_tools_env *env, const char *name)
{
	/* The product tools need nothing from the client. */
	return env->opts->fixtures ? mcp_fixtures_required_capability(name) : NULL;
}

json_object *mcp_tools_call(const struct mcp_tools_env *env, const char *name, json_object *args,
                            struct mcp_call *call, int *code, char *message, size_t message_size)
{
	pthread_once(&schemas_once, parse_schemas);
	for (size_t i = 0; i < NTOOLS; i++) {
		if (strcmp(tools[i].name, name))
			continue;
		char why[512];
		if (mcp_schema_check(inputs[i], args, why, sizeof(why)))
			return mcp_tool_error("invalid_arguments", "%s: %s", name, why);
		return tools[i].fn(env, args, call);
	}
	json_object *r = env->opts->fixtures ? mcp_fixtures_call(name, args, call) : NULL;
	if (r)
		return r;
	*code = MCP_INVALID_PARAMS;
	snprintf(message, message_size, "Unknown tool: %.200s", name);
	return NULL;
}
