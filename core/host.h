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

/* The option view's readers behind rlm_host_api.opt_* (options.c). */
int rlm__opt_is_set(const rlm_options *o, const char *name);
const char *rlm__opt_string(const rlm_options *o, const char *name);
int64_t rlm__opt_int(const rlm_options *o, const char *name);
double rlm__opt_number(const rlm_options *o, const char *name);
int rlm__opt_bool(const rlm_options *o, const char *name);
const char *const *rlm__opt_string_list(const rlm_options *o, const char *name);
const char *rlm__opt_object_json(const rlm_options *o, const char *name);

/* rlm_host_api.sleep: up to seconds (clamped to [0, 3600]) in slices of 50 ms or less; 0, or
 * RLM_ECANCELLED once *cancel (may be NULL) is set. */
int rlm__host_sleep(double seconds, const volatile int *cancel);

void rlm_log(rlm_log_level level, const char *who, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
