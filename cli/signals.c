/* signals.c - the signal handlers of `rlm exec`, `rlm run` and `rlm smoke` (see signals.h).
 * A handler can only reach the process's globals, so the flag and the signal number are the
 * two file-scope variables of the command line. */
#include "signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile int cancel_flag;
static volatile sig_atomic_t first_signal;

static void say(const char *s)
{
	/* write(2) is async-signal-safe; what it returns changes nothing here. */
	ssize_t n = write(STDERR_FILENO, s, strlen(s));
	(void)n;
}

static void on_signal(int sig)
{
	if (first_signal) {
		say("rlm: second signal: exiting now (sandboxes may be left to gc)\n");
		_exit(128 + sig);
	}
	first_signal = sig;
	cancel_flag = 1;
	say(sig == SIGINT    ? "rlm: interrupted: closing the sandbox (again to exit at once)\n"
	    : sig == SIGTERM ? "rlm: terminated: closing the sandbox (again to exit at once)\n"
	                     : "rlm: hangup: closing the sandbox (again to exit at once)\n");
}

void cli_signals_install(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&sa.sa_mask, sigs[i]); /* one handler at a time: no torn first_signal */
	sa.sa_flags = 0;                         /* no SA_RESTART: blocking calls see EINTR */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		/* A signal ignored by whoever started us stays ignored (nohup, `cmd &` in a
		 * script): the user asked for the run to survive it. */
		struct sigaction old;
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

volatile int *cli_cancel_flag(void)
{
	return &cancel_flag;
}

int cli_signal_received(void)
{
	return first_signal;
}

int cli_signal_exit_status(void)
{
	return first_signal ? 128 + first_signal : 0;
}

const char *cli_signal_name(void)
{
	switch (first_signal) {
	case SIGINT: return "SIGINT";
	case SIGTERM: return "SIGTERM";
	case SIGHUP: return "SIGHUP";
	default: return "no signal";
	}
}
