/* redact.c - the one rule by which rlm hides secrets in text: the host's log lines, the
 * trajectory, HTTP error messages and every plugin (through rlm_host_api.redact) use it.
 *
 * The rule: every byte that belongs to an occurrence of a secret (4 bytes or more), spelled as
 * is or as it reads inside a JSON string, is hidden; each maximal run of hidden bytes becomes
 * "***". Marking bytes first and collapsing runs after means that overlapping or adjacent
 * secrets ("abcdX" and "Xyz12" in "abcdXyz12") leave no piece of either behind, that the
 * order of the list does not matter, and that the mask says nothing of a secret's length.
 * It was four rules before: a minimum of 6 bytes (host log), of 4 (trajectory), none with a
 * fixed "***" and first-listed-wins (HTTP), none with one '*' per byte (plugins). */
#include "redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASK     RLM_REDACT_MASK
#define MASK_LEN 3

/* Marks (hidden[i] = 1) every byte of every occurrence of needle, overlapping ones too.
 * Without a map (out of memory) it overwrites the bytes with NUL-free '\1' instead, which the
 * collapse below treats the same way. */
static void mark(char *text, size_t len, const char *needle, size_t n, unsigned char *hidden)
{
	if (n < RLM_REDACT_MIN_SECRET || n > len)
		return;
	for (const char *p = memmem(text, len, needle, n); p;
	     p = memmem(p + 1, len - (size_t)(p + 1 - text), needle, n)) {
		size_t at = (size_t)(p - text);
		if (hidden)
			memset(hidden + at, 1, n);
		else
			memset(text + at, '\1', n);
		if ((size_t)(p + 1 - text) + n > len)
			break;
	}
}

/* The secret as a JSON string spells it (without the quotes), or NULL when that is the
 * same as the secret (or memory is out). Caller frees. */
static char *json_spelling(const char *s)
{
	size_t n = 0;
	int differs = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int esc = *p == '"' || *p == '\\' || *p < 0x20;
		differs |= esc;
		n += !esc ? 1
		     : (*p == '"' || *p == '\\' || *p == '\n' || *p == '\r' || *p == '\t' ||
		        *p == '\b' || *p == '\f')
		             ? 2
		             : 6;
	}
	if (!differs)
		return NULL;
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': o += sprintf(o, "\\\""); break;
		case '\\': o += sprintf(o, "\\\\"); break;
		case '\n': o += sprintf(o, "\\n"); break;
		case '\r': o += sprintf(o, "\\r"); break;
		case '\t': o += sprintf(o, "\\t"); break;
		case '\b': o += sprintf(o, "\\b"); break;
		case '\f': o += sprintf(o, "\\f"); break;
		default:
			if (*p < 0x20)
				o += sprintf(o, "\\u%04x", *p);
			else
				*o++ = (char)*p;
		}
	}
	*o = '\0';
	return out;
}

size_t rlm__redact_secrets(char *text, const char *const *secrets)
{
	if (!text)
		return 0;
	size_t len = strlen(text);
	if (!secrets || !secrets[0] || len == 0)
		return len;
	unsigned char *hidden = calloc(len, 1);
	int any = 0;
	for (const char *const *s = secrets; *s; s++) {
		size_t n = strlen(*s);
		if (n < RLM_REDACT_MIN_SECRET)
			continue;
		any = 1;
		mark(text, len, *s, n, hidden);
		char *escaped = json_spelling(*s);
		if (escaped)
			mark(text, len, escaped, strlen(escaped), hidden);
		free(escaped);
	}
	if (!any) {
		free(hidden);
		return len;
	}
	/* Collapse: each run of hidden bytes becomes MASK. A run is at least
	 * RLM_REDACT_MIN_SECRET (> MASK_LEN) bytes long, so the write never overtakes the read. */
	size_t r = 0, w = 0;
	while (r < len) {
		int h = hidden ? hidden[r] : text[r] == '\1';
		if (!h) {
			text[w++] = text[r++];
			continue;
		}
		while (r < len && (hidden ? hidden[r] : text[r] == '\1'))
			r++;
		memcpy(text + w, MASK, MASK_LEN);
		w += MASK_LEN;
	}
	text[w] = '\0';
	free(hidden);
	return w;
}
