/* local_remove.c - removes a sandbox's work directory without ever leaving it.
 *
 * The tree belongs to the sandbox, which may have filled it with symbolic links, made its
 * directories unreadable, or nested them deeper than PATH_MAX, and the host may be root. So the
 * walk never uses a path: it holds one directory fd at a time, looks at entries with
 * fstatat(AT_SYMLINK_NOFOLLOW), enters a directory only through
 * openat(O_NOFOLLOW | O_DIRECTORY) checked against the inode it looked at, removes with
 * unlinkat(), and climbs back through ".." checked against the inode it came from. A link is
 * removed, never followed; nothing outside the tree is ever opened; a mount point inside is
 * left alone; depth costs neither fds nor stack. The sandbox's processes are all dead before
 * this runs (rlm_local_kill_reap), so this is the second line of defence, not the first. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local_internal.h"

/* An inode list that grows by doubling (plain malloc: this file never crosses the ABI). */
struct inodes {
	ino_t *v;
	size_t n, cap;
};

static int inodes_push(struct inodes *s, ino_t ino)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		ino_t *grown = realloc(s->v, cap * sizeof(*grown));
		if (!grown)
			return -1;
		s->v = grown;
		s->cap = cap;
	}
	s->v[s->n++] = ino;
	return 0;
}

static bool inodes_has(const struct inodes *s, ino_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == ino)
			return true;
	return false;
}

struct walk {
	dev_t dev;            /* the tree's file system: a directory on another is a mount point */
	struct inodes path;   /* inodes from the top down to the directory being emptied */
	struct inodes failed; /* directories that could not be emptied: not entered again */
	ino_t left;           /* the directory just climbed out of (0: none) */
	bool root;
};

/* Opens directory name in dirfd for reading, only if it is still the directory st described.
 * A directory the sandbox made unreadable is given back to its owner first (not needed, and
 * not done, as root, who reads it anyway); the mode change goes through /proc/self/fd, so it
 * lands on that directory and never on the target of a link swapped in under the name. */
static int open_subdir(const struct walk *w, int dirfd, const char *name, const struct stat *st)
{
	int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dirfd, name, flags);
	struct stat got;

	if (fd < 0 && errno == EACCES && !w->root) {
		int pathfd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		char link[64];
		if (pathfd < 0)
			return -1;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", pathfd);
		if (fstat(pathfd, &got) == 0 && got.st_ino == st->st_ino && got.st_dev == w->dev &&
		    chmod(link, (got.st_mode & 07777) | S_IRWXU) == 0)
			fd = openat(pathfd, ".", flags);
		close(pathfd);
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &got) < 0 || got.st_ino != st->st_ino || got.st_dev != st->st_dev) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

/* The owner needs write and search permission on a directory to remove what is in it. */
static void writable(const struct walk *w, int fd)
{
	struct stat st;

	if (!w->root && fstat(fd, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
		fchmod(fd, (st.st_mode & 07777) | S_IRWXU);
}

/* Removes what it can in directory fd. Returns the fd of a subdirectory that must be emptied
 * first, or -1 when nothing is left to enter; *kept then says whether anything stayed. */
static int clear_dir(struct walk *w, int fd, bool *kept)
{
	int dup_fd = dup(fd), child = -1;
	DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *e;

	*kept = true;
	if (!dir) {
		if (dup_fd >= 0)
			close(dup_fd);
		return -1;
	}
	*kept = false;
	writable(w, fd);
	rewinddir(dir); /* the dup shares its offset with fd, which may have been read before */
	while (child < 0 && (e = readdir(dir))) {
		const char *name = e->d_name;
		struct stat st;

		if (!strcmp(name, ".") || !strcmp(name, "..") ||
		    fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(fd, name, 0) < 0)
				*kept = true;
			continue;
		}
		if (st.st_dev == w->dev && unlinkat(fd, name, AT_REMOVEDIR) == 0)
			continue;
		/* Emptied and still not removable (just climbed out of it): give up on it. */
		if (st.st_ino == w->left && st.st_dev == w->dev &&
		    inodes_push(&w->failed, st.st_ino) < 0)
			break;
		if (st.st_dev != w->dev || inodes_has(&w->failed, st.st_ino)) {
			*kept = true;
			continue;
		}
		child = open_subdir(w, fd, name, &st);
		if (child < 0) {
			*kept = true;
			if (inodes_push(&w->failed, st.st_ino) < 0)
				break;
		}
	}
	closedir(dir);
	return child;
}

/* Empties the directory top (an fd this takes over). */
static int empty_tree(struct walk *w, int top)
{
	int cur = top;
	struct stat st;

	if (fstat(cur, &st) < 0 || inodes_push(&w->path, st.st_ino) < 0) {
		close(cur);
		return -1;
	}
	for (;;) {
		bool kept;
		int next = clear_dir(w, cur, &kept);

		w->left = 0;
		if (next >= 0) {
			if (fstat(next, &st) < 0 || inodes_push(&w->path, st.st_ino) < 0) {
				close(next);
				break;
			}
			close(cur);
			cur = next;
			continue;
		}
		if (w->path.n == 1)
			break;
		/* Climb to the parent, which rescans and removes this one if it is now empty;
		 * one that kept something is not entered again. */
		ino_t here = w->path.v[--w->path.n];
		next = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 || fstat(next, &st) < 0 || st.st_dev != w->dev ||
		    st.st_ino != w->path.v[w->path.n - 1]) {
			if (next >= 0)
				close(next);
			break; /* the tree was moved under us: stop rather than guess */
		}
		if (kept && inodes_push(&w->failed, here) < 0) {
			close(next);
			break;
		}
		w->left = here;
		close(cur);
		cur = next;
	}
	close(cur);
	return 0;
}

int rlm_local_remove_tree(const char *path, dev_t dev, ino_t ino)
{
	char parent[PATH_MAX];
	const char *slash = strrchr(path, '/'), *name;
	struct walk w = {.dev = dev, .root = geteuid() == 0};
	struct stat st;
	int pfd, fd, rc = -1, saved;

	if (!slash || !slash[1] || (size_t)(slash - path) >= sizeof(parent)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	name = slash + 1;
	/* The parent is the host's own (workdir_root): its path is trusted, the rest is not. */
	pfd = open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		saved = errno;
		close(pfd);
		errno = saved;
		return errno == ENOENT ? 0 : -1;
	}
	/* The sandbox owns its work dir, so in a sticky /tmp it could have renamed it and put
	 * something else under its name: only the directory that was made here is removed. */
	if (!S_ISDIR(st.st_mode) || st.st_dev != dev || st.st_ino != ino) {
		close(pfd);
		errno = ESTALE;
		return -1;
	}
	fd = open_subdir(&w, pfd, name, &st);
	if (fd >= 0 && empty_tree(&w, fd) == 0 && unlinkat(pfd, name, AT_REMOVEDIR) == 0)
		rc = 0;
	saved = errno;
	close(pfd);
	free(w.path.v);
	free(w.failed.v);
	errno = saved;
	return rc;
}
