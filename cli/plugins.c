/* plugins.c - `rlm backends` (list, describe, gc) and `rlm plugins` (list and describe every
 * plugin, backend and LLM): what rlm_plugins_json finds, printed for a human. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char backends_usage[] =
        "usage: rlm backends [options]                   list backend plugins\n"
        "       rlm backends describe NAME [options]     a backend's options\n"
        "       rlm backends gc NAME [--older-than M] [--run ID] [--dry-run] [options]\n"
        "                                                delete sandboxes earlier runs left\n"
        "\n"
        "options:\n"
        "  --config FILE       config file (plugin_path and the backends' sections)\n"
        "  --set KEY=VALUE     override a config key, e.g. --set plugin_path=/opt/rlm/plugins\n"
        "  -h, --help          this help (also after describe and gc)\n"
        "\n"
        "exit status: 0 done, 2 usage or config error, or no such backend,\n"
        "             3 backend or infrastructure error\n";

static const char backends_describe_usage[] =
        "usage: rlm backends describe NAME [--config FILE] [--set KEY=VALUE]\n"
        "\n"
        "Prints the backend's file, ABI, capabilities and options (type, default, doc;\n"
        "range, env var and choices when the plugin gives them); set an option with\n"
        "--set backends.NAME.OPTION=VALUE.\n"
        "\n"
        "exit status: 0 done, 2 no such backend or a usage or config error\n";

static const char backends_gc_usage[] =
        "usage: rlm backends gc NAME [--older-than MINUTES] [--run ID] [--dry-run]\n"
        "                       [--config FILE] [--set KEY=VALUE]\n"
        "\n"
        "Deletes the sandboxes rlm runs left behind on backend NAME (found by their labels).\n"
        "\n"
        "options:\n"
        "  --older-than M      only those older than M minutes\n"
        "  --run ID            only those of one run (their rlm-run label: the pool's and\n"
        "                      `rlm eval --run-id`'s run id); other runs are left alone\n"
        "  --dry-run           list them, delete nothing\n"
        "\n"
        "exit status: 0 done, 2 usage or config error, 3 backend or infrastructure error\n";

static const char plugins_usage[] =
        "usage: rlm plugins [options]                    list every plugin: backends and LLMs\n"
        "       rlm plugins describe NAME [options]      a plugin's options\n"
        "\n"
        "options:\n"
        "  --kind backend|llm  only plugins of that kind (also picks between a backend and\n"
        "                      an LLM plugin of the same NAME)\n"
        "  --config FILE       config file (plugin_path)\n"
        "  --set KEY=VALUE     override a config key\n"
        "  -h, --help          this help\n"
        "\n"
        "exit status: 0 done, 2 no such plugin or a usage or config error\n";

static const char plugins_describe_usage[] =
        "usage: rlm plugins describe NAME [--kind backend|llm] [--config FILE]\n"
        "                            [--set KEY=VALUE]\n"
        "\n"
        "Prints the plugin's kind, file, ABI, capabilities and options (type, default, doc).\n"
        "A backend's options are set with --set backends.NAME.OPTION=VALUE, an LLM plugin's in\n"
        "the llm section: --set llm.provider=NAME --set llm.OPTION=VALUE.\n"
        "\n"
        "exit status: 0 done, 2 no such plugin or a usage or config error\n";

struct plugins_args {
	struct cli_config_args cfg;
	const char *positional[2];
	int npositional;
	const char *kind;      /* plugins: "backend", "llm" or NULL */
	double older_than_min; /* gc: < 0 means any age */
	const char *run;       /* gc: only this run's sandboxes, or NULL */
	int dry_run;
	int help;
};

static const char *str_member(json_object *o, const char *key, const char *fallback)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : fallback;
}

static void print_row(json_object *p, int with_kind)
{
	const char *name = str_member(p, "name", "");
	json_object *v;
	if (json_object_object_get_ex(p, "error", &v)) {
		if (with_kind)
			printf("%-10s %-8s (cannot load: %s)\n", name, str_member(p, "kind", "?"),
			       json_object_get_string(v));
		else
			printf("%-10s (cannot load: %s)\n", name, json_object_get_string(v));
		return;
	}
	if (with_kind)
		printf("%-10s %-8s ABI %-5s %s\n", name, str_member(p, "kind", "?"),
		       str_member(p, "abi", ""), str_member(p, "file", ""));
	else
		printf("%-10s ABI %-5s %s\n", name, str_member(p, "abi", ""),
		       str_member(p, "file", ""));
	if (json_object_object_get_ex(p, "summary", &v))
		printf("           %s\n", json_object_get_string(v));
	json_object *caps;
	if (json_object_object_get_ex(p, "capabilities", &caps) && json_object_array_length(caps)) {
		printf("           capabilities:");
		for (size_t i = 0; i < json_object_array_length(caps); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(caps, i)));
		printf("\n");
	} else if (!strcmp(str_member(p, "kind", ""), "backend")) {
		printf("           capabilities: none\n");
	}
}

static void print_bound(json_object *x, const char *key, const char *word)
{
	json_object *v = NULL;
	if (json_object_object_get_ex(x, key, &v) && v)
		printf(" %s %.17g", word, json_object_get_double(v));
}

/* The line under an option's doc that ABI 1.2 definitions add: range, env var, choices, flags;
 * nothing for an option that has none of them. */
static void print_option_rules(json_object *x)
{
	json_object *v = NULL, *choices = NULL;
	int any = json_object_object_get_ex(x, "min", &v) ||
	          json_object_object_get_ex(x, "max", &v) ||
	          json_object_object_get_ex(x, "env", &v) ||
	          json_object_object_get_ex(x, "choices", &choices) ||
	          json_object_object_get_ex(x, "required", &v) ||
	          json_object_object_get_ex(x, "secret", &v) ||
	          json_object_object_get_ex(x, "nonempty", &v);
	if (!any)
		return;
	printf("     ");
	print_bound(x, "min", "min");
	print_bound(x, "max", "max");
	if (json_object_object_get_ex(x, "env", &v))
		printf(" env %s", json_object_get_string(v));
	if (json_object_object_get_ex(x, "choices", &choices)) {
		printf(" one of");
		for (size_t i = 0; i < json_object_array_length(choices); i++)
			printf("%s %s", i ? "," : "",
			       json_object_get_string(json_object_array_get_idx(choices, i)));
	}
	if (json_object_object_get_ex(x, "required", &v))
		printf(" required");
	if (json_object_object_get_ex(x, "nonempty", &v))
		printf(" non-empty");
	if (json_object_object_get_ex(x, "secret", &v))
		printf(" secret");
	printf("\n");
}

static void print_options(json_object *p)
{
	json_object *opts;
	if (!json_object_object_get_ex(p, "options", &opts))
		return;
	const char *name = str_member(p, "name", "?");
	if (!strcmp(str_member(p, "kind", ""), "llm"))
		printf("options (set with --set llm.provider=%s --set llm.NAME=VALUE):\n", name);
	else
		printf("options (set with --set backends.%s.NAME=VALUE):\n", name);
	for (size_t i = 0; i < json_object_array_length(opts); i++) {
		json_object *x = json_object_array_get_idx(opts, i), *d = NULL;
		json_object_object_get_ex(x, "default", &d);
		printf("  %-20s %-12s default %s\n      %s\n", str_member(x, "name", ""),
		       str_member(x, "type", ""),
		       d ? json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN |
		                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
		         : "none",
		       str_member(x, "doc", ""));
		print_option_rules(x);
	}
}

/* The plugins the loader finds (both kinds), as a JSON array; NULL after printing why. */
static json_object *find_plugins(const char *cmd, const struct cli_config_args *a, int *rc)
{
	rlm_config *cfg = NULL;
	*rc = cli_config_open(cmd, a, &cfg);
	if (!*rc)
		*rc = cli_config_finish(cmd, a, &cfg);
	if (*rc)
		return NULL;
	rlm_error err = RLM_ERROR_INIT;
	char *text = rlm_plugins_json(cfg, &err);
	rlm_config_free(cfg);
	if (!text) {
		*rc = cli_report(cmd, "listing plugins", &err);
		return NULL;
	}
	json_object *list = json_tokener_parse(text);
	rlm_free(text);
	if (!json_object_is_type(list, json_type_array)) {
		json_object_put(list);
		fprintf(stderr, "rlm %s: the plugin list is not a JSON array\n", cmd);
		*rc = EXIT_INFRA;
		return NULL;
	}
	return list;
}

static int is_kind(json_object *p, const char *kind)
{
	return !kind || !strcmp(str_member(p, "kind", ""), kind);
}

/* Lists the plugins of kind (NULL: every kind), or describes the one named describe. */
static int list_or_describe(const char *cmd, const struct plugins_args *a, const char *kind,
                            const char *describe)
{
	int rc;
	json_object *list = find_plugins(cmd, &a->cfg, &rc);
	if (!list)
		return rc;
	int found = 0;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *p = json_object_array_get_idx(list, i);
		if (!is_kind(p, kind))
			continue;
		if (!describe) {
			print_row(p, !kind || !strcmp(cmd, "plugins"));
		} else if (!strcmp(str_member(p, "name", ""), describe)) {
			if (found)
				printf("\n");
			print_row(p, !strcmp(cmd, "plugins"));
			print_options(p);
			found++;
		}
	}
	json_object_put(list);
	if (describe && !found) {
		fprintf(stderr, "rlm %s: no %s \"%s\" (see `rlm %s`)\n", cmd,
		        !kind                  ? "plugin"
		        : !strcmp(kind, "llm") ? "LLM plugin"
		                               : "backend",
		        describe, cmd);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int parse_plugins_args(const char *cmd, int argc, char **argv, struct plugins_args *a)
{
	int gc = 0;
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		gc = a->npositional > 0 && !strcmp(a->positional[0], "gc");
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			a->help = 1;
			continue; /* the rest may name the subcommand whose help is wanted */
		}
		if (o[0] != '-') {
			if (a->npositional == 2)
				return cli_usage_error(cmd, "too many arguments at \"%s\"", o);
			a->positional[a->npositional++] = o;
			continue;
		}
		int took = cli_take_config_option(cmd, argc, argv, &i, &a->cfg);
		if (took < 0)
			return EXIT_USAGE;
		if (took)
			continue;
		if (gc && !strcmp(o, "--dry-run")) {
			a->dry_run = 1;
			continue;
		}
		int takes = (gc && (!strcmp(o, "--older-than") || !strcmp(o, "--run"))) ||
		            (!strcmp(cmd, "plugins") && !strcmp(o, "--kind"));
		if (!takes)
			return cli_usage_error(cmd, "unknown option \"%s\"", o);
		if (i + 1 >= argc)
			return cli_usage_error(cmd, "%s needs a value", o);
		const char *v = argv[++i];
		if (!strcmp(o, "--kind")) {
			if (strcmp(v, "backend") && strcmp(v, "llm"))
				return cli_usage_error(cmd, "--kind is backend or llm, not \"%s\"",
				                       v);
			a->kind = v;
		} else if (!strcmp(o, "--run")) {
			a->run = v;
		} else {
			char *end;
			a->older_than_min = strtod(v, &end);
			if (end == v || *end || !(a->older_than_min >= 0) ||
			    a->older_than_min > 1e9)
				return cli_usage_error(
				        cmd,
				        "--older-than expects minutes (a number >= 0), "
				        "got \"%s\"",
				        v);
		}
	}
	return EXIT_OK;
}

/* `rlm backends gc NAME`: the backend deletes what earlier runs left behind. */
static int backends_gc(const struct plugins_args *a)
{
	if (a->npositional != 2)
		return cli_usage_error("backends", "usage: rlm backends gc NAME [--older-than "
		                                   "MINUTES] [--dry-run]");
	rlm_config *cfg;
	int rc = cli_config_open("backends", &a->cfg, &cfg);
	if (!rc)
		rc = cli_config_finish("backends", &a->cfg, &cfg);
	if (rc)
		return rc;
	json_object *args = json_object_new_object();
	json_object_object_add(args, "older_than_minutes",
	                       a->older_than_min >= 0 ? json_object_new_double(a->older_than_min)
	                                              : NULL);
	json_object_object_add(args, "dry_run", json_object_new_boolean(a->dry_run));
	if (a->run)
		json_object_object_add(args, "run", json_object_new_string(a->run));
	char *out = NULL;
	rlm_error err = RLM_ERROR_INIT;
	rc = rlm_backend_control(cfg, a->positional[1], "gc", json_object_to_json_string(args),
	                         &out, &err);
	json_object_put(args);
	rlm_config_free(cfg);
	if (rc)
		return cli_report("backends", "gc", &err);
	json_object *rows = json_tokener_parse(out);
	size_t n = json_object_is_type(rows, json_type_array) ? json_object_array_length(rows) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *row = json_object_array_get_idx(rows, i);
		printf("%s %s (%s)\n", a->dry_run ? "would delete" : "deleted",
		       str_member(row, "id", "?"), str_member(row, "state", "?"));
	}
	printf("%zu sandbox%s %s\n", n, n == 1 ? "" : "es", a->dry_run ? "found" : "deleted");
	json_object_put(rows);
	rlm_free(out);
	return EXIT_OK;
}

static int backends_main(const struct plugins_args *a)
{
	const char *sub = a->npositional ? a->positional[0] : NULL;
	if (a->help) {
		fputs(sub && !strcmp(sub, "describe") ? backends_describe_usage
		      : sub && !strcmp(sub, "gc")     ? backends_gc_usage
		                                      : backends_usage,
		      stdout);
		return EXIT_OK;
	}
	if (sub && !strcmp(sub, "gc"))
		return backends_gc(a);
	if (sub && strcmp(sub, "describe"))
		return cli_usage_error("backends", "unknown backends subcommand \"%s\"", sub);
	if (sub && a->npositional != 2)
		return cli_usage_error("backends", "usage: rlm backends describe NAME");
	if (!sub && a->older_than_min >= 0)
		return cli_usage_error("backends", "--older-than goes with `backends gc`");
	return list_or_describe("backends", a, "backend", sub ? a->positional[1] : NULL);
}

static int plugins_main(const struct plugins_args *a)
{
	const char *sub = a->npositional ? a->positional[0] : NULL;
	if (a->help) {
		fputs(sub && !strcmp(sub, "describe") ? plugins_describe_usage : plugins_usage,
		      stdout);
		return EXIT_OK;
	}
	if (sub && strcmp(sub, "describe"))
		return cli_usage_error("plugins", "unknown plugins subcommand \"%s\"", sub);
	if (sub && a->npositional != 2)
		return cli_usage_error("plugins", "usage: rlm plugins describe NAME");
	return list_or_describe("plugins", a, a->kind, sub ? a->positional[1] : NULL);
}

static int with_args(const char *cmd, int argc, char **argv,
                     int (*body)(const struct plugins_args *a))
{
	struct plugins_args a = {.older_than_min = -1};
	a.cfg.sets = calloc((size_t)argc + 1, sizeof(char *));
	if (!a.cfg.sets)
		return EXIT_INFRA;
	int rc = parse_plugins_args(cmd, argc, argv, &a);
	if (!rc)
		rc = body(&a);
	free(a.cfg.sets);
	return rc;
}

int cli_backends(int argc, char **argv)
{
	return with_args("backends", argc, argv, backends_main);
}

int cli_plugins(int argc, char **argv)
{
	return with_args("plugins", argc, argv, plugins_main);
}
