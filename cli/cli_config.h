/* cli_config.h - the config every CLI command builds the same way: built-in defaults, then the
 * config file (--config, or the default files), the environment, --backend / --llm / --model /
 * --script, and the --set overrides in order; then a check of the whole. */
#ifndef RLM_CLI_CONFIG_H
#define RLM_CLI_CONFIG_H

#include "rlm/rlm.h"

struct rlm_cli_config_args {
	const char *config_file; /* NULL: the default files */
	const char *backend;     /* sets backend */
	const char *llm;         /* sets llm.provider */
	const char *model;       /* sets llm.model */
	const char *script;      /* sets llm.script (and llm.provider=replay when unset) */
	const char *const *sets; /* "key.path=value" overrides, nsets of them */
	int nsets;
};

/* Builds and checks the config; *out is freed with rlm_config_free. */
int rlm_cli_config_build(const struct rlm_cli_config_args *a, rlm_config **out, rlm_error *err);

#endif
