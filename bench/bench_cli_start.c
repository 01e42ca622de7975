/* bench_cli_start.c - what a whole `rlm` process costs, each figure beside its baseline in one
 * run (the commands alternate, so load on the machine hits both alike):
 *   (a) `rlm exec -c pass` on the local backend   vs  a bare `python3 -c pass` (target <= 1.3x)
 *   (b) `rlm version` (load, link, exit)           vs  `/bin/true`
 * python3 is the interpreter the local backend runs (found the way bench_local finds it: from
 * the backend's status), so the baseline starts the same binary the sandbox does.
 * Usage: bench_cli_start [--runs N] [--rlm PATH]   (default 50 runs, the rlm beside this bench) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "bench_json.h"
#include "rlm/rlm.h"

extern char **environ;

#define TARGET_EXEC_RATIO 1.3

/* Runs argv to completion with stdio on /dev/null; returns the seconds it took. A failure
 * ends the bench: a figure over a command that did not work would measure nothing. */
static double run_process(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int fd = 0; fd < 3; fd++)
		posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
	double t0 = now_s();
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	int st = 0;
	if (rc || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "bench_cli_start: %s %s failed (%s)\n", argv[0], argv[1],
		        rc ? strerror(rc) : "non-zero exit");
		exit(1);
	}
	return now_s() - t0;
}

/* The interpreter the local backend runs, from its status ("python":"..."). */
static void find_python(char *out, size_t size)
{
	rlm_config *cfg = NULL;
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) || rlm_interp_open(cfg, &in, &err)) {
		fprintf(stderr, "bench_cli_start: opening a local interpreter: %s\n", err.message);
		exit(1);
	}
	char *status = rlm_interp_status_json(in);
	const char *key = "\"python\":\"";
	const char *p = status ? strstr(status, key) : NULL;
	if (!p) {
		fprintf(stderr, "bench_cli_start: no python in the local backend's status\n");
		exit(1);
	}
	p += strlen(key);
	snprintf(out, size, "%.*s", (int)strcspn(p, "\""), p);
	rlm_free(status);
	rlm_interp_close(in);
	rlm_config_free(cfg);
}

/* Median seconds of a and of b over runs rounds, each round one of each. */
static void measure_pair(char *const a[], char *const b[], int runs, double *ma, double *mb)
{
	double *ta = calloc((size_t)runs, sizeof(double));
	double *tb = calloc((size_t)runs, sizeof(double));
	if (!ta || !tb) {
		fprintf(stderr, "bench_cli_start: out of memory\n");
		exit(1);
	}
	run_process(a); /* warm the page cache for both */
	run_process(b);
	for (int i = 0; i < runs; i++) {
		ta[i] = run_process(a);
		tb[i] = run_process(b);
	}
	*ma = bench_median(ta, runs);
	*mb = bench_median(tb, runs);
	free(ta);
	free(tb);
}

int main(int argc, char **argv)
{
	int runs = 50;
	char rlm[PATH_MAX] = "", python[PATH_MAX];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rlm") && i + 1 < argc)
			snprintf(rlm, sizeof(rlm), "%s", argv[++i]);
		else {
			fprintf(stderr, "usage: bench_cli_start [--runs N] [--rlm PATH]\n");
			return 2;
		}
	}
	if (runs < 1)
		runs = 1;
	if (!*rlm) {
		/* The build tree's rlm: build/bench/bench_cli_start -> build/rlm. */
		char self[PATH_MAX - 16];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0) {
			fprintf(stderr, "bench_cli_start: /proc/self/exe: %s\n", strerror(errno));
			return 1;
		}
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		*slash = '\0';
		snprintf(rlm, sizeof(rlm), "%s/../rlm", self);
	}
	find_python(python, sizeof(python));

	char *exec_rlm[] = {rlm, "exec", "-c", "pass", NULL};
	char *exec_py[] = {python, "-c", "pass", NULL};
	char *version_rlm[] = {rlm, "version", NULL};
	char *version_true[] = {"/bin/true", "version", NULL};
	double e_rlm, e_py, v_rlm, v_true;
	measure_pair(exec_rlm, exec_py, runs, &e_rlm, &e_py);
	measure_pair(version_rlm, version_true, runs, &v_rlm, &v_true);

	printf("bench_cli_start: medians of %d runs, commands alternating\n", runs);
	printf("  (a) rlm exec -c pass (local)   %8.2f ms\n", e_rlm * 1e3);
	printf("      %s -c pass %*s%8.2f ms\n", python,
	       (int)(strlen(python) < 15 ? 15 - strlen(python) : 0), "", e_py * 1e3);
	printf("      ratio %.2fx (target <= %.1fx): %s\n", e_rlm / e_py, TARGET_EXEC_RATIO,
	       e_rlm / e_py <= TARGET_EXEC_RATIO ? "met" : "NOT met");
	printf("  (b) rlm version                %8.2f ms\n", v_rlm * 1e3);
	printf("      /bin/true                  %8.2f ms (process floor; rlm's own start %.2f "
	       "ms)\n",
	       v_true * 1e3, (v_rlm - v_true) * 1e3);
	bench_json_emit(&(struct bench_figure){.bench = "bench_cli_start",
	                                       .metric = "exec_pass",
	                                       .label = "rlm exec -c pass (CLI), median",
	                                       .value = e_rlm * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "bare python3 -c pass",
	                                       .baseline = e_py * 1e3,
	                                       .target = TARGET_EXEC_RATIO,
	                                       .target_op = "<=",
	                                       .plot = "start"});
	bench_json_emit(&(struct bench_figure){.bench = "bench_cli_start",
	                                       .metric = "version_start",
	                                       .label = "rlm version, median",
	                                       .value = v_rlm * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "/bin/true",
	                                       .baseline = v_true * 1e3});
	return 0;
}
