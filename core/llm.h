/* llm.h - an LLM plugin instance made from a config section (`llm` or `sub_llm`): the
 * provider name picks the plugin, the section's keys the plugin declares become its options. */
#ifndef RLM_LLM_H
#define RLM_LLM_H

#include <json-c/json.h>

#include "rlm/config.h"
#include "rlm/plugin.h"
#include "rlm/run.h"

typedef struct rlm_llm rlm_llm;

/* Loads the plugin named by <section>.provider (kind RLM_PLUGIN_LLM) and creates an instance.
 * The plugin gets only the keys it declares in its option specs (defaults filled in; an
 * array or object given for a string option is passed as its JSON text). A key it does not
 * declare must be null or equal to the schema's default, else RLM_ECONFIG names the key and
 * the provider. A null provider is RLM_ECONFIG "no LLM configured: set llm.provider ...". */
int rlm__llm_open(const rlm_config *cfg, const char *section, rlm_llm **out, rlm_error *err);

/* An instance that answers through fn (rlm_run_options.llm) instead of a plugin: provider
 * "callback", model <section>.model (NULL when unset), no options, no secret. */
int rlm__llm_open_callback(const rlm_config *cfg, const char *section, rlm_llm_fn fn, void *ctx,
                           rlm_llm **out, rlm_error *err);

/* One completion; thread-safe when the plugin is (the ABI requires it). resp is initialised
 * here; on success resp->text.data is non-NULL and NUL-terminated. Release it with
 * rlm__llm_response_clear whatever the outcome. */
int rlm__llm_complete(rlm_llm *llm, const rlm_llm_request *req, rlm_llm_response *resp,
                      rlm_error *err);
void rlm__llm_response_clear(rlm_llm_response *resp);

const char *rlm__llm_provider(const rlm_llm *llm);
/* <section>.model, or NULL when the plugin's default applies. */
const char *rlm__llm_model(const rlm_llm *llm);
/* The value of the environment variable named by <section>.api_key_env, or NULL: a secret
 * to keep out of every log and trajectory. */
const char *rlm__llm_secret(const rlm_llm *llm);
/* The options the plugin got, header values masked: for trajectory metadata. Borrowed. */
json_object *rlm__llm_options(const rlm_llm *llm);

/* Destroys the instance and releases the plugin. NULL is allowed. */
void rlm__llm_close(rlm_llm *llm);

#endif
