/* modal_internal.h - what the Modal plugin's files share: the instance, the RPC wrappers with
 * the SDKs' retry policies (modal.c), execs through the task command router (modal_exec.c)
 * and file transfer (modal_files.c). */
#ifndef RLM_MODAL_INTERNAL_H
#define RLM_MODAL_INTERNAL_H

#include <json-c/json.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc.h"
#include "modal.pb-c.h"
#include "rlm/plugin.h"

#define CP_PATH(m) "/modal.client.ModalClient/" m
#define RT_PATH(m) "/modal.task_command_router.TaskCommandRouter/" m

/* How files move in and out of the sandbox (option file_transfer). */
enum {
	FS_AUTO,   /* fs-tools, then the legacy API, then sh + cat: the first that works stays */
	FS_TOOLS,  /* the SDKs' way: exec /__modal/.bin/modal-sandbox-fs-tools */
	FS_LEGACY, /* ContainerFilesystemExec (V1 sandboxes; deprecated by the SDKs) */
	FS_SHELL,  /* exec sh -c 'cat > path' / cat path: any image with a shell */
};

#define MODAL_MAX_RETIRED 8

struct modal {
	const rlm_host_api *host;
	/* options */
	char *server_url, *environment, *app_name, *image, *volume_name, *workdir, *python;
	char *ca_file;
	json_object *env_vars;
	double timeout_s, exec_timeout_s, cpu;
	long memory_mb;
	int fs_mode; /* FS_*: configured, then the one that worked */
	/* credentials (never logged) */
	char *token_id, *token_secret;
	/* the sandbox */
	mg_channel *cp;
	char *app_id, *image_id, *secret_id, *volume_id, *sandbox_id, *task_id;
	/* The router channel may be refreshed (a new JWT) by any thread that saw UNAUTHENTICATED:
	 * mu guards router, router_url and router_gen. A channel replaced for a new URL is kept
	 * until shutdown, since another thread may still be calling through it. */
	pthread_mutex_t mu;
	/* life_mu: held while the sandbox is replaced or provisioned, and by interrupt() (another
	 * thread) while it uses the sandbox's ids. */
	pthread_mutex_t life_mu;
	mg_channel *router;
	char *router_url;
	unsigned router_gen;
	mg_channel *retired[MODAL_MAX_RETIRED];
	int driver_uploaded;
	int started; /* start() has run once: a later one is a restart */
	/* the driver exec */
	char exec_id[40];
	int driver_running;
	uint64_t in_off, out_off;
};

extern const char MODAL[];

char *mstrdup(struct modal *m, const char *s);
int nomem(struct modal *m, rlm_error *err);
void sleep_s(double s);
/* A version-4 UUID (exec ids, idempotency keys). */
void new_uuid(char out[37]);
int rpc_error(struct modal *m, const char *what, const mg_status *st, rlm_error *err);

/* Control-plane unary call: 3 retries of the retryable codes, server-directed throttling, one
 * x-idempotency-key for all attempts. resp is a pointer to the response pointer. */
int cp_call(struct modal *m, const char *path, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, void *resp, rlm_error *err);
/* The router channel, and its generation for router_refresh(). */
mg_channel *router_get(struct modal *m, unsigned *gen);
/* Fetches a new JWT (and URL) unless another thread already did since gen was read. */
int router_refresh(struct modal *m, unsigned gen, rlm_error *err);
/* Router unary call: 10 retries (10 ms doubling), a JWT refresh once on UNAUTHENTICATED. */
int rt_call(struct modal *m, const char *path, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, void *resp, double timeout_s, rlm_error *err);

/* ---- modal_exec.c ---------------------------------------------------------------------- */

/* How to start an exec. */
typedef struct mx_spec {
	char **argv;
	size_t argc;
	int stderr_cfg;         /* MODAL__CLIENT__TASK_EXEC_STDERR_CONFIG__* */
	const char *workdir;    /* NULL: the sandbox's */
	const char *const *env; /* NULL or NULL-terminated "K=V" */
	uint32_t timeout_secs;  /* 0: none (the server kills the exec after it) */
} mx_spec;

/* The outcome of a finished exec. */
typedef struct mx_result {
	rlm_buf out, err; /* host->alloc'ed, NUL-terminated */
	int exited;       /* 1: code is set; 0: signal is */
	int code, signal;
	int timed_out; /* the client's deadline passed first */
} mx_result;

int mx_start(struct modal *m, const char *exec_id, const mx_spec *spec, rlm_error *err);
/* TaskExecStdinWrite at offset (bytes already sent); eof closes stdin. */
int mx_stdin(struct modal *m, const char *exec_id, uint64_t offset, const void *data, size_t len,
             int eof, rlm_error *err);
/* Reads fd (0 stdout, 1 stderr) from *offset into sink until EOF (0), the sink stops it (its
 * non-zero code), deadline (RLM_ETIMEOUT) or an error; dropped streams resume at *offset. */
int mx_read(struct modal *m, const char *exec_id, int fd, uint64_t *offset, double deadline,
            int (*sink)(void *, const uint8_t *, size_t), void *ctx, rlm_error *err);
/* TaskExecWait for up to wait_s: 0 with exited, code and sig set, or -1 (not finished). */
int mx_wait(struct modal *m, const char *exec_id, double wait_s, int *exited, int *code, int *sig);
/* Runs an exec to completion: in (when has_input; may be empty) goes to stdin then EOF,
 * stdout and stderr (when piped) are drained concurrently. timeout_s bounds it all (then
 * res->timed_out). On 0, res owns its buffers (mx_result_free). */
int mx_run(struct modal *m, const mx_spec *spec, const void *in, size_t in_len, int has_input,
           double timeout_s, mx_result *res, rlm_error *err);
void mx_result_free(struct modal *m, mx_result *res);
/* The backend's interrupt and run_command slots. */
int modal_interrupt(void *instance, rlm_error *err);
int modal_run_command(void *instance, const rlm_command *cmd, rlm_command_result *res,
                      rlm_error *err);

/* ---- modal_files.c --------------------------------------------------------------------- */

int modal_write_file(struct modal *m, const char *path, const void *data, size_t len,
                     rlm_error *err);
int modal_read_file(struct modal *m, const char *path, rlm_buf *out, rlm_error *err);
/* The name of an FS_* mode, and the mode of a name (-1 when unknown). */
const char *fs_mode_name(int mode);
int fs_mode_of(const char *name);

#endif /* RLM_MODAL_INTERNAL_H */
