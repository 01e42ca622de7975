/* probe.h - runs a risky function (a plugin's constructors and entry point) in a forked child
 * process with a deadline, so that a crash or a hang there is a report, not the end of rlm. */
#ifndef RLM_PROBE_H
#define RLM_PROBE_H

#include <stddef.h>

#include "util.h"

/* Runs in the child: writes what it has to say to fd, then returns (the child then _exits).
 * Only the calling thread exists in the child, so fn must not wait for another thread. */
typedef void (*rlm_probe_fn)(int fd, void *ctx);

/* How the child ended. */
typedef struct rlm_probe_outcome {
	rlm_sb out;      /* everything fn wrote, up to the cap (owned: rlm_sb_free it) */
	int signal;      /* the signal that killed the child, or 0 */
	int exit_status; /* its exit status when it exited, else -1 */
	int timed_out;   /* killed (SIGKILL) at the deadline */
	int truncated;   /* it wrote more than the cap (it was killed then) */
} rlm_probe_outcome;

/* Forks, runs fn(fd, ctx) in the child with the crash signals at their default action and no
 * core dump, and collects what it writes until it exits, it writes more than max_out bytes,
 * or timeout_s passes (then it is killed). Returns 0 with *o filled (whatever the child did),
 * or a negative rlm_status when the child could not be started (err says why). */
int rlm__probe_run(rlm_probe_fn fn, void *ctx, double timeout_s, size_t max_out,
                   rlm_probe_outcome *o, rlm_error *err);

/* "SIGSEGV" for 11, "signal 77" for what has no name; into buf. */
const char *rlm__signal_name(int sig, char *buf, size_t size);

#endif
