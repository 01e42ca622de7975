/* modal.c - the Modal backend plugin: options, credentials, the sandbox lifecycle and the
 * driver channel, over gRPC (grpc.c) with the messages of modal.proto.
 *
 * start(): AppGetOrCreate, ImageGetOrCreate (+ ImageJoinStreaming until the build ends), an
 * ephemeral secret for env_vars, VolumeGetOrCreate, SandboxCreate, SandboxGetTaskId polling,
 * TaskGetCommandRouterAccess; then, through the task's command router, driver.py is written
 * with an exec fed on stdin and launched as one long-lived exec. execute() writes requests
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

#include "grpc.h"
#include "modal.pb-c.h"
#include "rlm/plugin.h"

#define CP_PATH(m) "/modal.client.ModalClient/" m
#define RT_PATH(m) "/modal.task_command_router.TaskCommandRouter/" m

static const rlm_option_spec modal_options[] = {
        {"server_url", RLM_OPT_STRING, NULL,
         "control plane URL; else MODAL_SERVER_URL, the profile's, or https://api.modal.com"},
        {"environment", RLM_OPT_STRING, NULL,
         "Modal environment; else MODAL_ENVIRONMENT or the profile's (empty: the default)"},
        {"app_name", RLM_OPT_STRING, "\"rlm\"", "app the sandboxes belong to (created if missing)"},
        {"image", RLM_OPT_STRING, "\"python:3.12-slim\"",
         "registry tag of the sandbox image (FROM <image>; needs python3 and sh)"},
        {"env_vars", RLM_OPT_OBJECT, "{}",
         "environment of the sandbox, sent as an ephemeral secret"},
        {"volume_name", RLM_OPT_STRING, NULL,
         "volume mounted at /data (VOLUME), created if missing"},
        {"timeout_s", RLM_OPT_NUMBER, "3600",
         "sandbox lifetime in seconds: Modal kills it then, even if the host died"},
        {"execute_timeout_s", RLM_OPT_NUMBER, "300",
         "longest one RPC or helper command (file transfer) may take"},
        {"cpu", RLM_OPT_NUMBER, NULL,
         "CPU cores (sent as milli-CPUs); the server's default if unset"},
        {"memory_mb", RLM_OPT_INT, NULL, "memory in MiB; the server's default if unset"},
        {"workdir", RLM_OPT_STRING, "\"/root\"", "work directory of the sandbox and the driver"},
        {"python", RLM_OPT_STRING, "\"python3\"", "Python interpreter inside the sandbox"},
        {NULL, 0, NULL, NULL},
};

struct modal {
	const rlm_host_api *host;
	/* options */
	char *server_url, *environment, *app_name, *image, *volume_name, *workdir, *python;
	json_object *env_vars;
	double timeout_s, exec_timeout_s, cpu;
	long memory_mb;
	/* credentials (never logged) */
	char *token_id, *token_secret;
	/* the sandbox */
	mg_channel *cp, *router;
	char *app_id, *image_id, *secret_id, *volume_id, *sandbox_id, *task_id, *router_url;
	int driver_uploaded;
	/* the driver exec */
	char exec_id[40];
	int driver_running;
	uint64_t in_off, out_off;
};

static const char MODAL[] = "modal";

static char *mstrdup(struct modal *m, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = m->host->alloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

static int nomem(struct modal *m, rlm_error *err)
{
	return m->host->error_set(err, RLM_ENOMEM, "modal backend: out of memory");
}

static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

static void make_uuid(char out[40])
{
	unsigned char b[16];
	FILE *f = fopen("/dev/urandom", "rb");

	if (!f || fread(b, 1, sizeof(b), f) != sizeof(b)) {
		for (int i = 0; i < 16; i++)
			b[i] = (unsigned char)(rand() ^ (int)time(NULL) >> (i % 8));
	}
	if (f)
		fclose(f);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

/* ---- config and credentials ------------------------------------------------------------ */

static int cfg_str(struct modal *m, json_object *root, const char *key, char **out, rlm_error *err)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return m->host->error_set(err, RLM_ECONFIG, "backends.modal.%s must be a string",
		                          key);
	return (*out = mstrdup(m, json_object_get_string(v))) ? 0 : nomem(m, err);
}

static double cfg_num(json_object *root, const char *key, double def)
{
	json_object *v;

	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
		return def;
	return json_object_get_double(v);
}

/* Reads key of the active profile of ~/.modal.toml ($MODAL_CONFIG_PATH; $MODAL_PROFILE or the
 * first table with active = true). Only the flat `key = "string"` lines the file holds. */
static char *toml_profile_value(struct modal *m, const char *key)
{
	const char *path = getenv("MODAL_CONFIG_PATH"), *want = getenv("MODAL_PROFILE");
	char buf[1024], home_path[1024], section[256] = "", active[256] = "", *found = NULL;
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
		while (fgets(buf, sizeof(buf), f)) {
			char name[256];
			if (sscanf(buf, " [%255[^]]]", name) == 1)
				snprintf(section, sizeof(section), "%s", name);
			else if (strstr(buf, "active") && strstr(buf, "true") && !*active)
				snprintf(active, sizeof(active), "%s", section);
		}
		if (!*active) {
			fclose(f);
			return NULL;
		}
		want = active;
		rewind(f);
	}
	*section = 0;
	while (fgets(buf, sizeof(buf), f)) {
		char name[256], k[128], v[768];
		if (sscanf(buf, " [%255[^]]]", name) == 1) {
			snprintf(section, sizeof(section), "%s", name);
			continue;
		}
		if (strcmp(section, want) != 0)
			continue;
		if (sscanf(buf, " %127[A-Za-z0-9_] = \"%767[^\"]\"", k, v) == 2 &&
		    strcmp(k, key) == 0) {
			found = mstrdup(m, v);
			break;
		}
	}
	fclose(f);
	return found;
}

/* env var, else the profile's key, else def (may be NULL). */
static char *setting(struct modal *m, const char *env, const char *key, const char *def)
{
	const char *v = getenv(env);
	char *p;

	if (v && *v)
		return mstrdup(m, v);
	if ((p = toml_profile_value(m, key)))
		return p;
	return def ? mstrdup(m, def) : NULL;
}

static int cfg_parse(struct modal *m, const char *config_json, rlm_error *err)
{
	json_object *root = json_tokener_parse(config_json ? config_json : "{}"), *v;
	int rc;

	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return m->host->error_set(err, RLM_ECONFIG, "backends.modal: not a JSON object");
	}
	if ((rc = cfg_str(m, root, "server_url", &m->server_url, err)) ||
	    (rc = cfg_str(m, root, "environment", &m->environment, err)) ||
	    (rc = cfg_str(m, root, "app_name", &m->app_name, err)) ||
	    (rc = cfg_str(m, root, "image", &m->image, err)) ||
	    (rc = cfg_str(m, root, "volume_name", &m->volume_name, err)) ||
	    (rc = cfg_str(m, root, "workdir", &m->workdir, err)) ||
	    (rc = cfg_str(m, root, "python", &m->python, err)))
		goto out;
	if (json_object_object_get_ex(root, "env_vars", &v) &&
	    json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, val)
		{
			(void)k;
			if (!json_object_is_type(val, json_type_string)) {
				rc = m->host->error_set(
				        err, RLM_ECONFIG,
				        "backends.modal.env_vars: values must be strings");
				goto out;
			}
		}
		m->env_vars = json_object_get(v);
	}
	m->timeout_s = cfg_num(root, "timeout_s", 3600);
	m->exec_timeout_s = cfg_num(root, "execute_timeout_s", 300);
	m->cpu = cfg_num(root, "cpu", 0);
	m->memory_mb = (long)cfg_num(root, "memory_mb", 0);
	if (m->exec_timeout_s <= 0)
		m->exec_timeout_s = 300;
	if (!m->server_url && !(m->server_url = setting(m, "MODAL_SERVER_URL", "server_url",
	                                                "https://api.modal.com")))
		rc = nomem(m, err);
	else if (!m->environment &&
	         !(m->environment = setting(m, "MODAL_ENVIRONMENT", "environment", "")))
		rc = nomem(m, err);
	else if ((!m->app_name && !(m->app_name = mstrdup(m, "rlm"))) ||
	         (!m->image && !(m->image = mstrdup(m, "python:3.12-slim"))) ||
	         (!m->workdir && !(m->workdir = mstrdup(m, "/root"))) ||
	         (!m->python && !(m->python = mstrdup(m, "python3"))))
		rc = nomem(m, err);
out:
	json_object_put(root);
	return rc;
}

/* ---- RPCs with the SDKs' retry policies ------------------------------------------------ */

static int rpc_error(struct modal *m, const char *what, const mg_status *st, rlm_error *err)
{
	return m->host->error_set(err, mg_to_rlm(st->code), "modal: %s failed: gRPC status %d%s%s",
	                          what, st->code, *st->message ? ": " : "", st->message);
}

/* A control-plane unary call: 3 retries of the retryable codes (100 ms doubling, at most 1 s)
 * and server-directed throttling (RPCRetryPolicy) outside that budget, up to 60 s of it. */
/* A UUID (version 4) for x-idempotency-key. */
static void new_uuid(char out[37])
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
static int cp_attempt(struct modal *m, const char *path, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *desc, void *resp, const char *key,
                      int attempt, double first_at, mg_status *st)
{
	char idem[64], att[40], dly[48];
	const char *hdrs[4] = {idem, att, NULL, NULL};
	snprintf(idem, sizeof(idem), "x-idempotency-key: %s", key);
	snprintf(att, sizeof(att), "x-retry-attempt: %d", attempt);
	if (attempt > 0) {
		snprintf(dly, sizeof(dly), "x-retry-delay: %.3f", m->host->now() - first_at);
		hdrs[2] = dly;
	}
	return mg_unary(m->cp, path, req, hdrs, desc, (ProtobufCMessage **)resp, m->exec_timeout_s,
	                st);
}

static int cp_call(struct modal *m, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *desc, void *resp, rlm_error *err)
{
	mg_status st;
	double delay = 0.1, throttled = 0, first_at = m->host->now();
	int attempt = 0, sent = 0;
	char key[37];

	new_uuid(key);
	for (;;) {
		if (cp_attempt(m, path, req, desc, resp, key, sent++, first_at, &st) == MG_OK)
			return 0;
		if (st.retry_after_s > 0 && throttled + st.retry_after_s <= 60) {
			throttled += st.retry_after_s;
			sleep_s(st.retry_after_s);
			continue;
		}
		if (!mg_retryable(st.code) || attempt++ >= 3)
			return rpc_error(m, strrchr(path, '/') + 1, &st, err);
		m->host->log(RLM_LOG_DEBUG, MODAL, "%s: status %d, retrying", path, st.code);
		sleep_s(delay);
		delay = delay * 2 > 1 ? 1 : delay * 2;
	}
}

static int router_connect(struct modal *m, rlm_error *err);

/* A router unary call: 10 retries (10 ms doubling); on UNAUTHENTICATED the JWT is fetched
 * again and the call retried once. */
static int rt_call(struct modal *m, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *desc, void *resp, double timeout_s,
                   rlm_error *err)
{
	mg_status st;
	double delay = 0.01;
	int attempt = 0, refreshed = 0, rc;

	for (;;) {
		if (mg_unary(m->router, path, req, NULL, desc, (ProtobufCMessage **)resp,
		             timeout_s > 0 ? timeout_s : m->exec_timeout_s, &st) == MG_OK)
			return 0;
		if (st.code == MG_UNAUTHENTICATED && !refreshed) {
			refreshed = 1;
			if ((rc = router_connect(m, err)))
				return rc;
			continue;
		}
		if (!mg_retryable(st.code) || attempt++ >= 10)
			return rpc_error(m, strrchr(path, '/') + 1, &st, err);
		sleep_s(delay);
		delay *= 2;
	}
}

/* ---- provisioning ---------------------------------------------------------------------- */

static int cp_connect(struct modal *m, rlm_error *err)
{
	char id[512], secret[512];
	const char *hdrs[] = {id, secret, "x-modal-client-type: 9", "x-modal-client-version: 1.0.0",
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
	m->cp = mg_channel_new(m->host, m->server_url, hdrs, NULL);
	memset(secret, 0, sizeof(secret));
	return m->cp ? 0 : nomem(m, err);
}

static int router_connect(struct modal *m, rlm_error *err)
{
	Modal__Client__TaskGetCommandRouterAccessRequest req =
	        MODAL__CLIENT__TASK_GET_COMMAND_ROUTER_ACCESS_REQUEST__INIT;
	Modal__Client__TaskGetCommandRouterAccessResponse *resp = NULL;
	char auth[4096];
	const char *hdrs[] = {auth, NULL};
	int rc;

	req.task_id = m->task_id;
	if ((rc = cp_call(m, CP_PATH("TaskGetCommandRouterAccess"), &req.base,
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
	if (m->router && (!m->router_url || strcmp(m->router_url, resp->url) == 0)) {
		rc = mg_channel_set_headers(m->router, hdrs) ? nomem(m, err) : 0;
	} else {
		mg_channel_free(m->router);
		m->host->free(m->router_url);
		m->router_url = mstrdup(m, resp->url);
		m->router = mg_channel_new(m->host, resp->url, hdrs, NULL);
		rc = m->router && m->router_url ? 0 : nomem(m, err);
	}
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
		j->entry_id = mstrdup(j->m, r->entry_id);
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

static int image_build(struct modal *m, double deadline, rlm_error *err)
{
	Modal__Client__ImageGetOrCreateRequest req =
	        MODAL__CLIENT__IMAGE_GET_OR_CREATE_REQUEST__INIT;
	Modal__Client__Image img = MODAL__CLIENT__IMAGE__INIT;
	Modal__Client__ImageGetOrCreateResponse *resp = NULL;
	char from[512], *cmds[] = {from};
	char *builder =
	        setting(m, "MODAL_IMAGE_BUILDER_VERSION", "image_builder_version", "2024.10");
	struct image_join j = {m, NULL, 0, ""};
	int rc;

	if (!builder)
		return nomem(m, err);
	snprintf(from, sizeof(from), "FROM %s", m->image);
	img.n_dockerfile_commands = 1;
	img.dockerfile_commands = cmds;
	req.image = &img;
	req.app_id = m->app_id;
	req.builder_version = builder;
	rc = cp_call(m, CP_PATH("ImageGetOrCreate"), &req.base,
	             &modal__client__image_get_or_create_response__descriptor, &resp, err);
	m->host->free(builder);
	if (rc)
		return rc;
	m->image_id = mstrdup(m, resp->image_id);
	if (resp->result && resp->result->status)
		j.status = resp->result->status;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (!m->image_id)
		return nomem(m, err);
	for (int tries = 0; !j.status; tries++) {
		Modal__Client__ImageJoinStreamingRequest jr =
		        MODAL__CLIENT__IMAGE_JOIN_STREAMING_REQUEST__INIT;
		mg_status st;
		jr.image_id = m->image_id;
		jr.timeout = 55;
		jr.last_entry_id = j.entry_id ? j.entry_id : "";
		mg_stream(m->cp, CP_PATH("ImageJoinStreaming"), &jr.base, NULL,
		          &modal__client__image_join_streaming_response__descriptor, 60, deadline,
		          on_image_join, &j, &st);
		if (j.status)
			break;
		if (deadline > 0 && m->host->now() > deadline) {
			m->host->free(j.entry_id);
			return m->host->error_set(err, RLM_ETIMEOUT,
			                          "modal: image %s not built in time", m->image);
		}
		if (st.code != MG_OK && !mg_retryable(st.code)) {
			m->host->free(j.entry_id);
			return rpc_error(m, "ImageJoinStreaming", &st, err);
		}
		if (st.code != MG_OK)
			sleep_s(tries < 10 ? 0.1 : 1);
	}
	m->host->free(j.entry_id);
	if (j.status != MODAL__CLIENT__GENERIC_STATUS__GENERIC_STATUS_SUCCESS)
		return m->host->error_set(err, RLM_EBACKEND, "modal: image %s failed to build: %s",
		                          m->image, j.exception);
	return 0;
}

static int make_secret(struct modal *m, rlm_error *err)
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
	rc = cp_call(m, CP_PATH("SecretGetOrCreate"), &req.base,
	             &modal__client__secret_get_or_create_response__descriptor, &resp, err);
	m->host->free(entries);
	m->host->free(ptrs);
	if (rc)
		return rc;
	m->secret_id = mstrdup(m, resp->secret_id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return m->secret_id ? 0 : nomem(m, err);
}

static int make_volume(struct modal *m, rlm_error *err)
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
	if ((rc = cp_call(m, CP_PATH("VolumeGetOrCreate"), &req.base,
	                  &modal__client__volume_get_or_create_response__descriptor, &resp, err)))
		return rc;
	m->volume_id = mstrdup(m, resp->volume_id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return m->volume_id ? 0 : nomem(m, err);
}

static int sandbox_create(struct modal *m, rlm_error *err)
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
	if ((rc = cp_call(m, CP_PATH("SandboxCreate"), &req.base,
	                  &modal__client__sandbox_create_response__descriptor, &resp, err)))
		return rc;
	m->sandbox_id = mstrdup(m, resp->sandbox_id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (!m->sandbox_id)
		return nomem(m, err);
	m->host->log(RLM_LOG_INFO, MODAL, "sandbox %s created", m->sandbox_id);
	return 0;
}

/* SandboxGetTaskId every 500 ms until the sandbox is scheduled (or has already ended). */
static int wait_task_id(struct modal *m, double deadline, rlm_error *err)
{
	for (;;) {
		Modal__Client__SandboxGetTaskIdRequest req =
		        MODAL__CLIENT__SANDBOX_GET_TASK_ID_REQUEST__INIT;
		Modal__Client__SandboxGetTaskIdResponse *resp = NULL;
		int rc;

		req.sandbox_id = m->sandbox_id;
		if ((rc = cp_call(m, CP_PATH("SandboxGetTaskId"), &req.base,
		                  &modal__client__sandbox_get_task_id_response__descriptor, &resp,
		                  err)))
			return rc;
		if (resp->task_result && resp->task_result->status) {
			rc = result_failed(m, "sandbox", resp->task_result, err);
		} else if (resp->task_id && *resp->task_id) {
			if (!(m->task_id = mstrdup(m, resp->task_id)))
				rc = nomem(m, err);
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			return rc;
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (rc)
			return rc;
		if (m->host->now() > deadline)
			return m->host->error_set(err, RLM_ETIMEOUT,
			                          "modal: sandbox %s was not scheduled in time",
			                          m->sandbox_id);
		sleep_s(0.5);
	}
}

static int app_get(struct modal *m, rlm_error *err)
{
	Modal__Client__AppGetOrCreateRequest req = MODAL__CLIENT__APP_GET_OR_CREATE_REQUEST__INIT;
	Modal__Client__AppGetOrCreateResponse *resp = NULL;
	int rc;

	req.app_name = m->app_name;
	req.environment_name = m->environment;
	req.object_creation_type =
	        MODAL__CLIENT__OBJECT_CREATION_TYPE__OBJECT_CREATION_TYPE_CREATE_IF_MISSING;
	if ((rc = cp_call(m, CP_PATH("AppGetOrCreate"), &req.base,
	                  &modal__client__app_get_or_create_response__descriptor, &resp, err)))
		return rc;
	m->app_id = mstrdup(m, resp->app_id);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return m->app_id ? 0 : nomem(m, err);
}

/* ---- execs through the command router -------------------------------------------------- */

static int exec_start(struct modal *m, const char *exec_id, char **argv, size_t argc,
                      int stderr_cfg, rlm_error *err)
{
	Modal__Client__TaskExecStartRequest req = MODAL__CLIENT__TASK_EXEC_START_REQUEST__INIT;
	Modal__Client__TaskExecStartResponse *resp = NULL;
	int rc;

	req.task_id = m->task_id;
	req.exec_id = (char *)exec_id;
	req.n_command_args = argc;
	req.command_args = argv;
	req.stdout_config = MODAL__CLIENT__TASK_EXEC_STDOUT_CONFIG__TASK_EXEC_STDOUT_CONFIG_PIPE;
	req.stderr_config = (Modal__Client__TaskExecStderrConfig)stderr_cfg;
	req.workdir = m->workdir;
	if ((rc = rt_call(m, RT_PATH("TaskExecStart"), &req.base,
	                  &modal__client__task_exec_start_response__descriptor, &resp, 0, err)))
		return rc;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

static int stdin_write(struct modal *m, const char *exec_id, uint64_t offset, const void *data,
                       size_t len, int eof, rlm_error *err)
{
	Modal__Client__TaskExecStdinWriteRequest req =
	        MODAL__CLIENT__TASK_EXEC_STDIN_WRITE_REQUEST__INIT;
	Modal__Client__TaskExecStdinWriteResponse *resp = NULL;
	int rc;

	req.task_id = m->task_id;
	req.exec_id = (char *)exec_id;
	req.offset = offset;
	req.data.data = (uint8_t *)data;
	req.data.len = len;
	req.eof = eof;
	if ((rc = rt_call(m, RT_PATH("TaskExecStdinWrite"), &req.base,
	                  &modal__client__task_exec_stdin_write_response__descriptor, &resp, 0,
	                  err)))
		return rc;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

/* Exit status of an exec: code or 128 + signal; -1 when it did not end within wait_s (or
 * the router failed). TaskExecWait blocks server-side; retryable failures are retried until
 * wait_s has passed, an expired JWT is refreshed once. */
static int exec_status(struct modal *m, const char *exec_id, double wait_s)
{
	Modal__Client__TaskExecWaitRequest req = MODAL__CLIENT__TASK_EXEC_WAIT_REQUEST__INIT;
	Modal__Client__TaskExecWaitResponse *resp = NULL;
	double end = m->host->now() + wait_s;
	int code = -1, refreshed = 0;
	mg_status st;

	req.task_id = m->task_id;
	req.exec_id = (char *)exec_id;
	for (;;) {
		double left = end - m->host->now();
		if (left <= 0)
			return -1;
		if (mg_unary(m->router, RT_PATH("TaskExecWait"), &req.base, NULL,
		             &modal__client__task_exec_wait_response__descriptor,
		             (ProtobufCMessage **)&resp, left < 60 ? left : 60, &st) == MG_OK)
			break;
		if (st.code == MG_UNAUTHENTICATED && !refreshed) {
			rlm_error ignored = RLM_ERROR_INIT;
			refreshed = 1;
			if (router_connect(m, &ignored))
				return -1;
			continue;
		}
		if (!mg_retryable(st.code))
			return -1;
		if (st.code != MG_DEADLINE_EXCEEDED)
			sleep_s(st.code == MG_UNAVAILABLE ? 0.05 : 1);
	}
	if (resp->exit_status_case == MODAL__CLIENT__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_CODE)
		code = resp->code;
	else if (resp->exit_status_case ==
	         MODAL__CLIENT__TASK_EXEC_WAIT_RESPONSE__EXIT_STATUS_SIGNAL)
		code = 128 + resp->signal;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return code;
}

/* Reading an exec's stdout by offset. sink gets the bytes; a non-zero return stops. */
struct reader {
	struct modal *m;
	uint64_t *offset;
	int (*sink)(void *ctx, const uint8_t *data, size_t len);
	void *ctx;
	uint64_t pos; /* where this stream stands; differs from *offset after a nested read */
	int progressed;
	int restart;
	int stop_rc; /* what the sink asked for: >0 done, <0 an rlm error */
};

static int on_stdio(void *ctx, const ProtobufCMessage *msg)
{
	struct reader *r = ctx;
	const Modal__Client__TaskExecStdioReadResponse *resp = (const void *)msg;
	int rc;

	if (!resp->data.len)
		return 0;
	*r->offset += resp->data.len;
	r->pos += resp->data.len;
	r->progressed = 1;
	rc = r->sink(r->ctx, resp->data.data, resp->data.len);
	if (rc) {
		r->stop_rc = rc;
		return 1;
	}
	/* A nested exchange run by the sink read on from *offset with its own stream: what this
	 * stream would send next was consumed there, so reopen at *offset. */
	if (r->pos != *r->offset) {
		r->restart = 1;
		return 1;
	}
	return 0;
}

/* Streams stdout from *offset until EOF (0), the sink stops it (its non-zero code), deadline
 * (RLM_ETIMEOUT) or a non-retryable error. Dropped streams are reopened at *offset: 10
 * retries, reset whenever data arrived. */
static int read_stdout(struct modal *m, const char *exec_id, uint64_t *offset, double deadline,
                       int (*sink)(void *, const uint8_t *, size_t), void *ctx, rlm_error *err)
{
	struct reader r = {m, offset, sink, ctx, 0, 0, 0, 0};
	double delay = 0.01;
	int retries = 0, refreshed = 0, rc;

	for (;;) {
		Modal__Client__TaskExecStdioReadRequest req =
		        MODAL__CLIENT__TASK_EXEC_STDIO_READ_REQUEST__INIT;
		mg_status st;

		req.task_id = m->task_id;
		req.exec_id = (char *)exec_id;
		req.offset = *offset;
		req.file_descriptor =
		        MODAL__CLIENT__TASK_EXEC_STDIO_FILE_DESCRIPTOR__TASK_EXEC_STDIO_FILE_DESCRIPTOR_STDOUT;
		r.progressed = 0;
		r.restart = 0;
		r.stop_rc = 0;
		r.pos = *offset;
		mg_stream(m->router, RT_PATH("TaskExecStdioRead"), &req.base, NULL,
		          &modal__client__task_exec_stdio_read_response__descriptor, 0, deadline,
		          on_stdio, &r, &st);
		if (st.code == MG_STOPPED && r.restart)
			continue;
		if (st.code == MG_STOPPED)
			return r.stop_rc; /* > 0: the sink is done; < 0: its error */
		if (st.code == MG_OK)
			return 0;
		if (deadline > 0 && m->host->now() >= deadline)
			return m->host->error_set(err, RLM_ETIMEOUT,
			                          "modal: exchange deadline passed");
		if (r.progressed) {
			retries = 0;
			delay = 0.01;
		}
		if (st.code == MG_UNAUTHENTICATED && !refreshed) {
			refreshed = 1;
			if ((rc = router_connect(m, err)))
				return rc;
			continue;
		}
		if (!mg_retryable(st.code) || retries++ >= 10)
			return rpc_error(m, "TaskExecStdioRead", &st, err);
		m->host->log(RLM_LOG_DEBUG, MODAL,
		             "stdout stream ended with %d at offset %llu; resuming", st.code,
		             (unsigned long long)*offset);
		sleep_s(delay);
		delay *= 2;
	}
}

struct collect {
	struct modal *m;
	char *data;
	size_t len, cap;
};

static int collect_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct collect *c = ctx;

	if (c->len + len + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		char *nd;
		while (cap < c->len + len + 1)
			cap *= 2;
		if (!(nd = c->m->host->realloc(c->data, cap)))
			return RLM_ENOMEM;
		c->data = nd;
		c->cap = cap;
	}
	memcpy(c->data + c->len, data, len);
	c->len += len;
	c->data[c->len] = 0;
	return 0;
}

/* Runs argv to completion, feeding in (if any) on stdin, collecting stdout into *out (when
 * out is non-NULL). Returns the exit status (>= 0) or an rlm error. */
static int run_exec(struct modal *m, char **argv, size_t argc, const void *in, size_t in_len,
                    rlm_buf *out, rlm_error *err)
{
	char exec_id[40];
	uint64_t off = 0;
	struct collect c = {m, NULL, 0, 0};
	int rc;

	make_uuid(exec_id);
	if ((rc = exec_start(m, exec_id, argv, argc, 0, err)))
		return rc;
	for (size_t pos = 0; pos < in_len || (in && pos == 0 && !in_len);) {
		size_t n = in_len - pos > (16u << 20) ? (16u << 20) : in_len - pos;
		if ((rc = stdin_write(m, exec_id, pos, (const char *)in + pos, n, pos + n == in_len,
		                      err)))
			return rc;
		pos += n;
		if (!in_len)
			break;
	}
	if ((rc = read_stdout(m, exec_id, &off, m->host->now() + m->exec_timeout_s, collect_sink,
	                      &c, err))) {
		m->host->free(c.data);
		return rc;
	}
	rc = exec_status(m, exec_id, m->exec_timeout_s);
	if (rc < 0) {
		m->host->free(c.data);
		return m->host->error_set(err, RLM_EBACKEND, "modal: %s did not finish", argv[0]);
	}
	if (out) {
		if (!c.data && !(c.data = m->host->alloc(1)))
			return nomem(m, err);
		c.data[c.len] = 0;
		out->data = c.data;
		out->len = c.len;
	} else {
		m->host->free(c.data);
	}
	return rc;
}

static int write_file(struct modal *m, const char *path, const void *data, size_t len,
                      rlm_error *err)
{
	/* The portable form of the SDKs' fs-tools WriteFile: any image with a shell has it. */
	char *argv[] = {"sh", "-c", "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\"", "sh",
	                (char *)path};
	int rc = run_exec(m, argv, 5, data, len, NULL, err);

	if (rc > 0)
		return m->host->error_set(err, RLM_EIO, "modal: writing %s failed (exit %d)", path,
		                          rc);
	return rc;
}

/* ---- the backend ops ------------------------------------------------------------------- */

static void modal_shutdown(void *instance);

static int modal_create(const rlm_host_api *host, const char *config_json, void **instance,
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
	if ((rc = cfg_parse(m, config_json, err))) {
		modal_shutdown(m);
		return rc;
	}
	*instance = m;
	return 0;
}

static int provision(struct modal *m, double deadline, rlm_error *err)
{
	int rc;

	if ((rc = cp_connect(m, err)) || (rc = app_get(m, err)) ||
	    (rc = image_build(m, deadline, err)) || (rc = make_secret(m, err)) ||
	    (rc = make_volume(m, err)) || (rc = sandbox_create(m, err)) ||
	    (rc = wait_task_id(m, deadline, err)) || (rc = router_connect(m, err)))
		return rc;
	return 0;
}

static int modal_start(void *instance, const rlm_launch *launch, rlm_error *err)
{
	struct modal *m = instance;
	double tmo = launch && launch->start_timeout_s > 0 ? launch->start_timeout_s : 300;
	char *argv[8];
	size_t argc = 0;
	int rc;

	if (!m->task_id && (rc = provision(m, m->host->now() + tmo, err)))
		return rc;
	if (!m->driver_uploaded) {
		if ((rc = write_file(m, ".rlm/driver.py", m->host->driver_script,
		                     m->host->driver_script_len, err)))
			return rc;
		m->driver_uploaded = 1;
	}
	if (m->driver_running) { /* a restart: the old driver goes first */
		char *kill_argv[] = {"sh", "-c",
		                     "kill -9 $(cat .rlm/driver.pid) 2>/dev/null; true"};
		m->driver_running = 0;
		if ((rc = run_exec(m, kill_argv, 3, NULL, 0, NULL, err)) < 0)
			return rc;
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
	make_uuid(m->exec_id);
	m->in_off = m->out_off = 0;
	/* stderr joins stdout: the driver's own output goes to its capture pipes, so what
	 * reaches the channel this way is a crash message, skipped as junk between frames. */
	if ((rc = exec_start(m, m->exec_id, argv, argc,
	                     MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__TASK_EXEC_STDERR_CONFIG_STDOUT,
	                     err)))
		return rc;
	m->driver_running = 1;
	return 0;
}

struct exchange_sink {
	struct modal *m;
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
		if ((rc = stdin_write(s->m, s->m->exec_id, s->m->in_off, reply, reply_len, 0,
		                      s->err)))
			return rc;
		s->m->in_off += reply_len;
	}
	return act == RLM_EXCHANGE_DONE ? 1 : 0;
}

static int modal_execute(void *instance, const rlm_exchange *ex, rlm_error *err)
{
	struct modal *m = instance;
	struct exchange_sink s = {m, ex, err};
	int rc, status;

	if (!m->driver_running)
		return m->host->error_set(err, RLM_EBACKEND, "modal: the driver is not running");
	if (ex->request_len) {
		if ((rc = stdin_write(m, m->exec_id, m->in_off, ex->request, ex->request_len, 0,
		                      err)))
			return rc;
		m->in_off += ex->request_len;
	}
	rc = read_stdout(m, m->exec_id, &m->out_off, ex->deadline, exchange_sink, &s, err);
	if (rc == 1)
		return 0;
	if (rc)
		return rc;
	/* A clean end of the stream: the driver closed its channel. */
	m->driver_running = 0;
	status = exec_status(m, m->exec_id, 10);
	if (status > 128)
		return m->host->error_set(err, RLM_EBACKEND,
		                          "modal: the driver was killed by signal %d (status %d)",
		                          status - 128, status);
	return m->host->error_set(err, RLM_EBACKEND, "modal: the driver exited (status %d)",
	                          status);
}

static int modal_upload(void *instance, const void *data, size_t len, const char *remote_path,
                        rlm_error *err)
{
	struct modal *m = instance;

	if (!m->task_id)
		return m->host->error_set(err, RLM_EBACKEND, "modal: no sandbox yet");
	return write_file(m, remote_path, data, len, err);
}

static int modal_download(void *instance, const char *remote_path, rlm_buf *out, rlm_error *err)
{
	struct modal *m = instance;
	char *argv[] = {"cat", "--", (char *)remote_path};
	int rc;

	if (!m->task_id)
		return m->host->error_set(err, RLM_EBACKEND, "modal: no sandbox yet");
	out->data = NULL;
	out->len = 0;
	rc = run_exec(m, argv, 3, NULL, 0, out, err);
	if (rc > 0) {
		m->host->free(out->data);
		out->data = NULL;
		out->len = 0;
		return m->host->error_set(err, RLM_ENOTFOUND, "modal: cannot read %s (exit %d)",
		                          remote_path, rc);
	}
	return rc;
}

static void terminate(struct modal *m)
{
	Modal__Client__SandboxTerminateRequest req = MODAL__CLIENT__SANDBOX_TERMINATE_REQUEST__INIT;
	Modal__Client__SandboxTerminateResponse *resp = NULL;
	rlm_error err = RLM_ERROR_INIT;

	req.sandbox_id = m->sandbox_id;
	if (cp_call(m, CP_PATH("SandboxTerminate"), &req.base,
	            &modal__client__sandbox_terminate_response__descriptor, &resp, &err))
		m->host->log(RLM_LOG_WARN, MODAL, "sandbox %s not terminated: %s", m->sandbox_id,
		             err.message);
	else
		protobuf_c_message_free_unpacked(&resp->base, NULL);
}

static void modal_shutdown(void *instance)
{
	struct modal *m = instance;
	char **strs[] = {&m->server_url,   &m->environment, &m->app_name, &m->image,
	                 &m->volume_name,  &m->workdir,     &m->python,   &m->token_id,
	                 &m->token_secret, &m->app_id,      &m->image_id, &m->secret_id,
	                 &m->volume_id,    &m->sandbox_id,  &m->task_id,  &m->router_url};

	if (!m)
		return;
	if (m->sandbox_id && m->cp)
		terminate(m);
	mg_channel_free(m->router);
	mg_channel_free(m->cp);
	if (m->token_secret)
		memset(m->token_secret, 0, strlen(m->token_secret));
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		m->host->free(*strs[i]);
	json_object_put(m->env_vars);
	m->host->free(m);
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
        .create = modal_create,
        .start = modal_start,
        .execute = modal_execute,
        .upload = modal_upload,
        .download = modal_download,
        .shutdown = modal_shutdown,
        .control = modal_control,
};

static const rlm_plugin_desc modal_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_BACKEND,
        .name = "modal",
        .summary = "Modal sandboxes over gRPC (control plane + task command router)",
        .version = "0.1.0",
        .capabilities = RLM_CAP_REMOTE | RLM_CAP_VOLUME | RLM_CAP_NESTED_EXECUTE,
        .options = modal_options,
        .ops = &modal_ops,
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
	    RLM_ABI_MAJOR_OF(host->abi_version) != RLM_ABI_MAJOR || !host->alloc ||
	    !host->realloc || !host->free || !host->log || !host->error_set || !host->now)
		return RLM_EPLUGIN;
	*out = &modal_desc;
	return 0;
}
