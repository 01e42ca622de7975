/* modal.c - the Modal backend plugin: options, credentials, the RPC retry policies, the
 * sandbox lifecycle and the driver channel, over gRPC (grpc.c) with the messages of
 * modal.proto. Execs are in modal_exec.c, file transfer in modal_files.c.
 *
 * start(): AppGetOrCreate, ImageGetOrCreate (+ ImageJoinStreaming until the build ends), an
 * ephemeral secret for env_vars, VolumeGetOrCreate, SandboxCreate, SandboxGetTaskId polling,
 * TaskGetCommandRouterAccess; then, through the task's command router, driver.py is written
 * (modal_files.c) and launched as one long-lived exec. execute() writes requests
 * with TaskExecStdinWrite (by offset) and reads the channel with TaskExecStdioRead from the
 * byte offset already consumed, so a dropped stream resumes where it stopped. The sandbox is
 * terminated on shutdown(), which the core always calls after create(), failed starts
 * included. The token secret goes only into request headers: never logged, never into the
 * sandbox. */
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "modal_internal.h"

static const char *const modal_fs_modes[] = {"auto", "fs-tools", "legacy", "shell", NULL};

#define MODAL_RANGE(lo, hi) .flags = RLM_OPTF_MIN | RLM_OPTF_MAX, .min = (lo), .max = (hi)

/* Types, ranges, choices and the environment variables are the core's (ABI 1.2): config, else
 * the variable, else the default; the profile of ~/.modal.toml comes after, in cfg_read. Modal's
 * longest sandbox lifetime is 24 h (UNVERIFIED on Modal's own pages, reference 7): a longer one
 * is refused here rather than by the server after an image build. */
static const rlm_option_def modal_options[] = {
        RLM_OPTION_DEF(.name = "server_url", .type = RLM_OPT_STRING, .env = "MODAL_SERVER_URL",
                       .flags = RLM_OPTF_NONEMPTY,
                       .doc = "control plane URL; else MODAL_SERVER_URL, the profile's, or "
                              "https://api.modal.com"),
        RLM_OPTION_DEF(.name = "environment", .type = RLM_OPT_STRING, .env = "MODAL_ENVIRONMENT",
                       .doc = "Modal environment; else MODAL_ENVIRONMENT or the profile's "
                              "(empty: the default)"),
        RLM_OPTION_DEF(.name = "app_name", .type = RLM_OPT_STRING, .default_json = "\"rlm\"",
                       .flags = RLM_OPTF_NONEMPTY,
                       .doc = "app the sandboxes belong to (created if missing)"),
        RLM_OPTION_DEF(.name = "image", .type = RLM_OPT_STRING,
                       .default_json = "\"python:3.12-slim\"", .flags = RLM_OPTF_NONEMPTY,
                       .doc = "registry tag of the sandbox image (FROM <image>; needs python3 "
                              "and sh)"),
        RLM_OPTION_DEF(.name = "env_vars", .type = RLM_OPT_OBJECT, .default_json = "{}",
                       .doc = "environment of the sandbox, sent as an ephemeral secret"),
        RLM_OPTION_DEF(.name = "volume_name", .type = RLM_OPT_STRING,
                       .doc = "volume mounted at /data (VOLUME), created if missing"),
        RLM_OPTION_DEF(.name = "timeout_s", .type = RLM_OPT_NUMBER, .default_json = "3600",
                       MODAL_RANGE(0.001, 86400),
                       .doc = "sandbox lifetime in seconds: Modal kills it then, even if the "
                              "host died"),
        RLM_OPTION_DEF(.name = "execute_timeout_s", .type = RLM_OPT_NUMBER, .default_json = "300",
                       MODAL_RANGE(0.001, 86400),
                       .doc = "longest one RPC or helper command (file transfer) may take"),
        RLM_OPTION_DEF(.name = "shutdown_timeout_s", .type = RLM_OPT_NUMBER, .default_json = "20",
                       MODAL_RANGE(0.001, 3600),
                       .doc = "longest shutdown spends terminating the sandbox; past it the "
                              "sandbox is left to its lifetime (timeout_s)"),
        RLM_OPTION_DEF(.name = "image_builder_version", .type = RLM_OPT_STRING,
                       .env = "MODAL_IMAGE_BUILDER_VERSION",
                       .doc = "Modal image builder version; else MODAL_IMAGE_BUILDER_VERSION, "
                              "the profile's, or the environment's own setting (as the SDKs)"),
        RLM_OPTION_DEF(.name = "cpu", .type = RLM_OPT_NUMBER, MODAL_RANGE(0, 1024),
                       .doc = "CPU cores (sent as milli-CPUs); the server's default if unset"),
        RLM_OPTION_DEF(.name = "memory_mb", .type = RLM_OPT_INT, MODAL_RANGE(0, 1 << 22),
                       .doc = "memory in MiB (at most 4 TiB); the server's default if unset"),
        RLM_OPTION_DEF(.name = "workdir", .type = RLM_OPT_STRING, .default_json = "\"/root\"",
                       .flags = RLM_OPTF_NONEMPTY,
                       .doc = "work directory of the sandbox and the driver"),
        RLM_OPTION_DEF(.name = "python", .type = RLM_OPT_STRING, .default_json = "\"python3\"",
                       .flags = RLM_OPTF_NONEMPTY, .doc = "Python interpreter inside the sandbox"),
        RLM_OPTION_DEF(.name = "file_transfer", .type = RLM_OPT_STRING, .default_json = "\"auto\"",
                       .choices = modal_fs_modes,
                       .doc = "how files move: auto (fs-tools, then the legacy file API, then "
                              "sh), fs-tools, legacy or shell"),
        RLM_OPTION_DEF(.name = "ca_file", .type = RLM_OPT_STRING,
                       .doc = "PEM bundle to verify the control plane and routers with, "
                              "instead of the system's"),
        {0},
};

const char MODAL[] = "modal";

int nomem(struct modal *m, rlm_error *err)
{
	return m->host->error_set(err, RLM_ENOMEM, "modal backend: out of memory");
}

/* ---- bounds ---------------------------------------------------------------------------- */

mg_bounds mb_budget(struct modal *m, double max_s, const volatile int *cancel)
{
	mg_bounds b = {m->host->now() + max_s, cancel};

	return b;
}

mg_bounds mb_within(struct modal *m, const mg_bounds *b, double max_s)
{
	mg_bounds r = *b;
	double end = m->host->now() + max_s;

	if (end < r.deadline)
		r.deadline = end;
	return r;
}

int mb_check(struct modal *m, const mg_bounds *b, const char *what, rlm_error *err)
{
	if (b->cancel && *b->cancel)
		return m->host->error_set(err, RLM_ECANCELLED, "modal: %s: cancelled", what);
	if (m->host->now() >= b->deadline)
		return m->host->error_set(err, RLM_ETIMEOUT, "modal: %s: deadline passed", what);
	return 0;
}

int mb_sleep(struct modal *m, const mg_bounds *b, double s, const char *what, rlm_error *err)
{
	double end = m->host->now() + s;
	int rc;

	while ((rc = mb_check(m, b, what, err)) == 0) {
		double left = end - m->host->now(), to_deadline = b->deadline - m->host->now();
		if (left <= 0)
			return 0;
		if (left > to_deadline)
			left = to_deadline;
		m->host->sleep(left, b->cancel);
	}
	return rc;
}

int mb_lock(struct modal *m, pthread_mutex_t *mu, const mg_bounds *b, const char *what,
            rlm_error *err)
{
	int rc;

	while ((rc = mb_check(m, b, what, err)) == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_mutex_timedlock(mu, &ts) == 0)
			return 0;
	}
	return rc;
}

/* ---- config and credentials ------------------------------------------------------------ */

/* A string option, host->alloc'ed; NULL when unset. */
static int cfg_str(struct modal *m, const rlm_options *o, const char *key, char **out,
                   rlm_error *err)
{
	const char *v = m->host->opt_string(o, key);

	*out = NULL;
	return !v || (*out = m->host->str_dup(v)) ? 0 : nomem(m, err);
}

/* One line of ~/.modal.toml: a table header (1, name in sect), a `key = value` pair (2; value
 * unquoted from "..." or '...', or bare like true), or anything else (0). The file is flat:
 * one table per profile, string and boolean values. */
static int toml_line(char *line, char *sect, size_t sect_len, char **key, char **val)
{
	char *p = line, *e;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[') {
		p++;
		if (!(e = strchr(p, ']')))
			return 0;
		*e = 0;
		if (*p == '"' && e > p + 1 && e[-1] == '"') { /* ["quoted name"] */
			p++;
			e[-1] = 0;
		}
		snprintf(sect, sect_len, "%s", p);
		return 1;
	}
	if (!*p || *p == '#' || !(e = strchr(p, '=')))
		return 0;
	*key = p;
	for (char *k = e; k > p && (k[-1] == ' ' || k[-1] == '\t'); k--)
		k[-1] = 0;
	*e = 0;
	p = e + 1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"' || *p == '\'') {
		char q = *p++;
		if (!(e = strchr(p, q)))
			return 0;
		*e = 0;
	} else {
		e = p + strcspn(p, " \t\r\n#");
		*e = 0;
	}
	*val = p;
	return **key ? 2 : 0;
}

/* Reads key of the active profile of ~/.modal.toml ($MODAL_CONFIG_PATH): the table named by
 * $MODAL_PROFILE, else the first with `active = true`, else none (as the Go and JS SDKs). */
static char *toml_profile_value(struct modal *m, const char *key)
{
	const char *path = getenv("MODAL_CONFIG_PATH"), *want = getenv("MODAL_PROFILE");
	char buf[2048], home_path[1024], section[256] = "", active[256] = "", *found = NULL;
	char *k, *v;
	FILE *f;

	if (!path || !*path) {
		const char *home = getenv("HOME");
		if (!home)
			return NULL;
		snprintf(home_path, sizeof(home_path), "%s/.modal.toml", home);
		path = home_path;
	}
	if (!(f = fopen(path, "r")))
		return NULL;
	if (!want || !*want) { /* first pass: the active profile */
		while (!*active && fgets(buf, sizeof(buf), f))
			if (toml_line(buf, section, sizeof(section), &k, &v) == 2 && *section &&
			    strcmp(k, "active") == 0 && strcmp(v, "true") == 0)
				snprintf(active, sizeof(active), "%s", section);
		if (!*active) {
			fclose(f);
			return NULL;
		}
		want = active;
		rewind(f);
	}
	*section = 0;
	while (!found && fgets(buf, sizeof(buf), f))
		if (toml_line(buf, section, sizeof(section), &k, &v) == 2 &&
		    strcmp(section, want) == 0 && strcmp(k, key) == 0)
			found = m->host->str_dup(v);
	memset(buf, 0, sizeof(buf)); /* it may have held the token secret */
	fclose(f);
	return found;
}

/* env var, else the profile's key, else def (may be NULL). */
static char *setting(struct modal *m, const char *env, const char *key, const char *def)
{
	const char *v = getenv(env);
	char *p;

	if (v && *v)
		return m->host->str_dup(v);
	if ((p = toml_profile_value(m, key)))
		return p;
	return def ? m->host->str_dup(def) : NULL;
}

/* The value, else the profile's key, else def (may be NULL). */
static char *or_profile(struct modal *m, const char *v, const char *key, const char *def)
{
	char *p;

	if (v)
		return m->host->str_dup(v);
	if ((p = toml_profile_value(m, key)))
		return p;
	return def ? m->host->str_dup(def) : NULL;
}

static int cfg_read(struct modal *m, const rlm_options *o, rlm_error *err)
{
	const rlm_host_api *h = m->host;
	const char *fs = h->opt_string(o, "file_transfer");
	int rc;

	if ((rc = cfg_str(m, o, "app_name", &m->app_name, err)) ||
	    (rc = cfg_str(m, o, "image", &m->image, err)) ||
	    (rc = cfg_str(m, o, "volume_name", &m->volume_name, err)) ||
	    (rc = cfg_str(m, o, "workdir", &m->workdir, err)) ||
	    (rc = cfg_str(m, o, "python", &m->python, err)) ||
	    (rc = cfg_str(m, o, "ca_file", &m->ca_file, err)) ||
	    (rc = cfg_str(m, o, "image_builder_version", &m->image_builder_version, err)))
		return rc;
	m->fs_mode = fs_mode_of(fs ? fs : "auto");
	if (!(m->env_vars = json_tokener_parse(h->opt_object_json(o, "env_vars"))))
		return nomem(m, err);
	json_object_object_foreach(m->env_vars, k, val)
	{
		(void)k;
		if (!json_object_is_type(val, json_type_string))
			return h->error_set(err, RLM_ECONFIG,
			                    "backends.modal.env_vars: values must be strings");
	}
	/* A null in the config leaves these at 0: the defaults then. */
	m->timeout_s = h->opt_is_set(o, "timeout_s") ? h->opt_number(o, "timeout_s") : 3600;
	m->exec_timeout_s =
	        h->opt_is_set(o, "execute_timeout_s") ? h->opt_number(o, "execute_timeout_s") : 300;
	m->shutdown_timeout_s = h->opt_is_set(o, "shutdown_timeout_s")
	                                ? h->opt_number(o, "shutdown_timeout_s")
	                                : 20;
	m->cpu = h->opt_number(o, "cpu");
	m->memory_mb = (long)h->opt_int(o, "memory_mb");
	if (!(m->server_url = or_profile(m, h->opt_string(o, "server_url"), "server_url",
	                                 "https://api.modal.com")) ||
	    !(m->environment = or_profile(m, h->opt_string(o, "environment"), "environment", "")))
		return nomem(m, err);
	if (strncmp(m->server_url, "https://", 8) != 0 &&
	    !(strncmp(m->server_url, "http://", 7) == 0 && mg_url_is_loopback(m->server_url)))
		return h->error_set(err, RLM_ECONFIG,
		                    "backends.modal.server_url: \"%s\" must be https:// (plain "
		                    "http:// only to a loopback address)",
		                    m->server_url);
	if ((!m->app_name && !(m->app_name = h->str_dup("rlm"))) ||
	    (!m->image && !(m->image = h->str_dup("python:3.12-slim"))) ||
	    (!m->workdir && !(m->workdir = h->str_dup("/root"))) ||
	    (!m->python && !(m->python = h->str_dup("python3"))))
		return nomem(m, err);
	return 0;
}

/* ---- RPCs with the SDKs' retry policies ------------------------------------------------ */

int rpc_error(struct modal *m, const char *what, const mg_status *st, rlm_error *err)
{
	if (st->code == MG_CALLER_CANCELLED)
		return m->host->error_set(err, RLM_ECANCELLED, "modal: %s: cancelled", what);
	if (st->code == MG_TRANSPORT)
		return m->host->error_set(err, mg_to_rlm(st->code), "modal: %s failed: %s", what,
		                          st->message);
	return m->host->error_set(err, mg_to_rlm(st->code), "modal: %s failed: gRPC status %d%s%s",
	                          what, st->code, *st->message ? ": " : "", st->message);
}

/* A UUID (version 4): exec ids and x-idempotency-key. */
void new_uuid(char out[37])
{
	unsigned char b[16];
	FILE *f = fopen("/dev/urandom", "rb");
	if (!f || fread(b, 1, sizeof(b), f) != sizeof(b)) {
		/* No urandom: time and address still make the key unique enough for retries. */
		uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)out;
		for (size_t i = 0; i < sizeof(b); i++, x = x * 6364136223846793005ull + 1)
			b[i] = (unsigned char)(x >> 56);
	}
	if (f)
		fclose(f);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

/* A control-plane unary call with the SDKs' retry headers: one x-idempotency-key for all
 * attempts of the call (so a retried SandboxCreate whose first answer was lost does not make
 * a second sandbox), x-retry-attempt, and x-retry-delay after the first attempt. */
static int cp_attempt(struct modal *m, const mg_bounds *b, const char *path,
                      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                      void *resp, const char *key, int attempt, double first_at, mg_status *st)
{
	char idem[64], att[40], dly[48];
	const char *hdrs[4] = {idem, att, NULL, NULL};
	mg_bounds one = mb_within(m, b, m->exec_timeout_s);

	snprintf(idem, sizeof(idem), "x-idempotency-key: %s", key);
	snprintf(att, sizeof(att), "x-retry-attempt: %d", attempt);
	if (attempt > 0) {
		snprintf(dly, sizeof(dly), "x-retry-delay: %.3f", m->host->now() - first_at);
		hdrs[2] = dly;
	}
	return mg_unary(m->cp, path, req, hdrs, desc, (ProtobufCMessage **)resp, &one, st);
}

/* 3 retries of the retryable codes (100 ms doubling, at most 1 s) and server-directed
 * throttling (RPCRetryPolicy) outside that budget, up to 60 s of it; all within b. */
int cp_call(struct modal *m, const mg_bounds *b, const char *path, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, void *resp, rlm_error *err)
{
	const char *what = strrchr(path, '/') + 1;
	mg_status st;
	double delay = 0.1, throttled = 0, first_at = m->host->now();
	int attempt = 0, sent = 0, rc;
	char key[37];

	new_uuid(key);
	for (;;) {
		if (cp_attempt(m, b, path, req, desc, resp, key, sent++, first_at, &st) == MG_OK)
			return 0;
		if (st.code == MG_CALLER_CANCELLED)
			return rpc_error(m, what, &st, err);
		if (st.retry_after_s > 0 && throttled + st.retry_after_s <= 60) {
			throttled += st.retry_after_s;
			if ((rc = mb_sleep(m, b, st.retry_after_s, what, err)))
				return rc;
			continue;
		}
		if (!mg_retryable(st.code) || attempt++ >= 3 || m->host->now() >= b->deadline)
			return rpc_error(m, what, &st, err);
		m->host->log(RLM_LOG_DEBUG, MODAL, "%s: status %d, retrying", path, st.code);
		if ((rc = mb_sleep(m, b, delay, what, err)))
			return rc;
		delay = delay * 2 > 1 ? 1 : delay * 2;
	}
}

static int router_connect(struct modal *m, const mg_bounds *b, rlm_error *err);

mg_channel *router_get(struct modal *m, unsigned *gen)
{
	mg_channel *ch;

	pthread_mutex_lock(&m->mu);
	ch = m->router;
	*gen = m->router_gen;
	pthread_mutex_unlock(&m->mu);
	return ch;
}

int router_refresh(struct modal *m, const mg_bounds *b, unsigned gen, rlm_error *err)
{
	int rc, stale;

	if ((rc = mb_lock(m, &m->refresh_mu, b, "router access", err)))
		return rc;
	pthread_mutex_lock(&m->mu);
	stale = gen == m->router_gen;
	pthread_mutex_unlock(&m->mu);
	rc = stale ? router_connect(m, b, err) : 0;
	pthread_mutex_unlock(&m->refresh_mu);
	return rc;
}

int rt_call(struct modal *m, const mg_bounds *b, const char *path, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, void *resp, rlm_error *err)
{
	const char *what = strrchr(path, '/') + 1;
	mg_status st;
	double delay = 0.01;
	int attempt = 0, refreshed = 0, rc;

	for (;;) {
		unsigned gen;
		mg_channel *ch = router_get(m, &gen);
		mg_bounds one = mb_within(m, b, m->exec_timeout_s);
		if (mg_unary(ch, path, req, NULL, desc, (ProtobufCMessage **)resp, &one, &st) ==
		    MG_OK)
			return 0;
		if (st.code == MG_UNAUTHENTICATED && !refreshed) {
			refreshed = 1;
			if ((rc = router_refresh(m, b, gen, err)))
				return rc;
			continue;
		}
		if (!mg_retryable(st.code) || attempt++ >= 10 || m->host->now() >= b->deadline)
			return rpc_error(m, what, &st, err);
		if ((rc = mb_sleep(m, b, delay, what, err)))
			return rc;
		delay *= 2;
	}
}

/* ---- provisioning ---------------------------------------------------------------------- */

/* How rlm presents itself. Modal's ClientType enum has no value for a C client, and an
 * unknown client type is not known to be accepted, so rlm says it is the Go SDK (9) and sends
 * that SDK's headers exactly as modal-go sends them: x-modal-client-version "1.0.0" (the Python
 * SDK version it behaves like) and x-modal-libmodal-version "modal-go/<version>", the version
 * of modal-go whose wire behaviour this plugin follows (modal-client go/version.go, read at
 * 69519aef). The free-form user-agent says what is really talking. What the server makes of
 * either is UNVERIFIED (reference 9). */
#define MODAL_GO_COMPAT "0.9.0"
#define PLUGIN_VERSION  "0.2.0"

/* The token headers go on every control-plane call. Whether V1 sandbox calls also want
 * x-modal-auth-token (the Python SDK does not send it there, so neither does rlm) is
 * UNVERIFIED (reference 9). */
static int cp_connect(struct modal *m, rlm_error *err)
{
	char id[512], secret[512];
	const char *hdrs[] = {id,
	                      secret,
	                      "x-modal-client-type: 9",
	                      "x-modal-client-version: 1.0.0",
	                      "x-modal-libmodal-version: modal-go/" MODAL_GO_COMPAT,
	                      "user-agent: rlm-backend-modal/" PLUGIN_VERSION
	                      " (modal-go/" MODAL_GO_COMPAT " compatible)",
	                      NULL};

	if (m->cp)
		return 0;
	if (!m->token_id)
		m->token_id = setting(m, "MODAL_TOKEN_ID", "token_id", NULL);
	if (!m->token_secret)
		m->token_secret = setting(m, "MODAL_TOKEN_SECRET", "token_secret", NULL);
	if (!m->token_id || !m->token_secret)
		return m->host->error_set(err, RLM_EAUTH,
		                          "modal: no credentials: set MODAL_TOKEN_ID and "
		                          "MODAL_TOKEN_SECRET or run `modal token new`");
	snprintf(id, sizeof(id), "x-modal-token-id: %s", m->token_id);
	snprintf(secret, sizeof(secret), "x-modal-token-secret: %s", m->token_secret);
	m->cp = mg_channel_new(m->host, m->server_url, hdrs, m->ca_file);
	memset(secret, 0, sizeof(secret));
	return m->cp ? 0 : nomem(m, err);
}

/* Asks for router access (a JWT and the router's URL) and installs it. Called with refresh_mu
 * held (router_refresh), so one thread at a time; mu is taken only to swap the channel. */
static int router_connect(struct modal *m, const mg_bounds *b, rlm_error *err)
{
	Modal__Client__TaskGetCommandRouterAccessRequest req =
	        MODAL__CLIENT__TASK_GET_COMMAND_ROUTER_ACCESS_REQUEST__INIT;
	Modal__Client__TaskGetCommandRouterAccessResponse *resp = NULL;
	char auth[4096];
	const char *hdrs[] = {auth, NULL};
	int rc;

	req.task_id = m->task_id;
	if ((rc = cp_call(m, b, CP_PATH("TaskGetCommandRouterAccess"), &req.base,
	                  &modal__client__task_get_command_router_access_response__descriptor,
	                  &resp, err)))
		return rc;
	/* Like the SDKs: plain http only when the control plane itself is on loopback. */
	if (strncmp(resp->url, "https://", 8) != 0 &&
	    !(strncmp(resp->url, "http://", 7) == 0 && mg_url_is_loopback(m->server_url))) {
		rc = m->host->error_set(err, RLM_EBACKEND,
		                        "modal: refusing non-https router URL %s", resp->url);
		goto out;
	}
	snprintf(auth, sizeof(auth), "authorization: Bearer %s", resp->jwt);
	pthread_mutex_lock(&m->mu);
	if (m->router && m->router_url && strcmp(m->router_url, resp->url) == 0) {
		rc = mg_channel_set_headers(m->router, hdrs) ? nomem(m, err) : 0;
	} else {
		mg_channel *ch = mg_channel_new(m->host, resp->url, hdrs, m->ca_file);
		char *url = m->host->str_dup(resp->url);
		if (!ch || !url) {
			pthread_mutex_unlock(&m->mu);
			mg_channel_free(ch);
			m->host->free(url);
			rc = nomem(m, err);
			goto out;
		}
		/* Another thread may still be calling through the old channel: keep it. */
		for (int i = 0; m->router && i < MODAL_MAX_RETIRED; i++)
			if (!m->retired[i]) {
				m->retired[i] = m->router;
				m->router = NULL;
			}
		mg_channel_free(m->router); /* retired list full: there is no other thread */
		m->host->free(m->router_url);
		m->router = ch;
		m->router_url = url;
	}
	m->router_gen++;
	pthread_mutex_unlock(&m->mu);
	memset(auth, 0, sizeof(auth));
out:
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int result_failed(struct modal *m, const char *what, const Modal__Client__GenericResult *r,
                         rlm_error *err)
{
	return m->host->error_set(err, RLM_EBACKEND, "modal: %s failed (status %d): %s", what,
	                          (int)r->status, r->exception ? r->exception : "");
}

struct image_join {
	struct modal *m;
	char *entry_id;
	Modal__Client__GenericStatus status;
	char exception[512];
};

static int on_image_join(void *ctx, const ProtobufCMessage *msg)
{
	struct image_join *j = ctx;
	const Modal__Client__ImageJoinStreamingResponse *r = (const void *)msg;

	if (r->entry_id && *r->entry_id) {
		j->m->host->free(j->entry_id);
		j->entry_id = j->m->host->str_dup(r->entry_id);
	}
	if (r->result &&
	    r->result->status != MODAL__CLIENT__GENERIC_STATUS__GENERIC_STATUS_UNSPECIFIED) {
		j->status = r->result->status;
		snprintf(j->exception, sizeof(j->exception), "%s",
		         r->result->exception ? r->result->exception : "");
		return 1;
	}
	return 0;
}

/* The image builder version, as the SDKs choose it: the option, MODAL_IMAGE_BUILDER_VERSION or
 * the profile's image_builder_version, else the environment's setting (EnvironmentGetOrCreate,
 * looked up, not created). *out is NULL when the environment names none: the server's default
 * then applies. */
static int builder_version(struct modal *m, const mg_bounds *b, char **out, rlm_error *err)
{
	Modal__Client__EnvironmentGetOrCreateRequest req =
	        MODAL__CLIENT__ENVIRONMENT_GET_OR_CREATE_REQUEST__INIT;
	Modal__Client__EnvironmentGetOrCreateResponse *resp = NULL;
	const char *v;
	int rc;

	*out = NULL;
	if (m->image_builder_version && *m->image_builder_version)
		return (*out = m->host->str_dup(m->image_builder_version)) ? 0 : nomem(m, err);
	if ((*out = toml_profile_value(m, "image_builder_version")))
		return 0;
	req.deployment_name = m->environment;
	if ((rc = cp_call(m, b, CP_PATH("EnvironmentGetOrCreate"), &req.base,
	                  &modal__client__environment_get_or_create_response__descriptor, &resp,
	                  err)))
		return rc;
	v = resp->metadata && resp->metadata->settings
	            ? resp->metadata->settings->image_builder_version
	            : NULL;
	if (v && *v && !(*out = m->host->str_dup(v)))
		rc = nomem(m, err);
	m->host->log(RLM_LOG_DEBUG, MODAL, "environment %s: image builder version %s",
	             *m->environment ? m->environment : "(default)", v && *v ? v : "(none)");
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int image_build(struct modal *m, const mg_bounds *b, rlm_error *err)
{
	Modal__Client__ImageGetOrCreateRequest req =
	        MODAL__CLIENT__IMAGE_GET_OR_CREATE_REQUEST__INIT;
	Modal__Client__Image img = MODAL__CLIENT__IMAGE__INIT;
	Modal__Client__ImageGetOrCreateResponse *resp = NULL;
	char from[512], *cmds[] = {from}, *builder = NULL;
	struct image_join j = {m, NULL, 0, ""};
	int rc;

	if ((rc = builder_version(m, b, &builder, err)))
		return rc;
	snprintf(from, sizeof(from), "FROM %s", m->image);
	img.n_dockerfile_commands = 1;
	img.dockerfile_commands = cmds;
	req.image = &img;
	req.app_id = m->app_id;
	req.builder_version = builder ? builder : "";
	rc = cp_call(m, b, CP_PATH("ImageGetOrCreate"), &req.base,
	             &modal__client__image_get_or_create_response__descriptor, &resp, err);
	m->host->free(builder);
	if (rc)
		return rc;
	m->image_id = m->host->str_dup(resp->image_id);
	if (resp->result && resp->result->status)
		j.status = resp->result->status;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (!m->image_id)
		return nomem(m, err);
	double t0 = m->host->now(), said = t0;
	if (!j.status)
		m->host->log(RLM_LOG_INFO, MODAL, "image %s (%s): waiting for its build",
		             m->image_id, m->image);
	for (int tries = 0; !j.status; tries++) {
		if (m->host->now() - said >= 30) { /* progress on a long build */
			said = m->host->now();
			m->host->log(RLM_LOG_INFO, MODAL, "image %s: still building after %.0f s",
			             m->image_id, said - t0);
		}
		Modal__Client__ImageJoinStreamingRequest jr =
		        MODAL__CLIENT__IMAGE_JOIN_STREAMING_REQUEST__INIT;
		mg_status st;
		mg_bounds one = mb_within(m, b, 60); /* the SDKs' 55 s long poll, and some */
		jr.image_id = m->image_id;
		jr.timeout = 55;
		jr.last_entry_id = j.entry_id ? j.entry_id : "";
		mg_stream(m->cp, CP_PATH("ImageJoinStreaming"), &jr.base, NULL,
		          &modal__client__image_join_streaming_response__descriptor, &one,
		          on_image_join, &j, &st);
		if (j.status)
			break;
		if (st.code == MG_CALLER_CANCELLED)
			rc = rpc_error(m, "ImageJoinStreaming", &st, err);
		else if (m->host->now() >= b->deadline)
			rc = m->host->error_set(err, RLM_ETIMEOUT,
			                        "modal: image %s not built in time", m->image);
		else if (st.code != MG_OK && !mg_retryable(st.code))
			rc = rpc_error(m, "ImageJoinStreaming", &st, err);
		else if (st.code != MG_OK)
			rc = mb_sleep(m, b, tries < 10 ? 0.1 : 1, "image build", err);
		if (rc) {
			m->host->free(j.entry_id);
			return rc;
		}
	}
	m->host->free(j.entry_id);
	if (j.status != MODAL__CLIENT__GENERIC_STATUS__GENERIC_STATUS_SUCCESS)
		return m->host->error_set(err, RLM_EBACKEND, "modal: image %s failed to build: %s",
		                          m->image, j.exception);
	return 0;
}

static int make_secret(struct modal *m, const mg_bounds *b, rlm_error *err)
{
	Modal__Client__SecretGetOrCreateRequest req =
	        MODAL__CLIENT__SECRET_GET_OR_CREATE_REQUEST__INIT;
	Modal__Client__SecretGetOrCreateResponse *resp = NULL;
	Modal__Client__SecretGetOrCreateRequest__EnvDictEntry *entries, **ptrs;
	size_t n = 0, i = 0;
	int rc;

	if (!m->env_vars || !(n = (size_t)json_object_object_length(m->env_vars)))
		return 0;
	entries = m->host->alloc(n * sizeof(*entries));
	ptrs = m->host->alloc(n * sizeof(*ptrs));
	if (!entries || !ptrs) {
		m->host->free(entries);
		m->host->free(ptrs);
		return nomem(m, err);
	}
	json_object_object_foreach(m->env_vars, k, v)
	{
		modal__client__secret_get_or_create_request__env_dict_entry__init(&entries[i]);
		entries[i].key = k;
		entries[i].value = (char *)json_object_get_string(v);
		ptrs[i] = &entries[i];
		i++;
	}
	req.deployment_name = "";
	req.environment_name = m->environment;
	req.object_creation_type =
	        MODAL__CLIENT__OBJECT_CREATION_TYPE__OBJECT_CREATION_TYPE_EPHEMERAL;
	req.n_env_dict = n;
	req.env_dict = ptrs;
	req.app_id = m->app_id;
	rc = cp_call(m, b, CP_PATH("SecretGetOrCreate"), &req.base,
	             &modal__client__secret_get_or_create_response__descriptor, &resp, err);
	m->host->free(entries);
	m->host->free(ptrs);
	if (rc)
		return rc;
	m->secret_id = m->host->str_dup(resp->secret_id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return m->secret_id ? 0 : nomem(m, err);
}

static int make_volume(struct modal *m, const mg_bounds *b, rlm_error *err)
{
	Modal__Client__VolumeGetOrCreateRequest req =
	        MODAL__CLIENT__VOLUME_GET_OR_CREATE_REQUEST__INIT;
	Modal__Client__VolumeGetOrCreateResponse *resp = NULL;
	int rc;

	if (!m->volume_name || !*m->volume_name)
		return 0;
	req.deployment_name = m->volume_name;
	req.environment_name = m->environment;
	req.object_creation_type =
	        MODAL__CLIENT__OBJECT_CREATION_TYPE__OBJECT_CREATION_TYPE_CREATE_IF_MISSING;
	if ((rc = cp_call(m, b, CP_PATH("VolumeGetOrCreate"), &req.base,
	                  &modal__client__volume_get_or_create_response__descriptor, &resp, err)))
		return rc;
	m->volume_id = m->host->str_dup(resp->volume_id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return m->volume_id ? 0 : nomem(m, err);
}

static int sandbox_create(struct modal *m, const mg_bounds *b, rlm_error *err)
{
	Modal__Client__SandboxCreateRequest req = MODAL__CLIENT__SANDBOX_CREATE_REQUEST__INIT;
	Modal__Client__Sandbox def = MODAL__CLIENT__SANDBOX__INIT;
	Modal__Client__Resources res = MODAL__CLIENT__RESOURCES__INIT;
	Modal__Client__VolumeMount vm = MODAL__CLIENT__VOLUME_MOUNT__INIT, *vms[] = {&vm};
	Modal__Client__SandboxCreateResponse *resp = NULL;
	char *secrets[] = {m->secret_id};
	int rc;

	def.image_id = m->image_id;
	def.timeout_secs = m->timeout_s > 0 ? (uint32_t)m->timeout_s : 300;
	def.workdir = m->workdir;
	if (m->secret_id) {
		def.n_secret_ids = 1;
		def.secret_ids = secrets;
	}
	if (m->cpu > 0 || m->memory_mb > 0) {
		res.milli_cpu = (uint32_t)(m->cpu * 1000);
		res.memory_mb = (uint32_t)m->memory_mb;
		def.resources = &res;
	}
	if (m->volume_id) {
		vm.volume_id = m->volume_id;
		vm.mount_path = "/data";
		vm.allow_background_commits = 1;
		def.n_volume_mounts = 1;
		def.volume_mounts = vms;
	}
	req.app_id = m->app_id;
	req.definition = &def;
	if ((rc = cp_call(m, b, CP_PATH("SandboxCreate"), &req.base,
	                  &modal__client__sandbox_create_response__descriptor, &resp, err)))
		return rc;
	m->sandbox_id = m->host->str_dup(resp->sandbox_id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (!m->sandbox_id)
		return nomem(m, err);
	m->host->log(RLM_LOG_INFO, MODAL, "sandbox %s created", m->sandbox_id);
	return 0;
}

/* SandboxGetTaskId every 500 ms until the sandbox is scheduled (or has already ended). */
static int wait_task_id(struct modal *m, const mg_bounds *b, rlm_error *err)
{
	double t0 = m->host->now(), said = t0;

	for (;;) {
		Modal__Client__SandboxGetTaskIdRequest req =
		        MODAL__CLIENT__SANDBOX_GET_TASK_ID_REQUEST__INIT;
		Modal__Client__SandboxGetTaskIdResponse *resp = NULL;
		int rc;

		req.sandbox_id = m->sandbox_id;
		if ((rc = cp_call(m, b, CP_PATH("SandboxGetTaskId"), &req.base,
		                  &modal__client__sandbox_get_task_id_response__descriptor, &resp,
		                  err)))
			return rc;
		if (resp->task_result && resp->task_result->status) {
			rc = result_failed(m, "sandbox", resp->task_result, err);
		} else if (resp->task_id && *resp->task_id) {
			if (!(m->task_id = m->host->str_dup(resp->task_id)))
				rc = nomem(m, err);
			else
				m->host->log(RLM_LOG_INFO, MODAL,
				             "sandbox %s scheduled as %s after %.1f s",
				             m->sandbox_id, m->task_id, m->host->now() - t0);
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			return rc;
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (rc)
			return rc;
		if (m->host->now() > b->deadline)
			return m->host->error_set(err, RLM_ETIMEOUT,
			                          "modal: sandbox %s was not scheduled in time",
			                          m->sandbox_id);
		if (m->host->now() - said >= 15) {
			said = m->host->now();
			m->host->log(RLM_LOG_INFO, MODAL,
			             "sandbox %s: not scheduled yet after %.0f s", m->sandbox_id,
			             said - t0);
		}
		if ((rc = mb_sleep(m, b, 0.5, "waiting for the sandbox to be scheduled", err)))
			return rc;
	}
}

static int app_get(struct modal *m, const mg_bounds *b, rlm_error *err)
{
	Modal__Client__AppGetOrCreateRequest req = MODAL__CLIENT__APP_GET_OR_CREATE_REQUEST__INIT;
	Modal__Client__AppGetOrCreateResponse *resp = NULL;
	int rc;

	req.app_name = m->app_name;
	req.environment_name = m->environment;
	req.object_creation_type =
	        MODAL__CLIENT__OBJECT_CREATION_TYPE__OBJECT_CREATION_TYPE_CREATE_IF_MISSING;
	if ((rc = cp_call(m, b, CP_PATH("AppGetOrCreate"), &req.base,
	                  &modal__client__app_get_or_create_response__descriptor, &resp, err)))
		return rc;
	m->app_id = m->host->str_dup(resp->app_id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return m->app_id ? 0 : nomem(m, err);
}

/* ---- the backend ops ------------------------------------------------------------------- */

static void modal_shutdown(void *instance);

static int modal_create_opts(const rlm_host_api *host, const rlm_options *opts, void **instance,
                             rlm_error *err)
{
	struct modal *m;
	int rc;

	if (!instance)
		return host->error_set(err, RLM_EINVAL, "create: no instance pointer");
	*instance = NULL;
	if (!(m = host->alloc(sizeof(*m))))
		return host->error_set(err, RLM_ENOMEM, "modal backend: out of memory");
	memset(m, 0, sizeof(*m));
	m->host = host;
	pthread_mutex_init(&m->mu, NULL);
	pthread_mutex_init(&m->refresh_mu, NULL);
	pthread_mutex_init(&m->life_mu, NULL);
	if ((rc = cfg_read(m, opts, err))) {
		modal_shutdown(m);
		return rc;
	}
	*instance = m;
	return 0;
}

/* Everything up to a running task with router access, within b; what a replaced sandbox
 * already had (app, image, secret, volume) is kept. */
static int provision(struct modal *m, const mg_bounds *b, rlm_error *err)
{
	unsigned gen;
	int rc;

	if ((rc = cp_connect(m, err)) || (!m->app_id && (rc = app_get(m, b, err))) ||
	    (!m->image_id && (rc = image_build(m, b, err))) ||
	    (!m->secret_id && (rc = make_secret(m, b, err))) ||
	    (!m->volume_id && (rc = make_volume(m, b, err))) || (rc = sandbox_create(m, b, err)) ||
	    (rc = wait_task_id(m, b, err)))
		return rc;
	router_get(m, &gen);
	return router_refresh(m, b, gen, err);
}

static const char *status_name(int status)
{
	static const char *const names[] = {
	        "RUNNING",          "SUCCESS",      "FAILURE",
	        "TERMINATED",       "TIMEOUT",      "INIT_FAILURE",
	        "INTERNAL_FAILURE", "IDLE_TIMEOUT", "MEMORY_MANAGER_EVICTION"};
	return status >= 0 && status <= 8 ? names[status] : "UNKNOWN";
}

/* Whether the sandbox has ended: 0 running, -1 unknown (the question failed within b), else
 * its GenericStatus with a description in why. SandboxWait with timeout 0 is a poll. */
static int sandbox_ended(struct modal *m, const mg_bounds *b, char *why, size_t why_len)
{
	Modal__Client__SandboxWaitRequest req = MODAL__CLIENT__SANDBOX_WAIT_REQUEST__INIT;
	Modal__Client__SandboxWaitResponse *resp = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int status;

	if (!m->sandbox_id || !m->cp)
		return -1;
	req.sandbox_id = m->sandbox_id;
	req.timeout = 0;
	if (cp_call(m, b, CP_PATH("SandboxWait"), &req.base,
	            &modal__client__sandbox_wait_response__descriptor, &resp, &err))
		return -1;
	status = resp->result ? (int)resp->result->status : 0;
	if (status && why)
		snprintf(why, why_len, "sandbox %s ended: %s, exit %d%s%s%s", m->sandbox_id,
		         status_name(status), resp->result->exitcode,
		         status == MODAL__CLIENT__GENERIC_STATUS__GENERIC_STATUS_TIMEOUT
		                 ? " (its lifetime, timeout_s, ran out)"
		                 : "",
		         resp->result->exception && *resp->result->exception ? ": " : "",
		         resp->result->exception ? resp->result->exception : "");
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return status;
}

/* A question about the sandbox's state (is it alive, why did the driver stop): its own short
 * budget, the caller's flag. */
#define PROBE_BUDGET_S 15

static void terminate(struct modal *m);

/* Lets go of a sandbox that has ended: the next provision() makes a new one. */
static void forget_sandbox(struct modal *m)
{
	terminate(m);
	m->host->free(m->sandbox_id);
	m->host->free(m->task_id);
	m->sandbox_id = m->task_id = NULL;
	m->driver_uploaded = 0;
	m->driver_running = 0;
}

static int modal_start(void *instance, const rlm_launch *launch, rlm_error *err)
{
	struct modal *m = instance;
	double tmo = launch && launch->start_timeout_s > 0 ? launch->start_timeout_s : 300;
	mg_bounds b = mb_budget(m, tmo, RLM_HAS_FIELD(launch, cancel) ? launch->cancel : NULL);
	char *argv[8];
	size_t argc = 0;
	int rc;

	if (m->task_id && m->started) {
		/* A restart: if the sandbox itself is what died (its lifetime ran out, it was
		 * evicted or terminated), it is replaced, once per start. */
		char why[512];
		mg_bounds probe = mb_within(m, &b, PROBE_BUDGET_S);
		if (sandbox_ended(m, &probe, why, sizeof(why)) > 0) {
			m->host->log(RLM_LOG_WARN, MODAL, "%s; creating a new one", why);
			if ((rc = mb_lock(m, &m->life_mu, &b, "start", err)))
				return rc;
			forget_sandbox(m);
			pthread_mutex_unlock(&m->life_mu);
		}
	}
	if ((rc = mb_check(m, &b, "start", err)))
		return rc;
	if (!m->task_id) {
		if ((rc = mb_lock(m, &m->life_mu, &b, "start", err)))
			return rc;
		rc = provision(m, &b, err);
		pthread_mutex_unlock(&m->life_mu);
		if (rc)
			return rc;
	}
	m->started = 1;
	if (!m->driver_uploaded) {
		if ((rc = modal_write_file(m, &b, ".rlm/driver.py", m->host->driver_script,
		                           m->host->driver_script_len, err)))
			return rc;
		m->driver_uploaded = 1;
	}
	if (m->driver_running) { /* a restart: the old driver goes first */
		char *kill_argv[] = {"sh", "-c",
		                     "kill -9 $(cat .rlm/driver.pid) 2>/dev/null; true"};
		mx_spec kill = {kill_argv, 3, 0, NULL, NULL, 0};
		mg_bounds kb = mb_within(m, &b, 30);
		mx_result r;
		m->driver_running = 0;
		if ((rc = mx_run(m, &kb, &kill, NULL, 0, 0, &r, err)))
			return rc;
		mx_result_free(m, &r);
	}
	/* sh records the pid the driver keeps after exec, so a restart can kill it. */
	argv[argc++] = "sh";
	argv[argc++] = "-c";
	argv[argc++] = "echo $$ > .rlm/driver.pid && exec \"$0\" -u .rlm/driver.py \"$@\"";
	argv[argc++] = m->python;
	if (m->volume_id) {
		argv[argc++] = "--volume";
		argv[argc++] = "/data";
	}
	new_uuid(m->exec_id);
	m->in_off = m->out_off = 0;
	/* stderr joins stdout: the driver's own output goes to its capture pipes, so what
	 * reaches the channel this way is a crash message, skipped as junk between frames. */
	mx_spec spec = {
	        argv, argc, MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_STDOUT,
	        NULL, NULL, 0};
	if ((rc = mx_start(m, &b, m->exec_id, &spec, err)))
		return rc;
	m->driver_running = 1;
	return 0;
}

struct exchange_sink {
	struct modal *m;
	const mg_bounds *b;
	const rlm_exchange *ex;
	rlm_error *err;
};

static int exchange_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct exchange_sink *s = ctx;
	const char *reply = NULL;
	size_t reply_len = 0;
	int act = s->ex->on_data(s->ex->ctx, (const char *)data, len, &reply, &reply_len);
	int rc;

	if (act < 0)
		return act;
	if (reply && reply_len) {
		if ((rc = mx_stdin(s->m, s->b, s->m->exec_id, s->m->in_off, reply, reply_len, 0,
		                   s->err)))
			return rc;
		s->m->in_off += reply_len;
	}
	return act == RLM_EXCHANGE_DONE ? 1 : 0;
}

static int modal_execute(void *instance, const rlm_exchange *ex, rlm_error *err)
{
	struct modal *m = instance;
	mg_bounds b = {ex->deadline, RLM_HAS_FIELD(ex, cancel) ? ex->cancel : NULL};
	struct exchange_sink s = {m, &b, ex, err};
	int rc, exited = 0, code = -1, sig = 0;

	if (!m->driver_running)
		return m->host->error_set(err, RLM_EBACKEND, "modal: the driver is not running");
	if (b.deadline <= 0) /* (an exchange always has one; this keeps the rule local) */
		b.deadline = m->host->now() + m->exec_timeout_s;
	if (ex->request_len) {
		if ((rc = mx_stdin(m, &b, m->exec_id, m->in_off, ex->request, ex->request_len, 0,
		                   err)))
			return rc;
		m->in_off += ex->request_len;
	}
	rc = mx_read(m, &b, m->exec_id, 0, &m->out_off, exchange_sink, &s, err);
	if (rc == 1)
		return 0;
	if (rc)
		return rc;
	/* A clean end of the stream: the driver closed its channel, or its sandbox ended. The
	 * questions why get a short budget of their own: the exchange's deadline may be near. */
	m->driver_running = 0;
	char why[512];
	mg_bounds probe = mb_budget(m, PROBE_BUDGET_S, b.cancel);
	if (sandbox_ended(m, &probe, why, sizeof(why)) > 0)
		return m->host->error_set(err, RLM_EBACKEND, "modal: %s", why);
	probe = mb_budget(m, 10, b.cancel);
	if (mx_wait(m, &probe, m->exec_id, &exited, &code, &sig) == 0 && !exited)
		return m->host->error_set(err, RLM_EBACKEND,
		                          "modal: the driver was killed by signal %d (status %d)",
		                          sig, code);
	return m->host->error_set(err, RLM_EBACKEND, "modal: the driver exited (status %d)", code);
}

/* The ABI gives upload and download no deadline: each gets execute_timeout_s. */
static int modal_upload(void *instance, const void *data, size_t len, const char *remote_path,
                        rlm_error *err)
{
	struct modal *m = instance;
	mg_bounds b = mb_budget(m, m->exec_timeout_s, NULL);

	if (!m->task_id)
		return m->host->error_set(err, RLM_EBACKEND, "modal: no sandbox yet");
	return modal_write_file(m, &b, remote_path, data, len, err);
}

static int modal_download(void *instance, const char *remote_path, rlm_buf *out, rlm_error *err)
{
	struct modal *m = instance;
	mg_bounds b = mb_budget(m, m->exec_timeout_s, NULL);

	if (!m->task_id)
		return m->host->error_set(err, RLM_EBACKEND, "modal: no sandbox yet");
	return modal_read_file(m, &b, remote_path, out, err);
}

/* SandboxTerminate within shutdown_timeout_s, whatever the caller's flag says (a cancelled
 * run must still end its sandbox). Past the budget the sandbox is left to its lifetime. */
static void terminate(struct modal *m)
{
	Modal__Client__SandboxTerminateRequest req = MODAL__CLIENT__SANDBOX_TERMINATE_REQUEST__INIT;
	Modal__Client__SandboxTerminateResponse *resp = NULL;
	rlm_error err = RLM_ERROR_INIT;
	mg_bounds b = mb_budget(m, m->shutdown_timeout_s, NULL);

	req.sandbox_id = m->sandbox_id;
	if (cp_call(m, &b, CP_PATH("SandboxTerminate"), &req.base,
	            &modal__client__sandbox_terminate_response__descriptor, &resp, &err))
		m->host->log(RLM_LOG_WARN, MODAL,
		             "sandbox %s not terminated within %.0f s (%s); Modal ends it when its "
		             "lifetime (timeout_s = %.0f s) runs out",
		             m->sandbox_id, m->shutdown_timeout_s, err.message, m->timeout_s);
	else
		protobuf_c_message_free_unpacked(&resp->base, NULL);
}

static void modal_shutdown(void *instance)
{
	struct modal *m = instance;
	char **strs[] = {&m->server_url, &m->environment, &m->app_name,
	                 &m->image,      &m->volume_name, &m->workdir,
	                 &m->python,     &m->token_id,    &m->token_secret,
	                 &m->app_id,     &m->image_id,    &m->secret_id,
	                 &m->volume_id,  &m->sandbox_id,  &m->task_id,
	                 &m->router_url, &m->ca_file,     &m->image_builder_version};

	if (!m)
		return;
	if (m->sandbox_id && m->cp)
		terminate(m);
	mg_channel_free(m->router);
	for (int i = 0; i < MODAL_MAX_RETIRED; i++)
		mg_channel_free(m->retired[i]);
	mg_channel_free(m->cp);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->refresh_mu);
	pthread_mutex_destroy(&m->life_mu);
	if (m->token_secret)
		memset(m->token_secret, 0, strlen(m->token_secret));
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		m->host->free(*strs[i]);
	json_object_put(m->env_vars);
	m->host->free(m);
}

static int modal_is_alive(void *instance)
{
	struct modal *m = instance;
	mg_bounds b = mb_budget(m, PROBE_BUDGET_S, NULL);

	return m->sandbox_id && sandbox_ended(m, &b, NULL, 0) == 0;
}

static int modal_control(void *instance, const char *op, const char *arg_json, rlm_buf *out,
                         rlm_error *err)
{
	struct modal *m = instance;
	json_object *o;
	const char *s;

	(void)arg_json;
	if (strcmp(op, "status") != 0)
		return m->host->error_set(err, RLM_ENOTSUP, "modal: unknown control op %s", op);
	o = json_object_new_object();
	json_object_object_add(o, "sandbox_id",
	                       m->sandbox_id ? json_object_new_string(m->sandbox_id) : NULL);
	json_object_object_add(o, "task_id",
	                       m->task_id ? json_object_new_string(m->task_id) : NULL);
	json_object_object_add(o, "driver_running", json_object_new_boolean(m->driver_running));
	json_object_object_add(o, "file_transfer",
	                       json_object_new_string(fs_mode_name(m->fs_mode)));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	out->len = strlen(s);
	if (!(out->data = m->host->alloc(out->len + 1))) {
		json_object_put(o);
		return nomem(m, err);
	}
	memcpy(out->data, s, out->len + 1);
	json_object_put(o);
	return 0;
}

static const rlm_backend_ops modal_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_backend_ops),
        .start = modal_start,
        .execute = modal_execute,
        .upload = modal_upload,
        .download = modal_download,
        .shutdown = modal_shutdown,
        .interrupt = modal_interrupt,
        .run_command = modal_run_command,
        .is_alive = modal_is_alive,
        .control = modal_control,
        .create_opts = modal_create_opts,
};

static const rlm_plugin_desc modal_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_BACKEND,
        .name = "modal",
        .summary = "Modal sandboxes over gRPC (control plane + task command router)",
        .version = PLUGIN_VERSION,
        /* CONTAINS_BOMBS: a sandbox is a gVisor container on Modal's machines with a memory
         * limit (an OOM ends it with exit 137); a bomb in it never reaches rlm's machine. */
        .capabilities = RLM_CAP_REMOTE | RLM_CAP_VOLUME | RLM_CAP_NESTED_EXECUTE |
                        RLM_CAP_INTERRUPT | RLM_CAP_RUN_COMMAND | RLM_CAP_IS_ALIVE |
                        RLM_CAP_CONTAINS_BOMBS,
        .option_defs = modal_options,
        .ops = &modal_ops,
        /* Pool defaults: Modal answers "Sandbox creation rate limit (5/s) exceeded" past 5
         * creates a second; 32 live sandboxes keep a runaway loop's bill bounded. */
        .pool_max_live = 32,
        .pool_creates_per_s = 4,
};

RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out);

RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	if (!out)
		return RLM_EINVAL;
	*out = NULL;
	if (!host || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR ||
	    RLM_ABI_MAJOR_OF(host->abi_version) != RLM_ABI_MAJOR ||
	    !RLM_HAS_FIELD(host, opt_object_json) || !host->alloc || !host->realloc ||
	    !host->free || !host->log || !host->error_set || !host->now)
		return RLM_EPLUGIN;
	*out = &modal_desc;
	return 0;
}
