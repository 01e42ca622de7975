/* backend.c - a minimal rlm backend plugin, to copy and grow (rlm-backend-template.so).
 *
 * The sandbox is a plain child process: `python3 <tmpdir>/driver.py`, the driver the host
 * hands over (host->driver_script), whose stdin and stdout are one end of a socketpair (the
 * driver's default channel mode). No isolation at all: user code runs as you, so this backend
 * does not declare RLM_CAP_CONTAINS_BOMBS and rlm-conformance skips its bomb cases.
 * Everything a plugin needs from the host comes through rlm_host_api: it links nothing of
 * librlm. It passes the installed suite:  rlm-conformance --plugin ./rlm-backend-template.so
 *
 * What to replace for a real sandbox: launch_driver() (start the driver there, with its
 * input and output reachable from here), the read/write of the exchange loop, and
 * upload/download. execute() may be re-entered from its own on_data callback
 * (RLM_CAP_NESTED_EXECUTE), so what one exchange still has to write lives in that call's frame. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rlm/plugin.h"

#define NAME "template"

typedef struct tpl {
	const rlm_host_api *host;
	char dir[PATH_MAX]; /* the sandbox's work dir, "" until start() made it */
	pid_t pid;          /* driver (and process group leader), -1 when none */
	int fd;             /* our end of the channel socket, -1 when none */
} tpl;

/* One execute() call's bytes still to write to the driver. */
typedef struct tpl_xfer {
	char *out;
	size_t out_len;
	size_t out_cap;
} tpl_xfer;

/* No options: a real backend lists its own here (name, type, default, doc); the core
 * validates its config section against them and hands it to create() as JSON. */
static const rlm_option_spec tpl_options[] = {
        {NULL, 0, NULL, NULL},
};

static int tpl_create(const rlm_host_api *host, const char *config_json, void **instance,
                      rlm_error *err)
{
	tpl *m = host->alloc(sizeof(*m));

	(void)config_json;
	if (!m)
		return host->error_set(err, RLM_ENOMEM, NAME ": out of memory");
	memset(m, 0, sizeof(*m));
	m->host = host;
	m->pid = -1;
	m->fd = -1;
	*instance = m;
	return 0;
}

/* Kills the driver's whole process group (user code may have forked) and reaps the driver. */
static void stop_driver(tpl *m)
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
static void exec_driver(int sock, const char *dir, const char *script)
{
	sigset_t none;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (dup2(sock, 0) < 0 || dup2(sock, 1) < 0 || chdir(dir) < 0)
		_exit(126);
	closefrom(3);
	execlp("python3", "python3", script, "--workdir", dir, (char *)NULL);
	_exit(127);
}

static int launch_driver(tpl *m, rlm_error *err)
{
	char script[PATH_MAX + 16];
	int sv[2];

	snprintf(script, sizeof(script), "%s/driver.py", m->dir);
	if (write_file(script, m->host->driver_script, m->host->driver_script_len) < 0)
		return m->host->error_set(err, RLM_EIO, NAME ": cannot write %s: %s", script,
		                          strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return m->host->error_set(err, RLM_EBACKEND, NAME ": socketpair: %s",
		                          strerror(errno));
	m->pid = fork();
	if (m->pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return m->host->error_set(err, RLM_EBACKEND, NAME ": fork: %s", strerror(errno));
	}
	if (m->pid == 0)
		exec_driver(sv[1], m->dir, script);
	setpgid(m->pid, m->pid); /* also here, so a kill of the group never races the child */
	close(sv[1]);
	m->fd = sv[0];
	fcntl(m->fd, F_SETFL, fcntl(m->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

static int tpl_start(void *instance, const rlm_launch *launch, rlm_error *err)
{
	tpl *m = instance;

	(void)launch;   /* the core's ready wait enforces start_timeout_s */
	stop_driver(m); /* a restart after a hang or a dead driver */
	if (!m->dir[0]) {
		snprintf(m->dir, sizeof(m->dir), "/tmp/rlm-template-XXXXXX");
		if (!mkdtemp(m->dir)) {
			m->dir[0] = '\0';
			return m->host->error_set(err, RLM_EIO, NAME ": mkdtemp: %s",
			                          strerror(errno));
		}
	}
	return launch_driver(m, err);
}

/* Queues bytes for the driver; the core's reply buffer is only valid until the next on_data
 * call, so it is copied. */
static int queue_out(tpl *m, tpl_xfer *x, const char *data, size_t len)
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
static int feed(tpl *m, tpl_xfer *x, const rlm_exchange *ex, const char *data, size_t len,
                rlm_error *err)
{
	const char *reply = NULL;
	size_t reply_len = 0;
	int rc = ex->on_data(ex->ctx, data, len, &reply, &reply_len);

	if (rc < 0)
		return m->host->error_set(err, rc, NAME ": exchange aborted by the core (%d)", rc);
	if (reply && reply_len && queue_out(m, x, reply, reply_len) < 0)
		return m->host->error_set(err, RLM_ENOMEM, NAME ": out of memory");
	return rc == RLM_EXCHANGE_DONE;
}

/* The channel closed: reap the driver (briefly: it may still be exiting) and report how. */
static int channel_closed(tpl *m, const char *why, rlm_error *err)
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
		                          NAME ": %s: driver exited with status %d", why,
		                          WEXITSTATUS(status));
	if (r > 0 && WIFSIGNALED(status))
		return m->host->error_set(err, RLM_EBACKEND,
		                          NAME ": %s: driver killed by signal %d", why,
		                          WTERMSIG(status));
	return m->host->error_set(err, RLM_EBACKEND, NAME ": %s: driver still running, killed",
	                          why);
}

static int flush_out(tpl *m, tpl_xfer *x, rlm_error *err)
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

/* Reads what the driver wrote and hands it on. */
static int read_in(tpl *m, tpl_xfer *x, const rlm_exchange *ex, rlm_error *err)
{
	char buf[65536];
	ssize_t n = read(m->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		return channel_closed(m, strerror(errno), err);
	if (n == 0)
		return channel_closed(m, "channel closed", err);
	return feed(m, x, ex, buf, (size_t)n, err);
}

/* One exchange: write the request while reading, until the core says done or the deadline
 * passes. The wait is sliced, so a cancel flag (ex->cancel, ABI 1.2) is seen within 100 ms. */
static int exchange_loop(tpl *m, tpl_xfer *x, const rlm_exchange *ex, rlm_error *err)
{
	int rc;

	for (;;) {
		double left = ex->deadline - m->host->now();
		struct pollfd p = {m->fd, POLLIN, 0};

		if (m->fd < 0) /* a nested exchange found the channel closed */
			return m->host->error_set(err, RLM_EBACKEND, NAME ": the driver is gone");
		if (left <= 0)
			return m->host->error_set(err, RLM_ETIMEOUT, NAME ": deadline passed");
		if (RLM_HAS_FIELD(ex, cancel) && ex->cancel && *ex->cancel)
			return m->host->error_set(err, RLM_ECANCELLED, NAME ": cancelled");
		if (x->out_len)
			p.events |= POLLOUT;
		if (poll(&p, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1) <= 0)
			continue;
		if ((p.revents & POLLOUT) && (rc = flush_out(m, x, err)) < 0)
			return rc;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			rc = read_in(m, x, ex, err);
			if (rc != 0)
				return rc < 0 ? rc : 0;
		}
	}
}

static int tpl_execute(void *instance, const rlm_exchange *ex, rlm_error *err)
{
	tpl *m = instance;
	tpl_xfer x = {NULL, 0, 0};
	int rc;

	if (m->fd < 0)
		return m->host->error_set(err, RLM_EBACKEND, NAME ": the driver is not running");
	if (ex->request_len && queue_out(m, &x, ex->request, ex->request_len) < 0)
		return m->host->error_set(err, RLM_ENOMEM, NAME ": out of memory");
	rc = exchange_loop(m, &x, ex, err);
	m->host->free(x.out);
	return rc;
}

/* Relative paths are under the sandbox's work directory, the temp dir. */
static void resolve(const tpl *m, const char *remote_path, char *path, size_t size)
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

static int tpl_upload(void *instance, const void *data, size_t len, const char *remote_path,
                      rlm_error *err)
{
	tpl *m = instance;
	char path[PATH_MAX * 2];

	if (!m->dir[0])
		return m->host->error_set(err, RLM_EBACKEND, NAME ": not started");
	resolve(m, remote_path, path, sizeof(path));
	make_parents(path);
	if (write_file(path, data, len) < 0)
		return m->host->error_set(err, errno == ENOENT ? RLM_ENOTFOUND : RLM_EIO,
		                          NAME ": cannot write %s: %s", path, strerror(errno));
	return 0;
}

static int tpl_download(void *instance, const char *remote_path, rlm_buf *out, rlm_error *err)
{
	tpl *m = instance;
	char path[PATH_MAX * 2];
	struct stat st;
	int fd;
	size_t got = 0;

	if (!m->dir[0])
		return m->host->error_set(err, RLM_EBACKEND, NAME ": not started");
	resolve(m, remote_path, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int code = errno == ENOENT ? RLM_ENOTFOUND : RLM_EIO;

		if (fd >= 0)
			close(fd);
		return m->host->error_set(err, code, NAME ": cannot read %s: %s", path,
		                          strerror(errno));
	}
	out->data = m->host->alloc((size_t)st.st_size + 1);
	if (!out->data) {
		close(fd);
		return m->host->error_set(err, RLM_ENOMEM, NAME ": out of memory");
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
static void tpl_shutdown(void *instance)
{
	tpl *m = instance;

	if (!m)
		return;
	stop_driver(m);
	if (m->dir[0])
		nftw(m->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	m->host->free(m);
}

static int tpl_interrupt(void *instance, rlm_error *err)
{
	tpl *m = instance;

	if (m->pid <= 0)
		return m->host->error_set(err, RLM_EBACKEND, NAME ": the driver is not running");
	if (kill(m->pid, SIGINT) < 0)
		return m->host->error_set(err, RLM_EBACKEND, NAME ": kill: %s", strerror(errno));
	return 0;
}

static const rlm_backend_ops tpl_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_backend_ops),
        .create = tpl_create,
        .start = tpl_start,
        .execute = tpl_execute,
        .upload = tpl_upload,
        .download = tpl_download,
        .shutdown = tpl_shutdown,
        .interrupt = tpl_interrupt,
};

static const rlm_plugin_desc tpl_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_BACKEND,
        .name = NAME,
        .summary = "template backend: the driver as a plain local child process, no isolation",
        .version = "0.1.0",
        .capabilities = RLM_CAP_INTERRUPT | RLM_CAP_NESTED_EXECUTE,
        .options = tpl_options,
        .ops = &tpl_ops,
};

/* The one exported symbol. The host's ABI must have our major version. */
RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	if (!host || RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR)
		return RLM_EPLUGIN;
	*out = &tpl_desc;
	return 0;
}
