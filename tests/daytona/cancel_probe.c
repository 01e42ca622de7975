/* cancel_probe.c - cancels an interpreter from another thread while a cell, a command or its
 * start runs, and says how long the backend took to give up: test_faults.py's oracle for the
 * ABI 1.2 cancel flags.
 *
 *	cancel_probe exec|command|start [--set key.path=value]...
 *
 * exec, command: opens an interpreter (config from the environment and the --set assignments)
 * and starts `time.sleep(60)` as a cell or `sleep 60` as a command, with a 120 s timeout.
 * start: opens a pool (one sandbox, none warm) and acquires an interpreter from it, so the
 * sandbox is being created. Then it waits for a line on stdin (the caller sends it once the
 * fake has seen the work start), cancels (rlm_interp_cancel, rlm_pool_cancel), closes, and
 * prints one JSON line:
 *	{"rc": N, "status": "RLM_ECANCELLED", "message": "...", "after_cancel_s": S, "close_s": S}
 * Exit status 0 when it got that far, 2 for a usage or setup error. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rlm/rlm.h"

enum mode { MODE_EXEC, MODE_COMMAND, MODE_START };

struct work {
	enum mode mode;
	rlm_interp *interp;
	rlm_pool *pool;
	int rc;
	rlm_error err;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct work *w = arg;

	if (w->mode == MODE_START) {
		rlm_interp *in = NULL;

		w->rc = rlm_pool_acquire(w->pool, 120, &in, &w->err);
		if (in)
			rlm_pool_release(w->pool, in, 0);
	} else if (w->mode == MODE_COMMAND) {
		const char *argv[] = {"sleep", "60", NULL};
		rlm_command_output *out = NULL;

		w->rc = rlm_interp_run_command(w->interp, argv, NULL, 120, &out, &w->err);
		rlm_command_output_free(out);
	} else {
		rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
		rlm_result *res = NULL;

		opts.timeout_s = 120;
		w->rc = rlm_interp_execute_ex(w->interp, "import time\ntime.sleep(60)", &opts, &res,
		                              &w->err);
		rlm_result_free(res);
	}
	return NULL;
}

/* The message as a JSON string body: quotes, backslashes and control bytes escaped. */
static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

int main(int argc, char **argv)
{
	struct work w = {.err = RLM_ERROR_INIT};
	rlm_config *cfg = NULL;
	pthread_t th;
	char line[16];
	double cancelled, returned;

	if (argc < 2 ||
	    (strcmp(argv[1], "exec") && strcmp(argv[1], "command") && strcmp(argv[1], "start"))) {
		fprintf(stderr,
		        "usage: cancel_probe exec|command|start [--set key.path=value]...\n");
		return 2;
	}
	w.mode = !strcmp(argv[1], "start")     ? MODE_START
	         : !strcmp(argv[1], "command") ? MODE_COMMAND
	                                       : MODE_EXEC;
	if (rlm_config_new(&cfg, &w.err) || rlm_config_apply_env(cfg, &w.err))
		goto setup_failed;
	for (int i = 2; i + 1 < argc; i += 2)
		if (strcmp(argv[i], "--set") || rlm_config_set_assignment(cfg, argv[i + 1], &w.err))
			goto setup_failed;
	if (w.mode == MODE_START) {
		rlm_pool_options po = RLM_POOL_OPTIONS_INIT;
		char limiter[4096];

		/* The creation-rate limiter's lock file in the test's data dir, not the user's. */
		if (getenv("XDG_DATA_HOME")) {
			snprintf(limiter, sizeof(limiter), "%s/limiter", getenv("XDG_DATA_HOME"));
			po.limiter_dir = limiter;
		}
		po.max_live = 1;
		po.warm = 0;
		if (rlm_pool_open(cfg, &po, &w.pool, &w.err))
			goto setup_failed;
	} else if (rlm_interp_open(cfg, &w.interp, &w.err)) {
		goto setup_failed;
	}
	rlm_config_free(cfg);
	printf("started\n");
	fflush(stdout);
	if (pthread_create(&th, NULL, run, &w)) {
		fprintf(stderr, "cancel_probe: no thread\n");
		return 2;
	}
	if (!fgets(line, sizeof(line), stdin)) /* the caller says when the work is under way */
		fprintf(stderr, "cancel_probe: stdin closed; cancelling now\n");
	cancelled = now_s();
	if (w.pool)
		rlm_pool_cancel(w.pool);
	else
		rlm_interp_cancel(w.interp);
	pthread_join(th, NULL);
	returned = now_s();
	if (w.pool)
		rlm_pool_close(w.pool);
	else
		rlm_interp_close(w.interp);
	printf("{\"rc\": %d, \"status\": \"%s\", \"message\": ", w.rc, rlm_status_name(w.rc));
	print_json_string(w.err.message);
	printf(", \"after_cancel_s\": %.3f, \"close_s\": %.3f}\n", returned - cancelled,
	       now_s() - returned);
	return 0;

setup_failed:
	fprintf(stderr, "cancel_probe: %s\n", w.err.message);
	rlm_config_free(cfg);
	return 2;
}
