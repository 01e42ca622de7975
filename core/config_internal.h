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

/* The nearest of candidates (NULL-terminated) to word by edit distance, or NULL when none is
 * close (distance > max(2, len/3)). */
const char *rlm__nearest(const char *word, const char *const *candidates);

#endif
