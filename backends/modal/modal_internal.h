/* modal_internal.h - what the Modal plugin's files share: the instance, the RPC wrappers with
 * the SDKs' retry policies (modal.c), execs through the task command router (modal_exec.c)
 * and file transfer (modal_files.c).
 *
 * Bounds. Every operation carries an mg_bounds: the deadline it must end by (the exchange's,
 * the launch's, or a budget of its own: execute_timeout_s for a file transfer,
 * shutdown_timeout_s for terminating) and the caller's cancel flag, if any. Every RPC made for
 * the operation, its retries and the pauses between them are cut by both, so no wait outlives
 * the operation's deadline and a set flag ends it within about 100 ms (RLM_ECANCELLED). */
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
	char *image_builder_version; /* the option or its env var; NULL: the profile's, then the
	                                environment's */
	double timeout_s, exec_timeout_s, shutdown_timeout_s, cpu;
	long memory_mb;
	int fs_mode; /* FS_*: configured, then the one that worked */
	/* credentials (never logged) */
	char *token_id, *token_secret;
	/* the sandbox */
	mg_channel *cp;
	char *app_id, *image_id, *secret_id, *volume_id, *sandbox_id, *task_id;
	/* The router channel may be refreshed (a new JWT) by any thread that saw UNAUTHENTICATED:
	 * mu guards router, router_url and router_gen, and is only held for moments; refresh_mu
	 * makes one thread at a time ask for a new JWT (waited on within the caller's bounds). A
	 * channel replaced for a new URL is kept until shutdown, since another thread may still
	 * be calling through it. */
	pthread_mutex_t mu;
	pthread_mutex_t refresh_mu;
	/* life_mu: held while the sandbox is replaced or provisioned, and by interrupt() (another
	 * thread; it waits for it within its own budget) while it uses the sandbox's ids. */
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

int nomem(struct modal *m, rlm_error *err);

/* ---- bounds (modal.c) ------------------------------------------------------------------ */

/* max_s from now, watching cancel (may be NULL). */
mg_bounds mb_budget(struct modal *m, double max_s, const volatile int *cancel);
/* b, its deadline brought in to at most max_s from now. */
mg_bounds mb_within(struct modal *m, const mg_bounds *b, double max_s);
/* 0 while b holds; RLM_ECANCELLED once its flag is set, RLM_ETIMEOUT once its deadline has
 * passed, with what (the operation) in the message. */
int mb_check(struct modal *m, const mg_bounds *b, const char *what, rlm_error *err);
/* Sleeps s seconds, cut short by b (its flag is looked at every 50 ms): 0, or mb_check's
 * error. */
int mb_sleep(struct modal *m, const mg_bounds *b, double s, const char *what, rlm_error *err);
/* Locks mu, waiting no longer than b allows: 0, or mb_check's error. */
int mb_lock(struct modal *m, pthread_mutex_t *mu, const mg_bounds *b, const char *what,
            rlm_error *err);

/* A version-4 UUID (exec ids, idempotency keys). */
void new_uuid(char out[37]);
/* The error for a failed call: RLM_ECANCELLED for MG_ABORTED, else the code's mapping. */
int rpc_error(struct modal *m, const char *what, const mg_status *st, rlm_error *err);

/* Control-plane unary call: 3 retries of the retryable codes, server-directed throttling, one
 * x-idempotency-key for all attempts, each attempt within execute_timeout_s, all within b.
 * resp is a pointer to the response pointer. */
int cp_call(struct modal *m, const mg_bounds *b, const char *path, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, void *resp, rlm_error *err);
/* The router channel, and its generation for router_refresh(). */
mg_channel *router_get(struct modal *m, unsigned *gen);
/* Fetches a new JWT (and URL) unless another thread already did since gen was read. */
int router_refresh(struct modal *m, const mg_bounds *b, unsigned gen, rlm_error *err);
/* Router unary call: 10 retries (10 ms doubling), a JWT refresh once on UNAUTHENTICATED, each
 * attempt within execute_timeout_s, all within b. */
int rt_call(struct modal *m, const mg_bounds *b, const char *path, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, void *resp, rlm_error *err);

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

int mx_start(struct modal *m, const mg_bounds *b, const char *exec_id, const mx_spec *spec,
             rlm_error *err);
/* TaskExecStdinWrite at offset (bytes already sent), in messages of at most 16 MiB (the
 * Python SDK's largest); eof closes stdin. For the driver's channel: small and interactive. */
int mx_stdin(struct modal *m, const mg_bounds *b, const char *exec_id, uint64_t offset,
             const void *data, size_t len, int eof, rlm_error *err);
/* All of data to the exec's stdin, then EOF, as the SDKs upload: TaskExecStdinWriteStream in
 * 256 KiB messages; a broken stream is resumed (9 times at most) from the offset
 * TaskExecStdinStatus reports. MX_EXITED_EARLY when the router says the process stopped taking
 * input (FAILED_PRECONDITION or ABORTED, as the SDKs read them): its exit status tells why. */
#define MX_EXITED_EARLY 1
int mx_stdin_stream(struct modal *m, const mg_bounds *b, const char *exec_id, const void *data,
                    size_t len, rlm_error *err);
/* Reads fd (0 stdout, 1 stderr) from *offset into sink until EOF (0), the sink stops it (its
 * non-zero code), b's deadline (RLM_ETIMEOUT) or flag (RLM_ECANCELLED) or an error; dropped
 * streams resume at *offset. */
int mx_read(struct modal *m, const mg_bounds *b, const char *exec_id, int fd, uint64_t *offset,
            int (*sink)(void *, const uint8_t *, size_t), void *ctx, rlm_error *err);
/* TaskExecWait within b: 0 with exited, code and sig set, or -1 (not finished in time). */
int mx_wait(struct modal *m, const mg_bounds *b, const char *exec_id, int *exited, int *code,
            int *sig);
/* Runs an exec to completion within b: in (when has_input; may be empty) goes to stdin then
 * EOF, stdout and stderr (when piped) are drained concurrently. When b's deadline passes first
 * res->timed_out is set (and 0 returned); a set flag returns RLM_ECANCELLED. On 0, res owns
 * its buffers (mx_result_free). */
int mx_run(struct modal *m, const mg_bounds *b, const mx_spec *spec, const void *in, size_t in_len,
           int has_input, mx_result *res, rlm_error *err);
void mx_result_free(struct modal *m, mx_result *res);
/* The backend's interrupt and run_command slots. */
int modal_interrupt(void *instance, rlm_error *err);
int modal_run_command(void *instance, const rlm_command *cmd, rlm_command_result *res,
                      rlm_error *err);

/* ---- modal_files.c --------------------------------------------------------------------- */

/* Both within b (and each helper exec within execute_timeout_s). */
int modal_write_file(struct modal *m, const mg_bounds *b, const char *path, const void *data,
                     size_t len, rlm_error *err);
int modal_read_file(struct modal *m, const mg_bounds *b, const char *path, rlm_buf *out,
                    rlm_error *err);
/* The name of an FS_* mode, and the mode of a name (-1 when unknown). */
const char *fs_mode_name(int mode);
int fs_mode_of(const char *name);

#endif /* RLM_MODAL_INTERNAL_H */
