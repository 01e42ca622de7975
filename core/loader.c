/* loader.c - the plugin registry: finds plugin files on the search path, dlopens them,
 * checks their ABI, keeps a built-in table, and never unloads a plugin while it is in use.
 * This registry is the only process-wide mutable state in librlm; a mutex guards it. */
#include "loader.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "host.h"
#include "rlm/rlm.h"
#include "util.h"

#ifndef RLM_BUILD_PLUGIN_DIR
#define RLM_BUILD_PLUGIN_DIR ""
#endif
#ifndef RLM_INSTALL_PLUGIN_DIR
#define RLM_INSTALL_PLUGIN_DIR "/usr/local/lib/rlm/plugins"
#endif

struct rlm_plugin {
	struct rlm_plugin *next;
	char *file; /* real path, or "builtin" */
	void *handle;
	const rlm_plugin_desc *desc;
	int refs;
};

/* The built-in table: plugins linked into librlm, usable without dlopen. */
int rlm_builtin_local_entry(const rlm_host_api *host, uint32_t host_abi,
                            const rlm_plugin_desc **out);
int rlm_builtin_replay_entry(const rlm_host_api *host, uint32_t host_abi,
                             const rlm_plugin_desc **out);

static const struct builtin {
	rlm_plugin_kind kind;
	const char *name;
	rlm_plugin_entry_fn entry;
} builtins[] = {
        {RLM_PLUGIN_BACKEND, "local", rlm_builtin_local_entry},
        {RLM_PLUGIN_LLM, "replay", rlm_builtin_replay_entry},
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rlm_plugin *registry;

static const char *kind_word(rlm_plugin_kind kind)
{
	return kind == RLM_PLUGIN_LLM ? "llm" : "backend";
}

/* Checks a descriptor against what this core can serve. */
static int check_desc(const rlm_plugin_desc *d, rlm_plugin_kind kind, const char *name,
                      const char *file, rlm_error *err)
{
	if (!d)
		return rlm_error_set(err, RLM_EPLUGIN, "plugin %s: entry returned no descriptor",
		                     file);
	if (RLM_ABI_MAJOR_OF(d->abi_version) != RLM_ABI_MAJOR)
		return rlm_error_set(err, RLM_EPLUGIN,
		                     "plugin %s: built for plugin ABI %u.%u, this rlm speaks ABI "
		                     "%u.%u (rebuild the plugin against this rlm's headers)",
		                     file, RLM_ABI_MAJOR_OF(d->abi_version),
		                     RLM_ABI_MINOR_OF(d->abi_version), RLM_ABI_MAJOR,
		                     RLM_ABI_MINOR);
	if (d->struct_size < offsetof(rlm_plugin_desc, ops) + sizeof(d->ops))
		return rlm_error_set(err, RLM_EPLUGIN, "plugin %s: descriptor too small (%u bytes)",
		                     file, d->struct_size);
	if (d->kind != kind)
		return rlm_error_set(err, RLM_EPLUGIN, "plugin %s: is a %s plugin, not a %s plugin",
		                     file, kind_word(d->kind), kind_word(kind));
	if (!d->name || (name && strcmp(d->name, name)))
		return rlm_error_set(err, RLM_EPLUGIN,
		                     "plugin %s: calls itself \"%s\", expected \"%s\"", file,
		                     d->name ? d->name : "(null)", name);
	if (kind == RLM_PLUGIN_LLM) {
		const rlm_llm_ops *ops = d->ops;
		if (!ops || ops->struct_size < offsetof(rlm_llm_ops, destroy) + sizeof(void *) ||
		    RLM_ABI_MAJOR_OF(ops->abi_version) != RLM_ABI_MAJOR || !ops->create ||
		    !ops->complete || !ops->destroy)
			return rlm_error_set(err, RLM_EPLUGIN,
			                     "plugin %s: LLM ops table missing or incomplete "
			                     "(create, complete and destroy are required)",
			                     file);
	}
	if (kind == RLM_PLUGIN_BACKEND) {
		const rlm_backend_ops *ops = d->ops;
		if (!ops ||
		    ops->struct_size < offsetof(rlm_backend_ops, shutdown) + sizeof(void *) ||
		    RLM_ABI_MAJOR_OF(ops->abi_version) != RLM_ABI_MAJOR || !ops->create ||
		    !ops->start || !ops->execute || !ops->upload || !ops->download ||
		    !ops->shutdown)
			return rlm_error_set(
			        err, RLM_EPLUGIN,
			        "plugin %s: backend ops table missing or incomplete "
			        "(create, start, execute, upload, download and shutdown "
			        "are required)",
			        file);
	}
	return 0;
}

static struct rlm_plugin *registry_find(const char *file)
{
	for (struct rlm_plugin *p = registry; p; p = p->next)
		if (!strcmp(p->file, file))
			return p;
	return NULL;
}

static int registry_add(const char *file, void *handle, const rlm_plugin_desc *desc,
                        rlm_plugin **out, rlm_error *err)
{
	struct rlm_plugin *p = calloc(1, sizeof(*p));
	if (!p || !(p->file = strdup(file))) {
		free(p);
		return rlm_error_set(err, RLM_ENOMEM, "out of memory loading %s", file);
	}
	p->handle = handle;
	p->desc = desc;
	p->refs = 1;
	p->next = registry;
	registry = p;
	*out = p;
	return 0;
}

/* dlopens one file and checks it; caller holds the registry lock. */
static int load_file(const char *file, rlm_plugin_kind kind, const char *name, rlm_plugin **out,
                     rlm_error *err)
{
	struct rlm_plugin *have = registry_find(file);
	if (have) {
		int rc = check_desc(have->desc, kind, name, file, err);
		if (rc)
			return rc;
		have->refs++;
		*out = have;
		return 0;
	}
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return rlm_error_set(err, RLM_EPLUGIN,
		                     "plugin %s: cannot be loaded: %s (is it a plugin built for "
		                     "this platform? check `ldd` for missing libraries)",
		                     file, dlerror());
	dlerror();
	rlm_plugin_entry_fn entry;
	*(void **)&entry = dlsym(h, RLM_PLUGIN_ENTRY_SYMBOL);
	if (!entry) {
		const char *why = dlerror();
		rlm_error_set(err, RLM_EPLUGIN, "plugin %s: no symbol %s: %s", file,
		              RLM_PLUGIN_ENTRY_SYMBOL, why ? why : "symbol is NULL");
		dlclose(h);
		return RLM_EPLUGIN;
	}
	const rlm_plugin_desc *desc = NULL;
	int rc = entry(rlm__host(), RLM_ABI_VERSION, &desc);
	if (rc) {
		rlm_error_set(err, RLM_EPLUGIN, "plugin %s: %s() refused to load (%s)", file,
		              RLM_PLUGIN_ENTRY_SYMBOL, rlm_status_name(rc));
		dlclose(h);
		return RLM_EPLUGIN;
	}
	rc = check_desc(desc, kind, name, file, err);
	if (!rc)
		rc = registry_add(file, h, desc, out, err);
	if (rc)
		dlclose(h);
	return rc;
}

static int load_builtin(const struct builtin *b, rlm_plugin **out, rlm_error *err)
{
	char file[128];
	snprintf(file, sizeof(file), "builtin:%s:%s", kind_word(b->kind), b->name);
	struct rlm_plugin *have = registry_find(file);
	if (have) {
		have->refs++;
		*out = have;
		return 0;
	}
	const rlm_plugin_desc *desc = NULL;
	int rc = b->entry(rlm__host(), RLM_ABI_VERSION, &desc);
	if (rc)
		return rlm_error_set(err, RLM_EPLUGIN, "built-in plugin %s refused to load (%s)",
		                     b->name, rlm_status_name(rc));
	rc = check_desc(desc, b->kind, b->name, "builtin", err);
	return rc ? rc : registry_add(file, NULL, desc, out, err);
}

/* The search path as a NULL-terminated array of directories. explicit_count receives how
 * many come from config and environment (they take precedence over built-ins). */
static char **search_dirs(const rlm_config *cfg, size_t *explicit_count)
{
	size_t n = 0, cap = 16;
	char **dirs = calloc(cap, sizeof(char *));
	if (!dirs)
		return NULL;
	json_object *pp = cfg ? rlm__config_lookup(cfg, "plugin_path") : NULL;
	size_t np =
	        pp && json_object_is_type(pp, json_type_array) ? json_object_array_length(pp) : 0;
	char *env = getenv("RLM_PLUGIN_PATH") ? strdup(getenv("RLM_PLUGIN_PATH")) : NULL;
	const char *fixed[] = {RLM_BUILD_PLUGIN_DIR, RLM_INSTALL_PLUGIN_DIR};
	for (size_t i = 0; i < np; i++) {
		const char *d = json_object_get_string(json_object_array_get_idx(pp, i));
		if (d && *d && n + 2 < cap)
			dirs[n++] = strdup(d);
	}
	char *save = NULL;
	for (char *t = env ? strtok_r(env, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save))
		if (*t && n + 2 < cap)
			dirs[n++] = strdup(t);
	free(env);
	*explicit_count = n;
	for (size_t i = 0; i < 2; i++)
		if (*fixed[i] && n + 2 < cap)
			dirs[n++] = strdup(fixed[i]);
	/* Drop duplicates and failed strdups, keeping the first occurrence. */
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		int dup = !dirs[i];
		for (size_t j = 0; j < w && !dup; j++)
			dup = !strcmp(dirs[j], dirs[i]);
		if (dup) {
			if (i < *explicit_count)
				(*explicit_count)--;
			free(dirs[i]);
		} else {
			dirs[w++] = dirs[i];
		}
	}
	dirs[w] = NULL;
	return dirs;
}

static void free_dirs(char **dirs)
{
	for (size_t i = 0; dirs && dirs[i]; i++)
		free(dirs[i]);
	free(dirs);
}

static void plugin_filename(char *buf, size_t size, const char *dir, rlm_plugin_kind kind,
                            const char *name)
{
	snprintf(buf, size, "%s/rlm-%s-%s.so", dir, kind_word(kind), name);
}

static const struct builtin *find_builtin(rlm_plugin_kind kind, const char *name)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (builtins[i].kind == kind && !strcmp(builtins[i].name, name))
			return &builtins[i];
	return NULL;
}

static int valid_name(const char *name)
{
	if (!name || !*name || strlen(name) > 64)
		return 0;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

static int not_found(char **dirs, rlm_plugin_kind kind, const char *name, rlm_error *err)
{
	rlm_sb sb = {0};
	rlm_sb_printf(&sb, "no %s plugin \"%s\": looked for rlm-%s-%s.so in", kind_word(kind), name,
	              kind_word(kind), name);
	for (size_t i = 0; dirs && dirs[i]; i++)
		rlm_sb_printf(&sb, "%s %s", i ? "," : "", dirs[i]);
	if (!dirs || !dirs[0])
		rlm_sb_puts(&sb, " (no directories)");
	rlm_sb_puts(&sb, "; built-in:");
	int any = 0;
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (builtins[i].kind == kind)
			rlm_sb_printf(&sb, "%s %s", any++ ? "," : "", builtins[i].name);
	if (!any)
		rlm_sb_puts(&sb, " none");
	rlm_error_set(err, RLM_ENOTFOUND, "%s", sb.data ? sb.data : "plugin not found");
	rlm_sb_free(&sb);
	return RLM_ENOTFOUND;
}

static int acquire_locked(const rlm_config *cfg, rlm_plugin_kind kind, const char *name,
                          rlm_plugin **out, rlm_error *err)
{
	size_t nexplicit = 0;
	char **dirs = search_dirs(cfg, &nexplicit);
	if (!dirs)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	const struct builtin *b = find_builtin(kind, name);
	int rc = RLM_ENOTFOUND;
	char path[PATH_MAX];
	for (size_t i = 0; dirs[i]; i++) {
		if (i == nexplicit && b)
			break; /* built-ins win over the build tree and install dir */
		plugin_filename(path, sizeof(path), dirs[i], kind, name);
		if (access(path, F_OK) == 0) {
			char real[PATH_MAX];
			rc = load_file(realpath(path, real) ? real : path, kind, name, out, err);
			break;
		}
	}
	if (rc == RLM_ENOTFOUND && b)
		rc = load_builtin(b, out, err);
	else if (rc == RLM_ENOTFOUND)
		rc = not_found(dirs, kind, name, err);
	free_dirs(dirs);
	return rc;
}

int rlm__plugin_acquire(const rlm_config *cfg, rlm_plugin_kind kind, const char *name,
                        rlm_plugin **out, rlm_error *err)
{
	*out = NULL;
	if (!valid_name(name))
		return rlm_error_set(err, RLM_ECONFIG,
		                     "invalid %s name \"%s\": use letters, digits, '-' and '_'",
		                     kind_word(kind), name ? name : "");
	pthread_mutex_lock(&registry_lock);
	int rc = acquire_locked(cfg, kind, name, out, err);
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

void rlm__plugin_release(rlm_plugin *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&registry_lock);
	if (--p->refs == 0) {
		struct rlm_plugin **pp = &registry;
		while (*pp && *pp != p)
			pp = &(*pp)->next;
		if (*pp)
			*pp = p->next;
		if (p->handle)
			dlclose(p->handle);
		free(p->file);
		free(p);
	}
	pthread_mutex_unlock(&registry_lock);
}

const rlm_plugin_desc *rlm__plugin_desc(const rlm_plugin *p)
{
	return p->desc;
}

const char *rlm__plugin_file(const rlm_plugin *p)
{
	return strncmp(p->file, "builtin:", 8) ? p->file : "builtin";
}

size_t rlm__builtin_count(void)
{
	return sizeof(builtins) / sizeof(builtins[0]);
}

const char *rlm__builtin_name(size_t i, rlm_plugin_kind *kind)
{
	*kind = builtins[i].kind;
	return builtins[i].name;
}

int rlm__plugin_refcount(const char *name)
{
	int refs = 0;
	pthread_mutex_lock(&registry_lock);
	for (struct rlm_plugin *p = registry; p; p = p->next)
		if (p->desc && p->desc->name && !strcmp(p->desc->name, name))
			refs += p->refs;
	pthread_mutex_unlock(&registry_lock);
	return refs;
}
