/* bench_local.c - speed of the local backend, each figure beside its baseline in one run:
 *   (a) interpreter start (rlm_interp_open)     vs  a bare `python3 -c pass`
 *   (b) round trip of `x = 1` in a warm REPL    vs  (c) one fresh `python3 -c` per statement
 *                                               and (d) a minimal persistent Python loop
 *                                                   over a pipe (the floor)
 * Prints medians/p99 and the ratios against the targets. Usage: bench_local [--quick]. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_json.h"
#include "rlm/rlm.h"

/* The interpreter the local backend runs: every baseline uses the same binary. */
static char python[4096] = "python3";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	int i = (int)(p * (n - 1) + 0.5);
	return v[i];
}

/* Runs argv to completion with stdio on /dev/null; returns seconds taken. */
static double run_process(char *const argv[])
{
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		freopen("/dev/null", "r", stdin);
		freopen("/dev/null", "w", stdout);
		execv(python, argv);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "bench: %s failed\n", argv[0]);
		exit(1);
	}
	return now_s() - t0;
}

static void die(const char *what, const rlm_error *err)
{
	fprintf(stderr, "bench: %s: %s\n", what, err ? err->message : strerror(errno));
	exit(1);
}

/* Reads the interpreter path from the backend's status. */
static void find_python(rlm_config *cfg)
{
	rlm_interp *in;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(cfg, &in, &err))
		die("open", &err);
	char *status = rlm_interp_status_json(in);
	const char *key = "\"python\":\"";
	const char *p = status ? strstr(status, key) : NULL;
	if (p) {
		p += strlen(key);
		size_t n = strcspn(p, "\"");
		snprintf(python, sizeof(python), "%.*s", (int)n, p);
	}
	free(status);
	rlm_interp_close(in);
}

/* (a): median open time versus median bare interpreter start. */
static void bench_start(rlm_config *cfg, int n, double *ours, double *bare)
{
	double a[64], b[64];
	char *pass[] = {python, "-c", "pass", NULL};
	for (int i = 0; i < n; i++) {
		b[i] = run_process(pass);
		rlm_interp *in;
		rlm_error err = RLM_ERROR_INIT;
		double t0 = now_s();
		if (rlm_interp_open(cfg, &in, &err))
			die("open", &err);
		a[i] = now_s() - t0;
		rlm_interp_close(in);
	}
	*ours = pct(a, n, 0.5);
	*bare = pct(b, n, 0.5);
}

/* The floor, (d): a persistent Python loop that execs each line read from a pipe and answers
 * one line. */
struct floor_loop {
	pid_t pid;
	int to, from;
};

static void floor_start(struct floor_loop *f)
{
	int to[2], from[2];
	if (pipe(to) || pipe(from))
		die("pipe", NULL);
	f->pid = fork();
	if (f->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		execl(python, python, "-c",
		      "import sys\nns = {}\nr = sys.stdin.buffer\nw = sys.stdout.buffer\n"
		      "for line in r:\n    exec(line.decode(), ns)\n    w.write(b'ok\\n')\n"
		      "    w.flush()\n",
		      (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	f->to = to[1];
	f->from = from[0];
}

static double floor_once(struct floor_loop *f)
{
	char buf[16];
	double t0 = now_s();
	if (write(f->to, "x = 1\n", 6) != 6 || read(f->from, buf, sizeof(buf)) <= 0)
		die("floor loop", NULL);
	return now_s() - t0;
}

static void floor_stop(struct floor_loop *f)
{
	close(f->to);
	close(f->from);
	waitpid(f->pid, NULL, 0);
}

/* (b) and (d) sampled alternately, so both see the same machine load: p50/p99 of `x = 1`
 * in one warm interpreter, and p50 of the floor loop. */
static void bench_roundtrip(rlm_config *cfg, int n, double *p50, double *p99, double *floor_p50)
{
	rlm_interp *in;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(cfg, &in, &err))
		die("open", &err);
	struct floor_loop f;
	floor_start(&f);
	double *v = malloc(sizeof(double) * (size_t)n);
	double *w = malloc(sizeof(double) * (size_t)n);
	for (int i = 0; i < n; i++) {
		rlm_result *r;
		double t0 = now_s();
		if (rlm_interp_execute(in, "x = 1", NULL, &r, &err))
			die("execute", &err);
		v[i] = now_s() - t0;
		rlm_result_free(r);
		w[i] = floor_once(&f);
	}
	*p50 = pct(v, n, 0.5);
	*p99 = pct(v, n, 0.99);
	*floor_p50 = pct(w, n, 0.5);
	free(v);
	free(w);
	floor_stop(&f);
	rlm_interp_close(in);
}

/* (c): the stateless way: one fresh interpreter per statement; returns mean seconds. */
static double bench_stateless(int n)
{
	char *argv[] = {python, "-c", "x = 1", NULL};
	double total = 0;
	for (int i = 0; i < n; i++)
		total += run_process(argv);
	return total / n;
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	int n_exec = quick ? 300 : 2000, n_stateless = quick ? 100 : 2000, n_start = quick ? 5 : 20;
	signal(SIGPIPE, SIG_IGN);
	rlm_config *cfg;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) || rlm_config_apply_env(cfg, &err) ||
	    rlm_config_set(cfg, "backend", "local", &err))
		die("config", &err);
	find_python(cfg);
	double start_ours, start_bare, p50, p99;
	bench_start(cfg, n_start, &start_ours, &start_bare);
	double floor_p50;
	bench_roundtrip(cfg, n_exec, &p50, &p99, &floor_p50);
	double stateless = bench_stateless(n_stateless);
	printf("rlm local backend benchmark (%s), interpreter %s\n", quick ? "quick" : "full",
	       python);
	printf("(a) interpreter start      median %8.2f ms   bare python3 -c pass %8.2f ms   "
	       "ratio %.2fx (target <= 1.5x)\n",
	       start_ours * 1e3, start_bare * 1e3, start_ours / start_bare);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "start_open",
	                                       .label = "rlm_interp_open, median",
	                                       .value = start_ours * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "bare python3 -c pass",
	                                       .baseline = start_bare * 1e3,
	                                       .target = 1.5,
	                                       .target_op = "<=",
	                                       .plot = "start"});
	printf("(b) exec `x = 1` round trip p50 %8.3f ms   p99 %8.3f ms   (%d execs)\n", p50 * 1e3,
	       p99 * 1e3, n_exec);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "exec_x1_p99",
	                                       .label = "exec `x = 1` p99",
	                                       .value = p99 * 1e3,
	                                       .unit = "ms"});
	printf("(c) stateless python3 -c    mean %8.3f ms   per statement (%d runs)   "
	       "(c)/(b) %.0fx (target >= 50x)\n",
	       stateless * 1e3, n_stateless, stateless / p50);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "stateless_x1_mean",
	                                       .label = "python3 -c per cell",
	                                       .value = stateless * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "rlm exec `x = 1` p50",
	                                       .baseline = p50 * 1e3,
	                                       .target = 50,
	                                       .target_op = ">=",
	                                       .plot = "exec",
	                                       .series = "baseline",
	                                       .group = "x = 1"});
	printf("(d) floor: pipe echo loop   p50 %8.3f ms   (b)/(d) %.2fx (target <= 2x)\n",
	       floor_p50 * 1e3, p50 / floor_p50);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "exec_x1_p50",
	                                       .label = "rlm exec, C API, p50",
	                                       .value = p50 * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "floor: pipe loop, p50",
	                                       .baseline = floor_p50 * 1e3,
	                                       .target = 2,
	                                       .target_op = "<=",
	                                       .plot = "exec",
	                                       .group = "x = 1"});
	rlm_config_free(cfg);
	return 0;
}
