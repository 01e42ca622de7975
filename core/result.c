/* result.c - the result of one cell: built from the driver's result frame, freed, and
 * rendered as JSON. */
#include <stdlib.h>
#include <string.h>

#include "interp_internal.h"
#include "util.h"

/* A string member as text for a field without a length: a NUL character (which would cut the
 * C string short) is written as the four characters \x00, as Python's repr shows it. */
static char *dup_member(json_object *obj, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	const char *s = json_object_get_string(v);
	size_t len = json_object_is_type(v, json_type_string)
	                     ? (size_t)json_object_get_string_len(v)
	                     : strlen(s);
	if (!memchr(s, '\0', len))
		return strdup(s);
	rlm_sb sb = {0};
	for (const char *p = s, *end = s + len; p < end;) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		size_t run = nul ? (size_t)(nul - p) : (size_t)(end - p);
		rlm_sb_append(&sb, p, run);
		if (!nul)
			break;
		rlm_sb_puts(&sb, "\\x00");
		p = nul + 1;
	}
	return rlm_sb_take(&sb);
}

/* A string member with its length: stdout and stderr may hold NUL characters. */
static char *dup_bytes(json_object *obj, const char *key, size_t *len)
{
	json_object *v = NULL;
	*len = 0;
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return strdup("");
	size_t n = (size_t)json_object_get_string_len(v);
	char *copy = malloc(n + 1);
	if (!copy)
		return NULL;
	memcpy(copy, json_object_get_string(v), n);
	copy[n] = '\0';
	*len = n;
	return copy;
}

static long long int_member(json_object *obj, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	return json_object_get_int64(v);
}

static void exec_error_free(rlm_exec_error *e)
{
	if (!e)
		return;
	free(e->type);
	free(e->message);
	free(e->traceback);
	free(e->line);
	free(e);
}

static rlm_exec_error *error_from_object(json_object *e)
{
	if (!e || !json_object_is_type(e, json_type_object))
		return NULL;
	rlm_exec_error *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->type = dup_member(e, "type");
	x->message = dup_member(e, "message");
	x->traceback = dup_member(e, "traceback");
	x->line = dup_member(e, "line");
	if (!x->type)
		x->type = strdup("Error");
	if (!x->message)
		x->message = strdup("");
	if (!x->traceback)
		x->traceback = strdup("");
	if (!x->line)
		x->line = strdup(x->type ? x->type : "Error");
	return x;
}

rlm_result *rlm__result_from_frame(json_object *f)
{
	rlm_result *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->stdout_text = dup_bytes(f, "stdout", &r->stdout_len);
	r->stderr_text = dup_bytes(f, "stderr", &r->stderr_len);
	if (!r->stdout_text || !r->stderr_text) {
		rlm_result_free(r);
		return NULL;
	}
	r->stdout_chars = (size_t)int_member(f, "stdout_chars");
	r->stderr_chars = (size_t)int_member(f, "stderr_chars");
	r->truncated = int_member(f, "truncated") != 0;
	r->timed_out = int_member(f, "timed_out") != 0;
	json_object *v = NULL;
	if (json_object_object_get_ex(f, "error", &v))
		r->error = error_from_object(v);
	if (json_object_object_get_ex(f, "submit", &v) && !json_object_is_type(v, json_type_null))
		r->submit_json = strdup(json_object_to_json_string_ext(
		        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	r->value = dup_member(f, "value");
	if (json_object_object_get_ex(f, "locals", &v) && json_object_is_type(v, json_type_object))
		r->locals_json = strdup(json_object_to_json_string_ext(
		        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	return r;
}

rlm_result *rlm__result_synthetic(const char *type, const char *message, int timed_out,
                                  int state_lost)
{
	rlm_result *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->stdout_text = strdup("");
	r->stderr_text = strdup("");
	r->error = calloc(1, sizeof(*r->error));
	if (r->error) {
		r->error->type = strdup(type);
		r->error->message = strdup(message);
		r->error->traceback = strdup("");
		rlm_sb line = {0};
		rlm_sb_printf(&line, "%s: %s", type, message);
		r->error->line = rlm_sb_take(&line);
	}
	r->timed_out = timed_out;
	r->state_lost = state_lost;
	return r;
}

int rlm__result_set_error(rlm_result *r, const char *type, const char *message,
                          const char *traceback)
{
	rlm_exec_error *e = calloc(1, sizeof(*e));
	if (!e)
		return RLM_ENOMEM;
	rlm_sb line = {0};
	rlm_sb_printf(&line, "%s: %s", type, message);
	e->type = strdup(type);
	e->message = strdup(message);
	e->traceback = strdup(traceback ? traceback : "");
	e->line = rlm_sb_take(&line);
	if (!e->type || !e->message || !e->traceback || !e->line) {
		exec_error_free(e);
		return RLM_ENOMEM;
	}
	exec_error_free(r->error);
	r->error = e;
	return 0;
}

void rlm_result_free(rlm_result *r)
{
	if (!r)
		return;
	free(r->stdout_text);
	free(r->stderr_text);
	exec_error_free(r->error);
	free(r->submit_json);
	free(r->value);
	free(r->locals_json);
	free(r);
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

size_t rlm__text_len(const char *text, size_t len)
{
	if (!text)
		return 0;
	size_t n = strlen(text);
	return len > n ? len : n;
}

json_object *rlm__result_to_object(const rlm_result *r)
{
	json_object *o = json_object_new_object();
	json_object_object_add(
	        o, "stdout",
	        json_object_new_string_len(r->stdout_text ? r->stdout_text : "",
	                                   (int)rlm__text_len(r->stdout_text, r->stdout_len)));
	json_object_object_add(
	        o, "stderr",
	        json_object_new_string_len(r->stderr_text ? r->stderr_text : "",
	                                   (int)rlm__text_len(r->stderr_text, r->stderr_len)));
	json_object_object_add(o, "stdout_chars", json_object_new_int64((int64_t)r->stdout_chars));
	json_object_object_add(o, "stderr_chars", json_object_new_int64((int64_t)r->stderr_chars));
	json_object_object_add(o, "truncated", json_object_new_boolean(r->truncated));
	json_object *e = NULL;
	if (r->error) {
		e = json_object_new_object();
		json_object_object_add(e, "type", str_or_null(r->error->type));
		json_object_object_add(e, "message", str_or_null(r->error->message));
		json_object_object_add(e, "traceback", str_or_null(r->error->traceback));
		json_object_object_add(e, "line", str_or_null(r->error->line));
	}
	json_object_object_add(o, "error", e);
	json_object *submit = r->submit_json ? json_tokener_parse(r->submit_json) : NULL;
	json_object_object_add(o, "submit", submit);
	json_object_object_add(o, "value", str_or_null(r->value));
	json_object_object_add(o, "timed_out", json_object_new_boolean(r->timed_out));
	json_object_object_add(o, "state_lost", json_object_new_boolean(r->state_lost));
	json_object_object_add(o, "duration_ms", json_object_new_double(r->duration_ms));
	json_object_object_add(o, "host_calls", json_object_new_int64(r->host_calls));
	return o;
}

char *rlm_result_to_json(const rlm_result *r)
{
	if (!r)
		return NULL;
	json_object *o = rlm__result_to_object(r);
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}
