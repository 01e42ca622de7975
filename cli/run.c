/* run.c - `rlm run`: the RLM loop from the command line. Progress goes to stderr (one line per
 * turn), the answer to stdout (or one JSON object with --json). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rlm/rlm.h"

enum { RUN_OK = 0, RUN_NO_ANSWER = 1, RUN_USAGE = 2, RUN_INFRA = 3 };

static const char run_usage[] =
        "usage: rlm run -q TEXT [options]\n"
        "\n"
        "Runs an RLM: the model answers TEXT by writing Python into a sandboxed REPL where\n"
        "the context file is the variable `context`.\n"
        "\n"
        "options:\n"
        "  -q, --query TEXT       the task (required)\n"
        "  --context FILE         file whose text becomes `context` (never put in the prompt)\n"
        "  --backend NAME         sandbox backend (default: config `backend`, else local)\n"
        "  --llm PROVIDER         openai, anthropic or replay (sets llm.provider)\n"
        "  --model NAME           model (sets llm.model)\n"
        "  --script FILE          replay script, JSONL or a recorded trajectory (sets\n"
        "                         llm.script; implies --llm replay when no provider is set)\n"
        "  --trajectory PATH      write the trajectory JSONL there (a directory: a new file\n"
        "                         in it)\n"
        "  --max-iterations N     turns before the last call for an answer\n"
        "  --json                 print {answer, fallback, iterations, usage, trajectory}\n"
        "  --config FILE          config file\n"
        "  --set KEY=VALUE        override a config key, e.g. --set limits.max_llm_calls=50\n"
        "\n"
        "exit status: 0 answered, 1 no answer, 2 usage or config error,\n"
        "             3 backend, LLM or infrastructure error\n";

struct run_args {
	const char *query;
	const char *context_file;
	const char *backend;
	const char *llm;
	const char *model;
	const char *script;
	const char *trajectory;
	const char *config_file;
	long max_iterations;
	int json;
	const char **sets;
	int nsets;
};

static int run_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "rlm run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see `rlm run --help`)\n");
	return RUN_USAGE;
}

static int parse_run_args(int argc, char **argv, struct run_args *a, int *help)
{
	static const char *const with_value[] = {
	        "-q",       "--query", "--context",        "--backend",
	        "--llm",    "--model", "--script",         "--trajectory",
	        "--config", "--set",   "--max-iterations", NULL};
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			*help = 1;
			return 0;
		}
		if (!strcmp(o, "--json")) {
			a->json = 1;
			continue;
		}
		int takes = 0;
		for (const char *const *w = with_value; *w; w++)
			takes |= !strcmp(o, *w);
		if (!takes)
			return run_usage_error(o[0] == '-' ? "unknown option \"%s\""
			                                   : "unexpected argument \"%s\" (the task "
			                                     "goes after -q)",
			                       o);
		if (i + 1 >= argc)
			return run_usage_error("%s needs a value", o);
		const char *v = argv[++i];
		if (!strcmp(o, "-q") || !strcmp(o, "--query"))
			a->query = v;
		else if (!strcmp(o, "--context"))
			a->context_file = v;
		else if (!strcmp(o, "--backend"))
			a->backend = v;
		else if (!strcmp(o, "--llm"))
			a->llm = v;
		else if (!strcmp(o, "--model"))
			a->model = v;
		else if (!strcmp(o, "--script"))
			a->script = v;
		else if (!strcmp(o, "--trajectory"))
			a->trajectory = v;
		else if (!strcmp(o, "--config"))
			a->config_file = v;
		else if (!strcmp(o, "--set"))
			a->sets[a->nsets++] = v;
		else {
			char *end;
			errno = 0;
			a->max_iterations = strtol(v, &end, 10);
			if (*end || errno || a->max_iterations <= 0)
				return run_usage_error("--max-iterations expects a positive whole "
				                       "number, got \"%s\"",
				                       v);
		}
	}
	if (!a->query || !*a->query)
		return run_usage_error("%s", "-q TEXT (the task) is required");
	return 0;
}

static int exit_for(int code)
{
	return code == RLM_ECONFIG || code == RLM_EINVAL || code == RLM_ENOTFOUND ||
	                       code == RLM_EPLUGIN
	               ? RUN_USAGE
	               : RUN_INFRA;
}

static int config_error(const rlm_error *err)
{
	fprintf(stderr, "rlm run: config: %s [%s]\n", err->message, rlm_status_name(err->code));
	return exit_for(err->code);
}

static int build_run_config(const struct run_args *a, rlm_config **out)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	int rc = rlm_config_new(&cfg, &err);
	if (!rc)
		rc = a->config_file ? rlm_config_load_file(cfg, a->config_file, &err)
		                    : rlm_config_load_default_files(cfg, &err);
	if (!rc)
		rc = rlm_config_apply_env(cfg, &err);
	if (!rc && a->backend)
		rc = rlm_config_set(cfg, "backend", a->backend, &err);
	if (!rc && a->llm)
		rc = rlm_config_set(cfg, "llm.provider", a->llm, &err);
	if (!rc && a->model)
		rc = rlm_config_set(cfg, "llm.model", a->model, &err);
	if (!rc && a->script) {
		/* A path is a plain string: quote it so "[...]"-looking names stay paths. */
		json_object *path = json_object_new_string(a->script);
		rc = rlm_config_set(cfg, "llm.script",
		                    json_object_to_json_string_ext(path, JSON_C_TO_STRING_PLAIN),
		                    &err);
		json_object_put(path);
		if (!rc && !rlm_config_get_string(cfg, "llm.provider", NULL))
			rc = rlm_config_set(cfg, "llm.provider", "replay", &err);
	}
	for (int i = 0; !rc && i < a->nsets; i++)
		rc = rlm_config_set_assignment(cfg, a->sets[i], &err);
	if (!rc)
		rc = rlm_config_validate(cfg, &err);
	if (rc) {
		rlm_config_free(cfg);
		return config_error(&err);
	}
	*out = cfg;
	return 0;
}

static void print_tokens(long in, long out)
{
	if (in < 0 && out < 0)
		fprintf(stderr, "  tokens ?");
	else
		fprintf(stderr, "  tokens %ld in / %ld out", in < 0 ? 0 : in, out < 0 ? 0 : out);
}

/* One line per turn on stderr: iteration, blocks, exec time, tokens, calls left. */
static void on_iteration(void *ctx, const rlm_run_iteration *it)
{
	(void)ctx;
	fprintf(stderr, "rlm: %*s", it->depth * 2, "");
	if (it->depth)
		fprintf(stderr, "child@%d ", it->depth);
	if (it->fallback)
		fprintf(stderr, "iterations ran out: last call for the answer  llm %.2f s",
		        it->llm_s);
	else
		fprintf(stderr, "iteration %d/%d  blocks %d  exec %.1f ms  llm %.2f s",
		        it->iteration, it->max_iterations, it->blocks, it->exec_s * 1000.0,
		        it->llm_s);
	print_tokens(it->prompt_tokens, it->completion_tokens);
	fprintf(stderr, "  calls left %ld/%ld%s\n", it->llm_calls_max - it->llm_calls_used,
	        it->llm_calls_max, it->submitted ? "  SUBMIT" : "");
}

static int print_outcome(const struct run_args *a, const rlm_run_result *res)
{
	if (a->json) {
		char *j = rlm_run_result_to_json(res);
		printf("%s\n", j ? j : "{}");
		rlm_free(j);
	} else if (res->answer) {
		printf("%s\n", res->answer);
	}
	fflush(stdout);
	fprintf(stderr, "rlm: %s after %d iteration%s, %ld LLM call%s, %.2f s\n",
	        !res->answer    ? "no answer"
	        : res->fallback ? "fallback answer (iterations ran out)"
	                        : "answered (SUBMIT)",
	        res->iterations, res->iterations == 1 ? "" : "s", res->usage.llm_calls,
	        res->usage.llm_calls == 1 ? "" : "s", res->duration_s);
	if (res->trajectory_path)
		fprintf(stderr, "rlm: trajectory: %s\n", res->trajectory_path);
	return res->answer ? RUN_OK : RUN_NO_ANSWER;
}

int rlm_cli_run(int argc, char **argv);

int rlm_cli_run(int argc, char **argv)
{
	struct run_args a = {0};
	int help = 0;
	a.sets = calloc((size_t)argc + 1, sizeof(char *));
	if (!a.sets)
		return RUN_INFRA;
	int rc = parse_run_args(argc, argv, &a, &help);
	if (help) {
		fputs(run_usage, stdout);
		free(a.sets);
		return RUN_OK;
	}
	rlm_config *cfg = NULL;
	if (!rc)
		rc = build_run_config(&a, &cfg);
	if (rc) {
		free(a.sets);
		return rc;
	}
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = a.query;
	o.context_file = a.context_file;
	o.trajectory_path = a.trajectory;
	o.max_iterations = a.max_iterations;
	o.on_iteration = on_iteration;
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_run(cfg, &o, &res, &err)) {
		fprintf(stderr, "rlm run: %s [%s]\n", err.message, rlm_status_name(err.code));
		if (a.trajectory)
			fprintf(stderr,
			        "rlm run: what happened until then is in the trajectory (%s)\n",
			        a.trajectory);
		rc = exit_for(err.code);
	} else {
		rc = print_outcome(&a, res);
	}
	rlm_run_result_free(res);
	rlm_config_free(cfg);
	free(a.sets);
	return rc;
}
