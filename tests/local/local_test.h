/* local_test.h - what the local backend's own tests share: opening an interpreter with extra
 * settings, reading its backend status, running a cell that must succeed, and watching host
 * processes through pidfds (pids are reused quickly: pid_max may be 32768). Header-only,
 * included once by each test program. */
#ifndef RLM_LOCAL_TEST_H
#define RLM_LOCAL_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "rlm/rlm.h"

static inline double lt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Opens a local interpreter with the given "key=value" settings (NULL-terminated). */
static inline int lt_try_open(const char *const *settings, rlm_interp **in, rlm_error *err)
{
	rlm_config *cfg = NULL;
	int rc = rlm_config_new(&cfg, err);

	*in = NULL;
	if (!rc)
		rc = rlm_config_apply_env(cfg, err);
	if (!rc)
		rc = rlm_config_set_assignment(cfg, "backend=local", err);
	for (const char *const *s = settings; !rc && s && *s; s++)
		rc = rlm_config_set_assignment(cfg, *s, err);
	if (!rc)
		rc = rlm_interp_open(cfg, in, err);
	rlm_config_free(cfg);
	return rc;
}

/* The same, failing the test when it does not open. */
static inline rlm_interp *lt_open(const char *const *settings)
{
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = lt_try_open(settings, &in, &err);

	if (rc)
		fail_msg("opening a local interpreter: %s: %s", rlm_status_name(rc), err.message);
	return in;
}

/* backend_status.<key> as a string (malloc'ed; numbers are printed), or NULL. */
static inline char *lt_status(rlm_interp *in, const char *key)
{
	char *text = rlm_interp_status_json(in), *out = NULL;
	json_object *doc = text ? json_tokener_parse(text) : NULL, *bs, *v;

	if (doc && json_object_object_get_ex(doc, "backend_status", &bs) &&
	    json_object_object_get_ex(bs, key, &v) && v)
		out = strdup(json_object_get_string(v));
	json_object_put(doc);
	rlm_free(text);
	return out;
}

/* Runs code; fails the test unless the cell ran without raising. Returns its stdout
 * (malloc'ed). */
static inline char *lt_run(rlm_interp *in, const char *code)
{
	rlm_result *r = NULL;
	rlm_error err = RLM_ERROR_INIT;
	int rc = rlm_interp_execute(in, code, NULL, &r, &err);
	char *out;

	if (rc)
		fail_msg("execute: %s: %s", rlm_status_name(rc), err.message);
	if (r->error)
		fail_msg("the cell raised: %s\n%s", r->error->line ? r->error->line : "?",
		         r->error->traceback ? r->error->traceback : "");
	out = strdup(r->stdout_text ? r->stdout_text : "");
	rlm_result_free(r);
	return out;
}

static inline int lt_pidfd(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Whether the process behind pidfd has exited (within wait_s). */
static inline int lt_pidfd_exited(int pidfd, double wait_s)
{
	struct pollfd p = {pidfd, POLLIN, 0};

	return poll(&p, 1, (int)(wait_s * 1000)) == 1;
}

static inline void lt_pidfd_kill(int pidfd)
{
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

static inline int lt_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Files directly in dir (not . and ..), -1 when it cannot be read. */
static inline int lt_count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

#endif
