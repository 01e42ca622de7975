/* daytona.c - the Daytona backend plugin: options, the backend ops and the descriptor.
 *
 * A sandbox per interpreter, created on start() with labels rlm=1 and rlm-instance=<id> and an
 * auto-stop interval (so nothing runs forever if the host dies), deleted on shutdown() and on
 * every failed provisioning. The driver's channel goes through daytona_transport.c; the HTTP
 * calls through the host's shared helper (retries, Retry-After, backoff, one connection cache
 * for the process). The API key is read from the env var named by api_key_env, handed to the
 * helper as a secret, and never logged nor sent into the sandbox. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daytona_internal.h"

static const char *const dt_transports[] = {"relay", "session", NULL};

#define DT_MIN(lo)       .flags = RLM_OPTF_MIN, .min = (lo)
#define DT_RANGE(lo, hi) .flags = RLM_OPTF_MIN | RLM_OPTF_MAX, .min = (lo), .max = (hi)

/* Types, ranges and choices are the core's to check (ABI 1.2); what depends on two options
 * (snapshot or image; resources need an image) stays in cfg_read. */
static const rlm_option_def dt_options[] = {
        RLM_OPTION_DEF(.name = "api_url", .type = RLM_OPT_STRING,
                       .default_json = "\"https://app.daytona.io/api\"", .flags = RLM_OPTF_NONEMPTY,
                       .doc = "control-plane base URL (env DAYTONA_API_URL)"),
        RLM_OPTION_DEF(.name = "api_key_env", .type = RLM_OPT_STRING,
                       .default_json = "\"DAYTONA_API_KEY\"", .flags = RLM_OPTF_NONEMPTY,
                       .doc = "name of the env var that holds the API key (never stored in "
                              "config)"),
        RLM_OPTION_DEF(.name = "target", .type = RLM_OPT_STRING,
                       .doc = "region (us, eu, ...); the organisation's default if unset"),
        RLM_OPTION_DEF(.name = "snapshot", .type = RLM_OPT_STRING,
                       .doc = "snapshot to create from; the server's default if unset"),
        RLM_OPTION_DEF(.name = "image", .type = RLM_OPT_STRING,
                       .doc = "image to build from instead of a snapshot (FROM <image>)"),
        RLM_OPTION_DEF(.name = "env_vars", .type = RLM_OPT_OBJECT, .default_json = "{}",
                       .doc = "environment variables of the sandbox"),
        RLM_OPTION_DEF(.name = "labels", .type = RLM_OPT_OBJECT, .default_json = "{}",
                       .doc = "extra sandbox labels (rlm=1 and rlm-instance are added)"),
        RLM_OPTION_DEF(.name = "cpu", .type = RLM_OPT_INT, DT_MIN(0), .doc = "vCPUs (image only)"),
        RLM_OPTION_DEF(.name = "memory", .type = RLM_OPT_INT, DT_MIN(0),
                       .doc = "memory in GiB (image only)"),
        RLM_OPTION_DEF(.name = "disk", .type = RLM_OPT_INT, DT_MIN(0),
                       .doc = "disk in GiB (image only)"),
        RLM_OPTION_DEF(.name = "auto_stop_minutes", .type = RLM_OPT_INT, .default_json = "15",
                       DT_MIN(0),
                       .doc = "the sandbox stops after this many idle minutes, even if the "
                              "host died (0: never)"),
        RLM_OPTION_DEF(.name = "auto_delete_minutes", .type = RLM_OPT_INT, .default_json = "0",
                       DT_MIN(-1),
                       .doc = "Daytona deletes a stopped sandbox after this many minutes (0: "
                              "at once; -1: never); rlm never restarts a stopped sandbox, it "
                              "replaces it"),
        RLM_OPTION_DEF(.name = "timeout_s", .type = RLM_OPT_NUMBER, .default_json = "0", DT_MIN(0),
                       .doc = "sandbox lifetime in seconds, sent as ttlMinutes (servers >= "
                              "0.205); 0: none"),
        RLM_OPTION_DEF(.name = "execute_timeout_s", .type = RLM_OPT_NUMBER, .default_json = "300",
                       DT_MIN(0),
                       .doc = "HTTP timeout of one toolbox command without a timeout of its "
                              "own"),
        RLM_OPTION_DEF(.name = "create_timeout_s", .type = RLM_OPT_NUMBER, .default_json = "60",
                       DT_MIN(0.001),
                       .doc = "how long to wait for a new sandbox to be started (the SDK's "
                              "default)"),
        RLM_OPTION_DEF(.name = "volume_name", .type = RLM_OPT_STRING,
                       .doc = "volume mounted at " DT_VOLUME_PATH " (VOLUME), created if missing"),
        RLM_OPTION_DEF(.name = "repo_url", .type = RLM_OPT_STRING,
                       .doc = "git repository cloned into ./repo of the work dir"),
        RLM_OPTION_DEF(.name = "repo_ref", .type = RLM_OPT_STRING,
                       .doc = "branch, tag or commit of repo_url"),
        RLM_OPTION_DEF(.name = "context_paths", .type = RLM_OPT_STRING_LIST, .default_json = "[]",
                       .flags = RLM_OPTF_NONEMPTY,
                       .doc = "local files uploaded to ./context/ of the work dir"),
        RLM_OPTION_DEF(.name = "python", .type = RLM_OPT_STRING, .default_json = "\"python3\"",
                       .flags = RLM_OPTF_NONEMPTY, .doc = "Python interpreter inside the sandbox"),
        RLM_OPTION_DEF(.name = "transport", .type = RLM_OPT_STRING, .default_json = "\"relay\"",
                       .choices = dt_transports,
                       .doc = "relay (daemon + process/execute per step) or session (session "
                              "input + log polling)"),
        RLM_OPTION_DEF(.name = "step_wait_s", .type = RLM_OPT_NUMBER, .default_json = "20",
                       DT_MIN(0.001),
                       .doc = "longest one exchange step waits in the sandbox (stays below "
                              "proxy timeouts)"),
        RLM_OPTION_DEF(.name = "max_retries", .type = RLM_OPT_INT, .default_json = "4",
                       DT_RANGE(0, 20),
                       .doc = "retries of 429, 5xx, empty 502s and dropped connections"),
        RLM_OPTION_DEF(.name = "shutdown_timeout_s", .type = RLM_OPT_NUMBER, .default_json = "30",
                       DT_RANGE(0.001, 3600),
                       .doc = "longest a shutdown tries to delete the sandbox; then it is left "
                              "to `rlm backends gc`"),
        {0},
};

/* ---- config ---------------------------------------------------------------------------- */

/* A string option, host->alloc'ed; NULL when unset or empty. */
static int cfg_str(struct dt *d, const rlm_options *o, const char *key, char **out, rlm_error *err)
{
	const char *v = d->host->opt_string(o, key);

	*out = NULL;
	if (!v || !*v)
		return 0;
	return (*out = d->host->str_dup(v)) ? 0 : dt_nomem(d, err);
}

/* An OBJECT option as a JSON object of ours; NULL when out of memory. */
static json_object *cfg_obj(struct dt *d, const rlm_options *o, const char *key)
{
	return json_tokener_parse(d->host->opt_object_json(o, key));
}

/* A STRING_LIST option as a JSON array of ours; NULL when out of memory. */
static json_object *cfg_list(struct dt *d, const rlm_options *o, const char *key)
{
	json_object *arr = json_object_new_array();

	for (const char *const *s = d->host->opt_string_list(o, key); arr && *s; s++)
		if (json_object_array_add(arr, json_object_new_string(*s))) {
			json_object_put(arr);
			return NULL;
		}
	return arr;
}

static int cfg_read(struct dt *d, const rlm_options *o, rlm_error *err)
{
	const rlm_host_api *h = d->host;
	struct dt_config *c = &d->cfg;
	const char *transport = h->opt_string(o, "transport"), *key;
	int rc;

	if ((rc = cfg_str(d, o, "api_url", &c->api_url, err)) ||
	    (rc = cfg_str(d, o, "api_key_env", &c->api_key_env, err)) ||
	    (rc = cfg_str(d, o, "target", &c->target, err)) ||
	    (rc = cfg_str(d, o, "snapshot", &c->snapshot, err)) ||
	    (rc = cfg_str(d, o, "image", &c->image, err)) ||
	    (rc = cfg_str(d, o, "volume_name", &c->volume_name, err)) ||
	    (rc = cfg_str(d, o, "repo_url", &c->repo_url, err)) ||
	    (rc = cfg_str(d, o, "repo_ref", &c->repo_ref, err)) ||
	    (rc = cfg_str(d, o, "python", &c->python, err)))
		return rc;
	if (!(c->env_vars = cfg_obj(d, o, "env_vars")) || !(c->labels = cfg_obj(d, o, "labels")) ||
	    !(c->context_paths = cfg_list(d, o, "context_paths")))
		return dt_nomem(d, err);
	c->cpu = (long)h->opt_int(o, "cpu");
	c->memory = (long)h->opt_int(o, "memory");
	c->disk = (long)h->opt_int(o, "disk");
	c->auto_stop_minutes = (long)h->opt_int(o, "auto_stop_minutes");
	c->auto_delete_minutes = (long)h->opt_int(o, "auto_delete_minutes");
	c->timeout_s = h->opt_number(o, "timeout_s");
	c->execute_timeout_s = h->opt_number(o, "execute_timeout_s");
	c->create_timeout_s = h->opt_number(o, "create_timeout_s");
	c->step_wait_s = h->opt_number(o, "step_wait_s");
	c->shutdown_timeout_s = h->opt_number(o, "shutdown_timeout_s");
	c->max_retries = (int)h->opt_int(o, "max_retries");
	c->force_session = transport && !strcmp(transport, "session");
	/* A null in the config beats the defaults: the same values the defaults give. */
	if (!c->python && !(c->python = h->str_dup("python3")))
		return dt_nomem(d, err);
	if (!c->api_url && !(c->api_url = h->str_dup("https://app.daytona.io/api")))
		return dt_nomem(d, err);
	while (strlen(c->api_url) > 1 && c->api_url[strlen(c->api_url) - 1] == '/')
		c->api_url[strlen(c->api_url) - 1] = '\0';
	if (c->snapshot && c->image)
		return h->error_set(err, RLM_ECONFIG,
		                    "backends.daytona: set snapshot or image, not both");
	if (!c->image && (c->cpu > 0 || c->memory > 0 || c->disk > 0))
		return h->error_set(err, RLM_ECONFIG,
		                    "backends.daytona: cpu, memory and disk need image (the server "
		                    "refuses resources with a snapshot)");
	key = getenv(c->api_key_env ? c->api_key_env : "DAYTONA_API_KEY");
	if (key && *key && !(d->api_key = h->str_dup(key)))
		return dt_nomem(d, err);
	d->secrets[0] = d->api_key;
	d->secrets[1] = NULL;
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int need_key(struct dt *d, rlm_error *err)
{
	if (d->api_key)
		return 0;
	return d->host->error_set(err, RLM_EAUTH,
	                          "daytona: no API key: set the environment variable %s (named by "
	                          "backends.daytona.api_key_env)",
	                          d->cfg.api_key_env ? d->cfg.api_key_env : "DAYTONA_API_KEY");
}

/* Replaces a sandbox found stopped or gone: delete what is left, create a new one. */
static int replace_sandbox(struct dt *d, const struct dt_limit *lim, rlm_error *err)
{
	d->host->log(RLM_LOG_WARN, DT_NAME,
	             "sandbox %s was found stopped or gone; creating a new one",
	             d->sandbox_id ? d->sandbox_id : "?");
	dt_driver_stop(d, lim);
	dt_sandbox_delete(d, NULL);
	d->session_mode = d->cfg.force_session;
	return dt_sandbox_provision(d, lim, err);
}

static int dt_start(void *instance, const rlm_launch *launch, rlm_error *err)
{
	struct dt *d = instance;
	struct dt_limit lim = {0, NULL};
	int rc;

	/* The whole start within the core's start_timeout_s (provisioning also within
	 * create_timeout_s), and given up at once when cancelled. */
	if (RLM_HAS_FIELD(launch, start_timeout_s) && launch->start_timeout_s > 0)
		lim.deadline = d->host->now() + launch->start_timeout_s;
	if (RLM_HAS_FIELD(launch, cancel))
		lim.cancel = launch->cancel;
	if ((rc = need_key(d, err)))
		return rc;
	if (d->sandbox_id && d->session_id[0]) {
		/* A restart after a hang or a crash: the old driver and its daemon go first. If the
		 * sandbox itself is what died, it is replaced, once. */
		dt_driver_stop(d, &lim);
		if (dt_sandbox_is_lost(d, &lim) == 1 && (rc = replace_sandbox(d, &lim, err)))
			return rc;
	}
	if (d->sandbox_id && !d->provisioned)
		dt_sandbox_delete(d, NULL); /* what a cancelled start left half-made */
	if (!d->sandbox_id && (rc = dt_sandbox_provision(d, &lim, err)))
		return rc;
	rc = dt_driver_launch(d, &lim, err);
	if (rc == RLM_ESTATE_LOST) {
		if ((rc = replace_sandbox(d, &lim, err)))
			return rc;
		rc = dt_driver_launch(d, &lim, err);
	}
	return rc;
}

static int dt_execute(void *instance, const rlm_exchange *ex, rlm_error *err)
{
	struct dt *d = instance;

	if (!ex || ex->struct_size < offsetof(rlm_exchange, ctx) + sizeof(ex->ctx) ||
	    !ex->on_data || (!ex->request && ex->request_len))
		return d->host->error_set(err, RLM_EINVAL, "execute: incomplete exchange");
	if (!d->sandbox_id)
		return d->host->error_set(err, RLM_EBACKEND, "the driver is not running");
	return dt_driver_exchange(d, ex, err);
}

/* Runs op; when it finds the sandbox stopped or gone, replaces the sandbox once (within lim)
 * and runs op again (files and commands do not depend on the driver's state). */
#define WITH_RECREATE(d, lim, err, call)                                                           \
	do {                                                                                       \
		rc = (call);                                                                       \
		if (rc == RLM_ESTATE_LOST) {                                                       \
			rlm_error first_ = *(err);                                                 \
			if (replace_sandbox((d), (lim), (err)) == 0 &&                             \
			    dt_driver_launch((d), (lim), (err)) == 0) {                            \
				rc = (call);                                                       \
			} else {                                                                   \
				*(err) = first_;                                                   \
			}                                                                          \
		}                                                                                  \
	} while (0)

static int dt_upload_op(void *instance, const void *data, size_t len, const char *remote_path,
                        rlm_error *err)
{
	struct dt *d = instance;
	const struct dt_limit none = {0, NULL}; /* the requests' own timeouts bound it */
	rlm_error local = RLM_ERROR_INIT;
	int rc;

	if (!err)
		err = &local;
	if (!remote_path || !*remote_path || (!data && len))
		return d->host->error_set(err, RLM_EINVAL, "upload: no path or no data");
	if (!d->toolbox)
		return d->host->error_set(err, RLM_EBACKEND, "upload: no sandbox");
	WITH_RECREATE(d, &none, err, dt_upload(d, data ? data : "", len, remote_path, NULL, err));
	return rc;
}

static int dt_download_op(void *instance, const char *remote_path, rlm_buf *out, rlm_error *err)
{
	struct dt *d = instance;
	const struct dt_limit none = {0, NULL}; /* the requests' own timeouts bound it */
	rlm_error local = RLM_ERROR_INIT;
	int rc;

	if (!err)
		err = &local;
	if (!remote_path || !*remote_path || !out)
		return d->host->error_set(err, RLM_EINVAL, "download: no path");
	if (!d->toolbox)
		return d->host->error_set(err, RLM_EBACKEND, "download: no sandbox");
	WITH_RECREATE(d, &none, err, dt_download(d, remote_path, out, err));
	return rc;
}

/* Appends "<pre><quoted text><post>" to *line; 0, or -1 when out of memory. */
static int append_quoted(struct dt *d, char **line, const char *pre, const char *text,
                         const char *post)
{
	char *q = dt_shell_quote(d, text);
	char *grown = q ? d->host->str_printf("%s%s%s%s", *line, pre, q, post) : NULL;

	d->host->free(q);
	if (!grown)
		return -1;
	d->host->free(*line);
	*line = grown;
	return 0;
}

/* `export 'K=V'; ... cd 'cwd' && exec 'argv0' 'argv1' ...` */
static char *command_line(struct dt *d, const rlm_command *cmd)
{
	char *line = d->host->str_dup("");
	int bad = !line;

	for (const char *const *e = cmd->env; !bad && e && *e; e++)
		bad = append_quoted(d, &line, "export ", *e, "; ");
	if (!bad && cmd->cwd)
		bad = append_quoted(d, &line, "cd ", cmd->cwd, " && ");
	for (const char *const *a = cmd->argv; !bad && *a; a++)
		bad = append_quoted(d, &line, a == cmd->argv ? "exec " : " ", *a, "");
	if (bad) {
		d->host->free(line);
		return NULL;
	}
	return line;
}

static int dt_run_command(void *instance, const rlm_command *cmd, rlm_command_result *res,
                          rlm_error *err)
{
	struct dt *d = instance;
	struct dt_limit lim = {0, NULL};
	rlm_error local = RLM_ERROR_INIT;
	char *line, *b64, *wrapped, *out = NULL;
	size_t len = 0;
	int rc, code = -1;

	if (!err)
		err = &local;
	if (!cmd || !cmd->argv || !cmd->argv[0] || !res)
		return d->host->error_set(err, RLM_EINVAL, "run_command: no argv");
	if (RLM_HAS_FIELD(cmd, cancel))
		lim.cancel = cmd->cancel;
	if (!d->toolbox)
		return d->host->error_set(err, RLM_EBACKEND, "run_command: no sandbox");
	if (!(line = command_line(d, cmd)))
		return dt_nomem(d, err);
	/* The portable form of reference 3.2: works whether or not the daemon uses a shell. */
	b64 = dt_base64(d, line, strlen(line), NULL);
	d->host->free(line);
	wrapped = b64 ? d->host->str_printf("sh -c \"echo '%s' | base64 -d | sh\"", b64) : NULL;
	d->host->free(b64);
	if (!wrapped)
		return dt_nomem(d, err);
	WITH_RECREATE(d, &lim, err,
	              dt_exec(d, wrapped, cmd->timeout_s, &lim, &out, &len, &code, err));
	d->host->free(wrapped);
	res->timed_out = rc == RLM_ETIMEOUT;
	if (rc == RLM_ETIMEOUT) {
		/* 408: the daemon killed the process group and discarded the output. */
		rc = 0;
		code = -9;
		out = d->host->alloc(1);
		if (out)
			out[0] = '\0';
		len = 0;
	}
	if (rc)
		return rc;
	res->exit_code = code;
	/* The toolbox merges stdout and stderr into one `result` (reference 3.1). */
	res->out.data = out;
	res->out.len = len;
	res->err.data = d->host->alloc(1);
	if (res->err.data)
		res->err.data[0] = '\0';
	res->err.len = 0;
	return out && res->err.data ? 0 : dt_nomem(d, err);
}

static int dt_interrupt(void *instance, rlm_error *err)
{
	return dt_driver_interrupt(instance, err);
}

static int dt_is_alive(void *instance)
{
	struct dt *d = instance;
	const struct dt_limit lim = {d->host->now() + 30, NULL};

	return d->sandbox_id && dt_sandbox_is_lost(d, &lim) == 0;
}

static int give_json(struct dt *d, json_object *doc, rlm_buf *out, rlm_error *err)
{
	const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(text);

	out->data = d->host->alloc(len + 1);
	if (!out->data)
		return dt_nomem(d, err);
	memcpy(out->data, text, len + 1);
	out->len = len;
	return 0;
}

/* status; gc {older_than_minutes, dry_run}; list {path}; sandbox_lost (test hook: delete the
 * sandbox behind the interpreter's back is done by the fake, not here). */
static int dt_control(void *instance, const char *op, const char *arg_json, rlm_buf *out,
                      rlm_error *err)
{
	struct dt *d = instance;
	json_object *arg = arg_json ? json_tokener_parse(arg_json) : NULL, *doc = NULL, *v;
	int rc = 0;

	if (!op || !out) {
		json_object_put(arg);
		return d->host->error_set(err, RLM_EINVAL, "control: no op or no output buffer");
	}
	if (strcmp(op, "status") == 0) {
		doc = json_object_new_object();
		json_object_object_add(doc, "sandbox_id",
		                       d->sandbox_id ? json_object_new_string(d->sandbox_id)
		                                     : NULL);
		json_object_object_add(doc, "instance_id", json_object_new_string(d->instance_id));
		json_object_object_add(doc, "api_url", json_object_new_string(d->cfg.api_url));
		json_object_object_add(doc, "toolbox",
		                       d->toolbox ? json_object_new_string(d->toolbox) : NULL);
		json_object_object_add(
		        doc, "transport",
		        json_object_new_string(d->session_mode ? "session" : "relay"));
		json_object_object_add(
		        doc, "volume",
		        d->cfg.volume_name ? json_object_new_string(d->cfg.volume_name) : NULL);
		json_object_object_add(doc, "isolation", json_object_new_string("remote sandbox"));
	} else if (strcmp(op, "gc") == 0) {
		double older = -1;
		int dry = 0;

		if ((rc = need_key(d, err)))
			goto out;
		if (arg && json_object_object_get_ex(arg, "older_than_minutes", &v) &&
		    !json_object_is_type(v, json_type_null))
			older = json_object_get_double(v);
		if (arg && json_object_object_get_ex(arg, "dry_run", &v))
			dry = json_object_get_boolean(v);
		rc = dt_gc(d, older,
		           arg && json_object_object_get_ex(arg, "run", &v) &&
		                           json_object_is_type(v, json_type_string)
		                   ? json_object_get_string(v)
		                   : NULL,
		           dry, &doc, err);
	} else if (strcmp(op, "list") == 0) {
		const char *path = arg && json_object_object_get_ex(arg, "path", &v)
		                           ? json_object_get_string(v)
		                           : "";

		rc = d->toolbox ? dt_list_files(d, path, &doc, err)
		                : d->host->error_set(err, RLM_EBACKEND, "list: no sandbox");
	} else {
		rc = d->host->error_set(err, RLM_ENOTSUP, "daytona backend: no control op \"%s\"",
		                        op);
	}
	if (rc == 0)
		rc = give_json(d, doc, out, err);
out:
	json_object_put(doc);
	json_object_put(arg);
	return rc;
}

static void dt_shutdown(void *instance)
{
	struct dt *d = instance;
	const rlm_host_api *host;

	if (!d)
		return;
	host = d->host;
	/* Deleting the sandbox ends the session, daemon and driver. Its own budget, whatever the
	 * state (a frozen server included); cancel flags do not apply: the delete is what a
	 * cancel leaves to do. */
	{
		const struct dt_limit lim = {host->now() + d->cfg.shutdown_timeout_s, NULL};

		dt_sandbox_delete(d, &lim);
	}
	host->free(d->cfg.api_url);
	host->free(d->cfg.api_key_env);
	host->free(d->cfg.target);
	host->free(d->cfg.snapshot);
	host->free(d->cfg.image);
	host->free(d->cfg.volume_name);
	host->free(d->cfg.repo_url);
	host->free(d->cfg.repo_ref);
	host->free(d->cfg.python);
	json_object_put(d->cfg.env_vars);
	json_object_put(d->cfg.labels);
	json_object_put(d->cfg.context_paths);
	if (d->api_key) { /* do not leave the key in freed memory */
		memset(d->api_key, 0, strlen(d->api_key));
		host->free(d->api_key);
	}
	host->free(d->volume_id);
	host->free(d->cmd_id);
	host->free(d);
}

static void make_instance_id(char out[17])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char bytes[8];
	FILE *f = fopen("/dev/urandom", "rb");
	size_t got = f ? fread(bytes, 1, sizeof(bytes), f) : 0;

	if (f)
		fclose(f);
	if (got != sizeof(bytes)) { /* no urandom: time and pid are unique enough for a label */
		unsigned long long v = (unsigned long long)time(NULL) ^
		                       ((unsigned long long)getpid() << 32) ^
		                       (unsigned long long)(size_t)out;
		memcpy(bytes, &v, sizeof(bytes));
	}
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[bytes[i] >> 4];
		out[2 * i + 1] = hex[bytes[i] & 15];
	}
	out[16] = '\0';
}

static int dt_create_opts(const rlm_host_api *host, const rlm_options *opts, void **instance,
                          rlm_error *err)
{
	struct dt *d;
	int rc;

	if (!instance)
		return host->error_set(err, RLM_EINVAL, "create: no instance pointer");
	*instance = NULL;
	if (!(d = host->alloc(sizeof(*d))))
		return host->error_set(err, RLM_ENOMEM, "daytona backend: out of memory");
	memset(d, 0, sizeof(*d));
	d->host = host;
	make_instance_id(d->instance_id);
	if ((rc = cfg_read(d, opts, err))) {
		dt_shutdown(d);
		return rc;
	}
	d->session_mode = d->cfg.force_session;
	*instance = d;
	return 0;
}

/* ---- the descriptor -------------------------------------------------------------------- */

static const rlm_backend_ops dt_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_backend_ops),
        .start = dt_start,
        .execute = dt_execute,
        .upload = dt_upload_op,
        .download = dt_download_op,
        .shutdown = dt_shutdown,
        .interrupt = dt_interrupt,
        .run_command = dt_run_command,
        .is_alive = dt_is_alive,
        .control = dt_control,
        .create_opts = dt_create_opts,
};

static const rlm_plugin_desc dt_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_BACKEND,
        .name = DT_NAME,
        .summary = "Daytona cloud sandboxes: REST control plane + toolbox; the driver as a "
                   "session daemon reached through a relay per exchange step",
        .version = "1.0.0",
        /* CONTAINS_BOMBS: a sandbox is a container on Daytona's machines, with its own cpu
         * and memory quota; a bomb in it never reaches the machine rlm runs on. */
        .capabilities = RLM_CAP_INTERRUPT | RLM_CAP_RUN_COMMAND | RLM_CAP_VOLUME |
                        RLM_CAP_IS_ALIVE | RLM_CAP_REMOTE | RLM_CAP_NESTED_EXECUTE |
                        RLM_CAP_CONTAINS_BOMBS,
        .option_defs = dt_options,
        .ops = &dt_ops,
        /* Pool defaults: a tier-1 organisation has a pool of 10 vCPU (a sandbox takes 1 by
         * default) and may create 300 sandboxes a minute (5/s). */
        .pool_max_live = 10,
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
	/* Every host field this plugin uses, opt_object_json being the last of them. */
	if (!host || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR ||
	    RLM_ABI_MAJOR_OF(host->abi_version) != RLM_ABI_MAJOR ||
	    !RLM_HAS_FIELD(host, opt_object_json) || !host->str_dup || !host->sleep ||
	    !host->alloc || !host->free || !host->log || !host->error_set ||
	    !host->error_set_http || !host->now || !host->http_request || !host->http_response_free)
		return RLM_EPLUGIN;
	*out = &dt_desc;
	return 0;
}
