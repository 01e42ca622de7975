/* eval.c - `rlm eval`: run a task file (rlm_eval_run), `rlm eval report` (rlm_eval_report) and
 * `rlm eval gen` (rlm_eval_generate). The engine is in librlm (rlm/eval.h); this file parses
 * flags, turns SIGINT/SIGTERM/SIGHUP into the eval's cancel flag, prints progress and the
 * summary, and maps the outcome to the exit status a scheduler reads. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rlm/rlm.h"

/* 0: every task ok or task_error; 1: some missing or infra_error (a stopped run included);
 * 2: usage or configuration error; 3: the backend or LLM was unusable before any task ran. */
enum { EVAL_OK = 0, EVAL_INCOMPLETE = 1, EVAL_USAGE = 2, EVAL_UNUSABLE = 3 };

static const char eval_usage[] =
        "usage: rlm eval TASKS.jsonl --out DIR [options]\n"
        "       rlm eval report DIR... [--json] [--html FILE]\n"
        "       rlm eval gen sniah|count --n N [--length CHARS] [--seed S] [--context-dir DIR]\n"
        "\n"
        "Runs every task of TASKS.jsonl (one {\"id\", \"query\", \"context\" or \"context_file\",\n"
        "\"expected\", \"scorer\", \"options\"} per line) as an RLM on a sandbox pool, scores the\n"
        "answers and appends one row per task to DIR/results.jsonl. Running it again with the\n"
        "same --out resumes: ok and task_error rows are kept, missing and infra_error tasks\n"
        "run again. Ctrl-C stops cleanly (a second one at once).\n"
        "\n"
        "options:\n"
        "  --out DIR              results, trajectories (required)\n"
        "  --concurrency N        tasks at once (default: --max-live, else 4); also the pool's\n"
        "                         max_live unless --max-live is given\n"
        "  --backend NAME         sandbox backend\n"
        "  --llm PROVIDER         openai, anthropic or replay (llm.provider)\n"
        "  --model NAME           llm.model\n"
        "  --script FILE          replay script (llm.script; implies --llm replay)\n"
        "  --set KEY=VALUE        config override (repeatable)\n"
        "  --config FILE          config file\n"
        "  --task-timeout S       each task's time limit in seconds\n"
        "  --scorer NAME          scorer of tasks that name none: exact (default), contains,\n"
        "                         regex, numeric, f1, cmd:COMMAND\n"
        "  --scorer-timeout S     a cmd: scorer's time limit (default 60)\n"
        "  --limit N              only the first N tasks (of the shard)\n"
        "  --shard K/N            only the tasks whose id hashes to K of N (default: from\n"
        "                         SLURM_ARRAY_TASK_ID/_MIN/_COUNT or JOB_COMPLETION_INDEX)\n"
        "  --shards N             shard count for JOB_COMPLETION_INDEX (Kubernetes)\n"
        "  --retries N            new attempts after an infra_error (default 2)\n"
        "  --max-live N           pool: sandboxes alive at once\n"
        "  --creates-per-s R      pool: sandbox creations per second (host-wide)\n"
        "  --warm N               pool: sandboxes created ahead of demand\n"
        "  --run-id ID            pool: the rlm-run label of the sandboxes (for backends gc)\n"
        "  --dry-run              check the task file and config, say what would run\n"
        "\n"
        "exit status: 0 every task ok or task_error, 1 some task missing or infra_error\n"
        "(also when stopped by a signal), 2 usage or configuration error (a bad task file\n"
        "included), 3 the backend or LLM was unusable before any task ran\n";

struct eval_args {
	struct cli_config_args cfg;
	struct cli_llm_args llm;
	const char **sets;
	rlm_eval_options o;
	rlm_pool_options pool;
	long shards; /* --shards, for JOB_COMPLETION_INDEX */
	int shard_given;
};

static int eval_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "rlm eval: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see `rlm eval --help`)\n");
	return EVAL_USAGE;
}

/* An error that kept the eval from starting, or that stopped it before any task finished:
 * the configuration's (2) or the backend's / LLM's (3). */
static int exit_for_error(int code)
{
	return code == RLM_ECONFIG || code == RLM_EINVAL || code == RLM_ENOTFOUND ||
	                       code == RLM_EPLUGIN
	               ? EVAL_USAGE
	               : EVAL_UNUSABLE;
}

/* ---- numbers in flags ---- */

static int parse_long(const char *flag, const char *v, long min, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (*end || errno || n < min || end == v) {
		fprintf(stderr, "rlm eval: %s expects a whole number >= %ld, got \"%s\"\n", flag,
		        min, v);
		return EVAL_USAGE;
	}
	*out = n;
	return 0;
}

static int parse_seconds(const char *flag, const char *v, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (*end || errno || !(d > 0) || end == v || !isfinite(d)) {
		fprintf(stderr, "rlm eval: %s expects a positive number, got \"%s\"\n", flag, v);
		return EVAL_USAGE;
	}
	*out = d;
	return 0;
}

static int parse_shard(const char *v, rlm_eval_options *o)
{
	long k, n;
	char tail;
	if (sscanf(v, "%ld/%ld%c", &k, &n, &tail) != 2 || n < 1 || k < 0 || k >= n)
		return eval_usage_error("--shard expects K/N with 0 <= K < N, got \"%s\"", v);
	o->shard_index = k;
	o->shard_count = n;
	return 0;
}

/* ---- `rlm eval TASKS --out DIR` ---- */

static int parse_eval_value(struct eval_args *a, const char *opt, const char *v)
{
	rlm_eval_options *o = &a->o;
	long n;
	int rc = 0;
	if (!strcmp(opt, "--out"))
		o->out_dir = v;
	else if (!strcmp(opt, "--concurrency"))
		rc = parse_long(opt, v, 1, &o->concurrency);
	else if (!strcmp(opt, "--backend"))
		a->cfg.backend = v;
	else if (!strcmp(opt, "--llm"))
		a->llm.llm = v;
	else if (!strcmp(opt, "--model"))
		a->llm.model = v;
	else if (!strcmp(opt, "--script"))
		a->llm.script = v;
	else if (!strcmp(opt, "--set"))
		a->sets[a->cfg.nsets++] = v;
	else if (!strcmp(opt, "--config"))
		a->cfg.config_file = v;
	else if (!strcmp(opt, "--task-timeout"))
		rc = parse_seconds(opt, v, &o->task_timeout_s);
	else if (!strcmp(opt, "--scorer-timeout"))
		rc = parse_seconds(opt, v, &o->scorer_timeout_s);
	else if (!strcmp(opt, "--scorer"))
		o->scorer = v;
	else if (!strcmp(opt, "--limit"))
		rc = parse_long(opt, v, 1, &o->limit);
	else if (!strcmp(opt, "--shard"))
		rc = parse_shard(v, o), a->shard_given = 1;
	else if (!strcmp(opt, "--shards"))
		rc = parse_long(opt, v, 1, &a->shards);
	else if (!strcmp(opt, "--retries"))
		rc = parse_long(opt, v, 0, &o->retries);
	else if (!strcmp(opt, "--max-live"))
		rc = parse_long(opt, v, 1, &a->pool.max_live);
	else if (!strcmp(opt, "--creates-per-s"))
		rc = parse_seconds(opt, v, &a->pool.creates_per_s);
	else if (!strcmp(opt, "--warm") && !(rc = parse_long(opt, v, 0, &n)))
		a->pool.warm = n;
	else if (!strcmp(opt, "--run-id"))
		a->pool.run_id = v;
	return rc;
}

static int parse_eval_args(int argc, char **argv, struct eval_args *a, int *help)
{
	static const char *const with_value[] = {"--out",
	                                         "--concurrency",
	                                         "--backend",
	                                         "--llm",
	                                         "--model",
	                                         "--script",
	                                         "--set",
	                                         "--config",
	                                         "--task-timeout",
	                                         "--scorer",
	                                         "--limit",
	                                         "--shard",
	                                         "--shards",
	                                         "--retries",
	                                         "--max-live",
	                                         "--warm",
	                                         "--run-id",
	                                         "--creates-per-s",
	                                         "--scorer-timeout",
	                                         NULL};
	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			*help = 1;
			return 0;
		}
		if (!strcmp(opt, "--dry-run")) {
			a->o.dry_run = 1;
			continue;
		}
		int takes = 0;
		for (const char *const *w = with_value; *w; w++)
			takes |= !strcmp(opt, *w);
		if (!takes && opt[0] == '-' && opt[1])
			return eval_usage_error("unknown option \"%s\"", opt);
		if (!takes) {
			if (a->o.tasks_path)
				return eval_usage_error("one task file only (\"%s\")", opt);
			a->o.tasks_path = opt;
			continue;
		}
		if (i + 1 >= argc)
			return eval_usage_error("%s needs a value", opt);
		int rc = parse_eval_value(a, opt, argv[++i]);
		if (rc)
			return rc;
	}
	if (!a->o.tasks_path)
		return eval_usage_error("%s", "give the task file (TASKS.jsonl)");
	if (!a->o.out_dir)
		return eval_usage_error("%s", "--out DIR is required");
	return 0;
}

/* ---- signals ---- */

static volatile int eval_cancel;

static void on_signal(int sig)
{
	(void)sig;
	if (eval_cancel)
		_exit(130);
	eval_cancel = 1;
	static const char msg[] = "\nrlm eval: stopping: tasks in flight are cancelled (a rerun "
	                          "redoes them); signal again to quit at once\n";
	ssize_t n = write(2, msg, sizeof(msg) - 1);
	(void)n;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- progress ---- */

static void fmt_duration(char *buf, size_t size, double s)
{
	long t = (long)(s + 0.5);
	if (t < 60)
		snprintf(buf, size, "%lds", t);
	else if (t < 3600)
		snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(buf, size, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
}

static void fmt_eta(char *buf, size_t size, double s)
{
	if (s < 0)
		snprintf(buf, size, "ETA ?");
	else if (s < 60)
		snprintf(buf, size, "ETA %lds", (long)(s + 0.5));
	else if (s < 3600)
		snprintf(buf, size, "ETA %ldm", (long)(s / 60 + 0.5));
	else
		snprintf(buf, size, "ETA %ldh%02ldm", (long)(s / 3600), ((long)s % 3600) / 60);
}

struct progress {
	int tty;
	int drawn; /* the updating line is on screen */
};

static void on_progress(void *ctx, const rlm_eval_progress *p)
{
	struct progress *pr = ctx;
	char elapsed[32], eta[32], score[32];
	fmt_duration(elapsed, sizeof(elapsed), p->elapsed_s);
	fmt_eta(eta, sizeof(eta), p->eta_s);
	if (isnan(p->mean_score))
		snprintf(score, sizeof(score), "-");
	else
		snprintf(score, sizeof(score), "%.2f", p->mean_score);
	if (pr->tty) {
		/* failures get a line of their own above the updating one */
		if (p->error)
			fprintf(stderr, "\r\033[K%s %s: %.300s\n", p->status, p->id, p->error);
		fprintf(stderr,
		        "\r\033[K[%ld/%ld] ok %ld task_error %ld infra %ld | score %s | %s, %s",
		        p->done, p->total, p->ok, p->task_error, p->infra_error, score, elapsed,
		        eta);
		pr->drawn = 1;
	} else {
		fprintf(stderr, "[%ld/%ld] %-11s %s", p->done, p->total, p->status, p->id);
		if (!isnan(p->score))
			fprintf(stderr, "  score %.3f", p->score);
		fprintf(stderr, "  %.1fs", p->duration_s);
		if (p->attempt > 1)
			fprintf(stderr, "  (attempt %d)", p->attempt);
		if (p->error)
			fprintf(stderr, "  %.200s", p->error);
		fprintf(stderr, "  | score %s | %s, %s\n", score, elapsed, eta);
	}
	fflush(stderr);
}

/* ---- the outcome ---- */

static void print_summary(const rlm_eval_summary *s)
{
	printf("rlm eval: %ld task%s: ok %ld, task_error %ld, infra_error %ld, missing %ld\n",
	       s->total, s->total == 1 ? "" : "s", s->ok, s->task_error, s->infra_error,
	       s->missing);
	if (s->scored)
		printf("  score: mean %.3f over %ld scored\n", s->mean_score, s->scored);
	else
		printf("  score: none scored\n");
	printf("  task time: p50 %.3g s, p95 %.3g s\n", s->p50_s, s->p95_s);
	printf("  tokens: %ld in, %ld out; %ld LLM calls\n", s->tokens_in, s->tokens_out,
	       s->llm_calls);
	char wall[32];
	fmt_duration(wall, sizeof(wall), s->wall_s);
	printf("  this run: %ld task%s in %s (%.1f tasks/min)", s->finished,
	       s->finished == 1 ? "" : "s", wall, s->tasks_per_min);
	if (s->kept)
		printf("; %ld kept from an earlier run", s->kept);
	if (s->workers) {
		printf("\n  pool: %ld at once, max_live %ld, ", s->workers, s->max_live);
		if (s->creates_per_s > 0)
			printf("%.3g creations/s", s->creates_per_s);
		else
			printf("creations unlimited");
		if (s->run_id[0])
			printf("; run id %s (rlm backends gc NAME --run %s)", s->run_id, s->run_id);
	}
	printf("\n  results: %s\n", s->results_path ? s->results_path : "-");
	fflush(stdout);
}

static int outcome(const rlm_eval_options *o, const rlm_eval_summary *s)
{
	if (o->dry_run) {
		printf("rlm eval --dry-run: the task file and config are valid; %ld task%s in this "
		       "eval, %ld kept from an earlier run, %ld to run\n",
		       s->total, s->total == 1 ? "" : "s", s->kept, s->to_run);
		return EVAL_OK;
	}
	print_summary(s);
	if (s->stop_code)
		fprintf(stderr, "rlm eval: stopped early%s: %s\n",
		        s->unusable ? " (nothing finished: the backend or LLM is unusable)" : "",
		        s->stop_message);
	if (s->cancelled)
		fprintf(stderr, "rlm eval: stopped by a signal; run the same command again to "
		                "resume\n");
	if (s->unusable)
		return exit_for_error(s->stop_code);
	if (s->cancelled || s->stop_code || s->missing || s->infra_error)
		return EVAL_INCOMPLETE;
	return EVAL_OK;
}

static int run_eval(struct eval_args *a)
{
	rlm_eval_options *o = &a->o;
	if (!a->shard_given) {
		rlm_error err = RLM_ERROR_INIT;
		if (rlm_eval_shard_from_env(a->shards, &o->shard_index, &o->shard_count, &err)) {
			fprintf(stderr, "rlm eval: %s\n", err.message);
			return EVAL_USAGE;
		}
	} else if (a->shards && a->shards != o->shard_count) {
		return eval_usage_error("--shards %s disagrees with --shard", "N");
	}
	rlm_config *cfg = NULL;
	int crc = cli_config_build("eval", &a->cfg, &a->llm, &cfg);
	if (crc)
		return crc;
	rlm_error err = RLM_ERROR_INIT;
	struct progress pr = {.tty = isatty(2)};
	o->pool = &a->pool;
	o->cancel = &eval_cancel;
	o->on_progress = on_progress;
	o->progress_ctx = &pr;
	if (o->shard_count > 0 && !o->dry_run)
		fprintf(stderr, "rlm eval: shard %ld of %ld\n", o->shard_index, o->shard_count);
	install_signals();
	rlm_eval_summary *s = NULL;
	int rc = rlm_eval_run(cfg, o, &s, &err);
	if (pr.drawn)
		fputc('\n', stderr);
	if (rc) {
		fprintf(stderr, "rlm eval: %s [%s]\n", err.message, rlm_status_name(rc));
		/* RLM_EIO here: the --out directory cannot be made or written, a usage error */
		rc = eval_cancel && rc == RLM_ECANCELLED ? EVAL_INCOMPLETE
		     : rc == RLM_EIO                     ? EVAL_USAGE
		                                         : exit_for_error(rc);
	} else {
		rc = outcome(o, s);
	}
	rlm_eval_summary_free(s);
	rlm_config_free(cfg);
	return rc;
}

/* ---- `rlm eval report` ---- */

static int write_file(const char *path, const char *text)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	int ok = f && fputs(text, f) >= 0;
	if (f && fclose(f) != 0)
		ok = 0;
	if (ok && rename(tmp, path) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, "rlm eval report: cannot write %s: %s\n", path, strerror(errno));
		unlink(tmp);
	}
	return ok ? 0 : EVAL_USAGE;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

static int report_html(const char *const *paths, size_t n, const char *file)
{
	char *dir = dir_of(file), *html = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_eval_report(paths, n, RLM_EVAL_REPORT_HTML, dir, &html, &err);
	free(dir);
	if (rc) {
		fprintf(stderr, "rlm eval report: %s\n", err.message);
		return EVAL_USAGE;
	}
	rc = write_file(file, html);
	rlm_free(html);
	if (!rc)
		fprintf(stderr, "rlm eval report: wrote %s\n", file);
	return rc;
}

static int cmd_report(int argc, char **argv)
{
	const char **paths = calloc((size_t)argc + 1, sizeof(char *));
	size_t n = 0;
	int json = 0, rc = 0;
	const char *html = NULL;
	for (int i = 0; i < argc && !rc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(eval_usage, stdout);
			free(paths);
			return EVAL_OK;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--html")) {
			if (i + 1 >= argc)
				rc = eval_usage_error("%s needs a value", argv[i]);
			else
				html = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			rc = eval_usage_error("unknown option \"%s\"", argv[i]);
		} else {
			paths[n++] = argv[i];
		}
	}
	if (!rc && n == 0)
		rc = eval_usage_error("%s", "usage: rlm eval report DIR... [--json] [--html FILE]");
	char *text = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (!rc && rlm_eval_report(paths, n, json ? RLM_EVAL_REPORT_JSON : RLM_EVAL_REPORT_TEXT,
	                           NULL, &text, &err)) {
		fprintf(stderr, "rlm eval report: %s\n", err.message);
		rc = EVAL_USAGE;
	}
	if (!rc) {
		fputs(text, stdout);
		fflush(stdout);
	}
	rlm_free(text);
	if (!rc && html)
		rc = report_html(paths, n, html);
	free(paths);
	return rc;
}

/* ---- `rlm eval gen` ---- */

static int emit_line(void *ctx, const char *line, size_t len)
{
	FILE *f = ctx;
	return fwrite(line, 1, len, f) == len && fputc('\n', f) != EOF ? 0 : RLM_EIO;
}

static int cmd_gen(int argc, char **argv)
{
	rlm_eval_gen_options g = RLM_EVAL_GEN_OPTIONS_INIT;
	g.emit = emit_line;
	g.emit_ctx = stdout;
	int rc = 0;
	for (int i = 0; i < argc && !rc; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			fputs(eval_usage, stdout);
			return EVAL_OK;
		}
		int takes = !strcmp(opt, "--n") || !strcmp(opt, "--length") ||
		            !strcmp(opt, "--seed") || !strcmp(opt, "--context-dir");
		if (!takes && opt[0] == '-')
			return eval_usage_error("unknown option \"%s\"", opt);
		if (!takes) {
			if (g.family)
				return eval_usage_error("one family only (\"%s\")", opt);
			g.family = opt;
			continue;
		}
		if (i + 1 >= argc)
			return eval_usage_error("%s needs a value", opt);
		const char *v = argv[++i];
		long n = 0;
		if (!strcmp(opt, "--n"))
			rc = parse_long(opt, v, 1, &g.n);
		else if (!strcmp(opt, "--length"))
			rc = parse_long(opt, v, 1, &g.length);
		else if (!strcmp(opt, "--seed") && !(rc = parse_long(opt, v, 0, &n)))
			g.seed = (uint64_t)n;
		else if (!strcmp(opt, "--context-dir"))
			g.context_dir = v;
	}
	if (rc)
		return rc;
	if (!g.family || !g.n)
		return eval_usage_error("%s", "usage: rlm eval gen sniah|count --n N [--length "
		                              "CHARS] [--seed S] [--context-dir DIR]");
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_eval_generate(&g, &err)) {
		fprintf(stderr, "rlm eval gen: %s\n", err.message);
		return EVAL_USAGE;
	}
	return fflush(stdout) == 0 ? EVAL_OK : EVAL_USAGE;
}

int rlm_cli_eval(int argc, char **argv)
{
	/* Global options (--backend/--config/--set pairs) come first; report and gen read no
	 * config, so they go without them. */
	int sub = 0;
	while (sub + 1 < argc && (!strcmp(argv[sub], "--backend") ||
	                          !strcmp(argv[sub], "--config") || !strcmp(argv[sub], "--set")))
		sub += 2;
	if (sub < argc && !strcmp(argv[sub], "report"))
		return cmd_report(argc - sub - 1, argv + sub + 1);
	if (sub < argc && !strcmp(argv[sub], "gen"))
		return cmd_gen(argc - sub - 1, argv + sub + 1);
	struct eval_args a;
	memset(&a, 0, sizeof(a));
	rlm_eval_options_init(&a.o);
	rlm_pool_options pool = RLM_POOL_OPTIONS_INIT;
	a.pool = pool;
	a.sets = calloc((size_t)argc + 1, sizeof(char *));
	if (!a.sets)
		return EVAL_UNUSABLE;
	a.cfg.sets = a.sets;
	int help = 0;
	int rc = parse_eval_args(argc, argv, &a, &help);
	if (help)
		fputs(eval_usage, stdout);
	else if (!rc)
		rc = run_eval(&a);
	free(a.sets);
	return rc;
}
