/* mcp_main.c - `rlm mcp`: options, config, the HTTP security rules that are checked before
 * anything listens, signal handling, and the orderly stop (every sandbox destroyed however
 * the server stops: SIGINT, SIGTERM, SIGHUP, the end of stdin). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mcp.h"

#define DEFAULT_PORT       8765
#define DEFAULT_IDLE_S     900
#define DEFAULT_MAX_HANDLE 32
#define DEFAULT_MAX_BODY   (64u * 1024u * 1024u)
#define DEFAULT_INFLIGHT   64
#define TOKEN_MIN_CHARS    16

static const char mcp_usage[] =
        "usage: rlm mcp [--http [--listen ADDR:PORT]] [options]\n"
        "\n"
        "Serves RLM runs and persistent sandboxes as MCP tools (rlm_run, sandbox_create,\n"
        "sandbox_exec, sandbox_upload, sandbox_download, sandbox_files, sandbox_destroy,\n"
        "rlm_status) and the prompts analyze, code and decompose, in MCP revisions 2025-11-25\n"
        "(initialize) and 2026-07-28 (stateless, server/discover). Logs go to stderr only.\n"
        "\n"
        "tools:\n"
        "  rlm_run {query, context | context_path, backend?, model?, max_iterations?}\n"
        "      the RLM loop; one notifications/progress per iteration when the request has a\n"
        "      progress token; cancelling (notifications/cancelled, or closing the HTTP\n"
        "      stream) stops it and frees its sandbox; returns answer, SUBMIT fields,\n"
        "      iterations, usage and the trajectory path\n"
        "  sandbox_create {backend?, volume_name?, options?} -> an unguessable handle;\n"
        "      options: resource limits, image, snapshot, target, repo_url/repo_ref only\n"
        "  sandbox_exec {sandbox, code, variables?, timeout_s?}   state persists per handle\n"
        "  sandbox_upload {sandbox, path, content, encoding: utf-8|base64}\n"
        "  sandbox_download {sandbox, path} -> {content, encoding} (utf-8 or base64)\n"
        "  sandbox_files {sandbox, path?} -> entries {name, type, size}\n"
        "  sandbox_destroy {sandbox}     rlm_status {}: version, backends, handles, limits, LLM\n"
        "  Handles expire after --handle-idle-s without a call, count against the pool, and\n"
        "  are all destroyed when the server stops (signal or end of stdin).\n"
        "\n"
        "transport:\n"
        "  (default)              stdio: one JSON-RPC message per line; credentials from the\n"
        "                         environment; stops at the end of stdin\n"
        "  --http                 streamable HTTP on the single endpoint /mcp\n"
        "  --listen ADDR:PORT     where to bind (default 127.0.0.1:8765; [::1]:PORT for IPv6;\n"
        "                         port 0 picks a free one)\n"
        "  --token-env NAME       HTTP clients must send `Authorization: Bearer <$NAME>`\n"
        "                         (at least 16 characters); without it a random token is\n"
        "                         generated and printed once on stderr. Required for a\n"
        "                         non-loopback address\n"
        "  --no-auth              no token at all: loopback addresses only (for the MCP\n"
        "                         conformance suite, which cannot send one)\n"
        "  --allow-origin ORIGIN  also accept requests whose Origin is ORIGIN (repeatable);\n"
        "                         by default only loopback origins (or none) are accepted,\n"
        "                         and on a loopback bind only a loopback Host (else 403)\n"
        "  --port-file FILE       write the bound port to FILE once listening\n"
        "\n"
        "sandboxes and runs:\n"
        "  --backend NAME         default backend (config `backend`, else local)\n"
        "  --config FILE          config file (default: $RLM_CONFIG, ./rlm.json,\n"
        "                         ~/.config/rlm/config.json)\n"
        "  --set KEY=VALUE        override a config key (e.g. --set llm.provider=openai,\n"
        "                         --set pool.max_live=8)\n"
        "  --handle-idle-s S      destroy a sandbox handle after S seconds without a call\n"
        "                         (default 900; a flag because the config has no mcp section)\n"
        "  --max-handles N        sandbox handles alive at once (default 32); every sandbox\n"
        "                         also counts against the pool's pool.max_live\n"
        "  --context-dir DIR      rlm_run's context_path must lie inside DIR (repeatable;\n"
        "                         default: the working directory)\n"
        "  --trajectory-dir DIR   where rlm_run writes trajectories (default\n"
        "                         $XDG_DATA_HOME/rlm/trajectories)\n"
        "\n"
        "limits:\n"
        "  --max-body-bytes N     largest HTTP request body or stdio line (default 64 MiB)\n"
        "  --max-inflight N       tool calls running at once (default 64)\n"
        "\n"
        "testing:\n"
        "  --conformance-fixtures also serve the fixture tools the MCP conformance suite calls\n"
        "                         (test_simple_text, test_tool_with_progress, ...): test only\n"
        "\n"
        "Secrets: the LLM key stays in the server (config names its env var); a sandbox gets\n"
        "an environment variable only when the config names it (backends.NAME.pass_env). A\n"
        "client's sandbox_create options cannot name any.\n"
        "exit status: 0 stopped, 2 usage or config error, 3 could not serve\n";

struct cli {
	struct mcp_options o;
	const char *backend;
	const char *config_file;
	const char **sets;
	int nsets;
	int listen_given;
};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "rlm mcp: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see `rlm mcp --help`)\n");
	return EXIT_USAGE;
}

static int parse_number(const char *flag, const char *v, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (*end || errno || !(d >= min && d <= max)) {
		fprintf(stderr, "rlm mcp: %s expects a number from %g to %g, got \"%s\"\n", flag,
		        min, max, v);
		return EXIT_USAGE;
	}
	*out = d;
	return 0;
}

static int parse_listen(struct cli *c, const char *v)
{
	const char *colon;
	size_t host_len;
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (!close || close[1] != ':')
			return usage_error("--listen expects ADDR:PORT or [IPv6]:PORT, got \"%s\"",
			                   v);
		colon = close + 1;
		v++;
		host_len = (size_t)(close - v);
	} else {
		colon = strrchr(v, ':');
		if (!colon)
			return usage_error("--listen expects ADDR:PORT, got \"%s\"", v);
		host_len = (size_t)(colon - v);
	}
	if (host_len == 0 || host_len >= sizeof(c->o.listen_host))
		return usage_error("--listen: bad address in \"%s\"", v);
	double port;
	if (parse_number("--listen port", colon + 1, 0, 65535, &port))
		return EXIT_USAGE;
	memcpy(c->o.listen_host, v, host_len);
	c->o.listen_host[host_len] = 0;
	c->o.port = (int)port;
	c->listen_given = 1;
	return 0;
}

static const char *const with_value[] = {"--listen",
                                         "--token-env",
                                         "--allow-origin",
                                         "--port-file",
                                         "--backend",
                                         "--config",
                                         "--set",
                                         "--handle-idle-s",
                                         "--max-handles",
                                         "--context-dir",
                                         "--trajectory-dir",
                                         "--max-body-bytes",
                                         "--max-inflight",
                                         NULL};

static int parse_value(struct cli *c, const char *a, const char *v)
{
	double d;
	if (!strcmp(a, "--listen"))
		return parse_listen(c, v);
	if (!strcmp(a, "--token-env"))
		c->o.token_env = v;
	else if (!strcmp(a, "--allow-origin"))
		c->o.origins[c->o.norigins++] = v;
	else if (!strcmp(a, "--port-file"))
		c->o.port_file = v;
	else if (!strcmp(a, "--backend"))
		c->backend = v;
	else if (!strcmp(a, "--config"))
		c->config_file = v;
	else if (!strcmp(a, "--set"))
		c->sets[c->nsets++] = v;
	else if (!strcmp(a, "--context-dir"))
		c->o.context_dirs[c->o.ncontext_dirs++] = v;
	else if (!strcmp(a, "--trajectory-dir"))
		c->o.trajectory_dir = v;
	else if (!strcmp(a, "--handle-idle-s")) {
		if (parse_number(a, v, 1, 7 * 86400, &d))
			return EXIT_USAGE;
		c->o.handle_idle_s = d;
	} else if (!strcmp(a, "--max-handles")) {
		if (parse_number(a, v, 1, 100000, &d))
			return EXIT_USAGE;
		c->o.max_handles = (int)d;
	} else if (!strcmp(a, "--max-body-bytes")) {
		if (parse_number(a, v, 1024, 1024.0 * 1024 * 1024, &d))
			return EXIT_USAGE;
		c->o.max_body = (size_t)d;
	} else if (!strcmp(a, "--max-inflight")) {
		if (parse_number(a, v, 1, 4096, &d))
			return EXIT_USAGE;
		c->o.max_inflight = (int)d;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct cli *c, int *help)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			*help = 1;
			return 0;
		}
		if (!strcmp(a, "--http")) {
			c->o.http = 1;
			continue;
		}
		if (!strcmp(a, "--no-auth")) {
			c->o.no_auth = 1;
			continue;
		}
		if (!strcmp(a, "--conformance-fixtures")) {
			c->o.fixtures = 1;
			continue;
		}
		int takes = 0;
		for (const char *const *w = with_value; *w; w++)
			takes |= !strcmp(a, *w);
		if (!takes)
			return usage_error(a[0] == '-' ? "unknown option \"%s\""
			                               : "unexpected argument \"%s\"",
			                   a);
		if (i + 1 >= argc)
			return usage_error("%s needs a value", a);
		int rc = parse_value(c, a, argv[++i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* The HTTP rules that hold before anything listens. */
static int check_security(const struct cli *c)
{
	const struct mcp_options *o = &c->o;
	if (!o->http) {
		if (c->listen_given || o->token_env || o->no_auth || o->norigins || o->port_file)
			return usage_error("%s", "--listen, --token-env, --no-auth, --allow-origin "
			                         "and --port-file need --http");
		return 0;
	}
	int loopback = mcp_host_is_loopback(o->listen_host);
	if (o->no_auth && o->token_env)
		return usage_error("%s", "--no-auth and --token-env exclude each other");
	if (o->no_auth && !loopback)
		return usage_error("--no-auth is refused for the non-loopback address %s: anyone "
		                   "who reaches it could run code; give --token-env NAME",
		                   o->listen_host);
	if (!loopback && !o->token_env)
		return usage_error("binding the non-loopback address %s needs a token you manage: "
		                   "--token-env NAME (a generated one is for loopback use)",
		                   o->listen_host);
	return 0;
}

/* The bearer token: $token_env, or a fresh one printed once on stderr; NULL with --no-auth. */
static int make_token(const struct mcp_options *o, char **out)
{
	*out = NULL;
	if (!o->http || o->no_auth)
		return 0;
	if (o->token_env) {
		const char *v = getenv(o->token_env);
		if (!v || strlen(v) < TOKEN_MIN_CHARS) {
			fprintf(stderr,
			        "rlm mcp: --token-env %s: the variable is %s (a token has at least "
			        "%d characters)\n",
			        o->token_env, v ? "too short" : "not set", TOKEN_MIN_CHARS);
			return EXIT_USAGE;
		}
		*out = strdup(v);
		return *out ? 0 : EXIT_INFRA;
	}
	unsigned char raw[24];
	if (mcp_random_bytes(raw, sizeof(raw)))
		return EXIT_INFRA;
	char *b64 = mcp_base64_encode(raw, sizeof(raw));
	if (!b64)
		return EXIT_INFRA;
	for (char *p = b64; *p; p++) /* URL-safe: no quoting trouble in configs */
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	fprintf(stderr, "rlm mcp: bearer token (shown once, give it to your client): %s\n", b64);
	*out = b64;
	return 0;
}

/* The config, layered as for every rlm command (cli/common.c). */
static int build_config(const struct cli *c, rlm_config **out)
{
	struct cli_config_args a = {c->backend, c->config_file, c->sets, c->nsets};
	int rc = cli_config_open("mcp", &a, out);
	return rc ? rc : cli_config_finish("mcp", &a, out);
}

/* ---- signals: a self-pipe the transports poll ---- */

/* Written by the signal handler, which has nowhere else to write. The other process-wide
 * state of rlm mcp is the tools' parsed schemas in mcp_tools.c (read-only once built). */
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	if (write(stop_pipe[1], &c, 1) < 0) {
		/* the pipe is full: a stop is already pending */
	}
	errno = saved;
}

static int install_signals(void)
{
	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK))
		return -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL))
			return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int rlm_cli_mcp(int argc, char **argv)
{
	struct cli c;
	memset(&c, 0, sizeof(c));
	snprintf(c.o.listen_host, sizeof(c.o.listen_host), "127.0.0.1");
	c.o.port = DEFAULT_PORT;
	c.o.handle_idle_s = DEFAULT_IDLE_S;
	c.o.max_handles = DEFAULT_MAX_HANDLE;
	c.o.max_body = DEFAULT_MAX_BODY;
	c.o.max_inflight = DEFAULT_INFLIGHT;
	c.sets = calloc((size_t)argc + 1, sizeof(char *));
	c.o.context_dirs = calloc((size_t)argc + 1, sizeof(char *));
	c.o.origins = calloc((size_t)argc + 1, sizeof(char *));
	if (!c.sets || !c.o.context_dirs || !c.o.origins)
		return EXIT_INFRA;
	int help = 0, rc = parse_args(argc, argv, &c, &help);
	char *token = NULL;
	rlm_config *cfg = NULL;
	struct mcp_server *server = NULL;
	if (help) {
		fputs(mcp_usage, stdout);
		goto out;
	}
	if (!rc)
		rc = check_security(&c);
	if (!rc)
		rc = build_config(&c, &cfg);
	if (!rc)
		rc = make_token(&c.o, &token);
	if (!rc && install_signals()) {
		fprintf(stderr, "rlm mcp: cannot install signal handlers: %s\n", strerror(errno));
		rc = EXIT_INFRA;
	}
	rlm_error err = RLM_ERROR_INIT;
	if (!rc && mcp_server_new(cfg, &c.o, &server, &err)) {
		fprintf(stderr, "rlm mcp: %s [%s]\n", err.message, rlm_status_name(err.code));
		rc = EXIT_INFRA;
	}
	if (!rc)
		rc = c.o.http ? mcp_http_run(server, &c.o, token, stop_pipe[0])
		              : mcp_stdio_run(server, &c.o, stop_pipe[0]);
	/* However it stopped: every sandbox goes, handles and runs alike. */
	mcp_server_free(server);
	if (server)
		fprintf(stderr, "rlm mcp: stopped\n");
out:
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	rlm_config_free(cfg);
	free(c.sets);
	free(c.o.context_dirs);
	free(c.o.origins);
	return rc;
}
