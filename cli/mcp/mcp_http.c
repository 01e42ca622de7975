/* mcp_http.c - placeholder */
#include <stdio.h>

#include "mcp.h"

int mcp_http_run(struct mcp_server *s, const struct mcp_options *opts, const char *token,
                 int stop_fd)
{
	(void)s;
	(void)opts;
	(void)token;
	(void)stop_fd;
	fprintf(stderr, "rlm mcp: HTTP is not built yet\n");
	return 3;
}
