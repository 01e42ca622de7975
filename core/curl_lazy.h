/* curl_lazy.h - libcurl, loaded on first use instead of at process start.
 *
 * librlm does not list libcurl among its DT_NEEDED libraries: loading libcurl's dependency
 * tree (TLS, Kerberos, LDAP, SSH, ~34 libraries) cost every process several milliseconds,
 * and most never send a request (the local backend, the replay LLM). curl_lazy.c defines the
 * libcurl functions http.c calls, with libcurl's own prototypes from <curl/curl.h> (so the
 * compiler checks them, and curl's typecheck-gcc.h still checks every curl_easy_setopt in
 * http.c); each forwards to the real function, resolved with dlsym from a dlopen of the
 * libcurl librlm was built against, done once (pthread_once) on the first call. The
 * definitions are hidden: librlm exports none of them, and a plugin linked with libcurl
 * (the Modal backend) binds to the real library as before.
 *
 * If libcurl cannot be loaded, the forwarders fail the way libcurl does when it cannot start
 * (NULL handles, CURLE_FAILED_INIT); rlm_curl_load says why, so http.c calls it first. */
#ifndef RLM_CURL_LAZY_H
#define RLM_CURL_LAZY_H

#include "rlm/error.h"

/* Loads libcurl once per process, from any thread: 0, or RLM_EIO with err naming the file
 * and dlerror()'s text (every later call gives the same answer). The file is the SONAME of
 * the libcurl librlm was built against; env RLM_LIBCURL (a file name or path) overrides it. */
int rlm_curl_load(rlm_error *err);

#endif
