/* config_internal.h - what the rest of the core reads from a config, beyond the public API. */
#ifndef RLM_CONFIG_INTERNAL_H
#define RLM_CONFIG_INTERNAL_H

#include <json-c/json.h>

#include "rlm/config.h"
#include "rlm/plugin.h"

/* The document's root object; owned by cfg. */
json_object *rlm__config_root(const rlm_config *cfg);

/* The object at key.path, or NULL; owned by cfg. */
json_object *rlm__config_lookup(const rlm_config *cfg, const char *key_path);

/* Checks value against the range the schema gives the numeric key key_path
 * ("limits.execute_timeout_s"), for values that arrive outside the document (a per-call
 * timeout): RLM_ECONFIG naming origin, the key, the range and the value; RLM_EINVAL for a key
 * that is not numeric. The ranges live in the schema only. */
int rlm__config_check_number(const char *key_path, double value, const char *origin,
                             rlm_error *err);

/* Validates a plugin's config section against its option specs and fills in defaults.
 * section may be NULL (no section: all defaults). where names the section in messages
 * ("backends.local"). On success *out is a new object (caller json_object_put's it) holding
 * every spec'd option (null for options without default). Unknown keys are RLM_ECONFIG
 * errors naming the nearest known option; wrong types name the expected type. */
int rlm__options_apply(const rlm_option_spec *specs, json_object *section, const char *where,
                       json_object **out, rlm_error *err);

/* The same with ABI 1.2 definitions (a normalised array, see rlm__option_defs): values come
 * from the section, else the definition's env var, else its default; ranges, choices and the
 * REQUIRED/NONEMPTY/SECRET flags are applied. */
int rlm__option_defs_apply(const rlm_option_def *defs, json_object *section, const char *where,
                           json_object **out, rlm_error *err);

/* A plugin's option definitions as one normalised array (sizeof(rlm_option_def) per entry,
 * ended by a NULL name, fields the plugin's entries are too small for zeroed): its
 * option_defs when the descriptor has them, else its ABI 1.0 options. *out is malloc'ed
 * (never NULL on success); RLM_EPLUGIN when option_defs entries are too small to be any
 * version of rlm_option_def. */
int rlm__option_defs(const rlm_plugin_desc *desc, rlm_option_def **out, rlm_error *err);
int rlm__option_defs_from_specs(const rlm_option_spec *specs, rlm_option_def **out, rlm_error *err);

/* Validates a plugin's section (may be NULL) against its definitions and creates an
 * instance: through create_opts (with a typed view) when the ops have it, else through
 * create (with the validated section as JSON text). filled_out, when non-NULL, receives the
 * validated section (caller json_object_put's it). */
typedef int (*rlm__create_fn)(const rlm_host_api *host, const char *config_json, void **instance,
                              rlm_error *err);
typedef int (*rlm__create_opts_fn)(const rlm_host_api *host, const rlm_options *opts,
                                   void **instance, rlm_error *err);
int rlm__plugin_instance_create(const rlm_plugin_desc *desc, rlm__create_fn create,
                                rlm__create_opts_fn create_opts, json_object *section,
                                const char *where, void **instance, json_object **filled_out,
                                rlm_error *err);

/* The typed view of a validated section (tests; create_opts gets one from the above).
 * defs: a normalised array; filled: the validated section (the view takes a reference). */
int rlm__options_view_new(const rlm_option_def *defs, json_object *filled, rlm_options **out,
                          rlm_error *err);
void rlm__options_view_free(rlm_options *o);

/* The nearest of candidates (NULL-terminated) to word by edit distance, or NULL when none is
 * close (distance > max(2, len/3)). */
const char *rlm__nearest(const char *word, const char *const *candidates);

#endif
