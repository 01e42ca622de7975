/* local_pyc.c - a compiled copy of the driver, cached per interpreter binary.
 *
 * Python recompiles a script it runs directly on every start, and compiling driver.py costs
 * about as much as starting the interpreter. Python also runs a .pyc file directly, so the
 * host compiles the driver once per (driver text, interpreter binary) into a cache directory
 * only the host can write, and each start copies the bytes into the sandbox's work dir (or,
 * for a sandbox under another uid, links the cache file there: local.c, link_shared). The
 * sandbox can never write the cache, so one sandbox cannot plant code in the next. Any
 * failure here is not an error: the caller falls back to the source.
 *
 * The bytes are also kept in memory, once per process (or per load of the .so) and
 * interpreter binary, so a start costs a stat() of the interpreter rather than hashing the
 * driver's text and reading the file again. Process-wide mutable state: local_pycs below, an
 * append-only list of immutable entries (the driver text is the host's constant, so an entry
 * is keyed by its address and the interpreter's identity). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "local_internal.h"

/* FNV-1a's step over 8-byte words (with a shift to fold the high bits back), then the tail
 * byte by byte: a byte-wise pass over the driver's 75 KB took ~80 us, this ~15 us. Not a
 * cryptographic hash: it names cache files only the host writes. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, sizeof(w));
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return (h ^ len) * 0x100000001b3ull;
}

/* What an in-memory entry was made for: an upgraded interpreter at the same path is another
 * file (inode, size or mtime differ), and the driver text is another only at another address. */
struct pyc_id {
	const char *script;
	size_t script_len;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
};

/* Strings and bytes host->alloc'ed, never freed (see the top of the file). */
struct pyc_entry {
	char *python;
	struct pyc_id id;
	struct local_pyc pyc;
};

#define LOCAL_PYC_MEMO 8 /* interpreter binaries remembered; past that, starts run the source */

static struct {
	pthread_mutex_t lock;
	int n;
	struct pyc_entry v[LOCAL_PYC_MEMO];
} local_pycs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool same_id(const struct pyc_id *a, const struct pyc_id *b)
{
	return a->script == b->script && a->script_len == b->script_len && a->dev == b->dev &&
	       a->ino == b->ino && a->size == b->size && a->mtim.tv_sec == b->mtim.tv_sec &&
	       a->mtim.tv_nsec == b->mtim.tv_nsec;
}

static const struct pyc_entry *memo_find(const char *python, const struct pyc_id *id)
{
	const struct pyc_entry *found = NULL;

	pthread_mutex_lock(&local_pycs.lock);
	for (int i = 0; i < local_pycs.n && !found; i++)
		if (same_id(&local_pycs.v[i].id, id) && !strcmp(local_pycs.v[i].python, python))
			found = &local_pycs.v[i];
	pthread_mutex_unlock(&local_pycs.lock);
	return found;
}

/* Keeps pyc (taking its bytes and path over) when there is room; returns the entry, or NULL
 * (then they stay the caller's). Another thread may have added the same entry meanwhile:
 * harmless. */
static const struct pyc_entry *memo_add(const rlm_host_api *host, const char *python,
                                        const struct pyc_id *id, const struct local_pyc *pyc)
{
	struct pyc_entry *e = NULL;
	char *name = host->str_dup(python);

	pthread_mutex_lock(&local_pycs.lock);
	if (name && local_pycs.n < LOCAL_PYC_MEMO) {
		e = &local_pycs.v[local_pycs.n];
		e->python = name;
		e->id = *id;
		e->pyc = *pyc;
		local_pycs.n++; /* published under the lock: readers take it too */
	}
	pthread_mutex_unlock(&local_pycs.lock);
	if (!e)
		host->free(name);
	return e;
}

/* The cache key: the driver's bytes and the interpreter's identity (path, size, mtime), so
 * an upgraded python3 at the same path never gets a .pyc with the wrong magic number. */
static int cache_key(const rlm_host_api *host, const char *python, uint64_t *key)
{
	struct stat st;
	if (stat(python, &st) < 0)
		return -1;
	uint64_t h =
	        hash_bytes(0xcbf29ce484222325ull, host->driver_script, host->driver_script_len);
	h = hash_bytes(h, python, strlen(python));
	h = hash_bytes(h, &st.st_size, sizeof(st.st_size));
	h = hash_bytes(h, &st.st_mtim, sizeof(st.st_mtim));
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

/* Reads path; *file says what was read. A file of the host's own is made 0644, so a sandbox
 * running under another uid can read a link to it (local.c) but never write it. */
static int read_file(const rlm_host_api *host, const char *path, char **out, size_t *len,
                     struct stat *file)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > (64 << 20)) {
		close(fd);
		return -1;
	}
	if (st.st_uid == geteuid() && (st.st_mode & 07777) != 0644 && fchmod(fd, 0644) == 0)
		st.st_mode = (st.st_mode & ~07777u) | 0644;
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
	*file = st;
	return 0;
}

/* Read from the cache (or compiled into it); *out and *path host->alloc'ed, *file what was
 * read at *path. */
static int load_pyc(const rlm_host_api *host, const char *python, char **out, size_t *len,
                    char **path, struct stat *file)
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
	if (!(*path = host->str_dup(pyc)))
		return -1;
	if (read_file(host, pyc, out, len, file) == 0)
		return 0;
	/* The data dir must stay searchable: volumes live under it and sandboxes run under
	 * other uids when rlm runs as root. The cache itself is the host's alone. */
	if (make_dir(data_dir, 0755) < 0 || make_dir(dir, 0700) < 0)
		goto fail;
	/* Unique temp names: several processes may fill the cache at once; rename is atomic. */
	snprintf(tmp_src, sizeof(tmp_src), "%.4200s.%ld.py", pyc, (long)getpid());
	snprintf(tmp_pyc, sizeof(tmp_pyc), "%.4200s.%ld.tmp", pyc, (long)getpid());
	int ok = write_file(tmp_src, host->driver_script, host->driver_script_len) == 0 &&
	         compile_pyc(python, tmp_src, tmp_pyc) == 0 && rename(tmp_pyc, pyc) == 0;
	unlink(tmp_src);
	if (!ok) {
		unlink(tmp_pyc);
		host->log(RLM_LOG_DEBUG, LOCAL_NAME, "no compiled driver cache in %s", dir);
		goto fail;
	}
	if (read_file(host, pyc, out, len, file) == 0)
		return 0;
fail:
	host->free(*path);
	*path = NULL;
	return -1;
}

LOCAL_HIDDEN int rlm_local_driver_pyc(const rlm_host_api *host, const char *python,
                                      struct local_pyc *out)
{
	const struct pyc_entry *e;
	struct local_pyc got;
	struct pyc_id id;
	struct stat st;
	char *bytes, *path;

	if (stat(python, &st) < 0)
		return -1;
	memset(&id, 0, sizeof(id));
	id.script = host->driver_script;
	id.script_len = host->driver_script_len;
	id.dev = st.st_dev;
	id.ino = st.st_ino;
	id.size = st.st_size;
	id.mtim = st.st_mtim;
	if ((e = memo_find(python, &id))) {
		*out = e->pyc;
		return 0;
	}
	if (load_pyc(host, python, &bytes, &got.len, &path, &st) < 0)
		return -1;
	got.bytes = bytes;
	got.path = path;
	got.dev = st.st_dev;
	got.ino = st.st_ino;
	got.shareable = st.st_uid == geteuid() && (st.st_mode & 07777) == 0644;
	if (!(e = memo_add(host, python, &id, &got))) {
		host->free(bytes); /* more interpreters than remembered: run the source */
		host->free(path);
		return -1;
	}
	*out = e->pyc;
	return 0;
}
