/* bench_loop.c - the host-side overhead of one RLM turn, the sandbox's and the LLM's own time
 * excluded: for every turn, the turn's wall time minus the time inside rlm_interp_execute and
 * inside the LLM plugin's complete() (both reported by rlm_run's progress callback). What is
 * left is the loop itself: building the request, extracting code blocks, formatting outputs,
 * the budget, the history and, when on, the trajectory line with its redaction. Target: under
 * 1 ms per turn.
 *
 * The replay LLM answers a scripted run of TURNS turns (a paragraph of prose and one ```repl
 * block that prints a line each, then a SUBMIT); RUNS runs reuse one interpreter. Measured
 * once without a trajectory and once with one.
 *
 *   build/bench/bench_loop [--quick]        (make bench runs it after bench_local)
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "bench_json.h"
#include "rlm/rlm.h"

#define TURNS 30

struct samples {
	double *overhead, *exec, *llm;
	int n, cap;
};

static void on_turn(void *ctx, const rlm_run_iteration *it)
{
	struct samples *s = ctx;
	if (s->n == s->cap || it->depth)
		return;
	s->overhead[s->n] = it->iteration_s - it->exec_s - it->llm_s;
	s->exec[s->n] = it->exec_s;
	s->llm[s->n] = it->llm_s;
	s->n++;
}

static double mean(const double *v, int n)
{
	double t = 0;
	for (int i = 0; i < n; i++)
		t += v[i];
	return n ? t / n : 0;
}

static void die(const char *what, const rlm_error *err)
{
	fprintf(stderr, "bench_loop: %s: %s\n", what, err->message);
	exit(1);
}

/* The script as inline JSON array text: TURNS - 1 working turns, then a SUBMIT. */
static char *make_script(void)
{
	json_object *a = json_object_new_array();
	char text[1024];
	for (int i = 1; i < TURNS; i++) {
		snprintf(text, sizeof(text),
		         "Step %d. The previous output looks consistent, so I will add the next "
		         "slice of numbers to the running total and print it, to check the "
		         "arithmetic as I go before moving on.\n"
		         "```repl\nacc = globals().get('acc', 0) + sum(range(%d))\n"
		         "print('step', %d, 'total', acc, 'context chars', len(context))\n```",
		         i, i * 100, i);
		json_object *e = json_object_new_object();
		json_object_object_add(e, "response", json_object_new_string(text));
		json_object_array_add(a, e);
	}
	json_object *e = json_object_new_object();
	json_object_object_add(e, "response",
	                       json_object_new_string("```repl\nSUBMIT(answer=str(acc))\n```"));
	json_object_array_add(a, e);
	char *s = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
	json_object_put(a);
	return s;
}

static void measure(rlm_config *cfg, rlm_interp *in, int runs, const char *trajectory,
                    const char *label, const char *metric)
{
	struct samples s = {.cap = runs * TURNS};
	s.overhead = calloc((size_t)s.cap, sizeof(double));
	s.exec = calloc((size_t)s.cap, sizeof(double));
	s.llm = calloc((size_t)s.cap, sizeof(double));
	static const char context[] = "a small context: the loop's overhead is what is measured";
	for (int i = 0; i < runs; i++) {
		rlm_run_options o = RLM_RUN_OPTIONS_INIT;
		o.task = "Add up the numbers, step by step.";
		o.context = context;
		o.interp = in;
		o.max_iterations = TURNS;
		o.trajectory_path = trajectory;
		o.on_iteration = on_turn;
		o.progress_ctx = &s;
		rlm_run_result *res = NULL;
		rlm_error err = RLM_ERROR_INIT;
		if (rlm_run(cfg, &o, &res, &err))
			die("rlm_run", &err);
		if (!res->answer || res->fallback || res->iterations != TURNS) {
			fprintf(stderr, "bench_loop: unexpected run (%d turns, answer %s)\n",
			        res->iterations, res->answer ? res->answer : "none");
			exit(1);
		}
		rlm_run_result_free(res);
	}
	double ex = mean(s.exec, s.n) * 1e3, ll = mean(s.llm, s.n) * 1e3;
	double m = mean(s.overhead, s.n) * 1e3;
	double p50 = bench_pct(s.overhead, s.n, 0.5) * 1e3,
	       p99 = bench_pct(s.overhead, s.n, 0.99) * 1e3;
	printf("%-22s overhead p50 %7.3f ms  p99 %7.3f ms  mean %7.3f ms  (exec %6.3f ms, "
	       "llm %6.3f ms; %d turns)  %s\n",
	       label, p50, p99, m, ex, ll, s.n,
	       p50 < 1.0 ? "target < 1 ms: met" : "target < 1 ms: NOT met");
	char what[96];
	snprintf(what, sizeof(what), "host overhead per turn p50, %s", label);
	if (metric) /* not the warm-up */
		bench_json_emit(&(struct bench_figure){.bench = "bench_loop",
		                                       .metric = metric,
		                                       .label = what,
		                                       .value = p50,
		                                       .unit = "ms",
		                                       .target = 1.0,
		                                       .target_op = "<"});
	free(s.overhead);
	free(s.exec);
	free(s.llm);
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	int runs = quick ? 3 : 20;
	rlm_config *cfg = NULL;
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	char *script = make_script();
	if (rlm_config_new(&cfg, &err) || rlm_config_apply_env(cfg, &err) ||
	    rlm_config_set(cfg, "llm.provider", "replay", &err) ||
	    rlm_config_set(cfg, "llm.script", script, &err))
		die("config", &err);
	free(script);
	if (rlm_interp_open(cfg, &in, &err))
		die("open", &err);
	char traj[256];
	const char *tmp = getenv("TMPDIR");
	snprintf(traj, sizeof(traj), "%s/rlm-bench-loop-%d.jsonl", tmp && *tmp ? tmp : "/tmp",
	         (int)getpid());
	printf("rlm loop benchmark (%s): host overhead per turn = turn time - exec - llm, "
	       "replay LLM, local backend, %d runs x %d turns\n",
	       quick ? "quick" : "full", runs, TURNS);
	measure(cfg, in, 1, NULL, "(warm-up)", NULL);
	measure(cfg, in, runs, NULL, "no trajectory", "turn_overhead_p50");
	measure(cfg, in, runs, traj, "with trajectory", "turn_overhead_p50_trajectory");
	unlink(traj);
	rlm_interp_close(in);
	rlm_config_free(cfg);
	return 0;
}
