/* trajectory.c - the JSONL record of a run (see trajectory.h): one object per line, every
 * string redacted (once: masked strings are marked), flushed line by line; and the run's
 * summary in a JSON file beside it. */
#include "trajectory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "redact.h"
#include "util.h"

#define SECRETS_MAX 8

struct rlm_trajectory {
	FILE *f;
	char *path;
	char *secrets[SECRETS_MAX + 1];
};

void rlm__iso_timestamp(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%06ld", base, (long)tv.tv_usec);
}

char *rlm__redact_with(const char *text, const char *const *secrets)
{
	char *out = rlm_redact(text);
	if (out)
		rlm__redact_secrets(out, secrets);
	return out;
}

static int is_directory(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* rlm_<date>_<time>_<8 hex>.jsonl in dir, as alexzhang13/rlm's logger names its files. */
static char *fresh_name(const char *dir)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	char stamp[32];
	strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H-%M-%S", &tm);
	unsigned rnd = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, &rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
		rnd = (unsigned)getpid() ^ (unsigned)now;
	if (fd >= 0)
		close(fd);
	rlm_sb sb = {0};
	size_t dl = strlen(dir);
	rlm_sb_printf(&sb, "%s%srlm_%s_%08x.jsonl", dir, dl && dir[dl - 1] == '/' ? "" : "/", stamp,
	              rnd);
	return rlm_sb_take(&sb);
}

int rlm__trajectory_open(const char *path, const char *const *secrets, rlm_trajectory **out,
                         rlm_error *err)
{
	*out = NULL;
	if (!path || !*path)
		return rlm_error_set(err, RLM_EINVAL, "trajectory: empty path");
	rlm_trajectory *t = calloc(1, sizeof(*t));
	if (!t)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	size_t len = strlen(path);
	int dir = path[len - 1] == '/' || is_directory(path);
	if (dir && path[len - 1] == '/' && !is_directory(path) && mkdir(path, 0777) != 0) {
		int e = errno;
		free(t);
		return rlm_error_set(err, RLM_EIO, "trajectory: cannot create directory %s: %s",
		                     path, strerror(e));
	}
	t->path = dir ? fresh_name(path) : strdup(path);
	for (size_t i = 0, n = 0; secrets && secrets[i] && n < SECRETS_MAX; i++)
		if (*secrets[i])
			t->secrets[n++] = strdup(secrets[i]);
	t->f = t->path ? fopen(t->path, "w") : NULL;
	if (!t->f) {
		int e = errno;
		int rc = t->path ? rlm_error_set(err, RLM_EIO, "trajectory: cannot write %s: %s",
		                                 t->path, strerror(e))
		                 : rlm_error_set(err, RLM_ENOMEM, "out of memory");
		rlm__trajectory_close(t);
		return rc;
	}
	*out = t;
	return 0;
}

const char *rlm__trajectory_path(const rlm_trajectory *t)
{
	return t->path;
}

/* The userdata of a string already masked. Only its address matters. */
static char masked_mark;

static int mark_masked(json_object *s)
{
	json_object_set_userdata(s, &masked_mark, NULL);
	return 0;
}

json_object *rlm__trajectory_string(const rlm_trajectory *t, const char *text)
{
	char *clean = rlm__redact_with(text ? text : "", (const char *const *)t->secrets);
	json_object *s = clean ? json_object_new_string(clean) : NULL;
	free(clean);
	if (s)
		mark_masked(s);
	return s;
}

/* Masks a string that may hold NUL bytes (a cell's output can): each NUL-separated piece is
 * masked on its own (a secret holds no NUL, so none spans two pieces) and the masked pieces
 * are joined again with their NULs. A mask may be shorter than what it hides, so the pieces
 * are copied to where the previous one ended, not to where they were. */
static int mask_string(const rlm_trajectory *t, json_object *o)
{
	const char *text = json_object_get_string(o);
	size_t len = (size_t)json_object_get_string_len(o);
	char *buf = malloc(len + 1);
	if (!buf)
		return RLM_ENOMEM;
	memcpy(buf, text, len);
	buf[len] = '\0';
	size_t w = 0;
	for (size_t at = 0; at < len;) {
		size_t piece = strlen(buf + at);
		if (piece) {
			char *clean = rlm__redact_with(buf + at, (const char *const *)t->secrets);
			if (!clean) {
				free(buf);
				return RLM_ENOMEM;
			}
			size_t n = strlen(clean);
			if (n > piece) /* redaction only shrinks; never write past the piece */
				n = piece;
			memmove(buf + w, clean, n);
			free(clean);
			w += n;
		}
		at += piece;
		if (at < len) /* the NUL that ended the piece */
			buf[w++] = buf[at++];
	}
	int ok = json_object_set_string_len(o, buf, (int)w);
	free(buf);
	return ok ? mark_masked(o) : RLM_ENOMEM;
}

/* Masks every string of the tree that is not marked yet. */
static int mask_tree(const rlm_trajectory *t, json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
		return json_object_get_userdata(o) == &masked_mark ? 0 : mask_string(t, o);
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (mask_tree(t, json_object_array_get_idx(o, i)))
				return RLM_ENOMEM;
		return 0;
	case json_type_object: {
		json_object_object_foreach(o, key, v)
		{
			(void)key;
			if (mask_tree(t, v))
				return RLM_ENOMEM;
		}
		return 0;
	}
	default: return 0;
	}
}

int rlm__trajectory_write(rlm_trajectory *t, json_object *obj, rlm_error *err)
{
	if (mask_tree(t, obj))
		return rlm_error_set(err, RLM_ENOMEM, "out of memory writing the trajectory");
	const char *text = json_object_to_json_string_ext(
	        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory writing the trajectory");
	int ok = fputs(text, t->f) >= 0 && fputc('\n', t->f) != EOF && fflush(t->f) == 0;
	if (!ok)
		return rlm_error_set(err, RLM_EIO, "trajectory: cannot write %s: %s", t->path,
		                     strerror(errno));
	return 0;
}

char *rlm_trajectory_summary_path(const char *path)
{
	if (!path)
		return NULL;
	size_t len = strlen(path), ext = strlen(".jsonl");
	if (len > ext && !strcmp(path + len - ext, ".jsonl"))
		len -= ext;
	rlm_sb sb = {0};
	rlm_sb_printf(&sb, "%.*s.summary.json", (int)len, path);
	return rlm_sb_take(&sb);
}

int rlm__trajectory_write_summary(rlm_trajectory *t, json_object *summary, rlm_error *err)
{
	if (mask_tree(t, summary))
		return rlm_error_set(err, RLM_ENOMEM, "out of memory writing the run's summary");
	const char *text = json_object_to_json_string_ext(
	        summary, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *path = rlm_trajectory_summary_path(t->path);
	rlm_sb tmp = {0};
	if (path)
		rlm_sb_printf(&tmp, "%s.tmp-%ld", path, (long)getpid());
	char *tmp_path = rlm_sb_take(&tmp);
	if (!text || !path || !tmp_path) {
		free(path);
		free(tmp_path);
		return rlm_error_set(err, RLM_ENOMEM, "out of memory writing the run's summary");
	}
	/* Written whole, then renamed: a reader never sees half a summary. */
	FILE *f = fopen(tmp_path, "w");
	int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
	int e = errno;
	if (f && fclose(f) != 0 && ok) {
		ok = 0;
		e = errno;
	}
	if (ok && rename(tmp_path, path) != 0) {
		ok = 0;
		e = errno;
	}
	int rc = ok ? 0
	            : rlm_error_set(err, RLM_EIO, "trajectory: cannot write %s: %s", path,
	                            strerror(e));
	if (!ok)
		unlink(tmp_path);
	free(path);
	free(tmp_path);
	return rc;
}

void rlm__trajectory_close(rlm_trajectory *t)
{
	if (!t)
		return;
	if (t->f)
		fclose(t->f);
	for (size_t i = 0; i < SECRETS_MAX; i++)
		free(t->secrets[i]);
	free(t->path);
	free(t);
}
