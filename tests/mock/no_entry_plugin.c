/* no_entry_plugin.c - a shared object without rlm_plugin_entry (rlm-backend-noentry.so).
 *
 * It loads fine with dlopen, so the loader must fail on the symbol lookup and say which
 * symbol it looked for. */
#include "rlm/plugin.h"

/* A plausible near miss: the right idea under the wrong name. */
RLM_PLUGIN_EXPORT int rlm_plugin_init(const rlm_host_api *host, uint32_t host_abi,
                                      const rlm_plugin_desc **out)
{
	(void)host;
	(void)host_abi;
	*out = NULL;
	return RLM_EPLUGIN;
}
