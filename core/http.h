/* http.h - the host's shared HTTP helper (libcurl), behind the http_* slots of rlm_host_api.
 * plugin.h documents the semantics; these are the core-side names of the same functions. */
#ifndef RLM_HTTP_H
#define RLM_HTTP_H

#include <stddef.h>
#include <time.h>

#include "rlm/plugin.h"

/* The host table's http_request (named apart from the struct type): see rlm_host_api in plugin.h.
 */
int rlm_http_send(const rlm_http_request *req, rlm_http_response *resp, rlm_error *err);

/* Frees what rlm_http_request put in resp and zeroes those fields; NULL-safe. */
void rlm_http_response_free(rlm_http_response *resp);

/* The value of header `name` (case-insensitive) in resp's final header block, copied into buf
 * and NUL-ended (truncated to size - 1 bytes); buf, or NULL when absent. */
const char *rlm_http_header(const rlm_http_response *resp, const char *name, char *buf,
                            size_t size);

/* Seconds to wait that a header block's Retry-After family asks for (Retry-After in its
 * delta-seconds or HTTP-date form, retry-after-ms, Daytona's Retry-After-{throttler}): the
 * largest one, or -1 when there is none. wall_now is time(NULL); exposed for unit tests. */
double rlm__http_retry_after(const char *headers, time_t wall_now);

/* A copy of url fit for logs and error messages: query values whose names look secret are
 * masked, and so is every string of secrets (NULL-terminated, may be NULL). Caller frees;
 * NULL when out of memory. */
char *rlm__http_safe_url(const char *url, const char *const *secrets);

#endif
