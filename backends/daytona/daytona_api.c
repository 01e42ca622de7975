/* daytona_api.c - the Daytona control plane: HTTP calls with the error mapping, sandbox
 * create / wait / delete, volumes, and the garbage collector of leftover sandboxes.
 * Wire facts: /work/shared/reference/daytona-api.md (sections 2, 4, 6). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "daytona_internal.h"

int dt_nomem(const struct dt *d, rlm_error *err)
{
	return d->host->error_set(err, RLM_ENOMEM, "daytona backend: out of memory");
}

char *dt_urlencode(const struct dt *d, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = d->host->alloc(strlen(s) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* ---- limits ---------------------------------------------------------------------------- */

static int cancelled(const struct dt_limit *lim)
{
	return lim && lim->cancel && *lim->cancel;
}

int dt_limit_check(struct dt *d, const struct dt_limit *lim, const char *what, rlm_error *err)
{
	if (cancelled(lim))
		return d->host->error_set(err, RLM_ECANCELLED, "daytona: %s: cancelled", what);
	if (lim && lim->deadline > 0 && d->host->now() >= lim->deadline)
		return d->host->error_set(err, RLM_ETIMEOUT, "daytona: %s: the deadline passed",
		                          what);
	return 0;
}

void dt_sleep(struct dt *d, const struct dt_limit *lim, double s)
{
	if (lim && lim->deadline > 0 && s > lim->deadline - d->host->now())
		s = lim->deadline - d->host->now();
	d->host->sleep(s, lim ? lim->cancel : NULL);
}

/* ---- HTTP ------------------------------------------------------------------------------ */

int dt_send(struct dt *d, const struct dt_req *rq, rlm_http_response *resp, rlm_error *err)
{
	char auth[512], ctype[160];
	const char *headers[6];
	size_t n = 0;
	rlm_http_request req;

	memset(resp, 0, sizeof(*resp));
	resp->abi_version = RLM_ABI_VERSION;
	resp->struct_size = sizeof(*resp);
	memset(&req, 0, sizeof(req));
	req.timeout_s = rq->timeout_s > 0 ? rq->timeout_s : 60;
	if (rq->limit) {
		/* The op's deadline bounds this request, whatever its own timeout says. */
		int rc = dt_limit_check(d, rq->limit, rq->method, err);

		if (rc)
			return rc;
		if (rq->limit->deadline > 0 && req.timeout_s > rq->limit->deadline - d->host->now())
			req.timeout_s = rq->limit->deadline - d->host->now();
		req.deadline = rq->limit->deadline;
		req.cancel = rq->limit->cancel;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", d->api_key ? d->api_key : "");
	headers[n++] = auth;
	if (rq->body || rq->read_body) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		         rq->ctype ? rq->ctype : "application/json");
		headers[n++] = ctype;
	}
	headers[n++] = "X-Daytona-Source: rlm";
	headers[n++] = "X-Daytona-SDK-Version: " DT_SDK_VERSION;
	headers[n] = NULL;
	req.abi_version = RLM_ABI_VERSION;
	req.struct_size = sizeof(req);
	req.method = rq->method;
	req.url = rq->url;
	req.headers = headers;
	req.body = rq->body;
	req.body_len = rq->body_len;
	req.max_retries = rq->max_retries >= 0 ? rq->max_retries : d->cfg.max_retries;
	req.secrets = d->secrets;
	req.read_body = rq->read_body;
	req.rewind_body = rq->rewind_body;
	req.ctx = rq->ctx;
	return d->host->http_request(&req, resp, err);
}

/* The server's message: `message` of either error body style (reference 6.1), else the raw
 * text, else the reason an empty body stands for. */
static void answer_message(const rlm_http_response *resp, char *buf, size_t size)
{
	json_object *doc = NULL, *msg;
	const char *text = resp->body.data;

	buf[0] = '\0';
	if (text && resp->body.len)
		doc = json_tokener_parse(text);
	if (doc && json_object_object_get_ex(doc, "message", &msg))
		snprintf(buf, size, "%s", json_object_get_string(msg));
	else if (text && resp->body.len)
		snprintf(buf, size, "%.300s", text);
	else if (resp->status == 502)
		snprintf(buf, size,
		         "bad gateway (empty body: the sandbox's daemon is unreachable)");
	else
		snprintf(buf, size, "(empty body)");
	json_object_put(doc);
}

static int is_quota_message(const char *msg)
{
	return strcasestr(msg, "limit exceeded") || strcasestr(msg, "quota") ||
	       strcasestr(msg, "Maximum allowed");
}

int dt_check(struct dt *d, const rlm_http_response *resp, const char *what, rlm_error *err)
{
	char msg[512];
	long st = resp->status;
	int code;

	if (st >= 200 && st < 300)
		return 0;
	answer_message(resp, msg, sizeof(msg));
	if (st == 401 || st == 403)
		code = RLM_EAUTH;
	else if (st == 400 && is_quota_message(msg))
		code = RLM_EQUOTA;
	else if (st == 404)
		code = RLM_ENOTFOUND;
	else if (st == 408)
		code = RLM_ETIMEOUT;
	else if (st == 429 || st >= 500)
		code = RLM_ETRANSIENT;
	else
		code = RLM_EBACKEND;
	return d->host->error_set_http(
	        err, code, st, resp->request_id[0] ? resp->request_id : NULL,
	        "daytona: %s: HTTP %ld%s%s: %s%s", what, st,
	        resp->request_id[0] ? ", request " : "", resp->request_id, msg,
	        code == RLM_EAUTH ? " (check the key in the env var named by api_key_env)"
	        : st == 429       ? " (rate limited; retries exhausted)"
	                          : "");
}

int dt_json_call(struct dt *d, const char *method, const char *url, json_object *body,
                 double timeout_s, const struct dt_limit *lim, const char *what, json_object **out,
                 rlm_error *err)
{
	const char *text =
	        body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
	struct dt_req rq = {.method = method,
	                    .url = url,
	                    .body = text,
	                    .body_len = text ? strlen(text) : 0,
	                    .timeout_s = timeout_s,
	                    .max_retries = -1,
	                    .limit = lim};
	rlm_http_response resp;
	int rc = dt_send(d, &rq, &resp, err);

	if (out)
		*out = NULL;
	if (rc == 0)
		rc = dt_check(d, &resp, what, err);
	if (rc == 0 && out && resp.body.len) {
		*out = json_tokener_parse(resp.body.data);
		if (!*out)
			rc = d->host->error_set_http(err, RLM_EPROTO, resp.status, resp.request_id,
			                             "daytona: %s: the answer is not JSON: %.200s",
			                             what, resp.body.data);
	}
	d->host->http_response_free(&resp);
	return rc;
}

int dt_sandbox_lost_answer(const rlm_http_response *resp)
{
	const char *b = resp->body.data ? resp->body.data : "";

	/* Reference 6.2: the proxy's words for a stopped or unknown sandbox. */
	return (resp->status == 400 || resp->status == 404) &&
	       (strstr(b, "Is the Sandbox started") || strstr(b, "failed to get sandbox") ||
	        strstr(b, "Sandbox with ID or name"));
}

/* ---- sandbox lifecycle ----------------------------------------------------------------- */

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) &&
	                       json_object_is_type(v, json_type_string)
	               ? json_object_get_string(v)
	               : NULL;
}

static int in_list(const char *s, const char *const *list)
{
	for (; s && *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* Volume states a wait for `ready` never comes back from (VolumeState, reference 4). */
static const char *const volume_dead_states[] = {"pending_delete", "deleting", "deleted", "error",
                                                 NULL};

/* Finds or creates the volume by name and waits until it is ready (reference 4); lim's
 * deadline ends the wait. */
static int volume_ready(struct dt *d, const struct dt_limit *lim, rlm_error *err)
{
	char *enc = dt_urlencode(d, d->cfg.volume_name), *url;
	json_object *vol = NULL, *body;
	rlm_error probe = RLM_ERROR_INIT;
	double delay = 0.2;
	int rc;

	if (!enc)
		return dt_nomem(d, err);
	url = d->host->str_printf("%s/volumes/by-name/%s", d->cfg.api_url, enc);
	d->host->free(enc);
	if (!url)
		return dt_nomem(d, err);
	rc = dt_json_call(d, "GET", url, NULL, 30, lim, "volume look-up", &vol, &probe);
	d->host->free(url);
	if (rc == RLM_ENOTFOUND) {
		body = json_object_new_object();
		json_object_object_add(body, "name", json_object_new_string(d->cfg.volume_name));
		url = d->host->str_printf("%s/volumes", d->cfg.api_url);
		rc = url ? dt_json_call(d, "POST", url, body, 30, lim, "volume create", &vol, err)
		         : dt_nomem(d, err);
		d->host->free(url);
		json_object_put(body);
	} else if (rc) {
		*err = probe;
	}
	if (rc)
		return rc;
	d->host->free(d->volume_id);
	d->volume_id = d->host->str_dup(jstr(vol, "id"));
	while (rc == 0) {
		const char *state = jstr(vol, "state"), *why = jstr(vol, "errorReason");

		if (state && strcmp(state, "ready") == 0)
			break;
		if (in_list(state, volume_dead_states)) {
			rc = d->host->error_set(
			        err, RLM_EBACKEND, "daytona: volume %s is in state %s%s%s%s",
			        d->cfg.volume_name, state, why ? ": " : "", why ? why : "",
			        strcmp(state, "error") == 0
			                ? ""
			                : " (it is being deleted: wait until it is gone, or set "
			                  "another backends.daytona.volume_name)");
			break;
		}
		if (!d->volume_id || d->host->now() + delay > lim->deadline) {
			rc = d->host->error_set(err, RLM_ETIMEOUT,
			                        "daytona: volume %s is still %s; giving up",
			                        d->cfg.volume_name, state ? state : "in no state");
			break;
		}
		dt_sleep(d, lim, delay);
		delay = delay * 1.5 > 1.0 ? 1.0 : delay * 1.5;
		json_object_put(vol);
		vol = NULL;
		url = d->host->str_printf("%s/volumes/%s", d->cfg.api_url, d->volume_id);
		rc = url ? dt_json_call(d, "GET", url, NULL, 30, lim, "volume state", &vol, err)
		         : dt_nomem(d, err);
		d->host->free(url);
	}
	json_object_put(vol);
	return rc;
}

static void add_object(json_object *dst, json_object *src)
{
	json_object_object_foreach(src, k, v)
	{
		if (json_object_is_type(v, json_type_string))
			json_object_object_add(dst, k, json_object_get(v));
	}
}

static json_object *create_body(struct dt *d)
{
	json_object *b = json_object_new_object(), *labels = json_object_new_object();
	json_object *env = json_object_new_object();
	char dockerfile[1024];

	if (d->cfg.labels)
		add_object(labels, d->cfg.labels);
	/* Ours last, so a user label cannot hide the sandbox from gc. */
	json_object_object_add(labels, "code-toolbox-language", json_object_new_string("python"));
	json_object_object_add(labels, "rlm", json_object_new_string("1"));
	json_object_object_add(labels, "rlm-instance", json_object_new_string(d->instance_id));
	json_object_object_add(b, "labels", labels);
	if (d->cfg.env_vars)
		add_object(env, d->cfg.env_vars);
	json_object_object_add(b, "env", env);
	if (d->cfg.target)
		json_object_object_add(b, "target", json_object_new_string(d->cfg.target));
	if (d->cfg.image) {
		/* The SDK's "create from image" path (reference 2.2): resources only here. */
		json_object *build = json_object_new_object();

		snprintf(dockerfile, sizeof(dockerfile), "FROM %s\n", d->cfg.image);
		json_object_object_add(build, "dockerfileContent",
		                       json_object_new_string(dockerfile));
		json_object_object_add(b, "buildInfo", build);
		if (d->cfg.cpu > 0)
			json_object_object_add(b, "cpu", json_object_new_int64(d->cfg.cpu));
		if (d->cfg.memory > 0)
			json_object_object_add(b, "memory", json_object_new_int64(d->cfg.memory));
		if (d->cfg.disk > 0)
			json_object_object_add(b, "disk", json_object_new_int64(d->cfg.disk));
	} else if (d->cfg.snapshot) {
		json_object_object_add(b, "snapshot", json_object_new_string(d->cfg.snapshot));
	}
	json_object_object_add(b, "autoStopInterval",
	                       json_object_new_int64(d->cfg.auto_stop_minutes));
	/* A sandbox a dead host left behind stops (auto-stop), then Daytona deletes it. */
	json_object_object_add(b, "autoDeleteInterval",
	                       json_object_new_int64(d->cfg.auto_delete_minutes));
	if (d->cfg.timeout_s > 0) /* v0.205's sandbox lifetime; older servers ignore it */
		json_object_object_add(
		        b, "ttlMinutes",
		        json_object_new_int64((int64_t)((d->cfg.timeout_s + 59) / 60)));
	if (d->volume_id) {
		json_object *vols = json_object_new_array(), *v = json_object_new_object();

		json_object_object_add(v, "volumeId", json_object_new_string(d->volume_id));
		json_object_object_add(v, "mountPath", json_object_new_string(DT_VOLUME_PATH));
		json_object_array_add(vols, v);
		json_object_object_add(b, "volumes", vols);
	}
	return b;
}

/* Keeps id and the toolbox base of a Sandbox answer. toolboxProxyUrl is required since
 * 2026-02; an older server leaves it out and answers GET .../toolbox-proxy-url instead. */
static int take_sandbox(struct dt *d, json_object *sb, const struct dt_limit *lim, rlm_error *err)
{
	const char *id = jstr(sb, "id"), *tb = jstr(sb, "toolboxProxyUrl");
	json_object *u = NULL;
	char *url;
	int rc = 0;

	if (!id)
		return d->host->error_set(err, RLM_EPROTO,
		                          "daytona: the created sandbox has no id");
	if (!(d->sandbox_id = d->host->str_dup(id)))
		return dt_nomem(d, err);
	if (!tb) {
		url = d->host->str_printf("%s/sandbox/%s/toolbox-proxy-url", d->cfg.api_url, id);
		rc = url ? dt_json_call(d, "GET", url, NULL, 30, lim, "toolbox URL", &u, err)
		         : dt_nomem(d, err);
		d->host->free(url);
		tb = jstr(u, "url");
		if (!rc && !tb)
			rc = d->host->error_set(err, RLM_EPROTO, "daytona: no toolbox URL for %s",
			                        id);
	}
	if (!rc) {
		size_t n = strlen(tb);

		while (n && tb[n - 1] == '/')
			n--;
		d->toolbox = d->host->str_printf("%.*s/%s", (int)n, tb, id);
		rc = d->toolbox ? 0 : dt_nomem(d, err);
	}
	json_object_put(u);
	return rc;
}

/* Sandbox states a wait for `started` never comes back from without an action of ours
 * (SandboxState, reference 2.3). */
static const char *const sandbox_failed_states[] = {"error", "build_failed", NULL};
static const char *const sandbox_gone_states[] = {"destroyed", "destroying", "stopped",
                                                  "stopping",  "archived",   "archiving",
                                                  "paused",    "pausing",    NULL};

/* Polls GET /sandbox/{id} until started, with the SDK's schedule (reference 2.4): 0.1 s,
 * then x1.1 per poll after 5 s, up to 1 s; a bounded wait, since sandboxes do get stuck.
 * A state it cannot leave by itself ends the wait at once. */
static int wait_started(struct dt *d, json_object *sb, const struct dt_limit *lim, rlm_error *err)
{
	double start = d->host->now(), delay = 0.1;
	char *url = d->host->str_printf("%s/sandbox/%s", d->cfg.api_url, d->sandbox_id);
	json_object *cur = json_object_get(sb);
	int rc = url ? 0 : dt_nomem(d, err);

	while (rc == 0) {
		const char *state = jstr(cur, "state"), *desired = jstr(cur, "desiredState");
		const char *why = jstr(cur, "errorReason");

		if (state && strcmp(state, "started") == 0)
			break;
		if (in_list(state, sandbox_failed_states)) {
			rc = d->host->error_set(
			        err, RLM_EBACKEND, "daytona: sandbox %s went to state %s: %s",
			        d->sandbox_id, state, why ? why : "(the server gave no reason)");
			break;
		}
		if (in_list(state, sandbox_gone_states) ||
		    (desired && strcmp(desired, "started") != 0)) {
			rc = d->host->error_set(
			        err, RLM_EBACKEND,
			        "daytona: sandbox %s went to state %s (desired %s) while waiting "
			        "for "
			        "it to start: something else stopped, archived or deleted it%s%s",
			        d->sandbox_id, state ? state : "?", desired ? desired : "?",
			        why ? ": " : "", why ? why : "");
			break;
		}
		if (d->host->now() + delay > lim->deadline) {
			rc = d->host->error_set(
			        err, RLM_ETIMEOUT,
			        "daytona: sandbox %s is still %s after %.0f s; deleted it",
			        d->sandbox_id, state ? state : "in no state",
			        d->host->now() - start);
			break;
		}
		dt_sleep(d, lim, delay);
		if (d->host->now() - start > 5)
			delay = delay * 1.1 > 1.0 ? 1.0 : delay * 1.1;
		json_object_put(cur);
		cur = NULL;
		rc = dt_json_call(d, "GET", url, NULL, 30, lim, "sandbox state", &cur, err);
	}
	json_object_put(cur);
	d->host->free(url);
	return rc;
}

/* Repo staging (issue 4): clone repo_url at repo_ref into the work dir, context_paths
 * uploaded under it. */
static int stage_inputs(struct dt *d, const struct dt_limit *lim, rlm_error *err)
{
	int rc = 0;
	size_t n;

	if (d->cfg.repo_url &&
	    (rc = dt_git_clone(d, d->cfg.repo_url, d->cfg.repo_ref, "repo", lim, err)))
		return rc;
	n = d->cfg.context_paths ? json_object_array_length(d->cfg.context_paths) : 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *local =
		        json_object_get_string(json_object_array_get_idx(d->cfg.context_paths, i));
		const char *base = strrchr(local, '/') ? strrchr(local, '/') + 1 : local;
		FILE *f = fopen(local, "rb");
		char *data = NULL, *remote;
		long len;

		if (!f)
			return d->host->error_set(err, RLM_ECONFIG, "context_paths: cannot read %s",
			                          local);
		if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
		    fseek(f, 0, SEEK_SET) == 0 && (data = d->host->alloc((size_t)len + 1)) &&
		    fread(data, 1, (size_t)len, f) == (size_t)len) {
			remote = d->host->str_printf("context/%s", base);
			rc = remote ? dt_upload(d, data, (size_t)len, remote, lim, err)
			            : dt_nomem(d, err);
			d->host->free(remote);
		} else {
			rc = d->host->error_set(err, RLM_EIO, "context_paths: cannot read %s",
			                        local);
		}
		d->host->free(data);
		fclose(f);
	}
	return rc;
}

/* Deletes one sandbox by id, retrying a 409 (a state change in progress) until the
 * deadline; 0 when it is gone. Never cancelled: a delete is what a cancel leaves to do. */
static int delete_by_id(struct dt *d, const char *id, double deadline, rlm_error *err)
{
	const struct dt_limit lim = {deadline, NULL};
	char *url = d->host->str_printf("%s/sandbox/%s", d->cfg.api_url, id);
	double delay = 0.25;
	int rc;

	if (!url)
		return dt_nomem(d, err);
	for (;;) {
		*err = (rlm_error)RLM_ERROR_INIT;
		rc = dt_json_call(d, "DELETE", url, NULL, 30, &lim, "sandbox delete", NULL, err);
		if (rc == 0 || rc == RLM_ENOTFOUND || err->http_status != 409 ||
		    d->host->now() + delay > deadline)
			break;
		dt_sleep(d, &lim, delay);
		delay = delay * 2 > 2 ? 2 : delay * 2;
	}
	d->host->free(url);
	return rc == RLM_ENOTFOUND ? 0 : rc;
}

/* Says where a sandbox that could not be deleted goes from here. */
static void log_left_behind(struct dt *d, const char *id, const rlm_error *err)
{
	char after[96] = "";

	if (d->cfg.auto_delete_minutes == 0)
		snprintf(after, sizeof(after), ", and Daytona deletes it as soon as it stops");
	else if (d->cfg.auto_delete_minutes > 0)
		snprintf(after, sizeof(after),
		         ", and Daytona deletes it %ld minutes after it stops",
		         d->cfg.auto_delete_minutes);
	d->host->log(RLM_LOG_WARN, DT_NAME,
	             "could not delete sandbox %s: %s; it is left to `rlm backends gc daytona` "
	             "(labels rlm=1, rlm-instance=%s): auto-stop stops it after %ld idle "
	             "minutes%s",
	             id, err->message, d->instance_id, d->cfg.auto_stop_minutes, after);
}

/* A create whose answer was lost is retried, and the server may then have made two
 * sandboxes. Every sandbox of this instance carries its rlm-instance label, so any other one
 * found under that label is such a duplicate: delete it (best effort) so none leaks. */
static void reap_duplicates(struct dt *d, const struct dt_limit *lim)
{
	rlm_error err = RLM_ERROR_INIT;
	json_object *page = NULL, *items = NULL;
	char filter[160];
	snprintf(filter, sizeof(filter), "{\"rlm-instance\":\"%s\"}", d->instance_id);
	char *enc = dt_urlencode(d, filter);
	char *url = enc ? d->host->str_printf("%s/sandbox?labels=%s", d->cfg.api_url, enc) : NULL;
	int rc = url ? dt_json_call(d, "GET", url, NULL, 30, lim, "sandbox list", &page, &err)
	             : RLM_ENOMEM;
	d->host->free(enc);
	d->host->free(url);
	if (rc == 0 && !json_object_is_type(page, json_type_array))
		json_object_object_get_ex(page, "items", &items);
	else if (rc == 0)
		items = page;
	for (size_t i = 0; items && i < json_object_array_length(items); i++) {
		json_object *sb = json_object_array_get_idx(items, i), *labels, *v;
		const char *id = jstr(sb, "id");
		if (!id || !strcmp(id, d->sandbox_id) ||
		    !json_object_object_get_ex(sb, "labels", &labels) ||
		    !json_object_object_get_ex(labels, "rlm-instance", &v) ||
		    strcmp(json_object_get_string(v), d->instance_id))
			continue; /* defensive: a server that ignores the labels filter */
		d->host->log(RLM_LOG_WARN, DT_NAME, "deleting duplicate sandbox %s of instance %s",
		             id, d->instance_id);
		if (delete_by_id(d, id, d->host->now() + d->cfg.shutdown_timeout_s, &err))
			log_left_behind(d, id, &err);
	}
	if (rc)
		d->host->log(RLM_LOG_DEBUG, DT_NAME, "duplicate check skipped: %s", err.message);
	json_object_put(page);
}

int dt_sandbox_provision(struct dt *d, const struct dt_limit *lim, rlm_error *err)
{
	/* Creating and starting: create_timeout_s at most, within the caller's deadline. */
	struct dt_limit wait = {d->host->now() + d->cfg.create_timeout_s, lim->cancel};
	json_object *body, *sb = NULL;
	char *url;
	int rc;

	if (lim->deadline > 0 && lim->deadline < wait.deadline)
		wait.deadline = lim->deadline;
	if (d->cfg.volume_name && (rc = volume_ready(d, &wait, err)))
		return rc;
	body = create_body(d);
	url = d->host->str_printf("%s/sandbox", d->cfg.api_url);
	/* The server waits up to 30 s itself before answering (reference 2.4). */
	rc = url ? dt_json_call(d, "POST", url, body, 90, &wait, "sandbox create", &sb, err)
	         : dt_nomem(d, err);
	d->host->free(url);
	json_object_put(body);
	if (rc == 0)
		rc = take_sandbox(d, sb, &wait, err);
	if (rc == 0)
		reap_duplicates(d, &wait);
	if (rc == 0) {
		d->host->log(RLM_LOG_INFO, DT_NAME, "sandbox %s created (instance %s)",
		             d->sandbox_id, d->instance_id);
		rc = wait_started(d, sb, &wait, err);
	}
	json_object_put(sb);
	if (rc == 0)
		rc = stage_inputs(d, lim, err);
	d->provisioned = rc == 0;
	/* Never leave one behind; but a cancelled start returns at once and leaves the delete to
	 * the shutdown() that follows it (or to the next start). */
	if (rc && (rc != RLM_ECANCELLED || !d->sandbox_id))
		dt_sandbox_delete(d, NULL);
	return rc;
}

int dt_sandbox_delete(struct dt *d, const struct dt_limit *lim)
{
	rlm_error err = RLM_ERROR_INIT;
	int rc;

	if (!d->sandbox_id)
		return 0;
	rc = delete_by_id(d, d->sandbox_id,
	                  lim && lim->deadline > 0 ? lim->deadline
	                                           : d->host->now() + d->cfg.shutdown_timeout_s,
	                  &err);
	if (rc)
		log_left_behind(d, d->sandbox_id, &err);
	else
		d->host->log(RLM_LOG_INFO, DT_NAME, "sandbox %s deleted", d->sandbox_id);
	d->host->free(d->sandbox_id);
	d->host->free(d->toolbox);
	d->sandbox_id = d->toolbox = NULL;
	d->provisioned = 0;
	return rc;
}

int dt_sandbox_is_lost(struct dt *d, const struct dt_limit *lim)
{
	rlm_error err = RLM_ERROR_INIT;
	json_object *sb = NULL;
	char *url;
	const char *state;
	int rc, lost;

	if (!d->sandbox_id)
		return 1;
	url = d->host->str_printf("%s/sandbox/%s", d->cfg.api_url, d->sandbox_id);
	rc = url ? dt_json_call(d, "GET", url, NULL, 30, lim, "sandbox state", &sb, &err)
	         : RLM_ENOMEM;
	d->host->free(url);
	state = jstr(sb, "state");
	lost = rc == RLM_ENOTFOUND ? 1 : rc ? -1 : !state || strcmp(state, "started") != 0;
	json_object_put(sb);
	return lost;
}

/* ---- gc -------------------------------------------------------------------------------- */

/* Seconds since an ISO-8601 UTC time ("2026-01-02T03:04:05.678Z"), or -1. */
static double age_s(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!iso || !strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm))
		return -1;
	return difftime(time(NULL), timegm(&tm));
}

/* Whether a listed sandbox carries label name=value. */
static int has_label(json_object *sb, const char *name, const char *value)
{
	json_object *labels, *v;
	return json_object_object_get_ex(sb, "labels", &labels) &&
	       json_object_object_get_ex(labels, name, &v) &&
	       json_object_is_type(v, json_type_string) &&
	       strcmp(json_object_get_string(v), value) == 0;
}

int dt_gc(struct dt *d, double older_than_min, const char *run, int dry_run, json_object **report,
          rlm_error *err)
{
	json_object *out = json_object_new_array(), *page = NULL;
	json_object *filter = json_object_new_object();
	char *cursor = NULL, *labels;
	int rc = 0;

	json_object_object_add(filter, "rlm", json_object_new_string("1"));
	if (run)
		json_object_object_add(filter, "rlm-run", json_object_new_string(run));
	labels = dt_urlencode(d, json_object_to_json_string_ext(filter, JSON_C_TO_STRING_PLAIN));
	json_object_put(filter);
	if (!labels) {
		json_object_put(out);
		return dt_nomem(d, err);
	}
	do {
		char *enc = cursor ? dt_urlencode(d, cursor) : NULL;
		char *url =
		        d->host->str_printf("%s/sandbox?limit=100&labels=%s%s%s", d->cfg.api_url,
		                            labels, enc ? "&cursor=" : "", enc ? enc : "");
		json_object *items;

		d->host->free(enc);
		d->host->free(cursor);
		cursor = NULL;
		rc = url ? dt_json_call(d, "GET", url, NULL, 60, NULL, "sandbox list", &page, err)
		         : dt_nomem(d, err);
		d->host->free(url);
		if (rc)
			break;
		/* Before 2026-05 the list was a bare array; since then {items, nextCursor}. */
		if (json_object_is_type(page, json_type_array)) {
			items = page;
		} else if (!json_object_object_get_ex(page, "items", &items)) {
			rc = d->host->error_set(err, RLM_EPROTO,
			                        "daytona: the sandbox list has no items");
			break;
		}
		if (jstr(page, "nextCursor"))
			cursor = d->host->str_dup(jstr(page, "nextCursor"));
		for (size_t i = 0; i < json_object_array_length(items); i++) {
			json_object *sb = json_object_array_get_idx(items, i), *row;
			const char *id = jstr(sb, "id");
			double age = age_s(jstr(sb, "createdAt"));

			/* Defensive: a server that ignores the labels filter deletes nothing else.
			 */
			if (!id || !has_label(sb, "rlm", "1") ||
			    (run && !has_label(sb, "rlm-run", run)))
				continue;
			if (older_than_min >= 0 && (age < 0 || age < older_than_min * 60))
				continue;
			row = json_object_new_object();
			json_object_object_add(row, "id", json_object_new_string(id));
			json_object_object_add(
			        row, "state",
			        json_object_new_string(jstr(sb, "state") ? jstr(sb, "state") : ""));
			json_object_object_add(row, "age_s", json_object_new_double(age));
			if (!dry_run) {
				rlm_error derr = RLM_ERROR_INIT;
				int gone = delete_by_id(d, id,
				                        d->host->now() + d->cfg.shutdown_timeout_s,
				                        &derr) == 0;

				if (!gone)
					d->host->log(RLM_LOG_WARN, DT_NAME,
					             "could not delete sandbox %s: %s", id,
					             derr.message);
				json_object_object_add(row, "deleted",
				                       json_object_new_boolean(gone));
			}
			json_object_array_add(out, row);
		}
		json_object_put(page);
		page = NULL;
	} while (cursor);
	json_object_put(page);
	d->host->free(cursor);
	d->host->free(labels);
	if (rc)
		json_object_put(out);
	else
		*report = out;
	return rc;
}
