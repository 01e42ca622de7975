/* plugin_util.c - small helpers the LLM plugins share; see plugin_util.h. */
#include "plugin_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

char *pu_dup_str(const rlm_host_api *h, const char *s)
{
	size_t n = strlen(s);
	char *d = h->alloc(n + 1);

	if (d)
		memcpy(d, s, n + 1);
	return d;
}

char *pu_format_str(const rlm_host_api *h, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(s = h->alloc((size_t)n + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* The option's string value, or NULL when absent, null or empty (null means "default"). */
const char *pu_opt_string(json_object *cfg, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(cfg, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string_len(v) > 0 ? json_object_get_string(v) : NULL;
}

int pu_opt_number(json_object *cfg, const char *key, double *out)
{
	json_object *v;

	if (!json_object_object_get_ex(cfg, key, &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return 0;
	*out = json_object_get_double(v);
	return 1;
}

/* Overwrites every occurrence of secret in s with '*'. */
void pu_mask_secret(char *s, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0;

	if (n == 0)
		return;
	for (char *p = strstr(s, secret); p; p = strstr(p + n, secret))
		memset(p, '*', n);
}

/* Copies text into out (size > 4) on one line: control characters become spaces, the tail
 * is cut with "...", and the secrets (NULL-terminated) are masked. */
void pu_quote_text(const char *const *secrets, const char *text, size_t len, char *out, size_t size)
{
	size_t i, n = len < size - 1 ? len : size - 1;

	for (i = 0; i < n; i++)
		out[i] = iscntrl((unsigned char)text[i]) ? ' ' : text[i];
	out[n] = '\0';
	if (len > n)
		memcpy(out + size - 4, "...", 4);
	for (const char *const *s = secrets; s && *s; s++)
		pu_mask_secret(out, *s);
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
