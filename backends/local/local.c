/* local.c - the local-process backend: runs the driver as a child of the host process, in a
 * private work directory, with rlimits, a scrubbed environment, its own uid when rlm runs as
 * root, and best-effort namespaces (the launch itself is local_isolation.c). It only moves
 * bytes over a pipe pair; the core parses the frames. This is resource containment, not a
 * security boundary against hostile code.
 *
 * Built twice from the same sources: as rlm-backend-local.so exporting rlm_plugin_entry, and
 * with -DRLM_BUILTIN_LOCAL into librlm's built-in table as rlm_builtin_local_entry. It uses
 * only the host table, libc and json-c, never librlm.
 *
 * Threads: calls on one instance come one at a time, except interrupt(), which may come from
 * another thread while execute() runs. execute() may be re-entered from its own callback. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "local_internal.h"
#include "rlm/plugin.h"

#ifdef RLM_BUILTIN_LOCAL
#define LOCAL_ENTRY            rlm_builtin_local_entry
#define LOCAL_ENTRY_VISIBILITY LOCAL_HIDDEN
#else
#define LOCAL_ENTRY            rlm_plugin_entry
#define LOCAL_ENTRY_VISIBILITY RLM_PLUGIN_EXPORT
#endif

#define LOCAL_CHUNK           (64 * 1024)   /* read size on the channel and command pipes */
#define LOCAL_WRITE_MAX       (1024 * 1024) /* largest single write() to the driver */
#define LOCAL_CAPTURE_MAX     (64u << 20)   /* run_command keeps this much of each stream */
#define LOCAL_DEFAULT_START_S 30.0          /* when the launch gives no start timeout */
/* How often a quiet wait checks that the driver lives and that no cancel flag is set. */
#define LOCAL_POLL_SLICE_MS  100
#define LOCAL_SANDBOX_PATH   "/usr/local/bin:/usr/bin:/bin"
#define LOCAL_SCRIPT_NAME    ".rlm_driver.py"
#define LOCAL_PYC_NAME       ".rlm_driver.pyc" /* preferred: see local_pyc.c */
#define LOCAL_LOG_NAME       ".rlm_driver.log"
#define LOCAL_LOG_TAIL_LINES 20

/* Process-wide mutable state of this file: these two, and the prestart slots below (the
 * compiled driver kept per interpreter binary is local_pyc.c's). The counter spreads
 * automatic sandbox uids apart; the flag says the python fallback warning was given (once per
 * process, or per load of the .so, rather than once per interpreter of an eval run). */
static atomic_uint local_uid_counter;
static atomic_flag local_warned_python = ATOMIC_FLAG_INIT;

struct local {
	const rlm_host_api *host;
	struct local_config cfg;
	char *workdir;     /* NULL until provisioned; removed at shutdown */
	dev_t workdir_dev; /* what was made at workdir: only that is removed */
	ino_t workdir_ino;
	char *volume_dir;  /* NULL without a volume; kept */
	char *script_path; /* <workdir>/.rlm_driver.py */
	char *log_path;    /* <workdir>/.rlm_driver.log */
	char **env;        /* the sandbox environment, NULL-terminated; built at provisioning */
	/* The driver: pid 0 and fds -1 when none. pid is atomic because interrupt() may come
	 * from another thread while execute() runs. */
	atomic_int pid;
	int to_driver, from_driver;
	struct local_report setup; /* what the last launch reached */
	bool have_setup, warned_isolation;
	/* A process of the sandbox outlived its end (stuck in the kernel): the work dir is then
	 * left in place at shutdown rather than removed while something may still use it. */
	bool unended;
	unsigned tmp_seq;  /* temp file names of uploads */
	char *config_json; /* with prestart: the section this instance was made from */
	bool fresh_uid;    /* the uid was drawn for this instance (root, no sandbox_uid) */
	double spin_s;     /* spin_us, in seconds */
	bool spin_off;     /* the last wait outlasted the spin: wait without until one does not */
	/* Short exchanges' durations, with a spin (1) and without (0): spinning pays only when
	 * the driver runs on another CPU meanwhile, which the scheduler decides; see spin_pays. */
	double short_ewma[2];
	unsigned short_n[2], exchanges;
};

/* ---- small helpers --------------------------------------------------------------------- */

static int nomem(const struct local *l, rlm_error *err)
{
	return l->host->error_set(err, RLM_ENOMEM, "local backend: out of memory");
}

static void free_strv(const rlm_host_api *host, char **v)
{
	for (char **p = v; p && *p; p++)
		host->free(*p);
	host->free(v);
}

/* Sets "K=V" in the NULL-terminated list *v (replacing an entry with the same name); takes
 * ownership of entry even on failure. */
static int strv_setenv(const rlm_host_api *host, char ***v, char *entry)
{
	size_t klen = strcspn(entry, "=") + 1, n = 0;
	char **grown;

	for (; *v && (*v)[n]; n++) {
		if (!strncmp((*v)[n], entry, klen)) {
			host->free((*v)[n]);
			(*v)[n] = entry;
			return 0;
		}
	}
	grown = host->realloc(*v, (n + 2) * sizeof(char *));
	if (!grown) {
		host->free(entry);
		return -1;
	}
	grown[n] = entry;
	grown[n + 1] = NULL;
	*v = grown;
	return 0;
}

static bool path_under(const char *path, const char *dir)
{
	size_t n = dir ? strlen(dir) : 0;

	return n && !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* ---- configuration --------------------------------------------------------------------- */

static const char *const local_isolations[] = {"auto", "none", "namespaces", NULL};

#define LOCAL_LIMIT .flags = RLM_OPTF_MIN | RLM_OPTF_MAX, .min = 0, .max = INT32_MAX

/* Types, ranges and choices are the core's to check (ABI 1.2); what they cannot say (a volume
 * name's characters, env names, max_open_files' hole below 32) stays in the cfg_* below. */
static const rlm_option_def local_options[] = {
        RLM_OPTION_DEF(.name = "python", .type = RLM_OPT_STRING, .default_json = "\"python3\"",
                       .flags = RLM_OPTF_NONEMPTY,
                       .doc = "interpreter that runs the driver: a path, or a name looked up "
                              "on the host PATH"),
        RLM_OPTION_DEF(.name = "workdir_root", .type = RLM_OPT_STRING,
                       .doc = "where the private work dir rlm-XXXXXX is made (null: $TMPDIR, "
                              "else /tmp)"),
        RLM_OPTION_DEF(.name = "volume_name", .type = RLM_OPT_STRING, .flags = RLM_OPTF_NONEMPTY,
                       .doc = "durable volume <data dir>/volumes/<name> ([A-Za-z0-9._-]+), "
                              "exposed as VOLUME"),
        RLM_OPTION_DEF(.name = "memory_mb", .type = RLM_OPT_INT, .default_json = "4096",
                       LOCAL_LIMIT, .doc = "address space limit (RLIMIT_AS) in MiB; 0: none"),
        RLM_OPTION_DEF(.name = "max_processes", .type = RLM_OPT_INT, .default_json = "256",
                       LOCAL_LIMIT,
                       .doc = "processes and threads of the sandbox (RLIMIT_NPROC; needs its "
                              "own uid or user namespace to apply); 0: none"),
        RLM_OPTION_DEF(.name = "max_file_size_mb", .type = RLM_OPT_INT, .default_json = "1024",
                       LOCAL_LIMIT,
                       .doc = "largest file the sandbox may write (RLIMIT_FSIZE) in MiB; 0: "
                              "none"),
        RLM_OPTION_DEF(.name = "cpu_seconds", .type = RLM_OPT_INT, .default_json = "3600",
                       LOCAL_LIMIT, .doc = "CPU time of each process (RLIMIT_CPU); 0: none"),
        RLM_OPTION_DEF(.name = "max_open_files", .type = RLM_OPT_INT, .default_json = "1024",
                       LOCAL_LIMIT,
                       .doc = "open files per process (RLIMIT_NOFILE); 0: none, else at least "
                              "32"),
        RLM_OPTION_DEF(.name = "isolation", .type = RLM_OPT_STRING, .default_json = "\"auto\"",
                       .choices = local_isolations,
                       .doc = "\"auto\": namespaces when the host allows them, else process "
                              "limits only (reported in status); \"none\": process limits only; "
                              "\"namespaces\": fail without them"),
        RLM_OPTION_DEF(.name = "network", .type = RLM_OPT_BOOL, .default_json = "false",
                       .doc = "let the sandbox reach the network; false gives it a network "
                              "namespace with loopback only (when namespaces work)"),
        RLM_OPTION_DEF(.name = "env", .type = RLM_OPT_OBJECT, .default_json = "{}",
                       .doc = "extra environment variables of the sandbox"),
        RLM_OPTION_DEF(.name = "pass_env", .type = RLM_OPT_STRING_LIST, .default_json = "[]",
                       .flags = RLM_OPTF_NONEMPTY,
                       .doc = "names of host environment variables copied into the sandbox "
                              "(the only way a secret gets in)"),
        RLM_OPTION_DEF(.name = "prestart", .type = RLM_OPT_BOOL, .default_json = "false",
                       .doc = "keep one sandbox started ahead, so the next open with the same "
                              "config on the same thread is a handover instead of a Python start "
                              "(costs an idle sandbox per thread: a process and a work dir, ended "
                              "when the process exits)"),
        RLM_OPTION_DEF(.name = "spin_us", .type = RLM_OPT_INT, .default_json = "150",
                       .flags = RLM_OPTF_MIN | RLM_OPTF_MAX, .min = 0, .max = 10000,
                       .doc = "microseconds the host polls for the driver's answer before it "
                              "sleeps: a short cell's answer then costs no wake-up; each "
                              "interpreter times its short cells with and without and keeps "
                              "the faster way; 0: never"),
        RLM_OPTION_DEF(.name = "sandbox_uid", .type = RLM_OPT_INT,
                       .flags = RLM_OPTF_MIN | RLM_OPTF_MAX, .min = 0, .max = UINT32_MAX - 1.0,
                       .doc = "when rlm runs as root: the sandbox's uid (null: a fresh one per "
                              "instance from 200001 up; 0: stay root); the group is always "
                              "200000, which shares volumes"),
        {0},
};

/* A string option, host->alloc'ed, or def's copy when unset (null); *out NULL when both are. */
static int cfg_string(struct local *l, const rlm_options *o, const char *key, const char *def,
                      char **out, rlm_error *err)
{
	const char *s = l->host->opt_string(o, key);

	*out = NULL;
	if (!s)
		s = def;
	if (s && !(*out = l->host->str_dup(s)))
		return nomem(l, err);
	return 0;
}

/* An INT option, or def when unset (a null in the config keeps the default). */
static long cfg_int(struct local *l, const rlm_options *o, const char *key, long def)
{
	return l->host->opt_is_set(o, key) ? (long)l->host->opt_int(o, key) : def;
}

static int cfg_limits(struct local *l, const rlm_options *o, rlm_error *err)
{
	struct local_config *c = &l->cfg;

	c->memory_mb = cfg_int(l, o, "memory_mb", 4096);
	c->max_processes = cfg_int(l, o, "max_processes", 256);
	c->max_file_size_mb = cfg_int(l, o, "max_file_size_mb", 1024);
	c->cpu_seconds = cfg_int(l, o, "cpu_seconds", 3600);
	c->max_open_files = cfg_int(l, o, "max_open_files", 1024);
	/* Below this the interpreter cannot even import its standard library. */
	if (c->max_open_files && c->max_open_files < 32)
		return l->host->error_set(err, RLM_ECONFIG,
		                          "backends.local.max_open_files must be 0 or at least 32");
	return 0;
}

static void cfg_isolation(struct local *l, const rlm_options *o)
{
	const char *s = l->host->opt_string(o, "isolation");

	l->cfg.isolation = s && !strcmp(s, "none")         ? LOCAL_ISO_NONE
	                   : s && !strcmp(s, "namespaces") ? LOCAL_ISO_NAMESPACES
	                                                   : LOCAL_ISO_AUTO;
	l->cfg.network = l->host->opt_bool(o, "network");
	l->cfg.prestart = l->host->opt_bool(o, "prestart");
	l->spin_s = (double)cfg_int(l, o, "spin_us", 150) * 1e-6;
}

static bool env_name_ok(const char *name)
{
	return *name && !strchr(name, '=');
}

static int cfg_env(struct local *l, const rlm_options *o, rlm_error *err)
{
	json_object *env = json_tokener_parse(l->host->opt_object_json(o, "env"));
	int rc = 0;

	if (!env)
		return nomem(l, err);
	json_object_object_foreach(env, key, val)
	{
		json_type t = json_object_get_type(val);
		const char *s = json_object_get_string(val);
		char *entry;

		if (!env_name_ok(key))
			rc = l->host->error_set(err, RLM_ECONFIG,
			                        "backends.local.env: \"%s\" is not a valid "
			                        "variable name",
			                        key);
		else if ((t != json_type_string && t != json_type_int && t != json_type_double &&
		          t != json_type_boolean) ||
		         (t == json_type_string &&
		          strlen(s) != (size_t)json_object_get_string_len(val)))
			rc = l->host->error_set(err, RLM_ECONFIG,
			                        "backends.local.env.%s must be a string", key);
		else if (!(entry = l->host->str_printf("%s=%s", key, s)) ||
		         strv_setenv(l->host, &l->cfg.extra_env, entry) < 0)
			rc = nomem(l, err);
		if (rc)
			break;
	}
	json_object_put(env);
	return rc;
}

/* Secrets reach the sandbox only by name, read from the host environment now. */
static int cfg_pass_env(struct local *l, const rlm_options *o, rlm_error *err)
{
	const char *const *names = l->host->opt_string_list(o, "pass_env");

	for (size_t i = 0; names[i]; i++) {
		const char *name = names[i], *value;
		char *entry;

		if (!env_name_ok(name))
			return l->host->error_set(err, RLM_ECONFIG,
			                          "backends.local.pass_env[%zu] must be a variable "
			                          "name",
			                          i);
		value = getenv(name);
		if (!value) {
			l->host->log(RLM_LOG_WARN, LOCAL_NAME,
			             "pass_env: %s is not set in the host environment", name);
			continue;
		}
		entry = l->host->str_printf("%s=%s", name, value);
		if (!entry || strv_setenv(l->host, &l->cfg.extra_env, entry) < 0)
			return nomem(l, err);
	}
	return 0;
}

/* Whether id is inside our user namespace's map (always true when there is no such file). */
static bool id_mapped(const char *map_file, unsigned long id)
{
	FILE *f = fopen(map_file, "re");
	unsigned long inside, outside, count;
	bool found = false;

	if (!f)
		return true;
	while (!found && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
		found = id >= inside && id - inside < count;
	fclose(f);
	return found;
}

static bool sandbox_ids_mapped(const struct local_config *c)
{
	return id_mapped("/proc/self/uid_map", c->uid) && id_mapped("/proc/self/gid_map", c->gid);
}

/* As root the sandbox gets a uid of its own, so RLIMIT_NPROC (per uid, ignored for root)
 * really bounds it, and it cannot touch the host's files beyond what "others" may. */
/* A random seed for an automatic sandbox uid. Not a counter: when the plugin is loaded from
 * its .so it is unloaded between interpreters, a counter would start over, and the next
 * sandbox would inherit the uid (and the RLIMIT_NPROC count) of one whose processes, a fork
 * bomb's say, are still being reaped. Among 2^31 uids a clash of live sandboxes is negligible;
 * the counter only separates sandboxes made in the same instant without getrandom. */
static uint64_t fresh_uid_seed(void)
{
	uint64_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_nsec * 31u ^
	       (uint64_t)ts.tv_sec ^ atomic_fetch_add(&local_uid_counter, 1);
}

static int cfg_identity(struct local *l, const rlm_options *o, rlm_error *err)
{
	struct local_config *c = &l->cfg;
	int v = l->host->opt_is_set(o, "sandbox_uid"); /* in [0, UINT32_MAX) */
	int64_t n = l->host->opt_int(o, "sandbox_uid");

	c->gid = LOCAL_SANDBOX_GID;
	if (geteuid() != 0) {
		if (v)
			l->host->log(RLM_LOG_INFO, LOCAL_NAME,
			             "sandbox_uid is ignored: rlm does not run as root");
		return 0;
	}
	if (v) {
		c->uid = (uid_t)n;
		c->drop_uid = c->uid != 0;
		if (c->drop_uid && !sandbox_ids_mapped(c))
			return l->host->error_set(
			        err, RLM_ECONFIG,
			        "backends.local.sandbox_uid %u or group %u is not "
			        "mapped in this user namespace",
			        (unsigned)c->uid, (unsigned)c->gid);
		return 0;
	}
	c->uid = (uid_t)(LOCAL_SANDBOX_UID_BASE + fresh_uid_seed() % LOCAL_SANDBOX_UID_SPAN);
	c->drop_uid = sandbox_ids_mapped(c);
	l->fresh_uid = true;
	if (!c->drop_uid)
		l->host->log(
		        RLM_LOG_WARN, LOCAL_NAME,
		        "the sandbox runs as root: uid %u / gid %u are not mapped in this user "
		        "namespace (set backends.local.sandbox_uid to one that is)",
		        (unsigned)c->uid, (unsigned)c->gid);
	return 0;
}

static int python_from_path(struct local *l, const char *name, rlm_error *err)
{
	const char *env_path = getenv("PATH");
	char dir[PATH_MAX], cand[PATH_MAX], blocked[PATH_MAX] = "", blocker[PATH_MAX] = "";
	char blocked_by[PATH_MAX] = "";
	const char *p = env_path && *env_path ? env_path : LOCAL_SANDBOX_PATH;
	struct stat st;

	while (*p) {
		size_t n = strcspn(p, ":");
		bool usable = n > 0 && n < sizeof(dir) && p[0] == '/'; /* relative entries: never */

		if (usable) {
			memcpy(dir, p, n);
			dir[n] = '\0';
			usable = (size_t)snprintf(cand, sizeof(cand), "%s/%s", dir, name) <
			                 sizeof(cand) &&
			         stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
			         access(cand, X_OK) == 0;
		}
		/* An interpreter under root's home (pyenv shims) is of no use to the sandbox
		 * uid: keep looking, and say so if nothing better turns up. */
		if (usable &&
		    !rlm_local_sandbox_can_reach(&l->cfg, cand, true, blocker, sizeof(blocker))) {
			if (!blocked[0]) {
				snprintf(blocked, sizeof(blocked), "%s", cand);
				snprintf(blocked_by, sizeof(blocked_by), "%s", blocker);
			}
			usable = false;
		}
		if (usable) {
			if (!(l->cfg.python = l->host->str_dup(cand)))
				return nomem(l, err);
			if (blocked[0] && !atomic_flag_test_and_set(&local_warned_python))
				l->host->log(
				        RLM_LOG_WARN, LOCAL_NAME,
				        "python: %s is the first %s on the host PATH, but the "
				        "sandbox uid %u cannot run it (%s is in the way): using %s "
				        "instead; set backends.local.python to choose the "
				        "interpreter (or backends.local.sandbox_uid to 0)",
				        blocked, name, (unsigned)l->cfg.uid, blocked_by, cand);
			return 0;
		}
		p += n + (p[n] == ':');
	}
	if (blocked[0])
		return l->host->error_set(
		        err, RLM_ECONFIG,
		        "python: %s is the first %s on the host PATH, but the "
		        "sandbox uid %u cannot run it (%s is in the way); set "
		        "backends.local.python to one it can (e.g. /usr/bin/python3) "
		        "or backends.local.sandbox_uid to 0",
		        blocked, name, (unsigned)l->cfg.uid, blocked_by);
	return l->host->error_set(err, RLM_ECONFIG,
	                          "python: \"%s\" was not found on the host PATH (set "
	                          "backends.local.python to the interpreter's path)",
	                          name);
}

static int cfg_python(struct local *l, const rlm_options *o, rlm_error *err)
{
	char *name = NULL, cwd[PATH_MAX], blocker[PATH_MAX];
	int rc = cfg_string(l, o, "python", "python3", &name, err); /* not "": the core checks */

	if (rc)
		return rc;
	if (!strchr(name, '/')) {
		rc = python_from_path(l, name, err);
		l->host->free(name);
		return rc;
	}
	if (name[0] == '/') {
		l->cfg.python = name;
	} else {
		l->cfg.python =
		        getcwd(cwd, sizeof(cwd)) ? l->host->str_printf("%s/%s", cwd, name) : NULL;
		l->host->free(name);
		if (!l->cfg.python)
			return nomem(l, err);
	}
	if (access(l->cfg.python, X_OK) != 0)
		return l->host->error_set(err, RLM_ECONFIG, "python: cannot run %s: %s",
		                          l->cfg.python, strerror(errno));
	if (!rlm_local_sandbox_can_reach(&l->cfg, l->cfg.python, true, blocker, sizeof(blocker)))
		l->host->log(RLM_LOG_WARN, LOCAL_NAME,
		             "python %s may not be runnable by sandbox uid %u (%s is in the way)",
		             l->cfg.python, (unsigned)l->cfg.uid, blocker);
	return 0;
}

static int cfg_paths(struct local *l, const rlm_options *o, rlm_error *err)
{
	const char *tmp = getenv("TMPDIR");
	const char *v;
	int rc;

	rc = cfg_string(l, o, "workdir_root", tmp && *tmp == '/' ? tmp : "/tmp",
	                &l->cfg.workdir_root, err);
	if (!rc)
		rc = cfg_string(l, o, "volume_name", NULL, &l->cfg.volume_name, err);
	if (rc || !(v = l->cfg.volume_name))
		return rc;
	if (strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
	            strlen(v) ||
	    !strcmp(v, ".") || !strcmp(v, "..") || strlen(v) > 255)
		return l->host->error_set(err, RLM_ECONFIG,
		                          "backends.local.volume_name \"%s\" must be made of "
		                          "[A-Za-z0-9._-] (and not be \".\" or \"..\")",
		                          v);
	return 0;
}

static int cfg_read(struct local *l, const rlm_options *o, rlm_error *err)
{
	int rc;

	if (!(rc = cfg_identity(l, o, err)) && !(rc = cfg_python(l, o, err)) &&
	    !(rc = cfg_paths(l, o, err)) && !(rc = cfg_limits(l, o, err)) &&
	    !(rc = cfg_env(l, o, err)))
		rc = cfg_pass_env(l, o, err);
	if (!rc)
		cfg_isolation(l, o);
	return rc;
}

/* ---- provisioning: work dir, volume, environment --------------------------------------- */

/* mkdir -p; directories made here get mode. */
static int mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		buf[i] = i < len ? '/' : '\0';
	}
	return 0;
}

static int unreachable(struct local *l, const char *what, const char *path, const char *blocker,
                       const char *fix, rlm_error *err)
{
	return l->host->error_set(
	        err, RLM_ECONFIG,
	        "%s %s is out of reach of sandbox uid %u: %s is not searchable by "
	        "it (%s, or set backends.local.sandbox_uid to 0)",
	        what, path, (unsigned)l->cfg.uid, blocker, fix);
}

static int make_workdir(struct local *l, rlm_error *err)
{
	const struct local_config *c = &l->cfg;
	char *tmp, blocker[PATH_MAX];
	struct stat st;

	if (!(tmp = l->host->str_printf("%s/rlm-XXXXXX", c->workdir_root)))
		return nomem(l, err);
	if (!mkdtemp(tmp)) {
		int e = errno;
		l->host->free(tmp);
		return l->host->error_set(err, RLM_EIO, "cannot make a work directory in %s: %s",
		                          c->workdir_root, strerror(e));
	}
	l->workdir = tmp; /* from here on shutdown() removes it */
	if (lstat(tmp, &st) < 0) {
		int e = errno;
		return l->host->error_set(err, RLM_EIO, "cannot stat work directory %s: %s", tmp,
		                          strerror(e));
	}
	l->workdir_dev = st.st_dev;
	l->workdir_ino = st.st_ino;
	if (!(l->script_path = l->host->str_printf("%s/" LOCAL_SCRIPT_NAME, tmp)) ||
	    !(l->log_path = l->host->str_printf("%s/" LOCAL_LOG_NAME, tmp)) ||
	    !(tmp = l->host->str_printf("%s/tmp", l->workdir)))
		return nomem(l, err);
	if (mkdir(tmp, 0700) < 0 || (c->drop_uid && (chown(tmp, c->uid, c->gid) < 0 ||
	                                             chown(l->workdir, c->uid, c->gid) < 0))) {
		int e = errno;
		l->host->error_set(err, RLM_EIO, "cannot prepare work directory %s: %s", l->workdir,
		                   strerror(e));
		l->host->free(tmp);
		return RLM_EIO;
	}
	l->host->free(tmp);
	if (!rlm_local_sandbox_can_reach(c, l->workdir, false, blocker, sizeof(blocker)))
		return unreachable(l, "work directory", l->workdir, blocker,
		                   "set backends.local.workdir_root elsewhere", err);
	return 0;
}

/* As root the volume belongs to the shared sandbox group, setgid so everything made in it
 * does too, whichever instance (uid) made it: 02770 when made here; an existing one only
 * gains the group bits. */
static int share_volume(struct local *l, const char *dir, bool made)
{
	const struct local_config *c = &l->cfg;
	struct stat st;

	if (!c->drop_uid)
		return 0;
	if (stat(dir, &st) < 0)
		return -1;
	if (st.st_gid != c->gid && chown(dir, (uid_t)-1, c->gid) < 0)
		return -1;
	if (made)
		return chmod(dir, 02770);
	if ((st.st_mode & 02070) != 02070 && chmod(dir, (st.st_mode & 07777) | 02070) < 0)
		return -1;
	return 0;
}

static int make_volume(struct local *l, rlm_error *err)
{
	const char *data = l->host->data_dir ? l->host->data_dir() : NULL;
	char blocker[PATH_MAX], *dir, *parent;
	bool root = geteuid() == 0, made;

	if (!data || !*data)
		return l->host->error_set(err, RLM_ECONFIG,
		                          "volume_name is set but the host has no data directory");
	if (!(parent = l->host->str_printf("%s/volumes", data)) ||
	    !(dir = l->host->str_printf("%s/%s", parent, l->cfg.volume_name))) {
		l->host->free(parent);
		return nomem(l, err);
	}
	l->volume_dir = dir;
	/* Parents root makes are traversable but not listable, so one sandbox cannot list the
	 * names of the other volumes. */
	made = mkdirs(parent, root ? 0711 : 0700) == 0 && mkdir(dir, 0700) == 0;
	l->host->free(parent);
	if ((!made && errno != EEXIST) || share_volume(l, dir, made) < 0)
		return l->host->error_set(err, RLM_EIO, "cannot prepare volume directory %s: %s",
		                          dir, strerror(errno));
	if (!rlm_local_sandbox_can_reach(&l->cfg, dir, false, blocker, sizeof(blocker)))
		return unreachable(l, "volume directory", dir, blocker,
		                   "move the rlm data directory, e.g. with XDG_DATA_HOME", err);
	return 0;
}

/* Nothing from the host environment gets in except env and pass_env: no API keys. */
static int build_env(struct local *l, rlm_error *err)
{
	const char *wd = l->workdir;
	char *base[] = {
	        l->host->str_printf("PATH=%s", LOCAL_SANDBOX_PATH),
	        l->host->str_printf("HOME=%s", wd),
	        l->host->str_printf("LANG=C.UTF-8"),
	        l->host->str_printf("PYTHONUNBUFFERED=1"),
	        l->host->str_printf("PYTHONDONTWRITEBYTECODE=1"),
	        l->host->str_printf("TMPDIR=%s/tmp", wd),
	};
	char **env = NULL;
	int rc = 0;

	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		if (!base[i] || strv_setenv(l->host, &env, base[i]) < 0)
			rc = -1;
		base[i] = NULL;
	}
	for (char **e = l->cfg.extra_env; !rc && e && *e; e++) {
		char *copy = l->host->str_dup(*e);
		if (!copy || strv_setenv(l->host, &env, copy) < 0)
			rc = -1;
	}
	if (rc) {
		free_strv(l->host, env);
		return nomem(l, err);
	}
	l->env = env;
	return 0;
}

/* Idempotent: start() and run_command() both need the sandbox to exist. */
static int provision(struct local *l, rlm_error *err)
{
	int rc = 0;

	if (!l->workdir)
		rc = make_workdir(l, err);
	else if (!l->script_path || !l->log_path)
		rc = l->host->error_set(err, RLM_EBACKEND, "the work directory was not set up");
	if (!rc && l->cfg.volume_name && !l->volume_dir)
		rc = make_volume(l, err);
	if (!rc && !l->env)
		rc = build_env(l, err);
	return rc;
}

/* ---- files (driver script, upload, download) ------------------------------------------- */

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len > LOCAL_WRITE_MAX ? LOCAL_WRITE_MAX : len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes name in dirfd through a temp file and a rename, so no reader sees half a file and
 * nothing is followed through a symlink the sandbox planted. */
static int write_atomic(struct local *l, int dirfd, const char *name, const void *data, size_t len,
                        bool give_to_sandbox, const char *shown, rlm_error *err)
{
	char tmp[NAME_MAX + 1];
	int fd = -1, e = 0;

	for (int tries = 0; fd < 0 && tries < 100; tries++) {
		snprintf(tmp, sizeof(tmp), ".rlm-upload-%ld-%u", (long)getpid(), l->tmp_seq++);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		return l->host->error_set(err, RLM_EIO, "cannot write %s: %s", shown,
		                          strerror(errno));
	if (write_all(fd, data, len) < 0 || fchmod(fd, 0644) < 0 ||
	    (give_to_sandbox && fchown(fd, l->cfg.uid, l->cfg.gid) < 0))
		e = errno;
	if (close(fd) < 0 && !e)
		e = errno;
	if (!e && renameat(dirfd, tmp, dirfd, name) < 0)
		e = errno;
	if (!e)
		return 0;
	unlinkat(dirfd, tmp, 0);
	return l->host->error_set(err, e == EISDIR ? RLM_EINVAL : RLM_EIO, "cannot write %s: %s",
	                          shown, strerror(e));
}

/* A sandbox under another uid than the host's gets the compiled driver as a hard link to the
 * host's cache file rather than a copy: it can read that file (0644) but never write it (not
 * its owner, no capabilities), so one sandbox cannot plant code in the next, and an open
 * writes no 111 KB copy that its close then frees. A sandbox under the host's own uid could
 * write the shared file, so it gets a copy. Through a temp name and a rename like
 * write_atomic(); the link is checked to be the very file the bytes came from. */
static int link_shared(struct local *l, int dirfd, const struct local_pyc *pyc)
{
	char tmp[NAME_MAX + 1];
	struct stat st;

	if (!l->cfg.drop_uid || l->cfg.uid == geteuid() || !pyc->shareable || !pyc->path)
		return -1;
	snprintf(tmp, sizeof(tmp), ".rlm-upload-%ld-%u", (long)getpid(), l->tmp_seq++);
	if (linkat(AT_FDCWD, pyc->path, dirfd, tmp, 0) < 0)
		return -1; /* another file system, too many links: a copy then */
	if (fstatat(dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    st.st_dev == pyc->dev && st.st_ino == pyc->ino && st.st_uid == geteuid() &&
	    (st.st_mode & 07777) == 0644 && renameat(dirfd, tmp, dirfd, LOCAL_PYC_NAME) == 0)
		return 0;
	unlinkat(dirfd, tmp, 0);
	return -1;
}

static int write_driver_script(struct local *l, rlm_error *err)
{
	int dirfd, rc;

	if (!l->host->driver_script || !l->host->driver_script_len)
		return l->host->error_set(err, RLM_EINVAL, "the host gave no driver script");
	dirfd = open(l->workdir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return l->host->error_set(err, RLM_EIO, "cannot open %s: %s", l->workdir,
		                          strerror(errno));
	struct local_pyc pyc;
	if (rlm_local_driver_pyc(l->host, l->cfg.python, &pyc) == 0) {
		char *path = l->host->str_printf("%s/" LOCAL_PYC_NAME, l->workdir);
		rc = !path ? nomem(l, err)
		     : link_shared(l, dirfd, &pyc) == 0
		             ? 0
		             : write_atomic(l, dirfd, LOCAL_PYC_NAME, pyc.bytes, pyc.len, false,
		                            path, err);
		if (rc == 0) {
			l->host->free(l->script_path);
			l->script_path = path;
			close(dirfd);
			return 0;
		}
		l->host->free(path);
	}
	rc = write_atomic(l, dirfd, LOCAL_SCRIPT_NAME, l->host->driver_script,
	                  l->host->driver_script_len, false, l->script_path, err);
	close(dirfd);
	return rc;
}

/* A remote path resolved to the directory holding its last component. */
struct rpath {
	int dirfd;
	char name[NAME_MAX + 1];
	bool sandboxed; /* inside the work dir or the volume: owned by the sandbox uid */
};

/* Relative paths are normalized lexically under the work dir; ".." may not climb out. */
static int normalize_relative(struct local *l, const char *path, char *out, size_t size,
                              rlm_error *err)
{
	size_t len = 0;

	out[0] = '\0';
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && !strncmp(p, "..", 2)) {
			if (!len)
				return l->host->error_set(err, RLM_EINVAL,
				                          "%s: a relative path may not leave the "
				                          "work directory",
				                          path);
			while (len && out[len - 1] != '/')
				len--;
			len = len ? len - 1 : 0;
			out[len] = '\0';
		} else if (n && !(n == 1 && *p == '.')) {
			if (len + n + 2 > size || n > NAME_MAX)
				return l->host->error_set(err, RLM_EINVAL, "%s: path too long",
				                          path);
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
			out[len] = '\0';
		}
		p += n + (p[n] == '/');
	}
	return 0;
}

static int open_error(struct local *l, const char *verb, const char *path, int e, rlm_error *err)
{
	int code = e == ENOENT ? RLM_ENOTFOUND : e == ELOOP || e == ENOTDIR ? RLM_EINVAL : RLM_EIO;

	return l->host->error_set(err, code, "%s %s: %s%s", verb, path, strerror(e),
	                          e == ELOOP ? " (symbolic links under the work directory are not "
	                                       "followed when the sandbox has its own uid)"
	                                     : "");
}

/* Walks to the parent directory of path with openat(), making missing directories when
 * create. As root, links under the work dir are not followed: the sandbox owns that tree. */
static int resolve(struct local *l, const char *path, bool create, const char *verb,
                   struct rpath *rp, rlm_error *err)
{
	bool relative = path[0] != '/';
	int nofollow = relative && l->cfg.drop_uid ? O_NOFOLLOW : 0;
	char norm[PATH_MAX];
	const char *p = path;
	int rc;

	rp->dirfd = -1;
	rp->sandboxed = relative || path_under(path, l->workdir) || path_under(path, l->volume_dir);
	if (relative) {
		if ((rc = normalize_relative(l, path, norm, sizeof(norm), err)))
			return rc;
		p = norm;
	}
	rp->dirfd = open(relative ? l->workdir : "/", O_DIRECTORY | O_CLOEXEC);
	if (rp->dirfd < 0)
		return open_error(l, verb, path, errno, err);
	for (;;) {
		size_t n = strcspn(p, "/");
		int fd;

		if (p[n] == '\0') {
			if (!n || n > NAME_MAX || !strcmp(p, ".") || !strcmp(p, ".."))
				return l->host->error_set(err, RLM_EINVAL, "%s %s: not a file name",
				                          verb, path);
			memcpy(rp->name, p, n + 1);
			return 0;
		}
		if (n) {
			char comp[NAME_MAX + 1];
			if (n > NAME_MAX)
				return open_error(l, verb, path, ENAMETOOLONG, err);
			memcpy(comp, p, n);
			comp[n] = '\0';
			if (create && mkdirat(rp->dirfd, comp, 0755) == 0 && rp->sandboxed &&
			    l->cfg.drop_uid)
				fchownat(rp->dirfd, comp, l->cfg.uid, l->cfg.gid,
				         AT_SYMLINK_NOFOLLOW);
			fd = openat(rp->dirfd, comp, O_DIRECTORY | O_CLOEXEC | nofollow);
			if (fd < 0)
				return open_error(l, verb, path, errno, err);
			close(rp->dirfd);
			rp->dirfd = fd;
		}
		p += n + 1;
	}
}

static int local_upload(void *instance, const void *data, size_t len, const char *remote_path,
                        rlm_error *err)
{
	struct local *l = instance;
	struct rpath rp;
	int rc;

	if (!remote_path || !*remote_path || (!data && len))
		return l->host->error_set(err, RLM_EINVAL, "upload: no path or no data");
	if ((rc = provision(l, err)))
		return rc;
	rc = resolve(l, remote_path, true, "upload:", &rp, err);
	if (!rc)
		rc = write_atomic(l, rp.dirfd, rp.name, data ? data : "", len,
		                  rp.sandboxed && l->cfg.drop_uid, remote_path, err);
	if (rp.dirfd >= 0)
		close(rp.dirfd);
	return rc;
}

/* Reads all of fd into a host->alloc'ed buffer (one spare byte, so never NULL). */
static int read_all(struct local *l, int fd, size_t hint, rlm_buf *out)
{
	size_t cap = hint + 1, len = 0;
	char *buf = l->host->alloc(cap), *grown;

	while (buf) {
		ssize_t n;
		if (len + 1 == cap) {
			if (cap > SIZE_MAX / 2 || !(grown = l->host->realloc(buf, cap * 2)))
				break;
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			l->host->free(buf);
			return -1;
		}
		if (n == 0) {
			out->data = buf;
			out->len = len;
			return 0;
		}
		len += (size_t)n;
	}
	l->host->free(buf);
	errno = ENOMEM;
	return -1;
}

static int local_download(void *instance, const char *remote_path, rlm_buf *out, rlm_error *err)
{
	struct local *l = instance;
	struct rpath rp;
	struct stat st;
	int rc, fd = -1;

	if (out)
		out->data = NULL, out->len = 0;
	if (!remote_path || !*remote_path || !out)
		return l->host->error_set(err, RLM_EINVAL, "download: no path");
	if (remote_path[0] != '/' && !l->workdir)
		return l->host->error_set(err, RLM_ENOTFOUND,
		                          "download: %s: no such file (the "
		                          "sandbox was not started)",
		                          remote_path);
	rc = resolve(l, remote_path, false, "download:", &rp, err);
	if (!rc) {
		fd = openat(rp.dirfd, rp.name,
		            O_RDONLY | O_CLOEXEC | O_NONBLOCK |
		                    (remote_path[0] != '/' && l->cfg.drop_uid ? O_NOFOLLOW : 0));
		if (fd < 0)
			rc = open_error(l, "download:", remote_path, errno, err);
	}
	if (!rc && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)))
		rc = l->host->error_set(err, RLM_EINVAL, "download: %s is not a regular file",
		                        remote_path);
	if (!rc && read_all(l, fd, (size_t)st.st_size, out) < 0)
		rc = l->host->error_set(err, errno == ENOMEM ? RLM_ENOMEM : RLM_EIO,
		                        "download: cannot read %s: %s", remote_path,
		                        strerror(errno));
	if (fd >= 0)
		close(fd);
	if (rp.dirfd >= 0)
		close(rp.dirfd);
	return rc;
}

/* ---- the driver process ---------------------------------------------------------------- */

static void set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Ends a sandbox process (the driver or a command) and everything it started, and reaps it.
 * Only a process stuck in the kernel can survive that: then the sandbox counts as unended. */
static void end_sandbox_process(struct local *l, pid_t pid, const char *what, int *status)
{
	if (rlm_local_kill_reap(pid, LOCAL_END_TIMEOUT_S, status) == 0)
		return;
	l->unended = true;
	l->host->log(RLM_LOG_WARN, LOCAL_NAME,
	             "a process of the sandbox (session %d, the %s's) was still alive %g s after "
	             "SIGKILL, or /proc could not be read to check: the work directory %s will be "
	             "left in place",
	             (int)pid, what, LOCAL_END_TIMEOUT_S, l->workdir ? l->workdir : "(none)");
}

/* Ends the driver and every process it started, and reaps it; keeps the work dir and the
 * volume. The driver leaves at once when its channel closes (os._exit, nothing to flush), so
 * there is no grace period to wait out: SIGKILL does the same, sooner. */
static void stop_driver(struct local *l)
{
	pid_t pid = atomic_exchange(&l->pid, 0); /* interrupt() no longer targets it */

	if (l->to_driver >= 0)
		close(l->to_driver);
	if (l->from_driver >= 0)
		close(l->from_driver);
	l->to_driver = l->from_driver = -1;
	if (pid > 0)
		end_sandbox_process(l, pid, "driver", NULL);
}

static void log_isolation(struct local *l, pid_t pid)
{
	char level[96], reason[256];

	rlm_local_describe_isolation(&l->setup, l->cfg.isolation, level, sizeof(level), reason,
	                             sizeof(reason));
	l->host->log(RLM_LOG_INFO, LOCAL_NAME, "driver pid %d as uid %u in %s, isolation %s",
	             (int)pid, (unsigned)(l->cfg.drop_uid ? l->cfg.uid : geteuid()), l->workdir,
	             level);
	if (l->cfg.isolation == LOCAL_ISO_AUTO && reason[0] && !l->warned_isolation) {
		l->warned_isolation = true;
		l->host->log(RLM_LOG_WARN, LOCAL_NAME,
		             "namespaces are not available (%s): the sandbox has process limits "
		             "only (isolation %s)",
		             reason, level);
	}
}

static int launch_driver(struct local *l, double timeout_s, const volatile int *cancel,
                         rlm_error *err)
{
	int to[2] = {-1, -1}, from[2] = {-1, -1}, rc;
	char *argv[12];
	int argc = 0;
	struct local_spawn plan;
	pid_t pid = 0;

	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
		if (errno == EMFILE)
			rc = rlm_local_emfile(l->host, "cannot create the driver's pipes", err);
		else
			rc = l->host->error_set(err, RLM_EIO,
			                        "cannot create the driver's pipes: %s",
			                        strerror(errno));
		goto out;
	}
	set_nonblock(to[1]);
	set_nonblock(from[0]);
	fcntl(to[1], F_SETPIPE_SZ, 1 << 20); /* fewer wakeups for big requests; best effort */
	fcntl(from[0], F_SETPIPE_SZ, 1 << 20);
	argv[argc++] = l->cfg.python;
	argv[argc++] = (char *)"-S"; /* the driver runs `site` when a cell first needs it */
	argv[argc++] = l->script_path;
	argv[argc++] = (char *)"--in-fd";
	argv[argc++] = (char *)"3";
	argv[argc++] = (char *)"--out-fd";
	argv[argc++] = (char *)"4";
	argv[argc++] = (char *)"--workdir";
	argv[argc++] = l->workdir;
	if (l->volume_dir) {
		argv[argc++] = (char *)"--volume";
		argv[argc++] = l->volume_dir;
	}
	argv[argc] = NULL;
	memset(&plan, 0, sizeof(plan));
	plan.path = l->cfg.python;
	plan.argv = argv;
	plan.envp = l->env;
	plan.cwd = l->workdir;
	plan.chan_in = to[0];
	plan.chan_out = from[1];
	plan.out_fd = plan.err_fd = -1;
	plan.log_path = l->log_path;
	rlm_local_plan_sandbox(&plan, &l->cfg);
	rc = rlm_local_spawn(l->host, &plan, l->host->now() + timeout_s, cancel, &pid, &l->setup,
	                     err);
	if (rc)
		goto out;
	l->have_setup = true;
	l->to_driver = to[1];
	l->from_driver = from[0];
	to[1] = from[0] = -1;
	atomic_store(&l->pid, pid);
	log_isolation(l, pid);
out:
	for (int i = 0; i < 2; i++) {
		if (to[i] >= 0)
			close(to[i]);
		if (from[i] >= 0)
			close(from[i]);
	}
	return rc;
}

/* ---- prestart: one sandbox started ahead ---------------------------------------------- */

/* With prestart, every start also makes the next sandbox: a whole instance, provisioned and
 * launched by the very code above (its own work dir, fresh uid, namespaces, limits, scrubbed
 * environment), whose driver is left to come up while the host works. The next start with
 * the same config takes it over, and the core then reads the "ready" it has already written:
 * opening an interpreter costs a handover rather than a Python start. A spare is handed only
 * to the thread that forked its driver, whose exit the parent-death signal follows, and only
 * in the process that made it: each thread has its own. Process-wide mutable state: these
 * slots, besides the two at the top of the file. */
/* Threads holding a spare at once; past that, opens start their own. */
#define LOCAL_SPARES_MAX 64

struct spare_slot {
	struct local *spare; /* started, not handed over yet; NULL: a free slot */
	pid_t owner;         /* getpid() of the process that made it */
	pthread_t thread;    /* the thread that forked its driver; one slot per thread */
	pid_t tid;           /* and its kernel id: a new thread may get a dead one's pthread_t */
};

static struct {
	pthread_mutex_t lock;
	struct spare_slot slot[LOCAL_SPARES_MAX];
} local_spares = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void local_shutdown(void *instance);
static int local_is_alive(void *instance);

static bool same_strv(char **a, char **b)
{
	size_t i = 0;

	for (; a && b && a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return (!a || !a[i]) && (!b || !b[i]);
}

/* A new instance with l's configuration, for a spare: the same section, read once, and a
 * uid of its own when l's was drawn for it. NULL when memory is out. */
static struct local *local_clone(const struct local *l)
{
	const rlm_host_api *host = l->host;
	struct local *s = host->alloc(sizeof(*s));
	bool ok;

	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->host = host;
	s->to_driver = s->from_driver = -1;
	atomic_init(&s->pid, 0);
	s->cfg = l->cfg;
	s->cfg.python = s->cfg.workdir_root = s->cfg.volume_name = NULL;
	s->cfg.extra_env = NULL;
	s->fresh_uid = l->fresh_uid;
	ok = (s->cfg.python = host->str_dup(l->cfg.python)) &&
	     (!l->cfg.workdir_root || (s->cfg.workdir_root = host->str_dup(l->cfg.workdir_root))) &&
	     (!l->cfg.volume_name || (s->cfg.volume_name = host->str_dup(l->cfg.volume_name))) &&
	     (s->config_json = host->str_dup(l->config_json));
	for (char **e = l->cfg.extra_env; ok && e && *e; e++) {
		char *copy = host->str_dup(*e);
		ok = copy && strv_setenv(host, &s->cfg.extra_env, copy) == 0;
	}
	if (!ok) {
		local_shutdown(s);
		return NULL;
	}
	if (s->fresh_uid) {
		s->cfg.uid =
		        (uid_t)(LOCAL_SANDBOX_UID_BASE + fresh_uid_seed() % LOCAL_SANDBOX_UID_SPAN);
		s->cfg.drop_uid = sandbox_ids_mapped(&s->cfg);
	}
	return s;
}

/* Whether spare s is what l would have started: the same section, and the same values read
 * from the host when each was made (python from PATH, TMPDIR, pass_env). */
static bool spare_fits(const struct local *s, const struct local *l)
{
	return s->config_json && l->config_json && !strcmp(s->config_json, l->config_json) &&
	       !strcmp(s->cfg.python, l->cfg.python) &&
	       !strcmp(s->cfg.workdir_root, l->cfg.workdir_root) &&
	       s->cfg.drop_uid == l->cfg.drop_uid && same_strv(s->cfg.extra_env, l->cfg.extra_env);
}

/* A spare another process made (we are its forked child): its driver is not our child and
 * its work dir not ours to remove, so only our copies of its fds and memory go. */
static void spare_forget(struct local *s)
{
	if (s->to_driver >= 0)
		close(s->to_driver);
	if (s->from_driver >= 0)
		close(s->from_driver);
	s->to_driver = s->from_driver = -1;
	atomic_store(&s->pid, 0);
	s->host->free(s->workdir);
	s->workdir = NULL;
	local_shutdown(s);
}

static void spare_discard(struct local *s, pid_t owner)
{
	if (!s)
		return;
	if (owner == getpid())
		local_shutdown(s); /* ends its sandbox like any close */
	else
		spare_forget(s);
}

/* Empties the slots whose spare can no longer be handed over: made by another process (we
 * are its forked child) or dead (the thread that made it exited, and the parent-death signal
 * ended it). Called with the lock held; they go in out for the caller to discard unlocked. */
static int spares_collect_stale(struct spare_slot *out)
{
	int n = 0;

	for (int i = 0; i < LOCAL_SPARES_MAX; i++) {
		struct spare_slot *sl = &local_spares.slot[i];
		if (sl->spare && (sl->owner != getpid() || !local_is_alive(sl->spare))) {
			out[n++] = *sl;
			sl->spare = NULL;
		}
	}
	return n;
}

static void spares_discard(const struct spare_slot *v, int n)
{
	for (int i = 0; i < n; i++)
		spare_discard(v[i].spare, v[i].owner);
}

/* This thread's slot, else a free one, else NULL. Called with the lock held. */
static struct spare_slot *spares_slot_of_this_thread(bool or_free)
{
	struct spare_slot *free_slot = NULL;

	for (int i = 0; i < LOCAL_SPARES_MAX; i++) {
		struct spare_slot *sl = &local_spares.slot[i];
		if (sl->spare && pthread_equal(sl->thread, pthread_self()) && sl->tid == gettid())
			return sl;
		if (!sl->spare && !free_slot)
			free_slot = sl;
	}
	return or_free ? free_slot : NULL;
}

/* Takes this thread's spare when it fits l; the caller owns what it returns. */
static struct local *spare_take(const struct local *l)
{
	struct spare_slot stale[LOCAL_SPARES_MAX], *sl;
	struct local *s = NULL;
	int n;

	pthread_mutex_lock(&local_spares.lock);
	n = spares_collect_stale(stale);
	sl = spares_slot_of_this_thread(false);
	if (sl && spare_fits(sl->spare, l)) {
		s = sl->spare;
		sl->spare = NULL;
	}
	pthread_mutex_unlock(&local_spares.lock);
	spares_discard(stale, n);
	if (s && !local_is_alive(s)) {
		spare_discard(s, getpid());
		s = NULL;
	}
	return s;
}

/* l, never provisioned, becomes the spare's sandbox; what l held goes with the spare. */
static bool spare_adopt(struct local *l)
{
	struct local *s = spare_take(l), tmp;

	if (!s)
		return false;
	memcpy(&tmp, l, sizeof(tmp));
	memcpy(l, s, sizeof(*l));
	memcpy(s, &tmp, sizeof(*s));
	local_shutdown(s);
	l->host->log(RLM_LOG_DEBUG, LOCAL_NAME, "took over the sandbox started ahead (pid %d)",
	             (int)atomic_load(&l->pid));
	return true;
}

/* Starts the next sandbox for l's config and puts it in this thread's slot (replacing one
 * made for another config; a restart finds one for its own there already). Best effort: a
 * failure, or no free slot, only means the next open starts its own. */
static void spare_make(const struct local *l)
{
	struct spare_slot stale[LOCAL_SPARES_MAX + 1], *sl;
	rlm_error e = RLM_ERROR_INIT;
	struct local *s = NULL;
	bool room;
	int n;

	pthread_mutex_lock(&local_spares.lock);
	n = spares_collect_stale(stale);
	sl = spares_slot_of_this_thread(true);
	room = sl && !(sl->spare && spare_fits(sl->spare, l));
	pthread_mutex_unlock(&local_spares.lock);
	spares_discard(stale, n);
	if (!room || !(s = local_clone(l)))
		return;
	s->warned_isolation = true; /* the open that takes it over has said it already */
	/* The launch waits for the child's setup report, so its parent-death signal is set while
	 * this thread lives: a child still setting up when its thread exits would be handed to
	 * another thread of the process, and tied to that one instead. */
	if (provision(s, &e) || write_driver_script(s, &e) ||
	    launch_driver(s, LOCAL_DEFAULT_START_S, NULL, &e)) {
		l->host->log(RLM_LOG_DEBUG, LOCAL_NAME, "no sandbox started ahead: %s", e.message);
		local_shutdown(s);
		return;
	}
	n = 0;
	pthread_mutex_lock(&local_spares.lock);
	sl = spares_slot_of_this_thread(true);
	if (sl && sl->spare)
		stale[n++] = *sl; /* this thread's previous spare, for another config */
	if (sl) {
		sl->spare = s;
		sl->owner = getpid();
		sl->thread = pthread_self();
		sl->tid = gettid();
	} else {
		stale[n].spare = s; /* the slots filled up meanwhile */
		stale[n++].owner = getpid();
	}
	pthread_mutex_unlock(&local_spares.lock);
	spares_discard(stale, n);
}

/* At exit (or when the .so is unloaded) every spare is ended like a closed interpreter: its
 * processes killed, its work dir removed. */
__attribute__((destructor)) static void spare_end(void)
{
	struct spare_slot all[LOCAL_SPARES_MAX];
	int n = 0;

	pthread_mutex_lock(&local_spares.lock);
	for (int i = 0; i < LOCAL_SPARES_MAX; i++) {
		if (local_spares.slot[i].spare)
			all[n++] = local_spares.slot[i];
		local_spares.slot[i].spare = NULL;
	}
	pthread_mutex_unlock(&local_spares.lock);
	spares_discard(all, n);
}

static int local_start(void *instance, const rlm_launch *launch, rlm_error *err)
{
	struct local *l = instance;
	double timeout_s = LOCAL_DEFAULT_START_S;
	const volatile int *cancel = RLM_HAS_FIELD(launch, cancel) ? launch->cancel : NULL;
	int rc;

	if (RLM_HAS_FIELD(launch, start_timeout_s) && launch->start_timeout_s > 0)
		timeout_s = launch->start_timeout_s;
	/* A restart after a hang or a crash: the old driver goes first, state and all. */
	stop_driver(l);
	if (cancel && *cancel)
		return l->host->error_set(err, RLM_ECANCELLED, "start was cancelled");
	/* A first start (nothing provisioned yet) may take the sandbox started ahead; a restart
	 * keeps its own work dir. */
	if (!(l->cfg.prestart && !l->workdir && spare_adopt(l)) &&
	    ((rc = provision(l, err)) || (rc = write_driver_script(l, err)) ||
	     (rc = launch_driver(l, timeout_s, cancel, err))))
		return rc;
	if (l->cfg.prestart)
		spare_make(l);
	return 0;
}

/* The last lines of the driver's log (Python's own fatal errors), for error messages. */
static void log_tail(const struct local *l, char *buf, size_t size)
{
	int fd = l->log_path ? open(l->log_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	struct stat st;
	off_t from;
	ssize_t n;
	size_t start, lines = 0;

	buf[0] = '\0';
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	from = st.st_size > (off_t)size - 1 ? st.st_size - (off_t)size + 1 : 0;
	n = pread(fd, buf, size - 1, from);
	close(fd);
	if (n <= 0)
		return;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	for (start = (size_t)n; start > 0; start--) {
		if (buf[start - 1] == '\n' && ++lines == LOCAL_LOG_TAIL_LINES)
			break;
	}
	/* A cut at the front of the window would start mid-line: skip to the next line. */
	if (start == 0 && from > 0 && strchr(buf, '\n'))
		start = (size_t)(strchr(buf, '\n') - buf) + 1;
	memmove(buf, buf + start, (size_t)n - start + 1);
}

/* Which of the sandbox's limits killed a process, from how it died and the CPU time it used
 * (an empty string when none can be told). RLIMIT_CPU sends SIGXCPU at the soft limit and
 * SIGKILL at the hard one; both are cpu_seconds here, so the kernel's SIGKILL comes at once. */
static void limit_that_killed(const struct local *l, pid_t pid, int status, char *buf, size_t size)
{
	const struct local_config *c = &l->cfg;
	int sig = status >= 0 && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	double cpu = sig == SIGKILL || sig == SIGXCPU ? rlm_local_cpu_seconds(pid) : -1;

	buf[0] = '\0';
	/* The kernel checks RLIMIT_CPU against the exact run time, while /proc reports CPU time
	 * sampled at clock ticks and scaled: under load the two differ by several percent (0.93 s
	 * was seen for a 1 s kill), so a SIGKILL at 80 % of the limit or more is the limit's. */
	if (c->cpu_seconds > 0 && (sig == SIGXCPU || (sig == SIGKILL && cpu >= 0 &&
	                                              cpu + 0.05 >= 0.8 * (double)c->cpu_seconds)))
		snprintf(buf, size,
		         ": it reached the cpu_seconds limit (%ld s of CPU time, RLIMIT_CPU; "
		         "backends.local.cpu_seconds)",
		         c->cpu_seconds);
	else if (sig == SIGXFSZ && c->max_file_size_mb > 0)
		snprintf(buf, size,
		         ": it wrote past the max_file_size_mb limit (%ld MiB, RLIMIT_FSIZE; "
		         "backends.local.max_file_size_mb)",
		         c->max_file_size_mb);
}

/* The channel closed (or the driver vanished): say how it ended and what it last said. */
static int driver_died(struct local *l, rlm_error *err)
{
	pid_t pid = atomic_load(&l->pid);
	char how[128], limit[160] = "", tail[640];
	int status = -1;

	/* The channel closes a moment before the process is a zombie. */
	if (rlm_local_wait_exit(pid, 0.2, &status)) {
		rlm_local_describe_status(status, how, sizeof(how));
		limit_that_killed(l, pid, status, limit, sizeof(limit));
	} else {
		snprintf(how, sizeof(how), "closed its channel but is still running (pid %d)",
		         (int)pid);
	}
	log_tail(l, tail, sizeof(tail));
	return l->host->error_set(err, RLM_EBACKEND, "driver %s%s%s%s", how, limit,
	                          tail[0] ? "; last lines of " LOCAL_LOG_NAME ":\n" : "", tail);
}

/* ---- execute: per-call state only, so a nested execute() from on_data is safe ---------- */

enum { XFER_MORE = 1 };

struct xfer {
	const char *out; /* bytes to write: the request, then replies */
	size_t out_len, out_off;
	char *backlog; /* read while writing, handed to on_data once the write is done */
	size_t backlog_len, backlog_cap;
	char *chunk;
	bool spin; /* spin_read may spin in this exchange (spin_pays said so before it began) */
};

/* A write() that cannot raise SIGPIPE, without touching process-wide signal dispositions:
 * SIGPIPE is blocked in this thread for the call, and one it raised is consumed. When the
 * process ignores SIGPIPE (the CLI and most servers do), a write cannot raise it and the
 * three system calls of that are skipped; one sigaction() query says so. (A thread that
 * turns SIG_IGN back into SIG_DFL while this write runs is the one case not covered: the
 * disposition is read just before the write.) */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	struct sigaction now;
	bool was_pending;
	ssize_t n;
	int saved;

	if (sigaction(SIGPIPE, NULL, &now) == 0 && now.sa_handler == SIG_IGN &&
	    !(now.sa_flags & SA_SIGINFO))
		return write(fd, buf, len);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	n = write(fd, buf, len);
	saved = errno;
	if (n < 0 && saved == EPIPE && !was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	if (!sigismember(&old, SIGPIPE))
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return n;
}

static bool exchange_cancelled(const rlm_exchange *ex)
{
	return RLM_HAS_FIELD(ex, cancel) && ex->cancel && *ex->cancel;
}

/* Polls in slices so a driver that died while something else holds its pipe, and a cancel
 * flag set by another thread, are noticed. Returns > 0 when an fd is ready, 0 after a quiet
 * slice, RLM_ETIMEOUT past the deadline, RLM_ECANCELLED once the exchange is cancelled. */
static int wait_fds(struct local *l, const rlm_exchange *ex, struct pollfd *pfd, nfds_t n)
{
	int ms = LOCAL_POLL_SLICE_MS, r;

	if (exchange_cancelled(ex))
		return RLM_ECANCELLED;
	/* A deadline of 0 or less is taken as "none": a real one is a positive clock value. */
	if (ex->deadline > 0) {
		double left = ex->deadline - l->host->now();
		if (left <= 0)
			return RLM_ETIMEOUT;
		if (left * 1000 < ms)
			ms = (int)(left * 1000) + 1;
	}
	r = poll(pfd, n, ms);
	return r < 0 ? 0 : r;
}

static int cancelled(struct local *l, rlm_error *err)
{
	return l->host->error_set(err, RLM_ECANCELLED, "the exchange was cancelled");
}

static int quiet_slice(struct local *l, rlm_error *err)
{
	int status;

	return rlm_local_exited(atomic_load(&l->pid), &status) ? driver_died(l, err) : XFER_MORE;
}

static int timed_out(struct local *l, rlm_error *err)
{
	return l->host->error_set(err, RLM_ETIMEOUT,
	                          "the driver did not finish the exchange before the deadline");
}

/* Reads what the driver wrote into the backlog (during a write). */
static int drain_to_backlog(struct local *l, struct xfer *x, rlm_error *err)
{
	ssize_t n;

	if (x->backlog_cap - x->backlog_len < LOCAL_CHUNK) {
		size_t cap = x->backlog_cap ? x->backlog_cap * 2 : 4 * LOCAL_CHUNK;
		char *grown = l->host->realloc(x->backlog, cap);
		if (!grown)
			return nomem(l, err);
		x->backlog = grown;
		x->backlog_cap = cap;
	}
	n = read(l->from_driver, x->backlog + x->backlog_len, LOCAL_CHUNK);
	if (n > 0)
		x->backlog_len += (size_t)n;
	else if (n == 0)
		return driver_died(l, err);
	else if (errno != EAGAIN && errno != EINTR)
		return l->host->error_set(err, RLM_EBACKEND, "reading from the driver: %s",
		                          strerror(errno));
	return XFER_MORE;
}

/* One write() of what is left of x->out: XFER_MORE, or an error once the driver is gone. */
static int write_some(struct local *l, struct xfer *x, rlm_error *err)
{
	size_t left = x->out_len - x->out_off;
	ssize_t n = write_nosigpipe(l->to_driver, x->out + x->out_off,
	                            left > LOCAL_WRITE_MAX ? LOCAL_WRITE_MAX : left);

	if (n > 0)
		x->out_off += (size_t)n;
	else if (n < 0 && errno == EPIPE)
		return driver_died(l, err);
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		return l->host->error_set(err, RLM_EBACKEND, "writing to the driver: %s",
		                          strerror(errno));
	return XFER_MORE;
}

/* Writes x->out in full; while drain, keeps reading so neither side blocks the other. The
 * first write goes without a poll (the channel is non-blocking and almost always has room
 * for a whole request): polls are for a full pipe. */
static int xfer_write(struct local *l, const rlm_exchange *ex, struct xfer *x, bool drain,
                      rlm_error *err)
{
	int rc;

	if (x->out_off < x->out_len) {
		if (exchange_cancelled(ex))
			return cancelled(l, err);
		if (ex->deadline > 0 && ex->deadline <= l->host->now())
			return timed_out(l, err);
		if ((rc = write_some(l, x, err)) != XFER_MORE)
			return rc;
	}
	while (x->out_off < x->out_len) {
		struct pollfd pfd[2] = {{l->to_driver, POLLOUT, 0}, {l->from_driver, POLLIN, 0}};

		rc = wait_fds(l, ex, pfd, drain ? 2 : 1);
		if (rc == RLM_ETIMEOUT)
			return timed_out(l, err);
		if (rc == RLM_ECANCELLED)
			return cancelled(l, err);
		if (rc == 0) {
			if ((rc = quiet_slice(l, err)) != XFER_MORE)
				return rc;
			continue;
		}
		if (drain && pfd[1].revents && (rc = drain_to_backlog(l, x, err)) != XFER_MORE)
			return rc;
		if (pfd[0].revents && (rc = write_some(l, x, err)) != XFER_MORE)
			return rc;
	}
	return XFER_MORE;
}

static int xfer_deliver(struct local *l, const rlm_exchange *ex, struct xfer *x, const char *data,
                        size_t len, rlm_error *err)
{
	const char *reply = NULL;
	size_t reply_len = 0;
	int act = ex->on_data(ex->ctx, data, len, &reply, &reply_len);

	if (act < 0) {
		if (err && !err->code)
			l->host->error_set(err, act, "the exchange was aborted by its callback");
		return act;
	}
	if (reply && reply_len) {
		x->out = reply;
		x->out_len = reply_len;
		x->out_off = 0;
	}
	if (act != RLM_EXCHANGE_DONE)
		return XFER_MORE;
	/* A reply that comes with DONE is still sent; nothing is read after it, since nobody
	 * would take those bytes. */
	if (x->out_off < x->out_len && (act = xfer_write(l, ex, x, false, err)) != XFER_MORE)
		return act;
	return 0;
}

/* Threads of this process spinning in spin_read now, and how many may: one per CPU but one
 * (none on one CPU), since a spin only pays when the driver has a CPU of its own meanwhile. */
static atomic_int local_spinners;

static int spin_cap(void)
{
	static atomic_int cap_plus_one; /* 0: not read yet */
	int c = atomic_load(&cap_plus_one);

	if (!c) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c = n > 1 ? (int)n : 1;
		atomic_store(&cap_plus_one, c);
	}
	return c - 1;
}

#define SPIN_SHORT_S 0.002 /* exchanges longer than this say nothing about spinning */
#define SPIN_EXPLORE 32    /* every this many exchanges, the other way is tried again */
#define SPIN_WARMUP  4     /* short exchanges each way before the averages decide */

/* Whether this exchange may spin. Spinning saves the wake-ups of a short cell's answer when
 * the driver runs on another CPU meanwhile, and costs when it has to share this thread's CPU
 * (the spin yields, but the driver still waits its turn): which one happens is the
 * scheduler's choice and the machine's load. So each instance measures: it times its short
 * exchanges both ways, spins while that is faster on average, and tries the other way every
 * SPIN_EXPLORE exchanges. */
static bool spin_pays(struct local *l)
{
	unsigned n = ++l->exchanges;
	int better;

	if (l->spin_s <= 0 || l->spin_off || spin_cap() < 1)
		return false;
	if (l->short_n[1] < SPIN_WARMUP)
		return true;
	if (l->short_n[0] < SPIN_WARMUP)
		return false;
	better = l->short_ewma[1] <= l->short_ewma[0];
	return n % SPIN_EXPLORE == 0 ? !better : better;
}

static void spin_learn(struct local *l, bool spun, double seconds)
{
	double *avg = &l->short_ewma[spun];

	if (seconds > SPIN_SHORT_S)
		return;
	*avg = l->short_n[spun]++ ? 0.8 * *avg + 0.2 * seconds : seconds;
}

/* Before a wait sleeps: reads for up to spin_s (and never past the deadline) in case the
 * driver answers that soon, yielding the CPU between reads, so a driver on the same CPU
 * runs. Sleeping costs the driver's write a wake-up of this thread and this thread the
 * wake-up's latency: tens of microseconds each on a VM, most of a short cell's round trip.
 * Returns > 0 (bytes read into x->chunk), 0 (the driver closed the channel) or -1 (nothing
 * came: sleep). A spin that comes up empty turns spinning off for this instance until a
 * wait ends within spin_s again, so a run of long cells costs no spinning. */
static ssize_t spin_read(struct local *l, const rlm_exchange *ex, struct xfer *x)
{
	double now, until;
	ssize_t n = -1;

	if (!x->spin || l->spin_off || exchange_cancelled(ex))
		return -1;
	if (atomic_fetch_add(&local_spinners, 1) >= spin_cap()) {
		atomic_fetch_sub(&local_spinners, 1);
		return -1;
	}
	now = l->host->now();
	until = now + l->spin_s;
	if (ex->deadline > 0 && ex->deadline < until)
		until = ex->deadline;
	while (now < until) {
		n = read(l->from_driver, x->chunk, LOCAL_CHUNK);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
		sched_yield();
		now = l->host->now();
	}
	atomic_fetch_sub(&local_spinners, 1);
	if (n < 0)
		l->spin_off = true;
	return n;
}

static int xfer_read(struct local *l, const rlm_exchange *ex, struct xfer *x, rlm_error *err)
{
	struct pollfd pfd = {l->from_driver, POLLIN, 0};
	double t0 = l->spin_off ? l->host->now() : 0;
	ssize_t n = spin_read(l, ex, x);
	int rc;

	if (n > 0)
		return xfer_deliver(l, ex, x, x->chunk, (size_t)n, err);
	if (n == 0)
		return driver_died(l, err);
	rc = wait_fds(l, ex, &pfd, 1);
	if (rc > 0 && t0 > 0 && l->host->now() - t0 <= l->spin_s)
		l->spin_off = false; /* an answer within spin_s: spin again next time */

	if (rc == RLM_ETIMEOUT)
		return timed_out(l, err);
	if (rc == RLM_ECANCELLED)
		return cancelled(l, err);
	if (rc == 0)
		return quiet_slice(l, err);
	n = read(l->from_driver, x->chunk, LOCAL_CHUNK);
	if (n > 0)
		return xfer_deliver(l, ex, x, x->chunk, (size_t)n, err);
	if (n == 0)
		return driver_died(l, err);
	if (errno == EAGAIN || errno == EINTR)
		return XFER_MORE;
	return l->host->error_set(err, RLM_EBACKEND, "reading from the driver: %s",
	                          strerror(errno));
}

static int xfer_run(struct local *l, const rlm_exchange *ex, struct xfer *x, rlm_error *err)
{
	for (;;) {
		int rc;

		if (x->out_off < x->out_len) {
			rc = xfer_write(l, ex, x, true, err);
		} else if (x->backlog_len) {
			size_t len = x->backlog_len;
			x->backlog_len = 0; /* on_data may hand back a reply: that refills it */
			rc = xfer_deliver(l, ex, x, x->backlog, len, err);
		} else {
			rc = xfer_read(l, ex, x, err);
		}
		if (rc != XFER_MORE)
			return rc;
	}
}

static int local_execute(void *instance, const rlm_exchange *ex, rlm_error *err)
{
	struct local *l = instance;
	struct xfer x;
	int rc;

	if (!ex || ex->struct_size < offsetof(rlm_exchange, ctx) + sizeof(ex->ctx) ||
	    !ex->on_data || (!ex->request && ex->request_len))
		return l->host->error_set(err, RLM_EINVAL, "execute: incomplete exchange");
	if (l->to_driver < 0 || l->from_driver < 0)
		return l->host->error_set(err, RLM_EBACKEND, "the driver is not running");
	memset(&x, 0, sizeof(x));
	x.out = ex->request;
	x.out_len = ex->request_len;
	x.spin = spin_pays(l);
	if (!(x.chunk = l->host->alloc(LOCAL_CHUNK)))
		return nomem(l, err);
	double t0 = l->host->now();
	rc = xfer_run(l, ex, &x, err);
	if (rc == 0)
		spin_learn(l, x.spin, l->host->now() - t0);
	l->host->free(x.chunk);
	l->host->free(x.backlog);
	return rc;
}

/* ---- interrupt, is_alive --------------------------------------------------------------- */

static int local_interrupt(void *instance, rlm_error *err)
{
	struct local *l = instance;
	pid_t pid = atomic_load(&l->pid);

	if (pid <= 0)
		return l->host->error_set(err, RLM_EBACKEND, "interrupt: no driver is running");
	/* The driver only, not its group: SIGINT becomes KeyboardInterrupt in the cell. */
	if (kill(pid, SIGINT) < 0)
		return l->host->error_set(err, RLM_EBACKEND, "interrupt: kill(%d, SIGINT): %s",
		                          (int)pid, strerror(errno));
	return 0;
}

static int local_is_alive(void *instance)
{
	struct local *l = instance;
	pid_t pid = atomic_load(&l->pid);
	int status;

	return pid > 0 && !rlm_local_exited(pid, &status);
}

/* ---- run_command ----------------------------------------------------------------------- */

struct capture {
	char *data;
	size_t len, cap;
	bool truncated;
};

static int capture_add(struct local *l, struct capture *c, const char *data, size_t n)
{
	if (c->len + n > LOCAL_CAPTURE_MAX) {
		c->truncated = true;
		n = LOCAL_CAPTURE_MAX - c->len;
	}
	if (c->len + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : LOCAL_CHUNK;
		char *grown;
		while (cap < c->len + n + 1)
			cap *= 2;
		if (!(grown = l->host->realloc(c->data, cap)))
			return -1;
		c->data = grown;
		c->cap = cap;
	}
	memcpy(c->data + c->len, data, n);
	c->len += n;
	c->data[c->len] = '\0';
	return 0;
}

/* The sandbox environment plus the command's own entries (which win). Pointers are borrowed
 * from both lists; only the array is allocated. */
static char **command_env(struct local *l, const rlm_command *cmd)
{
	size_t n = 0, extra = 0;
	char **env;

	while (l->env[n])
		n++;
	while (cmd->env && cmd->env[extra])
		extra++;
	if (!(env = l->host->alloc((n + extra + 1) * sizeof(char *))))
		return NULL;
	memcpy(env, l->env, (n + 1) * sizeof(char *));
	for (size_t i = 0; i < extra; i++) {
		const char *e = cmd->env[i];
		size_t k = strcspn(e, "=") + 1, j = 0;
		while (j < n && strncmp(env[j], e, k))
			j++;
		env[j] = (char *)e;
		if (j == n)
			env[++n] = NULL;
	}
	return env;
}

/* argv[0] looked up on the sandbox's PATH, as a shell would (into buf), or as given. */
static const char *command_path(char *const *env, const char *name, char *buf, size_t size)
{
	const char *path = LOCAL_SANDBOX_PATH;

	if (strchr(name, '/'))
		return name;
	for (char *const *e = env; *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		struct stat st;
		if (n && p[0] == '/' &&
		    (size_t)snprintf(buf, size, "%.*s/%s", (int)n, p, name) < size &&
		    stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return buf;
		p += n + (p[n] == ':');
	}
	return name;
}

static void close_capture_fd(int *fd)
{
	close(*fd);
	*fd = -1;
}

/* Reads one chunk from whichever capture pipe poll() found ready; closes it at EOF. */
static void command_read(struct local *l, int fds[2], const struct pollfd pfd[2], char *chunk,
                         size_t chunk_size, struct capture cap[2])
{
	for (int i = 0; i < 2; i++) {
		ssize_t n;
		if (fds[i] < 0 || !pfd[i].revents)
			continue;
		n = read(fds[i], chunk, chunk_size);
		if (n > 0 && capture_add(l, &cap[i], chunk, (size_t)n) < 0)
			cap[i].truncated = true;
		else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			close_capture_fd(&fds[i]);
	}
}

/* Reads both pipes until they close. When the command's leader exits, times out or is
 * cancelled, everything of its session is ended (rlm_local_kill_reap) so helpers it left
 * behind neither hold the pipes open nor outlive it; what they wrote is still read. Returns
 * 0, or RLM_ECANCELLED when *cancel was set. */
static int command_collect(struct local *l, pid_t pid, int fds[2], double timeout_s,
                           const volatile int *cancel, struct capture cap[2], int *status,
                           int *timed)
{
	double deadline = timeout_s > 0 ? l->host->now() + timeout_s : 0, drain_until = 0;
	char *chunk = l->host->alloc(LOCAL_CHUNK), small[4096];
	bool ended = false, was_cancelled = false;

	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd pfd[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
		double now = l->host->now();
		int ms = LOCAL_POLL_SLICE_MS;

		if (!ended) {
			bool expired = deadline > 0 && now >= deadline;
			was_cancelled = cancel && *cancel;
			if (expired || was_cancelled || rlm_local_exited(pid, status)) {
				*timed = expired && !was_cancelled;
				end_sandbox_process(l, pid, "command", status);
				ended = true;
				drain_until = l->host->now() + 2;
			} else if (deadline > 0 && (deadline - now) * 1000 < ms) {
				ms = (int)((deadline - now) * 1000) + 1;
			}
		}
		if (ended && l->host->now() >= drain_until)
			break; /* something outside the sandbox holds the pipes */
		poll(pfd, 2, ms);
		command_read(l, fds, pfd, chunk ? chunk : small,
		             chunk ? LOCAL_CHUNK : sizeof(small), cap);
	}
	l->host->free(chunk);
	/* The pipes close a moment before the leader is a zombie: let it finish exiting (a
	 * command that closed them and runs on is waited for until its timeout, or a cancel). */
	while (!ended && !rlm_local_wait_exit(pid, LOCAL_POLL_SLICE_MS / 1000.0, status)) {
		if ((was_cancelled = cancel && *cancel) ||
		    (deadline > 0 && l->host->now() >= deadline)) {
			*timed = !was_cancelled;
			break;
		}
	}
	if (!ended)
		end_sandbox_process(l, pid, "command", status);
	return was_cancelled ? RLM_ECANCELLED : 0;
}

static int command_spawn(struct local *l, const rlm_command *cmd, char **env, int out[2],
                         int errp[2], pid_t *pid, rlm_error *err)
{
	struct local_spawn plan;
	struct local_report setup;
	char path[PATH_MAX], *cwd = NULL;
	int rc;

	if (cmd->cwd && cmd->cwd[0] != '/')
		cwd = l->host->str_printf("%s/%s", l->workdir, cmd->cwd);
	else
		cwd = l->host->str_dup(cmd->cwd ? cmd->cwd : l->workdir);
	if (!cwd)
		return nomem(l, err);
	memset(&plan, 0, sizeof(plan));
	plan.path = command_path(env, cmd->argv[0], path, sizeof(path));
	plan.argv = (char *const *)cmd->argv;
	plan.envp = env;
	plan.cwd = cwd;
	plan.chan_in = plan.chan_out = -1;
	plan.out_fd = out[1];
	plan.err_fd = errp[1];
	rlm_local_plan_sandbox(&plan, &l->cfg);
	rc = rlm_local_spawn(l->host, &plan, l->host->now() + LOCAL_DEFAULT_START_S,
	                     RLM_HAS_FIELD(cmd, cancel) ? cmd->cancel : NULL, pid, &setup, err);
	l->host->free(cwd);
	return rc;
}

static int command_result(struct local *l, struct capture cap[2], int status, int timed,
                          rlm_command_result *res, rlm_error *err)
{
	for (int i = 0; i < 2; i++) {
		if (!cap[i].data && capture_add(l, &cap[i], "", 0) < 0)
			return nomem(l, err);
		if (cap[i].truncated)
			l->host->log(RLM_LOG_WARN, LOCAL_NAME, "run_command: %s cut at %u bytes",
			             i ? "stderr" : "stdout", LOCAL_CAPTURE_MAX);
	}
	res->timed_out = timed;
	if (timed)
		res->exit_code = -SIGKILL;
	else if (status >= 0 && WIFEXITED(status))
		res->exit_code = WEXITSTATUS(status);
	else if (status >= 0 && WIFSIGNALED(status))
		res->exit_code = -WTERMSIG(status);
	else
		res->exit_code = -1;
	res->out.data = cap[0].data;
	res->out.len = cap[0].len;
	res->err.data = cap[1].data;
	res->err.len = cap[1].len;
	cap[0].data = cap[1].data = NULL;
	return 0;
}

static int local_run_command(void *instance, const rlm_command *cmd, rlm_command_result *res,
                             rlm_error *err)
{
	struct local *l = instance;
	int out[2] = {-1, -1}, errp[2] = {-1, -1}, fds[2], status = -1, timed = 0, rc;
	struct capture cap[2];
	char **env = NULL;
	pid_t pid = 0;

	if (!cmd || cmd->struct_size < offsetof(rlm_command, timeout_s) + sizeof(double) || !res ||
	    res->struct_size < offsetof(rlm_command_result, err) + sizeof(rlm_buf) || !cmd->argv ||
	    !cmd->argv[0] || !*cmd->argv[0])
		return l->host->error_set(err, RLM_EINVAL, "run_command: no command");
	if ((rc = provision(l, err)))
		return rc;
	memset(cap, 0, sizeof(cap));
	if (!(env = command_env(l, cmd)))
		return nomem(l, err);
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		rc = l->host->error_set(err, RLM_EIO, "run_command: pipe: %s", strerror(errno));
		goto out;
	}
	set_nonblock(out[0]);
	set_nonblock(errp[0]);
	rc = command_spawn(l, cmd, env, out, errp, &pid, err);
	close(out[1]);
	close(errp[1]);
	out[1] = errp[1] = -1;
	if (rc)
		goto out;
	fds[0] = out[0];
	fds[1] = errp[0];
	rc = command_collect(l, pid, fds, cmd->timeout_s,
	                     RLM_HAS_FIELD(cmd, cancel) ? cmd->cancel : NULL, cap, &status, &timed);
	out[0] = fds[0];
	errp[0] = fds[1];
	if (rc == RLM_ECANCELLED)
		rc = l->host->error_set(err, RLM_ECANCELLED, "run_command: cancelled");
	else
		rc = command_result(l, cap, status, timed, res, err);
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
		l->host->free(cap[i].data);
	}
	l->host->free(env);
	return rc;
}

/* ---- control("status") ----------------------------------------------------------------- */

static json_object *json_string_or_null(const char *s)
{
	return s && *s ? json_object_new_string(s) : NULL;
}

static json_object *status_limits(const struct local *l)
{
	const struct local_config *c = &l->cfg;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "memory_mb", json_object_new_int64(c->memory_mb));
	json_object_object_add(o, "max_processes", json_object_new_int64(c->max_processes));
	json_object_object_add(o, "max_processes_applied",
	                       l->have_setup ? json_object_new_boolean(l->setup.nproc_applied)
	                                     : NULL);
	json_object_object_add(o, "max_file_size_mb", json_object_new_int64(c->max_file_size_mb));
	json_object_object_add(o, "cpu_seconds", json_object_new_int64(c->cpu_seconds));
	json_object_object_add(o, "max_open_files", json_object_new_int64(c->max_open_files));
	return o;
}

static json_object *status_json(struct local *l)
{
	json_object *o = json_object_new_object();
	char level[96] = "", reason[256] = "";
	pid_t pid = atomic_load(&l->pid);
	bool alive = local_is_alive(l);

	if (l->have_setup)
		rlm_local_describe_isolation(&l->setup, l->cfg.isolation, level, sizeof(level),
		                             reason, sizeof(reason));
	json_object_object_add(o, "backend", json_object_new_string(LOCAL_NAME));
	json_object_object_add(o, "isolation", json_string_or_null(level));
	json_object_object_add(o, "reason", json_string_or_null(reason));
	json_object_object_add(
	        o, "network",
	        l->have_setup ? json_object_new_boolean(!(l->setup.ns_flags & CLONE_NEWNET))
	                      : NULL);
	json_object_object_add(o, "pid", pid > 0 ? json_object_new_int(pid) : NULL);
	json_object_object_add(o, "alive", json_object_new_boolean(alive));
	json_object_object_add(o, "uid",
	                       json_object_new_int64(l->cfg.drop_uid ? l->cfg.uid : geteuid()));
	json_object_object_add(o, "gid",
	                       json_object_new_int64(l->cfg.drop_uid ? l->cfg.gid : getegid()));
	json_object_object_add(o, "python", json_object_new_string(l->cfg.python));
	json_object_object_add(o, "workdir", json_string_or_null(l->workdir));
	json_object_object_add(o, "volume", json_string_or_null(l->volume_dir));
	json_object_object_add(o, "limits", status_limits(l));
	return o;
}

/* Control op "spares": the driver pids of this process's live sandboxes started ahead
 * (prestart), {"spares": [pid, ...]}. They are sandboxes no interpreter holds yet, ended when
 * taken over and closed, or at exit; rlm-conformance's leftover check does not count them. */
static json_object *spares_json(void)
{
	json_object *doc = json_object_new_object(), *list = json_object_new_array();

	if (!doc || !list || json_object_object_add(doc, "spares", list)) {
		json_object_put(doc);
		json_object_put(list);
		return NULL;
	}
	pthread_mutex_lock(&local_spares.lock);
	for (int i = 0; i < LOCAL_SPARES_MAX; i++) {
		const struct spare_slot *sl = &local_spares.slot[i];
		pid_t pid = sl->spare ? atomic_load(&sl->spare->pid) : 0;
		if (pid > 0 && sl->owner == getpid())
			json_object_array_add(list, json_object_new_int(pid));
	}
	pthread_mutex_unlock(&local_spares.lock);
	return doc;
}

static int local_control(void *instance, const char *op, const char *arg_json, rlm_buf *out,
                         rlm_error *err)
{
	struct local *l = instance;
	json_object *doc;
	const char *text;
	size_t len;

	(void)arg_json;
	if (!op || (strcmp(op, "status") != 0 && strcmp(op, "spares") != 0))
		return l->host->error_set(err, RLM_ENOTSUP, "local backend: no control op \"%s\"",
		                          op ? op : "(null)");
	if (!out)
		return l->host->error_set(err, RLM_EINVAL, "control: no output buffer");
	if (!(doc = strcmp(op, "spares") == 0 ? spares_json() : status_json(l)) ||
	    !(text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN))) {
		json_object_put(doc);
		return nomem(l, err);
	}
	len = strlen(text);
	out->data = l->host->alloc(len + 1);
	if (out->data) {
		memcpy(out->data, text, len + 1);
		out->len = len;
	}
	json_object_put(doc);
	return out->data ? 0 : nomem(l, err);
}

/* ---- create, shutdown ------------------------------------------------------------------ */

/* Only once nothing of the sandbox runs (stop_driver and run_command ended it all), and then
 * without following any link the sandbox left (local_remove.c). */
static void remove_workdir(struct local *l)
{
	if (l->unended)
		return; /* end_sandbox_process() said so already */
	if (rlm_local_remove_tree(l->workdir, l->workdir_dev, l->workdir_ino) < 0)
		l->host->log(RLM_LOG_WARN, LOCAL_NAME, "could not remove work directory %s: %s",
		             l->workdir, strerror(errno));
}

static void local_shutdown(void *instance)
{
	struct local *l = instance;
	const rlm_host_api *host;

	if (!l)
		return;
	host = l->host;
	stop_driver(l);
	if (l->workdir)
		remove_workdir(l);
	host->free(l->workdir);
	host->free(l->volume_dir);
	host->free(l->script_path);
	host->free(l->log_path);
	free_strv(host, l->env);
	host->free(l->cfg.python);
	host->free(l->cfg.workdir_root);
	host->free(l->cfg.volume_name);
	free_strv(host, l->cfg.extra_env);
	host->free(l->config_json);
	host->free(l);
}

static int local_create_opts(const rlm_host_api *host, const rlm_options *opts, void **instance,
                             rlm_error *err)
{
	struct local *l;
	int rc;

	if (!instance)
		return host->error_set(err, RLM_EINVAL, "create: no instance pointer");
	*instance = NULL;
	if (!(l = host->alloc(sizeof(*l))))
		return host->error_set(err, RLM_ENOMEM, "local backend: out of memory");
	memset(l, 0, sizeof(*l));
	l->host = host;
	l->to_driver = l->from_driver = -1;
	atomic_init(&l->pid, 0);
	if ((rc = cfg_read(l, opts, err))) {
		local_shutdown(l);
		return rc;
	}
	if (l->cfg.prestart &&
	    !(l->config_json = host->str_dup(host->opt_object_json(opts, NULL)))) {
		local_shutdown(l);
		return host->error_set(err, RLM_ENOMEM, "local backend: out of memory");
	}
	*instance = l;
	return 0;
}

/* ---- the descriptor -------------------------------------------------------------------- */

static const rlm_backend_ops local_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_backend_ops),
        .start = local_start,
        .execute = local_execute,
        .upload = local_upload,
        .download = local_download,
        .shutdown = local_shutdown,
        .interrupt = local_interrupt,
        .run_command = local_run_command,
        .is_alive = local_is_alive,
        .control = local_control,
        .create_opts = local_create_opts,
};

static const rlm_plugin_desc local_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_BACKEND,
        .name = LOCAL_NAME,
        .summary = "the driver as a local child process: private work dir, rlimits, scrubbed "
                   "env, own uid as root, best-effort namespaces",
        .version = "1.0.0",
        /* No RLM_CAP_CONTAINS_BOMBS: whether a bomb is contained depends on the config
         * (memory_mb and max_processes set to 0 lift the limits) and on the host
         * (RLIMIT_NPROC binds only with a uid or user namespace of the sandbox's own; status
         * says limits.max_processes_applied). The test tree runs the bombs with --bombs. */
        .capabilities = RLM_CAP_INTERRUPT | RLM_CAP_RUN_COMMAND | RLM_CAP_VOLUME |
                        RLM_CAP_IS_ALIVE | RLM_CAP_NET_ISOLATION | RLM_CAP_NESTED_EXECUTE |
                        RLM_CAP_BINARY_CHANNEL,
        .option_defs = local_options,
        .ops = &local_ops,
};

LOCAL_ENTRY_VISIBILITY int LOCAL_ENTRY(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out);

LOCAL_ENTRY_VISIBILITY int LOCAL_ENTRY(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	if (!out)
		return RLM_EINVAL;
	*out = NULL;
	/* Every host field this plugin uses, opt_object_json being the last of them. */
	if (!host || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR ||
	    RLM_ABI_MAJOR_OF(host->abi_version) != RLM_ABI_MAJOR ||
	    !RLM_HAS_FIELD(host, opt_object_json) || !host->str_dup || !host->str_printf ||
	    !host->alloc || !host->realloc || !host->free || !host->log || !host->error_set ||
	    !host->now)
		return RLM_EPLUGIN;
	*out = &local_desc;
	return 0;
}
