/* rlm/config.h - layered configuration: defaults < files < environment < explicit overrides.
 *
 * The configuration is one JSON document with the sections backend, plugin_path, llm,
 * sub_llm, limits and backends.<name>. Unknown keys are errors that suggest the nearest known
 * key; a backend's own section is validated against its plugin's option specs when an
 * interpreter is opened. Secrets are never stored here: config names the env var that holds
 * them. */
#ifndef RLM_CONFIG_H
#define RLM_CONFIG_H

#include <stddef.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rlm_config rlm_config;

/* A config holding the built-in defaults. Free with rlm_config_free. */
RLM_API int rlm_config_new(rlm_config **out, rlm_error *err);
RLM_API void rlm_config_free(rlm_config *cfg);

/* A deep copy (e.g. one per thread). */
RLM_API int rlm_config_clone(const rlm_config *cfg, rlm_config **out, rlm_error *err);

/* Merges a JSON object over the current values (objects merge key by key, everything else
 * replaces). origin names the source in error messages ("rlm.json", "--set"). */
RLM_API int rlm_config_merge_json(rlm_config *cfg, const char *json, const char *origin,
                                  rlm_error *err);

/* Merges the file at path. */
RLM_API int rlm_config_load_file(rlm_config *cfg, const char *path, rlm_error *err);

/* Merges the first file that exists of: $RLM_CONFIG, ./rlm.json,
 * $XDG_CONFIG_HOME/rlm/config.json (~/.config/rlm/config.json). None existing is not an error;
 * $RLM_CONFIG naming a missing file is. */
RLM_API int rlm_config_load_default_files(rlm_config *cfg, rlm_error *err);

/* Applies the environment: RLM_BACKEND, RLM_PLUGIN_PATH (prepended to plugin_path),
 * RLM_EXECUTE_TIMEOUT_S, DAYTONA_API_URL, ... (the README lists them). */
RLM_API int rlm_config_apply_env(rlm_config *cfg, rlm_error *err);

/* Sets key.path to value. value is parsed as JSON when it parses (42, true, {"a":1},
 * "quoted"), else taken as a plain string. Intermediate objects are created. Unknown keys are
 * refused with a suggestion. assignment is "key.path=value" in rlm_config_set_assignment. */
RLM_API int rlm_config_set(rlm_config *cfg, const char *key_path, const char *value,
                           rlm_error *err);
RLM_API int rlm_config_set_assignment(rlm_config *cfg, const char *assignment, rlm_error *err);

/* Checks the whole document against the known schema (types, ranges, unknown keys). */
RLM_API int rlm_config_validate(const rlm_config *cfg, rlm_error *err);

/* JSON text of the value at key.path ("" or NULL for the whole document), or NULL when absent.
 * Caller frees with rlm_free. */
RLM_API char *rlm_config_get_json(const rlm_config *cfg, const char *key_path);

/* Typed getters: return fallback when the key is absent or has another type. The string is
 * owned by cfg and valid until cfg changes. */
RLM_API const char *rlm_config_get_string(const rlm_config *cfg, const char *key_path,
                                          const char *fallback);
RLM_API double rlm_config_get_number(const rlm_config *cfg, const char *key_path, double fallback);
RLM_API int rlm_config_get_bool(const rlm_config *cfg, const char *key_path, int fallback);

/* Frees memory rlm handed to the caller (strings, buffers). */
RLM_API void rlm_free(void *ptr);

/* Allocates memory that rlm frees: what a callback hands to rlm through an out-parameter
 * (rlm_call_handler's *value_json, rlm_llm_fn's *text) may come from here as well as from
 * malloc, for a caller that does not share rlm's C library (a language binding). NULL when
 * out of memory. */
RLM_API void *rlm_alloc(size_t size);

#ifdef __cplusplus
}
#endif
#endif /* RLM_CONFIG_H */
