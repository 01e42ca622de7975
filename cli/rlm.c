/* rlm.c - the `rlm` command: global options, help, and the dispatch to each command (exec.c,
 * run.c, plugins.c for backends and plugins, smoke.c, eval.c, view.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
        "usage: rlm [global options] <command> [options]\n"
        "\n"
        "commands:\n"
        "  exec [options] FILE | - | -c CODE   run Python cells in one sandbox interpreter\n"
        "  run -q TEXT [--context FILE|-] ...  run an RLM on a task\n"
        "  backends                            list backend plugins (name, file, ABI,\n"
        "                                      capabilities)\n"
        "  backends describe NAME              a backend's options: type, default, doc\n"
        "  backends gc NAME [--older-than M] [--dry-run]\n"
        "                                      delete sandboxes earlier runs left behind\n"
        "  plugins                             list every plugin, backends and LLMs\n"
        "  plugins describe NAME               a plugin's options\n"
        "  smoke [--backend NAME] [--repo URL [--ref REF]]\n"
        "                                      timed end-to-end check of a backend\n"
        "  eval TASKS.jsonl --out DIR ...      run a task file through a sandbox pool\n"
        "  eval report DIR... [--json] [--html FILE]\n"
        "                                      merge and summarise results\n"
        "  eval gen sniah|count --n N ...      generate long-context tasks offline\n"
        "  view TRAJECTORY [-o FILE.html]      one self-contained HTML page of a run\n"
        "  mcp [--http]                        serve RLMs and sandboxes over MCP\n"
        "  version                             print the version\n"
        "  help [COMMAND]                      this help, or a command's\n"
        "\n"
        "`rlm COMMAND --help` (or -h) prints a command's options.\n"
        "\n"
        "global options (before or after the command):\n"
        "  --backend NAME      backend to use (default: config `backend`, else local)\n"
        "  --config FILE       config file (default: $RLM_CONFIG, ./rlm.json,\n"
        "                      ~/.config/rlm/config.json)\n"
        "  --set KEY=VALUE     override a config key, e.g. --set limits.execute_timeout_s=30\n"
        "  -h, --help          this help\n"
        "  --version           print the version\n"
        "\n"
        "exit status: 0 success, 1 a cell did not complete (exec) or no answer (run),\n"
        "             2 usage, input or config error, 3 backend or infrastructure error,\n"
        "             128 + N stopped by signal N (130: Ctrl-C)\n";

static const char version_usage[] = "usage: rlm version\n"
                                    "\n"
                                    "Prints the version of rlm and of its plugin ABI.\n";

static int cmd_version(int argc, char **argv)
{
	if (argc && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
		fputs(version_usage, stdout);
		return EXIT_OK;
	}
	if (argc)
		return cli_usage_error("version", "version takes no arguments (\"%s\")", argv[0]);
	printf("rlm %s (plugin ABI %d.%d)\n", rlm_version(), RLM_ABI_MAJOR, RLM_ABI_MINOR);
	return EXIT_OK;
}

static int cmd_help(int argc, char **argv);

/* The commands. Those that read the configuration get the global options in front of their
 * own arguments, so an option given after the command wins. */
static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	int takes_config;
} commands[] = {
        {"exec", cli_exec, 1},       {"run", cli_run, 1},         {"backends", cli_backends, 1},
        {"plugins", cli_plugins, 1}, {"smoke", cli_smoke, 1},     {"eval", rlm_cli_eval, 1},
        {"view", rlm_cli_view, 0},   {"version", cmd_version, 0}, {"help", cmd_help, 0},
        {"mcp", rlm_cli_mcp, 1},
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* `rlm help [COMMAND]`: the same text as `rlm COMMAND --help`. */
static int cmd_help(int argc, char **argv)
{
	if (argc == 0 || !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") ||
	    !strcmp(argv[0], "help")) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	const struct command *c = find_command(argv[0]);
	if (!c)
		return cli_usage_error("help", "no command \"%s\"", argv[0]);
	static char help_flag[] = "--help";
	char *help_argv[] = {help_flag, NULL};
	return c->run(1, help_argv);
}

int main(int argc, char **argv)
{
	/* A driver that dies mid-write must give an error, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	/* Global options: before the command; handed to it in front of its own arguments. */
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
		if (!strcmp(o, "--version"))
			return cmd_version(0, NULL);
		if (strcmp(o, "--backend") && strcmp(o, "--config") && strcmp(o, "--set"))
			return cli_usage_error("",
			                       "unknown global option \"%s\" (global options: "
			                       "--backend, --config, --set)",
			                       o);
		if (i + 1 >= argc)
			return cli_usage_error("", "%s needs a value", o);
		i += 2;
	}
	if (i == argc)
		return cli_usage_error("", "a command is missing after the global options");
	const struct command *c = find_command(argv[i]);
	if (!c)
		return cli_usage_error("", "unknown command \"%s\"", argv[i]);
	int nglobal = i - 1, nown = argc - i - 1;
	if (nglobal && !c->takes_config)
		return cli_usage_error("", "`rlm %s` takes no --backend, --config or --set",
		                       c->name);
	char **args = calloc((size_t)(nglobal + nown) + 1, sizeof(char *));
	if (!args)
		return EXIT_INFRA;
	memcpy(args, argv + 1, (size_t)nglobal * sizeof(char *));
	memcpy(args + nglobal, argv + i + 1, (size_t)nown * sizeof(char *));
	int rc = c->run(nglobal + nown, args);
	free(args);
	return rc;
}
