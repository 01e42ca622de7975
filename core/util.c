/* util.c - small helpers shared by the core: growable byte buffer, clock, error filling. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int sb_reserve(rlm_sb *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + extra + 1) {
		if (cap > ((size_t)-1) / 2)
			return RLM_ENOMEM;
		cap *= 2;
	}
	char *p = realloc(sb->data, cap);
	if (!p)
		return RLM_ENOMEM;
	sb->data = p;
	sb->cap = cap;
	return 0;
}

int rlm_sb_append(rlm_sb *sb, const void *data, size_t len)
{
	if (sb_reserve(sb, len))
		return RLM_ENOMEM;
	if (len)
		memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
	return 0;
}

int rlm_sb_puts(rlm_sb *sb, const char *s)
{
	return rlm_sb_append(sb, s, strlen(s));
}

int rlm_sb_printf(rlm_sb *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return RLM_EINVAL;
	if (sb_reserve(sb, (size_t)n))
		return RLM_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
	return 0;
}

void rlm_sb_consume(rlm_sb *sb, size_t n)
{
	if (n >= sb->len) {
		sb->len = 0;
	} else {
		memmove(sb->data, sb->data + n, sb->len - n);
		sb->len -= n;
	}
	if (sb->data)
		sb->data[sb->len] = '\0';
}

char *rlm_sb_take(rlm_sb *sb)
{
	char *p = sb->data;
	if (!p)
		p = calloc(1, 1);
	sb->data = NULL;
	sb->len = sb->cap = 0;
	return p;
}

void rlm_sb_free(rlm_sb *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
}

double rlm_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int rlm_error_setv(rlm_error *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	err->http_status = 0;
	err->request_id[0] = '\0';
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	return code;
}

int rlm_error_set(rlm_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rlm_error_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int rlm_error_set_http(rlm_error *err, int code, long http_status, const char *request_id,
                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rlm_error_setv(err, code, fmt, ap);
	va_end(ap);
	if (err) {
		err->http_status = http_status;
		snprintf(err->request_id, sizeof(err->request_id), "%s",
		         request_id ? request_id : "");
	}
	return code;
}

char *rlm_strdup0(const char *s)
{
	return s ? strdup(s) : NULL;
}
