/* rlm/run.h - the RLM loop: a model answers a task by writing Python into a sandboxed REPL.
 *
 * rlm_run opens an interpreter on the configured backend, puts the task's context in it as the
 * variable `context` (never in the prompt), then turns: ask the LLM (config section `llm`),
 * run the ```repl / ```python blocks of its answer in order, show it their output, until a
 * block calls SUBMIT or limits.max_iterations runs out (then one last call asks for the
 * answer, and the result says fallback). Code in the sandbox can call llm_query,
 * llm_query_batched (answered by the `sub_llm` section, else by `llm`) and rlm_query (a child
 * RLM in the same sandbox, in a namespace of its own); those calls share one budget,
 * limits.max_llm_calls. The README's "The RLM loop" section documents every policy. */
#ifndef RLM_RUN_H
#define RLM_RUN_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "interp.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Depths reported one by one in rlm_run_usage.calls_by_depth; deeper calls are added to the
 * last slot. */
#define RLM_RUN_DEPTHS 8

/* What one finished turn reports to the progress callback. Times are wall-clock seconds. */
typedef struct rlm_run_iteration {
	int depth;     /* 0: the root RLM; n: a child started by rlm_query at depth n-1 */
	int iteration; /* 1-based */
	int max_iterations;
	int blocks;             /* code blocks executed this turn (0: the model got a nudge) */
	int submitted;          /* a block called SUBMIT */
	int fallback;           /* this was the last call after max_iterations ran out */
	double iteration_s;     /* the whole turn */
	double llm_s;           /* inside the LLM plugin's complete() for the turn's own call */
	double exec_s;          /* inside rlm_interp_execute for its blocks (host calls included) */
	long prompt_tokens;     /* of the turn's own call; -1 when the provider did not say */
	long completion_tokens; /* idem */
	long llm_calls_used;    /* budget (limits.max_llm_calls) used so far by the whole run */
	long llm_calls_max;
} rlm_run_iteration;

typedef void (*rlm_run_progress_fn)(void *ctx, const rlm_run_iteration *it);

/* An LLM in the caller's process (rlm_run_options.llm): answers one completion. msgs are the
 * conversation (n >= 1; for llm_query it is the one user message), model the model asked for
 * or NULL for the caller's default. On success set *text to the answer (UTF-8, allocated
 * with malloc or rlm_alloc, freed by rlm) and return 0; on failure fill err (message, and
 * http_status / request_id if any) and return a negative rlm_status. It may be called from
 * several threads at once (llm_query_batched), and is not interrupted by the run's cancel
 * flag or timeout: a slow callback delays them. */
typedef int (*rlm_llm_fn)(void *ctx, const rlm_llm_message *msgs, size_t n, const char *model,
                          char **text, rlm_error *err);

/* Options of one run; start from RLM_RUN_OPTIONS_INIT (or rlm_run_options_init). Every limit
 * left at its INIT value comes from cfg's `limits` section. struct_size tells the library
 * which fields the caller's build has: fields are only ever appended. */
typedef struct rlm_run_options {
	unsigned struct_size;     /* sizeof(rlm_run_options) of the caller's build */
	const char *task;         /* required: what the model must do */
	const char *context;      /* the context as text (UTF-8), or NULL */
	size_t context_len;       /* bytes of context; 0: strlen(context) */
	const char *context_file; /* or: a host file whose bytes are the context */
	/* JSONL trajectory written as the run goes; NULL: none. A path ending in '/' (or an
	 * existing directory) gets a file named rlm_<date>_<time>_<8 hex>.jsonl in it. At the
	 * end a summary goes beside it (rlm_run_result.summary_path). */
	const char *trajectory_path;
	long max_iterations;       /* > 0: overrides limits.max_iterations */
	long max_llm_calls;        /* > 0: overrides limits.max_llm_calls */
	long max_depth;            /* >= 0: overrides limits.max_depth (INIT sets -1) */
	long max_output_chars;     /* > 0: overrides limits.max_output_chars */
	double execute_timeout_s;  /* > 0: overrides limits.execute_timeout_s */
	double llm_call_timeout_s; /* > 0: overrides limits.llm_call_timeout_s */
	/* An open interpreter to run in (the caller keeps it; its call handler is replaced for
	 * the run and cleared after), or NULL: rlm_run opens one from cfg and closes it. */
	rlm_interp *interp;
	rlm_run_progress_fn on_iteration; /* called after every turn, children's included */
	void *progress_ctx;
	/* NULL, or a flag another thread or a signal handler sets to stop the run: the LLM call
	 * or cell in flight is abandoned (within about a second), the sandbox is released, and
	 * rlm_run returns RLM_ECANCELLED (the trajectory keeps the finished turns). The run's
	 * interpreter watches it (rlm_interp_set_cancel_flag; a caller's interp is set back to
	 * its own flag afterwards). */
	volatile int *cancel;
	/* > 0: the whole run's time limit in seconds. Every LLM call and cell gets at most what
	 * is left; once it is spent the run stops at the next step and rlm_run returns
	 * RLM_ETIMEOUT (the trajectory keeps the finished turns). */
	double timeout_s;
	/* NULL, or the LLM as a function in this process (a policy being trained, a test
	 * double): it answers the root's turns and every sub-call (llm_query,
	 * llm_query_batched, child RLMs), and the config's llm and sub_llm sections are not
	 * used (llm.model / sub_llm.model, if set, are passed as the model). llm_ctx is its
	 * first argument. */
	rlm_llm_fn llm;
	void *llm_ctx;
} rlm_run_options;

/* clang-format off */
#define RLM_RUN_OPTIONS_INIT {.struct_size = sizeof(rlm_run_options), .max_depth = -1}
/* clang-format on */

/* Zero-fills opts, stamps its struct_size and sets the INIT defaults, like
 * RLM_RUN_OPTIONS_INIT. */
RLM_API void rlm_run_options_init(rlm_run_options *opts);

/* LLM usage of a whole run, children included. */
typedef struct rlm_run_usage {
	long llm_calls;     /* every completion asked for (failed ones included) */
	long budget_calls;  /* those counted against limits.max_llm_calls */
	long budget_max;    /* limits.max_llm_calls of the run */
	long prompt_tokens; /* sums of what providers reported */
	long completion_tokens;
	long calls_by_depth[RLM_RUN_DEPTHS]; /* completions made at each depth (root turns: 0) */
} rlm_run_usage;

/* The outcome of a run. Strings are UTF-8, owned by the result. */
typedef struct rlm_run_result {
	char *answer;      /* the answer text, NULL when the run ended without one */
	char *submit_json; /* the SUBMITted object as JSON, NULL when the answer is a fallback */
	int fallback;      /* 1: max_iterations ran out and a last call produced the answer */
	int iterations;    /* turns of the root RLM (the fallback call not counted) */
	double duration_s;
	rlm_run_usage usage;
	char *trajectory_path; /* where the trajectory went, NULL when none */
	/* The summary sidecar beside it (run.jsonl -> run.summary.json: what
	 * rlm_run_result_to_json prints, with the time it ended), NULL when none. */
	char *summary_path;
} rlm_run_result;

/* Runs the loop to an answer. On success *out is set (free it with rlm_run_result_free),
 * also when the answer is a fallback or missing. Errors are infrastructure and provider
 * faults: no LLM configured or a bad `llm` section (RLM_ECONFIG), the root LLM call failing
 * (the plugin's code, e.g. RLM_EAUTH, RLM_ETIMEOUT, RLM_EBUDGET for a replay script that ran
 * out), the sandbox failing (RLM_EBACKEND, ...). What went wrong in user code never is: the
 * model sees it and the loop goes on. The trajectory, if any, keeps every finished turn, and
 * its summary sidecar says how the run ended (the error included). */
RLM_API int rlm_run(const rlm_config *cfg, const rlm_run_options *opts, rlm_run_result **out,
                    rlm_error *err);

RLM_API void rlm_run_result_free(rlm_run_result *result);

/* {"answer", "fallback", "submit", "iterations", "duration_s", "usage": {"llm_calls",
 * "budget_calls", "budget_max", "prompt_tokens", "completion_tokens", "calls_by_depth": []},
 * "error": null, "trajectory", "summary"}: the summary sidecar's fields (it adds "type" and
 * "timestamp", and "error" {code, message} for a run that failed). Caller frees with
 * rlm_free. */
RLM_API char *rlm_run_result_to_json(const rlm_run_result *result);

/* Where the summary of a trajectory file goes: "run.jsonl" -> "run.summary.json" (any other
 * name gets ".summary.json" appended). The one rule every reader uses. Caller frees with
 * rlm_free; NULL when out of memory. */
RLM_API char *rlm_trajectory_summary_path(const char *trajectory_path);

#ifdef __cplusplus
}
#endif
#endif /* RLM_RUN_H */
