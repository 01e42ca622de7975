/* llm.c - LLM plugin instances: from a config section (`llm` / `sub_llm`) to a plugin that
 * answers completions. The config schema is shared by every provider; each plugin declares
 * which of its keys it understands, and a key set for a provider that ignores it is refused
 * rather than silently dropped. */
#include "llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "host.h"
#include "loader.h"
#include "util.h"

struct rlm_llm {
	rlm_plugin *plugin;
	const rlm_llm_ops *ops;
	void *inst;
	rlm_llm_fn fn; /* instead of a plugin: rlm_run_options.llm */
	void *fn_ctx;
	char *provider;
	char *model;
	char *secret;
	json_object *options; /* what the plugin got, header values masked */
};

static const char *json_text(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

static int json_equal(json_object *a, json_object *b)
{
	if (!a || !b)
		return a == b;
	return json_object_equal(a, b);
}

static const rlm_option_def *find_spec(const rlm_option_def *specs, const char *name)
{
	for (; specs && specs->name; specs++)
		if (!strcmp(specs->name, name))
			return specs;
	return NULL;
}

static void list_specs(const rlm_option_def *specs, rlm_sb *sb)
{
	int any = 0;
	for (; specs && specs->name; specs++)
		rlm_sb_printf(sb, "%s%s", any++ ? ", " : "", specs->name);
	if (!any)
		rlm_sb_puts(sb, "none");
}

/* The section's keys the plugin declares, as a new object; RLM_ECONFIG for a key it does not
 * declare that is set to something other than the schema's default. */
static int select_options(const rlm_plugin_desc *desc, const rlm_option_def *defs,
                          const char *section, json_object *given, json_object **out,
                          rlm_error *err)
{
	*out = NULL;
	rlm_config *defaults = NULL;
	int rc = rlm_config_new(&defaults, err);
	if (rc)
		return rc;
	char key[160];
	snprintf(key, sizeof(key), "%s", section);
	json_object *schema = rlm__config_lookup(defaults, key);
	json_object *picked = json_object_new_object();
	json_object_object_foreach(given, name, value)
	{
		if (!strcmp(name, "provider"))
			continue;
		const rlm_option_def *spec = find_spec(defs, name);
		if (spec) {
			json_object *v = value;
			/* A string option given a structure (an inline replay script) gets its
			 * JSON text: the schema allows both, an option spec has one type. */
			if (spec->type == RLM_OPT_STRING && v &&
			    (json_object_is_type(v, json_type_array) ||
			     json_object_is_type(v, json_type_object)))
				v = json_object_new_string(json_text(v));
			else
				v = json_object_get(v);
			json_object_object_add(picked, name, v);
			continue;
		}
		json_object *def = NULL;
		json_object_object_get_ex(schema, name, &def);
		if (!value || json_equal(value, def))
			continue;
		rlm_sb sb = {0};
		list_specs(defs, &sb);
		rc = rlm_error_set(err, RLM_ECONFIG,
		                   "%s.%s is set, but the %s LLM plugin does not use it (it takes: "
		                   "%s); remove it or pick another %s.provider",
		                   section, name, desc->name, sb.data ? sb.data : "", section);
		rlm_sb_free(&sb);
		break;
	}
	rlm_config_free(defaults);
	if (rc) {
		json_object_put(picked);
		return rc;
	}
	*out = picked;
	return 0;
}

/* A copy of the options for logs: header values could carry credentials, and so do the
 * options the plugin calls secret. */
static json_object *masked_options(json_object *filled, const rlm_option_def *defs)
{
	json_object *copy = NULL;
	if (json_object_deep_copy(filled, &copy, NULL) != 0)
		return NULL;
	for (; defs && defs->name; defs++) {
		json_object *v = NULL;
		if ((defs->flags & RLM_OPTF_SECRET) &&
		    json_object_object_get_ex(copy, defs->name, &v) && v)
			json_object_object_add(copy, defs->name, json_object_new_string("***"));
	}
	json_object *headers = NULL;
	if (json_object_object_get_ex(copy, "headers", &headers) &&
	    json_object_is_type(headers, json_type_object)) {
		json_object_object_foreach(headers, name, value)
		{
			(void)value;
			json_object_object_add(headers, name, json_object_new_string("***"));
		}
	}
	return copy;
}

static int no_provider(const char *section, rlm_error *err)
{
	return rlm_error_set(err, RLM_ECONFIG,
	                     "no LLM configured: set %s.provider (openai, anthropic or replay), "
	                     "e.g. `rlm run --llm openai --model gpt-4o-mini` with OPENAI_API_KEY "
	                     "set, or `--set %s.provider=replay --set %s.script=FILE`",
	                     section, section, section);
}

int rlm__llm_open(const rlm_config *cfg, const char *section, rlm_llm **out, rlm_error *err)
{
	*out = NULL;
	char key[160];
	snprintf(key, sizeof(key), "%s.provider", section);
	const char *provider = rlm_config_get_string(cfg, key, NULL);
	if (!provider || !*provider)
		return no_provider(section, err);
	rlm_llm *l = calloc(1, sizeof(*l));
	if (!l)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	int rc = rlm__plugin_acquire(cfg, RLM_PLUGIN_LLM, provider, &l->plugin, err);
	json_object *picked = NULL, *filled = NULL;
	rlm_option_def *defs = NULL;
	if (!rc) {
		const rlm_plugin_desc *desc = rlm__plugin_desc(l->plugin);
		l->ops = desc->ops;
		rc = rlm__option_defs(desc, &defs, err);
		if (!rc)
			rc = select_options(desc, defs, section, rlm__config_lookup(cfg, section),
			                    &picked, err);
		if (!rc)
			rc = rlm__plugin_instance_create(
			        desc, l->ops->create,
			        RLM_HAS_SLOT(l->ops, create_opts) ? l->ops->create_opts : NULL,
			        picked, section, &l->inst, &filled, err);
	}
	if (!rc) {
		snprintf(key, sizeof(key), "%s.model", section);
		const char *model = rlm_config_get_string(cfg, key, NULL);
		/* The plugin's default applies when the section leaves api_key_env null
		 * (OPENAI_API_KEY for openai): that is the variable whose value to hide. */
		snprintf(key, sizeof(key), "%s.api_key_env", section);
		const char *env = rlm_config_get_string(cfg, key, NULL);
		json_object *named = NULL;
		if (json_object_object_get_ex(filled, "api_key_env", &named) &&
		    json_object_is_type(named, json_type_string))
			env = json_object_get_string(named);
		const char *secret = env && *env ? getenv(env) : NULL;
		l->provider = strdup(provider);
		l->model = rlm_strdup0(model);
		l->secret = rlm_strdup0(secret && *secret ? secret : NULL);
		l->options = masked_options(filled, defs);
		if (!l->provider || (model && !l->model) || !l->options)
			rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
	}
	free(defs);
	json_object_put(picked);
	json_object_put(filled);
	if (rc) {
		rlm__llm_close(l);
		return rc;
	}
	*out = l;
	return 0;
}

int rlm__llm_open_callback(const rlm_config *cfg, const char *section, rlm_llm_fn fn, void *ctx,
                           rlm_llm **out, rlm_error *err)
{
	*out = NULL;
	rlm_llm *l = calloc(1, sizeof(*l));
	if (!l)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	char key[160];
	snprintf(key, sizeof(key), "%s.model", section);
	const char *model = rlm_config_get_string(cfg, key, NULL);
	l->fn = fn;
	l->fn_ctx = ctx;
	l->provider = strdup("callback");
	l->model = rlm_strdup0(model);
	l->options = json_object_new_object();
	if (!l->provider || (model && !l->model) || !l->options) {
		rlm__llm_close(l);
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	}
	*out = l;
	return 0;
}

/* A completion by the caller's function: its malloc'ed text is moved into resp, in the
 * host's allocator (text that is not UTF-8 is repaired by the loop, as a plugin's is). */
static int callback_complete(rlm_llm *llm, const rlm_llm_request *req, rlm_llm_response *resp,
                             rlm_error *e)
{
	char *text = NULL;
	const char *model = req->model ? req->model : llm->model;
	rlm_error_clear(e);
	int rc = llm->fn(llm->fn_ctx, req->messages, req->n_messages, model, &text, e);
	if (rc) {
		free(text);
		if (rc > 0)
			rc = RLM_EBACKEND;
		if (!e->code)
			e->code = rc;
		if (!e->message[0])
			rlm_error_set(e, rc, "the llm callback failed: %s", rlm_strerror(rc));
		return rc;
	}
	size_t len = text ? strlen(text) : 0;
	resp->text.data = rlm__host()->alloc(len + 1);
	if (!resp->text.data) {
		free(text);
		return rlm_error_set(e, RLM_ENOMEM, "out of memory");
	}
	if (len)
		memcpy(resp->text.data, text, len);
	resp->text.data[len] = '\0';
	resp->text.len = len;
	free(text);
	if (model)
		snprintf(resp->model, sizeof(resp->model), "%s", model);
	return 0;
}

int rlm__llm_complete(rlm_llm *llm, const rlm_llm_request *req, rlm_llm_response *resp,
                      rlm_error *err)
{
	memset(resp, 0, sizeof(*resp));
	resp->abi_version = RLM_ABI_VERSION;
	resp->struct_size = sizeof(*resp);
	resp->prompt_tokens = -1;
	resp->completion_tokens = -1;
	rlm_error mine = RLM_ERROR_INIT;
	rlm_error *e = err ? err : &mine;
	if (llm->fn)
		return callback_complete(llm, req, resp, e);
	int rc = llm->ops->complete(llm->inst, req, resp, e);
	if (rc) {
		if (!e->code) /* a plugin that forgot to say why */
			rlm_error_set(e, rc, "the %s LLM failed: %s", llm->provider,
			              rlm_strerror(rc));
		return rc;
	}
	if (!resp->text.data) {
		resp->text.data = rlm__host()->alloc(1);
		if (!resp->text.data)
			return rlm_error_set(err, RLM_ENOMEM, "out of memory");
		resp->text.data[0] = '\0';
		resp->text.len = 0;
	}
	return 0;
}

void rlm__llm_response_clear(rlm_llm_response *resp)
{
	rlm__host()->free(resp->text.data);
	resp->text.data = NULL;
	resp->text.len = 0;
}

const char *rlm__llm_provider(const rlm_llm *llm)
{
	return llm->provider;
}

const char *rlm__llm_model(const rlm_llm *llm)
{
	return llm->model;
}

const char *rlm__llm_secret(const rlm_llm *llm)
{
	return llm->secret;
}

json_object *rlm__llm_options(const rlm_llm *llm)
{
	return llm->options;
}

void rlm__llm_close(rlm_llm *llm)
{
	if (!llm)
		return;
	if (llm->inst)
		llm->ops->destroy(llm->inst);
	rlm__plugin_release(llm->plugin);
	free(llm->provider);
	free(llm->model);
	free(llm->secret);
	json_object_put(llm->options);
	free(llm);
}
