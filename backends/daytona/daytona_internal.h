/* daytona_internal.h - what the files of the Daytona backend share: the instance, the HTTP
 * calls to the control plane and the toolbox, and the driver transport. Not a public header. */
#ifndef RLM_DAYTONA_INTERNAL_H
#define RLM_DAYTONA_INTERNAL_H

#include <stddef.h>

#include <json-c/json.h>

#include "rlm/plugin.h"

#define DT_NAME        "daytona"
#define DT_SDK_VERSION "0.190.0" /* >= 0.167.0: split session logs as JSON (reference 3.4) */
/* Where the volume is mounted, and so the driver's VOLUME: one value for both, absolute, so
 * an image whose home is not /home/daytona still finds the volume where it was mounted. */
#define DT_VOLUME_PATH "/home/daytona/memory"
#define DT_RLM_DIR     ".rlm" /* under the work dir: driver.py, relay.py, the socket */

/* Config of one instance, parsed once by create(); strings host->alloc'ed. */
struct dt_config {
	char *api_url, *api_key_env, *target, *snapshot, *image, *volume_name;
	char *repo_url, *repo_ref, *python;
	json_object *env_vars, *labels, *context_paths; /* owned references */
	long cpu, memory, disk, auto_stop_minutes, auto_delete_minutes;
	double timeout_s, execute_timeout_s, create_timeout_s, step_wait_s, shutdown_timeout_s;
	int max_retries;
	int force_session; /* transport: always session input + log polling */
};

/* One interpreter's sandbox. Only the driver transport's counters change while an exchange
 * runs; interrupt() reads the ids from another thread, which are stable while it runs. */
struct dt {
	const rlm_host_api *host;
	struct dt_config cfg;
	char *api_key;          /* from the env var named by api_key_env; never logged */
	const char *secrets[2]; /* {api_key, NULL}: masked by the host's HTTP helper */
	char instance_id[17];   /* label rlm-instance: which host process made the sandbox */
	char *sandbox_id;
	char *toolbox; /* {toolboxProxyUrl}/{sandboxId} */
	char *volume_id;
	int provisioned; /* the sandbox was started and its inputs staged (else half-made) */
	/* The driver transport. */
	int session_mode; /* 1: the fallback (session input + log polling) is in use */
	int exchanges;    /* exchanges in progress: > 1 means a nested one */
	char session_id[64];
	char *cmd_id;           /* the session command running the driver (fallback) */
	unsigned long seq;      /* input sequence number of the relay daemon's current driver */
	unsigned long long off; /* bytes of driver output the host has consumed */
	unsigned long launches; /* how many times a driver was launched (session names) */
};

/* What bounds an operation: every request in it, every poll and every sleep. An op's limit
 * lives on its caller's stack (interrupt() runs beside execute(), each with its own). */
struct dt_limit {
	double deadline;            /* host->now() value; 0: only each request's own timeout */
	const volatile int *cancel; /* NULL, or the caller's cancel flag (ABI 1.2) */
};

/* ---- daytona_api.c --------------------------------------------------------------------- */

/* An HTTP call. body may be NULL; ctype NULL means JSON when there is a body. */
struct dt_req {
	const char *method;
	const char *url;
	const char *ctype;
	const void *body;
	size_t body_len;
	double timeout_s;             /* <= 0: 60 s; cut to what is left before limit->deadline */
	int max_retries;              /* < 0: the config's */
	const struct dt_limit *limit; /* NULL: none */
	size_t (*read_body)(void *ctx, char *buf, size_t max);
	int (*rewind_body)(void *ctx);
	void *ctx;
};

int dt_nomem(const struct dt *d, rlm_error *err);
char *dt_urlencode(const struct dt *d, const char *s);

/* 0 while the limit allows more work; RLM_ECANCELLED or RLM_ETIMEOUT (naming what) once not. */
int dt_limit_check(struct dt *d, const struct dt_limit *lim, const char *what, rlm_error *err);
/* Sleeps s seconds, or less: wakes within 50 ms of a cancel, never sleeps past the deadline. */
void dt_sleep(struct dt *d, const struct dt_limit *lim, double s);

/* Sends the request; 0 when an answer arrived (whatever its status). */
int dt_send(struct dt *d, const struct dt_req *rq, rlm_http_response *resp, rlm_error *err);
/* 0 for a 2xx answer, else the mapped error (message, status and request id kept). */
int dt_check(struct dt *d, const rlm_http_response *resp, const char *what, rlm_error *err);
/* dt_send + dt_check for a JSON call; *out (may be NULL) gets the parsed answer. */
int dt_json_call(struct dt *d, const char *method, const char *url, json_object *body,
                 double timeout_s, const struct dt_limit *lim, const char *what, json_object **out,
                 rlm_error *err);
/* True when the toolbox answer says the sandbox is stopped, gone or unreachable for good. */
int dt_sandbox_lost_answer(const rlm_http_response *resp);

/* Creates the sandbox and waits (create_timeout_s at most) until it runs; stages the inputs. */
int dt_sandbox_provision(struct dt *d, const struct dt_limit *lim, rlm_error *err);
/* Deletes the sandbox (if any) and forgets it; best effort within lim, logged. 0 when it is
 * gone, else the error, after a warning that leaves it to `rlm backends gc`. */
int dt_sandbox_delete(struct dt *d, const struct dt_limit *lim);
/* 1 when the sandbox is gone or not started (a GET says so), 0 when it runs, <0 unknown. */
int dt_sandbox_is_lost(struct dt *d, const struct dt_limit *lim);
/* Lists the sandboxes labelled rlm=1 (older than minutes, when >= 0) and deletes them. */
/* Deletes the sandboxes labelled rlm=1 (and, when run is not NULL, rlm-run=run) that are older
 * than older_than_min minutes (< 0: any age). */
int dt_gc(struct dt *d, double older_than_min, const char *run, int dry_run, json_object **report,
          rlm_error *err);

/* ---- daytona_toolbox.c ----------------------------------------------------------------- */

/* POST process/execute; *result host->alloc'ed (NUL-ended), *exit_code set. 408 is
 * RLM_ETIMEOUT. */
int dt_exec(struct dt *d, const char *command, double timeout_s, const struct dt_limit *lim,
            char **result, size_t *len, int *exit_code, rlm_error *err);
int dt_upload(struct dt *d, const void *data, size_t len, const char *path,
              const struct dt_limit *lim, rlm_error *err);
int dt_upload_many(struct dt *d, const char *const *paths, const void *const *data,
                   const size_t *lens, size_t n, const struct dt_limit *lim, rlm_error *err);
int dt_download(struct dt *d, const char *path, rlm_buf *out, rlm_error *err);
int dt_list_files(struct dt *d, const char *path, json_object **out, rlm_error *err);
int dt_git_clone(struct dt *d, const char *url, const char *ref, const char *path,
                 const struct dt_limit *lim, rlm_error *err);
/* base64 of data, host->alloc'ed. */
char *dt_base64(const struct dt *d, const void *data, size_t len, size_t *out_len);
/* 'text' quoted for sh, host->alloc'ed. */
char *dt_shell_quote(const struct dt *d, const char *text);

/* ---- daytona_transport.c --------------------------------------------------------------- */

int dt_driver_launch(struct dt *d, const struct dt_limit *lim, rlm_error *err);
int dt_driver_exchange(struct dt *d, const rlm_exchange *ex, rlm_error *err);
int dt_driver_interrupt(struct dt *d, rlm_error *err);
void dt_driver_stop(struct dt *d, const struct dt_limit *lim);

#endif
