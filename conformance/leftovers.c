/* leftovers.c - finds the processes a sandbox left running after it was closed.
 *
 * The suite makes itself a child subreaper (PR_SET_CHILD_SUBREAPER) before it opens any
 * sandbox. Then every process a backend starts from the suite's process (fork/exec, clone with
 * namespaces, bwrap: any local-process backend) stays in the suite's process tree for as long
 * as it lives: an orphan, even one that called setsid() and forked again, is re-parented to the
 * suite instead of to init. The suite itself starts no process, so once every interpreter is
 * closed a live descendant of the suite is a process of a sandbox that outlived its close.
 * What this cannot see: processes a backend has a daemon start for it (dockerd, systemd-run),
 * and remote sandboxes, whose processes are not on this machine (the suite skips the check for
 * RLM_CAP_REMOTE backends). Zombies count as dead; those re-parented to the suite are reaped
 * here, since no backend waits for a grandchild. */
#include "conformance.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct proc {
	pid_t pid, ppid;
	char state;
	long threads;
	char comm[32];
};

int leftovers_watch(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

/* One process's /proc/PID/stat: parent, state, threads, command name. */
static int read_proc(pid_t pid, struct proc *p)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *open, *close;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold anything, ')' included: the fields start after the last. */
	open = strchr(buf, '(');
	close = strrchr(buf, ')');
	if (!open || !close || close < open)
		return -1;
	p->pid = pid;
	snprintf(p->comm, sizeof(p->comm), "%.*s", (int)(close - open - 1), open + 1);
	if (sscanf(close + 1,
	           " %c %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %ld",
	           &p->state, &p->ppid, &p->threads) != 3)
		return -1;
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	const struct proc *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Every process on the machine, sorted by pid; NULL without /proc. */
static struct proc *list_procs(size_t *n)
{
	DIR *dir = opendir("/proc");
	struct proc *all = NULL, *grown;
	size_t cap = 0;
	struct dirent *e;

	*n = 0;
	if (!dir)
		return NULL;
	while ((e = readdir(dir))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 512;
			grown = realloc(all, cap * sizeof(*all));
			if (!grown)
				break;
			all = grown;
		}
		if (read_proc((pid_t)pid, &all[*n]) == 0)
			(*n)++;
	}
	closedir(dir);
	if (all)
		qsort(all, *n, sizeof(*all), by_pid);
	return all;
}

static const struct proc *find(const struct proc *all, size_t n, pid_t pid)
{
	struct proc key = {.pid = pid};

	return bsearch(&key, all, n, sizeof(*all), by_pid);
}

/* Whether p descends from the suite (depth-bounded: a pid cycle cannot loop forever). */
static bool descends_from(const struct proc *all, size_t n, const struct proc *p, pid_t self)
{
	for (int depth = 0; p && depth < 4096; depth++) {
		if (p->ppid == self)
			return true;
		p = find(all, n, p->ppid);
	}
	return false;
}

static bool alive(const struct proc *p)
{
	return !((p->state == 'Z' || p->state == 'X' || p->state == 'x') && p->threads <= 1);
}

/* Counts the live descendants of the suite, describing the first few in report, and reaps
 * the suite's dead children. With kill set, SIGKILLs the live ones. */
static bool spared(const struct proc *all, size_t n, const struct proc *p, const pid_t *keep,
                   size_t nkeep)
{
	for (size_t k = 0; k < nkeep; k++)
		if (p->pid == keep[k] || descends_from(all, n, p, keep[k]))
			return true;
	return false;
}

static int scan(char *report, size_t size, bool kill_them, const pid_t *keep, size_t nkeep)
{
	pid_t self = getpid();
	size_t n, used = 0;
	struct proc *all = list_procs(&n);
	int live = 0;

	if (report && size)
		report[0] = '\0';
	if (!all)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct proc *p = &all[i];

		if (p->pid == self || !descends_from(all, n, p, self) ||
		    spared(all, n, p, keep, nkeep))
			continue;
		if (!alive(p)) {
			if (p->ppid == self)
				waitpid(p->pid, NULL, WNOHANG);
			continue;
		}
		live++;
		if (kill_them)
			kill(p->pid, SIGKILL);
		if (report && live <= 8 && used < size) {
			int w = snprintf(report + used, size - used,
			                 "%s pid %d (%s, parent %d, %c)", live > 1 ? "," : "",
			                 (int)p->pid, p->comm, (int)p->ppid, p->state);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	free(all);
	return live;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int leftovers_check(double timeout_s, char *report, size_t size, const pid_t *keep, size_t nkeep)
{
	double deadline = mono_s() + timeout_s;
	long pause_ms = 1;
	int live;

	/* A backend may end its processes asynchronously: wait for them until the deadline. */
	while ((live = scan(report, size, false, keep, nkeep)) > 0 && mono_s() < deadline) {
		struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
		pause_ms = pause_ms < 200 ? pause_ms * 2 : 200;
	}
	if (live > 0) {
		/* Gone before the next case starts, so one leak fails one case, not every later
		 * one. The report stays the one taken before the kill. */
		for (double end = mono_s() + timeout_s;
		     scan(NULL, 0, true, keep, nkeep) > 0 && mono_s() < end;) {
			struct timespec ts = {0, 50 * 1000000};

			nanosleep(&ts, NULL);
		}
	}
	return live;
}
