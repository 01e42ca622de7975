/* rlm/rlm.h - umbrella header for embedders: the whole public C API. Plugin authors include
 * rlm/plugin.h instead. */
#ifndef RLM_RLM_H
#define RLM_RLM_H

#include "config.h"
#include "error.h"
#include "eval.h"
#include "interp.h"
#include "plugin.h"
#include "pool.h"
#include "run.h"
#include "tool_output.h"

#define RLM_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version string. */
RLM_API const char *rlm_version(void);

/* Runs a backend's provider-specific operation (its `control` slot) without starting a
 * sandbox: e.g. op "gc" with {"older_than_minutes": M, "dry_run": false} on "daytona"
 * deletes leftover sandboxes labelled rlm=1. *out_json is the plugin's JSON answer (free with
 * rlm_free). RLM_ENOTSUP when the backend has no such operation. */
RLM_API int rlm_backend_control(const rlm_config *cfg, const char *backend, const char *op,
                                const char *arg_json, char **out_json, rlm_error *err);

/* Describes the plugins the loader can find, as a JSON array of {name, kind, file, abi,
 * summary, version, capabilities[], options[{name, type, default, doc}]} ("builtin" as file
 * for built-in ones). Plugins that fail to load appear with an "error" field. cfg may be NULL.
 * Caller frees with rlm_free. */
RLM_API char *rlm_plugins_json(const rlm_config *cfg, rlm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* RLM_RLM_H */
