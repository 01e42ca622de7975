/* smoke.c - `rlm smoke`: a timed end-to-end check of one backend (start, exec, vars and
 * SUBMIT, a binary upload/download round trip, run_command, interrupt, shutdown, and a volume
 * written by one interpreter and read by a second), each step skipped when the backend does
 * not offer it. */
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "signals.h"

static const char smoke_usage[] =
        "usage: rlm smoke [--backend NAME] [--repo URL [--ref REF]] [options]\n"
        "\n"
        "A timed end-to-end check of one backend: start, exec, vars and SUBMIT, a binary\n"
        "upload/download round trip, run_command, interrupt, shutdown, and a volume written by\n"
        "one interpreter and read by a second. Steps the backend does not offer (run_command,\n"
        "interrupt, volume) are reported as skipped.\n"
        "\n"
        "options:\n"
        "  --backend NAME      backend to check (default: config `backend`, else local)\n"
        "  --repo URL          also stage this git repository (backends with repo_url)\n"
        "  --ref REF           the branch, tag or commit of --repo\n"
        "  --config FILE       config file\n"
        "  --set KEY=VALUE     override a config key\n"
        "  -h, --help          this help\n"
        "\n"
        "exit status: 0 every step passed, 2 usage or config error, 3 a step failed\n";

struct smoke_args {
	struct cli_config_args cfg;
	const char *repo; /* a repository to stage (backends with repo_url) */
	const char *ref;
	int help;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int step(const char *name, double t0, int ok, const char *detail)
{
	printf("%-28s %-4s %8.1f ms  %s\n", name, ok ? "ok" : "FAIL", (now_s() - t0) * 1000.0,
	       detail ? detail : "");
	fflush(stdout);
	return ok;
}

static int smoke_exec(rlm_interp *in, const char *name, const char *code, const char *vars,
                      const char *want_stdout, const char *want_submit)
{
	double t0 = now_s();
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_execute(in, code, vars, &r, &err))
		return step(name, t0, 0, err.message);
	int ok = !r->error && (!want_stdout || !strcmp(r->stdout_text, want_stdout)) &&
	         (!want_submit || (r->submit_json && !strcmp(r->submit_json, want_submit)));
	char detail[256];
	snprintf(detail, sizeof(detail), "%s%s", r->error ? r->error->line : "",
	         ok ? "" : " (unexpected result)");
	rlm_result_free(r);
	return step(name, t0, ok, detail);
}

static int smoke_files(rlm_interp *in)
{
	double t0 = now_s();
	unsigned char bytes[256];
	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	rlm_error err = RLM_ERROR_INIT;
	void *back = NULL;
	size_t len = 0;
	if (rlm_interp_upload(in, bytes, sizeof(bytes), "smoke.bin", &err) ||
	    rlm_interp_download(in, "smoke.bin", &back, &len, &err))
		return step("upload/download 256 bytes", t0, 0, err.message);
	int ok = len == sizeof(bytes) && !memcmp(back, bytes, len);
	free(back);
	return step("upload/download 256 bytes", t0, ok, ok ? "binary round trip" : "bytes differ");
}

/* run_command outside the REPL, when the backend offers it. */
static int smoke_command(rlm_interp *in)
{
	double t0 = now_s();
	const char *const argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	rlm_command_output *o = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_interp_run_command(in, argv, NULL, 30, &o, &err);
	if (rc == RLM_ENOTSUP)
		return step("run_command", t0, 1, "not offered by this backend (skipped)");
	if (rc)
		return step("run_command", t0, 0, err.message);
	/* Some backends (Daytona's toolbox) merge stderr into stdout. */
	int ok = o->exit_code == 3 && !o->timed_out && o->stdout_len >= 4 &&
	         !memcmp(o->stdout_data, "out\n", 4);
	char detail[160];
	snprintf(detail, sizeof(detail), "exit %d, stdout %zu bytes, stderr %zu bytes",
	         o->exit_code, o->stdout_len, o->stderr_len);
	rlm_command_output_free(o);
	return step("run_command", t0, ok, detail);
}

struct smoke_interrupt {
	rlm_interp *in;
	int rc;
	rlm_error err;
};

static void *interrupt_later(void *arg)
{
	struct smoke_interrupt *s = arg;
	struct timespec ts = {1, 0};
	nanosleep(&ts, NULL);
	s->rc = rlm_interp_interrupt(s->in, &s->err);
	return NULL;
}

/* A cell stuck in sleep, interrupted from another thread: KeyboardInterrupt, state kept. */
static int smoke_interrupt(rlm_interp *in)
{
	double t0 = now_s();
	struct smoke_interrupt s = {in, 0, RLM_ERROR_INIT};
	pthread_t thread;
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	rlm_exec_options opts = RLM_EXEC_OPTIONS_INIT;
	opts.timeout_s = 60;
	if (pthread_create(&thread, NULL, interrupt_later, &s) != 0)
		return step("interrupt", t0, 0, "cannot start a thread");
	int rc = rlm_interp_execute_ex(in, "import time\ntime.sleep(30)", &opts, &r, &err);
	pthread_join(thread, NULL);
	if (s.rc == RLM_ENOTSUP) {
		rlm_result_free(r);
		return step("interrupt", t0, 1, "not offered by this backend (skipped)");
	}
	int ok = !rc && !s.rc && r && r->error && !strcmp(r->error->type, "KeyboardInterrupt") &&
	         !r->state_lost;
	rlm_result_free(r);
	return step("interrupt", t0, ok,
	            rc     ? err.message
	            : s.rc ? s.err.message
	            : ok   ? "KeyboardInterrupt, state kept"
	                   : "unexpected result");
}

static int smoke_volume(const rlm_config *base, const char *backend)
{
	double t0 = now_s();
	rlm_config *cfg = NULL;
	rlm_error err = RLM_ERROR_INIT;
	char key[160], val[64];
	snprintf(key, sizeof(key), "backends.%s.volume_name", backend);
	/* One fixed name: the volume outlives the run by design, so a name per run would litter. */
	snprintf(val, sizeof(val), "\"rlm-smoke\"");
	if (rlm_config_clone(base, &cfg, &err) || rlm_config_set(cfg, key, val, &err)) {
		rlm_config_free(cfg);
		return step("volume write/read", t0, 0, err.message);
	}
	const char *code[2] = {"import os\nassert VOLUME, 'no volume'\n"
	                       "open(os.path.join(VOLUME, 'smoke.txt'), 'w').write('persisted')",
	                       "import os\np = os.path.join(VOLUME, "
	                       "'smoke.txt')\nprint(open(p).read())\nos.remove(p)"};
	int ok = 1;
	char detail[RLM_ERROR_MESSAGE_MAX] = "written by one interpreter, read by a second";
	for (int i = 0; i < 2 && ok; i++) {
		rlm_interp *in = NULL;
		rlm_result *r = NULL;
		ok = rlm_interp_open(cfg, &in, &err) == 0;
		if (ok)
			rlm_interp_set_cancel_flag(in, cli_cancel_flag());
		ok = ok && rlm_interp_execute(in, code[i], NULL, &r, &err) == 0;
		if (!ok)
			snprintf(detail, sizeof(detail), "%s", err.message);
		else if (r->error || (i == 1 && strcmp(r->stdout_text, "persisted\n")))
			ok = 0, snprintf(detail, sizeof(detail), "%s",
			                 r->error ? r->error->line : r->stdout_text);
		rlm_result_free(r);
		rlm_interp_close(in);
	}
	rlm_config_free(cfg);
	return step("volume write/read", t0, ok, detail);
}

/* Whether the interpreter's backend declares a capability ("volume", ...). */
static int has_capability(const char *status, const char *cap)
{
	json_object *s = status ? json_tokener_parse(status) : NULL, *caps;
	int yes = 0;
	if (json_object_object_get_ex(s, "capabilities", &caps))
		for (size_t i = 0; i < json_object_array_length(caps); i++)
			yes |= !strcmp(json_object_get_string(json_object_array_get_idx(caps, i)),
			               cap);
	json_object_put(s);
	return yes;
}

static int smoke_steps(const struct smoke_args *a, rlm_config *cfg)
{
	const char *backend = rlm_config_get_string(cfg, "backend", "local");
	printf("rlm smoke: backend %s\n", backend);
	double t0 = now_s();
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(cfg, &in, &err)) {
		step("start", t0, 0, err.message);
		return cli_exit_for_error(&err) == EXIT_USAGE ? EXIT_USAGE : EXIT_INFRA;
	}
	rlm_interp_set_cancel_flag(in, cli_cancel_flag());
	char *status = rlm_interp_status_json(in);
	step("start", t0, 1, NULL);
	int ok = smoke_exec(in, "exec (state kept)", "x = 41", NULL, "", NULL);
	ok &= smoke_exec(in, "exec + print", "print(x + 1)", NULL, "42\n", NULL);
	ok &= smoke_exec(in, "vars + SUBMIT", "SUBMIT(answer=greeting + '!', n=x)",
	                 "{\"greeting\":\"hello\"}", NULL, "{\"answer\":\"hello!\",\"n\":41}");
	ok &= smoke_files(in);
	ok &= smoke_command(in);
	ok &= smoke_interrupt(in);
	ok &= smoke_exec(in, "state after interrupt", "print(x)", NULL, "41\n", NULL);
	if (a->repo)
		ok &= smoke_exec(in, "repo staged", "import os\nassert os.listdir('repo'), 'empty'",
		                 NULL, "", NULL);
	t0 = now_s();
	rlm_interp_close(in);
	step("shutdown", t0, 1, NULL);
	if (has_capability(status, "volume"))
		ok &= smoke_volume(cfg, backend);
	else
		step("volume write/read", now_s(), 1, "not offered by this backend (skipped)");
	if (status) {
		printf("status: %s\n", status);
		free(status);
	}
	printf("%s\n", ok ? "smoke: all steps passed" : "smoke: FAILED");
	return ok ? EXIT_OK : EXIT_INFRA;
}

/* --repo/--ref: the backend clones the repository into ./repo of its work dir at start. */
static int set_repo(rlm_config *cfg, const struct smoke_args *a)
{
	/* A copy: the config's strings do not survive a change to the config. */
	char backend[96];
	snprintf(backend, sizeof(backend), "%s", rlm_config_get_string(cfg, "backend", "local"));
	char key[160];
	rlm_error err = RLM_ERROR_INIT;
	snprintf(key, sizeof(key), "backends.%s.repo_url", backend);
	int rc = rlm_config_set(cfg, key, a->repo, &err);
	if (!rc && a->ref) {
		snprintf(key, sizeof(key), "backends.%s.repo_ref", backend);
		rc = rlm_config_set(cfg, key, a->ref, &err);
	}
	return rc ? cli_report("smoke", "--repo", &err) : 0;
}

static int parse_smoke_args(int argc, char **argv, struct smoke_args *a)
{
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			a->help = 1;
			return EXIT_OK;
		}
		if (o[0] != '-')
			return cli_usage_error("smoke", "smoke takes no arguments (\"%s\")", o);
		int took = cli_take_config_option("smoke", argc, argv, &i, &a->cfg);
		if (took < 0)
			return EXIT_USAGE;
		if (took)
			continue;
		if (strcmp(o, "--repo") && strcmp(o, "--ref"))
			return cli_usage_error("smoke", "unknown option \"%s\"", o);
		if (i + 1 >= argc)
			return cli_usage_error("smoke", "%s needs a value", o);
		if (!strcmp(o, "--repo"))
			a->repo = argv[++i];
		else
			a->ref = argv[++i];
	}
	if (a->ref && !a->repo)
		return cli_usage_error("smoke", "--ref goes with --repo");
	return EXIT_OK;
}

static int smoke_with_config(const struct smoke_args *a)
{
	rlm_config *cfg;
	int rc = cli_config_open("smoke", &a->cfg, &cfg);
	if (!rc)
		rc = cli_config_finish("smoke", &a->cfg, &cfg);
	if (rc)
		return rc;
	if (a->repo && (rc = set_repo(cfg, a)) != 0) {
		rlm_config_free(cfg);
		return rc;
	}
	rc = smoke_steps(a, cfg);
	rlm_config_free(cfg);
	return rc;
}

int cli_smoke(int argc, char **argv)
{
	struct smoke_args a = {0};
	a.cfg.sets = calloc((size_t)argc + 1, sizeof(char *));
	if (!a.cfg.sets)
		return EXIT_INFRA;
	int rc = parse_smoke_args(argc, argv, &a);
	if (!rc && a.help) {
		fputs(smoke_usage, stdout);
	} else if (!rc) {
		cli_signals_install();
		rc = smoke_with_config(&a);
		if (cli_signal_received())
			rc = cli_signal_exit_status();
	}
	free(a.cfg.sets);
	return rc;
}
