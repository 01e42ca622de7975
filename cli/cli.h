/* cli.h - what the `rlm` commands share: exit statuses, usage errors, the configuration built
 * from the command line, the mapping of rlm errors to exit statuses, and the commands' entry
 * points. */
#ifndef RLM_CLI_H
#define RLM_CLI_H

#include "rlm/rlm.h"

/* Exit statuses of every command; a signal that stopped a run gives 128 + its number. */
enum {
	EXIT_OK = 0,     /* done */
	EXIT_FAILED = 1, /* a cell did not complete (exec), no answer (run), a smoke step failed */
	EXIT_USAGE = 2,  /* bad arguments, bad input, or a configuration error */
	EXIT_INFRA = 3   /* backend, provider or infrastructure failure */
};

/* Prints "rlm CMD: <message>" and a pointer to `rlm CMD --help` on stderr; returns
 * EXIT_USAGE. cmd is "" for the top level. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same for bad input (a file that cannot be read, code that is not text): no pointer to
 * the help. */
int cli_input_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The options every configurable command takes (also before the command name). */
struct cli_config_args {
	const char *backend;     /* --backend NAME */
	const char *config_file; /* --config FILE */
	const char **sets;       /* --set KEY=VALUE, in order */
	int nsets;
};

/* Takes the config option at argv[*i] (--backend, --config or --set, with its value, moving
 * *i past it): 1 when it took one, 0 when argv[*i] is another option, -1 when the value is
 * missing (a usage error is printed). a->sets must have room for argc entries. */
int cli_take_config_option(const char *cmd, int argc, char **argv, int *i,
                           struct cli_config_args *a);

/* Builds the configuration in two steps so a command can set keys of its own between them
 * (later layers win): cli_config_open loads defaults, the file, the environment and
 * --backend; cli_config_finish applies the --set overrides and validates. Both print what
 * went wrong and return an exit status; on failure cli_config_finish frees *cfg. */
int cli_config_open(const char *cmd, const struct cli_config_args *a, rlm_config **out);
int cli_config_finish(const char *cmd, const struct cli_config_args *a, rlm_config **cfg);
/* --llm, --model and --script of the commands that run an RLM (run, eval). */
struct cli_llm_args {
	const char *llm;    /* sets llm.provider */
	const char *model;  /* sets llm.model */
	const char *script; /* sets llm.script, and llm.provider=replay when none is set */
};
/* cli_config_open, then the llm keys of l (may be NULL), then cli_config_finish. */
int cli_config_build(const char *cmd, const struct cli_config_args *a, const struct cli_llm_args *l,
                     rlm_config **out);
/* Sets one key from the command line (value as rlm_config_set takes it); prints on error. */
int cli_config_set(const char *cmd, rlm_config *cfg, const char *key, const char *value);

/* The exit status for an error: EXIT_USAGE for configuration and input faults (missing
 * credentials included), 128 + the signal for a run stopped by one, else EXIT_INFRA. */
int cli_exit_for_error(const rlm_error *err);
/* Makes err say rc when the call that returned rc left err empty (a plugin that passed a code
 * on without setting the error): the exit status and the message then still fit. */
void cli_error_from_rc(rlm_error *err, int rc);

/* Prints "rlm CMD: WHAT: message [CODE]" and returns cli_exit_for_error. */
int cli_report(const char *cmd, const char *what, const rlm_error *err);

/* Entry points: argv holds the command's own arguments (global options first). */
int cli_exec(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_backends(int argc, char **argv);
int cli_plugins(int argc, char **argv);
int cli_smoke(int argc, char **argv);
int rlm_cli_view(int argc, char **argv); /* view.c */
int rlm_cli_eval(int argc, char **argv); /* eval.c */
int rlm_cli_mcp(int argc, char **argv);  /* mcp/mcp_main.c */

#endif
