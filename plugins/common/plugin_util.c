/* plugin_util.c - small helpers the LLM plugins share; see plugin_util.h. */
#include "plugin_util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *pu_opt_string(const pu_opts *o, const char *key)
{
	const char *s = NULL;
	json_object *v;

	if (o->view)
		s = o->h->opt_string(o->view, key);
	else if (json_object_object_get_ex(o->json, key, &v) &&
	         json_object_is_type(v, json_type_string))
		s = json_object_get_string(v);
	return s && *s ? s : NULL;
}

int pu_opt_number(const pu_opts *o, const char *key, double *out)
{
	json_object *v;

	if (o->view) {
		if (!o->h->opt_is_set(o->view, key))
			return 0;
		*out = o->h->opt_number(o->view, key);
		return 1;
	}
	if (!json_object_object_get_ex(o->json, key, &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return 0;
	*out = json_object_get_double(v);
	return 1;
}

json_object *pu_opt_object(const pu_opts *o, const char *key)
{
	json_object *v = NULL;

	if (o->view)
		v = json_tokener_parse(o->h->opt_object_json(o->view, key));
	else if (json_object_object_get_ex(o->json, key, &v))
		json_object_get(v);
	if (!json_object_is_type(v, json_type_object)) {
		json_object_put(v);
		return NULL;
	}
	return v;
}

/* Copies text into out (size > 4) on one line: control characters become spaces, the tail
 * is cut with "...", and the secrets (NULL-terminated) are redacted. */
void pu_quote_text(const rlm_host_api *h, const char *const *secrets, const char *text, size_t len,
                   char *out, size_t size)
{
	size_t i, n = len < size - 1 ? len : size - 1;

	for (i = 0; i < n; i++)
		out[i] = iscntrl((unsigned char)text[i]) ? ' ' : text[i];
	out[n] = '\0';
	if (len > n)
		memcpy(out + size - 4, "...", 4);
	h->redact(out, secrets);
}

int pu_header_name_ok(const char *name)
{
	if (!*name)
		return 0;
	for (; *name; name++)
		if (*name <= ' ' || *name == ':' || *name == 127)
			return 0;
	return 1;
}

int pu_value_has_newline(const char *v)
{
	return strchr(v, '\r') || strchr(v, '\n');
}

/* Header names whose values are credentials: masked wherever they could show up. */
int pu_header_looks_secret(const char *name)
{
	static const char *const words[] = {"auth", "key", "token", "secret", "cookie"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(name, words[i]))
			return 1;
	return 0;
}

const char **pu_collect_secrets(const rlm_host_api *h, const char *key, const char *const *headers,
                                size_t n)
{
	const char **secrets = h->alloc((n + 2) * sizeof(*secrets));
	size_t k = 0;

	if (!secrets)
		return NULL;
	if (key)
		secrets[k++] = key;
	for (size_t i = 0; i < n; i++) {
		const char *line = headers[i], *colon = strchr(line, ':');
		char name[128];
		size_t len = (size_t)(colon - line);

		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		memcpy(name, line, len);
		name[len] = '\0';
		if (pu_header_looks_secret(name) && strlen(colon + 2) >= 6)
			secrets[k++] = colon + 2;
	}
	secrets[k] = NULL;
	return secrets;
}

void pu_reset_response(rlm_llm_response *resp)
{
#define PU_HAS(field) (resp->struct_size >= offsetof(rlm_llm_response, field) + sizeof(resp->field))
	resp->text.data = NULL;
	resp->text.len = 0;
	if (PU_HAS(prompt_tokens))
		resp->prompt_tokens = -1;
	if (PU_HAS(completion_tokens))
		resp->completion_tokens = -1;
	if (PU_HAS(model))
		resp->model[0] = '\0';
	if (PU_HAS(finish_reason))
		resp->finish_reason[0] = '\0';
#undef PU_HAS
}

int pu_says_quota(const char *body, size_t body_len)
{
	static const char *const words[] = {"quota", "credit", "billing"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t w = strlen(words[i]);
		for (size_t at = 0; body && at + w <= body_len; at++)
			if (!strncasecmp(body + at, words[i], w))
				return 1;
	}
	return 0;
}

int pu_quota_is_final(void *ctx, long status, const char *body, size_t body_len)
{
	(void)ctx;
	return status == 429 && pu_says_quota(body, body_len);
}
