/* mini_backend.c - the smallest real backend plugin, built three ways to test the ABI:
 *
 *   (default)             rlm-backend-abi11.so, compiled with -I tests/abi/v1_1 only: the
 *                         frozen ABI 1.1 headers, so the ABI 1.0 `options` specs and create();
 *                         a current host must still load it, validate its section and run it.
 *   -DMINI_CREATE_OPTS    rlm-backend-optsonly.so (current headers): option_defs and
 *                         create_opts() only, create left NULL: a 1.2 host must load it.
 *   -DMINI_NO_CREATE      rlm-backend-nocreate.so (current headers): neither create nor
 *                         create_opts: the loader must refuse it, naming it.
 *
 * It runs the real driver as `python3 <tmpdir>/driver.py` on one end of a socketpair. No
 * isolation and no optional slot but control("status"), which answers the validated section
 * the plugin was created with (so a test sees the host's defaults arrive). Only host->* and libc.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp */
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rlm/plugin.h"

#if defined(MINI_CREATE_OPTS)
#define MINI_NAME "optsonly"
#elif defined(MINI_NO_CREATE)
#define MINI_NAME "nocreate"
#else
#define MINI_NAME "abi11"
#if RLM_ABI_MINOR != 1
#error "rlm-backend-abi11 must be compiled against the frozen ABI 1.1 headers (tests/abi/v1_1)"
#endif
#endif

typedef struct mini {
	const rlm_host_api *host;
	char *config; /* the section it was created with, as JSON text */
	char dir[64];
	pid_t pid;
	int fd;
} mini;

#if !defined(MINI_NO_CREATE)
static int mini_new(const rlm_host_api *host, const char *config, void **instance, rlm_error *err)
{
	mini *m = host->alloc(sizeof(*m));
	size_t n = strlen(config);

	if (!m || !(m->config = host->alloc(n + 1))) {
		host->free(m);
		return host->error_set(err, RLM_ENOMEM, MINI_NAME ": out of memory");
	}
	memcpy(m->config, config, n + 1);
	m->host = host;
	m->dir[0] = '\0';
	m->pid = -1;
	m->fd = -1;
	*instance = m;
	return 0;
}
#endif

#if !defined(MINI_CREATE_OPTS) && !defined(MINI_NO_CREATE)
static const rlm_option_spec mini_options[] = {
        {"label", RLM_OPT_STRING, "\"abi11\"", "a string the status answer shows"},
        {"level", RLM_OPT_INT, "3", "an integer the status answer shows"},
        {NULL, 0, NULL, NULL},
};

static int mini_create(const rlm_host_api *host, const char *config_json, void **instance,
                       rlm_error *err)
{
	return mini_new(host, config_json, instance, err);
}
#endif

#if defined(MINI_CREATE_OPTS)
static const rlm_option_def mini_defs[] = {
        RLM_OPTION_DEF(.name = "label", .type = RLM_OPT_STRING, .default_json = "\"opts\"",
                       .doc = "a string the status answer shows", .flags = RLM_OPTF_NONEMPTY),
        RLM_OPTION_DEF(.name = "level", .type = RLM_OPT_INT, .default_json = "3",
                       .doc = "an integer in [1, 9]", .flags = RLM_OPTF_MIN | RLM_OPTF_MAX,
                       .min = 1, .max = 9),
        RLM_OPTION_DEF(.name = "token", .type = RLM_OPT_STRING,
                       .default_json = "\"default-token-0xC0FFEE\"", .doc = "a secret: never shown",
                       .env = "RLM_TEST_OPTSONLY_TOKEN", .flags = RLM_OPTF_SECRET),
        {0},
};

static int mini_create_opts(const rlm_host_api *host, const rlm_options *opts, void **instance,
                            rlm_error *err)
{
	char *text = host->str_printf("{\"label\":\"%s\",\"level\":%lld,\"via\":\"create_opts\"}",
	                              host->opt_string(opts, "label"),
	                              (long long)host->opt_int(opts, "level"));
	int rc;

	if (!text)
		return host->error_set(err, RLM_ENOMEM, MINI_NAME ": out of memory");
	rc = mini_new(host, text, instance, err);
	host->free(text);
	return rc;
}
#endif

static void stop_driver(mini *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if (m->pid > 0) {
		kill(-m->pid, SIGKILL);
		while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	m->pid = -1;
}

static int mini_start(void *instance, const rlm_launch *launch, rlm_error *err)
{
	mini *m = instance;
	char script[96];
	int sv[2], fd;
	size_t off = 0;

	(void)launch; /* the core's ready wait enforces start_timeout_s */
	stop_driver(m);
	if (!m->dir[0]) {
		strcpy(m->dir, "/tmp/rlm-" MINI_NAME "-XXXXXX");
		if (!mkdtemp(m->dir)) {
			m->dir[0] = '\0';
			return m->host->error_set(err, RLM_EIO, MINI_NAME ": mkdtemp: %s",
			                          strerror(errno));
		}
	}
	snprintf(script, sizeof(script), "%s/driver.py", m->dir);
	fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	while (fd >= 0 && off < m->host->driver_script_len) {
		ssize_t n =
		        write(fd, m->host->driver_script + off, m->host->driver_script_len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (fd < 0 || off < m->host->driver_script_len || close(fd) != 0)
		return m->host->error_set(err, RLM_EIO, MINI_NAME ": cannot write %s", script);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return m->host->error_set(err, RLM_EBACKEND, MINI_NAME ": socketpair: %s",
		                          strerror(errno));
	m->pid = fork();
	if (m->pid == 0) {
		sigset_t none;
		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0 || chdir(m->dir) < 0)
			_exit(126);
		execlp("python3", "python3", script, "--workdir", m->dir, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	if (m->pid < 0) {
		close(sv[0]);
		return m->host->error_set(err, RLM_EBACKEND, MINI_NAME ": fork: %s",
		                          strerror(errno));
	}
	setpgid(m->pid, m->pid);
	m->fd = sv[0];
	return 0;
}

/* Writes all of data before the deadline. */
static int send_all(mini *m, const char *data, size_t len, double deadline, rlm_error *err)
{
	while (len > 0) {
		struct pollfd p = {m->fd, POLLOUT, 0};
		double left = deadline - m->host->now();
		ssize_t n;

		if (left <= 0)
			return m->host->error_set(err, RLM_ETIMEOUT, MINI_NAME ": deadline passed");
		if (poll(&p, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1) <= 0)
			continue;
		n = send(m->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return m->host->error_set(err, RLM_EBACKEND, MINI_NAME ": write: %s",
			                          strerror(errno));
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int mini_execute(void *instance, const rlm_exchange *ex, rlm_error *err)
{
	mini *m = instance;
	char buf[65536];
	int rc;

	if (m->fd < 0)
		return m->host->error_set(err, RLM_EBACKEND,
		                          MINI_NAME ": the driver is not running");
	if ((rc = send_all(m, ex->request, ex->request_len, ex->deadline, err)) < 0)
		return rc;
	for (;;) {
		struct pollfd p = {m->fd, POLLIN, 0};
		double left = ex->deadline - m->host->now();
		const char *reply = NULL;
		size_t reply_len = 0;
		ssize_t n;

		if (left <= 0)
			return m->host->error_set(err, RLM_ETIMEOUT, MINI_NAME ": deadline passed");
		if (poll(&p, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1) <= 0)
			continue;
		n = recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			stop_driver(m);
			return m->host->error_set(err, RLM_EBACKEND, MINI_NAME ": channel closed");
		}
		rc = ex->on_data(ex->ctx, buf, (size_t)n, &reply, &reply_len);
		if (rc < 0)
			return rc;
		if (reply_len && (rc = send_all(m, reply, reply_len, ex->deadline, err)) < 0)
			return rc;
		if (rc == RLM_EXCHANGE_DONE)
			return 0;
	}
}

static void resolve(const mini *m, const char *remote, char *path, size_t size)
{
	if (remote[0] == '/')
		snprintf(path, size, "%s", remote);
	else
		snprintf(path, size, "%s/%s", m->dir, remote);
}

static int mini_upload(void *instance, const void *data, size_t len, const char *remote_path,
                       rlm_error *err)
{
	mini *m = instance;
	char path[PATH_MAX];
	FILE *f;

	resolve(m, remote_path, path, sizeof(path));
	for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(path, 0700);
		*s = '/';
	}
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		int e = errno;
		return m->host->error_set(err, RLM_EIO, MINI_NAME ": cannot write %s: %s",
		                          remote_path, strerror(e));
	}
	return 0;
}

static int mini_download(void *instance, const char *remote_path, rlm_buf *out, rlm_error *err)
{
	mini *m = instance;
	char path[PATH_MAX];
	struct stat st;
	FILE *f;

	resolve(m, remote_path, path, sizeof(path));
	out->data = NULL;
	out->len = 0;
	f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &st) != 0 ||
	    !(out->data = m->host->alloc((size_t)st.st_size + 1)) ||
	    fread(out->data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		if (f)
			fclose(f);
		m->host->free(out->data);
		out->data = NULL;
		return m->host->error_set(err, RLM_EIO, MINI_NAME ": cannot read %s", remote_path);
	}
	fclose(f);
	out->len = (size_t)st.st_size;
	out->data[out->len] = '\0';
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

static void mini_shutdown(void *instance)
{
	mini *m = instance;

	stop_driver(m);
	if (m->dir[0])
		nftw(m->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	m->host->free(m->config);
	m->host->free(m);
}

static int mini_control(void *instance, const char *op, const char *arg_json, rlm_buf *out,
                        rlm_error *err)
{
	mini *m = instance;
	size_t n = strlen(m->config);

	(void)arg_json;
	if (strcmp(op, "status"))
		return m->host->error_set(err, RLM_ENOTSUP, MINI_NAME ": no op %s", op);
	if (!(out->data = m->host->alloc(n + 1)))
		return m->host->error_set(err, RLM_ENOMEM, MINI_NAME ": out of memory");
	memcpy(out->data, m->config, n + 1);
	out->len = n;
	return 0;
}

static const rlm_backend_ops mini_ops = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_backend_ops),
#if !defined(MINI_CREATE_OPTS) && !defined(MINI_NO_CREATE)
        .create = mini_create,
#endif
        .start = mini_start,
        .execute = mini_execute,
        .upload = mini_upload,
        .download = mini_download,
        .shutdown = mini_shutdown,
        .control = mini_control,
#if defined(MINI_CREATE_OPTS)
        .create_opts = mini_create_opts,
#endif
};

static const rlm_plugin_desc mini_desc = {
        .abi_version = RLM_ABI_VERSION,
        .struct_size = sizeof(rlm_plugin_desc),
        .kind = RLM_PLUGIN_BACKEND,
        .name = MINI_NAME,
        .summary = "a minimal backend for the ABI compatibility tests",
        .version = "1",
#if !defined(MINI_CREATE_OPTS) && !defined(MINI_NO_CREATE)
        .options = mini_options,
#endif
        .ops = &mini_ops,
#if defined(MINI_CREATE_OPTS)
        .option_defs = mini_defs,
#endif
};

RLM_PLUGIN_EXPORT int rlm_plugin_entry(const rlm_host_api *host, uint32_t host_abi,
                                       const rlm_plugin_desc **out)
{
	(void)host;
	if (RLM_ABI_MAJOR_OF(host_abi) != RLM_ABI_MAJOR)
		return RLM_EPLUGIN;
	*out = &mini_desc;
	return 0;
}
