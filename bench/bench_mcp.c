/* bench_mcp.c - what `rlm mcp --http` adds to a sandbox exec, each figure beside its baseline
 * in one run, on the local backend:
 *   (1) `x = 1` through the C API (rlm_interp_execute in a warm interpreter)
 *   (2) the same exec as an MCP tools/call sandbox_exec over HTTP (one keep-alive connection,
 *       bearer token, JSON response): target <= 1.5x (1) plus a constant under 1 ms
 *   (3) N concurrent clients (default 64), each on its own connection and sandbox: create,
 *       execs, destroy; errors, latency under load, and no sandbox left at the end.
 * Usage: bench_mcp [--quick] [--execs N] [--clients N] */
#include <curl/curl.h>
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
#include "bench_json.h"
#include "rlm/rlm.h"

#define TOKEN "bench-token-0123456789abcdef"

static int port;

static double mean(const double *v, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += v[i];
	return n ? s / n : 0;
}

/* ---- (1) the C API ---- */

static void bench_capi(int n, double *ms)
{
	rlm_config *cfg = NULL;
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) || rlm_config_set(cfg, "backend", "local", &err) ||
	    rlm_interp_open(cfg, &in, &err)) {
		fprintf(stderr, "bench_mcp: %s\n", err.message);
		exit(1);
	}
	for (int i = -50; i < n; i++) {
		rlm_result *r = NULL;
		double t0 = now_s();
		if (rlm_interp_execute(in, "x = 1", NULL, &r, &err)) {
			fprintf(stderr, "bench_mcp: exec: %s\n", err.message);
			exit(1);
		}
		if (i >= 0)
			ms[i] = (now_s() - t0) * 1000;
		rlm_result_free(r);
	}
	rlm_interp_close(in);
	rlm_config_free(cfg);
}

/* ---- an MCP client over HTTP ---- */

struct client {
	CURL *curl;
	struct curl_slist *headers;
	char *buf;
	size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct client *c = ctx;
	char *grown = realloc(c->buf, c->len + size * n + 1);
	if (!grown)
		return 0;
	c->buf = grown;
	memcpy(c->buf + c->len, data, size * n);
	c->len += size * n;
	c->buf[c->len] = 0;
	return size * n;
}

static void client_init(struct client *c)
{
	memset(c, 0, sizeof(*c));
	c->curl = curl_easy_init();
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	c->headers = curl_slist_append(c->headers, "Accept: application/json");
	c->headers = curl_slist_append(c->headers, "Authorization: Bearer " TOKEN);
	c->headers = curl_slist_append(c->headers, "MCP-Protocol-Version: 2026-07-28");
	c->headers = curl_slist_append(c->headers, "Mcp-Method: tools/call");
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/mcp", port);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
}

static void client_free(struct client *c)
{
	curl_slist_free_all(c->headers);
	curl_easy_cleanup(c->curl);
	free(c->buf);
}

/* Calls a tool; returns its structuredContent (new reference) or NULL on any failure. */
static json_object *call_tool(struct client *c, const char *tool, json_object *args)
{
	static const char meta[] = "{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
	                           "\"io.modelcontextprotocol/clientCapabilities\":{}}";
	json_object *req = json_object_new_object(), *params = json_object_new_object();
	json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(req, "id", json_object_new_int(1));
	json_object_object_add(req, "method", json_object_new_string("tools/call"));
	json_object_object_add(params, "name", json_object_new_string(tool));
	json_object_object_add(params, "arguments", args ? args : json_object_new_object());
	json_object_object_add(params, "_meta", json_tokener_parse(meta));
	json_object_object_add(req, "params", params);
	char name[96];
	snprintf(name, sizeof(name), "Mcp-Name: %s", tool);
	struct curl_slist *h = curl_slist_append(NULL, name);
	for (struct curl_slist *x = c->headers; x; x = x->next)
		h = curl_slist_append(h, x->data);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, json_object_to_json_string(req));
	c->len = 0;
	CURLcode rc = curl_easy_perform(c->curl);
	curl_slist_free_all(h);
	json_object_put(req);
	long status = 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	json_object *resp =
	        rc == CURLE_OK && status == 200 && c->buf ? json_tokener_parse(c->buf) : NULL;
	json_object *result = json_object_object_get(resp, "result"), *out = NULL;
	if (result && !json_object_get_boolean(json_object_object_get(result, "isError")))
		out = json_object_get(json_object_object_get(result, "structuredContent"));
	json_object_put(resp);
	return out;
}

static char *create_sandbox(struct client *c)
{
	json_object *s = call_tool(c, "sandbox_create", NULL);
	const char *id = json_object_get_string(json_object_object_get(s, "sandbox"));
	char *copy = id ? strdup(id) : NULL;
	json_object_put(s);
	return copy;
}

static int exec_in(struct client *c, const char *sandbox, const char *code)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "sandbox", json_object_new_string(sandbox));
	json_object_object_add(a, "code", json_object_new_string(code));
	json_object *r = call_tool(c, "sandbox_exec", a);
	int ok = r && !json_object_object_get(r, "error");
	json_object_put(r);
	return ok;
}

static void destroy_sandbox(struct client *c, const char *sandbox)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "sandbox", json_object_new_string(sandbox));
	json_object_put(call_tool(c, "sandbox_destroy", a));
}

/* ---- the server ---- */

static pid_t start_server(const char *dir, int clients)
{
	char port_file[512], max_live[64], max_handles[32];
	snprintf(port_file, sizeof(port_file), "%s/port", dir);
	snprintf(max_live, sizeof(max_live), "pool.max_live=%d", clients + 2);
	snprintf(max_handles, sizeof(max_handles), "%d", clients + 2);
	setenv("RLM_BENCH_MCP_TOKEN", TOKEN, 1);
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stderr))
			_exit(127);
		execl(RLM_CLI_PATH, "rlm", "mcp", "--http", "--listen", "127.0.0.1:0",
		      "--port-file", port_file, "--token-env", "RLM_BENCH_MCP_TOKEN", "--set",
		      max_live, "--max-handles", max_handles, "--max-inflight", "256",
		      (char *)NULL);
		_exit(127);
	}
	for (double deadline = now_s() + 60; now_s() < deadline; usleep(20000)) {
		FILE *f = fopen(port_file, "r");
		if (f && fscanf(f, "%d", &port) == 1 && port > 0) {
			fclose(f);
			return pid;
		}
		if (f)
			fclose(f);
	}
	fprintf(stderr, "bench_mcp: the server did not start\n");
	kill(pid, SIGKILL);
	exit(1);
}

/* ---- (3) concurrent clients ---- */

struct worker {
	int execs;
	double *ms;
	int errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct client c;
	client_init(&c);
	char *sb = create_sandbox(&c);
	if (!sb) {
		w->errors = w->execs + 1;
		client_free(&c);
		return NULL;
	}
	for (int i = 0; i < w->execs; i++) {
		double t0 = now_s();
		if (!exec_in(&c, sb, i ? "x += 1" : "x = 1"))
			w->errors++;
		w->ms[i] = (now_s() - t0) * 1000;
	}
	destroy_sandbox(&c, sb);
	free(sb);
	client_free(&c);
	return NULL;
}

static int leftover_sandboxes(void)
{
	struct client c;
	client_init(&c);
	int left = -1;
	for (double deadline = now_s() + 60; now_s() < deadline; usleep(100000)) {
		json_object *s = call_tool(&c, "rlm_status", NULL);
		json_object *sb = json_object_object_get(s, "sandboxes");
		json_object *pools = json_object_object_get(sb, "pools");
		left = json_object_get_int(json_object_object_get(sb, "handles"));
		for (size_t i = 0; json_object_is_type(pools, json_type_array) &&
		                   i < json_object_array_length(pools);
		     i++)
			left += json_object_get_int(json_object_object_get(
			        json_object_array_get_idx(pools, i), "live"));
		json_object_put(s);
		if (left == 0)
			break;
	}
	client_free(&c);
	return left;
}

int main(int argc, char **argv)
{
	int quick = 0, n = 1000, nclients = 64, per_client = 20;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1, n = 200, per_client = 5;
		else if (!strcmp(argv[i], "--execs") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--clients") && i + 1 < argc)
			nclients = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_mcp [--quick] [--execs N] [--clients N]\n");
			return 2;
		}
	}
	if (n < 10 || nclients < 1)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	char dir[] = "/tmp/bench-mcp-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	printf("rlm MCP benchmark (%s), local backend\n", quick ? "quick" : "full");
	double *capi = calloc((size_t)n, sizeof(double)), *http = calloc((size_t)n, sizeof(double));
	bench_capi(n, capi);
	double c50 = bench_pct(capi, n, 0.5), c99 = bench_pct(capi, n, 0.99), cmean = mean(capi, n);

	pid_t server = start_server(dir, nclients);
	struct client c;
	client_init(&c);
	char *sb = create_sandbox(&c);
	if (!sb) {
		fprintf(stderr, "bench_mcp: sandbox_create failed: %s\n", c.buf ? c.buf : "");
		kill(server, SIGTERM);
		return 1;
	}
	for (int i = -50; i < n; i++) {
		double t0 = now_s();
		if (!exec_in(&c, sb, "x = 1")) {
			fprintf(stderr, "bench_mcp: sandbox_exec failed: %s\n", c.buf ? c.buf : "");
			kill(server, SIGTERM);
			return 1;
		}
		if (i >= 0)
			http[i] = (now_s() - t0) * 1000;
	}
	destroy_sandbox(&c, sb);
	free(sb);
	client_free(&c);
	double h50 = bench_pct(http, n, 0.5), h99 = bench_pct(http, n, 0.99), hmean = mean(http, n);
	printf("(1) exec `x = 1`, C API             p50 %7.3f ms  p99 %7.3f ms  mean %7.3f ms  (%d "
	       "execs)\n",
	       c50, c99, cmean, n);
	printf("(2) sandbox_exec over HTTP (MCP)    p50 %7.3f ms  p99 %7.3f ms  mean %7.3f ms\n",
	       h50, h99, hmean);
	double allowed = 1.5 * c50 + 1.0;
	printf("    (2)/(1) p50 %.2fx, +%.3f ms; target (2) <= 1.5 x (1) + 1 ms = %.3f ms: %s\n",
	       h50 / c50, h50 - c50, allowed, h50 <= allowed ? "met" : "NOT met");
	bench_json_emit(&(struct bench_figure){.bench = "bench_mcp",
	                                       .metric = "exec_x1_capi_p50",
	                                       .label = "exec `x = 1`, C API, p50",
	                                       .value = c50,
	                                       .unit = "ms"});
	bench_json_emit(&(struct bench_figure){
	        .bench = "bench_mcp",
	        .metric = "exec_x1_mcp_p50",
	        .label = "sandbox_exec over MCP p50 (target 1.5 x C API + 1 ms)",
	        .value = h50,
	        .unit = "ms",
	        .target = allowed,
	        .target_op = "<="});

	struct worker *w = calloc((size_t)nclients, sizeof(*w));
	pthread_t *t = calloc((size_t)nclients, sizeof(*t));
	double *all = calloc((size_t)nclients * (size_t)per_client, sizeof(double));
	double t0 = now_s();
	for (int i = 0; i < nclients; i++) {
		w[i].execs = per_client;
		w[i].ms = all + (size_t)i * (size_t)per_client;
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	int errors = 0;
	for (int i = 0; i < nclients; i++) {
		pthread_join(t[i], NULL);
		errors += w[i].errors;
	}
	double wall = now_s() - t0;
	int total = nclients * per_client;
	int left = leftover_sandboxes();
	printf("(3) %d concurrent clients (create, %d execs, destroy each): %.2f s, %d errors, "
	       "exec p50 %.2f ms p99 %.2f ms, %.0f execs/s, %d sandboxes left\n",
	       nclients, per_client, wall, errors, bench_pct(all, total, 0.5),
	       bench_pct(all, total, 0.99), total / wall, left);
	bench_json_emit(&(struct bench_figure){.bench = "bench_mcp",
	                                       .metric = "concurrent_errors",
	                                       .label = "errors, concurrent MCP clients",
	                                       .value = errors,
	                                       .target = 0,
	                                       .target_op = "=="});
	bench_json_emit(&(struct bench_figure){.bench = "bench_mcp",
	                                       .metric = "concurrent_left",
	                                       .label = "sandboxes left, concurrent MCP clients",
	                                       .value = left,
	                                       .target = 0,
	                                       .target_op = "=="});
	kill(server, SIGTERM);
	int st = 0;
	waitpid(server, &st, 0);
	char path[600];
	snprintf(path, sizeof(path), "%s/port", dir);
	unlink(path);
	rmdir(dir);
	free(capi);
	free(http);
	free(w);
	free(t);
	free(all);
	curl_global_cleanup();
	return errors || left != 0 || !WIFEXITED(st) || WEXITSTATUS(st) ? 1 : 0;
}
