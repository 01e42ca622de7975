/* openai.c - the `openai` LLM plugin (rlm-llm-openai.so): chat completions on any
 * OpenAI-compatible server (OpenAI, vLLM, llama.cpp server, Ollama, OpenRouter, LiteLLM).
 *
 * One completion is one POST {base_url}/chat/completions with {model, messages, temperature?,
 * max_tokens?}; nothing OpenAI-only is sent, so every compatible server takes it. What every
 * chat plugin shares (options, the key, headers, the HTTP call, status mapping) is in
 * ../common/chat_http.c; this file builds the body and reads the answer. */
#include <stddef.h>
#include <string.h>

#include <json-c/json.h>

#include "../common/chat_http.h"
#include "rlm/plugin.h"

#define OPENAI_NAME             "openai"
#define OPENAI_VERSION          "0.1.0"
#define OPENAI_DEFAULT_BASE_URL "https://api.openai.com/v1"
#define OPENAI_DEFAULT_KEY_ENV  "OPENAI_API_KEY"

static const rlm_option_def openai_option_defs[] = {
        PU_CHAT_OPTION_DEFS(
                "model name sent to the server; required unless each request names one",
                OPENAI_DEFAULT_BASE_URL,
                "server root; the plugin POSTs to {base_url}/chat/completions",
                OPENAI_DEFAULT_KEY_ENV,
                "env var holding the key sent as a bearer token (unset: no Authorization header)",
                "null", "answer length cap (null: server default)"),
        {0},
};

/* The same for the 1.0 create slot's callers (the core reads openai_option_defs). */
static const rlm_option_spec openai_options[] = {
        {"model", RLM_OPT_STRING, "null",
         "model name sent to the server; required unless each request names one"},
        {"base_url", RLM_OPT_STRING, "\"" OPENAI_DEFAULT_BASE_URL "\"",
         "server root; the plugin POSTs to {base_url}/chat/completions"},
        {"api_key_env", RLM_OPT_STRING, "\"" OPENAI_DEFAULT_KEY_ENV "\"",
         "env var holding the key sent as a bearer token (unset: no Authorization header)"},
        {"temperature", RLM_OPT_NUMBER, "null", "sampling temperature (null: server default)"},
        {"max_tokens", RLM_OPT_INT, "null", "answer length cap (null: server default)"},
        {"headers", RLM_OPT_OBJECT, "{}", "extra HTTP headers, name -> value"},
        {"max_retries", RLM_OPT_INT, "4", "retries of 429, 5xx and dropped connections"},
        {NULL, 0, NULL, NULL},
};

/* {model, messages: [{role, content}], temperature?, max_tokens?} */
static char *openai_body(const pu_chat *c, const rlm_llm_request *req, const pu_chat_call *call,
                         size_t *len)
{
	json_object *root = json_object_new_object(), *msgs = json_object_new_array();
	char *out = NULL;
	int bad = !root || !msgs;

	for (size_t i = 0; !bad && i < req->n_messages; i++) {
		json_object *m = json_object_new_object();

		bad = !m || pu_json_add(m, "role", json_object_new_string(req->messages[i].role)) ||
		      pu_json_add(m, "content", json_object_new_string(req->messages[i].content)) ||
		      json_object_array_add(msgs, m) != 0;
		if (bad)
			json_object_put(m);
	}
	if (!bad)
		bad = pu_json_add(root, "model", json_object_new_string(call->model));
	if (!bad) {
		bad = pu_json_add(root, "messages", msgs);
		msgs = NULL; /* root owns it now, or pu_json_add released it */
	}
	if (!bad && call->temperature >= 0)
		bad = pu_json_add(root, "temperature", pu_json_number(call->temperature));
	if (!bad && call->max_tokens > 0)
		bad = pu_json_add(root, "max_tokens", json_object_new_int64(call->max_tokens));
	if (!bad)
		out = pu_json_text(pu_chat_host(c), root, len);
	json_object_put(msgs);
	json_object_put(root);
	return out;
}

static long usage_field(json_object *usage, const char *key)
{
	json_object *v = pu_json_get(usage, key, json_type_int);

	return v ? (long)json_object_get_int64(v) : -1;
}

/* choices[0].message.content, usage.{prompt,completion}_tokens, model, finish_reason. */
static int openai_answer(const pu_chat *c, json_object *root, pu_chat_answer *a,
                         const char **missing)
{
	json_object *choices = pu_json_get(root, "choices", json_type_array), *choice, *message,
	            *content, *usage, *v;
	size_t len;

	choice = choices && json_object_array_length(choices) > 0
	                 ? json_object_array_get_idx(choices, 0)
	                 : NULL;
	message = pu_json_get(choice, "message", json_type_object);
	content = pu_json_get(message, "content", json_type_string);
	if (!choice)
		return *missing = "has no choices[0]", RLM_EPROTO;
	if (!message)
		return *missing = "has no choices[0].message", RLM_EPROTO;
	if (!content)
		return *missing = "has no text in choices[0].message.content", RLM_EPROTO;
	len = (size_t)json_object_get_string_len(content);
	if (!(a->text.data = pu_chat_host(c)->alloc(len + 1)))
		return RLM_ENOMEM;
	memcpy(a->text.data, json_object_get_string(content), len + 1);
	a->text.len = len;
	usage = pu_json_get(root, "usage", json_type_object);
	a->prompt_tokens = usage_field(usage, "prompt_tokens");
	a->completion_tokens = usage_field(usage, "completion_tokens");
	if ((v = pu_json_get(root, "model", json_type_string)))
		a->model = json_object_get_string(v);
	if ((v = pu_json_get(choice, "finish_reason", json_type_string)))
		a->finish_reason = json_object_get_string(v);
	return 0;
}

static const pu_chat_dialect openai_dialect = {
        .name = OPENAI_NAME,
        .default_base_url = OPENAI_DEFAULT_BASE_URL,
        .default_key_env = OPENAI_DEFAULT_KEY_ENV,
        .path = "/chat/completions",
        .key_header = "Authorization",
        .key_prefix = "Bearer ",
        .build_body = openai_body,
        .read_answer = openai_answer,
};

static int openai_create(const rlm_host_api *host, const char *config_json, void **instance,
                         rlm_error *err)
{
	return pu_chat_create(host, &openai_dialect, config_json, (pu_chat **)instance, err);
}

static int openai_create_opts(const rlm_host_api *host, const rlm_options *opts, void **instance,
                              rlm_error *err)
{
	return pu_chat_create_opts(host, &openai_dialect, opts, (pu_chat **)instance, err);
}

static int openai_complete(void *instance, const rlm_llm_request *req, rlm_llm_response *resp,
                           rlm_error *err)
{
	return pu_chat_complete(instance, req, resp, err);
}

static void openai_destroy(void *instance)
{
	pu_chat_destroy(instance);
}

static const rlm_llm_ops openai_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_llm_ops),
        .create = openai_create,
        .complete = openai_complete,
        .destroy = openai_destroy,
        .create_opts = openai_create_opts,
};

static const rlm_plugin_desc openai_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_LLM,
        .name = OPENAI_NAME,
        .summary = "chat completions on any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, "
                   "Ollama, OpenRouter, LiteLLM)",
        .version = OPENAI_VERSION,
        .capabilities = 0,
        .options = openai_options,
        .option_defs = openai_option_defs,
        .ops = &openai_ops,
};

RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	if (!host || !out || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR)
		return RLM_EPLUGIN;
	*out = &openai_desc;
	return 0;
}
