/* bad_abi_plugin.c - a backend plugin built for a future major ABI (rlm-backend-badabi.so).
 *
 * The loader must refuse it with RLM_EPLUGIN and a message naming the file and both ABI
 * versions, before touching anything past the descriptor's header. */
#include <stddef.h>

#include "rlm/plugin.h"

#define BAD_ABI_VERSION ((uint32_t)((RLM_ABI_MAJOR + 1) << 16))

/* Only the header fields matter: a newer major may have reshaped everything after them. */
static const rlm_plugin_desc bad_abi_desc = {
        .abi_version = BAD_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_BACKEND,
        .name = "badabi",
        .summary = "test plugin that claims the next major ABI",
        .version = "0.0.0",
        .capabilities = 0,
        .options = NULL,
        .ops = NULL,
};

/* Answers whatever the host asks: a plugin that does not check the host's ABI itself. */
RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	(void)host;
	(void)host_abi;
	*out = &bad_abi_desc;
	return 0;
}
