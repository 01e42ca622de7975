/* eval_tasks.c - the task file of `rlm eval`: reading and checking it line by line before
 * anything runs, reading one task's line again when it runs, per-task configs, trajectory file
 * names, and the shard a task id belongs to. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval_internal.h"
#include "rlm/eval.h"
#include "util.h"

/* A file stem longer than this is cut (and told apart by a hash). */
#define STEM_MAX 96
/* Ids longer than this are refused: they are meant to be names, not payloads. */
#define ID_MAX 1024

static const char *const task_fields[] = {"id",           "query",    "context",
                                          "context_file", "expected", "scorer",
                                          "options",      "metadata", NULL};

/* ---- shards ---- */

uint64_t rlm_eval_fnv1a64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

long rlm_eval_shard_of(const char *id, long count)
{
	if (!id || count <= 1)
		return 0;
	return (long)(rlm_eval_fnv1a64(id, strlen(id)) % (uint64_t)count);
}

/* A whole number >= 0 from an environment variable: 1 when set and valid, 0 when unset,
 * RLM_EINVAL when malformed. */
static int env_count(const char *name, long *out, rlm_error *err)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return 0;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*end || errno || v < 0)
		return rlm_error_set(err, RLM_EINVAL, "%s=\"%s\" is not a whole number >= 0", name,
		                     s);
	*out = v;
	return 1;
}

int rlm_eval_shard_from_env(long shards, long *index, long *count, rlm_error *err)
{
	if (!index || !count)
		return rlm_error_set(err, RLM_EINVAL, "rlm_eval_shard_from_env: NULL argument");
	*index = 0;
	*count = 0;
	long id = 0, min = 0, n = 0, jci = 0;
	int has_id = env_count("SLURM_ARRAY_TASK_ID", &id, err);
	int has_min = env_count("SLURM_ARRAY_TASK_MIN", &min, err);
	int has_n = env_count("SLURM_ARRAY_TASK_COUNT", &n, err);
	int has_jci = env_count("JOB_COMPLETION_INDEX", &jci, err);
	if (has_id < 0 || has_min < 0 || has_n < 0 || has_jci < 0)
		return RLM_EINVAL;
	if (has_id && has_n) {
		if (n < 1 || id - min < 0 || id - min >= n)
			return rlm_error_set(
			        err, RLM_EINVAL,
			        "SLURM_ARRAY_TASK_ID %ld minus SLURM_ARRAY_TASK_MIN %ld is "
			        "not a shard of SLURM_ARRAY_TASK_COUNT %ld (use a "
			        "contiguous array such as --array=0-%ld)",
			        id, min, n, n > 0 ? n - 1 : 0);
		*index = id - min;
		*count = n;
		return 0;
	}
	if (has_jci) {
		if (shards < 1)
			return rlm_error_set(
			        err, RLM_EINVAL,
			        "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): "
			        "give the number of shards (the Job's completions) with "
			        "--shards N, or a shard with --shard K/N");
		if (jci >= shards)
			return rlm_error_set(err, RLM_EINVAL,
			                     "JOB_COMPLETION_INDEX %ld is not below --shards %ld",
			                     jci, shards);
		*index = jci;
		*count = shards;
		return 0;
	}
	if (shards > 0)
		return rlm_error_set(err, RLM_EINVAL,
		                     "--shards %ld needs the shard index from JOB_COMPLETION_INDEX "
		                     "or SLURM_ARRAY_TASK_ID; neither is set (or give --shard K/N)",
		                     shards);
	return 0;
}

/* ---- paths and names ---- */

char *rlm__eval_resolve(const char *dir, const char *path)
{
	if (!path)
		return NULL;
	if (path[0] == '/' || !dir || !*dir || !strcmp(dir, "."))
		return strdup(path);
	rlm_sb sb = {0};
	if (rlm_sb_printf(&sb, "%s/%s", dir, path)) {
		rlm_sb_free(&sb);
		return NULL;
	}
	return rlm_sb_take(&sb);
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static int stem_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

/* The id as a file name stem: [A-Za-z0-9._-] kept, anything else '_' (a leading '.' too), cut
 * to STEM_MAX; a stem that had to change gets "-<8 hex of the id's hash>" so that ids that
 * differ only in what was replaced stay apart. Taken stems (compared without case, for
 * case-insensitive file systems) get "-2", "-3", ... */
static char *file_stem(const char *id, json_object *taken)
{
	size_t n = strlen(id), keep = n < STEM_MAX ? n : STEM_MAX;
	int changed = n > STEM_MAX || id[0] == '.';
	char base[STEM_MAX + 32];
	for (size_t i = 0; i < keep; i++) {
		unsigned char c = (unsigned char)id[i];
		base[i] = stem_char(c) ? (char)c : '_';
		changed |= !stem_char(c);
	}
	base[keep] = '\0';
	if (base[0] == '.')
		base[0] = '_'; /* no hidden files, no "." or ".." */
	if (changed)
		snprintf(base + keep, sizeof(base) - keep, "-%08x",
		         (unsigned)(rlm_eval_fnv1a64(id, n) & 0xffffffffu));
	char name[STEM_MAX + 48], key[STEM_MAX + 48];
	snprintf(name, sizeof(name), "%s", base);
	for (int k = 2;; k++) {
		size_t i = 0;
		for (; name[i]; i++)
			key[i] =
			        (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
		key[i] = '\0';
		if (!json_object_object_get_ex(taken, key, NULL)) {
			json_object_object_add(taken, key, NULL);
			return strdup(name);
		}
		snprintf(name, sizeof(name), "%s-%d", base, k);
	}
}

/* ---- per-task configs ---- */

/* {"a.b": v} -> {"a": {"b": v}}, merged into dst. */
static int expand_into(json_object *dst, const char *key, json_object *value)
{
	const char *dot = strchr(key, '.');
	if (!dot) {
		json_object *copy = NULL;
		if (json_object_deep_copy(value, &copy, NULL))
			return RLM_ENOMEM;
		json_object *have;
		if (json_object_is_type(copy, json_type_object) &&
		    json_object_object_get_ex(dst, key, &have) &&
		    json_object_is_type(have, json_type_object)) {
			json_object_object_foreach(copy, k, v)
			{
				if (expand_into(have, k, v)) {
					json_object_put(copy);
					return RLM_ENOMEM;
				}
			}
			json_object_put(copy);
			return 0;
		}
		json_object_object_add(dst, key, copy);
		return 0;
	}
	char head[256];
	snprintf(head, sizeof(head), "%.*s", (int)(dot - key), key);
	json_object *child;
	if (!json_object_object_get_ex(dst, head, &child) ||
	    !json_object_is_type(child, json_type_object)) {
		child = json_object_new_object();
		if (!child)
			return RLM_ENOMEM;
		json_object_object_add(dst, head, child);
	}
	return expand_into(child, dot + 1, value);
}

int rlm__eval_task_config(const rlm_config *cfg, json_object *options, const char *id,
                          rlm_config **out, rlm_error *err)
{
	*out = NULL;
	json_object *nested = json_object_new_object();
	if (!nested)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory");
	json_object_object_foreach(options, key, value)
	{
		if (expand_into(nested, key, value)) {
			json_object_put(nested);
			return rlm_error_set(err, RLM_ENOMEM, "out of memory");
		}
	}
	char origin[160];
	snprintf(origin, sizeof(origin), "the options of task \"%.100s\"", id);
	rlm_config *c = NULL;
	int rc = rlm_config_clone(cfg, &c, err);
	if (!rc)
		rc = rlm_config_merge_json(
		        c, json_object_to_json_string_ext(nested, JSON_C_TO_STRING_PLAIN), origin,
		        err);
	if (!rc)
		rc = rlm_config_validate(c, err);
	json_object_put(nested);
	if (rc) {
		rlm_config_free(c);
		return rc == RLM_ENOMEM ? rc : RLM_ECONFIG;
	}
	*out = c;
	return 0;
}

/* Whether two configs differ in what makes a sandbox: the backend, the plugin path, the
 * backend's own section. */
static int same_json(const rlm_config *a, const rlm_config *b, const char *key)
{
	char *x = rlm_config_get_json(a, key), *y = rlm_config_get_json(b, key);
	int same = (!x && !y) || (x && y && !strcmp(x, y));
	rlm_free(x);
	rlm_free(y);
	return same;
}

static int sandbox_differs(const rlm_config *base, const rlm_config *task)
{
	if (!same_json(base, task, "backend") || !same_json(base, task, "plugin_path"))
		return 1;
	char key[160];
	snprintf(key, sizeof(key), "backends.%s", rlm_config_get_string(base, "backend", "local"));
	return !same_json(base, task, key);
}

/* ---- checking one line ---- */

int rlm__eval_scorer_known(const char *name)
{
	static const char *const names[] = {"exact", "contains", "regex", "numeric", "f1", NULL};
	if (!name)
		return 0;
	if (!strncmp(name, "cmd:", 4))
		return name[4] != '\0';
	for (const char *const *n = names; *n; n++)
		if (!strcmp(name, *n))
			return 1;
	return 0;
}

struct line_ctx {
	const char *path;
	long line;
	rlm_error *err;
};

static int bad(const struct line_ctx *c, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int bad(const struct line_ctx *c, int code, const char *fmt, ...)
{
	char what[RLM_ERROR_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return rlm_error_set(c->err, code, "%s:%ld: %s", c->path, c->line, what);
}

static const char *type_name(json_object *v)
{
	return v ? json_type_to_name(json_object_get_type(v)) : "null";
}

static int check_fields(const struct line_ctx *c, json_object *o)
{
	json_object_object_foreach(o, key, v)
	{
		(void)v;
		int known = 0;
		for (const char *const *f = task_fields; *f && !known; f++)
			known = !strcmp(key, *f);
		if (!known)
			return bad(
			        c, RLM_EINVAL,
			        "unknown field \"%.80s\" (a task has id, query, context or "
			        "context_file, and optionally expected, scorer, options, metadata)",
			        key);
	}
	return 0;
}

static int check_id(const struct line_ctx *c, json_object *o, json_object *ids, const char **id)
{
	json_object *v;
	if (!json_object_object_get_ex(o, "id", &v) || !v)
		return bad(c, RLM_EINVAL, "no \"id\"");
	if (!json_object_is_type(v, json_type_string))
		return bad(c, RLM_EINVAL,
		           "\"id\" must be a string, not %s (quote it: \"id\": \"%s\")",
		           type_name(v), json_object_to_json_string(v));
	size_t len = (size_t)json_object_get_string_len(v);
	*id = json_object_get_string(v);
	if (len == 0 || strlen(*id) != len || len > ID_MAX)
		return bad(c, RLM_EINVAL,
		           "\"id\" must be 1 to %d bytes of text (no NUL characters)", ID_MAX);
	json_object *seen;
	if (json_object_object_get_ex(ids, *id, &seen))
		return bad(c, RLM_EINVAL, "duplicate id \"%.200s\" (first on line %d)", *id,
		           json_object_get_int(seen));
	return 0;
}

static int check_context(const struct line_ctx *c, json_object *o, const char *dir)
{
	json_object *ctx = NULL, *file = NULL;
	json_object_object_get_ex(o, "context", &ctx);
	json_object_object_get_ex(o, "context_file", &file);
	if (ctx && file)
		return bad(c, RLM_EINVAL, "give either \"context\" or \"context_file\", not both");
	if (ctx && !json_object_is_type(ctx, json_type_string))
		return bad(c, RLM_EINVAL,
		           "\"context\" must be a string, not %s (put structured data in a "
		           "context_file, or encode it as JSON text)",
		           type_name(ctx));
	if (!file)
		return 0;
	if (!json_object_is_type(file, json_type_string) || !json_object_get_string_len(file))
		return bad(c, RLM_EINVAL, "\"context_file\" must be a non-empty string (a path)");
	char *path = rlm__eval_resolve(dir, json_object_get_string(file));
	if (!path)
		return rlm_error_set(c->err, RLM_ENOMEM, "out of memory");
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int e = errno;
	int rc = 0;
	if (fd < 0)
		rc = bad(c, RLM_EINVAL, "context_file \"%.200s\" (%.300s): %s",
		         json_object_get_string(file), path, strerror(e));
	else if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		rc = bad(c, RLM_EINVAL, "context_file \"%.200s\" (%.300s) is not a regular file",
		         json_object_get_string(file), path);
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* The expected values a scorer will compare against (an array: each item). */
static int check_expected_for(const struct line_ctx *c, const char *scorer, json_object *exp)
{
	if (json_object_is_type(exp, json_type_array)) {
		if (json_object_array_length(exp) == 0)
			return bad(c, RLM_EINVAL,
			           "\"expected\" is an empty array (no answer "
			           "could match)");
		for (size_t i = 0; i < json_object_array_length(exp); i++) {
			int rc = check_expected_for(c, scorer, json_object_array_get_idx(exp, i));
			if (rc)
				return rc;
		}
		return 0;
	}
	if (!strcmp(scorer, "regex")) {
		if (!json_object_is_type(exp, json_type_string))
			return bad(c, RLM_EINVAL,
			           "scorer regex: \"expected\" must be a pattern (a string)");
		regex_t re;
		int rrc = regcomp(&re, json_object_get_string(exp), REG_EXTENDED | REG_NOSUB);
		if (rrc) {
			char msg[256];
			regerror(rrc, &re, msg, sizeof(msg));
			return bad(c, RLM_EINVAL, "scorer regex: bad pattern \"%.200s\": %s",
			           json_object_get_string(exp), msg);
		}
		regfree(&re);
	} else if (!strcmp(scorer, "numeric")) {
		double d;
		int num = json_object_is_type(exp, json_type_int) ||
		          json_object_is_type(exp, json_type_double) ||
		          (json_object_is_type(exp, json_type_string) &&
		           rlm__eval_number_in(json_object_get_string(exp), &d));
		if (!num)
			return bad(c, RLM_EINVAL,
			           "scorer numeric: \"expected\" must be a number, not %.200s",
			           json_object_to_json_string(exp));
	}
	return 0;
}

static int check_scorer(const struct line_ctx *c, json_object *o, const char *default_scorer,
                        const char **scorer)
{
	json_object *v = NULL, *exp = NULL;
	*scorer = default_scorer;
	if (json_object_object_get_ex(o, "scorer", &v) && v) {
		if (!json_object_is_type(v, json_type_string) ||
		    !rlm__eval_scorer_known(json_object_get_string(v)))
			return bad(c, RLM_EINVAL,
			           "unknown scorer %.200s (exact, contains, regex, numeric, f1 or "
			           "cmd:COMMAND)",
			           json_object_to_json_string(v));
		*scorer = json_object_get_string(v);
	}
	if (json_object_object_get_ex(o, "expected", &exp) && exp)
		return check_expected_for(c, *scorer, exp);
	return 0;
}

static int check_task(const struct line_ctx *c, json_object *o, const struct eval_tasks *ts,
                      const rlm_config *cfg, const char *default_scorer, json_object *ids,
                      struct eval_task *t)
{
	if (!json_object_is_type(o, json_type_object))
		return bad(c, RLM_EINVAL, "a task must be a JSON object, not %s", type_name(o));
	const char *id = NULL, *scorer = NULL;
	json_object *v = NULL;
	int rc = check_fields(c, o);
	if (!rc)
		rc = check_id(c, o, ids, &id);
	if (rc)
		return rc;
	if (!json_object_object_get_ex(o, "query", &v) ||
	    !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
		return bad(c, RLM_EINVAL, "\"query\" must be a non-empty string");
	rc = check_context(c, o, ts->dir);
	if (!rc)
		rc = check_scorer(c, o, default_scorer, &scorer);
	if (rc)
		return rc;
	t->id = strdup(id);
	t->scorer = scorer != default_scorer ? strdup(scorer) : NULL;
	if (!t->id || (scorer != default_scorer && !t->scorer))
		return rlm_error_set(c->err, RLM_ENOMEM, "out of memory");
	t->has_expected = json_object_object_get_ex(o, "expected", &v) && v;
	if (json_object_object_get_ex(o, "options", &v) && v) {
		if (!json_object_is_type(v, json_type_object))
			return bad(c, RLM_EINVAL,
			           "\"options\" must be an object of config keys, "
			           "e.g. {\"limits.max_iterations\": 5}");
		rlm_config *tc = NULL;
		rlm_error cerr = RLM_ERROR_INIT;
		rc = rlm__eval_task_config(cfg, v, id, &tc, &cerr);
		if (rc)
			return rc == RLM_ENOMEM ? rlm_error_set(c->err, rc, "out of memory")
			                        : bad(c, RLM_ECONFIG, "%s", cerr.message);
		t->has_options = 1;
		t->private_sandbox = sandbox_differs(cfg, tc);
		rlm_config_free(tc);
	}
	json_object_object_add(ids, id,
	                       json_object_new_int((int)(c->line > INT_MAX ? INT_MAX : c->line)));
	return 0;
}

static int push_task(struct eval_tasks *ts, struct eval_task **out)
{
	if (ts->n == ts->cap) {
		size_t cap = ts->cap ? ts->cap * 2 : 64;
		struct eval_task *v = realloc(ts->v, cap * sizeof(*v));
		if (!v)
			return RLM_ENOMEM;
		ts->v = v;
		ts->cap = cap;
	}
	*out = &ts->v[ts->n];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static void task_clear(struct eval_task *t)
{
	free(t->id);
	free(t->scorer);
	free(t->file_stem);
	memset(t, 0, sizeof(*t));
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

static int parse_line(const struct line_ctx *c, const char *text, size_t len, json_object **out)
{
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return rlm_error_set(c->err, RLM_ENOMEM, "out of memory");
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success || !blank(text + used, len - used)) {
		json_object_put(o);
		return bad(c, RLM_EINVAL, "not one JSON object: %s",
		           jerr == json_tokener_continue  ? "it ends before the object is complete"
		           : jerr != json_tokener_success ? json_tokener_error_desc(jerr)
		                                          : "text after the object");
	}
	*out = o;
	return 0;
}

static int load_lines(FILE *f, struct eval_tasks *ts, const rlm_config *cfg,
                      const char *default_scorer, json_object *ids, json_object *stems,
                      rlm_error *err)
{
	char *buf = NULL;
	size_t cap = 0;
	off_t offset = 0;
	long line = 0;
	int rc = 0;
	ssize_t got;
	while (!rc && (got = getline(&buf, &cap, f)) > 0) {
		line++;
		size_t len = (size_t)got;
		off_t start = offset;
		offset += got;
		if (len && buf[len - 1] == '\n')
			len--;
		if (blank(buf, len))
			continue;
		if (len > INT_MAX) {
			rc = rlm_error_set(err, RLM_EINVAL, "%s:%ld: the line is over 2 GiB",
			                   ts->path, line);
			break;
		}
		struct line_ctx c = {ts->path, line, err};
		json_object *o = NULL;
		struct eval_task *t = NULL;
		rc = parse_line(&c, buf, len, &o);
		if (!rc && (rc = push_task(ts, &t)) != 0)
			rlm_error_set(err, rc, "out of memory");
		if (!rc)
			rc = check_task(&c, o, ts, cfg, default_scorer, ids, t);
		json_object_put(o);
		if (!rc) {
			t->line = line;
			t->offset = start;
			t->len = len;
			t->file_stem = file_stem(t->id, stems);
			if (!t->file_stem)
				rc = rlm_error_set(err, RLM_ENOMEM, "out of memory");
		}
		if (t && !rc)
			ts->n++;
		else if (t)
			task_clear(t);
	}
	if (!rc && ferror(f))
		rc = rlm_error_set(err, RLM_EIO, "cannot read %s: %s", ts->path, strerror(errno));
	free(buf);
	return rc;
}

int rlm__eval_tasks_load(const char *path, const rlm_config *cfg, const char *default_scorer,
                         struct eval_tasks *ts, rlm_error *err)
{
	memset(ts, 0, sizeof(*ts));
	if (!rlm__eval_scorer_known(default_scorer))
		return rlm_error_set(
		        err, RLM_EINVAL,
		        "unknown scorer \"%s\" (exact, contains, regex, numeric, f1 or "
		        "cmd:COMMAND)",
		        default_scorer ? default_scorer : "");
	FILE *f = fopen(path, "rb");
	if (!f)
		return rlm_error_set(err, RLM_EINVAL, "cannot open the task file %s: %s", path,
		                     strerror(errno));
	ts->path = strdup(path);
	ts->dir = dir_of(path);
	json_object *ids = json_object_new_object(), *stems = json_object_new_object();
	int rc = ts->path && ts->dir && ids && stems ? 0 : RLM_ENOMEM;
	if (rc)
		rlm_error_set(err, rc, "out of memory");
	else
		rc = load_lines(f, ts, cfg, default_scorer, ids, stems, err);
	fclose(f);
	json_object_put(ids);
	json_object_put(stems);
	if (!rc && ts->n == 0)
		rc = rlm_error_set(err, RLM_EINVAL, "%s: no tasks in the file", path);
	if (rc)
		rlm__eval_tasks_free(ts);
	return rc;
}

void rlm__eval_tasks_free(struct eval_tasks *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		task_clear(&ts->v[i]);
	free(ts->v);
	free(ts->path);
	free(ts->dir);
	memset(ts, 0, sizeof(*ts));
}

int rlm__eval_task_read(const struct eval_tasks *ts, const struct eval_task *t, json_object **out,
                        rlm_error *err)
{
	*out = NULL;
	char *buf = malloc(t->len + 1);
	if (!buf)
		return rlm_error_set(err, RLM_ENOMEM, "out of memory reading task %s", t->id);
	int fd = open(ts->path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	while (fd >= 0 && got < t->len) {
		ssize_t n = pread(fd, buf + got, t->len - got, t->offset + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	buf[got] = '\0';
	json_object *o = got == t->len ? json_tokener_parse(buf) : NULL, *id = NULL;
	free(buf);
	if (!o || !json_object_object_get_ex(o, "id", &id) ||
	    strcmp(json_object_get_string(id), t->id)) {
		json_object_put(o);
		return rlm_error_set(err, RLM_EIO,
		                     "%s:%ld: the line of task \"%s\" changed since the file was "
		                     "checked",
		                     ts->path, t->line, t->id);
	}
	*out = o;
	return 0;
}
