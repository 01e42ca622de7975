/* probe.c - runs a risky function in a forked child with a deadline and reports how it ended.
 *
 * The loader uses it to call a plugin's constructors and entry point before (or instead of)
 * doing so in this process: a plugin that crashes there would otherwise take rlm, or the
 * program that embeds librlm, down with it. fork() from a threaded process leaves only the
 * calling thread in the child; glibc keeps malloc usable there, and the deadline turns the
 * rare lock held by a vanished thread (another thread inside dlopen at that instant) into a
 * reported timeout instead of a hang. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Signals by which a crash shows: each gets its default action (die) in the child, whatever
 * handler the host program installed (a sanitizer, a crash reporter). */
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};

/* How often the parent looks at the child while nothing arrives. */
#define PROBE_POLL_MS 50
/* How long a killed child has to be reaped. */
#define PROBE_REAP_S 5.0

const char *rlm__signal_name(int sig, char *buf, size_t size)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev) {
		snprintf(buf, size, "SIG%s", abbrev);
		return buf;
	}
#endif
	snprintf(buf, size, "signal %d", sig);
	return buf;
}

static void child_setup(void)
{
	struct rlimit no_core = {0, 0};
	sigset_t unblock;

	sigemptyset(&unblock);
	for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++) {
		signal(crash_signals[i], SIG_DFL);
		sigaddset(&unblock, crash_signals[i]);
	}
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* A crash here is expected and reported: no core file each time someone lists plugins. */
	setrlimit(RLIMIT_CORE, &no_core);
	/* Never outlive the caller, even if it is killed while waiting. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Reads what is there without blocking; 1 at end of file (every writer closed the pipe). */
static int drain(int fd, size_t max_out, rlm_probe_outcome *o)
{
	char buf[4096];

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 0) <= 0)
			return 0;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1;
		if (o->out.len + (size_t)n > max_out || rlm_sb_append(&o->out, buf, (size_t)n)) {
			o->truncated = 1;
			return 1;
		}
	}
}

static void record_status(int status, rlm_probe_outcome *o)
{
	if (WIFSIGNALED(status))
		o->signal = WTERMSIG(status);
	else if (WIFEXITED(status))
		o->exit_status = WEXITSTATUS(status);
}

int rlm__probe_run(rlm_probe_fn fn, void *ctx, double timeout_s, size_t max_out,
                   rlm_probe_outcome *o, rlm_error *err)
{
	double deadline = rlm_now() + timeout_s;
	int fds[2], status = 0, reaped = 0, eof = 0;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	o->exit_status = -1;
	if (pipe2(fds, O_CLOEXEC) != 0)
		return rlm_error_set(err, RLM_EIO, "cannot make a pipe for a probe: %s",
		                     strerror(errno));
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(fds[0]);
		close(fds[1]);
		return rlm_error_set(err, RLM_EIO, "cannot fork a probe: %s", strerror(e));
	}
	if (pid == 0) {
		close(fds[0]);
		child_setup();
		fn(fds[1], ctx);
		_exit(0);
	}
	close(fds[1]);
	/* Until end of file, or the child is gone (a grandchild may hold the pipe open), or the
	 * deadline. */
	while (!eof && !reaped && !o->truncated) {
		struct pollfd p = {fds[0], POLLIN, 0};
		double left = deadline - rlm_now();

		if (left <= 0) {
			o->timed_out = 1;
			break;
		}
		if (poll(&p, 1,
		         left * 1000 < PROBE_POLL_MS ? (int)(left * 1000) + 1 : PROBE_POLL_MS) > 0)
			eof = drain(fds[0], max_out, o);
		if (!eof && waitpid(pid, &status, WNOHANG) == pid) {
			reaped = 1;
			eof = drain(fds[0], max_out, o);
		}
	}
	close(fds[0]);
	if (o->timed_out || o->truncated)
		kill(pid, SIGKILL);
	/* After end of file the child is on its way out; still, it gets no more than the deadline,
	 * and a killed child a few seconds to be reaped (past that it is left as a zombie). */
	while (!reaped) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			reaped = 1;
		else if (r < 0 && errno != EINTR)
			break; /* ECHILD: the program ignores SIGCHLD; the status is lost */
		else if (!o->timed_out && !o->truncated && rlm_now() > deadline) {
			o->timed_out = 1;
			kill(pid, SIGKILL);
		} else if (rlm_now() > deadline + PROBE_REAP_S) {
			break;
		} else {
			sleep_ms(1);
		}
	}
	if (reaped)
		record_status(status, o);
	return 0;
}
