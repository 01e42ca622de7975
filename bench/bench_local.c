/* bench_local.c - speed of the local backend, each figure beside its baseline in one run:
 *   (a) interpreter start (rlm_interp_open)     vs  a bare `python3 -c pass`
 *   (b) round trip of `x = 1` in a warm REPL    vs  (c) one fresh `python3 -c` per statement
 *                                               and (d) a minimal persistent Python loop
 *                                                   over a pipe (the floor)
 *   (e) open + one exec + close                 vs  a bare `python3 -c pass`, and again
 *       with backends.local.prestart (the sandbox started ahead is taken over)
 *   (f) close (rlm_interp_close)                vs  SIGKILL + waitpid of an idle python3
 *   (g) `rlm exec -c pass` (the CLI)            vs  a bare `python3 -c pass`
 * Prints medians/p99 and the ratios against the targets. Usage: bench_local [--quick]. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rlm/rlm.h"

#ifndef RLM_CLI_PATH
#define RLM_CLI_PATH "rlm"
#endif

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

/* Runs argv (argv[0] is the program's path) to completion with stdio on /dev/null; returns
 * seconds taken. */
static double run_process(char *const argv[])
{
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		freopen("/dev/null", "r", stdin);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execv(argv[0], argv);
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

/* (e) and (f), sampled alternately with their baselines: open + `pass` + close against a
 * bare interpreter start, and the close alone against ending an idle python3 child with
 * SIGKILL + waitpid (the least a close can do). */
static void bench_lifecycle(rlm_config *cfg, int n, double *cycle, double *cycle_bare,
                            double *close_p50, double *close_floor)
{
	double a[64], b[64], c[64], d[64];
	char *pass[] = {python, "-c", "pass", NULL};
	for (int i = 0; i < n; i++) {
		rlm_interp *in;
		rlm_result *r;
		rlm_error err = RLM_ERROR_INIT;
		b[i] = run_process(pass);
		double t0 = now_s();
		if (rlm_interp_open(cfg, &in, &err))
			die("open", &err);
		if (rlm_interp_execute(in, "pass", NULL, &r, &err))
			die("execute", &err);
		rlm_result_free(r);
		double t1 = now_s();
		rlm_interp_close(in);
		double t2 = now_s();
		a[i] = t2 - t0;
		c[i] = t2 - t1;

		struct floor_loop f;
		floor_start(&f);
		floor_once(&f); /* it is up and idle */
		t0 = now_s();
		kill(f.pid, SIGKILL);
		waitpid(f.pid, NULL, 0);
		d[i] = now_s() - t0;
		close(f.to);
		close(f.from);
	}
	*cycle = pct(a, n, 0.5);
	*cycle_bare = pct(b, n, 0.5);
	*close_p50 = pct(c, n, 0.5);
	*close_floor = pct(d, n, 0.5);
}

/* (g): the CLI end to end, `rlm exec -c pass` with the same interpreter, against a bare
 * interpreter start, sampled alternately. */
static void bench_cli(int n, double *cli, double *bare)
{
	double a[64], b[64];
	char set[4200];
	snprintf(set, sizeof(set), "backends.local.python=\"%s\"", python);
	char *rlm_argv[] = {RLM_CLI_PATH, "exec", "--set", set, "-c", "pass", NULL};
	char *pass[] = {python, "-c", "pass", NULL};
	for (int i = 0; i < n; i++) {
		b[i] = run_process(pass);
		a[i] = run_process(rlm_argv);
	}
	*cli = pct(a, n, 0.5);
	*bare = pct(b, n, 0.5);
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
	double cycle, cycle_bare, close_p50, close_floor, cli, cli_bare;
	bench_lifecycle(cfg, n_start, &cycle, &cycle_bare, &close_p50, &close_floor);
	bench_cli(n_start, &cli, &cli_bare);
	double pre_cycle, pre_bare, pre_close, pre_close_floor;
	if (rlm_config_set(cfg, "backends.local.prestart", "true", &err))
		die("config", &err);
	bench_lifecycle(cfg, n_start, &pre_cycle, &pre_bare, &pre_close, &pre_close_floor);
	printf("rlm local backend benchmark (%s), interpreter %s\n", quick ? "quick" : "full",
	       python);
	printf("(a) interpreter start      median %8.2f ms   bare python3 -c pass %8.2f ms   "
	       "ratio %.2fx (target <= 1.5x)\n",
	       start_ours * 1e3, start_bare * 1e3, start_ours / start_bare);
	printf("(b) exec `x = 1` round trip p50 %8.3f ms   p99 %8.3f ms   (%d execs)\n", p50 * 1e3,
	       p99 * 1e3, n_exec);
	printf("(c) stateless python3 -c    mean %8.3f ms   per statement (%d runs)   "
	       "(c)/(b) %.0fx (target >= 50x)\n",
	       stateless * 1e3, n_stateless, stateless / p50);
	printf("(d) floor: pipe echo loop   p50 %8.3f ms   (b)/(d) %.2fx (target <= 2x)\n",
	       floor_p50 * 1e3, p50 / floor_p50);
	printf("(e) open + exec + close     median %8.2f ms   bare python3 -c pass %8.2f ms   "
	       "ratio %.2fx (target <= 1.2x)\n",
	       cycle * 1e3, cycle_bare * 1e3, cycle / cycle_bare);
	printf("(e') the same, prestart     median %8.2f ms   bare python3 -c pass %8.2f ms   "
	       "ratio %.2fx (target <= 1.2x)\n",
	       pre_cycle * 1e3, pre_bare * 1e3, pre_cycle / pre_bare);
	printf("(f) close                   median %8.2f ms   kill+wait idle python3 %6.2f ms   "
	       "ratio %.2fx (target < 2 ms)\n",
	       close_p50 * 1e3, close_floor * 1e3, close_p50 / close_floor);
	printf("(g) rlm exec -c pass        median %8.2f ms   bare python3 -c pass %8.2f ms   "
	       "ratio %.2fx (target <= 1.3x)\n",
	       cli * 1e3, cli_bare * 1e3, cli / cli_bare);
	rlm_config_free(cfg);
	return 0;
}
