/* exec.c - `rlm exec`: runs Python cells (a file split at "# %%" lines, a notebook's code
 * cells, or -c CODE) in order in one sandbox interpreter and prints what each cell gave. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cells.h"
#include "cli.h"
#include "signals.h"
#include "source.h"

static const char exec_usage[] =
        "usage: rlm exec [options] FILE | - | -c CODE\n"
        "\n"
        "Runs Python cells in order in one sandbox interpreter, so state carries across them.\n"
        "FILE is split into cells at `# %%` lines (the Jupyter percent format); a notebook\n"
        "(.ipynb, nbformat 4) runs its code cells. `-` reads the code from standard input.\n"
        "The file must be UTF-8 without NUL bytes; a leading byte order mark is dropped.\n"
        "\n"
        "A cell that does not complete (it raised, timed out, or lost the interpreter's state)\n"
        "stops the run: the cells after it do not run, and a line on stderr names it.\n"
        "\n"
        "options:\n"
        "  -c CODE             run CODE as one cell instead of a file\n"
        "  --var NAME=JSON     set a variable before the first cell; the value is one JSON\n"
        "                      value (quote strings: --var 'name=\"text\"'); repeatable\n"
        "  --timeout S         per-cell timeout in seconds: sets limits.execute_timeout_s,\n"
        "                      whose range applies (0.001 to 604800)\n"
        "  --keep-going        run every cell even after one did not complete\n"
        "  --json              one JSON object per cell on stdout instead of its output\n"
        "  --backend NAME      sandbox backend (default: config `backend`, else local)\n"
        "  --config FILE       config file\n"
        "  --set KEY=VALUE     override a config key, e.g. --set backends.local.memory_mb=512\n"
        "  -h, --help          this help\n"
        "\n"
        "SIGINT, SIGTERM or SIGHUP closes the sandbox and exits 128 + the signal (130 for\n"
        "Ctrl-C); a second one exits at once.\n"
        "\n"
        "exit status: 0 every cell completed, 1 a cell did not complete, 2 usage, input or\n"
        "             config error, 3 backend or infrastructure error\n";

struct exec_args {
	struct cli_config_args cfg;
	json_object *vars;
	const char *timeout; /* as given: it goes into limits.execute_timeout_s */
	int json;
	int keep_going;
	int help;
	const char *code; /* -c */
	const char *file; /* FILE or "-" */
};

/* A non-finite number has no JSON form: json-c reads NaN, Infinity and 1e999 all the same. */
static int all_finite(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_double: return isfinite(json_object_get_double(v));
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (!all_finite(json_object_array_get_idx(v, i)))
				return 0;
		return 1;
	case json_type_object: {
		json_object_object_foreach(v, key, val)
		{
			(void)key;
			if (!all_finite(val))
				return 0;
		}
		return 1;
	}
	default: return 1;
	}
}

/* The value of --var: exactly one JSON value (strict), UTF-8, finite numbers. */
static json_object *parse_var_value(const char *name, const char *text)
{
	size_t len = strlen(text);
	size_t bad = cli_utf8_invalid_at(text, len);
	if (bad < len) {
		cli_usage_error("exec",
		                "--var %s: the value is not UTF-8 (byte 0x%02x at offset %zu)",
		                name, (unsigned char)text[bad], bad);
		return NULL;
	}
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return NULL;
	/* Trailing characters are let through here to be named below. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	/* The terminating NUL is passed too, so a number at the very end is complete. */
	json_object *v = json_tokener_parse_ex(tok, text, (int)len + 1);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	while (end < len && strchr(" \t\r\n", text[end]))
		end++;
	const char *fmt = NULL, *why = "";
	if (!v || jerr != json_tokener_success) {
		fmt = "--var %s: the value is not valid JSON (%s): \"%s\" (quote strings: --var "
		      "'%s=\"text\"')";
		why = len == 0 ? "it is empty" : json_tokener_error_desc(jerr);
	} else if (end < len) {
		fmt = "--var %s: the value is more than one JSON value%s: \"%s\" (quote strings: "
		      "--var '%s=\"text\"')";
	} else if (!all_finite(v)) {
		fmt = "--var %s: the value holds a number JSON cannot carry (NaN, Infinity or out "
		      "of range)%s: \"%s\"%.0s";
	}
	if (fmt) {
		json_object_put(v);
		cli_usage_error("exec", fmt, name, why, text, name);
		return NULL;
	}
	return v;
}

static int parse_var(struct exec_args *a, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return cli_usage_error("exec", "--var expects NAME=JSON, got \"%s\"", arg);
	size_t name_len = (size_t)(eq - arg);
	char *name = strndup(arg, name_len);
	if (!name)
		return EXIT_INFRA;
	int rc = EXIT_OK;
	if (cli_utf8_invalid_at(name, name_len) < name_len) {
		rc = cli_usage_error("exec", "--var: the name \"%s\" is not UTF-8", name);
	} else {
		/* The driver checks the name is a Python identifier, whatever its length. */
		json_object *v = parse_var_value(name, eq + 1);
		if (!v)
			rc = EXIT_USAGE;
		else if (!a->vars && !(a->vars = json_object_new_object()))
			rc = EXIT_INFRA, json_object_put(v);
		else
			json_object_object_add(a->vars, name, v);
	}
	free(name);
	return rc;
}

/* --timeout is limits.execute_timeout_s for this run: its range is the config's (one place);
 * this only refuses what is not a number of seconds at all. */
static int check_timeout(const char *text)
{
	char *end;
	double t = strtod(text, &end);
	if (end == text || *end || !isfinite(t) || t <= 0)
		return cli_usage_error(
		        "exec", "--timeout expects a positive number of seconds, got \"%s\"", text);
	return EXIT_OK;
}

static int parse_exec_args(int argc, char **argv, struct exec_args *a)
{
	int only_positional = 0;
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		if (only_positional || o[0] != '-' || !strcmp(o, "-")) {
			if (a->file)
				return cli_usage_error("exec", "too many arguments at \"%s\"", o);
			a->file = o;
			continue;
		}
		if (!strcmp(o, "--")) {
			only_positional = 1;
			continue;
		}
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			a->help = 1;
			return EXIT_OK;
		}
		if (!strcmp(o, "--json")) {
			a->json = 1;
			continue;
		}
		if (!strcmp(o, "--keep-going")) {
			a->keep_going = 1;
			continue;
		}
		int took = cli_take_config_option("exec", argc, argv, &i, &a->cfg);
		if (took < 0)
			return EXIT_USAGE;
		if (took)
			continue;
		if (strcmp(o, "--var") && strcmp(o, "--timeout") && strcmp(o, "-c"))
			return cli_usage_error("exec", "unknown option \"%s\"", o);
		if (i + 1 >= argc)
			return cli_usage_error("exec", "%s needs a value", o);
		const char *v = argv[++i];
		int rc = EXIT_OK;
		if (!strcmp(o, "--var"))
			rc = parse_var(a, v);
		else if (!strcmp(o, "--timeout"))
			rc = check_timeout(v), a->timeout = v;
		else
			a->code = v;
		if (rc)
			return rc;
	}
	if (!a->code && !a->file)
		return cli_usage_error("exec", "%s", "exec needs FILE, - or -c CODE");
	if (a->code && a->file)
		return cli_usage_error("exec", "give either -c CODE or a FILE, not both (\"%s\")",
		                       a->file);
	return EXIT_OK;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

/* The cells of what the user gave: -c CODE, a notebook, or a percent-format file. Returns
 * the count, or < 0 with *status set. */
static int load_cells(const struct exec_args *a, cell **cells, int *status)
{
	char *src = NULL;
	size_t len = 0;
	const char *name = a->code ? "-c" : !strcmp(a->file, "-") ? "<stdin>" : a->file;
	if (a->code) {
		src = strdup(a->code);
		len = strlen(a->code);
		*status = src ? EXIT_OK : EXIT_INFRA;
	} else {
		*status = cli_read_input("exec", a->file, &src, &len);
	}
	if (*status)
		return -1;
	/* Python drops a leading BOM; so do we (a notebook's JSON may carry one too). */
	size_t bom = cli_bom_len(src, len);
	const char *text = src + bom;
	len -= bom;
	int n;
	if ((*status = cli_check_code("exec", name, text, len)) != EXIT_OK) {
		n = -1;
	} else if ((a->file && has_suffix(a->file, ".ipynb")) || cells_is_notebook(text, len)) {
		char why[256] = "";
		n = cells_from_notebook(text, len, cells, why, sizeof(why));
		if (n == -2)
			*status = cli_input_error("exec", "%s: %s", name, why);
	} else {
		n = cells_split(text, cells);
	}
	if (n == -1 && !*status)
		*status = EXIT_INFRA, fprintf(stderr, "rlm exec: out of memory\n");
	free(src);
	return n;
}

static void print_human(const rlm_result *r)
{
	/* The output may hold NUL characters: it is written by length. */
	fwrite(r->stdout_text, 1, r->stdout_len, stdout);
	if (r->value)
		printf("%s\n", r->value);
	if (r->submit_json)
		printf("SUBMIT %s\n", r->submit_json);
	fflush(stdout);
	fwrite(r->stderr_text, 1, r->stderr_len, stderr);
	if (r->truncated)
		fprintf(stderr,
		        "[rlm: output truncated: %zu stdout / %zu stderr characters in all]\n",
		        r->stdout_chars, r->stderr_chars);
	if (r->error) {
		if (r->error->traceback[0] && strcmp(r->error->traceback, r->error->line))
			fputs(r->error->traceback, stderr);
		else
			fprintf(stderr, "%s\n", r->error->line);
	}
	if (r->state_lost)
		fprintf(stderr, "[rlm: the interpreter was restarted; earlier state is lost]\n");
}

static int print_json(const rlm_result *r)
{
	char *j = rlm_result_to_json(r);
	if (!j)
		return EXIT_INFRA;
	printf("%s\n", j);
	rlm_free(j);
	fflush(stdout);
	return EXIT_OK;
}

/* A cell completed when it raised nothing, did not time out and kept the interpreter's
 * state; anything else makes `rlm exec` exit 1. */
static const char *incomplete_because(const rlm_result *r, char *buf, size_t size)
{
	if (r->error)
		snprintf(buf, size, "raised %s", r->error->type);
	else if (r->timed_out)
		snprintf(buf, size, "timed out");
	else if (r->state_lost)
		snprintf(buf, size, "lost the interpreter's state");
	else
		return NULL;
	if (r->error && r->timed_out)
		snprintf(buf + strlen(buf), size - strlen(buf), " (timed out)");
	if ((r->error || r->timed_out) && r->state_lost)
		snprintf(buf + strlen(buf), size - strlen(buf),
		         ", the interpreter's state is lost");
	return buf;
}

/* "cell 2 of 5 (line 7)", "cell 2 of 5 (notebook cell 4)". */
static void cell_label(const cell *c, int i, int n, char *buf, size_t size)
{
	if (c->notebook_index)
		snprintf(buf, size, "cell %d of %d (notebook cell %d)", i + 1, n,
		         c->notebook_index);
	else
		snprintf(buf, size, "cell %d of %d (line %d)", i + 1, n, c->first_line);
}

static int run_cells(rlm_interp *in, const struct exec_args *a, const cell *cells, int n)
{
	const char *vars =
	        a->vars ? json_object_to_json_string_ext(a->vars, JSON_C_TO_STRING_PLAIN) : NULL;
	int incomplete = 0;
	for (int i = 0; i < n; i++) {
		rlm_exec_options eo = RLM_EXEC_OPTIONS_INIT;
		eo.vars_json = i == 0 ? vars : NULL;
		rlm_result *r = NULL;
		rlm_error err = RLM_ERROR_INIT;
		char why[192], label[96];
		cell_label(&cells[i], i, n, label, sizeof(label));
		int xrc = rlm_interp_execute_ex(in, cells[i].code, &eo, &r, &err);
		if (xrc) {
			cli_error_from_rc(&err, xrc);
			if (err.code == RLM_ECANCELLED && cli_signal_received()) {
				fprintf(stderr, "rlm exec: stopped by %s in %s\n",
				        cli_signal_name(), label);
				return cli_signal_exit_status();
			}
			return cli_report("exec", label, &err);
		}
		int rc = a->json ? print_json(r) : (print_human(r), EXIT_OK);
		const char *because = incomplete_because(r, why, sizeof(why));
		rlm_result_free(r);
		if (rc)
			return rc;
		if (!because)
			continue;
		incomplete++;
		if (i + 1 == n)
			fprintf(stderr, "rlm exec: %s %s\n", label, because);
		else if (a->keep_going)
			fprintf(stderr, "rlm exec: %s %s; going on (--keep-going)\n", label,
			        because);
		if (i + 1 < n && !a->keep_going) {
			fprintf(stderr,
			        "rlm exec: stopped at %s: it %s; %d cell%s after it not run "
			        "(--keep-going runs every cell)\n",
			        label, because, n - i - 1, n - i - 1 == 1 ? "" : "s");
			return EXIT_FAILED;
		}
	}
	if (incomplete && n > 1 && a->keep_going)
		fprintf(stderr, "rlm exec: %d of %d cells did not complete\n", incomplete, n);
	return incomplete ? EXIT_FAILED : EXIT_OK;
}

static int exec_with_config(const struct exec_args *a, const cell *cells, int n)
{
	rlm_config *cfg = NULL;
	int rc = cli_config_open("exec", &a->cfg, &cfg);
	rlm_error err = RLM_ERROR_INIT;
	if (!rc && a->timeout &&
	    rlm_config_set(cfg, "limits.execute_timeout_s", a->timeout, &err) != 0) {
		rlm_config_free(cfg);
		const char *why = err.message; /* the key's rule, without the origin "--set" */
		if (!strncmp(why, "--set: ", 7))
			why += 7;
		return cli_usage_error("exec", "--timeout %s: %s", a->timeout, why);
	}
	if (!rc)
		rc = cli_config_finish("exec", &a->cfg, &cfg);
	if (rc)
		return rc;
	if (n == 0 || cli_signal_received()) {
		if (!n)
			fprintf(stderr, "rlm exec: no code to run\n");
		rlm_config_free(cfg);
		return EXIT_OK; /* cli_exec turns a signal into its exit status */
	}
	rlm_interp *in = NULL;
	/* A signal during the start is seen when it returns: rlm_interp_open takes no flag. */
	int orc = rlm_interp_open(cfg, &in, &err);
	if (orc) {
		cli_error_from_rc(&err, orc);
		rc = cli_report("exec", "cannot start the interpreter", &err);
	} else {
		rlm_interp_set_cancel_flag(in, cli_cancel_flag());
		rc = run_cells(in, a, cells, n);
		rlm_interp_close(in);
	}
	rlm_config_free(cfg);
	return rc;
}

int cli_exec(int argc, char **argv)
{
	struct exec_args a = {0};
	a.cfg.sets = calloc((size_t)argc + 1, sizeof(char *));
	if (!a.cfg.sets)
		return EXIT_INFRA;
	int rc = parse_exec_args(argc, argv, &a);
	if (!rc && a.help)
		fputs(exec_usage, stdout);
	cell *cells = NULL;
	int n = 0;
	if (!rc && !a.help) {
		cli_signals_install();
		n = load_cells(&a, &cells, &rc);
	}
	if (!rc && !a.help)
		rc = exec_with_config(&a, cells, n);
	/* A signal stops the run however it ended. */
	if (cli_signal_received())
		rc = cli_signal_exit_status();
	cells_free(cells, n > 0 ? n : 0);
	json_object_put(a.vars);
	free(a.cfg.sets);
	return rc;
}
