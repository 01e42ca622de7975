/* conformance.h - what the parts of rlm-conformance share: the run's settings, the case
 * tables (conformance.c), the leftover-process check (leftovers.c). main.c reads the command
 * line into `suite` and runs the selected cases. */
#ifndef RLM_CONFORMANCE_H
#define RLM_CONFORMANCE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include <cmocka.h>

#include "rlm/rlm.h"

/* The run's settings: written by main before any case runs, read by the cases. */
struct conformance_suite {
	rlm_config *cfg;
	const char *backend;
	bool want_fork_bomb, want_memory_bomb; /* asked for on the command line */
	bool caps_known;                       /* capabilities below come from a status */
	bool remote, contains_bombs;           /* RLM_CAP_REMOTE, RLM_CAP_CONTAINS_BOMBS */
	int leftover_failures;                 /* checks that found a process left behind */
};
extern struct conformance_suite suite;

/* The cases: the shared group runs on one interpreter opened by its group setup; the fresh
 * group's cases kill, exhaust or pollute their interpreter, so each gets its own. */
extern const struct CMUnitTest conformance_shared[];
extern const size_t conformance_shared_count;
extern const struct CMUnitTest conformance_fresh[];
extern const size_t conformance_fresh_count;
int conformance_open_shared(void **state);
int conformance_close_shared(void **state);

/* Makes the suite a child subreaper, so a sandbox's orphans stay in its process tree. Call
 * before the first sandbox is opened. 0 or -1 (errno). */
int leftovers_watch(void);

/* Waits up to timeout_s for the suite to have no live descendant; returns how many were still
 * alive then (0: none), described in report, and SIGKILLs them. Call only while no
 * interpreter is open. */
/* keep: process ids the backend says are sandboxes started ahead (control op "spares"): they
 * and their descendants are not leftovers. */
int leftovers_check(double timeout_s, char *report, size_t size, const pid_t *keep, size_t nkeep);

#endif /* RLM_CONFORMANCE_H */
