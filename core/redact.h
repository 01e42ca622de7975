/* redact.h - the one rule by which rlm hides secrets in text (see rlm_host_api.redact). */
#ifndef RLM_REDACT_H
#define RLM_REDACT_H

#include <stddef.h>

/* What each maximal run of hidden bytes becomes. */
#define RLM_REDACT_MASK "***"

/* Secrets shorter than this are not masked: they would hide ordinary words and numbers. */
#define RLM_REDACT_MIN_SECRET 4

/* Hides, in place, every byte of text that belongs to an occurrence of one of secrets
 * (NULL-terminated, may be NULL; each of RLM_REDACT_MIN_SECRET or more bytes), spelled as is
 * or JSON-escaped; each maximal run of hidden bytes becomes "***". The text only shrinks;
 * returns its new length. */
size_t rlm__redact_secrets(char *text, const char *const *secrets);

#endif
