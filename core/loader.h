/* loader.h - the plugin registry: finds, loads, checks and reference-counts plugins. */
#ifndef RLM_LOADER_H
#define RLM_LOADER_H

#include <json-c/json.h>
#include <stddef.h>

#include "rlm/config.h"
#include "rlm/plugin.h"

typedef struct rlm_plugin rlm_plugin;

/* Finds the plugin of that kind and name and takes a reference on it (the plugin stays
 * loaded until the matching release). Search order: files in the config's plugin_path and
 * $RLM_PLUGIN_PATH, then the built-in table, then files in librlm's own plugin directory.
 * A file is probed in a child process (rlm__plugin_probe) before it is loaded here, once per
 * version of the file: a crash in its entry point is an RLM_EPLUGIN naming the file and the
 * signal. */
int rlm__plugin_acquire(const rlm_config *cfg, rlm_plugin_kind kind, const char *name,
                        rlm_plugin **out, rlm_error *err);
void rlm__plugin_release(rlm_plugin *p);

const rlm_plugin_desc *rlm__plugin_desc(const rlm_plugin *p);
/* The file it came from, or "builtin". */
const char *rlm__plugin_file(const rlm_plugin *p);

/* The directories searched for plugin files, in order: the config's plugin_path, then
 * $RLM_PLUGIN_PATH, then rlm__plugin_own_dir(); no duplicates. NULL-terminated; NULL when out
 * of memory. *explicit_count (may be NULL) receives how many come from config and
 * environment (they take precedence over the built-in table). */
char **rlm__plugin_dirs(const rlm_config *cfg, size_t *explicit_count);
void rlm__plugin_dirs_free(char **dirs);

/* Where this librlm's own plugins are: <directory of librlm>/rlm/plugins, the same layout in
 * the build tree and in any install prefix (the build tree's when librlm's objects are linked
 * into a test executable). Static string. */
const char *rlm__plugin_own_dir(void);

/* Describes a plugin's descriptor as JSON, for listings; runs inside the probe child. */
typedef json_object *(*rlm__describe_fn)(const rlm_plugin_desc *desc, const char *file);

/* Checks the plugin in file without loading it into this process: a child process dlopens
 * it, calls its entry, checks the descriptor (ABI, kind, name when not NULL, required slots,
 * capabilities against slots) and, when describe is not NULL, hands describe's JSON back in
 * *description (caller puts it). A refusal, a crash (named by step and signal) or a hang
 * past 30 s is RLM_EPLUGIN naming the file. */
int rlm__plugin_probe(const char *file, rlm_plugin_kind kind, const char *name,
                      rlm__describe_fn describe, json_object **description, rlm_error *err);

/* The built-in plugins, for listings: count, and the name and kind of the i-th. */
size_t rlm__builtin_count(void);
const char *rlm__builtin_name(size_t i, rlm_plugin_kind *kind);

/* Number of references held on the plugin loaded from path (0 when not loaded): for tests. */
int rlm__plugin_refcount(const char *name);

#endif
