/* bench_local.c - speed of the local backend, each figure beside its baseline in one run:
 *   (a) interpreter start (rlm_interp_open)     vs  a bare `python3 -c pass`
 *   (b) round trip of `x = 1` in a warm REPL    vs  (c) one fresh `python3 -c` per statement
 *                                               and (d) a minimal persistent Python exec
 *                                                   loop over a pipe driven from C, (d') the
 *                                                   same loop driven from Python (the floor
 *                                                   issue 15 sets its target against)
 *   (e) round trip of a 10 KB print             vs  (f), (f') the same cell in both floors
 *   (b0), (e0): (b) and (e) again with backends.local.spin_us=0 (the host never polls before
 *       it sleeps), each beside both floors sampled in the same loop
 *   (g) open + one exec + close                 vs  a bare `python3 -c pass`, and again
 *       with backends.local.prestart (the sandbox started ahead is taken over)
 *   (h) close (rlm_interp_close)                vs  SIGKILL + waitpid of an idle python3
 * (`rlm exec -c pass` against `python3 -c pass` is bench_cli_start's.)
 * Prints medians/p99 and the ratios against the targets. Usage: bench_local [--quick] [--pin].
 * --pin runs (b), (d), (e) and (f) with the bench, its driver and the floor on one CPU: a round
 * trip then costs the CPU work of both ends, without the cross-CPU wake-ups that make the
 * floor bimodal on a small machine (about 10 us on one CPU, 45 us across two). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, sched_getcpu */
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "bench_json.h"
#include "rlm/rlm.h"

/* The interpreter the local backend runs: every baseline uses the same binary. */
static char python[4096] = "python3";

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
	*ours = bench_pct(a, n, 0.5);
	*bare = bench_pct(b, n, 0.5);
}

/* The floor: the least a persistent REPL over a pipe can do per cell, with the same work as a
 * cell of ours: read the code, exec it in one namespace (compiling it, as we do), let its output
 * reach the host, and answer an end-of-cell frame. Output goes straight into the answer pipe
 * (no capture, no caps, no JSON): a 10 KB print is 10 KB on the pipe plus the frame. */
struct floor_loop {
	pid_t pid;
	int to, from;
	char *buf;
	size_t cap;
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
		      "for line in r:\n    exec(line.decode(), ns)\n    sys.stdout.flush()\n"
		      "    w.write(b'\\x1e\\n')\n    w.flush()\n",
		      (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	f->to = to[1];
	f->from = from[0];
	f->cap = 1 << 16;
	if (!(f->buf = malloc(f->cap)))
		die("malloc", NULL);
}

/* One cell of the floor: writes line (code and LF), reads until the end-of-cell frame; returns
 * the seconds taken and the bytes of output that came with it. */
static double floor_once(struct floor_loop *f, const char *line, size_t *out_len)
{
	size_t len = strlen(line), got = 0;
	double t0 = now_s();
	if (write(f->to, line, len) != (ssize_t)len)
		die("floor loop", NULL);
	while (got < 2 || f->buf[got - 2] != 0x1e || f->buf[got - 1] != '\n') {
		if (got == f->cap)
			die("floor loop: answer too long", NULL);
		ssize_t n = read(f->from, f->buf + got, f->cap - got);
		if (n <= 0)
			die("floor loop", NULL);
		got += (size_t)n;
	}
	double t = now_s() - t0;
	*out_len = got - 2;
	return t;
}

static void floor_stop(struct floor_loop *f)
{
	close(f->to);
	close(f->from);
	waitpid(f->pid, NULL, 0);
	free(f->buf);
}

/* The floor: the same loop driven from a Python host (what a Python framework's
 * persistent REPL costs at the least). A control process runs the loop as its child and, for
 * each code line we send it, times one round trip with time.perf_counter() and answers
 * "seconds bytes". Sampled alternately with ours like the C-driven floor. */
static const char py_host[] =
        "import os, subprocess, sys, time\n"
        "loop = ('import sys\\nns = {}\\nr = sys.stdin.buffer\\nw = sys.stdout.buffer\\n'\n"
        "        'for line in r:\\n    exec(line.decode(), ns)\\n    sys.stdout.flush()\\n'\n"
        "        '    w.write(b\"\\\\x1e\\\\n\")\\n    w.flush()\\n')\n"
        "p = subprocess.Popen([sys.executable, '-c', loop], stdin=subprocess.PIPE,\n"
        "                     stdout=subprocess.PIPE, bufsize=0)\n"
        "if os.environ.get('RLM_BENCH_HOST_CPU'):\n"
        "    os.sched_setaffinity(0, {int(os.environ['RLM_BENCH_HOST_CPU'])})\n"
        "to, frm = p.stdin.fileno(), p.stdout.fileno()\n"
        "for line in sys.stdin.buffer:\n"
        "    t0 = time.perf_counter()\n"
        "    os.write(to, line)\n"
        "    buf = b''\n"
        "    while not buf.endswith(b'\\x1e\\n'):\n"
        "        chunk = os.read(frm, 65536)\n"
        "        if not chunk:\n"
        "            sys.exit('the loop died')\n"
        "        buf += chunk\n"
        "    t = time.perf_counter() - t0\n"
        "    sys.stdout.write('%.9f %d\\n' % (t, len(buf) - 2))\n"
        "    sys.stdout.flush()\n";

static void pyfloor_start(struct floor_loop *f)
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
		execl(python, python, "-c", py_host, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	f->to = to[1];
	f->from = from[0];
	f->cap = 256;
	if (!(f->buf = malloc(f->cap)))
		die("malloc", NULL);
}

/* One round trip as the Python host timed it; *out_len: the output bytes it saw. */
static double pyfloor_once(struct floor_loop *f, const char *line, size_t *out_len)
{
	size_t len = strlen(line), got = 0;
	if (write(f->to, line, len) != (ssize_t)len)
		die("python-driven floor", NULL);
	while (got == 0 || f->buf[got - 1] != '\n') {
		if (got + 1 >= f->cap)
			die("python-driven floor: answer too long", NULL);
		ssize_t n = read(f->from, f->buf + got, f->cap - 1 - got);
		if (n <= 0)
			die("python-driven floor", NULL);
		got += (size_t)n;
	}
	f->buf[got] = '\0';
	double t;
	if (sscanf(f->buf, "%lf %zu", &t, out_len) != 2)
		die("python-driven floor: bad answer", NULL);
	return t;
}

/* One workload of the round-trip comparison: the cell, and the output it must produce. */
struct cell {
	const char *code;
	size_t out_len;
	double p50, p99, floor_p50, pyfloor_p50;
};

/* Where the round trips run. The scheduler decides by itself whether two processes that
 * wake each other share a CPU (cheap wake-ups, no parallelism) or not (each wake-up crosses
 * CPUs: on a VM an interrupt to a halted CPU, tens of microseconds), and it decides
 * differently for a light loop and a busy one, so unpinned figures mostly measure that
 * choice. SPLIT (the default) puts every host (this bench, the Python floor's host) on one
 * CPU and every child (our driver, both floor loops) on another: the same for both sides,
 * and the case of a host and its sandbox running in parallel. ONE puts everything on one
 * CPU: a round trip then costs the CPU work of both ends. FREE leaves it to the scheduler. */
enum placement { PLACE_SPLIT, PLACE_ONE, PLACE_FREE };
static const char *const placement_names[] = {"host and children on two CPUs",
                                              "everything on one CPU", "unpinned"};
static int host_cpu = -1, child_cpu = -1; /* two CPUs this process may run on */

static void find_cpus(void)
{
	cpu_set_t all;
	if (sched_getaffinity(0, sizeof(all), &all) != 0)
		return;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &all))
			continue;
		if (host_cpu < 0)
			host_cpu = i;
		else if (child_cpu < 0)
			child_cpu = i;
	}
}

static void run_on(int cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		die("sched_setaffinity", NULL);
}

/* Our exec and the floor's, sampled alternately so both see the same machine load: p50/p99 of
 * the cell in one warm interpreter, and p50 of the same cell in the floor loop. The output is
 * checked on both sides, so neither can win by doing less. */
static void bench_roundtrip(rlm_config *cfg, int n, enum placement place, struct cell *c)
{
	rlm_interp *in;
	rlm_error err = RLM_ERROR_INIT;
	cpu_set_t all;
	bool pinned =
	        place != PLACE_FREE && host_cpu >= 0 && (place == PLACE_ONE || child_cpu >= 0);
	/* The driver and the floors are forked from here: they inherit the mask. */
	if (pinned) {
		if (sched_getaffinity(0, sizeof(all), &all))
			die("sched_getaffinity", NULL);
		run_on(place == PLACE_ONE ? host_cpu : child_cpu);
		if (place == PLACE_SPLIT) {
			char cpu[16];
			snprintf(cpu, sizeof(cpu), "%d", host_cpu);
			setenv("RLM_BENCH_HOST_CPU", cpu, 1);
		}
	}
	if (rlm_interp_open(cfg, &in, &err))
		die("open", &err);
	struct floor_loop f, pf;
	floor_start(&f);
	pyfloor_start(&pf);
	unsetenv("RLM_BENCH_HOST_CPU");
	if (pinned && place == PLACE_SPLIT)
		run_on(host_cpu);
	char line[256];
	snprintf(line, sizeof(line), "%s\n", c->code);
	double *v = malloc(sizeof(double) * (size_t)n);
	double *w = malloc(sizeof(double) * (size_t)n);
	double *y = malloc(sizeof(double) * (size_t)n);
	if (!v || !w || !y)
		die("malloc", NULL);
	for (int i = 0; i < n; i++) {
		rlm_result *r;
		size_t floor_out;
		double t0 = now_s();
		if (rlm_interp_execute(in, c->code, NULL, &r, &err))
			die("execute", &err);
		v[i] = now_s() - t0;
		if (r->error || r->stdout_len != c->out_len) {
			fprintf(stderr, "bench: `%s` printed %zu bytes, expected %zu\n", c->code,
			        r->stdout_len, c->out_len);
			exit(1);
		}
		rlm_result_free(r);
		w[i] = floor_once(&f, line, &floor_out);
		if (floor_out != c->out_len) {
			fprintf(stderr,
			        "bench: the floor printed %zu bytes for `%s`, expected %zu\n",
			        floor_out, c->code, c->out_len);
			exit(1);
		}
		y[i] = pyfloor_once(&pf, line, &floor_out);
		if (floor_out != c->out_len) {
			fprintf(stderr,
			        "bench: the Python-driven floor printed %zu bytes for `%s`, "
			        "expected "
			        "%zu\n",
			        floor_out, c->code, c->out_len);
			exit(1);
		}
	}
	c->p50 = bench_pct(v, n, 0.5);
	c->p99 = bench_pct(v, n, 0.99);
	c->floor_p50 = bench_pct(w, n, 0.5);
	c->pyfloor_p50 = bench_pct(y, n, 0.5);
	free(v);
	free(w);
	free(y);
	/* The Python host was forked after the C floor and holds its pipe ends: it goes first. */
	floor_stop(&pf);
	floor_stop(&f);
	rlm_interp_close(in);
	if (pinned)
		sched_setaffinity(0, sizeof(all), &all);
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
		size_t idle_out;
		floor_once(&f, "pass\n", &idle_out); /* it is up and idle */
		t0 = now_s();
		kill(f.pid, SIGKILL);
		waitpid(f.pid, NULL, 0);
		d[i] = now_s() - t0;
		close(f.to);
		close(f.from);
		free(f.buf);
	}
	*cycle = bench_pct(a, n, 0.5);
	*cycle_bare = bench_pct(b, n, 0.5);
	*close_p50 = bench_pct(c, n, 0.5);
	*close_floor = bench_pct(d, n, 0.5);
}

/* A round trip figure without a target: printed beside both floors, and emitted. */
static void info_line(const char *tag, const struct cell *c, const char *metric, const char *label)
{
	printf("%-27s p50 %8.3f ms   floors %.3f / %.3f ms (C / Python host)   %.2fx the "
	       "Python-host floor (no target)\n",
	       tag, c->p50 * 1e3, c->floor_p50 * 1e3, c->pyfloor_p50 * 1e3,
	       c->p50 / c->pyfloor_p50);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = metric,
	                                       .label = label,
	                                       .value = c->p50 * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "floor: pipe loop, Python host",
	                                       .baseline = c->pyfloor_p50 * 1e3});
}

int main(int argc, char **argv)
{
	bool quick = false;
	enum placement place = PLACE_SPLIT;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = true;
		} else if (!strcmp(argv[i], "--pin")) {
			place = PLACE_ONE;
		} else if (!strcmp(argv[i], "--placement") && i + 1 < argc) {
			const char *v = argv[++i];
			place = !strcmp(v, "one")    ? PLACE_ONE
			        : !strcmp(v, "free") ? PLACE_FREE
			                             : PLACE_SPLIT;
			if (strcmp(v, "one") && strcmp(v, "free") && strcmp(v, "split")) {
				fprintf(stderr,
				        "bench_local: --placement takes split, one or free\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: bench_local [--quick] [--placement split|one|free] "
			                "[--pin (= --placement one)]\n");
			return 2;
		}
	}
	find_cpus();
	if (place == PLACE_SPLIT && child_cpu < 0)
		place = PLACE_FREE; /* one CPU only: nothing to split */
	int n_exec = quick ? 300 : 2000, n_stateless = quick ? 100 : 2000, n_start = quick ? 5 : 20;
	signal(SIGPIPE, SIG_IGN);
	rlm_config *cfg;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) || rlm_config_apply_env(cfg, &err) ||
	    rlm_config_set(cfg, "backend", "local", &err))
		die("config", &err);
	find_python(cfg);
	double start_ours, start_bare;
	bench_start(cfg, n_start, &start_ours, &start_bare);
	struct cell x1 = {"x = 1", 0, 0, 0, 0, 0};
	struct cell print10k = {"print('x' * 10000)", 10001, 0, 0, 0, 0};
	bench_roundtrip(cfg, n_exec, place, &x1);
	bench_roundtrip(cfg, n_exec, place, &print10k);
	/* The same with backends.local.spin_us=0: the host sleeps at once on every wait. */
	struct cell x1_nospin = x1, print10k_nospin = print10k;
	rlm_config *nospin;
	if (rlm_config_clone(cfg, &nospin, &err) ||
	    rlm_config_set(nospin, "backends.local.spin_us", "0", &err))
		die("config", &err);
	bench_roundtrip(nospin, n_exec, place, &x1_nospin);
	bench_roundtrip(nospin, n_exec, place, &print10k_nospin);
	rlm_config_free(nospin);
	/* The other two placements, for the record (no target). */
	struct cell other[2][2];
	enum placement others[2];
	for (int k = 0, j = 0; k < 3; k++) {
		if ((enum placement)k == place)
			continue;
		others[j] = (enum placement)k;
		other[j][0] = x1;
		other[j][1] = print10k;
		bench_roundtrip(cfg, n_exec / 2, others[j], &other[j][0]);
		bench_roundtrip(cfg, n_exec / 2, others[j], &other[j][1]);
		j++;
	}
	double stateless = bench_stateless(n_stateless);
	double cycle, cycle_bare, close_p50, close_floor;
	bench_lifecycle(cfg, n_start, &cycle, &cycle_bare, &close_p50, &close_floor);
	double pre_cycle, pre_bare, pre_close, pre_close_floor;
	if (rlm_config_set(cfg, "backends.local.prestart", "true", &err))
		die("config", &err);
	bench_lifecycle(cfg, n_start, &pre_cycle, &pre_bare, &pre_close, &pre_close_floor);
	printf("rlm local backend benchmark (%s, round trips: %s), interpreter %s\n",
	       quick ? "quick" : "full", placement_names[place], python);
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
	printf("(b) exec `x = 1` round trip p50 %8.3f ms   p99 %8.3f ms   (%d execs)\n",
	       x1.p50 * 1e3, x1.p99 * 1e3, n_exec);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "exec_x1_p99",
	                                       .label = "exec `x = 1` p99",
	                                       .value = x1.p99 * 1e3,
	                                       .unit = "ms"});
	printf("(c) stateless python3 -c    mean %8.3f ms   per statement (%d runs)   "
	       "(c)/(b) %.0fx (target >= 50x)\n",
	       stateless * 1e3, n_stateless, stateless / x1.p50);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "stateless_x1_mean",
	                                       .label = "python3 -c per cell",
	                                       .value = stateless * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "rlm exec `x = 1` p50",
	                                       .baseline = x1.p50 * 1e3,
	                                       .target = 50,
	                                       .target_op = ">=",
	                                       .plot = "exec",
	                                       .series = "baseline",
	                                       .group = "x = 1"});
	printf("(d) floor: pipe exec loop, C host   p50 %8.3f ms   (b)/(d) %.2fx (no target: the "
	       "least any host can do)\n",
	       x1.floor_p50 * 1e3, x1.p50 / x1.floor_p50);
	printf("(d') floor: the same, Python host   p50 %8.3f ms   (b)/(d') %.2fx (target <= 1.5x, "
	       "stretch 1.0x)\n",
	       x1.pyfloor_p50 * 1e3, x1.p50 / x1.pyfloor_p50);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "exec_x1_p50",
	                                       .label = "rlm exec, C API, p50",
	                                       .value = x1.p50 * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "floor: pipe loop, Python host",
	                                       .baseline = x1.pyfloor_p50 * 1e3,
	                                       .target = 1.5,
	                                       .target_op = "<=",
	                                       .plot = "exec",
	                                       .group = "x = 1"});
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "exec_x1_p50_vs_c_floor",
	                                       .label = "rlm exec, C API, p50 (vs a C host)",
	                                       .value = x1.p50 * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "floor: pipe loop, C host",
	                                       .baseline = x1.floor_p50 * 1e3});
	printf("(e) exec 10 KB print        p50 %8.3f ms   p99 %8.3f ms   (%d execs)\n",
	       print10k.p50 * 1e3, print10k.p99 * 1e3, n_exec);
	printf("(f) floor: 10 KB print, C host      p50 %8.3f ms   (e)/(f) %.2fx (no target)\n",
	       print10k.floor_p50 * 1e3, print10k.p50 / print10k.floor_p50);
	printf("(f') floor: the same, Python host   p50 %8.3f ms   (e)/(f') %.2fx (target <= "
	       "1.5x)\n",
	       print10k.pyfloor_p50 * 1e3, print10k.p50 / print10k.pyfloor_p50);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "exec_print10k_p50",
	                                       .label = "rlm exec 10 KB print, p50",
	                                       .value = print10k.p50 * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "floor: pipe loop, Python host",
	                                       .baseline = print10k.pyfloor_p50 * 1e3,
	                                       .target = 1.5,
	                                       .target_op = "<=",
	                                       .plot = "exec",
	                                       .group = "10 KB print"});
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "exec_print10k_p50_vs_c_floor",
	                                       .label = "rlm exec 10 KB print, p50 (vs a C host)",
	                                       .value = print10k.p50 * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "floor: pipe loop, C host",
	                                       .baseline = print10k.floor_p50 * 1e3});
	info_line("(b0) (b) with spin_us=0", &x1_nospin, "exec_x1_p50_nospin",
	          "rlm exec, C API, p50, spin_us=0");
	info_line("(e0) (e) with spin_us=0", &print10k_nospin, "exec_print10k_p50_nospin",
	          "rlm exec 10 KB print, p50, spin_us=0");
	static const char *const place_keys[] = {"split", "one", "free"};
	for (int j = 0; j < 2; j++) {
		for (int k = 0; k < 2; k++) {
			char tag[64], metric[64], label[128];
			snprintf(tag, sizeof(tag), "(p) %-22s %-10s", placement_names[others[j]],
			         k ? "10 KB" : "`x = 1`");
			snprintf(metric, sizeof(metric), "exec_%s_p50_%s", k ? "print10k" : "x1",
			         place_keys[others[j]]);
			snprintf(label, sizeof(label), "rlm exec %s, p50, %s",
			         k ? "10 KB print" : "`x = 1`", placement_names[others[j]]);
			info_line(tag, &other[j][k], metric, label);
		}
	}
	printf("(g) open + exec + close     median %8.2f ms   bare python3 -c pass %8.2f ms   "
	       "ratio %.2fx (target <= 1.2x)\n",
	       cycle * 1e3, cycle_bare * 1e3, cycle / cycle_bare);
	printf("(g') the same, prestart     median %8.2f ms   bare python3 -c pass %8.2f ms   "
	       "ratio %.2fx (target <= 1.2x)\n",
	       pre_cycle * 1e3, pre_bare * 1e3, pre_cycle / pre_bare);
	printf("(h) close                   median %8.2f ms   kill+wait idle python3 %6.2f ms   "
	       "ratio %.2fx (target < 2 ms)\n",
	       close_p50 * 1e3, close_floor * 1e3, close_p50 / close_floor);
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "cycle_open_exec_close",
	                                       .label = "open + exec + close, median",
	                                       .value = cycle * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "bare python3 -c pass",
	                                       .baseline = cycle_bare * 1e3,
	                                       .target = 1.2,
	                                       .target_op = "<=",
	                                       .plot = "start"});
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "cycle_prestart",
	                                       .label = "open + exec + close, prestart, median",
	                                       .value = pre_cycle * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "bare python3 -c pass",
	                                       .baseline = pre_bare * 1e3,
	                                       .target = 1.2,
	                                       .target_op = "<=",
	                                       .plot = "start"});
	bench_json_emit(&(struct bench_figure){.bench = "bench_local",
	                                       .metric = "close",
	                                       .label = "rlm_interp_close, median",
	                                       .value = close_p50 * 1e3,
	                                       .unit = "ms",
	                                       .target = 2,
	                                       .target_op = "<"});
	rlm_config_free(cfg);
	return 0;
}
