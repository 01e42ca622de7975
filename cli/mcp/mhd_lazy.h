/* mhd_lazy.h - libmicrohttpd, loaded when `rlm mcp --http` starts instead of at every rlm start.
 *
 * The rlm executable does not list libmicrohttpd among its DT_NEEDED libraries: it and its
 * GnuTLS tree (~10 libraries) cost every rlm command about a millisecond of loading, and only
 * `rlm mcp --http` uses it. mhd_lazy.c defines the libmicrohttpd functions mcp_http.c calls
 * with the prototypes of <microhttpd.h>, each forwarding to the real function resolved from a
 * dlopen of the libmicrohttpd rlm was built against, done once on the first call (the same
 * scheme as core/curl_lazy.h). MHD_start_daemon forwards to MHD_start_daemon_va. */
#ifndef RLM_MCP_MHD_LAZY_H
#define RLM_MCP_MHD_LAZY_H

#include <stddef.h>

/* Loads libmicrohttpd once: 0, or -1 with why (NUL-ended, truncated to size) naming the file
 * and dlerror()'s text. Every later call gives the same answer. */
int mcp_mhd_load(char *why, size_t size);

#endif
