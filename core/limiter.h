/* limiter.h - the creation-rate limit shared by every rlm process of the user: a token bucket
 * whose one number of state (the earliest wall-clock time the next creation may start) lives in
 * a lock file, advanced under flock. */
#ifndef RLM_LIMITER_H
#define RLM_LIMITER_H

#include "rlm/error.h"

/* The lock file for a backend: dir/<backend>.bucket, dir being $XDG_RUNTIME_DIR/rlm/limiter,
 * else $XDG_CACHE_HOME/rlm/limiter, else ~/.cache/rlm/limiter (made if missing). Writes it
 * into out (size bytes). */
int rlm__limiter_path(const char *dir, const char *backend, char *out, size_t size, rlm_error *err);

/* Takes one token at `rate` per second from the bucket in path: reserves the next start time
 * (spaced 1/rate after the previous reservation by any process), then sleeps until it, in
 * slices, giving up with RLM_ECANCELLED when *cancel becomes non-zero or RLM_ETIMEOUT when the
 * start would fall after deadline (rlm_now() clock; 0: none). A reservation made is kept even
 * when the wait is abandoned: the rate stays conservative. *started (may be NULL) gets the
 * wall-clock time the token is for. */
int rlm__limiter_take(const char *path, double rate, double deadline, const volatile int *cancel,
                      double *started, rlm_error *err);

#endif
