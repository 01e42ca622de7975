/* rlm/eval.h - running a file of RLM tasks: the engine behind `rlm eval`.
 *
 * A task file is JSONL, one task per line: {"id", "query", "context" or "context_file",
 * optional "expected", "scorer", "options" (config overrides for this task), "metadata"}.
 * rlm_eval_run reads and checks the whole file first (a bad line fails with its line number
 * and nothing runs), keeps the tasks of its shard, skips those an earlier run of the same
 * out_dir already finished (resume), then runs the rest on a sandbox pool (rlm/pool.h) with a
 * number of worker threads: each acquires a sandbox, runs rlm_run in it with the task's time
 * limit, scores the answer, appends one row to the results file and releases the sandbox.
 *
 * Results: out_dir/results.jsonl (results.shard-K-of-N.jsonl for a shard), one JSON object
 * per finished task with exactly the fields id, status ("ok", "task_error", "infra_error"),
 * answer, expected, score, iterations, llm_calls, tokens_in, tokens_out, duration_s, attempt,
 * error, trajectory (a path relative to out_dir, under trajectories/). Each row is written
 * with one write() on a file opened O_APPEND, so a killed run never leaves half a row; the
 * last row of an id is its result. The README's "rlm eval" section documents every policy
 * (classification, retries, resume, shards, scorers). */
#ifndef RLM_EVAL_H
#define RLM_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "pool.h"
#include "run.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the progress callback gets after every finished task. Counts cover every task of the
 * eval (its shard, after limit), rows kept from an earlier run included. Strings are valid
 * during the call only. */
typedef struct rlm_eval_progress {
	long total; /* tasks the eval covers */
	long done;  /* of them with a row: kept, or finished by this run */
	long ok, task_error, infra_error;
	long kept;         /* rows kept from an earlier run (resume) */
	long finished;     /* tasks this run finished */
	long to_run;       /* tasks this run set out to run */
	double mean_score; /* over rows with a score; NaN when none has one */
	double elapsed_s;  /* since this run started */
	double eta_s;      /* estimated seconds left; < 0 when unknown */
	/* The task that just finished. */
	const char *id;
	const char *status; /* "ok", "task_error" or "infra_error" */
	const char *error;  /* NULL when none */
	double score;       /* NaN when none */
	double duration_s;
	int attempt;
} rlm_eval_progress;

typedef void (*rlm_eval_progress_fn)(void *ctx, const rlm_eval_progress *p);

/* Options of an eval: start from RLM_EVAL_OPTIONS_INIT (or rlm_eval_options_init). Fields are
 * only ever appended; struct_size tells the library which the caller's build has. */
typedef struct rlm_eval_options {
	unsigned struct_size;   /* sizeof(rlm_eval_options) of the caller's build */
	const char *tasks_path; /* required: the JSONL task file */
	const char *out_dir;    /* required: results and trajectories (made if missing) */
	/* > 0: tasks run at once (worker threads); 0: the pool's max_live when set, else 4
	 * (never more than max_live). */
	long concurrency;
	double task_timeout_s; /* > 0: each task's time limit (rlm_run_options.timeout_s) */
	const char *scorer;    /* scorer of tasks that name none; NULL: "exact" */
	long limit;            /* > 0: only the first `limit` tasks of the shard */
	/* shard_count > 0: run only the tasks whose id hashes to shard_index (rlm_eval_shard_of)
	 * and write results.shard-K-of-N.jsonl instead of results.jsonl. */
	long shard_index;
	long shard_count;
	long retries;                 /* >= 0: new attempts after an infra_error; INIT -1: 2 */
	int dry_run;                  /* check and plan only: nothing runs, nothing is written */
	double scorer_timeout_s;      /* > 0: a cmd: scorer's time limit; 0: 60 s */
	double acquire_timeout_s;     /* > 0: the longest wait for a sandbox; 0: 600 s */
	const rlm_pool_options *pool; /* NULL: defaults (see "Pool limits" in the README) */
	/* NULL, or a flag a signal handler or another thread sets to stop the eval: tasks in
	 * flight are cancelled and get no row (a resume redoes them), sandboxes are released,
	 * rows written are kept; rlm_eval_run returns within about a second. */
	volatile int *cancel;
	rlm_eval_progress_fn on_progress; /* called after every finished task, one at a time */
	void *progress_ctx;
	/* NULL, or an LLM in the caller's process (rlm_run_options.llm) that answers every task's
	 * turns and sub-calls; the config's llm and sub_llm sections are then not used. It is
	 * called from the eval's worker threads at once (concurrency of them, more with
	 * llm_query_batched), so it must be thread-safe. */
	rlm_llm_fn llm;
	void *llm_ctx;
} rlm_eval_options;

/* clang-format off */
#define RLM_EVAL_OPTIONS_INIT {.struct_size = sizeof(rlm_eval_options), .retries = -1}
/* clang-format on */

/* Zero-fills opts, stamps its struct_size and sets the INIT defaults. */
RLM_API void rlm_eval_options_init(rlm_eval_options *opts);

/* The state of an eval's tasks when it ended (rows kept from earlier runs included). */
typedef struct rlm_eval_summary {
	long total; /* tasks the eval covers (its shard, after limit) */
	long ok, task_error, infra_error;
	long missing;        /* tasks without a row: not run, or cancelled in flight */
	long kept;           /* rows kept from an earlier run */
	long to_run;         /* tasks this run set out to run */
	long finished;       /* tasks this run finished */
	long scored;         /* rows with a score */
	double mean_score;   /* NaN when no row has a score */
	double p50_s, p95_s; /* task time (duration_s) of the rows; 0 when none */
	long tokens_in, tokens_out, llm_calls;
	double wall_s;        /* this run */
	double tasks_per_min; /* tasks this run finished per minute of its wall time */
	int cancelled;        /* opts.cancel stopped it */
	/* The eval stopped early: a failure every task would hit (credentials, quota,
	 * configuration), the first tasks all failing with infra errors, or the results file
	 * failing to take a row. 0 when it did not; else that error's code, its message in
	 * stop_message. */
	int stop_code;
	char stop_message[RLM_ERROR_MESSAGE_MAX];
	int unusable;         /* stopped early before any task had finished ok or task_error */
	char *results_path;   /* owned by the summary */
	long workers;         /* tasks run at once (0 when nothing ran) */
	long max_live;        /* the pool's limits (0 when no pool was opened) */
	double creates_per_s; /* 0: no creation limit */
	char run_id[40];      /* the pool's run id (rlm-run label), "" when no pool was opened */
} rlm_eval_summary;

/* Runs an eval with cfg (copied: one copy per worker thread, one per task with options, one
 * for the pool). Returns 0 with *out set when the
 * eval ran, however its tasks ended (the summary says); RLM_EINVAL for a bad task file (the
 * message names the line) or bad options, RLM_ECONFIG for a bad config or task options,
 * RLM_EIO when out_dir cannot be written, and the preflight's error when the LLM plugin cannot
 * be opened or the first sandbox cannot be had (nothing ran). With dry_run, *out describes
 * what would run (to_run) and nothing is written. */
RLM_API int rlm_eval_run(const rlm_config *cfg, const rlm_eval_options *opts,
                         rlm_eval_summary **out, rlm_error *err);

RLM_API void rlm_eval_summary_free(rlm_eval_summary *summary);

/* Scores one answer. scorer is "exact" (trimmed, case-folded), "contains", "regex" (POSIX
 * extended, matched anywhere), "numeric" (0.75^|answer - expected|), "f1" (token F1) or
 * "cmd:COMMAND" (sh -c COMMAND gets {"task", "answer", "expected"} as JSON on stdin and
 * prints a number). expected_json is the task's expected value as JSON text; an array means
 * any of its items (the best score counts). task_json (may be NULL) is what a cmd: scorer
 * gets as "task"; timeout_s bounds it (<= 0: 60 s). RLM_EINVAL for an unknown scorer or a bad
 * pattern, RLM_ETIMEOUT when the command ran out of time, RLM_EBACKEND when it failed or
 * printed no number. */
RLM_API int rlm_eval_score(const char *scorer, const char *answer, const char *expected_json,
                           const char *task_json, double timeout_s, double *score, rlm_error *err);

/* 64-bit FNV-1a of len bytes. */
RLM_API uint64_t rlm_eval_fnv1a64(const void *data, size_t len);

/* The shard of a task id among count: rlm_eval_fnv1a64 of its UTF-8 bytes modulo count. */
RLM_API long rlm_eval_shard_of(const char *id, long count);

/* The shard this process runs, from the environment: SLURM_ARRAY_TASK_ID minus
 * SLURM_ARRAY_TASK_MIN (0 when unset) of SLURM_ARRAY_TASK_COUNT, else JOB_COMPLETION_INDEX
 * (Kubernetes Indexed Job) of `shards` (> 0). Sets *count to 0 when neither applies;
 * RLM_EINVAL when the variables are malformed or the index is out of range. */
RLM_API int rlm_eval_shard_from_env(long shards, long *index, long *count, rlm_error *err);

enum rlm_eval_report_format {
	RLM_EVAL_REPORT_TEXT = 0,
	RLM_EVAL_REPORT_JSON = 1,
	RLM_EVAL_REPORT_HTML = 2
};

/* A report over results: each path is an eval's out_dir (all its results*.jsonl files) or a
 * results file. Rows merge in the order given, the last row of an id winning. TEXT is the
 * summary `rlm eval report` prints; JSON is {"tasks", "status": {...}, "mean_score", ...,
 * "rows": [...]}; HTML is one self-contained page (inline CSS and SVG, no script, no network).
 * HTML links to trajectories are relative to link_dir (the directory the page will be written
 * to), or the paths as given when link_dir is NULL. Caller frees *out with rlm_free. */
RLM_API int rlm_eval_report(const char *const *paths, size_t npaths, int format,
                            const char *link_dir, char **out, rlm_error *err);

/* Writes one task line (len bytes, no newline): non-zero stops the generator with that code. */
typedef int (*rlm_eval_emit_fn)(void *ctx, const char *line, size_t len);

/* Options of a task generator: start from RLM_EVAL_GEN_OPTIONS_INIT. */
typedef struct rlm_eval_gen_options {
	unsigned struct_size;
	const char *family; /* "sniah" (needle in a haystack) or "count" (aggregation) */
	long n;             /* tasks */
	long length;        /* context characters; 0: 16000 */
	uint64_t seed;
	/* NULL: each context inline. Else each goes to context_dir/<id>.txt (made if missing)
	 * and the task names it as context_file, the path as given. */
	const char *context_dir;
	rlm_eval_emit_fn emit; /* required */
	void *emit_ctx;
} rlm_eval_gen_options;

/* clang-format off */
#define RLM_EVAL_GEN_OPTIONS_INIT {.struct_size = sizeof(rlm_eval_gen_options)}
/* clang-format on */

/* Generates n tasks of a family, deterministically from the seed: the same options give the
 * same bytes on every machine. */
RLM_API int rlm_eval_generate(const rlm_eval_gen_options *opts, rlm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* RLM_EVAL_H */
