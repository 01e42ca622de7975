/* loader.h - the plugin registry: finds, loads, checks and reference-counts plugins. */
#ifndef RLM_LOADER_H
#define RLM_LOADER_H

#include "rlm/config.h"
#include "rlm/plugin.h"

typedef struct rlm_plugin rlm_plugin;

/* Finds the plugin of that kind and name and takes a reference on it (the plugin stays
 * loaded until the matching release). Search order: files in the config's plugin_path and
 * $RLM_PLUGIN_PATH, then the built-in table, then files in the build tree and install dir. */
int rlm__plugin_acquire(const rlm_config *cfg, rlm_plugin_kind kind, const char *name,
                        rlm_plugin **out, rlm_error *err);
void rlm__plugin_release(rlm_plugin *p);

const rlm_plugin_desc *rlm__plugin_desc(const rlm_plugin *p);
/* The file it came from, or "builtin". */
const char *rlm__plugin_file(const rlm_plugin *p);

/* The built-in plugins, for listings: count, and the name and kind of the i-th. */
size_t rlm__builtin_count(void);
const char *rlm__builtin_name(size_t i, rlm_plugin_kind *kind);

/* Number of references held on the plugin loaded from path (0 when not loaded): for tests. */
int rlm__plugin_refcount(const char *name);

#endif
