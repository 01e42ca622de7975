/* common.c - what the `rlm` commands share: usage errors, the configuration from the command
 * line, and the exit status an rlm error maps to. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "signals.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "rlm%s%s: ", *cmd ? " " : "", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see `rlm%s%s --help`)\n", *cmd ? " " : "", cmd);
	return EXIT_USAGE;
}

int cli_take_config_option(const char *cmd, int argc, char **argv, int *i,
                           struct cli_config_args *a)
{
	const char *o = argv[*i];
	if (strcmp(o, "--backend") && strcmp(o, "--config") && strcmp(o, "--set"))
		return 0;
	if (*i + 1 >= argc)
		return cli_usage_error(cmd, "%s needs a value", o), -1;
	const char *v = argv[++*i];
	if (!strcmp(o, "--backend"))
		a->backend = v;
	else if (!strcmp(o, "--config"))
		a->config_file = v;
	else
		a->sets[a->nsets++] = v;
	return 1;
}

int cli_input_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "rlm%s%s: ", *cmd ? " " : "", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

/* Credentials that are not there at all are a configuration fault the user fixes by setting
 * them; refused ones are the provider's answer. Both are RLM_EAUTH (rlm/error.h), so the
 * backends' wording tells them apart: "no API key" (daytona), "no credentials" (modal). */
static int missing_credentials(const rlm_error *err)
{
	return err->code == RLM_EAUTH && err->http_status == 0 &&
	       (strstr(err->message, "no API key") || strstr(err->message, "no credentials"));
}

int cli_exit_for_error(const rlm_error *err)
{
	switch (err->code) {
	case RLM_ECONFIG:
	case RLM_EINVAL:
	case RLM_ENOTFOUND:
	case RLM_EPLUGIN: return EXIT_USAGE;
	case RLM_ECANCELLED:
		/* Cancelled by our own signal flag; anything else cancelling is a fault. */
		return cli_signal_received() ? cli_signal_exit_status() : EXIT_INFRA;
	default: return missing_credentials(err) ? EXIT_USAGE : EXIT_INFRA;
	}
}

void cli_error_from_rc(rlm_error *err, int rc)
{
	if (err->code == 0 && rc < 0) {
		err->code = rc;
		snprintf(err->message, sizeof(err->message), "%s", rlm_strerror(rc));
	}
}

int cli_report(const char *cmd, const char *what, const rlm_error *err)
{
	fprintf(stderr, "rlm%s%s: %s: %s [%s]\n", *cmd ? " " : "", cmd, what, err->message,
	        rlm_status_name(err->code));
	return cli_exit_for_error(err);
}

/* Every fault while reading the configuration is the user's to fix (a missing file, a
 * directory named as the file, a key with a bad value): exit 2, whatever the code. */
static int config_failed(const char *cmd, const rlm_error *err)
{
	fprintf(stderr, "rlm%s%s: config: %s [%s]\n", *cmd ? " " : "", cmd, err->message,
	        rlm_status_name(err->code));
	return err->code == RLM_ENOMEM ? EXIT_INFRA : EXIT_USAGE;
}

int cli_config_open(const char *cmd, const struct cli_config_args *a, rlm_config **out)
{
	rlm_error err = RLM_ERROR_INIT;
	rlm_config *cfg = NULL;
	*out = NULL;
	int rc = rlm_config_new(&cfg, &err);
	if (!rc)
		rc = a->config_file ? rlm_config_load_file(cfg, a->config_file, &err)
		                    : rlm_config_load_default_files(cfg, &err);
	if (!rc)
		rc = rlm_config_apply_env(cfg, &err);
	if (!rc && a->backend)
		rc = rlm_config_set(cfg, "backend", a->backend, &err);
	if (rc) {
		rlm_config_free(cfg);
		return config_failed(cmd, &err);
	}
	*out = cfg;
	return EXIT_OK;
}

int cli_config_finish(const char *cmd, const struct cli_config_args *a, rlm_config **cfg)
{
	rlm_error err = RLM_ERROR_INIT;
	int rc = 0;
	for (int i = 0; !rc && i < a->nsets; i++)
		rc = rlm_config_set_assignment(*cfg, a->sets[i], &err);
	if (!rc)
		rc = rlm_config_validate(*cfg, &err);
	if (rc) {
		rlm_config_free(*cfg);
		*cfg = NULL;
		return config_failed(cmd, &err);
	}
	return EXIT_OK;
}

int cli_config_set(const char *cmd, rlm_config *cfg, const char *key, const char *value)
{
	rlm_error err = RLM_ERROR_INIT;
	return rlm_config_set(cfg, key, value, &err) ? config_failed(cmd, &err) : EXIT_OK;
}

int cli_config_build(const char *cmd, const struct cli_config_args *a, const struct cli_llm_args *l,
                     rlm_config **out)
{
	rlm_config *cfg = NULL;
	*out = NULL;
	int rc = cli_config_open(cmd, a, &cfg);
	if (rc)
		return rc;
	if (l && l->llm)
		rc = cli_config_set(cmd, cfg, "llm.provider", l->llm);
	if (!rc && l && l->model)
		rc = cli_config_set(cmd, cfg, "llm.model", l->model);
	if (!rc && l && l->script) {
		/* A path is a plain string: quote it so "[...]"-looking names stay paths. */
		json_object *path = json_object_new_string(l->script);
		rc = path ? cli_config_set(
		                    cmd, cfg, "llm.script",
		                    json_object_to_json_string_ext(path, JSON_C_TO_STRING_PLAIN))
		          : EXIT_INFRA;
		json_object_put(path);
		if (!rc && !rlm_config_get_string(cfg, "llm.provider", NULL))
			rc = cli_config_set(cmd, cfg, "llm.provider", "replay");
	}
	if (rc) {
		rlm_config_free(cfg);
		return rc;
	}
	rc = cli_config_finish(cmd, a, &cfg);
	*out = cfg;
	return rc;
}
