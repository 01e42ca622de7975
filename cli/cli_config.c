/* cli_config.c - the config of a CLI command (see cli_config.h). */
#include "cli_config.h"

#include <json-c/json.h>

int rlm_cli_config_build(const struct rlm_cli_config_args *a, rlm_config **out, rlm_error *err)
{
	*out = NULL;
	rlm_config *cfg = NULL;
	int rc = rlm_config_new(&cfg, err);
	if (!rc)
		rc = a->config_file ? rlm_config_load_file(cfg, a->config_file, err)
		                    : rlm_config_load_default_files(cfg, err);
	if (!rc)
		rc = rlm_config_apply_env(cfg, err);
	if (!rc && a->backend)
		rc = rlm_config_set(cfg, "backend", a->backend, err);
	if (!rc && a->llm)
		rc = rlm_config_set(cfg, "llm.provider", a->llm, err);
	if (!rc && a->model)
		rc = rlm_config_set(cfg, "llm.model", a->model, err);
	if (!rc && a->script) {
		/* A path is a plain string: quote it so "[...]"-looking names stay paths. */
		json_object *path = json_object_new_string(a->script);
		rc = rlm_config_set(cfg, "llm.script",
		                    json_object_to_json_string_ext(path, JSON_C_TO_STRING_PLAIN),
		                    err);
		json_object_put(path);
		if (!rc && !rlm_config_get_string(cfg, "llm.provider", NULL))
			rc = rlm_config_set(cfg, "llm.provider", "replay", err);
	}
	for (int i = 0; !rc && i < a->nsets; i++)
		rc = rlm_config_set_assignment(cfg, a->sets[i], err);
	if (!rc)
		rc = rlm_config_validate(cfg, err);
	if (rc) {
		rlm_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}
