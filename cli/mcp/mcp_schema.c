/* mcp_schema.c - checks tool arguments against the tools' own input schemas, so the schema a
 * client sees in tools/list is the one rule the server applies. Only the keywords those
 * schemas use are understood: type, properties, required, additionalProperties (false),
 * enum, minimum, maximum, minLength, maxLength, items, maxItems. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mcp.h"

#define PATH_MAX_LEN 160

static int fail(char *msg, size_t size, const char *path, const char *what)
{
	snprintf(msg, size, "%s: %s", path[0] ? path : "arguments", what);
	return -1;
}

static int type_matches(const char *type, json_object *v)
{
	json_type t = json_object_get_type(v);
	if (!strcmp(type, "object"))
		return t == json_type_object;
	if (!strcmp(type, "array"))
		return t == json_type_array;
	if (!strcmp(type, "string"))
		return t == json_type_string;
	if (!strcmp(type, "boolean"))
		return t == json_type_boolean;
	if (!strcmp(type, "null"))
		return v == NULL;
	if (!strcmp(type, "number"))
		return t == json_type_int ||
		       (t == json_type_double && isfinite(json_object_get_double(v)));
	if (!strcmp(type, "integer")) {
		if (t == json_type_int)
			return 1;
		double d = json_object_get_double(v);
		return t == json_type_double && isfinite(d) && d == floor(d);
	}
	return 1;
}

static int check_type(json_object *schema, json_object *v, const char *path, char *msg, size_t size)
{
	json_object *type;
	if (!json_object_object_get_ex(schema, "type", &type))
		return 0;
	if (json_object_is_type(type, json_type_string)) {
		if (type_matches(json_object_get_string(type), v))
			return 0;
	} else {
		for (size_t i = 0; i < json_object_array_length(type); i++)
			if (type_matches(json_object_get_string(json_object_array_get_idx(type, i)),
			                 v))
				return 0;
	}
	char what[128];
	snprintf(what, sizeof(what), "must be of type %s",
	         json_object_to_json_string_ext(type, JSON_C_TO_STRING_PLAIN));
	return fail(msg, size, path, what);
}

static int check_enum(json_object *schema, json_object *v, const char *path, char *msg, size_t size)
{
	json_object *e;
	if (!json_object_object_get_ex(schema, "enum", &e))
		return 0;
	for (size_t i = 0; i < json_object_array_length(e); i++)
		if (json_object_equal(json_object_array_get_idx(e, i), v))
			return 0;
	char what[256];
	snprintf(what, sizeof(what), "must be one of %s",
	         json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
	return fail(msg, size, path, what);
}

static double number_kw(json_object *schema, const char *kw, double fallback)
{
	json_object *n;
	return json_object_object_get_ex(schema, kw, &n) ? json_object_get_double(n) : fallback;
}

/* Characters (code points) of a UTF-8 string. */
static size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

static int check_bounds(json_object *schema, json_object *v, const char *path, char *msg,
                        size_t size)
{
	char what[128];
	json_type t = json_object_get_type(v);
	if (t == json_type_int || t == json_type_double) {
		double d = json_object_get_double(v);
		double min = number_kw(schema, "minimum", -INFINITY);
		double max = number_kw(schema, "maximum", INFINITY);
		if (d < min || d > max) {
			snprintf(what, sizeof(what), "must be between %g and %g, got %g", min, max,
			         d);
			return fail(msg, size, path, what);
		}
	} else if (t == json_type_string) {
		size_t n = utf8_chars(json_object_get_string(v),
		                      (size_t)json_object_get_string_len(v));
		double min = number_kw(schema, "minLength", 0);
		double max = number_kw(schema, "maxLength", INFINITY);
		if ((double)n < min || (double)n > max) {
			snprintf(what, sizeof(what),
			         (double)n < min ? "must have at least %.0f characters"
			                         : "must have at most %.0f characters",
			         (double)n < min ? min : max);
			return fail(msg, size, path, what);
		}
	} else if (t == json_type_array) {
		double max = number_kw(schema, "maxItems", INFINITY);
		if ((double)json_object_array_length(v) > max) {
			snprintf(what, sizeof(what), "must have at most %.0f items", max);
			return fail(msg, size, path, what);
		}
	}
	return 0;
}

static int check(json_object *schema, json_object *v, const char *path, char *msg, size_t size);

static int check_object(json_object *schema, json_object *v, const char *path, char *msg,
                        size_t size)
{
	json_object *props = NULL, *req, *addl;
	json_object_object_get_ex(schema, "properties", &props);
	if (json_object_object_get_ex(schema, "required", &req)) {
		for (size_t i = 0; i < json_object_array_length(req); i++) {
			const char *k = json_object_get_string(json_object_array_get_idx(req, i));
			if (!json_object_object_get_ex(v, k, NULL)) {
				char what[160];
				snprintf(what, sizeof(what), "\"%s\" is required", k);
				return fail(msg, size, path, what);
			}
		}
	}
	int closed = json_object_object_get_ex(schema, "additionalProperties", &addl) &&
	             json_object_is_type(addl, json_type_boolean) && !json_object_get_boolean(addl);
	json_object_object_foreach(v, key, val)
	{
		char sub[PATH_MAX_LEN];
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", key);
		json_object *ps = NULL;
		if (props && json_object_object_get_ex(props, key, &ps)) {
			if (check(ps, val, sub, msg, size))
				return -1;
		} else if (closed) {
			char what[200];
			snprintf(what, sizeof(what), "unknown argument \"%.80s\"", key);
			return fail(msg, size, path, what);
		}
	}
	return 0;
}

static int check(json_object *schema, json_object *v, const char *path, char *msg, size_t size)
{
	if (check_type(schema, v, path, msg, size) || check_enum(schema, v, path, msg, size) ||
	    check_bounds(schema, v, path, msg, size))
		return -1;
	if (json_object_is_type(v, json_type_object))
		return check_object(schema, v, path, msg, size);
	json_object *items;
	if (json_object_is_type(v, json_type_array) &&
	    json_object_object_get_ex(schema, "items", &items)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			char sub[PATH_MAX_LEN];
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (check(items, json_object_array_get_idx(v, i), sub, msg, size))
				return -1;
		}
	}
	return 0;
}

int mcp_schema_check(json_object *schema, json_object *value, char *message, size_t size)
{
	return check(schema, value, "", message, size);
}
