/* main.c - rlm-conformance's command line: which backend, which config, which cases.
 *
 * The cases are in conformance.c; this file reads the options, builds the config, selects
 * the cases by --filter and --skip, and runs the two groups. Exit status: 0 every selected
 * case passed or skipped, 1 a case failed, 2 a usage or configuration error. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fnmatch.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

#define EXIT_FAILED 1
#define EXIT_USAGE  2

#define DEFAULT_EXECUTE_TIMEOUT_S "5"
#define DEFAULT_GRACE_S           "2"

static const char usage_text[] =
        "usage: rlm-conformance [--plugin FILE|NAME] [--config FILE] [--set KEY=VALUE]...\n"
        "                       [--list] [--filter PATTERN[,...]] [--skip PATTERN[,...]]\n"
        "                       [--bombs] [--with fork-bomb,memory-bomb]\n";

static const char help_text[] =
        "\n"
        "Runs the backend conformance suite: the behaviours every rlm backend must show (state,\n"
        "vars, every SUBMIT form, errors, timeouts, output caps, invalid UTF-8, closed fds,\n"
        "os._exit, signals, host calls, nested cells, file round trips, volumes, restarts),\n"
        "through the public API, as an embedder sees them.\n"
        "\n"
        "Which backend:\n"
        "  --plugin FILE|NAME   a plugin file, e.g. ./build/rlm-backend-mine.so (it must be named\n"
        "                       rlm-backend-NAME.so: its directory becomes plugin_path and NAME\n"
        "                       the backend), or a backend name found on the plugin path\n"
        "                       (plugin_path, then RLM_PLUGIN_PATH, then the install's own)\n"
        "  --backend NAME       the same as --set backend=NAME\n"
        "  --config FILE        a JSON config file, as `rlm --config` reads it; the backend's\n"
        "                       options go in its section: {\"backends\": {\"mine\": {...}}}\n"
        "  --set KEY=VALUE      one config value (JSON, or a bare string), repeatable, applied\n"
        "                       after the file and the environment (RLM_BACKEND, ...), e.g.\n"
        "                       --set backends.mine.region=eu --set limits.execute_timeout_s=30\n"
        "                       (the suite sets limits.execute_timeout_s=5 and\n"
        "                       limits.hard_deadline_grace_s=2 unless given)\n"
        "\n"
        "Which cases:\n"
        "  --list               print the names of the selected cases, one a line, and exit\n"
        "  --filter PATTERN     run only the cases whose name matches a PATTERN: a glob\n"
        "                       (fnmatch, the whole name) when it holds * ? or [, else a\n"
        "                       substring of the name; a comma-separated list matches any\n"
        "  --skip PATTERN       leave out the cases that match (same rules), e.g.\n"
        "                       --skip test_volume_persists_across_interpreters,'*nested*'\n"
        "                       A PATTERN that matches no case is a usage error (a typo would\n"
        "                       otherwise run everything or nothing).\n"
        "  --bombs              run the fork-bomb and memory-bomb cases even though the backend\n"
        "                       does not declare RLM_CAP_CONTAINS_BOMBS\n"
        "  --with NAME[,NAME]   the same for the named ones: fork-bomb, memory-bomb\n"
        "  Without the capability or the flag the bomb cases are reported as skipped: a fork bomb\n"
        "  in a sandbox that does not bound its processes is one on this machine.\n"
        "\n"
        "After the shared group and after each case that opens its own sandbox, the suite checks\n"
        "that no process of the closed sandbox is still running: it makes itself a child\n"
        "subreaper, so every process a backend starts from this process (fork, clone, bwrap) "
        "stays\n"
        "in its process tree; a live descendant 30 s after the close fails the case and is "
        "killed.\n"
        "Processes started through a daemon (dockerd, systemd-run) are not seen. Skipped for\n"
        "remote backends (RLM_CAP_REMOTE): their processes are not on this machine.\n"
        "\n"
        "Exit status: 0 every selected case passed (or was skipped), 1 a case failed, 2 a usage\n"
        "or configuration error.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "rlm-conformance: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s(rlm-conformance --help says more)\n", usage_text);
	return -1;
}

static int config_error(const char *what, const rlm_error *err)
{
	fprintf(stderr, "rlm-conformance: %s: %s\n", what, err->message);
	return -1;
}

/* What the command line asked for, besides the config. */
struct options {
	bool list;
	const char *filter, *skip;
};

/* Takes the value of "--name VALUE" or "--name=VALUE"; NULL when argv[*i] is another option. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

static int set(rlm_config *cfg, const char *key, const char *value)
{
	rlm_error err = RLM_ERROR_INIT;

	if (rlm_config_set(cfg, key, value, &err) != 0)
		return config_error(key, &err);
	return 0;
}

/* --plugin: a file names its directory and backend; anything else is a backend name. */
static int use_plugin(rlm_config *cfg, const char *arg)
{
	char resolved[PATH_MAX], dir[PATH_MAX + 8], name[256];
	const char *base;
	size_t len;

	if (!strchr(arg, '/') && !strstr(arg, ".so"))
		return set(cfg, "backend", arg);
	if (!realpath(arg, resolved))
		return usage_error("--plugin %s: no such file", arg);
	base = strrchr(resolved, '/') + 1;
	len = strlen(base);
	if (strncmp(base, "rlm-backend-", 12) != 0 || len <= 15 ||
	    strcmp(base + len - 3, ".so") != 0 || len - 15 >= sizeof(name))
		return usage_error(
		        "--plugin %s: a backend plugin file is named rlm-backend-NAME.so "
		        "(the loader finds it by that name)",
		        arg);
	snprintf(name, sizeof(name), "%.*s", (int)(len - 15), base + 12);
	if (strpbrk(resolved, "\"\\"))
		return usage_error("--plugin %s: the directory's name holds a quote or a backslash",
		                   arg);
	snprintf(dir, sizeof(dir), "[\"%.*s\"]", (int)(base - 1 - resolved), resolved);
	return set(cfg, "plugin_path", dir) || set(cfg, "backend", name);
}

/* --with fork-bomb,memory-bomb */
static int want_bombs(const char *list)
{
	char *copy = strdup(list), *save = NULL;
	int rc = 0;

	for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "fork-bomb") == 0)
			suite.want_fork_bomb = true;
		else if (strcmp(t, "memory-bomb") == 0)
			suite.want_memory_bomb = true;
		else
			rc = usage_error("--with %s: the cases asked for by name are fork-bomb and "
			                 "memory-bomb",
			                 t);
	}
	free(copy);
	return rc;
}

/* Defaults first, then the file, the environment and the command line, in that order. */
static int parse_args(int argc, char **argv, rlm_config *cfg, struct options *o)
{
	rlm_error err = RLM_ERROR_INIT;
	const char *file = NULL, *v;
	int missing = 0;

	if (set(cfg, "limits.execute_timeout_s", DEFAULT_EXECUTE_TIMEOUT_S) ||
	    set(cfg, "limits.hard_deadline_grace_s", DEFAULT_GRACE_S))
		return -1;
	for (int i = 1; i < argc; i++) /* the file goes under everything else: find it first */
		if ((v = option_value(argc, argv, &i, "--config", &missing)))
			file = v;
	if (file && rlm_config_load_file(cfg, file, &err) != 0)
		return config_error(file, &err);
	if (rlm_config_apply_env(cfg, &err) != 0)
		return config_error("environment", &err);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if ((v = option_value(argc, argv, &i, "--config", &missing)))
			continue;
		else if ((v = option_value(argc, argv, &i, "--set", &missing))) {
			if (rlm_config_set_assignment(cfg, v, &err) != 0)
				return config_error(v, &err);
		} else if ((v = option_value(argc, argv, &i, "--plugin", &missing))) {
			if (use_plugin(cfg, v))
				return -1;
		} else if ((v = option_value(argc, argv, &i, "--backend", &missing))) {
			if (set(cfg, "backend", v))
				return -1;
		} else if ((v = option_value(argc, argv, &i, "--filter", &missing)))
			o->filter = v;
		else if ((v = option_value(argc, argv, &i, "--skip", &missing)))
			o->skip = v;
		else if ((v = option_value(argc, argv, &i, "--with", &missing))) {
			if (want_bombs(v))
				return -1;
		} else if (missing)
			return usage_error("%s needs a value", arg);
		else if (strcmp(arg, "--list") == 0)
			o->list = true;
		else if (strcmp(arg, "--bombs") == 0)
			suite.want_fork_bomb = suite.want_memory_bomb = true;
		else
			return usage_error("unknown option %s", arg);
	}
	if (missing)
		return usage_error("%s needs a value", argv[argc - 1]);
	return 0;
}

/* ---- selecting cases ------------------------------------------------------------------- */

/* A glob when the pattern holds a glob character, else a substring. */
static bool name_matches(const char *pattern, const char *name)
{
	if (strpbrk(pattern, "*?["))
		return fnmatch(pattern, name, 0) == 0;
	return strstr(name, pattern) != NULL;
}

static bool any_matches(const char *list, const char *name)
{
	char *copy = strdup(list), *save = NULL;
	bool hit = false;

	for (char *t = strtok_r(copy, ",", &save); t && !hit; t = strtok_r(NULL, ",", &save))
		hit = name_matches(t, name);
	free(copy);
	return hit;
}

static bool selected(const struct options *o, const char *name)
{
	return (!o->filter || any_matches(o->filter, name)) &&
	       (!o->skip || !any_matches(o->skip, name));
}

/* Every pattern of list must match some case. */
static int check_patterns(const char *option, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	int rc = 0;

	for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
		bool hit = false;

		for (size_t i = 0; i < conformance_shared_count && !hit; i++)
			hit = name_matches(t, conformance_shared[i].name);
		for (size_t i = 0; i < conformance_fresh_count && !hit; i++)
			hit = name_matches(t, conformance_fresh[i].name);
		if (!hit) {
			fprintf(stderr,
			        "rlm-conformance: %s %s matches no case (--list names them)\n",
			        option, t);
			rc = -1;
		}
	}
	free(copy);
	return rc;
}

/* The selected cases of one group, in order; *n of them. Caller frees. */
static struct CMUnitTest *select_cases(const struct options *o, const struct CMUnitTest *all,
                                       size_t count, size_t *n)
{
	struct CMUnitTest *out = calloc(count ? count : 1, sizeof(*out));

	*n = 0;
	for (size_t i = 0; out && i < count; i++)
		if (selected(o, all[i].name))
			out[(*n)++] = all[i];
	return out;
}

int main(int argc, char **argv)
{
	rlm_error err = RLM_ERROR_INIT;
	struct options o = {0};
	struct CMUnitTest *shared, *fresh;
	size_t n_shared, n_fresh;
	int failed = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("%s%s", usage_text, help_text);
			return 0;
		}
	}
	if (rlm_config_new(&suite.cfg, &err) != 0) {
		fprintf(stderr, "rlm-conformance: out of memory\n");
		return EXIT_USAGE;
	}
	if (parse_args(argc, argv, suite.cfg, &o) != 0 ||
	    (o.filter && check_patterns("--filter", o.filter)) ||
	    (o.skip && check_patterns("--skip", o.skip))) {
		rlm_config_free(suite.cfg);
		return EXIT_USAGE;
	}
	shared = select_cases(&o, conformance_shared, conformance_shared_count, &n_shared);
	fresh = select_cases(&o, conformance_fresh, conformance_fresh_count, &n_fresh);
	if (!shared || !fresh) {
		fprintf(stderr, "rlm-conformance: out of memory\n");
		return EXIT_USAGE;
	}
	if (o.list) {
		for (size_t i = 0; i < n_shared; i++)
			printf("%s\n", shared[i].name);
		for (size_t i = 0; i < n_fresh; i++)
			printf("%s\n", fresh[i].name);
	} else {
		suite.backend = rlm_config_get_string(suite.cfg, "backend", "local");
		printf("conformance: rlm %s, backend %s\n", rlm_version(), suite.backend);
		if (leftovers_watch() != 0)
			perror("rlm-conformance: prctl(PR_SET_CHILD_SUBREAPER)");
		if (n_shared)
			failed += _cmocka_run_group_tests("shared", shared, n_shared,
			                                  conformance_open_shared,
			                                  conformance_close_shared);
		if (n_fresh)
			failed += _cmocka_run_group_tests("fresh", fresh, n_fresh, NULL, NULL);
		if (suite.remote)
			printf("conformance: leftover-process check skipped: backend %s is remote "
			       "(RLM_CAP_REMOTE), its sandboxes' processes are not on this "
			       "machine\n",
			       suite.backend);
		else if (suite.leftover_failures == 0)
			printf("conformance: no process of a closed sandbox was left running\n");
	}
	free(shared);
	free(fresh);
	rlm_config_free(suite.cfg);
	if (suite.leftover_failures)
		failed++;
	return failed ? EXIT_FAILED : 0;
}
