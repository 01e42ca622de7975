/* crash_plugin.c - a backend plugin whose entry point dereferences NULL (rlm-backend-crash.so).
 *
 * The loader probes every plugin file in a child process before loading it: listing plugins
 * must survive this one and name it, and opening it must be an RLM_EPLUGIN naming the file,
 * the step (rlm_plugin_entry) and the signal, not the end of the process. */
#include "rlm/plugin.h"

/* NULL, in a way the compiler cannot see through (it would turn a visible NULL store into a
 * trap instruction: SIGILL, not the SIGSEGV a real bug gives). */
static int *volatile nowhere;

RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	(void)host;
	(void)host_abi;
	*nowhere = 1;
	*out = NULL;
	return 0;
}
