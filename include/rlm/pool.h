/* rlm/pool.h - a pool of sandboxes for harnesses that run many tasks.
 *
 * A harness opens one pool per backend configuration, then for each task acquires an opened
 * interpreter (rlm_pool_acquire), uses it (rlm_interp_execute, or rlm_run with
 * rlm_run_options.interp) and gives it back (rlm_pool_release), which shuts the sandbox down:
 * no state leaks from one task to the next. The pool owns:
 * - admission: at most max_live sandboxes exist at once, counting those being created, those
 *   handed out, the warm ones and those shutting down; a slot is free again only once the
 *   backend's shutdown has returned (the sandbox is gone, or handed to `rlm backends gc`);
 * - a creation-rate limit (creates_per_s) shared by every rlm process of the user: its state
 *   is a lock file (flock) under $XDG_RUNTIME_DIR/rlm/limiter (else ~/.cache/rlm/limiter), one
 *   per backend, so ten harness processes together stay under the provider's rate;
 * - warm sandboxes created ahead of demand (never more than max_live);
 * - a run id: every sandbox of a backend that has a `labels` option carries rlm-run=<id>, so
 *   `rlm backends gc NAME --run ID` can clean one run's leftovers and nothing else.
 *
 * Thread rules: every function may be called from any thread at the same time, except
 * rlm_pool_close (once, after every interpreter was released and no other call is running).
 * An interpreter handed out belongs to the caller until it is released; as any interpreter,
 * one thread uses it at a time. Sandboxes are opened and shut down on the pool's own threads,
 * which live as long as the pool, so the local backend's rule that a sandbox dies with the
 * thread that opened it means here that it dies with the pool, whichever thread acquires it. */
#ifndef RLM_POOL_H
#define RLM_POOL_H

#include "config.h"
#include "error.h"
#include "interp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlm_pool rlm_pool;

/* Options of a pool: start from RLM_POOL_OPTIONS_INIT. Anything left at its INIT value comes
 * from cfg's `pool` section, then from the backend's declared defaults. */
typedef struct rlm_pool_options {
	unsigned struct_size;    /* sizeof(rlm_pool_options) of the caller's build */
	long max_live;           /* > 0: overrides pool.max_live */
	double creates_per_s;    /* > 0: overrides pool.creates_per_s (0 there: no limit) */
	long warm;               /* >= 0: overrides pool.warm (INIT sets -1) */
	const char *run_id;      /* the run's label value; NULL: a fresh random id */
	const char *limiter_dir; /* NULL: $XDG_RUNTIME_DIR/rlm/limiter, else ~/.cache/... */
} rlm_pool_options;

/* clang-format off */
#define RLM_POOL_OPTIONS_INIT {.struct_size = sizeof(rlm_pool_options), .warm = -1}
/* clang-format on */

/* Opens a pool for the backend cfg names; the config is copied. Warm sandboxes start being
 * created at once, in the background. */
RLM_API int rlm_pool_open(const rlm_config *cfg, const rlm_pool_options *opts, rlm_pool **out,
                          rlm_error *err);

/* Hands out an opened interpreter, waiting at most timeout_s (<= 0: no limit) for a slot and
 * its creation. RLM_ETIMEOUT when the wait ran out, RLM_ECANCELLED after rlm_pool_cancel, or
 * the error with which creating a sandbox for this caller failed (RLM_EAUTH, RLM_EBACKEND...):
 * each failed creation fails one waiting caller, so a broken backend is not retried forever. */
RLM_API int rlm_pool_acquire(rlm_pool *pool, double timeout_s, rlm_interp **out, rlm_error *err);

/* Gives an interpreter back. By default its sandbox is shut down (on a pool thread: this call
 * does not wait) and its slot frees once that is done. With RLM_POOL_REUSE, a healthy
 * interpreter goes back to the pool for the next acquire instead, after a reset of its
 * namespace (buffers, files and the volume stay: use it only for tasks that may share them). */
#define RLM_POOL_REUSE 1
RLM_API void rlm_pool_release(rlm_pool *pool, rlm_interp *interp, int flags);

/* The run id every sandbox of this pool is labelled with. Owned by the pool. */
RLM_API const char *rlm_pool_run_id(const rlm_pool *pool);

/* {"backend", "run_id", "max_live", "creates_per_s", "warm", "live", "creating", "idle",
 * "busy", "closing", "waiting", "peak_live", "created", "create_failures", "closed"}.
 * Caller frees with rlm_free. */
RLM_API char *rlm_pool_stats_json(rlm_pool *pool);

/* Cancels everything in flight: waiting acquires return RLM_ECANCELLED, creations stop,
 * interpreters handed out are cancelled (rlm_interp_cancel: their running call returns
 * RLM_ECANCELLED). Release them, then close the pool. Safe from any thread. */
RLM_API void rlm_pool_cancel(rlm_pool *pool);

/* Shuts every sandbox of the pool down, waits for the pool's threads, frees the pool. NULL is
 * allowed. Interpreters still handed out are cancelled, and close waits until they are
 * released. */
RLM_API void rlm_pool_close(rlm_pool *pool);

#ifdef __cplusplus
}
#endif
#endif /* RLM_POOL_H */
