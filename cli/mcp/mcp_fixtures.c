/* mcp_fixtures.c - test-only tools the MCP conformance suite calls by name (served only with
 * --conformance-fixtures, never in a product configuration). */
#include "mcp.h"

json_object *mcp_fixtures_list(void)
{
	return json_object_new_array();
}

json_object *mcp_fixtures_call(const char *name, json_object *args, struct mcp_call *call)
{
	(void)name;
	(void)args;
	(void)call;
	return NULL;
}
