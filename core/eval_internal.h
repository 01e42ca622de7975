/* eval_internal.h - what the parts of `rlm eval` share (rlm/eval.h is the public face): the
 * task file (eval_tasks.c), the results files (eval_results.c), the scorers (eval_score.c),
 * the runner (eval_run.c), the report (eval_report.c) and the generators (eval_gen.c). */
#ifndef RLM_EVAL_INTERNAL_H
#define RLM_EVAL_INTERNAL_H

#include <json-c/json.h>
#include <stddef.h>
#include <sys/types.h>

#include "rlm/config.h"
#include "rlm/error.h"

/* ---- the task file (eval_tasks.c) ---- */

/* One task as the checking pass left it: its line is read again when the task runs, so a
 * file of many large inline contexts is never held in memory at once. */
struct eval_task {
	char *id;
	long line;           /* 1-based line number in the task file */
	off_t offset;        /* where the line starts */
	size_t len;          /* its bytes, newline excluded */
	char *scorer;        /* the task's own scorer, or NULL */
	char *file_stem;     /* safe, unique file name stem for its trajectory */
	int has_expected;    /* "expected" present and not null */
	int has_options;     /* "options" present: the task gets a config of its own */
	int private_sandbox; /* its options change the sandbox config: not from the pool */
};

struct eval_tasks {
	struct eval_task *v;
	size_t n, cap;
	char *path; /* the task file */
	char *dir;  /* its directory: relative context_file paths start there */
};

/* Reads and checks the whole task file: JSON object per line, fields and types, unique ids,
 * context files that exist, known scorers (default_scorer for tasks naming none), patterns
 * that compile, numeric expectations that are numbers, options that make a valid config on top
 * of cfg. The first problem fails with RLM_EINVAL (RLM_ECONFIG for options) and
 * "<file>:<line>: ...". */
int rlm__eval_tasks_load(const char *path, const rlm_config *cfg, const char *default_scorer,
                         struct eval_tasks *out, rlm_error *err);
void rlm__eval_tasks_free(struct eval_tasks *ts);

/* The task's line parsed again (the caller owns the object). */
int rlm__eval_task_read(const struct eval_tasks *ts, const struct eval_task *t, json_object **out,
                        rlm_error *err);

/* A path relative to dir (unless absolute). Caller frees. */
char *rlm__eval_resolve(const char *dir, const char *path);

/* cfg with a task's options applied (keys may be dotted: {"limits.max_iterations": 5} and
 * {"limits": {"max_iterations": 5}} are the same), checked. Caller frees *out. */
int rlm__eval_task_config(const rlm_config *cfg, json_object *options, const char *id,
                          rlm_config **out, rlm_error *err);

/* Whether a scorer name is known ("cmd:" followed by a command included). */
int rlm__eval_scorer_known(const char *name);

/* ---- results files (eval_results.c) ---- */

/* Rows merged by id: the last row of an id replaces the earlier one in place (so the order is
 * that of first appearance). */
struct eval_results {
	json_object **rows;
	size_t n, cap;
	json_object *index; /* id -> position in rows */
	long bad_lines;     /* lines that were not a row (skipped, counted) */
};

/* Merges the rows of one results file (a missing file adds nothing). With dir non-NULL each row
 * gets a "_dir" member naming the directory its trajectory path is relative to. */
int rlm__eval_results_read(const char *path, const char *dir, struct eval_results *r,
                           rlm_error *err);
/* The last row of id, or NULL. Borrowed. */
json_object *rlm__eval_results_get(const struct eval_results *r, const char *id);
void rlm__eval_results_free(struct eval_results *r);

/* Appends one row to fd (opened O_APPEND) with a single write() of the whole line; a short
 * write is cut back off, so the file never holds half a row. */
int rlm__eval_row_append(int fd, json_object *row, rlm_error *err);

/* The number at key in a row (or any object), or fallback when it is absent or not a
 * number. */
double rlm__eval_number(json_object *obj, const char *key, double fallback);

/* mkdir -p: path and every missing parent. */
int rlm__eval_make_dirs(const char *path, rlm_error *err);

/* ---- scoring (eval_score.c) ---- */

/* rlm_eval_score with parsed values and a cancel flag for cmd: scorers. expected may be NULL
 * only for cmd: scorers. */
int rlm__eval_score(const char *scorer, const char *answer, json_object *expected,
                    json_object *task, double timeout_s, const volatile int *cancel, double *score,
                    rlm_error *err);

/* The number in a text by the numeric scorer's rule (the whole text when it is one number,
 * else the last number in it); 0 when there is none. */
int rlm__eval_number_in(const char *text, double *out);

/* ---- statistics (eval_report.c) ---- */

/* The q-quantile (0..1) of n values by nearest rank; sorts v. 0 when n is 0. */
double rlm__eval_quantile(double *v, size_t n, double q);

#endif
