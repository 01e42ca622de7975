/* bench_llm.c - what llm_query_batched can expect from an LLM plugin: N complete() calls on
 * N threads against one instance should take about as long as one call.
 *
 * It starts the fake OpenAI server (tests/fakes/openai_server.py) answering every request
 * after --delay seconds (default 0.2, a fast model), loads the openai plugin through the
 * loader, and times one complete() and then N (default 16) concurrent ones, each the median
 * of --rounds rounds after one warm-up call. It prints both times and their ratio; the target
 * is a ratio of at most 1.5 (a miss is printed, and is no failure: the exit status is 1 only
 * when the calls could not be made).
 *
 *   bench_llm [--fake PATH] [--plugins DIR] [--python PY] [--delay S] [-n N] [--rounds R] */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "host.h"
#include "loader.h"
#include "rlm/rlm.h"

#include "bench_json.h"

#ifndef RLM_FAKES_DIR
#define RLM_FAKES_DIR "tests/fakes"
#endif
#ifndef RLM_LLM_PLUGIN_DIR
#define RLM_LLM_PLUGIN_DIR "build/lib/rlm/plugins"
#endif

#define TARGET_RATIO 1.5
#define MAX_THREADS  256
#define MAX_ROUNDS   50

struct options {
	const char *fake;
	const char *plugins;
	const char *python;
	double delay_s;
	int n;
	int rounds;
};

struct job {
	const rlm_llm_ops *ops;
	void *inst;
	int index;
	int rc;
	char message[RLM_ERROR_MESSAGE_MAX];
};

/* The fake's pid and stdin (closing it stops the fake); fills the base URL. */
static pid_t start_fake(const struct options *o, char *base_url, size_t size, FILE **in)
{
	char delay[32], line[64];
	int to_child[2], from_child[2];
	FILE *out;
	pid_t pid;

	snprintf(delay, sizeof(delay), "%g", o->delay_s);
	if (pipe2(to_child, O_CLOEXEC) || pipe2(from_child, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(to_child[0], 0);
		dup2(from_child[1], 1);
		execlp(o->python, o->python, o->fake, "--delay", delay, (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	*in = fdopen(to_child[1], "w");
	out = fdopen(from_child[0], "r");
	if (pid < 0 || !*in || !out || !fgets(line, sizeof(line), out)) {
		fprintf(stderr, "bench_llm: could not start %s %s\n", o->python, o->fake);
		return -1;
	}
	fclose(out);
	snprintf(base_url, size, "http://127.0.0.1:%d/v1", atoi(line));
	return pid;
}

static int one_call(const rlm_llm_ops *ops, void *inst, int index, rlm_error *err)
{
	char prompt[64];
	rlm_llm_message msg = {"user", prompt};
	rlm_llm_request req;
	rlm_llm_response resp;
	int rc;

	snprintf(prompt, sizeof(prompt), "prompt %d", index);
	memset(&req, 0, sizeof(req));
	req.abi_version = RLM_ABI_VERSION;
	req.struct_size = sizeof(req);
	req.messages = &msg;
	req.n_messages = 1;
	req.temperature = -1;
	req.timeout_s = 30;
	memset(&resp, 0, sizeof(resp));
	resp.abi_version = RLM_ABI_VERSION;
	resp.struct_size = sizeof(resp);
	rc = ops->complete(inst, &req, &resp, err);
	rlm__host()->free(resp.text.data);
	return rc;
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	rlm_error err = RLM_ERROR_INIT;

	j->rc = one_call(j->ops, j->inst, j->index, &err);
	snprintf(j->message, sizeof(j->message), "%s", err.message);
	return NULL;
}

/* Seconds for n concurrent calls (n = 1: one call on this thread); < 0 on failure. */
static double timed_batch(const rlm_llm_ops *ops, void *inst, int n)
{
	static struct job jobs[MAX_THREADS];
	static pthread_t threads[MAX_THREADS];
	double start = rlm__host()->now(), elapsed;
	int failed = 0;

	for (int i = 0; i < n; i++) {
		jobs[i] = (struct job){.ops = ops, .inst = inst, .index = i};
		if (pthread_create(&threads[i], NULL, job_main, &jobs[i]) != 0) {
			fprintf(stderr, "bench_llm: pthread_create failed\n");
			n = i;
			failed = 1;
			break;
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	elapsed = rlm__host()->now() - start;
	for (int i = 0; i < n; i++) {
		if (jobs[i].rc != 0) {
			fprintf(stderr, "bench_llm: call %d: %s: %s\n", i,
			        rlm_status_name(jobs[i].rc), jobs[i].message);
			failed = 1;
		}
	}
	return failed ? -1 : elapsed;
}

/* The median of rounds timings of n concurrent calls; < 0 on failure. */
static double median_batch(const rlm_llm_ops *ops, void *inst, int n, int rounds)
{
	double t[MAX_ROUNDS];

	for (int r = 0; r < rounds; r++)
		if ((t[r] = timed_batch(ops, inst, n)) < 0)
			return -1;
	qsort(t, (size_t)rounds, sizeof(t[0]), cmp_double);
	return t[rounds / 2];
}

static void *open_instance(const struct options *o, const char *base_url, rlm_plugin **plugin,
                           const rlm_llm_ops **ops)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	char path[1100], config[512];
	void *inst = NULL;

	snprintf(path, sizeof(path), "[\"%s\"]", o->plugins);
	if (rlm_config_new(&cfg, &err) || rlm_config_set(cfg, "plugin_path", path, &err) ||
	    rlm__plugin_acquire(cfg, RLM_PLUGIN_LLM, "openai", plugin, &err)) {
		fprintf(stderr, "bench_llm: %s\n", err.message);
		rlm_config_free(cfg);
		return NULL;
	}
	rlm_config_free(cfg);
	*ops = rlm__plugin_desc(*plugin)->ops;
	snprintf(config, sizeof(config),
	         "{\"model\": \"bench-model\", \"base_url\": \"%s\", \"max_retries\": 0}",
	         base_url);
	if ((*ops)->create(rlm__host(), config, &inst, &err) != 0) {
		fprintf(stderr, "bench_llm: create: %s\n", err.message);
		rlm__plugin_release(*plugin);
		return NULL;
	}
	return inst;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			return -1;
		if (!strcmp(a, "--fake"))
			o->fake = v;
		else if (!strcmp(a, "--plugins"))
			o->plugins = v;
		else if (!strcmp(a, "--python"))
			o->python = v;
		else if (!strcmp(a, "--delay"))
			o->delay_s = atof(v);
		else if (!strcmp(a, "-n"))
			o->n = atoi(v);
		else if (!strcmp(a, "--rounds"))
			o->rounds = atoi(v);
		else
			return -1;
		i++;
	}
	if (o->n < 1 || o->n > MAX_THREADS || o->rounds < 1 || o->rounds > MAX_ROUNDS ||
	    o->delay_s < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {
	        RLM_FAKES_DIR "/openai_server.py", RLM_LLM_PLUGIN_DIR, "python3", 0.2, 16, 5};
	rlm_error err = RLM_ERROR_INIT;
	const rlm_llm_ops *ops = NULL;
	rlm_plugin *plugin = NULL;
	char base_url[64];
	double one, many;
	void *inst;
	FILE *fake_in = NULL;
	pid_t pid;
	int status = 1;

	if (parse_args(argc, argv, &o)) {
		fprintf(stderr,
		        "usage: bench_llm [--fake PATH] [--plugins DIR] [--python PY] "
		        "[--delay S] [-n N (1..%d)] [--rounds R (1..%d)]\n",
		        MAX_THREADS, MAX_ROUNDS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((pid = start_fake(&o, base_url, sizeof(base_url), &fake_in)) < 0)
		return 1;
	inst = open_instance(&o, base_url, &plugin, &ops);
	/* One warm-up call: the connection and the HTTP helper's first-use setup. */
	if (inst && one_call(ops, inst, -1, &err) != 0)
		fprintf(stderr, "bench_llm: warm-up: %s\n", err.message);
	else if (inst && (one = median_batch(ops, inst, 1, o.rounds)) >= 0 &&
	         (many = median_batch(ops, inst, o.n, o.rounds)) >= 0) {
		printf("fake server delay:          %.3f s\n", o.delay_s);
		printf("one complete():             %.4f s (median of %d)\n", one, o.rounds);
		printf("%d concurrent complete():   %.4f s (median of %d)\n", o.n, many, o.rounds);
		printf("ratio:                      %.3f (target <= %.1f)\n", many / one,
		       TARGET_RATIO);
		bench_json_emit(&(struct bench_figure){.bench = "bench_llm",
		                                       .metric = "concurrent_over_one",
		                                       .label = "concurrent complete(), median",
		                                       .value = many,
		                                       .unit = "s",
		                                       .baseline_label = "one complete(), median",
		                                       .baseline = one,
		                                       .target = TARGET_RATIO,
		                                       .target_op = "<="});
		status = 0;
	}
	if (inst)
		ops->destroy(inst);
	if (plugin)
		rlm__plugin_release(plugin);
	fclose(fake_in); /* the fake exits when its stdin closes */
	waitpid(pid, NULL, 0);
	return status;
}
