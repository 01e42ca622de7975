/* rlm.c - the `rlm` command: exec (run Python cells in a sandbox), run (the RLM loop, in
 * run.c), backends (list and describe plugins), smoke (a timed end-to-end check of one
 * backend). */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cells.h"
#include "rlm/rlm.h"

enum { EXIT_OK = 0, EXIT_RAISED = 1, EXIT_USAGE = 2, EXIT_INFRA = 3 };

static const char usage_text[] =
        "usage: rlm <command> [options]\n"
        "\n"
        "commands:\n"
        "  exec [options] FILE | - | -c CODE   run Python cells in one sandbox interpreter\n"
        "  run -q TEXT [--context FILE] ...    run an RLM on a task (`rlm run --help`)\n"
        "  eval TASKS.jsonl --out DIR ...      run a task file of RLM tasks (`rlm eval --help`)\n"
        "  backends                            list backend plugins (name, file, ABI, "
        "capabilities)\n"
        "  backends describe NAME              a backend's options: type, default, doc\n"
        "  backends gc NAME [--older-than M] [--dry-run]\n"
        "                                      delete sandboxes earlier runs left behind\n"
        "  smoke --backend NAME [--repo URL [--ref REF]]\n"
        "                                      timed end-to-end check of a backend\n"
        "  version                             print the version\n"
        "\n"
        "common options:\n"
        "  --backend NAME      backend to use (default: config `backend`, else local)\n"
        "  --config FILE       config file (default: $RLM_CONFIG, ./rlm.json, "
        "~/.config/rlm/config.json)\n"
        "  --set KEY=VALUE     override a config key, e.g. --set limits.execute_timeout_s=30\n"
        "\n"
        "exec options:\n"
        "  --var NAME=JSON     inject a variable before the first cell (repeatable)\n"
        "  --timeout S         per-cell timeout in seconds\n"
        "  --json              one JSON object per cell instead of human output\n"
        "  -c CODE             run CODE instead of a file\n"
        "\n"
        "A file may hold several cells separated by `# %%` lines; they run in order in one\n"
        "interpreter, so state carries across them.\n"
        "exit status: 0 all cells ran, 1 a cell raised, 2 usage or config error,\n"
        "             3 backend or infrastructure error\n";

struct options {
	const char *backend;
	const char *config_file;
	const char **sets;
	int nsets;
	json_object *vars;
	double timeout_s;
	int json;
	const char *code;
	const char *file;
	const char *positional[4];
	int npositional;
	double older_than_min; /* backends gc: < 0 means any age */
	int dry_run;
	const char *repo; /* smoke: repo to stage (backends with repo_url) */
	const char *ref;
};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "rlm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see `rlm --help`)\n");
	return EXIT_USAGE;
}

static int parse_var(struct options *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return usage_error("--var expects NAME=JSON, got \"%s\"", arg);
	enum json_tokener_error jerr = json_tokener_success;
	json_object *v = json_tokener_parse_verbose(eq + 1, &jerr);
	if (jerr != json_tokener_success)
		return usage_error("--var value is not valid JSON: \"%s\" (quote strings: "
		                   "--var 'name=\"text\"')",
		                   arg);
	if (!o->vars)
		o->vars = json_object_new_object();
	char name[256];
	snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
	json_object_object_add(o->vars, name, v);
	return 0;
}

static int need_value(int argc, char **argv, int i)
{
	return i + 1 < argc ? 0 : usage_error("%s needs a value", argv[i]);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	o->sets = calloc((size_t)argc + 1, sizeof(char *));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int takes = !strcmp(a, "--backend") || !strcmp(a, "--config") ||
		            !strcmp(a, "--set") || !strcmp(a, "--var") || !strcmp(a, "--timeout") ||
		            !strcmp(a, "-c") || !strcmp(a, "--older-than") ||
		            !strcmp(a, "--repo") || !strcmp(a, "--ref");
		if (takes && need_value(argc, argv, i))
			return EXIT_USAGE;
		if (!strcmp(a, "--backend")) {
			o->backend = argv[++i];
		} else if (!strcmp(a, "--config")) {
			o->config_file = argv[++i];
		} else if (!strcmp(a, "--set")) {
			o->sets[o->nsets++] = argv[++i];
		} else if (!strcmp(a, "--var")) {
			if (parse_var(o, argv[++i]))
				return EXIT_USAGE;
		} else if (!strcmp(a, "--timeout")) {
			char *end;
			o->timeout_s = strtod(argv[++i], &end);
			if (*end || o->timeout_s <= 0)
				return usage_error("--timeout expects a positive number of "
				                   "seconds, got \"%s\"",
				                   argv[i]);
		} else if (!strcmp(a, "--older-than")) {
			char *end;
			o->older_than_min = strtod(argv[++i], &end);
			if (*end || o->older_than_min < 0)
				return usage_error("--older-than expects minutes (a number >= 0), "
				                   "got \"%s\"",
				                   argv[i]);
		} else if (!strcmp(a, "--dry-run")) {
			o->dry_run = 1;
		} else if (!strcmp(a, "--repo")) {
			o->repo = argv[++i];
		} else if (!strcmp(a, "--ref")) {
			o->ref = argv[++i];
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "-c")) {
			o->code = argv[++i];
		} else if (a[0] == '-' && a[1] && strcmp(a, "-")) {
			return usage_error("unknown option \"%s\"", a);
		} else if (o->npositional < 4) {
			o->positional[o->npositional++] = a;
		} else {
			return usage_error("too many arguments at \"%s\"", a);
		}
	}
	return 0;
}

static int exit_for_error(int code)
{
	return code == RLM_ECONFIG || code == RLM_EINVAL || code == RLM_ENOTFOUND ||
	                       code == RLM_EPLUGIN
	               ? EXIT_USAGE
	               : EXIT_INFRA;
}

static int report(const char *what, const rlm_error *err)
{
	fprintf(stderr, "rlm: %s: %s [%s]\n", what, err->message, rlm_status_name(err->code));
	return exit_for_error(err->code);
}

static int build_config(const struct options *o, rlm_config **out)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	int rc = rlm_config_new(&cfg, &err);
	if (!rc)
		rc = o->config_file ? rlm_config_load_file(cfg, o->config_file, &err)
		                    : rlm_config_load_default_files(cfg, &err);
	if (!rc)
		rc = rlm_config_apply_env(cfg, &err);
	if (!rc && o->backend)
		rc = rlm_config_set(cfg, "backend", o->backend, &err);
	for (int i = 0; !rc && i < o->nsets; i++)
		rc = rlm_config_set_assignment(cfg, o->sets[i], &err);
	if (!rc)
		rc = rlm_config_validate(cfg, &err);
	if (rc) {
		rlm_config_free(cfg);
		return report("config", &err);
	}
	*out = cfg;
	return 0;
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
		if (n + 1 == cap) {
			char *p = realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				return NULL;
			}
			buf = p;
			cap *= 2;
		}
	}
	if (buf)
		buf[n] = '\0';
	*len = n;
	return ferror(f) ? (free(buf), NULL) : buf;
}

static char *load_source(const struct options *o)
{
	if (o->code)
		return strdup(o->code);
	FILE *f = strcmp(o->file, "-") ? fopen(o->file, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "rlm: cannot open %s: %s\n", o->file, strerror(errno));
		return NULL;
	}
	size_t len;
	char *src = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (!src)
		fprintf(stderr, "rlm: cannot read %s\n", o->file);
	return src;
}

static void print_human(const rlm_result *r, int cell_index, int ncells)
{
	fputs(r->stdout_text, stdout);
	if (r->value)
		printf("%s\n", r->value);
	if (r->submit_json)
		printf("SUBMIT %s\n", r->submit_json);
	fflush(stdout);
	fputs(r->stderr_text, stderr);
	if (r->truncated)
		fprintf(stderr,
		        "[rlm: output truncated: %zu stdout / %zu stderr characters in all]\n",
		        r->stdout_chars, r->stderr_chars);
	if (r->error) {
		if (r->error->traceback[0] && strcmp(r->error->traceback, r->error->line))
			fputs(r->error->traceback, stderr);
		else
			fprintf(stderr, "%s\n", r->error->line);
		if (ncells > 1)
			fprintf(stderr, "[rlm: cell %d raised]\n", cell_index + 1);
	}
	if (r->state_lost)
		fprintf(stderr, "[rlm: the interpreter was restarted; earlier state is lost]\n");
}

static int run_cells(rlm_interp *in, const struct options *o, cell *cells, int n)
{
	const char *vars =
	        o->vars ? json_object_to_json_string_ext(o->vars, JSON_C_TO_STRING_PLAIN) : NULL;
	for (int i = 0; i < n; i++) {
		rlm_exec_options eo = RLM_EXEC_OPTIONS_INIT;
		eo.vars_json = i == 0 ? vars : NULL;
		eo.timeout_s = o->timeout_s;
		rlm_result *r = NULL;
		rlm_error err = RLM_ERROR_INIT;
		if (rlm_interp_execute_ex(in, cells[i].code, &eo, &r, &err))
			return report("exec", &err);
		if (o->json) {
			char *j = rlm_result_to_json(r);
			printf("%s\n", j);
			free(j);
			fflush(stdout);
		} else {
			print_human(r, i, n);
		}
		int raised = r->error != NULL;
		rlm_result_free(r);
		if (raised)
			return EXIT_RAISED;
	}
	return EXIT_OK;
}

static int cmd_exec(struct options *o)
{
	if (!o->code && o->npositional != 1)
		return usage_error("exec needs FILE, - or -c CODE%s", "");
	if (o->code && o->npositional)
		return usage_error("give either -c CODE or a FILE, not both (\"%s\")",
		                   o->positional[0]);
	o->file = o->npositional ? o->positional[0] : NULL;
	char *src = load_source(o);
	if (!src)
		return EXIT_USAGE;
	cell *cells = NULL;
	int n = cells_split(src, &cells);
	free(src);
	if (n < 0)
		return EXIT_INFRA;
	rlm_config *cfg;
	int rc = build_config(o, &cfg);
	if (rc) {
		cells_free(cells, n);
		return rc;
	}
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(cfg, &in, &err)) {
		rc = report("cannot start the interpreter", &err);
	} else {
		rc = run_cells(in, o, cells, n);
		rlm_interp_close(in);
	}
	rlm_config_free(cfg);
	cells_free(cells, n);
	return rc;
}

static void print_backend_row(json_object *p)
{
	json_object *v;
	const char *name =
	        json_object_object_get_ex(p, "name", &v) ? json_object_get_string(v) : "";
	if (json_object_object_get_ex(p, "error", &v)) {
		printf("%-10s (cannot load: %s)\n", name, json_object_get_string(v));
		return;
	}
	const char *file =
	        json_object_object_get_ex(p, "file", &v) ? json_object_get_string(v) : "";
	const char *abi = json_object_object_get_ex(p, "abi", &v) ? json_object_get_string(v) : "";
	printf("%-10s ABI %-5s %s\n", name, abi, file);
	if (json_object_object_get_ex(p, "summary", &v))
		printf("           %s\n", json_object_get_string(v));
	printf("           capabilities:");
	json_object *caps;
	if (json_object_object_get_ex(p, "capabilities", &caps))
		for (size_t i = 0; i < json_object_array_length(caps); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(caps, i)));
	printf("\n");
}

static void print_options(json_object *p)
{
	json_object *opts, *v;
	if (!json_object_object_get_ex(p, "options", &opts))
		return;
	printf("options (set with --set backends.%s.NAME=VALUE):\n",
	       json_object_object_get_ex(p, "name", &v) ? json_object_get_string(v) : "?");
	for (size_t i = 0; i < json_object_array_length(opts); i++) {
		json_object *x = json_object_array_get_idx(opts, i), *n, *t, *d, *doc;
		json_object_object_get_ex(x, "name", &n);
		json_object_object_get_ex(x, "type", &t);
		json_object_object_get_ex(x, "default", &d);
		json_object_object_get_ex(x, "doc", &doc);
		printf("  %-20s %-12s default %s\n      %s\n", json_object_get_string(n),
		       json_object_get_string(t),
		       d ? json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN |
		                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
		         : "none",
		       json_object_get_string(doc));
	}
}

/* `rlm backends gc NAME`: the backend deletes what earlier runs left behind. */
static int cmd_backends_gc(struct options *o)
{
	if (o->npositional != 2)
		return usage_error(
		        "usage: rlm backends gc NAME [--older-than MINUTES] [--dry-run]%s", "");
	rlm_config *cfg;
	int rc = build_config(o, &cfg);
	if (rc)
		return rc;
	char arg[128];
	if (o->older_than_min >= 0)
		snprintf(arg, sizeof(arg), "{\"older_than_minutes\":%g,\"dry_run\":%s}",
		         o->older_than_min, o->dry_run ? "true" : "false");
	else
		snprintf(arg, sizeof(arg), "{\"older_than_minutes\":null,\"dry_run\":%s}",
		         o->dry_run ? "true" : "false");
	char *out = NULL;
	rlm_error err = RLM_ERROR_INIT;
	rc = rlm_backend_control(cfg, o->positional[1], "gc", arg, &out, &err);
	rlm_config_free(cfg);
	if (rc)
		return report("backends gc", &err);
	json_object *rows = json_tokener_parse(out);
	size_t n = json_object_is_type(rows, json_type_array) ? json_object_array_length(rows) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *row = json_object_array_get_idx(rows, i), *id, *state;
		json_object_object_get_ex(row, "id", &id);
		json_object_object_get_ex(row, "state", &state);
		printf("%s %s (%s)\n", o->dry_run ? "would delete" : "deleted",
		       json_object_get_string(id), state ? json_object_get_string(state) : "?");
	}
	printf("%zu sandbox%s %s\n", n, n == 1 ? "" : "es", o->dry_run ? "found" : "deleted");
	json_object_put(rows);
	rlm_free(out);
	return EXIT_OK;
}

static int cmd_backends(struct options *o)
{
	if (o->npositional >= 1 && !strcmp(o->positional[0], "gc"))
		return cmd_backends_gc(o);
	int describe = o->npositional >= 1 && !strcmp(o->positional[0], "describe");
	if (o->npositional && !describe)
		return usage_error("unknown backends subcommand \"%s\"", o->positional[0]);
	if (describe && o->npositional != 2)
		return usage_error("usage: rlm backends describe NAME%s", "");
	rlm_config *cfg;
	int rc = build_config(o, &cfg);
	if (rc)
		return rc;
	rlm_error err = RLM_ERROR_INIT;
	char *text = rlm_plugins_json(cfg, &err);
	rlm_config_free(cfg);
	if (!text)
		return report("backends", &err);
	json_object *list = json_tokener_parse(text);
	free(text);
	rc = describe ? EXIT_USAGE : EXIT_OK;
	for (size_t i = 0; list && i < json_object_array_length(list); i++) {
		json_object *p = json_object_array_get_idx(list, i), *v;
		const char *name =
		        json_object_object_get_ex(p, "name", &v) ? json_object_get_string(v) : "";
		if (!json_object_object_get_ex(p, "kind", &v) ||
		    strcmp(json_object_get_string(v), "backend"))
			continue; /* LLM plugins have their own listing */
		if (!describe) {
			print_backend_row(p);
		} else if (!strcmp(name, o->positional[1])) {
			print_backend_row(p);
			print_options(p);
			rc = EXIT_OK;
		}
	}
	if (describe && rc)
		fprintf(stderr, "rlm: no backend \"%s\" (see `rlm backends`)\n", o->positional[1]);
	json_object_put(list);
	return rc;
}

int rlm_cli_smoke(const struct options *o, rlm_config *cfg);
int rlm_cli_run(int argc, char **argv); /* run.c */
int rlm_cli_view(int argc, char **argv);
int rlm_cli_eval(int argc, char **argv); /* eval.c */

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
		ok = rlm_interp_open(cfg, &in, &err) == 0 &&
		     rlm_interp_execute(in, code[i], NULL, &r, &err) == 0;
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

int rlm_cli_smoke(const struct options *o, rlm_config *cfg)
{
	const char *backend = rlm_config_get_string(cfg, "backend", "local");
	printf("rlm smoke: backend %s\n", backend);
	double t0 = now_s();
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_interp_open(cfg, &in, &err)) {
		step("start", t0, 0, err.message);
		return exit_for_error(err.code) == EXIT_USAGE ? EXIT_USAGE : EXIT_INFRA;
	}
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
	if (o->repo)
		ok &= smoke_exec(in, "repo staged", "import os\nassert os.listdir('repo'), 'empty'",
		                 NULL, "", NULL);
	t0 = now_s();
	rlm_interp_close(in);
	step("shutdown", t0, 1, NULL);
	ok &= smoke_volume(cfg, backend);
	if (status) {
		printf("status: %s\n", status);
		free(status);
	}
	printf("%s\n", ok ? "smoke: all steps passed" : "smoke: FAILED");
	return ok ? EXIT_OK : EXIT_INFRA;
}

/* --repo/--ref: the backend clones the repository into ./repo of its work dir at start. */
static int set_repo(rlm_config *cfg, const struct options *o)
{
	/* A copy: the config's strings do not survive a change to the config. */
	char backend[96];
	snprintf(backend, sizeof(backend), "%s", rlm_config_get_string(cfg, "backend", "local"));
	char key[160];
	rlm_error err = RLM_ERROR_INIT;
	snprintf(key, sizeof(key), "backends.%s.repo_url", backend);
	int rc = rlm_config_set(cfg, key, o->repo, &err);
	if (!rc && o->ref) {
		snprintf(key, sizeof(key), "backends.%s.repo_ref", backend);
		rc = rlm_config_set(cfg, key, o->ref, &err);
	}
	return rc ? report("smoke --repo", &err) : 0;
}

static int cmd_smoke(struct options *o)
{
	if (o->npositional)
		return usage_error("smoke takes no arguments (\"%s\")", o->positional[0]);
	rlm_config *cfg;
	int rc = build_config(o, &cfg);
	if (rc)
		return rc;
	if (o->repo && (rc = set_repo(cfg, o)) != 0) {
		rlm_config_free(cfg);
		return rc;
	}
	rc = rlm_cli_smoke(o, cfg);
	rlm_config_free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	/* A driver that dies mid-write must give an error, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("rlm %s (plugin ABI %d.%d)\n", rlm_version(), RLM_ABI_MAJOR, RLM_ABI_MINOR);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "run"))
		return rlm_cli_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "view"))
		return rlm_cli_view(argc - 2, argv + 2);
	if (!strcmp(argv[1], "eval"))
		return rlm_cli_eval(argc - 2, argv + 2);
	struct options o = {0};
	o.older_than_min = -1;
	int rc = parse_options(argc - 2, argv + 2, &o);
	if (!rc) {
		if (!strcmp(argv[1], "exec"))
			rc = cmd_exec(&o);
		else if (!strcmp(argv[1], "backends"))
			rc = cmd_backends(&o);
		else if (!strcmp(argv[1], "smoke"))
			rc = cmd_smoke(&o);
		else
			rc = usage_error("unknown command \"%s\"", argv[1]);
	}
	free(o.sets);
	json_object_put(o.vars);
	return rc;
}
