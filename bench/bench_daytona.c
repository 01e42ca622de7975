/* bench_daytona.c - the Daytona backend against the fake Daytona server, in one run:
 *   (1) one exec of `x = 1` through rlm, versus the very HTTP requests rlm made for it
 *       replayed by a plain loop (so the ratio is rlm's own cost over the wire's);
 *   (2) 32 interpreters executing concurrently: errors, wall time, leaked sandboxes.
 * Usage: bench_daytona [--execs N] [--concurrent N]   (starts tests/fakes/daytona_server.py) */
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "host.h"
#include "rlm/rlm.h"

#include "bench_json.h"

#ifndef RLM_SOURCE_DIR
#define RLM_SOURCE_DIR "."
#endif
#ifndef RLM_PLUGIN_DIR
#define RLM_PLUGIN_DIR "build/lib/rlm/plugins"
#endif

#define TOKEN "dtn_bench_token"

static char base[128]; /* http://127.0.0.1:PORT */

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_daytona: %s: %s\n", what, why);
	exit(1);
}

static pid_t start_fake(void)
{
	char port_file[] = "/tmp/rlm-bench-dt-XXXXXX";
	int fd = mkstemp(port_file);
	if (fd < 0)
		die("mkstemp", "failed");
	close(fd);
	unlink(port_file);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("python3", "python3", RLM_SOURCE_DIR "/tests/fakes/daytona_server.py",
		       "--port-file", port_file, "--token", TOKEN, "--log-bodies", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(port_file, "r");
		int port = 0;
		if (f && fscanf(f, "%d", &port) == 1 && port > 0) {
			fclose(f);
			unlink(port_file);
			snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
			return pid;
		}
		if (f)
			fclose(f);
		usleep(50000);
	}
	die("fake", "did not start");
	return -1;
}

/* A request to the fake; returns the parsed JSON answer (caller puts it). */
static json_object *fake_call(const char *method, const char *path, const char *body)
{
	const rlm_host_api *h = rlm__host();
	char url[512];
	snprintf(url, sizeof(url), "%s%s", base, path);
	const char *headers[] = {"Authorization: Bearer " TOKEN, "Content-Type: application/json",
	                         "X-Daytona-SDK-Version: 0.190.0", NULL};
	rlm_http_request req;
	memset(&req, 0, sizeof(req));
	req.abi_version = RLM_ABI_VERSION;
	req.struct_size = sizeof(req);
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.timeout_s = 120;
	rlm_http_response resp;
	rlm_error err = RLM_ERROR_INIT;
	if (h->http_request(&req, &resp, &err))
		die(path, err.message);
	json_object *doc = resp.body.data ? json_tokener_parse(resp.body.data) : NULL;
	h->http_response_free(&resp);
	return doc;
}

static rlm_config *make_config(void)
{
	rlm_config *cfg;
	rlm_error err = RLM_ERROR_INIT;
	char api[200];
	snprintf(api, sizeof(api), "\"%s/api\"", base);
	if (rlm_config_new(&cfg, &err) || rlm_config_set(cfg, "backend", "daytona", &err) ||
	    rlm_config_set(cfg, "plugin_path", "[\"" RLM_PLUGIN_DIR "\"]", &err) ||
	    rlm_config_set(cfg, "backends.daytona.api_url", api, &err))
		die("config", err.message);
	return cfg;
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

/* The toolbox requests in the fake's log, replayed in order, n_rounds groups. */
static double replay_round(json_object *log, size_t from, size_t count)
{
	double t0 = now_s();
	for (size_t i = from; i < from + count; i++) {
		json_object *e = json_object_array_get_idx(log, i), *m, *p, *b;
		json_object_object_get_ex(e, "method", &m);
		json_object_object_get_ex(e, "path", &p);
		const char *body =
		        json_object_object_get_ex(e, "body", &b)
		                ? json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)
		                : NULL;
		json_object_put(
		        fake_call(json_object_get_string(m), json_object_get_string(p), body));
	}
	return now_s() - t0;
}

static void bench_exec(rlm_config *cfg, int n)
{
	rlm_interp *in;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(cfg, &in, &err))
		die("open", err.message);
	for (int i = 0; i < 3; i++)
		exec_once(in, "x = 1", "");
	json_object_put(fake_call("POST", "/_fake/reset", "{}"));
	double *ours = calloc((size_t)n, sizeof(double)),
	       *plain = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n; i++)
		ours[i] = exec_once(in, "x = 1", "");
	json_object *log = fake_call("GET", "/_fake/requests", NULL);
	size_t total = json_object_array_length(log), per = total / (size_t)n;
	if (per == 0 || total % (size_t)n)
		die("request log", "not a whole number of requests per exec");
	for (int i = 0; i < n; i++)
		plain[i] = replay_round(log, (size_t)i * per, per);
	json_object_put(log);
	double a = bench_median(ours, n), b = bench_median(plain, n);
	printf("(1) exec `x = 1` through rlm   median %8.2f ms  (%d execs, %zu HTTP request%s "
	       "each)\n",
	       a * 1e3, n, per, per == 1 ? "" : "s");
	printf("    the same requests, plain loop median %8.2f ms  ratio %.2fx (target <= 1.2x)\n",
	       b * 1e3, a / b);
	bench_json_emit(&(struct bench_figure){.bench = "bench_daytona",
	                                       .metric = "exec_x1_median",
	                                       .label = "exec `x = 1` through rlm, median",
	                                       .value = a * 1e3,
	                                       .unit = "ms",
	                                       .baseline_label = "the same requests, plain loop",
	                                       .baseline = b * 1e3,
	                                       .target = 1.2,
	                                       .target_op = "<="});
	free(ours);
	free(plain);
	rlm_interp_close(in);
}

struct worker {
	rlm_config *cfg;
	int failed;
	char why[RLM_ERROR_MESSAGE_MAX + 16];
};

static void *concurrent_worker(void *arg)
{
	struct worker *w = arg;
	rlm_interp *in;
	rlm_error err = RLM_ERROR_INIT;
	rlm_result *r = NULL;
	if (rlm_interp_open(w->cfg, &in, &err)) {
		w->failed = 1;
		snprintf(w->why, sizeof(w->why), "%s", err.message);
		return NULL;
	}
	if (rlm_interp_execute(in, "x = 41", NULL, &r, &err) == 0) {
		rlm_result_free(r);
		r = NULL;
		if (rlm_interp_execute(in, "print(x + 1)", NULL, &r, &err) == 0 &&
		    !strcmp(r->stdout_text, "42\n"))
			w->failed = 0;
		else
			w->failed = 1;
	} else {
		w->failed = 1;
	}
	if (w->failed)
		snprintf(w->why, sizeof(w->why), "%s",
		         r && r->error ? r->error->line : err.message);
	rlm_result_free(r);
	rlm_interp_close(in);
	return NULL;
}

static int bench_concurrent(rlm_config *cfg, int n)
{
	pthread_t *t = calloc((size_t)n, sizeof(pthread_t));
	struct worker *w = calloc((size_t)n, sizeof(struct worker));
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		w[i].cfg = cfg;
		pthread_create(&t[i], NULL, concurrent_worker, &w[i]);
	}
	int failures = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (w[i].failed && failures++ == 0)
			fprintf(stderr, "bench_daytona: interpreter %d: %s\n", i, w[i].why);
	}
	json_object *left = fake_call("GET", "/_fake/sandboxes", NULL);
	size_t leaked = left ? json_object_array_length(left) : 0;
	json_object_put(left);
	printf("(2) %d interpreters at once (open, 2 cells, close): %.2f s, %d error%s, %zu "
	       "sandbox%s leaked\n",
	       n, now_s() - t0, failures, failures == 1 ? "" : "s", leaked,
	       leaked == 1 ? "" : "es");
	char what[96];
	snprintf(what, sizeof(what), "errors, %d interpreters at once", n);
	bench_json_emit(&(struct bench_figure){.bench = "bench_daytona",
	                                       .metric = "concurrent_errors",
	                                       .label = what,
	                                       .value = failures,
	                                       .target = 0,
	                                       .target_op = "=="});
	snprintf(what, sizeof(what), "sandboxes leaked, %d interpreters at once", n);
	bench_json_emit(&(struct bench_figure){.bench = "bench_daytona",
	                                       .metric = "concurrent_leaked",
	                                       .label = what,
	                                       .value = (double)leaked,
	                                       .target = 0,
	                                       .target_op = "=="});
	free(t);
	free(w);
	return failures || leaked;
}

int main(int argc, char **argv)
{
	int n = 30, conc = 32;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--execs"))
			n = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--concurrent"))
			conc = atoi(argv[i + 1]);
	}
	signal(SIGPIPE, SIG_IGN);
	setenv("DAYTONA_API_KEY", TOKEN, 1);
	pid_t fake = start_fake();
	rlm_config *cfg = make_config();
	printf("rlm Daytona backend benchmark, against the fake at %s\n", base);
	bench_exec(cfg, n > 0 ? n : 30);
	int bad = bench_concurrent(cfg, conc > 0 ? conc : 32);
	rlm_config_free(cfg);
	kill(fake, SIGTERM);
	waitpid(fake, NULL, 0);
	return bad;
}
