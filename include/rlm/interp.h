/* rlm/interp.h - the interpreter: a persistent Python REPL in a sandbox, whatever the backend.
 *
 * rlm_interp_open loads the configured backend plugin, creates the sandbox and starts the
 * driver in it. Each rlm_interp_execute runs one cell in the same namespace. A failure of the
 * user's code (exception, timeout inside the code, a SUBMIT) is a successful call whose result
 * says so; only transport, provider, protocol and configuration faults are errors.
 * Handles are independent: different handles may be used from different threads at once; one
 * handle must not be used from two threads at once. */
#ifndef RLM_INTERP_H
#define RLM_INTERP_H

#include <stddef.h>

#include "config.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlm_interp rlm_interp;

/* An exception raised by the user's code. */
typedef struct rlm_exec_error {
	char *type;      /* "ZeroDivisionError", "TimeoutError", "SyntaxError", ... */
	char *message;   /* str(exception) */
	char *traceback; /* user frames only */
	char *line;      /* last traceback line, "ZeroDivisionError: division by zero" */
} rlm_exec_error;

/* The outcome of one cell. All strings are UTF-8 and owned by the result. stdout_text and
 * stderr_text are NUL-terminated for convenience but may hold NUL characters themselves:
 * stdout_len and stderr_len say how many bytes they hold. */
typedef struct rlm_result {
	char *stdout_text; /* capped: head and tail kept (see truncated) */
	char *stderr_text;
	size_t stdout_chars; /* full length in characters, before capping */
	size_t stderr_chars;
	int truncated;         /* 1 when stdout or stderr was capped */
	rlm_exec_error *error; /* NULL when the cell raised nothing */
	char *submit_json;     /* the SUBMITted object as JSON text, NULL when none */
	char *value;           /* repr of a trailing expression, NULL when none */
	int timed_out;         /* the cell hit its timeout */
	int state_lost;        /* the REPL was restarted: earlier variables are gone */
	double duration_ms;    /* wall time of the exchange, as the host saw it */
	unsigned host_calls;   /* llm_query and friends answered during the cell */
	size_t stdout_len;     /* bytes in stdout_text (it may contain NUL) */
	size_t stderr_len;     /* bytes in stderr_text */
	/* JSON object {name: repr} of the namespace's user variables after the cell (capped:
	 * 100 names, 200 characters each), when rlm_exec_options.locals asked for it; else NULL. */
	char *locals_json;
} rlm_result;

/* Answers a host call made by sandbox code (llm_query, llm_query_batched, rlm_query, or a
 * tool registered with rlm_interp_register_tool).
 * args_json/kwargs_json are the call's arguments. On success set *value_json (malloc'ed JSON
 * text, freed by rlm) and return 0; on failure set *error_message (malloc'ed, freed by rlm)
 * and return a negative rlm_status: the sandbox code then sees RuntimeError(message). */
typedef int (*rlm_call_handler)(void *ctx, const char *name, const char *args_json,
                                const char *kwargs_json, char **value_json, char **error_message);

/* Per-cell options: start from RLM_EXEC_OPTIONS_INIT (or rlm_exec_options_init) and set what
 * you need. struct_size tells the library which fields the caller's build has: fields are only
 * ever appended. */
typedef struct rlm_exec_options {
	unsigned struct_size;            /* sizeof(rlm_exec_options) of the caller's build */
	const char *vars_json;           /* JSON object name -> value injected first, or NULL */
	const char *const *output_names; /* NULL-terminated names for positional SUBMIT */
	double timeout_s;                /* <= 0: limits.execute_timeout_s */
	long max_output_chars;           /* <= 0: limits.max_output_chars */
	/* NULL: the interpreter's main namespace. Otherwise the name of a separate namespace,
	 * made empty on first use, where a child RLM runs without seeing or touching the
	 * parent's variables (buffers and VOLUME are shared). */
	const char *scope;
	/* 1: the result carries locals_json (costs a repr of each user variable; trajectories
	 * ask for it). */
	int locals;
} rlm_exec_options;

/* clang-format off */
#define RLM_EXEC_OPTIONS_INIT {.struct_size = sizeof(rlm_exec_options)}
/* clang-format on */

/* Zero-fills opts and stamps its struct_size, like RLM_EXEC_OPTIONS_INIT. */
RLM_API void rlm_exec_options_init(rlm_exec_options *opts);

/* Opens an interpreter on the backend cfg names ("backend"), starting its sandbox. The config
 * is copied; cfg may be freed afterwards. On failure nothing is left running. */
RLM_API int rlm_interp_open(const rlm_config *cfg, rlm_interp **out, rlm_error *err);

/* Runs code as one cell. vars_json may be NULL. *out is set on success; free it with
 * rlm_result_free. */
RLM_API int rlm_interp_execute(rlm_interp *interp, const char *code, const char *vars_json,
                               rlm_result **out, rlm_error *err);
RLM_API int rlm_interp_execute_ex(rlm_interp *interp, const char *code,
                                  const rlm_exec_options *opts, rlm_result **out, rlm_error *err);

/* Writes bytes to a path in the sandbox (relative paths: the sandbox's work directory), making
 * missing parent directories. */
RLM_API int rlm_interp_upload(rlm_interp *interp, const void *data, size_t len,
                              const char *remote_path, rlm_error *err);

/* Reads a sandbox file; *data is malloc'ed (free with rlm_free), NUL-terminated for
 * convenience (the NUL is not counted in *len). */
RLM_API int rlm_interp_download(rlm_interp *interp, const char *remote_path, void **data,
                                size_t *len, rlm_error *err);

/* Result of rlm_interp_run_command; free with rlm_command_output_free. */
typedef struct rlm_command_output {
	int exit_code; /* -signal when killed by a signal */
	int timed_out;
	char *stdout_data;
	size_t stdout_len;
	char *stderr_data;
	size_t stderr_len;
} rlm_command_output;

/* Runs argv (NULL-terminated) in the sandbox outside the REPL. RLM_ENOTSUP when the backend
 * cannot. */
RLM_API int rlm_interp_run_command(rlm_interp *interp, const char *const *argv, const char *cwd,
                                   double timeout_s, rlm_command_output **out, rlm_error *err);
RLM_API void rlm_command_output_free(rlm_command_output *out);

/* Interrupts the running cell from another thread (KeyboardInterrupt in user code). */
RLM_API int rlm_interp_interrupt(rlm_interp *interp, rlm_error *err);

/* Cancels what the interpreter is doing and will do: the running call (start, execute,
 * upload, download, run_command) returns RLM_ECANCELLED within about 100 ms on a backend of
 * ABI 1.2 (an older one is interrupted and stops at its deadline), and so does every later
 * one. Only rlm_interp_close is left to do, and it still tears the sandbox down. Safe from
 * any thread and from a signal handler (it only sets a flag). */
RLM_API void rlm_interp_cancel(rlm_interp *interp);

/* Makes the interpreter watch flag instead of a flag of its own, so one flag (set by a signal
 * handler, or shared by every interpreter of a run) cancels them all: when *flag is non-zero
 * the interpreter behaves as if rlm_interp_cancel had been called, and rlm_interp_cancel sets
 * *flag. NULL goes back to the interpreter's own flag. The flag must outlive the interpreter
 * or be unset first. */
RLM_API void rlm_interp_set_cancel_flag(rlm_interp *interp, volatile int *flag);

/* Replaces the user namespace with a fresh one (buffers are kept). */
RLM_API int rlm_interp_reset(rlm_interp *interp, rlm_error *err);

/* Frees the namespace of a scope (rlm_exec_options.scope) once its child is done; the next
 * cell in that scope starts empty. Dropping a scope that does not exist succeeds. RLM_EINVAL
 * for a bad name (1 to 64 characters of [A-Za-z0-9_.-]).
 *
 * Nested use: while a cell waits in a host call, the call handler may run cells in a scope on
 * the same interpreter (rlm_interp_execute_ex with opts->scope set), drop scopes, and nest
 * again from calls those cells make: rlm_query's child RLM runs this way. Then:
 * - a cell without a scope, or rlm_interp_reset, is RLM_EINVAL (the main namespace is busy);
 * - RLM_ENOTSUP when the backend lacks RLM_CAP_NESTED_EXECUTE, or the call came from a thread
 *   of the cell other than its main thread (the driver cannot run a child cell then);
 * - RLM_ETIMEOUT when the waiting cell has already ended (its own timeout ran out);
 * - a failure that needs the driver restarted (a child that ignores its timeout and an
 *   interrupt, a dead driver) returns RLM_ESTATE_LOST; the cell that made the call then ends
 *   with state_lost set, and the interpreter is restarted before the next cell. */
RLM_API int rlm_interp_drop_scope(rlm_interp *interp, const char *scope, rlm_error *err);

/* Sets the handler for host calls; without one, calls fail with "no LLM configured". */
RLM_API void rlm_interp_set_call_handler(rlm_interp *interp, rlm_call_handler fn, void *ctx);

/* Registers a host tool: sandbox code on every backend can then call name(*args, **kwargs),
 * which sends the arguments as JSON through the driver's host-call frames to fn (called with
 * name, on the thread running the cell, while the cell waits) and returns the JSON value fn
 * sets, or raises RuntimeError(message) when fn fails, as for llm_query. The name is
 * installed in every namespace (child scopes too) from the next cell on and re-installed after
 * each cell, whatever the code did to it; it is also refused as a variable name. description
 * (may be NULL) is one line for the model: rlm_run lists the tools of its interpreter in the
 * system prompt. A name registered again replaces the tool; fn NULL removes it (sandbox code
 * loses it from the next cell on, and a call that names it is refused). Both strings are
 * copied.
 * RLM_EINVAL for a name that is not an ASCII Python identifier of at most 64 characters, is a
 * keyword or a dunder, or is one of the driver's own names (SUBMIT, llm_query, ...); at most
 * 64 tools (RLM_EINVAL beyond). Must not be called while a cell runs. */
RLM_API int rlm_interp_register_tool(rlm_interp *interp, const char *name, const char *description,
                                     rlm_call_handler fn, void *ctx, rlm_error *err);

/* JSON object: backend, plugin file, capabilities, driver/python versions, backend status
 * (e.g. the isolation level the local backend reached). Caller frees with rlm_free. */
RLM_API char *rlm_interp_status_json(rlm_interp *interp);

/* Shuts the sandbox down and frees the handle. NULL is allowed. */
RLM_API void rlm_interp_close(rlm_interp *interp);

RLM_API void rlm_result_free(rlm_result *result);

/* The result as a JSON object: stdout, stderr, stdout_chars, stderr_chars, truncated, error
 * (null or {type, message, traceback, line}), submit, value, timed_out, state_lost,
 * duration_ms, host_calls. Caller frees with rlm_free. */
RLM_API char *rlm_result_to_json(const rlm_result *result);

#ifdef __cplusplus
}
#endif
#endif /* RLM_INTERP_H */
