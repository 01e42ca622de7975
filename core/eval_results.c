/* eval_results.c - results files of `rlm eval`: reading them (the last row of an id wins, a line
 * that is not a row is skipped and counted) and appending a row as one write(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval_internal.h"
#include "host.h"
#include "util.h"

static int is_row(json_object *o)
{
	json_object *id, *status;
	return json_object_is_type(o, json_type_object) &&
	       json_object_object_get_ex(o, "id", &id) &&
	       json_object_is_type(id, json_type_string) &&
	       json_object_object_get_ex(o, "status", &status) &&
	       json_object_is_type(status, json_type_string);
}

static int add_row(struct eval_results *r, json_object *row)
{
	const char *id = json_object_get_string(json_object_object_get(row, "id"));
	json_object *pos;
	if (json_object_object_get_ex(r->index, id, &pos)) {
		size_t i = (size_t)json_object_get_int64(pos);
		json_object_put(r->rows[i]);
		r->rows[i] = row;
		return 0;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		json_object **rows = realloc(r->rows, cap * sizeof(*rows));
		if (!rows)
			return RLM_ENOMEM;
		r->rows = rows;
		r->cap = cap;
	}
	r->rows[r->n] = row;
	json_object_object_add(r->index, id, json_object_new_int64((int64_t)r->n));
	r->n++;
	return 0;
}

int rlm__eval_results_read(const char *path, const char *dir, struct eval_results *r,
                           rlm_error *err)
{
	if (!r->index && !(r->index = json_object_new_object()))
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? 0
		                       : rlm_error_set(err, RLM_EIO, "cannot read %s: %s", path,
		                                       strerror(errno));
	char *buf = NULL;
	size_t cap = 0;
	ssize_t got;
	long line = 0;
	int rc = 0;
	while (!rc && (got = getline(&buf, &cap, f)) > 0) {
		line++;
		json_object *o = json_tokener_parse(buf);
		if (!is_row(o)) {
			json_object_put(o);
			if (strspn(buf, " \t\r\n") != (size_t)got) {
				r->bad_lines++;
				rlm_log(RLM_LOG_WARN, "eval", "%s:%ld: not a result row; skipped",
				        path, line);
			}
			continue;
		}
		if (dir)
			json_object_object_add(o, "_dir", json_object_new_string(dir));
		if (add_row(r, o)) {
			json_object_put(o);
			rc = rlm_error_set(err, RLM_ENOMEM, "out of memory reading %s", path);
		}
	}
	if (!rc && ferror(f))
		rc = rlm_error_set(err, RLM_EIO, "cannot read %s: %s", path, strerror(errno));
	free(buf);
	fclose(f);
	return rc;
}

json_object *rlm__eval_results_get(const struct eval_results *r, const char *id)
{
	json_object *pos;
	if (!r->index || !json_object_object_get_ex(r->index, id, &pos))
		return NULL;
	return r->rows[json_object_get_int64(pos)];
}

void rlm__eval_results_free(struct eval_results *r)
{
	for (size_t i = 0; i < r->n; i++)
		json_object_put(r->rows[i]);
	free(r->rows);
	json_object_put(r->index);
	memset(r, 0, sizeof(*r));
}

int rlm__eval_row_append(int fd, json_object *row, rlm_error *err)
{
	const char *text = json_object_to_json_string_ext(
	        row, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = text ? strlen(text) : 0;
	char *line = text ? malloc(len + 1) : NULL;
	if (!line)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory writing a result row");
	memcpy(line, text, len);
	line[len++] = '\n';
	struct stat st;
	off_t before = fstat(fd, &st) == 0 ? st.st_size : -1;
	ssize_t n;
	do
		n = write(fd, line, len);
	while (n < 0 && errno == EINTR);
	int e = errno;
	free(line);
	if (n == (ssize_t)len)
		return 0;
	/* A short write (a full disk) must not leave half a row behind: cut it off again. */
	if (n > 0 && before >= 0 && ftruncate(fd, before) != 0)
		rlm_log(RLM_LOG_ERROR, "eval", "cannot cut a half-written row off: %s",
		        strerror(errno));
	return rlm_error_set(err, RLM_EIO, "cannot append a result row: %s",
	                     n < 0 ? strerror(e) : "short write (disk full?)");
}

int rlm__eval_make_dirs(const char *path, rlm_error *err)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return rlm_error_set(err, RLM_EINVAL, "path too long: %.200s", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0777) != 0 && errno != EEXIST)
			return rlm_error_set(err, RLM_EIO, "cannot create %s: %s", buf,
			                     strerror(errno));
		*p = c;
		if (!c)
			return 0;
	}
}

double rlm__eval_number(json_object *obj, const char *key, double fallback)
{
	json_object *v;
	if (!json_object_object_get_ex(obj, key, &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return fallback;
	return json_object_get_double(v);
}
