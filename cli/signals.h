/* signals.h - SIGINT, SIGTERM and SIGHUP stop a command cleanly: the first one sets a flag that
 * every interpreter and rlm_run watch (they return RLM_ECANCELLED), the command closes what it
 * opened and exits 128 + the signal; a second one exits at once. */
#ifndef RLM_CLI_SIGNALS_H
#define RLM_CLI_SIGNALS_H

/* Installs the handlers (no SA_RESTART: blocking calls return EINTR). */
void cli_signals_install(void);

/* The flag the handlers set: give it to rlm_interp_set_cancel_flag and
 * rlm_run_options.cancel. It lives as long as the process. */
volatile int *cli_cancel_flag(void);

/* The first signal received, 0 when none. */
int cli_signal_received(void);

/* "SIGINT", "SIGTERM" or "SIGHUP": the first signal received ("no signal" when none). */
const char *cli_signal_name(void);

/* 128 + the first signal received; 0 when none. */
int cli_signal_exit_status(void);

#endif
