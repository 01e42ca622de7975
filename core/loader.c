/* loader.c - the plugin registry: finds plugin files on the search path, probes each one in a
 * child process before loading it here (a plugin that crashes in its entry point must not take
 * rlm down), dlopens it, checks its ABI and that its capabilities match its ops table, keeps a
 * built-in table, and never unloads a plugin while it is in use. The registry (loaded plugins,
 * files already probed) is process-wide state behind one mutex, this librlm's plugin directory
 * is computed once; host.c keeps the other process-wide state (log level, data dir). */
#include "loader.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <json-c/json.h>
#include <libgen.h>
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
#include "probe.h"
#include "rlm/rlm.h"
#include "util.h"

/* Where plugins live relative to the directory of librlm, in the build tree as in any install
 * prefix (lib/librlm.so.0 beside lib/rlm/plugins/). */
#ifndef RLM_PLUGIN_SUBDIR
#define RLM_PLUGIN_SUBDIR "rlm/plugins"
#endif
/* The build tree's plugin directory, for the unit tests that link librlm's objects statically
 * into an executable (there is no librlm file to be beside then). */
#ifndef RLM_BUILD_PLUGIN_DIR
#define RLM_BUILD_PLUGIN_DIR ""
#endif
/* Only when librlm cannot tell where it is (dladdr fails). */
#ifndef RLM_INSTALL_PLUGIN_DIR
#define RLM_INSTALL_PLUGIN_DIR "/usr/local/lib/rlm/plugins"
#endif

/* A probe answers in milliseconds; the dynamic linker of a loaded machine can take seconds,
 * and a plugin whose entry point does not return by then is broken. */
#define PROBE_TIMEOUT_S 30.0
/* A descriptor described as JSON is a few kilobytes. */
#define PROBE_OUTPUT_MAX ((size_t)4 << 20)

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

/* A file whose probe passed, by identity: a rebuilt file is probed again. */
struct probed {
	struct probed *next;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rlm_plugin *registry;
static struct probed *probed_files;
static char own_dir[PATH_MAX];
static pthread_once_t own_dir_once = PTHREAD_ONCE_INIT;

static const char *kind_word(rlm_plugin_kind kind)
{
	return kind == RLM_PLUGIN_LLM ? "llm" : "backend";
}

/* A capability bit whose slot the ops table does not have: the core would otherwise call a
 * NULL slot, or read past the end of a table that ends before it. */
static int capability_without_slot(const rlm_plugin_desc *d, const rlm_backend_ops *ops,
                                   const char *cap, const char *slot, size_t offset,
                                   const char *file, rlm_error *err)
{
	if (offset + sizeof(void (*)(void)) > ops->struct_size)
		return rlm_error_set(
		        err, RLM_EPLUGIN,
		        "plugin %s (backend \"%s\"): declares %s but its ops table ends "
		        "before the %s slot (struct_size %u); drop the capability or "
		        "build against headers that have the slot",
		        file, d->name, cap, slot, ops->struct_size);
	return rlm_error_set(err, RLM_EPLUGIN,
	                     "plugin %s (backend \"%s\"): declares %s but its %s slot is NULL; "
	                     "drop the capability or fill the slot",
	                     file, d->name, cap, slot);
}

/* Each capability that stands for an optional slot needs that slot, present (inside
 * struct_size) and not NULL. The other bits (volume, nested execute, ...) promise behaviour,
 * not a slot. */
static int check_capability_slots(const rlm_plugin_desc *d, const rlm_backend_ops *ops,
                                  const char *file, rlm_error *err)
{
	if ((d->capabilities & RLM_CAP_INTERRUPT) && !RLM_HAS_SLOT(ops, interrupt))
		return capability_without_slot(d, ops, "RLM_CAP_INTERRUPT", "interrupt",
		                               offsetof(rlm_backend_ops, interrupt), file, err);
	if ((d->capabilities & RLM_CAP_RUN_COMMAND) && !RLM_HAS_SLOT(ops, run_command))
		return capability_without_slot(d, ops, "RLM_CAP_RUN_COMMAND", "run_command",
		                               offsetof(rlm_backend_ops, run_command), file, err);
	if ((d->capabilities & RLM_CAP_IS_ALIVE) && !RLM_HAS_SLOT(ops, is_alive))
		return capability_without_slot(d, ops, "RLM_CAP_IS_ALIVE", "is_alive",
		                               offsetof(rlm_backend_ops, is_alive), file, err);
	return 0;
}

/* A plugin with neither create() nor (ABI 1.2) create_opts() cannot make an instance. */
static int no_create(const rlm_plugin_desc *d, const char *file, rlm_error *err)
{
	return rlm_error_set(err, RLM_EPLUGIN,
	                     "plugin \"%s\" (%s): its ops table has neither create nor "
	                     "create_opts; one of them is required (create_opts needs ABI 1.2)",
	                     d->name, file);
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
		    RLM_ABI_MAJOR_OF(ops->abi_version) != RLM_ABI_MAJOR || !ops->complete ||
		    !ops->destroy)
			return rlm_error_set(err, RLM_EPLUGIN,
			                     "plugin %s: LLM ops table missing or incomplete "
			                     "(create, complete and destroy are required)",
			                     file);
		if (!ops->create && !RLM_HAS_SLOT(ops, create_opts))
			return no_create(d, file, err);
	}
	if (kind == RLM_PLUGIN_BACKEND) {
		const rlm_backend_ops *ops = d->ops;
		if (!ops ||
		    ops->struct_size < offsetof(rlm_backend_ops, shutdown) + sizeof(void *) ||
		    RLM_ABI_MAJOR_OF(ops->abi_version) != RLM_ABI_MAJOR || !ops->start ||
		    !ops->execute || !ops->upload || !ops->download || !ops->shutdown)
			return rlm_error_set(
			        err, RLM_EPLUGIN,
			        "plugin %s: backend ops table missing or incomplete "
			        "(create, start, execute, upload, download and shutdown "
			        "are required)",
			        file);
		if (!ops->create && !RLM_HAS_SLOT(ops, create_opts))
			return no_create(d, file, err);
		return check_capability_slots(d, ops, file, err);
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

/* ---- Probing a plugin file in a child process ---- */

/* What the probe child reports, one byte per step it starts, then PROBE_RESULT and a JSON
 * object: {"code": 0, "description": ...} or {"code": <rlm_status>, "message": ...}. The
 * last step byte before a crash says where the plugin crashed. */
enum probe_step {
	PROBE_DLOPEN = 'L',   /* dlopen: the plugin's constructors and its libraries' */
	PROBE_ENTRY = 'E',    /* rlm_plugin_entry() */
	PROBE_CHECK = 'C',    /* reading the descriptor it returned */
	PROBE_DESCRIBE = 'D', /* describing it (option specs, strings) */
	PROBE_RESULT = 'R',
};

struct probe_job {
	const char *file;
	rlm_plugin_kind kind;
	const char *name;
	rlm__describe_fn describe; /* NULL: check only */
};

static void write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

/* fd < 0: not in a probe, nobody to tell. */
static void probe_step(int fd, enum probe_step step)
{
	char c = (char)step;

	if (fd >= 0)
		write_all(fd, &c, 1);
}

/* dlopens file and calls its entry point, telling fd (or nobody) each step as it starts. On
 * success *handle is open; on failure nothing is. */
static int open_plugin(const char *file, int fd, void **handle, const rlm_plugin_desc **desc,
                       rlm_error *err)
{
	rlm_plugin_entry_fn entry;
	void *h;
	int rc;

	*handle = NULL;
	*desc = NULL;
	probe_step(fd, PROBE_DLOPEN);
	h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return rlm_error_set(err, RLM_EPLUGIN,
		                     "plugin %s: cannot be loaded: %s (is it a plugin built for "
		                     "this platform? check `ldd` for missing libraries)",
		                     file, dlerror());
	dlerror();
	*(void **)&entry = dlsym(h, RLM_PLUGIN_ENTRY_SYMBOL);
	if (!entry) {
		const char *why = dlerror();

		rlm_error_set(err, RLM_EPLUGIN, "plugin %s: no symbol %s: %s", file,
		              RLM_PLUGIN_ENTRY_SYMBOL, why ? why : "symbol is NULL");
		dlclose(h);
		return RLM_EPLUGIN;
	}
	probe_step(fd, PROBE_ENTRY);
	rc = entry(rlm__host(), RLM_ABI_VERSION, desc);
	if (rc) {
		rlm_error_set(err, RLM_EPLUGIN, "plugin %s: %s() refused to load (%s)", file,
		              RLM_PLUGIN_ENTRY_SYMBOL, rlm_status_name(rc));
		dlclose(h);
		return RLM_EPLUGIN;
	}
	/* A plugin that loaded stays mapped until the process ends, even once its last
	 * interpreter is closed: an eval opens and closes hundreds, and unloading a plugin
	 * unloads what it links (libcurl, TLS libraries with thread-local state) only to load it
	 * all again for the next one. (LeakSanitizer also trips over the thread-local storage of
	 * libraries unloaded under running threads.) The handle still counts: release closes it. */
	void *pin = dlopen(file, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD | RTLD_NODELETE);
	if (pin)
		dlclose(pin);
	*handle = h;
	return 0;
}

static void probe_answer(int fd, int code, const char *message, json_object *description)
{
	json_object *o = json_object_new_object();
	const char *text;

	json_object_object_add(o, "code", json_object_new_int(code));
	if (message)
		json_object_object_add(o, "message", json_object_new_string(message));
	if (description)
		json_object_object_add(o, "description", description);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	probe_step(fd, PROBE_RESULT);
	if (text)
		write_all(fd, text, strlen(text));
	json_object_put(o);
}

/* Runs in the child: everything load_file would do in this process, and the description. */
static void probe_child(int fd, void *ctx)
{
	const struct probe_job *job = ctx;
	const rlm_plugin_desc *desc;
	rlm_error err = RLM_ERROR_INIT;
	void *h;
	int rc = open_plugin(job->file, fd, &h, &desc, &err);

	if (rc == 0) {
		probe_step(fd, PROBE_CHECK);
		rc = check_desc(desc, job->kind, job->name, job->file, &err);
	}
	if (rc) {
		probe_answer(fd, rc, err.message, NULL);
		return;
	}
	if (job->describe)
		probe_step(fd, PROBE_DESCRIBE);
	probe_answer(fd, 0, NULL, job->describe ? job->describe(desc, job->file) : NULL);
	/* No dlclose: the child exits right away, and a plugin's destructors are its own risk. */
}

static const char *step_words(char step)
{
	switch (step) {
	case PROBE_DLOPEN: return "while being loaded (its constructors or its libraries')";
	case PROBE_ENTRY: return "in " RLM_PLUGIN_ENTRY_SYMBOL "()";
	case PROBE_CHECK: return "while its descriptor was read (a bad pointer in it?)";
	case PROBE_DESCRIBE: return "while its option specs were read (a bad pointer in them?)";
	}
	return "before it was loaded";
}

/* Turns what the child said into 0 (and *description) or an RLM_EPLUGIN naming the file. */
static int probe_verdict(const char *file, const rlm_probe_outcome *o, json_object **description,
                         rlm_error *err)
{
	const char *data = o->out.data ? o->out.data : "";
	const char *result = memchr(data, PROBE_RESULT, o->out.len);
	char step = 0, sig[32];
	json_object *answer, *v;
	int code;

	for (size_t i = 0; i < o->out.len && data + i != result; i++)
		step = data[i];
	if (o->timed_out)
		return rlm_error_set(
		        err, RLM_EPLUGIN,
		        "plugin %s: did not finish loading within %.0f s (stuck %s); it "
		        "was not loaded",
		        file, PROBE_TIMEOUT_S, step_words(step));
	if (o->truncated)
		return rlm_error_set(
		        err, RLM_EPLUGIN,
		        "plugin %s: its description is larger than %zu bytes; it was not "
		        "loaded",
		        file, PROBE_OUTPUT_MAX);
	if (!result || o->signal) {
		if (o->signal)
			return rlm_error_set(err, RLM_EPLUGIN,
			                     "plugin %s: crashed %s (%s); it was not loaded", file,
			                     step_words(step),
			                     rlm__signal_name(o->signal, sig, sizeof(sig)));
		return rlm_error_set(err, RLM_EPLUGIN,
		                     "plugin %s: crashed %s (the probe process exited with status "
		                     "%d); it was not loaded",
		                     file, step_words(step), o->exit_status);
	}
	answer = json_tokener_parse(result + 1);
	if (!answer || !json_object_object_get_ex(answer, "code", &v)) {
		json_object_put(answer);
		return rlm_error_set(err, RLM_EPLUGIN, "plugin %s: the probe's answer is garbled",
		                     file);
	}
	code = json_object_get_int(v);
	if (code) {
		rlm_error_set(err, code, "%s",
		              json_object_object_get_ex(answer, "message", &v)
		                      ? json_object_get_string(v)
		                      : "the plugin was refused");
		json_object_put(answer);
		return code;
	}
	if (description) {
		*description = json_object_object_get_ex(answer, "description", &v)
		                       ? json_object_get(v)
		                       : NULL;
	}
	json_object_put(answer);
	return 0;
}

int rlm__plugin_probe(const char *file, rlm_plugin_kind kind, const char *name,
                      rlm__describe_fn describe, json_object **description, rlm_error *err)
{
	struct probe_job job = {file, kind, name, describe};
	rlm_probe_outcome o;
	int rc;

	if (description)
		*description = NULL;
	rc = rlm__probe_run(probe_child, &job, PROBE_TIMEOUT_S, PROBE_OUTPUT_MAX, &o, err);
	if (rc == 0)
		rc = probe_verdict(file, &o, description, err);
	rlm_sb_free(&o.out);
	return rc;
}

static int same_file(const struct probed *p, const struct stat *st)
{
	return p->dev == st->st_dev && p->ino == st->st_ino && p->size == st->st_size &&
	       p->mtime.tv_sec == st->st_mtim.tv_sec && p->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Probes file once per version of it (caller holds the registry lock): a plugin loaded,
 * released and loaded again is not forked for twice. */
static int probe_once(const char *file, rlm_plugin_kind kind, const char *name, rlm_error *err)
{
	struct stat st;
	struct probed *p;
	int rc;

	if (stat(file, &st) != 0)
		return rlm_error_set(err, RLM_EPLUGIN, "plugin %s: %s", file, strerror(errno));
	for (p = probed_files; p; p = p->next)
		if (same_file(p, &st))
			return 0;
	rc = rlm__plugin_probe(file, kind, name, NULL, NULL, err);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (p) { /* out of memory only costs a probe next time */
		*p = (struct probed){probed_files, st.st_dev, st.st_ino, st.st_size, st.st_mtim};
		probed_files = p;
	}
	return 0;
}

/* Probes, dlopens and checks one file; caller holds the registry lock. */
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
	const rlm_plugin_desc *desc;
	void *h;
	int rc = probe_once(file, kind, name, err);
	if (!rc)
		rc = open_plugin(file, -1, &h, &desc, err);
	if (rc)
		return rc;
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

/* ---- Where plugins are looked for ---- */

/* The real path of the file that holds this code: librlm.so, or the executable that linked
 * librlm's objects statically. */
static int own_object(char *out, size_t size)
{
	Dl_info info;
	char real[PATH_MAX];

	if (!dladdr((void *)own_object, &info) || !info.dli_fname || !info.dli_fname[0] ||
	    !realpath(info.dli_fname, real)) {
		/* The main program may be reported by a name that does not resolve. */
		if (!realpath("/proc/self/exe", real))
			return 0;
	}
	return snprintf(out, size, "%s", real) < (int)size;
}

/* <directory of librlm>/rlm/plugins: the build tree puts librlm and the plugins in the same
 * layout as an install, so one rule finds the build's plugins from the build tree and the
 * install's from any prefix, however the install was moved. */
static void find_own_dir(void)
{
	char self[PATH_MAX], exe[PATH_MAX];

	if (!own_object(self, sizeof(self))) {
		snprintf(own_dir, sizeof(own_dir), "%s", RLM_INSTALL_PLUGIN_DIR);
		return;
	}
	if (realpath("/proc/self/exe", exe) && strcmp(exe, self) == 0) {
		snprintf(own_dir, sizeof(own_dir), "%s", RLM_BUILD_PLUGIN_DIR);
		return;
	}
	snprintf(own_dir, sizeof(own_dir), "%s/" RLM_PLUGIN_SUBDIR, dirname(self));
}

const char *rlm__plugin_own_dir(void)
{
	pthread_once(&own_dir_once, find_own_dir);
	return own_dir;
}

static int add_dir(char **dirs, size_t *n, size_t cap, const char *dir)
{
	if (!dir || !*dir || *n + 1 >= cap)
		return 0;
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(dirs[i], dir))
			return 0; /* the first occurrence wins */
	dirs[*n] = strdup(dir);
	return dirs[*n] ? (int)++*n : 0;
}

char **rlm__plugin_dirs(const rlm_config *cfg, size_t *explicit_count)
{
	size_t n = 0, cap = 64;
	char **dirs = calloc(cap, sizeof(char *));
	json_object *pp = cfg ? rlm__config_lookup(cfg, "plugin_path") : NULL;
	size_t np =
	        pp && json_object_is_type(pp, json_type_array) ? json_object_array_length(pp) : 0;
	char *env = getenv("RLM_PLUGIN_PATH") ? strdup(getenv("RLM_PLUGIN_PATH")) : NULL;
	char *save = NULL;

	if (!dirs) {
		free(env);
		return NULL;
	}
	for (size_t i = 0; i < np; i++)
		add_dir(dirs, &n, cap, json_object_get_string(json_object_array_get_idx(pp, i)));
	for (char *t = env ? strtok_r(env, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save))
		add_dir(dirs, &n, cap, t);
	free(env);
	if (explicit_count)
		*explicit_count = n;
	add_dir(dirs, &n, cap, rlm__plugin_own_dir());
	return dirs;
}

void rlm__plugin_dirs_free(char **dirs)
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
	char **dirs = rlm__plugin_dirs(cfg, &nexplicit);
	if (!dirs)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	const struct builtin *b = find_builtin(kind, name);
	int rc = RLM_ENOTFOUND;
	char path[PATH_MAX];
	for (size_t i = 0; dirs[i]; i++) {
		if (i == nexplicit && b)
			break; /* built-ins win over librlm's own plugin directory */
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
	rlm__plugin_dirs_free(dirs);
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
