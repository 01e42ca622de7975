/* anthropic.c - the `anthropic` LLM plugin (rlm-llm-anthropic.so): Anthropic's Messages API.
 *
 * One completion is one POST {base_url}/v1/messages with x-api-key, anthropic-version and
 * {model, max_tokens, system?, messages, temperature?}. The Messages API differs from chat
 * completions in ways this file absorbs: system prompts go in their own top-level field,
 * max_tokens is required, and messages must alternate user/assistant starting with user, so
 * consecutive messages of one role are merged. What every chat plugin shares (options, the
 * key, headers, the HTTP call, status mapping) is in ../common/chat_http.c. */
#include <stddef.h>
#include <string.h>

#include <json-c/json.h>

#include "../common/chat_http.h"
#include "../common/plugin_util.h"
#include "rlm/plugin.h"

#define ANTHROPIC_NAME             "anthropic"
#define ANTHROPIC_VERSION          "0.1.0"
#define ANTHROPIC_DEFAULT_BASE_URL "https://api.anthropic.com"
#define ANTHROPIC_DEFAULT_KEY_ENV  "ANTHROPIC_API_KEY"
#define ANTHROPIC_DEFAULT_VERSION  "2023-06-01"
/* The API requires max_tokens; this is sent when neither config nor request says. */
#define ANTHROPIC_DEFAULT_MAX_TOKENS 4096
/* Between merged messages and between system prompts. */
#define ANTHROPIC_JOIN "\n\n"

typedef pu_chat anthropic;

static const rlm_option_def anthropic_option_defs[] = {
        PU_CHAT_OPTION_DEFS(
                "model name (e.g. claude-sonnet-4-5); required unless each request names one",
                ANTHROPIC_DEFAULT_BASE_URL, "API root; the plugin POSTs to {base_url}/v1/messages",
                ANTHROPIC_DEFAULT_KEY_ENV,
                "env var holding the key sent as x-api-key (unset: no x-api-key header)", "4096",
                "answer length cap (the API requires one)"),
        RLM_OPTION_DEF(.name = "api_version", .type = RLM_OPT_STRING,
                       .default_json = "\"" ANTHROPIC_DEFAULT_VERSION "\"",
                       .flags = RLM_OPTF_NONEMPTY, .doc = "value of the anthropic-version header"),
        {0},
};

/* The same for the 1.0 create slot's callers (the core reads anthropic_option_defs). */
static const rlm_option_spec anthropic_options[] = {
        {"model", RLM_OPT_STRING, "null",
         "model name (e.g. claude-sonnet-4-5); required unless each request names one"},
        {"base_url", RLM_OPT_STRING, "\"" ANTHROPIC_DEFAULT_BASE_URL "\"",
         "API root; the plugin POSTs to {base_url}/v1/messages"},
        {"api_key_env", RLM_OPT_STRING, "\"" ANTHROPIC_DEFAULT_KEY_ENV "\"",
         "env var holding the key sent as x-api-key (unset: no x-api-key header)"},
        {"temperature", RLM_OPT_NUMBER, "null", "sampling temperature (null: API default)"},
        {"max_tokens", RLM_OPT_INT, "4096", "answer length cap (the API requires one)"},
        {"headers", RLM_OPT_OBJECT, "{}", "extra HTTP headers, name -> value"},
        {"api_version", RLM_OPT_STRING, "\"" ANTHROPIC_DEFAULT_VERSION "\"",
         "value of the anthropic-version header"},
        {"max_retries", RLM_OPT_INT, "4", "retries of 429, 5xx and dropped connections"},
        {NULL, 0, NULL, NULL},
};

/* ---- the request ---- */

static int is_role(const rlm_llm_message *m, const char *role)
{
	return !strcmp(m->role, role);
}

/* The Messages API takes user and assistant turns only, starting with user; system prompts
 * are hoisted into their own field, so only the first other message must be a user's. */
static int check_roles(const anthropic *o, const rlm_llm_request *req, rlm_error *err)
{
	const rlm_llm_message *first = NULL;

	for (size_t i = 0; i < req->n_messages; i++) {
		const rlm_llm_message *m = &req->messages[i];

		if (!is_role(m, "system") && !is_role(m, "user") && !is_role(m, "assistant"))
			return pu_chat_host(o)->error_set(
			        err, RLM_EINVAL,
			        "anthropic: message %zu has role \"%s\"; the "
			        "Messages API takes system, user and assistant",
			        i, m->role);
		if (!first && !is_role(m, "system"))
			first = m;
	}
	if (!first)
		return pu_chat_host(o)->error_set(
		        err, RLM_EINVAL,
		        "anthropic: the request has only system messages; the "
		        "Messages API needs a user message");
	if (!is_role(first, "user"))
		return pu_chat_host(o)->error_set(
		        err, RLM_EINVAL,
		        "anthropic: the first non-system message is from the "
		        "assistant; the Messages API must start with a user turn");
	return 0;
}

/* The contents of the messages in [from, to) that have the given role, joined with
 * ANTHROPIC_JOIN, as a new JSON string; NULL when out of memory. */
static json_object *joined(const anthropic *o, const rlm_llm_request *req, size_t from, size_t to,
                           const char *role)
{
	size_t len = 0, sep = strlen(ANTHROPIC_JOIN), i;
	json_object *out;
	char *buf, *p;

	for (i = from; i < to; i++)
		if (is_role(&req->messages[i], role))
			len += strlen(req->messages[i].content) + sep;
	if (!(buf = pu_chat_host(o)->alloc(len + 1)))
		return NULL;
	for (p = buf, i = from; i < to; i++) {
		size_t n;

		if (!is_role(&req->messages[i], role))
			continue;
		if (p != buf) {
			memcpy(p, ANTHROPIC_JOIN, sep);
			p += sep;
		}
		n = strlen(req->messages[i].content);
		memcpy(p, req->messages[i].content, n);
		p += n;
	}
	*p = '\0';
	out = json_object_new_string_len(buf, (int)(p - buf));
	pu_chat_host(o)->free(buf);
	return out;
}

/* The messages array: every run of one role (system messages hoisted out of the way) becomes
 * one turn, so turns alternate as the API requires. */
static json_object *build_turns(const anthropic *o, const rlm_llm_request *req)
{
	json_object *turns = json_object_new_array();
	size_t i = 0, j, n = req->n_messages;

	while (turns && i < n) {
		const char *role = req->messages[i].role;
		json_object *m;

		if (!strcmp(role, "system")) {
			i++;
			continue;
		}
		for (j = i + 1; j < n && (is_role(&req->messages[j], "system") ||
		                          is_role(&req->messages[j], role));
		     j++)
			;
		m = json_object_new_object();
		if (!m || pu_json_add(m, "role", json_object_new_string(role)) ||
		    pu_json_add(m, "content", joined(o, req, i, j, role)) ||
		    json_object_array_add(turns, m) != 0) {
			json_object_put(m);
			json_object_put(turns);
			return NULL;
		}
		i = j;
	}
	return turns;
}

static int has_system(const rlm_llm_request *req)
{
	for (size_t i = 0; i < req->n_messages; i++)
		if (is_role(&req->messages[i], "system"))
			return 1;
	return 0;
}

/* {model, max_tokens, system?, messages, temperature?} */
static char *anthropic_body(const pu_chat *o, const rlm_llm_request *req, const pu_chat_call *c,
                            size_t *len)
{
	json_object *root = json_object_new_object();
	char *out = NULL;
	int bad = !root || pu_json_add(root, "model", json_object_new_string(c->model)) ||
	          pu_json_add(root, "max_tokens", json_object_new_int64(c->max_tokens));

	if (!bad && has_system(req))
		bad = pu_json_add(root, "system", joined(o, req, 0, req->n_messages, "system"));
	if (!bad)
		bad = pu_json_add(root, "messages", build_turns(o, req));
	if (!bad && c->temperature >= 0)
		bad = pu_json_add(root, "temperature", pu_json_number(c->temperature));
	if (!bad)
		out = pu_json_text(pu_chat_host(o), root, len);
	json_object_put(root);
	return out;
}

/* ---- the answer ---- */

static long usage_field(json_object *usage, const char *key)
{
	json_object *v = pu_json_get(usage, key, json_type_int);

	return v ? (long)json_object_get_int64(v) : -1;
}

/* The text blocks of content[] joined (other block types, e.g. thinking or tool_use, are
 * skipped); RLM_EPROTO when content is not an array. */
static int answer_text(const anthropic *o, json_object *content, rlm_buf *out)
{
	size_t len = 0, n, i;

	if (!json_object_is_type(content, json_type_array))
		return RLM_EPROTO;
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(content, i), *t, *type;

		type = pu_json_get(b, "type", json_type_string);
		t = pu_json_get(b, "text", json_type_string);
		if (type && t && !strcmp(json_object_get_string(type), "text"))
			len += (size_t)json_object_get_string_len(t);
	}
	if (!(out->data = pu_chat_host(o)->alloc(len + 1)))
		return RLM_ENOMEM;
	out->len = 0;
	for (i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(content, i), *t, *type;

		type = pu_json_get(b, "type", json_type_string);
		t = pu_json_get(b, "text", json_type_string);
		if (type && t && !strcmp(json_object_get_string(type), "text")) {
			size_t tl = (size_t)json_object_get_string_len(t);
			memcpy(out->data + out->len, json_object_get_string(t), tl);
			out->len += tl;
		}
	}
	out->data[out->len] = '\0';
	return 0;
}

/* content[] text blocks, usage.{input,output}_tokens, model, stop_reason. */
static int anthropic_answer(const pu_chat *o, json_object *root, pu_chat_answer *a,
                            const char **missing)
{
	json_object *content = pu_json_get(root, "content", json_type_array), *usage, *v;
	int rc;

	if (!content)
		return *missing = "has no content array", RLM_EPROTO;
	if ((rc = answer_text(o, content, &a->text)) != 0)
		return rc;
	usage = pu_json_get(root, "usage", json_type_object);
	a->prompt_tokens = usage_field(usage, "input_tokens");
	a->completion_tokens = usage_field(usage, "output_tokens");
	if ((v = pu_json_get(root, "model", json_type_string)))
		a->model = json_object_get_string(v);
	if ((v = pu_json_get(root, "stop_reason", json_type_string)))
		a->finish_reason = json_object_get_string(v);
	return 0;
}

/* The anthropic-version header, from api_version. */
static int anthropic_configure(pu_chat *c, const pu_opts *cfg, rlm_error *err)
{
	const char *version = pu_opt_string(cfg, "api_version");

	return pu_chat_add_default_header(c, "anthropic-version",
	                                  version ? version : ANTHROPIC_DEFAULT_VERSION, err);
}

static const pu_chat_dialect anthropic_dialect = {
        .name = ANTHROPIC_NAME,
        .default_base_url = ANTHROPIC_DEFAULT_BASE_URL,
        .default_key_env = ANTHROPIC_DEFAULT_KEY_ENV,
        .path = "/v1/messages",
        .strip_suffix = "/v1", /* the SDKs take the root without /v1; with it works too */
        .key_header = "x-api-key",
        .key_prefix = "",
        .default_max_tokens = ANTHROPIC_DEFAULT_MAX_TOKENS,
        .configure = anthropic_configure,
        .check = check_roles,
        .build_body = anthropic_body,
        .read_answer = anthropic_answer,
};

static int anthropic_create(const rlm_host_api *host, const char *config_json, void **instance,
                            rlm_error *err)
{
	return pu_chat_create(host, &anthropic_dialect, config_json, (pu_chat **)instance, err);
}

static int anthropic_create_opts(const rlm_host_api *host, const rlm_options *opts, void **instance,
                                 rlm_error *err)
{
	return pu_chat_create_opts(host, &anthropic_dialect, opts, (pu_chat **)instance, err);
}

static int anthropic_complete(void *instance, const rlm_llm_request *req, rlm_llm_response *resp,
                              rlm_error *err)
{
	return pu_chat_complete(instance, req, resp, err);
}

static void anthropic_destroy(void *instance)
{
	pu_chat_destroy(instance);
}

static const rlm_llm_ops anthropic_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_llm_ops),
        .create = anthropic_create,
        .complete = anthropic_complete,
        .destroy = anthropic_destroy,
        .create_opts = anthropic_create_opts,
};

static const rlm_plugin_desc anthropic_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_LLM,
        .name = ANTHROPIC_NAME,
        .summary = "Anthropic's Messages API (Claude models)",
        .version = ANTHROPIC_VERSION,
        .capabilities = 0,
        .options = anthropic_options,
        .option_defs = anthropic_option_defs,
        .ops = &anthropic_ops,
};

RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	if (!host || !out || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR)
		return RLM_EPLUGIN;
	*out = &anthropic_desc;
	return 0;
}
