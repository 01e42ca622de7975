/* util.h - small helpers shared by the core: growable byte buffer, clock, error filling. */
#ifndef RLM_UTIL_H
#define RLM_UTIL_H

#include <stdarg.h>
#include <stddef.h>

#include "rlm/error.h"

/* A growable byte buffer, always NUL-terminated when data is non-NULL. */
typedef struct rlm_sb {
	char *data;
	size_t len;
	size_t cap;
} rlm_sb;

int rlm_sb_append(rlm_sb *sb, const void *data, size_t len);
int rlm_sb_puts(rlm_sb *sb, const char *s);
int rlm_sb_printf(rlm_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void rlm_sb_consume(rlm_sb *sb, size_t n);
/* Hands the buffer to the caller (malloc'ed, NUL-terminated) and resets sb. */
char *rlm_sb_take(rlm_sb *sb);
void rlm_sb_free(rlm_sb *sb);

/* Monotonic seconds. */
double rlm_now(void);

/* Fills err (may be NULL) and returns code. */
int rlm_error_set(rlm_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int rlm_error_setv(rlm_error *err, int code, const char *fmt, va_list ap);
int rlm_error_set_http(rlm_error *err, int code, long http_status, const char *request_id,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* strdup that returns NULL for NULL. */
char *rlm_strdup0(const char *s);

#endif
