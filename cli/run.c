/* run.c - `rlm run`: the RLM loop from the command line. Progress goes to stderr (one line per
 * turn), the answer to stdout (or one JSON object with --json). Every input (config, replay
 * script, context) is read before the trajectory is opened, and a trajectory path that is one
 * of the inputs is refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "signals.h"
#include "source.h"

static const char run_usage[] =
        "usage: rlm run -q TEXT [options]\n"
        "\n"
        "Runs an RLM: the model answers TEXT by writing Python into a sandboxed REPL where\n"
        "the context is the variable `context`.\n"
        "\n"
        "options:\n"
        "  -q, --query TEXT       the task (required)\n"
        "  --context FILE         file whose text becomes `context` (never put in the prompt);\n"
        "                         `-` reads it from standard input\n"
        "  --backend NAME         sandbox backend (default: config `backend`, else local)\n"
        "  --llm PROVIDER         openai, anthropic or replay (sets llm.provider)\n"
        "  --model NAME           model (sets llm.model)\n"
        "  --script FILE          replay script, JSONL or a recorded trajectory (sets\n"
        "                         llm.script; implies --llm replay when no provider is set)\n"
        "  --trajectory PATH      write the trajectory JSONL there (a directory: a new file\n"
        "                         in it); it may not be one of the input files\n"
        "  --max-iterations N     turns before the last call for an answer\n"
        "  --json                 print {answer, fallback, iterations, usage, trajectory}\n"
        "  --config FILE          config file\n"
        "  --set KEY=VALUE        override a config key, e.g. --set limits.max_llm_calls=50\n"
        "  -h, --help             this help\n"
        "\n"
        "SIGINT, SIGTERM or SIGHUP stops the run: the sandbox is closed, the trajectory\n"
        "finished, and rlm exits 128 + the signal (130 for Ctrl-C); a second one exits at once.\n"
        "\n"
        "exit status: 0 answered, 1 no answer, 2 usage, input or config error,\n"
        "             3 backend, LLM or infrastructure error\n";

struct run_args {
	struct cli_config_args cfg;
	const char *query;
	const char *context_file; /* "-": standard input */
	struct cli_llm_args llm;
	const char *trajectory;
	long max_iterations;
	int json;
	int help;
};

static int parse_run_args(int argc, char **argv, struct run_args *a)
{
	static const char *const with_value[] = {"-q",           "--query",          "--context",
	                                         "--llm",        "--model",          "--script",
	                                         "--trajectory", "--max-iterations", NULL};
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			a->help = 1;
			return EXIT_OK;
		}
		if (!strcmp(o, "--json")) {
			a->json = 1;
			continue;
		}
		int took = cli_take_config_option("run", argc, argv, &i, &a->cfg);
		if (took < 0)
			return EXIT_USAGE;
		if (took)
			continue;
		int takes = 0;
		for (const char *const *w = with_value; *w; w++)
			takes |= !strcmp(o, *w);
		if (!takes)
			return cli_usage_error("run",
			                       o[0] == '-' ? "unknown option \"%s\""
			                                   : "unexpected argument \"%s\" (the task "
			                                     "goes after -q)",
			                       o);
		if (i + 1 >= argc)
			return cli_usage_error("run", "%s needs a value", o);
		const char *v = argv[++i];
		if (!strcmp(o, "-q") || !strcmp(o, "--query"))
			a->query = v;
		else if (!strcmp(o, "--context"))
			a->context_file = v;
		else if (!strcmp(o, "--llm"))
			a->llm.llm = v;
		else if (!strcmp(o, "--model"))
			a->llm.model = v;
		else if (!strcmp(o, "--script"))
			a->llm.script = v;
		else if (!strcmp(o, "--trajectory"))
			a->trajectory = v;
		else {
			char *end;
			errno = 0;
			a->max_iterations = strtol(v, &end, 10);
			if (end == v || *end || errno || a->max_iterations <= 0)
				return cli_usage_error("run",
				                       "--max-iterations expects a positive whole "
				                       "number, got \"%s\"",
				                       v);
		}
	}
	if (!a->query || !*a->query)
		return cli_usage_error("run", "%s", "-q TEXT (the task) is required");
	return EXIT_OK;
}

/* ---- outputs never overwrite inputs ---- */

static int same_file(const struct stat *out, const struct stat *in)
{
	return out->st_dev == in->st_dev && out->st_ino == in->st_ino;
}

/* The file an output would write over when it is the input named path (NULL, "" and missing
 * files are not). */
static int overwrites(const struct stat *out, const char *path)
{
	struct stat in;
	return path && *path && stat(path, &in) == 0 && same_file(out, &in);
}

/* Refuses an output path that is one of the run's inputs: the same inode (a hard link or a
 * symlink included). An output that does not exist yet, or a directory (a new file is made
 * in it), cannot be one. Checked before anything is opened for writing. */
static int check_output(const char *what, const char *path, const struct run_args *a,
                        const rlm_config *cfg)
{
	struct stat out, in;
	if (stat(path, &out) != 0 || S_ISDIR(out.st_mode))
		return EXIT_OK;
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char user_cfg[4096] = "";
	if (xdg && *xdg)
		snprintf(user_cfg, sizeof(user_cfg), "%s/rlm/config.json", xdg);
	else if (home && *home)
		snprintf(user_cfg, sizeof(user_cfg), "%s/.config/rlm/config.json", home);
	const char *stdin_ctx = a->context_file && !strcmp(a->context_file, "-") ? "-" : NULL;
	const struct {
		const char *name, *path;
	} inputs[] = {
	        {"the --context file", stdin_ctx ? NULL : a->context_file},
	        {"the replay script (llm.script)", rlm_config_get_string(cfg, "llm.script", NULL)},
	        {"the replay script (sub_llm.script)",
	         rlm_config_get_string(cfg, "sub_llm.script", NULL)},
	        {"the --config file", a->cfg.config_file},
	        {"the config file named by RLM_CONFIG", getenv("RLM_CONFIG")},
	        {"the config file ./rlm.json", "rlm.json"},
	        {"the user's config file", user_cfg},
	};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		if (overwrites(&out, inputs[i].path))
			return cli_input_error(
			        "run", "%s %s is %s (%s): writing it would destroy the input", what,
			        path, inputs[i].name, inputs[i].path);
	if (stdin_ctx && fstat(STDIN_FILENO, &in) == 0 && same_file(&out, &in))
		return cli_input_error("run",
		                       "%s %s is the file standard input (--context -) reads: "
		                       "writing it would destroy the input",
		                       what, path);
	return EXIT_OK;
}

static int check_outputs(const struct run_args *a, const rlm_config *cfg)
{
	if (!a->trajectory)
		return EXIT_OK;
	int rc = check_output("--trajectory", a->trajectory, a, cfg);
	/* The run's summary goes to a sidecar beside the trajectory. */
	char *sidecar = rc ? NULL : rlm_trajectory_summary_path(a->trajectory);
	if (sidecar)
		rc = check_output("the trajectory's summary", sidecar, a, cfg);
	rlm_free(sidecar);
	return rc;
}

/* ---- progress and outcome ---- */

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
	return res->answer ? EXIT_OK : EXIT_FAILED;
}

static int run_loop(const struct run_args *a, const rlm_config *cfg, const char *context,
                    size_t context_len)
{
	rlm_run_options o = RLM_RUN_OPTIONS_INIT;
	o.task = a->query;
	o.context = context;
	o.context_len = context_len;
	o.trajectory_path = a->trajectory;
	o.max_iterations = a->max_iterations;
	o.on_iteration = on_iteration;
	o.cancel = cli_cancel_flag();
	rlm_run_result *res = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_run(cfg, &o, &res, &err);
	if (rc) {
		cli_error_from_rc(&err, rc);
		if (err.code == RLM_ECANCELLED && cli_signal_received())
			fprintf(stderr, "rlm run: stopped by %s\n", cli_signal_name());
		else
			fprintf(stderr, "rlm run: %s [%s]\n", err.message,
			        rlm_status_name(err.code));
		if (a->trajectory)
			fprintf(stderr,
			        "rlm run: what happened until then is in the trajectory (%s)\n",
			        a->trajectory);
		rc = cli_exit_for_error(&err);
	} else {
		rc = print_outcome(a, res);
	}
	rlm_run_result_free(res);
	return rc;
}

static int run_with_args(const struct run_args *a)
{
	rlm_config *cfg = NULL;
	int rc = cli_config_build("run", &a->cfg, &a->llm, &cfg);
	if (!rc)
		rc = check_outputs(a, cfg);
	/* The context is read here, before rlm_run opens the trajectory (after it has read the
	 * replay script): every input is in memory before any output is opened. */
	char *context = NULL;
	size_t context_len = 0;
	if (!rc && a->context_file)
		rc = cli_read_input("run", a->context_file, &context, &context_len);
	if (!rc && !cli_signal_received()) /* else cli_run exits with the signal's status */
		rc = run_loop(a, cfg, context, context_len);
	free(context);
	rlm_config_free(cfg);
	return rc;
}

int cli_run(int argc, char **argv)
{
	struct run_args a = {0};
	a.cfg.sets = calloc((size_t)argc + 1, sizeof(char *));
	if (!a.cfg.sets)
		return EXIT_INFRA;
	int rc = parse_run_args(argc, argv, &a);
	if (!rc && a.help) {
		fputs(run_usage, stdout);
	} else if (!rc) {
		cli_signals_install();
		rc = run_with_args(&a);
		/* A signal stops the run however it ended. */
		if (cli_signal_received())
			rc = cli_signal_exit_status();
	}
	free(a.cfg.sets);
	return rc;
}
