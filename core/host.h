/* host.h - the host table the core hands to plugins, and the redacting logger behind it. */
#ifndef RLM_HOST_H
#define RLM_HOST_H

#include "rlm/plugin.h"

/* The process-wide, read-only host table. */
const rlm_host_api *rlm__host(void);

/* The embedded driver.py (generated at build time into driver_blob.c). */
extern const char rlm__driver_script[];
extern const size_t rlm__driver_script_len;

/* A copy of s with secrets masked: bearer tokens, sk-... keys, key=value pairs whose key
 * names a secret, and the values of environment variables whose names look secret
 * (*KEY*, *TOKEN*, *SECRET*, *PASSWORD*). Caller frees. NULL when out of memory. */
char *rlm_redact(const char *s);

void rlm_log(rlm_log_level level, const char *who, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
