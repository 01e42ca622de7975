/* config.c - the layered configuration (defaults < files < environment < --set): one JSON
 * document, checked against a fixed schema on every change so that a bad layer is refused
 * with a message naming the key, where it came from and the nearest known key; and the
 * check of a plugin's own section against its option specs (rlm__options_apply). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "util.h"

/* Config files are a few kilobytes; anything this big is a mistake, not a config. */
#define CONFIG_FILE_MAX (16u * 1024u * 1024u)
/* Room for a key path in messages; longer paths are cut, not refused. */
#define KEY_PATH_MAX 512
/* How much of an offending value a message quotes. */
#define VALUE_QUOTE_MAX 80
/* Upper bound on the number of keys in the schema (see root_keys). */
#define SCHEMA_KEYS_MAX 64

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct rlm_config {
	json_object *root; /* always an object that passed check_document() */
};

/* ---- The schema ---- */

/* What a known key holds. */
enum key_type {
	KEY_SECTION,  /* an object whose keys are the children */
	KEY_BACKENDS, /* name -> free-form object, checked by the plugin at open time */
	KEY_STRING,   /* a non-empty string */
	KEY_STRING_OR_NULL,
	KEY_STRING_LIST, /* a list of strings; a plain string is taken as a one-element list */
	KEY_LOG_LEVEL,
	KEY_NUMBER,          /* a number within the key's range */
	KEY_NUMBER_OR_NULL,  /* the same, or null */
	KEY_INTEGER,         /* a whole number within the key's range */
	KEY_INTEGER_OR_NULL, /* the same, or null */
	KEY_HEADERS,         /* an object of strings, or null */
	KEY_SCRIPT,          /* a file path or an inline array of responses, or null */
};

/* The closed interval a number must lie in. Every range lives in the schema below and is
 * checked once, when a layer is merged: code that reads a value can use it as it is. */
struct range {
	double min, max;
};

struct key_spec {
	const char *name;
	enum key_type type;
	const char *default_json;        /* JSON text of the built-in default (not sections) */
	const struct key_spec *children; /* KEY_SECTION only; ends with a NULL name */
	struct range range;              /* KEY_NUMBER* and KEY_INTEGER* only */
};

/* Bounds that recur below. Seconds stop at a week (the driver refuses a timeout of 1e9 s or
 * more); integers stay within int32, so every reader's int or long holds them. */
#define SECONDS_MIN 0.001
#define WEEK_S      604800.0
#define DAY_S       86400.0
#define INT32_TOP   2147483647.0
/* Two capped streams, each character JSON-escaped to up to 6 bytes, must fit one driver
 * frame (RLM_FRAME_MAX_DEFAULT, 512 MiB). */
#define OUTPUT_CHARS_MAX 10000000.0

static const struct key_spec llm_keys[] = {
        {"provider", KEY_STRING_OR_NULL, "null", NULL, {0, 0}},
        {"model", KEY_STRING_OR_NULL, "null", NULL, {0, 0}},
        {"base_url", KEY_STRING_OR_NULL, "null", NULL, {0, 0}},
        {"api_key_env", KEY_STRING_OR_NULL, "null", NULL, {0, 0}},
        /* OpenAI's bound, the widest of the supported APIs (Anthropic stops at 1). */
        {"temperature", KEY_NUMBER_OR_NULL, "null", NULL, {0, 2}},
        {"max_tokens", KEY_INTEGER_OR_NULL, "null", NULL, {1, INT32_TOP}},
        {"headers", KEY_HEADERS, "{}", NULL, {0, 0}},
        {"script", KEY_SCRIPT, "null", NULL, {0, 0}},
        {"match", KEY_STRING_OR_NULL, "null", NULL, {0, 0}},
        {"api_version", KEY_STRING_OR_NULL, "null", NULL, {0, 0}},
        /* The LLM plugins' own cap. */
        {"max_retries", KEY_INTEGER, "4", NULL, {0, 20}},
        {NULL, KEY_SECTION, NULL, NULL, {0, 0}},
};

static const struct key_spec limits_keys[] = {
        {"execute_timeout_s", KEY_NUMBER, "300", NULL, {SECONDS_MIN, WEEK_S}},
        {"hard_deadline_grace_s", KEY_NUMBER, "5", NULL, {SECONDS_MIN, 3600}},
        {"start_timeout_s", KEY_NUMBER, "120", NULL, {SECONDS_MIN, DAY_S}},
        {"max_output_chars", KEY_INTEGER, "20000", NULL, {1, OUTPUT_CHARS_MAX}},
        {"max_iterations", KEY_INTEGER, "20", NULL, {1, 100000}},
        {"max_llm_calls", KEY_INTEGER, "100", NULL, {1, 1000000}},
        /* Each level is a live child interpreter (a sandbox) on the way down. */
        {"max_depth", KEY_INTEGER, "1", NULL, {0, 64}},
        {"llm_call_timeout_s", KEY_NUMBER, "60", NULL, {SECONDS_MIN, DAY_S}},
        /* Threads of one llm_query_batched. */
        {"llm_concurrency", KEY_INTEGER, "8", NULL, {1, 1024}},
        {NULL, KEY_SECTION, NULL, NULL, {0, 0}},
};

/* The sandbox pool (rlm/pool.h): null takes the backend's declared default. */
static const struct key_spec pool_keys[] = {
        {"max_live", KEY_INTEGER_OR_NULL, "null", NULL, {1, 100000}},
        {"creates_per_s", KEY_NUMBER_OR_NULL, "null", NULL, {0, 100000}},
        {"warm", KEY_INTEGER, "0", NULL, {0, 100000}},
        {NULL, KEY_SECTION, NULL, NULL, {0, 0}},
};

static const struct key_spec root_keys[] = {
        {"backend", KEY_STRING, "\"local\"", NULL, {0, 0}},
        {"plugin_path", KEY_STRING_LIST, "[]", NULL, {0, 0}},
        {"log_level", KEY_LOG_LEVEL, "\"warn\"", NULL, {0, 0}},
        {"llm", KEY_SECTION, NULL, llm_keys, {0, 0}},
        {"sub_llm", KEY_SECTION, NULL, llm_keys, {0, 0}},
        {"limits", KEY_SECTION, NULL, limits_keys, {0, 0}},
        {"pool", KEY_SECTION, NULL, pool_keys, {0, 0}},
        {"backends", KEY_BACKENDS, "{}", NULL, {0, 0}},
        {NULL, KEY_SECTION, NULL, NULL, {0, 0}},
};

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

/* ---- Small helpers ---- */

static int out_of_memory(rlm_error *err)
{
	return rlm_error_set(err, RLM_ENOMEM, "out of memory");
}

/* json-c represents JSON null as a NULL pointer: this answers false for it, whatever the type. */
static int is_type(json_object *v, json_type type)
{
	return v != NULL && json_object_get_type(v) == type;
}

/* A finite JSON number: json-c also parses NaN and Infinity, which no setting wants. */
static int is_number(json_object *v)
{
	if (is_type(v, json_type_int))
		return 1;
	return is_type(v, json_type_double) && isfinite(json_object_get_double(v));
}

/* An integer, or a double with an integral value that fits in int64. */
static int is_whole(json_object *v)
{
	double d;

	if (is_type(v, json_type_int))
		return 1;
	if (!is_number(v))
		return 0;
	d = json_object_get_double(v);
	return d >= -9.2e18 && d <= 9.2e18 && (double)(int64_t)d == d;
}

static int is_string_array(json_object *v)
{
	size_t i, n;

	if (!is_type(v, json_type_array))
		return 0;
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		if (!is_type(json_object_array_get_idx(v, i), json_type_string))
			return 0;
	}
	return 1;
}

/* A plain string as the list of strings it stands for: "/dir" is ["/dir"], "" is []. A new
 * array, or NULL when out of memory. */
static json_object *string_as_list(json_object *str)
{
	json_object *list = json_object_new_array(), *item;

	if (!list || json_object_get_string_len(str) == 0)
		return list;
	item = json_object_new_string_len(json_object_get_string(str),
	                                  json_object_get_string_len(str));
	if (!item || json_object_array_add(list, item) != 0) {
		json_object_put(item);
		json_object_put(list);
		return NULL;
	}
	return list;
}

/* The value as JSON text for a message, cut to fit in out. */
static void quote_value(json_object *v, char *out, size_t size)
{
	const char *text = json_object_to_json_string_ext(v, JSON_FLAGS);
	size_t len = text ? strlen(text) : 0;

	if (!text) {
		snprintf(out, size, "(unprintable)");
	} else if (len < size) {
		memcpy(out, text, len + 1);
	} else {
		memcpy(out, text, size - 4);
		memcpy(out + size - 4, "...", 4);
	}
}

/* Joins names with ", " into out, cut to fit. */
static void join_names(const char *const *names, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (; *names && len + 1 < size; names++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", len ? ", " : "", *names);
}

/* Levenshtein distance; SIZE_MAX when the work row cannot be allocated. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, diag, result;
	size_t *row = malloc((lb + 1) * sizeof(*row));

	if (!row)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	result = row[lb];
	free(row);
	return result;
}

const char *rlm__nearest(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	size_t limit, best_distance = SIZE_MAX, len;

	if (!word || !candidates)
		return NULL;
	len = strlen(word);
	limit = len / 3 > 2 ? len / 3 : 2;
	for (; *candidates; candidates++) {
		size_t clen = strlen(*candidates), d;

		/* The length gap alone bounds the distance: skip hopeless candidates cheaply. */
		if ((clen > len ? clen - len : len - clen) > limit)
			continue;
		d = edit_distance(word, *candidates);
		if (d < best_distance) {
			best_distance = d;
			best = *candidates;
		}
	}
	return best_distance <= limit ? best : NULL;
}

/* ---- Parsing ---- */

struct parse_failure {
	const char *what; /* the tokener's description */
	size_t offset;    /* byte offset where parsing stopped */
};

/* Parses text[0..len) (text[len] must be NUL) as one JSON value, whitespace around it
 * allowed. Strict mode: config files should read the same in every JSON tool. */
static int parse_json(const char *text, size_t len, json_object **out, struct parse_failure *why)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	size_t end;

	*out = NULL;
	if (len >= INT_MAX) {
		*why = (struct parse_failure){"document too large", 0};
		return RLM_ECONFIG;
	}
	tok = json_tokener_new();
	if (!tok)
		return RLM_ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* Passing the terminating NUL lets the tokener finish a bare number at the end. */
	*out = json_tokener_parse_ex(tok, text, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		*why = (struct parse_failure){json_tokener_error_desc(jerr), end};
		return RLM_ECONFIG;
	}
	while (end < len && isspace((unsigned char)text[end]))
		end++;
	if (end < len) {
		json_object_put(*out);
		*out = NULL;
		*why = (struct parse_failure){"unexpected data after the JSON value", end};
		return RLM_ECONFIG;
	}
	return 0;
}

static int parse_error(rlm_error *err, const char *origin, const char *text,
                       const struct parse_failure *why)
{
	size_t line = 1, column = 1, i;

	for (i = 0; i < why->offset && text[i]; i++) {
		if (text[i] == '\n') {
			line++;
			column = 1;
		} else {
			column++;
		}
	}
	return rlm_error_set(err, RLM_ECONFIG, "%s: invalid JSON at line %zu, column %zu: %s",
	                     origin, line, column, why->what);
}

/* ---- Validation against the schema ---- */

struct check {
	const char *origin; /* "rlm.json", "--set", "RLM_BACKEND", ... */
	rlm_error *err;
	char path[KEY_PATH_MAX]; /* the key being checked, "limits.max_depth" */
};

/* Appends a segment to c->path; returns the old length for path_pop. */
static size_t path_push(struct check *c, const char *segment)
{
	size_t len = strlen(c->path);

	snprintf(c->path + len, sizeof(c->path) - len, "%s%s", len ? "." : "", segment);
	return len;
}

static size_t path_push_index(struct check *c, size_t index)
{
	size_t len = strlen(c->path);

	snprintf(c->path + len, sizeof(c->path) - len, "[%zu]", index);
	return len;
}

static void path_pop(struct check *c, size_t len)
{
	c->path[len] = '\0';
}

static int type_error(const struct check *c, const char *expected, json_object *val)
{
	char got[VALUE_QUOTE_MAX];

	quote_value(val, got, sizeof(got));
	return rlm_error_set(c->err, RLM_ECONFIG, "%s: \"%s\" must be %s, got %s", c->origin,
	                     c->path, expected, got);
}

struct known_paths {
	const char *names[SCHEMA_KEYS_MAX + 1]; /* last segments, NULL-terminated */
	char paths[SCHEMA_KEYS_MAX][64];        /* the matching full paths */
	size_t count;
};

/* The path is built in a local buffer, not in place: prefix points into kp->paths, and a
 * snprintf from kp into kp is what gcc's -Wrestrict (rightly) cannot prove apart. */
static void collect_paths(const struct key_spec *keys, const char *prefix, struct known_paths *kp)
{
	for (; keys->name && kp->count < SCHEMA_KEYS_MAX; keys++) {
		char path[sizeof(kp->paths[0])];

		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", keys->name);
		memcpy(kp->paths[kp->count], path, sizeof(path));
		kp->names[kp->count++] = keys->name;
		kp->names[kp->count] = NULL;
		if (keys->children)
			collect_paths(keys->children, path, kp);
	}
}

/* The known key, anywhere in the schema, whose last segment is nearest to key: catches a
 * right name in the wrong section ("max_iterations" at the top level). */
static int nearest_anywhere(const char *key, char *out, size_t size)
{
	struct known_paths kp = {.count = 0};
	const char *near;
	size_t i;

	kp.names[0] = NULL;
	collect_paths(root_keys, "", &kp);
	near = rlm__nearest(key, kp.names);
	for (i = 0; near && i < kp.count; i++) {
		if (kp.names[i] == near) {
			snprintf(out, size, "%s", kp.paths[i]);
			return 1;
		}
	}
	return 0;
}

static size_t key_names(const struct key_spec *keys, const char **names, size_t max)
{
	size_t n = 0;

	for (; keys->name && n + 1 < max; keys++)
		names[n++] = keys->name;
	names[n] = NULL;
	return n;
}

static int unknown_key(const struct check *c, const struct key_spec *keys, const char *key)
{
	const char *names[SCHEMA_KEYS_MAX + 1];
	const char *near;
	char hint[KEY_PATH_MAX + 64], list[256];
	const char *dot = c->path[0] ? "." : "";

	key_names(keys, names, SCHEMA_KEYS_MAX + 1);
	near = rlm__nearest(key, names);
	if (near)
		snprintf(hint, sizeof(hint), "%s%s%s", c->path, dot, near);
	if (near || nearest_anywhere(key, hint, sizeof(hint)))
		return rlm_error_set(c->err, RLM_ECONFIG,
		                     "%s: unknown key \"%s%s%s\" (did you mean \"%s\"?)", c->origin,
		                     c->path, dot, key, hint);
	join_names(names, list, sizeof(list));
	return rlm_error_set(c->err, RLM_ECONFIG, "%s: unknown key \"%s%s%s\" (known keys%s%s: %s)",
	                     c->origin, c->path, dot, key, c->path[0] ? " in " : "", c->path, list);
}

static int check_value(struct check *c, const struct key_spec *spec, json_object *val);

static int check_section(struct check *c, const struct key_spec *keys, json_object *obj)
{
	json_object_object_foreach(obj, key, val)
	{
		const struct key_spec *spec = keys;
		size_t saved;
		int r;

		while (spec->name && strcmp(spec->name, key) != 0)
			spec++;
		if (!spec->name)
			return unknown_key(c, keys, key);
		saved = path_push(c, key);
		r = check_value(c, spec, val);
		path_pop(c, saved);
		if (r)
			return r;
	}
	return 0;
}

/* backends.<name> sections belong to their plugins; here they only have to be objects. */
static int check_backends(struct check *c, json_object *val)
{
	if (!is_type(val, json_type_object))
		return type_error(c, "an object", val);
	json_object_object_foreach(val, name, section)
	{
		if (!is_type(section, json_type_object)) {
			path_push(c, name);
			return type_error(c, "an object", section);
		}
	}
	return 0;
}

static int check_string_list(struct check *c, json_object *val)
{
	size_t i, n;

	if (!is_type(val, json_type_array))
		return type_error(c, "a list of strings", val);
	n = json_object_array_length(val);
	for (i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(val, i);

		if (!is_type(item, json_type_string)) {
			path_push_index(c, i);
			return type_error(c, "a string", item);
		}
	}
	return 0;
}

static int check_headers(struct check *c, json_object *val)
{
	if (val == NULL)
		return 0;
	if (!is_type(val, json_type_object))
		return type_error(c, "an object of strings or null", val);
	json_object_object_foreach(val, name, header)
	{
		if (!is_type(header, json_type_string)) {
			path_push(c, name);
			return type_error(c, "a string", header);
		}
	}
	return 0;
}

static int check_log_level(struct check *c, json_object *val)
{
	const char *const *level;

	for (level = log_levels; *level && is_type(val, json_type_string); level++) {
		if (strcmp(*level, json_object_get_string(val)) == 0)
			return 0;
	}
	return type_error(c, "one of error, warn, info, debug", val);
}

/* A bound as people write it: 604800, 0.001, 2147483647 (not %g's 2.14748e+09). */
static void format_bound(double d, char *out, size_t size)
{
	if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d)
		snprintf(out, size, "%.0f", d);
	else
		snprintf(out, size, "%g", d);
}

/* Whether v is a number (a whole one, when integer) within range. Infinities and NaN are
 * never within; integers json-c saturated on parsing are past any range. */
static int number_in_range(json_object *v, int integer, struct range range)
{
	double d;

	if (!(integer ? is_whole(v) : is_number(v)))
		return 0;
	d = json_object_get_double(v);
	return d >= range.min && d <= range.max;
}

static int is_numeric_key(enum key_type type)
{
	return type == KEY_NUMBER || type == KEY_NUMBER_OR_NULL || type == KEY_INTEGER ||
	       type == KEY_INTEGER_OR_NULL;
}

/* KEY_NUMBER* and KEY_INTEGER*: the message names the key, the range and the value. */
static int check_number(struct check *c, const struct key_spec *spec, json_object *val)
{
	int integer = spec->type == KEY_INTEGER || spec->type == KEY_INTEGER_OR_NULL;
	int nullable = spec->type == KEY_NUMBER_OR_NULL || spec->type == KEY_INTEGER_OR_NULL;
	char lo[32], hi[32], expected[128];

	if (val == NULL && nullable)
		return 0;
	if (number_in_range(val, integer, spec->range))
		return 0;
	format_bound(spec->range.min, lo, sizeof(lo));
	format_bound(spec->range.max, hi, sizeof(hi));
	snprintf(expected, sizeof(expected), "%s from %s to %s%s",
	         integer ? "a whole number" : "a number", lo, hi, nullable ? ", or null" : "");
	return type_error(c, expected, val);
}

static int check_value(struct check *c, const struct key_spec *spec, json_object *val)
{
	switch (spec->type) {
	case KEY_SECTION:
		if (!is_type(val, json_type_object))
			return type_error(c, "an object", val);
		return check_section(c, spec->children, val);
	case KEY_BACKENDS: return check_backends(c, val);
	case KEY_STRING:
		if (is_type(val, json_type_string) && json_object_get_string_len(val) > 0)
			return 0;
		return type_error(c, "a non-empty string", val);
	case KEY_STRING_OR_NULL:
		if (val == NULL || is_type(val, json_type_string))
			return 0;
		return type_error(c, "a string or null", val);
	case KEY_STRING_LIST: return check_string_list(c, val);
	case KEY_LOG_LEVEL: return check_log_level(c, val);
	case KEY_NUMBER:
	case KEY_NUMBER_OR_NULL:
	case KEY_INTEGER:
	case KEY_INTEGER_OR_NULL: return check_number(c, spec, val);
	case KEY_HEADERS: return check_headers(c, val);
	case KEY_SCRIPT:
		if (val == NULL || is_type(val, json_type_string) || is_type(val, json_type_array))
			return 0;
		return type_error(c, "a file path, an array of responses or null", val);
	}
	return 0;
}

static int check_document(json_object *root, const char *origin, rlm_error *err)
{
	struct check c = {.origin = origin, .err = err};

	c.path[0] = '\0';
	if (!is_type(root, json_type_object))
		return rlm_error_set(err, RLM_ECONFIG, "%s: the top level must be an object",
		                     origin);
	return check_section(&c, root_keys, root);
}

/* The schema entry for a dotted key path, or NULL. */
static const struct key_spec *find_spec(const char *key_path)
{
	const struct key_spec *keys = root_keys;
	const char *p = key_path;

	while (keys) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		while (keys->name &&
		       !(strlen(keys->name) == len && memcmp(keys->name, p, len) == 0))
			keys++;
		if (!keys->name || !dot)
			return keys->name ? keys : NULL;
		keys = keys->children;
		p = dot + 1;
	}
	return NULL;
}

int rlm__config_check_number(const char *key_path, double value, const char *origin, rlm_error *err)
{
	const struct key_spec *spec = key_path ? find_spec(key_path) : NULL;
	struct check c = {.origin = origin ? origin : "config", .err = err};
	char text[64];
	json_object *v;
	int r;

	if (!spec || !is_numeric_key(spec->type))
		return rlm_error_set(err, RLM_EINVAL,
		                     "rlm__config_check_number: \"%s\" is not "
		                     "a numeric key",
		                     key_path ? key_path : "");
	snprintf(c.path, sizeof(c.path), "%s", key_path);
	snprintf(text, sizeof(text), "%.15g", value);
	v = json_object_new_double_s(value, text);
	if (!v)
		return out_of_memory(err);
	r = check_number(&c, spec, v);
	json_object_put(v);
	return r;
}

int rlm_config_validate(const rlm_config *cfg, rlm_error *err)
{
	if (!cfg)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_validate: cfg is NULL");
	return check_document(cfg->root, "config", err);
}

/* ---- Building, copying and changing the document ---- */

static json_object *build_defaults(const struct key_spec *keys)
{
	json_object *obj = json_object_new_object();

	for (; obj && keys->name; keys++) {
		json_object *val;

		if (keys->children)
			val = build_defaults(keys->children);
		else
			val = json_tokener_parse(keys->default_json);
		/* "null" parses to NULL too: only a NULL for anything else is a failure. */
		if ((!val && (keys->children || strcmp(keys->default_json, "null") != 0)) ||
		    json_object_object_add(obj, keys->name, val) != 0) {
			json_object_put(val);
			json_object_put(obj);
			return NULL;
		}
	}
	return obj;
}

int rlm_config_new(rlm_config **out, rlm_error *err)
{
	rlm_config *cfg;

	if (!out)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_new: out is NULL");
	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return out_of_memory(err);
	cfg->root = build_defaults(root_keys);
	if (!cfg->root) {
		free(cfg);
		return out_of_memory(err);
	}
	*out = cfg;
	return 0;
}

void rlm_config_free(rlm_config *cfg)
{
	if (!cfg)
		return;
	json_object_put(cfg->root);
	free(cfg);
}

static json_object *deep_copy(json_object *src)
{
	json_object *dst = NULL;

	if (json_object_deep_copy(src, &dst, NULL) != 0)
		return NULL;
	return dst;
}

int rlm_config_clone(const rlm_config *cfg, rlm_config **out, rlm_error *err)
{
	rlm_config *copy;

	if (!cfg || !out)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_clone: NULL argument");
	*out = NULL;
	copy = calloc(1, sizeof(*copy));
	if (!copy)
		return out_of_memory(err);
	copy->root = deep_copy(cfg->root);
	if (!copy->root) {
		free(copy);
		return out_of_memory(err);
	}
	*out = copy;
	return 0;
}

/* Objects merge key by key; anything else in src replaces what dst holds. */
static int merge_objects(json_object *dst, json_object *src)
{
	json_object_object_foreach(src, key, val)
	{
		json_object *cur = NULL;

		if (is_type(val, json_type_object) && json_object_object_get_ex(dst, key, &cur) &&
		    is_type(cur, json_type_object)) {
			if (merge_objects(cur, val) != 0)
				return RLM_ENOMEM;
			continue;
		}
		json_object_get(val);
		if (json_object_object_add(dst, key, val) != 0) {
			json_object_put(val);
			return RLM_ENOMEM;
		}
	}
	return 0;
}

/* Rewrites, in obj and the sections below it, every string-list key that holds a plain string
 * as a one-element list (`--set plugin_path=/dir`), whatever layer it came from. Keys the
 * schema does not know are left for check_document to refuse. */
static int normalize_section(const struct key_spec *keys, json_object *obj)
{
	json_object_object_foreach(obj, key, val)
	{
		const struct key_spec *spec = keys;
		json_object *list;

		while (spec->name && strcmp(spec->name, key) != 0)
			spec++;
		if (spec->type == KEY_SECTION && spec->children && is_type(val, json_type_object)) {
			if (normalize_section(spec->children, val) != 0)
				return RLM_ENOMEM;
		} else if (spec->type == KEY_STRING_LIST && is_type(val, json_type_string)) {
			/* Replacing the value of the key being visited keeps the iteration valid.
			 */
			list = string_as_list(val);
			if (!list || json_object_object_add(obj, key, list) != 0) {
				json_object_put(list);
				return RLM_ENOMEM;
			}
		}
	}
	return 0;
}

/* Merges patch (an object; not consumed) into a copy of the document and keeps the copy only
 * if it validates, so a refused layer leaves cfg as it was. */
static int merge_checked(rlm_config *cfg, json_object *patch, const char *origin, rlm_error *err)
{
	json_object *next = deep_copy(cfg->root);
	int r;

	if (!next)
		return out_of_memory(err);
	if (merge_objects(next, patch) != 0 || normalize_section(root_keys, next) != 0) {
		json_object_put(next);
		return out_of_memory(err);
	}
	r = check_document(next, origin, err);
	if (r) {
		json_object_put(next);
		return r;
	}
	json_object_put(cfg->root);
	cfg->root = next;
	return 0;
}

static int merge_text(rlm_config *cfg, const char *text, size_t len, const char *origin,
                      rlm_error *err)
{
	struct parse_failure why;
	json_object *patch;
	int r = parse_json(text, len, &patch, &why);

	if (r == RLM_ENOMEM)
		return out_of_memory(err);
	if (r)
		return parse_error(err, origin, text, &why);
	if (!is_type(patch, json_type_object)) {
		r = rlm_error_set(err, RLM_ECONFIG,
		                  "%s: the top level must be a JSON object, got %s", origin,
		                  json_type_to_name(json_object_get_type(patch)));
	} else {
		r = merge_checked(cfg, patch, origin, err);
	}
	json_object_put(patch);
	return r;
}

int rlm_config_merge_json(rlm_config *cfg, const char *json, const char *origin, rlm_error *err)
{
	if (!cfg || !json)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_merge_json: NULL argument");
	return merge_text(cfg, json, strlen(json), origin ? origin : "JSON", err);
}

/* ---- Files ---- */

static int open_error(rlm_error *err, const char *path, const char *via, int errnum)
{
	char buf[128];
	const char *text = strerror_r(errnum, buf, sizeof(buf));
	int code = errnum == ENOENT || errnum == ENOTDIR ? RLM_ENOTFOUND : RLM_EIO;

	return rlm_error_set(err, code, "cannot open config file \"%s\"%s: %s", path, via, text);
}

/* Reads the whole file into a NUL-terminated malloc'ed buffer. */
static int read_file(FILE *f, const char *path, char **out, size_t *out_len, rlm_error *err)
{
	char buf[128], *data = NULL, *grown;
	size_t len = 0, cap = 0, n;

	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			grown = realloc(data, cap);
			if (!grown) {
				free(data);
				return out_of_memory(err);
			}
			data = grown;
		}
		n = fread(data + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0 && len <= CONFIG_FILE_MAX);
	if (ferror(f) || len > CONFIG_FILE_MAX) {
		int errnum = ferror(f) ? errno : EFBIG;

		free(data);
		return rlm_error_set(err, RLM_EIO, "cannot read config file \"%s\": %s", path,
		                     strerror_r(errnum, buf, sizeof(buf)));
	}
	data[len] = '\0';
	*out = data;
	*out_len = len;
	return 0;
}

/* via says how the path was chosen (" (from RLM_CONFIG)"), for the open error. */
static int load_path(rlm_config *cfg, const char *path, const char *via, rlm_error *err)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0;
	int r;

	if (!f)
		return open_error(err, path, via, errno);
	r = read_file(f, path, &text, &len, err);
	fclose(f);
	if (r)
		return r;
	r = merge_text(cfg, text, len, path, err);
	free(text);
	return r;
}

int rlm_config_load_file(rlm_config *cfg, const char *path, rlm_error *err)
{
	if (!cfg || !path)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_load_file: NULL argument");
	return load_path(cfg, path, "", err);
}

/* Loads path if it exists: RLM_ENOTFOUND (err untouched) when it does not. */
static int load_if_exists(rlm_config *cfg, const char *path, rlm_error *err)
{
	rlm_error attempt = RLM_ERROR_INIT;
	int r = load_path(cfg, path, "", &attempt);

	if (r && r != RLM_ENOTFOUND && err)
		*err = attempt;
	return r;
}

/* $XDG_CONFIG_HOME/rlm/config.json, or ~/.config/rlm/config.json; 0 when neither can be
 * named. XDG says a relative XDG_CONFIG_HOME is to be ignored. */
static int user_config_path(char *out, size_t size)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(out, size, "%s/rlm/config.json", xdg);
	else if (home && home[0])
		n = snprintf(out, size, "%s/.config/rlm/config.json", home);
	else
		return 0;
	return n > 0 && (size_t)n < size;
}

int rlm_config_load_default_files(rlm_config *cfg, rlm_error *err)
{
	const char *named = getenv("RLM_CONFIG");
	char path[4096];
	int r;

	if (!cfg)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_load_default_files: cfg is NULL");
	/* An explicit RLM_CONFIG that is missing is a mistake worth stopping for. */
	if (named && named[0])
		return load_path(cfg, named, " (from RLM_CONFIG)", err);
	r = load_if_exists(cfg, "rlm.json", err);
	if (r != RLM_ENOTFOUND)
		return r;
	if (!user_config_path(path, sizeof(path)))
		return 0;
	r = load_if_exists(cfg, path, err);
	return r == RLM_ENOTFOUND ? 0 : r;
}

/* ---- Overrides: --set and the environment ---- */

/* {"a":{"b":value}} for the path "a.b" (a mutable copy); consumes value, which may be NULL
 * (JSON null). NULL on failure. */
static json_object *nest_value(char *path, json_object *value)
{
	char *dot = strchr(path, '.');
	json_object *obj = json_object_new_object();

	if (dot) {
		*dot = '\0';
		value = nest_value(dot + 1, value);
		if (!value) {
			json_object_put(obj);
			return NULL;
		}
	}
	if (!obj || json_object_object_add(obj, path, value) != 0) {
		json_object_put(obj);
		json_object_put(value);
		return NULL;
	}
	return obj;
}

static int valid_key_path(const char *key_path)
{
	const char *p = key_path;

	if (!*p)
		return 0;
	for (; *p; p++) {
		if (*p == '.' && (p == key_path || p[1] == '.' || p[1] == '\0'))
			return 0;
	}
	return 1;
}

/* Sets key_path to value (consumed) as a one-key layer: objects merge into what is there, as
 * they do between files, and intermediate objects appear as needed. */
static int set_checked(rlm_config *cfg, const char *key_path, json_object *value,
                       const char *origin, rlm_error *err)
{
	char *path;
	json_object *patch;
	int r;

	if (!valid_key_path(key_path)) {
		json_object_put(value);
		return rlm_error_set(err, RLM_EINVAL,
		                     "%s: invalid key path \"%s\" (expected names joined by dots, "
		                     "like limits.max_iterations)",
		                     origin, key_path);
	}
	path = strdup(key_path);
	if (!path) {
		json_object_put(value);
		return out_of_memory(err);
	}
	patch = nest_value(path, value);
	free(path);
	if (!patch)
		return out_of_memory(err);
	r = merge_checked(cfg, patch, origin, err);
	json_object_put(patch);
	return r;
}

/* The value as JSON when all of it parses, else the text as a plain string. NaN and Infinity
 * (json-c accepts them) count as plain text: no setting takes them. */
static int parse_set_value(const char *text, json_object **out)
{
	struct parse_failure why;
	int r = parse_json(text, strlen(text), out, &why);

	if (r == RLM_ENOMEM)
		return r;
	if (r == 0 && !(is_type(*out, json_type_double) && !is_number(*out)))
		return 0;
	json_object_put(*out);
	*out = json_object_new_string(text);
	return *out ? 0 : RLM_ENOMEM;
}

int rlm_config_set(rlm_config *cfg, const char *key_path, const char *value, rlm_error *err)
{
	json_object *parsed = NULL;

	if (!cfg || !key_path || !value)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_set: NULL argument");
	if (parse_set_value(value, &parsed) != 0)
		return out_of_memory(err);
	return set_checked(cfg, key_path, parsed, "--set", err);
}

int rlm_config_set_assignment(rlm_config *cfg, const char *assignment, rlm_error *err)
{
	const char *eq;
	char *key;
	int r;

	if (!cfg || !assignment)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_set_assignment: NULL argument");
	eq = strchr(assignment, '=');
	if (!eq || eq == assignment)
		return rlm_error_set(err, RLM_EINVAL,
		                     "--set: expected key.path=value (e.g. "
		                     "limits.max_iterations=30), got \"%s\"",
		                     assignment);
	key = strndup(assignment, (size_t)(eq - assignment));
	if (!key)
		return out_of_memory(err);
	r = rlm_config_set(cfg, key, eq + 1, err);
	free(key);
	return r;
}

typedef int (*env_apply_fn)(rlm_config *cfg, const char *var, const char *key, const char *value,
                            rlm_error *err);

static int env_string(rlm_config *cfg, const char *var, const char *key, const char *value,
                      rlm_error *err)
{
	json_object *v = json_object_new_string(value);

	if (!v)
		return out_of_memory(err);
	return set_checked(cfg, key, v, var, err);
}

/* Levels are written in lower case in the config; DEBUG in the environment is common. */
static int env_log_level(rlm_config *cfg, const char *var, const char *key, const char *value,
                         rlm_error *err)
{
	char *lower = strdup(value), *p;
	int r;

	if (!lower)
		return out_of_memory(err);
	for (p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	r = env_string(cfg, var, key, lower, err);
	free(lower);
	return r;
}

static int env_seconds(rlm_config *cfg, const char *var, const char *key, const char *value,
                       rlm_error *err)
{
	char *end;
	double d;
	json_object *v;

	errno = 0;
	d = strtod(value, &end);
	while (isspace((unsigned char)*end))
		end++;
	if (end == value || *end || errno || !isfinite(d) || d <= 0)
		return rlm_error_set(err, RLM_ECONFIG,
		                     "%s must be a positive number of seconds, got \"%s\"", var,
		                     value);
	/* Whole seconds stay integers so the document (and a range error) reads as the user
	 * wrote it: 45, 1.5, 1e+300, not 1.0000000000000001e+300. */
	if (d <= 9.2e18 && (double)(int64_t)d == d) {
		v = json_object_new_int64((int64_t)d);
	} else {
		char text[64];

		snprintf(text, sizeof(text), "%.15g", d);
		v = json_object_new_double_s(d, text);
	}
	if (!v)
		return out_of_memory(err);
	return set_checked(cfg, key, v, var, err);
}

static int array_has_string(json_object *arr, const char *s, size_t len)
{
	size_t i, n = json_object_array_length(arr);

	for (i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(arr, i);

		if ((size_t)json_object_get_string_len(item) == len &&
		    memcmp(json_object_get_string(item), s, len) == 0)
			return 1;
	}
	return 0;
}

static int append_unique(json_object *arr, const char *s, size_t len)
{
	json_object *item;

	if (len == 0 || array_has_string(arr, s, len))
		return 0;
	item = json_object_new_string_len(s, (int)len);
	if (!item || json_object_array_add(arr, item) != 0) {
		json_object_put(item);
		return RLM_ENOMEM;
	}
	return 0;
}

/* The variable's directories come first, then the configured ones not already listed: applying
 * the environment twice does not grow the list. */
static int env_plugin_path(rlm_config *cfg, const char *var, const char *key, const char *value,
                           rlm_error *err)
{
	json_object *paths = json_object_new_array(), *old = rlm__config_lookup(cfg, key);
	const char *p = value;
	size_t i;
	int r = paths ? 0 : RLM_ENOMEM;

	while (r == 0) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);

		r = append_unique(paths, p, len);
		if (!colon)
			break;
		p = colon + 1;
	}
	for (i = 0; r == 0 && is_type(old, json_type_array) && i < json_object_array_length(old);
	     i++) {
		json_object *item = json_object_array_get_idx(old, i);

		r = append_unique(paths, json_object_get_string(item),
		                  (size_t)json_object_get_string_len(item));
	}
	if (r) {
		json_object_put(paths);
		return out_of_memory(err);
	}
	return set_checked(cfg, key, paths, var, err);
}

/* Secrets (DAYTONA_API_KEY, MODAL_TOKEN_*, provider keys) are deliberately absent: the config
 * only ever names the variable that holds one. */
static const struct env_rule {
	const char *var;
	const char *key;
	env_apply_fn apply;
} env_rules[] = {
        {"RLM_BACKEND", "backend", env_string},
        {"RLM_PLUGIN_PATH", "plugin_path", env_plugin_path},
        {"RLM_EXECUTE_TIMEOUT_S", "limits.execute_timeout_s", env_seconds},
        {"RLM_LOG_LEVEL", "log_level", env_log_level},
        {"DAYTONA_API_URL", "backends.daytona.api_url", env_string},
        {"MODAL_SERVER_URL", "backends.modal.server_url", env_string},
};

/* An empty variable counts as unset, so `RLM_BACKEND= rlm run` means "no override". All rules
 * apply to a scratch copy, kept only when every one succeeds. */
int rlm_config_apply_env(rlm_config *cfg, rlm_error *err)
{
	rlm_config scratch;
	size_t i;
	int r = 0;

	if (!cfg)
		return rlm_error_set(err, RLM_EINVAL, "rlm_config_apply_env: cfg is NULL");
	scratch.root = deep_copy(cfg->root);
	if (!scratch.root)
		return out_of_memory(err);
	for (i = 0; r == 0 && i < sizeof(env_rules) / sizeof(env_rules[0]); i++) {
		const char *value = getenv(env_rules[i].var);

		if (value && value[0])
			r = env_rules[i].apply(&scratch, env_rules[i].var, env_rules[i].key, value,
			                       err);
	}
	if (r) {
		json_object_put(scratch.root);
		return r;
	}
	json_object_put(cfg->root);
	cfg->root = scratch.root;
	return 0;
}

/* ---- Reading ---- */

static json_object *member_n(json_object *obj, const char *key, size_t len, int *found)
{
	json_object_object_foreach(obj, k, v)
	{
		if (strlen(k) == len && memcmp(k, key, len) == 0) {
			*found = 1;
			return v;
		}
	}
	*found = 0;
	return NULL;
}

/* The value at key_path; *found tells a JSON null (NULL, found) from an absent key. */
static json_object *lookup(json_object *root, const char *key_path, int *found)
{
	json_object *cur = root;
	const char *p = key_path;

	*found = 1;
	if (!p || !*p)
		return root;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		if (!is_type(cur, json_type_object)) {
			*found = 0;
			return NULL;
		}
		cur = member_n(cur, p, len, found);
		if (!*found || !dot)
			return cur;
		p = dot + 1;
	}
}

json_object *rlm__config_root(const rlm_config *cfg)
{
	return cfg ? cfg->root : NULL;
}

json_object *rlm__config_lookup(const rlm_config *cfg, const char *key_path)
{
	int found;

	return cfg ? lookup(cfg->root, key_path, &found) : NULL;
}

char *rlm_config_get_json(const rlm_config *cfg, const char *key_path)
{
	json_object *v;
	const char *text;
	int found = 0;

	if (!cfg)
		return NULL;
	v = lookup(cfg->root, key_path, &found);
	if (!found)
		return NULL;
	text = json_object_to_json_string_ext(v, JSON_FLAGS);
	return text ? strdup(text) : NULL;
}

const char *rlm_config_get_string(const rlm_config *cfg, const char *key_path, const char *fallback)
{
	json_object *v = rlm__config_lookup(cfg, key_path);

	return is_type(v, json_type_string) ? json_object_get_string(v) : fallback;
}

double rlm_config_get_number(const rlm_config *cfg, const char *key_path, double fallback)
{
	json_object *v = rlm__config_lookup(cfg, key_path);

	return is_number(v) ? json_object_get_double(v) : fallback;
}

int rlm_config_get_bool(const rlm_config *cfg, const char *key_path, int fallback)
{
	json_object *v = rlm__config_lookup(cfg, key_path);

	return is_type(v, json_type_boolean) ? json_object_get_boolean(v) : fallback;
}

void rlm_free(void *ptr)
{
	free(ptr);
}

void *rlm_alloc(size_t size)
{
	return malloc(size ? size : 1);
}

/* ---- Plugin option sections ---- */

/* Without bounds of its own an option gets a generic range: integers fit in int32 (plugins of
 * ABI 1.0/1.1 read them into an int) and other numbers stay within 1e9 in magnitude (seconds,
 * MiB, CPUs: 1e9 of any is a mistake, and (int) casts and conversions to milliseconds stay
 * defined). A bound a definition gives replaces that, up to 2^53, past which a double no
 * longer holds every integer. NaN and infinities never pass. */
static const struct range plugin_int_range = {-2147483648.0, INT32_TOP};
static const struct range plugin_number_range = {-1e9, 1e9};
#define EXACT_TOP 9007199254740992.0

/* Where an option's value came from, for messages. */
enum option_source { FROM_CONFIG, FROM_ENV, FROM_DEFAULT };

static struct range option_range(const rlm_option_def *d)
{
	struct range r = d->type == RLM_OPT_INT ? plugin_int_range : plugin_number_range;

	if (d->flags & (RLM_OPTF_MIN | RLM_OPTF_MAX))
		r = (struct range){-EXACT_TOP, EXACT_TOP};
	if ((d->flags & RLM_OPTF_MIN) && d->min > r.min)
		r.min = d->min;
	if ((d->flags & RLM_OPTF_MAX) && d->max < r.max)
		r.max = d->max;
	return r;
}

static const char *option_expected(rlm_option_type type)
{
	switch (type) {
	case RLM_OPT_STRING: return "a string";
	case RLM_OPT_INT: return "an integer";
	case RLM_OPT_NUMBER: return "a number";
	case RLM_OPT_BOOL: return "a boolean";
	case RLM_OPT_STRING_LIST: return "a list of strings";
	case RLM_OPT_OBJECT: return "an object";
	}
	return "a value of an unknown type";
}

/* null always passes here (REQUIRED is checked apart): it means "unset". A type newer than
 * this core passes too: the plugin knows it, the core cannot check it. */
static int option_type_ok(const rlm_option_def *d, json_object *v)
{
	if (v == NULL)
		return 1;
	switch (d->type) {
	case RLM_OPT_STRING: return is_type(v, json_type_string);
	case RLM_OPT_INT: return number_in_range(v, 1, option_range(d));
	case RLM_OPT_NUMBER: return number_in_range(v, 0, option_range(d));
	case RLM_OPT_BOOL: return is_type(v, json_type_boolean);
	case RLM_OPT_STRING_LIST: return is_string_array(v);
	case RLM_OPT_OBJECT: return is_type(v, json_type_object);
	}
	return 1;
}

/* What the option must be, with the range when a number missed it ("an integer from ... to
 * ..."), into out. */
static const char *option_expectation(const rlm_option_def *d, json_object *v, char *out,
                                      size_t size)
{
	char lo[32], hi[32];
	struct range range = option_range(d);

	if ((d->type != RLM_OPT_INT && d->type != RLM_OPT_NUMBER) ||
	    !(is_type(v, json_type_int) || is_type(v, json_type_double)))
		return option_expected(d->type);
	format_bound(range.min, lo, sizeof(lo));
	format_bound(range.max, hi, sizeof(hi));
	snprintf(out, size, "%s from %s to %s", option_expected(d->type), lo, hi);
	return out;
}

static const char *value_kind(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_int:
	case json_type_double: return "number";
	case json_type_string: return "string";
	case json_type_array: return "array";
	case json_type_object: return "object";
	}
	return "value";
}

/* The value for a message: its JSON text, or "(secret)" for a secret option's. */
static void quote_option(const rlm_option_def *d, json_object *v, char *out, size_t size)
{
	if (d->flags & RLM_OPTF_SECRET)
		snprintf(out, size, "(secret)");
	else
		quote_value(v, out, size);
}

/* "backends.x.opt", "backends.x.opt (from env var X)", "backends.x.opt: the plugin's
 * default" into out. */
static const char *option_place(const char *where, const rlm_option_def *d, enum option_source from,
                                char *out, size_t size)
{
	if (from == FROM_ENV)
		snprintf(out, size, "%s.%s (from env var %s)", where, d->name, d->env);
	else if (from == FROM_DEFAULT)
		snprintf(out, size, "%s.%s: the plugin's default", where, d->name);
	else
		snprintf(out, size, "%s.%s", where, d->name);
	return out;
}

/* A default the plugin got wrong is the plugin's fault (RLM_EPLUGIN), anything else the
 * user's (RLM_ECONFIG). */
static int option_fault(enum option_source from)
{
	return from == FROM_DEFAULT ? RLM_EPLUGIN : RLM_ECONFIG;
}

static int option_type_error(const char *where, const rlm_option_def *d, json_object *v,
                             enum option_source from, rlm_error *err)
{
	char got[VALUE_QUOTE_MAX], buf[128], place[256];
	const char *expected = option_expectation(d, v, buf, sizeof(buf));

	quote_option(d, v, got, sizeof(got));
	option_place(where, d, from, place, sizeof(place));
	if (from == FROM_DEFAULT)
		return rlm_error_set(err, RLM_EPLUGIN, "%s %s is not %s", place, got, expected);
	return rlm_error_set(err, RLM_ECONFIG, "%s must be %s, got %s %s", place, expected,
	                     value_kind(v), got);
}

static int unknown_option(const rlm_option_def *defs, const char *key, const char *where,
                          rlm_error *err)
{
	size_t n = 0, i;
	const char **names;
	const char *near;
	char list[256];

	while (defs && defs[n].name)
		n++;
	if (n == 0)
		return rlm_error_set(err, RLM_ECONFIG,
		                     "%s: unknown option \"%s\" (this plugin takes no options)",
		                     where, key);
	names = malloc((n + 1) * sizeof(*names));
	if (!names)
		return out_of_memory(err);
	for (i = 0; i < n; i++)
		names[i] = defs[i].name;
	names[n] = NULL;
	near = rlm__nearest(key, names);
	join_names(names, list, sizeof(list));
	if (near)
		rlm_error_set(err, RLM_ECONFIG, "%s: unknown option \"%s\" (did you mean \"%s\"?)",
		              where, key, near);
	else
		rlm_error_set(err, RLM_ECONFIG, "%s: unknown option \"%s\" (known options: %s)",
		              where, key, list);
	free(names);
	return RLM_ECONFIG;
}

static int check_option_keys(const rlm_option_def *defs, json_object *section, const char *where,
                             rlm_error *err)
{
	json_object_object_foreach(section, key, val)
	{
		const rlm_option_def *d = defs;

		(void)val;
		while (d && d->name && strcmp(d->name, key) != 0)
			d++;
		if (!d || !d->name)
			return unknown_option(defs, key, where, err);
	}
	return 0;
}

/* "a,b , c" as ["a","b","c"] (empty items dropped). NULL when out of memory. */
static json_object *comma_list(const char *text)
{
	json_object *list = json_object_new_array();

	while (list && *text) {
		size_t n = strcspn(text, ",");
		size_t lead = 0, len = n;

		while (lead < len && isspace((unsigned char)text[lead]))
			lead++;
		while (len > lead && isspace((unsigned char)text[len - 1]))
			len--;
		if (len > lead) {
			json_object *item =
			        json_object_new_string_len(text + lead, (int)(len - lead));
			if (!item || json_object_array_add(list, item) != 0) {
				json_object_put(item);
				json_object_put(list);
				return NULL;
			}
		}
		text += n + (text[n] == ',');
	}
	return list;
}

static int env_bool(const char *text, int *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false",
	                                                                            "no", "off"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(text, yes[i]))
			return *out = 1, 1;
		if (!strcasecmp(text, no[i]))
			return *out = 0, 1;
	}
	return 0;
}

/* The value of the option's environment variable as JSON of its type (a new reference), or
 * NULL when the variable is unset or empty. The value itself is quoted in no message when the
 * option is secret. */
static int option_from_env(const rlm_option_def *d, const char *where, json_object **out,
                           rlm_error *err)
{
	const char *text = d->env && *d->env ? getenv(d->env) : NULL;
	json_object *v = NULL;
	struct parse_failure why;
	char *end = NULL;
	double num;
	int b, bad = 0;

	*out = NULL;
	if (!text || !*text)
		return 0;
	switch (d->type) {
	case RLM_OPT_INT:
	case RLM_OPT_NUMBER:
		errno = 0;
		num = strtod(text, &end);
		bad = end == text || *end || errno == ERANGE || !isfinite(num);
		v = bad ? NULL : json_object_new_double(num);
		break;
	case RLM_OPT_BOOL:
		bad = !env_bool(text, &b);
		v = bad ? NULL : json_object_new_boolean(b);
		break;
	case RLM_OPT_STRING_LIST:
	case RLM_OPT_OBJECT:
		if (d->type == RLM_OPT_STRING_LIST && text[0] != '[') {
			v = comma_list(text);
			break;
		}
		if (parse_json(text, strlen(text), &v, &why) == RLM_ENOMEM)
			return out_of_memory(err);
		bad = !v;
		break;
	case RLM_OPT_STRING:
	default: v = json_object_new_string(text); break;
	}
	if (bad) {
		if (d->flags & RLM_OPTF_SECRET)
			return rlm_error_set(err, RLM_ECONFIG, "%s.%s: env var %s is not %s", where,
			                     d->name, d->env, option_expected(d->type));
		return rlm_error_set(err, RLM_ECONFIG, "%s.%s: env var %s is not %s: \"%.60s\"",
		                     where, d->name, d->env, option_expected(d->type), text);
	}
	if (!v)
		return out_of_memory(err);
	*out = v;
	return 0;
}

/* The checks beyond the type: REQUIRED, NONEMPTY and choices. */
static int option_rules(const rlm_option_def *d, json_object *v, const char *where,
                        enum option_source from, rlm_error *err)
{
	char place[256], got[VALUE_QUOTE_MAX], list[256];
	size_t n = d->type == RLM_OPT_STRING_LIST && v ? json_object_array_length(v) : 1;

	if (!v)
		return (d->flags & RLM_OPTF_REQUIRED)
		               ? rlm_error_set(err, RLM_ECONFIG, "%s.%s is required%s%s (%s)",
		                               where, d->name, d->env ? ": set it or env var " : "",
		                               d->env ? d->env : "", d->doc ? d->doc : "no doc")
		               : 0;
	if (d->type != RLM_OPT_STRING && d->type != RLM_OPT_STRING_LIST)
		return 0;
	for (size_t i = 0; i < n; i++) {
		json_object *s = d->type == RLM_OPT_STRING ? v : json_object_array_get_idx(v, i);
		const char *text = json_object_get_string(s);
		const char *const *c = d->choices;

		option_place(where, d, from, place, sizeof(place));
		if ((d->flags & RLM_OPTF_NONEMPTY) && !*text)
			return rlm_error_set(
			        err, option_fault(from), "%s must not be empty%s", place,
			        d->type == RLM_OPT_STRING_LIST ? " (nor hold \"\")" : "");
		if (!c || !*c)
			continue;
		while (*c && strcmp(*c, text))
			c++;
		if (*c)
			continue;
		join_names(d->choices, list, sizeof(list));
		quote_option(d, s, got, sizeof(got));
		return rlm_error_set(err, option_fault(from), "%s must be one of %s, got %s", place,
		                     list, got);
	}
	return 0;
}

/* The option's value (a new reference, or NULL for JSON null): from the section, else the
 * environment, else the default; checked. An integral double for an INT becomes an int, and
 * a plain string for a STRING_LIST a one-element list. */
static int option_value(const rlm_option_def *d, json_object *section, const char *where,
                        json_object **out, rlm_error *err)
{
	json_object *given = NULL, *v = NULL;
	enum option_source from = FROM_CONFIG;
	struct parse_failure why;
	int r;

	*out = NULL;
	if (section && json_object_object_get_ex(section, d->name, &given)) {
		if (given && !(v = deep_copy(given)))
			return out_of_memory(err);
	} else if ((r = option_from_env(d, where, &v, err)) != 0) {
		return r;
	} else if (v) {
		from = FROM_ENV;
	} else if (d->default_json) {
		from = FROM_DEFAULT;
		r = parse_json(d->default_json, strlen(d->default_json), &v, &why);
		if (r == RLM_ENOMEM)
			return out_of_memory(err);
		if (r)
			return rlm_error_set(err, RLM_EPLUGIN,
			                     "%s.%s: the plugin's default is not valid JSON: %s",
			                     where, d->name, why.what);
	}
	if (d->type == RLM_OPT_STRING_LIST && is_type(v, json_type_string)) {
		json_object *list = string_as_list(v);

		json_object_put(v);
		if (!(v = list))
			return out_of_memory(err);
	}
	if (!option_type_ok(d, v)) {
		r = option_type_error(where, d, v, from, err);
		json_object_put(v);
		return r;
	}
	if ((r = option_rules(d, v, where, from, err)) != 0) {
		json_object_put(v);
		return r;
	}
	if (d->type == RLM_OPT_INT && is_type(v, json_type_double)) {
		int64_t whole = (int64_t)json_object_get_double(v);

		json_object_put(v);
		if (!(v = json_object_new_int64(whole)))
			return out_of_memory(err);
	}
	*out = v;
	return 0;
}

int rlm__option_defs_apply(const rlm_option_def *defs, json_object *section, const char *where,
                           json_object **out, rlm_error *err)
{
	json_object *result;
	int r;

	if (!out)
		return rlm_error_set(err, RLM_EINVAL, "rlm__option_defs_apply: out is NULL");
	*out = NULL;
	where = where ? where : "options";
	if (section && !is_type(section, json_type_object))
		return rlm_error_set(err, RLM_ECONFIG, "%s must be an object, got %s", where,
		                     value_kind(section));
	if (section && (r = check_option_keys(defs, section, where, err)) != 0)
		return r;
	result = json_object_new_object();
	if (!result)
		return out_of_memory(err);
	for (; defs && defs->name; defs++) {
		json_object *v;

		r = option_value(defs, section, where, &v, err);
		if (r == 0 && json_object_object_add(result, defs->name, v) != 0) {
			json_object_put(v);
			r = out_of_memory(err);
		}
		if (r) {
			json_object_put(result);
			return r;
		}
	}
	*out = result;
	return 0;
}

int rlm__options_apply(const rlm_option_spec *specs, json_object *section, const char *where,
                       json_object **out, rlm_error *err)
{
	rlm_option_def *defs = NULL;
	int r = rlm__option_defs_from_specs(specs, &defs, err);

	if (r == 0)
		r = rlm__option_defs_apply(defs, section, where, out, err);
	free(defs);
	return r;
}
