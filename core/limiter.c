/* limiter.c - a host-wide creation-rate limiter in a lock file (see limiter.h). Wall-clock time
 * is the shared clock: processes do not share a monotonic origin. */
#include "limiter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Past this, a backlog means something is wrong (a rate far below the demand): fail rather
 * than stall for an hour. */
#define LIMITER_MAX_BACKLOG_S 300.0

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int make_dirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc && errno != EEXIST)
			return -1;
	}
	return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

int rlm__limiter_path(const char *dir, const char *backend, char *out, size_t size, rlm_error *err)
{
	char base[4096];
	const char *run = getenv("XDG_RUNTIME_DIR"), *cache = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (dir && *dir)
		snprintf(base, sizeof(base), "%s", dir);
	else if (run && *run == '/')
		snprintf(base, sizeof(base), "%s/rlm/limiter", run);
	else if (cache && *cache == '/')
		snprintf(base, sizeof(base), "%s/rlm/limiter", cache);
	else if (home && *home == '/')
		snprintf(base, sizeof(base), "%s/.cache/rlm/limiter", home);
	else
		return rlm_error_set(err, RLM_ECONFIG,
		                     "no directory for the creation limiter: set XDG_RUNTIME_DIR, "
		                     "XDG_CACHE_HOME or HOME");
	for (const char *c = backend; *c; c++)
		if (*c == '/' || *c == '.')
			return rlm_error_set(err, RLM_EINVAL, "bad backend name for the limiter");
	if (make_dirs(base))
		return rlm_error_set(err, RLM_EIO, "cannot create %s: %s", base, strerror(errno));
	if ((size_t)snprintf(out, size, "%s/%s.bucket", base, backend) >= size)
		return rlm_error_set(err, RLM_EINVAL, "limiter path too long");
	return 0;
}

/* Under the lock: reads the next free start time, reserves a start, writes the next one. */
static int reserve(int fd, double rate, double *start)
{
	char buf[64] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	double next = n > 0 ? strtod(buf, NULL) : 0;
	double now = wall_now();
	/* A cursor far in the future is a corrupt file or a clock that jumped back: start over. */
	if (!(next >= 0) || next > now + LIMITER_MAX_BACKLOG_S * 2)
		next = 0;
	*start = next > now ? next : now;
	int len = snprintf(buf, sizeof(buf), "%.6f\n", *start + 1.0 / rate);
	if (pwrite(fd, buf, (size_t)len, 0) != len || ftruncate(fd, len))
		return -1;
	return 0;
}

int rlm__limiter_take(const char *path, double rate, double deadline, const volatile int *cancel,
                      double *started, rlm_error *err)
{
	if (!(rate > 0))
		return 0;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return rlm_error_set(err, RLM_EIO, "creation limiter %s: %s", path,
		                     strerror(errno));
	double start = 0;
	int rc = flock(fd, LOCK_EX);
	if (rc == 0) {
		rc = reserve(fd, rate, &start);
		flock(fd, LOCK_UN);
	}
	int saved = errno;
	close(fd);
	if (rc)
		return rlm_error_set(err, RLM_EIO, "creation limiter %s: %s", path,
		                     strerror(saved));
	if (started)
		*started = start;
	double wait = start - wall_now();
	if (wait > LIMITER_MAX_BACKLOG_S)
		return rlm_error_set(
		        err, RLM_EQUOTA,
		        "the creation limit (%.3g per second, shared by this user's rlm "
		        "processes) has a backlog of %.0f s",
		        rate, wait);
	if (deadline > 0 && rlm_now() + wait > deadline)
		return rlm_error_set(
		        err, RLM_ETIMEOUT,
		        "the creation limit (%.3g per second) leaves no slot before the "
		        "deadline",
		        rate);
	for (double left = wait; left > 0; left = start - wall_now()) {
		if (cancel && *cancel)
			return rlm_error_set(err, RLM_ECANCELLED, "cancelled");
		double slice = left < 0.1 ? left : 0.1;
		struct timespec ts = {(time_t)slice, (long)((slice - (double)(time_t)slice) * 1e9)};
		nanosleep(&ts, NULL);
	}
	return 0;
}
