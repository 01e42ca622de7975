/* mock_backend.c - a fault-injecting backend plugin for tests (rlm-backend-mock.so).
 *
 * It runs the real driver as a plain child process, `python3 <tmpdir>/driver.py`, whose stdin
 * and stdout are one end of a socketpair: the driver's default channel mode, so the core's
 * protocol handling is exercised over a second transport besides the local backend's fd pair.
 * Options inject the faults a remote transport shows: a failing start, a channel that drops,
 * junk and malformed frames between real ones, slow replies, failing uploads.
 * No isolation: user code runs as the caller, with only an address-space cap so that the
 * conformance suite's memory test cannot exhaust the host. Only host->*, libc and json-c are
 * used.
 *
 * execute() may be re-entered from its own on_data callback (RLM_CAP_NESTED_EXECUTE): what
 * one exchange still has to write lives in that call's frame, never in the instance.
 *
 * Built twice more from this file, for the ABI's size rule (an ops table may end at shutdown,
 * and a slot exists only inside struct_size):
 *   -DMOCK_SHORT_OPS  rlm-backend-short.so: struct_size ends at shutdown and no capability is
 *                     declared; the slots past the end hold poison functions that say so and
 *                     fail, so a core that reads past struct_size is caught, not lucky.
 *   -DMOCK_CAPS_WITHOUT_SLOTS  rlm-backend-liar.so: the same table, declaring
 *                     RLM_CAP_RUN_COMMAND: the loader must refuse it.
 *   -DMOCK_LEAKS      rlm-backend-leaky.so: each start also leaves a `sleep` running in a
 *                     session of its own, which shutdown does not end: rlm-conformance's
 *                     leftover-process check must fail it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* closefrom, mkdtemp */
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "rlm/plugin.h"

#if defined(MOCK_SHORT_OPS)
#define MOCK_NAME "short"
#elif defined(MOCK_CAPS_WITHOUT_SLOTS)
#define MOCK_NAME "liar"
#elif defined(MOCK_LEAKS)
#define MOCK_NAME     "leaky"
#define MOCK_FULL_OPS 1
#else
#define MOCK_NAME     "mock"
#define MOCK_FULL_OPS 1
#endif
#define MOCK_JUNK      "noise\n"
#define MOCK_BAD_FRAME "\x1e{not json\n"

typedef struct mock {
	const rlm_host_api *host;
	bool fail_start;
	long long drop_after_bytes; /* 0: never */
	bool garbage;
	long long slow_reply_ms;
	bool fail_upload;
	long long max_memory_mb; /* RLIMIT_AS of the driver, 0: none */
	char dir[PATH_MAX];      /* "" until start() made it */
	pid_t pid;               /* driver (and process group leader), -1 when none */
	int fd;                  /* our end of the channel socket, -1 when none */
	bool at_boundary;        /* the last byte handed to on_data ended a frame (a property of
	                            the channel, shared by nested exchanges) */
} mock;

/* One execute() call's bytes still to write to the driver. */
typedef struct mock_xfer {
	char *out;
	size_t out_len;
	size_t out_cap;
} mock_xfer;

#define MOCK_MEMORY_MB 4096
#define MOCK_STR_(x)   #x
#define MOCK_STR(x)    MOCK_STR_(x)

#ifdef MOCK_FULL_OPS
/* The faults, checked by the core (ABI 1.2): a negative count or delay is refused. */
static const rlm_option_def mock_option_defs[] = {
        RLM_OPTION_DEF(.name = "fail_start", .type = RLM_OPT_BOOL, .default_json = "false",
                       .doc = "start() fails with RLM_EBACKEND"),
        RLM_OPTION_DEF(.name = "drop_after_bytes", .type = RLM_OPT_INT, .default_json = "0",
                       .flags = RLM_OPTF_MIN, .min = 0,
                       .doc = "kill the driver after this many output bytes of one request "
                              "(0: never)"),
        RLM_OPTION_DEF(.name = "garbage", .type = RLM_OPT_BOOL, .default_json = "false",
                       .doc = "inject junk text and a malformed frame between frames, and "
                              "split every chunk"),
        RLM_OPTION_DEF(.name = "slow_reply_ms", .type = RLM_OPT_INT, .default_json = "0",
                       .flags = RLM_OPTF_MIN | RLM_OPTF_MAX, .min = 0, .max = 600000,
                       .doc = "sleep this long before handing over each chunk"),
        RLM_OPTION_DEF(.name = "fail_upload", .type = RLM_OPT_BOOL, .default_json = "false",
                       .doc = "upload() fails with RLM_EBACKEND"),
        RLM_OPTION_DEF(.name = "max_memory_mb", .type = RLM_OPT_INT,
                       .default_json = MOCK_STR(MOCK_MEMORY_MB), .flags = RLM_OPTF_MIN, .min = 0,
                       .doc = "address-space limit of the driver, so a memory test cannot "
                              "exhaust the host (0: none)"),
        {0},
};
#endif

static mock *mock_new(const rlm_host_api *host, rlm_error *err)
{
	mock *m = host->alloc(sizeof(*m));

	if (!m) {
		host->error_set(err, RLM_ENOMEM, "mock: out of memory");
		return NULL;
	}
	memset(m, 0, sizeof(*m));
	m->host = host;
	m->pid = -1;
	m->fd = -1;
	m->at_boundary = true;
	return m;
}

#ifdef MOCK_FULL_OPS
static int mock_create_opts(const rlm_host_api *host, const rlm_options *o, void **instance,
                            rlm_error *err)
{
	mock *m = mock_new(host, err);

	if (!m)
		return RLM_ENOMEM;
	m->fail_start = host->opt_bool(o, "fail_start");
	m->drop_after_bytes = host->opt_int(o, "drop_after_bytes");
	m->garbage = host->opt_bool(o, "garbage");
	m->slow_reply_ms = host->opt_int(o, "slow_reply_ms");
	m->fail_upload = host->opt_bool(o, "fail_upload");
	m->max_memory_mb = host->opt_int(o, "max_memory_mb");
	*instance = m;
	return 0;
}

/* The loader wants the 1.0 slot filled; a host that has create_opts never calls it. */
static int mock_create(const rlm_host_api *host, const char *config_json, void **instance,
                       rlm_error *err)
{
	(void)config_json;
	*instance = NULL;
	return host->error_set(err, RLM_EPLUGIN, "mock: needs a host with plugin ABI 1.2");
}
#else
/* The short tables end at shutdown, before create_opts: these variants come through the 1.0
 * create and declare no options (the core refuses any key), so every fault is off. */
static int mock_create(const rlm_host_api *host, const char *config_json, void **instance,
                       rlm_error *err)
{
	mock *m = mock_new(host, err);

	(void)config_json;
	if (!m)
		return RLM_ENOMEM;
	m->max_memory_mb = MOCK_MEMORY_MB;
	*instance = m;
	return 0;
}
#endif

/* Kills the driver's whole process group (user code may have forked) and reaps the driver. */
static void stop_driver(mock *m)
{
	if (m->pid > 0) {
		kill(-m->pid, SIGKILL);
		kill(m->pid, SIGKILL);
		while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
			;
		m->pid = -1;
	}
	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
	m->at_boundary = true;
}

static int write_file(const char *path, const void *data, size_t len)
{
	const char *p = data;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd);
}

/* The child side of fork(): only async-signal-safe calls until exec. */
static void exec_driver(int sock, const char *dir, const char *script, long long max_memory_mb)
{
	struct rlimit as = {(rlim_t)max_memory_mb << 20, (rlim_t)max_memory_mb << 20};
	sigset_t none;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (max_memory_mb > 0)
		setrlimit(RLIMIT_AS, &as); /* the one containment kept: it binds root too */
	if (dup2(sock, 0) < 0 || dup2(sock, 1) < 0 || chdir(dir) < 0)
		_exit(126);
	closefrom(3);
	execlp("python3", "python3", script, "--workdir", dir, (char *)NULL);
	_exit(127);
}

static int launch_driver(mock *m, rlm_error *err)
{
	char script[PATH_MAX + 16];
	int sv[2];

	snprintf(script, sizeof(script), "%s/driver.py", m->dir);
	if (write_file(script, m->host->driver_script, m->host->driver_script_len) < 0)
		return m->host->error_set(err, RLM_EIO, "mock: cannot write %s: %s", script,
		                          strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return m->host->error_set(err, RLM_EBACKEND, "mock: socketpair: %s",
		                          strerror(errno));
	m->pid = fork();
	if (m->pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return m->host->error_set(err, RLM_EBACKEND, "mock: fork: %s", strerror(errno));
	}
	if (m->pid == 0)
		exec_driver(sv[1], m->dir, script, m->max_memory_mb);
	setpgid(m->pid, m->pid); /* also here, so a kill of the group never races the child */
#ifdef MOCK_LEAKS
	if (fork() == 0) {
		setsid();
		closefrom(0);
		execlp("sleep", "sleep", "300", (char *)NULL);
		_exit(127);
	}
#endif
	close(sv[1]);
	m->fd = sv[0];
	fcntl(m->fd, F_SETFL, fcntl(m->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

static int mock_start(void *instance, const rlm_launch *launch, rlm_error *err)
{
	mock *m = instance;

	(void)launch; /* the core's ready wait enforces start_timeout_s */
	if (m->fail_start)
		return m->host->error_set(err, RLM_EBACKEND, "mock: injected start failure");
	stop_driver(m); /* a restart after a hang or a dead driver */
	if (!m->dir[0]) {
		snprintf(m->dir, sizeof(m->dir), "/tmp/rlm-mock-XXXXXX");
		if (!mkdtemp(m->dir)) {
			m->dir[0] = '\0';
			return m->host->error_set(err, RLM_EIO, "mock: mkdtemp: %s",
			                          strerror(errno));
		}
	}
	return launch_driver(m, err);
}

/* Queues bytes for the driver; the core's reply buffer is only valid until the next on_data
 * call, so it is copied. */
static int queue_out(mock *m, mock_xfer *x, const char *data, size_t len)
{
	if (x->out_len + len > x->out_cap) {
		size_t cap = (x->out_len + len) * 2 + 256;
		char *p = m->host->realloc(x->out, cap);

		if (!p)
			return -1;
		x->out = p;
		x->out_cap = cap;
	}
	memcpy(x->out + x->out_len, data, len);
	x->out_len += len;
	return 0;
}

/* Hands one piece to the core: <0 an error, 1 done, 0 more. */
static int feed(mock *m, mock_xfer *x, const rlm_exchange *ex, const char *data, size_t len,
                rlm_error *err)
{
	const char *reply = NULL;
	size_t reply_len = 0;
	int rc = ex->on_data(ex->ctx, data, len, &reply, &reply_len);

	if (rc < 0)
		return m->host->error_set(err, rc, "mock: exchange aborted by the core (%d)", rc);
	if (reply && reply_len && queue_out(m, x, reply, reply_len) < 0)
		return m->host->error_set(err, RLM_ENOMEM, "mock: out of memory");
	return rc == RLM_EXCHANGE_DONE;
}

/* Passes a real chunk on, with the configured delay and garbage. Junk only goes in at frame
 * boundaries (frames never hold a raw LF), where a reader must skip it. */
static int feed_chunk(mock *m, mock_xfer *x, const rlm_exchange *ex, const char *data, size_t len,
                      rlm_error *err)
{
	size_t half = len / 2;
	int rc;

	if (m->slow_reply_ms > 0 &&
	    m->host->sleep((double)m->slow_reply_ms / 1000,
	                   RLM_HAS_FIELD(ex, cancel) ? ex->cancel : NULL) == RLM_ECANCELLED)
		return m->host->error_set(err, RLM_ECANCELLED, "mock: cancelled");
	if (m->garbage && m->at_boundary) {
		if ((rc = feed(m, x, ex, MOCK_JUNK, strlen(MOCK_JUNK), err)) != 0)
			return rc;
		if ((rc = feed(m, x, ex, MOCK_BAD_FRAME, strlen(MOCK_BAD_FRAME), err)) != 0)
			return rc;
	}
	m->at_boundary = len > 0 && data[len - 1] == '\n';
	if (m->garbage && half > 0) {
		if ((rc = feed(m, x, ex, data, half, err)) != 0)
			return rc;
		return feed(m, x, ex, data + half, len - half, err);
	}
	return feed(m, x, ex, data, len, err);
}

/* The channel closed: reap the driver (briefly: it may still be exiting) and report how. */
static int channel_closed(mock *m, const char *why, rlm_error *err)
{
	int status = 0;
	pid_t r = 0;

	for (int i = 0; i < 100 && m->pid > 0; i++) {
		r = waitpid(m->pid, &status, WNOHANG);
		if (r != 0)
			break;
		usleep(10000);
	}
	if (r == m->pid)
		m->pid = -1; /* reaped: stop_driver must not signal a recycled pid */
	stop_driver(m);
	if (r > 0 && WIFEXITED(status))
		return m->host->error_set(err, RLM_EBACKEND,
		                          "mock: %s: driver exited with status %d", why,
		                          WEXITSTATUS(status));
	if (r > 0 && WIFSIGNALED(status))
		return m->host->error_set(err, RLM_EBACKEND, "mock: %s: driver killed by signal %d",
		                          why, WTERMSIG(status));
	return m->host->error_set(err, RLM_EBACKEND, "mock: %s: driver still running, killed", why);
}

static int flush_out(mock *m, mock_xfer *x, rlm_error *err)
{
	ssize_t n = send(m->fd, x->out, x->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		return channel_closed(m, "write failed", err);
	memmove(x->out, x->out + n, x->out_len - (size_t)n);
	x->out_len -= (size_t)n;
	return 0;
}

/* Reads what the driver wrote and hands it on, dropping the channel when asked to. */
static int read_in(mock *m, mock_xfer *x, const rlm_exchange *ex, long long *seen, rlm_error *err)
{
	char buf[65536];
	ssize_t n = read(m->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		return channel_closed(m, strerror(errno), err);
	if (n == 0)
		return channel_closed(m, "channel closed", err);
	if (ex->request_len > 0 && m->drop_after_bytes > 0 && *seen + n >= m->drop_after_bytes) {
		int rc = feed_chunk(m, x, ex, buf, (size_t)(m->drop_after_bytes - *seen), err);

		if (rc < 0)
			return rc;
		stop_driver(m);
		return m->host->error_set(err, RLM_EBACKEND,
		                          "mock: channel dropped after %lld bytes (injected)",
		                          m->drop_after_bytes);
	}
	*seen += n;
	return feed_chunk(m, x, ex, buf, (size_t)n, err);
}

/* One exchange: write the request while reading, until the core says done. Drops are only
 * injected into exchanges with a request, so the ready handshake (and open) still works. */
static int exchange_loop(mock *m, mock_xfer *x, const rlm_exchange *ex, rlm_error *err)
{
	long long seen = 0;
	int rc;

	for (;;) {
		double left = ex->deadline - m->host->now();
		struct pollfd p = {m->fd, POLLIN, 0};

		if (m->fd < 0) /* a nested exchange found the channel closed */
			return m->host->error_set(err, RLM_EBACKEND, "mock: the driver is gone");
		if (left <= 0)
			return m->host->error_set(err, RLM_ETIMEOUT, "mock: deadline passed");
		if (x->out_len)
			p.events |= POLLOUT;
		if (poll(&p, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1) <= 0)
			continue;
		if ((p.revents & POLLOUT) && (rc = flush_out(m, x, err)) < 0)
			return rc;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			rc = read_in(m, x, ex, &seen, err);
			if (rc != 0)
				return rc < 0 ? rc : 0;
		}
	}
}

static int mock_execute(void *instance, const rlm_exchange *ex, rlm_error *err)
{
	mock *m = instance;
	mock_xfer x = {NULL, 0, 0};
	int rc;

	if (m->fd < 0)
		return m->host->error_set(err, RLM_EBACKEND, "mock: the driver is not running");
	if (ex->request_len && queue_out(m, &x, ex->request, ex->request_len) < 0)
		return m->host->error_set(err, RLM_ENOMEM, "mock: out of memory");
	rc = exchange_loop(m, &x, ex, err);
	m->host->free(x.out);
	return rc;
}

/* Relative paths are under the sandbox's work directory, the temp dir. */
static void resolve(const mock *m, const char *remote_path, char *path, size_t size)
{
	if (remote_path[0] == '/')
		snprintf(path, size, "%s", remote_path);
	else
		snprintf(path, size, "%s/%s", m->dir, remote_path);
}

/* mkdir -p of path's parent directory. */
static void make_parents(char *path)
{
	for (char *p = path + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755); /* EEXIST and the rest: the write below reports what matters */
		*p = '/';
	}
}

static int mock_upload(void *instance, const void *data, size_t len, const char *remote_path,
                       rlm_error *err)
{
	mock *m = instance;
	char path[PATH_MAX * 2];

	if (m->fail_upload)
		return m->host->error_set(err, RLM_EBACKEND, "mock: injected upload failure");
	if (!m->dir[0])
		return m->host->error_set(err, RLM_EBACKEND, "mock: not started");
	resolve(m, remote_path, path, sizeof(path));
	make_parents(path);
	if (write_file(path, data, len) < 0)
		return m->host->error_set(err, errno == ENOENT ? RLM_ENOTFOUND : RLM_EIO,
		                          "mock: cannot write %s: %s", path, strerror(errno));
	return 0;
}

static int mock_download(void *instance, const char *remote_path, rlm_buf *out, rlm_error *err)
{
	mock *m = instance;
	char path[PATH_MAX * 2];
	struct stat st;
	int fd;
	size_t got = 0;

	if (!m->dir[0])
		return m->host->error_set(err, RLM_EBACKEND, "mock: not started");
	resolve(m, remote_path, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int code = errno == ENOENT ? RLM_ENOTFOUND : RLM_EIO;

		if (fd >= 0)
			close(fd);
		return m->host->error_set(err, code, "mock: cannot read %s: %s", path,
		                          strerror(errno));
	}
	out->data = m->host->alloc((size_t)st.st_size + 1);
	if (!out->data) {
		close(fd);
		return m->host->error_set(err, RLM_ENOMEM, "mock: out of memory");
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, out->data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	out->data[got] = '\0';
	out->len = got;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Works in any state: before start, after a failed start, after the driver died. */
static void mock_shutdown(void *instance)
{
	mock *m = instance;

	if (!m)
		return;
	stop_driver(m);
	if (m->dir[0])
		nftw(m->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	m->host->free(m);
}

#ifdef MOCK_FULL_OPS
static int mock_interrupt(void *instance, rlm_error *err)
{
	mock *m = instance;

	if (m->pid <= 0)
		return m->host->error_set(err, RLM_EBACKEND, "mock: the driver is not running");
	if (kill(m->pid, SIGINT) < 0)
		return m->host->error_set(err, RLM_EBACKEND, "mock: kill: %s", strerror(errno));
	return 0;
}

static int mock_control(void *instance, const char *op, const char *arg_json, rlm_buf *out,
                        rlm_error *err)
{
	mock *m = instance;
	char text[PATH_MAX + 128];
	int n;

	(void)arg_json;
	if (strcmp(op, "status") != 0)
		return m->host->error_set(err, RLM_ENOTSUP, "mock: unknown control op '%s'", op);
	n = snprintf(text, sizeof(text), "{\"isolation\":\"none\",\"pid\":%d,\"dir\":\"%s\"}",
	             (int)m->pid, m->dir);
	out->data = m->host->alloc((size_t)n + 1);
	if (!out->data)
		return m->host->error_set(err, RLM_ENOMEM, "mock: out of memory");
	memcpy(out->data, text, (size_t)n + 1);
	out->len = (size_t)n;
	return 0;
}
#endif

#ifndef MOCK_FULL_OPS
/* Past struct_size: never to be called. Each says who called it and fails. */
static int poison_interrupt(void *instance, rlm_error *err)
{
	mock *m = instance;

	fprintf(stderr, "%s: interrupt called past struct_size\n", MOCK_NAME);
	return m->host->error_set(err, RLM_EPLUGIN, "%s: interrupt called past struct_size",
	                          MOCK_NAME);
}

static int poison_run_command(void *instance, const rlm_command *cmd, rlm_command_result *res,
                              rlm_error *err)
{
	mock *m = instance;

	(void)cmd;
	(void)res;
	fprintf(stderr, "%s: run_command called past struct_size\n", MOCK_NAME);
	return m->host->error_set(err, RLM_EPLUGIN, "%s: run_command called past struct_size",
	                          MOCK_NAME);
}

static int poison_is_alive(void *instance)
{
	(void)instance;
	fprintf(stderr, "%s: is_alive called past struct_size\n", MOCK_NAME);
	return 0;
}

static int poison_control(void *instance, const char *op, const char *arg_json, rlm_buf *out,
                          rlm_error *err)
{
	mock *m = instance;

	(void)op;
	(void)arg_json;
	(void)out;
	fprintf(stderr, "%s: control called past struct_size\n", MOCK_NAME);
	return m->host->error_set(err, RLM_EPLUGIN, "%s: control called past struct_size",
	                          MOCK_NAME);
}

static const rlm_backend_ops mock_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = offsetof(rlm_backend_ops, interrupt),
        .create = mock_create,
        .start = mock_start,
        .execute = mock_execute,
        .upload = mock_upload,
        .download = mock_download,
        .shutdown = mock_shutdown,
        .interrupt = poison_interrupt,
        .run_command = poison_run_command,
        .is_alive = poison_is_alive,
        .control = poison_control,
};

#ifdef MOCK_SHORT_OPS
#define MOCK_CAPABILITIES 0
#define MOCK_SUMMARY      "test backend: the mock with an ops table that ends at shutdown"
#else
#define MOCK_CAPABILITIES RLM_CAP_RUN_COMMAND
#define MOCK_SUMMARY      "test backend: claims run_command, its ops table ends at shutdown"
#endif
#else
static const rlm_backend_ops mock_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_backend_ops),
        .create = mock_create,
        .start = mock_start,
        .execute = mock_execute,
        .upload = mock_upload,
        .download = mock_download,
        .shutdown = mock_shutdown,
        .interrupt = mock_interrupt,
        .control = mock_control,
        .create_opts = mock_create_opts,
};

#define MOCK_CAPABILITIES (RLM_CAP_INTERRUPT | RLM_CAP_NESTED_EXECUTE)
#define MOCK_SUMMARY      "test backend: the driver as a plain child process, with injectable faults"
#endif

static const rlm_plugin_desc mock_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_BACKEND,
        .name = MOCK_NAME,
        .summary = MOCK_SUMMARY,
        .version = "0.1.0",
        .capabilities = MOCK_CAPABILITIES,
#ifdef MOCK_FULL_OPS
        .option_defs = mock_option_defs,
#endif
        .ops = &mock_ops,
};

RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	if (!host || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR)
		return RLM_EPLUGIN;
	*out = &mock_desc;
	return 0;
}
