/* local_pyc.c - a compiled copy of the driver, cached per interpreter binary.
 *
 * Python recompiles a script it runs directly on every start, and compiling driver.py costs
 * about as much as starting the interpreter. Python also runs a .pyc file directly, so the
 * host compiles the driver once per (driver text, interpreter binary) into a cache directory
 * only the host can write, and each start copies the bytes into the sandbox's work dir. The
 * sandbox can never write the cache, so one sandbox cannot plant code in the next. Any
 * failure here is not an error: the caller falls back to the source. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "local_internal.h"

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The cache key: the driver's bytes and the interpreter's identity (path, size, mtime), so
 * an upgraded python3 at the same path never gets a .pyc with the wrong magic number. */
static int cache_key(const rlm_host_api *host, const char *python, uint64_t *key)
{
	struct stat st;
	if (stat(python, &st) < 0)
		return -1;
	uint64_t h = fnv1a(0xcbf29ce484222325ull, host->driver_script, host->driver_script_len);
	h = fnv1a(h, python, strlen(python));
	h = fnv1a(h, &st.st_size, sizeof(st.st_size));
	h = fnv1a(h, &st.st_mtim, sizeof(st.st_mtim));
	*key = h;
	return 0;
}

static int make_dir(const char *path, mode_t mode)
{
	return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -1;
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd);
}

/* Runs `python -I -c <compile> src dst` as the host user and waits for it. */
static int compile_pyc(const char *python, const char *src, const char *dst)
{
	static const char prog[] = "import py_compile, sys\n"
	                           "py_compile.compile(sys.argv[1], cfile=sys.argv[2], "
	                           "dfile='driver.py', doraise=True)\n";
	char *const argv[] = {(char *)python, "-I",        "-c", (char *)prog,
	                      (char *)src,    (char *)dst, NULL};
	char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL};
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		execve(python, argv, envp);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int read_file(const rlm_host_api *host, const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (64 << 20)) {
		close(fd);
		return -1;
	}
	char *buf = host->alloc((size_t)st.st_size);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		host->free(buf);
		return -1;
	}
	*out = buf;
	*len = got;
	return 0;
}

LOCAL_HIDDEN int rlm_local_driver_pyc(const rlm_host_api *host, const char *python, char **out,
                                      size_t *len)
{
	const char *data_dir = host->data_dir ? host->data_dir() : NULL;
	uint64_t key;
	char dir[4096], pyc[4200], tmp_src[4300], tmp_pyc[4300];
	if (!data_dir || !*data_dir || cache_key(host, python, &key) < 0)
		return -1;
	if (strlen(data_dir) > 4000)
		return -1;
	snprintf(dir, sizeof(dir), "%s/cache", data_dir);
	snprintf(pyc, sizeof(pyc), "%.4000s/driver-%016llx.pyc", dir, (unsigned long long)key);
	if (read_file(host, pyc, out, len) == 0)
		return 0;
	/* The data dir must stay searchable: volumes live under it and sandboxes run under
	 * other uids when rlm runs as root. The cache itself is the host's alone. */
	if (make_dir(data_dir, 0755) < 0 || make_dir(dir, 0700) < 0)
		return -1;
	/* Unique temp names: several processes may fill the cache at once; rename is atomic. */
	snprintf(tmp_src, sizeof(tmp_src), "%.4200s.%ld.py", pyc, (long)getpid());
	snprintf(tmp_pyc, sizeof(tmp_pyc), "%.4200s.%ld.tmp", pyc, (long)getpid());
	int ok = write_file(tmp_src, host->driver_script, host->driver_script_len) == 0 &&
	         compile_pyc(python, tmp_src, tmp_pyc) == 0 && rename(tmp_pyc, pyc) == 0;
	unlink(tmp_src);
	if (!ok) {
		unlink(tmp_pyc);
		host->log(RLM_LOG_DEBUG, LOCAL_NAME, "no compiled driver cache in %s", dir);
		return -1;
	}
	return read_file(host, pyc, out, len);
}
