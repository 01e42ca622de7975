/* bench_modal.c - the Modal backend against the fake Modal (tests/fakes/modal_server.py), in one
 * run; ratios, not absolute times, since machines are noisy:
 *   (1) the round trip of one exec of `x = 1` through rlm, versus the time the fake itself spent
 *       in the command-router methods it was called for (from the fake's --stats-file);
 *   (2) N interpreters at once, each its own sandbox running 10 cells: errors, wall time,
 *       leaked sandboxes, and the HTTP/2 connections the fake saw (the goal: one per host).
 * Usage: bench_modal [--execs N] [--concurrent N] [--check] [--max-connections K] [--tls]
 * --check (for CI: 20 execs, 8 interpreters unless given) exits 1 when a cell failed, a sandbox
 * leaked, the fake's statistics are missing, or a phase used more than K connections (1).
 * --tls: the fake serves TLS (ALPN h2) with a throwaway CA, which backends.modal.ca_file names,
 * so the path the real service takes is the one measured. */
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "bench_json.h"
#include "rlm/rlm.h"

#ifndef RLM_SOURCE_DIR
#define RLM_SOURCE_DIR "."
#endif
#ifndef RLM_PLUGIN_DIR
#define RLM_PLUGIN_DIR "build/lib/rlm/plugins"
#endif

#define TOKEN_ID         "ak-fakebench"
#define TOKEN_SECRET     "as-fakebenchsecret"
#define ROUTER_PREFIX    "/modal.task_command_router.TaskCommandRouter/"
#define WARMUP_EXECS     20
#define CELLS_PER_WORKER 10

/* The fake and its files. Static because die() and the atexit handler must stop it from any
 * failure path; nothing else is shared. */
static struct fake {
	pid_t pid;
	int tls;
	char dir[64]; /* mkdtemp: port, state.json, stats.json, ca, none.toml (never created) */
	char port_file[96], state_file[96], stats_file[96], ca_out_file[96], config_file[96];
	char url[64];          /* http://127.0.0.1:PORT, https:// with --tls */
	char ca[PATH_MAX + 1]; /* --tls: the CA certificate's path (in the fake's own temp dir) */
} fake;

/* SIGTERM, then SIGKILL after 10 s: the fake kills its sandboxes' processes on SIGTERM. */
static void stop_fake(void)
{
	char tmp[128];

	if (fake.pid > 0) {
		int reaped = 0;
		kill(fake.pid, SIGTERM);
		for (int i = 0; i < 1000 && !reaped; i++) {
			reaped = waitpid(fake.pid, NULL, WNOHANG) == fake.pid;
			if (!reaped)
				usleep(10000);
		}
		if (!reaped) {
			kill(fake.pid, SIGKILL);
			waitpid(fake.pid, NULL, 0);
		}
		fake.pid = 0;
	}
	if (fake.dir[0]) {
		unlink(fake.port_file);
		unlink(fake.state_file);
		unlink(fake.stats_file);
		unlink(fake.ca_out_file);
		snprintf(tmp, sizeof(tmp), "%s.tmp", fake.stats_file);
		unlink(tmp);
		rmdir(fake.dir);
		fake.dir[0] = 0;
	}
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_modal: %s: %s\n", what, why);
	exit(1); /* stop_fake runs from atexit */
}

/* --tls: the fake wrote its CA certificate's path (tmp + rename) before the port file. */
static void read_ca_path(void)
{
	FILE *f = fopen(fake.ca_out_file, "r");
	if (!f || !fgets(fake.ca, sizeof(fake.ca), f))
		die(fake.ca_out_file, "the fake wrote no CA path");
	fclose(f);
	fake.ca[strcspn(fake.ca, "\n")] = 0;
}

static void start_fake(void)
{
	snprintf(fake.dir, sizeof(fake.dir), "/tmp/rlm-bench-modal-XXXXXX");
	if (!mkdtemp(fake.dir)) {
		fake.dir[0] = 0;
		die("mkdtemp", "failed");
	}
	snprintf(fake.port_file, sizeof(fake.port_file), "%s/port", fake.dir);
	snprintf(fake.state_file, sizeof(fake.state_file), "%s/state.json", fake.dir);
	snprintf(fake.stats_file, sizeof(fake.stats_file), "%s/stats.json", fake.dir);
	snprintf(fake.ca_out_file, sizeof(fake.ca_out_file), "%s/ca", fake.dir);
	snprintf(fake.config_file, sizeof(fake.config_file), "%s/none.toml", fake.dir);
	pid_t parent = getpid();
	fake.pid = fork();
	if (fake.pid < 0)
		die("fork", "failed");
	if (fake.pid == 0) {
		/* Should the bench be killed (a ctest timeout), the fake goes with it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		/* /usr/bin/python3: the fake needs Debian's python3-grpcio. Without --tls the NULL
		 * in its place ends the arguments there. */
		execl("/usr/bin/python3", "python3", RLM_SOURCE_DIR "/tests/fakes/modal_server.py",
		      "--proto", RLM_SOURCE_DIR "/backends/modal/modal.proto", "--port-file",
		      fake.port_file, "--state-file", fake.state_file, "--token-id", TOKEN_ID,
		      "--token-secret", TOKEN_SECRET, "--stats-file", fake.stats_file,
		      fake.tls ? "--tls" : (char *)NULL, "--ca-file-out", fake.ca_out_file,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 600; i++) {
		int port = 0, status;
		FILE *f = fopen(fake.port_file, "r"); /* written by tmp + rename: whole or absent */
		if (f) {
			int ok = fscanf(f, "%d", &port) == 1 && port > 0;
			fclose(f);
			if (ok) {
				snprintf(fake.url, sizeof(fake.url), "%s://127.0.0.1:%d",
				         fake.tls ? "https" : "http", port);
				if (fake.tls)
					read_ca_path();
				return;
			}
		}
		if (waitpid(fake.pid, &status, WNOHANG) == fake.pid) {
			fake.pid = 0;
			die("fake", "exited before listening (see its message above)");
		}
		usleep(50000);
	}
	die("fake", "did not start in 30 s");
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* The stats file, or NULL unless it has the "methods" and "peers" objects read below. */
static json_object *stats_parse(void)
{
	json_object *doc = json_object_from_file(fake.stats_file);
	if (json_object_is_type(get(doc, "methods"), json_type_object) &&
	    json_object_is_type(get(doc, "peers"), json_type_object))
		return doc;
	fprintf(stderr, "bench_modal: %s: not the stats the bench expects\n", fake.stats_file);
	json_object_put(doc);
	return NULL;
}

/* The fake's statistics at this moment: it writes them (tmp + rename) on SIGUSR1. NULL when it
 * wrote none within 10 s. Caller puts the document. */
static json_object *fake_stats(void)
{
	unlink(fake.stats_file);
	if (kill(fake.pid, SIGUSR1))
		return NULL;
	for (int i = 0; i < 1000; i++) {
		struct stat st;
		if (stat(fake.stats_file, &st) == 0)
			return stats_parse();
		usleep(10000);
	}
	return NULL;
}

/* methods[name][field] in after minus the same in before (absent counts as 0). */
static double method_delta(json_object *before, json_object *after, const char *name,
                           const char *field)
{
	double a = json_object_get_double(get(get(get(after, "methods"), name), field));
	double b = json_object_get_double(get(get(get(before, "methods"), name), field));
	return a - b;
}

/* Connections the fake saw carry calls between two snapshots: the peers (one per client
 * HTTP/2 connection) whose call count grew. */
static int peers_active(json_object *before, json_object *after)
{
	int n = 0;
	json_object_object_foreach(get(after, "peers"), peer, count)
	{
		if (json_object_get_int64(count) >
		    json_object_get_int64(get(get(before, "peers"), peer)))
			n++;
	}
	return n;
}

static rlm_config *make_config(void)
{
	rlm_config *cfg;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) || rlm_config_set(cfg, "backend", "modal", &err) ||
	    rlm_config_set(cfg, "plugin_path", "[\"" RLM_PLUGIN_DIR "\"]", &err))
		die("config", err.message);
	if (fake.tls) {
		/* as a JSON string, so no path is ever read as some other JSON value */
		json_object *ca = json_object_new_string(fake.ca);
		if (!ca)
			die("config", "out of memory");
		int rc = rlm_config_set(
		        cfg, "backends.modal.ca_file",
		        json_object_to_json_string_ext(ca, JSON_C_TO_STRING_NOSLASHESCAPE), &err);
		json_object_put(ca);
		if (rc)
			die("config", err.message);
	}
	return cfg;
}

/* Nearest-rank percentile of sorted v. */
static double percentile(const double *v, int n, double q)
{
	int i = (int)ceil(q * n) - 1;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static double exec_once(rlm_interp *in, const char *code, const char *want)
{
	rlm_result *r;
	rlm_error err = RLM_ERROR_INIT;
	double t0 = now_s();
	if (rlm_interp_execute(in, code, NULL, &r, &err))
		die("execute", err.message);
	double dt = now_s() - t0;
	if (r->error || (want && strcmp(r->stdout_text, want)))
		die("execute", r->error ? r->error->line : r->stdout_text);
	rlm_result_free(r);
	return dt;
}

/* (1) Returns the connections the timed loop used (-1: unknown). */
static int bench_exec(const rlm_config *cfg, int n, int max_conns)
{
	rlm_interp *in;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(cfg, &in, &err))
		die("open", err.message);
	for (int i = 0; i < WARMUP_EXECS; i++)
		exec_once(in, "x = 1", "");
	double *t = calloc((size_t)n, sizeof(double)), sum = 0;
	if (!t)
		die("calloc", "out of memory");
	json_object *before = fake_stats();
	for (int i = 0; i < n; i++)
		sum += t[i] = exec_once(in, "x = 1", "");
	json_object *after = before ? fake_stats() : NULL;
	rlm_interp_close(in);

	qsort(t, (size_t)n, sizeof(double), cmp_double);
	double p50 = percentile(t, n, 0.50), p99 = percentile(t, n, 0.99), mean = sum / n;
	printf("(1) exec `x = 1`, %d times after %d warm-up  %9s %9s %9s\n", n, WARMUP_EXECS, "p50",
	       "p99", "mean");
	printf("    %-38s %9.3f %9.3f %9.3f ms\n", "rlm_interp_execute round trip", p50 * 1e3,
	       p99 * 1e3, mean * 1e3);
	int conns = -1;
	if (after) {
		double fake_s = 0;
		char calls[512] = "";
		size_t len = 0;
		json_object_object_foreach(get(after, "methods"), name, v)
		{
			(void)v;
			if (strncmp(name, ROUTER_PREFIX, strlen(ROUTER_PREFIX)))
				continue;
			fake_s += method_delta(before, after, name, "total_s");
			double c = method_delta(before, after, name, "count");
			if (c > 0 && len < sizeof(calls))
				len += (size_t)snprintf(calls + len, sizeof(calls) - len,
				                        "%s%s %.2f", len ? ", " : "",
				                        name + strlen(ROUTER_PREFIX), c / n);
		}
		fake_s /= n;
		conns = peers_active(before, after);
		printf("    %-38s %9s %9s %9.3f ms\n", "the fake's own router handling", "", "",
		       fake_s * 1e3);
		printf("    %-38s %8.2fx %9s %8.2fx   (p50/mean, mean/mean)\n", "ratio rlm / fake",
		       p50 / fake_s, "", mean / fake_s);
		bench_json_emit(&(struct bench_figure){
		        .bench = "bench_modal",
		        .metric = "exec_x1_mean",
		        .label = "exec `x = 1` through rlm, mean",
		        .value = mean * 1e3,
		        .unit = "ms",
		        .baseline_label = "the fake's own router handling, mean",
		        .baseline = fake_s * 1e3});
		printf("    router calls per exec: %s\n", calls);
		printf("    HTTP/2 connections the fake saw carry them: %d%s\n", conns,
		       conns > max_conns ? "  <-- more than one per host" : "");
	} else {
		printf("    %-38s %29s\n", "the fake's own router handling",
		       "n/a (the fake wrote no stats)");
	}
	json_object_put(before);
	json_object_put(after);
	free(t);
	return conns;
}

struct worker {
	const rlm_config *cfg;
	int errors; /* a failed open counts one, then each failed cell */
	char why[RLM_ERROR_MESSAGE_MAX + 64];
};

static void worker_fail(struct worker *w, const char *what, const char *why)
{
	if (w->errors++ == 0)
		snprintf(w->why, sizeof(w->why), "%s: %s", what, why);
}

/* One cell; a mismatch or an exception is an error like a failed call. */
static void worker_cell(struct worker *w, rlm_interp *in, const char *code, const char *want)
{
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_execute(in, code, NULL, &r, &err))
		worker_fail(w, code, err.message);
	else if (r->error)
		worker_fail(w, code, r->error->line);
	else if (strcmp(r->stdout_text, want))
		worker_fail(w, code, r->stdout_text);
	rlm_result_free(r);
}

static void *concurrent_worker(void *arg)
{
	struct worker *w = arg;
	rlm_interp *in;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(w->cfg, &in, &err)) {
		worker_fail(w, "open", err.message);
		return NULL;
	}
	for (int i = 0; i < CELLS_PER_WORKER / 2; i++) {
		char set[32], want[32];
		snprintf(set, sizeof(set), "x = %d", i);
		snprintf(want, sizeof(want), "%d\n", i);
		worker_cell(w, in, set, "");
		worker_cell(w, in, "print(x)", want);
	}
	rlm_interp_close(in);
	return NULL;
}

/* Live sandboxes in the fake's state file, or -1 when it cannot be read. */
static int sandboxes_alive(void)
{
	json_object *live = json_object_from_file(fake.state_file);
	int n = json_object_is_type(live, json_type_array) ? (int)json_object_array_length(live)
	                                                   : -1;
	json_object_put(live);
	return n;
}

struct outcome {
	int errors, leaked, conns, conns_total; /* conns*: -1 when the fake wrote no statistics */
};

/* (2) */
static struct outcome bench_concurrent(const rlm_config *cfg, int n, int max_conns)
{
	struct outcome o = {0, 0, -1, -1};
	pthread_t *t = calloc((size_t)n, sizeof(pthread_t));
	struct worker *w = calloc((size_t)n, sizeof(struct worker));
	if (!t || !w)
		die("calloc", "out of memory");
	json_object *before = fake_stats();
	double t0 = now_s();
	int started = 0;
	for (; started < n; started++) {
		w[started].cfg = cfg;
		if (pthread_create(&t[started], NULL, concurrent_worker, &w[started]))
			break;
	}
	if (started < n)
		fprintf(stderr, "bench_modal: only %d threads started\n", started);
	o.errors = n - started;
	for (int i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		if (w[i].errors && o.errors == 0)
			fprintf(stderr, "bench_modal: interpreter %d: %s\n", i, w[i].why);
		o.errors += w[i].errors;
	}
	double wall = now_s() - t0;
	json_object *after = before ? fake_stats() : NULL;
	if (after) {
		o.conns = peers_active(before, after);
		o.conns_total = json_object_get_int(get(after, "connections"));
	}
	o.leaked = sandboxes_alive();
	printf("(2) %d interpreters at once (open, %d cells, close): %.2f s, %d error%s, ", n,
	       CELLS_PER_WORKER, wall, o.errors, o.errors == 1 ? "" : "s");
	char what[96];
	snprintf(what, sizeof(what), "errors, %d interpreters at once", n);
	bench_json_emit(&(struct bench_figure){.bench = "bench_modal",
	                                       .metric = "concurrent_errors",
	                                       .label = what,
	                                       .value = o.errors,
	                                       .target = 0,
	                                       .target_op = "=="});
	snprintf(what, sizeof(what), "sandboxes leaked, %d interpreters at once", n);
	bench_json_emit(&(struct bench_figure){.bench = "bench_modal",
	                                       .metric = "concurrent_leaked",
	                                       .label = what,
	                                       .value = o.leaked < 0 ? NAN : o.leaked,
	                                       .target = 0,
	                                       .target_op = "=="});
	if (o.leaked < 0)
		printf("the fake's state file unreadable\n");
	else
		printf("%d sandbox%s leaked\n", o.leaked, o.leaked == 1 ? "" : "es");
	/* Control plane and router are one host:port on the fake: one connection is the goal. */
	if (o.conns < 0)
		printf("    HTTP/2 connections the fake saw: n/a (the fake wrote no stats)\n");
	else
		printf("    HTTP/2 connections the fake saw carry them: %d (%d since it "
		       "started)%s\n",
		       o.conns, o.conns_total,
		       o.conns > max_conns ? "  <-- more than one per host" : "");
	json_object_put(before);
	json_object_put(after);
	free(t);
	free(w);
	return o;
}

int main(int argc, char **argv)
{
	int n = 0, conc = 0, check = 0, max_conns = 1;
	for (int i = 1; i < argc; i++) {
		int has_value = i + 1 < argc;
		if (!strcmp(argv[i], "--check"))
			check = 1;
		else if (!strcmp(argv[i], "--execs") && has_value)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--concurrent") && has_value)
			conc = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max-connections") && has_value)
			max_conns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tls"))
			fake.tls = 1;
		else {
			fprintf(stderr, "usage: bench_modal [--execs N] [--concurrent N] [--check] "
			                "[--max-connections K] [--tls]\n");
			return 2;
		}
	}
	if (n <= 0)
		n = check ? 20 : 200;
	if (conc <= 0)
		conc = check ? 8 : 32;
	setvbuf(stdout, NULL, _IOLBF, 0); /* in order with stderr, under ctest too */
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_fake);
	start_fake();
	/* The plugin reads these; MODAL_CONFIG_PATH names a file that does not exist, so no
	 * ~/.modal.toml is read. Set before any interpreter (thread) exists. */
	setenv("MODAL_SERVER_URL", fake.url, 1);
	setenv("MODAL_TOKEN_ID", TOKEN_ID, 1);
	setenv("MODAL_TOKEN_SECRET", TOKEN_SECRET, 1);
	setenv("MODAL_CONFIG_PATH", fake.config_file, 1);
	rlm_config *cfg = make_config();
	printf("rlm Modal backend benchmark, against the fake Modal at %s\n", fake.url);
	int conns1 = bench_exec(cfg, n, max_conns);
	struct outcome o = bench_concurrent(cfg, conc, max_conns);
	rlm_config_free(cfg);

	int too_many = conns1 > max_conns || o.conns > max_conns;
	int bad = o.errors > 0 || o.leaked != 0;
	if (check) {
		if (conns1 < 0 || o.conns < 0)
			fprintf(stderr, "bench_modal: check: no statistics from the fake, so the "
			                "connections cannot be checked\n");
		else if (too_many)
			fprintf(stderr,
			        "bench_modal: check: more than %d connection%s per phase "
			        "((1) %d, (2) %d)\n",
			        max_conns, max_conns == 1 ? "" : "s", conns1, o.conns);
		bad = bad || conns1 < 0 || o.conns < 0 || too_many;
		printf("check: %s\n", bad ? "FAILED" : "ok");
	}
	return bad;
}
