/* chat_http.h - the half of an LLM plugin that does not depend on the provider: reading the
 * common options (model, base_url, api_key_env, temperature, max_tokens, headers,
 * max_retries), the API key from the environment, the headers of a call, one POST through the
 * host's HTTP helper (retries, quota answers that are final, cancel), mapping the final status
 * to an rlm_status with the provider's own message, and the usage and answer fields. A plugin
 * describes its provider in a pu_chat_dialect (the URL path, how the key is sent, how a body
 * is built and an answer read) and keeps only that. Compiled into each plugin. */
#ifndef RLM_CHAT_HTTP_H
#define RLM_CHAT_HTTP_H

#include <json-c/json.h>
#include <stddef.h>

#include "plugin_util.h"
#include "rlm/plugin.h"

/* How much of a provider's message or of an odd body an error message quotes. */
#define PU_CHAT_QUOTE_MAX  300
#define PU_CHAT_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
/* Default headers a dialect may add besides the key (e.g. an API version). */
#define PU_CHAT_EXTRA_DEFAULTS 2

typedef struct pu_chat pu_chat;

/* What one call sends, after the request's overrides. */
typedef struct pu_chat_call {
	const char *model;
	double temperature; /* < 0: not sent */
	long max_tokens;    /* <= 0: not sent */
	double timeout_s;
} pu_chat_call;

/* What a dialect reads from a 2xx answer. text is host->alloc'ed by the dialect. */
typedef struct pu_chat_answer {
	rlm_buf text;
	long prompt_tokens;     /* -1: not said */
	long completion_tokens; /* -1: not said */
	const char *model;      /* points into the parsed answer, or NULL */
	const char *finish_reason;
} pu_chat_answer;

typedef struct pu_chat_dialect {
	const char *name;             /* the plugin's name, prefixed to every message */
	const char *default_base_url; /* when base_url is not set */
	const char *default_key_env;  /* when api_key_env is not set */
	const char *path;             /* appended to the base URL: "/chat/completions" */
	const char *strip_suffix;     /* removed from a base URL that ends with it, or NULL */
	const char *key_header;       /* the header that carries the key: "Authorization" */
	const char *key_prefix;       /* what precedes the key in it: "Bearer " or "" */
	long default_max_tokens;      /* sent when neither config nor request says; 0: none */
	/* Optional: reads dialect options from the plugin's config section and adds default
	 * header lines with pu_chat_add_default_header. */
	int (*configure)(pu_chat *c, const pu_opts *o, rlm_error *err);
	/* Optional: refuses a request this provider cannot take (RLM_EINVAL with a message). */
	int (*check)(const pu_chat *c, const rlm_llm_request *req, rlm_error *err);
	/* The request body as JSON text, host->alloc'ed, *len set; NULL when out of memory. */
	char *(*build_body)(const pu_chat *c, const rlm_llm_request *req, const pu_chat_call *call,
	                    size_t *len);
	/* Reads a parsed 2xx answer: 0; RLM_ENOMEM; or RLM_EPROTO with *missing saying what is
	 * missing ("has no choices[0]"). */
	int (*read_answer)(const pu_chat *c, json_object *root, pu_chat_answer *out,
	                   const char **missing);
} pu_chat_dialect;

/* The options every chat plugin has, as rlm_option_def entries (the core checks their types
 * and ranges: temperature >= 0, max_tokens >= 0, max_retries in [0, 20]); a plugin lists them
 * first in its option_defs, with its own default base URL, key variable and max_tokens. */
#define PU_CHAT_RETRIES_MAX 20 /* more only delay the inevitable */
#define PU_CHAT_OPTION_DEFS(model_doc, base_url, base_doc, key_env, key_doc, max_tokens_json,      \
                            max_tokens_doc)                                                        \
	RLM_OPTION_DEF(.name = "model", .type = RLM_OPT_STRING, .default_json = "null",            \
	               .doc = model_doc),                                                          \
	        RLM_OPTION_DEF(.name = "base_url", .type = RLM_OPT_STRING,                         \
	                       .default_json = "\"" base_url "\"", .doc = base_doc,                \
	                       .flags = RLM_OPTF_NONEMPTY),                                        \
	        RLM_OPTION_DEF(.name = "api_key_env", .type = RLM_OPT_STRING,                      \
	                       .default_json = "\"" key_env "\"", .doc = key_doc),                 \
	        RLM_OPTION_DEF(.name = "temperature", .type = RLM_OPT_NUMBER,                      \
	                       .default_json = "null", .flags = RLM_OPTF_MIN, .min = 0,            \
	                       .doc = "sampling temperature (null: the server's default)"),        \
	        RLM_OPTION_DEF(.name = "max_tokens", .type = RLM_OPT_INT,                          \
	                       .default_json = max_tokens_json, .flags = RLM_OPTF_MIN, .min = 0,   \
	                       .doc = max_tokens_doc),                                             \
	        RLM_OPTION_DEF(.name = "headers", .type = RLM_OPT_OBJECT, .default_json = "{}",    \
	                       .doc = "extra HTTP headers, name -> value"),                        \
	        RLM_OPTION_DEF(.name = "max_retries", .type = RLM_OPT_INT, .default_json = "4",    \
	                       .flags = RLM_OPTF_MIN | RLM_OPTF_MAX, .min = 0,                     \
	                       .max = PU_CHAT_RETRIES_MAX,                                         \
	                       .doc = "retries of 429, 5xx and dropped connections")

/* An instance for dialect d from the core's validated view (create_opts). */
int pu_chat_create_opts(const rlm_host_api *host, const pu_chat_dialect *d, const rlm_options *opts,
                        pu_chat **out, rlm_error *err);
/* The same from the validated section's JSON text (the 1.0 create slot). */
int pu_chat_create(const rlm_host_api *host, const pu_chat_dialect *d, const char *config_json,
                   pu_chat **out, rlm_error *err);
void pu_chat_destroy(pu_chat *c);
/* One completion: thread-safe (the instance is immutable after create). */
int pu_chat_complete(const pu_chat *c, const rlm_llm_request *req, rlm_llm_response *resp,
                     rlm_error *err);

/* For dialects. */
const rlm_host_api *pu_chat_host(const pu_chat *c);
/* Adds "name: value" to the headers of every call, unless the config's headers set name. */
int pu_chat_add_default_header(pu_chat *c, const char *name, const char *value, rlm_error *err);
/* Adds val under key; on failure val is released. 0 or -1. */
int pu_json_add(json_object *obj, const char *key, json_object *val);
/* A JSON number that prints as written ("0.7"), whatever the locale's decimal separator. */
json_object *pu_json_number(double d);
/* obj[key] when obj is an object and the value has that type, else NULL. */
json_object *pu_json_get(json_object *obj, const char *key, json_type type);
/* The JSON text of root, host->alloc'ed, *len set; NULL when out of memory. */
char *pu_json_text(const rlm_host_api *h, json_object *root, size_t *len);

#endif
