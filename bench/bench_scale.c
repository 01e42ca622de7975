/* bench_scale.c - how many interpreters one process holds, and what each one costs:
 *   (1) N local interpreters open at once (opened by a few long-lived threads, then a cell run
 *       in each while all are open): host fds, threads and RSS per interpreter, and the
 *       sandbox side (the driver's RSS, PSS, private memory, threads and fds); then all closed:
 *       errors, drivers still alive, work dirs left, host fds and children not given back;
 *   (2) N sandboxes at once against the fake Daytona and (3) against the fake Modal, from one
 *       process: every interpreter opened before any runs its cells, so all N sandboxes exist
 *       together; errors, host fds and threads per sandbox, sandboxes the fake still holds.
 * Usage: bench_scale [--local N] [--daytona N] [--modal N] [--openers K] [--modal-streams S]
 *   (N = 0 skips a part; S: the concurrent streams the fake Modal allows per HTTP/2
 *   connection, 100 by default like real gRPC servers, so 256 sandboxes need several)
 * Defaults: 1000 local, 256 Daytona, 256 Modal. Exits 1 on any error or leak.
 *
 * The library never changes process limits; a host that opens many interpreters raises its
 * own RLIMIT_NOFILE soft limit (2 fds per local interpreter), as this bench does first. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "rlm/rlm.h"

#include "bench_json.h"

#ifndef RLM_SOURCE_DIR
#define RLM_SOURCE_DIR "."
#endif
#ifndef RLM_PLUGIN_DIR
#define RLM_PLUGIN_DIR "build/lib/rlm/plugins"
#endif

#define DT_TOKEN     "dtn_scale_token"
#define MODAL_ID     "ak-fakescale"
#define MODAL_SECRET "as-fakescalesecret"

static char modal_streams[16] = "100"; /* the fake's --max-concurrent-streams */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_scale: %s: %s\n", what, why);
	exit(1);
}

/* ---- /proc --------------------------------------------------------------------------- */

static long count_dir(const char *path)
{
	DIR *d = opendir(path);
	long n = 0;
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* "Key:   123 kB" from a /proc status-like file; -1 when absent. */
static long proc_field(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t klen = strlen(key);
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

struct host_use {
	long fds, threads, rss_kb, mem_avail_kb;
};

static struct host_use host_use(void)
{
	struct host_use u;
	u.fds = count_dir("/proc/self/fd") - 1; /* less the one opendir holds */
	u.threads = proc_field("/proc/self/status", "Threads");
	u.rss_kb = proc_field("/proc/self/status", "VmRSS");
	u.mem_avail_kb = proc_field("/proc/meminfo", "MemAvailable");
	return u;
}

/* Field 22 of /proc/PID/stat, the start time: with the pid it names one process for good. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long t = 0;
	/* after ") ": state is field 3, start time field 22 */
	for (int field = 2; p && *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (p)
		t = strtoull(p, NULL, 10);
	return t;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

static long median_long(long *v, int n)
{
	qsort(v, (size_t)n, sizeof(long), cmp_long);
	return n ? v[n / 2] : 0;
}

/* One figure for `make bench`'s report; target_op NULL: no target (target then unused). */
static void figure(const char *metric, const char *label, double value, const char *unit,
                   const char *target_op, double target)
{
	bench_json_emit(&(struct bench_figure){.bench = "bench_scale",
	                                       .metric = metric,
	                                       .label = label,
	                                       .value = value,
	                                       .unit = unit,
	                                       .target = target,
	                                       .target_op = target_op});
}

/* ---- (1) local ----------------------------------------------------------------------- */

struct local_slot {
	rlm_interp *in;
	pid_t pid;
	unsigned long long started;
	int errors;
	char why[RLM_ERROR_MESSAGE_MAX + 32];
};

struct local_run {
	const rlm_config *cfg;
	struct local_slot *slot;
	int n, openers;
	pthread_barrier_t opened, ran, measured;
};

struct opener {
	struct local_run *run;
	int index;
	double open_s, cell_s, close_s;
};

static void slot_fail(struct local_slot *s, const char *what, const char *why)
{
	if (s->errors++ == 0)
		snprintf(s->why, sizeof(s->why), "%s: %s", what, why);
}

static pid_t driver_pid(rlm_interp *in)
{
	char *status = rlm_interp_status_json(in);
	json_object *doc = status ? json_tokener_parse(status) : NULL, *bs, *pid;
	pid_t p = 0;
	if (json_object_object_get_ex(doc, "backend_status", &bs) &&
	    json_object_object_get_ex(bs, "pid", &pid))
		p = (pid_t)json_object_get_int(pid);
	json_object_put(doc);
	free(status);
	return p;
}

/* Opens its share (i = index, index + openers, ...), runs a cell in each once all are open,
 * waits while the main thread measures, closes its share. The drivers are tied to this thread
 * (PR_SET_PDEATHSIG follows the thread that forked), so it lives until they are closed. */
static void *opener_main(void *arg)
{
	struct opener *o = arg;
	struct local_run *r = o->run;
	rlm_error err = RLM_ERROR_INIT;
	double t0 = now_s();
	for (int i = o->index; i < r->n; i += r->openers) {
		struct local_slot *s = &r->slot[i];
		if (rlm_interp_open(r->cfg, &s->in, &err)) {
			slot_fail(s, "open", err.message);
			s->in = NULL;
			continue;
		}
		s->pid = driver_pid(s->in);
		s->started = s->pid > 0 ? start_time(s->pid) : 0;
	}
	o->open_s = now_s() - t0;
	pthread_barrier_wait(&r->opened);
	t0 = now_s();
	for (int i = o->index; i < r->n; i += r->openers) {
		struct local_slot *s = &r->slot[i];
		rlm_result *res = NULL;
		char code[64], want[32];
		if (!s->in)
			continue;
		snprintf(code, sizeof(code), "x = %d\nprint(x * 2)", i);
		snprintf(want, sizeof(want), "%d\n", i * 2);
		if (rlm_interp_execute(s->in, code, NULL, &res, &err))
			slot_fail(s, "execute", err.message);
		else if (res->error)
			slot_fail(s, "execute", res->error->line);
		else if (strcmp(res->stdout_text, want))
			slot_fail(s, "execute", res->stdout_text);
		rlm_result_free(res);
	}
	o->cell_s = now_s() - t0;
	pthread_barrier_wait(&r->ran);
	pthread_barrier_wait(&r->measured);
	t0 = now_s();
	for (int i = o->index; i < r->n; i += r->openers)
		rlm_interp_close(r->slot[i].in);
	o->close_s = now_s() - t0;
	return NULL;
}

struct driver_use {
	long rss_kb, pss_kb, private_kb, threads, fds;
};

static int driver_use(pid_t pid, struct driver_use *u)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	u->rss_kb = proc_field(path, "VmRSS");
	u->threads = proc_field(path, "Threads");
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	u->pss_kb = proc_field(path, "Pss");
	long clean = proc_field(path, "Private_Clean"), dirty = proc_field(path, "Private_Dirty");
	u->private_kb = clean >= 0 && dirty >= 0 ? clean + dirty : -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	u->fds = count_dir(path);
	return u->rss_kb < 0 ? -1 : 0;
}

/* Our children that are not fake servers (the drivers of open local interpreters). */
static long children_other_than(pid_t keep1, pid_t keep2)
{
	char path[64], buf[8192];
	long n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.16s/children", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = 0;
		for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
			pid_t p = (pid_t)atoi(tok);
			n += p != keep1 && p != keep2;
		}
	}
	closedir(d);
	return n;
}

static int bench_local(int n, int openers)
{
	char root[] = "/tmp/rlm-bench-scale-XXXXXX", json[160];
	rlm_config *cfg;
	rlm_error err = RLM_ERROR_INIT;
	if (!mkdtemp(root))
		die("mkdtemp", strerror(errno));
	chmod(root, 0711); /* searchable by the sandbox uids, as /tmp is */
	snprintf(json, sizeof(json), "\"%s\"", root);
	if (rlm_config_new(&cfg, &err) || rlm_config_set(cfg, "backend", "local", &err) ||
	    rlm_config_set(cfg, "backends.local.workdir_root", json, &err))
		die("config", err.message);
	if (openers > n)
		openers = n;

	struct local_run r = {.cfg = cfg, .n = n, .openers = openers};
	r.slot = calloc((size_t)n, sizeof(*r.slot));
	struct opener *o = calloc((size_t)openers, sizeof(*o));
	pthread_t *t = calloc((size_t)openers, sizeof(*t));
	if (!r.slot || !o || !t)
		die("calloc", "out of memory");
	pthread_barrier_init(&r.opened, NULL, (unsigned)openers + 1);
	pthread_barrier_init(&r.ran, NULL, (unsigned)openers + 1);
	pthread_barrier_init(&r.measured, NULL, (unsigned)openers + 1);

	/* One interpreter first, so the plugin and the driver's bytes are loaded and cached before
	 * the baseline is read. */
	rlm_interp *warm;
	if (rlm_interp_open(cfg, &warm, &err))
		die("open", err.message);
	rlm_interp_close(warm);

	struct host_use before = host_use();
	double t0 = now_s();
	for (int i = 0; i < openers; i++) {
		o[i].run = &r;
		o[i].index = i;
		if (pthread_create(&t[i], NULL, opener_main, &o[i]))
			die("pthread_create", "failed");
	}
	pthread_barrier_wait(&r.opened);
	double open_wall = now_s() - t0;
	pthread_barrier_wait(&r.ran);
	double cell_wall = now_s() - t0 - open_wall;

	struct host_use during = host_use();
	long *rss = calloc((size_t)n, sizeof(long)), *pss = calloc((size_t)n, sizeof(long)),
	     *priv = calloc((size_t)n, sizeof(long));
	long threads = 0, fds = 0, pss_sum = 0;
	int alive = 0, errors = 0, opened = 0;
	for (int i = 0; i < n; i++) {
		struct driver_use u;
		opened += r.slot[i].in != NULL;
		if (r.slot[i].pid > 0 && driver_use(r.slot[i].pid, &u) == 0) {
			rss[alive] = u.rss_kb;
			pss[alive] = u.pss_kb;
			priv[alive] = u.private_kb;
			pss_sum += u.pss_kb;
			threads += u.threads;
			fds += u.fds;
			alive++;
		}
	}
	long drivers_threads = alive ? threads / alive : 0, drivers_fds = alive ? fds / alive : 0;
	long m_rss = median_long(rss, alive), m_pss = median_long(pss, alive),
	     m_priv = median_long(priv, alive);
	pthread_barrier_wait(&r.measured);

	double t1 = now_s();
	for (int i = 0; i < openers; i++)
		pthread_join(t[i], NULL);
	double close_wall = now_s() - t1;
	struct host_use after = host_use();

	/* Leaks: a driver (same pid and start time) still there, a work dir left, fds kept. */
	int drivers_left = 0;
	for (int i = 0; i < n; i++) {
		struct local_slot *s = &r.slot[i];
		if (s->pid > 0 && s->started && start_time(s->pid) == s->started)
			drivers_left++;
		if (s->errors && errors++ == 0)
			fprintf(stderr, "bench_scale: local interpreter %d: %s\n", i, s->why);
		else if (s->errors)
			errors += s->errors - 1;
	}
	long dirs_left = count_dir(root), children = children_other_than(0, 0);
	long fds_kept = after.fds - before.fds;

	printf("(1) %d local interpreters open at once (%d opener threads)\n", n, openers);
	printf("    open all %.1f s (%.1f ms each), a cell in each %.2f s, close all %.2f s "
	       "(%.2f ms each)\n",
	       open_wall, open_wall * 1e3 / n, cell_wall, close_wall, close_wall * 1e3 / n);
	printf("    %d opened, %d error%s\n", opened, errors, errors == 1 ? "" : "s");
	printf("    host, per interpreter:   %.2f fds, %.2f threads, %.1f KiB RSS   (%ld fds, "
	       "%ld threads, %.1f MiB RSS in all)\n",
	       (double)(during.fds - before.fds) / n,
	       (double)(during.threads - before.threads - openers) / n,
	       (double)(during.rss_kb - before.rss_kb) / n, during.fds, during.threads,
	       during.rss_kb / 1024.0);
	printf("    driver, per interpreter: RSS %.1f MiB, PSS %.1f MiB, private %.1f MiB "
	       "(medians), %ld threads, %ld fds\n",
	       m_rss / 1024.0, m_pss / 1024.0, m_priv / 1024.0, drivers_threads, drivers_fds);
	printf("    all drivers: PSS %.0f MiB; MemAvailable fell %.0f MiB (%.1f MiB per "
	       "interpreter, kernel memory included; other processes add noise)\n",
	       pss_sum / 1024.0, (before.mem_avail_kb - during.mem_avail_kb) / 1024.0,
	       (double)(before.mem_avail_kb - during.mem_avail_kb) / 1024.0 / n);
	printf("    after close: %d driver%s alive, %ld work dir%s left, %ld child process%s, "
	       "%ld host fd%s not given back\n",
	       drivers_left, drivers_left == 1 ? "" : "s", dirs_left, dirs_left == 1 ? "" : "s",
	       children, children == 1 ? "" : "es", fds_kept, fds_kept == 1 ? "" : "s");
	char label[128];
	long leaks = drivers_left + dirs_left + children + (fds_kept > 0 ? fds_kept : 0);
	snprintf(label, sizeof(label), "local: interpreters open at once (of %d)", n);
	figure("local_open", label, opened, NULL, ">=", 1000);
	figure("local_errors", "local: errors", errors, NULL, "==", 0);
	figure("local_leaks", "local: drivers, work dirs, children, fds left after close", leaks,
	       NULL, "==", 0);
	figure("local_host_fds", "local: host fds per interpreter",
	       (double)(during.fds - before.fds) / n, "fds", NULL, 0);
	figure("local_host_rss", "local: host RSS per interpreter",
	       (double)(during.rss_kb - before.rss_kb) / n, "KiB", NULL, 0);
	figure("local_driver_pss", "local: driver PSS per interpreter (median)", m_pss / 1024.0,
	       "MiB", NULL, 0);
	figure("local_mem", "local: available memory used per interpreter",
	       (double)(before.mem_avail_kb - during.mem_avail_kb) / 1024.0 / n, "MiB", NULL, 0);
	figure("local_open_each", "local: open, per interpreter (4 threads, all held)",
	       open_wall * 1e3 / n, "ms", NULL, 0);
	free(rss);
	free(pss);
	free(priv);
	free(r.slot);
	free(o);
	free(t);
	rlm_config_free(cfg);
	if (dirs_left == 0)
		rmdir(root);
	return errors || opened < n || drivers_left || dirs_left || children || fds_kept;
}

/* ---- the fakes ----------------------------------------------------------------------- */

struct fake {
	const char *name;
	pid_t pid;
	char dir[64], port_file[96], state_file[96];
	char url[32];
};

static struct fake fakes[2];

static void stop_fakes(void)
{
	for (int i = 0; i < 2; i++) {
		struct fake *f = &fakes[i];
		if (f->pid > 0) {
			int reaped = 0;
			kill(f->pid, SIGTERM);
			for (int k = 0; k < 2000 && !reaped; k++) {
				reaped = waitpid(f->pid, NULL, WNOHANG) == f->pid;
				if (!reaped)
					usleep(10000);
			}
			if (!reaped) {
				kill(f->pid, SIGKILL);
				waitpid(f->pid, NULL, 0);
			}
			f->pid = 0;
		}
		if (f->dir[0]) {
			unlink(f->port_file);
			unlink(f->state_file);
			rmdir(f->dir);
			f->dir[0] = 0;
		}
	}
}

static void start_fake(struct fake *f, int modal)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/rlm-bench-scale-fake-XXXXXX");
	if (!mkdtemp(f->dir))
		die("mkdtemp", strerror(errno));
	snprintf(f->port_file, sizeof(f->port_file), "%s/port", f->dir);
	snprintf(f->state_file, sizeof(f->state_file), "%s/state.json", f->dir);
	f->name = modal ? "modal" : "daytona";
	pid_t parent = getpid();
	f->pid = fork();
	if (f->pid < 0)
		die("fork", strerror(errno));
	if (f->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		if (modal)
			execl("/usr/bin/python3", "python3",
			      RLM_SOURCE_DIR "/tests/fakes/modal_server.py", "--proto",
			      RLM_SOURCE_DIR "/backends/modal/modal.proto", "--port-file",
			      f->port_file, "--state-file", f->state_file, "--token-id", MODAL_ID,
			      "--token-secret", MODAL_SECRET, "--max-concurrent-streams",
			      modal_streams, (char *)NULL);
		else
			execlp("python3", "python3",
			       RLM_SOURCE_DIR "/tests/fakes/daytona_server.py", "--port-file",
			       f->port_file, "--token", DT_TOKEN, "--nproc-limit", "8192",
			       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 600; i++) {
		int port = 0, status;
		FILE *pf = fopen(f->port_file, "r");
		if (pf) {
			int ok = fscanf(pf, "%d", &port) == 1 && port > 0;
			fclose(pf);
			if (ok) {
				snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", port);
				return;
			}
		}
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = 0;
			die(f->name, "the fake exited before listening");
		}
		usleep(50000);
	}
	die(f->name, "the fake did not start in 30 s");
}

/* Sandboxes the fake still holds, -1 when it cannot tell. */
static int fake_sandboxes(const struct fake *f, int modal)
{
	if (modal) {
		json_object *live = json_object_from_file(f->state_file);
		int n = json_object_is_type(live, json_type_array)
		                ? (int)json_object_array_length(live)
		                : -1;
		json_object_put(live);
		return n;
	}
	const rlm_host_api *h = rlm__host();
	char url[160];
	snprintf(url, sizeof(url), "%s/_fake/sandboxes", f->url);
	rlm_http_request req;
	memset(&req, 0, sizeof(req));
	req.abi_version = RLM_ABI_VERSION;
	req.struct_size = sizeof(req);
	req.method = "GET";
	req.url = url;
	req.timeout_s = 60;
	rlm_http_response resp;
	rlm_error err = RLM_ERROR_INIT;
	if (h->http_request(&req, &resp, &err))
		return -1;
	json_object *doc = resp.body.data ? json_tokener_parse(resp.body.data) : NULL;
	int n = json_object_is_type(doc, json_type_array) ? (int)json_object_array_length(doc) : -1;
	json_object_put(doc);
	h->http_response_free(&resp);
	return n;
}

/* ---- (2), (3) cloud ------------------------------------------------------------------ */

#define CLOUD_CELLS 4

struct cloud_run {
	const rlm_config *cfg;
	pthread_barrier_t opened, measured;
};

struct cloud_worker {
	struct cloud_run *run;
	int errors;
	double open_s;
	char why[RLM_ERROR_MESSAGE_MAX + 64];
};

static void cloud_fail(struct cloud_worker *w, const char *what, const char *why)
{
	if (w->errors++ == 0)
		snprintf(w->why, sizeof(w->why), "%s: %s", what, why);
}

static void *cloud_main(void *arg)
{
	struct cloud_worker *w = arg;
	rlm_interp *in = NULL;
	rlm_error err = RLM_ERROR_INIT;
	double t0 = now_s();
	if (rlm_interp_open(w->run->cfg, &in, &err)) {
		cloud_fail(w, "open", err.message);
		in = NULL;
	}
	w->open_s = now_s() - t0;
	pthread_barrier_wait(&w->run->opened);
	pthread_barrier_wait(&w->run->measured);
	for (int i = 0; in && i < CLOUD_CELLS / 2; i++) {
		char set[32], want[32];
		snprintf(set, sizeof(set), "x = %d", i);
		snprintf(want, sizeof(want), "%d\n", i);
		for (int k = 0; k < 2; k++) {
			rlm_result *r = NULL;
			const char *code = k ? "print(x)" : set, *expect = k ? want : "";
			if (rlm_interp_execute(in, code, NULL, &r, &err))
				cloud_fail(w, code, err.message);
			else if (r->error)
				cloud_fail(w, code, r->error->line);
			else if (strcmp(r->stdout_text, expect))
				cloud_fail(w, code, r->stdout_text);
			rlm_result_free(r);
		}
	}
	rlm_interp_close(in);
	return NULL;
}

static int bench_cloud(int modal, int n)
{
	struct fake *f = &fakes[modal];
	if (f->pid <= 0)
		start_fake(f, modal);
	rlm_config *cfg;
	rlm_error err = RLM_ERROR_INIT;
	if (rlm_config_new(&cfg, &err) ||
	    rlm_config_set(cfg, "backend", modal ? "\"modal\"" : "\"daytona\"", &err) ||
	    rlm_config_set(cfg, "plugin_path", "[\"" RLM_PLUGIN_DIR "\"]", &err))
		die("config", err.message);
	if (!modal) {
		char api[sizeof(f->url) + 8];
		snprintf(api, sizeof(api), "\"%.31s/api\"", f->url);
		if (rlm_config_set(cfg, "backends.daytona.api_url", api, &err))
			die("config", err.message);
	}

	struct cloud_run r = {.cfg = cfg};
	struct cloud_worker *w = calloc((size_t)n, sizeof(*w));
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	if (!w || !t)
		die("calloc", "out of memory");
	pthread_barrier_init(&r.opened, NULL, (unsigned)n + 1);
	pthread_barrier_init(&r.measured, NULL, (unsigned)n + 1);
	struct host_use before = host_use();
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		w[i].run = &r;
		if (pthread_create(&t[i], NULL, cloud_main, &w[i]))
			die("pthread_create", "failed");
	}
	pthread_barrier_wait(&r.opened);
	double open_wall = now_s() - t0;
	struct host_use during = host_use();
	int live = fake_sandboxes(f, modal);
	pthread_barrier_wait(&r.measured);
	double t1 = now_s();
	int errors = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (w[i].errors && errors == 0)
			fprintf(stderr, "bench_scale: %s interpreter %d: %s\n", f->name, i,
			        w[i].why);
		errors += w[i].errors;
	}
	double rest_wall = now_s() - t1;
	int left = fake_sandboxes(f, modal);
	struct host_use after = host_use();
	long fds_kept = after.fds - before.fds;
	int part = modal ? 3 : 2;
	printf("(%d) %d sandboxes at once against the fake %s\n", part, n, f->name);
	printf("    open all %.2f s, then %d cells in each and close %.2f s; %d error%s; %d "
	       "sandbox%s live at the fake with all open\n",
	       open_wall, CLOUD_CELLS, rest_wall, errors, errors == 1 ? "" : "s", live,
	       live == 1 ? "" : "es");
	printf("    host, per sandbox: %.2f fds, %.2f threads (less the one calling), %.1f KiB "
	       "RSS\n",
	       (double)(during.fds - before.fds) / n,
	       (double)(during.threads - before.threads - n) / n,
	       (double)(during.rss_kb - before.rss_kb) / n);
	printf("    after close: %d sandbox%s left at the fake, %ld host fd%s not given back\n",
	       left, left == 1 ? "" : "es", fds_kept, fds_kept == 1 ? "" : "s");
	char metric[32], label[128];
	snprintf(metric, sizeof(metric), "%s_live", f->name);
	snprintf(label, sizeof(label), "%s: sandboxes live at once (of %d)", f->name, n);
	figure(metric, label, live, NULL, ">=", 256);
	snprintf(metric, sizeof(metric), "%s_errors", f->name);
	snprintf(label, sizeof(label), "%s: errors, %d sandboxes at once", f->name, n);
	figure(metric, label, errors, NULL, "==", 0);
	snprintf(metric, sizeof(metric), "%s_leaked", f->name);
	snprintf(label, sizeof(label), "%s: sandboxes left after close", f->name);
	figure(metric, label, left, NULL, "==", 0);
	snprintf(metric, sizeof(metric), "%s_host_fds", f->name);
	snprintf(label, sizeof(label), "%s: host fds per sandbox", f->name);
	figure(metric, label, (double)(during.fds - before.fds) / n, "fds", NULL, 0);
	free(w);
	free(t);
	rlm_config_free(cfg);
	/* The HTTP helper keeps idle connections for reuse: at most its 16 pooled handles times
	 * libcurl's 5 cached connections each, whatever N. */
	return errors || left != 0 || live != n || fds_kept > 80;
}

int main(int argc, char **argv)
{
	int n_local = 1000, n_daytona = 256, n_modal = 256, openers = 4, streams = 100;
	for (int i = 1; i < argc; i++) {
		int *dst = !strcmp(argv[i], "--local")           ? &n_local
		           : !strcmp(argv[i], "--daytona")       ? &n_daytona
		           : !strcmp(argv[i], "--modal")         ? &n_modal
		           : !strcmp(argv[i], "--openers")       ? &openers
		           : !strcmp(argv[i], "--modal-streams") ? &streams
		                                                 : NULL;
		if (!dst || i + 1 >= argc) {
			fprintf(stderr, "usage: bench_scale [--local N] [--daytona N] [--modal N] "
			                "[--openers K] [--modal-streams S]\n");
			return 2;
		}
		*dst = atoi(argv[++i]);
	}
	if (openers < 1)
		openers = 1;
	snprintf(modal_streams, sizeof(modal_streams), "%d", streams);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_fakes);

	/* What a host must do itself: 2 fds per local interpreter, a few per cloud sandbox. */
	struct rlimit nofile;
	getrlimit(RLIMIT_NOFILE, &nofile);
	long was = (long)nofile.rlim_cur;
	nofile.rlim_cur = nofile.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &nofile))
		die("setrlimit", strerror(errno));
	printf("rlm scale benchmark (RLIMIT_NOFILE soft limit raised from %ld to its hard limit "
	       "%ld)\n\n",
	       was, (long)nofile.rlim_cur);

	int bad = 0;
	if (n_local > 0 && (rlim_t)n_local * 2 + 64 > nofile.rlim_cur) {
		/* 77: ctest's SKIP_RETURN_CODE; a bench cannot raise the hard limit without root */
		printf("skipped: %d local interpreters need about %d fds, the hard limit is %ld\n",
		       n_local, n_local * 2 + 64, (long)nofile.rlim_cur);
		return 77;
	}
	if (n_local > 0)
		bad |= bench_local(n_local, openers);
	setenv("DAYTONA_API_KEY", DT_TOKEN, 1);
	setenv("MODAL_TOKEN_ID", MODAL_ID, 1);
	setenv("MODAL_TOKEN_SECRET", MODAL_SECRET, 1);
	setenv("MODAL_CONFIG_PATH", "/nonexistent/rlm-bench-scale.toml", 1);
	if (n_daytona > 0)
		bad |= bench_cloud(0, n_daytona);
	if (n_modal > 0) {
		/* The plugin reads the server URL at create(); set before the threads start. */
		start_fake(&fakes[1], 1);
		setenv("MODAL_SERVER_URL", fakes[1].url, 1);
		bad |= bench_cloud(1, n_modal);
	}
	printf("%s\n", bad ? "FAILED: errors or leaks above" : "ok: 0 errors, 0 leaks");
	return bad;
}
