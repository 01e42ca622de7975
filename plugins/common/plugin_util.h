/* plugin_util.h - small helpers the LLM plugins share (string building, option reading,
 * masking secrets, checking header lines). Compiled into each plugin: plugins never link
 * against librlm, and with hidden visibility these stay private to each .so. */
#ifndef RLM_PLUGIN_UTIL_H
#define RLM_PLUGIN_UTIL_H

#include <json-c/json.h>
#include <stddef.h>

#include "rlm/plugin.h"

/* A plugin's options, read alike whether they came as the core's validated view (create_opts,
 * ABI 1.2) or as the validated section's JSON text (create, kept for callers of the 1.0 slot).
 * Ranges, types and defaults are the core's business (the option_defs): these only read. */
typedef struct pu_opts {
	const rlm_host_api *h;
	const rlm_options *view; /* create_opts: read with h->opt_* */
	json_object *json;       /* create: the section, parsed */
} pu_opts;

/* The option's string value, or NULL when unset, null or empty (null means "default"). */
const char *pu_opt_string(const pu_opts *o, const char *key);
/* 1 and *out when the option is a number, else 0. */
int pu_opt_number(const pu_opts *o, const char *key, double *out);
/* An OBJECT option, a new reference (json_object_put it); NULL when unset or not an object. */
json_object *pu_opt_object(const pu_opts *o, const char *key);
/* Copies text into out (size > 4) on one line: control characters become spaces, the tail is
 * cut with "...", and the secrets (NULL-terminated, may be NULL) are hidden by the host's one
 * redaction rule (host->redact). */
void pu_quote_text(const rlm_host_api *h, const char *const *secrets, const char *text, size_t len,
                   char *out, size_t size);
/* A valid header name: non-empty, no spaces, colons or controls. */
int pu_header_name_ok(const char *name);
/* 1 when a header value would break the header block. */
int pu_value_has_newline(const char *v);
/* Header names whose values are credentials: masked wherever they could show up. */
int pu_header_looks_secret(const char *name);

/* A NULL-terminated, host->alloc'ed list of the strings to mask: key (if any) and the value
 * part of every credential-looking "Name: value" line of headers (n of them). The strings
 * are not copied: they must outlive the list. NULL when out of memory. */
const char **pu_collect_secrets(const rlm_host_api *h, const char *key, const char *const *headers,
                                size_t n);

/* An rlm_http_request.is_final for LLM providers: a 429 whose body says the quota, credit or
 * billing is exhausted is final (retrying cannot help); ctx is unused. */
int pu_quota_is_final(void *ctx, long status, const char *body, size_t body_len);
/* Whether a provider's error body says the account is out of quota or credit. */
int pu_says_quota(const char *body, size_t body_len);

/* Empties a response before a call: no text, unknown token counts (-1), no model or finish
 * reason; only the fields the caller's struct_size covers. */
void pu_reset_response(rlm_llm_response *resp);

#endif
